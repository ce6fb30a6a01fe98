// Shared pieces of the kernel test program (test/native/kernels_test.cpp plus one file per op
// family in this folder): tolerances, the pass/fail counters and report(), seeded per-check random
// streams, exact-size input buffers and sentinel-guarded output buffers, the length lists, the
// quantized-activation helpers of the dot and matrix checks, and the ISA selection. Everything is
// in namespace kt; the family entry points are declared at the end.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"

namespace kt {

using namespace moe;
using namespace moe::kernels;

// ---- tolerances (named, so a failure says which promise broke) ----
// Float dots: |simd - ref| <= kDotRelTol * sum_i |w_i * x_i| (float vs double accumulation).
inline constexpr double kDotRelTol = 1e-5;
// Quantized dots: |simd - ref| <= kQuantDotRelTol * sum_blocks |dw*dx| * sum_j |qw_j*qx_j|
// (exact integer block sums; only the float scaling/summation order differs).
inline constexpr double kQuantDotRelTol = 1e-5;
// quantize_row_q8_0, fp32_to_fp16_row, fp32_to_bf16_row: bit-exact (no tolerance).
// Attention sums (attn_scores_f16, attn_pv_f16): |simd - ref| <= kAttnRelTol * sum |terms|.
inline constexpr double kAttnRelTol = 2e-6;

inline constexpr uint64_t kDefaultSeed = 20240611;
inline constexpr size_t kGuard = 64;        // sentinel bytes after every output buffer
inline constexpr uint8_t kSentinel = 0xA5;  // byte pattern of the sentinels

extern uint64_t g_seed;  // --seed=N; kDefaultSeed otherwise
extern int g_passed;
extern int g_failed;

// Counts one check and prints "PASS|FAIL <what>[: <detail>]".
void report(bool ok, const std::string& what, const std::string& detail);

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));

// Deterministic per-check random stream: the same check gets the same data for every ISA.
std::mt19937_64 rng_for(const std::string& name, int64_t n);

inline double uniform(std::mt19937_64& r, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(r); }
inline float normal(std::mt19937_64& r) { return static_cast<float>(std::normal_distribution<double>(0.0, 1.0)(r)); }
inline uint32_t bits32(std::mt19937_64& r) { return static_cast<uint32_t>(r() >> 32); }

// Exact-size heap buffer for inputs (ASan/valgrind catch reads past its end), optionally
// starting `off` elements into the allocation so pointers are misaligned.
template <typename T>
struct Input {
    std::vector<T> buf;
    size_t off;
    Input(int64_t n, size_t o) : buf(static_cast<size_t>(n) + o), off(o) {}
    T* data() { return buf.data() + off; }
    T& operator[](int64_t i) { return buf[off + static_cast<size_t>(i)]; }
};

// Output buffer with sentinel bytes after the last element.
template <typename T>
struct Output {
    std::vector<uint8_t> bytes;
    int64_t n;
    explicit Output(int64_t count) : bytes(static_cast<size_t>(count) * sizeof(T) + kGuard, kSentinel), n(count) {}
    T* data() { return reinterpret_cast<T*>(bytes.data()); }
    bool guard_intact() const {
        for (size_t i = static_cast<size_t>(n) * sizeof(T); i < bytes.size(); ++i)
            if (bytes[i] != kSentinel) return false;
        return true;
    }
};

// "0..67,95,96,..." (runs of consecutive lengths collapsed).
std::string lens_str(const std::vector<int64_t>& lens);
std::vector<int64_t> float_lengths();  // 0..67, then SIMD-width boundaries and longer rows
std::vector<int64_t> quant_lengths();  // multiples of 32: 0..12 blocks (every tail mod 4), then larger

// Random normal floats (also the activations the quantized checks quantize).
void gen_normal(std::mt19937_64& r, float* x, int64_t n);

// Compares one dot result; NaN/inf references must be matched exactly.
bool dot_close(float want, float got, double mag, double tol, double* rel);

// ---------------------------------------------------------------------------------------------
// Quantized operands (dot and matrix checks)

enum class QCase {
    Random,      // random weights and scales (negative q4_0 scales included), x = quantize(normal)
    ZeroScales,  // as Random, with a third of the weight scales 0
    UnitExact,   // all scales 1.0, small enough sums that float is exact: result must be equal
    Extremes,    // saturating-looking operands (q8: w=-128/127 vs x=+-127; q4: nibbles 0/15 vs x=-128/127), unit scales
    Saturating,  // the largest sums of one sign: every nibble 15, every activation byte -128 (int16 partial sums at their bound)
};
const char* qcase_name(QCase c);

// A random fp16 weight scale, 1e-4..1 in magnitude (negative too when allowed).
uint16_t random_scale(std::mt19937_64& r, bool allow_negative);

// Activations: quantized normal floats (what the engine feeds), or raw int8 in [lo, 127].
void make_activations(QCase c, std::mt19937_64& r, block_q8_0* x, int64_t n, int lo);

// ---------------------------------------------------------------------------------------------
// Kernel sets

// Sets to test / bench: compiled in, supported by the CPU, and (under valgrind) not AVX-512;
// `print` prints a SKIP line for each other set.
std::vector<Isa> usable_isas(bool print);
// Bit i: compiled_set(i) && cpu_supports(i) (what --print-active reports to the dispatch check).
unsigned usable_mask();

// ---------------------------------------------------------------------------------------------
// The op families, one file each; kernels_test.cpp calls them in this order for every set.

void check_conversions(const KernelSet& ks);  // conversions.cpp: fp32 -> fp16 / bf16 rows, quantize_row_q8_0
void check_attention(const KernelSet& ks);    // attention.cpp: axpy_f16, attn_scores_f16, attn_pv_f16, softmax_f16r
void check_dots(const KernelSet& ks);         // dots.cpp: float and quantized dots
void check_matrix(const KernelSet& ks);       // matrix.cpp: mul_*_q8_0, mul_q4_0x16_q8_0 and the x16 relayout
void check_kquants(const KernelSet& ks);      // kquants.cpp: quantize_row_q8_K, k-quant dots and mul (scalar: the reference vs to_float)
void check_q32(const KernelSet& ks);          // q32.cpp: iq4_nl, q5_0, q4_1, q5_1 dots and matrix kernels, quantize_row_q8_1
void check_kx16(const KernelSet& ks);         // kx16.cpp: relaid-out q4_K and q6_K (repack round trip, mul_x16 vs the reference dot)
void check_sparse(
    const KernelSet& ks);         // sparse.cpp: the ReGLU-sparse Q4_0 layouts (r16 rows, neuron-major), their round trips and kernels
void check_dispatch();            // dispatch.cpp: parse_isa, set_active/active, MOE_FORCE_ISA
int run_bench(const char* only);  // bench.cpp: --bench (only: one section, or nullptr for all)

}  // namespace kt

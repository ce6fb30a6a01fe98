// Compute kernels behind one table per instruction set, chosen at run time so one binary
// runs on any x86-64 CPU. The scalar set in ref.cpp is the reference every SIMD set is
// tested against (test/native/kernels_test.cpp, test/native/kernels/). To add an ISA: write
// <isa>.cpp filling a KernelSet (compiled with that ISA's flags only in that file), register it in dispatch.cpp.
//
// A set holds one row of kernels per element type (KernelSet::of): as an activation type, the
// conversion of float rows into it; as a weight type, its dot product and matrix kernels with
// rows of its activation type (TypeTraits::act_type in core/dtype.h, as ggml pairs them:
// f32->f32, f16->f16, bf16->bf16, q8_0/q4_0/q5_0/iq4_nl->q8_0, q4_1/q5_1->q8_1, and the
// 256-element super-block types q2_K..q6_K, iq4_xs->q8_K). To add a weight type: its traits row in
// core/dtype.cpp, its kernels in ref.cpp (k-quants: kquants_ref.h) and each ISA file (the 32-element
// types beside q4_0: q32_avx2.h, q32_avx512.h; k-quants: kquants_simd.h), and its row in each set.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace moe::kernels {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Avx512Vnni = 3 };
constexpr int kIsaCount = 4;
const char* isa_name(Isa isa);
bool parse_isa(const char* name, Isa* out);

// Float activations -> rows of this type (n elements; a multiple of the block size). q8_0
// follows ggml's x86 path: d = amax/127, id = 127/amax, round half to even; q8_1 too, with
// s = fp16(d * sum(qs)) from the fp32 d (ggml's x86 quantize_row_q8_1); q8_K is bit for bit
// ggml's quantize_row_q8_K_ref (what its x86 backend uses; kquants_ref.h).
using FromF32Fn = void (*)(const float* x, void* y, int64_t n);
// dot(weight row, activation row) over n elements.
using DotFn = float (*)(int64_t n, const void* w, const void* x);
// Matrix kernel: y[t*ldy + r] = dot(weight row r, activation row t) for the rows r = rows[0..nr)
// (or r = 0..nr-1 when rows is nullptr: ReGLU passes only the neurons it needs), t < nt, where
// weight row r starts w_row_bytes * r bytes after w and activation row t x_row_bytes * t bytes
// after x (n elements each; ldy > every r). Every y element is bit-identical to what the same
// set's dot returns for that pair (the same float operations in the same order per row); the
// work is tiled so that each weight block is loaded and unpacked once per few tokens and each
// activation block once per few rows, and the next tile's rows are prefetched. Only those
// nr x nt elements of y are written.
using MulFn = void (*)(int64_t n, const void* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const void* x, size_t x_row_bytes,
                       int64_t nt, float* y, int64_t ldy);
// Weights relaid out 16 rows at a time (repack_q4_0x16 below): y[t*ldy + 16*g + i] = dot(row
// 16*g + i, activation row t) for groups g < ngroups (group g starts g * group_bytes after w)
// and t < nt. Each int32 lane holds one row's whole block sum, so the float work per block is
// shared by 16 rows; the float operations are the scalar reference dot's (block sums
// converted, times d_w*d_x, added in block order), so every set returns the reference's bits.
using MulX16Fn = void (*)(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const void* x, size_t x_row_bytes, int64_t nt,
                          float* y, int64_t ldy);
// A neuron-major matrix (relayout_nm below) of m rows and n columns: y[t*ldy + r - r0] = dot(row r,
// activation row t) for rows r0 <= r < r0 + nr (multiples of 128) and t < nt, reading only the
// columns cols[0..ncols) (ascending): every other column of every activation row must be 0 (ReGLU's
// silent neurons). Bit-identical to the dot of the row in its original layout.
using MulNmFn = void (*)(int64_t n, int64_t m, const uint8_t* w, int64_t r0, int64_t nr, const int32_t* cols, int64_t ncols, const void* x,
                         size_t x_row_bytes, int64_t nt, float* y, int64_t ldy);

// One element type's kernels in one set; a null pointer is a kernel the type does not have.
struct TypeKernels {
    FromF32Fn from_f32;  // as an activation type (f16, bf16, q8_0; f32 rows are used in place)
    DotFn dot;           // as a weight type, with rows of its activation type
    MulFn mul;           // nullptr: the caller loops over dot
    MulX16Fn mul_x16;    // weights relaid out by relayout16 (nullptr: the type has no relayout)
    // In-place relayout of 16 consecutive weight rows of nb blocks each, the same bytes in the
    // order mul_x16 reads (repack_q4_0x16 below); the same function in every set.
    void (*relayout16)(uint8_t* group, int64_t nb);
    // ReGLU-sparse expert matrices (the type's sparse layouts; nullptr: none in this set):
    // mul_r16: MulFn over rows relaid out by relayout_r16 (any subset of rows, as fast per row as mul_x16);
    // mul_nm: over a neuron-major matrix (relayout_nm), only the listed columns.
    MulFn mul_r16 = nullptr;
    MulNmFn mul_nm = nullptr;
};

constexpr uint32_t kTypeCount = 32;  // ggml type ids below this can have kernels

struct KernelSet {
    Isa isa;
    TypeKernels types[kTypeCount];
    const TypeKernels& of(DType t) const {
        static const TypeKernels none{};
        const uint32_t i = static_cast<uint32_t>(t);
        return i < kTypeCount ? types[i] : none;
    }
    // y[i] += a * x[i] for fp16 x, as a multiply then an add (no fused rounding), so every set
    // gives the reference's bits (attention's weighted sum of V rows).
    void (*axpy_f16)(int64_t n, float a, const uint16_t* x, float* y);
    // Attention over one KV head for a tile of nq queries (the heads sharing that KV head, times
    // a few tokens), reading the fp16 cache in place; d = head size.
    // Scores: s[i*lds + j] = scale * dot(q row i, k row j) for i < nq, j < nk (q: f32 rows ldq
    // apart, already rounded to fp16 precision; k: fp16 rows ldk elements apart).
    void (*attn_scores_f16)(int64_t d, int64_t nq, const float* q, int64_t ldq, int64_t nk, const uint16_t* k, int64_t ldk, float scale,
                            float* s, int64_t lds);
    // Weighted sum of V rows: o[i*ldo + c] += sum_j p[i*ldp + j] * v[j*ldv + c] for i < nq, c < d.
    void (*attn_pv_f16)(int64_t d, int64_t nq, const float* p, int64_t ldp, int64_t nk, const uint16_t* v, int64_t ldv, float* o,
                        int64_t ldo);
    // Softmax of s[0..n) in place, each probability then rounded to fp16 precision (llama.cpp
    // converts the attention weights to fp16 before weighting V). SIMD sets use their own expf
    // (a few ulp from std::exp).
    void (*softmax_f16r)(int64_t n, float* s);
};

// Typed kernels as table entries (the casts are free; the typed function is inlined).
template <class Y, void (*F)(const float*, Y*, int64_t)>
void from_f32_as(const float* x, void* y, int64_t n) {
    F(x, static_cast<Y*>(y), n);
}
template <class W, class X, float (*F)(int64_t, const W*, const X*)>
float dot_as(int64_t n, const void* w, const void* x) {
    return F(n, static_cast<const W*>(w), static_cast<const X*>(x));
}
template <class W, class X, void (*F)(int64_t, const W*, size_t, const int32_t*, int64_t, const X*, size_t, int64_t, float*, int64_t)>
void mul_as(int64_t n, const void* w, size_t wrb, const int32_t* rows, int64_t nr, const void* x, size_t xrb, int64_t nt, float* y,
            int64_t ldy) {
    F(n, static_cast<const W*>(w), wrb, rows, nr, static_cast<const X*>(x), xrb, nt, y, ldy);
}
template <class X, void (*F)(int64_t, const uint8_t*, size_t, int64_t, const X*, size_t, int64_t, float*, int64_t)>
void mul_x16_as(int64_t n, const uint8_t* w, size_t gb, int64_t ng, const void* x, size_t xrb, int64_t nt, float* y, int64_t ldy) {
    F(n, w, gb, ng, static_cast<const X*>(x), xrb, nt, y, ldy);
}

// In-place relayout of 16 consecutive Q4_0 rows of nb blocks each (16 * nb * 18 bytes, the same
// size): for each block b, at b * 288: the 16 rows' fp16 scales, then 4 chunks of 64 bytes where
// chunk k holds, for row i, bytes 4k..4k+3 of its qs (low nibbles: weights 4k..4k+3, high
// nibbles: weights 16+4k..16+4k+3), row after row. unpack_q4_0x16 undoes it (tests).
void repack_q4_0x16(uint8_t* group, int64_t nb);
void unpack_q4_0x16(uint8_t* group, int64_t nb);
constexpr size_t kQ4x16BlockBytes = 16 * sizeof(block_q4_0);

// In-place relayout of 16 consecutive Q4_K rows of nb super-blocks (16 * nb * 144 bytes, the same
// size): for each super-block b, at b * 2304: the 16 rows' fp16 d, then their fp16 dmin, then the
// 12 packed scale bytes as 12 planes of 16 (plane k, byte i = scales[k] of row i), then 32 chunks
// of 64 bytes where chunk c holds, for row i, bytes 4c..4c+3 of its qs, row after row.
// unpack_q4_Kx16 undoes it; mul_q4_Kx16_q8_K_ref is the scalar matrix kernel over it, with the
// float operations of the reference dot (kquants_ref.h), so every set returns the dot's bits.
void repack_q4_Kx16(uint8_t* group, int64_t nb);
void unpack_q4_Kx16(uint8_t* group, int64_t nb);
void mul_q4_Kx16_q8_K_ref(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes,
                          int64_t nt, float* y, int64_t ldy);
constexpr size_t kQ4Kx16BlockBytes = 16 * sizeof(block_q4_K);

// In-place relayout of 16 consecutive Q6_K rows of nb super-blocks (16 * nb * 210 bytes, the same
// size): for each super-block b, at b * 3360: the 16 rows' fp16 d, the 16 int8 scales as 16 planes
// of 16 (plane k, byte i = scales[k] of row i), then 32 chunks of 64 bytes where chunk c holds, for
// row i, bytes 4c..4c+3 of its ql, row after row, then 16 such chunks of its qh.
void repack_q6_Kx16(uint8_t* group, int64_t nb);
void unpack_q6_Kx16(uint8_t* group, int64_t nb);
void mul_q6_Kx16_q8_K_ref(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes,
                          int64_t nt, float* y, int64_t ldy);
constexpr size_t kQ6Kx16BlockBytes = 16 * sizeof(block_q6_K);

// ReGLU-sparse Q4_0 layouts (the experts' up and down; n = the row length, a multiple of 512 for
// r16, and m = the row count, a multiple of 128 for nm):
// r16: each row in place, its blocks relaid out 16 at a time as repack_q4_0x16 relays out 16 rows'
// blocks: per 16 blocks (288 bytes), their fp16 scales, then 4 chunks of 64 bytes where chunk k
// holds, for block i, bytes 4k..4k+3 of its qs. Rows keep their size and place, so any subset of
// them is read with one contiguous read each.
void repack_q4_0r16(uint8_t* row, int64_t nb);
void unpack_q4_0r16(uint8_t* row, int64_t nb);
// nm (neuron-major): m rows of n/32 Q4_0 blocks (src) -> dst, the same size: per block column b
// (32 columns), the m rows' fp16 scales in row order, then each of its 32 columns: per tile of 128
// rows, 64 bytes where byte s holds row nm_row(s) in its low nibble and row 64 + nm_row(s) in its
// high nibble. A column's bytes are contiguous: one read per neuron.
void relayout_q4_0nm(const uint8_t* src, uint8_t* dst, int64_t m, int64_t n);
void unpack_q4_0nm(const uint8_t* src, uint8_t* dst, int64_t m, int64_t n);
constexpr int nm_row(int s) { return 16 * ((s >> 2) & 3) + 4 * (s >> 4) + (s & 3); }
constexpr int64_t kNmTileRows = 128;
constexpr int64_t kR16Elements = 512;  // 16 blocks of 32

const KernelSet& scalar_set();
// nullptr when that ISA was not compiled into this binary.
const KernelSet* compiled_set(Isa isa);
// What the CPU (and OS, for AVX-512 state) supports.
bool cpu_supports(Isa isa);
// The best set the CPU supports, or the one named by MOE_FORCE_ISA (scalar|avx2|avx512|avx512vnni)
// when set; forcing an ISA the CPU lacks falls back to the best supported one with a warning.
const KernelSet& active();
// Override for tests (returns false if the ISA is unsupported/not compiled).
bool set_active(Isa isa);
// `base` with a deliberate bug in its K-quant dots (a scale nibble read wrongly): the fidelity
// tests' proof that they catch one (injected_bug.cpp; MOE_INJECT_BUG=kquant_scale only).
const KernelSet& with_kquant_scale_bug(const KernelSet& base);

}  // namespace moe::kernels

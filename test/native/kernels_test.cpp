// Kernel tests: every SIMD kernel set that is compiled in and supported by this CPU is compared
// with the scalar reference set (native/kernels/ref.cpp) on seeded random and hand-picked edge
// inputs, plus the run-time dispatch (set_active/active, MOE_FORCE_ISA parsing).
//
//   build/test/kernels_test [--seed=N]    run the checks; last line "kernels: N passed, M failed"
//   build/test/kernels_test --bench       single-thread GB/s of weight bytes per ISA (use the
//                                         -O3 build: build_kernels_test.sh --release)
//
// Build: test/native/build_kernels_test.sh (or test/native/build.mjs). Environment:
// MOE_UNDER_VALGRIND=1 skips the AVX-512 sets: valgrind 3.19 cannot execute AVX-512 (it also
// hides the AVX-512 CPUID bits, so cpu_supports() normally excludes them there anyway).
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"

using namespace moe;
using namespace moe::kernels;

namespace {

// ---- tolerances (named, so a failure says which promise broke) ----
// Float dots: |simd - ref| <= kDotRelTol * sum_i |w_i * x_i| (float vs double accumulation).
constexpr double kDotRelTol = 1e-5;
// Quantized dots: |simd - ref| <= kQuantDotRelTol * sum_blocks |dw*dx| * sum_j |qw_j*qx_j|
// (exact integer block sums; only the float scaling/summation order differs).
constexpr double kQuantDotRelTol = 1e-5;
// quantize_row_q8_0, fp32_to_fp16_row, fp32_to_bf16_row: bit-exact (no tolerance).

constexpr uint64_t kDefaultSeed = 20240611;
constexpr size_t kGuard = 64;          // sentinel bytes after every output buffer
constexpr uint8_t kSentinel = 0xA5;    // byte pattern of the sentinels

uint64_t g_seed = kDefaultSeed;
int g_passed = 0;
int g_failed = 0;

void report(bool ok, const std::string& what, const std::string& detail) {
    (ok ? g_passed : g_failed)++;
    std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
    std::fflush(stdout);
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

// Deterministic per-check random stream: the same check gets the same data for every ISA.
std::mt19937_64 rng_for(const std::string& name, int64_t n) {
    uint64_t h = g_seed ^ 0x9e3779b97f4a7c15ull;
    for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    h ^= static_cast<uint64_t>(n) * 0xff51afd7ed558ccdull;
    return std::mt19937_64(h);
}

double uniform(std::mt19937_64& r, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(r); }
float normal(std::mt19937_64& r) { return static_cast<float>(std::normal_distribution<double>(0.0, 1.0)(r)); }
uint32_t bits32(std::mt19937_64& r) { return static_cast<uint32_t>(r() >> 32); }

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

std::string lens_str(const std::vector<int64_t>& lens) {
    std::string s;
    for (size_t i = 0; i < lens.size(); ++i) {
        if (i) s += ",";
        // collapse runs a..b
        size_t j = i;
        while (j + 1 < lens.size() && lens[j + 1] == lens[j] + 1) ++j;
        if (j > i + 1) {
            s += fmt("%" PRId64 "..%" PRId64, lens[i], lens[j]);
            i = j;
        } else {
            s += fmt("%" PRId64, lens[i]);
        }
    }
    return s;
}

std::vector<int64_t> float_lengths() {
    std::vector<int64_t> v;
    for (int64_t n = 0; n <= 67; ++n) v.push_back(n);
    for (int64_t n : {95, 96, 97, 127, 128, 129, 255, 256, 257, 1000, 1536, 2048 + 17, 4096 + 31, 4096 + 32}) v.push_back(n);
    return v;
}

std::vector<int64_t> quant_lengths() {  // multiples of 32: 0..12 blocks (every tail mod 4), then larger
    std::vector<int64_t> v;
    for (int64_t b = 0; b <= 12; ++b) v.push_back(32 * b);
    for (int64_t n : {512, 768, 1024, 1536, 2048 + 96, 4096 + 32, 8192 + 160}) v.push_back(n);
    return v;
}

// ---------------------------------------------------------------------------------------------
// Bit-exact conversions

using FloatGen = void (*)(std::mt19937_64&, float*, int64_t);

// Random finite floats with magnitudes spread over many octaves.
void gen_normal(std::mt19937_64& r, float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] = normal(r);
}
void gen_wide(std::mt19937_64& r, float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] = normal(r) * static_cast<float>(std::pow(2.0, uniform(r, -30, 30)));
}
void gen_bits(std::mt19937_64& r, float* x, int64_t n) {  // any bit pattern: NaNs, infs, denormals
    for (int64_t i = 0; i < n; ++i) x[i] = fp32_from_bits(bits32(r));
}

// Hand-picked values for fp16/bf16 conversion: specials, boundaries and exact ties.
std::vector<float> conversion_specials() {
    std::vector<uint32_t> b = {
        0x00000000, 0x80000000,              // +-0
        0x7f800000, 0xff800000,              // +-inf
        0x7fc00000, 0xffc00000,              // quiet NaN
        0x7f800001, 0xff800001, 0x7fbfffff,  // signalling NaN, tiny / large payload
        0x7fffffff, 0xffffffff, 0x7fc0ffff,  // NaN payloads in the low 16 bits
        0x00000001, 0x807fffff, 0x00400000,  // fp32 denormals
        0x7f7fffff, 0xff7fffff,              // fp32 max (bf16: rounds to inf)
        0x3f808000, 0x3f818000,              // bf16 ties (to even: down / up)
        0x3f807fff, 0x3f808001,              // bf16 just below / above a tie
        0x477fe000, 0x477fefff, 0x477ff000,  // fp16: 65504, just below 65520, 65520 (tie -> inf)
        0x477fffff, 0x47800000,              // fp16 overflow
        0x38800000, 0x387fe000, 0x387ff000,  // fp16 smallest normal, below it (subnormal), tie
        0x33800000, 0x33000000, 0x33000001,  // fp16 2^-24 (min subnormal), 2^-25 (tie -> 0), above
        0x32ffffff, 0x33c00000,              // below half of min subnormal, 1.5 * 2^-24 (tie -> 2)
        0x3f801000, 0x3f803000,              // fp16 mantissa ties (to even: down / up)
        0x3f800fff, 0x3f801001,
    };
    std::vector<float> v;
    for (uint32_t u : b) v.push_back(fp32_from_bits(u));
    for (uint32_t u : b) v.push_back(-fp32_from_bits(u));  // negated too (sign of NaN flips)
    return v;
}

void gen_specials(std::mt19937_64& r, float* x, int64_t n) {
    static const std::vector<float> sp = conversion_specials();
    for (int64_t i = 0; i < n; ++i) x[i] = sp[r() % sp.size()];
}
// Exact midpoints between adjacent fp16 values (normal and subnormal) and fp16-range randoms.
void gen_fp16_ties(std::mt19937_64& r, float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = static_cast<uint16_t>(r() % 0x7c00);  // finite, non-negative half
        const float f = fp16_to_fp32_slow(h);
        float v;
        if (h >= 0x0400) v = fp32_from_bits(fp32_to_bits(f) + 0x1000);  // half a 10-bit mantissa ulp
        else v = f + std::ldexp(1.0f, -25);                            // half a subnormal step
        if (r() & 1) v = -v;
        x[i] = (r() % 4 == 0) ? static_cast<float>(uniform(r, -70000, 70000)) : v;
    }
}
void gen_bf16_ties(std::mt19937_64& r, float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        uint32_t u = bits32(r) & 0xffff0000u;
        const uint32_t low[] = {0x8000, 0x7fff, 0x8001, 0x0000, 0xffff};
        u |= low[r() % 5];
        x[i] = fp32_from_bits(u);
    }
}

template <typename Conv>
void check_conversion(const KernelSet& ks, const char* kernel, const char* case_name, FloatGen gen, Conv pick) {
    const std::string name = fmt("%s %s", kernel, case_name);
    bool ok = true;
    std::string detail;
    const auto lens = float_lengths();
    for (int64_t n : lens) {
        auto r = rng_for(name, n);
        Input<float> x(n, static_cast<size_t>(n % 3));
        gen(r, x.data(), n);
        Output<uint16_t> want(n), got(n);
        pick(scalar_set())(x.data(), want.data(), n);
        pick(ks)(x.data(), got.data(), n);
        if (!got.guard_intact()) {
            ok = false;
            detail = fmt("n=%" PRId64 ": wrote past the end of the output", n);
            break;
        }
        for (int64_t i = 0; i < n; ++i) {
            if (want.data()[i] != got.data()[i]) {
                ok = false;
                detail = fmt("n=%" PRId64 " i=%" PRId64 " x=%a (0x%08x): want 0x%04x got 0x%04x", n, i, x[i], fp32_to_bits(x[i]),
                             want.data()[i], got.data()[i]);
                break;
            }
        }
        if (!ok) break;
    }
    report(ok, fmt("%s %s %s", isa_name(ks.isa), kernel, case_name), ok ? fmt("bit-exact, n=%s", lens_str(lens).c_str()) : detail);
}

// ---- quantize_row_q8_0 ----

using QuantGen = void (*)(std::mt19937_64&, float*, int64_t);

void qgen_normal(std::mt19937_64& r, float* x, int64_t n) { gen_normal(r, x, n); }
// Each block scaled by its own power of ten (amax from ~1e-30 to ~1e30; id stays finite).
void qgen_block_scales(std::mt19937_64& r, float* x, int64_t n) {
    for (int64_t b = 0; b < n / 32; ++b) {
        const float s = static_cast<float>(std::pow(10.0, uniform(r, -30, 30)));
        for (int j = 0; j < 32; ++j) x[b * 32 + j] = normal(r) * s;
    }
}
// Edge blocks, cycled: all zeros (d = 0), negative max, exact .5 ties of x*id, huge (d -> fp16
// inf), tiny (d -> fp16 0), fp16-subnormal d, a single non-zero, signed zeros, uniform values.
void qgen_edges(std::mt19937_64& r, float* x, int64_t n) {
    for (int64_t b = 0; b < n / 32; ++b) {
        float* xb = x + b * 32;
        switch ((b + static_cast<int64_t>(r() % 2)) % 10) {
            case 0:
                for (int j = 0; j < 32; ++j) xb[j] = 0.0f;
                break;
            case 1:  // amax comes from a negative value -> -127
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(uniform(r, -3, 3));
                xb[r() % 32] = -7.5f;
                break;
            case 2:  // amax = 127 -> id = 1 exactly; k + 0.5 values are exact ties
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(static_cast<int>(r() % 254) - 127) + 0.5f;
                xb[r() % 32] = (r() & 1) ? 127.0f : -127.0f;
                break;
            case 3:  // amax = 63.5 -> id = 2 exactly; quarter steps give ties after scaling
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(static_cast<int>(r() % 254) - 127) * 0.25f + 0.25f;
                xb[r() % 32] = 63.5f;
                break;
            case 4:  // huge: amax ~ 3e38, d overflows fp16 to inf
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(uniform(r, -3e38, 3e38));
                break;
            case 5:  // tiny (but 127/amax finite): d underflows to fp16 zero
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(uniform(r, -1e-30, 1e-30));
                break;
            case 6:  // d in the fp16 subnormal range
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(uniform(r, -2e-3, 2e-3));
                break;
            case 7:  // one non-zero value
                for (int j = 0; j < 32; ++j) xb[j] = 0.0f;
                xb[r() % 32] = normal(r);
                break;
            case 8:  // signed zeros and fp32 denormals beside a normal max
                for (int j = 0; j < 32; ++j) xb[j] = (j & 1) ? -0.0f : fp32_from_bits(bits32(r) & 0x807fffffu);
                xb[r() % 32] = 1e-3f;
                break;
            default:  // all values equal
                for (int j = 0; j < 32; ++j) xb[j] = -2.25f;
                break;
        }
    }
}

// Every value within an ulp of a rounding tie: x = (k + 0.5) / id for the reference's
// id = 127/amax, so x*id lands on either side of k + 0.5 depending on the last bits of id and of
// the product (catches e.g. id computed as 1/d instead of 127/amax).
void qgen_near_ties(std::mt19937_64& r, float* x, int64_t n) {
    for (int64_t b = 0; b < n / 32; ++b) {
        float* xb = x + b * 32;
        const float amax = static_cast<float>(std::pow(10.0, uniform(r, -3, 3)));
        const float id = 127.0f / amax;
        for (int j = 0; j < 32; ++j) xb[j] = (static_cast<float>(static_cast<int>(r() % 253) - 126) + 0.5f) / id;
        xb[r() % 32] = (r() & 1) ? amax : -amax;
    }
}

void check_quantize(const KernelSet& ks, const char* case_name, QuantGen gen) {
    const std::string name = fmt("quantize_row_q8_0 %s", case_name);
    bool ok = true;
    std::string detail;
    const auto lens = quant_lengths();
    for (int64_t n : lens) {
        auto r = rng_for(name, n);
        Input<float> x(n, static_cast<size_t>(n % 5));
        gen(r, x.data(), n);
        const int64_t nb = n / 32;
        Output<block_q8_0> want(nb), got(nb);
        scalar_set().of(DType::Q8_0).from_f32(x.data(), want.data(), n);
        ks.of(DType::Q8_0).from_f32(x.data(), got.data(), n);
        if (!got.guard_intact()) {
            ok = false;
            detail = fmt("n=%" PRId64 ": wrote past the end of the output", n);
            break;
        }
        for (int64_t b = 0; b < nb && ok; ++b) {
            const block_q8_0& w = want.data()[b];
            const block_q8_0& g = got.data()[b];
            if (w.d != g.d) {
                ok = false;
                detail = fmt("n=%" PRId64 " block %" PRId64 ": d want 0x%04x got 0x%04x", n, b, w.d, g.d);
            }
            for (int j = 0; j < 32 && ok; ++j) {
                if (w.qs[j] != g.qs[j]) {
                    ok = false;
                    detail = fmt("n=%" PRId64 " block %" PRId64 " j=%d x=%a: want %d got %d", n, b, j, x[b * 32 + j], w.qs[j], g.qs[j]);
                }
            }
        }
        if (!ok) break;
    }
    report(ok, fmt("%s %s", isa_name(ks.isa), name.c_str()), ok ? fmt("bit-exact, n=%s", lens_str(lens).c_str()) : detail);
}

// ---------------------------------------------------------------------------------------------
// Float dots

// Compares one dot result; NaN/inf references must be matched exactly.
bool dot_close(float want, float got, double mag, double tol, double* rel) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    const double err = std::fabs(static_cast<double>(got) - want);
    *rel = mag > 0 ? err / mag : err;
    return std::isfinite(got) && err <= tol * mag;
}

enum class DotCase { Normal, Wide, Cancel, Zeros, Inf, NaN };
const char* dot_case_name(DotCase c) {
    switch (c) {
        case DotCase::Normal: return "normal";
        case DotCase::Wide: return "wide-range";
        case DotCase::Cancel: return "cancellation";
        case DotCase::Zeros: return "zeros";
        case DotCase::Inf: return "one-inf";
        case DotCase::NaN: return "one-nan";
    }
    return "?";
}

// Float inputs for a dot case (before conversion to f16/bf16). `lim` bounds magnitudes so the
// element type cannot overflow; specials are placed where both operands are non-zero.
void dot_inputs(DotCase c, std::mt19937_64& r, float* w, float* x, int64_t n, double lim) {
    for (int64_t i = 0; i < n; ++i) {
        switch (c) {
            case DotCase::Normal:
            case DotCase::Inf:
            case DotCase::NaN:
                w[i] = normal(r);
                x[i] = normal(r);
                break;
            case DotCase::Wide:
                w[i] = normal(r) * static_cast<float>(std::pow(2.0, uniform(r, -lim, lim)));
                x[i] = normal(r) * static_cast<float>(std::pow(2.0, uniform(r, -lim, lim)));
                break;
            case DotCase::Cancel:  // pairs of equal and opposite products, true sum near 0
                w[i] = (i % 2 == 0) ? normal(r) : w[i - 1];
                x[i] = (i % 2 == 0) ? normal(r) * 100.0f : -x[i - 1];
                break;
            case DotCase::Zeros:
                w[i] = (r() % 3 == 0) ? normal(r) : 0.0f;
                x[i] = (w[i] != 0.0f) ? 0.0f : normal(r);
                break;
        }
    }
    if (n > 0 && (c == DotCase::Inf || c == DotCase::NaN)) {
        const int64_t k = static_cast<int64_t>(r() % static_cast<uint64_t>(n));
        w[k] = c == DotCase::Inf ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
        x[k] = 1.5f;
    }
}

void check_dot_f32(const KernelSet& ks, DotCase c) {
    const std::string name = fmt("dot_f32 %s", dot_case_name(c));
    bool ok = true;
    double worst = 0;
    std::string detail;
    const auto lens = float_lengths();
    for (int64_t n : lens) {
        auto r = rng_for(name, n);
        Input<float> w(n, static_cast<size_t>(n % 2)), x(n, static_cast<size_t>(n % 3));
        dot_inputs(c, r, w.data(), x.data(), n, 20);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(w[i]) * x[i]);
        const float want = scalar_set().of(DType::F32).dot(n, w.data(), x.data());
        const float got = ks.of(DType::F32).dot(n, w.data(), x.data());
        double rel = 0;
        if (!dot_close(want, got, mag, kDotRelTol, &rel)) {
            ok = false;
            detail = fmt("n=%" PRId64 ": want %.9g got %.9g (sum|w*x| %.6g, tol kDotRelTol=%g)", n, want, got, mag, kDotRelTol);
            break;
        }
        if (rel > worst) worst = rel;
    }
    report(ok, fmt("%s %s", isa_name(ks.isa), name.c_str()),
           ok ? fmt("max err %.2e of sum|w*x| (kDotRelTol %g), n=%s", worst, kDotRelTol, lens_str(lens).c_str()) : detail);
}

// f16 / bf16 dots: inputs are generated as floats and converted with the exact scalar conversion;
// `bits` replaces them by random finite bit patterns of the element type.
template <bool kBf16>
void check_dot_half(const KernelSet& ks, DotCase c, bool bits) {
    const char* kernel = kBf16 ? "dot_bf16" : "dot_f16";
    const std::string name = fmt("%s %s", kernel, bits ? "random-bits" : dot_case_name(c));
    bool ok = true;
    double worst = 0;
    std::string detail;
    const auto lens = float_lengths();
    auto to_float = [](uint16_t h) { return kBf16 ? bf16_to_fp32(h) : fp16_to_fp32_slow(h); };
    for (int64_t n : lens) {
        auto r = rng_for(name, n);
        std::vector<float> wf(static_cast<size_t>(n)), xf(static_cast<size_t>(n));
        dot_inputs(c, r, wf.data(), xf.data(), n, kBf16 ? 30 : 6);
        Input<uint16_t> w(n, static_cast<size_t>(n % 2)), x(n, static_cast<size_t>((n + 1) % 2));
        for (int64_t i = 0; i < n; ++i) {
            if (bits) {
                // finite patterns only; bf16 exponents limited so products cannot overflow
                auto pick = [&]() -> uint16_t {
                    for (;;) {
                        const uint16_t h = static_cast<uint16_t>(r());
                        if (kBf16) {
                            const int e = (h >> 7) & 0xff;
                            if (e >= 127 - 60 && e <= 127 + 60) return h;
                            if (e == 0) return h;  // zeros and denormals
                        } else if (((h >> 10) & 0x1f) != 0x1f) {
                            return h;
                        }
                    }
                };
                w[i] = pick();
                x[i] = pick();
            } else {
                w[i] = kBf16 ? fp32_to_bf16(wf[static_cast<size_t>(i)]) : fp32_to_fp16(wf[static_cast<size_t>(i)]);
                x[i] = kBf16 ? fp32_to_bf16(xf[static_cast<size_t>(i)]) : fp32_to_fp16(xf[static_cast<size_t>(i)]);
            }
        }
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(to_float(w[i])) * to_float(x[i]));
        const float want = kBf16 ? scalar_set().of(DType::BF16).dot(n, w.data(), x.data()) : scalar_set().of(DType::F16).dot(n, w.data(), x.data());
        const float got = kBf16 ? ks.of(DType::BF16).dot(n, w.data(), x.data()) : ks.of(DType::F16).dot(n, w.data(), x.data());
        double rel = 0;
        if (!dot_close(want, got, mag, kDotRelTol, &rel)) {
            ok = false;
            detail = fmt("n=%" PRId64 ": want %.9g got %.9g (sum|w*x| %.6g, tol kDotRelTol=%g)", n, want, got, mag, kDotRelTol);
            break;
        }
        if (rel > worst) worst = rel;
    }
    report(ok, fmt("%s %s", isa_name(ks.isa), name.c_str()),
           ok ? fmt("max err %.2e of sum|w*x| (kDotRelTol %g), n=%s", worst, kDotRelTol, lens_str(lens).c_str()) : detail);
}

// ---------------------------------------------------------------------------------------------
// Quantized dots

enum class QCase {
    Random,      // random weights and scales (negative q4_0 scales included), x = quantize(normal)
    ZeroScales,  // as Random, with a third of the weight scales 0
    UnitExact,   // all scales 1.0, small enough sums that float is exact: result must be equal
    Extremes,    // saturating-looking operands (q8: w=-128/127 vs x=+-127; q4: nibbles 0/15 vs x=-128/127), unit scales
};
const char* qcase_name(QCase c) {
    switch (c) {
        case QCase::Random: return "random";
        case QCase::ZeroScales: return "zero-scales";
        case QCase::UnitExact: return "unit-scales-exact";
        case QCase::Extremes: return "extremes-exact";
    }
    return "?";
}

uint16_t random_scale(std::mt19937_64& r, bool allow_negative) {
    float d = static_cast<float>(std::pow(10.0, uniform(r, -4, 0)));
    if (allow_negative && (r() & 1)) d = -d;
    return fp32_to_fp16(d);
}

// Activations: quantized normal floats (what the engine feeds), or raw int8 in [lo, 127].
void make_activations(QCase c, std::mt19937_64& r, block_q8_0* x, int64_t n, int lo) {
    const int64_t nb = n / 32;
    if (c == QCase::Random || c == QCase::ZeroScales) {
        std::vector<float> f(static_cast<size_t>(n));
        gen_normal(r, f.data(), n);
        scalar_set().of(DType::Q8_0).from_f32(f.data(), x, n);
        return;
    }
    for (int64_t b = 0; b < nb; ++b) {
        x[b].d = 0x3c00;  // 1.0
        for (int j = 0; j < 32; ++j) {
            if (c == QCase::Extremes) x[b].qs[j] = static_cast<int8_t>((r() & 1) ? 127 : lo);
            else x[b].qs[j] = static_cast<int8_t>(lo + static_cast<int>(r() % static_cast<uint64_t>(128 - lo)));
        }
    }
}

template <bool kQ4>
void check_dot_quant(const KernelSet& ks, QCase c) {
    const char* kernel = kQ4 ? "dot_q4_0_q8_0" : "dot_q8_0_q8_0";
    const std::string name = fmt("%s %s", kernel, qcase_name(c));
    const bool exact = c == QCase::UnitExact || c == QCase::Extremes;
    bool ok = true;
    double worst = 0;
    std::string detail;
    std::vector<int64_t> lens;
    for (int64_t n : quant_lengths()) {
        // keep |exact sum| < 2^24 so that float accumulation of the block sums is exact
        if (exact && !kQ4 && n > 1024) continue;
        lens.push_back(n);
    }
    for (int64_t n : lens) {
        auto r = rng_for(name, n);
        const int64_t nb = n / 32;
        // q8_0 activations must be in [-127, 127] (quantize output); q4_0 accepts any int8.
        const int lo = kQ4 ? -128 : -127;
        Input<block_q8_0> x(nb, static_cast<size_t>(nb % 2));
        make_activations(c, r, x.data(), n, lo);
        double mag = 0;
        float want = 0, got = 0;
        if (kQ4) {
            Input<block_q4_0> w(nb, static_cast<size_t>((nb + 1) % 2));
            for (int64_t b = 0; b < nb; ++b) {
                w[b].d = exact ? 0x3c00 : random_scale(r, true);
                if (c == QCase::ZeroScales && r() % 3 == 0) w[b].d = (r() & 1) ? 0x0000 : 0x8000;
                for (int j = 0; j < 16; ++j) {
                    w[b].qs[j] = (c == QCase::Extremes) ? static_cast<uint8_t>(((r() & 1) ? 0x0f : 0x00) | ((r() & 1) ? 0xf0 : 0x00))
                                                        : static_cast<uint8_t>(r());
                }
                double s = 0;
                for (int j = 0; j < 16; ++j) {
                    s += std::fabs(static_cast<double>(((w[b].qs[j] & 0x0f) - 8) * x[b].qs[j]));
                    s += std::fabs(static_cast<double>(((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16]));
                }
                mag += s * std::fabs(static_cast<double>(fp16_to_fp32_slow(w[b].d)) * fp16_to_fp32_slow(x[b].d));
            }
            want = scalar_set().of(DType::Q4_0).dot(n, w.data(), x.data());
            got = ks.of(DType::Q4_0).dot(n, w.data(), x.data());
        } else {
            Input<block_q8_0> w(nb, static_cast<size_t>((nb + 1) % 2));
            for (int64_t b = 0; b < nb; ++b) {
                w[b].d = exact ? 0x3c00 : random_scale(r, false);
                if (c == QCase::ZeroScales && r() % 3 == 0) w[b].d = 0x0000;
                for (int j = 0; j < 32; ++j) {
                    w[b].qs[j] = (c == QCase::Extremes) ? static_cast<int8_t>((r() & 1) ? 127 : -128) : static_cast<int8_t>(r());
                }
                double s = 0;
                for (int j = 0; j < 32; ++j) s += std::fabs(static_cast<double>(w[b].qs[j]) * x[b].qs[j]);
                mag += s * std::fabs(static_cast<double>(fp16_to_fp32_slow(w[b].d)) * fp16_to_fp32_slow(x[b].d));
            }
            want = scalar_set().of(DType::Q8_0).dot(n, w.data(), x.data());
            got = ks.of(DType::Q8_0).dot(n, w.data(), x.data());
        }
        double rel = 0;
        const bool good = exact ? (want == got) : dot_close(want, got, mag, kQuantDotRelTol, &rel);
        if (!good) {
            ok = false;
            detail = exact ? fmt("n=%" PRId64 ": want %.9g got %.9g (must be exactly equal)", n, want, got)
                           : fmt("n=%" PRId64 ": want %.9g got %.9g (magnitude %.6g, tol kQuantDotRelTol=%g)", n, want, got, mag,
                                 kQuantDotRelTol);
            break;
        }
        if (rel > worst) worst = rel;
    }
    report(ok, fmt("%s %s", isa_name(ks.isa), name.c_str()),
           ok ? (exact ? fmt("exact, n=%s", lens_str(lens).c_str())
                       : fmt("max err %.2e of magnitude (kQuantDotRelTol %g), n=%s", worst, kQuantDotRelTol, lens_str(lens).c_str()))
              : detail);
}

// ---------------------------------------------------------------------------------------------
// Matrix kernels: every y element of mul_<w>_q8_0 must equal, bit for bit, what the same set's
// dot_<w>_q8_0 returns for that (row, token) pair (the engine's results must not depend on which
// of the two computed them), for every tile shape and tail (rows and tokens that are not
// multiples of a tile, block counts with every remainder mod 4, more tokens than the kernels'
// 64-token chunks), with row strides larger than a
// row and ldy > nr; like the dots, it must also be within tolerance of the scalar reference. The
// ldy gaps of y and the sentinels after y must stay untouched.

// sum over blocks of |d_w * d_x| * sum_j |qw_j * qx_j|: the scale of a quantized dot's rounding.
double quant_mag(const block_q4_0* w, const block_q8_0* x, int64_t nb) {
    double mag = 0;
    for (int64_t b = 0; b < nb; ++b) {
        double s = 0;
        for (int j = 0; j < 16; ++j) {
            s += std::fabs(static_cast<double>(((w[b].qs[j] & 0x0f) - 8) * x[b].qs[j]));
            s += std::fabs(static_cast<double>(((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16]));
        }
        mag += s * std::fabs(static_cast<double>(fp16_to_fp32_slow(w[b].d)) * fp16_to_fp32_slow(x[b].d));
    }
    return mag;
}
double quant_mag(const block_q8_0* w, const block_q8_0* x, int64_t nb) {
    double mag = 0;
    for (int64_t b = 0; b < nb; ++b) {
        double s = 0;
        for (int j = 0; j < 32; ++j) s += std::fabs(static_cast<double>(w[b].qs[j]) * x[b].qs[j]);
        mag += s * std::fabs(static_cast<double>(fp16_to_fp32_slow(w[b].d)) * fp16_to_fp32_slow(x[b].d));
    }
    return mag;
}

// A set's q4_0 or q8_0 kernels, by weight type.
template <bool kQ4>
struct QuantFns;
template <>
struct QuantFns<true> {
    static auto mul(const KernelSet& k) { return k.of(DType::Q4_0).mul; }
    static auto dot(const KernelSet& k) { return k.of(DType::Q4_0).dot; }
};
template <>
struct QuantFns<false> {
    static auto mul(const KernelSet& k) { return k.of(DType::Q8_0).mul; }
    static auto dot(const KernelSet& k) { return k.of(DType::Q8_0).dot; }
};

template <bool kQ4>
void check_mul(const KernelSet& ks, QCase c) {
    using BW = std::conditional_t<kQ4, block_q4_0, block_q8_0>;
    const char* kernel = kQ4 ? "mul_q4_0_q8_0" : "mul_q8_0_q8_0";
    const std::string name = fmt("%s %s", kernel, qcase_name(c));
    const bool exact = c == QCase::Extremes;  // unit scales, exact sums: the reference's value exactly
    const auto mul = QuantFns<kQ4>::mul(ks);
    const auto dot = QuantFns<kQ4>::dot(ks);
    const auto ref = QuantFns<kQ4>::dot(scalar_set());
    bool ok = true;
    std::string detail;
    double worst = 0;
    int64_t pairs = 0, shapes = 0;
    for (int64_t n : {32, 64, 96, 128, 160, 224, 1536, 4096}) {
        if (exact && !kQ4 && n > 1024) continue;  // keep |exact sum| < 2^24 (see check_dot_quant)
        const int64_t nb = n / 32;
        // Random rows, made once per n and copied into each shape's layout.
        constexpr int64_t kMaxRows = 13, kMaxTokens = 67;
        auto r = rng_for(name, n);
        std::vector<BW> wsrc(static_cast<size_t>(kMaxRows * nb));
        std::vector<block_q8_0> xsrc(static_cast<size_t>(kMaxTokens * nb));
        for (BW& blk : wsrc) {
            blk.d = exact ? 0x3c00 : random_scale(r, kQ4);
            if (!exact && r() % 5 == 0) blk.d = 0x0000;
            for (auto& q : blk.qs) {
                if constexpr (kQ4) q = static_cast<uint8_t>(exact ? (((r() & 1) ? 0x0f : 0x00) | ((r() & 1) ? 0xf0 : 0x00)) : r());
                else q = static_cast<int8_t>(exact ? ((r() & 1) ? 127 : -128) : static_cast<int>(r() & 0xff) - 128);
            }
        }
        for (int64_t t = 0; t < kMaxTokens; ++t) make_activations(c, r, xsrc.data() + t * nb, n, kQ4 ? -128 : -127);
        for (int64_t nr : std::initializer_list<int64_t>{1, 2, 3, 4, 5, 7, 8, kMaxRows}) {
            for (int64_t nt : std::initializer_list<int64_t>{1, 2, 3, 4, 5, 9, kMaxTokens}) {
                if (nt > 64 && n > 160) continue;  // more tokens than one chunk (64): small rows only
                for (int variant = 0; variant < 4 && ok; ++variant) {
                    // padded strides; sparse: only a shuffled subset of the rows (the ReGLU path)
                    const bool padded = variant & 1, sparse = variant & 2;
                    std::vector<int32_t> list;
                    std::vector<bool> listed(static_cast<size_t>(nr), !sparse);
                    if (sparse) {
                        for (int64_t i = 0; i < nr; ++i)
                            if (r() % 2 == 0 || (i == nr - 1 && list.empty())) list.push_back(static_cast<int32_t>(i));
                        std::shuffle(list.begin(), list.end(), r);
                        for (int32_t i : list) listed[static_cast<size_t>(i)] = true;
                    }
                    // Row strides: tight, or padded by a few (even: blocks hold a uint16) bytes.
                    const size_t wrow = static_cast<size_t>(nb) * sizeof(BW), xrow = static_cast<size_t>(nb) * sizeof(block_q8_0);
                    const size_t wrb = wrow + (padded ? 2 * static_cast<size_t>(1 + nr % 3) : 0);
                    const size_t xrb = xrow + (padded ? sizeof(block_q8_0) + 4 : 0);
                    const int64_t ldy = nr + (padded ? 3 : 0);
                    // Exact-size buffers (the last row ends the allocation), 2 bytes off alignment;
                    // padding bytes hold a pattern.
                    Input<uint16_t> wbuf(static_cast<int64_t>(((static_cast<size_t>(nr) - 1) * wrb + wrow) / 2), 1);
                    Input<uint16_t> xbuf(static_cast<int64_t>(((static_cast<size_t>(nt) - 1) * xrb + xrow) / 2), 1);
                    for (auto& v : wbuf.buf) v = 0x5a5a;
                    for (auto& v : xbuf.buf) v = 0x5a5a;
                    auto wrow_at = [&](int64_t i) { return reinterpret_cast<BW*>(reinterpret_cast<uint8_t*>(wbuf.data()) + static_cast<size_t>(i) * wrb); };
                    auto xrow_at = [&](int64_t i) {
                        return reinterpret_cast<block_q8_0*>(reinterpret_cast<uint8_t*>(xbuf.data()) + static_cast<size_t>(i) * xrb);
                    };
                    for (int64_t i = 0; i < nr; ++i) std::memcpy(static_cast<void*>(wrow_at(i)), wsrc.data() + i * nb, wrow);
                    for (int64_t t = 0; t < nt; ++t) std::memcpy(static_cast<void*>(xrow_at(t)), xsrc.data() + t * nb, xrow);

                    Output<float> y(nt * ldy);
                    if (sparse) mul(n, wrow_at(0), wrb, list.data(), static_cast<int64_t>(list.size()), xrow_at(0), xrb, nt, y.data(), ldy);
                    else mul(n, wrow_at(0), wrb, nullptr, nr, xrow_at(0), xrb, nt, y.data(), ldy);
                    ++shapes;
                    for (int64_t t = 0; t < nt && ok; ++t) {
                        for (int64_t i = 0; i < ldy && ok; ++i) {
                            const uint8_t* cell = y.bytes.data() + static_cast<size_t>(t * ldy + i) * sizeof(float);
                            auto at = [&] {
                                return fmt("n=%" PRId64 " nr=%" PRId64 " nt=%" PRId64 " %s%s: y[t=%" PRId64 "][r=%" PRId64 "]", n, nr, nt,
                                           padded ? "padded" : "tight", sparse ? " sparse" : "", t, i);
                            };
                            if (i >= nr || !listed[static_cast<size_t>(i)]) {  // ldy gap, or a row not asked for
                                for (size_t k = 0; k < sizeof(float); ++k) {
                                    if (cell[k] != kSentinel) {
                                        ok = false;
                                        detail = at() + (i >= nr ? " (past nr) was written" : " (not in the row list) was written");
                                    }
                                }
                                continue;
                            }
                            float got;
                            std::memcpy(&got, cell, sizeof got);
                            const float own = dot(n, wrow_at(i), xrow_at(t));
                            ++pairs;
                            if (std::memcmp(&got, &own, sizeof got) != 0) {
                                ok = false;
                                detail = fmt("%s = %.9g, %s's dot gives %.9g (must be bit-identical)", at().c_str(), got, isa_name(ks.isa), own);
                                break;
                            }
                            // The dots themselves are checked against the reference above; here a
                            // sample of the pairs on long rows is enough (keeps the ASan run short).
                            if (&ks == &scalar_set() || (n > 256 && (i + t) % 5 != 0)) continue;
                            const float want = ref(n, wrow_at(i), xrow_at(t));
                            double rel = 0;
                            const double mag = quant_mag(wrow_at(i), xrow_at(t), nb);
                            if (exact ? got != want : !dot_close(want, got, mag, kQuantDotRelTol, &rel)) {
                                ok = false;
                                detail = fmt("%s = %.9g, scalar reference %.9g (magnitude %.6g, tol kQuantDotRelTol=%g)", at().c_str(), got, want,
                                             mag, kQuantDotRelTol);
                                break;
                            }
                            if (rel > worst) worst = rel;
                        }
                    }
                    if (ok && !y.guard_intact()) {
                        ok = false;
                        detail = fmt("n=%" PRId64 " nr=%" PRId64 " nt=%" PRId64 ": sentinel after y overwritten", n, nr, nt);
                    }
                }
            }
        }
    }
    report(ok, fmt("%s %s", isa_name(ks.isa), name.c_str()),
           ok ? fmt("%" PRId64 " pairs in %" PRId64 " shapes bit-identical to %s's dot; max err vs scalar %.2e of magnitude, ldy gaps "
                    "and sentinels intact",
                    pairs, shapes, isa_name(ks.isa), worst)
              : detail);
}

// Repacked Q4_0 (repack_q4_0x16 + mul_q4_0x16_q8_0): every set must return the scalar reference
// dot's bits for every (row, token) of the original rows; only the nt x 16*ngroups block of y is
// written. The relayout itself round-trips (unpack_q4_0x16).
void check_mul_x16(const KernelSet& ks, QCase c) {
    bool ok = true;
    std::string detail;
    int64_t pairs = 0, shapes = 0;
    for (int64_t nb : {1, 2, 3, 5, 24, 48, 64}) {
        const int64_t n = nb * 32;
        for (int64_t ngroups : {1, 2, 3}) {
            auto r = rng_for(fmt("mul_x16 %s %" PRId64, qcase_name(c), ngroups), n);
            const int64_t nr = 16 * ngroups;
            constexpr int64_t kMaxTokens = 67;
            std::vector<block_q4_0> w(static_cast<size_t>(nr * nb));
            for (block_q4_0& blk : w) {
                blk.d = c == QCase::Extremes ? 0x3c00 : random_scale(r, true);
                if (c != QCase::Extremes && r() % 7 == 0) blk.d = 0;
                for (auto& q : blk.qs) q = static_cast<uint8_t>(c == QCase::Extremes ? (((r() & 1) ? 0x0f : 0x00) | ((r() & 1) ? 0xf0 : 0x00)) : r());
            }
            const size_t xrb = static_cast<size_t>(nb) * sizeof(block_q8_0) + 6;  // padded rows
            std::vector<uint8_t> xbuf(xrb * kMaxTokens);
            for (int64_t t = 0; t < kMaxTokens; ++t) {
                std::vector<block_q8_0> row(static_cast<size_t>(nb));
                make_activations(c, r, row.data(), n, -128);
                std::memcpy(xbuf.data() + static_cast<size_t>(t) * xrb, row.data(), row.size() * sizeof(block_q8_0));
            }
            auto xrow = [&](int64_t t) { return reinterpret_cast<const block_q8_0*>(xbuf.data() + static_cast<size_t>(t) * xrb); };
            std::vector<uint8_t> packed(reinterpret_cast<uint8_t*>(w.data()), reinterpret_cast<uint8_t*>(w.data()) + w.size() * sizeof(block_q4_0));
            const size_t group_bytes = 16 * static_cast<size_t>(nb) * sizeof(block_q4_0);
            for (int64_t g = 0; g < ngroups; ++g) repack_q4_0x16(packed.data() + static_cast<size_t>(g) * group_bytes, nb);
            if (&ks == &scalar_set()) {
                std::vector<uint8_t> back = packed;
                for (int64_t g = 0; g < ngroups; ++g) unpack_q4_0x16(back.data() + static_cast<size_t>(g) * group_bytes, nb);
                if (std::memcmp(back.data(), w.data(), back.size()) != 0) ok = false, detail = fmt("nb=%" PRId64 ": unpack(repack(w)) != w", nb);
            }
            for (int64_t nt : std::initializer_list<int64_t>{1, 2, 3, 4, 5, 9, kMaxTokens}) {
                if (!ok) break;
                const int64_t ldy = nr + 5;
                Output<float> y(nt * ldy);
                ks.of(DType::Q4_0).mul_x16(n, packed.data(), group_bytes, ngroups, xrow(0), xrb, nt, y.data(), ldy);
                ++shapes;
                for (int64_t t = 0; t < nt && ok; ++t)
                    for (int64_t i = 0; i < ldy && ok; ++i) {
                        const uint8_t* cell = y.bytes.data() + static_cast<size_t>(t * ldy + i) * sizeof(float);
                        if (i >= nr) {
                            for (size_t k = 0; k < sizeof(float); ++k)
                                if (cell[k] != kSentinel) ok = false, detail = fmt("nb=%" PRId64 " nt=%" PRId64 ": y[%" PRId64 "][%" PRId64 "] past the rows was written", nb, nt, t, i);
                            continue;
                        }
                        float got;
                        std::memcpy(&got, cell, sizeof got);
                        const float want = scalar_set().of(DType::Q4_0).dot(n, w.data() + i * nb, xrow(t));
                        ++pairs;
                        if (std::memcmp(&got, &want, sizeof got) != 0)
                            ok = false, detail = fmt("nb=%" PRId64 " groups=%" PRId64 " nt=%" PRId64 " y[%" PRId64 "][%" PRId64 "] = %.9g, reference dot %.9g (must be bit-identical)", nb, ngroups, nt, t, i, got, want);
                    }
                if (ok && !y.guard_intact()) ok = false, detail = fmt("nb=%" PRId64 " nt=%" PRId64 ": sentinel after y overwritten", nb, nt);
            }
        }
    }
    report(ok, fmt("%s mul_q4_0x16_q8_0 %s", isa_name(ks.isa), qcase_name(c)),
           ok ? fmt("%" PRId64 " pairs in %" PRId64 " shapes bit-identical to the scalar reference dot", pairs, shapes) : detail);
}

void check_mul_set(const KernelSet& ks) {
    const bool complete = ks.of(DType::Q4_0).mul && ks.of(DType::Q8_0).mul;
    report(complete, fmt("%s matrix kernels present", isa_name(ks.isa)), complete ? "" : "a mul_* pointer is null");
    if (!complete) return;
    for (QCase c : {QCase::Random, QCase::Extremes}) {
        if (c != QCase::Random && &ks == &scalar_set()) continue;  // the reference: strides, ldy and tails once
        check_mul<true>(ks, c);
        check_mul<false>(ks, c);
    }
    for (QCase c : {QCase::Random, QCase::Extremes}) check_mul_x16(ks, c);
}

// ---------------------------------------------------------------------------------------------

// axpy_f16 multiplies then adds like the reference, so every set must give its exact bits
// (random fp16 patterns include infinities and NaNs; NaN payloads only need to stay NaN).
void check_axpy_f16(const KernelSet& ks) {
    bool ok = true;
    std::string detail;
    for (int64_t n : float_lengths()) {
        for (int round = 0; round < 3 && ok; ++round) {
            auto r = rng_for(fmt("axpy_f16 %d", round), n);
            std::vector<uint16_t> x(static_cast<size_t>(n));
            std::vector<float> y0(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) {
                x[static_cast<size_t>(i)] = round == 2 ? static_cast<uint16_t>(r()) : fp32_to_fp16(static_cast<float>(static_cast<int64_t>(r() % 20001) - 10000) / 1000.0f);
                y0[static_cast<size_t>(i)] = static_cast<float>(static_cast<int64_t>(r() % 20001) - 10000) / 777.0f;
            }
            const float a = round == 1 ? 0.0f : static_cast<float>(r() % 1000) / 997.0f;
            std::vector<float> want = y0, got = y0;
            scalar_set().axpy_f16(n, a, x.data(), want.data());
            ks.axpy_f16(n, a, x.data(), got.data());
            for (int64_t i = 0; i < n && ok; ++i) {
                const float w = want[static_cast<size_t>(i)], g = got[static_cast<size_t>(i)];
                const bool same = (std::isnan(w) && std::isnan(g)) || std::memcmp(&w, &g, sizeof w) == 0;
                if (!same) {
                    ok = false;
                    detail = fmt("n=%" PRId64 " i=%" PRId64 ": want %.9g got %.9g", n, i, w, g);
                }
            }
        }
    }
    report(ok, fmt("%s axpy_f16 bit-exact", isa_name(ks.isa)), detail);
}

// ---------------------------------------------------------------------------------------------
// Attention kernels: float sums in another order than the reference (which sums in double), so
// compared within a tolerance relative to the sum of |terms|; writes outside the nq x nk (or
// nq x d) block must not happen (rows are padded and the padding checked).

constexpr double kAttnRelTol = 2e-6;

uint16_t random_half(std::mt19937_64& r, double scale) { return fp32_to_fp16(static_cast<float>(normal(r) * scale)); }

void check_attn_scores(const KernelSet& ks) {
    bool ok = true;
    std::string detail;
    int cases = 0;
    for (int64_t d : {1, 7, 8, 15, 16, 17, 40, 64, 80, 128, 129, 256}) {
        for (int64_t nq : {1, 2, 3, 4, 5, 8, 17}) {
            for (int64_t nk : {1, 3, 4, 5, 64, 67, 130}) {
                if (!ok) break;
                auto r = rng_for(fmt("attn_scores %" PRId64 " %" PRId64, d, nq), nk);
                const int64_t ldq = d + 3, ldk = d + 5, lds = nk + 2;
                std::vector<float> q(static_cast<size_t>(nq * ldq));
                std::vector<uint16_t> k(static_cast<size_t>(nk * ldk));
                for (float& v : q) v = fp16_to_fp32(random_half(r, 2.0));
                for (uint16_t& v : k) v = random_half(r, 2.0);
                const float scale = 0.0883883476f;
                std::vector<float> want(static_cast<size_t>(nq * lds), -7.0f), got = want;
                scalar_set().attn_scores_f16(d, nq, q.data(), ldq, nk, k.data(), ldk, scale, want.data(), lds);
                ks.attn_scores_f16(d, nq, q.data(), ldq, nk, k.data(), ldk, scale, got.data(), lds);
                ++cases;
                for (int64_t i = 0; i < nq && ok; ++i)
                    for (int64_t j = 0; j < lds && ok; ++j) {
                        const float w = want[static_cast<size_t>(i * lds + j)], g = got[static_cast<size_t>(i * lds + j)];
                        if (j >= nk) {
                            if (g != -7.0f) ok = false, detail = fmt("d=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 ": wrote padding at (%" PRId64 ",%" PRId64 ")", d, nq, nk, i, j);
                            continue;
                        }
                        double mag = 0.0;
                        for (int64_t c = 0; c < d; ++c) mag += std::fabs(static_cast<double>(q[static_cast<size_t>(i * ldq + c)]) * fp16_to_fp32(k[static_cast<size_t>(j * ldk + c)]));
                        mag *= scale;
                        if (!(std::fabs(static_cast<double>(g) - w) <= kAttnRelTol * mag + 1e-30))
                            ok = false, detail = fmt("d=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 " (%" PRId64 ",%" PRId64 "): want %.9g got %.9g", d, nq, nk, i, j, w, g);
                    }
            }
        }
    }
    report(ok, fmt("%s attn_scores_f16 (%d shapes)", isa_name(ks.isa), cases), detail);
}

void check_attn_pv(const KernelSet& ks) {
    bool ok = true;
    std::string detail;
    int cases = 0;
    for (int64_t d : {1, 7, 8, 15, 16, 17, 40, 64, 80, 128, 129, 256}) {
        for (int64_t nq : {1, 2, 3, 4, 5, 9}) {
            for (int64_t nk : {1, 2, 5, 64, 257, 600}) {
                if (!ok) break;
                auto r = rng_for(fmt("attn_pv %" PRId64 " %" PRId64, d, nq), nk);
                const int64_t ldp = nk + 3, ldv = d + 5, ldo = d + 2;
                std::vector<float> p(static_cast<size_t>(nq * ldp));
                std::vector<uint16_t> v(static_cast<size_t>(nk * ldv));
                for (float& x : p) x = static_cast<float>(uniform(r, 0.0, 1.0) * uniform(r, 0.0, 1.0));
                for (uint16_t& x : v) x = random_half(r, 3.0);
                std::vector<float> o0(static_cast<size_t>(nq * ldo));
                for (float& x : o0) x = normal(r);
                std::vector<float> want = o0, got = o0;
                scalar_set().attn_pv_f16(d, nq, p.data(), ldp, nk, v.data(), ldv, want.data(), ldo);
                ks.attn_pv_f16(d, nq, p.data(), ldp, nk, v.data(), ldv, got.data(), ldo);
                ++cases;
                for (int64_t i = 0; i < nq && ok; ++i)
                    for (int64_t c = 0; c < ldo && ok; ++c) {
                        const size_t at = static_cast<size_t>(i * ldo + c);
                        if (c >= d) {
                            if (std::memcmp(&got[at], &o0[at], sizeof(float)) != 0) ok = false, detail = fmt("d=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 ": wrote padding at (%" PRId64 ",%" PRId64 ")", d, nq, nk, i, c);
                            continue;
                        }
                        double mag = std::fabs(o0[at]);
                        for (int64_t j = 0; j < nk; ++j) mag += std::fabs(static_cast<double>(p[static_cast<size_t>(i * ldp + j)]) * fp16_to_fp32(v[static_cast<size_t>(j * ldv + c)]));
                        if (!(std::fabs(static_cast<double>(got[at]) - want[at]) <= kAttnRelTol * mag + 1e-30))
                            ok = false, detail = fmt("d=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 " (%" PRId64 ",%" PRId64 "): want %.9g got %.9g", d, nq, nk, i, c, want[at], got[at]);
                    }
            }
        }
    }
    report(ok, fmt("%s attn_pv_f16 (%d shapes)", isa_name(ks.isa), cases), detail);
}

// Probabilities rounded to fp16: the SIMD expf may differ from std::exp by a few float ulp, which
// can move a value across an fp16 rounding boundary, so allow one fp16 step (2^-10 relative, or
// the smallest fp16 subnormal near 0); the sum must stay within 1e-3 of 1.
void check_softmax(const KernelSet& ks) {
    bool ok = true;
    std::string detail;
    int cases = 0;
    std::vector<int64_t> lens;
    for (int64_t n = 1; n <= 40; ++n) lens.push_back(n);
    for (int64_t n : {63, 64, 65, 255, 1000, 4097}) lens.push_back(n);
    for (int64_t n : lens) {
        for (int kind = 0; kind < 4 && ok; ++kind) {
            auto r = rng_for(fmt("softmax %d", kind), n);
            std::vector<float> x(static_cast<size_t>(n));
            for (float& v : x) {
                switch (kind) {
                    case 0: v = normal(r); break;               // typical scores
                    case 1: v = normal(r) * 30.0f; break;       // peaked: many underflow to 0
                    case 2: v = static_cast<float>(r() % 3); break;  // ties
                    default: v = r() % 4 == 0 ? -INFINITY : normal(r) * 5.0f; break;  // masked entries
                }
            }
            if (kind == 3) x[static_cast<size_t>(n / 2)] = 1.0f;  // at least one finite score
            std::vector<float> want = x, got = x;
            scalar_set().softmax_f16r(n, want.data());
            ks.softmax_f16r(n, got.data());
            ++cases;
            double sum = 0.0;
            for (int64_t j = 0; j < n && ok; ++j) {
                const float w = want[static_cast<size_t>(j)], g = got[static_cast<size_t>(j)];
                sum += g;
                const bool exact16 = fp16_to_fp32(fp32_to_fp16(g)) == g;
                if (!exact16 || !(std::fabs(static_cast<double>(g) - w) <= std::max(std::fabs(static_cast<double>(w)) / 1024.0, 6e-8)))
                    ok = false, detail = fmt("n=%" PRId64 " kind %d [%" PRId64 "]: want %.9g got %.9g", n, kind, j, w, g);
            }
            if (ok && std::fabs(sum - 1.0) > 1e-3 + 1e-3 * static_cast<double>(n) / 1024.0)
                ok = false, detail = fmt("n=%" PRId64 " kind %d: probabilities sum to %.6f", n, kind, sum);
        }
    }
    report(ok, fmt("%s softmax_f16r (%d rows)", isa_name(ks.isa), cases), detail);
}

void check_set(const KernelSet& ks) {
    // Every type the engine computes with has its row: a dot, the conversion to its activation
    // type, and the relayout kernel when the type has a relayout. Then the shared kernels.
    bool complete = ks.axpy_f16 && ks.attn_scores_f16 && ks.attn_pv_f16 && ks.softmax_f16r;
    for (uint32_t t = 0; t < kTypeCount; ++t) {
        const TypeTraits tr = type_traits(t);
        if (!tr.supported) continue;
        const TypeKernels& k = ks.of(static_cast<DType>(t));
        const bool row_ok = k.dot && (tr.act_type == DType::F32 || ks.of(tr.act_type).from_f32) &&
                            (k.relayout16 != nullptr) == (k.mul_x16 != nullptr) &&
                            (scalar_set().of(static_cast<DType>(t)).relayout16 != nullptr) == (k.relayout16 != nullptr);
        if (!row_ok) std::printf("  %s: the row of %s is incomplete\n", isa_name(ks.isa), tr.name);
        complete = complete && row_ok;
    }
    report(complete, fmt("%s table complete", isa_name(ks.isa)), complete ? "" : "a kernel pointer is null");
    if (!complete) return;

    auto fp16 = [](const KernelSet& k) { return k.of(DType::F16).from_f32; };
    auto bf16 = [](const KernelSet& k) { return k.of(DType::BF16).from_f32; };
    check_conversion(ks, "fp32_to_fp16_row", "normal", gen_normal, fp16);
    check_conversion(ks, "fp32_to_fp16_row", "wide-range", gen_wide, fp16);
    check_conversion(ks, "fp32_to_fp16_row", "random-bits", gen_bits, fp16);
    check_conversion(ks, "fp32_to_fp16_row", "specials", gen_specials, fp16);
    check_conversion(ks, "fp32_to_fp16_row", "ties", gen_fp16_ties, fp16);
    check_conversion(ks, "fp32_to_bf16_row", "normal", gen_normal, bf16);
    check_conversion(ks, "fp32_to_bf16_row", "random-bits", gen_bits, bf16);
    check_conversion(ks, "fp32_to_bf16_row", "specials", gen_specials, bf16);
    check_conversion(ks, "fp32_to_bf16_row", "ties", gen_bf16_ties, bf16);

    check_axpy_f16(ks);
    check_attn_scores(ks);
    check_attn_pv(ks);
    check_softmax(ks);
    check_quantize(ks, "normal", qgen_normal);
    check_quantize(ks, "block-scales", qgen_block_scales);
    check_quantize(ks, "edge-blocks", qgen_edges);
    check_quantize(ks, "near-ties", qgen_near_ties);

    for (DotCase c : {DotCase::Normal, DotCase::Wide, DotCase::Cancel, DotCase::Zeros, DotCase::Inf, DotCase::NaN}) check_dot_f32(ks, c);
    for (DotCase c : {DotCase::Normal, DotCase::Wide, DotCase::Cancel, DotCase::Zeros, DotCase::Inf, DotCase::NaN})
        check_dot_half<false>(ks, c, false);
    check_dot_half<false>(ks, DotCase::Normal, true);
    for (DotCase c : {DotCase::Normal, DotCase::Wide, DotCase::Cancel, DotCase::Zeros, DotCase::Inf, DotCase::NaN})
        check_dot_half<true>(ks, c, false);
    check_dot_half<true>(ks, DotCase::Normal, true);

    for (QCase c : {QCase::Random, QCase::ZeroScales, QCase::UnitExact, QCase::Extremes}) {
        check_dot_quant<false>(ks, c);
        check_dot_quant<true>(ks, c);
    }
    check_mul_set(ks);
}

bool under_valgrind() {
    const char* v = std::getenv("MOE_UNDER_VALGRIND");
    return v && std::strcmp(v, "1") == 0;
}

bool is_avx512(Isa isa) { return isa == Isa::Avx512 || isa == Isa::Avx512Vnni; }

// Sets to test / bench: compiled in, supported by the CPU, and (under valgrind) not AVX-512.
std::vector<Isa> usable_isas(bool print) {
    std::vector<Isa> v;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        const bool compiled = compiled_set(isa) != nullptr;
        const bool cpu = cpu_supports(isa);
        if (compiled && cpu && is_avx512(isa) && under_valgrind()) {
            if (print) std::printf("SKIP %s: MOE_UNDER_VALGRIND=1 (valgrind cannot run AVX-512)\n", isa_name(isa));
            continue;
        }
        if (!compiled || !cpu) {
            if (print)
                std::printf("SKIP %s: %s\n", isa_name(isa),
                            !compiled ? "not compiled into this build"
                                      : (under_valgrind() ? "not supported by this CPU as valgrind reports it" : "not supported by this CPU"));
            continue;
        }
        v.push_back(isa);
    }
    return v;
}

// Runs this binary again with MOE_FORCE_ISA set; the child prints active()'s name and which
// sets it can use (its own view: under valgrind the CPU features differ from a native run).
struct ChildView {
    std::string active;
    unsigned usable = 0;  // bit i: compiled_set(i) && cpu_supports(i)
};
ChildView child_active(const char* forced) {
    ChildView v;
    char self[4096];
    const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        v.active = "<no /proc/self/exe>";
        return v;
    }
    self[len] = 0;
    std::string cmd = forced ? fmt("MOE_FORCE_ISA='%s' ", forced) : std::string("env -u MOE_FORCE_ISA ");
    cmd += fmt("'%s' --print-active 2>/dev/null", self);
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) {
        v.active = "<popen failed>";
        return v;
    }
    char name[64] = {0};
    if (std::fscanf(p, "%63s %u", name, &v.usable) != 2) std::snprintf(name, sizeof name, "<no output>");
    pclose(p);
    v.active = name;
    return v;
}

unsigned usable_mask() {
    unsigned m = 0;
    for (int i = 0; i < kIsaCount; ++i)
        if (compiled_set(static_cast<Isa>(i)) && cpu_supports(static_cast<Isa>(i))) m |= 1u << i;
    return m;
}

std::string best_in(unsigned mask) {
    for (int i = kIsaCount - 1; i >= 0; --i)
        if (mask & (1u << i)) return isa_name(static_cast<Isa>(i));
    return isa_name(Isa::Scalar);
}

void check_dispatch() {
    // isa_name / parse_isa round trip and rejects
    bool ok = true;
    std::string detail;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        Isa got = Isa::Scalar;
        if (!parse_isa(isa_name(isa), &got) || got != isa) {
            ok = false;
            detail = fmt("parse_isa(\"%s\") failed", isa_name(isa));
        }
    }
    for (const char* bad : {"", "AVX2", "avx", "avx512v", "avx512vnnix", "sse4", " avx2", "avx2 "}) {
        Isa got = Isa::Avx2;
        if (parse_isa(bad, &got)) {
            ok = false;
            detail = fmt("parse_isa(\"%s\") accepted", bad);
        }
    }
    report(ok, "dispatch parse_isa", ok ? "scalar|avx2|avx512|avx512vnni round-trip, bad names rejected" : detail);

    // compiled sets report their own isa
    ok = true;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        const KernelSet* ks = compiled_set(isa);
        if (ks && ks->isa != isa) {
            ok = false;
            detail = fmt("compiled_set(%s)->isa is %s", isa_name(isa), isa_name(ks->isa));
        }
    }
    report(ok, "dispatch compiled_set isa fields", ok ? "" : detail);

    // set_active / active()
    const Isa before = active().isa;
    ok = true;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        const bool can = compiled_set(isa) && cpu_supports(isa);
        const Isa prev = active().isa;
        const bool r = set_active(isa);
        if (r != can) {
            ok = false;
            detail = fmt("set_active(%s) returned %d, expected %d", isa_name(isa), r, can);
        } else if (r && (active().isa != isa || &active() != compiled_set(isa))) {
            ok = false;
            detail = fmt("after set_active(%s) active() is %s", isa_name(isa), isa_name(active().isa));
        } else if (!r && active().isa != prev) {
            ok = false;
            detail = fmt("failed set_active(%s) changed active() to %s", isa_name(isa), isa_name(active().isa));
        }
    }
    set_active(before);
    report(ok && active().isa == before, "dispatch set_active/active", ok ? fmt("restored to %s", isa_name(before)) : detail);

    // MOE_FORCE_ISA in a fresh process (active() is chosen once per process): a valid name the
    // child can use wins; anything else falls back to the best set it can use.
    ok = true;
    std::string seen;
    std::vector<const char*> forced = {nullptr, "", "bogus", "AVX2"};
    for (int i = 0; i < kIsaCount; ++i) forced.push_back(isa_name(static_cast<Isa>(i)));
    for (const char* f : forced) {
        const ChildView v = child_active(f);
        Isa isa;
        const bool valid = f && parse_isa(f, &isa);
        const std::string expect = (valid && (v.usable & (1u << static_cast<int>(isa)))) ? std::string(f) : best_in(v.usable);
        seen += fmt("%s%s->%s", seen.empty() ? "" : " ", f ? (*f ? f : "''") : "(unset)", v.active.c_str());
        if (v.active != expect) {
            ok = false;
            detail = fmt("MOE_FORCE_ISA=%s: active() is %s, expected %s", f ? f : "(unset)", v.active.c_str(), expect.c_str());
        }
    }
    report(ok, "dispatch MOE_FORCE_ISA", ok ? seen : detail);
}

// ---------------------------------------------------------------------------------------------
// Benchmark

volatile float g_sink;

template <typename F>
double best_seconds(F&& f, double budget_s) {
    using clock = std::chrono::steady_clock;
    double best = 1e30;
    const auto start = clock::now();
    int reps = 0;
    do {
        const auto t0 = clock::now();
        f();
        const double dt = std::chrono::duration<double>(clock::now() - t0).count();
        if (dt < best) best = dt;
        ++reps;
    } while (reps < 3 || std::chrono::duration<double>(clock::now() - start).count() < budget_s);
    return best;
}

int run_bench() {
#if defined(__SANITIZE_ADDRESS__)
    std::printf("warning: built with AddressSanitizer; build with test/native/build_kernels_test.sh --release for real numbers\n");
#endif
    const std::vector<Isa> isas = usable_isas(true);
    std::mt19937_64 r(g_seed);
    std::printf("bench: single thread, best of repeated passes; GB/s = weight bytes / time\n");

    struct Shape {
        const char* label;
        int64_t rows, n;
    };
    const Shape shapes[] = {{"1536x768 (cache-resident)", 1536, 768}, {"1536x768 x 192 (~127 MB q4_0, from DRAM)", 1536 * 192, 768}};
    for (const Shape& s : shapes) {
        const int64_t nb = s.n / 32;
        std::vector<block_q4_0> w4(static_cast<size_t>(s.rows * nb));
        for (auto& b : w4) {
            b.d = random_scale(r, true);
            for (auto& q : b.qs) q = static_cast<uint8_t>(r());
        }
        std::vector<float> xf(static_cast<size_t>(s.n));
        gen_normal(r, xf.data(), s.n);
        std::vector<block_q8_0> xq(static_cast<size_t>(nb));
        scalar_set().of(DType::Q8_0).from_f32(xf.data(), xq.data(), s.n);
        const double bytes = static_cast<double>(w4.size() * sizeof(block_q4_0));
        for (Isa isa : isas) {
            const KernelSet& ks = *compiled_set(isa);
            const double t = best_seconds(
                [&] {
                    float acc = 0;
                    for (int64_t row = 0; row < s.rows; ++row) acc += ks.of(DType::Q4_0).dot(s.n, w4.data() + row * nb, xq.data());
                    g_sink = acc;
                },
                s.rows > 10000 ? 2.0 : 0.5);
            std::printf("bench dot_q4_0_q8_0 %-11s %s: %7.2f GB/s  (%.1f us per pass, %.1f ns/row)\n", isa_name(isa), s.label,
                        bytes / t / 1e9, t * 1e6, t * 1e9 / static_cast<double>(s.rows));
        }
    }

    // The other dots on the cache-resident shape, for reference.
    const int64_t rows = 1536, n = 768, nb = n / 32;
    std::vector<float> wf(static_cast<size_t>(rows * n)), xf(static_cast<size_t>(n));
    gen_normal(r, wf.data(), rows * n);
    gen_normal(r, xf.data(), n);
    std::vector<uint16_t> wh(wf.size()), wb(wf.size()), xh(xf.size()), xb(xf.size());
    scalar_set().of(DType::F16).from_f32(wf.data(), wh.data(), rows * n);
    scalar_set().of(DType::BF16).from_f32(wf.data(), wb.data(), rows * n);
    scalar_set().of(DType::F16).from_f32(xf.data(), xh.data(), n);
    scalar_set().of(DType::BF16).from_f32(xf.data(), xb.data(), n);
    std::vector<block_q8_0> w8(static_cast<size_t>(rows * nb)), x8(static_cast<size_t>(nb));
    scalar_set().of(DType::Q8_0).from_f32(wf.data(), w8.data(), rows * n);
    scalar_set().of(DType::Q8_0).from_f32(xf.data(), x8.data(), n);
    for (Isa isa : isas) {
        const KernelSet& ks = *compiled_set(isa);
        auto run = [&](const char* what, double bytes, auto&& one_row) {
            const double t = best_seconds(
                [&] {
                    float acc = 0;
                    for (int64_t row = 0; row < rows; ++row) acc += one_row(row);
                    g_sink = acc;
                },
                0.3);
            std::printf("bench %-14s %-11s 1536x768: %7.2f GB/s\n", what, isa_name(isa), bytes / t / 1e9);
        };
        run("dot_q8_0_q8_0", static_cast<double>(w8.size() * sizeof(block_q8_0)),
            [&](int64_t row) { return ks.of(DType::Q8_0).dot(n, w8.data() + row * nb, x8.data()); });
        run("dot_f16", static_cast<double>(wh.size() * 2), [&](int64_t row) { return ks.of(DType::F16).dot(n, wh.data() + row * n, xh.data()); });
        run("dot_bf16", static_cast<double>(wb.size() * 2), [&](int64_t row) { return ks.of(DType::BF16).dot(n, wb.data() + row * n, xb.data()); });
        run("dot_f32", static_cast<double>(wf.size() * 4), [&](int64_t row) { return ks.of(DType::F32).dot(n, wf.data() + row * n, xf.data()); });
        std::vector<block_q8_0> q(static_cast<size_t>(nb));
        const double t = best_seconds([&] { ks.of(DType::Q8_0).from_f32(xf.data(), q.data(), n); }, 0.1);
        std::printf("bench %-14s %-11s n=768: %.0f ns\n", "quantize_q8_0", isa_name(isa), t * 1e9);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    bool bench = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--print-active") == 0) {  // used by the MOE_FORCE_ISA check
            std::printf("%s %u\n", isa_name(active().isa), usable_mask());
            return 0;
        } else if (std::strcmp(argv[i], "--bench") == 0) {
            bench = true;
        } else if (std::strncmp(argv[i], "--seed=", 7) == 0) {
            g_seed = std::strtoull(argv[i] + 7, nullptr, 0);
        } else {
            std::fprintf(stderr, "usage: %s [--seed=N] [--bench]\n", argv[0]);
            return 2;
        }
    }
    std::printf("seed %" PRIu64 "\n", g_seed);
    if (bench) return run_bench();

    for (Isa isa : usable_isas(true)) {
        if (isa == Isa::Scalar) {  // the reference itself: only its matrix kernels (strides, ldy, tails)
            check_mul_set(scalar_set());
            continue;
        }
        check_set(*compiled_set(isa));
    }
    check_dispatch();
    std::printf("kernels: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

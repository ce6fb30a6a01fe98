// Kernel tests, bit-exact conversions: fp32_to_fp16_row and fp32_to_bf16_row (the F16 and BF16
// from_f32 kernels) and quantize_row_q8_0 (Q8_0's from_f32) must give the scalar reference's bits
// on random, wide-range, random-bit, special and near-tie inputs, without writing past the output.
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "harness.h"

namespace kt {
namespace {

using FloatGen = void (*)(std::mt19937_64&, float*, int64_t);

// Random finite floats with magnitudes spread over many octaves.
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
        if (h >= 0x0400)
            v = fp32_from_bits(fp32_to_bits(f) + 0x1000);  // half a 10-bit mantissa ulp
        else
            v = f + std::ldexp(1.0f, -25);  // half a subnormal step
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

}  // namespace

void check_conversions(const KernelSet& ks) {
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

    check_quantize(ks, "normal", qgen_normal);
    check_quantize(ks, "block-scales", qgen_block_scales);
    check_quantize(ks, "edge-blocks", qgen_edges);
    check_quantize(ks, "near-ties", qgen_near_ties);
}

}  // namespace kt

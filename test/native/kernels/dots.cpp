// Kernel tests, dots: dot_f32, dot_f16 and dot_bf16 (within kDotRelTol of the scalar reference
// on normal, wide-range, cancelling, sparse, inf and NaN inputs, and on random bit patterns), and
// dot_q8_0_q8_0 and dot_q4_0_q8_0 (within kQuantDotRelTol, or exactly equal when every sum is exact).
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "harness.h"

namespace kt {
namespace {

// ---------------------------------------------------------------------------------------------
// Float dots

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
        const float want =
            kBf16 ? scalar_set().of(DType::BF16).dot(n, w.data(), x.data()) : scalar_set().of(DType::F16).dot(n, w.data(), x.data());
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

}  // namespace

void check_dots(const KernelSet& ks) {
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
}

}  // namespace kt

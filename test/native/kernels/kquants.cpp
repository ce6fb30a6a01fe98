// Kernel tests, super-block types (k-quants) with q8_K activations:
// - quantize_row_q8_K: every set bit-exact with the reference (normal rows, zeros, ties,
//   huge / tiny / non-finite values, equal magnitudes of both signs);
// - each type's dot: every set bit-identical to the scalar reference (kquants_simd.h promises
//   it) on random bytes (scales, high bits), extreme codes and activations, 1..12 super-blocks and
//   longer rows, misaligned rows;
// - each type's mul: bit-identical to the same set's dot for every tile shape and tail, row list,
//   padded stride and ldy; the ldy gaps and the sentinels untouched;
// - the reference tied to ggml's format: the reference dot equals the float dot of the
//   dequantized weights (TypeTraits::to_float, ggml's dequantize_row_*) and activations;
// - a deliberate bug is seen: one flipped scale bit, one changed bsum change the dot.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "harness.h"

namespace kt {
namespace {

// A weight type under test: its fp16 scale fields (byte offsets in the block; d first, dmin
// second when it has one) and the byte range of its sub-block scales (for the bug check).
struct KType {
    DType type;
    size_t d_off;
    int d_fields;  // 1: d; 2: d, dmin
    size_t scales_off;
    bool reads_bsums = true;  // offsets or mins through the activation's bsums (not iq4_xs)
    bool x_minus128 = true;   // exact for activation bytes of -128 too (iq4_xs: [-127, 127], what quantize_row_q8_K makes)
};
const KType kTypes[] = {
    {DType::Q6_K, offsetof(block_q6_K, d), 1, offsetof(block_q6_K, scales)},
    {DType::Q4_K, offsetof(block_q4_K, d), 2, offsetof(block_q4_K, scales)},
    {DType::Q5_K, offsetof(block_q5_K, d), 2, offsetof(block_q5_K, scales)},
    {DType::Q3_K, offsetof(block_q3_K, d), 1, offsetof(block_q3_K, scales)},
    {DType::Q2_K, offsetof(block_q2_K, d), 2, offsetof(block_q2_K, scales)},
    {DType::IQ4_XS, offsetof(block_iq4_xs, d), 1, offsetof(block_iq4_xs, scales_l), false, false},
};

size_t bsize(DType t) { return type_traits(t).type_size; }

// Random weight blocks: random bytes (codes, high bits, scales), random fp16 scales (a sixth
// of them 0); extreme: every byte 0x00, 0xFF, 0x80 or 0x7F, scales 1.0.
void gen_weights(const KType& kt, std::mt19937_64& r, uint8_t* w, int64_t nb, bool extreme) {
    const size_t bs = bsize(kt.type);
    for (int64_t b = 0; b < nb; ++b) {
        uint8_t* blk = w + static_cast<size_t>(b) * bs;
        for (size_t i = 0; i < bs; ++i) {
            static const uint8_t kExt[4] = {0x00, 0xFF, 0x80, 0x7F};
            blk[i] = extreme ? kExt[r() % 4] : static_cast<uint8_t>(r());
        }
        for (int f = 0; f < kt.d_fields; ++f) {
            uint16_t d = extreme ? 0x3c00 : random_scale(r, true);
            if (!extreme && r() % 6 == 0) d = 0;
            std::memcpy(blk + kt.d_off + 2 * f, &d, 2);
        }
    }
}

void fix_bsums(block_q8_K& b) {
    for (int j = 0; j < 16; ++j) {
        int s = 0;
        for (int k = 0; k < 16; ++k) s += b.qs[16 * j + k];
        b.bsums[j] = static_cast<int16_t>(s);
    }
}

// Activations: quantized normal floats (the reference's quantize_row_q8_K), random bytes
// (-128 included unless !minus128) with consistent bsums, or extremes (+-127, -128; d = 1).
enum class XCase { Quantized, RandomBytes, Extremes };
void gen_acts(XCase c, std::mt19937_64& r, block_q8_K* x, int64_t nb, bool minus128 = true) {
    if (c == XCase::Quantized) {
        std::vector<float> f(static_cast<size_t>(nb * QK_K));
        gen_normal(r, f.data(), nb * QK_K);
        scalar_set().of(DType::Q8_K).from_f32(f.data(), x, nb * QK_K);
        return;
    }
    for (int64_t b = 0; b < nb; ++b) {
        for (auto& q : x[b].qs) {
            static const int8_t kExt[3] = {127, -127, -128};
            q = c == XCase::Extremes ? kExt[r() % 3] : static_cast<int8_t>(r());
            if (!minus128 && q == -128) q = -127;
        }
        x[b].d = c == XCase::Extremes ? 1.0f : static_cast<float>(uniform(r, -0.05, 0.05));
        fix_bsums(x[b]);
    }
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

// ---- quantize_row_q8_K ----
void check_quantize_q8_K(const KernelSet& ks) {
    const auto ref = scalar_set().of(DType::Q8_K).from_f32;
    const auto fn = ks.of(DType::Q8_K).from_f32;
    const char* cases[] = {"normal", "zeros", "ties", "huge", "tiny", "nonfinite", "signs"};
    for (int c = 0; c < 7; ++c) {
        bool ok = true;
        std::string detail;
        for (int64_t nb : {1, 2, 3, 5, 8, 12, 24}) {
            const int64_t n = nb * QK_K;
            auto r = rng_for(fmt("q8_K %s", cases[c]), n);
            Input<float> x(n, 1);  // misaligned by 4 bytes
            for (int64_t i = 0; i < n; ++i) {
                float v = normal(r);
                switch (c) {
                    case 1: v = (i / QK_K) % 2 ? v * 1e-3f : (r() % 3 ? 0.0f : -0.0f); break;  // every other block all zero
                    case 2: v = static_cast<float>(static_cast<int>(r() % 255) - 127) + ((r() & 1) ? 0.5f : 0.0f); break;
                    case 3: v *= 1e37f; break;
                    case 4: v *= (r() % 2) ? 1e-39f : 1e-44f; break;  // subnormal: -127 / max overflows
                    case 5:
                        if (r() % 50 == 0) v = (r() % 3 == 0) ? NAN : ((r() & 1) ? INFINITY : -INFINITY);
                        break;
                    case 6: v = (r() & 1) ? 3.0f : -3.0f; break;  // many elements of the largest magnitude
                    default: break;
                }
                x[i] = v;
            }
            if (c == 2) {  // max = -127: iscale = 1, so the .5 values are exact ties
                for (int64_t b = 0; b < nb; ++b) x[b * QK_K + static_cast<int64_t>(r() % QK_K)] = -127.0f;
            }
            Output<block_q8_K> want(nb), got(nb);
            ref(x.data(), want.data(), n);
            fn(x.data(), got.data(), n);
            if (std::memcmp(want.data(), got.data(), static_cast<size_t>(nb) * sizeof(block_q8_K)) != 0 || !got.guard_intact()) {
                ok = false;
                for (int64_t b = 0; b < nb && detail.empty(); ++b) {
                    const block_q8_K &a = want.data()[b], &g = got.data()[b];
                    if (std::memcmp(&a.d, &g.d, 4)) detail = fmt("n=%lld block %lld: d %a vs %a", (long long)n, (long long)b, a.d, g.d);
                    for (int j = 0; j < QK_K && detail.empty(); ++j)
                        if (a.qs[j] != g.qs[j])
                            detail = fmt("n=%lld block %lld: qs[%d] %d vs %d", (long long)n, (long long)b, j, a.qs[j], g.qs[j]);
                    for (int j = 0; j < 16 && detail.empty(); ++j)
                        if (a.bsums[j] != g.bsums[j])
                            detail = fmt("n=%lld block %lld: bsums[%d] %d vs %d", (long long)n, (long long)b, j, a.bsums[j], g.bsums[j]);
                }
                if (detail.empty()) detail = "sentinel overwritten";
                break;
            }
        }
        report(ok, fmt("%s quantize_row_q8_K %s bit-exact (1..24 blocks)", isa_name(ks.isa), cases[c]), detail);
    }
}

// ---- dots: bit-identical to the reference ----
void check_dot(const KernelSet& ks, const KType& kt, XCase xc, bool extreme_w) {
    const char* tn = type_traits(kt.type).name;
    const char* xn[] = {"quantized", "random-bytes", "extreme"};
    const std::string name =
        fmt("%s dot_%s_q8_K %s weights, %s activations", isa_name(ks.isa), tn, extreme_w ? "extreme" : "random", xn[int(xc)]);
    const auto dot = ks.of(kt.type).dot;
    const auto ref = scalar_set().of(kt.type).dot;
    const size_t bs = bsize(kt.type);
    bool ok = true;
    std::string detail;
    for (int64_t nb : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 23, 40}) {
        auto r = rng_for(name, nb);
        for (size_t off : {0, 2, 6}) {  // weight row offsets (blocks need 2-byte alignment); activations 4 bytes off
            Input<uint8_t> w(static_cast<int64_t>(nb * bs), off);
            Input<block_q8_K> xs(nb, off ? 1 : 0);
            std::vector<uint8_t> xb(static_cast<size_t>(nb) * sizeof(block_q8_K) + 4);
            block_q8_K* x = reinterpret_cast<block_q8_K*>(xb.data() + (off ? 4 : 0));
            gen_weights(kt, r, w.data(), nb, extreme_w);
            gen_acts(xc, r, xs.data(), nb, kt.x_minus128);
            std::memcpy(static_cast<void*>(x), xs.data(), static_cast<size_t>(nb) * sizeof(block_q8_K));
            const float want = ref(nb * QK_K, w.data(), x), got = dot(nb * QK_K, w.data(), x);
            if (!same_bits(want, got)) {
                ok = false;
                detail = fmt("nb=%lld off=%zu: %.9g vs reference %.9g", (long long)nb, off, got, want);
                break;
            }
        }
        if (!ok) break;
    }
    report(ok, name + " == reference bits (1..12, 16, 23, 40 super-blocks; misaligned)", detail);
}

// ---- matrix kernel: bit-identical to the same set's dot ----
void check_mul(const KernelSet& ks, const KType& kt) {
    const char* tn = type_traits(kt.type).name;
    const std::string name = fmt("%s mul_%s_q8_K", isa_name(ks.isa), tn);
    const auto mul = ks.of(kt.type).mul;
    const auto dot = ks.of(kt.type).dot;
    const size_t bs = bsize(kt.type);
    bool ok = true;
    std::string detail;
    int64_t shapes = 0;
    for (int64_t nb : {1, 3, 6, 10}) {
        const int64_t n = nb * QK_K;
        constexpr int64_t kMaxRows = 11, kMaxTokens = 67;
        auto r = rng_for(name, nb);
        std::vector<uint8_t> wsrc(static_cast<size_t>(kMaxRows * nb) * bs);
        std::vector<block_q8_K> xsrc(static_cast<size_t>(kMaxTokens * nb));
        gen_weights(kt, r, wsrc.data(), kMaxRows * nb, false);
        gen_acts(XCase::Quantized, r, xsrc.data(), kMaxTokens * nb);
        for (int64_t nr : {1, 2, 3, 4, 5, 6, 9, 11}) {
            for (int64_t nt : {1, 2, 3, 4, 5, 6, 9, 67}) {
                if (nt > 9 && nb > 3) continue;  // more tokens than one chunk (64): short rows only
                for (int variant = 0; variant < 4 && ok; ++variant) {
                    const bool padded = variant & 1, sparse = variant & 2;
                    std::vector<int32_t> list;
                    std::vector<bool> listed(static_cast<size_t>(nr), !sparse);
                    if (sparse) {
                        for (int64_t i = 0; i < nr; ++i)
                            if (r() % 2 == 0 || (i == nr - 1 && list.empty())) list.push_back(static_cast<int32_t>(i));
                        std::shuffle(list.begin(), list.end(), r);
                        for (int32_t i : list) listed[static_cast<size_t>(i)] = true;
                    }
                    const size_t wrow = static_cast<size_t>(nb) * bs, xrow = static_cast<size_t>(nb) * sizeof(block_q8_K);
                    const size_t wrb = wrow + (padded ? 2 * static_cast<size_t>(1 + nr % 3) : 0);
                    const size_t xrb = xrow + (padded ? 4 * static_cast<size_t>(1 + nt % 3) : 0);
                    const int64_t ldy = nr + (padded ? 3 : 0);
                    Input<uint8_t> wbuf(static_cast<int64_t>((static_cast<size_t>(nr) - 1) * wrb + wrow), 2);
                    Input<uint32_t> xbuf(static_cast<int64_t>(((static_cast<size_t>(nt) - 1) * xrb + xrow) / 4), 1);
                    std::fill(wbuf.buf.begin(), wbuf.buf.end(), 0x5a);
                    for (int64_t i = 0; i < nr; ++i) std::memcpy(wbuf.data() + i * wrb, wsrc.data() + i * wrow, wrow);
                    uint8_t* xp = reinterpret_cast<uint8_t*>(xbuf.data());
                    for (int64_t t = 0; t < nt; ++t) std::memcpy(xp + t * xrb, xsrc.data() + t * nb, xrow);
                    Output<float> y(nt * ldy);
                    mul(n, wbuf.data(), wrb, sparse ? list.data() : nullptr, sparse ? static_cast<int64_t>(list.size()) : nr, xp, xrb, nt,
                        y.data(), ldy);
                    ++shapes;
                    for (int64_t t = 0; t < nt && ok; ++t)
                        for (int64_t i = 0; i < ldy && ok; ++i) {
                            const uint8_t* cell = y.bytes.data() + static_cast<size_t>(t * ldy + i) * sizeof(float);
                            if (i >= nr || !listed[static_cast<size_t>(i)]) {
                                for (int k = 0; k < 4; ++k)
                                    if (cell[k] != kSentinel) ok = false;
                                if (!ok)
                                    detail = fmt("nb=%lld nr=%lld nt=%lld: y gap [%lld,%lld] written", (long long)nb, (long long)nr,
                                                 (long long)nt, (long long)t, (long long)i);
                                continue;
                            }
                            float got;
                            std::memcpy(&got, cell, 4);
                            const float want = dot(n, wbuf.data() + i * wrb, xp + t * xrb);
                            if (!same_bits(want, got)) {
                                ok = false;
                                detail = fmt("nb=%lld nr=%lld nt=%lld variant %d: y[%lld,%lld] %.9g vs dot %.9g", (long long)nb,
                                             (long long)nr, (long long)nt, variant, (long long)t, (long long)i, got, want);
                            }
                        }
                    if (ok && !y.guard_intact()) {
                        ok = false;
                        detail = "sentinel after y overwritten";
                    }
                }
            }
        }
    }
    report(ok, fmt("%s == the set's dot bits (%lld shapes: 1..11 rows, 1..67 tokens, row lists, strides)", name.c_str(), (long long)shapes),
           detail);
}

// ---- the reference against the dequantized formats (scalar only) ----
void check_ref_vs_dequant(const KType& kt) {
    const char* tn = type_traits(kt.type).name;
    const TypeTraits tr = type_traits(kt.type);
    const auto ref = scalar_set().of(kt.type).dot;
    const size_t bs = bsize(kt.type);
    bool ok = true;
    std::string detail;
    double worst = 0;
    for (int64_t nb : {1, 2, 5, 12, 33}) {
        for (int c = 0; c < 3 && ok; ++c) {
            auto r = rng_for(fmt("dequant %s %d", tn, c), nb);
            const int64_t n = nb * QK_K;
            std::vector<uint8_t> w(static_cast<size_t>(nb) * bs);
            std::vector<block_q8_K> x(static_cast<size_t>(nb));
            gen_weights(kt, r, w.data(), nb, c == 2);
            gen_acts(c == 0 ? XCase::Quantized : c == 1 ? XCase::RandomBytes : XCase::Extremes, r, x.data(), nb, kt.x_minus128);
            std::vector<float> wf(static_cast<size_t>(n)), xf(static_cast<size_t>(n)), part(static_cast<size_t>(n));
            tr.to_float(w.data(), wf.data(), n);
            type_traits(DType::Q8_K).to_float(x.data(), xf.data(), n);
            double exact = 0, mag = 0;
            for (int64_t i = 0; i < n; ++i) exact += static_cast<double>(wf[static_cast<size_t>(i)]) * xf[static_cast<size_t>(i)];
            // The rounding scale: the d and the dmin parts of every weight separately (they may cancel).
            for (int f = 0; f < kt.d_fields; ++f) {
                std::vector<uint8_t> wp = w;
                if (kt.d_fields == 2)
                    for (int64_t b = 0; b < nb; ++b) std::memset(wp.data() + static_cast<size_t>(b) * bs + kt.d_off + 2 * (1 - f), 0, 2);
                tr.to_float(wp.data(), part.data(), n);
                for (int64_t i = 0; i < n; ++i)
                    mag += std::fabs(static_cast<double>(part[static_cast<size_t>(i)]) * xf[static_cast<size_t>(i)]);
            }
            const float got = ref(n, w.data(), x.data());
            const double err = std::fabs(got - exact), rel = mag > 0 ? err / mag : err;
            worst = std::max(worst, rel);
            if (!(rel <= kQuantDotRelTol)) {
                ok = false;
                detail =
                    fmt("nb=%lld case %d: reference %.9g vs dequantized %.9g (rel %.3g of %.3g)", (long long)nb, c, got, exact, rel, mag);
            }
        }
    }
    report(ok, fmt("scalar dot_%s_q8_K == float dot of to_float(w) and to_float(x) (rel %.2g <= %.0e)", tn, worst, kQuantDotRelTol),
           detail);
}

// ---- the checks can fail: a flipped scale bit / a changed bsum changes every set's dot ----
void check_sensitivity(const KernelSet& ks, const KType& kt) {
    const char* tn = type_traits(kt.type).name;
    const size_t bs = bsize(kt.type);
    const int64_t nb = 3, n = nb * QK_K;
    auto r = rng_for(fmt("bug %s", tn), nb);
    std::vector<uint8_t> w(static_cast<size_t>(nb) * bs);
    std::vector<block_q8_K> x(static_cast<size_t>(nb));
    gen_weights(kt, r, w.data(), nb, false);
    for (int64_t b = 0; b < nb; ++b) {
        const uint16_t one = 0x3c00;
        for (int f = 0; f < kt.d_fields; ++f) std::memcpy(w.data() + static_cast<size_t>(b) * bs + kt.d_off + 2 * f, &one, 2);
    }
    gen_acts(XCase::Quantized, r, x.data(), nb, kt.x_minus128);
    const auto dot = ks.of(kt.type).dot;
    const float base = dot(n, w.data(), x.data());
    std::vector<uint8_t> w2 = w;
    w2[bs + kt.scales_off + 1] ^= 0x04;  // super-block 1, one bit of its second scale byte
    const float flipped = dot(n, w2.data(), x.data());
    std::vector<block_q8_K> x2 = x;
    x2[2].bsums[5] = static_cast<int16_t>(x2[2].bsums[5] + 1);  // an inconsistent bsum (types with offsets or mins read bsums)
    const float bsum_changed = dot(n, w.data(), x2.data());
    const bool ok = !same_bits(base, flipped) && same_bits(base, bsum_changed) != kt.reads_bsums;
    report(ok,
           fmt("%s dot_%s_q8_K sees a flipped scale bit and %s (deliberate bugs)", isa_name(ks.isa), tn,
               kt.reads_bsums ? "a changed bsum" : "ignores bsums"),
           ok ? "" : fmt("%.9g / %.9g / %.9g", base, flipped, bsum_changed));
}

}  // namespace

void check_kquants(const KernelSet& ks) {
    if (ks.isa == Isa::Scalar) {
        for (const KType& kt : kTypes) {
            check_ref_vs_dequant(kt);
            check_sensitivity(ks, kt);
            check_mul(ks, kt);
        }
        return;
    }
    check_quantize_q8_K(ks);
    for (const KType& kt : kTypes) {
        for (XCase xc : {XCase::Quantized, XCase::RandomBytes, XCase::Extremes}) check_dot(ks, kt, xc, false);
        check_dot(ks, kt, XCase::Extremes, true);
        check_dot(ks, kt, XCase::RandomBytes, true);
        check_sensitivity(ks, kt);
        check_mul(ks, kt);
    }
}

}  // namespace kt

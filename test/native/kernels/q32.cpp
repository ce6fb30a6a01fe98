// Kernel tests, the 32-element weight types beside q4_0/q8_0: iq4_nl and q5_0 (q8_0 activations),
// q4_1 and q5_1 (q8_1 activations), and quantize_row_q8_1 (Q8_1's from_f32).
//  - quantize_row_q8_1: bit-exact vs the scalar reference on every set (normal, per-block scales,
//    edge blocks: zeros, ties, huge/tiny, denormals; near-ties); the reference's quants and d are
//    quantize_row_q8_0's and s = fp16(d * sum(qs)) (ggml's x86 path).
//  - dots: within kQuantDotRelTol of the scalar reference (exactly equal when every sum is exact)
//    on random data (random qh bits, negative scales and mins), zero scales, extreme levels,
//    lengths 0..12 blocks and larger, misaligned rows.
//  - matrix kernels: bit-identical to the same set's dot for every tile shape, tail, row list and
//    stride; ldy gaps and sentinels untouched.
//  - the file format: the reference dot equals the float dot of the dequantized weights
//    (TypeTraits::to_float, as ggml's dequantize_row_*) and dequantized activations.
//  - self-check: a flipped qh bit / changed nibble / changed min is caught by the comparison.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "harness.h"

namespace kt {
namespace {

struct Q32Type {
    DType w, x;  // weight type, activation type
    const char* dot;
    const char* mul;
};
constexpr Q32Type kQ32Types[] = {
    {DType::IQ4_NL, DType::Q8_0, "dot_iq4_nl_q8_0", "mul_iq4_nl_q8_0"},
    {DType::Q5_0, DType::Q8_0, "dot_q5_0_q8_0", "mul_q5_0_q8_0"},
    {DType::Q4_1, DType::Q8_1, "dot_q4_1_q8_1", "mul_q4_1_q8_1"},
    {DType::Q5_1, DType::Q8_1, "dot_q5_1_q8_1", "mul_q5_1_q8_1"},
};

size_t bsize(DType t) { return type_traits(t).type_size; }
bool has_min(DType t) { return t == DType::Q4_1 || t == DType::Q5_1; }
bool has_qh(DType t) { return t == DType::Q5_0 || t == DType::Q5_1; }
// Lowest activation byte a type's dot accepts: iq4_nl's (like q8_0's) needs quantize_row_q8_0's
// range [-127, 127]; the others take any int8.
int lowest_x(DType t) { return t == DType::IQ4_NL ? -127 : -128; }

// A weight block decoded: value j = q[j] * d + m (exact fp16 scales).
struct WLevels {
    int q[32];
    double d, m;
};
WLevels decode_w(DType t, const uint8_t* b) {
    WLevels L{};
    uint16_t d = 0, m = 0;
    uint32_t qh = 0;
    const uint8_t* qs = nullptr;
    block_iq4_nl nl;
    block_q5_0 q50;
    block_q4_1 q41;
    block_q5_1 q51;
    switch (t) {
        case DType::IQ4_NL: std::memcpy(&nl, b, sizeof nl), d = nl.d, qs = b + offsetof(block_iq4_nl, qs); break;
        case DType::Q5_0:
            std::memcpy(&q50, b, sizeof q50), d = q50.d, std::memcpy(&qh, q50.qh, 4), qs = b + offsetof(block_q5_0, qs);
            break;
        case DType::Q4_1: std::memcpy(&q41, b, sizeof q41), d = q41.d, m = q41.m, qs = b + offsetof(block_q4_1, qs); break;
        default:
            std::memcpy(&q51, b, sizeof q51), d = q51.d, m = q51.m, std::memcpy(&qh, q51.qh, 4), qs = b + offsetof(block_q5_1, qs);
            break;
    }
    for (int j = 0; j < 32; ++j) {
        int q = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
        if (has_qh(t)) q |= static_cast<int>((qh >> j) & 1) << 4;
        L.q[j] = t == DType::IQ4_NL ? kValuesIq4nl[q] : t == DType::Q5_0 ? q - 16 : q;
    }
    L.d = fp16_to_fp32_slow(d);
    L.m = fp16_to_fp32_slow(m);
    return L;
}

// An activation block decoded: value j = q[j] * d; s (q8_1 only) as stored.
struct XLevels {
    int q[32];
    double d, s;
};
XLevels decode_x(DType t, const uint8_t* b) {
    XLevels L{};
    const int8_t* qs = reinterpret_cast<const int8_t*>(b + (t == DType::Q8_1 ? 4 : 2));
    uint16_t d, s = 0;
    std::memcpy(&d, b, 2);
    if (t == DType::Q8_1) std::memcpy(&s, b + 2, 2);
    for (int j = 0; j < 32; ++j) L.q[j] = qs[j];
    L.d = fp16_to_fp32_slow(d);
    L.s = fp16_to_fp32_slow(s);
    return L;
}

// The rounding scale of a dot: sum over blocks of |d_w d_x| sum_j |q_w q_x| + |m_w s_x|.
double q32_mag(const Q32Type& T, const uint8_t* w, const uint8_t* x, int64_t nb) {
    double mag = 0;
    for (int64_t b = 0; b < nb; ++b) {
        const WLevels wl = decode_w(T.w, w + static_cast<size_t>(b) * bsize(T.w));
        const XLevels xl = decode_x(T.x, x + static_cast<size_t>(b) * bsize(T.x));
        double s = 0;
        for (int j = 0; j < 32; ++j) s += std::fabs(static_cast<double>(wl.q[j]) * xl.q[j]);
        mag += s * std::fabs(wl.d * xl.d) + std::fabs(wl.m * xl.s);
    }
    return mag;
}

// One random weight block of type t for case c (written to b).
void gen_w(DType t, QCase c, std::mt19937_64& r, uint8_t* b) {
    const bool unit = c == QCase::UnitExact || c == QCase::Extremes;
    uint16_t d = unit ? 0x3c00 : random_scale(r, true);
    if (c == QCase::ZeroScales && r() % 3 == 0) d = (r() & 1) ? 0x0000 : 0x8000;
    const uint16_t m = unit ? ((r() & 1) ? 0x3c00 : 0xbc00) : random_scale(r, true);
    uint8_t qs[16];
    uint32_t qh = bits32(r);
    for (auto& q : qs) q = static_cast<uint8_t>(r());
    if (c == QCase::Extremes) {  // the lowest or highest level of every weight
        qh = 0;
        for (int j = 0; j < 32; ++j) {
            const bool hi = r() & 1;
            if (j < 16)
                qs[j] = static_cast<uint8_t>(hi ? 0x0f : 0x00);
            else
                qs[j - 16] = static_cast<uint8_t>(qs[j - 16] | (hi ? 0xf0 : 0x00));
            if (hi) qh |= 1u << j;
        }
    }
    switch (t) {
        case DType::IQ4_NL: {
            block_iq4_nl k{d, {}};
            std::memcpy(k.qs, qs, 16);
            std::memcpy(b, &k, sizeof k);
            break;
        }
        case DType::Q5_0: {
            block_q5_0 k{d, {}, {}};
            std::memcpy(k.qh, &qh, 4);
            std::memcpy(k.qs, qs, 16);
            std::memcpy(b, &k, sizeof k);
            break;
        }
        case DType::Q4_1: {
            block_q4_1 k{d, m, {}};
            std::memcpy(k.qs, qs, 16);
            std::memcpy(b, &k, sizeof k);
            break;
        }
        default: {
            block_q5_1 k{d, m, {}, {}};
            std::memcpy(k.qh, &qh, 4);
            std::memcpy(k.qs, qs, 16);
            std::memcpy(b, &k, sizeof k);
            break;
        }
    }
}

// Activations of type t (q8_0 or q8_1), n elements: quantized normals (Random, ZeroScales), or
// unit scales with raw bytes in [lo, 127] (UnitExact) or {lo, 127} (Extremes); q8_1's s is then
// fp16(sum), as quantize_row_q8_1 makes it for d = 1.
void gen_x(DType t, QCase c, std::mt19937_64& r, uint8_t* x, int64_t n, int lo) {
    if (c == QCase::Random || c == QCase::ZeroScales) {
        std::vector<float> f(static_cast<size_t>(n));
        gen_normal(r, f.data(), n);
        scalar_set().of(t).from_f32(f.data(), x, n);
        return;
    }
    for (int64_t b = 0; b < n / 32; ++b) {
        int8_t qs[32];
        int sum = 0;
        for (auto& q : qs) {
            q = static_cast<int8_t>(c == QCase::Extremes ? ((r() & 1) ? 127 : lo)
                                                         : lo + static_cast<int>(r() % static_cast<uint64_t>(128 - lo)));
            sum += q;
        }
        uint8_t* blk = x + static_cast<size_t>(b) * bsize(t);
        const uint16_t one = 0x3c00, s = fp32_to_fp16(static_cast<float>(sum));
        std::memcpy(blk, &one, 2);
        if (t == DType::Q8_1) std::memcpy(blk + 2, &s, 2);
        std::memcpy(blk + (t == DType::Q8_1 ? 4 : 2), qs, 32);
    }
}

// Rows as uint16 buffers (every block holds uint16 scales), `off` elements into the allocation.
Input<uint16_t> row_buf(size_t bytes, size_t off) { return Input<uint16_t>(static_cast<int64_t>(bytes / 2), off); }
uint8_t* bytes_of(Input<uint16_t>& b) { return reinterpret_cast<uint8_t*>(b.data()); }

// ---------------------------------------------------------------------------------------------
// quantize_row_q8_1

using QuantGen = void (*)(std::mt19937_64&, float*, int64_t);

void qgen_normal(std::mt19937_64& r, float* x, int64_t n) { gen_normal(r, x, n); }
void qgen_block_scales(std::mt19937_64& r, float* x, int64_t n) {  // amax ~1e-30 .. ~1e30 per block
    for (int64_t b = 0; b < n / 32; ++b) {
        const float s = static_cast<float>(std::pow(10.0, uniform(r, -30, 30)));
        for (int j = 0; j < 32; ++j) x[b * 32 + j] = normal(r) * s;
    }
}
// Cycled edge blocks: zeros, exact .5 ties (amax 127: id 1), quarter ties (amax 63.5: id 2), a
// negative max, huge (d -> fp16 inf), tiny (d -> 0), fp16-subnormal d, fp32 denormals and signed
// zeros, all equal, one non-zero, and sums that round in fp16 (s's rounding).
void qgen_edges(std::mt19937_64& r, float* x, int64_t n) {
    for (int64_t b = 0; b < n / 32; ++b) {
        float* xb = x + b * 32;
        switch ((b + static_cast<int64_t>(r() % 2)) % 11) {
            case 0: std::fill(xb, xb + 32, 0.0f); break;
            case 1:
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(static_cast<int>(r() % 254) - 127) + 0.5f;
                xb[r() % 32] = (r() & 1) ? 127.0f : -127.0f;
                break;
            case 2:
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(static_cast<int>(r() % 254) - 127) * 0.25f + 0.25f;
                xb[r() % 32] = 63.5f;
                break;
            case 3:
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(uniform(r, -3, 3));
                xb[r() % 32] = -7.5f;
                break;
            case 4:
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(uniform(r, -3e38, 3e38));
                break;
            case 5:
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(uniform(r, -1e-30, 1e-30));
                break;
            case 6:
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(uniform(r, -2e-3, 2e-3));
                break;
            case 7:
                for (int j = 0; j < 32; ++j) xb[j] = (j & 1) ? -0.0f : fp32_from_bits(bits32(r) & 0x807fffffu);
                xb[r() % 32] = 1e-3f;
                break;
            case 8: std::fill(xb, xb + 32, -2.25f); break;
            case 9:
                std::fill(xb, xb + 32, 0.0f);
                xb[r() % 32] = normal(r);
                break;
            default:  // all near +amax: sum(qs) ~ 4000, beyond fp16's exact integers
                for (int j = 0; j < 32; ++j) xb[j] = static_cast<float>(uniform(r, 0.9, 1.0));
                xb[r() % 32] = 1.0f;
                break;
        }
    }
}
void qgen_near_ties(std::mt19937_64& r, float* x, int64_t n) {  // x * id within an ulp of k + 0.5
    for (int64_t b = 0; b < n / 32; ++b) {
        float* xb = x + b * 32;
        const float amax = static_cast<float>(std::pow(10.0, uniform(r, -3, 3)));
        const float id = 127.0f / amax;
        for (int j = 0; j < 32; ++j) xb[j] = (static_cast<float>(static_cast<int>(r() % 253) - 126) + 0.5f) / id;
        xb[r() % 32] = (r() & 1) ? amax : -amax;
    }
}

void check_quantize_q8_1(const KernelSet& ks, const char* case_name, QuantGen gen) {
    const std::string name = fmt("quantize_row_q8_1 %s", case_name);
    bool ok = true;
    std::string detail;
    const auto lens = quant_lengths();
    for (int64_t n : lens) {
        auto r = rng_for(name, n);
        Input<float> x(n, static_cast<size_t>(n % 5));
        gen(r, x.data(), n);
        const int64_t nb = n / 32;
        Output<block_q8_1> want(nb), got(nb);
        Output<block_q8_0> q8_0(nb);
        scalar_set().of(DType::Q8_1).from_f32(x.data(), want.data(), n);
        scalar_set().of(DType::Q8_0).from_f32(x.data(), q8_0.data(), n);
        ks.of(DType::Q8_1).from_f32(x.data(), got.data(), n);
        if (!got.guard_intact()) ok = false, detail = fmt("n=%" PRId64 ": wrote past the end of the output", n);
        for (int64_t b = 0; b < nb && ok; ++b) {
            const block_q8_1& w = want.data()[b];
            const block_q8_1& g = got.data()[b];
            const block_q8_0& z = q8_0.data()[b];
            int sum = 0;
            for (int j = 0; j < 32; ++j) sum += w.qs[j];
            const float d = [&] {  // the fp32 d of ggml's x86 path
                float amax = 0.0f;
                for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[b * 32 + j]));
                return amax / 127.0f;
            }();
            if (w.d != z.d || std::memcmp(w.qs, z.qs, 32) != 0 || w.s != fp32_to_fp16(d * static_cast<float>(sum)))
                ok = false, detail = fmt("n=%" PRId64 " block %" PRId64 ": the reference is not q8_0's quants with s = fp16(d*sum)", n, b);
            else if (w.d != g.d || w.s != g.s)
                ok = false,
                detail = fmt("n=%" PRId64 " block %" PRId64 ": d/s want 0x%04x/0x%04x got 0x%04x/0x%04x", n, b, w.d, w.s, g.d, g.s);
            for (int j = 0; j < 32 && ok; ++j)
                if (w.qs[j] != g.qs[j])
                    ok = false,
                    detail = fmt("n=%" PRId64 " block %" PRId64 " j=%d x=%a: want %d got %d", n, b, j, x[b * 32 + j], w.qs[j], g.qs[j]);
        }
        if (!ok) break;
    }
    report(ok, fmt("%s %s", isa_name(ks.isa), name.c_str()), ok ? fmt("bit-exact, n=%s", lens_str(lens).c_str()) : detail);
}

// ---------------------------------------------------------------------------------------------
// Dots vs the scalar reference

void check_dot_q32(const KernelSet& ks, const Q32Type& T, QCase c) {
    const std::string name = fmt("%s %s", T.dot, qcase_name(c));
    const bool exact = c == QCase::UnitExact || c == QCase::Extremes;
    bool ok = true;
    double worst = 0;
    std::string detail;
    std::vector<int64_t> lens;
    for (int64_t n : quant_lengths())
        if (!exact || n <= 1024) lens.push_back(n);  // exact: |partial sums| < 2^24
    for (int64_t n : lens) {
        auto r = rng_for(name, n);
        const int64_t nb = n / 32;
        Input<uint16_t> w = row_buf(static_cast<size_t>(nb) * bsize(T.w), static_cast<size_t>(nb % 3));
        Input<uint16_t> x = row_buf(static_cast<size_t>(nb) * bsize(T.x), static_cast<size_t>((nb + 1) % 2));
        for (int64_t b = 0; b < nb; ++b) gen_w(T.w, c, r, bytes_of(w) + static_cast<size_t>(b) * bsize(T.w));
        gen_x(T.x, c, r, bytes_of(x), n, lowest_x(T.w));
        const float want = scalar_set().of(T.w).dot(n, w.data(), x.data());
        const float got = ks.of(T.w).dot(n, w.data(), x.data());
        const double mag = q32_mag(T, bytes_of(w), bytes_of(x), nb);
        double rel = 0;
        if (exact ? want != got : !dot_close(want, got, mag, kQuantDotRelTol, &rel)) {
            ok = false;
            detail = exact ? fmt("n=%" PRId64 ": want %.9g got %.9g (must be exactly equal)", n, want, got)
                           : fmt("n=%" PRId64 ": want %.9g got %.9g (magnitude %.6g, tol kQuantDotRelTol=%g)", n, want, got, mag,
                                 kQuantDotRelTol);
            break;
        }
        worst = std::max(worst, rel);
    }
    report(ok, fmt("%s %s", isa_name(ks.isa), name.c_str()),
           ok ? (exact ? fmt("exact, n=%s", lens_str(lens).c_str())
                       : fmt("max err %.2e of magnitude (kQuantDotRelTol %g), n=%s", worst, kQuantDotRelTol, lens_str(lens).c_str()))
              : detail);
}

// ---------------------------------------------------------------------------------------------
// Matrix kernels: bit-identical to the same set's dot (see matrix.cpp for the contract)

void check_mul_q32(const KernelSet& ks, const Q32Type& T, QCase c) {
    const std::string name = fmt("%s %s", T.mul, qcase_name(c));
    const MulFn mul = ks.of(T.w).mul;
    const DotFn dot = ks.of(T.w).dot;
    const size_t wbs = bsize(T.w), xbs = bsize(T.x);
    bool ok = mul != nullptr;
    std::string detail = ok ? "" : "no matrix kernel";
    int64_t pairs = 0, shapes = 0;
    for (int64_t n : {32, 64, 96, 128, 160, 224, 1536}) {
        if (!ok) break;
        const int64_t nb = n / 32;
        constexpr int64_t kMaxRows = 13, kMaxTokens = 67;
        auto r = rng_for(name, n);
        std::vector<uint8_t> wsrc(static_cast<size_t>(kMaxRows * nb) * wbs), xsrc(static_cast<size_t>(kMaxTokens * nb) * xbs);
        for (int64_t b = 0; b < kMaxRows * nb; ++b) gen_w(T.w, c, r, wsrc.data() + static_cast<size_t>(b) * wbs);
        for (int64_t t = 0; t < kMaxTokens; ++t) gen_x(T.x, c, r, xsrc.data() + static_cast<size_t>(t * nb) * xbs, n, lowest_x(T.w));
        const size_t wrow = static_cast<size_t>(nb) * wbs, xrow = static_cast<size_t>(nb) * xbs;
        for (int64_t nr : std::initializer_list<int64_t>{1, 2, 3, 4, 5, 7, 8, kMaxRows}) {
            for (int64_t nt : std::initializer_list<int64_t>{1, 2, 3, 4, 5, 9, kMaxTokens}) {
                if (nt > 64 && n > 160) continue;
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
                    const size_t wrb = wrow + (padded ? 2 * static_cast<size_t>(1 + nr % 3) : 0);
                    const size_t xrb = xrow + (padded ? xbs + 4 : 0);
                    const int64_t ldy = nr + (padded ? 3 : 0);
                    Input<uint16_t> wbuf = row_buf((static_cast<size_t>(nr) - 1) * wrb + wrow, 1);
                    Input<uint16_t> xbuf = row_buf((static_cast<size_t>(nt) - 1) * xrb + xrow, 1);
                    for (auto& v : wbuf.buf) v = 0x5a5a;
                    for (auto& v : xbuf.buf) v = 0x5a5a;
                    auto wrow_at = [&](int64_t i) { return bytes_of(wbuf) + static_cast<size_t>(i) * wrb; };
                    auto xrow_at = [&](int64_t t) { return bytes_of(xbuf) + static_cast<size_t>(t) * xrb; };
                    for (int64_t i = 0; i < nr; ++i) std::memcpy(wrow_at(i), wsrc.data() + static_cast<size_t>(i) * wrow, wrow);
                    for (int64_t t = 0; t < nt; ++t) std::memcpy(xrow_at(t), xsrc.data() + static_cast<size_t>(t) * xrow, xrow);
                    Output<float> y(nt * ldy);
                    mul(n, wrow_at(0), wrb, sparse ? list.data() : nullptr, sparse ? static_cast<int64_t>(list.size()) : nr, xrow_at(0),
                        xrb, nt, y.data(), ldy);
                    ++shapes;
                    for (int64_t t = 0; t < nt && ok; ++t)
                        for (int64_t i = 0; i < ldy && ok; ++i) {
                            const uint8_t* cell = y.bytes.data() + static_cast<size_t>(t * ldy + i) * sizeof(float);
                            const std::string at = fmt("n=%" PRId64 " nr=%" PRId64 " nt=%" PRId64 " %s%s: y[t=%" PRId64 "][r=%" PRId64 "]",
                                                       n, nr, nt, padded ? "padded" : "tight", sparse ? " sparse" : "", t, i);
                            if (i >= nr || !listed[static_cast<size_t>(i)]) {
                                for (size_t k = 0; k < sizeof(float); ++k)
                                    if (cell[k] != kSentinel) ok = false, detail = at + " was written (not asked for)";
                                continue;
                            }
                            float got;
                            std::memcpy(&got, cell, sizeof got);
                            const float own = dot(n, wrow_at(i), xrow_at(t));
                            ++pairs;
                            if (std::memcmp(&got, &own, sizeof got) != 0)
                                ok = false, detail = fmt("%s = %.9g, %s's dot gives %.9g (must be bit-identical)", at.c_str(), got,
                                                         isa_name(ks.isa), own);
                        }
                    if (ok && !y.guard_intact())
                        ok = false, detail = fmt("n=%" PRId64 " nr=%" PRId64 " nt=%" PRId64 ": sentinel after y overwritten", n, nr, nt);
                }
            }
        }
    }
    report(ok, fmt("%s %s", isa_name(ks.isa), name.c_str()),
           ok ? fmt("%" PRId64 " pairs in %" PRId64 " shapes bit-identical to %s's dot; ldy gaps and sentinels intact", pairs, shapes,
                    isa_name(ks.isa))
              : detail);
}

// ---------------------------------------------------------------------------------------------
// The file format: reference dot vs the float dot of the dequantized rows (to_float). The
// tolerance: float rounding (1e-5 of sum_j (|q_j d_w| + |m_w|) |x_j|), plus, for q8_1, the fp16
// rounding of s = fp16(d * sum) against fp16(d) * sum (2e-3 of sum_b |m_w s_x|).

void check_format_q32(const Q32Type& T, QCase c) {
    const std::string name = fmt("%s %s", T.dot, qcase_name(c));
    bool ok = true;
    double worst = 0;
    std::string detail;
    for (int64_t n : {0, 32, 64, 96, 160, 1024, 4096 + 32}) {
        auto r = rng_for("format " + name, n);
        const int64_t nb = n / 32;
        std::vector<uint8_t> w(static_cast<size_t>(nb) * bsize(T.w)), x(static_cast<size_t>(nb) * bsize(T.x));
        for (int64_t b = 0; b < nb; ++b) gen_w(T.w, c, r, w.data() + static_cast<size_t>(b) * bsize(T.w));
        gen_x(T.x, c, r, x.data(), n, lowest_x(T.w));
        std::vector<float> wf(static_cast<size_t>(n)), xf(static_cast<size_t>(n));
        type_traits(T.w).to_float(w.data(), wf.data(), n);
        type_traits(T.x).to_float(x.data(), xf.data(), n);
        double fdot = 0, mag = 0, ms = 0;
        for (int64_t b = 0; b < nb; ++b) {
            const WLevels wl = decode_w(T.w, w.data() + static_cast<size_t>(b) * bsize(T.w));
            const XLevels xl = decode_x(T.x, x.data() + static_cast<size_t>(b) * bsize(T.x));
            for (int j = 0; j < 32; ++j) {
                const size_t k = static_cast<size_t>(b * 32 + j);
                // to_float itself: exactly q * d + m and q * d in float
                const float wv = static_cast<float>(wl.q[j]) * static_cast<float>(wl.d) + static_cast<float>(wl.m);
                const float wv_nl = static_cast<float>(wl.d) * static_cast<float>(wl.q[j]);
                const float want_w = T.w == DType::IQ4_NL ? wv_nl
                                     : has_min(T.w)       ? wv
                                                          : static_cast<float>(wl.q[j]) * static_cast<float>(wl.d);
                if (std::memcmp(&want_w, &wf[k], 4) != 0 || xf[k] != static_cast<float>(xl.q[j]) * static_cast<float>(xl.d)) {
                    ok = false;
                    detail = fmt("n=%" PRId64 " element %zu: to_float gives %.9g / %.9g, the block decodes to %.9g / %.9g", n, k, wf[k],
                                 xf[k], want_w, static_cast<float>(xl.q[j]) * static_cast<float>(xl.d));
                }
                fdot += static_cast<double>(wf[k]) * xf[k];
                mag += (std::fabs(wl.q[j] * wl.d) + std::fabs(wl.m)) * std::fabs(xl.q[j] * xl.d);
            }
            ms += std::fabs(wl.m * xl.s);
        }
        const float ref = scalar_set().of(T.w).dot(n, w.data(), x.data());
        const double err = std::fabs(ref - fdot), tol = 1e-5 * mag + 2e-3 * ms;
        if (ok && !(err <= tol)) {
            ok = false;
            detail = fmt("n=%" PRId64 ": reference dot %.9g, dot of the dequantized rows %.9g (tolerance %.3g)", n, ref, fdot, tol);
        }
        if (!ok) break;
        worst = std::max(worst, mag + ms > 0 ? err / (mag + ms) : err);
    }
    report(ok, fmt("format: %s = dot of to_float rows (%s, %s)", name.c_str(), type_name(uint32_t(T.w)), type_name(uint32_t(T.x))),
           ok ? fmt("max err %.2e of magnitude", worst) : detail);
}

// ---------------------------------------------------------------------------------------------
// Self-check: the comparisons above can fail. A one-bit change of the weights (a qh bit, a
// nibble, a sign of m) must change this set's dot beyond the tolerance a check allows.

void check_selftest_q32(const KernelSet& ks, const Q32Type& T) {
    auto r = rng_for(fmt("selftest %s", T.dot), 0);
    constexpr int64_t nb = 3, n = nb * 32;
    std::vector<uint8_t> w(nb * bsize(T.w)), x(nb * bsize(T.x));
    for (int64_t b = 0; b < nb; ++b) gen_w(T.w, QCase::UnitExact, r, w.data() + b * bsize(T.w));
    gen_x(T.x, QCase::UnitExact, r, x.data(), n, lowest_x(T.w));
    // element 5 of block 1 gets x = 100
    uint8_t* xb = x.data() + bsize(T.x);
    xb[(T.x == DType::Q8_1 ? 4 : 2) + 5] = 100;
    std::vector<uint8_t> bad = w;
    uint8_t* wb = bad.data() + bsize(T.w);
    const char* what;
    if (has_qh(T.w)) {
        wb[T.w == DType::Q5_0 ? 2 : 4] ^= 1u << 5;  // qh bit 5: q changes by 16
        what = "a flipped qh bit";
    } else if (T.w == DType::IQ4_NL) {
        wb[2 + 5] ^= 0x08;  // nibble of element 5: another table value
        what = "a changed nibble";
    } else {
        wb[3] ^= 0x80;  // sign of m
        what = "a flipped sign of m";
    }
    const float good = ks.of(T.w).dot(n, w.data(), x.data());
    const float mutated = ks.of(T.w).dot(n, bad.data(), x.data());
    double rel = 0;
    const double mag = q32_mag(T, w.data(), x.data(), nb);
    const bool caught = !dot_close(good, mutated, mag, kQuantDotRelTol, &rel);
    report(caught, fmt("%s self-check: %s changes %s", isa_name(ks.isa), what, T.dot),
           caught ? fmt("%.9g -> %.9g", good, mutated) : fmt("dot unchanged within tolerance (%.9g vs %.9g)", good, mutated));
}

}  // namespace

void check_q32(const KernelSet& ks) {
    const bool scalar = &ks == &scalar_set();
    if (!scalar) {
        check_quantize_q8_1(ks, "normal", qgen_normal);
        check_quantize_q8_1(ks, "block-scales", qgen_block_scales);
        check_quantize_q8_1(ks, "edge-blocks", qgen_edges);
        check_quantize_q8_1(ks, "near-ties", qgen_near_ties);
    }
    for (const Q32Type& T : kQ32Types) {
        if (!type_traits(T.w).supported) continue;
        if (scalar) {
            for (QCase c : {QCase::Random, QCase::Extremes}) check_format_q32(T, c);
            check_mul_q32(ks, T, QCase::Random);
        } else {
            for (QCase c : {QCase::Random, QCase::ZeroScales, QCase::UnitExact, QCase::Extremes}) check_dot_q32(ks, T, c);
            for (QCase c : {QCase::Random, QCase::Extremes}) check_mul_q32(ks, T, c);
        }
        check_selftest_q32(ks, T);
    }
}

}  // namespace kt

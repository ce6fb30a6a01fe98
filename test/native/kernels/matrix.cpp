// Kernel tests, matrix kernels: mul_q4_0_q8_0 and mul_q8_0_q8_0 (bit-identical to the same set's
// dots, within tolerance of the reference, for every tile shape, tail, stride and row list), and
// the repacked Q4_0 path (repack_q4_0x16 / unpack_q4_0x16 round trip, mul_q4_0x16_q8_0).
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "harness.h"

namespace kt {
namespace {

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
                if constexpr (kQ4)
                    q = static_cast<uint8_t>(exact ? (((r() & 1) ? 0x0f : 0x00) | ((r() & 1) ? 0xf0 : 0x00)) : r());
                else
                    q = static_cast<int8_t>(exact ? ((r() & 1) ? 127 : -128) : static_cast<int>(r() & 0xff) - 128);
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
                    auto wrow_at = [&](int64_t i) {
                        return reinterpret_cast<BW*>(reinterpret_cast<uint8_t*>(wbuf.data()) + static_cast<size_t>(i) * wrb);
                    };
                    auto xrow_at = [&](int64_t i) {
                        return reinterpret_cast<block_q8_0*>(reinterpret_cast<uint8_t*>(xbuf.data()) + static_cast<size_t>(i) * xrb);
                    };
                    for (int64_t i = 0; i < nr; ++i) std::memcpy(static_cast<void*>(wrow_at(i)), wsrc.data() + i * nb, wrow);
                    for (int64_t t = 0; t < nt; ++t) std::memcpy(static_cast<void*>(xrow_at(t)), xsrc.data() + t * nb, xrow);

                    Output<float> y(nt * ldy);
                    if (sparse)
                        mul(n, wrow_at(0), wrb, list.data(), static_cast<int64_t>(list.size()), xrow_at(0), xrb, nt, y.data(), ldy);
                    else
                        mul(n, wrow_at(0), wrb, nullptr, nr, xrow_at(0), xrb, nt, y.data(), ldy);
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
                                detail =
                                    fmt("%s = %.9g, %s's dot gives %.9g (must be bit-identical)", at().c_str(), got, isa_name(ks.isa), own);
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
                                detail = fmt("%s = %.9g, scalar reference %.9g (magnitude %.6g, tol kQuantDotRelTol=%g)", at().c_str(), got,
                                             want, mag, kQuantDotRelTol);
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
            const bool unit = c == QCase::Extremes || c == QCase::Saturating;
            for (block_q4_0& blk : w) {
                blk.d = unit ? 0x3c00 : random_scale(r, true);
                if (!unit && r() % 7 == 0) blk.d = 0;
                for (auto& q : blk.qs)
                    q = static_cast<uint8_t>(c == QCase::Saturating ? 0xff
                                             : c == QCase::Extremes ? (((r() & 1) ? 0x0f : 0x00) | ((r() & 1) ? 0xf0 : 0x00))
                                                                    : r());
            }
            const size_t xrb = static_cast<size_t>(nb) * sizeof(block_q8_0) + 6;  // padded rows
            std::vector<uint8_t> xbuf(xrb * kMaxTokens);
            for (int64_t t = 0; t < kMaxTokens; ++t) {
                std::vector<block_q8_0> row(static_cast<size_t>(nb));
                make_activations(c, r, row.data(), n, -128);
                std::memcpy(xbuf.data() + static_cast<size_t>(t) * xrb, row.data(), row.size() * sizeof(block_q8_0));
            }
            auto xrow = [&](int64_t t) { return reinterpret_cast<const block_q8_0*>(xbuf.data() + static_cast<size_t>(t) * xrb); };
            std::vector<uint8_t> packed(reinterpret_cast<uint8_t*>(w.data()),
                                        reinterpret_cast<uint8_t*>(w.data()) + w.size() * sizeof(block_q4_0));
            const size_t group_bytes = 16 * static_cast<size_t>(nb) * sizeof(block_q4_0);
            for (int64_t g = 0; g < ngroups; ++g) repack_q4_0x16(packed.data() + static_cast<size_t>(g) * group_bytes, nb);
            if (&ks == &scalar_set()) {
                std::vector<uint8_t> back = packed;
                for (int64_t g = 0; g < ngroups; ++g) unpack_q4_0x16(back.data() + static_cast<size_t>(g) * group_bytes, nb);
                if (std::memcmp(back.data(), w.data(), back.size()) != 0)
                    ok = false, detail = fmt("nb=%" PRId64 ": unpack(repack(w)) != w", nb);
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
                                if (cell[k] != kSentinel)
                                    ok = false,
                                    detail = fmt("nb=%" PRId64 " nt=%" PRId64 ": y[%" PRId64 "][%" PRId64 "] past the rows was written", nb,
                                                 nt, t, i);
                            continue;
                        }
                        float got;
                        std::memcpy(&got, cell, sizeof got);
                        const float want = scalar_set().of(DType::Q4_0).dot(n, w.data() + i * nb, xrow(t));
                        ++pairs;
                        if (std::memcmp(&got, &want, sizeof got) != 0)
                            ok = false, detail = fmt("nb=%" PRId64 " groups=%" PRId64 " nt=%" PRId64 " y[%" PRId64 "][%" PRId64
                                                     "] = %.9g, reference dot %.9g (must be bit-identical)",
                                                     nb, ngroups, nt, t, i, got, want);
                    }
                if (ok && !y.guard_intact())
                    ok = false, detail = fmt("nb=%" PRId64 " nt=%" PRId64 ": sentinel after y overwritten", nb, nt);
            }
        }
    }
    report(ok, fmt("%s mul_q4_0x16_q8_0 %s", isa_name(ks.isa), qcase_name(c)),
           ok ? fmt("%" PRId64 " pairs in %" PRId64 " shapes bit-identical to the scalar reference dot", pairs, shapes) : detail);
}

}  // namespace

// The scalar set (the reference) runs only this family: its strides, ldy and tails.
void check_matrix(const KernelSet& ks) {
    const bool complete = ks.of(DType::Q4_0).mul && ks.of(DType::Q8_0).mul;
    report(complete, fmt("%s matrix kernels present", isa_name(ks.isa)), complete ? "" : "a mul_* pointer is null");
    if (!complete) return;
    for (QCase c : {QCase::Random, QCase::Extremes}) {
        if (c != QCase::Random && &ks == &scalar_set()) continue;  // the reference: strides, ldy and tails once
        check_mul<true>(ks, c);
        check_mul<false>(ks, c);
    }
    for (QCase c : {QCase::Random, QCase::Extremes, QCase::Saturating}) check_mul_x16(ks, c);
}

}  // namespace kt

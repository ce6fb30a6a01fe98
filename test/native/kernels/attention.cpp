// Kernel tests, attention and the other shared kernels: axpy_f16 (bit-exact), attn_scores_f16 and
// attn_pv_f16 (within kAttnRelTol of the reference, padding untouched) and softmax_f16r (within one
// fp16 step, summing to 1).
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "harness.h"

namespace kt {
namespace {

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
                x[static_cast<size_t>(i)] = round == 2
                                                ? static_cast<uint16_t>(r())
                                                : fp32_to_fp16(static_cast<float>(static_cast<int64_t>(r() % 20001) - 10000) / 1000.0f);
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

uint16_t random_half(std::mt19937_64& r, double scale) { return fp32_to_fp16(static_cast<float>(normal(r) * scale)); }

void check_attn_scores(const KernelSet& ks) {
    bool ok = true;
    std::string detail;
    int cases = 0;
    for (int64_t d : {1, 7, 8, 15, 16, 17, 40, 64, 80, 128, 129, 256}) {
        for (int64_t nq : {1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 17}) {
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
                            if (g != -7.0f)
                                ok = false,
                                detail = fmt("d=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 ": wrote padding at (%" PRId64 ",%" PRId64 ")", d,
                                             nq, nk, i, j);
                            continue;
                        }
                        double mag = 0.0;
                        for (int64_t c = 0; c < d; ++c)
                            mag += std::fabs(static_cast<double>(q[static_cast<size_t>(i * ldq + c)]) *
                                             fp16_to_fp32(k[static_cast<size_t>(j * ldk + c)]));
                        mag *= scale;
                        if (!(std::fabs(static_cast<double>(g) - w) <= kAttnRelTol * mag + 1e-30))
                            ok = false,
                            detail = fmt("d=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 " (%" PRId64 ",%" PRId64 "): want %.9g got %.9g", d, nq,
                                         nk, i, j, w, g);
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
        for (int64_t nq : {1, 2, 3, 4, 5, 6, 7, 9, 12, 13}) {
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
                            if (std::memcmp(&got[at], &o0[at], sizeof(float)) != 0)
                                ok = false,
                                detail = fmt("d=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 ": wrote padding at (%" PRId64 ",%" PRId64 ")", d,
                                             nq, nk, i, c);
                            continue;
                        }
                        double mag = std::fabs(o0[at]);
                        for (int64_t j = 0; j < nk; ++j)
                            mag += std::fabs(static_cast<double>(p[static_cast<size_t>(i * ldp + j)]) *
                                             fp16_to_fp32(v[static_cast<size_t>(j * ldv + c)]));
                        if (!(std::fabs(static_cast<double>(got[at]) - want[at]) <= kAttnRelTol * mag + 1e-30))
                            ok = false,
                            detail = fmt("d=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 " (%" PRId64 ",%" PRId64 "): want %.9g got %.9g", d, nq,
                                         nk, i, c, want[at], got[at]);
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
                    case 0: v = normal(r); break;                                     // typical scores
                    case 1: v = normal(r) * 30.0f; break;                             // peaked: many underflow to 0
                    case 2: v = static_cast<float>(r() % 3); break;                   // ties
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

}  // namespace

void check_attention(const KernelSet& ks) {
    check_axpy_f16(ks);
    check_attn_scores(ks);
    check_attn_pv(ks);
    check_softmax(ks);
}

}  // namespace kt

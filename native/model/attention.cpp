#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace moe {

namespace {

constexpr int kMaxHeadDim = 1024;  // the loader refuses larger heads (smallthinker.cpp)

// Tokens per tile: up to 16 (more queries per key row read), fewer when the context is long so
// that a tile's scores (queries x positions) stay under 4 MB per thread, and enough tiles for
// every thread.
int64_t tile_tokens(int64_t n, int64_t ctx, int gqa, int n_head_kv, int threads) {
    int64_t t = 16;
    while (t > 1 && t * gqa * ctx * 4 > (int64_t{4} << 20)) t /= 2;
    while (t > 1 && ((n + t - 1) / t) * static_cast<int64_t>(n_head_kv) < static_cast<int64_t>(threads) * 2) t /= 2;
    return std::max<int64_t>(1, std::min(t, n));
}

}  // namespace

void attention(ThreadPool& pool, const kernels::KernelSet& ks, const KvCache& kv, uint32_t il, const AttentionShape& shape, const float* q,
               int64_t ldq, int64_t n, int32_t pos0, int32_t window, float* out, int64_t ldo, std::vector<float>& scratch,
               const int32_t* pos) {
    // token t's position (ascending in t)
    const auto at = [&](int64_t t) -> int64_t { return pos ? pos[t] : pos0 + t; };
    const int D = shape.head_dim, n_head_kv = shape.n_head_kv;
    const int gqa = shape.n_head / n_head_kv;
    const int64_t NKV = static_cast<int64_t>(kv.row());
    const float kq_scale = 1.0f / std::sqrt(static_cast<float>(D));
    const bool swa = window > 0;
    const uint32_t c = kv.capacity(il);
    const uint16_t* kc = kv.k(il);
    const uint16_t* vc = kv.v(il);
    const int64_t tile = tile_tokens(n, at(n - 1) + 1, gqa, n_head_kv, pool.size());
    const int64_t nq_max = tile * gqa;
    const int64_t span_max = std::min<int64_t>(at(n - 1) + 1, static_cast<int64_t>(c));
    const size_t per_thread = static_cast<size_t>(nq_max * (span_max + 2 * D));
    if (scratch.size() < per_thread * pool.size()) scratch.resize(per_thread * pool.size());
    const int64_t n_tiles = (n + tile - 1) / tile;
    const kernels::FromF32Fn to_f16 = ks.of(DType::F16).from_f32;
    pool.parallel_for(n_tiles * n_head_kv, 1, [&](int64_t b, int64_t e, int tid) {
        float* base = &scratch[per_thread * static_cast<size_t>(tid)];
        for (int64_t it = b; it < e; ++it) {
            const int64_t t0 = (it / n_head_kv) * tile, t1 = std::min(n, t0 + tile);
            const int kvh = static_cast<int>(it % n_head_kv);
            const int64_t nq = (t1 - t0) * gqa;
            // keys [jlo, jhi): from the first token's window start to the last token
            const int64_t p_first = at(t0), p_last = at(t1 - 1);
            const int64_t jlo = swa ? std::max<int64_t>(0, p_first - window + 1) : 0, jhi = p_last + 1;
            const int64_t span = jhi - jlo;
            float* qf = base;             // nq x D
            float* of = qf + nq_max * D;  // nq x D
            float* sc = of + nq_max * D;  // nq x span
            // query (token t, head kvh*gqa + g) -> row (t - t0) * gqa + g; q rounded to fp16
            // (the set's conversion: the reference's bits)
            uint16_t q16[kMaxHeadDim];
            for (int64_t t = t0; t < t1; ++t)
                for (int g = 0; g < gqa; ++g) {
                    float* dst = qf + ((t - t0) * gqa + g) * D;
                    to_f16(q + t * ldq + static_cast<int64_t>(kvh * gqa + g) * D, q16, D);
                    for (int d = 0; d < D; ++d) dst[d] = fp16_to_fp32(q16[d]);
                }
            // the ring's slots for [jlo, jhi): at most two contiguous runs
            int64_t seg_j[2], seg_len[2];
            int nseg = 0;
            for (int64_t j = jlo; j < jhi;) {
                const int64_t slot = j % c;
                const int64_t len = std::min<int64_t>(jhi - j, static_cast<int64_t>(c) - slot);
                seg_j[nseg] = j;
                seg_len[nseg++] = len;
                j += len;
            }
            for (int sgi = 0; sgi < nseg; ++sgi) {
                const uint16_t* kr = kc + static_cast<size_t>(seg_j[sgi] % c) * NKV + static_cast<size_t>(kvh) * D;
                ks.attn_scores_f16(D, nq, qf, D, seg_len[sgi], kr, NKV, kq_scale, sc + (seg_j[sgi] - jlo), span);
            }
            // each query's own window [lo, p]; everything else in the span weighs 0
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t p = at(t);
                const int64_t lo = swa ? std::max<int64_t>(0, p - window + 1) : 0;
                for (int g = 0; g < gqa; ++g) {
                    float* row = sc + ((t - t0) * gqa + g) * span;
                    ks.softmax_f16r(p - lo + 1, row + (lo - jlo));
                    std::fill(row, row + (lo - jlo), 0.0f);
                    std::fill(row + (p - jlo + 1), row + span, 0.0f);
                }
            }
            std::fill(of, of + nq * D, 0.0f);
            for (int sgi = 0; sgi < nseg; ++sgi) {
                const uint16_t* vr = vc + static_cast<size_t>(seg_j[sgi] % c) * NKV + static_cast<size_t>(kvh) * D;
                ks.attn_pv_f16(D, nq, sc + (seg_j[sgi] - jlo), span, seg_len[sgi], vr, NKV, of, D);
            }
            for (int64_t t = t0; t < t1; ++t)
                for (int g = 0; g < gqa; ++g)
                    std::memcpy(out + t * ldo + static_cast<int64_t>(kvh * gqa + g) * D, of + ((t - t0) * gqa + g) * D, sizeof(float) * D);
        }
    });
}

}  // namespace moe

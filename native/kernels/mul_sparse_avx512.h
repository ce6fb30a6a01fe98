// KernelSet::mul_r16 and mul_nm of Q4_0 for the AVX-512 sets: the ReGLU-sparse layouts of the
// experts' up (rows relaid out by repack_q4_0r16) and down (neuron-major, relayout_q4_0nm).
// Included by avx512.cpp and avx512vnni.cpp only, after mul_x16_avx512.h, INSIDE their target
// pragma and anonymous namespace (Dp4 as there).
//
// Both return the scalar reference dot's bits: per row, the int32 sum of each block (its nibbles'
// offset folded in as -8 * sum(x)), converted, times d_w * d_x, added in block order.
#pragma once

#include "kernels/sparse_plan.h"

// ---- r16: any subset of rows, 16 blocks of one row per vector

// One token's activations for 16 blocks, laid out as an r16 row's 16 blocks: q[k] lane i = dword
// k of block i's qs, d lane i = its scale, corr lane i = -8 * the sum of its qs.
struct alignas(64) R16X {
    __m512i q[8];
    __m512 d;
    __m512i corr;
};

template <class Dp4>
void r16_prepare(const block_q8_0* x, int64_t ng, R16X* out) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(static_cast<int>(sizeof(block_q8_0))));
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t g = 0; g < ng; ++g) {
        const uint8_t* base = reinterpret_cast<const uint8_t*>(x + 16 * g);
        R16X& o = out[g];
        __m512i sum = _mm512_setzero_si512();
        for (int k = 0; k < 8; ++k) {
            o.q[k] = _mm512_i32gather_epi32(idx, base + 2 + 4 * k, 1);
            sum = Dp4::dp(sum, ones, o.q[k]);
        }
        const __m512i d = _mm512_i32gather_epi32(idx, base, 1);
        o.d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d));  // the low 16 bits: the fp16 scale
        o.corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 3));
    }
}

// In-register transpose of 16 vectors (a[i] lane j -> a[j] lane i).
inline void transpose16(__m512 (&a)[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
        t[2 * k] = _mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
        const __m512d t0 = _mm512_castps_pd(t[4 * k]), t1 = _mm512_castps_pd(t[4 * k + 1]);
        const __m512d t2 = _mm512_castps_pd(t[4 * k + 2]), t3 = _mm512_castps_pd(t[4 * k + 3]);
        a[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        a[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        a[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        a[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    // a[4k + m], 128-bit lane L: rows 4k..4k+3 of column 4L + m
#pragma GCC unroll 4
    for (int m = 0; m < 4; ++m) {
        const __m512 e0 = _mm512_shuffle_f32x4(a[m], a[4 + m], 0x44), e1 = _mm512_shuffle_f32x4(a[m], a[4 + m], 0xee);
        const __m512 e2 = _mm512_shuffle_f32x4(a[8 + m], a[12 + m], 0x44), e3 = _mm512_shuffle_f32x4(a[8 + m], a[12 + m], 0xee);
        t[m] = _mm512_shuffle_f32x4(e0, e2, 0x88);
        t[4 + m] = _mm512_shuffle_f32x4(e0, e2, 0xdd);
        t[8 + m] = _mm512_shuffle_f32x4(e1, e3, 0x88);
        t[12 + m] = _mm512_shuffle_f32x4(e1, e3, 0xdd);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) a[i] = t[i];
}

// 16 rows x T tokens: out[t * 16 + i] = dot(row i, token t).
// nextp: the next tile's rows, prefetched meanwhile (a row list jumps, so the hardware cannot).
template <class Dp4, int T>
void r16_tile(int64_t ng, const uint8_t* const* rowp, const uint8_t* const* nextp, const R16X* const* xt, float* out) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    alignas(64) float p[T][16][16];  // p[t][i][j]: row i's product of block j of the group
    __m512 acc[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < ng; ++g) {
        for (int i = 0; i < 16; ++i) {
            const uint8_t* blk = rowp[i] + static_cast<size_t>(g) * kQ4x16BlockBytes;
            const uint8_t* ahead = nextp[i] + static_cast<size_t>(g) * kQ4x16BlockBytes;
#pragma GCC unroll 5
            for (int l = 0; l < 5; ++l) _mm_prefetch(reinterpret_cast<const char*>(ahead + 64 * l), _MM_HINT_T0);
            const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
            __m512i lo[4], hi[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                const __m512i raw = _mm512_loadu_si512(blk + 32 + 64 * k);
                lo[k] = _mm512_and_si512(raw, m4);
                hi[k] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) {
                const R16X& xv = xt[t][g];
                __m512i s = xv.corr;
#pragma GCC unroll 4
                for (int k = 0; k < 4; ++k) {
                    s = Dp4::dp(s, lo[k], xv.q[k]);
                    s = Dp4::dp(s, hi[k], xv.q[4 + k]);
                }
                _mm512_store_ps(p[t][i], opaque512(_mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(ws, xv.d))));
            }
        }
#pragma GCC unroll 1
        for (int t = 0; t < T; ++t) {
            __m512 c[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; ++i) c[i] = _mm512_load_ps(p[t][i]);
            transpose16(c);
#pragma GCC unroll 16
            for (int j = 0; j < 16; ++j) acc[t] = _mm512_add_ps(acc[t], c[j]);  // block order, per row
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

template <class Dp4>
void mul_r16_512(int64_t n, const block_q4_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x,
                 size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    using Tile = void (*)(int64_t, const uint8_t* const*, const uint8_t* const*, const R16X* const*, float*);
    static constexpr Tile kTiles[kX16Tokens] = {r16_tile<Dp4, 1>, r16_tile<Dp4, 2>, r16_tile<Dp4, 3>, r16_tile<Dp4, 4>};
    r16_rows<R16X>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy, r16_prepare<Dp4>, kTiles);
}

// ---- nm: neuron-major, only the listed columns (the plan: sparse_plan.h)

// One tile of 128 rows for T tokens: y[t * ldy + i] for i < 128 (rows tile * 128 + i).
template <class Dp4, int T>
void nm_tile(int64_t m, const uint8_t* w, int64_t tile, const NmPlan& p, int64_t t0, int64_t nt, float* y, int64_t ldy) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const size_t nq = p.col.size() / 4, nbl = p.blocks.size(), block_bytes = 18 * static_cast<size_t>(m);
    const size_t at = static_cast<size_t>(tile) * 64;
    (void)nt;
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t)
        for (int v = 0; v < 8; ++v) _mm512_storeu_ps(y + t * ldy + 16 * v, _mm512_setzero_ps());
    for (size_t bi = 0; bi < nbl; ++bi) {
        const NmPlan::Block& blk = p.blocks[bi];
        __m512i acc[T][8];
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
            const __m512i c = _mm512_set1_epi32(p.corr[static_cast<size_t>(t0 + t) * nbl + bi]);
#pragma GCC unroll 8
            for (int v = 0; v < 8; ++v) acc[t][v] = c;
        }
        for (size_t q = blk.q0; q < blk.q1; ++q) {
            const uint32_t* c = &p.col[4 * q];
            __m512i lo[4], hi[4];
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) {
                const uint8_t* src = w + c[u] + at;
                _mm_prefetch(reinterpret_cast<const char*>(src + 64), _MM_HINT_T0);  // the next tile
                const __m512i raw = _mm512_loadu_si512(src);
                lo[u] = _mm512_and_si512(raw, m4);
                hi[u] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
            }
            // 4 columns' bytes per int32 lane, rows in order (nm_row)
            __m512i wv[8];
            {
                const __m512i abl = _mm512_unpacklo_epi8(lo[0], lo[1]), abh = _mm512_unpackhi_epi8(lo[0], lo[1]);
                const __m512i cdl = _mm512_unpacklo_epi8(lo[2], lo[3]), cdh = _mm512_unpackhi_epi8(lo[2], lo[3]);
                wv[0] = _mm512_unpacklo_epi16(abl, cdl);
                wv[1] = _mm512_unpackhi_epi16(abl, cdl);
                wv[2] = _mm512_unpacklo_epi16(abh, cdh);
                wv[3] = _mm512_unpackhi_epi16(abh, cdh);
            }
            {
                const __m512i abl = _mm512_unpacklo_epi8(hi[0], hi[1]), abh = _mm512_unpackhi_epi8(hi[0], hi[1]);
                const __m512i cdl = _mm512_unpacklo_epi8(hi[2], hi[3]), cdh = _mm512_unpackhi_epi8(hi[2], hi[3]);
                wv[4] = _mm512_unpacklo_epi16(abl, cdl);
                wv[5] = _mm512_unpackhi_epi16(abl, cdl);
                wv[6] = _mm512_unpacklo_epi16(abh, cdh);
                wv[7] = _mm512_unpackhi_epi16(abh, cdh);
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) {
                const __m512i xb = _mm512_set1_epi32(p.xq[static_cast<size_t>(t0 + t) * nq + q]);
#pragma GCC unroll 8
                for (int v = 0; v < 8; ++v) acc[t][v] = Dp4::dp(acc[t][v], wv[v], xb);
            }
        }
        const uint8_t* scales = w + static_cast<size_t>(blk.b) * block_bytes + 2 * static_cast<size_t>(tile) * kNmTileRows;
        _mm_prefetch(reinterpret_cast<const char*>(scales + 256), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(scales + 320), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(scales + 384), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(scales + 448), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int v = 0; v < 8; ++v) {
            const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * v)));
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) {
                const __m512 pr = _mm512_mul_ps(ws, _mm512_set1_ps(p.dx[static_cast<size_t>(t0 + t) * nbl + bi]));
                float* yv = y + t * ldy + 16 * v;
                _mm512_storeu_ps(yv, _mm512_add_ps(_mm512_loadu_ps(yv), opaque512(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[t][v]), pr))));
            }
        }
    }
}

template <class Dp4>
void mul_nm_512(int64_t n, int64_t m, const uint8_t* w, int64_t r0, int64_t nr, const int32_t* cols, int64_t ncols, const void* x,
                size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    (void)n;
    thread_local NmPlan plan;
    nm_plan(m, cols, ncols, static_cast<const block_q8_0*>(x), x_row_bytes, nt, plan);
    // The first tile's lines of every listed column, requested all at once (each tile prefetches
    // the next one's as it goes): the columns are scattered, the hardware cannot see them coming.
    const size_t at0 = static_cast<size_t>(r0 / kNmTileRows) * 64;
    for (uint32_t c : plan.col) _mm_prefetch(reinterpret_cast<const char*>(w + c + at0), _MM_HINT_T0);
    for (int64_t tile = r0 / kNmTileRows; tile < (r0 + nr) / kNmTileRows; ++tile) {
        float* yt = y + tile * kNmTileRows - r0;
        for (int64_t t0 = 0; t0 < nt; t0 += 2) {
            if (nt - t0 >= 2)
                nm_tile<Dp4, 2>(m, w, tile, plan, t0, nt, yt + t0 * ldy, ldy);
            else
                nm_tile<Dp4, 1>(m, w, tile, plan, t0, nt, yt + t0 * ldy, ldy);
        }
    }
}

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

// F fours of listed columns of one block (4F column pointers at the chunk's first tile) over
// ntile tiles of 128 rows, added into acc (T tokens x ntile * 128 int32 sums; token t's activation
// bytes xb[t][f]): each column's bytes read in order, and the next fours' (pf, 4F pointers; nullptr
// at the end) prefetched alongside. Two fours at a time halve the sums' loads and stores.
template <class Dp4, int T, int F>
inline void nm_fours(const uint8_t* const* c, const uint8_t* const* pf, int64_t ntile, const __m512i (*xb)[2], int32_t* acc,
                     int64_t ld_acc) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t tile = 0; tile < ntile; ++tile) {
        // per four: its 4 columns' bytes per int32 lane, rows in order (nm_row), low nibbles in
        // wv[f][0..3] (rows 0-63 of the tile), high in wv[f][4..7] (rows 64-127)
        __m512i wv[F][8];
#pragma GCC unroll 2
        for (int f = 0; f < F; ++f) {
            __m512i raw[4];
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) {
                if (pf) _mm_prefetch(reinterpret_cast<const char*>(pf[4 * f + u] + 64 * tile), _MM_HINT_T1);
                raw[u] = _mm512_loadu_si512(c[4 * f + u] + 64 * tile);
            }
            const __m512i abl = _mm512_unpacklo_epi8(raw[0], raw[1]), abh = _mm512_unpackhi_epi8(raw[0], raw[1]);
            const __m512i cdl = _mm512_unpacklo_epi8(raw[2], raw[3]), cdh = _mm512_unpackhi_epi8(raw[2], raw[3]);
            const __m512i g[4] = {_mm512_unpacklo_epi16(abl, cdl), _mm512_unpackhi_epi16(abl, cdl), _mm512_unpacklo_epi16(abh, cdh),
                                  _mm512_unpackhi_epi16(abh, cdh)};
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                wv[f][k] = _mm512_and_si512(g[k], m4);
                wv[f][4 + k] = _mm512_and_si512(_mm512_srli_epi16(g[k], 4), m4);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
            int32_t* a = acc + t * ld_acc + tile * kNmTileRows;
#pragma GCC unroll 8
            for (int v = 0; v < 8; ++v) {
                __m512i s = _mm512_load_si512(a + 16 * v);
#pragma GCC unroll 2
                for (int f = 0; f < F; ++f) s = Dp4::dp(s, wv[f][v], xb[t][f]);
                _mm512_store_si512(a + 16 * v, s);
            }
        }
    }
}

// Rows r0 .. r0 + nr (whole tiles) for T tokens from t0: block after block of the plan, each
// block's sums (int32, per row and token) kept in L1 while its columns are read one four at a
// time, then scaled and added to y in block order. Reading tile by tile instead (64 bytes of every
// listed column per pass, sums in registers) jumped 768 bytes per line for the 4B's down: with two
// threads decoding from DRAM (--bench=experts, Sapphire Rapids) its down took ~1.3x the dense
// kernel's time at half the neurons kept; column by column, about the same time as dense.
template <class Dp4, int T>
void nm_rows(int64_t m, const uint8_t* w, int64_t r0, int64_t nr, const NmPlan& p, int64_t t0, float* y, int64_t ldy) {
    const size_t nq = p.col.size() / 4, nbl = p.blocks.size(), block_bytes = 18 * static_cast<size_t>(m);
    const int64_t ntile = nr / kNmTileRows;
    const size_t at = static_cast<size_t>(r0 / kNmTileRows) * 64;
    struct alignas(64) Line {
        int32_t v[16];
    };
    thread_local std::vector<Line> acc_buf;
    if (acc_buf.size() < static_cast<size_t>(T * nr / 16)) acc_buf.resize(static_cast<size_t>(T * nr / 16));
    int32_t* acc = reinterpret_cast<int32_t*>(acc_buf.data());
    for (int t = 0; t < T; ++t) std::fill(y + t * ldy, y + t * ldy + nr, 0.0f);
    for (size_t bi = 0; bi < nbl; ++bi) {
        const NmPlan::Block& blk = p.blocks[bi];
        for (int t = 0; t < T; ++t) {
            const __m512i c = _mm512_set1_epi32(p.corr[static_cast<size_t>(t0 + t) * nbl + bi]);
            for (int64_t i = 0; i < nr; i += 16) _mm512_store_si512(acc + t * nr + i, c);
        }
        // the next block's scales, prefetched while this block's columns are read
        const uint8_t* next_scales =
            bi + 1 < nbl ? w + static_cast<size_t>(p.blocks[bi + 1].b) * block_bytes + 2 * static_cast<size_t>(r0) : nullptr;
        for (size_t q = blk.q0; q < blk.q1;) {
            const int nf = q + 2 <= blk.q1 ? 2 : 1;
            const uint8_t* c[8];
            const uint8_t* pf[8];
            for (int u = 0; u < 4 * nf; ++u) c[u] = w + p.col[4 * q + static_cast<size_t>(u)] + at;
            // the fours after these (in the next block too), as many as these
            const size_t qn = q + static_cast<size_t>(nf), nn = std::min<size_t>(static_cast<size_t>(nf), nq - qn);
            for (size_t u = 0; nn && u < 4 * static_cast<size_t>(nf); ++u)
                pf[u] = w + p.col[4 * (qn + (u / 4 < nn ? u / 4 : 0)) + u % 4] + at;  // (fewer: the first again)
            if (q == blk.q0 && next_scales)
                for (int64_t l = 0; l < 2 * nr; l += 64) _mm_prefetch(reinterpret_cast<const char*>(next_scales + l), _MM_HINT_T1);
            __m512i xb[T][2];
            for (int t = 0; t < T; ++t)
                for (int f = 0; f < nf; ++f)
                    xb[t][f] = _mm512_set1_epi32(p.xq[static_cast<size_t>(t0 + t) * nq + q + static_cast<size_t>(f)]);
            const uint8_t* const* pfp = nn ? pf : nullptr;
            if (nf == 2)
                nm_fours<Dp4, T, 2>(c, pfp, ntile, xb, acc, nr);
            else
                nm_fours<Dp4, T, 1>(c, pfp, ntile, xb, acc, nr);
            q += static_cast<size_t>(nf);
        }
        const uint8_t* scales = w + static_cast<size_t>(blk.b) * block_bytes + 2 * static_cast<size_t>(r0);
        for (int64_t i = 0; i < nr; i += 16) {
            const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 2 * i)));
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) {
                const __m512 pr = _mm512_mul_ps(ws, _mm512_set1_ps(p.dx[static_cast<size_t>(t0 + t) * nbl + bi]));
                float* yv = y + t * ldy + i;
                const __m512i a = _mm512_load_si512(acc + t * nr + i);
                _mm512_storeu_ps(yv, _mm512_add_ps(_mm512_loadu_ps(yv), opaque512(_mm512_mul_ps(_mm512_cvtepi32_ps(a), pr))));
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
    // The first four's columns and the first block's scales, requested at once (each four
    // prefetches the next one's as it goes): the columns are scattered, the hardware cannot see
    // them coming.
    const size_t at0 = static_cast<size_t>(r0 / kNmTileRows) * 64;
    if (!plan.blocks.empty()) {
        for (size_t u = 0; u < 4; ++u)
            for (int64_t l = 0; l < nr / 2; l += 64) _mm_prefetch(reinterpret_cast<const char*>(w + plan.col[u] + at0 + l), _MM_HINT_T1);
        const uint8_t* s0 = w + static_cast<size_t>(plan.blocks[0].b) * 18 * static_cast<size_t>(m) + 2 * static_cast<size_t>(r0);
        for (int64_t l = 0; l < 2 * nr; l += 64) _mm_prefetch(reinterpret_cast<const char*>(s0 + l), _MM_HINT_T1);
    }
    for (int64_t t0 = 0; t0 < nt; t0 += 2) {
        if (nt - t0 >= 2)
            nm_rows<Dp4, 2>(m, w, r0, nr, plan, t0, y + t0 * ldy, ldy);
        else
            nm_rows<Dp4, 1>(m, w, r0, nr, plan, t0, y + t0 * ldy, ldy);
    }
}

// KernelSet::mul_r16 and mul_nm of Q4_0 for the AVX2 set: the ReGLU-sparse layouts of the experts'
// up (rows relaid out by repack_q4_0r16) and down (neuron-major, relayout_q4_0nm), as
// mul_sparse_avx512.h computes them, 8 lanes per vector. Included by avx2.cpp only, after
// mul_x16.h and opaque256, INSIDE its target pragma and anonymous namespace.
//
// Both return the scalar reference dot's bits: per row, the int32 sum of each block (its nibbles'
// offset folded in as -8 * sum(x)), converted, times d_w * d_x, added in block order. The byte
// products are summed in int16 first: a nibble (<= 15) times a byte (>= -128, <= 127) paired by
// maddubs is at most 3840 in size, and at most 8 such pairs are added (30720 < 32768).
#pragma once

#include "kernels/sparse_plan.h"

namespace sparse256 {

inline int32_t load_i32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// ---- r16: any subset of rows, 8 blocks of one row per vector (a group of 16 blocks in two halves)

// One token's activations for 16 blocks, laid out as an r16 row's group: q[h][k] lane i = dword k of
// block 8h + i's qs (k < 4: elements 4k..4k+3, the low nibbles' partners; k >= 4: elements 16 + ...),
// d[h] lane i = its scale, corr[h] lane i = -8 * the sum of its qs.
struct alignas(32) R16X {
    __m256i q[2][8];
    __m256 d[2];
    __m256i corr[2];
};

inline void r16_prepare(const block_q8_0* x, int64_t ng, R16X* out) {
    for (int64_t g = 0; g < ng; ++g) {
        alignas(32) int32_t q[2][8][8], corr[2][8];
        alignas(32) float d[2][8];
        for (int i = 0; i < 16; ++i) {
            const block_q8_0& b = x[16 * g + i];
            for (int k = 0; k < 8; ++k) q[i / 8][k][i % 8] = load_i32(b.qs + 4 * k);
            d[i / 8][i % 8] = g_fp16_table[b.d];
            corr[i / 8][i % 8] = x16_correction(b);
        }
        R16X& o = out[g];
        for (int h = 0; h < 2; ++h) {
            for (int k = 0; k < 8; ++k) o.q[h][k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(q[h][k]));
            o.d[h] = _mm256_load_ps(d[h]);
            o.corr[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(corr[h]));
        }
    }
}

// In-register transpose of 8 vectors (a[i] lane j -> a[j] lane i).
inline void transpose8(__m256 (&a)[8]) {
    __m256 t[8];
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
        t[2 * k] = _mm256_unpacklo_ps(a[2 * k], a[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_ps(a[2 * k], a[2 * k + 1]);
    }
    __m256 u[8];
#pragma GCC unroll 2
    for (int k = 0; k < 2; ++k) {
        const __m256d t0 = _mm256_castps_pd(t[4 * k]), t1 = _mm256_castps_pd(t[4 * k + 1]);
        const __m256d t2 = _mm256_castps_pd(t[4 * k + 2]), t3 = _mm256_castps_pd(t[4 * k + 3]);
        u[4 * k] = _mm256_castpd_ps(_mm256_unpacklo_pd(t0, t2));
        u[4 * k + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(t0, t2));
        u[4 * k + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(t1, t3));
        u[4 * k + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(t1, t3));
    }
    // u[4k + m], 128-bit lane L: rows 4k..4k+3 of column 4L + m
#pragma GCC unroll 4
    for (int m = 0; m < 4; ++m) {
        a[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);
        a[4 + m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
    }
}

// 16 rows x T tokens: out[t * 16 + i] = dot(row i, token t).
// nextp: the next tile's rows, prefetched meanwhile (a row list jumps, so the hardware cannot).
template <int T>
void r16_tile(int64_t ng, const uint8_t* const* rowp, const uint8_t* const* nextp, const R16X* const* xt, float* out) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i ones = _mm256_set1_epi16(1);
    alignas(32) float p[T][16][16];  // p[t][i][j]: row i's product of block j of the group
    __m256 acc[T][2];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (int64_t g = 0; g < ng; ++g) {
        for (int i = 0; i < 16; ++i) {
            const uint8_t* blk = rowp[i] + static_cast<size_t>(g) * kQ4x16BlockBytes;
            const uint8_t* ahead = nextp[i] + static_cast<size_t>(g) * kQ4x16BlockBytes;
#pragma GCC unroll 5
            for (int l = 0; l < 5; ++l) _mm_prefetch(reinterpret_cast<const char*>(ahead + 64 * l), _MM_HINT_T0);
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
                const __m256 ws = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * h)));
                __m256i lo[4], hi[4];
#pragma GCC unroll 4
                for (int k = 0; k < 4; ++k) {
                    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 64 * k + 32 * h));
                    lo[k] = _mm256_and_si256(raw, m4);
                    hi[k] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                }
#pragma GCC unroll 4
                for (int t = 0; t < T; ++t) {
                    const R16X& xv = xt[t][g];
                    __m256i s16 = _mm256_setzero_si256();
#pragma GCC unroll 4
                    for (int k = 0; k < 4; ++k) {
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(lo[k], xv.q[h][k]));
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(hi[k], xv.q[h][4 + k]));
                    }
                    const __m256i s = _mm256_add_epi32(xv.corr[h], _mm256_madd_epi16(s16, ones));
                    _mm256_store_ps(p[t][i] + 8 * h, opaque256(_mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(ws, xv.d[h]))));
                }
            }
        }
#pragma GCC unroll 1
        for (int t = 0; t < T; ++t)
#pragma GCC unroll 1
            for (int rh = 0; rh < 2; ++rh)  // rows 8rh..8rh+7
#pragma GCC unroll 2
                for (int bh = 0; bh < 2; ++bh) {  // blocks 8bh..8bh+7, in order
                    __m256 c[8];
#pragma GCC unroll 8
                    for (int i = 0; i < 8; ++i) c[i] = _mm256_load_ps(p[t][8 * rh + i] + 8 * bh);
                    transpose8(c);
#pragma GCC unroll 8
                    for (int j = 0; j < 8; ++j) acc[t][rh] = _mm256_add_ps(acc[t][rh], c[j]);
                }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
        _mm256_storeu_ps(out + 16 * t, acc[t][0]);
        _mm256_storeu_ps(out + 16 * t + 8, acc[t][1]);
    }
}

inline void mul_r16(int64_t n, const block_q4_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x,
                    size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    using Tile = void (*)(int64_t, const uint8_t* const*, const uint8_t* const*, const R16X* const*, float*);
    static constexpr Tile kTiles[kX16Tokens] = {r16_tile<1>, r16_tile<2>, r16_tile<3>, r16_tile<4>};
    r16_rows<R16X>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy, r16_prepare, kTiles);
}

// ---- nm: neuron-major, only the listed columns
//
// A tile's 64 bytes of a column in two halves of 32: half h holds the 128-bit lanes 2h and 2h+1 of
// the AVX-512 kernel's vectors, so after the same byte/word interleave of a four's columns, vector
// v of half h holds rows 16v + 8h .. 16v + 8h + 7 in order (v < 4: low nibbles, rows 0..63;
// v >= 4: high nibbles, rows 64..127), one row per int32 lane, 4 columns per lane.

// A four's columns (c[u]: 32 nibbles of column u) interleaved to one row per int32 lane, 4 columns
// per lane, their products with the four's activation bytes xb added to acc[0..3] in int16.
inline void nm_madd4(const __m256i (&c)[4], __m256i xb, __m256i* acc) {
    const __m256i abl = _mm256_unpacklo_epi8(c[0], c[1]), abh = _mm256_unpackhi_epi8(c[0], c[1]);
    const __m256i cdl = _mm256_unpacklo_epi8(c[2], c[3]), cdh = _mm256_unpackhi_epi8(c[2], c[3]);
    acc[0] = _mm256_add_epi16(acc[0], _mm256_maddubs_epi16(_mm256_unpacklo_epi16(abl, cdl), xb));
    acc[1] = _mm256_add_epi16(acc[1], _mm256_maddubs_epi16(_mm256_unpackhi_epi16(abl, cdl), xb));
    acc[2] = _mm256_add_epi16(acc[2], _mm256_maddubs_epi16(_mm256_unpacklo_epi16(abh, cdh), xb));
    acc[3] = _mm256_add_epi16(acc[3], _mm256_maddubs_epi16(_mm256_unpackhi_epi16(abh, cdh), xb));
}

// Block bi's contribution to one tile of 128 rows for one token, added to y[i] for i < 128 (rows
// tile * 128 + i).
inline void nm_block_tile(int64_t m, const uint8_t* w, int64_t tile, const NmPlan& p, size_t bi, int64_t t, float* y) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i ones = _mm256_set1_epi16(1);
    const size_t nq = p.col.size() / 4, nbl = p.blocks.size(), block_bytes = 18 * static_cast<size_t>(m);
    const size_t at = static_cast<size_t>(tile) * 64;
    const NmPlan::Block& blk = p.blocks[bi];
    const uint8_t* scales = w + static_cast<size_t>(blk.b) * block_bytes + 2 * static_cast<size_t>(tile) * kNmTileRows;
    const __m256i corr = _mm256_set1_epi32(p.corr[static_cast<size_t>(t) * nbl + bi]);
    const __m256 dx = _mm256_set1_ps(p.dx[static_cast<size_t>(t) * nbl + bi]);
    for (int h = 0; h < 2; ++h) {
        __m256i acc[8];
#pragma GCC unroll 8
        for (int v = 0; v < 8; ++v) acc[v] = _mm256_setzero_si256();
        for (size_t q = blk.q0; q < blk.q1; ++q) {  // at most 8 fours: the int16 sums cannot overflow
            const uint32_t* c = &p.col[4 * q];
            __m256i lo[4], hi[4];
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) {
                const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + c[u] + at + 32 * h));
                lo[u] = _mm256_and_si256(raw, m4);
                hi[u] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            }
            const __m256i xb = _mm256_set1_epi32(p.xq[static_cast<size_t>(t) * nq + q]);
            nm_madd4(lo, xb, acc);
            nm_madd4(hi, xb, acc + 4);
        }
#pragma GCC unroll 8
        for (int v = 0; v < 8; ++v) {
            const int row = 16 * v + 8 * h;
            const __m256 ws = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 2 * row)));
            const __m256i s = _mm256_add_epi32(corr, _mm256_madd_epi16(acc[v], ones));
            float* yv = y + row;
            _mm256_storeu_ps(yv,
                             _mm256_add_ps(_mm256_loadu_ps(yv), opaque256(_mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(ws, dx)))));
        }
    }
}

// Block bi's listed columns and scales for one tile of rows (the column line at byte at),
// requested column by column.
inline void nm_prefetch_tile(int64_t m, const uint8_t* w, const NmPlan& p, size_t bi, size_t at) {
    const NmPlan::Block& blk = p.blocks[bi];
    const uint8_t* scales = w + static_cast<size_t>(blk.b) * 18 * static_cast<size_t>(m) + 4 * at;
#pragma GCC unroll 4
    for (int l = 0; l < 4; ++l) _mm_prefetch(reinterpret_cast<const char*>(scales + 64 * l), _MM_HINT_T1);
    for (size_t q = 4 * blk.q0; q < 4 * blk.q1; ++q)
        if (p.js[q] >= 0) _mm_prefetch(reinterpret_cast<const char*>(w + p.col[q] + at), _MM_HINT_T1);
}

constexpr size_t kNmAhead = 2;  // blocks: a 36%-kept 4B down block is ~12 KB

inline void mul_nm(int64_t n, int64_t m, const uint8_t* w, int64_t r0, int64_t nr, const int32_t* cols, int64_t ncols, const void* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    (void)n;
    thread_local NmPlan plan;
    nm_plan(m, cols, ncols, static_cast<const block_q8_0*>(x), x_row_bytes, nt, plan);
    const int64_t tile0 = r0 / kNmTileRows, tile1 = (r0 + nr) / kNmTileRows;
    for (int64_t t = 0; t < nt; ++t)
        for (int64_t i = tile0 * kNmTileRows; i < tile1 * kNmTileRows; ++i) y[t * ldy + i - r0] = 0.0f;
    // Block by block (each row still adds the blocks in order): a block's columns are read as short
    // sequential runs, the next block's requested while this one computes.
    const size_t nbl = plan.blocks.size();
    for (size_t bi = 0; bi < kNmAhead && bi < nbl; ++bi)
        for (int64_t tile = tile0; tile < tile1; ++tile) nm_prefetch_tile(m, w, plan, bi, static_cast<size_t>(tile) * 64);
    for (size_t bi = 0; bi < nbl; ++bi)
        for (int64_t tile = tile0; tile < tile1; ++tile) {
            if (bi + kNmAhead < nbl) nm_prefetch_tile(m, w, plan, bi + kNmAhead, static_cast<size_t>(tile) * 64);
            for (int64_t t = 0; t < nt; ++t) nm_block_tile(m, w, tile, plan, bi, t, y + t * ldy + tile * kNmTileRows - r0);
        }
}

}  // namespace sparse256

// KernelSet::mul_q4_0x16_q8_0 for the AVX-512 sets: weights repacked 16 rows per block
// (repack_q4_0x16), one row per int32 lane. Included by avx512.cpp and avx512vnni.cpp only,
// INSIDE their target pragma and anonymous namespace; Dp4 supplies the 4-byte dot step:
// static __m512i dp(__m512i acc, __m512i u8, __m512i s8) = acc + per-lane sum of 4 u8*s8 products.
//
// Per block and token: s = -8 * sum(x) (the nibbles' offset), plus the 8 4-byte dots of the
// block's unsigned nibbles with the token's bytes broadcast; then, as the scalar reference dot:
// acc = acc + float(s) * (d_w * d_x), so the results are the reference's bits.
#pragma once

#include "kernels/mul_x16.h"

// Prefetch distance along the weight stream. Into L2 (T1), not L1: decoding from DRAM (4B shapes,
// 2 threads, Sapphire Rapids, 4 alternating runs) T0 -> T1 took the expert FFNs 3-10% less time,
// q/k/v 4-10%, the attention output 7-14% (16 blocks ahead: better for q/k/v, worse for experts).
constexpr int64_t kX16PrefetchBlocks = 8;

inline __m512 opaque512(__m512 v) {
    __asm__("" : "+v"(v));
    return v;
}

inline int32_t load_i32(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

template <class Dp4, int T>
void x16_tile(int64_t nb, const uint8_t* grp, const block_q8_0* const* xt, const int32_t* corr, float* y, int64_t ldy) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = grp + static_cast<size_t>(b) * kQ4x16BlockBytes;
        const uint8_t* ahead = blk + kX16PrefetchBlocks * kQ4x16BlockBytes;
#pragma GCC unroll 5
        for (int l = 0; l < 5; ++l) _mm_prefetch(reinterpret_cast<const char*>(ahead + 64 * l), _MM_HINT_T1);
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
            const block_q8_0& xb = xt[t][b];
            __m512i s = _mm512_set1_epi32(corr[t * nb + b]);
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                s = Dp4::dp(s, lo[k], _mm512_set1_epi32(load_i32(xb.qs + 4 * k)));
                s = Dp4::dp(s, hi[k], _mm512_set1_epi32(load_i32(xb.qs + 16 + 4 * k)));
            }
            const __m512 p = _mm512_mul_ps(ws, _mm512_set1_ps(g_fp16_table[xb.d]));
            acc[t] = _mm512_add_ps(acc[t], opaque512(_mm512_mul_ps(_mm512_cvtepi32_ps(s), p)));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

template <class Dp4>
void mul_x16_512(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_0* x, size_t x_row_bytes, int64_t nt,
                 float* y, int64_t ldy) {
    static constexpr X16Tile kTiles[kX16Tokens] = {x16_tile<Dp4, 1>, x16_tile<Dp4, 2>, x16_tile<Dp4, 3>, x16_tile<Dp4, 4>};
    mul_x16(kTiles, n, w, group_bytes, ngroups, x, x_row_bytes, nt, y, ldy);
}

// The driver of KernelSet::mul_q4_0x16_q8_0 shared by the AVX2 and AVX-512 sets (weights relaid
// out by repack_q4_0x16). Included by avx2.cpp and mul_x16_avx512.h only, INSIDE their target
// pragma (AVX2 at least) and anonymous namespace; each supplies its tiles of 16 rows x 1..4 tokens:
// void tile(int64_t nb, const uint8_t* group, const block_q8_0* const* x, const int32_t* corr,
//           float* y, int64_t ldy), where corr[t * nb + b] = -8 * sum(x[t][b].qs).
#pragma once

constexpr int kX16Tokens = 4;           // tokens per tile
constexpr int64_t kX16TokenChunk = 64;  // tokens per pass over the rows (their blocks stay in L2)

using X16Tile = void (*)(int64_t, const uint8_t*, const block_q8_0* const*, const int32_t*, float*, int64_t);

// -8 * the sum of a block's 32 activation bytes (the nibbles' offset of 8, for every row at once).
inline int32_t x16_correction(const block_q8_0& b) {
    const __m256i u =
        _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)), _mm256_set1_epi8(static_cast<char>(0x80)));
    const __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());  // 4 sums of 8 (x + 128)
    const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const int64_t total = _mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1) - 32 * 128;
    return static_cast<int32_t>(-8 * total);
}

inline void mul_x16(const X16Tile (&tiles)[kX16Tokens], int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups,
                    const block_q8_0* x, size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    const int64_t nb = n / QK4_0;
    thread_local std::vector<int32_t> corr;
    const block_q8_0* xt[kX16TokenChunk];
    for (int64_t c0 = 0; c0 < nt; c0 += kX16TokenChunk) {
        const int64_t cn = nt - c0 < kX16TokenChunk ? nt - c0 : kX16TokenChunk;
        if (corr.size() < static_cast<size_t>(cn * nb)) corr.resize(static_cast<size_t>(cn * nb));
        for (int64_t t = 0; t < cn; ++t) {
            xt[t] = reinterpret_cast<const block_q8_0*>(reinterpret_cast<const uint8_t*>(x) + static_cast<size_t>(c0 + t) * x_row_bytes);
            for (int64_t b = 0; b < nb; ++b) corr[static_cast<size_t>(t * nb + b)] = x16_correction(xt[t][b]);
        }
        for (int64_t g = 0; g < ngroups; ++g) {
            const uint8_t* grp = w + static_cast<size_t>(g) * group_bytes;
            for (int64_t t0 = 0; t0 < cn; t0 += kX16Tokens) {
                const int tt = static_cast<int>(cn - t0 < kX16Tokens ? cn - t0 : kX16Tokens);
                tiles[tt - 1](nb, grp, xt + t0, corr.data() + t0 * nb, y + (c0 + t0) * ldy + g * 16, ldy);
            }
        }
    }
}

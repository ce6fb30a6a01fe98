// KernelSet::mul_x16 of Q4_K and Q6_K for the SIMD sets: weights relaid out 16 rows per super-block
// (repack_q4_Kx16 / repack_q6_Kx16 in kernels.h), one row per int32 lane. Included by avx2.cpp, avx512.cpp and
// avx512vnni.cpp only, INSIDE their target pragma and anonymous namespace, after defining
//   struct Q4Kx16Isa { using V = <int32 vector of one row per lane: __m256i (8 rows) or __m512i>;
//     static constexpr int kHalves = <16 / lanes>;
//     static V dp(V acc, V u8, V s8);            // acc + per-lane sum of 4 u8 * s8 products
//     static V load(const uint8_t* p);           // the lanes' 4-byte chunks
//     static V load_scales(const uint8_t* p);    // lanes' bytes zero-extended to int32
//     static V mullo(V a, V b); static V add(V a, V b); static V set1(int32_t v);
//     static V and_(V a, V b); static V srli16(V a, int n);
//     using F = <float vector>; static F half_to_f(const uint8_t* p); ... };
// Per super-block and token: the 8 sub-blocks' nibble dots (4-byte steps, the token's bytes
// broadcast), times their 6-bit scales, summed exactly in int32 (isum); the mins times the
// activation's block sums (msum); then, as the reference dot (kquants_ref.h): acc += (d * dx) * isum,
// acc -= (dmin * dx) * msum.
// The operations are the scalar reference's, so every set returns the reference's bits.
// Ranges: nibbles <= 15 times bytes in [-127, 127]: a 4-byte step (and maddubs) cannot saturate;
// |isum| <= 8 * 63 * 32 * 15 * 127 < 2^31.
#pragma once

namespace kx16 {

constexpr int kTokens = 4;           // tokens per tile
constexpr int64_t kTokenChunk = 64;  // tokens per pass over the rows
// Super-blocks ahead. Q6_K (3360 bytes each): 2 (prefetch_q6k_step; 1 or 3: no faster). Q4_K (2304
// bytes): 1, its 36 lines spread over 8 of the 32 steps of a super-block (4-5 at a time): issued all
// at once, 2 ahead, the AVX-512 tile streamed 21.5 GB/s from DRAM with 2 threads where a plain read
// loop streams 29; spread, 1 ahead: 27.5-28 (Sapphire Rapids, 512 MB in 2 MB pages; spread over 4, 16
// or 32 steps, or 2-3 ahead: 23.6-27).
constexpr int64_t kPrefetchBlocks = 2;
constexpr int64_t kQ4KPrefetchBlocks = 1;

template <class I>
inline typename I::V unpack_scale(const typename I::V (&p)[12], int j, bool min) {
    using V = typename I::V;
    const V m63 = I::set1(63), m15 = I::set1(15);
    if (j < 4) return I::and_(min ? p[j + 4] : p[j], m63);
    if (!min) return I::or_(I::and_(p[j + 4], m15), I::slli32(I::srli32(p[j - 4], 6), 4));
    return I::or_(I::srli32(p[j + 4], 4), I::slli32(I::srli32(p[j], 6), 4));
}

// Prefetches step `step`'s share (of kSteps) of the kLines cache lines at `ahead`, spread over the
// steps, not issued at once (53 at once stalled the loop on its outstanding misses: the Q6_K tile ran
// 1.05-1.28x faster, from DRAM and from cache, 1 and 64 tokens; AVX2, Zen 3).
// AVX2 reads a group of 16 rows in two passes (8 rows each); prefetching only in the first pass, a
// block or two ahead, left DRAM idle during the second. There every step of both passes fetches its
// share of the next group's block: one token from DRAM, Q4_K 1.25x, Q6_K 1.17x (Zen 3, one-thread
// kernel bench, alternating binaries). Into L2 (T1): T0 into L1 evicted the lines the second pass
// rereads (Zen 3), and non-temporal (NTA, the earlier choice) keeps them out of L2 on Intel, so the
// second pass read DRAM again: AVX2 from DRAM, 2 threads, Sapphire Rapids, Q4_K 11.2 -> 23.5 GB/s,
// Q6_K 9.7 -> 22.0 (a plain read loop: 28); a 4B Q4_K_M decode forced to AVX2 15-17 -> 30-31 t/s.
// The AVX-512 tiles (one pass) prefetch into L2 (T1) too: the Q6_K output matrix of a 4B-shaped
// decode took 2-6% less time than T0, a Q4_K_M decode 5-10% (2 threads, Sapphire Rapids).
template <int kLines, int kSteps>
inline void prefetch_share(const uint8_t* ahead, int step) {
    constexpr int kPer = (kLines + kSteps - 1) / kSteps;
#pragma GCC unroll 4
    for (int l = kPer * step; l < kPer * step + kPer; ++l)
        if (l < kLines) {
            const char* p = reinterpret_cast<const char*>(ahead + 64 * l);
            _mm_prefetch(p, _MM_HINT_T1);
        }
}

// The AVX-512 Q6_K tile's prefetch at step (h, k) of the super-block `ahead`: the lines that step
// will load there (ql A and B, qh H; each load's last byte, as a super-block is 52.5 lines and half
// of them straddle two), and the header's 5 lines at the first step, in the order the tile reads
// them; the empty asm keeps the compiler from gathering an unrolled step's prefetches ahead of its
// loads (without it: 20-21 GB/s). From DRAM with 2 threads (--bench=stream, Sapphire Rapids):
// spread evenly in line order (prefetch_share<53, 16>) 23.8-26.1 GB/s, 76-83% of the read loop; in
// read order 27.0-28.6, 82-89%; a 4B decode's Q6_K output matrix 4-5% less time (alternating addons).
inline void prefetch_q6k_step(const uint8_t* ahead, int h, int k) {
    __asm__ volatile("" ::: "memory");
    if (h == 0 && k == 0)
        for (int l = 0; l < 5; ++l) _mm_prefetch(reinterpret_cast<const char*>(ahead + 64 * l), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(ahead + 288 + 64 * (16 * h + k) + 63), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(ahead + 288 + 64 * (16 * h + 8 + k) + 63), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(ahead + 288 + 2048 + 64 * (8 * h + k) + 63), _MM_HINT_T1);
}

inline int32_t load_i32(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// One tile: rows [8*half .. ) of 16 for the AVX2 set (I::kHalves = 2), all 16 for AVX-512.
template <class I, int T>
void q4k_tile(int64_t nb, const uint8_t* grp, const block_q8_K* const* xt, float* y, int64_t ldy) {
    using V = typename I::V;
    using F = typename I::F;
    const V m4 = I::set1_8(0x0f);
    for (int half = 0; half < I::kHalves; ++half) {
        const int lane0 = half * I::kLanes;
        F acc[T];
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) acc[t] = I::fzero();
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* blk = grp + static_cast<size_t>(b) * kQ4Kx16BlockBytes;
            // (into L2: a 4B-shaped Q4_K_M decode 1.05-1.10x, alternating runs)
            [[maybe_unused]] const uint8_t* ahead = blk + kQ4KPrefetchBlocks * kQ4Kx16BlockBytes;
            V p[12];
#pragma GCC unroll 12
            for (int k = 0; k < 12; ++k) p[k] = I::load_scales(blk + 64 + 16 * k + lane0);
            V sc[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j) sc[j] = unpack_scale<I>(p, j, false);
            V isum[T], msum[T];
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) {
                const block_q8_K& xb = xt[t][b];
                V ms = I::set1(0);
#pragma GCC unroll 8
                for (int j = 0; j < 8; ++j)
                    ms = I::add(ms, I::mullo(unpack_scale<I>(p, j, true), I::set1(int32_t(xb.bsums[2 * j]) + xb.bsums[2 * j + 1])));
                msum[t] = ms;
                isum[t] = I::set1(0);
            }
#pragma GCC unroll 1
            for (int g = 0; g < 4; ++g) {
                V lo_acc[T], hi_acc[T];
#pragma GCC unroll 4
                for (int t = 0; t < T; ++t) lo_acc[t] = hi_acc[t] = I::set1(0);
#pragma GCC unroll 8
                for (int k = 0; k < 8; ++k) {
                    if constexpr (I::kHalves == 2)
                        prefetch_share<36, 64>(blk + nb * kQ4Kx16BlockBytes, 32 * half + 8 * g + k);
                    else if ((k & 3) == 0)
                        prefetch_share<36, 8>(ahead, 2 * g + (k >> 2));
                    const V raw = I::load(blk + 256 + 64 * (8 * g + k) + 4 * lane0);
                    const V lo = I::and_(raw, m4);
                    const V hi = I::and_(I::srli16(raw, 4), m4);
#pragma GCC unroll 4
                    for (int t = 0; t < T; ++t) {
                        lo_acc[t] = I::dp(lo_acc[t], lo, I::set1(load_i32(xt[t][b].qs + 64 * g + 4 * k)));
                        hi_acc[t] = I::dp(hi_acc[t], hi, I::set1(load_i32(xt[t][b].qs + 64 * g + 32 + 4 * k)));
                    }
                }
#pragma GCC unroll 4
                for (int t = 0; t < T; ++t)
                    isum[t] = I::add(isum[t], I::add(I::mullo(lo_acc[t], sc[2 * g]), I::mullo(hi_acc[t], sc[2 * g + 1])));
            }
            const F d = I::half_to_f(blk + 2 * lane0);
            const F dmin = I::half_to_f(blk + 32 + 2 * lane0);
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) {
                const F dx = I::fset1(xt[t][b].d);
                const F a = I::fmul(d, dx);
                const F bm = I::fmul(dmin, dx);
                acc[t] = I::fadd(acc[t], I::opaque(I::fmul(a, I::cvt(isum[t]))));
                acc[t] = I::fsub(acc[t], I::opaque(I::fmul(bm, I::cvt(msum[t]))));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) I::fstore(y + t * ldy + lane0, acc[t]);
    }
}

// Q6_K: per super-block and token, the 16 sub-blocks' dots of the unsigned 6-bit values (q + 32)
// with the token's bytes, times their int8 scales, minus 32 * scale * the activation's block sum,
// all exact in int32; then, as the reference dot: acc += (d * dx) * isum. |isum| <= 16 * 128 * 16 * 63 *
// 127 < 2^31; maddubs pairs <= 2 * 63 * 127 cannot saturate.
template <class I, int T>
void q6k_tile(int64_t nb, const uint8_t* grp, const block_q8_K* const* xt, float* y, int64_t ldy) {
    using V = typename I::V;
    using F = typename I::F;
    const V m4 = I::set1_8(0x0f), m30 = I::set1_8(0x30);
    for (int half = 0; half < I::kHalves; ++half) {
        const int lane0 = half * I::kLanes;
        F acc[T];
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) acc[t] = I::fzero();
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* blk = grp + static_cast<size_t>(b) * kQ6Kx16BlockBytes;
            V isum[T];
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) isum[t] = I::set1(0);
            // the offset of 32: -32 * sum_j sc_j * bsum_j
            for (int j = 0; j < 16; ++j) {
                const V sc = I::load_scales_i8(blk + 32 + 16 * j + lane0);
#pragma GCC unroll 4
                for (int t = 0; t < T; ++t) isum[t] = I::sub(isum[t], I::mullo(sc, I::set1(32 * int32_t(xt[t][b].bsums[j]))));
            }
#pragma GCC unroll 1
            for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 1
                for (int sub = 0; sub < 2; ++sub) {  // the first and second 16 of each 32
                    V a0[T], a1[T], a2[T], a3[T];
#pragma GCC unroll 4
                    for (int t = 0; t < T; ++t) a0[t] = a1[t] = a2[t] = a3[t] = I::set1(0);
#pragma GCC unroll 4
                    for (int kk = 0; kk < 4; ++kk) {
                        const int k = 4 * sub + kk;
                        if constexpr (I::kHalves == 1)
                            prefetch_q6k_step(blk + kPrefetchBlocks * kQ6Kx16BlockBytes, h, k);
                        else
                            prefetch_share<53, 32>(blk + nb * kQ6Kx16BlockBytes, 16 * half + 8 * h + k);
                        const V A = I::load(blk + 288 + 64 * (16 * h + k) + 4 * lane0);
                        const V B = I::load(blk + 288 + 64 * (16 * h + 8 + k) + 4 * lane0);
                        const V H = I::load(blk + 288 + 2048 + 64 * (8 * h + k) + 4 * lane0);
                        const V q1 = I::or_(I::and_(A, m4), I::and_(I::slli16(H, 4), m30));
                        const V q2 = I::or_(I::and_(B, m4), I::and_(I::slli16(H, 2), m30));
                        const V q3 = I::or_(I::and_(I::srli16(A, 4), m4), I::and_(H, m30));
                        const V q4 = I::or_(I::and_(I::srli16(B, 4), m4), I::and_(I::srli16(H, 2), m30));
#pragma GCC unroll 4
                        for (int t = 0; t < T; ++t) {
                            const int8_t* xq = xt[t][b].qs + 128 * h + 4 * k;
                            a0[t] = I::dp(a0[t], q1, I::set1(load_i32(xq)));
                            a1[t] = I::dp(a1[t], q2, I::set1(load_i32(xq + 32)));
                            a2[t] = I::dp(a2[t], q3, I::set1(load_i32(xq + 64)));
                            a3[t] = I::dp(a3[t], q4, I::set1(load_i32(xq + 96)));
                        }
                    }
                    // sub-blocks 8h + 2 * quarter + sub
                    const V s0 = I::load_scales_i8(blk + 32 + 16 * (8 * h + 0 + sub) + lane0);
                    const V s1 = I::load_scales_i8(blk + 32 + 16 * (8 * h + 2 + sub) + lane0);
                    const V s2 = I::load_scales_i8(blk + 32 + 16 * (8 * h + 4 + sub) + lane0);
                    const V s3 = I::load_scales_i8(blk + 32 + 16 * (8 * h + 6 + sub) + lane0);
#pragma GCC unroll 4
                    for (int t = 0; t < T; ++t)
                        isum[t] = I::add(isum[t], I::add(I::add(I::mullo(a0[t], s0), I::mullo(a1[t], s1)),
                                                         I::add(I::mullo(a2[t], s2), I::mullo(a3[t], s3))));
                }
            }
            const F d = I::half_to_f(blk + 2 * lane0);
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) acc[t] = I::fadd(acc[t], I::opaque(I::fmul(I::fmul(d, I::fset1(xt[t][b].d)), I::cvt(isum[t]))));
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) I::fstore(y + t * ldy + lane0, acc[t]);
    }
}

using Tile = void (*)(int64_t, const uint8_t*, const block_q8_K* const*, float*, int64_t);

// Tokens in chunks of 64 (their super-blocks stay in cache while every group passes), tiles of
// up to 4 tokens per pass over a group of 16 rows.
inline void mul(const Tile (&tiles)[kTokens], int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x,
                size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    const int64_t nb = n / QK_K;
    const block_q8_K* xt[kTokenChunk];
    for (int64_t c0 = 0; c0 < nt; c0 += kTokenChunk) {
        const int64_t cn = nt - c0 < kTokenChunk ? nt - c0 : kTokenChunk;
        for (int64_t t = 0; t < cn; ++t)
            xt[t] = reinterpret_cast<const block_q8_K*>(reinterpret_cast<const uint8_t*>(x) + static_cast<size_t>(c0 + t) * x_row_bytes);
        for (int64_t g = 0; g < ngroups; ++g) {
            const uint8_t* grp = w + static_cast<size_t>(g) * group_bytes;
            for (int64_t t0 = 0; t0 < cn; t0 += kTokens) {
                const int tt = static_cast<int>(cn - t0 < kTokens ? cn - t0 : kTokens);
                tiles[tt - 1](nb, grp, xt + t0, y + (c0 + t0) * ldy + g * 16, ldy);
            }
        }
    }
}

template <class I>
void mul_q4_K(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes, int64_t nt,
              float* y, int64_t ldy) {
    static constexpr Tile kTiles[kTokens] = {q4k_tile<I, 1>, q4k_tile<I, 2>, q4k_tile<I, 3>, q4k_tile<I, 4>};
    mul(kTiles, n, w, group_bytes, ngroups, x, x_row_bytes, nt, y, ldy);
}

template <class I>
void mul_q6_K(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes, int64_t nt,
              float* y, int64_t ldy) {
    static constexpr Tile kTiles[kTokens] = {q6k_tile<I, 1>, q6k_tile<I, 2>, q6k_tile<I, 3>, q6k_tile<I, 4>};
    mul(kTiles, n, w, group_bytes, ngroups, x, x_row_bytes, nt, y, ldy);
}

// The AVX-512 lanes (16 rows per vector); Dp4 as in mul_x16_avx512.h.
template <class Dp4>
struct Isa512 {
    using V = __m512i;
    using F = __m512;
    static constexpr int kHalves = 1, kLanes = 16;
    static V dp(V acc, V u8, V s8) { return Dp4::dp(acc, u8, s8); }
    static V load(const uint8_t* p) { return _mm512_loadu_si512(p); }
    static V load_scales(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static V load_scales_i8(const uint8_t* p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static V sub(V a, V b) { return _mm512_sub_epi32(a, b); }
    static V slli16(V a, int n) { return _mm512_slli_epi16(a, static_cast<unsigned>(n)); }
    static V mullo(V a, V b) { return _mm512_mullo_epi32(a, b); }
    static V add(V a, V b) { return _mm512_add_epi32(a, b); }
    static V and_(V a, V b) { return _mm512_and_si512(a, b); }
    static V or_(V a, V b) { return _mm512_or_si512(a, b); }
    static V set1(int32_t v) { return _mm512_set1_epi32(v); }
    static V set1_8(char v) { return _mm512_set1_epi8(v); }
    static V srli16(V a, int n) { return _mm512_srli_epi16(a, static_cast<unsigned>(n)); }
    static V srli32(V a, int n) { return _mm512_srli_epi32(a, static_cast<unsigned>(n)); }
    static V slli32(V a, int n) { return _mm512_slli_epi32(a, static_cast<unsigned>(n)); }
    static F half_to_f(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    static F fzero() { return _mm512_setzero_ps(); }
    static F fset1(float v) { return _mm512_set1_ps(v); }
    static F fmul(F a, F b) { return _mm512_mul_ps(a, b); }
    static F fadd(F a, F b) { return _mm512_add_ps(a, b); }
    static F fsub(F a, F b) { return _mm512_sub_ps(a, b); }
    static F cvt(V a) { return _mm512_cvtepi32_ps(a); }
    static F opaque(F v) {
        __asm__("" : "+v"(v));
        return v;
    }
    static void fstore(float* p, F v) { _mm512_storeu_ps(p, v); }
};

// The AVX2 lanes (8 rows per vector, two halves per group).
struct Isa256 {
    using V = __m256i;
    using F = __m256;
    static constexpr int kHalves = 2, kLanes = 8;
    static V dp(V acc, V u8, V s8) { return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u8, s8), _mm256_set1_epi16(1))); }
    static V load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static V load_scales(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
    static V load_scales_i8(const uint8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
    static V sub(V a, V b) { return _mm256_sub_epi32(a, b); }
    static V slli16(V a, int n) { return _mm256_slli_epi16(a, n); }
    static V mullo(V a, V b) { return _mm256_mullo_epi32(a, b); }
    static V add(V a, V b) { return _mm256_add_epi32(a, b); }
    static V and_(V a, V b) { return _mm256_and_si256(a, b); }
    static V or_(V a, V b) { return _mm256_or_si256(a, b); }
    static V set1(int32_t v) { return _mm256_set1_epi32(v); }
    static V set1_8(char v) { return _mm256_set1_epi8(v); }
    static V srli16(V a, int n) { return _mm256_srli_epi16(a, n); }
    static V srli32(V a, int n) { return _mm256_srli_epi32(a, n); }
    static V slli32(V a, int n) { return _mm256_slli_epi32(a, n); }
    static F half_to_f(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static F fzero() { return _mm256_setzero_ps(); }
    static F fset1(float v) { return _mm256_set1_ps(v); }
    static F fmul(F a, F b) { return _mm256_mul_ps(a, b); }
    static F fadd(F a, F b) { return _mm256_add_ps(a, b); }
    static F fsub(F a, F b) { return _mm256_sub_ps(a, b); }
    static F cvt(V a) { return _mm256_cvtepi32_ps(a); }
    static F opaque(F v) {
        __asm__("" : "+x"(v));
        return v;
    }
    static void fstore(float* p, F v) { _mm256_storeu_ps(p, v); }
};

}  // namespace kx16

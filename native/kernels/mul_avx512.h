// Matrix kernels (KernelSet::mul_q4_0_q8_0 / mul_q8_0_q8_0) of the AVX-512 sets: tiles of
// weight rows x tokens over the block-pair dots of avx512.cpp / avx512vnni.cpp. Included by those
// two files only, INSIDE their target pragma and anonymous namespace, after they define
// half_pair() and sum_with_tail() (and before their Ops structs, which use PairScalesQ8_0).
//
// Bit-identity with the set's dot_*: per (row, token) pair the tile performs exactly the dot's
// float operations in the dot's order: accumulator a0 takes the block pairs starting at 0, 4, 8,
// ... (and the lone pair when nb % 4 >= 2), a1 those at 2, 6, 10, ...; each pair adds
// Ops::accumulate(a, int32 lane sums, ...) (PairScalesQ8_0: fmadd(cvt(lane sums), half_pair(w) *
// half_pair(x), a)); an odd last block goes through
// Ops::tail (the dot's own code); sum_with_tail reduces. The int32 lane sums come from Ops::dot,
// which may compute them differently from the dot (e.g. sharing a correction term between rows)
// but must give the same integers. A tile loads and unpacks each weight block pair once for its
// T tokens and each activation block pair once for its R rows.
//
// Ops interface: using BW, BX (weight and activation block types); struct W / struct X (a block
// pair's row-side and token-side operands); static W load_w(const BW* b) and static X
// load_x(const BX* b) (blocks b[0], b[1]); static __m512i dot(const W&, const X&) (int32 lane
// sums: lanes 0..7 of block 0, 8..15 of block 1); WS / XS, w_scale(const BW*), x_scale(const BX*)
// (a pair's scales) and accumulate(acc, lane sums, WS, XS) (its float update; PairScalesQ8_0
// below, or q32_avx512.h's for q8_1); static __m256 tail(const BW* w, const BX* x) (the dot's
// odd-last-block term).
#pragma once

// The float side of a block pair for the types whose activations are q8_0: as the dots,
// acc + float(lanes) * (d_w * d_x).
struct PairScalesQ8_0 {
    using BX = block_q8_0;
    using WS = __m512;
    using XS = __m512;
    template <class BW>
    static __m512 w_scale(const BW* b) {
        return half_pair(b[0].d, b[1].d);
    }
    static __m512 x_scale(const block_q8_0* b) { return half_pair(b[0].d, b[1].d); }
    static __m512 accumulate(__m512 acc, __m512i s, __m512 ws, __m512 xs) {
        return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(ws, xs), acc);
    }
};

// Tiles with at most this many (row, token) pairs keep both accumulator sets in registers; larger
// ones run the a0 pairs, then the a1 pairs (a0 waits in memory meanwhile: 32 zmm registers do
// not hold 2 x 16 accumulators plus operands).
constexpr int kMul512OnePassMax = 8;
// Tile: rows x tokens; measured best of 4x4 (two passes), 4x3, 3x4, 4x2 and 4x4 in one pass.
// Decode (one token) uses kMul512Rows x 1 (8 x 1 measured no faster).
constexpr int kMul512Rows = 4;
constexpr int kMul512Tokens = 4;
// Tokens per chunk: activations of a chunk stay in L2 while every row tile passes over them.
constexpr int64_t kMul512TokenChunk = 64;

// Each step also prefetches, for each row, the bytes that the same row of the NEXT row tile will
// need at this step (pf: that row's start). Without it the hardware prefetcher, which sees R
// interleaved streams (scattered ones when only some rows are wanted), leaves a decode from DRAM
// slower than the per-row dot loop (measured 0.8x); with it about 1.4x.
template <class Ops, int R, int T>
__attribute__((always_inline)) inline void mul512_step(const typename Ops::BW* const* w, const typename Ops::BW* const* pf,
                                                       const typename Ops::BX* const* x, int64_t i, __m512 (&acc)[R][T]) {
    typename Ops::X xp[T];
    typename Ops::XS xs[T];
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
        xp[t] = Ops::load_x(x[t] + i);
        xs[t] = Ops::x_scale(x[t] + i);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(pf[r] + i), _MM_HINT_T0);
        const typename Ops::W wp = Ops::load_w(w[r] + i);
        const typename Ops::WS ws = Ops::w_scale(w[r] + i);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) acc[r][t] = Ops::accumulate(acc[r][t], Ops::dot(wp, xp[t]), ws, xs[t]);
    }
}

// One tile: weight rows w[0..R) (prefetching pf[0..R)), tokens x + t * x_row_bytes, results to
// y[t * ldy + yo[r]].
template <class Ops, int R, int T>
void mul512_tile(int64_t nb, const uint8_t* const* w, const uint8_t* const* pf, const int64_t* yo, const uint8_t* x, size_t x_row_bytes,
                 float* y, int64_t ldy) {
    using BW = typename Ops::BW;
    using BX = typename Ops::BX;
    const BW* wr[R];
    const BW* pr[R];
    const BX* xt[T];
    for (int r = 0; r < R; ++r) {
        wr[r] = reinterpret_cast<const BW*>(w[r]);
        pr[r] = reinterpret_cast<const BW*>(pf[r]);
    }
    for (int t = 0; t < T; ++t) xt[t] = reinterpret_cast<const BX*>(x + static_cast<size_t>(t) * x_row_bytes);
    __m512 a0[R][T], a1[R][T];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) a0[r][t] = a1[r][t] = _mm512_setzero_ps();
    }
    if constexpr (R * T <= kMul512OnePassMax) {
        int64_t i = 0;
        for (; i + 4 <= nb; i += 4) {
            mul512_step<Ops, R, T>(wr, pr, xt, i, a0);
            mul512_step<Ops, R, T>(wr, pr, xt, i + 2, a1);
        }
        if (i + 2 <= nb) mul512_step<Ops, R, T>(wr, pr, xt, i, a0);
    } else {
        for (int64_t i = 0; i + 2 <= nb; i += 4) mul512_step<Ops, R, T>(wr, pr, xt, i, a0);
        for (int64_t i = 2; i + 2 <= nb; i += 4) mul512_step<Ops, R, T>(wr, pr, xt, i, a1);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
            __m256 tl = _mm256_setzero_ps();
            if (nb & 1) tl = Ops::tail(wr[r] + nb - 1, xt[t] + nb - 1);
            y[t * ldy + yo[r]] = sum_with_tail(a0[r][t], a1[r][t], tl);
        }
    }
}

using Mul512Tile = void (*)(int64_t, const uint8_t* const*, const uint8_t* const*, const int64_t*, const uint8_t*, size_t, float*, int64_t);

template <class Ops>
Mul512Tile mul512_tile_for(int rows, int tokens) {
    static_assert(kMul512Rows == 4 && kMul512Tokens == 4, "the table below is 4 x 4");
    static constexpr Mul512Tile kTiles[4][4] = {
        {mul512_tile<Ops, 1, 1>, mul512_tile<Ops, 1, 2>, mul512_tile<Ops, 1, 3>, mul512_tile<Ops, 1, 4>},
        {mul512_tile<Ops, 2, 1>, mul512_tile<Ops, 2, 2>, mul512_tile<Ops, 2, 3>, mul512_tile<Ops, 2, 4>},
        {mul512_tile<Ops, 3, 1>, mul512_tile<Ops, 3, 2>, mul512_tile<Ops, 3, 3>, mul512_tile<Ops, 3, 4>},
        {mul512_tile<Ops, 4, 1>, mul512_tile<Ops, 4, 2>, mul512_tile<Ops, 4, 3>, mul512_tile<Ops, 4, 4>},
    };
    return kTiles[rows - 1][tokens - 1];
}

template <class Ops>
void mul512(int64_t n, const typename Ops::BW* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const typename Ops::BX* x,
            size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    const int64_t nb = n / 32;
    const uint8_t* wb = reinterpret_cast<const uint8_t*>(w);
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(x);
    constexpr int64_t R = kMul512Rows;
    const auto row = [&](int64_t i) -> int64_t { return rows ? rows[i] : i; };
    for (int64_t c0 = 0; c0 < nt; c0 += kMul512TokenChunk) {
        const int64_t c1 = nt - c0 < kMul512TokenChunk ? nt : c0 + kMul512TokenChunk;
        for (int64_t r0 = 0; r0 < nr; r0 += R) {
            const int rr = static_cast<int>(nr - r0 < R ? nr - r0 : R);
            const uint8_t* wp[R];
            const uint8_t* pf[R];
            int64_t yo[R];
            for (int r = 0; r < rr; ++r) {
                yo[r] = row(r0 + r);
                wp[r] = wb + static_cast<size_t>(yo[r]) * w_row_bytes;
                // the next tile's row r (past the end: this tile's own row, harmless)
                pf[r] = r0 + R + r < nr ? wb + static_cast<size_t>(row(r0 + R + r)) * w_row_bytes : wp[r];
            }
            for (int64_t t0 = c0; t0 < c1; t0 += kMul512Tokens) {
                const int tt = static_cast<int>(c1 - t0 < kMul512Tokens ? c1 - t0 : kMul512Tokens);
                mul512_tile_for<Ops>(rr, tt)(nb, wp, pf, yo, xb + static_cast<size_t>(t0) * x_row_bytes, x_row_bytes, y + t0 * ldy, ldy);
            }
        }
    }
}

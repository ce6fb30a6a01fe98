// AVX2 + FMA + F16C kernel set. Only this file is compiled with those instructions enabled
// (target pragma below), so the rest of the binary stays baseline x86-64; dispatch.cpp only
// hands this set out when cpu_supports(Isa::Avx2).
//
// All standard/project headers are included BEFORE the target pragma: inline functions and
// templates they define must not be compiled with AVX2 enabled (the linker could otherwise pick
// an AVX2 copy of a shared inline function for baseline code). Everything compiled under the
// pragma lives in an anonymous namespace.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

#if defined(__x86_64__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own _mm512_undefined_*()
// placeholders once inlined (GCC bug 105593); silence that for this file only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx2,fma,f16c")
#endif

#include <immintrin.h>

namespace moe::kernels {
namespace {

inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// ---- activation conversions ----

void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n) {
    const int64_t nb = n / QK8_0;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * QK8_0;
        __m256 v0 = _mm256_loadu_ps(xb);
        __m256 v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16);
        __m256 v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m256 mul = _mm256_set1_ps(id);
        constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), kRound));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), kRound));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), kRound));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), kRound));
        // packs work per 128-bit lane; the permute restores element order.
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), _mm256_permutevar8x32_epi32(p, perm));
    }
}

void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i h0 = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        __m128i h1 = _mm256_cvtps_ph(_mm256_loadu_ps(x + i + 8), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i + 8), h1);
    }
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; ++i) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

// 8 floats (as bits) -> 8 bf16 in the low 16 bits of each lane: RNE, NaN -> quiet NaN (dtype.h).
inline __m256i bf16_round8(__m256i u) {
    const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    const __m256i hi = _mm256_srli_epi32(u, 16);
    const __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i nan = _mm256_or_si256(hi, _mm256_set1_epi32(64));
    return _mm256_blendv_epi8(rounded, nan, is_nan);
}

void fp32_to_bf16_row(const float* x, uint16_t* y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = bf16_round8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
        __m256i b = bf16_round8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8)));
        // values are <= 0xffff, so the unsigned-saturating pack is exact; fix the lane order.
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), p);
    }
    for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

// ---- dots ----

float dot_f32(int64_t n, const float* w, const float* x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) s += w[i] * x[i];
    return s;
}

inline __m256 load_f16x8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

float dot_f16(int64_t n, const uint16_t* w, const uint16_t* x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_f16x8(w + i), load_f16x8(x + i), a0);
        a1 = _mm256_fmadd_ps(load_f16x8(w + i + 8), load_f16x8(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_f16x8(w + i + 16), load_f16x8(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_f16x8(w + i + 24), load_f16x8(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_f16x8(w + i), load_f16x8(x + i), a0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) s += h2f(w[i]) * h2f(x[i]);
    return s;
}

// bf16 pairs in 32-bit lanes: the even element is the low half (shift it up), the odd one the
// high half (mask the low half off). Pairing even with even and odd with odd keeps the dot.
inline __m256 bf16_even(__m256i v) { return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)); }
inline __m256 bf16_odd(__m256i v) { return _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u)))); }

float dot_bf16(int64_t n, const uint16_t* w, const uint16_t* x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16));
        const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 16));
        a0 = _mm256_fmadd_ps(bf16_even(w0), bf16_even(x0), a0);
        a1 = _mm256_fmadd_ps(bf16_odd(w0), bf16_odd(x0), a1);
        a2 = _mm256_fmadd_ps(bf16_even(w1), bf16_even(x1), a2);
        a3 = _mm256_fmadd_ps(bf16_odd(w1), bf16_odd(x1), a3);
    }
    for (; i + 16 <= n; i += 16) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
        a0 = _mm256_fmadd_ps(bf16_even(w0), bf16_even(x0), a0);
        a1 = _mm256_fmadd_ps(bf16_odd(w0), bf16_odd(x0), a1);
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) s += bf16_to_fp32(w[i]) * bf16_to_fp32(x[i]);
    return s;
}

// Exact int8 dot of one q8_0 weight block (any byte, -128 included) with one activation block
// (values in [-127, 127], as quantize_row_q8_0 produces): |w| * (x with w's sign), so the
// unsigned operand of maddubs is |w| <= 128 and pair sums stay within int16 (<= 2*128*127).
inline __m256i dot_i8_block(__m256i qw, __m256i qx) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(qw), _mm256_sign_epi8(qx, qw));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// Exact dot of one q4_0 block's nibbles (0..15, unsigned) with an activation block (any int8):
// sum((q - 8) * x) = maddubs(q, x) - maddubs(8, x); both pair sums fit int16 (|.| <= 3840).
inline __m256i dot_q4_block(__m256i q, __m256i qx) {
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qx), _mm256_maddubs_epi16(_mm256_set1_epi8(8), qx));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// 16 bytes of q4_0 -> 32 nibbles: low lane = low nibbles (elements 0..15), high lane = high nibbles.
inline __m256i unpack_q4(const uint8_t* qs) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

inline __m256i load256(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// d_w * d_x of one block pair, broadcast. fp16 -> fp32 through dtype's exact lookup table: two
// broadcast loads and a multiply, much cheaper than F16C conversions of single values (the
// per-block scale is otherwise the most expensive part of these dots).
inline __m256 block_scale(uint16_t dw, uint16_t dx) {
    return _mm256_mul_ps(_mm256_broadcast_ss(g_fp16_table + dw), _mm256_broadcast_ss(g_fp16_table + dx));
}

float dot_q8_0_q8_0(int64_t n, const block_q8_0* w, const block_q8_0* x) {
    const int64_t nb = n / QK8_0;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256 d0 = block_scale(w[i].d, x[i].d);
        const __m256 d1 = block_scale(w[i + 1].d, x[i + 1].d);
        const __m256i s0 = dot_i8_block(load256(w[i].qs), load256(x[i].qs));
        const __m256i s1 = dot_i8_block(load256(w[i + 1].qs), load256(x[i + 1].qs));
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), d0, a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), d1, a1);
    }
    if (i < nb) {
        const __m256 d0 = block_scale(w[i].d, x[i].d);
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8_block(load256(w[i].qs), load256(x[i].qs))), d0, a0);
    }
    return hsum256(_mm256_add_ps(a0, a1));
}

float dot_q4_0_q8_0(int64_t n, const block_q4_0* w, const block_q8_0* x) {
    const int64_t nb = n / QK4_0;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256 d0 = block_scale(w[i].d, x[i].d);
        const __m256 d1 = block_scale(w[i + 1].d, x[i + 1].d);
        const __m256i s0 = dot_q4_block(unpack_q4(w[i].qs), load256(x[i].qs));
        const __m256i s1 = dot_q4_block(unpack_q4(w[i + 1].qs), load256(x[i + 1].qs));
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), d0, a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), d1, a1);
    }
    if (i < nb) {
        const __m256 d0 = block_scale(w[i].d, x[i].d);
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_q4_block(unpack_q4(w[i].qs), load256(x[i].qs))), d0, a0);
    }
    return hsum256(_mm256_add_ps(a0, a1));
}

void axpy_f16(int64_t n, float a, const uint16_t* x, float* y) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, xv)));
    }
    for (; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

// ---- matrix kernels: y[t*ldy + r] = dot(w row r, x row t), bit-identical to the dots above ----
// A tile of R rows x T tokens keeps R*T pairs of accumulators (a0: even blocks, a1: odd blocks,
// as the dots) and per block loads/unpacks each weight block once and each activation block
// once; every pair then does the dot's fmadd(cvt(int32 lane sums), d_w * d_x, a). Lane sums come
// from the Ops structs: the dots' block code, with the parts that depend on one side only
// (maddubs(8, x); |w|) computed once per tile. Tiles of more than kMul2OnePassMax pairs run the
// even blocks, then the odd ones (16 ymm registers do not hold both accumulator sets). Each step
// prefetches, per row, what the same row of the next row tile needs at this step: the hardware
// prefetcher alone handles R interleaved row streams badly (decode from DRAM measured 0.6-0.85x
// the per-row dot loop without it, 1.0-1.7x with it).
//
// Ops interface: using BW, BX (weight and activation block types); struct W / X (a block's
// row-side and token-side operands): static W load_w(const BW*), static X load_x(const BX*),
// static __m256i dot(const W&, const X&) (int32 lane sums); WS / XS (the blocks' scales):
// w_scale(const BW*), x_scale(const BX*), and accumulate(acc, lane sums, WS, XS), the float
// update of one block pair (ScalesQ8_0 below: the dots' fmadd; q32_avx2.h: q8_1's).

// The float side of the types whose activations are q8_0: acc + float(lanes) * (d_w * d_x).
struct ScalesQ8_0 {
    using BX = block_q8_0;
    using WS = __m256;
    using XS = __m256;
    template <class BW>
    static __m256 w_scale(const BW* b) {
        return _mm256_broadcast_ss(g_fp16_table + b->d);
    }
    static __m256 x_scale(const block_q8_0* b) { return _mm256_broadcast_ss(g_fp16_table + b->d); }
    static __m256 accumulate(__m256 acc, __m256i s, __m256 ws, __m256 xs) {
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(ws, xs), acc);
    }
};

struct Q4Ops : ScalesQ8_0 {
    using BW = block_q4_0;
    struct W {
        __m256i q;
    };
    struct X {
        __m256i x, m8;  // m8 = maddubs(8, x)
    };
    static W load_w(const block_q4_0* b) { return {unpack_q4(b->qs)}; }
    static X load_x(const block_q8_0* b) {
        const __m256i x = load256(b->qs);
        return {x, _mm256_maddubs_epi16(_mm256_set1_epi8(8), x)};
    }
    static __m256i dot(const W& w, const X& x) {
        return _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(w.q, x.x), x.m8), _mm256_set1_epi16(1));
    }
};

struct Q8Ops : ScalesQ8_0 {
    using BW = block_q8_0;
    struct W {
        __m256i w, a;  // a = |w|
    };
    struct X {
        __m256i x;
    };
    static W load_w(const block_q8_0* b) {
        const __m256i w = load256(b->qs);
        return {w, _mm256_abs_epi8(w)};
    }
    static X load_x(const block_q8_0* b) { return {load256(b->qs)}; }
    static __m256i dot(const W& w, const X& x) {
        return _mm256_madd_epi16(_mm256_maddubs_epi16(w.a, _mm256_sign_epi8(x.x, w.w)), _mm256_set1_epi16(1));
    }
};

// Measured (single thread): 2x2 best or equal among 2x2, 3x2, 2x3, 4x2 (two passes) and 2x2 in
// one pass; decode 4x1 (2x1 and 3x1 no faster).
constexpr int kMul2OnePassMax = 4;
constexpr int kMul2Rows = 2;  // tile rows x tokens
constexpr int kMul2Tokens = 2;
constexpr int kMul2DecodeRows = 4;       // decode (one token): kMul2DecodeRows x 1
constexpr int64_t kMul2TokenChunk = 64;  // tokens whose activations stay in L2 while the rows pass

template <class Ops, int R, int T>
__attribute__((always_inline)) inline void mul2_step(const typename Ops::BW* const* w, const typename Ops::BW* const* pf,
                                                     const typename Ops::BX* const* x, int64_t i, __m256 (&acc)[R][T]) {
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

// One tile: weight rows w[0..R) (prefetching pf[0..R), the next tile's rows), tokens
// x + t * x_row_bytes, results to y[t * ldy + yo[r]].
template <class Ops, int R, int T>
void mul2_tile(int64_t nb, const uint8_t* const* w, const uint8_t* const* pf, const int64_t* yo, const uint8_t* x, size_t x_row_bytes,
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
    __m256 a0[R][T], a1[R][T];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) a0[r][t] = a1[r][t] = _mm256_setzero_ps();
    }
    if constexpr (R * T <= kMul2OnePassMax) {
        int64_t i = 0;
        for (; i + 2 <= nb; i += 2) {
            mul2_step<Ops, R, T>(wr, pr, xt, i, a0);
            mul2_step<Ops, R, T>(wr, pr, xt, i + 1, a1);
        }
        if (i < nb) mul2_step<Ops, R, T>(wr, pr, xt, i, a0);
    } else {
        for (int64_t i = 0; i < nb; i += 2) mul2_step<Ops, R, T>(wr, pr, xt, i, a0);
        for (int64_t i = 1; i < nb; i += 2) mul2_step<Ops, R, T>(wr, pr, xt, i, a1);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) y[t * ldy + yo[r]] = hsum256(_mm256_add_ps(a0[r][t], a1[r][t]));
    }
}

using Mul2Tile = void (*)(int64_t, const uint8_t* const*, const uint8_t* const*, const int64_t*, const uint8_t*, size_t, float*, int64_t);

template <class Ops>
Mul2Tile mul2_tile_for(int rows, int tokens) {
    static_assert(kMul2Rows == 2 && kMul2Tokens == 2 && kMul2DecodeRows == 4, "the tables below are 2 x 2 and 4 x 1");
    static constexpr Mul2Tile kDecode[4] = {mul2_tile<Ops, 1, 1>, mul2_tile<Ops, 2, 1>, mul2_tile<Ops, 3, 1>, mul2_tile<Ops, 4, 1>};
    static constexpr Mul2Tile kTiles[2][2] = {{mul2_tile<Ops, 1, 1>, mul2_tile<Ops, 1, 2>}, {mul2_tile<Ops, 2, 1>, mul2_tile<Ops, 2, 2>}};
    return tokens == 1 ? kDecode[rows - 1] : kTiles[rows - 1][tokens - 1];
}

template <class Ops>
void mul2(int64_t n, const typename Ops::BW* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const typename Ops::BX* x,
          size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    const int64_t nb = n / 32;
    const uint8_t* wb = reinterpret_cast<const uint8_t*>(w);
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(x);
    const int64_t R = nt == 1 ? kMul2DecodeRows : kMul2Rows;
    const auto row = [&](int64_t i) -> int64_t { return rows ? rows[i] : i; };
    for (int64_t c0 = 0; c0 < nt; c0 += kMul2TokenChunk) {
        const int64_t c1 = nt - c0 < kMul2TokenChunk ? nt : c0 + kMul2TokenChunk;
        for (int64_t r0 = 0; r0 < nr; r0 += R) {
            const int rr = static_cast<int>(nr - r0 < R ? nr - r0 : R);
            const uint8_t* wp[kMul2DecodeRows];
            const uint8_t* pf[kMul2DecodeRows];
            int64_t yo[kMul2DecodeRows];
            for (int r = 0; r < rr; ++r) {
                yo[r] = row(r0 + r);
                wp[r] = wb + static_cast<size_t>(yo[r]) * w_row_bytes;
                pf[r] = r0 + R + r < nr ? wb + static_cast<size_t>(row(r0 + R + r)) * w_row_bytes : wp[r];
            }
            for (int64_t t0 = c0; t0 < c1; t0 += kMul2Tokens) {
                const int tt = static_cast<int>(c1 - t0 < kMul2Tokens ? c1 - t0 : kMul2Tokens);
                mul2_tile_for<Ops>(rr, tt)(nb, wp, pf, yo, xb + static_cast<size_t>(t0) * x_row_bytes, x_row_bytes, y + t0 * ldy, ldy);
            }
        }
    }
}

void mul_q4_0_q8_0(int64_t n, const block_q4_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul2<Q4Ops>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}
void mul_q8_0_q8_0(int64_t n, const block_q8_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul2<Q8Ops>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}

#include "kernels/q32_avx2.h"  // q4_1, q5_0, q5_1, iq4_nl and q8_1 activations

// ---- repacked Q4_0 (KernelSet::mul_q4_0x16_q8_0): 16 rows per block, one row per int32 lane,
// in two halves of 8 rows, both computed in one pass (each broadcast activation feeds both). Per
// block and token: s = -8 * sum(x) plus the nibbles' 4-byte dots (maddubs cannot saturate:
// nibbles <= 15, bytes >= -128; its 8 results are added in int16, each lane then 16 products,
// |sum| <= 30720, and widened once); then, as the scalar reference dot,
// acc = acc + float(s) * (d_w * d_x), so the results are the reference's bits.

#include "kernels/mul_x16.h"

inline __m256 opaque256(__m256 v) {
    __asm__("" : "+x"(v));
    return v;
}

template <int T>
void x16_tile(int64_t nb, const uint8_t* grp, const block_q8_0* const* xt, const int32_t* corr, float* y, int64_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[T][2];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = grp + static_cast<size_t>(b) * kQ4x16BlockBytes;
        // every line of the block 8 ahead (288 bytes: 5 lines): one thread then streams at about its
        // DRAM bandwidth, where 2 lines left it at 60% (the hardware prefetcher alone does not keep up).
        // Into L2 (T1) rather than L1: 2 threads from DRAM, Sapphire Rapids, 23-24 -> 25.7-26.7 GB/s.
#pragma GCC unroll 5
        for (int l = 0; l < 5; ++l) _mm_prefetch(reinterpret_cast<const char*>(blk + 8 * kQ4x16BlockBytes + 64 * l), _MM_HINT_T1);
        // int16 pairs per token and half: 16 products <= 15 * 128 each, |sum| <= 30720
        __m256i s16[T][2];
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) s16[t][0] = s16[t][1] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            const __m256i raw0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 64 * k));
            const __m256i raw1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 64 * k + 32));
            const __m256i lo0 = _mm256_and_si256(raw0, m4), hi0 = _mm256_and_si256(_mm256_srli_epi16(raw0, 4), m4);
            const __m256i lo1 = _mm256_and_si256(raw1, m4), hi1 = _mm256_and_si256(_mm256_srli_epi16(raw1, 4), m4);
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) {
                int32_t a, c;
                std::memcpy(&a, xt[t][b].qs + 4 * k, 4);
                std::memcpy(&c, xt[t][b].qs + 16 + 4 * k, 4);
                const __m256i va = _mm256_set1_epi32(a), vc = _mm256_set1_epi32(c);
                s16[t][0] = _mm256_add_epi16(s16[t][0], _mm256_maddubs_epi16(lo0, va));
                s16[t][1] = _mm256_add_epi16(s16[t][1], _mm256_maddubs_epi16(lo1, va));
                s16[t][0] = _mm256_add_epi16(s16[t][0], _mm256_maddubs_epi16(hi0, vc));
                s16[t][1] = _mm256_add_epi16(s16[t][1], _mm256_maddubs_epi16(hi1, vc));
            }
        }
        const __m256 ws0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
        const __m256 ws1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
            const __m256 dx = _mm256_set1_ps(g_fp16_table[xt[t][b].d]);
            const __m256i cr = _mm256_set1_epi32(corr[t * nb + b]);
            const __m256i s0 = _mm256_add_epi32(cr, _mm256_madd_epi16(s16[t][0], ones));
            const __m256i s1 = _mm256_add_epi32(cr, _mm256_madd_epi16(s16[t][1], ones));
            acc[t][0] = _mm256_add_ps(acc[t][0], opaque256(_mm256_mul_ps(_mm256_cvtepi32_ps(s0), _mm256_mul_ps(ws0, dx))));
            acc[t][1] = _mm256_add_ps(acc[t][1], opaque256(_mm256_mul_ps(_mm256_cvtepi32_ps(s1), _mm256_mul_ps(ws1, dx))));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
        _mm256_storeu_ps(y + t * ldy, acc[t][0]);
        _mm256_storeu_ps(y + t * ldy + 8, acc[t][1]);
    }
}

void mul_q4_0x16_q8_0(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_0* x, size_t x_row_bytes, int64_t nt,
                      float* y, int64_t ldy) {
    static constexpr X16Tile kTiles[kX16Tokens] = {x16_tile<1>, x16_tile<2>, x16_tile<3>, x16_tile<4>};
    mul_x16(kTiles, n, w, group_bytes, ngroups, x, x_row_bytes, nt, y, ldy);
}

// ---- ReGLU-sparse Q4_0 (mul_sparse_avx2.h)
#include "kernels/mul_sparse_avx2.h"
void mul_q4_0r16_q8_0(int64_t n, const block_q4_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x,
                      size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    sparse256::mul_r16(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}

// ---- relaid-out Q4_K and Q6_K (mul_kx16.h), 8 rows per vector
#include "kernels/mul_kx16.h"
void mul_q4_Kx16_q8_K(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes, int64_t nt,
                      float* y, int64_t ldy) {
    kx16::mul_q4_K<kx16::Isa256>(n, w, group_bytes, ngroups, x, x_row_bytes, nt, y, ldy);
}
void mul_q6_Kx16_q8_K(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes, int64_t nt,
                      float* y, int64_t ldy) {
    kx16::mul_q6_K<kx16::Isa256>(n, w, group_bytes, ngroups, x, x_row_bytes, nt, y, ldy);
}

// ---- attention (KernelSet::attn_scores_f16 / attn_pv_f16 / softmax_f16r) ----
// Full 8-element chunks in SIMD, the last d % 8 elements in scalar code.

// 8 vectors -> one vector of their 8 horizontal sums: lane l = sum of a[l]'s lanes.
inline __m256 sum8x8(const __m256 (&a)[8]) {
    const __m256 g0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 g1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(g0, g1, 0x20), _mm256_permute2f128_ps(g0, g1, 0x31));
}

// Q queries (<= 6) x K keys (<= 2): each key chunk is converted from fp16 once for all the tile's
// queries (a grouped-query head's 6 queries share its keys; with 2 queries per tile the conversions,
// not the multiply-adds, bounded the loop: 2.5-3x slower at 2,500 positions). Accumulator
// qi * 2 + kk; every pair's 8 lanes are summed by the same tree (sum8x8).
template <int Q, int K>
void scores_tile(int64_t d, const float* q, int64_t ldq, const uint16_t* k, int64_t ldk, float scale, float* s, int64_t lds) {
    constexpr int kAcc = Q * K;
    __m256 acc[kAcc];
#pragma GCC unroll 12
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_setzero_ps();
    const int64_t d8 = d / 8 * 8;
    for (int64_t c = 0; c < d8; c += 8) {
        __m256 kv[K];
#pragma GCC unroll 2
        for (int kk = 0; kk < K; ++kk) kv[kk] = load_f16x8(k + kk * ldk + c);
#pragma GCC unroll 6
        for (int qi = 0; qi < Q; ++qi) {
            const __m256 qv = _mm256_loadu_ps(q + qi * ldq + c);
#pragma GCC unroll 2
            for (int kk = 0; kk < K; ++kk) acc[qi * K + kk] = _mm256_fmadd_ps(qv, kv[kk], acc[qi * K + kk]);
        }
    }
    alignas(32) float r[16];
    {
        __m256 a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) a[i] = i < kAcc ? acc[i] : _mm256_setzero_ps();
        _mm256_store_ps(r, sum8x8(a));
    }
    if constexpr (kAcc > 8) {
        __m256 a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) a[i] = 8 + i < kAcc ? acc[8 + i] : _mm256_setzero_ps();
        _mm256_store_ps(r + 8, sum8x8(a));
    }
    for (int qi = 0; qi < Q; ++qi)
        for (int kk = 0; kk < K; ++kk) {
            float a = r[qi * K + kk];
            for (int64_t c = d8; c < d; ++c) a += q[qi * ldq + c] * h2f(k[kk * ldk + c]);
            s[qi * lds + kk] = a * scale;
        }
}

// The keys of a position are one short row in the cache's ring: the hardware prefetcher did not keep
// up with rows a few hundred bytes apart and every tile waited on its loads (an L3-resident context
// ran no faster than one from DRAM). Rows this far ahead are prefetched: 1.6-1.8x at 2,500 positions
// (Zen 3). (The values' tiles, read as 16-column passes, did not get faster with prefetching.)
constexpr int64_t kKeysAhead = 16;

inline void prefetch_rows(const uint16_t* row, int rows, int64_t ld, int64_t d) {
    for (int r = 0; r < rows; ++r)
        for (int64_t b = 0; b < 2 * d; b += 64) _mm_prefetch(reinterpret_cast<const char*>(row + r * ld) + b, _MM_HINT_T0);
}

using ScoresTile = void (*)(int64_t, const float*, int64_t, const uint16_t*, int64_t, float, float*, int64_t);
constexpr ScoresTile kScoresTiles[6][2] = {
    {scores_tile<1, 1>, scores_tile<1, 2>}, {scores_tile<2, 1>, scores_tile<2, 2>}, {scores_tile<3, 1>, scores_tile<3, 2>},
    {scores_tile<4, 1>, scores_tile<4, 2>}, {scores_tile<5, 1>, scores_tile<5, 2>}, {scores_tile<6, 1>, scores_tile<6, 2>},
};

void attn_scores_f16(int64_t d, int64_t nq, const float* q, int64_t ldq, int64_t nk, const uint16_t* k, int64_t ldk, float scale, float* s,
                     int64_t lds) {
    for (int64_t j0 = 0; j0 < nk; j0 += 64) {
        const int64_t j1 = nk - j0 < 64 ? nk : j0 + 64;
        for (int64_t i = 0; i < nq; i += 6) {
            const int qn = static_cast<int>(nq - i < 6 ? nq - i : 6);
            for (int64_t j = j0; j < j1; j += 2) {
                const int kn = static_cast<int>(j1 - j < 2 ? j1 - j : 2);
                if (i == 0) prefetch_rows(k + (j + kKeysAhead) * ldk, 2, ldk, d);
                kScoresTiles[qn - 1][kn - 1](d, q + i * ldq, ldq, k + j * ldk, ldk, scale, s + i * lds + j, lds);
            }
        }
    }
}

// Q queries (<= 6) x 16 output columns (2 vectors; 1 when d - c0 < 16) over nk value rows: each
// value chunk is converted once for all the tile's queries (as the scores' tiles).
template <int Q, int C>
void pv_tile(const float* p, int64_t ldp, int64_t nk, const uint16_t* v, int64_t ldv, float* o, int64_t ldo) {
    __m256 acc[Q][C];
#pragma GCC unroll 6
    for (int qi = 0; qi < Q; ++qi)
#pragma GCC unroll 2
        for (int c = 0; c < C; ++c) acc[qi][c] = _mm256_setzero_ps();
    for (int64_t j = 0; j < nk; ++j) {
        __m256 vv[C];
#pragma GCC unroll 2
        for (int c = 0; c < C; ++c) vv[c] = load_f16x8(v + j * ldv + 8 * c);
#pragma GCC unroll 6
        for (int qi = 0; qi < Q; ++qi) {
            const __m256 pb = _mm256_broadcast_ss(p + qi * ldp + j);
#pragma GCC unroll 2
            for (int c = 0; c < C; ++c) acc[qi][c] = _mm256_fmadd_ps(pb, vv[c], acc[qi][c]);
        }
    }
#pragma GCC unroll 6
    for (int qi = 0; qi < Q; ++qi)
#pragma GCC unroll 2
        for (int c = 0; c < C; ++c)
            _mm256_storeu_ps(o + qi * ldo + 8 * c, _mm256_add_ps(_mm256_loadu_ps(o + qi * ldo + 8 * c), acc[qi][c]));
}

using PvTile = void (*)(const float*, int64_t, int64_t, const uint16_t*, int64_t, float*, int64_t);
constexpr PvTile kPvTiles[6][2] = {
    {pv_tile<1, 1>, pv_tile<1, 2>}, {pv_tile<2, 1>, pv_tile<2, 2>}, {pv_tile<3, 1>, pv_tile<3, 2>},
    {pv_tile<4, 1>, pv_tile<4, 2>}, {pv_tile<5, 1>, pv_tile<5, 2>}, {pv_tile<6, 1>, pv_tile<6, 2>},
};

void attn_pv_f16(int64_t d, int64_t nq, const float* p, int64_t ldp, int64_t nk, const uint16_t* v, int64_t ldv, float* o, int64_t ldo) {
    const int64_t d8 = d / 8 * 8;
    for (int64_t j0 = 0; j0 < nk; j0 += 256) {
        const int64_t jn = nk - j0 < 256 ? nk - j0 : 256;
        for (int64_t c = 0; c < d8; c += 16) {
            const int chunks = d8 - c < 16 ? 1 : 2;
            for (int64_t i = 0; i < nq; i += 6) {
                const int qn = static_cast<int>(nq - i < 6 ? nq - i : 6);
                kPvTiles[qn - 1][chunks - 1](p + i * ldp + j0, ldp, jn, v + j0 * ldv + c, ldv, o + i * ldo + c, ldo);
            }
        }
        for (int64_t i = 0; i < nq; ++i)
            for (int64_t c = d8; c < d; ++c) {
                float a = 0.0f;
                for (int64_t j = j0; j < j0 + jn; ++j) a += p[i * ldp + j] * h2f(v[j * ldv + c]);
                o[i * ldo + c] += a;
            }
    }
}

// expf for x <= 0 (softmax inputs are s - max): Cody-Waite reduction by ln 2 and a degree-6
// polynomial (Cephes' expf coefficients); x is clamped at -87.3 (exp of it is about 1e-38, which
// the fp16 rounding of the probabilities turns into 0 like the true value).
inline __m256 exp_neg(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

inline float round_f16(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

void softmax_f16r(int64_t n, float* s) {
    const int64_t n8 = n / 8 * 8;
    __m256 mx8 = _mm256_set1_ps(-INFINITY);
    for (int64_t j = 0; j < n8; j += 8) mx8 = _mm256_max_ps(mx8, _mm256_loadu_ps(s + j));
    alignas(32) float t[8];
    _mm256_store_ps(t, mx8);
    float mx = t[0];
    for (int i = 1; i < 8; ++i) mx = std::fmax(mx, t[i]);
    for (int64_t j = n8; j < n; ++j) mx = std::fmax(mx, s[j]);
    const __m256 mv = _mm256_set1_ps(mx);
    __m256 sum8 = _mm256_setzero_ps();
    for (int64_t j = 0; j < n8; j += 8) {
        const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
        _mm256_storeu_ps(s + j, e);
        sum8 = _mm256_add_ps(sum8, e);
    }
    float sum = hsum256(sum8);
    for (int64_t j = n8; j < n; ++j) {
        s[j] = std::exp(s[j] - mx);
        sum += s[j];
    }
    const float inv = 1.0f / sum;
    const __m256 iv = _mm256_set1_ps(inv);
    for (int64_t j = 0; j < n8; j += 8)
        _mm256_storeu_ps(s + j, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(s + j), iv), _MM_FROUND_TO_NEAREST_INT)));
    for (int64_t j = n8; j < n; ++j) s[j] = round_f16(s[j] * inv);
}

// ---- k-quants (kquants_simd.h), with maddubs + madd as the int8 multiply-add ----
struct KqMadd {
    // acc + sc * (4 byte products): maddubs' pair sums cannot saturate (kquants_simd.h: codes <= 63).
    static __m256i acc(__m256i acc, __m256i u, __m256i s, __m256i sc) {
        return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc));
    }
    static constexpr bool kScaleInLowHalf = false;
};
#include "kernels/kquants_simd.h"

}  // namespace
}  // namespace moe::kernels

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

#include "kernels/simd_set.h"  // make_simd_set, outside the ISA region

namespace moe::kernels {
const KernelSet* avx2_set() {
    static const KernelSet set = [] {
        KernelSet k = make_simd_set(Isa::Avx2);
        k.types[uint32_t(DType::Q4_0)].mul_r16 = mul_as<block_q4_0, block_q8_0, mul_q4_0r16_q8_0>;
        k.types[uint32_t(DType::Q4_0)].mul_nm = sparse256::mul_nm;
        return k;
    }();
    return &set;
}
}  // namespace moe::kernels

#else  // !__x86_64__

namespace moe::kernels {
const KernelSet* avx2_set() { return nullptr; }
}  // namespace moe::kernels

#endif

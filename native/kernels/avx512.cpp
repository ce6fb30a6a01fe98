// AVX-512 (F/BW/DQ/VL) kernel set, plus the AVX-512 VNNI set, which shares everything but the
// int8 dots and the quantized matrix kernels (those live in avx512vnni.cpp; the matrix kernels'
// tiling, shared by both sets, in mul_avx512.h). Only this file is compiled with AVX-512 enabled
// (target pragma below); dispatch.cpp only hands this set out when cpu_supports(Isa::Avx512).
//
// All standard/project headers are included BEFORE the target pragma (see avx2.cpp for why);
// everything compiled under the pragma lives in an anonymous namespace.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

#if defined(__x86_64__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own _mm512_undefined_*()
// placeholders once inlined (GCC bug 105593); silence that for this file only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl")
#endif

#include <immintrin.h>

namespace moe::kernels {
namespace {

// Mask of the first r (< 16 or < 32) lanes.
inline __mmask16 tail16(int64_t r) { return static_cast<__mmask16>((1u << r) - 1u); }
inline __mmask32 tail32(int64_t r) { return static_cast<__mmask32>((1ull << r) - 1ull); }

// ---- activation conversions ----

void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n) {
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * QK8_0;
        const __m512 v0 = _mm512_loadu_ps(xb);
        const __m512 v1 = _mm512_loadu_ps(xb + 16);
        const __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
        __m256 m8 = _mm256_max_ps(_mm512_castps512_ps256(m), _mm512_extractf32x8_ps(m, 1));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m512 mul = _mm512_set1_ps(id);
        // Conversion with embedded round-to-nearest-even == nearbyint in the default mode.
        const __m512i i0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i i1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs), _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16), _mm512_cvtsepi32_epi8(i1));
    }
}

void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i h0 = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        const __m256i h1 = _mm512_cvtps_ph(_mm512_loadu_ps(x + i + 16), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), h0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i + 16), h1);
    }
    for (; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? static_cast<__mmask16>(0xffff) : tail16(n - i);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(k, x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_mask_storeu_epi16(y + i, k, h);
    }
}

// 16 floats (as bits) -> 16 bf16: RNE, NaN -> quiet NaN (dtype.h).
inline __m256i bf16_round16(__m512i u) {
    const __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    const __mmask16 is_nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
    const __m512i hi = _mm512_srli_epi32(u, 16);
    const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __m512i r = _mm512_mask_or_epi32(rounded, is_nan, hi, _mm512_set1_epi32(64));
    return _mm512_cvtepi32_epi16(r);
}

void fp32_to_bf16_row(const float* x, uint16_t* y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), bf16_round16(_mm512_loadu_si512(x + i)));
    }
    if (i < n) {
        const __mmask16 k = tail16(n - i);
        _mm256_mask_storeu_epi16(y + i, k, bf16_round16(_mm512_maskz_loadu_epi32(k, x + i)));
    }
}

// ---- dots ----

float dot_f32(int64_t n, const float* w, const float* x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    if (i < n) {
        const __mmask16 k = tail16(n - i);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, w + i), _mm512_maskz_loadu_ps(k, x + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

inline __m512 load_f16x16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }

float dot_f16(int64_t n, const uint16_t* w, const uint16_t* x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(load_f16x16(w + i), load_f16x16(x + i), a0);
        a1 = _mm512_fmadd_ps(load_f16x16(w + i + 16), load_f16x16(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(load_f16x16(w + i + 32), load_f16x16(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(load_f16x16(w + i + 48), load_f16x16(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load_f16x16(w + i), load_f16x16(x + i), a0);
    if (i < n) {
        const __mmask16 k = tail16(n - i);
        const __m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, w + i));
        const __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, x + i));
        a1 = _mm512_fmadd_ps(wv, xv, a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// bf16 pairs in 32-bit lanes: even element = low half (shift up), odd = high half (mask).
inline __m512 bf16_even(__m512i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); }
inline __m512 bf16_odd(__m512i v) { return _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u)))); }

float dot_bf16(int64_t n, const uint16_t* w, const uint16_t* x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512i w0 = _mm512_loadu_si512(w + i), x0 = _mm512_loadu_si512(x + i);
        const __m512i w1 = _mm512_loadu_si512(w + i + 32), x1 = _mm512_loadu_si512(x + i + 32);
        a0 = _mm512_fmadd_ps(bf16_even(w0), bf16_even(x0), a0);
        a1 = _mm512_fmadd_ps(bf16_odd(w0), bf16_odd(x0), a1);
        a2 = _mm512_fmadd_ps(bf16_even(w1), bf16_even(x1), a2);
        a3 = _mm512_fmadd_ps(bf16_odd(w1), bf16_odd(x1), a3);
    }
    for (; i < n; i += 32) {
        const __mmask32 k = n - i >= 32 ? static_cast<__mmask32>(0xffffffffu) : tail32(n - i);
        const __m512i w0 = _mm512_maskz_loadu_epi16(k, w + i), x0 = _mm512_maskz_loadu_epi16(k, x + i);
        a0 = _mm512_fmadd_ps(bf16_even(w0), bf16_even(x0), a0);
        a1 = _mm512_fmadd_ps(bf16_odd(w0), bf16_odd(x0), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// ---- int8 dots: two blocks per 512-bit vector ----
// Int32 lanes 0..7 of a pair's result hold block i's partial sums, lanes 8..15 block i+1's;
// scale_pair() makes the matching {d_i x8, d_{i+1} x8} vector.

// {d_w*d_x of block a x8, of block b x8}. fp16 -> fp32 through dtype's exact lookup table
// (broadcast loads; much cheaper than F16C conversions of single values, which otherwise make
// the per-block scales the most expensive part of these dots).
inline __m512 half_pair(uint16_t a, uint16_t b) {
    return _mm512_mask_broadcastss_ps(_mm512_set1_ps(g_fp16_table[a]), 0xff00, _mm_load_ss(g_fp16_table + b));
}
template <typename BW>
inline __m512 scale_pair(const BW* w, const block_q8_0* x) {
    return _mm512_mul_ps(half_pair(w[0].d, w[1].d), half_pair(x[0].d, x[1].d));
}
inline __m256 block_scale(uint16_t dw, uint16_t dx) {
    return _mm256_mul_ps(_mm256_broadcast_ss(g_fp16_table + dw), _mm256_broadcast_ss(g_fp16_table + dx));
}

inline __m512i load_pair(const int8_t* a, const int8_t* b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

// Two q4_0 blocks' nibbles laid out like two consecutive q8_0 blocks' qs:
// 128-bit lanes {a low nibbles, a high nibbles, b low nibbles, b high nibbles}.
inline __m512i unpack_q4_pair(const uint8_t* a, const uint8_t* b) {
    const __m512i v =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a)))),
                           _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b))), 1);
    // shift right by 4 in 128-bit lanes 1 and 3 (16-bit elements 8..15 and 24..31)
    return _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xff00ff00u, v, 4), _mm512_set1_epi8(0x0f));
}

// Exact int8 dots, 8 int32 partial sums per block (see avx2.cpp for the ranges):
// q8_0: |w| * (x with w's sign); activations must be in [-127, 127] (quantize_row_q8_0 output).
inline __m512i dot_i8_pair(__m512i qw, __m512i qx) {
    const __m512i sx = _mm512_mask_sub_epi8(qx, _mm512_movepi8_mask(qw), _mm512_setzero_si512(), qx);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(qw), sx), _mm512_set1_epi16(1));
}
// q4_0: nibbles q in 0..15: maddubs(q, x) - maddubs(8, x); exact for any int8 x.
inline __m512i dot_q4_pair(__m512i q, __m512i qx) {
    const __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(q, qx), _mm512_maddubs_epi16(_mm512_set1_epi8(8), qx));
    return _mm512_madd_epi16(p, _mm512_set1_epi16(1));
}

// 256-bit versions for an odd last block.
inline __m256i dot_i8_block(__m256i qw, __m256i qx) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(qw), _mm256_sign_epi8(qx, qw));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}
inline __m256i dot_q4_block(__m256i q, __m256i qx) {
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qx), _mm256_maddubs_epi16(_mm256_set1_epi8(8), qx));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}
inline __m256i unpack_q4(const uint8_t* qs) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}
inline __m256i load256(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Hides v's origin from the optimiser: a product passed through here is rounded on its own and
// never contracted with a later add into an FMA (GCC contracts intrinsics' mul + add at -O2 and
// up), so the dot and the matrix kernels round identically whatever the optimisation level.
inline __m256 opaque(__m256 v) {
    __asm__("" : "+v"(v));
    return v;
}

// The odd last block's term of a dot: w's and x's block products, scaled.
inline __m256 q8_tail(const block_q8_0* w, const block_q8_0* x) {
    return opaque(_mm256_mul_ps(_mm256_cvtepi32_ps(dot_i8_block(load256(w->qs), load256(x->qs))), block_scale(w->d, x->d)));
}
inline __m256 q4_tail(const block_q4_0* w, const block_q8_0* x) {
    return opaque(_mm256_mul_ps(_mm256_cvtepi32_ps(dot_q4_block(unpack_q4(w->qs), load256(x->qs))), block_scale(w->d, x->d)));
}

inline float sum_with_tail(__m512 a0, __m512 a1, __m256 t) {
    const __m512 s = _mm512_add_ps(a0, a1);
    const __m256 h = _mm256_add_ps(_mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1)), t);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

float dot_q8_0_q8_0(int64_t n, const block_q8_0* w, const block_q8_0* x) {
    const int64_t nb = n / QK8_0;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const __m512 d0 = scale_pair(w + i, x + i);
        const __m512 d1 = scale_pair(w + i + 2, x + i + 2);
        const __m512i s0 = dot_i8_pair(load_pair(w[i].qs, w[i + 1].qs), load_pair(x[i].qs, x[i + 1].qs));
        const __m512i s1 = dot_i8_pair(load_pair(w[i + 2].qs, w[i + 3].qs), load_pair(x[i + 2].qs, x[i + 3].qs));
        a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), d0, a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), d1, a1);
    }
    if (i + 2 <= nb) {
        const __m512 d0 = scale_pair(w + i, x + i);
        const __m512i s0 = dot_i8_pair(load_pair(w[i].qs, w[i + 1].qs), load_pair(x[i].qs, x[i + 1].qs));
        a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), d0, a0);
        i += 2;
    }
    __m256 t = _mm256_setzero_ps();
    if (i < nb) t = q8_tail(w + i, x + i);
    return sum_with_tail(a0, a1, t);
}

float dot_q4_0_q8_0(int64_t n, const block_q4_0* w, const block_q8_0* x) {
    const int64_t nb = n / QK4_0;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const __m512 d0 = scale_pair(w + i, x + i);
        const __m512 d1 = scale_pair(w + i + 2, x + i + 2);
        const __m512i s0 = dot_q4_pair(unpack_q4_pair(w[i].qs, w[i + 1].qs), load_pair(x[i].qs, x[i + 1].qs));
        const __m512i s1 = dot_q4_pair(unpack_q4_pair(w[i + 2].qs, w[i + 3].qs), load_pair(x[i + 2].qs, x[i + 3].qs));
        a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), d0, a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), d1, a1);
    }
    if (i + 2 <= nb) {
        const __m512 d0 = scale_pair(w + i, x + i);
        const __m512i s0 = dot_q4_pair(unpack_q4_pair(w[i].qs, w[i + 1].qs), load_pair(x[i].qs, x[i + 1].qs));
        a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), d0, a0);
        i += 2;
    }
    __m256 t = _mm256_setzero_ps();
    if (i < nb) t = q4_tail(w + i, x + i);
    return sum_with_tail(a0, a1, t);
}

void axpy_f16(int64_t n, float a, const uint16_t* x, float* y) {
    const __m512 av = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_mul_ps(av, load_f16x16(x + i))));
    if (i < n) {
        const __mmask16 k = tail16(n - i);
        const __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, x + i));
        _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, y + i), _mm512_mul_ps(av, xv)));
    }
}

// ---- matrix kernels (mul_avx512.h): the block-pair operands of dot_q4_pair / dot_i8_pair ----

#include "kernels/mul_avx512.h"

struct Q4Ops : PairScalesQ8_0 {
    using BW = block_q4_0;
    struct W {
        __m512i q;
    };
    struct X {
        __m512i x, m8;  // m8 = maddubs(8, x), shared by the tile's rows
    };
    static W load_w(const block_q4_0* b) { return {unpack_q4_pair(b[0].qs, b[1].qs)}; }
    static X load_x(const block_q8_0* b) {
        const __m512i x = load_pair(b[0].qs, b[1].qs);
        return {x, _mm512_maddubs_epi16(_mm512_set1_epi8(8), x)};
    }
    static __m512i dot(const W& w, const X& x) {
        return _mm512_madd_epi16(_mm512_sub_epi16(_mm512_maddubs_epi16(w.q, x.x), x.m8), _mm512_set1_epi16(1));
    }
    static __m256 tail(const block_q4_0* w, const block_q8_0* x) { return q4_tail(w, x); }
};

struct Q8Ops : PairScalesQ8_0 {
    using BW = block_q8_0;
    struct W {
        __m512i a;    // |w|
        __mmask64 n;  // w < 0
    };
    struct X {
        __m512i x;
    };
    static W load_w(const block_q8_0* b) {
        const __m512i w = load_pair(b[0].qs, b[1].qs);
        return {_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
    }
    static X load_x(const block_q8_0* b) { return {load_pair(b[0].qs, b[1].qs)}; }
    static __m512i dot(const W& w, const X& x) {
        const __m512i sx = _mm512_mask_sub_epi8(x.x, w.n, _mm512_setzero_si512(), x.x);
        return _mm512_madd_epi16(_mm512_maddubs_epi16(w.a, sx), _mm512_set1_epi16(1));
    }
    static __m256 tail(const block_q8_0* w, const block_q8_0* x) { return q8_tail(w, x); }
};

void mul_q4_0_q8_0(int64_t n, const block_q4_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul512<Q4Ops>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}
void mul_q8_0_q8_0(int64_t n, const block_q8_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul512<Q8Ops>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}

// ---- attention (KernelSet::attn_scores_f16 / attn_pv_f16 / softmax_f16r) ----

// 16 vectors -> one vector of their 16 horizontal sums: lane l = sum of a[l]'s lanes.
inline __m512 sum16x16(const __m512 (&a)[16]) {
    __m512 v[8], w[4], z[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i)
        v[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i)
        w[i] = _mm512_add_ps(_mm512_shuffle_ps(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i)
        z[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Q queries (<= 8) x K keys (<= 2): each key chunk is converted from fp16 once for all the tile's
// queries (a grouped-query head's 6 or 7 queries share its keys); the 16 accumulators are reduced
// together by sum16x16, so accumulator qi * K + kk lands in that lane (every accumulator's lanes
// are added by the same tree, whatever the tile's shape).
template <int Q, int K>
void scores_tile(int64_t d, const float* q, int64_t ldq, const uint16_t* k, int64_t ldk, float scale, float* s, int64_t lds) {
    constexpr int kAcc = Q * K;
    __m512 acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 16) {
        const __mmask16 m = d - c >= 16 ? static_cast<__mmask16>(0xffff) : tail16(d - c);
        __m512 kv[K];
#pragma GCC unroll 2
        for (int kk = 0; kk < K; ++kk) kv[kk] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, k + kk * ldk + c));
#pragma GCC unroll 8
        for (int qi = 0; qi < Q; ++qi) {
            const __m512 qv = _mm512_maskz_loadu_ps(m, q + qi * ldq + c);
#pragma GCC unroll 2
            for (int kk = 0; kk < K; ++kk) acc[qi * K + kk] = _mm512_fmadd_ps(qv, kv[kk], acc[qi * K + kk]);
        }
    }
    alignas(64) float r[16];
    _mm512_store_ps(r, _mm512_mul_ps(sum16x16(acc), _mm512_set1_ps(scale)));
#pragma GCC unroll 8
    for (int qi = 0; qi < Q; ++qi)
#pragma GCC unroll 2
        for (int kk = 0; kk < K; ++kk) s[qi * lds + kk] = r[qi * K + kk];
    (void)kAcc;
}

// The keys of a position are one short row in the cache's ring: rows this far ahead are
// prefetched (the hardware prefetcher does not follow rows a few hundred bytes apart).
constexpr int64_t kKeysAhead = 16;

inline void prefetch_rows(const uint16_t* row, int rows, int64_t ld, int64_t d) {
    for (int r = 0; r < rows; ++r)
        for (int64_t b = 0; b < 2 * d; b += 64) _mm_prefetch(reinterpret_cast<const char*>(row + r * ld) + b, _MM_HINT_T0);
}

using ScoresTile = void (*)(int64_t, const float*, int64_t, const uint16_t*, int64_t, float, float*, int64_t);
constexpr ScoresTile kScoresTiles[8][2] = {
    {scores_tile<1, 1>, scores_tile<1, 2>}, {scores_tile<2, 1>, scores_tile<2, 2>}, {scores_tile<3, 1>, scores_tile<3, 2>},
    {scores_tile<4, 1>, scores_tile<4, 2>}, {scores_tile<5, 1>, scores_tile<5, 2>}, {scores_tile<6, 1>, scores_tile<6, 2>},
    {scores_tile<7, 1>, scores_tile<7, 2>}, {scores_tile<8, 1>, scores_tile<8, 2>},
};

// Keys in blocks of 64 (their fp16 rows stay in L1 while every query tile passes over them).
void attn_scores_f16(int64_t d, int64_t nq, const float* q, int64_t ldq, int64_t nk, const uint16_t* k, int64_t ldk, float scale, float* s,
                     int64_t lds) {
    for (int64_t j0 = 0; j0 < nk; j0 += 64) {
        const int64_t j1 = nk - j0 < 64 ? nk : j0 + 64;
        for (int64_t i = 0; i < nq; i += 8) {
            const int qn = static_cast<int>(nq - i < 8 ? nq - i : 8);
            for (int64_t j = j0; j < j1; j += 2) {
                const int kn = static_cast<int>(j1 - j < 2 ? j1 - j : 2);
                if (i == 0) prefetch_rows(k + (j + kKeysAhead) * ldk, 2, ldk, d);
                kScoresTiles[qn - 1][kn - 1](d, q + i * ldq, ldq, k + j * ldk, ldk, scale, s + i * lds + j, lds);
            }
        }
    }
}

// Q queries (<= 8) x 32 output columns (2 vectors, masked past d) over nk value rows: each value
// chunk is converted once for all the tile's queries (as the scores' tiles).
// pf_bytes: the first pass over the rows also prefetches this many bytes of the row kKeysAhead
// further on (0: none).
template <int Q>
void pv_tile(int64_t d, const float* p, int64_t ldp, int64_t nk, const uint16_t* v, int64_t ldv, float* o, int64_t ldo, int64_t pf_bytes) {
    __mmask16 m[2];
    for (int c = 0; c < 2; ++c) {
        const int64_t left = d - 16 * c;
        m[c] = left >= 16 ? static_cast<__mmask16>(0xffff) : left <= 0 ? static_cast<__mmask16>(0) : tail16(left);
    }
    __m512 acc[Q][2];
#pragma GCC unroll 8
    for (int qi = 0; qi < Q; ++qi) acc[qi][0] = acc[qi][1] = _mm512_setzero_ps();
    for (int64_t j = 0; j < nk; ++j) {
        for (int64_t b = 0; b < pf_bytes; b += 64) _mm_prefetch(reinterpret_cast<const char*>(v + (j + kKeysAhead) * ldv) + b, _MM_HINT_T0);
        __m512 vv[2];
#pragma GCC unroll 2
        for (int c = 0; c < 2; ++c) vv[c] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m[c], v + j * ldv + 16 * c));
#pragma GCC unroll 8
        for (int qi = 0; qi < Q; ++qi) {
            const __m512 pb = _mm512_set1_ps(p[qi * ldp + j]);
#pragma GCC unroll 2
            for (int c = 0; c < 2; ++c) acc[qi][c] = _mm512_fmadd_ps(pb, vv[c], acc[qi][c]);
        }
    }
#pragma GCC unroll 8
    for (int qi = 0; qi < Q; ++qi)
#pragma GCC unroll 2
        for (int c = 0; c < 2; ++c) {
            float* dst = o + qi * ldo + 16 * c;
            if (m[c]) _mm512_mask_storeu_ps(dst, m[c], _mm512_add_ps(_mm512_maskz_loadu_ps(m[c], dst), acc[qi][c]));
        }
}

using PvTile = void (*)(int64_t, const float*, int64_t, int64_t, const uint16_t*, int64_t, float*, int64_t, int64_t);
constexpr PvTile kPvTiles[8] = {pv_tile<1>, pv_tile<2>, pv_tile<3>, pv_tile<4>, pv_tile<5>, pv_tile<6>, pv_tile<7>, pv_tile<8>};

// Value rows in blocks of 256 (in L1/L2 while the query tiles pass over them).
void attn_pv_f16(int64_t d, int64_t nq, const float* p, int64_t ldp, int64_t nk, const uint16_t* v, int64_t ldv, float* o, int64_t ldo) {
    for (int64_t j0 = 0; j0 < nk; j0 += 256) {
        const int64_t jn = nk - j0 < 256 ? nk - j0 : 256;
        for (int64_t c = 0; c < d; c += 32)
            for (int64_t i = 0; i < nq; i += 8) {
                const int qn = static_cast<int>(nq - i < 8 ? nq - i : 8);
                kPvTiles[qn - 1](d - c, p + i * ldp + j0, ldp, jn, v + j0 * ldv + c, ldv, o + i * ldo + c, ldo,
                                 c == 0 && i == 0 ? 2 * d : 0);
            }
    }
}

// expf for x <= 0 (softmax inputs are s - max): Cody-Waite reduction by ln 2 and a degree-6
// polynomial (Cephes' expf coefficients); scalef gives 2^n, down to 0 for very negative x.
inline __m512 exp_neg(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    const __m512 n =
        _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

void softmax_f16r(int64_t n, float* s) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? static_cast<__mmask16>(0xffff) : tail16(n - j);
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, s + j));
    }
    const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? static_cast<__mmask16>(0xffff) : tail16(n - j);
        const __m512 e = exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), mv));
        _mm512_mask_storeu_ps(s + j, m, e);
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? static_cast<__mmask16>(0xffff) : tail16(n - j);
        const __m512 pr = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), inv);
        _mm512_mask_storeu_ps(s + j, m, _mm512_cvtph_ps(_mm512_cvtps_ph(pr, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    }
}

// ---- repacked Q4_0 (mul_x16_avx512.h); nibbles <= 15 times bytes >= -128: maddubs cannot saturate
struct Dp4 {
    static __m512i dp(__m512i acc, __m512i u8, __m512i s8) {
        return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u8, s8), _mm512_set1_epi16(1)));
    }
};
#include "kernels/mul_x16_avx512.h"
void mul_q4_0x16_q8_0(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_0* x, size_t x_row_bytes, int64_t nt,
                      float* y, int64_t ldy) {
    mul_x16_512<Dp4>(n, w, group_bytes, ngroups, x, x_row_bytes, nt, y, ldy);
}

// ---- ReGLU-sparse Q4_0 (mul_sparse_avx512.h)
#include "kernels/mul_sparse_avx512.h"
void mul_q4_0r16_q8_0(int64_t n, const block_q4_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x,
                      size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul_r16_512<Dp4>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}

// ---- relaid-out Q4_K and Q6_K (mul_kx16.h), 16 rows per vector, Dp4's 4-byte step
#include "kernels/mul_kx16.h"
void mul_q4_Kx16_q8_K(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes, int64_t nt,
                      float* y, int64_t ldy) {
    kx16::mul_q4_K<kx16::Isa512<Dp4>>(n, w, group_bytes, ngroups, x, x_row_bytes, nt, y, ldy);
}
void mul_q6_Kx16_q8_K(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes, int64_t nt,
                      float* y, int64_t ldy) {
    kx16::mul_q6_K<kx16::Isa512<Dp4>>(n, w, group_bytes, ngroups, x, x_row_bytes, nt, y, ldy);
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
#include "kernels/q32_avx512.h"  // q4_1, q5_0, q5_1, iq4_nl and q8_1 activations

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
const KernelSet* avx512_set() {
    static const KernelSet set = [] {
        KernelSet k = make_simd_set(Isa::Avx512);
        k.types[uint32_t(DType::Q4_0)].mul_r16 = mul_as<block_q4_0, block_q8_0, mul_q4_0r16_q8_0>;
        k.types[uint32_t(DType::Q4_0)].mul_nm = mul_nm_512<Dp4>;
        return k;
    }();
    return &set;
}
}  // namespace moe::kernels

#else  // !__x86_64__

namespace moe::kernels {
const KernelSet* avx512_set() { return nullptr; }
}  // namespace moe::kernels

#endif

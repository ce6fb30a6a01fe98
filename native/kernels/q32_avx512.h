// The 32-element weight types other than q4_0/q8_0 in the AVX-512 sets: iq4_nl and q5_0 (with
// q8_0 activations), q4_1 and q5_1 (with q8_1 activations, quantize_row_q8_1 below), as ggml
// pairs them. Included by avx512.cpp and avx512vnni.cpp, INSIDE their target pragma and
// anonymous namespace, after mul_avx512.h (mul512, PairScalesQ8_0), their pair helpers
// (half_pair, load_pair, unpack_q4_pair, sum_with_tail, opaque; opaque512 of mul_x16_avx512.h) and Dp4, the file's 4-byte
// unsigned x signed dot: dp(acc, u8, s8) = acc + the sums of each 4 products (maddubs + madd, or
// vpdpbusd). Every u8 operand below is <= 127 and every s8 operand >= -128, so maddubs cannot
// saturate (pair sums <= 2 * 127 * 128).
//
// Each type's dot is dot512<Ops> and its matrix kernel mul512<Ops>: the same Ops, so the same
// float operations in the same order per (row, token) pair (mul_avx512.h), bit-identical results.
#pragma once

// quantize_row_q8_0 plus s = fp16(d * sum(qs)), with d the fp32 scale (before its fp16 rounding)
// and the sum of the int32 quants, as ggml's x86 quantize_row_q8_1.
inline void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t n) {
    const int64_t nb = n / 32;
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * 32;
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
        const __m512i i0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i i1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        y[i].s = _cvtss_sh(d * static_cast<float>(sum), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs), _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16), _mm512_cvtsepi32_epi8(i1));
    }
}

// The float side of a block pair for the types whose activations are q8_1: PairScalesQ8_0's
// update, then + m_w * s_x in lanes 0 (block 0) and 8 (block 1); the other lanes add +0.
struct PairScalesQ8_1 {
    using BX = block_q8_1;
    struct WS {
        __m512 d, m;
    };
    struct XS {
        __m512 d, s;
    };
    template <class BW>
    static WS w_scale(const BW* b) {
        return {half_pair(b[0].d, b[1].d), half_pair(b[0].m, b[1].m)};
    }
    static XS x_scale(const block_q8_1* b) { return {half_pair(b[0].d, b[1].d), half_pair(b[0].s, b[1].s)}; }
    static __m512 accumulate(__m512 acc, __m512i s, const WS& ws, const XS& xs) {
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(ws.d, xs.d), acc);
        return _mm512_add_ps(acc, opaque512(_mm512_maskz_mul_ps(0x0101, ws.m, xs.s)));
    }
};

// The odd last block's term: the pair code on that block and a zero block (lanes 0..7).
template <class Ops>
inline __m256 tail_by_pair(const typename Ops::BW* w, const typename Ops::BX* x) {
    typename Ops::BW wp[2];
    typename Ops::BX xp[2];
    std::memset(static_cast<void*>(wp), 0, sizeof wp);
    std::memset(static_cast<void*>(xp), 0, sizeof xp);
    wp[0] = *w;
    xp[0] = *x;
    const __m512 t = Ops::accumulate(_mm512_setzero_ps(), Ops::dot(Ops::load_w(wp), Ops::load_x(xp)), Ops::w_scale(wp), Ops::x_scale(xp));
    return opaque(_mm512_castps512_ps256(t));
}

// The fifth bits of a pair of q5 blocks as bytes 0x10 or 0, laid out as unpack_q4_pair's nibbles.
inline __m512i q5_high_pair(const uint8_t* qa, const uint8_t* qb) {
    uint32_t a, b;
    std::memcpy(&a, qa, 4);
    std::memcpy(&b, qb, 4);
    return _mm512_maskz_mov_epi8(static_cast<__mmask64>(a) | (static_cast<__mmask64>(b) << 32), _mm512_set1_epi8(0x10));
}

// iq4_nl: the table's values (-127..113) times x in [-127, 127] (quantize_row_q8_0 output), as
// |w| * (x with w's sign).
struct Iq4nlOps : PairScalesQ8_0 {
    using BW = block_iq4_nl;
    struct W {
        __m512i a;    // |value|
        __mmask64 n;  // value < 0
    };
    struct X {
        __m512i x;
    };
    static W load_w(const block_iq4_nl* b) {
        const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl)));
        const __m512i v = _mm512_shuffle_epi8(table, unpack_q4_pair(b[0].qs, b[1].qs));
        return {_mm512_abs_epi8(v), _mm512_movepi8_mask(v)};
    }
    static X load_x(const block_q8_0* b) { return {load_pair(b[0].qs, b[1].qs)}; }
    static __m512i dot(const W& w, const X& x) {
        const __m512i sx = _mm512_mask_sub_epi8(x.x, w.n, _mm512_setzero_si512(), x.x);
        return Dp4::dp(_mm512_setzero_si512(), w.a, sx);
    }
    static __m256 tail(const block_iq4_nl* w, const block_q8_0* x) { return tail_by_pair<Iq4nlOps>(w, x); }
};

// q5_0: q in 0..31, sum((q - 16) * x) = dp(-dp(16, x), q, x); exact for any int8 x.
struct Q5_0Ops : PairScalesQ8_0 {
    using BW = block_q5_0;
    struct W {
        __m512i q;
    };
    struct X {
        __m512i x, base;  // base = -dp(16, x), shared by the tile's rows
    };
    static W load_w(const block_q5_0* b) { return {_mm512_or_si512(unpack_q4_pair(b[0].qs, b[1].qs), q5_high_pair(b[0].qh, b[1].qh))}; }
    static X load_x(const block_q8_0* b) {
        const __m512i x = load_pair(b[0].qs, b[1].qs);
        const __m512i z = _mm512_setzero_si512();
        return {x, _mm512_sub_epi32(z, Dp4::dp(z, _mm512_set1_epi8(16), x))};
    }
    static __m512i dot(const W& w, const X& x) { return Dp4::dp(x.base, w.q, x.x); }
    static __m256 tail(const block_q5_0* w, const block_q8_0* x) { return tail_by_pair<Q5_0Ops>(w, x); }
};

// q4_1 / q5_1: unsigned q (0..15 / 0..31) times any int8 x.
template <class B, bool kQ5>
struct UnsignedOps : PairScalesQ8_1 {
    using BW = B;
    struct W {
        __m512i q;
    };
    struct X {
        __m512i x;
    };
    static W load_w(const B* b) {
        if constexpr (kQ5)
            return {_mm512_or_si512(unpack_q4_pair(b[0].qs, b[1].qs), q5_high_pair(b[0].qh, b[1].qh))};
        else
            return {unpack_q4_pair(b[0].qs, b[1].qs)};
    }
    static X load_x(const block_q8_1* b) { return {load_pair(b[0].qs, b[1].qs)}; }
    static __m512i dot(const W& w, const X& x) { return Dp4::dp(_mm512_setzero_si512(), w.q, x.x); }
    static __m256 tail(const B* w, const block_q8_1* x) { return tail_by_pair<UnsignedOps>(w, x); }
};
using Q4_1Ops = UnsignedOps<block_q4_1, false>;
using Q5_1Ops = UnsignedOps<block_q5_1, true>;

template <class Ops>
__attribute__((always_inline)) inline __m512 dot512_step(__m512 acc, const typename Ops::BW* w, const typename Ops::BX* x) {
    return Ops::accumulate(acc, Ops::dot(Ops::load_w(w), Ops::load_x(x)), Ops::w_scale(w), Ops::x_scale(x));
}

// As dot_q4_0_q8_0: pairs at 0, 4, 8, ... (and a lone last pair) into a0, at 2, 6, ... into a1.
template <class Ops>
float dot512(int64_t n, const typename Ops::BW* w, const typename Ops::BX* x) {
    const int64_t nb = n / 32;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        a0 = dot512_step<Ops>(a0, w + i, x + i);
        a1 = dot512_step<Ops>(a1, w + i + 2, x + i + 2);
    }
    if (i + 2 <= nb) {
        a0 = dot512_step<Ops>(a0, w + i, x + i);
        i += 2;
    }
    __m256 t = _mm256_setzero_ps();
    if (i < nb) t = Ops::tail(w + i, x + i);
    return sum_with_tail(a0, a1, t);
}

// The table's names (simd_set.h, avx512vnni_set()).
inline float dot_iq4_nl_q8_0(int64_t n, const block_iq4_nl* w, const block_q8_0* x) { return dot512<Iq4nlOps>(n, w, x); }
inline float dot_q5_0_q8_0(int64_t n, const block_q5_0* w, const block_q8_0* x) { return dot512<Q5_0Ops>(n, w, x); }
inline float dot_q4_1_q8_1(int64_t n, const block_q4_1* w, const block_q8_1* x) { return dot512<Q4_1Ops>(n, w, x); }
inline float dot_q5_1_q8_1(int64_t n, const block_q5_1* w, const block_q8_1* x) { return dot512<Q5_1Ops>(n, w, x); }
inline void mul_iq4_nl_q8_0(int64_t n, const block_iq4_nl* w, size_t wrb, const int32_t* rows, int64_t nr, const block_q8_0* x, size_t xrb,
                            int64_t nt, float* y, int64_t ldy) {
    mul512<Iq4nlOps>(n, w, wrb, rows, nr, x, xrb, nt, y, ldy);
}
inline void mul_q5_0_q8_0(int64_t n, const block_q5_0* w, size_t wrb, const int32_t* rows, int64_t nr, const block_q8_0* x, size_t xrb,
                          int64_t nt, float* y, int64_t ldy) {
    mul512<Q5_0Ops>(n, w, wrb, rows, nr, x, xrb, nt, y, ldy);
}
inline void mul_q4_1_q8_1(int64_t n, const block_q4_1* w, size_t wrb, const int32_t* rows, int64_t nr, const block_q8_1* x, size_t xrb,
                          int64_t nt, float* y, int64_t ldy) {
    mul512<Q4_1Ops>(n, w, wrb, rows, nr, x, xrb, nt, y, ldy);
}
inline void mul_q5_1_q8_1(int64_t n, const block_q5_1* w, size_t wrb, const int32_t* rows, int64_t nr, const block_q8_1* x, size_t xrb,
                          int64_t nt, float* y, int64_t ldy) {
    mul512<Q5_1Ops>(n, w, wrb, rows, nr, x, xrb, nt, y, ldy);
}

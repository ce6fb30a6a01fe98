// The 32-element weight types other than q4_0/q8_0 in the AVX2 set: iq4_nl and q5_0 (with q8_0
// activations), q4_1 and q5_1 (with q8_1 activations, quantize_row_q8_1 below), as ggml pairs
// them. Included by avx2.cpp only, INSIDE its target pragma and anonymous namespace, after the
// mul2 tile template, the Ops interface it documents, ScalesQ8_0 and the block helpers
// (unpack_q4, load256, hsum256).
//
// Each type's dot is dot2<Ops> and its matrix kernel mul2<Ops>: the same Ops, so both do the same
// float operations in the same order per (row, token) pair (a0: even blocks, a1: odd blocks,
// hsum256(a0 + a1)) and the matrix kernel is bit-identical to the dot.
#pragma once

// quantize_row_q8_0 plus s = fp16(d * sum(qs)), with d the fp32 scale (before its fp16 rounding)
// and the sum of the int32 quants, as ggml's x86 quantize_row_q8_1.
inline void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t n) {
    const int64_t nb = n / 32;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * 32;
        const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
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
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), kRound));
        const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), kRound));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), kRound));
        const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), kRound));
        const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
        y[i].s = _cvtss_sh(d * static_cast<float>(_mm_cvtsi128_si32(s4)), _MM_FROUND_TO_NEAREST_INT);
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), _mm256_permutevar8x32_epi32(p, perm));
    }
}

// Hides v's origin from the optimiser (no contraction of the product into a later add).
inline __m128 opaque128(__m128 v) {
    __asm__("" : "+x"(v));
    return v;
}

// The float side of the types whose activations are q8_1: the q8_0 update, then + m_w * s_x in
// lane 0 (the other lanes add +0).
struct ScalesQ8_1 {
    using BX = block_q8_1;
    struct WS {
        __m256 d;
        __m128 m;  // m_w in lane 0, zeros above
    };
    struct XS {
        __m256 d;
        __m128 s;  // s_x in lane 0
    };
    template <class BW>
    static WS w_scale(const BW* b) {
        return {_mm256_broadcast_ss(g_fp16_table + b->d), _mm_load_ss(g_fp16_table + b->m)};
    }
    static XS x_scale(const block_q8_1* b) { return {_mm256_broadcast_ss(g_fp16_table + b->d), _mm_load_ss(g_fp16_table + b->s)}; }
    static __m256 accumulate(__m256 acc, __m256i s, const WS& ws, const XS& xs) {
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(ws.d, xs.d), acc);
        return _mm256_add_ps(acc, _mm256_set_m128(_mm_setzero_ps(), opaque128(_mm_mul_ss(ws.m, xs.s))));
    }
};

// The 32 fifth bits of a q5 block as bytes 0x10 (bit j -> byte j) or 0.
inline __m256i q5_high(const uint8_t* qh) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    const __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(h)), shuf), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, bit), _mm256_set1_epi8(0x10));
}

// iq4_nl: the table's values (-127..113) times x in [-127, 127] (quantize_row_q8_0 output), as
// |w| * (x with w's sign): pair sums <= 2 * 127 * 127 fit int16.
struct Iq4nlOps : ScalesQ8_0 {
    using BW = block_iq4_nl;
    struct W {
        __m256i w, a;  // value, |value|
    };
    struct X {
        __m256i x;
    };
    static W load_w(const block_iq4_nl* b) {
        const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl)));
        const __m256i v = _mm256_shuffle_epi8(table, unpack_q4(b->qs));
        return {v, _mm256_abs_epi8(v)};
    }
    static X load_x(const block_q8_0* b) { return {load256(b->qs)}; }
    static __m256i dot(const W& w, const X& x) {
        return _mm256_madd_epi16(_mm256_maddubs_epi16(w.a, _mm256_sign_epi8(x.x, w.w)), _mm256_set1_epi16(1));
    }
};

// q5_0: q in 0..31, sum((q - 16) * x) = maddubs(q, x) - maddubs(16, x) (pair sums <= 7936).
struct Q5_0Ops : ScalesQ8_0 {
    using BW = block_q5_0;
    struct W {
        __m256i q;
    };
    struct X {
        __m256i x, m16;  // m16 = maddubs(16, x)
    };
    static W load_w(const block_q5_0* b) { return {_mm256_or_si256(unpack_q4(b->qs), q5_high(b->qh))}; }
    static X load_x(const block_q8_0* b) {
        const __m256i x = load256(b->qs);
        return {x, _mm256_maddubs_epi16(_mm256_set1_epi8(16), x)};
    }
    static __m256i dot(const W& w, const X& x) {
        return _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(w.q, x.x), x.m16), _mm256_set1_epi16(1));
    }
};

// q4_1 / q5_1: unsigned q (0..15 / 0..31) times any int8 x.
template <class B, bool kQ5>
struct UnsignedOps : ScalesQ8_1 {
    using BW = B;
    struct W {
        __m256i q;
    };
    struct X {
        __m256i x;
    };
    static W load_w(const B* b) {
        if constexpr (kQ5)
            return {_mm256_or_si256(unpack_q4(b->qs), q5_high(b->qh))};
        else
            return {unpack_q4(b->qs)};
    }
    static X load_x(const block_q8_1* b) { return {load256(b->qs)}; }
    static __m256i dot(const W& w, const X& x) { return _mm256_madd_epi16(_mm256_maddubs_epi16(w.q, x.x), _mm256_set1_epi16(1)); }
};
using Q4_1Ops = UnsignedOps<block_q4_1, false>;
using Q5_1Ops = UnsignedOps<block_q5_1, true>;

template <class Ops>
__attribute__((always_inline)) inline __m256 dot2_step(__m256 acc, const typename Ops::BW* w, const typename Ops::BX* x) {
    return Ops::accumulate(acc, Ops::dot(Ops::load_w(w), Ops::load_x(x)), Ops::w_scale(w), Ops::x_scale(x));
}

template <class Ops>
float dot2(int64_t n, const typename Ops::BW* w, const typename Ops::BX* x) {
    const int64_t nb = n / 32;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        a0 = dot2_step<Ops>(a0, w + i, x + i);
        a1 = dot2_step<Ops>(a1, w + i + 1, x + i + 1);
    }
    if (i < nb) a0 = dot2_step<Ops>(a0, w + i, x + i);
    return hsum256(_mm256_add_ps(a0, a1));
}

// The table's names (simd_set.h).
inline float dot_iq4_nl_q8_0(int64_t n, const block_iq4_nl* w, const block_q8_0* x) { return dot2<Iq4nlOps>(n, w, x); }
inline float dot_q5_0_q8_0(int64_t n, const block_q5_0* w, const block_q8_0* x) { return dot2<Q5_0Ops>(n, w, x); }
inline float dot_q4_1_q8_1(int64_t n, const block_q4_1* w, const block_q8_1* x) { return dot2<Q4_1Ops>(n, w, x); }
inline float dot_q5_1_q8_1(int64_t n, const block_q5_1* w, const block_q8_1* x) { return dot2<Q5_1Ops>(n, w, x); }
inline void mul_iq4_nl_q8_0(int64_t n, const block_iq4_nl* w, size_t wrb, const int32_t* rows, int64_t nr, const block_q8_0* x, size_t xrb,
                            int64_t nt, float* y, int64_t ldy) {
    mul2<Iq4nlOps>(n, w, wrb, rows, nr, x, xrb, nt, y, ldy);
}
inline void mul_q5_0_q8_0(int64_t n, const block_q5_0* w, size_t wrb, const int32_t* rows, int64_t nr, const block_q8_0* x, size_t xrb,
                          int64_t nt, float* y, int64_t ldy) {
    mul2<Q5_0Ops>(n, w, wrb, rows, nr, x, xrb, nt, y, ldy);
}
inline void mul_q4_1_q8_1(int64_t n, const block_q4_1* w, size_t wrb, const int32_t* rows, int64_t nr, const block_q8_1* x, size_t xrb,
                          int64_t nt, float* y, int64_t ldy) {
    mul2<Q4_1Ops>(n, w, wrb, rows, nr, x, xrb, nt, y, ldy);
}
inline void mul_q5_1_q8_1(int64_t n, const block_q5_1* w, size_t wrb, const int32_t* rows, int64_t nr, const block_q8_1* x, size_t xrb,
                          int64_t nt, float* y, int64_t ldy) {
    mul2<Q5_1Ops>(n, w, wrb, rows, nr, x, xrb, nt, y, ldy);
}

// Kernels of the 256-element super-block types (k-quants) with q8_K activations, written once
// with 256-bit AVX2 integer code and shared by the AVX2, AVX-512 and AVX-512 VNNI sets. Included
// by avx2.cpp, avx512.cpp and avx512vnni.cpp only, INSIDE their target pragma (AVX2 at least) and
// anonymous namespace, after each defines `struct KqMadd`, its int8 multiply-add primitive:
//
//   static __m256i acc(__m256i acc, __m256i u, __m256i s, __m256i sc): acc + per int32 lane
//       sc * (the sum of its 4 byte products u * s), u unsigned bytes (weight codes, <= 63),
//       s signed bytes (activations), sc: the scale vector made by kq_scale<KqMadd>;
//   static constexpr bool kScaleInLowHalf: the scale vector's layout: false, the lane's int16
//       scale in both 16-bit halves (maddubs + madd); true, in the low half with 0 above (vpdpbusd
//       + vpdpwssd).
//
// Bit-identity with the scalar reference (kquants_ref.h): every kernel computes, per super-block
// and (row, token) pair, the reference's exact int32 sums (integer SIMD, exact: see the ranges
// below) and then the reference's float operations in its order (kq_add / kq_add_min: one
// scalar combine per super-block). So every set's dot and matrix kernel returns the reference's
// bits (tests: test/native/kernels/kquants.cpp).
//
// Ranges (no saturation): weight codes u are unsigned, 0..63 (q6_K), 0..31 (q5_K), 0..15 (q4_K);
// the signed offsets (q6_K: -32) are applied afterwards through the activation's bsums, as ggml
// does. maddubs pair sums are then |u0*s0 + u1*s1| <= 2 * 63 * 128 = 16128 < 32767 for any
// activation bytes; vpdpbusd's 4-products sums are <= 4 * 63 * 128 = 32256, so they fit the low
// int16 half that vpdpwssd multiplies by the scale (the high half, the sign extension, meets 0).
// Per-lane int32 sums stay far below 2^31 (kquants_ref.h).
#pragma once

inline __m256i kq_load(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Horizontal int32 sums (exact, wrap-around arithmetic).
inline int32_t kq_hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}
inline void kq_hsum2(__m256i a, __m256i b, int32_t* ra, int32_t* rb) {
    const __m256i h = _mm256_hadd_epi32(a, b);  // per 128-bit lane: a pairs, a pairs, b pairs, b pairs
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    s = _mm_hadd_epi32(s, s);  // a, b, a, b
    *ra = _mm_cvtsi128_si32(s);
    *rb = _mm_extract_epi32(s, 1);
}

// The reference's per-super-block float combine (kq_combine / kq_combine_min in kquants_ref.h).
// The product goes through an empty asm so it is rounded on its own and never contracted with
// the add into an FMA, whatever -ffp-contract says.
inline void kq_add(float& sum, float dw, float dx, int32_t isum) {
    float p = (dw * dx) * static_cast<float>(isum);
    __asm__("" : "+x"(p));
    sum += p;
}
inline void kq_add_min(float& sum, float dmin, float dx, int32_t msum) {
    float p = (dmin * dx) * static_cast<float>(msum);
    __asm__("" : "+x"(p));
    sum -= p;
}

// The scale vector of int16 slot k (0..7) of each 128-bit lane of src, in M's layout.
template <class M>
inline __m256i kq_scale(__m256i src, int k) {
    const int lo = 2 * k, hi = 2 * k + 1;
    const __m256i mask = M::kScaleInLowHalf ? _mm256_set1_epi32(static_cast<int>(0x80800000u | (hi << 8) | lo))
                                            : _mm256_set1_epi16(static_cast<short>((hi << 8) | lo));
    return _mm256_shuffle_epi8(src, mask);
}

// ---- activations: quantize_row_q8_K, bit for bit ggml's quantize_row_q8_K_ref (kquants_ref.h) ----

inline __m256 kq_opaque(__m256 v) {
    __asm__("" : "+x"(v));
    return v;
}

void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        // amax: max_ps returns its second operand when either is NaN, so NaNs are skipped as in
        // the reference (fabsf(NaN) > amax is false).
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), absmask), m);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        block_q8_K& b = y[i];
        if (amax == 0.0f) {
            b.d = 0;
            std::memset(b.qs, 0, sizeof b.qs);
            std::memset(b.bsums, 0, sizeof b.bsums);
            continue;
        }
        // max: the first element of largest magnitude (the reference keeps the first).
        const __m256 av = _mm256_set1_ps(amax);
        float max = 0;
        for (int j = 0; j < QK_K; j += 8) {
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), absmask), av, _CMP_EQ_OQ));
            if (mask) {
                max = x[j + __builtin_ctz(static_cast<unsigned>(mask))];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256 magic = _mm256_set1_ps(12582912.f);
        const __m256i mant = _mm256_set1_epi32(0x007fffff), half = _mm256_set1_epi32(0x00400000);
        const __m256i c127 = _mm256_set1_epi32(127), lowbyte = _mm256_set1_epi32(0xff);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; ++k) {
                // nearest_int: (bits(v + 1.5 * 2^23) & 0x7fffff) - 0x400000; min(., 127); low byte.
                const __m256 v = _mm256_add_ps(kq_opaque(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8 * k))), magic);
                const __m256i r = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), mant), half);
                q[k] = _mm256_and_si256(_mm256_min_epi32(r, c127), lowbyte);
            }
            // values 0..255: the unsigned-saturating packs are exact; the permute restores the order.
            const __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(q[0], q[1]), _mm256_packus_epi32(q[2], q[3]));
            const __m256i bytes = _mm256_permutevar8x32_epi32(p, perm);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(b.qs + j), bytes);
            // bsums: sums of 8 (byte + 128) by sad, two per group of 16.
            alignas(32) int64_t s[4];
            _mm256_store_si256(reinterpret_cast<__m256i*>(s),
                               _mm256_sad_epu8(_mm256_xor_si256(bytes, _mm256_set1_epi8(static_cast<char>(0x80))), _mm256_setzero_si256()));
            b.bsums[j / 16] = static_cast<int16_t>(s[0] + s[1] - 16 * 128);
            b.bsums[j / 16 + 1] = static_cast<int16_t>(s[2] + s[3] - 16 * 128);
        }
        b.d = 1 / iscale;
    }
}

// ---- weight types ----
// Each type struct K: using BW; struct Pre (what a row's super-block needs besides its codes,
// made once per row and super-block: scale sources, fp32 d/dmin); static Pre prep(const BW&);
// static __m256i codes(const BW&, int k): the unsigned codes of weights 32k..32k+31 (k < 8);
// template <class M> static __m256i scale(const Pre&, int k): the scale vector of vector k;
// template <class M> static void finish(const Pre&, __m256i acc, const block_q8_K&, float& sum):
// the offsets/mins from bsums, the horizontal sums and the float combine.

// q6_K: vector k covers sub-blocks 2k (low 128-bit lane) and 2k+1 (high lane). isum = sum_j
// scale_j * sum code * x - 32 * sum_j scale_j * bsum_j.
struct Q6K {
    using BW = block_q6_K;
    struct Pre {
        __m256i sc_eo;   // int16 scales: low lane the even sub-blocks 0, 2, .., 14; high lane the odd ones
        __m256i sc_nat;  // int16 scales 0..15 in order (for the bsums term)
        float d;
    };
    static Pre prep(const BW& b) {
        const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
        const __m128i eo = _mm_shuffle_epi8(s8, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
        return {_mm256_cvtepi8_epi16(eo), _mm256_cvtepi8_epi16(s8), g_fp16_table[b.d]};
    }
    static __m256i codes(const BW& b, int k) {
        const int h = k / 4, kk = k % 4;
        const __m256i ql = kq_load(b.ql + 64 * h + 32 * (kk & 1));
        const __m256i qh = kq_load(b.qh + 32 * h);
        const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
        const __m256i lo = kk < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
        // bits 2kk, 2kk+1 of qh -> bits 4, 5 (16-bit shifts; the bits crossing bytes are masked off)
        __m256i hi;
        switch (kk) {
            case 0: hi = _mm256_slli_epi16(qh, 4); break;
            case 1: hi = _mm256_slli_epi16(qh, 2); break;
            case 2: hi = qh; break;
            default: hi = _mm256_srli_epi16(qh, 2); break;
        }
        return _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
    }
    template <class M>
    static __m256i scale(const Pre& p, int k) {
        return kq_scale<M>(p.sc_eo, k);
    }
    template <class M>
    static void finish(const Pre& p, __m256i acc, const block_q8_K& x, float& sum) {
        const __m256i corr = _mm256_madd_epi16(kq_load(x.bsums), p.sc_nat);
        kq_add(sum, p.d, x.d, kq_hsum(_mm256_sub_epi32(acc, _mm256_slli_epi32(corr, 5))));
    }
};

// q4_K / q5_K: vector k is sub-block k (one 6-bit scale, one 6-bit min). isum = sum_k sc_k *
// sum code * x; msum = sum_k m_k * (bsum_2k + bsum_2k+1).
struct Q4KPre {
    __m256i sc;    // int16: slot k of both 128-bit lanes = sc_k
    __m256i mins;  // int16: m0, m0, m1, m1, .., m7, m7 (against bsums 0..15)
    float d, dmin;
};
inline Q4KPre q4k_prep(const uint8_t* scales, uint16_t d, uint16_t dmin) {
    // get_scale_min_k4 four bytes at a time (as dtype.h's scale_min_k4).
    uint32_t u[3];
    std::memcpy(u, scales, 12);
    const uint32_t sc03 = u[0] & 0x3f3f3f3f, m03 = u[1] & 0x3f3f3f3f;
    const uint32_t sc47 = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    const uint32_t m47 = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    const __m128i b = _mm_setr_epi32(static_cast<int>(sc03), static_cast<int>(sc47), static_cast<int>(m03), static_cast<int>(m47));
    const __m128i mdup = _mm_shuffle_epi8(b, _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15));
    return {_mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(b)), _mm256_cvtepu8_epi16(mdup), g_fp16_table[d], g_fp16_table[dmin]};
}
template <class M>
inline void q4k_finish(const Q4KPre& p, __m256i acc, const block_q8_K& x, float& sum) {
    int32_t isum, msum;
    kq_hsum2(acc, _mm256_madd_epi16(kq_load(x.bsums), p.mins), &isum, &msum);
    kq_add(sum, p.d, x.d, isum);
    kq_add_min(sum, p.dmin, x.d, msum);
}
// The nibbles of sub-block k: low nibbles of bytes 32(k/2).. for even k, high nibbles for odd k.
inline __m256i q4k_nibbles(const uint8_t* qs, int k) {
    const __m256i v = kq_load(qs + 32 * (k / 2));
    return _mm256_and_si256(k % 2 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0F));
}

struct Q4K {
    using BW = block_q4_K;
    using Pre = Q4KPre;
    static Pre prep(const BW& b) { return q4k_prep(b.scales, b.d, b.dmin); }
    static __m256i codes(const BW& b, int k) { return q4k_nibbles(b.qs, k); }
    template <class M>
    static __m256i scale(const Pre& p, int k) {
        return kq_scale<M>(p.sc, k);
    }
    template <class M>
    static void finish(const Pre& p, __m256i acc, const block_q8_K& x, float& sum) {
        q4k_finish<M>(p, acc, x, sum);
    }
};

struct Q5K {
    using BW = block_q5_K;
    using Pre = Q4KPre;
    static Pre prep(const BW& b) { return q4k_prep(b.scales, b.d, b.dmin); }
    static __m256i codes(const BW& b, int k) {
        // fifth bit: bit k of qh[l] -> bit 4 (16-bit shifts of the isolated bit stay in its byte)
        const __m256i bit = _mm256_and_si256(kq_load(b.qh), _mm256_set1_epi8(static_cast<char>(1 << k)));
        const __m256i hi = k <= 4 ? _mm256_slli_epi16(bit, 4 - k) : _mm256_srli_epi16(bit, k - 4);
        return _mm256_or_si256(q4k_nibbles(b.qs, k), hi);
    }
    template <class M>
    static __m256i scale(const Pre& p, int k) {
        return kq_scale<M>(p.sc, k);
    }
    template <class M>
    static void finish(const Pre& p, __m256i acc, const block_q8_K& x, float& sum) {
        q4k_finish<M>(p, acc, x, sum);
    }
};

// The even/odd split of 16 int8 sub-block scales as int16: low 128-bit lane the even
// sub-blocks 0, 2, .., 14, high lane the odd ones, so that slot k of the two lanes holds the
// scales of vector k's two sub-blocks (2k, 2k+1) for kq_scale.
inline __m256i kq_even_odd16(__m128i s8) {
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15)));
}

// q3_K: codes q + 4 * hbit in 0..7 (value code - 4); vector k covers sub-blocks 2k, 2k+1.
// isum = sum_j (scale_j - 32) * (sum code * x - 4 * bsum_j).
struct Q3K {
    using BW = block_q3_K;
    struct Pre {
        __m256i sc_eo, sc_nat;  // int16 (scale - 32), as q6_K's
        float d;
    };
    static Pre prep(const BW& b) {
        int8_t sc[16];
        scales_q3_K(b.scales, sc);
        const __m128i s8 = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)), _mm_set1_epi8(32));
        return {kq_even_odd16(s8), _mm256_cvtepi8_epi16(s8), g_fp16_table[b.d]};
    }
    static __m256i codes(const BW& b, int k) {
        const int h = k / 4, j = k % 4;
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(kq_load(b.qs + 32 * h), 2 * j), _mm256_set1_epi8(3));
        // bit k of hmask[l] -> bit 2 (16-bit shifts of the isolated bit stay in its byte)
        const __m256i bit = _mm256_and_si256(kq_load(b.hmask), _mm256_set1_epi8(static_cast<char>(1 << k)));
        const __m256i hi = k <= 2 ? _mm256_slli_epi16(bit, 2 - k) : _mm256_srli_epi16(bit, k - 2);
        return _mm256_or_si256(lo, hi);
    }
    template <class M>
    static __m256i scale(const Pre& p, int k) {
        return kq_scale<M>(p.sc_eo, k);
    }
    template <class M>
    static void finish(const Pre& p, __m256i acc, const block_q8_K& x, float& sum) {
        const __m256i corr = _mm256_madd_epi16(kq_load(x.bsums), p.sc_nat);
        kq_add(sum, p.d, x.d, kq_hsum(_mm256_sub_epi32(acc, _mm256_slli_epi32(corr, 2))));
    }
};

// q2_K: codes 0..3; vector k covers sub-blocks 2k, 2k+1. isum = sum_j (scales_j & 15) * sum
// code * x; msum = sum_j (scales_j >> 4) * bsum_j.
struct Q2K {
    using BW = block_q2_K;
    struct Pre {
        __m256i sc_eo;  // int16 scales (low nibbles), even/odd split
        __m256i mins;   // int16 mins (high nibbles) 0..15 in order
        float d, dmin;
    };
    static Pre prep(const BW& b) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
        const __m128i sc = _mm_and_si128(raw, _mm_set1_epi8(0x0F));
        const __m128i mn = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F));
        return {kq_even_odd16(sc), _mm256_cvtepu8_epi16(mn), g_fp16_table[b.d], g_fp16_table[b.dmin]};
    }
    static __m256i codes(const BW& b, int k) {
        const int h = k / 4, j = k % 4;
        return _mm256_and_si256(_mm256_srli_epi16(kq_load(b.qs + 32 * h), 2 * j), _mm256_set1_epi8(3));
    }
    template <class M>
    static __m256i scale(const Pre& p, int k) {
        return kq_scale<M>(p.sc_eo, k);
    }
    template <class M>
    static void finish(const Pre& p, __m256i acc, const block_q8_K& x, float& sum) {
        int32_t isum, msum;
        kq_hsum2(acc, _mm256_madd_epi16(kq_load(x.bsums), p.mins), &isum, &msum);
        kq_add(sum, p.d, x.d, isum);
        kq_add_min(sum, p.dmin, x.d, msum);
    }
};

// iq4_xs: signed values (kValuesIq4nl, -127..113), so every set uses maddubs with the sign
// trick: |v| * (x with v's sign); pair sums <= 2 * 127 * 127, exact for activations in
// [-127, 127] (what quantize_row_q8_K makes; -128 would negate to itself). vpdpbusd's 4-product
// sums would not fit vpdpwssd's int16 half. Vector k is sub-block k: isum = sum_k (ls_k - 32) *
// sum value * x.
struct KqMaddU8Layout {
    static constexpr bool kScaleInLowHalf = false;
};
struct IQ4XS {
    using BW = block_iq4_xs;
    struct Pre {
        __m256i sc;  // int16: slot k of both lanes = ls_k - 32
        float d;
    };
    static Pre prep(const BW& b) {
        alignas(16) int16_t ls[8];
        for (int k = 0; k < 8; ++k) ls[k] = static_cast<int16_t>(scale_iq4_xs(b, k) - 32);
        return {_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(ls))), g_fp16_table[b.d]};
    }
    static __m256i codes(const BW& b, int k) {  // the signed values of sub-block k
        const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 16 * k));
        const __m256i nib =
            _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1), _mm256_set1_epi8(0x0F));
        const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl)));
        return _mm256_shuffle_epi8(lut, nib);
    }
    template <class M>
    static __m256i scale(const Pre& p, int k) {
        return kq_scale<KqMaddU8Layout>(p.sc, k);
    }
    template <class M>
    static __m256i acc(__m256i acc, __m256i v, __m256i x, __m256i sc) {
        return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(v), _mm256_sign_epi8(x, v)), sc));
    }
    template <class M>
    static void finish(const Pre& p, __m256i acc, const block_q8_K& x, float& sum) {
        kq_add(sum, p.d, x.d, kq_hsum(acc));
    }
};

// The multiply-add of type K: M's, unless K has its own (iq4_xs).
template <class K, class M, class = void>
struct KqAcc {
    static __m256i acc(__m256i a, __m256i u, __m256i x, __m256i sc) { return M::acc(a, u, x, sc); }
};
template <class K, class M>
struct KqAcc<K, M, decltype(void(&K::template acc<M>))> {
    static __m256i acc(__m256i a, __m256i u, __m256i x, __m256i sc) { return K::template acc<M>(a, u, x, sc); }
};

// ---- the generic dot and matrix kernels over a type struct K ----

template <class K, class M>
float dot_kq(int64_t n, const typename K::BW* w, const block_q8_K* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const typename K::Pre p = K::prep(w[i]);
        __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) acc = KqAcc<K, M>::acc(acc, K::codes(w[i], k), kq_load(x[i].qs + 32 * k), K::template scale<M>(p, k));
        K::template finish<M>(p, acc, x[i], sum);
    }
    return sum;
}

// One tile: weight rows w[0..R) (prefetching pf[0..R), the next tile's rows), tokens
// x + t * x_row_bytes (t < T), results to y[t * ldy + yo[r]]. Per super-block each row's codes
// are unpacked once for the T tokens and each activation vector loaded once for the R rows; the
// per-pair integer sums and float combine are the dot's.
template <class K, class M, int R, int T>
void kq_tile(int64_t nb, const uint8_t* const* w, const uint8_t* const* pf, const int64_t* yo, const uint8_t* x, size_t x_row_bytes,
             float* y, int64_t ldy) {
    using BW = typename K::BW;
    float sum[R][T];
    const BW* wr[R];
    const block_q8_K* xt[T];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        wr[r] = reinterpret_cast<const BW*>(w[r]);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) sum[r][t] = 0.0f;
    }
    for (int t = 0; t < T; ++t) xt[t] = reinterpret_cast<const block_q8_K*>(x + static_cast<size_t>(t) * x_row_bytes);
    for (int64_t i = 0; i < nb; ++i) {
        typename K::Pre p[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const char* next = reinterpret_cast<const char*>(reinterpret_cast<const BW*>(pf[r]) + i);
            for (size_t off = 0; off < sizeof(BW); off += 64) _mm_prefetch(next + off, _MM_HINT_T0);
            _mm_prefetch(next + sizeof(BW) - 1, _MM_HINT_T0);
            p[r] = K::prep(wr[r][i]);
        }
        __m256i acc[R][T];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
            __m256i xv[T];
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) xv[t] = kq_load(xt[t][i].qs + 32 * k);
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const __m256i u = K::codes(wr[r][i], k);
                const __m256i s = K::template scale<M>(p[r], k);
#pragma GCC unroll 8
                for (int t = 0; t < T; ++t) acc[r][t] = KqAcc<K, M>::acc(acc[r][t], u, xv[t], s);
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) K::template finish<M>(p[r], acc[r][t], xt[t][i], sum[r][t]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) y[t * ldy + yo[r]] = sum[r][t];
}

// Tiles: decode (one token) kKqDecodeRows x 1; otherwise kKqRows x kKqTokens (and their tails).
constexpr int kKqDecodeRows = 4;
constexpr int kKqRows = 2;
constexpr int kKqTokens = 4;
constexpr int64_t kKqTokenChunk = 64;  // tokens whose activations stay in L2 while the rows pass

using KqTile = void (*)(int64_t, const uint8_t* const*, const uint8_t* const*, const int64_t*, const uint8_t*, size_t, float*, int64_t);

template <class K, class M>
KqTile kq_tile_for(int rows, int tokens) {
    static_assert(kKqDecodeRows == 4 && kKqRows == 2 && kKqTokens == 4, "the tables below are 4 x 1 and 2 x 4");
    static constexpr KqTile kDecode[4] = {kq_tile<K, M, 1, 1>, kq_tile<K, M, 2, 1>, kq_tile<K, M, 3, 1>, kq_tile<K, M, 4, 1>};
    static constexpr KqTile kTiles[2][4] = {{kq_tile<K, M, 1, 1>, kq_tile<K, M, 1, 2>, kq_tile<K, M, 1, 3>, kq_tile<K, M, 1, 4>},
                                            {kq_tile<K, M, 2, 1>, kq_tile<K, M, 2, 2>, kq_tile<K, M, 2, 3>, kq_tile<K, M, 2, 4>}};
    return tokens == 1 ? kDecode[rows - 1] : kTiles[rows - 1][tokens - 1];
}

template <class K, class M>
void mul_kq(int64_t n, const typename K::BW* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_K* x,
            size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    const int64_t nb = n / QK_K;
    const uint8_t* wb = reinterpret_cast<const uint8_t*>(w);
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(x);
    const int64_t R = nt == 1 ? kKqDecodeRows : kKqRows;
    const auto row = [&](int64_t i) -> int64_t { return rows ? rows[i] : i; };
    for (int64_t c0 = 0; c0 < nt; c0 += kKqTokenChunk) {
        const int64_t c1 = nt - c0 < kKqTokenChunk ? nt : c0 + kKqTokenChunk;
        for (int64_t r0 = 0; r0 < nr; r0 += R) {
            const int rr = static_cast<int>(nr - r0 < R ? nr - r0 : R);
            const uint8_t* wp[kKqDecodeRows];
            const uint8_t* pf[kKqDecodeRows];
            int64_t yo[kKqDecodeRows];
            for (int r = 0; r < rr; ++r) {
                yo[r] = row(r0 + r);
                wp[r] = wb + static_cast<size_t>(yo[r]) * w_row_bytes;
                pf[r] = r0 + R + r < nr ? wb + static_cast<size_t>(row(r0 + R + r)) * w_row_bytes : wp[r];
            }
            for (int64_t t0 = c0; t0 < c1; t0 += kKqTokens) {
                const int tt = static_cast<int>(c1 - t0 < kKqTokens ? c1 - t0 : kKqTokens);
                kq_tile_for<K, M>(rr, tt)(nb, wp, pf, yo, xb + static_cast<size_t>(t0) * x_row_bytes, x_row_bytes, y + t0 * ldy, ldy);
            }
        }
    }
}

// ---- the named kernels of the including file's set (its KqMadd) ----

float dot_q6_K_q8_K(int64_t n, const block_q6_K* w, const block_q8_K* x) { return dot_kq<Q6K, KqMadd>(n, w, x); }
void mul_q6_K_q8_K(int64_t n, const block_q6_K* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_K* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul_kq<Q6K, KqMadd>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}

float dot_q4_K_q8_K(int64_t n, const block_q4_K* w, const block_q8_K* x) { return dot_kq<Q4K, KqMadd>(n, w, x); }
void mul_q4_K_q8_K(int64_t n, const block_q4_K* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_K* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul_kq<Q4K, KqMadd>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}
float dot_q5_K_q8_K(int64_t n, const block_q5_K* w, const block_q8_K* x) { return dot_kq<Q5K, KqMadd>(n, w, x); }
void mul_q5_K_q8_K(int64_t n, const block_q5_K* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_K* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul_kq<Q5K, KqMadd>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}
float dot_q3_K_q8_K(int64_t n, const block_q3_K* w, const block_q8_K* x) { return dot_kq<Q3K, KqMadd>(n, w, x); }
void mul_q3_K_q8_K(int64_t n, const block_q3_K* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_K* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul_kq<Q3K, KqMadd>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}
float dot_q2_K_q8_K(int64_t n, const block_q2_K* w, const block_q8_K* x) { return dot_kq<Q2K, KqMadd>(n, w, x); }
void mul_q2_K_q8_K(int64_t n, const block_q2_K* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_K* x,
                   size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul_kq<Q2K, KqMadd>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}
float dot_iq4_xs_q8_K(int64_t n, const block_iq4_xs* w, const block_q8_K* x) { return dot_kq<IQ4XS, KqMadd>(n, w, x); }
void mul_iq4_xs_q8_K(int64_t n, const block_iq4_xs* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_K* x,
                     size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    mul_kq<IQ4XS, KqMadd>(n, w, w_row_bytes, rows, nr, x, x_row_bytes, nt, y, ldy);
}

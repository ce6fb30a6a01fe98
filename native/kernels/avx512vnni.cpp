// AVX-512 VNNI kernel set: the AVX-512 set (avx512.cpp) with the int8 dots and the quantized
// matrix kernels (mul_avx512.h) done by vpdpbusd.
// Only this file is compiled with AVX-512 VNNI enabled (target pragma below); dispatch.cpp only
// hands this set out when cpu_supports(Isa::Avx512Vnni).
//
// All standard/project headers are included BEFORE the target pragma (see avx2.cpp for why);
// everything compiled under the pragma lives in an anonymous namespace.
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

#if defined(__x86_64__)

namespace moe::kernels {
const KernelSet* avx512_set();
}

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own _mm512_undefined_*()
// placeholders once inlined (GCC bug 105593); silence that for this file only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")
#endif

#include <immintrin.h>

namespace moe::kernels {
namespace {

// Two blocks per 512-bit vector: int32 lanes 0..7 belong to block i, 8..15 to block i+1.
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
    return _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xff00ff00u, v, 4), _mm512_set1_epi8(0x0f));
}

// Exact int8 dots (ranges: see avx2.cpp). q8_0: |w| * (x with w's sign), activations in
// [-127, 127] (quantize_row_q8_0 output), weights any int8.
inline __m512i dot_i8_pair(__m512i qw, __m512i qx) {
    const __m512i sx = _mm512_mask_sub_epi8(qx, _mm512_movepi8_mask(qw), _mm512_setzero_si512(), qx);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(qw), sx);
}
// q4_0: nibbles q in 0..15: dpbusd(q, x) - dpbusd(8, x); exact for any int8 x.
inline __m512i dot_q4_pair(__m512i q, __m512i qx) {
    const __m512i z = _mm512_setzero_si512();
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(z, q, qx), _mm512_dpbusd_epi32(z, _mm512_set1_epi8(8), qx));
}

// 256-bit versions for an odd last block.
inline __m256i dot_i8_block(__m256i qw, __m256i qx) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(qw), _mm256_sign_epi8(qx, qw));
}
inline __m256i dot_q4_block(__m256i q, __m256i qx) {
    const __m256i z = _mm256_setzero_si256();
    return _mm256_sub_epi32(_mm256_dpbusd_epi32(z, q, qx), _mm256_dpbusd_epi32(z, _mm256_set1_epi8(8), qx));
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

// ---- matrix kernels (mul_avx512.h) ----
// Integer lane sums equal to dot_q4_pair / dot_i8_pair's, with the part that depends on one side
// only computed once per tile and passed to vpdpbusd as its accumulator:
// q4_0: dpbusd(q, x) - dpbusd(8, x) = dpbusd(-dpbusd(8, x), q, x).
// q8_0: sum(w * x) = sum(w * (x + 128)) - 128 * sum(w) = dpbusd(-dpbusd(128, w), x ^ 0x80, w)
// (x + 128 is x ^ 0x80 as an unsigned byte; exact for any int8 w and x, so equal to the dot's
// |w| * (x with w's sign) wherever that one is defined: x in [-127, 127]).

#include "kernels/mul_avx512.h"

struct Q4Ops : PairScalesQ8_0 {
    using BW = block_q4_0;
    struct W {
        __m512i q;
    };
    struct X {
        __m512i x, base;  // base = -dpbusd(8, x)
    };
    static W load_w(const block_q4_0* b) { return {unpack_q4_pair(b[0].qs, b[1].qs)}; }
    static X load_x(const block_q8_0* b) {
        const __m512i x = load_pair(b[0].qs, b[1].qs);
        const __m512i z = _mm512_setzero_si512();
        return {x, _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, _mm512_set1_epi8(8), x))};
    }
    static __m512i dot(const W& w, const X& x) { return _mm512_dpbusd_epi32(x.base, w.q, x.x); }
    static __m256 tail(const block_q4_0* w, const block_q8_0* x) { return q4_tail(w, x); }
};

struct Q8Ops : PairScalesQ8_0 {
    using BW = block_q8_0;
    struct W {
        __m512i w, base;  // base = -128 * (sum of each 4 weights)
    };
    struct X {
        __m512i xu;  // x + 128, unsigned
    };
    static W load_w(const block_q8_0* b) {
        const __m512i w = load_pair(b[0].qs, b[1].qs);
        const __m512i z = _mm512_setzero_si512();
        return {w, _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, _mm512_set1_epi8(-128), w))};
    }
    static X load_x(const block_q8_0* b) { return {_mm512_xor_si512(load_pair(b[0].qs, b[1].qs), _mm512_set1_epi8(-128))}; }
    static __m512i dot(const W& w, const X& x) { return _mm512_dpbusd_epi32(w.base, x.xu, w.w); }
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

// ---- repacked Q4_0 (mul_x16_avx512.h)
struct Dp4 {
    static __m512i dp(__m512i acc, __m512i u8, __m512i s8) { return _mm512_dpbusd_epi32(acc, u8, s8); }
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

// ---- k-quants (kquants_simd.h), with vpdpbusd + vpdpwssd as the int8 multiply-add ----
struct KqMadd {
    // acc + sc * (4 byte products): the 4-product sum fits the low int16 half that vpdpwssd
    // multiplies by sc (|sum| <= 4 * 63 * 128; kquants_simd.h), the high half meets sc's 0.
    static __m256i acc(__m256i acc, __m256i u, __m256i s, __m256i sc) {
        return _mm256_dpwssd_epi32(acc, _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s), sc);
    }
    static constexpr bool kScaleInLowHalf = true;
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

namespace moe::kernels {
// The AVX-512 set with the int8 dots and matrix kernels replaced (the other kernels gain nothing
// from VNNI).
const KernelSet* avx512vnni_set() {
    static const KernelSet ks = [] {
        KernelSet k = *avx512_set();
        k.isa = Isa::Avx512Vnni;
        TypeKernels& q8 = k.types[uint32_t(DType::Q8_0)];
        q8.dot = dot_as<block_q8_0, block_q8_0, dot_q8_0_q8_0>;
        q8.mul = mul_as<block_q8_0, block_q8_0, mul_q8_0_q8_0>;
        TypeKernels& q4 = k.types[uint32_t(DType::Q4_0)];
        q4.dot = dot_as<block_q4_0, block_q8_0, dot_q4_0_q8_0>;
        q4.mul = mul_as<block_q4_0, block_q8_0, mul_q4_0_q8_0>;
        q4.mul_x16 = mul_x16_as<block_q8_0, mul_q4_0x16_q8_0>;
        q4.mul_r16 = mul_as<block_q4_0, block_q8_0, mul_q4_0r16_q8_0>;
        q4.mul_nm = mul_nm_512<Dp4>;
        k.types[uint32_t(DType::Q8_K)].from_f32 = from_f32_as<block_q8_K, quantize_row_q8_K>;  // the same code as AVX-512's
        TypeKernels& q6k = k.types[uint32_t(DType::Q6_K)];
        q6k.dot = dot_as<block_q6_K, block_q8_K, dot_q6_K_q8_K>;
        q6k.mul = mul_as<block_q6_K, block_q8_K, mul_q6_K_q8_K>;
        q6k.mul_x16 = mul_x16_as<block_q8_K, mul_q6_Kx16_q8_K>;
        TypeKernels& q4_k = k.types[uint32_t(DType::Q4_K)];
        q4_k.dot = dot_as<block_q4_K, block_q8_K, dot_q4_K_q8_K>;
        q4_k.mul = mul_as<block_q4_K, block_q8_K, mul_q4_K_q8_K>;
        q4_k.mul_x16 = mul_x16_as<block_q8_K, mul_q4_Kx16_q8_K>;
        TypeKernels& q5_k = k.types[uint32_t(DType::Q5_K)];
        q5_k.dot = dot_as<block_q5_K, block_q8_K, dot_q5_K_q8_K>;
        q5_k.mul = mul_as<block_q5_K, block_q8_K, mul_q5_K_q8_K>;
        TypeKernels& q3_k = k.types[uint32_t(DType::Q3_K)];
        q3_k.dot = dot_as<block_q3_K, block_q8_K, dot_q3_K_q8_K>;
        q3_k.mul = mul_as<block_q3_K, block_q8_K, mul_q3_K_q8_K>;
        TypeKernels& q2_k = k.types[uint32_t(DType::Q2_K)];
        q2_k.dot = dot_as<block_q2_K, block_q8_K, dot_q2_K_q8_K>;
        q2_k.mul = mul_as<block_q2_K, block_q8_K, mul_q2_K_q8_K>;
        TypeKernels& iq4_xs = k.types[uint32_t(DType::IQ4_XS)];
        iq4_xs.dot = dot_as<block_iq4_xs, block_q8_K, dot_iq4_xs_q8_K>;
        iq4_xs.mul = mul_as<block_iq4_xs, block_q8_K, mul_iq4_xs_q8_K>;
        TypeKernels& nl = k.types[uint32_t(DType::IQ4_NL)];
        nl.dot = dot_as<block_iq4_nl, block_q8_0, dot_iq4_nl_q8_0>;
        nl.mul = mul_as<block_iq4_nl, block_q8_0, mul_iq4_nl_q8_0>;
        TypeKernels& q50 = k.types[uint32_t(DType::Q5_0)];
        q50.dot = dot_as<block_q5_0, block_q8_0, dot_q5_0_q8_0>;
        q50.mul = mul_as<block_q5_0, block_q8_0, mul_q5_0_q8_0>;
        TypeKernels& q41 = k.types[uint32_t(DType::Q4_1)];
        q41.dot = dot_as<block_q4_1, block_q8_1, dot_q4_1_q8_1>;
        q41.mul = mul_as<block_q4_1, block_q8_1, mul_q4_1_q8_1>;
        TypeKernels& q51 = k.types[uint32_t(DType::Q5_1)];
        q51.dot = dot_as<block_q5_1, block_q8_1, dot_q5_1_q8_1>;
        q51.mul = mul_as<block_q5_1, block_q8_1, mul_q5_1_q8_1>;
        return k;
    }();
    return &ks;
}
}  // namespace moe::kernels

#else  // !__x86_64__

namespace moe::kernels {
const KernelSet* avx512vnni_set() { return nullptr; }
}  // namespace moe::kernels

#endif

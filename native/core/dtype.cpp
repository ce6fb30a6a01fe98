// Type table and exact scalar conversions for the GGUF element types.
#include "core/dtype.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "core/common.h"

namespace moe {

float g_fp16_table[65536];

float fp16_to_fp32_slow(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                mant <<= 1;
                ++e;
            } while ((mant & 0x400) == 0);
            mant &= 0x3ff;
            bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (mant << 13);
    } else {
        bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
    }
    return fp32_from_bits(bits);
}

uint16_t fp32_to_fp16(float f) {
    const uint32_t x = fp32_to_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000) return static_cast<uint16_t>(sign | 0x7e00 | ((ax >> 13) & 0x3ff));  // NaN
    if (ax >= 0x477ff000) {                                                                   // rounds to >= 65520: overflow to inf
        return static_cast<uint16_t>(sign | 0x7c00);
    }
    if (ax < 0x38800000) {  // below the smallest normal half (2^-14): subnormal or zero
        // value = ax as float; half subnormal step is 2^-24. Round to nearest even.
        const float v = fp32_from_bits(ax);
        const float scaled = v * 16777216.0f;  // / 2^-24, exact (power of two)
        float r = std::nearbyint(scaled);      // default rounding mode: nearest even
        return static_cast<uint16_t>(sign | static_cast<uint32_t>(r));
    }
    // normal: rebias exponent, round mantissa from 23 to 10 bits, nearest even
    uint32_t e = ((ax >> 23) - 127 + 15);
    uint32_t m = ax & 0x7fffff;
    uint32_t half = (e << 10) | (m >> 13);
    const uint32_t rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half += 1;  // may carry into exponent: still correct
    return static_cast<uint16_t>(sign | half);
}

namespace {
struct Fp16TableInit {
    Fp16TableInit() {
        for (uint32_t i = 0; i < 65536; ++i) g_fp16_table[i] = fp16_to_fp32_slow(static_cast<uint16_t>(i));
    }
} g_fp16_table_init;
}  // namespace

namespace {

void f32_to_float(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }

void f16_to_float(const void* src, float* dst, int64_t n) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
}

void bf16_to_float(const void* src, float* dst, int64_t n) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
}

void q8_0_to_float(const void* src, float* dst, int64_t n) {
    const block_q8_0* b = static_cast<const block_q8_0*>(src);
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 32; ++j) dst[i * 32 + j] = b[i].qs[j] * d;
    }
}

void q4_0_to_float(const void* src, float* dst, int64_t n) {
    const block_q4_0* b = static_cast<const block_q4_0*>(src);
    for (int64_t i = 0; i < n / QK4_0; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 16; ++j) {
            dst[i * 32 + j] = static_cast<float>((b[i].qs[j] & 0x0f) - 8) * d;
            dst[i * 32 + j + 16] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

// The 32-element types below dequantize exactly as ggml's dequantize_row_* (ggml-quants.c).
void q4_1_to_float(const void* src, float* dst, int64_t n) {
    const block_q4_1* b = static_cast<const block_q4_1*>(src);
    for (int64_t i = 0; i < n / 32; ++i) {
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < 16; ++j) {
            dst[i * 32 + j] = static_cast<float>(b[i].qs[j] & 0x0f) * d + m;
            dst[i * 32 + j + 16] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
        }
    }
}

// The fifth bit of weight j (0..31) of a q5_0/q5_1 block, as 0 or 16.
inline int q5_high(const uint8_t* qh, int j) { return ((qh[j / 8] >> (j % 8)) & 1) << 4; }

void q5_0_to_float(const void* src, float* dst, int64_t n) {
    const block_q5_0* b = static_cast<const block_q5_0*>(src);
    for (int64_t i = 0; i < n / 32; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 16; ++j) {
            dst[i * 32 + j] = static_cast<float>(((b[i].qs[j] & 0x0f) | q5_high(b[i].qh, j)) - 16) * d;
            dst[i * 32 + j + 16] = static_cast<float>(((b[i].qs[j] >> 4) | q5_high(b[i].qh, j + 16)) - 16) * d;
        }
    }
}

void q5_1_to_float(const void* src, float* dst, int64_t n) {
    const block_q5_1* b = static_cast<const block_q5_1*>(src);
    for (int64_t i = 0; i < n / 32; ++i) {
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < 16; ++j) {
            dst[i * 32 + j] = static_cast<float>((b[i].qs[j] & 0x0f) | q5_high(b[i].qh, j)) * d + m;
            dst[i * 32 + j + 16] = static_cast<float>((b[i].qs[j] >> 4) | q5_high(b[i].qh, j + 16)) * d + m;
        }
    }
}

// ggml has no dequantize_row_q8_1 (q8_1 is an activation type only): qs * d, s ignored.
void q8_1_to_float(const void* src, float* dst, int64_t n) {
    const block_q8_1* b = static_cast<const block_q8_1*>(src);
    for (int64_t i = 0; i < n / 32; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 32; ++j) dst[i * 32 + j] = b[i].qs[j] * d;
    }
}

void iq4_nl_to_float(const void* src, float* dst, int64_t n) {
    const block_iq4_nl* b = static_cast<const block_iq4_nl*>(src);
    for (int64_t i = 0; i < n / 32; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 16; ++j) {
            dst[i * 32 + j] = d * kValuesIq4nl[b[i].qs[j] & 0x0f];
            dst[i * 32 + j + 16] = d * kValuesIq4nl[b[i].qs[j] >> 4];
        }
    }
}

// ---- 256-element super-blocks (k-quants, iq4_xs): exactly ggml's dequantize_row_* ----

void q8_K_to_float(const void* src, float* dst, int64_t n) {
    const block_q8_K* b = static_cast<const block_q8_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i)
        for (int j = 0; j < QK_K; ++j) *dst++ = b[i].d * b[i].qs[j];
}

void q6_K_to_float(const void* src, float* dst, int64_t n) {
    const block_q6_K* b = static_cast<const block_q6_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const uint8_t* ql = b[i].ql;
        const uint8_t* qh = b[i].qh;
        const int8_t* sc = b[i].scales;
        for (int c = 0; c < 2; ++c) {  // two halves of 128: 64 ql bytes, 32 qh bytes, 8 scales each
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l] = d * sc[is] * q1;
                dst[l + 32] = d * sc[is + 2] * q2;
                dst[l + 64] = d * sc[is + 4] * q3;
                dst[l + 96] = d * sc[is + 6] * q4;
            }
            dst += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

void q4_K_to_float(const void* src, float* dst, int64_t n) {
    const block_q4_K* b = static_cast<const block_q4_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const float min = fp16_to_fp32(b[i].dmin);
        const uint8_t* q = b[i].qs;
        for (int j = 0; j < 8; j += 2) {  // 64 weights per 32 bytes: low nibbles sub-block j, high nibbles j+1
            uint8_t sc, m;
            scale_min_k4(j, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            scale_min_k4(j + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *dst++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *dst++ = d2 * (q[l] >> 4) - m2;
            q += 32;
        }
    }
}

void q5_K_to_float(const void* src, float* dst, int64_t n) {
    const block_q5_K* b = static_cast<const block_q5_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const float min = fp16_to_fp32(b[i].dmin);
        const uint8_t* ql = b[i].qs;
        const uint8_t* qh = b[i].qh;
        for (int j = 0; j < 8; j += 2) {  // as q4_K; the fifth bit of weight 32j+l is bit j of qh[l]
            uint8_t sc, m;
            scale_min_k4(j, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            scale_min_k4(j + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *dst++ = d1 * ((ql[l] & 0xF) + ((qh[l] >> j) & 1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *dst++ = d2 * ((ql[l] >> 4) + ((qh[l] >> (j + 1)) & 1 ? 16 : 0)) - m2;
            ql += 32;
        }
    }
}

void q3_K_to_float(const void* src, float* dst, int64_t n) {
    const block_q3_K* b = static_cast<const block_q3_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d_all = fp16_to_fp32(b[i].d);
        int8_t scales[16];
        scales_q3_K(b[i].scales, scales);
        const uint8_t* q = b[i].qs;
        const uint8_t* hm = b[i].hmask;
        int is = 0;
        uint8_t m = 1;
        for (int c = 0; c < 2; ++c) {
            for (int shift = 0; shift < 8; shift += 2) {
                float dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; ++l) *dst++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                dl = d_all * (scales[is++] - 32);
                for (int l = 16; l < 32; ++l) *dst++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                m = static_cast<uint8_t>(m << 1);
            }
            q += 32;
        }
    }
}

void q2_K_to_float(const void* src, float* dst, int64_t n) {
    const block_q2_K* b = static_cast<const block_q2_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const float min = fp16_to_fp32(b[i].dmin);
        const uint8_t* q = b[i].qs;
        int is = 0;
        for (int c = 0; c < 2; ++c) {
            for (int shift = 0; shift < 8; shift += 2) {
                uint8_t sc = b[i].scales[is++];
                float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 0; l < 16; ++l) *dst++ = dl * ((q[l] >> shift) & 3) - ml;
                sc = b[i].scales[is++];
                dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 16; l < 32; ++l) *dst++ = dl * ((q[l] >> shift) & 3) - ml;
            }
            q += 32;
        }
    }
}

void iq4_xs_to_float(const void* src, float* dst, int64_t n) {
    const block_iq4_xs* b = static_cast<const block_iq4_xs*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const uint8_t* qs = b[i].qs;
        for (int ib = 0; ib < 8; ++ib) {
            const float dl = d * (scale_iq4_xs(b[i], ib) - 32);
            for (int j = 0; j < 16; ++j) {
                dst[j] = dl * kValuesIq4nl[qs[j] & 0xf];
                dst[j + 16] = dl * kValuesIq4nl[qs[j] >> 4];
            }
            dst += 32;
            qs += 16;
        }
    }
}

}  // namespace

TypeTraits type_traits(uint32_t raw) {
    switch (static_cast<DType>(raw)) {
        //                     name    block  bytes  computed  activations  dequantize
        case DType::F32: return {"f32", 1, 4, true, DType::F32, f32_to_float};
        case DType::F16: return {"f16", 1, 2, true, DType::F16, f16_to_float};
        case DType::BF16: return {"bf16", 1, 2, true, DType::BF16, bf16_to_float};
        case DType::Q8_0: return {"q8_0", 32, 34, true, DType::Q8_0, q8_0_to_float};
        case DType::Q4_0: return {"q4_0", 32, 18, true, DType::Q8_0, q4_0_to_float};
        case DType::Q2_K: return {"q2_K", 256, 84, true, DType::Q8_K, q2_K_to_float};
        case DType::Q3_K: return {"q3_K", 256, 110, true, DType::Q8_K, q3_K_to_float};
        case DType::Q4_K: return {"q4_K", 256, 144, true, DType::Q8_K, q4_K_to_float};
        case DType::Q5_K: return {"q5_K", 256, 176, true, DType::Q8_K, q5_K_to_float};
        case DType::Q6_K: return {"q6_K", 256, 210, true, DType::Q8_K, q6_K_to_float};
        // q8_K is an activation type only (no dot of q8_K weights).
        case DType::Q8_K: return {"q8_K", 256, 292, false, DType::Q8_K, q8_K_to_float};
        case DType::IQ4_XS: return {"iq4_xs", 256, 136, true, DType::Q8_K, iq4_xs_to_float};
        case DType::Q4_1: return {"q4_1", 32, 20, true, DType::Q8_1, q4_1_to_float};
        case DType::Q5_0: return {"q5_0", 32, 22, true, DType::Q8_0, q5_0_to_float};
        case DType::Q5_1: return {"q5_1", 32, 24, true, DType::Q8_1, q5_1_to_float};
        case DType::IQ4_NL: return {"iq4_nl", 32, 18, true, DType::Q8_0, iq4_nl_to_float};
        // an activation type only (no dot with q8_1 weights)
        case DType::Q8_1: return {"q8_1", 32, 36, false, DType::Q8_1, q8_1_to_float};
        // Known to ggml, not computed by this engine yet (sizes kept so files can be described).
        case DType::IQ2_XXS: return {"iq2_xxs", 256, 66, false, DType::F32, nullptr};
        case DType::IQ2_XS: return {"iq2_xs", 256, 74, false, DType::F32, nullptr};
        case DType::IQ3_XXS: return {"iq3_xxs", 256, 98, false, DType::F32, nullptr};
        case DType::IQ1_S: return {"iq1_s", 256, 50, false, DType::F32, nullptr};
        case DType::IQ3_S: return {"iq3_s", 256, 110, false, DType::F32, nullptr};
        case DType::IQ2_S: return {"iq2_s", 256, 82, false, DType::F32, nullptr};
        case DType::IQ1_M: return {"iq1_m", 256, 56, false, DType::F32, nullptr};
        case DType::TQ1_0: return {"tq1_0", 256, 54, false, DType::F32, nullptr};
        case DType::TQ2_0: return {"tq2_0", 256, 66, false, DType::F32, nullptr};
        case DType::MXFP4: return {"mxfp4", 32, 17, false, DType::F32, nullptr};
        case DType::NVFP4: return {"nvfp4", 64, 36, false, DType::F32, nullptr};
        case DType::Q1_0: return {"q1_0", 128, 18, false, DType::F32, nullptr};
        case DType::Q2_0: return {"q2_0", 64, 18, false, DType::F32, nullptr};
        case DType::I8: return {"i8", 1, 1, false, DType::F32, nullptr};
        case DType::I16: return {"i16", 1, 2, false, DType::F32, nullptr};
        case DType::I32: return {"i32", 1, 4, false, DType::F32, nullptr};
        case DType::I64: return {"i64", 1, 8, false, DType::F32, nullptr};
        case DType::F64: return {"f64", 1, 8, false, DType::F32, nullptr};
    }
    return {nullptr, 0, 0, false, DType::F32, nullptr};
}

const char* type_name(uint32_t raw) {
    TypeTraits t = type_traits(raw);
    if (t.name) return t.name;
    static thread_local char buf[32];
    std::snprintf(buf, sizeof buf, "type%u", raw);
    return buf;
}

size_t row_bytes(DType t, int64_t n) {
    TypeTraits tr = type_traits(t);
    return static_cast<size_t>(n / tr.block_size) * tr.type_size;
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
    const TypeTraits tr = type_traits(t);
    if (!tr.to_float) throw Error("unsupported_type", strfmt("cannot dequantize tensor type %s", type_name(static_cast<uint32_t>(t))));
    tr.to_float(src, dst, n);
}

}  // namespace moe

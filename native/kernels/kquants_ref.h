// Scalar reference kernels of the 256-element super-block types (k-quants, iq4_xs) and their
// q8_K activations; included by ref.cpp inside its anonymous namespace.
//
// Every dot is defined per super-block by exact int32 sums, then one float combine per
// super-block in a fixed order:
//   sum += (d_w * d_x) * (float)isum            (isum: the scaled integer dot of the block)
//   sum -= (dmin_w * d_x) * (float)msum         (types with mins: msum = sum_j min_j * bsum_j)
// where d_w, dmin_w are the block's fp16 scales and d_x the activation's fp32 scale. The SIMD
// sets (kquants_simd.h) compute the same integers and do the same float operations in the same
// order, so they return these bits exactly. The parts that ggml takes from the activation's
// bsums (the sums of each 16 activations) are taken from bsums here too, as ggml does; an
// activation block's bsums must be the sums of its qs (quantize_row_q8_K makes them so). Then
// |isum| < 2^31 for any bytes: at most 16 sub-blocks * 128 (scale) * 16 * 64 * 128 = 2^28.
#pragma once

// ggml's quantize_row_q8_K_ref, which ggml's x86 CPU backend uses for activations
// (quantize_row_q8_K calls it): the element of largest magnitude (the first one) sets
// iscale = -127 / max (so d = 1 / iscale is negative when max is positive), values are rounded
// by nearest_int's float trick (add 1.5 * 2^23, keep the low mantissa bits), clamped above at 127
// and stored as their low byte; bsums are the sums of the stored bytes. An all-zero block gets
// d = 0, qs = 0 and (unlike ggml, which leaves them unwritten) bsums = 0.
inline int32_t nearest_int_k(float v) {
    const float val = v + 12582912.f;
    return static_cast<int32_t>(fp32_to_bits(val) & 0x007fffff) - 0x00400000;
}

void quantize_row_q8_K_ref(const float* x, block_q8_K* y, int64_t n) {
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            y[i].d = 0;
            std::memset(y[i].qs, 0, sizeof y[i].qs);
            std::memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) {
            const int32_t v = nearest_int_k(iscale * x[j]);
            y[i].qs[j] = static_cast<int8_t>(static_cast<uint8_t>(v < 127 ? v : 127));
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int k = 0; k < 16; ++k) sum += y[i].qs[j * 16 + k];
            y[i].bsums[j] = static_cast<int16_t>(sum);
        }
        y[i].d = 1 / iscale;
    }
}

// The per-super-block float combine (shared by every k-quant dot).
inline void kq_combine(float& sum, float dw, float dx, int32_t isum) { sum += (dw * dx) * static_cast<float>(isum); }
inline void kq_combine_min(float& sum, float dmin, float dx, int32_t msum) { sum -= (dmin * dx) * static_cast<float>(msum); }

// Unsigned weight codes q of element e of a super-block (as in ggml's dequantize_row_*).
inline int q6_K_code(const block_q6_K& b, int e) {  // 0..63, value (q - 32) * d * scales[e / 16]
    const int h = e / 128, r = e % 128, l = r % 32, k = r / 32;
    const uint8_t lo = b.ql[64 * h + l + 32 * (k & 1)];
    return ((k < 2 ? lo & 0xF : lo >> 4) | (((b.qh[32 * h + l] >> (2 * k)) & 3) << 4));
}
inline int q4_K_code(const block_q4_K& b, int e) {  // 0..15, value q * d * sc - dmin * m of sub-block e / 32
    const uint8_t v = b.qs[32 * (e / 64) + e % 32];
    return (e / 32) % 2 ? v >> 4 : v & 0xF;
}
inline int q5_K_code(const block_q5_K& b, int e) {  // 0..31
    const uint8_t v = b.qs[32 * (e / 64) + e % 32];
    return ((e / 32) % 2 ? v >> 4 : v & 0xF) | (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
}
inline int q3_K_code(const block_q3_K& b, int e) {  // 0..7, value (q - 4) * d * (scale - 32)
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    return ((b.qs[32 * h + l] >> (2 * k)) & 3) | (((b.hmask[l] >> (e / 32)) & 1) << 2);
}
inline int q2_K_code(const block_q2_K& b, int e) {  // 0..3, value q * d * sc - dmin * m
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    return (b.qs[32 * h + l] >> (2 * k)) & 3;
}
inline int iq4_xs_value(const block_iq4_xs& b, int e) {  // kValuesIq4nl[nibble]
    const uint8_t v = b.qs[16 * (e / 32) + e % 16];
    return kValuesIq4nl[(e % 32) < 16 ? v & 0xF : v >> 4];
}

// sum over the 16-weight sub-block j of code * x.
template <class BW, int (*Code)(const BW&, int)>
int32_t sub16(const BW& w, const block_q8_K& x, int j) {
    int32_t s = 0;
    for (int k = 16 * j; k < 16 * j + 16; ++k) s += Code(w, k) * x.qs[k];
    return s;
}

// q6_K: isum = sum_j scale_j * (sum code * x - 32 * bsum_j).
float dot_q6_K_q8_K_ref(int64_t n, const block_q6_K* w, const block_q8_K* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int32_t isum = 0;
        for (int j = 0; j < 16; ++j) isum += w[i].scales[j] * (sub16<block_q6_K, q6_K_code>(w[i], x[i], j) - 32 * x[i].bsums[j]);
        kq_combine(sum, fp16_to_fp32(w[i].d), x[i].d, isum);
    }
    return sum;
}

// q4_K / q5_K: isum = sum_j sc_j * sum code * x; msum = sum_j m_j * (bsum_2j + bsum_2j+1).
template <class BW, int (*Code)(const BW&, int)>
float dot_qk_min_ref(int64_t n, const BW* w, const block_q8_K* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            scale_min_k4(j, w[i].scales, &sc, &m);
            isum += sc * (sub16<BW, Code>(w[i], x[i], 2 * j) + sub16<BW, Code>(w[i], x[i], 2 * j + 1));
            msum += m * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
        }
        kq_combine(sum, fp16_to_fp32(w[i].d), x[i].d, isum);
        kq_combine_min(sum, fp16_to_fp32(w[i].dmin), x[i].d, msum);
    }
    return sum;
}
float dot_q4_K_q8_K_ref(int64_t n, const block_q4_K* w, const block_q8_K* x) { return dot_qk_min_ref<block_q4_K, q4_K_code>(n, w, x); }
float dot_q5_K_q8_K_ref(int64_t n, const block_q5_K* w, const block_q8_K* x) { return dot_qk_min_ref<block_q5_K, q5_K_code>(n, w, x); }

// q3_K: isum = sum_j (scale_j - 32) * (sum code * x - 4 * bsum_j).
float dot_q3_K_q8_K_ref(int64_t n, const block_q3_K* w, const block_q8_K* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int8_t sc[16];
        scales_q3_K(w[i].scales, sc);
        int32_t isum = 0;
        for (int j = 0; j < 16; ++j) isum += (sc[j] - 32) * (sub16<block_q3_K, q3_K_code>(w[i], x[i], j) - 4 * x[i].bsums[j]);
        kq_combine(sum, fp16_to_fp32(w[i].d), x[i].d, isum);
    }
    return sum;
}

// q2_K: isum = sum_j (scales_j & 15) * sum code * x; msum = sum_j (scales_j >> 4) * bsum_j.
float dot_q2_K_q8_K_ref(int64_t n, const block_q2_K* w, const block_q8_K* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 16; ++j) {
            isum += (w[i].scales[j] & 15) * sub16<block_q2_K, q2_K_code>(w[i], x[i], j);
            msum += (w[i].scales[j] >> 4) * x[i].bsums[j];
        }
        kq_combine(sum, fp16_to_fp32(w[i].d), x[i].d, isum);
        kq_combine_min(sum, fp16_to_fp32(w[i].dmin), x[i].d, msum);
    }
    return sum;
}

// iq4_xs: isum = sum_j (scale_j - 32) * sum value * x (32-weight sub-blocks).
float dot_iq4_xs_q8_K_ref(int64_t n, const block_iq4_xs* w, const block_q8_K* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int32_t isum = 0;
        for (int j = 0; j < 8; ++j) {
            int32_t s = 0;
            for (int k = 32 * j; k < 32 * j + 32; ++k) s += iq4_xs_value(w[i], k) * x[i].qs[k];
            isum += (scale_iq4_xs(w[i], j) - 32) * s;
        }
        kq_combine(sum, fp16_to_fp32(w[i].d), x[i].d, isum);
    }
    return sum;
}

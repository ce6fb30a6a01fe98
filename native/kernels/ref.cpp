// Scalar reference kernels: the definition every SIMD kernel is tested against.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

namespace moe::kernels {

namespace {

void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t n) {
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::nearbyint(xb[j] * id));
    }
}

// As ggml's x86 quantize_row_q8_1 (not quantize_row_q8_1_ref, which rounds half away from zero
// with id = 1/d): the q8_0 quants, and s = fp16(d * sum(qs)) with the fp32 d.
void quantize_row_q8_1_ref(const float* x, block_q8_1* y, int64_t n) {
    for (int64_t i = 0; i < n / 32; ++i) {
        const float* xb = x + i * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = fp32_to_fp16(d);
        int32_t sum = 0;
        for (int j = 0; j < 32; ++j) {
            y[i].qs[j] = static_cast<int8_t>(std::nearbyint(xb[j] * id));
            sum += y[i].qs[j];
        }
        y[i].s = fp32_to_fp16(d * static_cast<float>(sum));
    }
}

void fp32_to_fp16_row_ref(const float* x, uint16_t* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void fp32_to_bf16_row_ref(const float* x, uint16_t* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

float dot_f32_ref(int64_t n, const float* w, const float* x) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(w[i]) * x[i];
    return static_cast<float>(s);
}

float dot_f16_ref(int64_t n, const uint16_t* w, const uint16_t* x) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(fp16_to_fp32(w[i])) * fp16_to_fp32(x[i]);
    return static_cast<float>(s);
}

void axpy_f16_ref(int64_t n, float a, const uint16_t* x, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

float dot_bf16_ref(int64_t n, const uint16_t* w, const uint16_t* x) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(bf16_to_fp32(w[i])) * bf16_to_fp32(x[i]);
    return static_cast<float>(s);
}

float dot_q8_0_q8_0_ref(int64_t n, const block_q8_0* w, const block_q8_0* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        int32_t s = 0;
        for (int j = 0; j < QK8_0; ++j) s += static_cast<int32_t>(w[i].qs[j]) * x[i].qs[j];
        sum += static_cast<float>(s) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d));
    }
    return sum;
}

float dot_q4_0_q8_0_ref(int64_t n, const block_q4_0* w, const block_q8_0* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK4_0; ++i) {
        int32_t s = 0;
        for (int j = 0; j < 16; ++j) {
            s += ((w[i].qs[j] & 0x0f) - 8) * x[i].qs[j];
            s += ((w[i].qs[j] >> 4) - 8) * x[i].qs[j + 16];
        }
        sum += static_cast<float>(s) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d));
    }
    return sum;
}

#include "kernels/kquants_ref.h"
// ---- 32-element weight types with q8_0 activations (q5_0, iq4_nl) and q8_1 ones (q4_1, q5_1),
// as ggml's generic dots: per block an exact int32 sum, then sum += (d_w * d_x) * sum (+ m_w * s_x).

float dot_iq4_nl_q8_0_ref(int64_t n, const block_iq4_nl* w, const block_q8_0* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; ++i) {
        int32_t s = 0;
        for (int j = 0; j < 16; ++j) {
            s += kValuesIq4nl[w[i].qs[j] & 0x0f] * x[i].qs[j];
            s += kValuesIq4nl[w[i].qs[j] >> 4] * x[i].qs[j + 16];
        }
        sum += static_cast<float>(s) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d));
    }
    return sum;
}

// The fifth bit of weight j of a q5 block, as 0 or 16.
inline int q5_high(const uint8_t* qh, int j) { return ((qh[j / 8] >> (j % 8)) & 1) << 4; }

float dot_q5_0_q8_0_ref(int64_t n, const block_q5_0* w, const block_q8_0* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; ++i) {
        int32_t s = 0;
        for (int j = 0; j < 16; ++j) {
            s += (((w[i].qs[j] & 0x0f) | q5_high(w[i].qh, j)) - 16) * x[i].qs[j];
            s += (((w[i].qs[j] >> 4) | q5_high(w[i].qh, j + 16)) - 16) * x[i].qs[j + 16];
        }
        sum += static_cast<float>(s) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d));
    }
    return sum;
}

// q4_1 / q5_1 with q8_1: sum += (d_w * d_x) * int sum + m_w * s_x, as ggml's generic dot.
template <class B, bool kQ5>
float dot_q_1_q8_1_ref(int64_t n, const B* w, const block_q8_1* x) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; ++i) {
        int32_t s = 0;
        for (int j = 0; j < 16; ++j) {
            int lo = w[i].qs[j] & 0x0f, hi = w[i].qs[j] >> 4;
            if constexpr (kQ5) {
                lo |= q5_high(w[i].qh, j);
                hi |= q5_high(w[i].qh, j + 16);
            }
            s += lo * x[i].qs[j] + hi * x[i].qs[j + 16];
        }
        sum += (fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d)) * static_cast<float>(s) + fp16_to_fp32(w[i].m) * fp16_to_fp32(x[i].s);
    }
    return sum;
}
float dot_q4_1_q8_1_ref(int64_t n, const block_q4_1* w, const block_q8_1* x) { return dot_q_1_q8_1_ref<block_q4_1, false>(n, w, x); }
float dot_q5_1_q8_1_ref(int64_t n, const block_q5_1* w, const block_q8_1* x) { return dot_q_1_q8_1_ref<block_q5_1, true>(n, w, x); }

// The matrix kernels by definition: the dot of every (row, token) pair.
template <typename BW, typename BX, float (*Dot)(int64_t, const BW*, const BX*)>
void mul_by_dots(int64_t n, const BW* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const BX* x, size_t x_row_bytes, int64_t nt,
                 float* y, int64_t ldy) {
    const uint8_t* wb = reinterpret_cast<const uint8_t*>(w);
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(x);
    for (int64_t t = 0; t < nt; ++t) {
        const BX* xt = reinterpret_cast<const BX*>(xb + static_cast<size_t>(t) * x_row_bytes);
        for (int64_t i = 0; i < nr; ++i) {
            const int64_t r = rows ? rows[i] : i;
            y[t * ldy + r] = Dot(n, reinterpret_cast<const BW*>(wb + static_cast<size_t>(r) * w_row_bytes), xt);
        }
    }
}

void attn_scores_f16_ref(int64_t d, int64_t nq, const float* q, int64_t ldq, int64_t nk, const uint16_t* k, int64_t ldk, float scale,
                         float* s, int64_t lds) {
    for (int64_t i = 0; i < nq; ++i)
        for (int64_t j = 0; j < nk; ++j) {
            double a = 0.0;
            for (int64_t c = 0; c < d; ++c) a += static_cast<double>(q[i * ldq + c]) * fp16_to_fp32(k[j * ldk + c]);
            s[i * lds + j] = static_cast<float>(a) * scale;
        }
}

void attn_pv_f16_ref(int64_t d, int64_t nq, const float* p, int64_t ldp, int64_t nk, const uint16_t* v, int64_t ldv, float* o,
                     int64_t ldo) {
    for (int64_t i = 0; i < nq; ++i)
        for (int64_t c = 0; c < d; ++c) {
            double a = 0.0;
            for (int64_t j = 0; j < nk; ++j) a += static_cast<double>(p[i * ldp + j]) * fp16_to_fp32(v[j * ldv + c]);
            o[i * ldo + c] += static_cast<float>(a);
        }
}

void softmax_f16r_ref(int64_t n, float* s) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = std::fmax(mx, s[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
        s[j] = std::exp(s[j] - mx);
        sum += s[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < n; ++j) s[j] = fp16_to_fp32(fp32_to_fp16(s[j] * inv));
}

// The reference dot of a repacked row: the same operations as dot_q4_0_q8_0_ref.
void mul_q4_0x16_q8_0_ref(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_0* x, size_t x_row_bytes,
                          int64_t nt, float* y, int64_t ldy) {
    const int64_t nb = n / QK4_0;
    for (int64_t t = 0; t < nt; ++t) {
        const block_q8_0* xt =
            reinterpret_cast<const block_q8_0*>(reinterpret_cast<const uint8_t*>(x) + static_cast<size_t>(t) * x_row_bytes);
        for (int64_t g = 0; g < ngroups; ++g) {
            const uint8_t* grp = w + static_cast<size_t>(g) * group_bytes;
            for (int i = 0; i < 16; ++i) {
                float sum = 0.0f;
                for (int64_t b = 0; b < nb; ++b) {
                    const uint8_t* blk = grp + static_cast<size_t>(b) * kQ4x16BlockBytes;
                    uint16_t d;
                    std::memcpy(&d, blk + 2 * i, 2);
                    int32_t s = 0;
                    for (int k = 0; k < 4; ++k)
                        for (int m = 0; m < 4; ++m) {
                            const uint8_t q = blk[32 + 64 * k + 4 * i + m];
                            s += ((q & 0x0f) - 8) * xt[b].qs[4 * k + m];
                            s += ((q >> 4) - 8) * xt[b].qs[16 + 4 * k + m];
                        }
                    sum += static_cast<float>(s) * (fp16_to_fp32(d) * fp16_to_fp32(xt[b].d));
                }
                y[t * ldy + g * 16 + i] = sum;
            }
        }
    }
}

// The sparse layouts by definition: the reference dot of the row in its original layout.
void mul_q4_0r16_q8_0_ref(int64_t n, const block_q4_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x,
                          size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    const int64_t nb = n / QK4_0;
    std::vector<uint8_t> row(static_cast<size_t>(nb) * sizeof(block_q4_0));
    for (int64_t i = 0; i < nr; ++i) {
        const int64_t r = rows ? rows[i] : i;
        std::memcpy(row.data(), reinterpret_cast<const uint8_t*>(w) + static_cast<size_t>(r) * w_row_bytes, row.size());
        unpack_q4_0r16(row.data(), nb);
        for (int64_t t = 0; t < nt; ++t)
            y[t * ldy + r] = dot_q4_0_q8_0_ref(
                n, reinterpret_cast<const block_q4_0*>(row.data()),
                reinterpret_cast<const block_q8_0*>(reinterpret_cast<const uint8_t*>(x) + static_cast<size_t>(t) * x_row_bytes));
    }
}

// Row r of a neuron-major matrix back in Q4_0 blocks.
void nm_row_blocks(const uint8_t* w, int64_t m, int64_t n, int64_t r, block_q4_0* out) {
    const size_t block_bytes = 18 * static_cast<size_t>(m), col_bytes = static_cast<size_t>(m) / 2;
    const int64_t tile = r / kNmTileRows, rr = r % kNmTileRows;
    const size_t at = static_cast<size_t>(tile) * 64 + static_cast<size_t>(nm_row(static_cast<int>(rr % 64)));
    const int shift = rr >= 64 ? 4 : 0;
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        const uint8_t* blk = w + static_cast<size_t>(b) * block_bytes;
        std::memcpy(&out[b].d, blk + 2 * r, 2);
        std::memset(out[b].qs, 0, sizeof out[b].qs);
        for (int j = 0; j < QK4_0; ++j) {
            const uint8_t q = (blk[2 * static_cast<size_t>(m) + static_cast<size_t>(j) * col_bytes + at] >> shift) & 0x0f;
            out[b].qs[j % 16] |= static_cast<uint8_t>(j < 16 ? q : q << 4);
        }
    }
}

void mul_q4_0nm_q8_0_ref(int64_t n, int64_t m, const uint8_t* w, int64_t r0, int64_t nr, const int32_t*, int64_t, const void* x,
                         size_t x_row_bytes, int64_t nt, float* y, int64_t ldy) {
    std::vector<block_q4_0> row(static_cast<size_t>(n / QK4_0));
    for (int64_t r = r0; r < r0 + nr; ++r) {
        nm_row_blocks(w, m, n, r, row.data());
        for (int64_t t = 0; t < nt; ++t)
            y[t * ldy + r - r0] = dot_q4_0_q8_0_ref(
                n, row.data(), reinterpret_cast<const block_q8_0*>(static_cast<const uint8_t*>(x) + static_cast<size_t>(t) * x_row_bytes));
    }
}

KernelSet make_scalar() {
    KernelSet s{};
    s.isa = Isa::Scalar;
    s.types[uint32_t(DType::F32)] = {nullptr, dot_as<float, float, dot_f32_ref>, nullptr, nullptr, nullptr};
    s.types[uint32_t(DType::F16)] = {from_f32_as<uint16_t, fp32_to_fp16_row_ref>, dot_as<uint16_t, uint16_t, dot_f16_ref>, nullptr, nullptr,
                                     nullptr};
    s.types[uint32_t(DType::BF16)] = {from_f32_as<uint16_t, fp32_to_bf16_row_ref>, dot_as<uint16_t, uint16_t, dot_bf16_ref>, nullptr,
                                      nullptr, nullptr};
    s.types[uint32_t(DType::Q8_0)] = {from_f32_as<block_q8_0, quantize_row_q8_0_ref>, dot_as<block_q8_0, block_q8_0, dot_q8_0_q8_0_ref>,
                                      mul_as<block_q8_0, block_q8_0, mul_by_dots<block_q8_0, block_q8_0, dot_q8_0_q8_0_ref>>, nullptr,
                                      nullptr};
    s.types[uint32_t(DType::Q4_0)] = {nullptr,
                                      dot_as<block_q4_0, block_q8_0, dot_q4_0_q8_0_ref>,
                                      mul_as<block_q4_0, block_q8_0, mul_by_dots<block_q4_0, block_q8_0, dot_q4_0_q8_0_ref>>,
                                      mul_x16_as<block_q8_0, mul_q4_0x16_q8_0_ref>,
                                      repack_q4_0x16,
                                      mul_as<block_q4_0, block_q8_0, mul_q4_0r16_q8_0_ref>,
                                      mul_q4_0nm_q8_0_ref};
    s.types[uint32_t(DType::Q8_K)] = {from_f32_as<block_q8_K, quantize_row_q8_K_ref>, nullptr, nullptr, nullptr, nullptr};
    s.types[uint32_t(DType::Q6_K)] = {nullptr, dot_as<block_q6_K, block_q8_K, dot_q6_K_q8_K_ref>,
                                      mul_as<block_q6_K, block_q8_K, mul_by_dots<block_q6_K, block_q8_K, dot_q6_K_q8_K_ref>>,
                                      mul_x16_as<block_q8_K, mul_q6_Kx16_q8_K_ref>, repack_q6_Kx16};
    s.types[uint32_t(DType::Q4_K)] = {nullptr, dot_as<block_q4_K, block_q8_K, dot_q4_K_q8_K_ref>,
                                      mul_as<block_q4_K, block_q8_K, mul_by_dots<block_q4_K, block_q8_K, dot_q4_K_q8_K_ref>>,
                                      mul_x16_as<block_q8_K, mul_q4_Kx16_q8_K_ref>, repack_q4_Kx16};
    s.types[uint32_t(DType::Q5_K)] = {nullptr, dot_as<block_q5_K, block_q8_K, dot_q5_K_q8_K_ref>,
                                      mul_as<block_q5_K, block_q8_K, mul_by_dots<block_q5_K, block_q8_K, dot_q5_K_q8_K_ref>>, nullptr,
                                      nullptr};
    s.types[uint32_t(DType::Q3_K)] = {nullptr, dot_as<block_q3_K, block_q8_K, dot_q3_K_q8_K_ref>,
                                      mul_as<block_q3_K, block_q8_K, mul_by_dots<block_q3_K, block_q8_K, dot_q3_K_q8_K_ref>>, nullptr,
                                      nullptr};
    s.types[uint32_t(DType::Q2_K)] = {nullptr, dot_as<block_q2_K, block_q8_K, dot_q2_K_q8_K_ref>,
                                      mul_as<block_q2_K, block_q8_K, mul_by_dots<block_q2_K, block_q8_K, dot_q2_K_q8_K_ref>>, nullptr,
                                      nullptr};
    s.types[uint32_t(DType::IQ4_XS)] = {nullptr, dot_as<block_iq4_xs, block_q8_K, dot_iq4_xs_q8_K_ref>,
                                        mul_as<block_iq4_xs, block_q8_K, mul_by_dots<block_iq4_xs, block_q8_K, dot_iq4_xs_q8_K_ref>>,
                                        nullptr, nullptr};
    s.types[uint32_t(DType::IQ4_NL)] = {nullptr, dot_as<block_iq4_nl, block_q8_0, dot_iq4_nl_q8_0_ref>,
                                        mul_as<block_iq4_nl, block_q8_0, mul_by_dots<block_iq4_nl, block_q8_0, dot_iq4_nl_q8_0_ref>>,
                                        nullptr, nullptr};
    s.types[uint32_t(DType::Q5_0)] = {nullptr, dot_as<block_q5_0, block_q8_0, dot_q5_0_q8_0_ref>,
                                      mul_as<block_q5_0, block_q8_0, mul_by_dots<block_q5_0, block_q8_0, dot_q5_0_q8_0_ref>>, nullptr,
                                      nullptr};
    s.types[uint32_t(DType::Q8_1)] = {from_f32_as<block_q8_1, quantize_row_q8_1_ref>, nullptr, nullptr, nullptr, nullptr};
    s.types[uint32_t(DType::Q4_1)] = {nullptr, dot_as<block_q4_1, block_q8_1, dot_q4_1_q8_1_ref>,
                                      mul_as<block_q4_1, block_q8_1, mul_by_dots<block_q4_1, block_q8_1, dot_q4_1_q8_1_ref>>, nullptr,
                                      nullptr};
    s.types[uint32_t(DType::Q5_1)] = {nullptr, dot_as<block_q5_1, block_q8_1, dot_q5_1_q8_1_ref>,
                                      mul_as<block_q5_1, block_q8_1, mul_by_dots<block_q5_1, block_q8_1, dot_q5_1_q8_1_ref>>, nullptr,
                                      nullptr};
    s.axpy_f16 = axpy_f16_ref;
    s.attn_scores_f16 = attn_scores_f16_ref;
    s.attn_pv_f16 = attn_pv_f16_ref;
    s.softmax_f16r = softmax_f16r_ref;
    return s;
}

}  // namespace

const KernelSet& scalar_set() {
    static const KernelSet set = make_scalar();
    return set;
}

void repack_q4_0x16(uint8_t* group, int64_t nb) {
    const size_t row_bytes = static_cast<size_t>(nb) * sizeof(block_q4_0);
    std::vector<uint8_t> src(group, group + 16 * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
        uint8_t* dst = group + static_cast<size_t>(b) * kQ4x16BlockBytes;
        for (int i = 0; i < 16; ++i) {
            const uint8_t* blk = src.data() + static_cast<size_t>(i) * row_bytes + static_cast<size_t>(b) * sizeof(block_q4_0);
            std::memcpy(dst + 2 * i, blk, 2);
            for (int k = 0; k < 4; ++k) std::memcpy(dst + 32 + 64 * k + 4 * i, blk + 2 + 4 * k, 4);
        }
    }
}

void unpack_q4_0x16(uint8_t* group, int64_t nb) {
    const size_t row_bytes = static_cast<size_t>(nb) * sizeof(block_q4_0);
    std::vector<uint8_t> src(group, group + 16 * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = src.data() + static_cast<size_t>(b) * kQ4x16BlockBytes;
        for (int i = 0; i < 16; ++i) {
            uint8_t* dst = group + static_cast<size_t>(i) * row_bytes + static_cast<size_t>(b) * sizeof(block_q4_0);
            std::memcpy(dst, blk + 2 * i, 2);
            for (int k = 0; k < 4; ++k) std::memcpy(dst + 2 + 4 * k, blk + 32 + 64 * k + 4 * i, 4);
        }
    }
}

void repack_q4_0r16(uint8_t* row, int64_t nb) {
    for (int64_t b = 0; b < nb; b += 16) repack_q4_0x16(row + static_cast<size_t>(b) * sizeof(block_q4_0), 1);
}

void unpack_q4_0r16(uint8_t* row, int64_t nb) {
    for (int64_t b = 0; b < nb; b += 16) unpack_q4_0x16(row + static_cast<size_t>(b) * sizeof(block_q4_0), 1);
}

void relayout_q4_0nm(const uint8_t* src, uint8_t* dst, int64_t m, int64_t n) {
    const int64_t nb = n / QK4_0;
    const size_t row_bytes = static_cast<size_t>(nb) * sizeof(block_q4_0), block_bytes = 18 * static_cast<size_t>(m);
    const size_t col_bytes = static_cast<size_t>(m) / 2;
    std::memset(dst, 0, static_cast<size_t>(nb) * block_bytes);
    for (int64_t r = 0; r < m; ++r) {
        const size_t at = static_cast<size_t>(r / kNmTileRows) * 64 + static_cast<size_t>(nm_row(static_cast<int>(r % 64)));
        const int shift = r % kNmTileRows >= 64 ? 4 : 0;
        for (int64_t b = 0; b < nb; ++b) {
            const block_q4_0* in = reinterpret_cast<const block_q4_0*>(src + static_cast<size_t>(r) * row_bytes) + b;
            uint8_t* blk = dst + static_cast<size_t>(b) * block_bytes;
            std::memcpy(blk + 2 * r, &in->d, 2);
            for (int j = 0; j < QK4_0; ++j) {
                const uint8_t q = j < 16 ? (in->qs[j] & 0x0f) : (in->qs[j - 16] >> 4);
                blk[2 * static_cast<size_t>(m) + static_cast<size_t>(j) * col_bytes + at] |= static_cast<uint8_t>(q << shift);
            }
        }
    }
}

void unpack_q4_0nm(const uint8_t* src, uint8_t* dst, int64_t m, int64_t n) {
    const size_t row_bytes = static_cast<size_t>(n / QK4_0) * sizeof(block_q4_0);
    for (int64_t r = 0; r < m; ++r) nm_row_blocks(src, m, n, r, reinterpret_cast<block_q4_0*>(dst + static_cast<size_t>(r) * row_bytes));
}

}  // namespace moe::kernels

// Q6_K weights relaid out 16 rows at a time (the output matrix of most llama-quantize files):
// the layout, its inverse, and the scalar reference of mul_q6_Kx16_q8_K, whose operations every
// SIMD set repeats (kernels.h, repack_q6_Kx16).
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

namespace moe::kernels {

namespace {

// Byte offsets inside one super-block of a 16-row group (kQ6Kx16BlockBytes = 16 * 210).
constexpr size_t kD = 0, kScales = 32, kQl = 288, kQh = 288 + 2048;

}  // namespace

void repack_q6_Kx16(uint8_t* group, int64_t nb) {
    const size_t row_bytes = static_cast<size_t>(nb) * sizeof(block_q6_K);
    std::vector<uint8_t> src(group, group + 16 * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
        uint8_t* dst = group + static_cast<size_t>(b) * kQ6Kx16BlockBytes;
        for (int i = 0; i < 16; ++i) {
            const block_q6_K* blk = reinterpret_cast<const block_q6_K*>(src.data() + static_cast<size_t>(i) * row_bytes +
                                                                        static_cast<size_t>(b) * sizeof(block_q6_K));
            std::memcpy(dst + kD + 2 * i, &blk->d, 2);
            for (int k = 0; k < 16; ++k) std::memcpy(dst + kScales + 16 * k + i, &blk->scales[k], 1);
            for (int c = 0; c < 32; ++c) std::memcpy(dst + kQl + 64 * c + 4 * i, blk->ql + 4 * c, 4);
            for (int c = 0; c < 16; ++c) std::memcpy(dst + kQh + 64 * c + 4 * i, blk->qh + 4 * c, 4);
        }
    }
}

void unpack_q6_Kx16(uint8_t* group, int64_t nb) {
    const size_t row_bytes = static_cast<size_t>(nb) * sizeof(block_q6_K);
    std::vector<uint8_t> src(group, group + 16 * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* s = src.data() + static_cast<size_t>(b) * kQ6Kx16BlockBytes;
        for (int i = 0; i < 16; ++i) {
            block_q6_K* blk =
                reinterpret_cast<block_q6_K*>(group + static_cast<size_t>(i) * row_bytes + static_cast<size_t>(b) * sizeof(block_q6_K));
            std::memcpy(&blk->d, s + kD + 2 * i, 2);
            for (int k = 0; k < 16; ++k) std::memcpy(&blk->scales[k], s + kScales + 16 * k + i, 1);
            for (int c = 0; c < 32; ++c) std::memcpy(blk->ql + 4 * c, s + kQl + 64 * c + 4 * i, 4);
            for (int c = 0; c < 16; ++c) std::memcpy(blk->qh + 4 * c, s + kQh + 64 * c + 4 * i, 4);
        }
    }
}

void mul_q6_Kx16_q8_K_ref(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes,
                          int64_t nt, float* y, int64_t ldy) {
    const int64_t nb = n / QK_K;
    for (int64_t t = 0; t < nt; ++t) {
        const block_q8_K* xt =
            reinterpret_cast<const block_q8_K*>(reinterpret_cast<const uint8_t*>(x) + static_cast<size_t>(t) * x_row_bytes);
        for (int64_t g = 0; g < ngroups; ++g) {
            const uint8_t* grp = w + static_cast<size_t>(g) * group_bytes;
            for (int i = 0; i < 16; ++i) {
                float sum = 0.0f;
                for (int64_t b = 0; b < nb; ++b) {
                    const uint8_t* blk = grp + static_cast<size_t>(b) * kQ6Kx16BlockBytes;
                    int32_t isum = 0;
                    for (int j = 0; j < 16; ++j) {  // sub-blocks of 16 weights
                        int32_t s = 0;
                        for (int e = 16 * j; e < 16 * j + 16; ++e) {
                            // element e: half h, quarter q (0..3) of 32, position l in it
                            const int h = e / 128, qtr = (e % 128) / 32, l = e % 32;
                            const uint8_t ql = blk[kQl + 64 * (16 * h + (qtr % 2) * 8 + l / 4) + 4 * i + l % 4];
                            const uint8_t qh = blk[kQh + 64 * (8 * h + l / 4) + 4 * i + l % 4];
                            const int lo = qtr < 2 ? (ql & 0x0f) : (ql >> 4);
                            const int q = lo | (((qh >> (2 * qtr)) & 3) << 4);
                            s += (q - 32) * xt[b].qs[e];
                        }
                        isum += static_cast<int8_t>(blk[kScales + 16 * j + i]) * s;
                    }
                    uint16_t d;
                    std::memcpy(&d, blk + kD + 2 * i, 2);
                    sum += (fp16_to_fp32(d) * xt[b].d) * static_cast<float>(isum);  // as the reference dot
                }
                y[t * ldy + g * 16 + i] = sum;
            }
        }
    }
}

}  // namespace moe::kernels

// Q4_K weights relaid out 16 rows at a time (the fast path of Q4_K_M files, as repack_q4_0x16
// is Q4_0's): the layout, its inverse, and the scalar reference of mul_q4_Kx16_q8_K, whose float
// operations (those of the reference dot) every SIMD set repeats (kernels.h, repack_q4_Kx16).
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

namespace moe::kernels {

namespace {

// Byte offsets inside one super-block of a 16-row group (kQ4Kx16BlockBytes = 16 * 144).
constexpr size_t kD = 0, kDmin = 32, kScales = 64, kQs = 256;

}  // namespace

void repack_q4_Kx16(uint8_t* group, int64_t nb) {
    const size_t row_bytes = static_cast<size_t>(nb) * sizeof(block_q4_K);
    std::vector<uint8_t> src(group, group + 16 * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
        uint8_t* dst = group + static_cast<size_t>(b) * kQ4Kx16BlockBytes;
        for (int i = 0; i < 16; ++i) {
            const block_q4_K* blk = reinterpret_cast<const block_q4_K*>(src.data() + static_cast<size_t>(i) * row_bytes +
                                                                        static_cast<size_t>(b) * sizeof(block_q4_K));
            std::memcpy(dst + kD + 2 * i, &blk->d, 2);
            std::memcpy(dst + kDmin + 2 * i, &blk->dmin, 2);
            for (int k = 0; k < 12; ++k) dst[kScales + 16 * k + i] = blk->scales[k];
            for (int c = 0; c < 32; ++c) std::memcpy(dst + kQs + 64 * c + 4 * i, blk->qs + 4 * c, 4);
        }
    }
}

void unpack_q4_Kx16(uint8_t* group, int64_t nb) {
    const size_t row_bytes = static_cast<size_t>(nb) * sizeof(block_q4_K);
    std::vector<uint8_t> src(group, group + 16 * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* s = src.data() + static_cast<size_t>(b) * kQ4Kx16BlockBytes;
        for (int i = 0; i < 16; ++i) {
            block_q4_K* blk =
                reinterpret_cast<block_q4_K*>(group + static_cast<size_t>(i) * row_bytes + static_cast<size_t>(b) * sizeof(block_q4_K));
            std::memcpy(&blk->d, s + kD + 2 * i, 2);
            std::memcpy(&blk->dmin, s + kDmin + 2 * i, 2);
            for (int k = 0; k < 12; ++k) blk->scales[k] = s[kScales + 16 * k + i];
            for (int c = 0; c < 32; ++c) std::memcpy(blk->qs + 4 * c, s + kQs + 64 * c + 4 * i, 4);
        }
    }
}

void mul_q4_Kx16_q8_K_ref(int64_t n, const uint8_t* w, size_t group_bytes, int64_t ngroups, const block_q8_K* x, size_t x_row_bytes,
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
                    const uint8_t* blk = grp + static_cast<size_t>(b) * kQ4Kx16BlockBytes;
                    uint8_t scales[12];
                    for (int k = 0; k < 12; ++k) scales[k] = blk[kScales + 16 * k + i];
                    int32_t isum = 0, msum = 0;
                    for (int j = 0; j < 8; ++j) {
                        uint8_t sc, m;
                        scale_min_k4(j, scales, &sc, &m);
                        int32_t s = 0;
                        for (int l = 0; l < 32; ++l) {
                            const uint8_t q = blk[kQs + 64 * (8 * (j / 2) + l / 4) + 4 * i + l % 4];
                            s += ((j % 2) ? (q >> 4) : (q & 0x0f)) * xt[b].qs[32 * j + l];
                        }
                        isum += sc * s;
                        msum += m * (xt[b].bsums[2 * j] + xt[b].bsums[2 * j + 1]);
                    }
                    uint16_t d, dmin;
                    std::memcpy(&d, blk + kD + 2 * i, 2);
                    std::memcpy(&dmin, blk + kDmin + 2 * i, 2);
                    // as the reference dot (kquants_ref.h): scales, then mins
                    sum += (fp16_to_fp32(d) * xt[b].d) * static_cast<float>(isum);
                    sum -= (fp16_to_fp32(dmin) * xt[b].d) * static_cast<float>(msum);
                }
                y[t * ldy + g * 16 + i] = sum;
            }
        }
    }
}

}  // namespace moe::kernels

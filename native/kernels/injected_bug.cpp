// A deliberately wrong kernel set for the fidelity tests (MOE_INJECT_BUG=kquant_scale, see
// model/forward.h): the given set with every K-quant and iq4_xs dot replaced by the scalar
// reference reading one scale nibble wrongly (its nibbles swapped in each super-block), and no
// row-layout matrix kernels (the caller loops over these dots). Never used otherwise.
#include <cstring>
#include <mutex>
#include <vector>

#include "kernels/kernels.h"

namespace moe::kernels {
namespace {

// The wrong nibble of one super-block, per type: the byte holding a scale's low nibble with its
// nibbles swapped (q4_K/q5_K: scale 4 and min 4; q3_K: scales 0 and 8; q2_K: scale and min 0;
// iq4_xs: scales 0 and 1); q6_K's scales are whole bytes: sub-block 0 uses sub-block 1's.
void perturb(DType t, uint8_t* blk) {
    auto swap_nibbles = [](uint8_t& b) { b = static_cast<uint8_t>((b >> 4) | (b << 4)); };
    switch (t) {
        case DType::Q4_K: swap_nibbles(reinterpret_cast<block_q4_K*>(blk)->scales[8]); break;
        case DType::Q5_K: swap_nibbles(reinterpret_cast<block_q5_K*>(blk)->scales[8]); break;
        case DType::Q3_K: swap_nibbles(reinterpret_cast<block_q3_K*>(blk)->scales[0]); break;
        case DType::Q2_K: swap_nibbles(reinterpret_cast<block_q2_K*>(blk)->scales[0]); break;
        case DType::IQ4_XS: swap_nibbles(reinterpret_cast<block_iq4_xs*>(blk)->scales_l[0]); break;
        case DType::Q6_K: {
            block_q6_K* b = reinterpret_cast<block_q6_K*>(blk);
            b->scales[0] = b->scales[1];
            break;
        }
        default: break;
    }
}

template <DType T>
float wrong_scale_dot(int64_t n, const void* w, const void* x) {
    const TypeTraits tr = type_traits(T);
    const int64_t nb = n / tr.block_size;
    thread_local std::vector<uint8_t> row;
    row.assign(static_cast<const uint8_t*>(w), static_cast<const uint8_t*>(w) + static_cast<size_t>(nb) * tr.type_size);
    for (int64_t b = 0; b < nb; ++b) perturb(T, row.data() + static_cast<size_t>(b) * tr.type_size);
    return scalar_set().of(T).dot(n, row.data(), x);
}

template <DType T>
void replace(KernelSet& s) {
    if (!scalar_set().of(T).dot) return;  // a type without kernels stays without
    const TypeKernels k = s.of(T);        // relaid-out weights (mul_x16) keep their kernel
    s.types[static_cast<uint32_t>(T)] = {k.from_f32, wrong_scale_dot<T>, nullptr, k.mul_x16, k.relayout16};
}

}  // namespace

const KernelSet& with_kquant_scale_bug(const KernelSet& base) {
    static std::mutex mu;
    static KernelSet sets[kIsaCount];
    static bool made[kIsaCount] = {};
    std::lock_guard<std::mutex> lock(mu);
    const int i = static_cast<int>(base.isa);
    if (!made[i]) {
        KernelSet s = base;
        replace<DType::Q2_K>(s);
        replace<DType::Q3_K>(s);
        replace<DType::Q4_K>(s);
        replace<DType::Q5_K>(s);
        replace<DType::Q6_K>(s);
        replace<DType::IQ4_XS>(s);
        sets[i] = s;
        made[i] = true;
    }
    return sets[i];
}

}  // namespace moe::kernels

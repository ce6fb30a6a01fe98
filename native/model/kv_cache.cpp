#include "model/kv_cache.h"

#include <algorithm>

namespace moe {

KvCache::KvCache(const HParams& hp, uint32_t n_ctx, uint32_t n_batch) : row_(hp.n_embd_k_gqa()) {
    cap_.resize(hp.n_layer);
    k_.resize(hp.n_layer);
    v_.resize(hp.n_layer);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        cap_[il] = hp.is_swa[il] ? std::min<uint32_t>(n_ctx, hp.n_swa + n_batch) : n_ctx;
        k_[il].reset(new uint16_t[static_cast<size_t>(cap_[il]) * row_]);
        v_[il].reset(new uint16_t[static_cast<size_t>(cap_[il]) * row_]);
    }
}

size_t KvCache::bytes() const {
    size_t total = 0;
    for (uint32_t c : cap_) total += static_cast<size_t>(c) * row_ * 2 * sizeof(uint16_t);
    return total;
}

bool KvCache::has_ring(uint32_t n_ctx) const {
    for (uint32_t c : cap_)
        if (c < n_ctx) return true;
    return false;
}

uint32_t KvCache::min_capacity() const { return *std::min_element(cap_.begin(), cap_.end()); }

void KvCache::store(const kernels::KernelSet& ks, uint32_t il, const float* k, const float* v, int32_t pos0, int64_t n,
                    const int32_t* pos) {
    const uint32_t c = cap_[il];
    const kernels::FromF32Fn to_f16 = ks.of(DType::F16).from_f32;
    for (int64_t t = 0; t < n; ++t) {
        const size_t slot = static_cast<size_t>(pos ? pos[t] : pos0 + t) % c;
        to_f16(k + t * row_, k_[il].get() + slot * row_, static_cast<int64_t>(row_));
        to_f16(v + t * row_, v_[il].get() + slot * row_, static_cast<int64_t>(row_));
    }
}

}  // namespace moe

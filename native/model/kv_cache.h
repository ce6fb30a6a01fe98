// The KV cache of one session: per layer, K and V rows of n_head_kv * head_dim fp16 values, one
// row per position, at slot pos % capacity. Global layers hold every position of the context;
// sliding-window layers a ring of n_swa + n_batch rows (so the cache can be truncated back by up
// to n_batch tokens).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/kernels.h"
#include "model/model.h"

namespace moe {

class KvCache {
 public:
    KvCache(const HParams& hp, uint32_t n_ctx, uint32_t n_batch);

    uint32_t capacity(uint32_t il) const { return cap_[il]; }
    size_t row() const { return row_; }  // values per K (or V) row
    uint16_t* k(uint32_t il) { return k_[il].get(); }
    uint16_t* v(uint32_t il) { return v_[il].get(); }
    const uint16_t* k(uint32_t il) const { return k_[il].get(); }
    const uint16_t* v(uint32_t il) const { return v_[il].get(); }
    size_t bytes() const;
    // True when some layer keeps a ring smaller than n_ctx; the smallest capacity.
    bool has_ring(uint32_t n_ctx) const;
    uint32_t min_capacity() const;

    // Stores the K and V rows (f32, row() values each) of n tokens at positions pos0.. (or pos[t]
    // when given) as fp16.
    void store(const kernels::KernelSet& ks, uint32_t il, const float* k, const float* v, int32_t pos0, int64_t n,
               const int32_t* pos = nullptr);

 private:
    size_t row_;
    std::vector<uint32_t> cap_;
    std::vector<std::unique_ptr<uint16_t[]>> k_, v_;
};

}  // namespace moe

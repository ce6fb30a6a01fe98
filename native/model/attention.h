// Causal self-attention of a batch of new tokens over one layer's fp16 KV cache, as llama.cpp's
// CPU path computes it without flash attention: q rounded to fp16 before q.k, scores scaled by
// 1/sqrt(head_dim), softmax, probabilities rounded to fp16 before weighting V.
#pragma once
#include <cstdint>
#include <vector>

#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "model/kv_cache.h"

namespace moe {

struct AttentionShape {
    int n_head;
    int n_head_kv;  // n_head is a multiple of it (grouped-query attention)
    int head_dim;
};

// out[t] = attention of query row q[t] (n_head heads, ldq floats apart) at position pos0 + t over
// the cached positions it sees: [0, p] for global layers (window 0), (p - window, p] for
// sliding-window layers. The batch's own K/V must already be stored. Work is split per (KV head,
// tile of tokens): a tile's queries read each cached row once. scratch grows as needed.
void attention(ThreadPool& pool, const kernels::KernelSet& ks, const KvCache& kv, uint32_t il, const AttentionShape& shape, const float* q,
               int64_t ldq, int64_t n, int32_t pos0, int32_t window, float* out, int64_t ldo, std::vector<float>& scratch,
               const int32_t* pos = nullptr);

}  // namespace moe

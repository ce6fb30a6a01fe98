// What an architecture's forward pass works with: one session's state (thread pool, kernels,
// KV cache, buffers, statistics) and a batch of tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "model/kv_cache.h"
#include "model/matmul.h"
#include "model/model.h"
#include "model/moe.h"
#include "model/profile.h"

namespace moe {

// Deliberate bugs, injected only when MOE_INJECT_BUG names one: the fidelity tests use them to
// show that they fail for real mistakes. Never set in normal use.
enum class Bug { None, RouteNormed, RopeOnNope, WindowOffByOne, SoftmaxGating, NoRenorm, KquantScale };
Bug injected_bug();

// A noise probe, also for the fidelity tests only: MOE_PERTURB=<seed> moves a seeded half of the
// results of every matrix product by one ulp (MatMul::set_perturb), as a correct engine that sums
// in another order would, so a test can measure how far a model amplifies last-bit differences
// (its noise floor for comparing two correct engines) even where all our kernel sets round
// identically. Unset: off.
uint32_t perturb_seed();

struct Batch {
    const int32_t* tokens;
    int64_t n;
    int32_t pos0;                          // position of tokens[0]
    const std::vector<int64_t>& out_rows;  // batch rows whose logits are wanted, in order
    float* logits;                         // n_vocab floats per out_rows entry
    const int32_t* pos = nullptr;          // per-token positions (ascending), when not pos0, pos0 + 1, ...
};

struct ForwardState {
    ForwardState(const HParams& hp, uint32_t n_ctx, uint32_t n_batch, std::shared_ptr<ThreadPool> pool);

    std::shared_ptr<ThreadPool> pool_owner;
    ThreadPool& pool;
    const kernels::KernelSet& ks;
    MatMul mm;
    KvCache kv;
    PhaseProfile prof;
    Bug bug;
    // Statistics of everything evaluated: routing counts[layer * n_expert + e]; gate values relu
    // silenced, out of all expert neuron evaluations, in all and per layer.
    std::vector<uint64_t> expert_counts;
    uint64_t reglu_zero = 0, reglu_total = 0;
    std::vector<uint64_t> reglu_zero_layer, reglu_total_layer;
    // Buffers reused between calls (sized for the batch by the forward pass).
    std::vector<float> x, h, q, k, v, att, proj, router, router_next, logits_in, attn_scratch;
    std::vector<uint8_t> act_x, act_h;
    Routing routing;
    Routing guess;  // under a memory budget, decoding: the next layer's routing as guessed
    MoeScratch moe;
};

}  // namespace moe

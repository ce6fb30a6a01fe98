// The mixture-of-experts FFN: routing (each token's top-k experts and their weights) and the
// experts themselves, computed expert by expert for all the tokens routed to each, with ReGLU
// (relu(gate) * up) so that `up` is computed only for the neurons relu keeps.
#pragma once
#include <cstdint>
#include <vector>

#include "core/threadpool.h"
#include "model/expert_cache.h"
#include "model/matmul.h"
#include "model/model.h"
#include "model/profile.h"

namespace moe {

// Each token's k experts, best first, and their weights: experts[t*k + j], weights[t*k + j].
struct Routing {
    int64_t k = 0;
    std::vector<int32_t> experts;
    std::vector<float> weights;
};

struct ExpertWeights {
    const Tensor& gate;  // {n_embd, n_ff, n_expert}
    const Tensor& up;    // {n_embd, n_ff, n_expert}
    const Tensor& down;  // {n_ff, n_embd, n_expert}, or {n_embd, n_ff, n_expert} when down_by_neuron
    // PowerInfer's layout (.powerinfer.gguf): down stored transposed, one row of n_embd weights
    // per neuron, so an expert's output is the sum of its active neurons' rows.
    bool down_by_neuron = false;
    // Under a memory budget: the experts' extents come from this cache (gate, up and down at
    // these offsets in each), not from the tensors' data; layer: this layer's index in it.
    ExpertCache* cache = nullptr;
    uint32_t layer = 0;
    uint64_t extent_offset[3] = {0, 0, 0};
};

// Buffers reused between calls.
struct MoeScratch {
    std::vector<float> probs;                                         // per token: expert probabilities
    std::vector<int32_t> order;                                       // per token: experts by probability
    std::vector<std::vector<std::pair<int64_t, int64_t>>> by_expert;  // (token, choice) per expert
    std::vector<int64_t> offset;                                      // first row of each expert's tokens
    std::vector<int64_t> row_token, row_of;
    std::vector<float> in, gate, up, down;
    std::vector<std::vector<int32_t>> live;  // per expert: neurons some token activates
    std::vector<uint8_t> act_in, act_mid;
    std::vector<std::vector<float>> neuron_rows;  // per thread: dequantized parts of neuron rows
    std::vector<std::vector<uint8_t>> act_task;   // per thread: an expert task's down activations
    std::vector<int32_t> active;                  // experts with tokens, ascending
    std::vector<Tensor> views;                    // with an expert cache: a group's gate, up, down per expert
    std::vector<int64_t> view_of;                 // per expert: its index in views / 3
    std::vector<uint8_t> wanted;                  // per expert: routed to by some token (prefetch)
    std::vector<uint32_t> tokens_of;              // with an expert cache: a group's tokens per expert
    uint64_t bytes_read = 0;                      // expert weight bytes read, summed over calls
};

// Routes n tokens from their router logits (n_expert per token): probabilities by `gating`
// (sigmoid, or softmax over the experts), the k most probable experts (ties broken as
// ggml_argsort does), weights = their probabilities divided by their sum when `renormalize`.
// Adds each choice to counts[expert] (when not nullptr).
void route(ThreadPool& pool, const float* logits, int64_t n, int64_t n_expert, int64_t k, Gating gating, bool renormalize, Routing& out,
           MoeScratch& s, uint64_t* counts);

// Under a memory budget (w.cache): starts reading the experts these tokens were routed to that
// the cache does not hold (as many as it can hold), so that the reads overlap what comes before
// moe_ffn. No-op without a cache.
void prefetch_experts(const ExpertWeights& w, const Routing& r, int64_t n, MoeScratch& s);

// Under a memory budget: `guess` routes the n tokens as a later layer probably will (route() on
// that layer's router applied to the residual as it stands); its experts are read ahead so the
// reads overlap this layer's work. Only when the cache holds several layers' worth of them, so
// that the guesses never push out what the current layer is about to use.
void prefetch_guess(const ExpertWeights& next, const Routing& guess, int64_t n, MoeScratch& s);

// For every token t: x[t] += sum_j weights[t,j] * down_e(relu(gate_e(h[t])) * up_e(h[t])) with
// e = experts[t,j], summed in choice order. Returns the number of (row, neuron) gate values
// relu silenced, out of n * k * n_ff. Laps the Route (grouping), Gate, Up, Down and Combine phases,
// or Route, Experts and Combine when each thread runs whole experts (few tokens: see moe.cpp).
uint64_t moe_ffn(MatMul& mm, ThreadPool& pool, const ExpertWeights& w, const float* h, int64_t n, int64_t n_embd, const Routing& r,
                 float* x, MoeScratch& s, PhaseProfile& prof);

}  // namespace moe

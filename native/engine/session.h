// A KV-cache session over a loaded model: batched prompt evaluation, then token-by-token
// decoding. Global layers keep every position; sliding-window layers keep a ring of
// n_swa + n_batch entries, so the cache can be truncated back by up to n_batch tokens
// (issue 3 reuses caches across edits). K and V are stored as fp16, as llama.cpp does.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "engine/reuse.h"

namespace moe {

class ThreadPool;

struct SessionParams {
    uint32_t n_ctx = 4096;   // maximum positions (clamped to >= 1)
    uint32_t n_batch = 512;  // tokens evaluated per forward pass
    int n_threads = 0;       // 0: hardware concurrency (ignored when `pool` is given)
    // Worker threads shared with other sessions of the same model (optional). Operations of
    // sessions sharing a pool take turns per parallel section; they are never wrong, only slower.
    std::shared_ptr<ThreadPool> pool;
};

struct PrefillStats {
    uint32_t n_prompt = 0;     // tokens of the new prompt
    uint32_t n_prefix = 0;     // kept exactly
    uint32_t n_moved = 0;      // taken from the cache at another position (or past an edit)
    uint32_t n_evaluated = 0;  // run through the model
    uint32_t n_moved_runs = 0;
    double plan_ms = 0, move_ms = 0, eval_ms = 0, total_ms = 0;
    std::string plan;  // describe_plan()
};

// Which positions' logits decode() returns.
enum class LogitsMode { None, Last, All };

class Session {
 public:
    Session(const Model& model, const SessionParams& params);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Evaluates `tokens` after the cached ones (positions n_past() ...). Returns logits in
    // `out` (n_vocab floats per returned position, positions in order). Throws
    // Error("bad_input") for ids out of range, an empty list, or exceeding n_ctx;
    // Error("cancelled") when `cancel` becomes true (checked between batches; the cache then
    // holds the batches completed so far).
    void decode(const int32_t* tokens, size_t n, LogitsMode mode, std::vector<float>& out, const std::atomic<bool>* cancel = nullptr);

    // Makes the session hold exactly `tokens` plus the logits of the last one (last_logits()),
    // reusing cached entries as `policy` says (reuse.h): the common prefix stays; with
    // Mode::Moves cached runs found elsewhere are moved to their new positions, K re-rotated by the
    // position change on RoPE layers (NoPE layers copy as they are; sliding-window layers copy only
    // entries a later evaluated position can still see). Throws like decode(); on Error("cancelled")
    // the session holds a valid prefix of `tokens`, or all of them when at most kFinishOnCancel
    // tokens were left to evaluate (the plan is finished first, so the runs it moves are not lost).
    static constexpr uint32_t kFinishOnCancel = 64;
    PrefillStats prefill(const int32_t* tokens, size_t n, const ReusePolicy& policy, const std::atomic<bool>* cancel = nullptr);

    // Logits of the last evaluated position (n_vocab floats), when the last operation left them:
    // decode() with LogitsMode Last/All or prefill(); decode(None), truncate() and clear() drop them.
    bool has_logits() const { return has_logits_; }
    const std::vector<float>& last_logits() const { return last_logits_; }

    // Drops cached positions >= n_keep. Throws Error("bad_input") if the sliding-window ring no
    // longer holds what the kept positions need (then call clear()).
    void truncate(uint32_t n_keep);
    bool can_truncate(uint32_t n_keep) const;
    void clear();

    uint32_t n_past() const { return static_cast<uint32_t>(tokens_.size()); }
    uint32_t n_ctx() const { return params_.n_ctx; }
    const std::vector<int32_t>& tokens() const { return tokens_; }
    const Model& model() const { return model_; }
    size_t kv_bytes() const;

    // Routing statistics of everything evaluated so far: counts[layer * n_expert + e].
    const std::vector<uint64_t>& expert_counts() const;
    // ReGLU sparsity so far: expert neuron evaluations whose gate was <= 0 (relu zeroes them; their
    // `up` row is skipped when no token of the batch needs it), out of all.
    struct ReluStats {
        uint64_t zero = 0, total = 0;
        uint64_t expert_bytes = 0;                      // expert weight bytes read (the sparse layouts read only live neurons)
        std::vector<uint64_t> layer_zero, layer_total;  // the same per layer
    };
    ReluStats reglu_stats() const;

 private:
    struct Impl;
    const Model& model_;
    SessionParams params_;
    std::vector<int32_t> tokens_;
    std::vector<float> last_logits_;
    bool has_logits_ = false;
    std::unique_ptr<Impl> impl_;
};

}  // namespace moe

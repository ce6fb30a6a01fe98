// A KV-cache session over a loaded model: batched prompt evaluation, then token-by-token
// decoding. Global layers keep every position; sliding-window layers keep a ring of
// n_swa + n_batch entries, so the cache can be truncated back by up to n_batch tokens
// (issue 3 reuses caches across edits). K and V are stored as fp16, as llama.cpp does.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "model.h"

namespace moe {

class ThreadPool;

struct SessionParams {
    uint32_t n_ctx = 4096;    // maximum positions (clamped to >= 1)
    uint32_t n_batch = 512;   // tokens evaluated per forward pass
    int n_threads = 0;        // 0: hardware concurrency
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
    void decode(const int32_t* tokens, size_t n, LogitsMode mode, std::vector<float>& out,
                const std::atomic<bool>* cancel = nullptr);

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
    const std::vector<uint64_t>& expert_counts() const { return expert_counts_; }

 private:
    struct Impl;
    const Model& model_;
    SessionParams params_;
    std::vector<int32_t> tokens_;
    std::vector<uint64_t> expert_counts_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace moe

// The decode loop shared by the addon and the CLI: evaluate the prompt, then sample, stream
// and evaluate one token at a time until end-of-generation, the token limit or a cancel.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/sampler.h"

namespace moe {

class Session;

struct GenerateParams {
    uint32_t max_tokens = 256;   // new tokens at most (0: evaluate the prompt only)
    SamplingParams sampling;     // defaults: sampler.h
    bool stop_on_eog = true;     // stop at an end-of-generation token (it is not emitted)
};

struct GenerateTimings {
    uint32_t n_prompt = 0;       // prompt tokens evaluated
    uint32_t n_generated = 0;    // tokens sampled
    double prompt_ms = 0.0;      // prompt evaluation
    double generate_ms = 0.0;    // from the first sample to the end
    double prompt_tokens_per_s = 0.0;
    double tokens_per_s = 0.0;   // n_generated / generate_ms
};

enum class StopReason { Eog, Length, Cancelled };
const char* stop_reason_name(StopReason r);  // "eog", "length", "cancelled"

struct GenerateResult {
    std::vector<int32_t> tokens;  // generated ids (the EOG token, if any, excluded)
    std::string text;             // their text, complete UTF-8
    StopReason stop = StopReason::Length;
    GenerateTimings timings;
};

// Called once per generated token with the text it completes (may be empty while a UTF-8
// sequence is still open), and once more with id -1 if the decoder holds leftover bytes at the
// end. Called on the generating thread.
using TokenCallback = std::function<void(const std::string& text, int32_t id)>;

// Appends `prompt` to the session (it may already hold cached tokens) and generates.
// The prompt may be empty when the session is not: the last cached token is re-evaluated to
// get its logits. Throws Error("bad_input") before any work when the session cannot hold
// n_past + prompt + max_tokens positions. A cancel ends the loop between tokens (or between
// prompt batches) and returns what was generated with stop == Cancelled.
// On return the session holds the prompt and every generated token except the last sampled one
// (which was never evaluated).
GenerateResult generate(Session& session, const std::vector<int32_t>& prompt, const GenerateParams& params,
                        const TokenCallback& on_token = nullptr, const std::atomic<bool>* cancel = nullptr);

}  // namespace moe

// The decode loop (see generate.h).
#include "engine/generate.h"

#include <chrono>

#include "core/common.h"
#include "model/model.h"
#include "engine/session.h"
#include "model/tokenizer.h"

namespace moe {

const char* stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::Eog: return "eog";
        case StopReason::Length: return "length";
        case StopReason::Cancelled: return "cancelled";
    }
    return "unknown";
}

using Clock = std::chrono::steady_clock;
static double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

static bool cancelled(const std::atomic<bool>* cancel) { return cancel && cancel->load(std::memory_order_relaxed); }

GenerateResult generate(Session& session, const std::vector<int32_t>& prompt_in, const GenerateParams& params,
                        const TokenCallback& on_token, const std::atomic<bool>* cancel) {
    const Model& model = session.model();
    const Tokenizer& tok = model.tokenizer();
    const int32_t n_vocab = static_cast<int32_t>(model.hparams().n_vocab);
    GenerateResult res;

    // ---- check the request before doing any work
    std::vector<int32_t> prompt = prompt_in;
    uint32_t n_keep = session.n_past();  // cached tokens that stay
    if (prompt.empty()) {
        if (n_keep == 0) throw Error("bad_input", "The prompt is empty: give at least one token.");
        // Re-evaluate the last cached token to get the logits to sample from.
        if (!session.can_truncate(n_keep - 1))
            throw Error("bad_input", "The prompt is empty and the session cannot step back one token; clear it and send the whole prompt.");
        prompt.push_back(session.tokens().back());
        n_keep -= 1;
    }
    const uint64_t needed = static_cast<uint64_t>(n_keep) + prompt.size() + params.max_tokens;
    if (needed > session.n_ctx())
        throw Error("bad_input",
                    strfmt("The prompt (%zu tokens%s) and up to %u new tokens need %llu positions, but the context holds %u; "
                           "lower the token limit or raise the context size.",
                           prompt.size(), n_keep ? strfmt(" after %u cached", n_keep).c_str() : "",
                           params.max_tokens, static_cast<unsigned long long>(needed), session.n_ctx()));
    if (n_keep < session.n_past()) session.truncate(n_keep);

    // ---- prompt
    std::vector<float> logits;
    auto t0 = Clock::now();
    try {
        session.decode(prompt.data(), prompt.size(), LogitsMode::Last, logits, cancel);
    } catch (const Error& e) {
        if (e.code != "cancelled") throw;
        res.stop = StopReason::Cancelled;
        res.timings.prompt_ms = ms_since(t0);
        return res;
    }
    res.timings.n_prompt = static_cast<uint32_t>(prompt.size());
    res.timings.prompt_ms = ms_since(t0);
    if (res.timings.prompt_ms > 0) res.timings.prompt_tokens_per_s = 1000.0 * prompt.size() / res.timings.prompt_ms;
    if (params.max_tokens == 0) return res;

    // ---- generation: sample, emit, evaluate
    std::vector<int32_t> history = session.tokens();  // penalties look at the prompt too
    Rng rng(params.sampling.seed);
    Candidates scratch;
    Utf8StreamDecoder utf8;
    t0 = Clock::now();
    res.stop = StopReason::Length;
    for (uint32_t i = 0; i < params.max_tokens; ++i) {
        if (cancelled(cancel)) {
            res.stop = StopReason::Cancelled;
            break;
        }
        const int32_t id = sample_token(logits.data(), n_vocab, history, params.sampling, rng, scratch);
        if (params.stop_on_eog && tok.is_eog(id)) {
            res.stop = StopReason::Eog;
            break;
        }
        res.tokens.push_back(id);
        history.push_back(id);
        const std::string text = utf8.push(tok.token_to_piece(id, /*render_special=*/true));
        res.text += text;
        if (on_token) on_token(text, id);
        if (i + 1 == params.max_tokens) break;  // the last token is never evaluated
        try {
            session.decode(&id, 1, LogitsMode::Last, logits, cancel);
        } catch (const Error& e) {
            if (e.code != "cancelled") throw;
            res.stop = StopReason::Cancelled;
            break;
        }
    }
    const std::string rest = utf8.flush();
    if (!rest.empty()) {
        res.text += rest;
        if (on_token) on_token(rest, -1);
    }
    res.timings.n_generated = static_cast<uint32_t>(res.tokens.size());
    res.timings.generate_ms = ms_since(t0);
    if (res.timings.generate_ms > 0) res.timings.tokens_per_s = 1000.0 * res.tokens.size() / res.timings.generate_ms;
    return res;
}

}  // namespace moe

// Session (Model.createSession()): a KV-cache session. eval, prefill and step run on worker
// threads (TaskWorker) and return promises; one operation at a time ("busy" otherwise).
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "addon/state.h"

namespace moe::addon {

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
    static Napi::Function define(Napi::Env env);
    explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {}
    // A new JS Session over `core`.
    static Napi::Object wrap(Napi::Env env, std::shared_ptr<SessionCore> core);

 private:
    // The session, checked usable; `idle` also requires no operation in flight.
    SessionCore& core(Napi::Env env, bool idle);
    // Queues `run` as a session operation whose promise resolves with `result`.
    Napi::Value start_task(Napi::Env env, const Napi::CallbackInfo& info, const char* name, std::function<void()> run,
                           std::function<Napi::Value(Napi::Env)> result);
    // info[0] as token ids for an operation, after checking the session is idle.
    std::shared_ptr<std::vector<int32_t>> tokens_arg(Napi::Env env, const Napi::CallbackInfo& info);
    const std::vector<float>& logits_or_throw(Napi::Env env, SessionCore& c);

    Napi::Value eval(const Napi::CallbackInfo& info);
    Napi::Value prefill(const Napi::CallbackInfo& info);
    Napi::Value step(const Napi::CallbackInfo& info);
    Napi::Value sample(const Napi::CallbackInfo& info);
    Napi::Value top_tokens(const Napi::CallbackInfo& info);
    Napi::Value last_logits(const Napi::CallbackInfo& info);
    Napi::Value cancel(const Napi::CallbackInfo& info);
    Napi::Value truncate(const Napi::CallbackInfo& info);
    Napi::Value can_truncate(const Napi::CallbackInfo& info);
    Napi::Value clear(const Napi::CallbackInfo& info);
    Napi::Value tokens(const Napi::CallbackInfo& info);
    Napi::Value expert_counts(const Napi::CallbackInfo& info);
    Napi::Value reglu_stats(const Napi::CallbackInfo& info);
    Napi::Value dispose(const Napi::CallbackInfo& info);
    Napi::Value n_past(const Napi::CallbackInfo& info);
    Napi::Value n_ctx(const Napi::CallbackInfo& info);
    Napi::Value kv_bytes(const Napi::CallbackInfo& info);
    Napi::Value is_busy(const Napi::CallbackInfo& info);
    Napi::Value is_disposed(const Napi::CallbackInfo& info);

    std::shared_ptr<SessionCore> core_;
};

}  // namespace moe::addon

// Session (see session_wrap.h).
#include "addon/session_wrap.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "addon/args.h"
#include "addon/sampler_wrap.h"
#include "addon/workers.h"
#include "core/common.h"
#include "engine/reuse.h"

namespace moe::addon {

Napi::Function SessionWrap::define(Napi::Env env) {
    return DefineClass(env, "Session",
                       {
                           InstanceMethod<&SessionWrap::eval>("eval"),
                           InstanceMethod<&SessionWrap::prefill>("prefill"),
                           InstanceMethod<&SessionWrap::step>("step"),
                           InstanceMethod<&SessionWrap::sample>("sample"),
                           InstanceMethod<&SessionWrap::top_tokens>("topTokens"),
                           InstanceMethod<&SessionWrap::last_logits>("lastLogits"),
                           InstanceMethod<&SessionWrap::cancel>("cancel"),
                           InstanceMethod<&SessionWrap::truncate>("truncate"),
                           InstanceMethod<&SessionWrap::can_truncate>("canTruncate"),
                           InstanceMethod<&SessionWrap::clear>("clear"),
                           InstanceMethod<&SessionWrap::tokens>("tokens"),
                           InstanceMethod<&SessionWrap::expert_counts>("expertCounts"),
                           InstanceMethod<&SessionWrap::reglu_stats>("regluStats"),
                           InstanceMethod<&SessionWrap::dispose>("dispose"),
                           InstanceAccessor<&SessionWrap::n_past>("nPast"),
                           InstanceAccessor<&SessionWrap::n_ctx>("nCtx"),
                           InstanceAccessor<&SessionWrap::kv_bytes>("kvBytes"),
                           InstanceAccessor<&SessionWrap::is_busy>("busy"),
                           InstanceAccessor<&SessionWrap::is_disposed>("disposed"),
                       });
}

Napi::Object SessionWrap::wrap(Napi::Env env, std::shared_ptr<SessionCore> core) {
    Napi::Object obj = addon_data(env).session_ctor.New({});
    SessionWrap::Unwrap(obj)->core_ = std::move(core);
    return obj;
}

SessionCore& SessionWrap::core(Napi::Env env, bool idle) {
    if (!core_) throw_error(env, "bad_state", "This Session was not made by Model.createSession().");
    if (core_->disposed || !core_->session) throw_error(env, "disposed", "The session (or its model) was disposed; create a new session.");
    if (idle && core_->busy)
        throw_error(env, "busy", "The session is busy with another eval, prefill or step; await it or cancel() it first.");
    return *core_;
}

Napi::Value SessionWrap::start_task(Napi::Env env, const Napi::CallbackInfo& info, const char* name, std::function<void()> run,
                                    std::function<Napi::Value(Napi::Env)> result) {
    SessionCore& c = core(env, true);
    auto* w = new TaskWorker(env, name, core_, info.This().As<Napi::Object>(), std::move(run), std::move(result));
    Napi::Promise p = w->promise();
    c.cancel = false;
    c.busy = true;
    w->Queue();
    return p;
}

std::shared_ptr<std::vector<int32_t>> SessionWrap::tokens_arg(Napi::Env env, const Napi::CallbackInfo& info) {
    core(env, true);
    if (info.Length() < 1) throw type_error(env, "Expected tokens.");
    return std::make_shared<std::vector<int32_t>>(tokens_from(env, info[0], "tokens"));
}

const std::vector<float>& SessionWrap::logits_or_throw(Napi::Env env, SessionCore& c) {
    if (!c.session->has_logits()) throw_error(env, "bad_state", "There are no logits: evaluate or prefill something first.");
    return c.session->last_logits();
}

// ---------------------------------------------------------------- operations (promises)

Napi::Value SessionWrap::eval(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return as_promise(env, [&]() -> Napi::Value {
        auto tokens = tokens_arg(env, info);
        Napi::Object opts = options_arg(info, 1);
        moe::LogitsMode mode = moe::LogitsMode::Last;
        if (has(opts, "logits")) {
            Napi::Value v = opts.Get("logits");
            const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
            if (s == "none")
                mode = moe::LogitsMode::None;
            else if (s == "last")
                mode = moe::LogitsMode::Last;
            else if (s == "all")
                mode = moe::LogitsMode::All;
            else
                throw_error(env, "bad_input", "Option logits must be 'none', 'last' or 'all'.");
        }
        auto logits = std::make_shared<std::vector<float>>();
        std::shared_ptr<SessionCore> sc = core_;
        return start_task(
            env, info, "moe.eval",
            [sc, tokens, mode, logits] {
                if (tokens->empty() && mode == moe::LogitsMode::None) return;  // nothing to do
                sc->session->decode(tokens->data(), tokens->size(), mode, *logits, &sc->cancel);
            },
            [logits](Napi::Env e) -> Napi::Value {
                Napi::Float32Array out = Napi::Float32Array::New(e, logits->size());
                if (!logits->empty()) std::memcpy(out.Data(), logits->data(), logits->size() * sizeof(float));
                return out;
            });
    });
}

Napi::Value SessionWrap::prefill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return as_promise(env, [&]() -> Napi::Value {
        auto tokens = tokens_arg(env, info);
        if (tokens->empty()) throw_error(env, "bad_input", "The prompt is empty: give at least one token.");
        Napi::Object opts = options_arg(info, 1);
        moe::ReusePolicy pol;
        if (has(opts, "reuse")) {
            Napi::Value rv = opts.Get("reuse");
            if (!rv.IsObject()) throw type_error(env, "Option reuse must be an object {mode, minRun, boundary}.");
            Napi::Object r = rv.As<Napi::Object>();
            if (has(r, "mode")) {
                Napi::Value mv = r.Get("mode");
                if (!mv.IsString() || !moe::parse_reuse_mode(mv.As<Napi::String>().Utf8Value(), &pol.mode))
                    throw_error(env, "bad_input", "Option reuse.mode must be 'none', 'prefix' or 'moves'.");
            }
            pol.min_run = static_cast<uint32_t>(number_opt(r, "minRun", pol.min_run, 1, 1e6, true));
            pol.boundary = static_cast<uint32_t>(number_opt(r, "boundary", pol.boundary, 0, 1e6, true));
        }
        auto stats = std::make_shared<moe::PrefillStats>();
        std::shared_ptr<SessionCore> sc = core_;
        return start_task(
            env, info, "moe.prefill",
            [sc, tokens, pol, stats] { *stats = sc->session->prefill(tokens->data(), tokens->size(), pol, &sc->cancel); },
            [stats](Napi::Env e) -> Napi::Value {
                Napi::Object o = Napi::Object::New(e);
                o.Set("nPrompt", stats->n_prompt);
                o.Set("nPrefix", stats->n_prefix);
                o.Set("nMoved", stats->n_moved);
                o.Set("nEvaluated", stats->n_evaluated);
                o.Set("nMovedRuns", stats->n_moved_runs);
                o.Set("planMs", stats->plan_ms);
                o.Set("moveMs", stats->move_ms);
                o.Set("evalMs", stats->eval_ms);
                o.Set("totalMs", stats->total_ms);
                o.Set("plan", stats->plan);
                return o;
            });
    });
}

Napi::Value SessionWrap::step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return as_promise(env, [&]() -> Napi::Value {
        SessionCore& c = core(env, true);
        const double d = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
        const double n_vocab = c.session->model().hparams().n_vocab;
        if (!(d >= 0 && d < n_vocab && d == std::floor(d)))
            throw_error(env, "bad_input", moe::strfmt("step() needs a token id between 0 and %g.", n_vocab - 1));
        const int32_t token = static_cast<int32_t>(d);
        std::shared_ptr<SamplerCore> sampler;
        if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) sampler = SamplerWrap::from(env, info[1]);
        auto next = std::make_shared<int32_t>(-1);
        std::shared_ptr<SessionCore> sc = core_;
        return start_task(
            env, info, "moe.step",
            [sc, token, sampler, next] {
                if (sc->cancel.load()) throw moe::Error("cancelled", "evaluation was cancelled");
                std::vector<float> logits;
                sc->session->decode(&token, 1, moe::LogitsMode::Last, logits, nullptr);
                if (sampler) *next = sampler->sample(*sc->session);
            },
            [next](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *next); });
    });
}

// ---------------------------------------------------------------- synchronous methods

Napi::Value SessionWrap::sample(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionCore& c = core(env, true);
    if (info.Length() < 1) throw type_error(env, "Expected a Sampler made by createSampler().");
    auto sampler = SamplerWrap::from(env, info[0]);
    logits_or_throw(env, c);
    return Napi::Number::New(env, guarded(env, [&] { return sampler->sample(*c.session); }));
}

Napi::Value SessionWrap::top_tokens(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionCore& c = core(env, true);
    const double k = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (!(k >= 1 && k <= 1e6 && k == std::floor(k))) throw_error(env, "bad_input", "topTokens() needs a count of at least 1.");
    const std::vector<float>& logits = logits_or_throw(env, c);
    const size_t n = std::min(logits.size(), static_cast<size_t>(k));
    std::vector<int32_t> ids(logits.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<long>(n), ids.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    ids.resize(n);
    Napi::Float32Array vals = Napi::Float32Array::New(env, n);
    for (size_t i = 0; i < n; ++i) vals[i] = logits[ids[i]];
    Napi::Object out = Napi::Object::New(env);
    out.Set("ids", int32_array(env, ids));
    out.Set("logits", vals);
    return out;
}

Napi::Value SessionWrap::last_logits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionCore& c = core(env, true);
    if (!c.session->has_logits()) return env.Null();
    const std::vector<float>& logits = c.session->last_logits();
    Napi::Float32Array out = Napi::Float32Array::New(env, logits.size());
    std::memcpy(out.Data(), logits.data(), logits.size() * sizeof(float));
    return out;
}

Napi::Value SessionWrap::cancel(const Napi::CallbackInfo& info) {
    if (core_) core_->cancel = true;
    return info.Env().Undefined();
}

Napi::Value SessionWrap::truncate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionCore& c = core(env, true);
    const uint32_t keep = position_arg(info, "truncate");
    guarded(env, [&] {
        if (keep < c.session->n_past()) c.session->truncate(keep);
        c.n_past = c.session->n_past();
    });
    return env.Undefined();
}

Napi::Value SessionWrap::can_truncate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionCore& c = core(env, true);
    const uint32_t n = position_arg(info, "canTruncate");
    return Napi::Boolean::New(env, guarded(env, [&] { return c.session->can_truncate(n); }));
}

Napi::Value SessionWrap::clear(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionCore& c = core(env, true);
    guarded(env, [&] { c.session->clear(); });
    c.n_past = 0;
    return env.Undefined();
}

Napi::Value SessionWrap::tokens(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionCore& c = core(env, true);
    return int32_array(env, c.session->tokens());
}

Napi::Value SessionWrap::expert_counts(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionCore& c = core(env, true);
    const auto& counts = c.session->expert_counts();
    Napi::Float64Array a = Napi::Float64Array::New(env, counts.size());
    for (size_t i = 0; i < counts.size(); ++i) a[i] = static_cast<double>(counts[i]);
    return a;
}

Napi::Value SessionWrap::reglu_stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionCore& c = core(env, true);
    const moe::Session::ReluStats st = c.session->reglu_stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("zero", Napi::Number::New(env, static_cast<double>(st.zero)));
    o.Set("total", Napi::Number::New(env, static_cast<double>(st.total)));
    o.Set("expertBytes", Napi::Number::New(env, static_cast<double>(st.expert_bytes)));
    Napi::Array layers = Napi::Array::New(env, st.layer_zero.size());
    for (size_t i = 0; i < st.layer_zero.size(); ++i) {
        Napi::Object l = Napi::Object::New(env);
        l.Set("zero", Napi::Number::New(env, static_cast<double>(st.layer_zero[i])));
        l.Set("total", Napi::Number::New(env, static_cast<double>(st.layer_total[i])));
        layers.Set(static_cast<uint32_t>(i), l);
    }
    o.Set("layers", layers);
    return o;
}

Napi::Value SessionWrap::dispose(const Napi::CallbackInfo& info) {
    if (core_ && !core_->disposed) {
        core_->disposed = true;
        core_->cancel = true;
        if (!core_->busy) core_->release();  // else the worker releases it when it ends
    }
    return info.Env().Undefined();
}

// ---------------------------------------------------------------- accessors

Napi::Value SessionWrap::n_past(const Napi::CallbackInfo& info) {
    SessionCore& c = core(info.Env(), false);
    return Napi::Number::New(info.Env(), c.busy ? c.n_past : c.session->n_past());
}

Napi::Value SessionWrap::n_ctx(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), core(info.Env(), false).session->n_ctx());
}

Napi::Value SessionWrap::kv_bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(core(info.Env(), false).session->kv_bytes()));
}

Napi::Value SessionWrap::is_busy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), core_ && core_->busy); }

Napi::Value SessionWrap::is_disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !core_ || core_->disposed); }

}  // namespace moe::addon

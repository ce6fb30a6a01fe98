// The Node-API addon: the only N-API code. It exposes loadModel() -> Model -> Session over the
// engine, runs loading, evaluation and generation on worker threads (promises), streams
// generated text through a thread-safe queue, and turns every C++ exception into a JS Error
// whose `.code` is moe::Error::code. Types as JS sees them: src/engine/native.ts.
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "engine/chat.h"
#include "core/common.h"
#include "engine/generate.h"
#include "model/model.h"
#include "engine/reuse.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "core/threadpool.h"
#include "model/tokenizer.h"
#include "kernels/kernels.h"
#include "models/registry.h"

#ifndef MOE_ENGINE_VERSION
#define MOE_ENGINE_VERSION "0.0.0"
#endif

namespace {

// ============================================================== errors

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, code));
    return e;
}

[[noreturn]] void throw_error(Napi::Env env, const std::string& code, const std::string& message) {
    throw make_error(env, code, message);
}

// A wrongly typed argument: a TypeError, with code "bad_input" like every other input error.
Napi::TypeError type_error(Napi::Env env, const std::string& message) {
    Napi::TypeError e = Napi::TypeError::New(env, message);
    e.Set("code", Napi::String::New(env, "bad_input"));
    return e;
}

// An exception caught on a worker thread, kept until the JS thread can build the Error.
struct CaughtError {
    std::string code, message;
    bool set = false;
    void capture() {  // call inside a catch block
        set = true;
        try {
            throw;
        } catch (const moe::Error& e) {
            code = e.code;
            message = e.what();
        } catch (const std::bad_alloc&) {
            code = "out_of_memory";
            message = "Out of memory.";
        } catch (const std::exception& e) {
            code = "internal";
            message = std::string("Internal error: ") + e.what();
        } catch (...) {
            code = "internal";
            message = "Internal error (unknown exception).";
        }
    }
    Napi::Value value(Napi::Env env) const { return make_error(env, code, message).Value(); }
};

// Runs `body` on the JS thread; engine exceptions become JS exceptions with a code.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const Napi::Error&) {
        throw;
    } catch (...) {
        CaughtError c;
        c.capture();
        throw_error(env, c.code, c.message);
    }
}

// ============================================================== logging

std::atomic<int> g_log_level{static_cast<int>(moe::LogLevel::Warn)};  // 4: silent

bool parse_log_level(const std::string& s, int* out) {
    static const char* const names[] = {"debug", "info", "warn", "error", "silent"};
    for (int i = 0; i < 5; ++i)
        if (s == names[i]) {
            *out = i;
            return true;
        }
    return false;
}

// stdout is reserved for program output (and JSON-RPC later): engine logs go to stderr.
void log_to_stderr(moe::LogLevel level, const std::string& message) {
    if (static_cast<int>(level) < g_log_level.load(std::memory_order_relaxed)) return;
    static const char* const names[] = {"debug", "info", "warning", "error"};
    const int i = static_cast<int>(level);
    std::fprintf(stderr, "moe-engine %s: %s\n", (i >= 0 && i < 4) ? names[i] : "log", message.c_str());
}

// ============================================================== argument helpers

Napi::Object options_arg(const Napi::CallbackInfo& info, size_t i) {
    if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return Napi::Object::New(info.Env());
    if (!info[i].IsObject()) throw type_error(info.Env(), "Expected an options object.");
    return info[i].As<Napi::Object>();
}

bool has(const Napi::Object& o, const char* key) {
    if (!o.Has(key)) return false;
    Napi::Value v = o.Get(key);
    return !v.IsUndefined() && !v.IsNull();
}

double number_opt(const Napi::Object& o, const char* key, double def, double lo, double hi, bool integer) {
    if (!has(o, key)) return def;
    Napi::Value v = o.Get(key);
    if (!v.IsNumber()) throw_error(o.Env(), "bad_input", std::string("Option ") + key + " must be a number.");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < lo || d > hi || (integer && d != std::floor(d)))
        throw_error(o.Env(), "bad_input",
                    moe::strfmt("Option %s must be %s between %g and %g (got %g).", key, integer ? "an integer" : "a number",
                                lo, hi, d));
    return d;
}

bool bool_opt(const Napi::Object& o, const char* key, bool def) {
    if (!has(o, key)) return def;
    Napi::Value v = o.Get(key);
    if (!v.IsBoolean()) throw_error(o.Env(), "bad_input", std::string("Option ") + key + " must be a boolean.");
    return v.As<Napi::Boolean>().Value();
}

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
    if (info.Length() <= i || !info[i].IsString())
        throw type_error(info.Env(), std::string("Expected ") + what + " (a string).");
    return info[i].As<Napi::String>().Utf8Value();
}

// Token ids from an Int32Array, a Uint32Array or an array of integers.
std::vector<int32_t> tokens_from(Napi::Env env, const Napi::Value& v, const char* what) {
    std::vector<int32_t> out;
    if (v.IsTypedArray()) {
        Napi::TypedArray ta = v.As<Napi::TypedArray>();
        if (ta.TypedArrayType() == napi_int32_array) {
            Napi::Int32Array a = v.As<Napi::Int32Array>();
            out.assign(a.Data(), a.Data() + a.ElementLength());
            return out;
        }
        if (ta.TypedArrayType() == napi_uint32_array) {
            Napi::Uint32Array a = v.As<Napi::Uint32Array>();
            out.reserve(a.ElementLength());
            for (size_t i = 0; i < a.ElementLength(); ++i) {
                if (a[i] > 0x7fffffffu) throw_error(env, "bad_input", std::string(what) + " holds a token id out of range.");
                out.push_back(static_cast<int32_t>(a[i]));
            }
            return out;
        }
    } else if (v.IsArray()) {
        Napi::Array a = v.As<Napi::Array>();
        const uint32_t n = a.Length();
        out.reserve(n);
        for (uint32_t i = 0; i < n; ++i) {
            Napi::Value e = a.Get(i);
            double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
            if (!(d >= 0 && d <= 2147483647.0 && d == std::floor(d)))
                throw_error(env, "bad_input", moe::strfmt("%s[%u] is not a token id (a non-negative integer).", what, i));
            out.push_back(static_cast<int32_t>(d));
        }
        return out;
    }
    throw type_error(env, std::string("Expected ") + what + " as an Int32Array or an array of integers.");
}

Napi::Int32Array int32_array(Napi::Env env, const std::vector<int32_t>& v) {
    Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
    if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(int32_t));
    return a;
}

std::vector<moe::ChatMessage> messages_from(Napi::Env env, const Napi::Value& v) {
    if (!v.IsArray()) throw type_error(env, "Expected messages as an array of {role, content}.");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<moe::ChatMessage> out;
    for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value e = a.Get(i);
        if (!e.IsObject()) throw type_error(env, moe::strfmt("messages[%u] is not an object.", i));
        Napi::Object m = e.As<Napi::Object>();
        Napi::Value role = m.Get("role"), content = m.Get("content");
        if (!role.IsString() || !content.IsString())
            throw type_error(env, moe::strfmt("messages[%u] needs string role and content.", i));
        out.push_back({role.As<Napi::String>().Utf8Value(), content.As<Napi::String>().Utf8Value()});
    }
    return out;
}

// ============================================================== shared native state
//
// JS wrappers hold shared_ptrs to these cores; a running worker holds one too, so memory is
// freed when the last user is done. `busy` and `disposed` are touched on the JS thread only.

struct SessionCore {
    std::shared_ptr<moe::Model> model;
    std::unique_ptr<moe::Session> session;
    std::atomic<bool> cancel{false};
    bool busy = false;
    bool disposed = false;
    uint32_t n_past = 0;  // as of the last finished operation (readable while busy)

    void release() {
        session.reset();
        model.reset();
    }
    // After a worker finishes (JS thread).
    void finish() {
        busy = false;
        if (session) n_past = session->n_past();
        if (disposed) release();
    }
};

struct ModelCore {
    std::shared_ptr<moe::Model> model;
    // Worker threads shared by the sessions that ask for the same thread count as the first one.
    std::shared_ptr<moe::ThreadPool> pool;
    int pool_threads = -1;
    std::vector<std::weak_ptr<SessionCore>> sessions;
    bool disposed = false;
};

struct AddonData {
    Napi::FunctionReference model_ctor;
    Napi::FunctionReference session_ctor;
    Napi::FunctionReference sampler_ctor;
};

// A sampler's settings and random state; a step on a worker thread and sample() on the JS thread
// never use it at the same time (the mutex makes misuse safe anyway).
struct SamplerCore {
    moe::SamplingParams params;
    moe::Rng rng;
    moe::Candidates scratch;
    std::mutex mu;
    explicit SamplerCore(const moe::SamplingParams& p) : params(p), rng(p.seed) {}
    int32_t sample(const moe::Session& session) {
        std::lock_guard<std::mutex> lock(mu);
        const auto& logits = session.last_logits();
        return moe::sample_token(logits.data(), static_cast<int32_t>(logits.size()), session.tokens(), params, rng, scratch);
    }
};

// Reads SamplingOptions (see src/engine/native.ts) into `s`; no seed: a fresh random one.
void parse_sampling(const Napi::Object& o, moe::SamplingParams& s) {
    s.temperature = static_cast<float>(number_opt(o, "temperature", s.temperature, -1e9, 1e9, false));
    s.top_k = static_cast<int32_t>(number_opt(o, "topK", s.top_k, -1, 1e9, true));
    s.top_p = static_cast<float>(number_opt(o, "topP", s.top_p, 0, 1, false));
    s.min_p = static_cast<float>(number_opt(o, "minP", s.min_p, 0, 1, false));
    s.repeat_penalty = static_cast<float>(number_opt(o, "repeatPenalty", s.repeat_penalty, 0, 1e9, false));
    s.frequency_penalty = static_cast<float>(number_opt(o, "frequencyPenalty", s.frequency_penalty, -1e9, 1e9, false));
    s.presence_penalty = static_cast<float>(number_opt(o, "presencePenalty", s.presence_penalty, -1e9, 1e9, false));
    s.penalty_last_n = static_cast<int32_t>(number_opt(o, "penaltyLastN", s.penalty_last_n, -1, 1e9, true));
    if (has(o, "seed")) {
        s.seed = static_cast<uint64_t>(number_opt(o, "seed", 0, 0, 9007199254740991.0, true));
    } else {
        std::random_device rd;  // no seed given: a fresh one (readable back)
        s.seed = ((static_cast<uint64_t>(rd()) << 32) | rd()) & 0x1fffffffffffffull;
    }
}

class SamplerWrap : public Napi::ObjectWrap<SamplerWrap> {
 public:
    static Napi::Function define(Napi::Env env) {
        return DefineClass(env, "Sampler", {InstanceAccessor<&SamplerWrap::seed>("seed")});
    }
    explicit SamplerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SamplerWrap>(info) {}
    void attach(std::shared_ptr<SamplerCore> c) { core_ = std::move(c); }
    const std::shared_ptr<SamplerCore>& core() const { return core_; }

    // The sampler behind a JS value, or a TypeError.
    static std::shared_ptr<SamplerCore> from(Napi::Env env, const Napi::Value& v) {
        auto* data = env.GetInstanceData<AddonData>();
        if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(data->sampler_ctor.Value()))
            throw type_error(env, "Expected a Sampler made by createSampler().");
        SamplerWrap* w = SamplerWrap::Unwrap(v.As<Napi::Object>());
        if (!w->core_) throw type_error(env, "Expected a Sampler made by createSampler().");
        return w->core_;
    }

 private:
    Napi::Value seed(const Napi::CallbackInfo& info) {
        return Napi::Number::New(info.Env(), core_ ? static_cast<double>(core_->params.seed) : 0.0);
    }
    std::shared_ptr<SamplerCore> core_;
};

// ============================================================== Model

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
    static Napi::Function define(Napi::Env env) {
        return DefineClass(env, "Model",
                           {
                               InstanceMethod<&ModelWrap::info>("info"),
                               InstanceMethod<&ModelWrap::tokenize>("tokenize"),
                               InstanceMethod<&ModelWrap::detokenize>("detokenize"),
                               InstanceMethod<&ModelWrap::token_id>("tokenId"),
                               InstanceMethod<&ModelWrap::is_eog>("isEog"),
                               InstanceMethod<&ModelWrap::format_chat>("formatChat"),
                               InstanceMethod<&ModelWrap::create_session>("createSession"),
                               InstanceMethod<&ModelWrap::dispose>("dispose"),
                               InstanceAccessor<&ModelWrap::n_vocab>("nVocab"),
                               InstanceAccessor<&ModelWrap::n_ctx_train>("nCtxTrain"),
                               InstanceAccessor<&ModelWrap::is_disposed>("disposed"),
                           });
    }
    explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}
    void attach(std::shared_ptr<moe::Model> m) {
        core_ = std::make_shared<ModelCore>();
        core_->model = std::move(m);
    }

 private:
    moe::Model& model(Napi::Env env) {
        if (!core_) throw_error(env, "bad_state", "This Model was not made by loadModel().");
        if (core_->disposed || !core_->model) throw_error(env, "disposed", "The model was disposed; load it again.");
        return *core_->model;
    }

    Napi::Value info(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        const std::string json = guarded(env, [&] { return model(env).info_json(); });
        Napi::Object JSON = env.Global().Get("JSON").As<Napi::Object>();
        return JSON.Get("parse").As<Napi::Function>().Call(JSON, {Napi::String::New(env, json)});
    }

    Napi::Value tokenize(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        const std::string text = string_arg(info, 0, "text");
        const bool special = bool_opt(options_arg(info, 1), "special", false);
        auto ids = guarded(env, [&] { return model(env).tokenizer().encode(text, special); });
        return int32_array(env, ids);
    }

    Napi::Value detokenize(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (info.Length() < 1) throw type_error(env, "Expected token ids.");
        auto ids = tokens_from(env, info[0], "ids");
        const bool special = bool_opt(options_arg(info, 1), "special", true);
        moe::Model& m = model(env);
        const auto n_vocab = static_cast<int32_t>(m.tokenizer().n_vocab());
        for (int32_t id : ids)
            if (id < 0 || id >= n_vocab)
                throw_error(env, "bad_input", moe::strfmt("Token id %d is out of range (vocabulary size %d).", id, n_vocab));
        auto text = guarded(env, [&] { return m.tokenizer().decode(ids, special); });
        return Napi::String::New(env, text);
    }

    Napi::Value token_id(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        const std::string text = string_arg(info, 0, "token text");
        return Napi::Number::New(env, guarded(env, [&] { return model(env).tokenizer().token_id(text); }));
    }

    Napi::Value is_eog(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (info.Length() < 1 || !info[0].IsNumber()) throw type_error(env, "Expected a token id.");
        const int32_t id = info[0].As<Napi::Number>().Int32Value();
        return Napi::Boolean::New(env, guarded(env, [&] { return model(env).tokenizer().is_eog(id); }));
    }

    Napi::Value format_chat(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        if (info.Length() < 1) throw type_error(env, "Expected messages.");
        auto messages = messages_from(env, info[0]);
        const bool gen = bool_opt(options_arg(info, 1), "addGenerationPrompt", true);
        auto ids = guarded(env, [&] { return moe::format_chat(model(env), messages, gen); });
        return int32_array(env, ids);
    }

    Napi::Value create_session(const Napi::CallbackInfo& info);

    Napi::Value dispose(const Napi::CallbackInfo& info) {
        if (!core_ || core_->disposed) return info.Env().Undefined();
        core_->disposed = true;
        for (auto& w : core_->sessions)
            if (auto s = w.lock()) {
                s->disposed = true;
                s->cancel = true;
                if (!s->busy) s->release();  // a busy one is released when its worker ends
            }
        core_->sessions.clear();
        core_->model.reset();
        return info.Env().Undefined();
    }

    Napi::Value n_vocab(const Napi::CallbackInfo& info) {
        return Napi::Number::New(info.Env(), model(info.Env()).hparams().n_vocab);
    }
    Napi::Value n_ctx_train(const Napi::CallbackInfo& info) {
        return Napi::Number::New(info.Env(), model(info.Env()).hparams().n_ctx_train);
    }
    Napi::Value is_disposed(const Napi::CallbackInfo& info) {
        return Napi::Boolean::New(info.Env(), !core_ || core_->disposed);
    }

    std::shared_ptr<ModelCore> core_;
};

// ============================================================== Session workers

// A session operation: run() on a worker thread, then result() on the JS thread.
class TaskWorker : public Napi::AsyncWorker {
 public:
    TaskWorker(Napi::Env env, const char* name, std::shared_ptr<SessionCore> core, Napi::Object self,
               std::function<void()> run, std::function<Napi::Value(Napi::Env)> result)
        : Napi::AsyncWorker(env, name),
          deferred_(Napi::Promise::Deferred::New(env)),
          core_(std::move(core)),
          self_(Napi::Persistent(self)),
          run_(std::move(run)),
          result_(std::move(result)) {}
    Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
    void Execute() override {
        try {
            run_();
        } catch (...) {
            error_.capture();
        }
    }
    void OnOK() override {
        Napi::Env env = Env();
        core_->finish();
        if (error_.set) {
            deferred_.Reject(error_.value(env));
            return;
        }
        try {
            deferred_.Resolve(result_(env));
        } catch (const Napi::Error& e) {
            deferred_.Reject(e.Value());
        }
    }
    void OnError(const Napi::Error& e) override {
        core_->finish();
        deferred_.Reject(e.Value());
    }

 private:
    Napi::Promise::Deferred deferred_;
    std::shared_ptr<SessionCore> core_;
    Napi::ObjectReference self_;  // keeps the JS Session alive while we run
    std::function<void()> run_;
    std::function<Napi::Value(Napi::Env)> result_;
    CaughtError error_;
};

struct TokenEvent {
    std::string text;
    int32_t id = -1;
};

class GenerateWorker : public Napi::AsyncProgressQueueWorker<TokenEvent> {
 public:
    // The prompt is either tokens, text (tokenized here with `special`), or chat messages.
    struct Request {
        std::vector<int32_t> tokens;
        std::string text;
        bool has_text = false;
        bool special = false;
        std::vector<moe::ChatMessage> messages;
        bool has_messages = false;
        moe::GenerateParams params;
    };

    GenerateWorker(Napi::Env env, std::shared_ptr<SessionCore> core, Napi::Object self, Request req,
                   Napi::Function on_token)
        : Napi::AsyncProgressQueueWorker<TokenEvent>(env, "moe.generate"),
          deferred_(Napi::Promise::Deferred::New(env)),
          core_(std::move(core)),
          self_(Napi::Persistent(self)),
          req_(std::move(req)) {
        if (!on_token.IsEmpty()) on_token_ = Napi::Persistent(on_token);
    }
    Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
    void Execute(const ExecutionProgress& progress) override {
        try {
            const moe::Model& model = *core_->model;
            std::vector<int32_t> prompt;
            if (req_.has_messages) prompt = moe::format_chat(model, req_.messages, true);
            else if (req_.has_text) prompt = model.tokenizer().encode(req_.text, req_.special);
            else prompt = std::move(req_.tokens);
            const bool stream = !on_token_.IsEmpty();
            result_ = moe::generate(
                *core_->session, prompt, req_.params,
                [&](const std::string& text, int32_t id) {
                    if (!stream) return;
                    TokenEvent ev{text, id};
                    progress.Send(&ev, 1);
                },
                &core_->cancel);
        } catch (...) {
            error_.capture();
        }
    }

    void OnProgress(const TokenEvent* events, size_t count) override {
        if (on_token_.IsEmpty() || !js_error_.IsEmpty()) return;
        Napi::Env env = Env();
        for (size_t i = 0; i < count; ++i) {
            try {
                on_token_.Call({Napi::String::New(env, events[i].text), Napi::Number::New(env, events[i].id)});
            } catch (const Napi::Error& e) {
                // The callback threw: stop generating and reject with its error.
                js_error_ = Napi::Reference<Napi::Value>::New(e.Value(), 1);
                core_->cancel = true;
                return;
            }
        }
    }

    void OnOK() override {
        Napi::Env env = Env();
        core_->finish();
        if (!js_error_.IsEmpty()) {
            deferred_.Reject(js_error_.Value());
            return;
        }
        if (error_.set) {
            deferred_.Reject(error_.value(env));
            return;
        }
        const moe::GenerateTimings& t = result_.timings;
        Napi::Object timings = Napi::Object::New(env);
        timings.Set("nPrompt", t.n_prompt);
        timings.Set("nGenerated", t.n_generated);
        timings.Set("promptMs", t.prompt_ms);
        timings.Set("generateMs", t.generate_ms);
        timings.Set("promptTokensPerS", t.prompt_tokens_per_s);
        timings.Set("tokensPerS", t.tokens_per_s);
        Napi::Object out = Napi::Object::New(env);
        out.Set("tokens", int32_array(env, result_.tokens));
        out.Set("text", Napi::String::New(env, result_.text));
        out.Set("stopReason", moe::stop_reason_name(result_.stop));
        out.Set("seed", Napi::Number::New(env, static_cast<double>(req_.params.sampling.seed)));
        out.Set("timings", timings);
        deferred_.Resolve(out);
    }
    void OnError(const Napi::Error& e) override {
        core_->finish();
        deferred_.Reject(e.Value());
    }

 private:
    Napi::Promise::Deferred deferred_;
    std::shared_ptr<SessionCore> core_;
    Napi::ObjectReference self_;
    Request req_;
    Napi::FunctionReference on_token_;
    Napi::Reference<Napi::Value> js_error_;
    moe::GenerateResult result_;
    CaughtError error_;
};

// ============================================================== Session

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
    static Napi::Function define(Napi::Env env) {
        return DefineClass(env, "Session",
                           {
                               InstanceMethod<&SessionWrap::eval>("eval"),
                               InstanceMethod<&SessionWrap::prefill>("prefill"),
                               InstanceMethod<&SessionWrap::step>("step"),
                               InstanceMethod<&SessionWrap::sample>("sample"),
                               InstanceMethod<&SessionWrap::top_tokens>("topTokens"),
                               InstanceMethod<&SessionWrap::last_logits>("lastLogits"),
                               InstanceMethod<&SessionWrap::generate>("generate"),
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
    explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {}
    void attach(std::shared_ptr<SessionCore> core) { core_ = std::move(core); }

 private:
    // The session, checked usable; `idle` also requires no operation in flight.
    SessionCore& core(Napi::Env env, bool idle) {
        if (!core_) throw_error(env, "bad_state", "This Session was not made by Model.createSession().");
        if (core_->disposed || !core_->session)
            throw_error(env, "disposed", "The session (or its model) was disposed; create a new session.");
        if (idle && core_->busy)
            throw_error(env, "busy", "The session is busy with another eval or generate; await it or cancel() it first.");
        return *core_;
    }

    // Promise-returning methods report every error through the promise.
    template <typename F>
    Napi::Value as_promise(Napi::Env env, F&& start) {
        try {
            return start();
        } catch (const Napi::Error& e) {
            auto d = Napi::Promise::Deferred::New(env);
            d.Reject(e.Value());
            return d.Promise();
        }
    }

    Napi::Value eval(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        return as_promise(env, [&]() -> Napi::Value {
            core(env, true);
            if (info.Length() < 1) throw type_error(env, "Expected tokens.");
            auto tokens = std::make_shared<std::vector<int32_t>>(tokens_from(env, info[0], "tokens"));
            Napi::Object opts = options_arg(info, 1);
            moe::LogitsMode mode = moe::LogitsMode::Last;
            if (has(opts, "logits")) {
                Napi::Value v = opts.Get("logits");
                const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
                if (s == "none") mode = moe::LogitsMode::None;
                else if (s == "last") mode = moe::LogitsMode::Last;
                else if (s == "all") mode = moe::LogitsMode::All;
                else throw_error(env, "bad_input", "Option logits must be 'none', 'last' or 'all'.");
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

    // Queues `run` as a session operation whose promise resolves with `result`.
    Napi::Value start_task(Napi::Env env, const Napi::CallbackInfo& info, const char* name, std::function<void()> run,
                           std::function<Napi::Value(Napi::Env)> result) {
        SessionCore& c = core(env, true);
        auto* w = new TaskWorker(env, name, core_, info.This().As<Napi::Object>(), std::move(run), std::move(result));
        Napi::Promise p = w->promise();
        c.cancel = false;
        c.busy = true;
        w->Queue();
        return p;
    }

    Napi::Value prefill(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        return as_promise(env, [&]() -> Napi::Value {
            core(env, true);
            if (info.Length() < 1) throw type_error(env, "Expected tokens.");
            auto tokens = std::make_shared<std::vector<int32_t>>(tokens_from(env, info[0], "tokens"));
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

    Napi::Value step(const Napi::CallbackInfo& info) {
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

    const std::vector<float>& logits_or_throw(Napi::Env env, SessionCore& c) {
        if (!c.session->has_logits())
            throw_error(env, "bad_state", "There are no logits: evaluate or prefill something first.");
        return c.session->last_logits();
    }

    Napi::Value sample(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        SessionCore& c = core(env, true);
        if (info.Length() < 1) throw type_error(env, "Expected a Sampler made by createSampler().");
        auto sampler = SamplerWrap::from(env, info[0]);
        logits_or_throw(env, c);
        return Napi::Number::New(env, guarded(env, [&] { return sampler->sample(*c.session); }));
    }

    Napi::Value top_tokens(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        SessionCore& c = core(env, true);
        const double k = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
        if (!(k >= 1 && k <= 1e6 && k == std::floor(k))) throw_error(env, "bad_input", "topTokens() needs a count of at least 1.");
        const std::vector<float>& logits = logits_or_throw(env, c);
        const size_t n = std::min(logits.size(), static_cast<size_t>(k));
        std::vector<int32_t> ids(logits.size());
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
        std::partial_sort(ids.begin(), ids.begin() + static_cast<long>(n), ids.end(), [&](int32_t a, int32_t b) {
            return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
        });
        ids.resize(n);
        Napi::Float32Array vals = Napi::Float32Array::New(env, n);
        for (size_t i = 0; i < n; ++i) vals[i] = logits[ids[i]];
        Napi::Object out = Napi::Object::New(env);
        out.Set("ids", int32_array(env, ids));
        out.Set("logits", vals);
        return out;
    }

    Napi::Value last_logits(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        SessionCore& c = core(env, true);
        if (!c.session->has_logits()) return env.Null();
        const std::vector<float>& logits = c.session->last_logits();
        Napi::Float32Array out = Napi::Float32Array::New(env, logits.size());
        std::memcpy(out.Data(), logits.data(), logits.size() * sizeof(float));
        return out;
    }

    Napi::Value generate(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        return as_promise(env, [&]() -> Napi::Value {
            SessionCore& c = core(env, true);
            Napi::Object o = options_arg(info, 0);
            Napi::Function on_token;
            if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
                if (!info[1].IsFunction()) throw type_error(env, "onToken must be a function.");
                on_token = info[1].As<Napi::Function>();
            }
            GenerateWorker::Request req;
            const int n_set = int(has(o, "prompt")) + int(has(o, "messages"));
            if (n_set != 1) throw_error(env, "bad_input", "Give exactly one of prompt (text or token ids) and messages.");
            if (has(o, "messages")) {
                req.messages = messages_from(env, o.Get("messages"));
                req.has_messages = true;
            } else if (o.Get("prompt").IsString()) {
                req.text = o.Get("prompt").As<Napi::String>().Utf8Value();
                req.has_text = true;
                req.special = bool_opt(o, "special", false);
            } else {
                req.tokens = tokens_from(env, o.Get("prompt"), "prompt");
            }
            moe::GenerateParams& p = req.params;
            moe::SamplingParams& s = p.sampling;
            p.max_tokens = static_cast<uint32_t>(number_opt(o, "maxTokens", p.max_tokens, 0, 1e9, true));
            p.stop_on_eog = bool_opt(o, "stopOnEog", p.stop_on_eog);
            parse_sampling(o, s);
            auto* w = new GenerateWorker(env, core_, info.This().As<Napi::Object>(), std::move(req), on_token);
            Napi::Promise promise = w->promise();
            c.cancel = false;
            c.busy = true;
            w->Queue();
            return promise;
        });
    }

    Napi::Value cancel(const Napi::CallbackInfo& info) {
        if (core_) core_->cancel = true;
        return info.Env().Undefined();
    }

    Napi::Value truncate(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        SessionCore& c = core(env, true);
        const double n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
        if (!(n >= 0 && n == std::floor(n) && n <= 4294967295.0))
            throw_error(env, "bad_input", "truncate() needs a non-negative integer position.");
        const uint32_t keep = static_cast<uint32_t>(n);
        guarded(env, [&] {
            if (keep < c.session->n_past()) c.session->truncate(keep);
            c.n_past = c.session->n_past();
        });
        return env.Undefined();
    }

    Napi::Value can_truncate(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        SessionCore& c = core(env, true);
        const double n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
        if (!(n >= 0 && n == std::floor(n) && n <= 4294967295.0))
            throw_error(env, "bad_input", "canTruncate() needs a non-negative integer position.");
        return Napi::Boolean::New(env, guarded(env, [&] { return c.session->can_truncate(static_cast<uint32_t>(n)); }));
    }

    Napi::Value clear(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        SessionCore& c = core(env, true);
        guarded(env, [&] { c.session->clear(); });
        c.n_past = 0;
        return env.Undefined();
    }

    Napi::Value tokens(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        SessionCore& c = core(env, true);
        return int32_array(env, c.session->tokens());
    }

    Napi::Value expert_counts(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        SessionCore& c = core(env, true);
        const auto& counts = c.session->expert_counts();
        Napi::Float64Array a = Napi::Float64Array::New(env, counts.size());
        for (size_t i = 0; i < counts.size(); ++i) a[i] = static_cast<double>(counts[i]);
        return a;
    }

    Napi::Value reglu_stats(const Napi::CallbackInfo& info) {
        Napi::Env env = info.Env();
        SessionCore& c = core(env, true);
        const moe::Session::ReluStats st = c.session->reglu_stats();
        Napi::Object o = Napi::Object::New(env);
        o.Set("zero", Napi::Number::New(env, static_cast<double>(st.zero)));
        o.Set("total", Napi::Number::New(env, static_cast<double>(st.total)));
        return o;
    }

    Napi::Value dispose(const Napi::CallbackInfo& info) {
        if (core_ && !core_->disposed) {
            core_->disposed = true;
            core_->cancel = true;
            if (!core_->busy) core_->release();  // else the worker releases it when it ends
        }
        return info.Env().Undefined();
    }

    Napi::Value n_past(const Napi::CallbackInfo& info) {
        SessionCore& c = core(info.Env(), false);
        return Napi::Number::New(info.Env(), c.busy ? c.n_past : c.session->n_past());
    }
    Napi::Value n_ctx(const Napi::CallbackInfo& info) {
        return Napi::Number::New(info.Env(), core(info.Env(), false).session->n_ctx());
    }
    Napi::Value kv_bytes(const Napi::CallbackInfo& info) {
        return Napi::Number::New(info.Env(), static_cast<double>(core(info.Env(), false).session->kv_bytes()));
    }
    Napi::Value is_busy(const Napi::CallbackInfo& info) {
        return Napi::Boolean::New(info.Env(), core_ && core_->busy);
    }
    Napi::Value is_disposed(const Napi::CallbackInfo& info) {
        return Napi::Boolean::New(info.Env(), !core_ || core_->disposed);
    }

    std::shared_ptr<SessionCore> core_;
};

Napi::Value ModelWrap::create_session(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    moe::Model& m = model(env);
    Napi::Object o = options_arg(info, 0);
    moe::SessionParams sp;
    sp.n_ctx = static_cast<uint32_t>(number_opt(o, "nCtx", sp.n_ctx, 1, 16777216, true));
    sp.n_batch = static_cast<uint32_t>(number_opt(o, "nBatch", sp.n_batch, 1, 65536, true));
    sp.n_threads = static_cast<int>(number_opt(o, "threads", sp.n_threads, 0, 1024, true));
    if (!core_->pool) {
        core_->pool = guarded(env, [&] { return std::make_shared<moe::ThreadPool>(sp.n_threads); });
        core_->pool_threads = sp.n_threads;
    }
    if (sp.n_threads == core_->pool_threads) sp.pool = core_->pool;
    auto core = std::make_shared<SessionCore>();
    core->model = core_->model;
    core->session = guarded(env, [&] { return std::make_unique<moe::Session>(m, sp); });
    core_->sessions.push_back(core);
    // Forget sessions that are gone, so the list does not grow without bound.
    auto& list = core_->sessions;
    for (size_t i = 0; i < list.size();)
        if (list[i].expired()) list.erase(list.begin() + static_cast<long>(i));
        else ++i;

    auto* data = env.GetInstanceData<AddonData>();
    Napi::Object obj = data->session_ctor.New({});
    SessionWrap::Unwrap(obj)->attach(std::move(core));
    return obj;
}

// ============================================================== module functions

class LoadWorker : public Napi::AsyncWorker {
 public:
    LoadWorker(Napi::Env env, std::string path, moe::LoadOptions opts)
        : Napi::AsyncWorker(env, "moe.loadModel"),
          deferred_(Napi::Promise::Deferred::New(env)),
          path_(std::move(path)),
          opts_(opts) {}
    Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
    void Execute() override {
        try {
            model_ = std::shared_ptr<moe::Model>(moe::Model::load(path_, opts_));
        } catch (...) {
            error_.capture();
        }
    }
    void OnOK() override {
        Napi::Env env = Env();
        if (error_.set) {
            deferred_.Reject(error_.value(env));
            return;
        }
        try {
            auto* data = env.GetInstanceData<AddonData>();
            Napi::Object obj = data->model_ctor.New({});
            ModelWrap::Unwrap(obj)->attach(std::move(model_));
            deferred_.Resolve(obj);
        } catch (const Napi::Error& e) {
            deferred_.Reject(e.Value());
        }
    }
    void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
    Napi::Promise::Deferred deferred_;
    std::string path_;
    moe::LoadOptions opts_;
    std::shared_ptr<moe::Model> model_;
    CaughtError error_;
};

Napi::Value load_model(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    try {
        const std::string path = string_arg(info, 0, "a model path");
        moe::LoadOptions opts;
        opts.vocab_only = bool_opt(options_arg(info, 1), "vocabOnly", false);
        opts.repack = bool_opt(options_arg(info, 1), "repack", true);
        auto* w = new LoadWorker(env, path, opts);
        Napi::Promise p = w->promise();
        w->Queue();
        return p;
    } catch (const Napi::Error& e) {
        auto d = Napi::Promise::Deferred::New(env);
        d.Reject(e.Value());
        return d.Promise();
    }
}

Napi::Value engine_info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
        using namespace moe::kernels;
        Napi::Object out = Napi::Object::New(env);
        out.Set("version", MOE_ENGINE_VERSION);
        out.Set("isa", isa_name(active().isa));
        Napi::Array supported = Napi::Array::New(env), compiled = Napi::Array::New(env);
        for (int i = 0; i < kIsaCount; ++i) {
            const Isa isa = static_cast<Isa>(i);
            if (!compiled_set(isa)) continue;
            compiled.Set(compiled.Length(), isa_name(isa));
            if (cpu_supports(isa)) supported.Set(supported.Length(), isa_name(isa));
        }
        out.Set("isas", supported);
        out.Set("compiledIsas", compiled);
        Napi::Array archs = Napi::Array::New(env), types = Napi::Array::New(env);
        for (const moe::ArchitectureEntry* a = moe::architectures(); a->name; ++a) archs.Set(archs.Length(), a->name);
        for (uint32_t t = 0; t < kTypeCount; ++t)
            if (moe::type_traits(t).supported) types.Set(types.Length(), moe::type_traits(t).name);
        out.Set("architectures", archs);
        out.Set("weightTypes", types);
        return out;
    });
}

// setIsa(name): selects the kernel set used by sessions created afterwards (tests compare kernel
// sets with each other; MOE_FORCE_ISA does the same for a whole process). Returns the set in use.
Napi::Value set_isa(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
        using namespace moe::kernels;
        Isa isa;
        if (info.Length() < 1 || !info[0].IsString() || !parse_isa(info[0].As<Napi::String>().Utf8Value().c_str(), &isa))
            throw moe::Error("bad_input", "setIsa() takes 'scalar', 'avx2', 'avx512' or 'avx512vnni'.");
        if (!set_active(isa))
            throw moe::Error("bad_input", moe::strfmt("the kernel set '%s' is not supported by this CPU or build", isa_name(isa)));
        return Napi::String::New(env, isa_name(active().isa));
    });
}

Napi::Value create_sampler(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    moe::SamplingParams p;
    parse_sampling(options_arg(info, 0), p);
    auto* data = env.GetInstanceData<AddonData>();
    Napi::Object obj = data->sampler_ctor.New({});
    SamplerWrap::Unwrap(obj)->attach(std::make_shared<SamplerCore>(p));
    return obj;
}

Napi::Value set_log_level(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int level = 0;
    if (info.Length() < 1 || !info[0].IsString() || !parse_log_level(info[0].As<Napi::String>().Utf8Value(), &level))
        throw_error(env, "bad_input", "setLogLevel() takes 'debug', 'info', 'warn', 'error' or 'silent'.");
    g_log_level = level;
    return env.Undefined();
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
    if (const char* s = std::getenv("MOE_LOG_LEVEL")) {
        int level = 0;
        if (parse_log_level(s, &level)) g_log_level = level;
    }
    moe::set_log_sink(log_to_stderr);

    auto* data = new AddonData();
    Napi::Function model_ctor = ModelWrap::define(env);
    Napi::Function session_ctor = SessionWrap::define(env);
    data->model_ctor = Napi::Persistent(model_ctor);
    data->session_ctor = Napi::Persistent(session_ctor);
    Napi::Function sampler_ctor = SamplerWrap::define(env);
    data->sampler_ctor = Napi::Persistent(sampler_ctor);
    env.SetInstanceData<AddonData>(data);

    exports.Set("Model", model_ctor);
    exports.Set("Session", session_ctor);
    exports.Set("loadModel", Napi::Function::New<load_model>(env, "loadModel"));
    exports.Set("engineInfo", Napi::Function::New<engine_info>(env, "engineInfo"));
    exports.Set("setLogLevel", Napi::Function::New<set_log_level>(env, "setLogLevel"));
    exports.Set("setIsa", Napi::Function::New<set_isa>(env, "setIsa"));
    exports.Set("createSampler", Napi::Function::New<create_sampler>(env, "createSampler"));
    return exports;
}

}  // namespace

NODE_API_MODULE(moe_engine, init)

// Model and loadModel() (see model_wrap.h).
#include "addon/model_wrap.h"

#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/detokenizer_wrap.h"
#include "addon/session_wrap.h"
#include "addon/workers.h"
#include "core/common.h"
#include "engine/chat.h"
#include "model/detokenizer.h"

namespace moe::addon {

moe::Model& usable_model(Napi::Env env, const std::shared_ptr<ModelCore>& core) {
    if (!core) throw_error(env, "bad_state", "This Model was not made by loadModel().");
    if (core->disposed || !core->model) throw_error(env, "disposed", "The model was disposed; load it again.");
    return *core->model;
}

void check_token_id(Napi::Env env, const moe::Model& model, int32_t id) {
    const auto n_vocab = static_cast<int32_t>(model.tokenizer().n_vocab());
    if (id < 0 || id >= n_vocab)
        throw_error(env, "bad_input", moe::strfmt("Token id %d is out of range (vocabulary size %d).", id, n_vocab));
}

Napi::Function ModelWrap::define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {
                           InstanceMethod<&ModelWrap::info>("info"),
                           InstanceMethod<&ModelWrap::expert_cache_stats>("expertCacheStats"),
                           InstanceMethod<&ModelWrap::tokenize>("tokenize"),
                           InstanceMethod<&ModelWrap::detokenize>("detokenize"),
                           InstanceMethod<&ModelWrap::token_id>("tokenId"),
                           InstanceMethod<&ModelWrap::is_eog>("isEog"),
                           InstanceMethod<&ModelWrap::format_chat>("formatChat"),
                           InstanceMethod<&ModelWrap::create_session>("createSession"),
                           InstanceMethod<&ModelWrap::create_detokenizer>("createDetokenizer"),
                           InstanceMethod<&ModelWrap::dispose>("dispose"),
                           InstanceAccessor<&ModelWrap::n_vocab>("nVocab"),
                           InstanceAccessor<&ModelWrap::n_ctx_train>("nCtxTrain"),
                           InstanceAccessor<&ModelWrap::is_disposed>("disposed"),
                       });
}

Napi::Object ModelWrap::wrap(Napi::Env env, std::shared_ptr<moe::Model> model) {
    Napi::Object obj = addon_data(env).model_ctor.New({});
    auto core = std::make_shared<ModelCore>();
    core->model = std::move(model);
    ModelWrap::Unwrap(obj)->core_ = std::move(core);
    return obj;
}

Napi::Value ModelWrap::info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string json = guarded(env, [&] { return usable_model(env, core_).info_json(); });
    Napi::Object JSON = env.Global().Get("JSON").As<Napi::Object>();
    return JSON.Get("parse").As<Napi::Function>().Call(JSON, {Napi::String::New(env, json)});
}

Napi::Value ModelWrap::expert_cache_stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string json = guarded(env, [&] { return usable_model(env, core_).expert_cache_json(); });
    Napi::Object JSON = env.Global().Get("JSON").As<Napi::Object>();
    return JSON.Get("parse").As<Napi::Function>().Call(JSON, {Napi::String::New(env, json)});
}

Napi::Value ModelWrap::tokenize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string text = string_arg(info, 0, "text");
    const bool special = bool_opt(options_arg(info, 1), "special", false);
    auto ids = guarded(env, [&] { return usable_model(env, core_).tokenizer().encode(text, special); });
    return int32_array(env, ids);
}

Napi::Value ModelWrap::detokenize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1) throw type_error(env, "Expected token ids.");
    auto ids = tokens_from(env, info[0], "ids");
    const bool special = bool_opt(options_arg(info, 1), "special", true);
    moe::Model& m = usable_model(env, core_);
    for (int32_t id : ids) check_token_id(env, m, id);
    auto text = guarded(env, [&] { return m.tokenizer().decode(ids, special); });
    return Napi::String::New(env, text);
}

Napi::Value ModelWrap::token_id(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string text = string_arg(info, 0, "token text");
    return Napi::Number::New(env, guarded(env, [&] { return usable_model(env, core_).tokenizer().token_id(text); }));
}

Napi::Value ModelWrap::is_eog(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw type_error(env, "Expected a token id.");
    const int32_t id = info[0].As<Napi::Number>().Int32Value();
    return Napi::Boolean::New(env, guarded(env, [&] { return usable_model(env, core_).tokenizer().is_eog(id); }));
}

Napi::Value ModelWrap::format_chat(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1) throw type_error(env, "Expected messages.");
    auto messages = messages_from(env, info[0]);
    const bool gen = bool_opt(options_arg(info, 1), "addGenerationPrompt", true);
    auto ids = guarded(env, [&] { return moe::format_chat(usable_model(env, core_), messages, gen); });
    return int32_array(env, ids);
}

Napi::Value ModelWrap::create_session(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    moe::Model& m = usable_model(env, core_);
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
        if (list[i].expired())
            list.erase(list.begin() + static_cast<long>(i));
        else
            ++i;
    return SessionWrap::wrap(env, std::move(core));
}

Napi::Value ModelWrap::create_detokenizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    moe::Model& m = usable_model(env, core_);
    const bool special = bool_opt(options_arg(info, 0), "special", true);
    return DetokenizerWrap::wrap(env, core_, std::make_unique<moe::Detokenizer>(m.tokenizer(), special));
}

Napi::Value ModelWrap::dispose(const Napi::CallbackInfo& info) {
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

Napi::Value ModelWrap::n_vocab(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), usable_model(info.Env(), core_).hparams().n_vocab);
}

Napi::Value ModelWrap::n_ctx_train(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), usable_model(info.Env(), core_).hparams().n_ctx_train);
}

Napi::Value ModelWrap::is_disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !core_ || core_->disposed); }

Napi::Value load_model(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return as_promise(env, [&]() -> Napi::Value {
        const std::string path = string_arg(info, 0, "a model path");
        moe::LoadOptions opts;
        opts.vocab_only = bool_opt(options_arg(info, 1), "vocabOnly", false);
        opts.repack = bool_opt(options_arg(info, 1), "repack", true);
        opts.layout_dir = string_opt(options_arg(info, 1), "layoutDir", "");
        opts.memory_budget =
            static_cast<uint64_t>(number_opt(options_arg(info, 1), "memoryBudgetMB", 0, 0, 1 << 24, true)) * (uint64_t{1} << 20);
        opts.memory_reserve =
            static_cast<uint64_t>(number_opt(options_arg(info, 1), "memoryReserveMB", 0, 0, 1 << 24, true)) * (uint64_t{1} << 20);
        opts.kv_limit = static_cast<uint64_t>(number_opt(options_arg(info, 1), "kvLimitMB", 0, 0, 1 << 24, true)) * (uint64_t{1} << 20);
        Napi::Function on_progress;
        if (has(options_arg(info, 1), "onLayoutProgress")) {
            Napi::Value f = options_arg(info, 1).Get("onLayoutProgress");
            if (!f.IsFunction()) throw_error(env, "bad_input", "Option onLayoutProgress must be a function.");
            on_progress = f.As<Napi::Function>();
        }
        Napi::Object signal;
        if (has(options_arg(info, 1), "signal")) {
            Napi::Value v = options_arg(info, 1).Get("signal");
            if (!v.IsObject() || !v.As<Napi::Object>().Get("addEventListener").IsFunction() ||
                !v.As<Napi::Object>().Get("removeEventListener").IsFunction())
                throw_error(env, "bad_input", "Option signal must be an AbortSignal.");
            signal = v.As<Napi::Object>();
            if (signal.Get("aborted").ToBoolean()) throw_error(env, "cancelled", "The model load was cancelled before it started.");
        }
        auto* w = new LoadWorker(env, path, opts, on_progress, signal);
        Napi::Promise p = w->promise();
        w->Queue();
        return p;
    });
}

}  // namespace moe::addon

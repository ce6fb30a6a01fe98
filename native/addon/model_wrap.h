// Model (loadModel()): tokenizer, chat formatting, sessions and detokenizers over a loaded model.
#pragma once
#include <napi.h>

#include <memory>

#include "addon/state.h"

namespace moe::addon {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
    static Napi::Function define(Napi::Env env);
    explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}
    // A new JS Model for a loaded model.
    static Napi::Object wrap(Napi::Env env, std::shared_ptr<moe::Model> model);

 private:
    Napi::Value info(const Napi::CallbackInfo& info);
    Napi::Value expert_cache_stats(const Napi::CallbackInfo& info);
    Napi::Value tokenize(const Napi::CallbackInfo& info);
    Napi::Value detokenize(const Napi::CallbackInfo& info);
    Napi::Value token_id(const Napi::CallbackInfo& info);
    Napi::Value is_eog(const Napi::CallbackInfo& info);
    Napi::Value format_chat(const Napi::CallbackInfo& info);
    Napi::Value create_session(const Napi::CallbackInfo& info);
    Napi::Value create_detokenizer(const Napi::CallbackInfo& info);
    Napi::Value dispose(const Napi::CallbackInfo& info);
    Napi::Value n_vocab(const Napi::CallbackInfo& info);
    Napi::Value n_ctx_train(const Napi::CallbackInfo& info);
    Napi::Value is_disposed(const Napi::CallbackInfo& info);

    std::shared_ptr<ModelCore> core_;
};

// The model of `core`, or a "bad_state" / "disposed" Error.
moe::Model& usable_model(Napi::Env env, const std::shared_ptr<ModelCore>& core);
// A "bad_input" Error unless 0 <= id < the vocabulary size.
void check_token_id(Napi::Env env, const moe::Model& model, int32_t id);

// loadModel(path, {vocabOnly?, repack?}): a promise of a Model.
Napi::Value load_model(const Napi::CallbackInfo& info);

}  // namespace moe::addon

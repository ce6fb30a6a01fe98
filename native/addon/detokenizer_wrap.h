// Detokenizer (Model.createDetokenizer()): generated ids to text one token at a time, over
// moe::Detokenizer (native/model/detokenizer.h). push(id) returns the text that became final with
// the token, holding back an incomplete UTF-8 sequence; finish() returns what is held. The pieces
// concatenate to Model.detokenize() of the same ids.
#pragma once
#include <napi.h>

#include <memory>

#include "addon/state.h"
#include "model/detokenizer.h"

namespace moe::addon {

class DetokenizerWrap : public Napi::ObjectWrap<DetokenizerWrap> {
 public:
    static Napi::Function define(Napi::Env env);
    explicit DetokenizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DetokenizerWrap>(info) {}
    // `detok` reads the tokenizer of `model`, which it uses only while the model is not disposed.
    static Napi::Object wrap(Napi::Env env, std::shared_ptr<ModelCore> model, std::unique_ptr<moe::Detokenizer> detok);

 private:
    // The model whose tokenizer detok_ reads, checked usable (not disposed).
    const moe::Model& model(Napi::Env env) const;
    Napi::Value push(const Napi::CallbackInfo& info);
    Napi::Value finish(const Napi::CallbackInfo& info);

    std::shared_ptr<ModelCore> model_;
    std::unique_ptr<moe::Detokenizer> detok_;
};

}  // namespace moe::addon

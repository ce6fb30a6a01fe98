// Detokenizer (see detokenizer_wrap.h).
#include "addon/detokenizer_wrap.h"

#include <cmath>
#include <string>

#include "addon/args.h"
#include "addon/model_wrap.h"

namespace moe::addon {

Napi::Function DetokenizerWrap::define(Napi::Env env) {
    return DefineClass(env, "Detokenizer",
                       {
                           InstanceMethod<&DetokenizerWrap::push>("push"),
                           InstanceMethod<&DetokenizerWrap::finish>("finish"),
                       });
}

Napi::Object DetokenizerWrap::wrap(Napi::Env env, std::shared_ptr<ModelCore> model, std::unique_ptr<moe::Detokenizer> detok) {
    Napi::Object obj = addon_data(env).detokenizer_ctor.New({});
    DetokenizerWrap* w = DetokenizerWrap::Unwrap(obj);
    w->model_ = std::move(model);
    w->detok_ = std::move(detok);
    return obj;
}

const moe::Model& DetokenizerWrap::model(Napi::Env env) const {
    if (!detok_) throw_error(env, "bad_state", "This Detokenizer was not made by Model.createDetokenizer().");
    return usable_model(env, model_);
}

Napi::Value DetokenizerWrap::push(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const moe::Model& m = model(env);
    const double d = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= 0 && d <= 2147483647.0 && d == std::floor(d))) throw type_error(env, "Expected a token id (a non-negative integer).");
    const auto id = static_cast<int32_t>(d);
    check_token_id(env, m, id);
    return Napi::String::New(env, guarded(env, [&] { return detok_->push(id); }));
}

Napi::Value DetokenizerWrap::finish(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    model(env);
    return Napi::String::New(env, detok_->finish());
}

}  // namespace moe::addon

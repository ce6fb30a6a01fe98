// Sampler and createSampler() (see sampler_wrap.h).
#include "addon/sampler_wrap.h"

#include <random>

#include "addon/args.h"

namespace moe::addon {

namespace {

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

}  // namespace

Napi::Function SamplerWrap::define(Napi::Env env) { return DefineClass(env, "Sampler", {InstanceAccessor<&SamplerWrap::seed>("seed")}); }

std::shared_ptr<SamplerCore> SamplerWrap::from(Napi::Env env, const Napi::Value& v) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(env).sampler_ctor.Value()))
        throw type_error(env, "Expected a Sampler made by createSampler().");
    SamplerWrap* w = SamplerWrap::Unwrap(v.As<Napi::Object>());
    if (!w->core_) throw type_error(env, "Expected a Sampler made by createSampler().");
    return w->core_;
}

Napi::Value SamplerWrap::seed(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), core_ ? static_cast<double>(core_->params.seed) : 0.0);
}

Napi::Value create_sampler(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    moe::SamplingParams p;
    parse_sampling(options_arg(info, 0), p);
    Napi::Object obj = addon_data(env).sampler_ctor.New({});
    SamplerWrap::Unwrap(obj)->core_ = std::make_shared<SamplerCore>(p);
    return obj;
}

}  // namespace moe::addon

// Sampler (createSampler()): sampling settings plus their own random state, used by
// Session.sample() and Session.step().
#pragma once
#include <napi.h>

#include <memory>

#include "addon/state.h"

namespace moe::addon {

class SamplerWrap : public Napi::ObjectWrap<SamplerWrap> {
 public:
    static Napi::Function define(Napi::Env env);
    explicit SamplerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SamplerWrap>(info) {}

    // The sampler behind a JS value, or a TypeError.
    static std::shared_ptr<SamplerCore> from(Napi::Env env, const Napi::Value& v);

 private:
    Napi::Value seed(const Napi::CallbackInfo& info);
    std::shared_ptr<SamplerCore> core_;
    friend Napi::Value create_sampler(const Napi::CallbackInfo& info);
};

// createSampler(options): SamplingOptions (src/engine/native.ts); no seed: a fresh random one.
Napi::Value create_sampler(const Napi::CallbackInfo& info);

}  // namespace moe::addon

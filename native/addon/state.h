// The native state behind the addon's JS objects, and the per-environment constructors.
//
// JS wrappers hold shared_ptrs to these cores; a running worker holds one too, so memory is
// freed when the last user is done. `busy` and `disposed` are touched on the JS thread only.
#pragma once
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/threadpool.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "model/model.h"

namespace moe::addon {

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

// The classes' constructors, kept per environment (addon.cpp fills them in).
struct AddonData {
    Napi::FunctionReference model_ctor;
    Napi::FunctionReference session_ctor;
    Napi::FunctionReference sampler_ctor;
    Napi::FunctionReference detokenizer_ctor;
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace moe::addon

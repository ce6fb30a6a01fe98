// Worker-thread operations (see workers.h).
#include "addon/workers.h"

#include <utility>

#include "addon/model_wrap.h"

namespace moe::addon {

void PromiseWorker::Execute() {
    try {
        run();
    } catch (...) {
        error_.capture();
    }
}

void PromiseWorker::OnOK() {
    Napi::Env env = Env();
    settled();
    if (error_.set) {
        deferred_.Reject(error_.value(env));
        return;
    }
    try {
        deferred_.Resolve(result(env));
    } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
    }
}

void PromiseWorker::OnError(const Napi::Error& e) {
    settled();
    deferred_.Reject(e.Value());
}

TaskWorker::TaskWorker(Napi::Env env, const char* name, std::shared_ptr<SessionCore> core, Napi::Object self, std::function<void()> run,
                       std::function<Napi::Value(Napi::Env)> result)
    : PromiseWorker(env, name), core_(std::move(core)), self_(Napi::Persistent(self)), run_(std::move(run)), result_(std::move(result)) {}

void LoadWorker::run() { model_ = std::shared_ptr<moe::Model>(moe::Model::load(path_, opts_)); }

Napi::Value LoadWorker::result(Napi::Env env) { return ModelWrap::wrap(env, std::move(model_)); }

}  // namespace moe::addon

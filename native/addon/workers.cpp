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

LoadWorker::LoadWorker(Napi::Env env, std::string path, moe::LoadOptions opts, Napi::Function on_progress, Napi::Object signal)
    : PromiseWorker(env, "moe.loadModel"), path_(std::move(path)), opts_(std::move(opts)) {
    opts_.cancel = cancel_.get();
    if (!signal.IsEmpty()) {
        std::shared_ptr<std::atomic<bool>> flag = cancel_;
        Napi::Function listener = Napi::Function::New(env, [flag](const Napi::CallbackInfo&) { flag->store(true); }, "onAbort");
        signal.Get("addEventListener").As<Napi::Function>().Call(signal, {Napi::String::New(env, "abort"), listener});
        signal_ = Napi::Persistent(signal);
        on_abort_ = Napi::Persistent(listener);
    }
    if (on_progress.IsEmpty()) return;
    progress_ = Napi::ThreadSafeFunction::New(env, on_progress, "moe.layoutProgress", 0, 1);
    has_progress_ = true;
    Napi::ThreadSafeFunction tsfn = progress_;
    opts_.on_layout_progress = [tsfn](double fraction) mutable {
        auto* value = new double(fraction);
        const napi_status st = tsfn.NonBlockingCall(value, [](Napi::Env env, Napi::Function fn, double* v) {
            const double f = *v;
            delete v;
            try {
                fn.Call({Napi::Number::New(env, f)});
            } catch (const Napi::Error&) {
                // a throwing progress callback does not stop the load
            }
        });
        if (st != napi_ok) delete value;
    };
}

void LoadWorker::settled() {
    if (has_progress_) progress_.Release();
    if (!signal_.IsEmpty()) {
        Napi::Object signal = signal_.Value();
        try {
            signal.Get("removeEventListener").As<Napi::Function>().Call(signal, {Napi::String::New(Env(), "abort"), on_abort_.Value()});
        } catch (const Napi::Error&) {
            // a signal whose removeEventListener throws keeps our (harmless) listener
        }
    }
}

void LoadWorker::run() { model_ = std::shared_ptr<moe::Model>(moe::Model::load(path_, opts_)); }

Napi::Value LoadWorker::result(Napi::Env env) { return ModelWrap::wrap(env, std::move(model_)); }

}  // namespace moe::addon

// The addon's worker-thread operations, each settling a promise on the JS thread: TaskWorker runs
// one session operation (eval, prefill, step), LoadWorker loads a model (loadModel()).
#pragma once
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "addon/args.h"
#include "addon/state.h"
#include "model/model.h"

namespace moe::addon {

// run() on a worker thread, its exceptions kept; then, on the JS thread, settled() and either a
// rejection with the kept error or a resolution with result() (a rejection if that throws).
class PromiseWorker : public Napi::AsyncWorker {
 public:
    Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
    PromiseWorker(Napi::Env env, const char* name) : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}
    virtual void run() = 0;
    virtual Napi::Value result(Napi::Env env) = 0;
    virtual void settled() {}

 private:
    void Execute() override;
    void OnOK() override;
    void OnError(const Napi::Error& e) override;

    Napi::Promise::Deferred deferred_;
    CaughtError error_;
};

// A session operation. The session is marked idle again (SessionCore::finish) before the promise
// settles.
class TaskWorker : public PromiseWorker {
 public:
    TaskWorker(Napi::Env env, const char* name, std::shared_ptr<SessionCore> core, Napi::Object self, std::function<void()> run,
               std::function<Napi::Value(Napi::Env)> result);

 protected:
    void run() override { run_(); }
    Napi::Value result(Napi::Env env) override { return result_(env); }
    void settled() override { core_->finish(); }

 private:
    std::shared_ptr<SessionCore> core_;
    Napi::ObjectReference self_;  // keeps the JS Session alive while we run
    std::function<void()> run_;
    std::function<Napi::Value(Napi::Env)> result_;
};

// Model::load; resolves with a Model object.
class LoadWorker : public PromiseWorker {
 public:
    // on_progress (may be empty): called on the JS thread with the fraction of a layout file built.
    // signal (may be empty): an AbortSignal whose 'abort' event cancels the load (LoadOptions::cancel).
    LoadWorker(Napi::Env env, std::string path, moe::LoadOptions opts, Napi::Function on_progress, Napi::Object signal);

 protected:
    void run() override;
    Napi::Value result(Napi::Env env) override;
    void settled() override;

 private:
    std::string path_;
    moe::LoadOptions opts_;
    Napi::ThreadSafeFunction progress_;  // set when has_progress_
    bool has_progress_ = false;
    // set by the signal's 'abort' listener (which holds it too, in case it fires late)
    std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
    Napi::ObjectReference signal_;      // set when a signal was given
    Napi::FunctionReference on_abort_;  // our listener on it, removed when the load settles
    std::shared_ptr<moe::Model> model_;
};

}  // namespace moe::addon

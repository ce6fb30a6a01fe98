// The Node-API addon's entry point: registers the exports and nothing else. The addon exposes
// loadModel() -> Model -> Session (and Sampler, Detokenizer) over the engine, runs loading and
// evaluation on worker threads (promises), and turns every C++ exception into a JS Error whose
// `.code` is moe::Error::code. Types as JS sees them: src/engine/native.ts. The parts:
//   args.*              errors and argument parsing shared by everything below
//   state.h             the native state behind the JS objects, the constructors per environment
//   model_wrap.*        Model and loadModel()
//   session_wrap.*      Session (eval, prefill, step, sample, ...)
//   sampler_wrap.*      Sampler and createSampler()
//   detokenizer_wrap.*  Detokenizer (Model.createDetokenizer())
//   workers.*           the worker-thread operations (session operations, model loading)
//   engine_functions.*  engineInfo(), setIsa(), setLogLevel(), measureReadBandwidth(), measureFileReadBandwidth() and the log sink
#include <napi.h>

#include "addon/detokenizer_wrap.h"
#include "addon/engine_functions.h"
#include "addon/model_wrap.h"
#include "addon/sampler_wrap.h"
#include "addon/session_wrap.h"
#include "addon/state.h"

namespace {

Napi::Object init(Napi::Env env, Napi::Object exports) {
    using namespace moe::addon;
    install_log_sink();

    auto* data = new AddonData();
    Napi::Function model_ctor = ModelWrap::define(env);
    Napi::Function session_ctor = SessionWrap::define(env);
    data->model_ctor = Napi::Persistent(model_ctor);
    data->session_ctor = Napi::Persistent(session_ctor);
    data->sampler_ctor = Napi::Persistent(SamplerWrap::define(env));
    data->detokenizer_ctor = Napi::Persistent(DetokenizerWrap::define(env));
    env.SetInstanceData<AddonData>(data);

    exports.Set("Model", model_ctor);
    exports.Set("Session", session_ctor);
    exports.Set("loadModel", Napi::Function::New<load_model>(env, "loadModel"));
    exports.Set("engineInfo", Napi::Function::New<engine_info>(env, "engineInfo"));
    exports.Set("setLogLevel", Napi::Function::New<set_log_level>(env, "setLogLevel"));
    exports.Set("setIsa", Napi::Function::New<set_isa>(env, "setIsa"));
    exports.Set("measureReadBandwidth", Napi::Function::New<measure_read_bandwidth>(env, "measureReadBandwidth"));
    exports.Set("measureFileReadBandwidth", Napi::Function::New<measure_file_read_bandwidth>(env, "measureFileReadBandwidth"));
    exports.Set("createSampler", Napi::Function::New<create_sampler>(env, "createSampler"));
    return exports;
}

}  // namespace

NODE_API_MODULE(moe_engine, init)

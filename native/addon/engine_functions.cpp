// engineInfo(), setIsa(), setLogLevel(), measureReadBandwidth(), measureFileReadBandwidth() and the log sink (see engine_functions.h).
#include "addon/engine_functions.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "addon/args.h"
#include "core/bandwidth.h"
#include "core/common.h"
#include "core/dtype.h"
#include "model/gguf.h"
#include "kernels/kernels.h"
#include "models/registry.h"

#ifndef MOE_ENGINE_VERSION
#define MOE_ENGINE_VERSION "0.0.0"
#endif

namespace moe::addon {

namespace {

std::atomic<int> g_log_level{static_cast<int>(moe::LogLevel::Warn)};  // 4: silent

bool parse_log_level(const std::string& s, int* out) {
    static const char* const names[] = {"debug", "info", "warn", "error", "silent"};
    for (int i = 0; i < 5; ++i)
        if (s == names[i]) {
            *out = i;
            return true;
        }
    return false;
}

// stdout is reserved for program output (and JSON-RPC): engine logs go to stderr.
void log_to_stderr(moe::LogLevel level, const std::string& message) {
    if (static_cast<int>(level) < g_log_level.load(std::memory_order_relaxed)) return;
    static const char* const names[] = {"debug", "info", "warning", "error"};
    const int i = static_cast<int>(level);
    std::fprintf(stderr, "moe-engine %s: %s\n", (i >= 0 && i < 4) ? names[i] : "log", message.c_str());
}

}  // namespace

void install_log_sink() {
    if (const char* s = std::getenv("MOE_LOG_LEVEL")) {
        int level = 0;
        if (parse_log_level(s, &level)) g_log_level = level;
    }
    moe::set_log_sink(log_to_stderr);
}

Napi::Value engine_info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
        using namespace moe::kernels;
        Napi::Object out = Napi::Object::New(env);
        out.Set("version", MOE_ENGINE_VERSION);
        out.Set("isa", isa_name(active().isa));
        Napi::Array supported = Napi::Array::New(env), compiled = Napi::Array::New(env);
        for (int i = 0; i < kIsaCount; ++i) {
            const Isa isa = static_cast<Isa>(i);
            if (!compiled_set(isa)) continue;
            compiled.Set(compiled.Length(), isa_name(isa));
            if (cpu_supports(isa)) supported.Set(supported.Length(), isa_name(isa));
        }
        out.Set("isas", supported);
        out.Set("compiledIsas", compiled);
        Napi::Array archs = Napi::Array::New(env), types = Napi::Array::New(env);
        for (const moe::ArchitectureEntry* a = moe::architectures(); a->name; ++a) archs.Set(archs.Length(), a->name);
        for (uint32_t t = 0; t < kTypeCount; ++t)
            if (moe::type_traits(t).supported) types.Set(types.Length(), moe::type_traits(t).name);
        out.Set("architectures", archs);
        out.Set("weightTypes", types);
        return out;
    });
}

Napi::Value set_isa(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
        using namespace moe::kernels;
        Isa isa;
        if (info.Length() < 1 || !info[0].IsString() || !parse_isa(info[0].As<Napi::String>().Utf8Value().c_str(), &isa))
            throw moe::Error("bad_input", "setIsa() takes 'scalar', 'avx2', 'avx512' or 'avx512vnni'.");
        if (!set_active(isa))
            throw moe::Error("bad_input", moe::strfmt("the kernel set '%s' is not supported by this CPU or build", isa_name(isa)));
        return Napi::String::New(env, isa_name(active().isa));
    });
}

Napi::Value set_log_level(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int level = 0;
    if (info.Length() < 1 || !info[0].IsString() || !parse_log_level(info[0].As<Napi::String>().Utf8Value(), &level))
        throw_error(env, "bad_input", "setLogLevel() takes 'debug', 'info', 'warn', 'error' or 'silent'.");
    g_log_level = level;
    return env.Undefined();
}

Napi::Value measure_read_bandwidth(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
        throw type_error(env, "Expected measureReadBandwidth(bytes, threads).");
    const double bytes = info[0].As<Napi::Number>().DoubleValue();
    const double threads = info[1].As<Napi::Number>().DoubleValue();
    if (!(bytes >= 1 << 20 && bytes <= 64.0 * (1ull << 30)))
        throw_error(env, "bad_input", "measureReadBandwidth: bytes must be between 1 MiB and 64 GiB.");
    if (!(threads >= 1 && threads <= 1024 && threads == static_cast<int>(threads)))
        throw_error(env, "bad_input", "measureReadBandwidth: threads must be an integer from 1 to 1024.");
    const double gbs = guarded(env, [&] { return moe::measure_read_bandwidth(static_cast<size_t>(bytes), static_cast<int>(threads)); });
    return Napi::Number::New(env, gbs);
}

Napi::Value measure_file_read_bandwidth(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber())
        throw type_error(env, "Expected measureFileReadBandwidth(path, maxBytes, threads).");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const double bytes = info[1].As<Napi::Number>().DoubleValue();
    const double threads = info[2].As<Napi::Number>().DoubleValue();
    if (!(bytes >= 1 << 20 && bytes <= 1024.0 * (1ull << 30)))
        throw_error(env, "bad_input", "measureFileReadBandwidth: maxBytes must be between 1 MiB and 1 TiB.");
    if (!(threads >= 1 && threads <= 1024 && threads == static_cast<int>(threads)))
        throw_error(env, "bad_input", "measureFileReadBandwidth: threads must be an integer from 1 to 1024.");
    // mapped as the engine maps a layout file (MappedFile: opened without blocking, regular files
    // only; 2 MB pages where the system gives them, every page mapped first)
    const double gbs = guarded(env, [&] {
        moe::MappedFile map(path);
        constexpr uint64_t kHuge = uint64_t{2} << 20;
        const uint64_t n = std::min<uint64_t>(map.size(), static_cast<uint64_t>(bytes)) / kHuge * kHuge;
        if (n == 0) throw moe::Error("io", moe::strfmt("%s: too small to measure (under 2 MB)", path.c_str()));
        map.advise_huge();
        map.populate_read();
        return moe::measure_read_bandwidth_of(map.data(), static_cast<size_t>(n), static_cast<int>(threads));
    });
    return Napi::Number::New(env, gbs);
}

}  // namespace moe::addon

// What every part of the addon shares: engine exceptions turned into JS Errors whose `.code` is
// moe::Error::code, and the parsing of JS arguments (options objects, numbers, token lists,
// chat messages) with a TypeError or a "bad_input" Error for anything malformed.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/chat.h"

namespace moe::addon {

// ---------------------------------------------------------------- errors

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);
[[noreturn]] void throw_error(Napi::Env env, const std::string& code, const std::string& message);
// A wrongly typed argument: a TypeError, with code "bad_input" like every other input error.
Napi::TypeError type_error(Napi::Env env, const std::string& message);

// An exception caught on a worker thread, kept until the JS thread can build the Error.
struct CaughtError {
    std::string code, message;
    bool set = false;
    void capture();  // call inside a catch block
    Napi::Value value(Napi::Env env) const { return make_error(env, code, message).Value(); }
};

// Runs `body` on the JS thread; engine exceptions become JS exceptions with a code.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const Napi::Error&) {
        throw;
    } catch (...) {
        CaughtError c;
        c.capture();
        throw_error(env, c.code, c.message);
    }
}

// For promise-returning functions: runs `start` (which returns the promise); an error it throws
// becomes a rejected promise, so every error reaches the caller through the promise.
template <typename F>
Napi::Value as_promise(Napi::Env env, F&& start) {
    try {
        return start();
    } catch (const Napi::Error& e) {
        auto d = Napi::Promise::Deferred::New(env);
        d.Reject(e.Value());
        return d.Promise();
    }
}

// ---------------------------------------------------------------- arguments

// info[i] as an options object; absent, undefined or null: an empty one.
Napi::Object options_arg(const Napi::CallbackInfo& info, size_t i);
// Whether `key` is set to something other than undefined or null.
bool has(const Napi::Object& o, const char* key);
// A number option within [lo, hi] (an integer if `integer`); `def` when not set.
double number_opt(const Napi::Object& o, const char* key, double def, double lo, double hi, bool integer);
bool bool_opt(const Napi::Object& o, const char* key, bool def);
std::string string_opt(const Napi::Object& o, const char* key, const std::string& def);
std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* what);
// Token ids from an Int32Array, a Uint32Array or an array of integers.
std::vector<int32_t> tokens_from(Napi::Env env, const Napi::Value& v, const char* what);
// info[0] as a non-negative integer position (at most 2^32-1), else "bad_input" naming `method`.
uint32_t position_arg(const Napi::CallbackInfo& info, const char* method);
Napi::Int32Array int32_array(Napi::Env env, const std::vector<int32_t>& v);
std::vector<moe::ChatMessage> messages_from(Napi::Env env, const Napi::Value& v);

}  // namespace moe::addon

// Errors and argument parsing shared by the addon (see args.h).
#include "addon/args.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <new>

#include "core/common.h"

namespace moe::addon {

// ---------------------------------------------------------------- errors

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, code));
    return e;
}

void throw_error(Napi::Env env, const std::string& code, const std::string& message) { throw make_error(env, code, message); }

Napi::TypeError type_error(Napi::Env env, const std::string& message) {
    Napi::TypeError e = Napi::TypeError::New(env, message);
    e.Set("code", Napi::String::New(env, "bad_input"));
    return e;
}

void CaughtError::capture() {
    set = true;
    try {
        throw;
    } catch (const moe::Error& e) {
        code = e.code;
        message = e.what();
    } catch (const std::bad_alloc&) {
        code = "out_of_memory";
        message = "Out of memory.";
    } catch (const std::exception& e) {
        code = "internal";
        message = std::string("Internal error: ") + e.what();
    } catch (...) {
        code = "internal";
        message = "Internal error (unknown exception).";
    }
}

// ---------------------------------------------------------------- arguments

Napi::Object options_arg(const Napi::CallbackInfo& info, size_t i) {
    if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return Napi::Object::New(info.Env());
    if (!info[i].IsObject()) throw type_error(info.Env(), "Expected an options object.");
    return info[i].As<Napi::Object>();
}

bool has(const Napi::Object& o, const char* key) {
    if (!o.Has(key)) return false;
    Napi::Value v = o.Get(key);
    return !v.IsUndefined() && !v.IsNull();
}

double number_opt(const Napi::Object& o, const char* key, double def, double lo, double hi, bool integer) {
    if (!has(o, key)) return def;
    Napi::Value v = o.Get(key);
    if (!v.IsNumber()) throw_error(o.Env(), "bad_input", std::string("Option ") + key + " must be a number.");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < lo || d > hi || (integer && d != std::floor(d)))
        throw_error(o.Env(), "bad_input",
                    moe::strfmt("Option %s must be %s between %g and %g (got %g).", key, integer ? "an integer" : "a number", lo, hi, d));
    return d;
}

bool bool_opt(const Napi::Object& o, const char* key, bool def) {
    if (!has(o, key)) return def;
    Napi::Value v = o.Get(key);
    if (!v.IsBoolean()) throw_error(o.Env(), "bad_input", std::string("Option ") + key + " must be a boolean.");
    return v.As<Napi::Boolean>().Value();
}

std::string string_opt(const Napi::Object& o, const char* key, const std::string& def) {
    if (!has(o, key)) return def;
    Napi::Value v = o.Get(key);
    if (!v.IsString()) throw_error(o.Env(), "bad_input", std::string("Option ") + key + " must be a string.");
    return v.As<Napi::String>().Utf8Value();
}

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
    if (info.Length() <= i || !info[i].IsString()) throw type_error(info.Env(), std::string("Expected ") + what + " (a string).");
    return info[i].As<Napi::String>().Utf8Value();
}

std::vector<int32_t> tokens_from(Napi::Env env, const Napi::Value& v, const char* what) {
    std::vector<int32_t> out;
    if (v.IsTypedArray()) {
        Napi::TypedArray ta = v.As<Napi::TypedArray>();
        if (ta.TypedArrayType() == napi_int32_array) {
            Napi::Int32Array a = v.As<Napi::Int32Array>();
            out.assign(a.Data(), a.Data() + a.ElementLength());
            return out;
        }
        if (ta.TypedArrayType() == napi_uint32_array) {
            Napi::Uint32Array a = v.As<Napi::Uint32Array>();
            out.reserve(a.ElementLength());
            for (size_t i = 0; i < a.ElementLength(); ++i) {
                if (a[i] > 0x7fffffffu) throw_error(env, "bad_input", std::string(what) + " holds a token id out of range.");
                out.push_back(static_cast<int32_t>(a[i]));
            }
            return out;
        }
    } else if (v.IsArray()) {
        Napi::Array a = v.As<Napi::Array>();
        const uint32_t n = a.Length();
        out.reserve(n);
        for (uint32_t i = 0; i < n; ++i) {
            Napi::Value e = a.Get(i);
            double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
            if (!(d >= 0 && d <= 2147483647.0 && d == std::floor(d)))
                throw_error(env, "bad_input", moe::strfmt("%s[%u] is not a token id (a non-negative integer).", what, i));
            out.push_back(static_cast<int32_t>(d));
        }
        return out;
    }
    throw type_error(env, std::string("Expected ") + what + " as an Int32Array or an array of integers.");
}

uint32_t position_arg(const Napi::CallbackInfo& info, const char* method) {
    const double n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (!(n >= 0 && n == std::floor(n) && n <= 4294967295.0))
        throw_error(info.Env(), "bad_input", std::string(method) + "() needs a non-negative integer position.");
    return static_cast<uint32_t>(n);
}

Napi::Int32Array int32_array(Napi::Env env, const std::vector<int32_t>& v) {
    Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
    if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(int32_t));
    return a;
}

std::vector<moe::ChatMessage> messages_from(Napi::Env env, const Napi::Value& v) {
    if (!v.IsArray()) throw type_error(env, "Expected messages as an array of {role, content}.");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<moe::ChatMessage> out;
    for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value e = a.Get(i);
        if (!e.IsObject()) throw type_error(env, moe::strfmt("messages[%u] is not an object.", i));
        Napi::Object m = e.As<Napi::Object>();
        Napi::Value role = m.Get("role"), content = m.Get("content");
        if (!role.IsString() || !content.IsString()) throw type_error(env, moe::strfmt("messages[%u] needs string role and content.", i));
        out.push_back({role.As<Napi::String>().Utf8Value(), content.As<Napi::String>().Utf8Value()});
    }
    return out;
}

}  // namespace moe::addon

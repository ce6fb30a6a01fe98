// Shared basics of the engine: the error type every layer throws, and logging.
// Library code never exits or aborts on bad input: it throws moe::Error with a stable
// code (machine-readable) and a sentence a user can act on.
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace moe {

struct Error : std::runtime_error {
    std::string code;  // e.g. "bad_gguf", "unsupported_arch", "unsupported_type", "bad_input", "cancelled"
    Error(std::string c, const std::string& message) : std::runtime_error(message), code(std::move(c)) {}
};

// Log sink: the addon routes this to JS / stderr. Default writes to stderr.
enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };
using LogFn = std::function<void(LogLevel, const std::string&)>;
void set_log_sink(LogFn fn);
void log(LogLevel level, const std::string& message);

// printf-style std::string formatting.
std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace moe

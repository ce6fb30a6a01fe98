// Error/log plumbing shared by the whole engine.
#include "core/common.h"

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace moe {

namespace {
std::mutex g_log_mutex;
LogFn g_log_sink;
}  // namespace

void set_log_sink(LogFn fn) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log_sink = std::move(fn);
}

void log(LogLevel level, const std::string& message) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    if (g_log_sink) {
        g_log_sink(level, message);
        return;
    }
    static const char* names[] = {"debug", "info", "warn", "error"};
    std::fprintf(stderr, "[moe-engine %s] %s\n", names[static_cast<int>(level)], message.c_str());
}

std::string strfmt(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, ap);
    va_end(ap);
    std::string out;
    if (n > 0) {
        out.resize(static_cast<size_t>(n));
        std::vsnprintf(&out[0], static_cast<size_t>(n) + 1, fmt, ap2);
    }
    va_end(ap2);
    return out;
}

}  // namespace moe

// The addon's functions about the engine as a whole: engineInfo(), setIsa(), setLogLevel(),
// measureReadBandwidth(), and the engine's log sink (stderr, at the level of setLogLevel() or $MOE_LOG_LEVEL).
#pragma once
#include <napi.h>

namespace moe::addon {

// Routes engine log lines to stderr and takes the level from $MOE_LOG_LEVEL (default warn).
void install_log_sink();

Napi::Value engine_info(const Napi::CallbackInfo& info);
// setIsa(name): selects the kernel set used by sessions created afterwards (tests compare kernel
// sets with each other; MOE_FORCE_ISA does the same for a whole process). Returns the set in use.
Napi::Value set_isa(const Napi::CallbackInfo& info);
Napi::Value set_log_level(const Napi::CallbackInfo& info);
// measureReadBandwidth(bytes, threads): GB/s, best of 3 (core/bandwidth.h). Blocks the calling
// thread for about a second; for benchmarks.
Napi::Value measure_read_bandwidth(const Napi::CallbackInfo& info);
// measureFileReadBandwidth(path, maxBytes, threads): the same over a file's pages, mapped as the
// engine maps its layout files (core/bandwidth.h); for benchmarks.
Napi::Value measure_file_read_bandwidth(const Napi::CallbackInfo& info);

}  // namespace moe::addon

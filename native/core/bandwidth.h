// A memory read-bandwidth measurement: what a decode step that streams the active weights can
// reach at best (scripts/bench.ts turns it into a tokens/s ceiling).
#pragma once
#include <cstddef>

namespace moe {

// Sums a buffer of `bytes` (first touched by the same threads) with `threads` threads, `repeats`
// times; returns the best pass in GB/s (1e9 bytes per second). Allocates `bytes` for the call and
// blocks for about (repeats + 1) passes over it. Throws moe::Error("out_of_memory") when the
// buffer cannot be allocated.
double measure_read_bandwidth(size_t bytes, int threads, int repeats = 3);

}  // namespace moe

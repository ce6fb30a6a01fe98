// A memory read-bandwidth measurement: what a decode step that streams the active weights can
// reach at best (scripts/bench.ts turns it into a tokens/s ceiling).
#pragma once
#include <cstddef>
#include <cstdint>

namespace moe {

// Sums a buffer of `bytes` (first touched by the same threads) with `threads` threads, `repeats`
// times; returns the best pass in GB/s (1e9 bytes per second). Allocates `bytes` for the call and
// blocks for about (repeats + 1) passes over it. Throws moe::Error("out_of_memory") when the
// buffer cannot be allocated.
double measure_read_bandwidth(size_t bytes, int threads, int repeats = 3);

// The same read over memory that is already there (`bytes` at p, e.g. a mapped file's pages: on some
// virtual machines they read slower than a fresh buffer, 20 vs 34 GB/s here): the best pass in GB/s.
double measure_read_bandwidth_of(const void* p, size_t bytes, int threads, int repeats = 3);

// `bytes` (rounded up to 2 MB) aligned to 2 MB and advised into 2 MB pages where the OS gives them, as
// the engine's layout files are mapped: with 4 KB pages the page walks cut a thread's read rate (on a
// Sapphire Rapids 15 instead of 28 GB/s). Free with std::free; nullptr when it cannot be allocated.
void* alloc_huge_pages(size_t bytes);

// The sum of n words, read as measure_read_bandwidth reads (each line prefetched into L2 2 KB ahead,
// as the weight kernels do): a plain read to compare a kernel's stream with.
uint64_t read_words(const uint64_t* p, size_t n);

}  // namespace moe

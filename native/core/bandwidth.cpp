// Memory read bandwidth (see bandwidth.h).
#include "core/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "core/common.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace moe {

namespace {

// Runs body(thread index, slice begin, slice words) on `threads` threads over `n` words.
template <typename F>
void on_threads(int threads, size_t n, F&& body) {
    std::vector<std::thread> pool;
    const size_t per = (n + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
    for (int t = 0; t < threads; ++t) {
        const size_t b = std::min(n, per * static_cast<size_t>(t)), e = std::min(n, b + per);
        pool.emplace_back([&body, t, b, e] { body(t, b, e - b); });
    }
    for (std::thread& th : pool) th.join();
}

}  // namespace

// Eight independent sums (the compiler vectorises them): no dependency chain limits the loads. Each
// line is prefetched into L2 2 KB ahead (without it one thread read about half as fast on a Sapphire
// Rapids).
uint64_t read_words(const uint64_t* p, size_t n) {
    uint64_t s[8] = {};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __builtin_prefetch(p + i + 256, 0, 2);
        for (int k = 0; k < 8; ++k) s[k] += p[i + k];
    }
    for (; i < n; ++i) s[0] += p[i];
    uint64_t t = 0;
    for (uint64_t v : s) t += v;
    return t;
}

void* alloc_huge_pages(size_t bytes) {
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t alloc = (std::max<size_t>(bytes, 1) + kHuge - 1) / kHuge * kHuge;
    void* p = std::aligned_alloc(kHuge, alloc);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) madvise(p, alloc, MADV_HUGEPAGE);  // a hint; without transparent huge pages the pages stay 4 KB
#endif
    return p;
}

namespace {
// The best of `repeats` passes of `threads` threads summing n words at p, in GB/s.
double best_read(const uint64_t* p, size_t n, int threads, int repeats) {
    double best = 0;
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    for (int r = 0; r < std::max(1, repeats); ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        on_threads(threads, n, [p, &sums](int t, size_t b, size_t len) { sums[static_cast<size_t>(t)] = read_words(p + b, len); });
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s / 1e9);
    }
    volatile uint64_t sink = 0;  // the sums are used: the reads cannot be optimised away
    for (uint64_t v : sums) sink = sink + v;
    return best;
}
}  // namespace

double measure_read_bandwidth(size_t bytes, int threads, int repeats) {
    threads = std::max(1, threads);
    const size_t n = std::max<size_t>(bytes / sizeof(uint64_t), 1);
    uint64_t* buf = static_cast<uint64_t*>(alloc_huge_pages(n * sizeof(uint64_t)));
    if (!buf) throw Error("out_of_memory", strfmt("cannot allocate %.0f MB to measure the memory bandwidth", bytes / 1e6));
    // first touch by the threads that read it (pages local to them), with values the sum cannot skip
    on_threads(threads, n, [buf](int, size_t b, size_t len) {
        for (size_t i = 0; i < len; ++i) buf[b + i] = b + i;
    });
    const double best = best_read(buf, n, threads, repeats);
    std::free(buf);
    return best;
}

double measure_read_bandwidth_of(const void* p, size_t bytes, int threads, int repeats) {
    return best_read(static_cast<const uint64_t*>(p), bytes / sizeof(uint64_t), std::max(1, threads), repeats);
}

}  // namespace moe

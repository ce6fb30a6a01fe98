// Wall time per forward-pass phase, printed to stderr when a session ends; only with
// MOE_PROFILE set (for choosing the next optimisation by measurement).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace moe {

struct PhaseProfile {
    enum Phase { Qkv, Rope, Attn, Wo, Guess, Route, Stall, Gate, Up, Down, Experts, Combine, Output, N };
    bool on = std::getenv("MOE_PROFILE") != nullptr;
    double ms[N] = {};
    uint64_t tokens = 0, calls = 0;
    std::chrono::steady_clock::time_point t;
    void start(int64_t n_tokens) {
        calls += 1;
        tokens += static_cast<uint64_t>(n_tokens);
        if (on) t = std::chrono::steady_clock::now();
    }
    // The time since the last lap (or start) goes to phase p.
    void lap(Phase p) {
        if (!on) return;
        const auto now = std::chrono::steady_clock::now();
        ms[p] += std::chrono::duration<double, std::milli>(now - t).count();
        t = now;
    }
    ~PhaseProfile() {
        if (!on || calls == 0) return;
        static const char* names[N] = {"qkv+router", "rope+kv", "attention", "wo",      "guess",   "route", "expert I/O",
                                       "gate",       "up",      "down",      "experts", "combine", "output"};
        double total = 0;
        for (double v : ms) total += v;
        std::fprintf(stderr, "[moe profile] %llu forward calls, %llu tokens, %.1f ms\n", (unsigned long long)calls,
                     (unsigned long long)tokens, total);
        for (int i = 0; i < N; ++i)
            std::fprintf(stderr, "  %-11s %9.1f ms %5.1f%%\n", names[i], ms[i], total > 0 ? 100.0 * ms[i] / total : 0.0);
    }
};

}  // namespace moe

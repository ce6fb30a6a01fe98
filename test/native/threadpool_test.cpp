// ThreadPool::parallel_for under oversubscription: more threads than cores, workers that sleep
// inside chunks (descheduled), jobs of every size back to back. Every item runs exactly once per
// job, no job returns while one of its chunks still runs, exceptions reach the caller, and a
// worker that wakes late never runs a chunk of a later job with an earlier job's function.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/threadpool.h"
#include "check.h"

using namespace moe;

namespace {

// n items, each counted once; returns whether every count is 1 and nothing ran after the return.
bool run_job(ThreadPool& pool, int64_t n, int64_t grain, bool sleepy, uint32_t salt) {
    std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
    for (auto& s : seen) s.store(0);
    std::atomic<bool> returned{false};
    std::atomic<int> late{0};
    pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int thread) {
        if (returned.load()) late.fetch_add(1);
        // some chunks are slow, as if their thread were descheduled
        if (sleepy && thread != 0 && ((b * 2654435761u) ^ salt) % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        for (int64_t i = b; i < e; ++i) seen[static_cast<size_t>(i)].fetch_add(1);
    });
    returned.store(true);
    bool ok = late.load() == 0;
    for (auto& s : seen) ok = ok && s.load() == 1;
    return ok;
}

}  // namespace

int main() {
    for (int threads : {1, 2, 3, 5}) {
        ThreadPool pool(threads);
        int bad = 0;
        for (uint32_t job = 0; job < 3000; ++job) {
            const int64_t n = 1 + static_cast<int64_t>((job * 7919u) % 97);
            const int64_t grain = 1 + static_cast<int64_t>(job % 5);
            if (!run_job(pool, n, grain, job % 3 == 0, job)) ++bad;
        }
        check(bad == 0, "threads " + std::to_string(threads) + ": " + std::to_string(bad) + " jobs ran an item not exactly once");
    }

    // A busy machine: two pools of 3 threads at once on this process's cores, plus a spinning thread.
    {
        std::atomic<bool> stop{false};
        std::thread hog([&] {
            while (!stop.load()) {
            }
        });
        std::atomic<int> bad{0};
        auto work = [&](uint32_t salt) {
            ThreadPool pool(3);
            for (uint32_t job = 0; job < 2000; ++job)
                if (!run_job(pool, 1 + (job * 31u + salt) % 64, 1, job % 4 == 0, salt + job)) bad.fetch_add(1);
        };
        std::thread a(work, 1u), b(work, 2u);
        a.join();
        b.join();
        stop.store(true);
        hog.join();
        check(bad.load() == 0, "oversubscribed pools: " + std::to_string(bad.load()) + " bad jobs");
    }

    // An exception in a chunk reaches the caller, and the pool keeps working.
    {
        ThreadPool pool(3);
        bool thrown = false;
        try {
            pool.parallel_for(100, 1, [](int64_t b, int64_t, int) {
                if (b == 57) throw std::runtime_error("chunk 57");
            });
        } catch (const std::runtime_error& e) {
            thrown = std::string(e.what()) == "chunk 57";
        }
        CHECK(thrown);
        CHECK(run_job(pool, 50, 2, true, 9));
    }

    std::printf("threadpool: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail == 0 ? 0 : 1;
}

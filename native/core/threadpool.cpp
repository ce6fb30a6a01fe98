// Worker pool with spin-then-sleep waiting; see threadpool.h.
#include "core/threadpool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOE_PAUSE() _mm_pause()
#else
#define MOE_PAUSE() ((void)0)
#endif

namespace moe {

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    n_threads_ = n_threads;
    for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
}

void ThreadPool::run_chunks(int thread_index) {
    for (;;) {
        int64_t begin = next_.fetch_add(grain_);
        if (begin >= n_) break;
        int64_t end = std::min(n_, begin + grain_);
        try {
            (*fn_)(begin, end, thread_index);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex_);
            if (!error_) error_ = std::current_exception();
            next_.store(n_);  // stop handing out work
        }
    }
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        // spin a little, then sleep until the generation changes
        uint64_t g = generation_.load(std::memory_order_acquire);
        for (int spin = 0; g == seen && spin < 20000; ++spin) {
            MOE_PAUSE();
            g = generation_.load(std::memory_order_acquire);
        }
        if (g == seen) {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] { return generation_.load() != seen; });
            g = generation_.load();
        }
        seen = g;
        if (stop_.load()) return;
        // Join the job of generation g if it is still open (a late worker finds it closed, or
        // already a later one, and waits for the next).
        uint64_t j = job_.load(std::memory_order_acquire);
        bool joined = false;
        while ((j >> 32) == (g & 0xffffffffu) && !(j & kClosed)) {
            if (job_.compare_exchange_weak(j, j + 1, std::memory_order_acq_rel)) {
                joined = true;
                break;
            }
        }
        if (!joined) continue;
        run_chunks(index);
        job_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    if (n_threads_ == 1 || n <= grain) {
        fn(0, n, 0);
        return;
    }
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    fn_ = &fn;
    n_ = n;
    grain_ = grain;
    next_.store(0);
    error_ = nullptr;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const uint64_t g = generation_.load(std::memory_order_relaxed) + 1;
        job_.store((g & 0xffffffffu) << 32, std::memory_order_release);  // open, nobody inside
        generation_.store(g, std::memory_order_release);
    }
    cv_.notify_all();
    run_chunks(0);
    // Every chunk is handed out: close the job to latecomers, wait for the workers inside it
    // (spinning first: they are usually finishing their last chunk; then yielding the core).
    job_.fetch_or(kClosed, std::memory_order_acq_rel);
    for (int spin = 0; job_.load(std::memory_order_acquire) & kActiveMask; ++spin) {
        if (spin < 4096)
            MOE_PAUSE();
        else
            std::this_thread::yield();
    }
    fn_ = nullptr;
    if (error_) {
        std::exception_ptr e = error_;
        error_ = nullptr;
        std::rethrow_exception(e);
    }
}

}  // namespace moe

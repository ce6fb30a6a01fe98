// A pool of worker threads that stay alive between forward passes. parallel_for splits
// [0, n) into chunks taken from a shared atomic counter; the calling thread works too.
// Workers spin briefly before sleeping so back-to-back ops do not pay a wake-up each time.
// Other processes may hold the cores (an editor's UI beside the engine): a worker that wakes
// late joins only if chunks are left, and the caller waits only for workers inside the job, so
// a descheduled worker costs its share of the work, not a scheduler time slice per operation.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moe {

class ThreadPool {
 public:
    explicit ThreadPool(int n_threads);  // total threads including the caller; <= 0: hardware concurrency
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }
    // Calls fn(begin, end, thread_index) over chunks of at most `grain` items covering [0, n).
    // Not re-entrant. Callers on different threads (sessions sharing the pool) take turns.
    // Exceptions thrown by fn are rethrown in the caller (first one wins).
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

 private:
    void worker(int index);
    void run_chunks(int thread_index);

    int n_threads_;
    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::mutex run_mutex_;  // one parallel_for at a time
    std::condition_variable cv_;
    std::atomic<uint64_t> generation_{0};
    // The current job: its generation (high 32 bits), kClosed once every chunk is handed out, and
    // the number of workers inside it (low bits). Workers join with a CAS while it is open.
    std::atomic<uint64_t> job_{0};
    static constexpr uint64_t kClosed = 1ull << 31;
    static constexpr uint64_t kActiveMask = kClosed - 1;
    std::atomic<bool> stop_{false};
    // current job
    const std::function<void(int64_t, int64_t, int)>* fn_ = nullptr;
    int64_t n_ = 0;
    int64_t grain_ = 1;
    std::atomic<int64_t> next_{0};
    std::exception_ptr error_;
    std::mutex error_mutex_;
};

// fn(i) for every i in [0, n): on the pool's threads when there are enough items (8 or more),
// else on the calling thread.
template <class Fn>
void for_rows(ThreadPool& pool, int64_t n, Fn&& fn) {
    if (n < 8) {
        for (int64_t i = 0; i < n; ++i) fn(i);
        return;
    }
    pool.parallel_for(n, 4, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) fn(i);
    });
}

}  // namespace moe

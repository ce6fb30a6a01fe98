// Experts under a memory budget (LoadOptions::memory_budget): the expert extents of a layout file
// (each (layer, expert) one 4096-aligned run of bytes holding its gate, up and down) are not
// mapped but read into a cache of fixed-size slots with direct reads (O_DIRECT where the file
// system allows it, so the page cache does not grow behind the budget's back), by a few reader
// threads. Every other weight stays mapped from the layout file.
//
// The forward pass asks in two steps: prefetch() as soon as a layer's router has chosen (the reads
// then overlap attention), and acquire() / wait() / release() around the layer's expert FFN. A
// slot is never reused while it is acquired or being read; otherwise the policy picks: the least
// frequently used extent (the tokens routed to it, halved every 64 x capacity of them; the least
// recently used among equals) but the `window` most recently used ones (just asked for, about to
// be used), or with Policy::Lru the least recently used one.
//
// guess(): experts a later layer will probably use, read ahead only while such guesses have been
// right (they are checked against what that layer then acquires, read or not) and no read is
// under way.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/uring.h"

namespace moe {

class ExpertCache {
 public:
    enum class Policy { Lfu, Lru };
    // Io::Threads: reader threads even where the kernel has io_uring (also the fallback without it).
    enum class Io { Auto, Threads };
    // One layer's experts in the file: expert e's extent is `bytes` bytes at offset + e * stride.
    struct Layer {
        uint64_t offset = 0;
        uint64_t stride = 0;
        uint64_t bytes = 0;
        uint32_t n_expert = 0;
    };
    struct Counts {
        uint64_t uses = 0;   // experts acquired by the forward pass
        uint64_t reads = 0;  // extents read from the file (by prefetch or acquire)
        uint64_t bytes_read = 0;
        double stall_ms = 0;  // time the forward pass waited for extents still being read
    };
    struct Stats {
        Counts total;
        std::vector<Counts> layers;
        double read_ms = 0;  // time the reader threads spent in reads (summed over threads)
        uint32_t capacity = 0;
        uint64_t slot_bytes = 0;
        uint32_t extents = 0;  // extents in the file
        bool direct = false;   // O_DIRECT reads (false: buffered reads, dropped from the page cache after)
        Policy policy = Policy::Lfu;
        std::string io;                           // how extents are read: io_uring, or reader threads (and why)
        bool profile_loaded = false;              // the use counts came from an earlier session's profile
        uint64_t guesses = 0, guessed_right = 0;  // guessed experts, and those the layer then used
        uint64_t guess_reads = 0;                 // extents read because of a guess
        double guess_accuracy = 0;                // recent share of right guesses (reads ahead at >= kGuessAccuracy)
    };
    static constexpr double kGuessAccuracy = 0.5;

    // Opens `path` for reading and holds `cache_bytes` of slots (at least one; their pages are
    // touched only as extents arrive), able to grow to `max_bytes` with resize(). Throws
    // moe::Error("io", ...).
    ExpertCache(const std::string& path, std::vector<Layer> layers, uint64_t cache_bytes, uint64_t max_bytes, Policy policy = Policy::Lfu,
                uint32_t window = 0, Io io = Io::Auto, int reader_threads = 4);
    ~ExpertCache();
    ExpertCache(const ExpertCache&) = delete;
    ExpertCache& operator=(const ExpertCache&) = delete;

    // How many extents it holds at once (resize() changes it).
    uint32_t capacity() const { return target_.load(std::memory_order_relaxed); }
    uint32_t max_capacity() const { return static_cast<uint32_t>(slots_.size()); }
    uint64_t slot_bytes() const { return slot_bytes_; }
    // Holds n extents from now on (1..max_capacity()): more slots, or fewer, the least valuable
    // extents dropped and their memory given back to the system (madvise); slots acquired or
    // being read are given up once released, and none while an acquire() waits for slots.
    void resize(uint32_t n);
    // The memory its slots take now: those that received an extent since their memory was last
    // given back.
    uint64_t used_bytes() const;

    // Starts reading those of these experts that are not held (no waiting), as far as slots are
    // free of acquisitions; marks them all most recently used.
    void prefetch(uint32_t layer, const int32_t* experts, size_t n);
    // Experts `layer` will probably use: remembered to be checked at its acquire(), and prefetched
    // while recent guesses were right often enough.
    void guess(uint32_t layer, const int32_t* experts, size_t n);
    // Holds these experts (distinct, at most capacity()) until release(): waits until enough
    // slots are free of other acquisitions, starts reads of the missing ones. tokens[i]: how many
    // tokens use experts[i] (what the least-frequently-used policy counts; absent: 1 each).
    void acquire(uint32_t layer, const int32_t* experts, size_t n, const uint32_t* tokens = nullptr);
    // An acquired expert's extent, once it has arrived. Throws moe::Error("io", ...) if its read failed.
    const uint8_t* wait(uint32_t layer, uint32_t expert);
    void release(uint32_t layer, const int32_t* experts, size_t n);

    Stats stats() const;

    // The extents' use counts are kept in `path` (the layout file's name + ".uses"): read now when
    // it matches this file's extents, written when the cache goes (best effort), so that a new
    // session starts knowing which experts are hot.
    void use_profile(const std::string& path);

 private:
    enum class State : uint8_t { Empty, Loading, Ready, Failed };
    struct Slot {
        int64_t key = -1;
        int32_t pins = 0;
        State state = State::Empty;
        int32_t prev = -1, next = -1;  // in the list of reusable slots
        bool listed = false;
        bool in_window = false;  // listed, among the window's most recent
        bool in_lfu = false;     // listed, in lfu_ (as {lfu_uses, tick, slot})
        bool retired = false;    // beyond the capacity: never listed, no memory
        bool touched = false;    // its memory holds (or held) an extent
        uint32_t lfu_uses = 0;
        uint64_t tick = 0;  // when listed
        std::string error;
    };

    uint64_t key_of(uint32_t layer, uint32_t expert) const;
    uint8_t* base() const;  // the first slot (2 MB-aligned)
    // The list of reusable slots (not acquired, not being read): least recently used first.
    void unlist(int32_t s);
    void list_back(int32_t s);
    void list_front(int32_t s);
    // The listed slot to reuse next (the list must not be empty).
    int32_t victim() const;
    void to_lfu(int32_t s);
    void age();  // halves every extent's uses
    void resize_locked(uint32_t n);
    void retire(int32_t s);  // a listed slot (or an empty one): out, its memory given back
    void pay_owed();         // retires what resize() could not yet, while no acquire() waits
    // prefetch() with mu_ held; guessed: on behalf of guess() (counted in guess_reads_).
    void prefetch_locked(uint32_t layer, const int32_t* experts, size_t n, bool guessed);
    // Gives slot `s` (taken from the list) to `key` and queues its read.
    void start_read(int32_t s, uint64_t key);
    // io_uring: submits the read of slot s's extent from byte `got` on; poll() takes in the
    // finished ones; block() waits until something may have changed (a read, a release).
    void submit(int32_t s, uint64_t got);
    void poll();
    void block(std::unique_lock<std::mutex>& lock);
    // A read is over (got bytes; error empty when complete): the slot Ready, Failed or forgotten.
    void finish_read(int32_t s, uint64_t got, const std::string& error);
    void reader();

    std::vector<Layer> layers_;
    std::vector<uint64_t> first_key_;  // per layer: the key of its expert 0
    std::vector<uint32_t> layer_of_key_;
    int fd_ = -1;
    bool direct_ = false;
    uint64_t slot_bytes_ = 0;
    uint8_t* mem_ = nullptr;
    uint64_t mem_bytes_ = 0;

    mutable std::mutex mu_;
    std::condition_variable changed_;  // a read finished or slots were released
    std::condition_variable queued_;   // a read was queued, or stopping
    std::vector<Slot> slots_;
    std::vector<int32_t> slot_of_;     // per key: its slot, or -1
    std::atomic<uint32_t> target_{0};  // the capacity asked for
    uint32_t active_ = 0;              // slots not retired (more than target_ while some are owed)
    uint32_t waiting_ = 0;             // acquire() calls waiting for slots
    uint32_t touched_ = 0;             // slots whose memory holds an extent
    uint32_t loading_ = 0;             // reads started, not finished
    Policy policy_;
    std::vector<uint32_t> uses_;  // per key: tokens routed to it, halved every aging_period_ of them
    uint64_t since_aging_ = 0;
    std::vector<int32_t> held_;  // prefetch(): this call's held slots, kept out of the list meanwhile
    std::string profile_;        // use_profile()
    bool profile_loaded_ = false;
    void save_profile() const;
    std::set<std::tuple<uint32_t, uint64_t, int32_t>> lfu_;  // listed slots but the window's: {uses, tick, slot}
    std::deque<int32_t> window_q_;                           // the window_ most recently listed slots
    uint64_t tick_ = 0;
    uint32_t window_ = 0;
    std::vector<std::vector<uint32_t>> guessed_;  // per layer: the experts guessed, until its acquire()
    uint64_t guesses_ = 0, guessed_right_ = 0, guess_reads_ = 0;
    double guess_accuracy_ = 1.0;

    int32_t head_ = -1, tail_ = -1;
    size_t listed_ = 0;
    std::deque<int32_t> queue_;  // slots to read
    bool stopping_ = false;
    Counts total_;
    std::vector<Counts> per_layer_;
    double read_ms_ = 0;
    std::vector<std::thread> readers_;
    Uring ring_;
    bool use_ring_ = false;
    std::string ring_why_;                                        // why not
    size_t in_flight_ = 0;                                        // io_uring reads submitted, not yet taken in
    std::vector<std::chrono::steady_clock::time_point> started_;  // per slot: its read's start
};

}  // namespace moe

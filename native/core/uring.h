// A minimal io_uring for reads (Linux 5.6+; raw system calls, no liburing): queue reads, learn
// which have finished. Not thread-safe: its owner serialises the calls. Where the kernel has no
// io_uring (or forbids it: kernel.io_uring_disabled), open() fails and the owner uses threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moe {

class Uring {
 public:
    Uring() = default;
    ~Uring();
    Uring(const Uring&) = delete;
    Uring& operator=(const Uring&) = delete;

    // Sets up a ring of `entries` submission slots; false (and why) when the kernel refuses.
    bool open(unsigned entries, std::string* why);
    bool is_open() const { return fd_ >= 0; }

    // Queues and submits a read of len bytes at offset into buf; false when the submission
    // queue is full or the kernel refuses (errno set).
    bool read(int file, void* buf, uint32_t len, uint64_t offset, uint64_t tag);
    // Calls done(tag, result) for each finished read (result: bytes read, or -errno); returns how many.
    template <typename F>
    size_t reap(F&& done) {
        size_t n = 0;
        uint64_t tag;
        int32_t res;
        while (next(&tag, &res)) {
            done(tag, res);
            ++n;
        }
        return n;
    }
    // Blocks until at least one read has finished, a signal interrupts, or (kernels since 5.11)
    // a millisecond has passed.
    void wait_one();

 private:
    bool next(uint64_t* tag, int32_t* res);

    int fd_ = -1;
    void* sq_ring_ = nullptr;
    size_t sq_ring_size_ = 0;
    void* cq_ring_ = nullptr;
    size_t cq_ring_size_ = 0;
    void* sqes_ = nullptr;
    size_t sqes_size_ = 0;
    unsigned *sq_head_ = nullptr, *sq_tail_ = nullptr, *sq_mask_ = nullptr, *sq_array_ = nullptr;
    unsigned *cq_head_ = nullptr, *cq_tail_ = nullptr, *cq_mask_ = nullptr;
    void* cqes_ = nullptr;
    unsigned sq_entries_ = 0;
    bool ext_arg_ = false;
};

}  // namespace moe

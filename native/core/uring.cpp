// The io_uring of uring.h (the ring layout and system calls of linux/io_uring.h).
#include "core/uring.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#if defined(__linux__)
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#endif

namespace moe {

#if defined(__linux__) && defined(__NR_io_uring_setup) && defined(__NR_io_uring_enter)

namespace {
int sys_setup(unsigned entries, io_uring_params* p) { return static_cast<int>(syscall(__NR_io_uring_setup, entries, p)); }
int sys_enter(int fd, unsigned submit, unsigned complete, unsigned flags, const void* arg = nullptr, size_t arg_size = 0) {
    return static_cast<int>(syscall(__NR_io_uring_enter, fd, submit, complete, flags, arg, arg_size));
}
unsigned* at(void* base, uint32_t off) { return reinterpret_cast<unsigned*>(static_cast<char*>(base) + off); }
unsigned load_acquire(const unsigned* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_release(unsigned* p, unsigned v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
}  // namespace

Uring::~Uring() {
    if (sqes_) munmap(sqes_, sqes_size_);
    if (cq_ring_ && cq_ring_ != sq_ring_) munmap(cq_ring_, cq_ring_size_);
    if (sq_ring_) munmap(sq_ring_, sq_ring_size_);
    if (fd_ >= 0) ::close(fd_);
}

bool Uring::open(unsigned entries, std::string* why) {
    io_uring_params p;
    std::memset(&p, 0, sizeof p);
    const int fd = sys_setup(entries, &p);
    if (fd < 0) {
        if (why) *why = std::string("io_uring_setup: ") + std::strerror(errno);
        return false;
    }
    fd_ = fd;
    sq_ring_size_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    cq_ring_size_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    const bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single) sq_ring_size_ = cq_ring_size_ = std::max(sq_ring_size_, cq_ring_size_);
    sq_ring_ = mmap(nullptr, sq_ring_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (sq_ring_ == MAP_FAILED) sq_ring_ = nullptr;
    cq_ring_ = single ? sq_ring_ : mmap(nullptr, cq_ring_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (cq_ring_ == MAP_FAILED) cq_ring_ = nullptr;
    sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
    sqes_ = mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sqes_ == MAP_FAILED) sqes_ = nullptr;
    if (!sq_ring_ || !cq_ring_ || !sqes_) {
        if (why) *why = std::string("io_uring mmap: ") + std::strerror(errno);
        return false;
    }
    sq_head_ = at(sq_ring_, p.sq_off.head);
    sq_tail_ = at(sq_ring_, p.sq_off.tail);
    sq_mask_ = at(sq_ring_, p.sq_off.ring_mask);
    sq_array_ = at(sq_ring_, p.sq_off.array);
    cq_head_ = at(cq_ring_, p.cq_off.head);
    cq_tail_ = at(cq_ring_, p.cq_off.tail);
    cq_mask_ = at(cq_ring_, p.cq_off.ring_mask);
    cqes_ = static_cast<char*>(cq_ring_) + p.cq_off.cqes;
    sq_entries_ = p.sq_entries;
#ifdef IORING_FEAT_EXT_ARG
    ext_arg_ = (p.features & IORING_FEAT_EXT_ARG) != 0;
#endif
    return true;
}

bool Uring::read(int file, void* buf, uint32_t len, uint64_t offset, uint64_t tag) {
    const unsigned tail = *sq_tail_;
    if (tail - load_acquire(sq_head_) >= sq_entries_) {
        errno = EBUSY;
        return false;
    }
    const unsigned i = tail & *sq_mask_;
    io_uring_sqe* e = static_cast<io_uring_sqe*>(sqes_) + i;
    std::memset(e, 0, sizeof *e);
    e->opcode = IORING_OP_READ;
    e->fd = file;
    e->addr = reinterpret_cast<uint64_t>(buf);
    e->len = len;
    e->off = offset;
    e->user_data = tag;
    e->flags = IOSQE_ASYNC;  // to the kernel's workers: a submission that would wait (a full device queue) must not stall the caller
    sq_array_[i] = i;
    store_release(sq_tail_, tail + 1);
    for (;;) {
        const int r = sys_enter(fd_, 1, 0, 0);
        if (r >= 0) return true;
        if (errno != EINTR && errno != EAGAIN && errno != EBUSY) return false;
        if (errno != EINTR) wait_one();  // the kernel is short of room: let reads finish first
    }
}

bool Uring::next(uint64_t* tag, int32_t* res) {
    const unsigned head = *cq_head_;
    if (head == load_acquire(cq_tail_)) return false;
    const io_uring_cqe* c = static_cast<const io_uring_cqe*>(cqes_) + (head & *cq_mask_);
    *tag = c->user_data;
    *res = c->res;
    store_release(cq_head_, head + 1);
    return true;
}

void Uring::wait_one() {
#ifdef IORING_ENTER_EXT_ARG
    // at most a millisecond: another thread may take in the read this one waits for
    if (ext_arg_) {
        __kernel_timespec ts{0, 1000000};
        io_uring_getevents_arg arg;
        std::memset(&arg, 0, sizeof arg);
        arg.ts = reinterpret_cast<uint64_t>(&ts);
        if (sys_enter(fd_, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg) >= 0 || errno != EINVAL) return;
        ext_arg_ = false;  // an older kernel: no timeouts
    }
#endif
    (void)sys_enter(fd_, 0, 1, IORING_ENTER_GETEVENTS);
}

#else  // no io_uring here: open() fails, the owner uses threads

Uring::~Uring() = default;
bool Uring::open(unsigned, std::string* why) {
    if (why) *why = "no io_uring on this system";
    return false;
}
bool Uring::read(int, void*, uint32_t, uint64_t, uint64_t) { return false; }
bool Uring::next(uint64_t*, int32_t*) { return false; }
void Uring::wait_one() {}

#endif

}  // namespace moe

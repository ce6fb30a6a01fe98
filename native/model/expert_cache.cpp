// The expert cache; see expert_cache.h.
#include "model/expert_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/common.h"

namespace moe {

namespace {
constexpr uint64_t kAlign = 4096;       // O_DIRECT: buffer, offset and length in whole pages
constexpr uint64_t kHuge = 2ull << 20;  // the slots' memory in 2 MB pages where the kernel gives them
uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
std::string read_error(uint32_t expert, uint32_t layer, int err) {
    return err == 0 ? strfmt("the layout file ends inside expert %u of layer %u", expert, layer)
                    : strfmt("cannot read expert %u of layer %u from the layout file: %s", expert, layer, std::strerror(err));
}
double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

ExpertCache::ExpertCache(const std::string& path, std::vector<Layer> layers, uint64_t cache_bytes, uint64_t max_bytes, Policy policy,
                         uint32_t window, Io io, int reader_threads)
    : layers_(std::move(layers)), policy_(policy), window_(window) {
    uint64_t keys = 0;
    for (size_t il = 0; il < layers_.size(); ++il) {
        const Layer& l = layers_[il];
        first_key_.push_back(keys);
        keys += l.n_expert;
        layer_of_key_.insert(layer_of_key_.end(), l.n_expert, static_cast<uint32_t>(il));
        slot_bytes_ = std::max(slot_bytes_, round_up(l.bytes, kAlign));
        if (l.offset % kAlign != 0 || l.stride % kAlign != 0)
            throw Error("internal", strfmt("the experts of layer %zu are not 4096-aligned in the layout file", il));
    }
    if (slot_bytes_ == 0) throw Error("internal", "the expert cache has no experts to hold");
    const uint64_t n_slots = std::max<uint64_t>(1, std::min<uint64_t>(cache_bytes / slot_bytes_, keys));
    const uint64_t n_max = std::max<uint64_t>(n_slots, std::min<uint64_t>(max_bytes / slot_bytes_, keys));
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    direct_ = fd_ >= 0;
    if (fd_ < 0) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // no O_DIRECT here (tmpfs): dropped after each read
    if (fd_ < 0) throw Error("io", strfmt("cannot open %s: %s", path.c_str(), std::strerror(errno)));
    mem_bytes_ = round_up(n_max * slot_bytes_, kHuge) + kHuge;
    void* p = mmap(nullptr, mem_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        ::close(fd_);
        throw Error("out_of_memory", strfmt("cannot reserve %.0f MB for the expert cache", static_cast<double>(mem_bytes_) / 1e6));
    }
    mem_ = static_cast<uint8_t*>(p);
    (void)madvise(base(), n_max * slot_bytes_, MADV_HUGEPAGE);
    slot_of_.assign(keys, -1);
    uses_.assign(keys, 0);
    slots_.resize(n_max);
    for (size_t s = 0; s < n_max; ++s) slots_[s].retired = s >= n_slots;
    for (size_t s = 0; s < n_slots; ++s) list_back(static_cast<int32_t>(s));
    active_ = static_cast<uint32_t>(n_slots);
    target_ = static_cast<uint32_t>(n_slots);
    per_layer_.resize(layers_.size());
    guessed_.resize(layers_.size());
    started_.resize(n_max);
    // io_uring where the kernel has it (reads in flight without a thread each); else reader threads
    if (io == Io::Threads)
        ring_why_ = "MOE_EXPERT_IO=threads";
    else
        use_ring_ = ring_.open(256, &ring_why_);
    if (!use_ring_)
        for (int i = 0; i < std::max(1, reader_threads); ++i) readers_.emplace_back([this] { reader(); });
}

ExpertCache::~ExpertCache() {
    {
        std::unique_lock<std::mutex> lock(mu_);
        stopping_ = true;
        while (use_ring_ && in_flight_ > 0) block(lock);  // the kernel writes into the slots until then
        if (total_.uses > 0) save_profile();
    }
    queued_.notify_all();
    for (std::thread& t : readers_) t.join();
    if (mem_) munmap(mem_, mem_bytes_);
    if (fd_ >= 0) ::close(fd_);
}

uint8_t* ExpertCache::base() const { return reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(mem_), kHuge)); }

uint64_t ExpertCache::key_of(uint32_t layer, uint32_t expert) const {
    if (layer >= layers_.size() || expert >= layers_[layer].n_expert)
        throw Error("internal", strfmt("expert %u of layer %u is not in the expert cache's file", expert, layer));
    return first_key_[layer] + expert;
}

void ExpertCache::unlist(int32_t s) {
    Slot& x = slots_[static_cast<size_t>(s)];
    if (!x.listed) return;
    (x.prev >= 0 ? slots_[static_cast<size_t>(x.prev)].next : head_) = x.next;
    (x.next >= 0 ? slots_[static_cast<size_t>(x.next)].prev : tail_) = x.prev;
    x.prev = x.next = -1;
    x.listed = false;
    --listed_;
    if (x.in_lfu) {
        lfu_.erase({x.lfu_uses, x.tick, s});
        x.in_lfu = false;
    }
    if (x.in_window) {
        window_q_.erase(std::find(window_q_.begin(), window_q_.end(), s));
        x.in_window = false;
    }
}

void ExpertCache::to_lfu(int32_t s) {
    Slot& x = slots_[static_cast<size_t>(s)];
    x.lfu_uses = x.key < 0 ? 0 : uses_[static_cast<size_t>(x.key)];
    lfu_.insert({x.lfu_uses, x.tick, s});
    x.in_lfu = true;
}

void ExpertCache::list_back(int32_t s) {
    unlist(s);
    Slot& x = slots_[static_cast<size_t>(s)];
    x.prev = tail_;
    x.next = -1;
    (tail_ >= 0 ? slots_[static_cast<size_t>(tail_)].next : head_) = s;
    tail_ = s;
    x.listed = true;
    x.tick = ++tick_;
    ++listed_;
    // the most recently used stay out of the least-frequently-used order for a while
    window_q_.push_back(s);
    x.in_window = true;
    while (window_q_.size() > window_) {
        const int32_t old = window_q_.front();
        window_q_.pop_front();
        slots_[static_cast<size_t>(old)].in_window = false;
        to_lfu(old);
    }
}

void ExpertCache::list_front(int32_t s) {
    unlist(s);
    Slot& x = slots_[static_cast<size_t>(s)];
    x.prev = -1;
    x.next = head_;
    (head_ >= 0 ? slots_[static_cast<size_t>(head_)].prev : tail_) = s;
    head_ = s;
    x.listed = true;
    x.tick = 0;
    ++listed_;
    to_lfu(s);
}

int32_t ExpertCache::victim() const {
    // the least used (an empty slot first; the least recently used among equals), never one of
    // the window's most recently used unless only those are left
    if (policy_ == Policy::Lru || lfu_.empty()) return head_;
    return std::get<2>(*lfu_.begin());
}

void ExpertCache::age() {
    for (uint32_t& u : uses_) u /= 2;
    lfu_.clear();
    for (size_t s = 0; s < slots_.size(); ++s)
        if (slots_[s].in_lfu) to_lfu(static_cast<int32_t>(s));
}

void ExpertCache::resize(uint32_t n) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        resize_locked(n);
    }
    changed_.notify_all();
}

void ExpertCache::resize_locked(uint32_t n) {
    n = std::max<uint32_t>(1, std::min<uint32_t>(n, max_capacity()));
    target_ = n;
    for (size_t s = 0; s < slots_.size() && active_ < n; ++s) {
        if (!slots_[s].retired) continue;
        slots_[s].retired = false;
        ++active_;
        list_front(static_cast<int32_t>(s));
    }
    pay_owed();
}

void ExpertCache::retire(int32_t s) {
    Slot& x = slots_[static_cast<size_t>(s)];
    unlist(s);
    if (x.key >= 0) slot_of_[static_cast<size_t>(x.key)] = -1;
    x.key = -1;
    x.state = State::Empty;
    x.error.clear();
    x.retired = true;
    --active_;
    if (x.touched) {
        (void)madvise(base() + static_cast<uint64_t>(s) * slot_bytes_, slot_bytes_, MADV_DONTNEED);
        x.touched = false;
        --touched_;
    }
}

void ExpertCache::pay_owed() {
    // the least valuable first (empty slots, then the least used); never what an acquire() waits for
    while (active_ > target_ && waiting_ == 0 && listed_ > 0) retire(victim());
}

uint64_t ExpertCache::used_bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return uint64_t{touched_} * slot_bytes_;
}

void ExpertCache::start_read(int32_t s, uint64_t key) {
    Slot& x = slots_[static_cast<size_t>(s)];
    unlist(s);
    if (!x.touched) {
        x.touched = true;
        ++touched_;
    }
    ++loading_;
    if (x.key >= 0) slot_of_[static_cast<size_t>(x.key)] = -1;
    x.key = static_cast<int64_t>(key);
    x.state = State::Loading;
    x.error.clear();
    slot_of_[key] = s;
    const uint32_t layer = layer_of_key_[key];
    total_.reads += 1;
    per_layer_[layer].reads += 1;
    if (!use_ring_) {
        queue_.push_back(s);
        queued_.notify_one();
        return;
    }
    started_[static_cast<size_t>(s)] = std::chrono::steady_clock::now();
    submit(s, 0);
}

void ExpertCache::submit(int32_t s, uint64_t got) {
    const uint64_t key = static_cast<uint64_t>(slots_[static_cast<size_t>(s)].key);
    const uint32_t layer = layer_of_key_[key];
    const Layer& l = layers_[layer];
    const uint64_t at = l.offset + (key - first_key_[layer]) * l.stride;
    const uint64_t want = round_up(l.bytes, kAlign);
    uint8_t* dst = base() + static_cast<uint64_t>(s) * slot_bytes_;
    if (ring_.read(fd_, dst + got, static_cast<uint32_t>(want - got), at + got, (static_cast<uint64_t>(s) << 32) | (got / kAlign))) {
        ++in_flight_;
        return;
    }
    finish_read(s, got, read_error(static_cast<uint32_t>(key - first_key_[layer]), layer, errno));
}

void ExpertCache::poll() {
    if (!use_ring_) return;
    ring_.reap([&](uint64_t tag, int32_t res) {
        --in_flight_;
        const int32_t s = static_cast<int32_t>(tag >> 32);
        const uint64_t before = (tag & 0xffffffffu) * kAlign;
        const uint64_t key = static_cast<uint64_t>(slots_[static_cast<size_t>(s)].key);
        const uint32_t layer = layer_of_key_[key];
        const uint32_t expert = static_cast<uint32_t>(key - first_key_[layer]);
        const uint64_t got = before + static_cast<uint64_t>(std::max(0, res));
        if (res < 0 && res != -EINTR && res != -EAGAIN) {
            finish_read(s, before, read_error(expert, layer, -res));
        } else if (res == 0) {
            finish_read(s, before, read_error(expert, layer, 0));
        } else if (got < layers_[layer].bytes) {
            // a short read (rare): the rest, from a page boundary (what O_DIRECT needs)
            submit(s, got / kAlign * kAlign);
        } else {
            finish_read(s, got, std::string());
        }
    });
}

void ExpertCache::block(std::unique_lock<std::mutex>& lock) {
    if (!use_ring_) {
        changed_.wait(lock);
        return;
    }
    poll();
    if (in_flight_ > 0) {
        lock.unlock();
        ring_.wait_one();
        lock.lock();
        poll();
    } else {
        changed_.wait_for(lock, std::chrono::milliseconds(1));  // another session's release
    }
}

void ExpertCache::finish_read(int32_t s, uint64_t got, const std::string& error) {
    Slot& x = slots_[static_cast<size_t>(s)];
    const uint64_t key = static_cast<uint64_t>(x.key);
    const uint32_t layer = layer_of_key_[key];
    --loading_;
    if (use_ring_) read_ms_ += ms_since(started_[static_cast<size_t>(s)]);
    total_.bytes_read += got;
    per_layer_[layer].bytes_read += got;
    if (error.empty()) {
        x.state = State::Ready;
        if (x.pins == 0) list_back(s);
    } else if (x.pins > 0) {
        x.state = State::Failed;
        x.error = error;
    } else {  // a prefetch nobody waits for: forgotten
        slot_of_[key] = -1;
        x.key = -1;
        x.state = State::Empty;
        list_front(s);
    }
    pay_owed();
    changed_.notify_all();
}

void ExpertCache::prefetch(uint32_t layer, const int32_t* experts, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    prefetch_locked(layer, experts, n, false);
}

void ExpertCache::prefetch_locked(uint32_t layer, const int32_t* experts, size_t n, bool guessed) {
    poll();
    // those held leave the list meanwhile (the reads must not take their slots), and come back
    // as the most recently used
    held_.clear();
    for (size_t i = 0; i < n; ++i) {
        const int32_t s = slot_of_[key_of(layer, static_cast<uint32_t>(experts[i]))];
        if (s >= 0 && slots_[static_cast<size_t>(s)].listed) {
            unlist(s);
            held_.push_back(s);
        }
    }
    for (size_t i = 0; i < n && listed_ > 0; ++i) {
        const uint64_t key = key_of(layer, static_cast<uint32_t>(experts[i]));
        if (slot_of_[key] >= 0) continue;
        start_read(victim(), key);
        if (guessed) ++guess_reads_;
    }
    for (int32_t s : held_) list_back(s);
}

void ExpertCache::guess(uint32_t layer, const int32_t* experts, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    if (layer >= guessed_.size()) return;
    guessed_[layer].assign(experts, experts + n);
    // read ahead only while no read is under way: on a busy disk a wrong guess (one in six) takes
    // the time of a read the layer will need (4B skewed in 1 GiB: 154 -> 132 MB read per token,
    // decode speed unchanged)
    if (guess_accuracy_ >= kGuessAccuracy && loading_ == 0) prefetch_locked(layer, experts, n, true);
}

void ExpertCache::acquire(uint32_t layer, const int32_t* experts, size_t n, const uint32_t* tokens) {
    if (n > slots_.size()) throw Error("internal", strfmt("%zu experts asked for at once from an expert cache of %zu", n, slots_.size()));
    std::unique_lock<std::mutex> lock(mu_);
    if (n > target_) resize_locked(static_cast<uint32_t>(n));  // (shrunk by another session since this one sized its groups)
    poll();
    // the guess for this layer, checked
    if (!guessed_[layer].empty()) {
        uint64_t right = 0;
        for (uint32_t g : guessed_[layer]) right += std::find(experts, experts + n, static_cast<int32_t>(g)) != experts + n ? 1 : 0;
        guesses_ += guessed_[layer].size();
        guessed_right_ += right;
        guess_accuracy_ = 0.9 * guess_accuracy_ + 0.1 * static_cast<double>(right) / static_cast<double>(guessed_[layer].size());
        guessed_[layer].clear();
    }
    // all at once: wait until the missing ones find slots that are neither held by this call nor acquired
    for (;;) {
        size_t need = 0, ours_listed = 0;
        for (size_t i = 0; i < n; ++i) {
            const int32_t s = slot_of_[key_of(layer, static_cast<uint32_t>(experts[i]))];
            if (s < 0)
                ++need;
            else if (slots_[static_cast<size_t>(s)].listed)
                ++ours_listed;
        }
        if (listed_ - ours_listed >= need) break;
        ++waiting_;
        block(lock);
        --waiting_;
    }
    for (size_t i = 0; i < n; ++i) {
        const int32_t s = slot_of_[key_of(layer, static_cast<uint32_t>(experts[i]))];
        if (s < 0) continue;
        unlist(s);
        slots_[static_cast<size_t>(s)].pins += 1;
    }
    for (size_t i = 0; i < n; ++i) {
        const uint64_t key = key_of(layer, static_cast<uint32_t>(experts[i]));
        if (slot_of_[key] >= 0) continue;
        const int32_t s = victim();
        start_read(s, key);
        slots_[static_cast<size_t>(s)].pins += 1;
    }
    uint64_t routed = 0;
    for (size_t i = 0; i < n; ++i) {
        const uint32_t t = tokens ? tokens[i] : 1;
        uses_[key_of(layer, static_cast<uint32_t>(experts[i]))] += t;
        routed += t;
    }
    if ((since_aging_ += routed) >= uint64_t{64} * target_) {
        since_aging_ = 0;
        age();
    }
    total_.uses += n;
    per_layer_[layer].uses += n;
    pay_owed();
}

const uint8_t* ExpertCache::wait(uint32_t layer, uint32_t expert) {
    const uint64_t key = key_of(layer, expert);
    std::unique_lock<std::mutex> lock(mu_);
    const int32_t s = slot_of_[key];
    if (s < 0 || slots_[static_cast<size_t>(s)].pins == 0)
        throw Error("internal", strfmt("expert %u of layer %u waited for without being acquired", expert, layer));
    Slot& x = slots_[static_cast<size_t>(s)];
    poll();
    if (x.state == State::Loading) {
        const auto t0 = std::chrono::steady_clock::now();
        while (x.state == State::Loading) block(lock);
        const double ms = ms_since(t0);
        total_.stall_ms += ms;
        per_layer_[layer].stall_ms += ms;
    }
    if (x.state == State::Failed) throw Error("io", x.error);
    return base() + static_cast<uint64_t>(s) * slot_bytes_;
}

void ExpertCache::release(uint32_t layer, const int32_t* experts, size_t n) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        poll();
        for (size_t i = 0; i < n; ++i) {
            const int32_t s = slot_of_[key_of(layer, static_cast<uint32_t>(experts[i]))];
            if (s < 0 || slots_[static_cast<size_t>(s)].pins == 0) continue;
            Slot& x = slots_[static_cast<size_t>(s)];
            if (--x.pins > 0) continue;
            if (x.state == State::Failed) {  // read again by the next one who asks
                slot_of_[static_cast<size_t>(x.key)] = -1;
                x.key = -1;
                x.state = State::Empty;
                list_front(s);
            } else if (x.state == State::Ready) {
                list_back(s);
            }  // (still being read: listed when it arrives)
        }
        pay_owed();
    }
    changed_.notify_all();
}

void ExpertCache::reader() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
        queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        const int32_t s = queue_.front();
        queue_.pop_front();
        const uint64_t key = static_cast<uint64_t>(slots_[static_cast<size_t>(s)].key);
        const uint32_t layer = layer_of_key_[key];
        const Layer& l = layers_[layer];
        const uint32_t expert = static_cast<uint32_t>(key - first_key_[layer]);
        uint8_t* dst = base() + static_cast<uint64_t>(s) * slot_bytes_;
        lock.unlock();

        // (the slot is neither listed nor reassigned while it is being read)
        const auto t0 = std::chrono::steady_clock::now();
        const uint64_t at = l.offset + expert * l.stride;
        const uint64_t want = round_up(l.bytes, kAlign);
        uint64_t got = 0;
        std::string error;
        while (got < l.bytes) {
            const ssize_t r = ::pread(fd_, dst + got, want - got, static_cast<off_t>(at + got));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                error = read_error(expert, layer, errno);
                break;
            }
            if (r == 0) {
                error = read_error(expert, layer, 0);
                break;
            }
            got += static_cast<uint64_t>(r);
        }
        if (!direct_) (void)posix_fadvise(fd_, static_cast<off_t>(at), static_cast<off_t>(want), POSIX_FADV_DONTNEED);
        const double ms = ms_since(t0);

        lock.lock();
        read_ms_ += ms;
        finish_read(s, got, error);
    }
}

namespace {
constexpr char kProfileMagic[8] = {'S', 'T', 'U', 'S', 'E', 'S', '0', '1'};
}

void ExpertCache::use_profile(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    profile_ = path;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return;
    char magic[8];
    uint32_t n = 0;
    std::vector<uint32_t> uses(uses_.size());
    const bool ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, kProfileMagic, 8) == 0 && std::fread(&n, 4, 1, f) == 1 &&
                    n == uses.size() && std::fread(uses.data(), 4, n, f) == n && std::fgetc(f) == EOF;
    std::fclose(f);
    if (!ok) return;  // another model's or damaged: counted anew, overwritten at the end
    uses_ = uses;
    for (size_t s = 0; s < slots_.size(); ++s)  // (empty slots all count 0: the order is unchanged)
        if (slots_[s].in_lfu) {
            lfu_.erase({slots_[s].lfu_uses, slots_[s].tick, static_cast<int32_t>(s)});
            to_lfu(static_cast<int32_t>(s));
        }
    profile_loaded_ = true;
}

void ExpertCache::save_profile() const {
    if (profile_.empty()) return;
    const std::string tmp = strfmt("%s.tmp.%d", profile_.c_str(), static_cast<int>(getpid()));
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) return;
    const uint32_t n = static_cast<uint32_t>(uses_.size());
    const bool ok = std::fwrite(kProfileMagic, 1, 8, f) == 8 && std::fwrite(&n, 4, 1, f) == 1 && std::fwrite(uses_.data(), 4, n, f) == n;
    if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), profile_.c_str()) != 0) std::remove(tmp.c_str());
}

ExpertCache::Stats ExpertCache::stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    Stats st;
    st.total = total_;
    st.layers = per_layer_;
    st.read_ms = read_ms_;
    st.capacity = capacity();
    st.slot_bytes = slot_bytes_;
    st.extents = static_cast<uint32_t>(slot_of_.size());
    st.direct = direct_;
    st.policy = policy_;
    st.profile_loaded = profile_loaded_;
    st.io = use_ring_ ? "io_uring" : strfmt("%zu reader threads (%s)", readers_.size(), ring_why_.c_str());
    st.guesses = guesses_;
    st.guessed_right = guessed_right_;
    st.guess_reads = guess_reads_;
    st.guess_accuracy = guess_accuracy_;
    return st;
}

}  // namespace moe

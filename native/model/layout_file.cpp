#include "model/layout_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "core/common.h"
#include "kernels/kernels.h"
#include "model/weights.h"

namespace moe {

namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'L', 'A', 'Y', 'T', '\0'};
constexpr uint64_t kAlign = 4096;

struct Header {
    char magic[8];
    uint32_t version;
    uint32_t n_entries;
    uint64_t gguf_size;
    uint64_t gguf_mtime_ns;
    uint64_t identity;
    uint64_t file_size;     // the whole layout file
    uint64_t entries_hash;  // FNV-1a of the entries
};

struct Entry {
    uint64_t gguf_offset;  // of the tensor's data in the GGUF file
    uint64_t bytes;        // of each of its matrices (one per expert)
    uint64_t offset;       // of its first matrix's relaid-out copy in this file
    uint64_t stride;       // from one of its matrices to the next here
    uint32_t type;
    uint32_t layout;  // Layout
    uint32_t n_matrices;
    uint32_t reserved;
};

uint64_t fnv1a(const void* p, size_t n, uint64_t h = 1469598103934665603ull) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// The GGUF's identity: size, mtime, first MiB (header, metadata, tensor list) and 16 samples.
struct Identity {
    uint64_t size = 0, mtime_ns = 0, hash = 0;
};

Identity identify(const GgufFile& gguf) {
    struct stat st;
    if (stat(gguf.path().c_str(), &st) != 0) throw Error("io", strfmt("cannot stat %s: %s", gguf.path().c_str(), std::strerror(errno)));
    Identity id;
    id.size = static_cast<uint64_t>(st.st_size);
    id.mtime_ns = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull + static_cast<uint64_t>(st.st_mtim.tv_nsec);
    const uint8_t* d = gguf.mapping()->data();
    const uint64_t n = gguf.mapping()->size();
    uint64_t h = fnv1a(&id.size, sizeof id.size);
    h = fnv1a(&id.mtime_ns, sizeof id.mtime_ns, h);
    h = fnv1a(d, static_cast<size_t>(std::min<uint64_t>(n, 1 << 20)), h);
    for (int i = 1; i <= 16; ++i) {
        const uint64_t at = n / 17 * static_cast<uint64_t>(i);
        h = fnv1a(d + at, static_cast<size_t>(std::min<uint64_t>(4096, n - at)), h);
    }
    id.hash = h;
    return id;
}

// Where each matrix goes: a layer's expert gate, up and down (consecutive in `todo`, as
// Architecture::matrices lists them) in one extent per expert, each matrix at a 4096-byte boundary
// in it, so that one read brings an expert in; other tensors contiguous, each at a 4096-byte boundary.
std::vector<Entry> plan(const std::vector<Tensor*>& todo, const GgufFile& gguf, uint64_t* data_start, uint64_t* file_size) {
    std::vector<Entry> entries(todo.size());
    uint64_t off = round_up(sizeof(Header) + todo.size() * sizeof(Entry), kAlign);
    *data_start = off;
    for (size_t i = 0; i < todo.size(); ++i) {
        const Tensor& t = *todo[i];
        Entry& e = entries[i];
        e.gguf_offset = static_cast<uint64_t>(t.data - gguf.mapping()->data());
        e.bytes = t.matrix_bytes();
        e.type = static_cast<uint32_t>(t.type);
        e.layout = static_cast<uint32_t>(target_layout(t));
        e.n_matrices = static_cast<uint32_t>(t.ne[2]);
        const bool extent = t.role == Role::ExpertGate && t.ne[2] > 1 && i + 2 < todo.size() && todo[i + 1]->role == Role::ExpertUp &&
                            todo[i + 2]->role == Role::ExpertDown && todo[i + 1]->ne[2] == t.ne[2] && todo[i + 2]->ne[2] == t.ne[2];
        if (extent) {
            uint64_t stride = 0;
            for (size_t k = i; k < i + 3; ++k) stride += round_up(todo[k]->matrix_bytes(), kAlign);
            uint64_t at = off;
            for (size_t k = i; k < i + 3; ++k) {
                Entry& ek = entries[k];
                const Tensor& tk = *todo[k];
                ek.gguf_offset = static_cast<uint64_t>(tk.data - gguf.mapping()->data());
                ek.bytes = tk.matrix_bytes();
                ek.type = static_cast<uint32_t>(tk.type);
                ek.layout = static_cast<uint32_t>(target_layout(tk));
                ek.n_matrices = static_cast<uint32_t>(tk.ne[2]);
                ek.offset = at;
                ek.stride = stride;
                at += round_up(tk.matrix_bytes(), kAlign);
            }
            off += stride * static_cast<uint64_t>(t.ne[2]);
            i += 2;
            continue;
        }
        e.offset = off;
        e.stride = e.bytes;
        off = round_up(off + e.bytes * e.n_matrices, kAlign);
    }
    *file_size = off;
    return entries;
}

Header make_header(const Identity& id, const std::vector<Entry>& entries, uint64_t file_size) {
    Header h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kLayoutVersion;
    h.n_entries = static_cast<uint32_t>(entries.size());
    h.gguf_size = id.size;
    h.gguf_mtime_ns = id.mtime_ns;
    h.identity = id.hash;
    h.file_size = file_size;
    h.entries_hash = fnv1a(entries.data(), entries.size() * sizeof(Entry));
    return h;
}

// ---------------------------------------------------------------- the GGUF's path
// Recorded in the header page right after the entries: a uint32 length, then the bytes (no NUL),
// with room for kMaxPath bytes, so a load of the same GGUF from another path rewrites it in place.
// Folder scans read it to find layout files whose GGUF changed or is gone (remove_orphans).

constexpr uint32_t kMaxPath = 4096;

uint64_t path_record_offset(uint32_t n_entries) { return sizeof(Header) + uint64_t{n_entries} * sizeof(Entry); }

// The GGUF's absolute path with symbolic links resolved (as given when that fails).
std::string absolute_path(const std::string& path) {
    char buf[PATH_MAX];
    return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

// Moves every matrix further by whole pages when the header page has no room for the path record.
// (The matrices' relative placement, as plan chose it, is kept.)
void make_room_for_path(std::vector<Entry>& entries, uint64_t* file_size) {
    if (entries.empty()) return;
    uint64_t first = entries[0].offset;
    for (const Entry& e : entries) first = std::min(first, e.offset);
    const uint64_t need = path_record_offset(static_cast<uint32_t>(entries.size())) + 4 + kMaxPath;
    if (need <= first) return;
    const uint64_t shift = round_up(need - first, kAlign);
    for (Entry& e : entries) e.offset += shift;
    *file_size += shift;
}

std::vector<uint8_t> path_record(const std::string& gguf_path) {
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(gguf_path.size(), kMaxPath));
    std::vector<uint8_t> rec(4 + n);
    std::memcpy(rec.data(), &n, 4);
    std::memcpy(rec.data() + 4, gguf_path.data(), n);
    return rec;
}

bool read_exact(int fd, void* p, size_t n, uint64_t off) { return pread(fd, p, n, static_cast<off_t>(off)) == static_cast<ssize_t>(n); }

// The header and recorded GGUF path of a layout file of this version; false when it is not one
// or records no path.
bool read_recorded(const std::string& file, Header* h, std::string* gguf_path) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    uint32_t n = 0;
    bool ok = read_exact(fd, h, sizeof *h, 0) && std::memcmp(h->magic, kMagic, sizeof kMagic) == 0 && h->version == kLayoutVersion &&
              read_exact(fd, &n, 4, path_record_offset(h->n_entries)) && n > 0 && n <= kMaxPath;
    if (ok) {
        gguf_path->resize(n);
        ok = read_exact(fd, &(*gguf_path)[0], n, path_record_offset(h->n_entries) + 4);
    }
    ::close(fd);
    return ok;
}

// Rewrites the recorded path of a valid layout file (its GGUF was moved or is also elsewhere).
void update_recorded_path(const MappedFile& map, const std::string& file, uint32_t n_entries, const std::string& gguf_path) {
    const uint64_t at = path_record_offset(n_entries);
    const std::vector<uint8_t> rec = path_record(gguf_path);
    if (map.size() >= at + rec.size() && std::memcmp(map.data() + at, rec.data(), rec.size()) == 0) return;
    const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;  // a read-only folder: the record stays as it was
    (void)!pwrite(fd, rec.data(), rec.size(), static_cast<off_t>(at));
    ::close(fd);
}

// Removes from `dir` the layout files no load will use again: those of this version whose GGUF
// (the recorded path) is gone, changed since (size or mtime), or is `gguf_path` with another
// identity than `id`; and the temporary files of builds whose process is gone. A layout file whose
// GGUF exists unchanged is kept, also when another model is being loaded.
void remove_orphans(const std::string& dir, const std::string& gguf_path, uint64_t id, const std::string& keep) {
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    const std::string tmp_mark = ".tmp.";  // <layout>.tmp.<pid>, <layout>.uses.tmp.<pid>
    for (dirent* e; (e = readdir(d));) {
        const std::string name = e->d_name;
        const std::string file = dir + "/" + name;
        std::string why;
        const size_t t = name.rfind(tmp_mark);
        if (t != std::string::npos && t + tmp_mark.size() < name.size() && name.find(".stlayout") < t &&
            name.find_first_not_of("0123456789", t + tmp_mark.size()) == std::string::npos) {
            const long pid = std::strtol(name.c_str() + t + tmp_mark.size(), nullptr, 10);
            if (pid > 0 && pid != static_cast<long>(getpid()) && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
                why = strfmt("an unfinished build of process %ld, which is gone", pid);
        } else if (name != keep && name.size() > 9 && name.compare(name.size() - 9, 9, ".stlayout") == 0) {
            Header h;
            std::string recorded;
            struct stat st;
            if (!read_recorded(file, &h, &recorded)) continue;
            if (recorded == gguf_path && h.identity != id) {
                why = strfmt("%s has changed since it was made", recorded.c_str());
            } else if (stat(recorded.c_str(), &st) != 0) {
                if (errno == ENOENT) why = strfmt("%s no longer exists", recorded.c_str());
            } else {
                const uint64_t mtime_ns =
                    static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull + static_cast<uint64_t>(st.st_mtim.tv_nsec);
                if (static_cast<uint64_t>(st.st_size) != h.gguf_size || mtime_ns != h.gguf_mtime_ns)
                    why = strfmt("%s has changed since it was made", recorded.c_str());
            }
        }
        if (!why.empty()) std::remove((file + ".uses").c_str());  // its experts' use counts go with it
        if (!why.empty() && std::remove(file.c_str()) == 0)
            log(LogLevel::Info, strfmt("removed the layout file %s: %s", file.c_str(), why.c_str()));
    }
    closedir(d);
}

// ---------------------------------------------------------------- checking and building

// "" when the file at `path` is the layout we want; else why not.
std::string check(const MappedFile& f, const Header& want, const std::vector<Entry>& entries) {
    if (f.size() < sizeof(Header)) return "it is truncated";
    Header got;
    std::memcpy(&got, f.data(), sizeof got);
    if (std::memcmp(got.magic, kMagic, sizeof kMagic) != 0) return "it is not a layout file";
    if (got.version != want.version) return strfmt("it has layout version %u, not %u", got.version, want.version);
    if (got.gguf_size != want.gguf_size || got.gguf_mtime_ns != want.gguf_mtime_ns || got.identity != want.identity)
        return "it was made from another GGUF file";
    if (got.file_size != f.size() || got.file_size != want.file_size) return "it is truncated or has the wrong size";
    if (got.n_entries != want.n_entries || f.size() < sizeof(Header) + entries.size() * sizeof(Entry)) return "its matrices differ";
    if (std::memcmp(f.data() + sizeof(Header), entries.data(), entries.size() * sizeof(Entry)) != 0 ||
        got.entries_hash != want.entries_hash)
        return "its matrices differ";
    return "";
}

void write_all(int fd, const void* p, size_t n, uint64_t off, const std::string& path) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    while (n > 0) {
        const ssize_t w = pwrite(fd, b, n, static_cast<off_t>(off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            const int e = w < 0 ? errno : ENOSPC;
            throw Error(e == ENOSPC || e == EDQUOT ? "no_space" : "io", strfmt("cannot write %s: %s", path.c_str(), std::strerror(e)));
        }
        b += w;
        n -= static_cast<size_t>(w);
        off += static_cast<uint64_t>(w);
    }
}

[[noreturn]] void throw_cancelled() { throw Error("cancelled", "the model load was cancelled while its layout file was being written"); }

// Writes the layout file to a temporary name and renames it into place.
void build(const std::string& path, const std::vector<Tensor*>& todo, const std::vector<Entry>& entries, const Header& header,
           const std::string& gguf_path, const std::function<void(double)>& progress, const std::atomic<bool>* cancel) {
    struct statvfs vfs;
    const std::string dir = path.substr(0, path.find_last_of('/'));
    if (statvfs(dir.c_str(), &vfs) == 0) {
        const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
        if (free_bytes < header.file_size + (64ull << 20))
            throw Error("no_space", strfmt("not enough free space in %s for the model's layout file (%.1f GB needed, %.1f GB free)",
                                           dir.c_str(), header.file_size / 1e9, free_bytes / 1e9));
    }
    const std::string tmp = strfmt("%s.tmp.%d", path.c_str(), static_cast<int>(getpid()));
    int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(errno == ENOSPC ? "no_space" : "io", strfmt("cannot create %s: %s", tmp.c_str(), std::strerror(errno)));
    try {
        // items of about 1 MB (whole relayout units of one matrix), relaid out in a buffer and
        // written at their place
        struct Item {
            size_t e;
            uint64_t matrix, begin, len;
        };
        std::vector<Item> items;
        for (size_t i = 0; i < todo.size(); ++i) {
            const uint64_t unit = relayout_unit(*todo[i], static_cast<Layout>(entries[i].layout));
            const uint64_t per = std::max<uint64_t>(1, (1ull << 20) / unit) * unit;
            for (uint64_t m = 0; m < entries[i].n_matrices; ++m)
                for (uint64_t b = 0; b < entries[i].bytes; b += per) items.push_back({i, m, b, std::min(per, entries[i].bytes - b)});
        }
        uint64_t total = 0;
        for (const Entry& e : entries) total += e.bytes * e.n_matrices;
        std::atomic<uint64_t> done{0};
        std::atomic<int> reported{-1};  // the last percent reported
        std::atomic<size_t> next{0};
        std::atomic<bool> failed{false};
        std::string failure_code, failure;
        std::mutex mu, progress_mu;
        auto work = [&] {
            std::vector<uint8_t> buf;
            try {
                for (size_t i; !failed.load() && (i = next.fetch_add(1)) < items.size();) {
                    if (cancel && cancel->load()) throw_cancelled();
                    const Item& it = items[i];
                    const Tensor& t = *todo[it.e];
                    const Entry& en = entries[it.e];
                    const uint8_t* src = t.data + it.matrix * t.nb2 + it.begin;
                    buf.assign(src, src + it.len);
                    relayout_units(t, static_cast<Layout>(en.layout), buf.data(), it.len);
                    write_all(fd, buf.data(), buf.size(), en.offset + it.matrix * en.stride + it.begin, tmp);
                    const int pct = static_cast<int>((done += it.len) * 100 / std::max<uint64_t>(1, total));
                    if (pct > reported.load() && progress) {
                        // under the lock: two threads' reports reach the caller in rising order
                        std::lock_guard<std::mutex> lock(progress_mu);
                        if (pct > reported.load()) {
                            reported.store(pct);
                            progress(pct / 100.0);
                        }
                    }
                }
            } catch (const Error& e) {
                std::lock_guard<std::mutex> lock(mu);
                if (!failed.exchange(true)) {
                    failure_code = e.code;
                    failure = e.what();
                }
            }
        };
        const unsigned n_threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
        std::vector<std::thread> threads;
        for (unsigned i = 1; i < n_threads; ++i) threads.emplace_back(work);
        work();
        for (std::thread& th : threads) th.join();
        if (failed) throw Error(failure_code, failure);
        uint64_t first = entries.empty() ? kAlign : entries[0].offset;
        for (const Entry& e : entries) first = std::min(first, e.offset);
        std::vector<uint8_t> head(static_cast<size_t>(first), 0);
        std::memcpy(head.data(), &header, sizeof header);
        std::memcpy(head.data() + sizeof header, entries.data(), entries.size() * sizeof(Entry));
        const std::vector<uint8_t> rec = path_record(gguf_path);
        std::memcpy(head.data() + path_record_offset(header.n_entries), rec.data(), rec.size());
        if (ftruncate(fd, static_cast<off_t>(header.file_size)) != 0)
            throw Error(errno == ENOSPC ? "no_space" : "io", strfmt("cannot size %s: %s", tmp.c_str(), std::strerror(errno)));
        write_all(fd, head.data(), head.size(), 0, tmp);
        if (fsync(fd) != 0)
            throw Error(errno == ENOSPC ? "no_space" : "io", strfmt("cannot write %s: %s", tmp.c_str(), std::strerror(errno)));
        // Drop the pages the writes left in the page cache: written by several threads they are
        // scattered in physical memory, and reading the file back in one sequential pass
        // (populate_read) gets large contiguous folios instead. Measured on the 4B Q4_K_M file: decode
        // 35 t/s from the written pages, 56 t/s from pages read back (the in-memory relayout: 50).
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
        fd = -1;
        if (std::rename(tmp.c_str(), path.c_str()) != 0)
            throw Error("io", strfmt("cannot rename %s: %s", tmp.c_str(), std::strerror(errno)));
    } catch (...) {
        if (fd >= 0) ::close(fd);
        std::remove(tmp.c_str());
        throw;
    }
}

// MemAvailable of /proc/meminfo in bytes (0 when unknown: no populate).
uint64_t available_memory() {
    FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    std::fclose(f);
    return static_cast<uint64_t>(kb) * 1024;
}

// Whether reading a file of this folder back gives 2 MB folios mapped by 2 MB entries (kernel
// and file system support, transparent huge pages not off): a 4 MB file written, dropped from
// the page cache and read back. Asked once per process.
bool huge_folios_here(const std::string& layout_path) {
    static std::mutex mutex;
    static int known = -1;
    std::lock_guard<std::mutex> lock(mutex);
    if (known >= 0) return known == 1;
    known = 0;
    const std::string dir = layout_path.substr(0, layout_path.rfind('/'));
    const std::string probe = strfmt("%s/huge-page-probe.stlayout.tmp.%d", dir.c_str(), static_cast<int>(getpid()));
    const int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    std::vector<uint8_t> data(size_t{4} << 20);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 2654435761u >> 24);
    bool ok = ::pwrite(fd, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()) && fdatasync(fd) == 0;
    if (ok) (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    if (ok) {
        try {
            MappedFile m(probe);
            m.advise_huge();
            m.populate_read();
            known = m.huge_mapped_share() > 0 ? 1 : 0;
        } catch (const Error&) {
        }
    }
    std::remove(probe.c_str());
    log(LogLevel::Info, strfmt("2 MB pages for files in %s: %s", dir.c_str(), known == 1 ? "yes" : "no"));
    return known == 1;
}

// Maps the weights the way the forward pass streams them best: 2 MB folios of the page cache,
// each mapped by one page-table entry (measured on the 21B shapes: decode 21 t/s against 10 t/s
// from the same file cached in 4 KB pages, the TLB misses and the prefetchers stopping at every
// 4 KB). One sequential pass maps every page (no fault per 64 KB later) when the file is
// already cached or fits in half the free memory; otherwise pages come in as the forward pass
// touches them. Pages cached small (the file read under memory pressure, or by another
// program) are dropped, where no other process maps them, and read again (once per file in a process).
void map_for_streaming(std::unique_ptr<MappedFile>& map, const std::string& path) {
    map->advise_huge();
    if (map->size() >= available_memory() / 2 && map->resident_share() < 0.9) return;
    map->populate_read();
    const double huge = map->huge_mapped_share();
    if (huge >= 0.5 || map->size() < (uint64_t{256} << 20) || !huge_folios_here(path)) return;
    {
        // once per file and process: when reading it again did not help (no 2 MB blocks of free
        // memory), later loads do not pay for it again
        static std::mutex mutex;
        static std::vector<std::string> tried;
        std::lock_guard<std::mutex> lock(mutex);
        if (std::find(tried.begin(), tried.end(), path) != tried.end()) return;
        tried.push_back(path);
    }
    log(LogLevel::Info, strfmt("layout file %s: %.0f%% of it in 2 MB pages; reading it again", path.c_str(), 100 * huge));
    map.reset();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }
    map = std::make_unique<MappedFile>(path);
    map->advise_huge();
    map->populate_read();
    log(LogLevel::Info,
        strfmt("layout file %s: %.0f%% in 2 MB pages after reading it again", path.c_str(), 100 * map->huge_mapped_share()));
}

// mkdir -p
void make_dirs(const std::string& dir) {
    for (size_t i = 1; i <= dir.size(); ++i) {
        if (i < dir.size() && dir[i] != '/') continue;
        const std::string part = dir.substr(0, i);
        if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
            throw Error("io", strfmt("cannot create the layout folder %s: %s", part.c_str(), std::strerror(errno)));
    }
}

// Removes the layout files of other layout versions (this engine never uses them again).
void remove_other_versions(const std::string& dir) {
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    for (dirent* e; (e = readdir(d));) {
        const std::string name = e->d_name;
        unsigned version = 0;
        char tail[16] = {};
        if (name.size() > 20 && name[16] == '.' && std::sscanf(name.c_str() + 17, "v%u.%15s", &version, tail) == 2 &&
            (std::strcmp(tail, "stlayout") == 0 || std::strcmp(tail, "stlayout.uses") == 0) && version != kLayoutVersion) {
            log(LogLevel::Info, strfmt("removing the layout file %s/%s (layout version %u)", dir.c_str(), name.c_str(), version));
            std::remove((dir + "/" + name).c_str());
        }
    }
    closedir(d);
}

}  // namespace

LayoutFileResult use_layout_file(const std::vector<Tensor*>& matrices, const GgufFile& gguf, const std::string& dir,
                                 const std::function<void(double)>& progress, const std::atomic<bool>* cancel, bool map_all) {
    LayoutFileResult r;
    const std::vector<Tensor*> todo = layout_file_candidates(matrices);
    if (todo.empty() || !gguf.mapping()) return r;
    const Identity id = identify(gguf);
    uint64_t data_start = 0, file_size = 0;
    std::vector<Entry> entries = plan(todo, gguf, &data_start, &file_size);
    make_room_for_path(entries, &file_size);
    const std::string gguf_path = absolute_path(gguf.path());
    const Header header = make_header(id, entries, file_size);
    const std::string stem = strfmt("%016llx", static_cast<unsigned long long>(id.hash));
    const std::string name = strfmt("%s.v%u.stlayout", stem.c_str(), kLayoutVersion);
    r.path = dir + "/" + name;
    remove_orphans(dir, gguf_path, id.hash, name);

    std::unique_ptr<MappedFile> map;
    struct stat st;
    if (stat(r.path.c_str(), &st) == 0) {
        try {
            map = std::make_unique<MappedFile>(r.path);
            r.rebuilt_because = check(*map, header, entries);
        } catch (const Error& e) {
            r.rebuilt_because = e.what();
        }
        if (!r.rebuilt_because.empty()) {
            map.reset();
            log(LogLevel::Info, strfmt("layout file %s not used (%s): rebuilding it", r.path.c_str(), r.rebuilt_because.c_str()));
        }
    }
    if (!map) {
        make_dirs(dir);
        remove_other_versions(dir);
        if (cancel && cancel->load()) throw_cancelled();
        build(r.path, todo, entries, header, gguf_path, progress, cancel);
        r.built = true;
        map = std::make_unique<MappedFile>(r.path);
        const std::string why = check(*map, header, entries);
        if (!why.empty()) throw Error("io", strfmt("the layout file %s just written is not valid (%s)", r.path.c_str(), why.c_str()));
    } else {
        update_recorded_path(*map, r.path, header.n_entries, gguf_path);
    }
    if (map_all) {
        map_for_streaming(map, r.path);
    } else {
        // under a memory budget the experts are read into the expert cache, not mapped: only the
        // other weights are read in, in 2 MB folios where the kernel gives them
        // (widened to 2 MB boundaries, but never into an expert's extents: they would be mapped,
        // outside the expert cache, for nothing)
        map->advise_huge();
        map->advise_random();  // (no readahead into the experts around them; a page the kernel drops comes back alone)
        const auto is_expert = [&](size_t i) {
            return todo[i]->role == Role::ExpertGate || todo[i]->role == Role::ExpertUp || todo[i]->role == Role::ExpertDown;
        };
        const auto end_of = [&](size_t i) {
            return entries[i].offset + (entries[i].n_matrices - 1) * entries[i].stride + entries[i].bytes;
        };
        for (size_t i = 0; i < todo.size(); ++i) {
            if (is_expert(i)) continue;
            uint64_t lo = 0, hi = map->size();
            for (size_t j = 0; j < todo.size(); ++j) {
                if (!is_expert(j)) continue;
                if (end_of(j) <= entries[i].offset) lo = std::max(lo, end_of(j));
                if (entries[j].offset >= end_of(i)) hi = std::min(hi, entries[j].offset);
            }
            // a 2 MB block shared with an expert's extent is read in 4 KB pages
            const uint64_t k2m = uint64_t{2} << 20;
            if (entries[i].offset / k2m * k2m < lo) map->advise_no_huge(map->data() + entries[i].offset, 1);
            if ((end_of(i) + k2m - 1) / k2m * k2m > hi) map->advise_no_huge(map->data() + end_of(i) - 1, 1);
            map->populate_read(map->data() + entries[i].offset, end_of(i) - entries[i].offset, map->data() + lo, map->data() + hi);
        }
    }
    r.huge_pages = map->huge_mapped_share();
    for (size_t i = 0; i < todo.size(); ++i) {
        todo[i]->data = map->data() + entries[i].offset;
        todo[i]->nb2 = entries[i].stride;
        todo[i]->layout = static_cast<Layout>(entries[i].layout);
        r.bytes += entries[i].bytes * entries[i].n_matrices;
    }
    r.map = std::move(map);
    return r;
}

}  // namespace moe

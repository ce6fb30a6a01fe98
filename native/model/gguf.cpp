// GGUF parsing with every read bounds-checked; see gguf.h.
#include "model/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "core/common.h"
#include "core/dtype.h"

namespace moe {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little endian
constexpr uint64_t kMaxKeyLen = 65535;       // the GGUF spec's limit on a key's length
constexpr uint64_t kMaxTensorName = 63;      // GGML_MAX_NAME - 1
constexpr uint64_t kMaxKv = 1ull << 20;
constexpr uint64_t kMaxTensors = 1ull << 20;
constexpr uint64_t kMinAlignment = 8;  // every typed load from tensor data is naturally aligned
constexpr uint64_t kMaxAlignment = 1ull << 20;
// What one parsed item costs besides its strings' characters (a std::map node and its
// contents), for the kMaxMetadataBytes budget.
constexpr uint64_t kKvOverhead = sizeof(std::string) + sizeof(GgufValue) + 64;
constexpr uint64_t kTensorOverhead = sizeof(GgufTensorInfo) + 2 * (kMaxTensorName + 1) + sizeof(std::string) + 64;

[[noreturn]] void bad(const std::string& name, const std::string& what) {
    throw Error("bad_gguf", strfmt("%s is not a valid GGUF file: %s", name.c_str(), what.c_str()));
}

class Reader {
 public:
    Reader(const uint8_t* d, uint64_t n, const std::string& name) : d_(d), n_(n), name_(name) {}
    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return n_ - pos_; }
    void need(uint64_t bytes, const char* what) {
        if (bytes > remaining()) bad(name_, strfmt("truncated while reading %s at byte %llu", what, (unsigned long long)pos_));
    }
    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, d_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    const uint8_t* here() const { return d_ + pos_; }
    void skip(uint64_t bytes, const char* what) {
        need(bytes, what);
        pos_ += bytes;
    }
    // A string's length, checked against the bytes left (nothing is allocated yet).
    uint64_t read_string_len(const char* what) {
        uint64_t len = read<uint64_t>(what);
        if (len > remaining())
            bad(name_, strfmt("%s at byte %llu claims %llu bytes, more than the file holds", what, (unsigned long long)(pos_ - 8),
                              (unsigned long long)len));
        return len;
    }
    std::string take_string(uint64_t len, const char* what) {
        need(len, what);
        std::string s(reinterpret_cast<const char*>(d_ + pos_), static_cast<size_t>(len));
        pos_ += len;
        return s;
    }
    // A string of at most max_len bytes (longer ones are refused before any allocation).
    std::string read_string(const char* what, uint64_t max_len) {
        uint64_t len = read_string_len(what);
        if (len > max_len)
            bad(name_, strfmt("%s at byte %llu is %llu bytes long (at most %llu allowed)", what, (unsigned long long)(pos_ - 8),
                              (unsigned long long)len, (unsigned long long)max_len));
        return take_string(len, what);
    }
    const std::string& name() const { return name_; }

 private:
    const uint8_t* d_;
    uint64_t n_;
    uint64_t pos_ = 0;
    const std::string& name_;
};

uint64_t scalar_size(GgufType t) {
    switch (t) {
        case GgufType::U8:
        case GgufType::I8:
        case GgufType::BOOL: return 1;
        case GgufType::U16:
        case GgufType::I16: return 2;
        case GgufType::U32:
        case GgufType::I32:
        case GgufType::F32: return 4;
        case GgufType::U64:
        case GgufType::I64:
        case GgufType::F64: return 8;
        default: return 0;
    }
}

bool valid_type(uint32_t t) { return t <= 12; }

template <typename T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));  // the bytes need not be aligned
    return v;
}

// Decodes one scalar (not a string) of type t from scalar_size(t) bytes at p.
void decode_scalar(GgufType t, const uint8_t* p, GgufValue& v) {
    v.type = t;
    switch (t) {
        case GgufType::U8:
        case GgufType::BOOL:
            v.u = load<uint8_t>(p);
            v.i = static_cast<int64_t>(v.u);
            break;
        case GgufType::I8:
            v.i = load<int8_t>(p);
            v.u = static_cast<uint64_t>(v.i);
            break;
        case GgufType::U16:
            v.u = load<uint16_t>(p);
            v.i = static_cast<int64_t>(v.u);
            break;
        case GgufType::I16:
            v.i = load<int16_t>(p);
            v.u = static_cast<uint64_t>(v.i);
            break;
        case GgufType::U32:
            v.u = load<uint32_t>(p);
            v.i = static_cast<int64_t>(v.u);
            break;
        case GgufType::I32:
            v.i = load<int32_t>(p);
            v.u = static_cast<uint64_t>(v.i);
            break;
        case GgufType::U64:
            v.u = load<uint64_t>(p);
            v.i = static_cast<int64_t>(v.u);
            break;
        case GgufType::I64:
            v.i = load<int64_t>(p);
            v.u = static_cast<uint64_t>(v.i);
            break;
        case GgufType::F32: v.f = load<float>(p); break;
        case GgufType::F64: v.f = load<double>(p); break;
        default: break;
    }
}

// Walks an array's string records (already checked at parse time; checked again here so a
// GgufValue never reads out of its bytes). fn(const char* data, uint64_t len) per element.
template <typename Fn>
void for_each_string(const GgufValue& v, const std::string& path, const std::string& key, Fn fn) {
    uint64_t pos = 0;
    for (uint64_t j = 0; j < v.n_elems; ++j) {
        if (v.elems_bytes - pos < 8) bad(path, strfmt("metadata array '%s' is truncated", key.c_str()));
        const uint64_t len = load<uint64_t>(v.elems + pos);
        pos += 8;
        if (len > v.elems_bytes - pos) bad(path, strfmt("metadata array '%s' is truncated", key.c_str()));
        fn(reinterpret_cast<const char*>(v.elems + pos), len);
        pos += len;
    }
}

}  // namespace

const char* gguf_type_name(GgufType t) {
    static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    uint32_t i = static_cast<uint32_t>(t);
    return i <= 12 ? names[i] : "unknown";
}

GgufValue GgufValue::element(uint64_t index) const {
    const uint64_t sz = scalar_size(elem_type);
    if (type != GgufType::ARRAY || sz == 0 || index >= n_elems || elems_bytes / sz < n_elems)
        throw Error("bad_gguf", "GGUF metadata: element access outside an array of scalars");
    GgufValue v;
    decode_scalar(elem_type, elems + index * sz, v);
    return v;
}

bool GgufValue::is_integer() const {
    switch (type) {
        case GgufType::U8:
        case GgufType::I8:
        case GgufType::U16:
        case GgufType::I16:
        case GgufType::U32:
        case GgufType::I32:
        case GgufType::U64:
        case GgufType::I64:
        case GgufType::BOOL: return true;
        default: return false;
    }
}

// ---- MappedFile ----

namespace {

constexpr uint64_t kHugePage = uint64_t{2} << 20;

// A private read-only mapping of a whole file at an address that is a multiple of 2 MB (so is
// file offset 0), where the kernel can map a 2 MB folio of the page cache with one page-table
// entry: far fewer TLB misses while the forward pass streams the weights (see advise_huge).
void* map_aligned(int fd, uint64_t size) {
    if (size < kHugePage) return mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    void* r = mmap(nullptr, size + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) return mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const uintptr_t lo = reinterpret_cast<uintptr_t>(r), hi = lo + size + kHugePage;
    const uintptr_t a = (lo + kHugePage - 1) & ~(kHugePage - 1);
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t end = a + ((size + page - 1) & ~(page - 1));
    void* p = mmap(reinterpret_cast<void*>(a), size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        munmap(r, size + kHugePage);
        return MAP_FAILED;
    }
    if (a > lo) munmap(r, a - lo);
    if (hi > end) munmap(reinterpret_cast<void*>(end), hi - end);
    return p;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever, and
    // some devices wait too; O_NOCTTY: a terminal never becomes ours. The type check comes
    // right after, on the descriptor itself (no race with the path changing).
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) throw Error("io", strfmt("cannot open %s: %s", path.c_str(), std::strerror(errno)));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        throw Error("io", strfmt("cannot stat %s: %s", path.c_str(), std::strerror(e)));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                           : S_ISFIFO(st.st_mode) ? "a FIFO"
                           : S_ISCHR(st.st_mode)  ? "a character device"
                           : S_ISBLK(st.st_mode)  ? "a block device"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                                                  : "an unknown kind of file";
        throw Error("io", strfmt("%s is not a regular file (%s)", path.c_str(), kind));
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ == 0) {
        ::close(fd);
        throw Error("bad_gguf", strfmt("%s is not a valid GGUF file: it is empty", path.c_str()));
    }
    // Private: the model may relayout some weights in place (copy-on-write, see Model::load).
    void* p = map_aligned(fd, size_);
    int e = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw Error("io", strfmt("cannot map %s: %s", path.c_str(), std::strerror(e)));
    data_ = static_cast<const uint8_t*>(p);
}

void MappedFile::protect(const uint8_t* p, size_t len, bool writable) const {
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t lo = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
    const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + len + page - 1) & ~(page - 1);
    if (mprotect(reinterpret_cast<void*>(lo), hi - lo, writable ? PROT_READ | PROT_WRITE : PROT_READ) != 0)
        throw Error("io", strfmt("cannot change the protection of the model mapping: %s", std::strerror(errno)));
}

void MappedFile::populate_write(const uint8_t* p, size_t len) const {
#ifdef __linux__
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t lo = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
    const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + len + page - 1) & ~(page - 1);
    (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)len;
#endif
}

void MappedFile::populate_read() const {
#ifdef __linux__
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif
    (void)madvise(const_cast<uint8_t*>(data_), size_, MADV_POPULATE_READ);
#endif
}

void MappedFile::populate_read(const uint8_t* p, size_t len, const uint8_t* lo_limit, const uint8_t* hi_limit) const {
#ifdef __linux__
    const uintptr_t page = 4096;
    const uintptr_t first = reinterpret_cast<uintptr_t>(lo_limit ? std::max(lo_limit, data_) : data_);
    const uintptr_t end = reinterpret_cast<uintptr_t>(hi_limit ? std::min(hi_limit, data_ + size_) : data_ + size_);
    const uintptr_t lo = std::max(reinterpret_cast<uintptr_t>(p) / kHugePage * kHugePage, (first + page - 1) / page * page);
    const uintptr_t hi = std::min((reinterpret_cast<uintptr_t>(p) + len + kHugePage - 1) / kHugePage * kHugePage, end / page * page);
    if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_READ);
#else
    (void)p, (void)len, (void)lo_limit, (void)hi_limit;
#endif
}

void MappedFile::advise_huge() const {
#ifdef __linux__
    if (size_ >= kHugePage) (void)madvise(const_cast<uint8_t*>(data_), size_, MADV_HUGEPAGE);
#endif
}

void MappedFile::advise_no_huge(const uint8_t* p, size_t len) const {
#ifdef __linux__
    const uintptr_t lo = std::max(reinterpret_cast<uintptr_t>(p) / kHugePage * kHugePage, reinterpret_cast<uintptr_t>(data_));
    const uintptr_t hi = std::min((reinterpret_cast<uintptr_t>(p) + len + kHugePage - 1) / kHugePage * kHugePage,
                                  (reinterpret_cast<uintptr_t>(data_) + size_ + 4095) / 4096 * 4096);
    if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_NOHUGEPAGE);
#else
    (void)p, (void)len;
#endif
}

void MappedFile::advise_random() const {
#ifdef __linux__
    (void)madvise(const_cast<uint8_t*>(data_), size_, MADV_RANDOM);
#endif
}

double MappedFile::resident_share() const {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t pages = static_cast<size_t>((size_ + page - 1) / page);
    std::vector<unsigned char> in(pages);
    if (mincore(const_cast<uint8_t*>(data_), static_cast<size_t>(size_), in.data()) != 0) return 0;
    size_t n = 0;
    for (unsigned char c : in) n += c & 1;
    return pages ? static_cast<double>(n) / static_cast<double>(pages) : 0;
}

double MappedFile::huge_mapped_share() const {
#ifdef __linux__
    FILE* f = std::fopen("/proc/self/smaps", "r");
    if (!f) return 0;
    char line[512];
    bool ours = false;
    unsigned long long kb = 0;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long lo = 0, hi = 0;
        if (std::sscanf(line, "%llx-%llx ", &lo, &hi) == 2) {  // a mapping's first line
            if (ours) break;
            ours = lo == reinterpret_cast<uintptr_t>(data_);
        } else if (ours && std::sscanf(line, "FilePmdMapped: %llu kB", &kb) == 1) {
            break;
        }
    }
    std::fclose(f);
    return size_ ? static_cast<double>(kb) * 1024.0 / static_cast<double>(size_) : 0;
#else
    return 0;
#endif
}

MappedFile::~MappedFile() {
    if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

// ---- GgufFile ----

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
    std::unique_ptr<GgufFile> f(new GgufFile());
    f->path_ = path;
    f->map_ = std::make_unique<MappedFile>(path);
    f->parse_all(f->map_->data(), f->map_->size());
    return f;
}

std::unique_ptr<GgufFile> GgufFile::parse(const uint8_t* data, uint64_t size, const std::string& name) {
    std::unique_ptr<GgufFile> f(new GgufFile());
    f->path_ = name;
    f->parse_all(data, size);
    return f;
}

void GgufFile::parse_all(const uint8_t* data, uint64_t size) {
    size_ = size;
    Reader r(data, size, path_);
    if (size < 4) bad(path_, "the file is shorter than the 4-byte magic");
    uint32_t magic = r.read<uint32_t>("magic");
    if (magic != kGgufMagic) bad(path_, "wrong magic (expected \"GGUF\")");
    version_ = r.read<uint32_t>("version");
    if (version_ == 1) bad(path_, "GGUF version 1 is obsolete and not supported; re-convert the model");
    if (version_ != 2 && version_ != 3) bad(path_, strfmt("unsupported GGUF version %u (supported: 2, 3)", version_));
    uint64_t n_tensors = r.read<uint64_t>("tensor count");
    uint64_t n_kv = r.read<uint64_t>("metadata count");
    if (n_tensors > kMaxTensors || n_tensors * 24 > r.remaining())
        bad(path_, strfmt("absurd tensor count %llu", (unsigned long long)n_tensors));
    if (n_kv > kMaxKv || n_kv * 13 > r.remaining()) bad(path_, strfmt("absurd metadata count %llu", (unsigned long long)n_kv));

    // Memory the parsed metadata and tensor list will take, checked before each allocation.
    uint64_t budget = 0;
    auto charge = [&](uint64_t bytes, const std::string& what) {
        if (bytes > kMaxMetadataBytes - budget)
            bad(path_, strfmt("%s would take the parsed metadata past %llu MiB of memory", what.c_str(),
                              (unsigned long long)(kMaxMetadataBytes >> 20)));
        budget += bytes;
    };
    charge(n_tensors * kTensorOverhead, strfmt("the tensor list (%llu tensors)", (unsigned long long)n_tensors));

    for (uint64_t k = 0; k < n_kv; ++k) {
        std::string key = r.read_string("metadata key", kMaxKeyLen);
        charge(kKvOverhead + key.size(), strfmt("metadata key '%s'", key.c_str()));
        uint32_t t = r.read<uint32_t>("metadata value type");
        if (!valid_type(t)) bad(path_, strfmt("metadata key '%s' has unknown value type %u", key.c_str(), t));
        GgufValue v;
        GgufType type = static_cast<GgufType>(t);
        const std::string what = strfmt("metadata '%s'", key.c_str());
        if (type == GgufType::ARRAY) {
            uint32_t et = r.read<uint32_t>("array element type");
            if (!valid_type(et)) bad(path_, strfmt("metadata array '%s' has unknown element type %u", key.c_str(), et));
            GgufType etype = static_cast<GgufType>(et);
            if (etype == GgufType::ARRAY) bad(path_, strfmt("metadata '%s' is a nested array, which is not supported", key.c_str()));
            uint64_t n = r.read<uint64_t>("array length");
            uint64_t min_elem = etype == GgufType::STRING ? 8 : scalar_size(etype);
            if (n > r.remaining() / min_elem)
                bad(path_,
                    strfmt("metadata array '%s' claims %llu elements, more than the file holds", key.c_str(), (unsigned long long)n));
            v.type = GgufType::ARRAY;
            v.elem_type = etype;
            v.n_elems = n;
            v.elems = r.here();
            const uint64_t start = r.pos();
            if (etype == GgufType::STRING) {
                // every length checked now, nothing allocated
                for (uint64_t j = 0; j < n; ++j) r.skip(r.read_string_len(what.c_str()), what.c_str());
            } else {
                r.skip(n * min_elem, what.c_str());
                if (etype == GgufType::BOOL) {
                    for (uint64_t j = 0; j < n; ++j)
                        if (v.elems[j] > 1) bad(path_, strfmt("metadata array '%s' has a bool value of %u", key.c_str(), v.elems[j]));
                }
            }
            v.elems_bytes = r.pos() - start;
        } else if (type == GgufType::STRING) {
            v.type = type;
            const uint64_t len = r.read_string_len(what.c_str());
            charge(len, what);
            v.s = r.take_string(len, what.c_str());
        } else {
            const uint64_t sz = scalar_size(type);
            r.need(sz, what.c_str());
            decode_scalar(type, r.here(), v);
            r.skip(sz, what.c_str());
            if (type == GgufType::BOOL && v.u > 1) bad(path_, strfmt("%s has a bool value of %llu", what.c_str(), (unsigned long long)v.u));
        }
        if (kv_.count(key)) bad(path_, strfmt("duplicate metadata key '%s'", key.c_str()));
        kv_.emplace(std::move(key), std::move(v));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (!a->is_integer() || a->type == GgufType::BOOL) bad(path_, "general.alignment is not an integer");
        const bool neg =
            a->i < 0 && (a->type == GgufType::I8 || a->type == GgufType::I16 || a->type == GgufType::I32 || a->type == GgufType::I64);
        const uint64_t al = a->u;
        // At least 8: the data section and every tensor start on a multiple of the alignment,
        // so every typed load (f32, f16, the quant blocks' f16 scales) is naturally aligned.
        if (neg || al < kMinAlignment || (al & (al - 1)) != 0 || al > kMaxAlignment)
            bad(path_, strfmt("general.alignment %s must be a power of two of at least %llu (and at most %llu)",
                              neg ? std::to_string(a->i).c_str() : std::to_string(al).c_str(), (unsigned long long)kMinAlignment,
                              (unsigned long long)kMaxAlignment));
        alignment_ = al;
    }

    tensors_.resize(static_cast<size_t>(n_tensors));
    for (uint64_t ti = 0; ti < n_tensors; ++ti) {
        GgufTensorInfo& t = tensors_[ti];
        t.name = r.read_string("tensor name", kMaxTensorName);
        t.n_dims = r.read<uint32_t>("tensor dimension count");
        if (t.n_dims == 0 || t.n_dims > 4) bad(path_, strfmt("tensor '%s' has %u dimensions (1 to 4 allowed)", t.name.c_str(), t.n_dims));
        for (uint32_t d = 0; d < t.n_dims; ++d) {
            uint64_t ne = r.read<uint64_t>("tensor shape");
            if (ne == 0 || ne > (uint64_t)std::numeric_limits<int64_t>::max())
                bad(path_, strfmt("tensor '%s' has an invalid dimension %llu", t.name.c_str(), (unsigned long long)ne));
            t.ne[d] = static_cast<int64_t>(ne);
        }
        t.type = r.read<uint32_t>("tensor type");
        t.offset = r.read<uint64_t>("tensor offset");
        // element count without overflow
        uint64_t nel = 1;
        for (int d = 0; d < 4; ++d) {
            uint64_t ne = static_cast<uint64_t>(t.ne[d]);
            if (nel > (uint64_t)std::numeric_limits<int64_t>::max() / ne)
                bad(path_, strfmt("tensor '%s' has an absurd number of elements", t.name.c_str()));
            nel *= ne;
        }
        TypeTraits tr = type_traits(t.type);
        if (tr.block_size > 0) {
            if (t.ne[0] % tr.block_size != 0)
                bad(path_, strfmt("tensor '%s' of type %s has a row length %lld that is not a multiple of %lld", t.name.c_str(),
                                  type_name(t.type), (long long)t.ne[0], (long long)tr.block_size));
            uint64_t blocks = nel / static_cast<uint64_t>(tr.block_size);
            if (blocks > std::numeric_limits<uint64_t>::max() / tr.type_size)
                bad(path_, strfmt("tensor '%s' is absurdly large", t.name.c_str()));
            t.size = blocks * tr.type_size;
        } else {
            t.size = 0;  // unknown type: size unknown; refused when the tensor is used
        }
        if (tensor_index_.count(t.name)) bad(path_, strfmt("duplicate tensor name '%s'", t.name.c_str()));
        tensor_index_[t.name] = static_cast<size_t>(ti);
    }

    uint64_t pos = r.pos();
    uint64_t data_off = (pos + alignment_ - 1) / alignment_ * alignment_;
    if (n_tensors > 0 && data_off > size) bad(path_, "truncated before the tensor data section");
    data_offset_ = data_off;
    uint64_t data_size = size >= data_off ? size - data_off : 0;
    for (GgufTensorInfo& t : tensors_) {
        if (t.offset % alignment_ != 0)
            bad(path_, strfmt("tensor '%s' data offset %llu is not aligned to %llu", t.name.c_str(), (unsigned long long)t.offset,
                              (unsigned long long)alignment_));
        if (t.offset > data_size || t.size > data_size - t.offset)
            bad(path_, strfmt("tensor '%s' data (offset %llu, %llu bytes) lies past the end of the file (truncated download?)",
                              t.name.c_str(), (unsigned long long)t.offset, (unsigned long long)t.size));
        t.data = data + data_off + t.offset;
    }
    // No two tensors may share bytes: the loader rewrites some weights in place (Model::repack_weights),
    // one tensor per thread, and a hostile file must not make it rewrite the same bytes twice at once.
    // (Tensors of unknown types have no known size; they are refused if used.)
    std::vector<const GgufTensorInfo*> by_offset;
    for (const GgufTensorInfo& t : tensors_)
        if (t.size > 0) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const GgufTensorInfo& p = *by_offset[i - 1];
        const GgufTensorInfo& t = *by_offset[i];
        if (t.offset - p.offset < p.size)
            bad(path_, strfmt("tensor '%s' data (offset %llu) overlaps tensor '%s' (offset %llu, %llu bytes)", t.name.c_str(),
                              (unsigned long long)t.offset, p.name.c_str(), (unsigned long long)p.offset, (unsigned long long)p.size));
    }
}

const GgufValue* GgufFile::find(const std::string& key) const {
    auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
[[noreturn]] void bad_key(const std::string& path, const std::string& key, const std::string& what) {
    throw Error("bad_gguf", strfmt("%s: metadata '%s' %s", path.c_str(), key.c_str(), what.c_str()));
}
uint32_t as_u32(const std::string& path, const std::string& key, const GgufValue& v) {
    if (!v.is_integer() || v.type == GgufType::BOOL) bad_key(path, key, strfmt("should be an integer, not %s", gguf_type_name(v.type)));
    bool neg = (v.type == GgufType::I8 || v.type == GgufType::I16 || v.type == GgufType::I32 || v.type == GgufType::I64) && v.i < 0;
    if (neg || v.u > 0xffffffffull) bad_key(path, key, "is out of range");
    return static_cast<uint32_t>(v.u);
}
float as_f32(const std::string& path, const std::string& key, const GgufValue& v) {
    if (v.is_float()) return static_cast<float>(v.f);
    if (v.is_integer() && v.type != GgufType::BOOL) return static_cast<float>(v.i);
    bad_key(path, key, strfmt("should be a number, not %s", gguf_type_name(v.type)));
}
}  // namespace

uint32_t GgufFile::get_u32(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) throw Error("bad_gguf", strfmt("%s: required metadata '%s' is missing", path_.c_str(), key.c_str()));
    return as_u32(path_, key, *v);
}
uint32_t GgufFile::get_u32(const std::string& key, uint32_t def) const {
    const GgufValue* v = find(key);
    return v ? as_u32(path_, key, *v) : def;
}
int32_t GgufFile::get_i32(const std::string& key, int32_t def) const {
    const GgufValue* v = find(key);
    if (!v) return def;
    if (!v->is_integer() || v->type == GgufType::BOOL) bad_key(path_, key, "should be an integer");
    if (v->i < INT32_MIN || v->i > INT32_MAX) bad_key(path_, key, "is out of range");
    return static_cast<int32_t>(v->i);
}
float GgufFile::get_f32(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) throw Error("bad_gguf", strfmt("%s: required metadata '%s' is missing", path_.c_str(), key.c_str()));
    return as_f32(path_, key, *v);
}
float GgufFile::get_f32(const std::string& key, float def) const {
    const GgufValue* v = find(key);
    return v ? as_f32(path_, key, *v) : def;
}
bool GgufFile::get_bool(const std::string& key, bool def) const {
    const GgufValue* v = find(key);
    if (!v) return def;
    if (!v->is_integer()) bad_key(path_, key, "should be a bool");
    return v->u != 0;
}
std::string GgufFile::get_str(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) throw Error("bad_gguf", strfmt("%s: required metadata '%s' is missing", path_.c_str(), key.c_str()));
    if (v->type != GgufType::STRING) bad_key(path_, key, "should be a string");
    return v->s;
}
std::string GgufFile::get_str(const std::string& key, const std::string& def) const {
    const GgufValue* v = find(key);
    if (!v) return def;
    if (v->type != GgufType::STRING) bad_key(path_, key, "should be a string");
    return v->s;
}
namespace {
// An array getter's checks before it allocates: the key holds an array, of at most max_elems
// entries, whose decoded form (`bytes`) stays within kMaxDecodedArrayBytes.
void check_decoded(const std::string& path, const std::string& key, const GgufValue& v, uint64_t max_elems, uint64_t bytes) {
    if (v.n_elems > max_elems)
        bad_key(path, key,
                strfmt("has %llu entries, more than the %llu this engine accepts", (unsigned long long)v.n_elems,
                       (unsigned long long)max_elems));
    if (bytes > kMaxDecodedArrayBytes)
        bad_key(path, key,
                strfmt("would take %llu MiB of memory once decoded (at most %llu MiB allowed)", (unsigned long long)(bytes >> 20),
                       (unsigned long long)(kMaxDecodedArrayBytes >> 20)));
}
bool integer_type(GgufType t) {
    GgufValue probe;
    probe.type = t;
    return probe.is_integer();
}
}  // namespace

std::vector<std::string> GgufFile::get_str_arr(const std::string& key, uint64_t max_elems) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING) bad_key(path_, key, "should be an array of strings");
    if (v->n_elems > max_elems) check_decoded(path_, key, *v, max_elems, 0);
    // what the vector will hold: one std::string each, plus the characters of those too long
    // for the string's own buffer
    uint64_t bytes = v->n_elems * sizeof(std::string);
    for_each_string(*v, path_, key, [&](const char*, uint64_t len) {
        if (len >= sizeof(std::string) / 2) bytes += len + 1;
    });
    check_decoded(path_, key, *v, max_elems, bytes);
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(v->n_elems));
    for_each_string(*v, path_, key, [&](const char* p, uint64_t len) { out.emplace_back(p, static_cast<size_t>(len)); });
    return out;
}
std::vector<int32_t> GgufFile::get_i32_arr(const std::string& key, uint64_t max_elems) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type != GgufType::ARRAY || !(v->n_elems == 0 || integer_type(v->elem_type)))
        bad_key(path_, key, "should be an array of integers");
    check_decoded(path_, key, *v, max_elems, v->n_elems * sizeof(int32_t));
    std::vector<int32_t> out;
    out.reserve(static_cast<size_t>(v->n_elems));
    for (uint64_t j = 0; j < v->n_elems; ++j) {
        const GgufValue e = v->element(j);
        const bool neg =
            (e.type == GgufType::I8 || e.type == GgufType::I16 || e.type == GgufType::I32 || e.type == GgufType::I64) && e.i < 0;
        if ((!neg && e.u > static_cast<uint64_t>(INT32_MAX)) || e.i < INT32_MIN) bad_key(path_, key, "has an out-of-range element");
        out.push_back(static_cast<int32_t>(e.i));
    }
    return out;
}
std::vector<uint32_t> GgufFile::get_u32_or_arr(const std::string& key, size_t n) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type == GgufType::ARRAY) {
        if (v->n_elems != n)
            bad_key(path_, key, strfmt("has %llu entries, expected one per layer (%zu)", (unsigned long long)v->n_elems, n));
        if (v->elem_type == GgufType::STRING) bad_key(path_, key, "should be an integer or an array of integers, not an array of strings");
        std::vector<uint32_t> out;
        for (uint64_t j = 0; j < v->n_elems; ++j) out.push_back(as_u32(path_, key, v->element(j)));
        return out;
    }
    return std::vector<uint32_t>(n, as_u32(path_, key, *v));
}
std::vector<bool> GgufFile::get_bool_arr(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type != GgufType::ARRAY || !(v->n_elems == 0 || integer_type(v->elem_type))) bad_key(path_, key, "should be an array of bools");
    check_decoded(path_, key, *v, UINT64_MAX, v->n_elems / 8);
    std::vector<bool> out;
    out.reserve(static_cast<size_t>(v->n_elems));
    for (uint64_t j = 0; j < v->n_elems; ++j) out.push_back(v->element(j).u != 0);
    return out;
}

}  // namespace moe

// GGUF parsing with every read bounds-checked; see gguf.h.
#include "model/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/common.h"
#include "core/dtype.h"

namespace moe {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little endian
constexpr uint64_t kMaxStringLen = 1ull << 30;
constexpr uint64_t kMaxKv = 1ull << 20;
constexpr uint64_t kMaxTensors = 1ull << 20;

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
    std::string read_string(const char* what) {
        uint64_t len = read<uint64_t>(what);
        if (len > kMaxStringLen) bad(name_, strfmt("%s has an absurd length %llu", what, (unsigned long long)len));
        need(len, what);
        std::string s(reinterpret_cast<const char*>(d_ + pos_), static_cast<size_t>(len));
        pos_ += len;
        return s;
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
        case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
        case GgufType::U16: case GgufType::I16: return 2;
        case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
        case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
        default: return 0;
    }
}

bool valid_type(uint32_t t) { return t <= 12; }

void read_scalar(Reader& r, GgufType t, GgufValue& v, const char* what) {
    v.type = t;
    switch (t) {
        case GgufType::U8: v.u = r.read<uint8_t>(what); v.i = static_cast<int64_t>(v.u); break;
        case GgufType::I8: v.i = r.read<int8_t>(what); v.u = static_cast<uint64_t>(v.i); break;
        case GgufType::U16: v.u = r.read<uint16_t>(what); v.i = static_cast<int64_t>(v.u); break;
        case GgufType::I16: v.i = r.read<int16_t>(what); v.u = static_cast<uint64_t>(v.i); break;
        case GgufType::U32: v.u = r.read<uint32_t>(what); v.i = static_cast<int64_t>(v.u); break;
        case GgufType::I32: v.i = r.read<int32_t>(what); v.u = static_cast<uint64_t>(v.i); break;
        case GgufType::U64: v.u = r.read<uint64_t>(what); v.i = static_cast<int64_t>(v.u); break;
        case GgufType::I64: v.i = r.read<int64_t>(what); v.u = static_cast<uint64_t>(v.i); break;
        case GgufType::F32: v.f = r.read<float>(what); break;
        case GgufType::F64: v.f = r.read<double>(what); break;
        case GgufType::BOOL: {
            uint8_t b = r.read<uint8_t>(what);
            if (b > 1) bad(r.name(), strfmt("%s has a bool value of %u", what, b));
            v.u = b; v.i = b;
            break;
        }
        case GgufType::STRING: v.s = r.read_string(what); break;
        default: bad(r.name(), strfmt("%s has an unknown value type", what));
    }
}

}  // namespace

const char* gguf_type_name(GgufType t) {
    static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    uint32_t i = static_cast<uint32_t>(t);
    return i <= 12 ? names[i] : "unknown";
}

bool GgufValue::is_integer() const {
    switch (type) {
        case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16: case GgufType::U32:
        case GgufType::I32: case GgufType::U64: case GgufType::I64: case GgufType::BOOL: return true;
        default: return false;
    }
}

// ---- MappedFile ----

MappedFile::MappedFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error("io", strfmt("cannot open %s: %s", path.c_str(), std::strerror(errno)));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        throw Error("io", strfmt("cannot stat %s: %s", path.c_str(), std::strerror(e)));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error("io", strfmt("%s is not a regular file", path.c_str()));
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ == 0) {
        ::close(fd);
        throw Error("bad_gguf", strfmt("%s is not a valid GGUF file: it is empty", path.c_str()));
    }
    // Private: the model may relayout some weights in place (copy-on-write, see Model::load).
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
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
    if (n_kv > kMaxKv || n_kv * 12 > r.remaining()) bad(path_, strfmt("absurd metadata count %llu", (unsigned long long)n_kv));

    for (uint64_t k = 0; k < n_kv; ++k) {
        std::string key = r.read_string("metadata key");
        uint32_t t = r.read<uint32_t>("metadata value type");
        if (!valid_type(t)) bad(path_, strfmt("metadata key '%s' has unknown value type %u", key.c_str(), t));
        GgufValue v;
        GgufType type = static_cast<GgufType>(t);
        if (type == GgufType::ARRAY) {
            uint32_t et = r.read<uint32_t>("array element type");
            if (!valid_type(et)) bad(path_, strfmt("metadata array '%s' has unknown element type %u", key.c_str(), et));
            GgufType etype = static_cast<GgufType>(et);
            if (etype == GgufType::ARRAY) bad(path_, strfmt("metadata '%s' is a nested array, which is not supported", key.c_str()));
            uint64_t n = r.read<uint64_t>("array length");
            uint64_t min_elem = etype == GgufType::STRING ? 8 : scalar_size(etype);
            if (n > r.remaining() / min_elem)
                bad(path_, strfmt("metadata array '%s' claims %llu elements, more than the file holds", key.c_str(), (unsigned long long)n));
            v.type = GgufType::ARRAY;
            v.elem_type = etype;
            v.arr.resize(static_cast<size_t>(n));
            for (uint64_t j = 0; j < n; ++j) read_scalar(r, etype, v.arr[j], key.c_str());
        } else {
            read_scalar(r, type, v, key.c_str());
        }
        if (kv_.count(key)) bad(path_, strfmt("duplicate metadata key '%s'", key.c_str()));
        kv_.emplace(std::move(key), std::move(v));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (!a->is_integer() || a->type == GgufType::BOOL) bad(path_, "general.alignment is not an integer");
        uint64_t al = a->u;
        if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20)) bad(path_, strfmt("general.alignment %llu is not a power of two", (unsigned long long)al));
        alignment_ = al;
    }

    tensors_.resize(static_cast<size_t>(n_tensors));
    for (uint64_t ti = 0; ti < n_tensors; ++ti) {
        GgufTensorInfo& t = tensors_[ti];
        t.name = r.read_string("tensor name");
        if (t.name.size() >= 64) bad(path_, strfmt("tensor name '%s...' is longer than 63 bytes", t.name.substr(0, 40).c_str()));
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
std::vector<std::string> GgufFile::get_str_arr(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING) bad_key(path_, key, "should be an array of strings");
    std::vector<std::string> out;
    out.reserve(v->arr.size());
    for (const GgufValue& e : v->arr) out.push_back(e.s);
    return out;
}
std::vector<int32_t> GgufFile::get_i32_arr(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type != GgufType::ARRAY || !(v->arr.empty() || v->arr[0].is_integer())) bad_key(path_, key, "should be an array of integers");
    std::vector<int32_t> out;
    out.reserve(v->arr.size());
    for (const GgufValue& e : v->arr) {
        if (e.i < INT32_MIN || e.i > INT32_MAX) bad_key(path_, key, "has an out-of-range element");
        out.push_back(static_cast<int32_t>(e.i));
    }
    return out;
}
std::vector<uint32_t> GgufFile::get_u32_or_arr(const std::string& key, size_t n) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type == GgufType::ARRAY) {
        if (v->arr.size() != n) bad_key(path_, key, strfmt("has %zu entries, expected one per layer (%zu)", v->arr.size(), n));
        std::vector<uint32_t> out;
        for (const GgufValue& e : v->arr) out.push_back(as_u32(path_, key, e));
        return out;
    }
    return std::vector<uint32_t>(n, as_u32(path_, key, *v));
}
std::vector<bool> GgufFile::get_bool_arr(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type != GgufType::ARRAY || !(v->arr.empty() || v->arr[0].is_integer())) bad_key(path_, key, "should be an array of bools");
    std::vector<bool> out;
    for (const GgufValue& e : v->arr) out.push_back(e.u != 0);
    return out;
}

}  // namespace moe

// GGUF file reader (versions 2 and 3): memory-maps the file, parses every metadata value
// type, and bounds-checks every count, offset and size against the file before use.
// Malformed files throw moe::Error("bad_gguf", ...); nothing here aborts. Memory is bounded
// by what will be allocated, not by the file's size: the parsed metadata and tensor list may
// take at most kMaxMetadataBytes, arrays are not decoded until asked for, and one decoded array
// at most kMaxDecodedArrayBytes (each refused with an error naming the key).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moe {

enum class GgufType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};
const char* gguf_type_name(GgufType t);

constexpr uint64_t kMaxMetadataBytes = 64ull << 20;       // keys, string values, tensor list
constexpr uint64_t kMaxDecodedArrayBytes = 128ull << 20;  // one array decoded by a getter

struct GgufValue {
    GgufType type = GgufType::U8;
    // scalars (integers in both views when representable) and strings
    int64_t i = 0;
    uint64_t u = 0;
    double f = 0.0;
    std::string s;
    // ARRAY: the elements stay in the file's bytes and are decoded on access (GgufFile's array
    // getters, element()): decoding every element into a GgufValue at parse time let a small file
    // with one long u8 array take ~90 bytes of memory per byte. Scalars lie back to back
    // (unaligned); strings as GGUF string records, every length checked at parse time.
    GgufType elem_type = GgufType::U8;
    uint64_t n_elems = 0;
    const uint8_t* elems = nullptr;  // first element, in the buffer the file was parsed from
    uint64_t elems_bytes = 0;        // bytes of all elements
    bool is_integer() const;
    bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
    bool is_array() const { return type == GgufType::ARRAY; }
    // Element `index` (< n_elems) of an array of scalars, as a scalar GgufValue; throws
    // moe::Error("bad_gguf") for an array of strings or an index out of range.
    GgufValue element(uint64_t index) const;
};

struct GgufTensorInfo {
    std::string name;
    uint32_t n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};   // fastest dimension first
    uint32_t type = 0;              // raw ggml type id (may be unsupported)
    uint64_t offset = 0;            // relative to the data section
    uint64_t size = 0;              // bytes
    const uint8_t* data = nullptr;  // points into the mapping
    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class MappedFile {
 public:
    // Opens without blocking (O_NONBLOCK: a FIFO or a device cannot hang the open) and refuses
    // anything but a regular file; throws moe::Error("io", ...) or, for an empty file, "bad_gguf".
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    // Makes [p, p + len) of the (private, copy-on-write) mapping writable or read-only again;
    // written pages become this process's own (the file is never modified).
    void protect(const uint8_t* p, size_t len, bool writable) const;
    // Makes the pages of [p, p + len) this process's own copies in one call (MADV_POPULATE_WRITE)
    // before they are read and rewritten: no write fault, copy and TLB flush per page later.
    // Best effort: where the kernel lacks it, the writes fault the pages in as before.
    void populate_write(const uint8_t* p, size_t len) const;
    // Maps every page of the file into this process in one call (MADV_POPULATE_READ), reading
    // what the page cache lacks: no page fault per 64 KB later (costly on some virtual machines).
    // Best effort, like populate_write.
    void populate_read() const;
    // The same for the pages of [p, p + len) only, widened to 2 MB boundaries (whole huge folios)
    // but not beyond [lo, hi) (other bytes of the file that must not be mapped; null: the file's ends).
    void populate_read(const uint8_t* p, size_t len, const uint8_t* lo = nullptr, const uint8_t* hi = nullptr) const;
    // Asks for 2 MB folios where the file's pages are read in and mapped (MADV_HUGEPAGE; the
    // mapping is 2 MB-aligned). Best effort.
    void advise_huge() const;
    // Undoes that for the 2 MB blocks [p, p + len) touches (so that a block holding bytes that must not
    // be read in is read in 4 KB pages). Best effort.
    void advise_no_huge(const uint8_t* p, size_t len) const;
    // No readahead from now on: a page fault reads its page only (MADV_RANDOM). Under a memory
    // budget a fault must not bring megabytes of neighbours into the page cache. Best effort.
    void advise_random() const;
    // The share of the file's pages in the page cache (mincore), 0..1.
    double resident_share() const;
    // The share of the mapping mapped by 2 MB page-table entries (FilePmdMapped of
    // /proc/self/smaps; 0 where unknown), 0..1.
    double huge_mapped_share() const;

 private:
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

class GgufFile {
 public:
    // Opens, maps and parses; throws moe::Error with code "io" or "bad_gguf".
    static std::unique_ptr<GgufFile> open(const std::string& path);
    // Parses an in-memory buffer (tests, fuzzing); the buffer must outlive the object. Tensor
    // data is aligned to general.alignment (at least 8) relative to `data`.
    static std::unique_ptr<GgufFile> parse(const uint8_t* data, uint64_t size, const std::string& name);

    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    // The mapping behind open() (nullptr for parse()).
    const MappedFile* mapping() const { return map_.get(); }
    uint64_t file_size() const { return size_; }
    const std::string& path() const { return path_; }

    const std::map<std::string, GgufValue>& kv() const { return kv_; }
    const GgufValue* find(const std::string& key) const;
    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* tensor(const std::string& name) const;

    // Typed getters. Missing key: return the default (or throw "bad_gguf" when required).
    // Wrong type or out of range: throw "bad_gguf" naming the key.
    bool has(const std::string& key) const { return find(key) != nullptr; }
    uint32_t get_u32(const std::string& key) const;
    uint32_t get_u32(const std::string& key, uint32_t def) const;
    float get_f32(const std::string& key) const;
    float get_f32(const std::string& key, float def) const;
    bool get_bool(const std::string& key, bool def) const;
    std::string get_str(const std::string& key) const;
    std::string get_str(const std::string& key, const std::string& def) const;
    int32_t get_i32(const std::string& key, int32_t def) const;
    // Arrays: a missing key gives an empty vector; more than max_elems entries, or a decoded
    // size past kMaxDecodedArrayBytes, throws "bad_gguf" naming the key.
    std::vector<std::string> get_str_arr(const std::string& key, uint64_t max_elems = UINT64_MAX) const;
    std::vector<int32_t> get_i32_arr(const std::string& key, uint64_t max_elems = UINT64_MAX) const;
    // A key that may be a scalar or a per-layer array (n entries).
    std::vector<uint32_t> get_u32_or_arr(const std::string& key, size_t n) const;
    std::vector<bool> get_bool_arr(const std::string& key) const;

 private:
    GgufFile() = default;
    void parse_all(const uint8_t* data, uint64_t size);
    std::unique_ptr<MappedFile> map_;
    std::string path_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    uint64_t size_ = 0;
    std::map<std::string, GgufValue> kv_;
    std::vector<GgufTensorInfo> tensors_;
    std::map<std::string, size_t> tensor_index_;
};

}  // namespace moe

// Test-only GGUF writer shared by the native test programs (build.mjs links every non-test
// test/native/*.cpp into each program): builds a small valid SmallThinker GGUF in memory that
// the full model loader accepts, and records where its structural fields lie so tests can cut
// the file at item boundaries or mutate a count, a length, a type, a float or tensor data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace testgguf {

// What a recorded field is; `off`/`size` locate its bytes in the file.
enum class FieldKind {
    Version,        // u32
    TensorCount,    // u64
    KvCount,        // u64
    KeyLen,         // u64 length of a metadata key
    ValueType,      // u32 type of a metadata value
    ArrayElemType,  // u32
    ArrayLen,       // u64
    StrLen,         // u64 length of a string value (or of an array's first string)
    U32Value,       // u32 scalar metadata value
    F32Value,       // f32 scalar metadata value
    TensorNameLen,  // u64
    TensorDims,     // u32 dimension count
    TensorDim,      // u64 one dimension
    TensorType,     // u32 ggml type
    TensorOffset,   // u64 offset in the data section
    TensorData,     // a tensor's bytes (`type` says how they are encoded)
};

struct Field {
    FieldKind kind;
    size_t off;
    size_t size;
    std::string name;                   // the key or tensor name
    moe::DType type = moe::DType::F32;  // TensorData only
};

// Little-endian byte writer with helpers for metadata entries; records fields and boundaries.
struct Writer {
    std::vector<uint8_t> b;
    std::vector<size_t> boundaries;  // offsets where a section or item starts
    std::vector<Field> fields;
    void u8(uint8_t v) { b.push_back(v); }
    void u32(uint32_t v) { put(&v, 4); }
    void u64(uint64_t v) { put(&v, 8); }
    void f32(float v) { put(&v, 4); }
    void put(const void* p, size_t n);
    void str(const std::string& s) {
        u64(s.size());
        put(s.data(), s.size());
    }
    void mark() { boundaries.push_back(b.size()); }
    void field(FieldKind k, size_t size, const std::string& name) { fields.push_back({k, b.size(), size, name}); }

    // One metadata entry each (key, type, value), fields recorded.
    void kv_u32(const std::string& key, uint32_t v);
    void kv_f32(const std::string& key, float v);
    void kv_str(const std::string& key, const std::string& v);
    void kv_arr_str(const std::string& key, const std::vector<std::string>& v);
    void kv_arr_u32(const std::string& key, uint32_t elem_type, const std::vector<uint32_t>& v);  // i32/u32
    // An array of n single-byte elements (u8, i8 or bool) all equal to `fill`.
    void kv_arr_bytes(const std::string& key, uint32_t elem_type, uint64_t n, uint8_t fill);

 private:
    void key(const std::string& k, uint32_t type);
};

struct Spec {
    std::string arch = "smallthinker";
    uint32_t version = 3;
    uint32_t n_layer = 2, n_embd = 64, n_head = 4, n_head_kv = 2, head_dim = 16, n_expert = 4, n_used = 2, n_ff = 32;
    uint32_t n_vocab = 300;
    uint32_t unknown_type_id = 0;  // if nonzero, the ffn_up_exps tensors get this type id
    bool sliding = false;          // writes attention.sliding_window
    // Tensor data layout: each tensor starts on a multiple of `alignment` (32, the GGUF default);
    // write_alignment puts it in general.alignment. data_shift moves every tensor that many bytes
    // further into the data section (the recorded offsets follow; with alignment 1 it makes odd offsets).
    uint32_t alignment = 32;
    bool write_alignment = false;
    uint32_t data_shift = 0;
    moe::DType norm_type = moe::DType::F32;  // the norm vectors' type (F32 or F16)
    // Tokens placed after the 256 byte-level ones (instead of filler), and BPE merges ("a b").
    std::vector<std::string> tokens;
    std::vector<std::string> merges;
    // More metadata entries, written after the standard ones (each writes one whole entry).
    std::vector<std::function<void(Writer&)>> extra_kvs;
};

struct Built {
    std::vector<uint8_t> bytes;
    std::vector<size_t> boundaries;
    std::vector<Field> fields;
    size_t data_start = 0;  // the tensor data section
};

Built build(const Spec& s);
std::vector<uint8_t> make_gguf(const Spec& s, std::vector<size_t>* boundaries = nullptr);

// Writes bytes to a new file `<dir>/<stem>_<pid>_<n>.gguf` and returns its path ("" on failure).
std::string write_file(const std::vector<uint8_t>& bytes, const std::string& dir = "/tmp", const std::string& stem = "moe_test");

}  // namespace testgguf

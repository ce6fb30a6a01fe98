// Weight and activation element types (ggml numbering, as stored in GGUF files), their
// block layouts, and exact fp16/bf16 conversions. To add a type: its id and block struct here,
// its traits row in dtype.cpp, its kernels in native/kernels/ (kernels.h says where).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace moe {

// ggml type ids (every one ggml 0.5 writes; the engine computes with those whose traits say so).
enum class DType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
    Q2_0 = 42,
};

// Everything about one element type that does not depend on the instruction set (its kernels
// are its row in each kernels::KernelSet).
struct TypeTraits {
    const char* name;    // "q4_0"
    int64_t block_size;  // elements per block (1 for plain types)
    size_t type_size;    // bytes per block
    bool supported;      // the engine can compute with it
    DType act_type;      // the type activations are converted to for its dot products (as ggml's vec_dot_type)
    void (*to_float)(const void* src, float* dst, int64_t n);  // dequantize n elements (nullptr: unsupported)
};

// Traits for any raw id read from a file; unknown ids get {"type<N>", 0, 0, false}.
TypeTraits type_traits(uint32_t raw_type);
inline TypeTraits type_traits(DType t) { return type_traits(static_cast<uint32_t>(t)); }
const char* type_name(uint32_t raw_type);  // stable for the process lifetime

constexpr int64_t QK4_0 = 32;
constexpr int64_t QK8_0 = 32;

// ggml block layouts (packed, little endian).
struct block_q4_0 {
    uint16_t d;      // fp16 scale
    uint8_t qs[16];  // byte j: low nibble = weight j, high nibble = weight j+16; value = (q - 8) * d
};
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 layout");

struct block_q8_0 {
    uint16_t d;     // fp16 scale
    int8_t qs[32];  // value = q * d
};
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 layout");

// ---- fp16 / bf16 (bit-exact IEEE round-to-nearest-even, as F16C and ggml do) ----

inline float fp32_from_bits(uint32_t w) {
    float f;
    std::memcpy(&f, &w, 4);
    return f;
}
inline uint32_t fp32_to_bits(float f) {
    uint32_t w;
    std::memcpy(&w, &f, 4);
    return w;
}

float fp16_to_fp32_slow(uint16_t h);
uint16_t fp32_to_fp16(float f);

// Table-driven fp16 -> fp32 (65536 entries, filled at load time).
extern float g_fp16_table[65536];
inline float fp16_to_fp32(uint16_t h) { return g_fp16_table[h]; }

inline float bf16_to_fp32(uint16_t h) { return fp32_from_bits(static_cast<uint32_t>(h) << 16); }
inline uint16_t fp32_to_bf16(float f) {
    uint32_t u = fp32_to_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 64);  // quiet NaN
    return static_cast<uint16_t>((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

// Bytes of one row of n elements (n must be a multiple of the block size).
size_t row_bytes(DType t, int64_t n);

// Dequantise n elements of type t starting at src into dst (n multiple of the block size).
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

}  // namespace moe

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

// 32-element blocks paired with q8_0 (q5_0, iq4_nl) or q8_1 (q4_1, q5_1) activations.
struct block_q4_1 {
    uint16_t d, m;   // fp16 scale and minimum: value = q * d + m
    uint8_t qs[16];  // as q4_0: low nibble = weight j, high nibble = weight j+16
};
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 layout");
struct block_q5_0 {
    uint16_t d;      // value = (q - 16) * d, q = nibble | (bit j of qh) << 4
    uint8_t qh[4];   // the fifth bits of the 32 weights (little-endian uint32)
    uint8_t qs[16];  // as q4_0
};
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 layout");
struct block_q5_1 {
    uint16_t d, m;  // value = q * d + m
    uint8_t qh[4];
    uint8_t qs[16];
};
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 layout");
struct block_q8_1 {
    uint16_t d;  // fp16 scale
    uint16_t s;  // fp16 of d * sum(qs)
    int8_t qs[32];
};
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 layout");
struct block_iq4_nl {
    uint16_t d;      // value = kvalues_iq4nl[nibble] * d
    uint8_t qs[16];  // as q4_0
};
static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl layout");
// The 16 non-linear levels of iq4_nl and iq4_xs.
constexpr int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// 256-element super-blocks (k-quants, iq4_xs), paired with q8_k activations.
constexpr int64_t QK_K = 256;
struct block_q2_K {
    uint8_t scales[16];  // per 16 weights: low nibble scale, high nibble min
    uint8_t qs[64];      // 2-bit quants
    uint16_t d, dmin;    // fp16 super-block scales of the scales and mins
};
static_assert(sizeof(block_q2_K) == 84, "block_q2_K layout");
struct block_q3_K {
    uint8_t hmask[32];   // high bits
    uint8_t qs[64];      // low 2 bits
    uint8_t scales[12];  // 16 6-bit scales
    uint16_t d;
};
static_assert(sizeof(block_q3_K) == 110, "block_q3_K layout");
struct block_q4_K {
    uint16_t d, dmin;
    uint8_t scales[12];  // 8 6-bit scales and 8 6-bit mins, packed
    uint8_t qs[128];     // 4-bit quants
};
static_assert(sizeof(block_q4_K) == 144, "block_q4_K layout");
struct block_q5_K {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];   // fifth bits
    uint8_t qs[128];  // low 4 bits
};
static_assert(sizeof(block_q5_K) == 176, "block_q5_K layout");
struct block_q6_K {
    uint8_t ql[128];    // low 4 bits
    uint8_t qh[64];     // high 2 bits
    int8_t scales[16];  // 8-bit scales, one per 16 weights
    uint16_t d;
};
static_assert(sizeof(block_q6_K) == 210, "block_q6_K layout");
struct block_q8_K {
    float d;  // fp32 scale (not fp16)
    int8_t qs[256];
    int16_t bsums[16];  // sums of qs in groups of 16
};
static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");
struct block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;    // high 2 bits of the 8 6-bit scales
    uint8_t scales_l[4];  // low 4 bits of the 8 scales
    uint8_t qs[128];      // nibbles into kValuesIq4nl
};
static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs layout");

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

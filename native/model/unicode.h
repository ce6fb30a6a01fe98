// Unicode helpers for the tokenizer: UTF-8 decoding exactly as llama.cpp does it, codepoint
// categories from llama.cpp's tables (unicode_data.inc), the GPT-2 byte <-> unicode mapping,
// and the Qwen2 pre-tokenizer split as a hand-written matcher (no std::regex).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moe {
namespace unicode {

// Category flags (one category bit per assigned codepoint, plus the whitespace bit).
enum : uint16_t {
    kUndefined = 0x0001,    // unassigned (Cn)
    kNumber = 0x0002,       // \p{N}
    kLetter = 0x0004,       // \p{L}
    kSeparator = 0x0008,    // \p{Z}
    kMark = 0x0010,         // \p{M}
    kPunctuation = 0x0020,  // \p{P}
    kSymbol = 0x0040,       // \p{S}
    kControl = 0x0080,      // \p{C} (Cc, Cf, Co, Cs)
    kWhitespace = 0x0100,   // \s as llama.cpp defines it (includes U+0085, excludes U+FEFF)
};

// Flags of a codepoint; 0 for codepoints >= 0x110000.
uint16_t cpt_flags(uint32_t cpt);

constexpr uint32_t kReplacement = 0xFFFD;

// Decodes one codepoint at s[off] the way llama.cpp's unicode_cpts_from_utf8 does: the lead
// byte alone decides the length (no overlong, surrogate or range checks: C0 AF decodes to
// '/', ED A0 80 to U+D800); a stray continuation byte, a lead byte 0xF8..0xFF, or a sequence
// cut short or with a non-continuation byte yields U+FFFD and consumes exactly one byte.
// One deliberate difference: a 4-byte sequence whose value exceeds U+10FFFF (lead F4..F7)
// makes llama.cpp throw out of llama_tokenize (unicode_cpt_to_utf8 rejects it); here it is
// treated as invalid (U+FFFD, one byte consumed) so that tokenization never fails.
uint32_t decode_utf8(std::string_view s, size_t& off);

// All codepoints of s, decoded with decode_utf8.
void decode_utf8_all(std::string_view s, std::vector<uint32_t>& out);

// Appends the UTF-8 encoding of cpt (cpt <= 0x10FFFF; surrogates are encoded as 3 bytes).
void append_utf8(std::string& out, uint32_t cpt);

// Length of a UTF-8 sequence from its lead byte as llama.cpp's unicode_len_utf8 (1 for
// continuation bytes).
inline size_t utf8_len(unsigned char lead) {
    static const unsigned char kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLen[lead >> 4];
}

// GPT-2 byte-level mapping: byte -> printable codepoint, and back (-1 when cpt is not the
// image of a byte).
uint32_t byte_to_cpt(uint8_t byte);
int cpt_to_byte(uint32_t cpt);

// Qwen2 pre-tokenizer split (llama.cpp LLAMA_VOCAB_PRE_TYPE_QWEN2):
//   (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
//    ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Appends to word_ends the end index (exclusive, in codepoints) of each word of cpts[0..n).
void split_qwen2(const uint32_t* cpts, size_t n, std::vector<size_t>& word_ends);

}  // namespace unicode
}  // namespace moe

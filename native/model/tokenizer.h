// Byte-level BPE tokenizer equal to llama.cpp's for the Qwen2 vocabulary
// (tokenizer.ggml.model "gpt2", tokenizer.ggml.pre "qwen2").
//
// What is matched, and how (llama.cpp src/llama-vocab.cpp, src/unicode.cpp):
// - Special tokens are split out of the raw bytes first: every token whose type is control,
//   user-defined or unknown, longest text first; with parse_special == false only control and
//   unknown tokens are skipped, so user-defined tokens (Qwen: <think>, </think>, <tool_call>,
//   ...) are still recognised in plain text, exactly as llama.cpp does.
// - Each remaining fragment is decoded to codepoints (invalid UTF-8 bytes become U+FFFD one
//   byte at a time, overlongs are accepted), split by the qwen2 pre-tokenizer pattern with
//   llama.cpp's Unicode 15.1 category data, re-encoded to UTF-8, mapped through the GPT-2
//   byte-to-unicode table and merged by BPE rank (ties: leftmost pair first).
// - No Unicode normalisation (Hugging Face's tokenizer applies NFC; llama.cpp does not).
// - End-of-generation ids, and the types of control-looking tokens, are derived from token
//   texts as llama.cpp does (<|im_end|>, <|endoftext|>, <|fim_pad|>, <|repo_name|>,
//   <|file_sep|>, eos, eot ...).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/common.h"

namespace moe {

enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct VocabData {                                   // what the GGUF provides
    std::string model;                               // tokenizer.ggml.model, must be "gpt2"
    std::string pre;                                 // tokenizer.ggml.pre, "qwen2" expected
    std::vector<std::string> tokens;                 // tokenizer.ggml.tokens
    std::vector<int32_t> token_types;                // tokenizer.ggml.token_type (may be empty -> all Normal)
    std::vector<std::string> merges;                 // "a b"
    int32_t bos = -1, eos = -1, eot = -1, pad = -1;  // -1: absent
    bool add_bos = false;
};

class Tokenizer {
 public:
    // Validates; throws moe::Error("bad_vocab", ...) on malformed data: model not "gpt2", no
    // tokens, duplicate token texts, token_types shorter than tokens, or a byte-level token
    // (one of the 256 GPT-2 byte images) missing. Tolerated (llama.cpp loads these too), with a
    // note in warning(): special ids out of range (treated as absent), unparsable merges and
    // merges whose parts or result are not tokens (ignored: they cannot apply), a pre other
    // than qwen2 or its aliases (the qwen2 split is used).
    explicit Tokenizer(VocabData v);
    ~Tokenizer();
    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;

    // parse_special: when true, the text of control / user-defined tokens (e.g. "<|im_start|>")
    // becomes that token; when false control tokens are tokenized as plain text (user-defined
    // ones are still split out, as in llama.cpp). add_bos: prepend bos when the vocabulary asks
    // for it (VocabData::add_bos) - llama_tokenize's add_special.
    std::vector<int32_t> encode(std::string_view text, bool parse_special, bool add_bos = false) const;

    // Raw bytes of one token (byte-level decoded). With render_special == false, control and
    // unknown tokens give "" (user-defined tokens still render), as llama_token_to_piece.
    // Throws moe::Error("bad_token") for an id outside [0, n_vocab).
    std::string token_to_piece(int32_t id, bool render_special = true) const;
    // Concatenation of token_to_piece (no space clean-up: qwen2 sets clean_spaces = false).
    std::string decode(const std::vector<int32_t>& ids, bool render_special = true) const;

    int32_t n_vocab() const;
    bool is_eog(int32_t id) const;                  // end of generation, as llama.cpp marks it
    const std::vector<int32_t>& eog_ids() const;    // sorted
    int32_t token_id(std::string_view text) const;  // exact vocab lookup, -1 if absent
    // Effective type after llama.cpp's text-based fix-ups (e.g. <|im_end|> forced to Control).
    TokenType type(int32_t id) const;
    const std::string& token_text(int32_t id) const;

    int32_t bos() const;
    int32_t eos() const;
    int32_t eot() const;
    int32_t pad() const;
    bool add_bos() const;
    // FIM tokens found by text (llama.cpp's names; Qwen: <|fim_prefix|> ...), -1 if absent.
    int32_t fim_prefix() const;
    int32_t fim_suffix() const;
    int32_t fim_middle() const;
    // Non-empty when something in the vocabulary was tolerated rather than rejected (see the
    // constructor); the caller may log it.
    const std::string& warning() const;

 private:
    struct Impl;
    std::unique_ptr<Impl> p_;
};

}  // namespace moe

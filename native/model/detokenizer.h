// Incremental detokenizer: generated token ids in, text out as soon as it is final, at the cost
// of the new token only. The text of a token may end inside a multi-byte UTF-8 character (byte
// tokens, partial-character tokens); such an incomplete sequence is held back until a later
// token completes or breaks it.
//
// Pieces are cut only where a UTF-8 decoder that follows the WHATWG Encoding standard (V8's,
// so Node-API strings, and TextDecoder) is between characters, an ill-formed subsequence counting
// as one finished U+FFFD. So the pieces, each decoded on its own, concatenate to exactly the
// decoding of Tokenizer::decode() of the same ids, invalid bytes included.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace moe {

class Tokenizer;

class Detokenizer {
 public:
    // `tok` must outlive every push(); render_special as Tokenizer::token_to_piece.
    Detokenizer(const Tokenizer& tok, bool render_special) : tok_(&tok), special_(render_special) {}

    // The bytes that became final with `id` (possibly none). Throws Error("bad_token") for an id
    // out of range, holding what it held before.
    std::string push(int32_t id);
    // What is still held back (an incomplete sequence, which a decoder renders as U+FFFD), and
    // starts over.
    std::string finish();
    // Bytes held back (at most 3).
    size_t pending() const { return pending_.size(); }

 private:
    const Tokenizer* tok_;
    bool special_;
    std::string pending_;  // starts between characters
};

// Length of the longest prefix of `bytes` after which a WHATWG UTF-8 decoder started at its
// beginning is between characters.
size_t utf8_settled_length(std::string_view bytes);

}  // namespace moe

// Incremental detokenizer (see detokenizer.h).
#include "model/detokenizer.h"

#include "model/tokenizer.h"

namespace moe {

// The decoder of the WHATWG Encoding standard (UTF-8 decoder, replacement mode), tracking only
// where it is back in its initial state.
size_t utf8_settled_length(std::string_view bytes) {
    size_t settled = 0;
    int needed = 0, seen = 0;
    unsigned lower = 0x80, upper = 0xBF;  // the range of the next continuation byte
    for (size_t i = 0; i < bytes.size();) {
        const unsigned b = static_cast<unsigned char>(bytes[i]);
        if (needed == 0) {
            ++i;
            if (b >= 0xC2 && b <= 0xDF) {
                needed = 1;
            } else if (b >= 0xE0 && b <= 0xEF) {
                needed = 2;
                if (b == 0xE0) lower = 0xA0;  // no overlongs
                if (b == 0xED) upper = 0x9F;  // no surrogates
            } else if (b >= 0xF0 && b <= 0xF4) {
                needed = 3;
                if (b == 0xF0) lower = 0x90;  // no overlongs
                if (b == 0xF4) upper = 0x8F;  // nothing above U+10FFFF
            } else {
                settled = i;  // ASCII, or a byte that is one U+FFFD on its own
            }
            continue;
        }
        if (b < lower || b > upper) {
            // The sequence so far is one U+FFFD; this byte starts afresh (not consumed).
            needed = seen = 0;
            lower = 0x80;
            upper = 0xBF;
            settled = i;
            continue;
        }
        ++i;
        lower = 0x80;
        upper = 0xBF;
        if (++seen == needed) {
            needed = seen = 0;
            settled = i;
        }
    }
    return settled;
}

std::string Detokenizer::push(int32_t id) {
    pending_ += tok_->token_to_piece(id, special_);
    const size_t n = utf8_settled_length(pending_);
    std::string out;
    if (n == pending_.size()) {
        out.swap(pending_);
    } else {
        out = pending_.substr(0, n);
        pending_.erase(0, n);
    }
    return out;
}

std::string Detokenizer::finish() {
    std::string out;
    out.swap(pending_);
    return out;
}

}  // namespace moe

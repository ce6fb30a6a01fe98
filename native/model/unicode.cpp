#include "model/unicode.h"

#include <algorithm>
#include <array>
#include <memory>

namespace moe {
namespace unicode {

namespace {

struct CategoryRange {
    uint32_t first;
    uint16_t flag;
};

#include "unicode_data.inc"

constexpr uint32_t kMaxCpt = 0x110000;
constexpr uint32_t kBmp = 0x10000;

uint16_t flags_by_search(uint32_t cpt) {
    if (cpt >= kMaxCpt) return 0;
    const CategoryRange* begin = kCategoryRanges;
    const CategoryRange* end = kCategoryRanges + sizeof(kCategoryRanges) / sizeof(kCategoryRanges[0]);
    // last range whose first <= cpt
    const CategoryRange* it = std::upper_bound(begin, end, cpt, [](uint32_t c, const CategoryRange& r) { return c < r.first; });
    uint16_t f = (it == begin) ? 0 : (it - 1)->flag;
    if (std::binary_search(std::begin(kWhitespaceCpts), std::end(kWhitespaceCpts), cpt)) f |= kWhitespace;
    return f;
}

// Flat table for the Basic Multilingual Plane (128 KB), built on first use.
const uint16_t* bmp_table() {
    static const std::unique_ptr<uint16_t[]> table = [] {
        std::unique_ptr<uint16_t[]> t(new uint16_t[kBmp]);
        size_t n = sizeof(kCategoryRanges) / sizeof(kCategoryRanges[0]);
        for (size_t i = 0; i + 1 < n; ++i) {
            uint32_t a = kCategoryRanges[i].first, b = std::min(kCategoryRanges[i + 1].first, kBmp);
            for (uint32_t c = a; c < b; ++c) t[c] = kCategoryRanges[i].flag;
            if (b >= kBmp) break;
        }
        for (uint32_t c : kWhitespaceCpts)
            if (c < kBmp) t[c] |= kWhitespace;
        return t;
    }();
    return table.get();
}

struct ByteMap {
    std::array<uint32_t, 256> to_cpt{};
    std::array<int16_t, 0x144> from_cpt{};  // images lie in 0x21..0x143
    ByteMap() {
        from_cpt.fill(-1);
        // Printable bytes map to themselves; the others (0x00-0x20, 0x7F-0xA0, 0xAD) map to
        // U+0100.. in byte order.
        uint32_t next = 0x100;
        for (int b = 0; b < 256; ++b) {
            bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            to_cpt[b] = printable ? uint32_t(b) : next++;
            from_cpt[to_cpt[b]] = int16_t(b);
        }
    }
};

const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}

}  // namespace

uint16_t cpt_flags(uint32_t cpt) {
    if (cpt < kBmp) return bmp_table()[cpt];
    return flags_by_search(cpt);
}

uint32_t decode_utf8(std::string_view s, size_t& off) {
    const size_t n = s.size();
    const auto at = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto cont = [&](size_t i) { return (at(i) & 0xC0) == 0x80; };
    const unsigned char b0 = at(off);
    if (b0 < 0x80) {
        off += 1;
        return b0;
    }
    if ((b0 & 0x40) == 0) {  // stray continuation byte
        off += 1;
        return kReplacement;
    }
    if ((b0 & 0x20) == 0) {
        if (off + 1 < n && cont(off + 1)) {
            uint32_t c = (uint32_t(b0 & 0x1F) << 6) | (at(off + 1) & 0x3F);
            off += 2;
            return c;
        }
    } else if ((b0 & 0x10) == 0) {
        if (off + 2 < n && cont(off + 1) && cont(off + 2)) {
            uint32_t c = (uint32_t(b0 & 0x0F) << 12) | (uint32_t(at(off + 1) & 0x3F) << 6) | (at(off + 2) & 0x3F);
            off += 3;
            return c;
        }
    } else if ((b0 & 0x08) == 0) {
        if (off + 3 < n && cont(off + 1) && cont(off + 2) && cont(off + 3)) {
            uint32_t c = (uint32_t(b0 & 0x07) << 18) | (uint32_t(at(off + 1) & 0x3F) << 12) | (uint32_t(at(off + 2) & 0x3F) << 6) |
                         (at(off + 3) & 0x3F);
            if (c < kMaxCpt) {
                off += 4;
                return c;
            }
            // > U+10FFFF: llama.cpp throws later (see header); we treat the lead as invalid.
        }
    }
    off += 1;
    return kReplacement;
}

void decode_utf8_all(std::string_view s, std::vector<uint32_t>& out) {
    out.clear();
    out.reserve(s.size());
    size_t off = 0;
    while (off < s.size()) out.push_back(decode_utf8(s, off));
}

void append_utf8(std::string& out, uint32_t c) {
    if (c < 0x80) {
        out.push_back(char(c));
    } else if (c < 0x800) {
        out.push_back(char(0xC0 | (c >> 6)));
        out.push_back(char(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(char(0xE0 | (c >> 12)));
        out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(char(0x80 | (c & 0x3F)));
    } else {
        out.push_back(char(0xF0 | ((c >> 18) & 0x07)));
        out.push_back(char(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(char(0x80 | (c & 0x3F)));
    }
}

uint32_t byte_to_cpt(uint8_t byte) { return byte_map().to_cpt[byte]; }

int cpt_to_byte(uint32_t cpt) {
    const ByteMap& m = byte_map();
    return cpt < m.from_cpt.size() ? m.from_cpt[cpt] : -1;
}

void split_qwen2(const uint32_t* cpts, size_t n, std::vector<size_t>& word_ends) {
    // Flags of position i; positions past the end have no flags (match nothing).
    const auto fl = [&](size_t i) -> uint16_t { return i < n ? cpt_flags(cpts[i]) : 0; };
    const auto is_cr_lf = [&](size_t i) { return i < n && (cpts[i] == '\r' || cpts[i] == '\n'); };
    const auto lower_ascii = [](uint32_t c) -> uint32_t { return (c >= 'A' && c <= 'Z') ? c + 32 : c; };

    size_t pos = 0;
    size_t prev_end = 0;
    const auto emit = [&](size_t end) {
        if (end > prev_end) word_ends.push_back(end);
        prev_end = end;
    };

    while (pos < n) {
        const uint32_t c = cpts[pos];
        const uint16_t f = fl(pos);

        // (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])
        // Case folding: llama.cpp applies unicode_tolower, whose only non-ASCII -> ASCII
        // mappings (U+0130 -> i, U+212A -> k) cannot form a contraction (checked by the
        // generator), so ASCII folding is exact.
        if (c == '\'' && pos + 1 < n) {
            const uint32_t c1 = lower_ascii(cpts[pos + 1]);
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
                pos += 2;
                emit(pos);
                continue;
            }
            if (pos + 2 < n) {
                const uint32_t c2 = lower_ascii(cpts[pos + 2]);
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
                    pos += 3;
                    emit(pos);
                    continue;
                }
            }
        }

        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (!(c == '\r' || c == '\n' || (f & kNumber))) {
            if ((f & kLetter) || (fl(pos + 1) & kLetter)) {
                ++pos;  // the optional prefix, or the first letter
                while (fl(pos) & kLetter) ++pos;
                emit(pos);
                continue;
            }
        }

        // \p{N}
        if (f & kNumber) {
            ++pos;
            emit(pos);
            continue;
        }

        // " ?[^\s\p{L}\p{N}]+[\r\n]*". As in llama.cpp, a codepoint counts as "[^\s\p{L}\p{N}]"
        // only if it has some flag (always true for codepoints < 0x110000).
        {
            uint16_t f2 = (c == ' ') ? fl(pos + 1) : f;
            if (!(f2 & (kWhitespace | kLetter | kNumber)) && f != 0) {
                if (c == ' ') ++pos;
                while (!(f2 & (kWhitespace | kLetter | kNumber)) && f2 != 0) f2 = fl(++pos);
                while (is_cr_lf(pos)) ++pos;
                emit(pos);
                continue;
            }
        }

        // Whitespace run starting at pos.
        size_t num_ws = 0;
        size_t last_cr_lf_end = 0;
        while (fl(pos + num_ws) & kWhitespace) {
            if (cpts[pos + num_ws] == '\r' || cpts[pos + num_ws] == '\n') last_cr_lf_end = pos + num_ws + 1;
            ++num_ws;
        }
        // \s*[\r\n]+ : up to the last CR/LF of the run
        if (last_cr_lf_end > 0) {
            pos = last_cr_lf_end;
            emit(pos);
            continue;
        }
        // \s+(?!\S) : all but the last whitespace when something follows the run
        if (num_ws > 1 && pos + num_ws < n) {
            pos += num_ws - 1;
            emit(pos);
            continue;
        }
        // \s+
        if (num_ws > 0) {
            pos += num_ws;
            emit(pos);
            continue;
        }
        // no match (only codepoints without flags): one codepoint alone
        ++pos;
        emit(pos);
    }
}

}  // namespace unicode
}  // namespace moe

#include "model/tokenizer.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "model/unicode.h"

namespace moe {

namespace {

// Token attributes (a token can carry more than one, as in llama.cpp).
enum : uint32_t {
    kAttrUnknown = 1u << 0,
    kAttrUnused = 1u << 1,
    kAttrNormal = 1u << 2,
    kAttrControl = 1u << 3,
    kAttrUserDefined = 1u << 4,
    kAttrByte = 1u << 5,
};

uint32_t attr_from_type(int32_t t) {
    switch (t) {
        case 1: return kAttrNormal;
        case 2: return kAttrUnknown;
        case 3: return kAttrControl;
        case 4: return kAttrUserDefined;
        case 5: return kAttrUnused;
        case 6: return kAttrByte;
        default: return 0;  // undefined
    }
}

// Open-addressing map (left id, right id) -> (rank, merged id).
class MergeTable {
 public:
    void reserve(size_t n) {
        size_t cap = 16;
        while (cap < n + n / 2) cap <<= 1;  // load factor <= 2/3
        keys_.assign(cap, kEmpty);
        vals_.assign(cap, {0, 0});
        mask_ = cap - 1;
    }
    // Keeps the first insertion of a key (llama.cpp: bpe_ranks.emplace).
    void insert(int32_t left, int32_t right, int32_t rank, int32_t result) {
        const uint64_t k = key(left, right);
        for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
            if (keys_[i] == kEmpty) {
                keys_[i] = k;
                vals_[i] = {rank, result};
                return;
            }
            if (keys_[i] == k) return;
        }
    }
    // rank, or -1 when the pair does not merge
    int32_t find(int32_t left, int32_t right, int32_t& result) const {
        const uint64_t k = key(left, right);
        for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
            if (keys_[i] == k) {
                result = vals_[i].second;
                return vals_[i].first;
            }
            if (keys_[i] == kEmpty) return -1;
        }
    }

 private:
    static constexpr uint64_t kEmpty = ~uint64_t(0);
    static uint64_t key(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }
    static size_t hash(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdULL;
        k ^= k >> 33;
        k *= 0xc4ceb9fe1a85ec53ULL;
        k ^= k >> 33;
        return size_t(k);
    }
    std::vector<uint64_t> keys_;
    std::vector<std::pair<int32_t, int32_t>> vals_;
    size_t mask_ = 0;
};

// Open-addressing index of token texts -> id (the texts live in the tokenizer).
class TextIndex {
 public:
    void build(const std::vector<std::string>& texts) {
        size_t cap = 16;
        while (cap < texts.size() * 2) cap <<= 1;
        slots_.assign(cap, {0, -1});
        mask_ = cap - 1;
        texts_ = &texts;
    }
    // false when the text is already present
    bool insert(int32_t id) {
        const std::string& t = (*texts_)[size_t(id)];
        const size_t h = hash(t);
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            if (slots_[i].second < 0) {
                slots_[i] = {uint32_t(h >> 32), id};
                return true;
            }
            if (slots_[i].first == uint32_t(h >> 32) && (*texts_)[size_t(slots_[i].second)] == t) return false;
        }
    }
    int32_t find(std::string_view t) const {
        const size_t h = hash(t);
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            const auto& s = slots_[i];
            if (s.second < 0) return -1;
            if (s.first == uint32_t(h >> 32) && (*texts_)[size_t(s.second)] == t) return s.second;
        }
    }

 private:
    static uint64_t hash(std::string_view t) {  // FNV-1a, then a final mix
        uint64_t h = 1469598103934665603ULL;
        for (unsigned char c : t) h = (h ^ c) * 1099511628211ULL;
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 32;
        return h;
    }
    std::vector<std::pair<uint32_t, int32_t>> slots_;  // (hash tag, id); id -1: empty
    size_t mask_ = 0;
    const std::vector<std::string>* texts_ = nullptr;
};

struct Fragment {
    int32_t token;  // >= 0: a special token; -1: raw text [off, off+len)
    size_t off, len;
};

struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev, next;
};

struct Candidate {
    int32_t rank, left, right, left_id, right_id, result;
};

struct CandidateOrder {  // priority_queue top = lowest rank, then leftmost
    bool operator()(const Candidate& a, const Candidate& b) const { return a.rank > b.rank || (a.rank == b.rank && a.left > b.left); }
};

struct Scratch {
    std::vector<uint32_t> cpts;
    std::vector<size_t> word_ends;
    std::string word;
    std::vector<Symbol> syms;
    std::vector<Candidate> heap;
};

bool is_qwen2_pre(const std::string& pre) {
    // llama.cpp maps these names to LLAMA_VOCAB_PRE_TYPE_QWEN2
    return pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "kormo" || pre == "f2llmv2" || pre == "megrez";
}

}  // namespace

struct Tokenizer::Impl {
    std::vector<std::string> text;  // token texts
    std::vector<uint32_t> attr;
    TextIndex by_text;
    MergeTable merges;
    int32_t byte_token[256] = {};
    std::vector<int32_t> specials;    // control / user-defined / unknown, longest text first
    std::string pieces;               // token_to_piece(id, true) of every token, concatenated
    std::vector<uint32_t> piece_off;  // n + 1 offsets into pieces
    std::vector<int32_t> eog;
    int32_t bos = -1, eos = -1, eot = -1, eom = -1, pad = -1;
    int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
    bool add_bos = false;
    std::string warning;

    void note(const std::string& s) {
        if (!warning.empty()) warning += "; ";
        warning += s;
    }
    int32_t n() const { return int32_t(text.size()); }
    int32_t find(std::string_view t) const { return by_text.find(t); }

    void build_attrs_and_eog();
    void build_pieces();
    void partition(std::string_view text, bool parse_special, std::vector<Fragment>& frags) const;
    void encode_fragment(std::string_view frag, std::vector<int32_t>& out, Scratch& s) const;
    void bpe(const std::string& word, std::vector<int32_t>& out, Scratch& s) const;
};

// Text-based fix-ups done by llama.cpp's llama_vocab::impl::load after reading the GGUF.
void Tokenizer::Impl::build_attrs_and_eog() {
    auto force_control = [&](int32_t id) { attr[size_t(id)] |= kAttrControl; };
    auto first_of = [&](std::initializer_list<const char*> names) -> int32_t {
        // llama.cpp walks an unordered map, so which of several present names wins is
        // unspecified there; here the first name in list order wins (Qwen: eot = <|im_end|>).
        for (const char* nm : names) {
            int32_t id = find(nm);
            if (id >= 0) return id;
        }
        return -1;
    };
    auto detect = [&](int32_t& slot, std::initializer_list<const char*> names) {
        if (slot >= 0) return;
        slot = first_of(names);
        if (slot >= 0) force_control(slot);
    };
    detect(eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                 "<\xef\xbd\x9c"
                 "end\xe2\x96\x81"
                 "of\xe2\x96\x81"
                 "sentence\xef\xbd\x9c>",
                 "<end_of_utterance>"});
    detect(eom, {"<|eom_id|>"});
    detect(fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                     "<\xef\xbd\x9c"
                     "fim\xe2\x96\x81"
                     "begin\xef\xbd\x9c>",
                     "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"});
    detect(fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                     "<\xef\xbd\x9c"
                     "fim\xe2\x96\x81"
                     "hole\xef\xbd\x9c>",
                     "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"});
    detect(fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                     "<\xef\xbd\x9c"
                     "fim\xe2\x96\x81"
                     "end\xef\xbd\x9c>",
                     "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"});
    detect(fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
    detect(fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
    detect(fim_sep, {"<|file_sep|>"});

    // control tokens whose text contains "unused" are unused
    for (int32_t id = 0; id < n(); ++id) {
        if ((attr[size_t(id)] & kAttrControl) && text[size_t(id)].find("unused") != std::string::npos) attr[size_t(id)] |= kAttrUnused;
    }

    std::vector<int32_t> e;
    for (int32_t id : {fim_pad, fim_rep, fim_sep})
        if (id >= 0) e.push_back(id);
    for (const char* nm : {"<|eot_id|>",
                           "<|im_end|>",
                           "<|end|>",
                           "<|return|>",
                           "<|call|>",
                           "<|flush|>",
                           "<|calls|>",
                           "<end_of_turn>",
                           "<|endoftext|>",
                           "</s>",
                           "<|eom_id|>",
                           "<EOT>",
                           "_<EOT>",
                           "[EOT]",
                           "[EOS]",
                           "<|end_of_text|>",
                           "<end_of_utterance>",
                           "<eos>",
                           "<turn|>",
                           "<|tool_response>",
                           "<\xef\xbd\x9c"
                           "end\xe2\x96\x81"
                           "of\xe2\x96\x81"
                           "sentence\xef\xbd\x9c>",
                           "[e~["}) {
        int32_t id = find(nm);
        if (id >= 0) {
            e.push_back(id);
            force_control(id);
        }
    }
    // gpt-oss: these always render
    for (const char* nm : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
        int32_t id = find(nm);
        if (id >= 0) attr[size_t(id)] = kAttrUserDefined;
    }
    for (int32_t id : {eos, eot, eom})
        if (id >= 0) e.push_back(id);
    std::sort(e.begin(), e.end());
    e.erase(std::unique(e.begin(), e.end()), e.end());

    auto has = [&](const char* nm) {
        int32_t id = find(nm);
        return id >= 0 && std::binary_search(e.begin(), e.end(), id);
    };
    auto drop = [&](const char* nm, uint32_t new_attr) {
        int32_t id = find(nm);
        e.erase(std::remove(e.begin(), e.end(), id), e.end());
        attr[size_t(id)] = new_attr;
    };
    // o200k_harmony / solar-open: <|end|> is not end-of-generation there
    if (has("<|end|>") &&
        ((has("<|return|>") && (has("<|call|>") || has("<|calls|>"))) || ((has("<|call|>") || has("<|calls|>")) && has("<|flush|>"))))
        drop("<|end|>", kAttrUserDefined);
    // gemma4 / paddleocr: </s> is not end-of-generation when <|tool_response> is
    if (has("<|tool_response>") && has("</s>")) drop("</s>", kAttrNormal);
    eog = std::move(e);

    for (int32_t id = 0; id < n(); ++id)
        if (attr[size_t(id)] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) specials.push_back(id);
    // llama.cpp sorts by text length, longest first (std::sort: ties in unspecified order;
    // here ties keep id order).
    std::stable_sort(specials.begin(), specials.end(),
                     [&](int32_t a, int32_t b) { return text[size_t(a)].size() > text[size_t(b)].size(); });
}

void Tokenizer::Impl::build_pieces() {
    static const char* kHex = "0123456789abcdef";
    piece_off.assign(size_t(n()) + 1, 0);
    std::string bytes;
    for (int32_t id = 0; id < n(); ++id) {
        const std::string& t = text[size_t(id)];
        const uint32_t a = attr[size_t(id)];
        if (a & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
            pieces += t;
        } else if (a & kAttrNormal) {
            // byte-level decode (llama_decode_text)
            size_t off = 0;
            while (off < t.size()) {
                uint32_t c = unicode::decode_utf8(t, off);
                int b = unicode::cpt_to_byte(c);
                if (b >= 0) {
                    pieces.push_back(char(b));
                } else {
                    bytes.clear();
                    unicode::append_utf8(bytes, c);
                    pieces += "[UNK_BYTE_0x";
                    for (unsigned char ch : bytes) {
                        pieces.push_back(kHex[ch >> 4]);
                        pieces.push_back(kHex[ch & 15]);
                    }
                    pieces += t;
                    pieces += "]";
                }
            }
        } else if (a & kAttrByte) {
            // "<0xAB>": strtol of the two characters at offset 3
            int v = 0;
            for (size_t i = 3; i < 5 && i < t.size(); ++i) {
                char ch = t[i];
                int d = (ch >= '0' && ch <= '9')   ? ch - '0'
                        : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                        : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                                   : -1;
                if (d < 0) break;
                v = v * 16 + d;
            }
            pieces.push_back(char(v));
        }
        // undefined / unused: empty piece
        if (pieces.size() > UINT32_MAX) throw Error("bad_vocab", "tokenizer vocabulary too large");
        piece_off[size_t(id) + 1] = uint32_t(pieces.size());
    }
}

Tokenizer::Tokenizer(VocabData v) : p_(new Impl) {
    Impl& m = *p_;
    if (v.model != "gpt2")
        throw Error("bad_vocab", "unsupported tokenizer model '" + v.model + "' (only byte-level BPE, \"gpt2\", is supported)");
    if (!is_qwen2_pre(v.pre)) m.note("tokenizer pre-type '" + v.pre + "' is not qwen2; using the qwen2 pre-tokenizer split");
    const size_t n = v.tokens.size();
    if (n == 0) throw Error("bad_vocab", "the vocabulary has no tokens");
    if (n >= size_t(INT32_MAX)) throw Error("bad_vocab", "the vocabulary has too many tokens");
    if (!v.token_types.empty() && v.token_types.size() < n)
        throw Error("bad_vocab", "token type list is shorter than the token list (" + std::to_string(v.token_types.size()) + " < " +
                                     std::to_string(n) + ")");

    m.text = std::move(v.tokens);
    m.attr.resize(n);
    for (size_t i = 0; i < n; ++i) {
        if (m.text[i].empty()) m.text[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp
        m.attr[i] = v.token_types.empty() ? kAttrNormal : attr_from_type(v.token_types[i]);
    }
    m.by_text.build(m.text);
    for (size_t i = 0; i < n; ++i) {
        if (!m.by_text.insert(int32_t(i))) throw Error("bad_vocab", "duplicate token text at id " + std::to_string(i));
    }

    // byte-level alphabet: every byte's image must be a token
    for (int b = 0; b < 256; ++b) {
        std::string s;
        unicode::append_utf8(s, unicode::byte_to_cpt(uint8_t(b)));
        m.byte_token[b] = m.find(s);
        if (m.byte_token[b] < 0) throw Error("bad_vocab", "the vocabulary lacks the byte-level token for byte " + std::to_string(b));
    }

    // merges: "left right", split at the first space after position 0 (as llama.cpp)
    m.merges.reserve(v.merges.size());
    size_t bad_merges = 0;
    std::string joined;
    for (size_t i = 0; i < v.merges.size(); ++i) {
        const std::string& w = v.merges[i];
        const size_t sp = w.find(' ', 1);
        if (sp == std::string::npos) {
            ++bad_merges;
            continue;
        }
        std::string_view sv(w);
        int32_t l = m.find(sv.substr(0, sp)), r = m.find(sv.substr(sp + 1));
        joined.assign(w, 0, sp);
        joined.append(w, sp + 1, std::string::npos);
        int32_t res = m.find(joined);
        if (l < 0 || r < 0 || res < 0) {
            ++bad_merges;
            continue;
        }
        m.merges.insert(l, r, int32_t(i), res);
    }
    if (bad_merges) m.note(std::to_string(bad_merges) + " merges ignored (unparsable, or parts/result not in the vocabulary)");

    auto special_id = [&](int32_t id, const char* what) -> int32_t {
        if (id < 0) return -1;
        if (size_t(id) >= n) {
            m.note(std::string(what) + " token id " + std::to_string(id) + " is out of range; ignored");
            return -1;
        }
        return id;
    };
    m.bos = special_id(v.bos, "bos");
    m.eos = special_id(v.eos, "eos");
    m.eot = special_id(v.eot, "eot");
    m.pad = special_id(v.pad, "pad");
    m.add_bos = v.add_bos && m.bos >= 0;

    m.build_attrs_and_eog();
    m.build_pieces();
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

// llama.cpp's tokenizer_st_partition: for each special token (longest first), every raw
// fragment is cut at each of its non-overlapping occurrences, left to right.
void Tokenizer::Impl::partition(std::string_view txt, bool parse_special, std::vector<Fragment>& frags) const {
    frags.clear();
    frags.push_back({-1, 0, txt.size()});
    std::vector<Fragment> next;
    for (int32_t id : specials) {
        if (!parse_special && (attr[size_t(id)] & (kAttrControl | kAttrUnknown))) continue;
        const std::string& tok = text[size_t(id)];
        bool any = false;
        for (const Fragment& f : frags) {
            if (f.token >= 0) continue;
            if (std::string_view(txt.data() + f.off, f.len).find(tok) != std::string_view::npos) {
                any = true;
                break;
            }
        }
        if (!any) continue;
        next.clear();
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            const size_t end = f.off + f.len;
            size_t start = f.off;
            const std::string_view window(txt.data(), end);
            for (;;) {
                const size_t hit = window.find(tok, start);
                if (hit == std::string_view::npos) break;
                if (hit > start) next.push_back({-1, start, hit - start});
                next.push_back({id, 0, 0});
                start = hit + tok.size();
            }
            if (start < end) next.push_back({-1, start, end - start});
        }
        frags.swap(next);
    }
}

void Tokenizer::Impl::bpe(const std::string& word, std::vector<int32_t>& out, Scratch& s) const {
    const size_t n = word.size();
    if (n == 1) {
        out.push_back(byte_token[uint8_t(word[0])]);
        return;
    }
    std::vector<Symbol>& syms = s.syms;
    syms.resize(n);
    for (size_t i = 0; i < n; ++i) syms[i] = {byte_token[uint8_t(word[i])], int32_t(i) - 1, i + 1 < n ? int32_t(i + 1) : -1};

    std::vector<Candidate>& heap = s.heap;
    heap.clear();
    const CandidateOrder order;
    auto try_add = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        int32_t result = -1;
        const int32_t rank = merges.find(syms[size_t(l)].id, syms[size_t(r)].id, result);
        if (rank < 0) return;
        heap.push_back({rank, l, r, syms[size_t(l)].id, syms[size_t(r)].id, result});
        std::push_heap(heap.begin(), heap.end(), order);
    };
    for (size_t i = 0; i + 1 < n; ++i) try_add(int32_t(i), int32_t(i + 1));

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), order);
        const Candidate c = heap.back();
        heap.pop_back();
        Symbol& L = syms[size_t(c.left)];
        Symbol& R = syms[size_t(c.right)];
        // Stale when either side has merged since (ids only change by merging; merged-away
        // symbols have id -1) - the same test as llama.cpp's text comparison.
        if (L.id != c.left_id || R.id != c.right_id) continue;
        L.id = c.result;
        R.id = -1;
        L.next = R.next;
        if (R.next >= 0) syms[size_t(R.next)].prev = c.left;
        try_add(L.prev, c.left);
        try_add(c.left, L.next);
    }
    for (int32_t i = 0; i >= 0; i = syms[size_t(i)].next) out.push_back(syms[size_t(i)].id);
}

void Tokenizer::Impl::encode_fragment(std::string_view frag, std::vector<int32_t>& out, Scratch& s) const {
    unicode::decode_utf8_all(frag, s.cpts);
    s.word_ends.clear();
    unicode::split_qwen2(s.cpts.data(), s.cpts.size(), s.word_ends);
    size_t start = 0;
    for (size_t end : s.word_ends) {
        // Words are re-encoded from codepoints, as llama.cpp does (an invalid byte becomes
        // EF BF BD, an overlong becomes its canonical encoding).
        s.word.clear();
        for (size_t i = start; i < end; ++i) unicode::append_utf8(s.word, s.cpts[i]);
        bpe(s.word, out, s);
        start = end;
    }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special, bool add_bos) const {
    const Impl& m = *p_;
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    if (add_bos && m.add_bos) out.push_back(m.bos);
    if (text.empty()) return out;
    std::vector<Fragment> frags;
    m.partition(text, parse_special, frags);
    Scratch s;
    for (const Fragment& f : frags) {
        if (f.token >= 0)
            out.push_back(f.token);
        else
            m.encode_fragment(text.substr(f.off, f.len), out, s);
    }
    return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
    const Impl& m = *p_;
    if (id < 0 || id >= m.n()) throw Error("bad_token", "token id " + std::to_string(id) + " is out of range");
    if (!render_special && (m.attr[size_t(id)] & (kAttrUnknown | kAttrControl))) return std::string();
    const uint32_t a = m.piece_off[size_t(id)], b = m.piece_off[size_t(id) + 1];
    return m.pieces.substr(a, b - a);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
    const Impl& m = *p_;
    std::string out;
    for (int32_t id : ids) {
        if (id < 0 || id >= m.n()) throw Error("bad_token", "token id " + std::to_string(id) + " is out of range");
        if (!render_special && (m.attr[size_t(id)] & (kAttrUnknown | kAttrControl))) continue;
        out.append(m.pieces, m.piece_off[size_t(id)], m.piece_off[size_t(id) + 1] - m.piece_off[size_t(id)]);
    }
    return out;
}

int32_t Tokenizer::n_vocab() const { return p_->n(); }

bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && std::binary_search(p_->eog.begin(), p_->eog.end(), id); }

const std::vector<int32_t>& Tokenizer::eog_ids() const { return p_->eog; }

int32_t Tokenizer::token_id(std::string_view text) const { return p_->find(text); }

TokenType Tokenizer::type(int32_t id) const {
    if (id < 0 || id >= p_->n()) throw Error("bad_token", "token id " + std::to_string(id) + " is out of range");
    const uint32_t a = p_->attr[size_t(id)];
    if (a & kAttrControl) return TokenType::Control;
    if (a & kAttrUserDefined) return TokenType::UserDefined;
    if (a & kAttrUnknown) return TokenType::Unknown;
    if (a & kAttrByte) return TokenType::Byte;
    if (a & kAttrUnused) return TokenType::Unused;
    if (a & kAttrNormal) return TokenType::Normal;
    return TokenType::Undefined;
}

const std::string& Tokenizer::token_text(int32_t id) const {
    if (id < 0 || id >= p_->n()) throw Error("bad_token", "token id " + std::to_string(id) + " is out of range");
    return p_->text[size_t(id)];
}

int32_t Tokenizer::bos() const { return p_->bos; }
int32_t Tokenizer::eos() const { return p_->eos; }
int32_t Tokenizer::eot() const { return p_->eot; }
int32_t Tokenizer::pad() const { return p_->pad; }
bool Tokenizer::add_bos() const { return p_->add_bos; }
int32_t Tokenizer::fim_prefix() const { return p_->fim_pre; }
int32_t Tokenizer::fim_suffix() const { return p_->fim_suf; }
int32_t Tokenizer::fim_middle() const { return p_->fim_mid; }
const std::string& Tokenizer::warning() const { return p_->warning; }

}  // namespace moe

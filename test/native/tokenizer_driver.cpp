// Standalone driver for the engine tokenizer (native/model/tokenizer.*) and the incremental
// detokenizer (native/model/detokenizer.*), used by test/native/tokenizer_check.mjs and
// test/tokenizer.test.ts. Build:
//   g++ -std=c++17 -O2 -Wall -Wextra -fsanitize=address,undefined -Inative
//       test/native/tokenizer_driver.cpp native/model/tokenizer.cpp native/model/detokenizer.cpp
//       native/model/unicode.cpp -o /tmp/tokenizer_driver
// Usage:
//   tokenizer_driver VOCAB TEXTS          encode each text; one result line per text
//   tokenizer_driver VOCAB --bench FILE [REPS]   encode speed
//   tokenizer_driver VOCAB --selftest     unit checks (Qwen vocabulary expected)
//
// VOCAB format (written by tokenizer_check.mjs; strings are "<byte length>:<bytes>"):
//   moe-vocab 1
//   model <str>\n pre <str>\n bos <int>\n eos <int>\n eot <int>\n pad <int>\n add_bos <0|1>
//   tokens <N>\n then N lines "<type> <str>"
//   merges <M>\n then M lines "<str>"
// TEXTS format: records "<name> <parse_special 0|1> <str>\n".
// Output per text: "<name>\t<ids space separated>\t<roundtrip 0|1>\t<stream 0|1>\n" where
// roundtrip = decode(ids) equals the input bytes, stream = the Detokenizer fed id by id
// reproduces decode(ids), cuts only between characters (utf8_settled_length) and, when that is
// valid UTF-8, only ever emits valid UTF-8.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/detokenizer.h"
#include "model/tokenizer.h"

namespace {

struct Reader {
    std::string data;
    size_t pos = 0;
    void skip_ws() {
        while (pos < data.size() && (data[pos] == ' ' || data[pos] == '\n')) ++pos;
    }
    std::string word() {
        skip_ws();
        size_t s = pos;
        while (pos < data.size() && data[pos] != ' ' && data[pos] != '\n') ++pos;
        return data.substr(s, pos - s);
    }
    long long integer() {
        std::string w = word();
        if (w.empty()) throw std::runtime_error("expected integer at " + std::to_string(pos));
        return std::stoll(w);
    }
    std::string str() {
        skip_ws();
        size_t colon = data.find(':', pos);
        if (colon == std::string::npos) throw std::runtime_error("expected string at " + std::to_string(pos));
        size_t len = std::stoull(data.substr(pos, colon - pos));
        if (colon + 1 + len > data.size()) throw std::runtime_error("string past end");
        std::string s = data.substr(colon + 1, len);
        pos = colon + 1 + len;
        return s;
    }
    void expect(const char* w) {
        std::string got = word();
        if (got != w) throw std::runtime_error(std::string("expected '") + w + "', got '" + got + "'");
    }
    bool eof() {
        skip_ws();
        return pos >= data.size();
    }
};

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

moe::VocabData load_vocab(const std::string& path) {
    Reader r{read_file(path)};
    r.expect("moe-vocab");
    r.expect("1");
    moe::VocabData v;
    r.expect("model");
    v.model = r.str();
    r.expect("pre");
    v.pre = r.str();
    r.expect("bos");
    v.bos = int32_t(r.integer());
    r.expect("eos");
    v.eos = int32_t(r.integer());
    r.expect("eot");
    v.eot = int32_t(r.integer());
    r.expect("pad");
    v.pad = int32_t(r.integer());
    r.expect("add_bos");
    v.add_bos = r.integer() != 0;
    r.expect("tokens");
    size_t n = size_t(r.integer());
    v.tokens.reserve(n);
    v.token_types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        v.token_types.push_back(int32_t(r.integer()));
        v.tokens.push_back(r.str());
    }
    r.expect("merges");
    size_t m = size_t(r.integer());
    v.merges.reserve(m);
    for (size_t i = 0; i < m; ++i) v.merges.push_back(r.str());
    return v;
}

bool valid_utf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        unsigned char b = static_cast<unsigned char>(s[i]);
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            ++i;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            need = 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 3;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 4;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (i + need > s.size()) return false;
        for (size_t k = 1; k < need; ++k) {
            unsigned char c = static_cast<unsigned char>(s[i + k]);
            if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return false;
        }
        i += need;
    }
    return true;
}

int run_texts(const moe::Tokenizer& tok, const std::string& path) {
    Reader r{read_file(path)};
    std::string line;
    while (!r.eof()) {
        std::string name = r.word();
        bool parse_special = r.integer() != 0;
        std::string text = r.str();
        std::vector<int32_t> ids = tok.encode(text, parse_special);
        std::string dec = tok.decode(ids);
        bool rt = dec == text;
        moe::Detokenizer detok(tok, true);
        std::string streamed;
        bool chunks_valid = true, chunks_settled = true;
        for (int32_t id : ids) {
            std::string chunk = detok.push(id);
            if (!valid_utf8(chunk)) chunks_valid = false;
            if (moe::utf8_settled_length(chunk) != chunk.size()) chunks_settled = false;
            streamed += chunk;
        }
        std::string tail = detok.finish();
        if (!valid_utf8(tail)) chunks_valid = false;
        streamed += tail;
        bool stream_ok = streamed == dec && chunks_settled && (chunks_valid || !valid_utf8(dec));
        line.clear();
        line += name;
        line += '\t';
        for (size_t i = 0; i < ids.size(); ++i) {
            if (i) line += ' ';
            line += std::to_string(ids[i]);
        }
        line += rt ? "\t1" : "\t0";
        line += stream_ok ? "\t1\n" : "\t0\n";
        std::fwrite(line.data(), 1, line.size(), stdout);
    }
    return 0;
}

int run_bench(const moe::Tokenizer& tok, const std::string& path, int reps) {
    std::string text = read_file(path);
    size_t n_tok = 0;
    auto t0 = std::chrono::steady_clock::now();
    std::clock_t c0 = std::clock();
    for (int i = 0; i < reps; ++i) n_tok = tok.encode(text, false).size();
    std::clock_t c1 = std::clock();
    auto t1 = std::chrono::steady_clock::now();
    double s = std::chrono::duration<double>(t1 - t0).count() / reps;
    double cpu = double(c1 - c0) / CLOCKS_PER_SEC / reps;
    std::printf("bench: %zu bytes -> %zu tokens; per encode %.2f ms wall, %.2f ms CPU; %.0f tokens/s (CPU), %.1f MB/s (CPU)\n", text.size(),
                n_tok, s * 1e3, cpu * 1e3, n_tok / cpu, text.size() / cpu / 1e6);
    return 0;
}

int failures = 0;
#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            std::fprintf(stderr, "selftest FAILED line %d: %s\n", __LINE__, #cond); \
            ++failures;                                                             \
        }                                                                           \
    } while (0)

template <class F>
bool throws_code(F&& f, const char* code) {
    try {
        f();
    } catch (const moe::Error& e) {
        return e.code == code;
    }
    return false;
}

int run_selftest(const moe::VocabData& v) {
    moe::Tokenizer tok(v);
    CHECK(tok.warning().empty());
    CHECK(tok.n_vocab() == int32_t(v.tokens.size()));
    // Qwen ids (ENGINE-SPEC section 5)
    const int32_t eot_txt = tok.token_id("<|endoftext|>"), im_start = tok.token_id("<|im_start|>"), im_end = tok.token_id("<|im_end|>"),
                  think = tok.token_id("<think>");
    CHECK(eot_txt == 151643 && im_start == 151644 && im_end == 151645 && think == 151667);
    CHECK(tok.is_eog(im_end) && tok.is_eog(eot_txt) && !tok.is_eog(im_start) && !tok.is_eog(think));
    CHECK(tok.is_eog(tok.token_id("<|fim_pad|>")) && tok.is_eog(tok.token_id("<|repo_name|>")) && tok.is_eog(tok.token_id("<|file_sep|>")));
    CHECK(!tok.is_eog(-1) && !tok.is_eog(0));
    CHECK(tok.type(im_start) == moe::TokenType::Control && tok.type(think) == moe::TokenType::UserDefined &&
          tok.type(0) == moe::TokenType::Normal);
    CHECK(tok.eot() == im_end && tok.eos() == v.eos && tok.bos() == v.bos && !tok.add_bos());
    CHECK(tok.fim_prefix() == 151659 && tok.fim_middle() == 151660 && tok.fim_suffix() == 151661);
    CHECK(tok.token_id("no such token \x01") == -1);

    // special tokens
    auto a = tok.encode("<|im_start|>user\nhi<|im_end|>", true);
    CHECK(a.size() >= 3 && a.front() == im_start && a.back() == im_end);
    auto b = tok.encode("<|im_start|>user", false);
    CHECK(b.size() > 1 && b.front() != im_start);
    auto c = tok.encode("<think>x</think>", false);  // user-defined: split even without parse_special
    CHECK(c.size() == 3 && c[0] == think && c[2] == tok.token_id("</think>"));
    CHECK(tok.decode(b) == "<|im_start|>user");
    CHECK(tok.decode(a) == "<|im_start|>user\nhi<|im_end|>");
    CHECK(tok.decode(a, false) == "user\nhi");
    CHECK(tok.token_to_piece(im_end, false).empty() && tok.token_to_piece(im_end) == "<|im_end|>");
    CHECK(tok.token_to_piece(think, false) == "<think>");
    CHECK(tok.token_to_piece(tok.token_id("\xc4\xa0")) == " ");  // "Ġ" -> space
    CHECK(tok.encode("", true).empty());
    CHECK(throws_code([&] { tok.token_to_piece(-1); }, "bad_token"));
    CHECK(throws_code([&] { tok.token_to_piece(tok.n_vocab()); }, "bad_token"));
    CHECK(throws_code([&] { tok.decode({0, 1 << 30}); }, "bad_token"));

    // invalid UTF-8 as llama.cpp: each bad byte -> U+FFFD (EF BF BD); overlong C0 AF -> '/'
    CHECK(tok.decode(tok.encode("a\xff"
                                "b",
                                false)) ==
          "a\xef\xbf\xbd"
          "b");
    CHECK(tok.decode(tok.encode("\xe4\xb8", false)) == "\xef\xbf\xbd\xef\xbf\xbd");
    CHECK(tok.decode(tok.encode("x\xc0\xaf", false)) == "x/");
    CHECK(tok.decode(tok.encode("\xed\xa0\x80", false)) == "\xed\xa0\x80");  // surrogate kept
    CHECK(tok.decode(tok.encode("\xf7\xbf\xbf\xbf", false)) ==
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // > U+10FFFF: llama.cpp throws
    CHECK(tok.decode(tok.encode(std::string("a\0b", 3), false)) == std::string("a\0b", 3));

    // incremental detokenizer: pieces end only where a WHATWG UTF-8 decoder is between characters
    CHECK(moe::utf8_settled_length("") == 0);
    CHECK(moe::utf8_settled_length("a\xe4") == 1);
    CHECK(moe::utf8_settled_length("a\xe4\xb8\xad"
                                   "b") == 5);
    CHECK(moe::utf8_settled_length("\xf0\x9f\x98\x80\xf0") == 4);
    CHECK(moe::utf8_settled_length("\x80x") == 2);  // stray continuation: one U+FFFD
    CHECK(moe::utf8_settled_length("\xe4"
                                   "A") == 2);         // broken sequence, then A
    CHECK(moe::utf8_settled_length("\xc0") == 1);      // never a valid lead
    CHECK(moe::utf8_settled_length("\xe0\xa0") == 0);  // valid prefix: held
    CHECK(moe::utf8_settled_length("\xe0\x80") == 2);  // overlong: invalid at once
    CHECK(moe::utf8_settled_length("\xed\xa0") == 2);  // surrogate
    CHECK(moe::utf8_settled_length("\xf4\x90") == 2);  // above U+10FFFF
    CHECK(moe::utf8_settled_length("\xf4\x8f\xbf") == 0);
    CHECK(moe::utf8_settled_length("\xf0\x90"
                                   "A") == 3);  // one U+FFFD for F0 90, then A
    {
        // the byte-level tokens: GPT-2's byte-to-unicode images
        auto byte_token = [&](unsigned b) {
            unsigned cp = b, n = 0;
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
            if (!printable) {
                for (unsigned x = 0; x < b; ++x)
                    if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) ++n;
                cp = 256 + n;
            }
            std::string t = cp < 0x80 ? std::string(1, char(cp)) : std::string{char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
            return tok.token_id(t);
        };
        CHECK(tok.token_to_piece(byte_token(0xe4)) == "\xe4" && tok.token_to_piece(byte_token(0x0a)) == "\n");
        moe::Detokenizer d(tok, true);
        CHECK(d.push(byte_token('a')) == "a");
        CHECK(d.push(byte_token(0xe4)) == "");
        CHECK(throws_code([&] { d.push(-1); }, "bad_token"));  // keeps what it held
        CHECK(d.push(byte_token(0xb8)) == "" && d.pending() == 2);
        CHECK(d.push(byte_token(0xad)) == "\xe4\xb8\xad");
        CHECK(d.push(byte_token(0xf0)) == "" && d.push(byte_token(0x90)) == "");
        CHECK(d.push(byte_token('A')) ==
              "\xf0\x90"
              "A");
        CHECK(d.push(byte_token(0xf0)) == "");
        CHECK(d.push(im_end) == "\xf0<|im_end|>");
        CHECK(d.push(byte_token(0xf0)) == "" && d.finish() == "\xf0" && d.finish().empty());
        moe::Detokenizer plain(tok, false);
        CHECK(plain.push(byte_token(0xe4)) == "" && plain.push(im_end) == "" && plain.push(think) == "\xe4<think>");
    }

    // vocabulary validation
    auto bad = [&](auto mutate) {
        moe::VocabData w = v;
        mutate(w);
        return throws_code([&] { moe::Tokenizer t(std::move(w)); }, "bad_vocab");
    };
    CHECK(bad([](moe::VocabData& w) { w.model = "llama"; }));
    CHECK(bad([](moe::VocabData& w) {
        w.tokens.clear();
        w.token_types.clear();
    }));
    CHECK(bad([](moe::VocabData& w) { w.tokens[5] = w.tokens[6]; }));
    CHECK(bad([](moe::VocabData& w) { w.token_types.resize(10); }));
    CHECK(bad([](moe::VocabData& w) { w.tokens[0] = "not a byte token"; }));
    {
        moe::VocabData w = v;
        w.pre = "";
        w.pad = 1 << 30;
        w.merges.push_back("nospace");
        moe::Tokenizer t(std::move(w));
        CHECK(!t.warning().empty() && t.pad() == -1);
        CHECK(t.encode("hello world", false) == tok.encode("hello world", false));
    }
    {
        moe::VocabData w = v;
        w.token_types.clear();  // all normal: no special tokens at all
        moe::Tokenizer t(std::move(w));
        CHECK(t.encode("<|im_start|>", true).size() > 1);
    }
    std::printf("selftest: %s (%d failures)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc < 3) {
            std::fprintf(stderr, "usage: %s VOCAB (TEXTS | --bench FILE [REPS] | --selftest)\n", argv[0]);
            return 2;
        }
        moe::VocabData v = load_vocab(argv[1]);
        std::string mode = argv[2];
        if (mode == "--selftest") return run_selftest(v);
        auto t0 = std::chrono::steady_clock::now();
        moe::Tokenizer tok(std::move(v));
        auto t1 = std::chrono::steady_clock::now();
        if (mode == "--bench") {
            std::printf("load: %.1f ms\n", std::chrono::duration<double>(t1 - t0).count() * 1e3);
            if (argc < 4) throw std::runtime_error("--bench needs a file");
            return run_bench(tok, argv[3], argc > 4 ? std::atoi(argv[4]) : 5);
        }
        return run_texts(tok, mode);
    } catch (const moe::Error& e) {
        std::fprintf(stderr, "moe::Error %s: %s\n", e.code.c_str(), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

// Bad input never crashes the engine: a small valid SmallThinker GGUF is written in memory,
// then truncated at every section boundary (and at many points in between), flipped at a few
// hundred seeded random bytes, and given wrong magic/version/counts/types/architecture.
// Every variant must load and run, or fail with moe::Error — never crash or hang (ASan/UBSan
// builds catch memory errors). Also: empty prompts, out-of-range ids, context overflow.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/common.h"
#include "core/dtype.h"
#include "model/model.h"
#include "engine/session.h"

using namespace moe;

namespace {

int g_pass = 0, g_fail = 0;
void check(bool ok, const std::string& what) {
    if (ok) {
        ++g_pass;
    } else {
        ++g_fail;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

// ---- a tiny GGUF writer (test-only) ----
struct W {
    std::vector<uint8_t> b;
    std::vector<size_t> boundaries;  // offsets where a section or item starts
    void u8(uint8_t v) { b.push_back(v); }
    void u32(uint32_t v) { put(&v, 4); }
    void u64(uint64_t v) { put(&v, 8); }
    void f32(float v) { put(&v, 4); }
    void put(const void* p, size_t n) { b.insert(b.end(), (const uint8_t*)p, (const uint8_t*)p + n); }
    void str(const std::string& s) { u64(s.size()); put(s.data(), s.size()); }
    void mark() { boundaries.push_back(b.size()); }
};

struct TensorSpec {
    std::string name;
    std::vector<int64_t> ne;
    DType type;
};

struct Spec {
    std::string arch = "smallthinker";
    uint32_t version = 3;
    uint32_t n_layer = 2, n_embd = 64, n_head = 4, n_head_kv = 2, head_dim = 16, n_expert = 4, n_used = 2, n_ff = 32;
    uint32_t n_vocab = 300;
    uint32_t unknown_type_id = 0;  // if nonzero, the first expert tensor gets this type id
    bool sliding = false;
};

std::vector<uint8_t> make_gguf(const Spec& s, std::vector<size_t>* boundaries) {
    W w;
    std::vector<std::function<void()>> kvs;
    auto kv_u32 = [&](const std::string& k, uint32_t v) { kvs.push_back([&w, k, v] { w.mark(); w.str(k); w.u32(4); w.u32(v); }); };
    auto kv_f32 = [&](const std::string& k, float v) { kvs.push_back([&w, k, v] { w.mark(); w.str(k); w.u32(6); w.f32(v); }); };
    auto kv_str = [&](const std::string& k, const std::string& v) { kvs.push_back([&w, k, v] { w.mark(); w.str(k); w.u32(8); w.str(v); }); };
    const std::string a = "smallthinker.";
    kv_str("general.architecture", s.arch);
    kv_u32(a + "block_count", s.n_layer);
    kv_u32(a + "context_length", 256);
    kv_u32(a + "embedding_length", s.n_embd);
    kv_u32(a + "feed_forward_length", s.n_ff);
    kv_u32(a + "attention.head_count", s.n_head);
    kv_u32(a + "attention.head_count_kv", s.n_head_kv);
    kv_u32(a + "attention.key_length", s.head_dim);
    kv_u32(a + "attention.value_length", s.head_dim);
    kv_f32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
    kv_f32(a + "rope.freq_base", 1.5e6f);
    kv_u32(a + "expert_count", s.n_expert);
    kv_u32(a + "expert_used_count", s.n_used);
    kv_u32(a + "expert_feed_forward_length", s.n_ff);
    kv_u32(a + "expert_gating_func", 2);
    if (s.sliding) kv_u32(a + "attention.sliding_window", 4096);
    kv_str("tokenizer.ggml.model", "gpt2");
    kv_str("tokenizer.ggml.pre", "qwen2");
    // vocab: 256 byte tokens in GPT-2 byte-to-unicode form, then filler tokens
    std::vector<std::string> toks;
    {
        std::vector<int> bs;
        for (int c = 33; c <= 126; ++c) bs.push_back(c);
        for (int c = 161; c <= 172; ++c) bs.push_back(c);
        for (int c = 174; c <= 255; ++c) bs.push_back(c);
        std::vector<int> cs = bs;
        int extra = 0;
        for (int c = 0; c < 256; ++c) {
            if (std::find(bs.begin(), bs.end(), c) == bs.end()) {
                bs.push_back(c);
                cs.push_back(256 + extra++);
            }
        }
        std::vector<std::string> byte_tok(256);
        for (size_t i = 0; i < bs.size(); ++i) {
            int cp = cs[i];
            std::string u;
            if (cp < 0x80) u.push_back((char)cp);
            else { u.push_back((char)(0xC0 | (cp >> 6))); u.push_back((char)(0x80 | (cp & 0x3f))); }
            byte_tok[bs[i]] = u;
        }
        for (int c = 0; c < 256; ++c) toks.push_back(byte_tok[c]);
        while (toks.size() < s.n_vocab) toks.push_back("[PAD" + std::to_string(toks.size()) + "]");
    }
    kvs.push_back([&w, toks] {
        w.mark(); w.str("tokenizer.ggml.tokens"); w.u32(9); w.u32(8); w.u64(toks.size());
        for (auto& t : toks) w.str(t);
    });
    kvs.push_back([&w, n = toks.size()] {
        w.mark(); w.str("tokenizer.ggml.token_type"); w.u32(9); w.u32(5); w.u64(n);
        for (size_t i = 0; i < n; ++i) w.u32(1);
    });
    kvs.push_back([&w] { w.mark(); w.str("tokenizer.ggml.merges"); w.u32(9); w.u32(8); w.u64(0); });

    std::vector<TensorSpec> ts;
    ts.push_back({"token_embd.weight", {s.n_embd, s.n_vocab}, DType::Q8_0});
    ts.push_back({"output_norm.weight", {s.n_embd}, DType::F32});
    for (uint32_t l = 0; l < s.n_layer; ++l) {
        auto n = [&](const char* x) { return "blk." + std::to_string(l) + "." + x + ".weight"; };
        const int64_t nq = s.n_head * s.head_dim, nkv = s.n_head_kv * s.head_dim;
        ts.push_back({n("attn_norm"), {s.n_embd}, DType::F32});
        ts.push_back({n("attn_q"), {s.n_embd, nq}, DType::F16});
        ts.push_back({n("attn_k"), {s.n_embd, nkv}, DType::BF16});
        ts.push_back({n("attn_v"), {s.n_embd, nkv}, DType::Q8_0});
        ts.push_back({n("attn_output"), {nq, s.n_embd}, DType::Q4_0});
        ts.push_back({n("ffn_norm"), {s.n_embd}, DType::F32});
        ts.push_back({n("ffn_gate_inp"), {s.n_embd, s.n_expert}, DType::F32});
        ts.push_back({n("ffn_gate_exps"), {s.n_embd, s.n_ff, s.n_expert}, DType::Q4_0});
        ts.push_back({n("ffn_up_exps"), {s.n_embd, s.n_ff, s.n_expert}, DType::Q4_0});
        ts.push_back({n("ffn_down_exps"), {s.n_ff, s.n_embd, s.n_expert}, DType::Q4_0});
    }
    w.u32(0x46554747);
    w.u32(s.version);
    w.u64(ts.size());
    w.u64(kvs.size());
    for (auto& f : kvs) f();
    std::vector<uint64_t> offs;
    uint64_t off = 0;
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 0.5f);
    for (size_t i = 0; i < ts.size(); ++i) {
        w.mark();
        w.str(ts[i].name);
        w.u32(static_cast<uint32_t>(ts[i].ne.size()));
        int64_t nel = 1;
        for (int64_t v : ts[i].ne) { w.u64(static_cast<uint64_t>(v)); nel *= v; }
        uint32_t type = static_cast<uint32_t>(ts[i].type);
        if (s.unknown_type_id && ts[i].name.find("ffn_up_exps") != std::string::npos) type = s.unknown_type_id;
        w.u32(type);
        w.u64(off);
        offs.push_back(off);
        TypeTraits tr = type_traits(ts[i].type);
        off += (static_cast<uint64_t>(nel / tr.block_size) * tr.type_size + 31) / 32 * 32;
    }
    while (w.b.size() % 32) w.u8(0);
    w.mark();
    const size_t data0 = w.b.size();
    for (size_t i = 0; i < ts.size(); ++i) {
        w.b.resize(data0 + offs[i], 0);
        w.mark();
        int64_t nel = 1;
        for (int64_t v : ts[i].ne) nel *= v;
        std::vector<float> vals(static_cast<size_t>(nel));
        for (auto& x : vals) x = ts[i].name.find("norm") != std::string::npos ? 1.0f : nd(rng);
        if (ts[i].name == "token_embd.weight") for (auto& x : vals) x *= 2.0f;
        const DType t = ts[i].type;
        if (t == DType::F32) w.put(vals.data(), vals.size() * 4);
        else if (t == DType::F16) for (float x : vals) { uint16_t hv = fp32_to_fp16(x); w.put(&hv, 2); }
        else if (t == DType::BF16) for (float x : vals) { uint16_t hv = fp32_to_bf16(x); w.put(&hv, 2); }
        else if (t == DType::Q8_0 || t == DType::Q4_0) {
            for (size_t bi = 0; bi < vals.size() / 32; ++bi) {
                float amax = 0;
                for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(vals[bi * 32 + j]));
                if (t == DType::Q8_0) {
                    block_q8_0 blk;
                    float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
                    blk.d = fp32_to_fp16(d);
                    for (int j = 0; j < 32; ++j) blk.qs[j] = (int8_t)std::lround(vals[bi * 32 + j] * id);
                    w.put(&blk, sizeof blk);
                } else {
                    block_q4_0 blk;
                    float d = amax / 8.0f, id = d ? 1.0f / d : 0.0f;
                    blk.d = fp32_to_fp16(d);
                    for (int j = 0; j < 16; ++j) {
                        int a0 = std::min(15, (int)(vals[bi * 32 + j] * id + 8.5f));
                        int a1 = std::min(15, (int)(vals[bi * 32 + j + 16] * id + 8.5f));
                        blk.qs[j] = (uint8_t)(std::max(0, a0) | (std::max(0, a1) << 4));
                    }
                    w.put(&blk, sizeof blk);
                }
            }
        }
    }
    w.b.resize(data0 + off, 0);
    if (boundaries) *boundaries = w.boundaries;
    return w.b;
}

std::string write_tmp(const std::vector<uint8_t>& bytes) {
    static int counter = 0;
    std::string path = "/tmp/moe_robust_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + ".gguf";
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!bytes.empty()) std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    return path;
}

// Load and, when loading succeeds, run a few tokens. Returns "" on success, else the error code.
std::string try_load_and_run(const std::vector<uint8_t>& bytes, std::string* message = nullptr) {
    std::string path = write_tmp(bytes);
    std::string code;
    try {
        auto m = Model::load(path);
        SessionParams sp;
        sp.n_ctx = 16;
        sp.n_batch = 4;
        sp.n_threads = 2;
        Session s(*m, sp);
        std::vector<int32_t> toks = {1, 2, 3, 4, 5};
        std::vector<float> logits;
        s.decode(toks.data(), toks.size(), LogitsMode::Last, logits);
        auto ids = m->tokenizer().encode("hello", false);
        (void)ids;
    } catch (const Error& e) {
        code = e.code.empty() ? "error" : e.code;
        if (message) *message = e.what();
        if (std::strlen(e.what()) < 10) code = "short_message";
    } catch (const std::exception& e) {
        code = std::string("non-moe exception: ") + e.what();
    }
    unlink(path.c_str());
    return code;
}

}  // namespace

int main() {
    set_log_sink([](LogLevel, const std::string&) {});  // keep output quiet
    Spec spec;
    std::vector<size_t> bounds;
    std::vector<uint8_t> good = make_gguf(spec, &bounds);

    // the valid file works
    {
        std::string msg;
        std::string code = try_load_and_run(good, &msg);
        check(code.empty(), "valid file loads and runs " + msg);
    }
    // truncated at every section boundary and at 200 points in between
    {
        int clear = 0, total = 0;
        std::vector<size_t> cuts = bounds;
        cuts.push_back(0);
        cuts.push_back(3);
        cuts.push_back(good.size() - 1);
        for (int i = 1; i <= 200; ++i) cuts.push_back(good.size() * i / 201);
        for (size_t cut : cuts) {
            if (cut >= good.size()) continue;
            std::vector<uint8_t> t(good.begin(), good.begin() + cut);
            std::string code = try_load_and_run(t);
            ++total;
            if (code == "bad_gguf" || code == "io" || code == "bad_model") ++clear;
            else std::printf("  truncation at %zu gave '%s'\n", cut, code.c_str());
        }
        check(clear == total, "every truncation (" + std::to_string(total) + ") is refused with a clear error");
    }
    // random byte flips: any outcome but a crash; errors must be moe::Error
    {
        std::mt19937 rng(1234);
        int errors = 0, ran = 0, bad = 0;
        for (int i = 0; i < 300; ++i) {
            std::vector<uint8_t> t = good;
            size_t pos = rng() % t.size();
            t[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
            std::string code = try_load_and_run(t);
            if (code.empty()) ++ran;
            else if (code.rfind("non-moe", 0) == 0 || code == "short_message") { ++bad; std::printf("  flip at %zu: %s\n", pos, code.c_str()); }
            else ++errors;
        }
        std::printf("  byte flips: %d ran, %d refused clearly, %d bad\n", ran, errors, bad);
        check(bad == 0, "300 random byte flips: no crash, every error is a clear moe::Error");
    }
    // wrong magic, version, absurd counts
    {
        auto with = [&](size_t off, const void* p, size_t n) { std::vector<uint8_t> t = good; std::memcpy(&t[off], p, n); return t; };
        uint32_t bad_magic = 0x12345678, v1 = 1, v9 = 9;
        uint64_t huge = 0x7fffffffffffffffull;
        check(try_load_and_run(with(0, &bad_magic, 4)) == "bad_gguf", "wrong magic");
        check(try_load_and_run(with(4, &v1, 4)) == "bad_gguf", "version 1");
        check(try_load_and_run(with(4, &v9, 4)) == "bad_gguf", "version 9");
        check(try_load_and_run(with(8, &huge, 8)) == "bad_gguf", "absurd tensor count");
        check(try_load_and_run(with(16, &huge, 8)) == "bad_gguf", "absurd kv count");
        check(try_load_and_run({}) == "bad_gguf", "empty file");
        check(try_load_and_run(std::vector<uint8_t>(good.begin(), good.begin() + bounds.back())) == "bad_gguf", "tensor data past the end of the file");
    }
    // unknown architecture, unknown tensor type, version 2
    {
        Spec s2 = spec;
        s2.arch = "llama";
        std::string msg;
        std::string code = try_load_and_run(make_gguf(s2, nullptr), &msg);
        check(code == "unsupported_arch", "unknown architecture: " + msg);
        Spec s3 = spec;
        s3.unknown_type_id = 200;
        code = try_load_and_run(make_gguf(s3, nullptr), &msg);
        check(code == "unsupported_type", "unknown tensor type: " + msg);
        Spec s4 = spec;
        s4.unknown_type_id = 3;  // q4_1: known to ggml, not computed here
        code = try_load_and_run(make_gguf(s4, nullptr), &msg);
        check(code == "unsupported_type", "unsupported quant type q4_1: " + msg);
        Spec s5 = spec;
        s5.version = 2;
        check(try_load_and_run(make_gguf(s5, nullptr)).empty(), "GGUF version 2 loads");
    }
    // bad inputs to a valid model
    {
        std::string path = write_tmp(good);
        auto m = Model::load(path);
        SessionParams sp;
        sp.n_ctx = 8;
        sp.n_batch = 4;
        sp.n_threads = 1;
        Session s(*m, sp);
        std::vector<float> out;
        auto code_of = [&](std::function<void()> fn) {
            try { fn(); } catch (const Error& e) { return e.code; }
            return std::string();
        };
        std::vector<int32_t> empty, oor = {1, 100000}, neg = {-1}, many(9, 1), ok = {1, 2, 3};
        check(code_of([&] { s.decode(empty.data(), 0, LogitsMode::Last, out); }) == "bad_input", "empty prompt");
        check(code_of([&] { s.decode(oor.data(), oor.size(), LogitsMode::Last, out); }) == "bad_input", "token id out of range");
        check(code_of([&] { s.decode(neg.data(), neg.size(), LogitsMode::Last, out); }) == "bad_input", "negative token id");
        check(code_of([&] { s.decode(many.data(), many.size(), LogitsMode::Last, out); }) == "bad_input", "more tokens than the context");
        check(s.n_past() == 0, "failed calls leave the cache untouched");
        check(code_of([&] { s.decode(ok.data(), ok.size(), LogitsMode::All, out); }).empty() && out.size() == 3u * m->hparams().n_vocab,
              "all-logits decode returns one row per token");
        std::atomic<bool> cancel{true};
        check(code_of([&] { s.decode(ok.data(), ok.size(), LogitsMode::Last, out, &cancel); }) == "cancelled", "cancel flag stops evaluation");
        check(code_of([] { Model::load("/nonexistent/model.gguf"); }) == "io", "missing file");
        unlink(path.c_str());
    }
    std::printf("model_robustness: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

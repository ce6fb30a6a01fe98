// The test GGUF writer; see gguf_writer.h.
#include "gguf_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

namespace testgguf {

using moe::DType;

void Writer::put(const void* p, size_t n) {
    const uint8_t* q = static_cast<const uint8_t*>(p);
    b.insert(b.end(), q, q + n);
}

void Writer::key(const std::string& k, uint32_t type) {
    mark();
    field(FieldKind::KeyLen, 8, k);
    str(k);
    field(FieldKind::ValueType, 4, k);
    u32(type);
}

void Writer::kv_u32(const std::string& k, uint32_t v) {
    key(k, 4);
    field(FieldKind::U32Value, 4, k);
    u32(v);
}

void Writer::kv_f32(const std::string& k, float v) {
    key(k, 6);
    field(FieldKind::F32Value, 4, k);
    f32(v);
}

void Writer::kv_str(const std::string& k, const std::string& v) {
    key(k, 8);
    field(FieldKind::StrLen, 8, k);
    str(v);
}

void Writer::kv_arr_str(const std::string& k, const std::vector<std::string>& v) {
    key(k, 9);
    field(FieldKind::ArrayElemType, 4, k);
    u32(8);
    field(FieldKind::ArrayLen, 8, k);
    u64(v.size());
    if (!v.empty()) field(FieldKind::StrLen, 8, k);
    for (const std::string& s : v) str(s);
}

void Writer::kv_arr_u32(const std::string& k, uint32_t elem_type, const std::vector<uint32_t>& v) {
    key(k, 9);
    field(FieldKind::ArrayElemType, 4, k);
    u32(elem_type);
    field(FieldKind::ArrayLen, 8, k);
    u64(v.size());
    for (uint32_t x : v) u32(x);
}

void Writer::kv_arr_bytes(const std::string& k, uint32_t elem_type, uint64_t n, uint8_t fill) {
    key(k, 9);
    field(FieldKind::ArrayElemType, 4, k);
    u32(elem_type);
    field(FieldKind::ArrayLen, 8, k);
    u64(n);
    b.resize(b.size() + static_cast<size_t>(n), fill);
}

namespace {

struct TensorSpec {
    std::string name;
    std::vector<int64_t> ne;
    DType type;
};

// The 256 byte-level tokens (GPT-2's byte-to-unicode images, UTF-8), then filler tokens.
std::vector<std::string> vocabulary(uint32_t n_vocab) {
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
        if (cp < 0x80) {
            u.push_back(static_cast<char>(cp));
        } else {
            u.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            u.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
        byte_tok[bs[i]] = u;
    }
    std::vector<std::string> toks(byte_tok.begin(), byte_tok.end());
    while (toks.size() < n_vocab) toks.push_back("[PAD" + std::to_string(toks.size()) + "]");
    return toks;
}

void encode(Writer& w, DType t, const std::vector<float>& vals) {
    if (t == DType::F32) {
        w.put(vals.data(), vals.size() * 4);
    } else if (t == DType::F16) {
        for (float x : vals) {
            uint16_t hv = moe::fp32_to_fp16(x);
            w.put(&hv, 2);
        }
    } else if (t == DType::BF16) {
        for (float x : vals) {
            uint16_t hv = moe::fp32_to_bf16(x);
            w.put(&hv, 2);
        }
    } else if (t == DType::Q8_0 || t == DType::Q4_0) {
        for (size_t bi = 0; bi < vals.size() / 32; ++bi) {
            float amax = 0;
            for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(vals[bi * 32 + j]));
            if (t == DType::Q8_0) {
                moe::block_q8_0 blk;
                float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
                blk.d = moe::fp32_to_fp16(d);
                for (int j = 0; j < 32; ++j) blk.qs[j] = static_cast<int8_t>(std::lround(vals[bi * 32 + j] * id));
                w.put(&blk, sizeof blk);
            } else {
                moe::block_q4_0 blk;
                float d = amax / 8.0f, id = d ? 1.0f / d : 0.0f;
                blk.d = moe::fp32_to_fp16(d);
                for (int j = 0; j < 16; ++j) {
                    int a0 = std::min(15, static_cast<int>(vals[bi * 32 + j] * id + 8.5f));
                    int a1 = std::min(15, static_cast<int>(vals[bi * 32 + j + 16] * id + 8.5f));
                    blk.qs[j] = static_cast<uint8_t>(std::max(0, a0) | (std::max(0, a1) << 4));
                }
                w.put(&blk, sizeof blk);
            }
        }
    }
}

}  // namespace

Built build(const Spec& s) {
    Writer w;
    std::vector<std::function<void()>> kvs;
    const std::string a = "smallthinker.";
    auto kv_u32 = [&](const std::string& k, uint32_t v) { kvs.push_back([&w, k, v] { w.kv_u32(k, v); }); };
    auto kv_f32 = [&](const std::string& k, float v) { kvs.push_back([&w, k, v] { w.kv_f32(k, v); }); };
    auto kv_str = [&](const std::string& k, const std::string& v) { kvs.push_back([&w, k, v] { w.kv_str(k, v); }); };
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
    std::vector<std::string> toks = vocabulary(s.n_vocab);
    for (size_t i = 0; i < s.tokens.size() && 256 + i < toks.size(); ++i) toks[256 + i] = s.tokens[i];
    kvs.push_back([&w, &toks] { w.kv_arr_str("tokenizer.ggml.tokens", toks); });
    kvs.push_back([&w, &toks] { w.kv_arr_u32("tokenizer.ggml.token_type", 5, std::vector<uint32_t>(toks.size(), 1)); });
    kvs.push_back([&w, &s] { w.kv_arr_str("tokenizer.ggml.merges", s.merges); });
    if (s.write_alignment) kv_u32("general.alignment", s.alignment);
    for (const auto& extra : s.extra_kvs) kvs.push_back([&w, &extra] { extra(w); });

    std::vector<TensorSpec> ts;
    ts.push_back({"token_embd.weight", {s.n_embd, s.n_vocab}, DType::Q8_0});
    ts.push_back({"output_norm.weight", {s.n_embd}, s.norm_type});
    for (uint32_t l = 0; l < s.n_layer; ++l) {
        auto n = [&](const char* x) { return "blk." + std::to_string(l) + "." + x + ".weight"; };
        const int64_t nq = s.n_head * s.head_dim, nkv = s.n_head_kv * s.head_dim;
        ts.push_back({n("attn_norm"), {s.n_embd}, s.norm_type});
        ts.push_back({n("attn_q"), {s.n_embd, nq}, DType::F16});
        ts.push_back({n("attn_k"), {s.n_embd, nkv}, DType::BF16});
        ts.push_back({n("attn_v"), {s.n_embd, nkv}, DType::Q8_0});
        ts.push_back({n("attn_output"), {nq, s.n_embd}, DType::Q4_0});
        ts.push_back({n("ffn_norm"), {s.n_embd}, s.norm_type});
        ts.push_back({n("ffn_gate_inp"), {s.n_embd, s.n_expert}, DType::F32});
        ts.push_back({n("ffn_gate_exps"), {s.n_embd, s.n_ff, s.n_expert}, DType::Q4_0});
        ts.push_back({n("ffn_up_exps"), {s.n_embd, s.n_ff, s.n_expert}, DType::Q4_0});
        ts.push_back({n("ffn_down_exps"), {s.n_ff, s.n_embd, s.n_expert}, DType::Q4_0});
    }
    w.u32(0x46554747);
    w.field(FieldKind::Version, 4, "");
    w.u32(s.version);
    w.field(FieldKind::TensorCount, 8, "");
    w.u64(ts.size());
    w.field(FieldKind::KvCount, 8, "");
    w.u64(kvs.size());
    for (auto& f : kvs) f();
    const uint64_t al = std::max<uint32_t>(1, s.alignment);
    std::vector<uint64_t> offs;
    uint64_t off = s.data_shift;
    for (size_t i = 0; i < ts.size(); ++i) {
        w.mark();
        w.field(FieldKind::TensorNameLen, 8, ts[i].name);
        w.str(ts[i].name);
        w.field(FieldKind::TensorDims, 4, ts[i].name);
        w.u32(static_cast<uint32_t>(ts[i].ne.size()));
        int64_t nel = 1;
        for (int64_t v : ts[i].ne) {
            w.field(FieldKind::TensorDim, 8, ts[i].name);
            w.u64(static_cast<uint64_t>(v));
            nel *= v;
        }
        uint32_t type = static_cast<uint32_t>(ts[i].type);
        if (s.unknown_type_id && ts[i].name.find("ffn_up_exps") != std::string::npos) type = s.unknown_type_id;
        w.field(FieldKind::TensorType, 4, ts[i].name);
        w.u32(type);
        w.field(FieldKind::TensorOffset, 8, ts[i].name);
        w.u64(off);
        offs.push_back(off);
        // room for the type the file states (unknown_type_id may name a larger one); the data
        // written is always in the spec's type
        moe::TypeTraits tr = moe::type_traits(type);
        if (tr.block_size <= 0 || nel % tr.block_size != 0) tr = moe::type_traits(ts[i].type);
        off += (static_cast<uint64_t>(nel / tr.block_size) * tr.type_size + al - 1) / al * al;
    }
    while (w.b.size() % al) w.u8(0);
    w.mark();
    const size_t data0 = w.b.size();
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 0.5f);
    for (size_t i = 0; i < ts.size(); ++i) {
        w.b.resize(data0 + offs[i], 0);
        w.mark();
        int64_t nel = 1;
        for (int64_t v : ts[i].ne) nel *= v;
        std::vector<float> vals(static_cast<size_t>(nel));
        for (auto& x : vals) x = ts[i].name.find("norm") != std::string::npos ? 1.0f : nd(rng);
        if (ts[i].name == "token_embd.weight")
            for (auto& x : vals) x *= 2.0f;
        const size_t start = w.b.size();
        encode(w, ts[i].type, vals);
        w.fields.push_back({FieldKind::TensorData, start, w.b.size() - start, ts[i].name, ts[i].type});
    }
    w.b.resize(data0 + off, 0);
    Built out;
    out.bytes = std::move(w.b);
    out.boundaries = std::move(w.boundaries);
    out.fields = std::move(w.fields);
    out.data_start = data0;
    return out;
}

std::vector<uint8_t> make_gguf(const Spec& s, std::vector<size_t>* boundaries) {
    Built b = build(s);
    if (boundaries) *boundaries = std::move(b.boundaries);
    return std::move(b.bytes);
}

std::string write_file(const std::vector<uint8_t>& bytes, const std::string& dir, const std::string& stem) {
    static int counter = 0;
    std::string path = dir + "/" + stem + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + ".gguf";
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return "";
    bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    ok = std::fclose(f) == 0 && ok;
    return ok ? path : "";
}

}  // namespace testgguf

// SmallThinker model loading: metadata -> HParams exactly as llama.cpp decides them, tensor
// binding with shape/type validation, tokenizer construction. See ENGINE-SPEC.md sections 2-3.
#include "model/model.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include "kernels/kernels.h"
#include "core/common.h"
#include "core/json.h"

namespace moe {

namespace {

const char* kArch = "smallthinker";

std::string key(const char* suffix) { return std::string(kArch) + "." + suffix; }

bool type_supported_for_compute(uint32_t t) { return type_traits(t).supported; }

class Binder {
 public:
    Binder(const GgufFile& f) : f_(f) {}

    Tensor get(const std::string& name, std::initializer_list<int64_t> shape, bool required = true) {
        const GgufTensorInfo* ti = f_.tensor(name);
        if (!ti) {
            if (required) throw Error("bad_model", strfmt("%s: required tensor '%s' is missing", f_.path().c_str(), name.c_str()));
            return Tensor{};
        }
        used_.insert(name);
        check_shape(*ti, shape);
        if (!type_supported_for_compute(ti->type)) {
            throw Error("unsupported_type",
                        strfmt("%s: tensor '%s' has type %s, which this engine does not support yet (supported: f32, f16, bf16, q8_0, q4_0)",
                               f_.path().c_str(), name.c_str(), type_name(ti->type)));
        }
        Tensor t;
        t.name = ti->name.c_str();
        t.type = static_cast<DType>(ti->type);
        for (int d = 0; d < 4; ++d) t.ne[d] = ti->ne[d];
        t.nb1 = row_bytes(t.type, t.ne[0]);
        t.nb2 = t.nb1 * static_cast<size_t>(t.ne[1]);
        t.data = ti->data;
        return t;
    }

    bool shape_is(const std::string& name, std::initializer_list<int64_t> shape) const {
        const GgufTensorInfo* ti = f_.tensor(name);
        if (!ti) return false;
        int d = 0;
        for (int64_t v : shape) {
            if (ti->ne[d] != v) return false;
            ++d;
        }
        for (; d < 4; ++d)
            if (ti->ne[d] != 1) return false;
        return true;
    }

    const std::set<std::string>& used() const { return used_; }

 private:
    void check_shape(const GgufTensorInfo& ti, std::initializer_list<int64_t> shape) {
        int d = 0;
        bool ok = true;
        for (int64_t v : shape) {
            if (ti.ne[d] != v) ok = false;
            ++d;
        }
        for (; d < 4; ++d)
            if (ti.ne[d] != 1) ok = false;
        if (!ok) {
            std::string want, got;
            for (int64_t v : shape) want += (want.empty() ? "" : ", ") + std::to_string(v);
            for (uint32_t i = 0; i < ti.n_dims; ++i) got += (got.empty() ? "" : ", ") + std::to_string(ti.ne[i]);
            throw Error("bad_model", strfmt("%s: tensor '%s' has shape {%s}, expected {%s}", f_.path().c_str(), ti.name.c_str(),
                                            got.c_str(), want.c_str()));
        }
    }
    const GgufFile& f_;
    std::set<std::string> used_;
};

}  // namespace

// Q4_0 matrices whose row count is a multiple of 16 are relaid out 16 rows per block
// (kernels::repack_q4_0x16) in place: the mapping is private, so the written pages become the
// process's own copy-on-write pages and the file-backed ones are dropped from it (memory stays
// about the file's size). Not relaid out: the token embeddings (read row by row; also the output
// when tied). ffn_up_exps is relaid out too, although ReGLU then cannot skip the rows of the
// neurons relu silences (a group of 16 is almost never all silent): measured on the 4B shapes,
// relaid-out dense `up` made prompt processing 17% faster and decoding about 5% slower than the
// row-layout kernel over only the live rows (which reads half the bytes but at ~9 GB/s, scattered).
void Model::repack_weights(Model& m) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Tensor*> todo;
    auto consider = [&](Tensor& t) {
        if (t.type != DType::Q4_0 || t.ne[1] % 16 != 0 || t.data == m.tok_embd.data) return;
        todo.push_back(&t);
    };
    consider(m.output);
    for (LayerWeights& L : m.layers) {
        for (Tensor* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate_exps, &L.up_exps, &L.down_exps}) consider(*t);
    }
    const MappedFile* map = m.file_->mapping();
    if (todo.empty() || !map) return;
    // work items: (tensor, first group, group count), about 1 MB each; expert matrices are
    // contiguous, so a tensor's groups run through all its experts
    struct Item {
        Tensor* t;
        int64_t g0, ng;
    };
    std::vector<Item> items;
    for (Tensor* t : todo) {
        const int64_t groups = t->ne[1] / 16 * t->ne[2];
        const int64_t per = std::max<int64_t>(1, static_cast<int64_t>((size_t{1} << 20) / (16 * t->nb1)));
        for (int64_t g = 0; g < groups; g += per) items.push_back({t, g, std::min(per, groups - g)});
        map->protect(t->data, t->nb2 * static_cast<size_t>(t->ne[2]), true);
    }
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i; (i = next.fetch_add(1)) < items.size();) {
            const Item& it = items[i];
            uint8_t* base = const_cast<uint8_t*>(it.t->data);
            const size_t gb = 16 * it.t->nb1;
            for (int64_t g = it.g0; g < it.g0 + it.ng; ++g) kernels::repack_q4_0x16(base + static_cast<size_t>(g) * gb, it.t->ne[0] / 32);
        }
    };
    const unsigned n_threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < n_threads; ++i) threads.emplace_back(work);
    work();
    for (std::thread& th : threads) th.join();
    for (Tensor* t : todo) {
        map->protect(t->data, t->nb2 * static_cast<size_t>(t->ne[2]), false);
        t->x16 = true;
        m.repacked_bytes += t->nb2 * static_cast<uint64_t>(t->ne[2]);
    }
    m.repack_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& opts) {
    std::unique_ptr<Model> m(new Model());
    m->file_ = GgufFile::open(path);
    const GgufFile& f = *m->file_;
    HParams& hp = m->hp_;

    hp.arch = f.get_str("general.architecture", "");
    if (hp.arch.empty()) throw Error("bad_model", strfmt("%s has no general.architecture; it is not a model file", path.c_str()));
    if (hp.arch != kArch) {
        throw Error("unsupported_arch", strfmt("%s: architecture '%s' is not supported (this engine runs '%s' models only)",
                                               path.c_str(), hp.arch.c_str(), kArch));
    }
    m->name_ = f.get_str("general.name", "");

    // ---- tokenizer ----
    VocabData vd;
    vd.model = f.get_str("tokenizer.ggml.model", "");
    vd.pre = f.get_str("tokenizer.ggml.pre", "");
    vd.tokens = f.get_str_arr("tokenizer.ggml.tokens");
    vd.token_types = f.get_i32_arr("tokenizer.ggml.token_type");
    vd.merges = f.get_str_arr("tokenizer.ggml.merges");
    vd.bos = f.get_i32("tokenizer.ggml.bos_token_id", -1);
    vd.eos = f.get_i32("tokenizer.ggml.eos_token_id", -1);
    vd.eot = f.get_i32("tokenizer.ggml.eot_token_id", -1);
    vd.pad = f.get_i32("tokenizer.ggml.padding_token_id", -1);
    vd.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", false);
    if (vd.tokens.empty()) throw Error("bad_model", strfmt("%s has no tokenizer vocabulary (tokenizer.ggml.tokens)", path.c_str()));
    if (vd.model != "gpt2") {
        throw Error("unsupported_tokenizer", strfmt("%s: tokenizer model '%s' is not supported (byte-level BPE 'gpt2' only)",
                                                    path.c_str(), vd.model.c_str()));
    }
    m->tokenizer_ = std::make_unique<Tokenizer>(std::move(vd));
    m->chat_template_ = f.get_str("tokenizer.chat_template", "");

    // ---- hyperparameters ----
    hp.n_layer = f.get_u32(key("block_count"));
    hp.n_embd = f.get_u32(key("embedding_length"));
    if (hp.n_layer == 0 || hp.n_layer > 512) throw Error("bad_model", strfmt("%s: block_count %u is out of range", path.c_str(), hp.n_layer));
    if (hp.n_embd == 0 || hp.n_embd > 65536) throw Error("bad_model", strfmt("%s: embedding_length %u is out of range", path.c_str(), hp.n_embd));
    {
        std::vector<uint32_t> heads = f.get_u32_or_arr(key("attention.head_count"), hp.n_layer);
        if (heads.empty()) throw Error("bad_model", strfmt("%s: required metadata '%s' is missing", path.c_str(), key("attention.head_count").c_str()));
        for (uint32_t h : heads)
            if (h != heads[0]) throw Error("bad_model", strfmt("%s: per-layer head counts that differ are not supported", path.c_str()));
        hp.n_head = heads[0];
        std::vector<uint32_t> kv = f.get_u32_or_arr(key("attention.head_count_kv"), hp.n_layer);
        hp.n_head_kv = kv.empty() ? hp.n_head : kv[0];
        for (uint32_t h : kv)
            if (h != hp.n_head_kv) throw Error("bad_model", strfmt("%s: per-layer KV head counts that differ are not supported", path.c_str()));
    }
    if (hp.n_head == 0 || hp.n_head_kv == 0 || hp.n_head % hp.n_head_kv != 0 || hp.n_head > 1024)
        throw Error("bad_model", strfmt("%s: head counts %u/%u are invalid (heads must be a multiple of KV heads)", path.c_str(), hp.n_head, hp.n_head_kv));
    uint32_t head_def = hp.n_embd % hp.n_head == 0 ? hp.n_embd / hp.n_head : 0;
    hp.n_embd_head_k = f.get_u32(key("attention.key_length"), head_def);
    hp.n_embd_head_v = f.get_u32(key("attention.value_length"), head_def);
    if (hp.n_embd_head_k == 0 || hp.n_embd_head_k != hp.n_embd_head_v || hp.n_embd_head_k % 2 != 0 || hp.n_embd_head_k > 1024)
        throw Error("bad_model", strfmt("%s: attention key/value lengths %u/%u are not supported (must be equal and even)", path.c_str(),
                                        hp.n_embd_head_k, hp.n_embd_head_v));
    hp.n_ctx_train = f.get_u32(key("context_length"), 4096);
    hp.n_expert = f.get_u32(key("expert_count"), 0);
    hp.n_expert_used = f.get_u32(key("expert_used_count"), 0);
    if (hp.n_expert == 0 || hp.n_expert_used == 0 || hp.n_expert_used > hp.n_expert || hp.n_expert > 4096)
        throw Error("bad_model", strfmt("%s: expert counts %u used of %u are invalid", path.c_str(), hp.n_expert_used, hp.n_expert));
    hp.rms_eps = f.get_f32(key("attention.layer_norm_rms_epsilon"));
    if (!(hp.rms_eps >= 0.0f) || !std::isfinite(hp.rms_eps)) throw Error("bad_model", strfmt("%s: invalid RMS norm epsilon", path.c_str()));
    hp.rope_freq_base = f.get_f32(key("rope.freq_base"), 10000.0f);
    if (!(hp.rope_freq_base > 0.0f) || !std::isfinite(hp.rope_freq_base)) throw Error("bad_model", strfmt("%s: invalid rope.freq_base", path.c_str()));
    hp.rope_freq_base_swa = hp.rope_freq_base;

    // gating: llama.cpp aborts when the key is missing; we default to sigmoid (the HF config default).
    if (f.has(key("expert_gating_func"))) {
        uint32_t g = f.get_u32(key("expert_gating_func"));
        if (g == 1) hp.gating = Gating::Softmax;
        else if (g == 2) hp.gating = Gating::Sigmoid;
        else throw Error("bad_model", strfmt("%s: expert_gating_func %u is not supported (1 = softmax, 2 = sigmoid)", path.c_str(), g));
    } else {
        hp.gating = Gating::Sigmoid;
        hp.gating_defaulted = true;
        log(LogLevel::Warn, strfmt("%s: smallthinker.expert_gating_func is missing; using sigmoid gating (the model's published default)",
                                   path.c_str()));
    }

    // layer types, as llama.cpp decides them
    hp.is_swa.assign(hp.n_layer, false);
    hp.use_rope.assign(hp.n_layer, true);
    uint32_t swa_key = f.get_u32(key("attention.sliding_window"), 0);
    if (swa_key > 0) {
        hp.n_swa = 4096;  // llama.cpp forces 4096 whatever the file says
        const GgufValue* pat = f.find(key("attention.sliding_window_pattern"));
        if (pat && pat->type == GgufType::ARRAY) {
            std::vector<bool> arr = f.get_bool_arr(key("attention.sliding_window_pattern"));
            if (arr.size() < hp.n_layer)
                throw Error("bad_model", strfmt("%s: attention.sliding_window_pattern has %zu entries for %u layers", path.c_str(), arr.size(), hp.n_layer));
            for (uint32_t il = 0; il < hp.n_layer; ++il) hp.is_swa[il] = arr[il];
        } else {
            uint32_t period = pat ? f.get_u32(key("attention.sliding_window_pattern")) : 4;
            for (uint32_t il = 0; il < hp.n_layer; ++il) hp.is_swa[il] = period == 0 || (il % period != 0);
        }
        hp.rope_freq_base_swa = f.get_f32(key("rope.freq_base_swa"), hp.rope_freq_base);
        // NoPE every 4th layer (a fixed step, not read from any key); llama.cpp's rule keeps RoPE on
        // every layer when n_layer == 4.
        const uint32_t step = 4;
        for (uint32_t il = 0; il < hp.n_layer; ++il) hp.use_rope[il] = step == hp.n_layer || il % step != 0;
    }

    // ---- tensors ----
    const int64_t n_embd = hp.n_embd;
    const GgufTensorInfo* te = f.tensor("token_embd.weight");
    if (!te) throw Error("bad_model", strfmt("%s: required tensor 'token_embd.weight' is missing", path.c_str()));
    hp.n_vocab = static_cast<uint32_t>(te->ne[1]);
    if (static_cast<int64_t>(hp.n_vocab) != static_cast<int64_t>(m->tokenizer_->n_vocab())) {
        throw Error("bad_model", strfmt("%s: the vocabulary has %d tokens but token_embd.weight has %u rows", path.c_str(),
                                        m->tokenizer_->n_vocab(), hp.n_vocab));
    }
    // expert FFN size: scalar or per-layer array; derived from the tensors when absent
    hp.n_ff_exp = f.get_u32_or_arr(key("expert_feed_forward_length"), hp.n_layer);
    if (hp.n_ff_exp.empty()) {
        for (uint32_t il = 0; il < hp.n_layer; ++il) {
            const GgufTensorInfo* g = f.tensor(strfmt("blk.%u.ffn_gate_exps.weight", il));
            hp.n_ff_exp.push_back(g ? static_cast<uint32_t>(g->ne[1]) : 0);
        }
    }
    if (opts.vocab_only) return m;

    Binder b(f);
    m->tok_embd = b.get("token_embd.weight", {n_embd, hp.n_vocab});
    m->output_norm = b.get("output_norm.weight", {n_embd});
    m->output = b.get("output.weight", {n_embd, hp.n_vocab}, false);
    if (!m->output.present()) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    const int64_t n_q = hp.n_embd_q(), n_kv = hp.n_embd_k_gqa();
    m->layers.resize(hp.n_layer);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        auto tn = [&](const char* s) { return strfmt("blk.%u.%s.weight", il, s); };
        LayerWeights& L = m->layers[il];
        const int64_t n_ff = hp.n_ff_exp[il];
        if (n_ff <= 0) throw Error("bad_model", strfmt("%s: layer %u has no expert FFN size", path.c_str(), il));
        L.attn_norm = b.get(tn("attn_norm"), {n_embd});
        L.wq = b.get(tn("attn_q"), {n_embd, n_q});
        L.wk = b.get(tn("attn_k"), {n_embd, n_kv});
        L.wv = b.get(tn("attn_v"), {n_embd, n_kv});
        L.wo = b.get(tn("attn_output"), {n_q, n_embd});
        L.ffn_norm = b.get(tn("ffn_norm"), {n_embd});
        L.gate_inp = b.get(tn("ffn_gate_inp"), {n_embd, hp.n_expert});
        if (!f.tensor(tn("ffn_gate_exps")) || !f.tensor(tn("ffn_up_exps")) || !f.tensor(tn("ffn_down_exps"))) {
            throw Error("bad_model", strfmt("%s: layer %u has no expert weights (ffn_gate_exps/ffn_up_exps/ffn_down_exps); files made for "
                                            "PowerInfer's own runtime that store experts elsewhere cannot run here",
                                            path.c_str(), il));
        }
        L.gate_exps = b.get(tn("ffn_gate_exps"), {n_embd, n_ff, hp.n_expert});
        L.up_exps = b.get(tn("ffn_up_exps"), {n_embd, n_ff, hp.n_expert});
        if (n_ff != n_embd && b.shape_is(tn("ffn_down_exps"), {n_embd, n_ff, hp.n_expert})) {
            throw Error("bad_model", strfmt("%s: layer %u stores ffn_down_exps transposed ({n_embd, n_ff_exp, n_expert}, as PowerInfer's "
                                            "converter does); re-convert the model with llama.cpp's converter",
                                            path.c_str(), il));
        }
        L.down_exps = b.get(tn("ffn_down_exps"), {n_ff, n_embd, hp.n_expert});
    }
    auto to_f32 = [](const Tensor& t) {
        std::vector<float> out(static_cast<size_t>(t.ne[0]));
        dequantize_row(t.type, t.data, out.data(), t.ne[0]);
        return out;
    };
    for (const LayerWeights& L : m->layers) m->norms.push_back({to_f32(L.attn_norm), to_f32(L.ffn_norm)});
    m->output_norm_f32 = to_f32(m->output_norm);
    const char* no_repack = std::getenv("MOE_NO_REPACK");
    if (opts.repack && !(no_repack && *no_repack && std::strcmp(no_repack, "0") != 0)) repack_weights(*m);
    for (const GgufTensorInfo& ti : f.tensors()) {
        if (!b.used().count(ti.name)) {
            log(LogLevel::Info, strfmt("%s: ignoring tensor '%s' (not used by the smallthinker forward pass)", path.c_str(), ti.name.c_str()));
        }
    }
    return m;
}

std::string Model::info_json() const {
    const HParams& hp = hp_;
    std::string j = "{";
    auto kv_num = [&](const char* k, double v, bool last = false) {
        j += json_str(k) + ":" + strfmt("%.9g", v) + (last ? "" : ",");
    };
    j += "\"architecture\":" + json_str(hp.arch) + ",";
    j += "\"name\":" + json_str(name_) + ",";
    j += "\"file\":" + json_str(file_->path()) + ",";
    kv_num("repackedBytes", static_cast<double>(repacked_bytes));
    kv_num("repackMs", repack_ms);
    j += "\"file_size\":" + std::to_string(file_->file_size()) + ",";
    j += "\"gguf_version\":" + std::to_string(file_->version()) + ",";
    j += "\"hparams\":{";
    kv_num("n_layer", hp.n_layer);
    kv_num("n_embd", hp.n_embd);
    kv_num("n_head", hp.n_head);
    kv_num("n_head_kv", hp.n_head_kv);
    kv_num("n_embd_head_k", hp.n_embd_head_k);
    kv_num("n_embd_head_v", hp.n_embd_head_v);
    kv_num("n_vocab", hp.n_vocab);
    kv_num("n_ctx_train", hp.n_ctx_train);
    kv_num("n_expert", hp.n_expert);
    kv_num("n_expert_used", hp.n_expert_used);
    j += "\"n_ff_exp\":[";
    for (size_t i = 0; i < hp.n_ff_exp.size(); ++i) j += (i ? "," : "") + std::to_string(hp.n_ff_exp[i]);
    j += "],";
    kv_num("rms_eps", hp.rms_eps);
    kv_num("rope_freq_base", hp.rope_freq_base);
    kv_num("rope_freq_base_swa", hp.rope_freq_base_swa);
    j += "\"gating\":" + json_str(hp.gating == Gating::Sigmoid ? "sigmoid" : "softmax") + ",";
    j += std::string("\"gating_defaulted\":") + (hp.gating_defaulted ? "true" : "false") + ",";
    kv_num("n_swa", hp.n_swa);
    j += std::string("\"tied_output\":") + (tied_output ? "true" : "false");
    j += "},\"layers\":[";
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        if (il) j += ",";
        j += "{\"attention\":" + json_str(hp.is_swa[il] ? "window" : "global") + ",\"rope\":" + (hp.use_rope[il] ? "true" : "false") +
             ",\"n_ff_exp\":" + std::to_string(hp.n_ff_exp[il]) + "}";
    }
    j += "],\"tensor_types\":{";
    std::map<std::string, uint64_t> counts;
    for (const GgufTensorInfo& t : file_->tensors()) counts[type_name(t.type)] += 1;
    bool first = true;
    for (auto& kv : counts) {
        j += (first ? "" : ",") + json_str(kv.first) + ":" + std::to_string(kv.second);
        first = false;
    }
    j += "},\"tensors\":[";
    first = true;
    for (const GgufTensorInfo& t : file_->tensors()) {
        j += (first ? "" : ",");
        first = false;
        j += "{\"name\":" + json_str(t.name) + ",\"type\":" + json_str(type_name(t.type)) + ",\"shape\":[";
        for (uint32_t d = 0; d < t.n_dims; ++d) j += (d ? "," : "") + std::to_string(t.ne[d]);
        j += "]}";
    }
    j += "],\"chat_template\":" + std::string(chat_template_.empty() ? "false" : "true");
    j += "}";
    return j;
}

}  // namespace moe

// SmallThinker (SmallThinker-4B-A0.6B and 21B-A3B; ENGINE-SPEC sections 2-4): a decoder whose
// layers are attention then a mixture of experts. What sets it apart:
//   - the router of each layer reads the layer's input before attention, so the layer's experts
//     are known while attention runs (the "pre-attention router");
//   - experts are ReGLU FFNs (relu(gate) * up, then down), chosen top-k by sigmoid (or softmax)
//     probabilities, their weights renormalised to sum to 1;
//   - three of four layers use a sliding window of 4096 positions with RoPE; every fourth layer
//     is global attention without position encoding (NoPE).
// Numerics mirror llama.cpp's CPU path so that logits agree with the oracle: activations are
// converted to each weight type's activation type before the dot products, K/V are cached as
// fp16, q and the attention weights are rounded to fp16 (model/attention.h).
#include <cmath>
#include <cstring>

#include "core/common.h"
#include "model/attention.h"
#include "model/forward.h"
#include "model/moe.h"
#include "model/norm.h"
#include "model/rope.h"
#include "model/tensor_names.h"
#include "model/weights.h"
#include "models/registry.h"

namespace moe {

namespace {

struct Layer {
    Tensor attn_norm;                                // {n_embd}
    Tensor wq;                                       // {n_embd, n_head*head_dim}
    Tensor wk;                                       // {n_embd, n_head_kv*head_dim}
    Tensor wv;                                       // {n_embd, n_head_kv*head_dim}
    Tensor wo;                                       // {n_head*head_dim, n_embd}
    Tensor ffn_norm;                                 // {n_embd}
    Tensor router;                                   // {n_embd, n_expert}  ffn_gate_inp
    Tensor gate_exps;                                // {n_embd, n_ff_exp, n_expert}
    Tensor up_exps;                                  // {n_embd, n_ff_exp, n_expert}
    Tensor down_exps;                                // {n_ff_exp, n_embd, n_expert} ({n_embd, n_ff_exp, n_expert} by neuron)
    bool down_by_neuron = false;                     // PowerInfer's transposed layout
    std::vector<float> attn_norm_f32, ffn_norm_f32;  // the norms dequantised once at load
};

class SmallThinker final : public Architecture {
 public:
    explicit SmallThinker(const HParams& hp) : hp_(hp) {}
    void forward(ForwardState& s, const Batch& b) const override;
    std::vector<Tensor*> matrices() override;
    bool tied_output() const override { return tied_; }
    // Layer il's experts, from the expert cache under a memory budget.
    ExpertWeights experts(uint32_t il) const {
        const Layer& L = layers[il];
        ExpertWeights w{L.gate_exps, L.up_exps, L.down_exps, L.down_by_neuron};
        if (expert_cache) {
            w.cache = expert_cache;
            w.layer = il;
            for (int i = 0; i < 3; ++i) w.extent_offset[i] = expert_offsets[il][static_cast<size_t>(i)];
        }
        return w;
    }

    const HParams& hp_;
    Tensor tok_embd;     // {n_embd, n_vocab}
    Tensor output_norm;  // {n_embd}
    Tensor output;       // {n_embd, n_vocab}; == tok_embd when tied
    bool tied_ = false;
    std::vector<float> output_norm_f32;
    std::vector<Layer> layers;
};

// Under a memory budget: batches of at most this many tokens read the next layer's likely experts ahead.
constexpr int64_t kGuessTokens = 4;

void SmallThinker::forward(ForwardState& s, const Batch& b) const {
    const HParams& hp = hp_;
    const int64_t n = b.n, E = hp.n_embd, NQ = hp.n_embd_q(), NKV = hp.n_embd_k_gqa();
    const int64_t NX = hp.n_expert, K = hp.n_expert_used;
    const AttentionShape shape{static_cast<int>(hp.n_head), static_cast<int>(hp.n_head_kv), static_cast<int>(hp.n_embd_head_k)};
    for (std::vector<float>* buf : {&s.x, &s.h, &s.proj}) buf->resize(static_cast<size_t>(n * E));
    for (std::vector<float>* buf : {&s.q, &s.att}) buf->resize(static_cast<size_t>(n * NQ));
    for (std::vector<float>* buf : {&s.k, &s.v}) buf->resize(static_cast<size_t>(n * NKV));
    s.router.resize(static_cast<size_t>(n * NX));
    float *x = s.x.data(), *h = s.h.data(), *q = s.q.data(), *k = s.k.data(), *v = s.v.data();

    // The residual stream starts as the tokens' embeddings.
    for (int64_t t = 0; t < n; ++t) dequantize_row(tok_embd.type, tok_embd.row(b.tokens[t]), x + t * E, E);
    s.prof.start(n);

    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        const Layer& L = layers[il];

        // 1. The router's logits from the raw residual x (not the normed one), and q, k, v from
        //    the normed residual h: one batch of matrix products.
        rms_norm_rows(s.pool, x, L.attn_norm_f32.data(), h, n, E, hp.rms_eps);
        const Acts ar = s.mm.convert(L.router, s.bug == Bug::RouteNormed ? h : x, n, E, s.act_x);
        const Acts ah = s.mm.convert(L.wq, h, n, E, s.act_h);
        s.mm.add(L.router, 0, ar, n, s.router.data(), NX);
        s.mm.add(L.wq, 0, ah, n, q, NQ);
        if (L.wk.type == L.wq.type && L.wv.type == L.wq.type) {
            s.mm.add(L.wk, 0, ah, n, k, NKV);
            s.mm.add(L.wv, 0, ah, n, v, NKV);
            s.mm.run();
        } else {
            s.mm.run();
            s.mm.mul(L.wk, h, n, E, k, NKV);
            s.mm.mul(L.wv, h, n, E, v, NKV);
        }
        s.prof.lap(PhaseProfile::Qkv);
        // The router has chosen each token's experts (pre-attention routing): under a memory
        // budget the missing ones are read while attention runs.
        const Gating gating = s.bug == Bug::SoftmaxGating ? Gating::Softmax : hp.gating;
        route(s.pool, s.router.data(), n, NX, K, gating, s.bug != Bug::NoRenorm, s.routing, s.moe, &s.expert_counts[il * NX]);
        const ExpertWeights ew = experts(il);
        prefetch_experts(ew, s.routing, n, s.moe);
        s.prof.lap(PhaseProfile::Route);

        // 2. RoPE on q and k, except on NoPE layers; then k and v join the cache (fp16).
        if (hp.use_rope[il] || s.bug == Bug::RopeOnNope)
            rope_rows(q, NQ, shape.n_head, k, NKV, shape.n_head_kv, n, b.pos0, shape.head_dim, hp.rope_base(il), b.pos);
        s.kv.store(s.ks, il, k, v, b.pos0, n, b.pos);
        s.prof.lap(PhaseProfile::Rope);

        // 3. Causal attention over the cache: every earlier position on global layers, the last
        //    n_swa positions on sliding-window layers.
        const int32_t window = hp.is_swa[il] ? static_cast<int32_t>(hp.n_swa) + (s.bug == Bug::WindowOffByOne ? 1 : 0) : 0;
        attention(s.pool, s.ks, s.kv, il, shape, q, NQ, n, b.pos0, window, s.att.data(), NQ, s.attn_scratch, b.pos);
        s.prof.lap(PhaseProfile::Attn);

        // 4. Output projection, added to the residual.
        s.mm.mul(L.wo, s.att.data(), n, NQ, s.proj.data(), E);
        s.prof.lap(PhaseProfile::Wo);
        for (int64_t i = 0; i < n * E; ++i) x[i] = s.proj[i] + x[i];
        // Under a memory budget, decoding: the next layer's experts guessed from its router on
        // the residual as it stands (its input but this layer's FFN), read during this layer's FFN.
        if (expert_cache && il + 1 < hp.n_layer && n <= kGuessTokens) {
            s.router_next.resize(static_cast<size_t>(n * NX));
            s.mm.mul(layers[il + 1].router, x, n, E, s.router_next.data(), NX);
            route(s.pool, s.router_next.data(), n, NX, K, gating, s.bug != Bug::NoRenorm, s.guess, s.moe, nullptr);
            prefetch_guess(experts(il + 1), s.guess, n, s.moe);
            s.prof.lap(PhaseProfile::Guess);
        }

        // 5. Mixture of experts on the normed residual: each token's top-k experts from the
        //    router logits of step 1, their ReGLU FFNs weighted and added to the residual.
        rms_norm_rows(s.pool, x, L.ffn_norm_f32.data(), h, n, E, hp.rms_eps);
        const uint64_t zero = moe_ffn(s.mm, s.pool, ew, h, n, E, s.routing, x, s.moe, s.prof);
        const uint64_t total = static_cast<uint64_t>(n * K * hp.n_ff_exp[il]);
        s.reglu_zero += zero;
        s.reglu_total += total;
        s.reglu_zero_layer.resize(static_cast<size_t>(hp.n_layer));
        s.reglu_total_layer.resize(static_cast<size_t>(hp.n_layer));
        s.reglu_zero_layer[static_cast<size_t>(il)] += zero;
        s.reglu_total_layer[static_cast<size_t>(il)] += total;
    }

    // 6. The final norm and the logits of the rows asked for.
    if (b.out_rows.empty()) return;
    const int64_t no = static_cast<int64_t>(b.out_rows.size());
    s.logits_in.resize(static_cast<size_t>(no * E));
    for (int64_t i = 0; i < no; ++i) rms_norm(x + b.out_rows[i] * E, output_norm_f32.data(), &s.logits_in[i * E], E, hp.rms_eps);
    s.mm.mul(output, s.logits_in.data(), no, E, b.logits, hp.n_vocab);
    s.prof.lap(PhaseProfile::Output);
}

std::vector<Tensor*> SmallThinker::matrices() {
    std::vector<Tensor*> out;
    if (!tied_) out.push_back(&output);
    for (Layer& L : layers) {
        for (Tensor* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate_exps, &L.up_exps}) out.push_back(t);
        if (!L.down_by_neuron) out.push_back(&L.down_exps);  // neuron rows are read one by one, in the file's layout
    }
    return out;
}

// ---- loading: hyperparameters exactly as llama.cpp decides them, then the tensors

std::string key(const char* suffix) { return std::string("smallthinker.") + suffix; }

// A float hyperparameter must be finite and within [lo, hi]; NaN fails every comparison.
float checked_f32(const GgufFile& f, const std::string& k, float v, float lo, float hi) {
    if (!(v >= lo && v <= hi))
        throw Error("bad_model", strfmt("%s: metadata '%s' is %g; it must be a finite number from %g to %g", f.path().c_str(), k.c_str(),
                                        static_cast<double>(v), static_cast<double>(lo), static_cast<double>(hi)));
    return v;
}

void read_hparams(const GgufFile& f, HParams& hp) {
    const std::string& path = f.path();
    hp.n_layer = f.get_u32(key("block_count"));
    hp.n_embd = f.get_u32(key("embedding_length"));
    if (hp.n_layer == 0 || hp.n_layer > 512)
        throw Error("bad_model", strfmt("%s: block_count %u is out of range", path.c_str(), hp.n_layer));
    if (hp.n_embd == 0 || hp.n_embd > 65536)
        throw Error("bad_model", strfmt("%s: embedding_length %u is out of range", path.c_str(), hp.n_embd));
    {
        std::vector<uint32_t> heads = f.get_u32_or_arr(key("attention.head_count"), hp.n_layer);
        if (heads.empty())
            throw Error("bad_model", strfmt("%s: required metadata '%s' is missing", path.c_str(), key("attention.head_count").c_str()));
        for (uint32_t h : heads)
            if (h != heads[0]) throw Error("bad_model", strfmt("%s: per-layer head counts that differ are not supported", path.c_str()));
        hp.n_head = heads[0];
        std::vector<uint32_t> kv = f.get_u32_or_arr(key("attention.head_count_kv"), hp.n_layer);
        hp.n_head_kv = kv.empty() ? hp.n_head : kv[0];
        for (uint32_t h : kv)
            if (h != hp.n_head_kv)
                throw Error("bad_model", strfmt("%s: per-layer KV head counts that differ are not supported", path.c_str()));
    }
    if (hp.n_head == 0 || hp.n_head_kv == 0 || hp.n_head % hp.n_head_kv != 0 || hp.n_head > 1024)
        throw Error("bad_model", strfmt("%s: head counts %u/%u are invalid (heads must be a multiple of KV heads)", path.c_str(), hp.n_head,
                                        hp.n_head_kv));
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
    // Ranges: the norm epsilon is a small non-negative number (1e-6 in SmallThinker); a RoPE base
    // below 1 or past 1e12 is nonsense (the published models use 1.5e6). NaN and Inf are refused.
    hp.rms_eps = checked_f32(f, key("attention.layer_norm_rms_epsilon"), f.get_f32(key("attention.layer_norm_rms_epsilon")), 0.0f, 1.0f);
    hp.rope_freq_base = checked_f32(f, key("rope.freq_base"), f.get_f32(key("rope.freq_base"), 10000.0f), 1.0f, 1e12f);
    // checked whenever present, although only sliding-window models use it
    const float rope_base_swa =
        checked_f32(f, key("rope.freq_base_swa"), f.get_f32(key("rope.freq_base_swa"), hp.rope_freq_base), 1.0f, 1e12f);
    hp.rope_freq_base_swa = hp.rope_freq_base;

    // gating: llama.cpp aborts when the key is missing; we default to sigmoid (the HF config default).
    if (f.has(key("expert_gating_func"))) {
        uint32_t g = f.get_u32(key("expert_gating_func"));
        if (g == 1)
            hp.gating = Gating::Softmax;
        else if (g == 2)
            hp.gating = Gating::Sigmoid;
        else
            throw Error("bad_model", strfmt("%s: expert_gating_func %u is not supported (1 = softmax, 2 = sigmoid)", path.c_str(), g));
    } else {
        hp.gating = Gating::Sigmoid;
        hp.gating_defaulted = true;
        log(LogLevel::Warn,
            strfmt("%s: smallthinker.expert_gating_func is missing; using sigmoid gating (the model's published default)", path.c_str()));
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
                throw Error("bad_model", strfmt("%s: attention.sliding_window_pattern has %zu entries for %u layers", path.c_str(),
                                                arr.size(), hp.n_layer));
            for (uint32_t il = 0; il < hp.n_layer; ++il) hp.is_swa[il] = arr[il];
        } else {
            uint32_t period = pat ? f.get_u32(key("attention.sliding_window_pattern")) : 4;
            for (uint32_t il = 0; il < hp.n_layer; ++il) hp.is_swa[il] = period == 0 || (il % period != 0);
        }
        hp.rope_freq_base_swa = rope_base_swa;
        // NoPE every 4th layer (a fixed step, not read from any key); llama.cpp's rule keeps RoPE on
        // every layer when n_layer == 4.
        const uint32_t step = 4;
        for (uint32_t il = 0; il < hp.n_layer; ++il) hp.use_rope[il] = step == hp.n_layer || il % step != 0;
    }

    // expert FFN size: scalar or per-layer array; derived from the tensors when absent
    hp.n_ff_exp = f.get_u32_or_arr(key("expert_feed_forward_length"), hp.n_layer);
    if (hp.n_ff_exp.empty()) {
        for (uint32_t il = 0; il < hp.n_layer; ++il) {
            const GgufTensorInfo* g = f.tensor(tensor_name(TensorName::FfnGateExps, il));
            hp.n_ff_exp.push_back(g ? static_cast<uint32_t>(g->ne[1]) : 0);
        }
    }
}

std::vector<float> to_f32(const Tensor& t) {
    std::vector<float> out(static_cast<size_t>(t.ne[0]));
    dequantize_row(t.type, t.data, out.data(), t.ne[0]);
    return out;
}

}  // namespace

std::unique_ptr<Architecture> load_smallthinker(const GgufFile& f, HParams& hp, int n_vocab, const LoadOptions& opts) {
    const std::string& path = f.path();
    read_hparams(f, hp);
    const GgufTensorInfo* te = f.tensor(tensor_name(TensorName::TokenEmbd));
    if (!te)
        throw Error("bad_model", strfmt("%s: required tensor '%s' is missing", path.c_str(), tensor_name(TensorName::TokenEmbd).c_str()));
    hp.n_vocab = static_cast<uint32_t>(te->ne[1]);
    if (static_cast<int64_t>(hp.n_vocab) != static_cast<int64_t>(n_vocab)) {
        throw Error("bad_model",
                    strfmt("%s: the vocabulary has %d tokens but token_embd.weight has %u rows", path.c_str(), n_vocab, hp.n_vocab));
    }
    if (opts.vocab_only) return nullptr;

    auto m = std::make_unique<SmallThinker>(hp);
    TensorBinder b(f);
    const int64_t n_embd = hp.n_embd, n_q = hp.n_embd_q(), n_kv = hp.n_embd_k_gqa(), n_expert = hp.n_expert;
    m->tok_embd = b.get(tensor_name(TensorName::TokenEmbd), {n_embd, hp.n_vocab});
    m->output_norm = b.get(tensor_name(TensorName::OutputNorm), {n_embd});
    m->output = b.get(tensor_name(TensorName::Output), {n_embd, hp.n_vocab}, false);
    if (!m->output.present()) {
        m->output = m->tok_embd;
        m->tied_ = true;
    }
    m->output_norm_f32 = to_f32(m->output_norm);
    m->layers.resize(hp.n_layer);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        auto tn = [&](TensorName t) { return tensor_name(t, il); };
        Layer& L = m->layers[il];
        const int64_t n_ff = hp.n_ff_exp[il];
        if (n_ff <= 0) throw Error("bad_model", strfmt("%s: layer %u has no expert FFN size", path.c_str(), il));
        L.attn_norm = b.get(tn(TensorName::AttnNorm), {n_embd});
        L.wq = b.get(tn(TensorName::AttnQ), {n_embd, n_q});
        L.wk = b.get(tn(TensorName::AttnK), {n_embd, n_kv});
        L.wv = b.get(tn(TensorName::AttnV), {n_embd, n_kv});
        L.wo = b.get(tn(TensorName::AttnOutput), {n_q, n_embd});
        L.ffn_norm = b.get(tn(TensorName::FfnNorm), {n_embd});
        L.router = b.get(tn(TensorName::FfnGateInp), {n_embd, n_expert});
        if (!b.has(tn(TensorName::FfnGateExps)) || !b.has(tn(TensorName::FfnUpExps)) || !b.has(tn(TensorName::FfnDownExps))) {
            throw Error("bad_model", strfmt("%s: layer %u has no expert weights (ffn_gate_exps/ffn_up_exps/ffn_down_exps); files made for "
                                            "PowerInfer's own runtime that store experts elsewhere cannot run here",
                                            path.c_str(), il));
        }
        L.gate_exps = b.get(tn(TensorName::FfnGateExps), {n_embd, n_ff, n_expert});
        L.up_exps = b.get(tn(TensorName::FfnUpExps), {n_embd, n_ff, n_expert});
        L.gate_exps.role = Role::ExpertGate;
        L.up_exps.role = Role::ExpertUp;
        // PowerInfer's converter (--transpose-down, its .powerinfer.gguf files) stores down
        // transposed, one row per neuron: used as it is (moe.h, ExpertWeights::down_by_neuron).
        // A square matrix cannot tell; it is read in llama.cpp's layout.
        L.down_by_neuron = n_ff != n_embd && b.shape_is(tn(TensorName::FfnDownExps), {n_embd, n_ff, n_expert});
        if (L.down_by_neuron) {
            L.down_exps = b.get(tn(TensorName::FfnDownExps), {n_embd, n_ff, n_expert});
            if (il == 0) log(LogLevel::Info, strfmt("%s: ffn_down_exps is stored by neuron (PowerInfer's layout)", path.c_str()));
        } else {
            L.down_exps = b.get(tn(TensorName::FfnDownExps), {n_ff, n_embd, n_expert});
            L.down_exps.role = Role::ExpertDown;
        }
        L.attn_norm_f32 = to_f32(L.attn_norm);
        L.ffn_norm_f32 = to_f32(L.ffn_norm);
    }
    b.log_unused("smallthinker");
    return m;
}

}  // namespace moe

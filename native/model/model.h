// A loaded SmallThinker model: hyperparameters decided from GGUF metadata exactly as
// llama.cpp decides them, and views of the weight tensors inside the mapped file.
// Loading validates every tensor's presence, shape and type and refuses clearly what
// cannot run (unknown architecture, unsupported type, missing expert tensors, ...).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

namespace moe {

enum class Gating : uint32_t { Softmax = 1, Sigmoid = 2 };

struct HParams {
    std::string arch;             // "smallthinker"
    uint32_t n_layer = 0;
    uint32_t n_embd = 0;
    uint32_t n_head = 0;
    uint32_t n_head_kv = 0;
    uint32_t n_embd_head_k = 0;   // attention.key_length (128 in released models)
    uint32_t n_embd_head_v = 0;   // attention.value_length
    uint32_t n_vocab = 0;
    uint32_t n_ctx_train = 0;
    uint32_t n_expert = 0;
    uint32_t n_expert_used = 0;
    std::vector<uint32_t> n_ff_exp;  // per layer
    float rms_eps = 1e-6f;
    float rope_freq_base = 10000.0f;
    float rope_freq_base_swa = 10000.0f;
    Gating gating = Gating::Sigmoid;
    bool gating_defaulted = false;   // expert_gating_func absent: we chose sigmoid
    uint32_t n_swa = 0;              // 0: no sliding window (llama.cpp forces 4096 when the key is > 0)
    std::vector<bool> is_swa;        // per layer: sliding-window attention
    std::vector<bool> use_rope;      // per layer: RoPE (false = NoPE)
    uint32_t n_embd_q() const { return n_head * n_embd_head_k; }
    uint32_t n_embd_k_gqa() const { return n_head_kv * n_embd_head_k; }
    uint32_t n_embd_v_gqa() const { return n_head_kv * n_embd_head_v; }
};

// A view of one weight tensor in the mapped file. Rows are ne[0] elements long.
struct Tensor {
    const char* name = "";
    DType type = DType::F32;
    int64_t ne[4] = {1, 1, 1, 1};
    size_t nb1 = 0;                  // bytes per row (ne[0] elements)
    size_t nb2 = 0;                  // bytes per matrix (ne[0]*ne[1] elements), the stride between experts
    const uint8_t* data = nullptr;
    bool x16 = false;                // Q4_0 relayout 16 rows per block (kernels::repack_q4_0x16)
    bool present() const { return data != nullptr; }
    const uint8_t* row(int64_t i1, int64_t i2 = 0) const { return data + static_cast<size_t>(i2) * nb2 + static_cast<size_t>(i1) * nb1; }
};

struct LayerWeights {
    Tensor attn_norm;   // {n_embd}
    Tensor wq;          // {n_embd, n_head*head_dim}
    Tensor wk;          // {n_embd, n_head_kv*head_dim}
    Tensor wv;          // {n_embd, n_head_kv*head_dim}
    Tensor wo;          // {n_head*head_dim, n_embd}
    Tensor ffn_norm;    // {n_embd}
    Tensor gate_inp;    // {n_embd, n_expert}  the router
    Tensor gate_exps;   // {n_embd, n_ff_exp, n_expert}
    Tensor up_exps;     // {n_embd, n_ff_exp, n_expert}
    Tensor down_exps;   // {n_ff_exp, n_embd, n_expert}
};

struct LoadOptions {
    bool vocab_only = false;   // tokenizer and metadata only (no tensor validation)
    // Relayout Q4_0 matrices 16 rows per block in place (copy-on-write pages of the mapping, no
    // second copy; see Model::repack_weights); MOE_NO_REPACK=1 turns it off.
    bool repack = true;
};

class Model {
 public:
    static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& opts = {});

    const HParams& hparams() const { return hp_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const GgufFile& file() const { return *file_; }
    const std::string& name() const { return name_; }
    const std::string& chat_template() const { return chat_template_; }
    // JSON description: architecture, hyperparameters, per-layer attention types, tensor types, file size.
    std::string info_json() const;

    Tensor tok_embd;     // {n_embd, n_vocab}
    Tensor output_norm;  // {n_embd}
    Tensor output;       // {n_embd, n_vocab}; == tok_embd when tied
    bool tied_output = false;
    std::vector<LayerWeights> layers;

    // Norm weights as f32, dequantized once at load (every session reads them).
    struct LayerNorms {
        std::vector<float> attn, ffn;  // {n_embd}
    };
    std::vector<LayerNorms> norms;
    std::vector<float> output_norm_f32;  // {n_embd}
    uint64_t repacked_bytes = 0;         // weights relaid out at load (Tensor::x16)
    double repack_ms = 0;

 private:
    Model() = default;
    static void repack_weights(Model& m);
    std::unique_ptr<GgufFile> file_;
    std::unique_ptr<Tokenizer> tokenizer_;
    HParams hp_;
    std::string name_;
    std::string chat_template_;
};

}  // namespace moe

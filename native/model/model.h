// A loaded model: the mapped GGUF file, its tokenizer, hyperparameters decided from metadata
// exactly as llama.cpp decides them, and its architecture (native/models/), which binds the
// weight tensors and computes the forward pass. Loading validates every tensor's presence,
// shape and type and refuses clearly what cannot run (unknown architecture, unsupported type,
// missing expert tensors, ...).
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/expert_cache.h"
#include "model/gguf.h"
#include "model/tensor.h"
#include "model/tokenizer.h"

namespace moe {

enum class Gating : uint32_t { Softmax = 1, Sigmoid = 2 };

// What the blocks and the session need to know of a model: sizes, per-layer attention kind,
// the mixture of experts. An architecture fills it from its metadata keys.
struct HParams {
    std::string arch;  // "smallthinker"
    uint32_t n_layer = 0;
    uint32_t n_embd = 0;
    uint32_t n_head = 0;
    uint32_t n_head_kv = 0;
    uint32_t n_embd_head_k = 0;  // attention.key_length (128 in released models)
    uint32_t n_embd_head_v = 0;  // attention.value_length
    uint32_t n_vocab = 0;
    uint32_t n_ctx_train = 0;
    uint32_t n_expert = 0;
    uint32_t n_expert_used = 0;
    std::vector<uint32_t> n_ff_exp;  // per layer
    float rms_eps = 1e-6f;
    float rope_freq_base = 10000.0f;
    float rope_freq_base_swa = 10000.0f;
    Gating gating = Gating::Sigmoid;
    bool gating_defaulted = false;  // expert_gating_func absent: we chose sigmoid
    uint32_t n_swa = 0;             // 0: no sliding window (llama.cpp forces 4096 when the key is > 0)
    std::vector<bool> is_swa;       // per layer: sliding-window attention
    std::vector<bool> use_rope;     // per layer: RoPE (false = NoPE)
    uint32_t n_embd_q() const { return n_head * n_embd_head_k; }
    uint32_t n_embd_k_gqa() const { return n_head_kv * n_embd_head_k; }
    uint32_t n_embd_v_gqa() const { return n_head_kv * n_embd_head_v; }
    // Bytes one position takes in the KV caches of all layers (fp16 K and V rows).
    uint64_t kv_bytes_per_position() const { return uint64_t{n_layer} * (n_embd_k_gqa() + n_embd_v_gqa()) * sizeof(uint16_t); }
    float rope_base(uint32_t il) const { return is_swa[il] ? rope_freq_base_swa : rope_freq_base; }
};

struct LoadOptions {
    bool vocab_only = false;  // tokenizer and metadata only (no tensor validation)
    // Relayout matrices 16 rows per block in place (copy-on-write pages of the mapping, no
    // second copy; see relayout_weights in model/weights.h); MOE_NO_REPACK=1 turns it off.
    bool repack = true;
    // With repack: keep the relaid-out matrices in a layout file in this folder (built at the
    // first load, mapped read-only after: see model/layout_file.h) instead of rewriting them in
    // memory. "": in memory. When the file cannot be built (no space, no access) the load says
    // so in the log and relays out in memory.
    std::string layout_dir;
    // Called with the fraction done (0..1, once per percent, from the build's threads) while a
    // layout file is being written; never when an existing one is mapped.
    std::function<void(double)> on_layout_progress;
    // When set and it becomes true, the load stops and throws moe::Error("cancelled"): checked
    // before the weights are relaid out and between the ~1 MB items of a layout file build
    // (whose temporary file is then removed). Must outlive the load.
    const std::atomic<bool>* cancel = nullptr;
    // A memory budget in bytes for the whole process (0: none). Needs a layout file: the experts'
    // extents are read into an expert cache of what the budget leaves after the other weights,
    // memory_reserve and the KV caches' share (kv_limit, at most a quarter of the budget); below the
    // minimum that can run, the load fails with code "budget_too_small", naming the minimum.
    uint64_t memory_budget = 0;
    // Under a budget: kept aside for buffers and the runtime (0: kBudgetReserve).
    uint64_t memory_reserve = 0;
    // Under a budget: the KV caches' limit (0: one session of 4096 positions); what they get is
    // budget_kv_bytes(), at most a quarter of the budget.
    uint64_t kv_limit = 0;
};

// What a memory budget keeps aside for buffers and the runtime (the KV cache comes on top).
constexpr uint64_t kBudgetReserve = uint64_t{256} << 20;
// What the expert cache leaves free under a budget besides what the process uses now (buffers
// that grow with a larger batch, the runtime's heap).
constexpr uint64_t kBudgetMargin = uint64_t{96} << 20;

struct ForwardState;
struct Batch;

// One architecture's weights and forward pass (native/models/<name>.cpp).
class Architecture {
 public:
    virtual ~Architecture() = default;
    // Evaluates batch.n tokens at positions batch.pos0.. through every layer, storing K/V in the
    // state's cache, and writes the logits of batch.out_rows.
    virtual void forward(ForwardState& s, const Batch& batch) const = 0;
    // Every weight matrix the forward pass multiplies by (candidates for relayout; not the
    // token embeddings, which are read row by row). A layer's expert matrices come as gate, up,
    // down in a row (Tensor::role): a layout file gives each of its experts one extent.
    virtual std::vector<Tensor*> matrices() = 0;
    // Whether logits come from the token embeddings (no output.weight).
    virtual bool tied_output() const = 0;

    // Under a memory budget (set by Model::load): the experts come from this cache, layer i's
    // gate, up and down at expert_offsets[i] in each extent.
    ExpertCache* expert_cache = nullptr;
    std::vector<std::array<uint64_t, 3>> expert_offsets;
};

class Model {
 public:
    // Defined in native/models/registry.cpp, which knows every architecture.
    static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& opts = {});

    const HParams& hparams() const { return hp_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const GgufFile& file() const { return *file_; }
    // The architecture; nullptr when loaded with vocab_only.
    const Architecture* arch() const { return arch_.get(); }
    const std::string& name() const { return name_; }
    const std::string& chat_template() const { return chat_template_; }
    // Under a memory budget: its expert cache (nullptr otherwise).
    const ExpertCache* expert_cache() const { return expert_cache_.get(); }
    // JSON description: architecture, hyperparameters, per-layer attention types, tensor types, file size.
    std::string info_json() const;
    // Under a memory budget: the expert cache's statistics as JSON (totals and per layer); "null" otherwise.
    std::string expert_cache_json() const;
    // Under a memory budget, before evaluating `n_tokens` more positions: the expert cache gets
    // what the budget leaves after everything else the process holds now (its resident set but
    // the cache's own slots), those positions' KV rows and kBudgetMargin, and never less than
    // budget_min_slots. So the reserve and the KV caches' share, set aside at load, hold experts
    // while the process does not use them. Without a budget, with budget_fixed, or where the
    // resident set is unknown: nothing.
    void fit_expert_cache(uint64_t n_tokens) const;

    uint64_t repacked_bytes = 0;  // weights relaid out at load (Tensor::x16)
    double repack_ms = 0;
    std::string layout_file;             // the layout file the relaid-out weights are mapped from ("": in memory)
    bool layout_built = false;           // this load wrote it
    double layout_huge_pages = 0;        // share of the layout file mapped by 2 MB entries at load
    uint64_t memory_budget = 0;          // LoadOptions::memory_budget
    uint64_t budget_resident = 0;        // under it: the weights other than experts (mapped)
    uint64_t budget_kv = 0;              // under it: the KV caches' share
    uint32_t budget_min_slots = 0;       // under it: the expert cache's size with the reserve and the KV share set aside
    bool budget_fixed = false;           // under it: the cache keeps budget_min_slots (MOE_EXPERT_CACHE=fixed, for tests)
    std::string layout_rebuilt_because;  // why an existing layout file was not used ("" when none was there or it was)
    std::string layout_error;            // why the layout file could not be used ("" when it was, or was not asked for)

 private:
    friend struct ModelLoader;
    Model() = default;
    std::unique_ptr<GgufFile> file_;
    std::unique_ptr<Tokenizer> tokenizer_;
    std::unique_ptr<Architecture> arch_;
    std::unique_ptr<MappedFile> layout_map_;     // the layout file behind relaid-out tensors
    std::unique_ptr<ExpertCache> expert_cache_;  // under a memory budget
    HParams hp_;
    std::string name_;
    std::string chat_template_;
};

// The parts of loading every architecture shares (used by native/models/registry.cpp).
struct ModelLoader {
    // The file, general.architecture and general.name.
    static std::unique_ptr<Model> open(const std::string& path);
    // The tokenizer (byte-level BPE) and the chat template.
    static void read_tokenizer(Model& m);
    static HParams& hparams(Model& m) { return m.hp_; }
    static void set_arch(Model& m, std::unique_ptr<Architecture> a) { m.arch_ = std::move(a); }
    static const MappedFile* mapping(Model& m) { return m.file_->mapping(); }
    static const MappedFile* layout_map(Model& m) { return m.layout_map_.get(); }
    static void set_expert_cache(Model& m, std::unique_ptr<ExpertCache> c) { m.expert_cache_ = std::move(c); }
};

}  // namespace moe

#include "models/registry.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "core/common.h"
#include "model/layout_file.h"
#include "model/weights.h"

namespace moe {

namespace {

// One line per architecture.
const ArchitectureEntry kArchitectures[] = {
    {"smallthinker", load_smallthinker},
    {nullptr, nullptr},
};

// Under a memory budget: the experts' extents of the layout file go to an expert cache of what the
// budget leaves; the tensors keep pointing into the mapping (for their offsets), which the
// forward pass no longer reads for experts.
void use_expert_cache(Model& m, Architecture& arch, uint64_t budget, const LoadOptions& opts) {
    if (m.layout_file.empty())
        throw Error("bad_input", "a memory budget needs a layout file (LoadOptions.layoutDir): none was used for this model");
    const MappedFile& map = *ModelLoader::layout_map(m);
    std::vector<ExpertCache::Layer> layers;
    uint64_t expert_bytes = 0;
    const std::vector<Tensor*> all = arch.matrices();
    for (size_t i = 0; i < all.size(); ++i) {
        if (all[i]->role != Role::ExpertGate) continue;
        if (i + 2 >= all.size() || all[i + 1]->role != Role::ExpertUp || all[i + 2]->role != Role::ExpertDown)
            throw Error("unsupported", "a memory budget needs every layer's gate, up and down experts in the layout file");
        const Tensor* t[3] = {all[i], all[i + 1], all[i + 2]};
        const uint8_t* lo = t[0]->data;
        const uint8_t* hi = t[0]->data;
        for (const Tensor* x : t) {
            const bool mapped = x->data >= map.data() && x->data < map.data() + map.size();
            if (!mapped || x->nb2 != t[0]->nb2 || x->ne[2] != t[0]->ne[2])
                throw Error("unsupported",
                            strfmt("a memory budget is not supported yet for this model: its %s experts are not in the layout file",
                                   type_traits(x->type).name));
            lo = std::min(lo, x->data);
            hi = std::max(hi, x->data + x->matrix_bytes());
        }
        ExpertCache::Layer l;
        l.offset = static_cast<uint64_t>(lo - map.data());
        l.stride = t[0]->nb2;
        l.bytes = static_cast<uint64_t>(hi - lo);
        l.n_expert = static_cast<uint32_t>(t[0]->ne[2]);
        layers.push_back(l);
        arch.expert_offsets.push_back(
            {static_cast<uint64_t>(t[0]->data - lo), static_cast<uint64_t>(t[1]->data - lo), static_cast<uint64_t>(t[2]->data - lo)});
        expert_bytes += l.stride * l.n_expert;
        i += 2;
    }
    if (layers.empty()) throw Error("unsupported", "a memory budget needs experts: this model has none in its layout file");
    // Resident (mapped, read every token): the layout file but its experts, and the GGUF's tensors
    // that were not relaid out, but the token embeddings (one row per token) when not the output.
    std::set<std::string> moved;
    for (const Tensor* t : all)
        if (t->data >= map.data() && t->data < map.data() + map.size()) moved.insert(t->name);
    uint64_t resident = map.size() - std::min<uint64_t>(map.size(), expert_bytes);
    for (const GgufTensorInfo& t : m.file().tensors())
        if (!moved.count(t.name) && !(t.name == "token_embd.weight" && !arch.tied_output())) resident += t.size;
    // Kept aside: buffers and the runtime, and the KV caches' share (their limit, at most a
    // quarter of the budget). The minimum is the smallest budget that holds all that and one
    // token's experts: M >= fixed + min(kv_limit, M / 4).
    const HParams& hp = m.hparams();
    const uint64_t reserve = opts.memory_reserve > 0 ? opts.memory_reserve : kBudgetReserve;
    const uint64_t kv_limit = opts.kv_limit > 0 ? opts.kv_limit : hp.kv_bytes_per_position() * 4096;
    uint64_t extent = 0;
    for (const ExpertCache::Layer& l : layers) extent = std::max(extent, (l.bytes + 4095) / 4096 * 4096);
    const uint64_t fixed = resident + reserve + extent * hp.n_expert_used;
    const uint64_t minimum = fixed * 4 / 3 + 1 < 4 * kv_limit ? fixed * 4 / 3 + 1 : fixed + kv_limit;
    const uint64_t kv = std::min(kv_limit, budget / 4);
    if (budget < minimum || budget < fixed + kv)
        throw Error("budget_too_small", strfmt("a memory budget of %.0f MB is too small for %s: it needs at least %.0f MB",
                                               static_cast<double>(budget) / 1048576.0, m.name().empty() ? "this model" : m.name().c_str(),
                                               std::ceil(static_cast<double>(minimum) / 1048576.0)));
    // MOE_EXPERT_POLICY=lru: least recently used instead of least frequently used (for comparing them)
    const char* policy = std::getenv("MOE_EXPERT_POLICY");
    const ExpertCache::Policy p = policy && std::strcmp(policy, "lru") == 0 ? ExpertCache::Policy::Lru : ExpertCache::Policy::Lfu;
    // MOE_EXPERT_IO=threads: reader threads even where the kernel has io_uring
    const char* io_env = std::getenv("MOE_EXPERT_IO");
    const ExpertCache::Io io = io_env && std::strcmp(io_env, "threads") == 0 ? ExpertCache::Io::Threads : ExpertCache::Io::Auto;
    // (it starts at the size the budget was checked for, and grows into what the process leaves
    // unused: Model::fit_expert_cache before every batch)
    auto cache = std::make_unique<ExpertCache>(m.layout_file, std::move(layers), budget - resident - reserve - kv, budget - resident, p,
                                               /*window=*/4 * hp.n_expert_used, io);
    cache->use_profile(m.layout_file + ".uses");
    const ExpertCache::Stats st = cache->stats();
    log(LogLevel::Info,
        strfmt("memory budget %.0f MB: %u of %u expert extents of %.1f MB cached, %.0f MB of other weights mapped, %.0f MB for KV caches, "
               "%.0f MB reserved; reads: %s",
               static_cast<double>(budget) / 1048576.0, st.capacity, st.extents, static_cast<double>(st.slot_bytes) / 1048576.0,
               static_cast<double>(resident) / 1048576.0, static_cast<double>(kv) / 1048576.0, static_cast<double>(reserve) / 1048576.0,
               st.io.c_str()));
    m.memory_budget = budget;
    m.budget_resident = resident;
    m.budget_kv = kv;
    m.budget_min_slots = st.capacity;
    // MOE_EXPERT_CACHE=fixed: the load size, always (tests that need every layer to miss)
    const char* mode = std::getenv("MOE_EXPERT_CACHE");
    m.budget_fixed = mode && std::strcmp(mode, "fixed") == 0;
    arch.expert_cache = cache.get();
    ModelLoader::set_expert_cache(m, std::move(cache));
}

}  // namespace

const ArchitectureEntry* architectures() { return kArchitectures; }

const ArchitectureEntry* find_architecture(const std::string& name) {
    for (const ArchitectureEntry* a = kArchitectures; a->name; ++a)
        if (name == a->name) return a;
    return nullptr;
}

std::string architecture_names() {
    std::string s;
    for (const ArchitectureEntry* a = kArchitectures; a->name; ++a) s += (s.empty() ? "" : ", ") + std::string(a->name);
    return s;
}

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& opts) {
    std::unique_ptr<Model> m = ModelLoader::open(path);
    // under a memory budget, what is read from the GGUF (its metadata, token rows, norms) comes
    // in a page at a time, not with megabytes of readahead around it
    if (opts.memory_budget > 0)
        if (const MappedFile* gguf = ModelLoader::mapping(*m)) gguf->advise_random();
    HParams& hp = ModelLoader::hparams(*m);
    const ArchitectureEntry* entry = find_architecture(hp.arch);
    if (!entry) {
        throw Error("unsupported_arch", strfmt("%s: architecture '%s' is not supported (this engine runs '%s' models only)", path.c_str(),
                                               hp.arch.c_str(), architecture_names().c_str()));
    }
    ModelLoader::read_tokenizer(*m);
    std::unique_ptr<Architecture> arch = entry->load(m->file(), hp, m->tokenizer().n_vocab(), opts);
    if (!arch) return m;  // vocab_only
    const char* no_repack = std::getenv("MOE_NO_REPACK");
    if (opts.repack && !(no_repack && *no_repack && std::strcmp(no_repack, "0") != 0)) {
        const auto t0 = std::chrono::steady_clock::now();
        if (opts.cancel && opts.cancel->load()) throw Error("cancelled", "the model load was cancelled");
        if (!opts.layout_dir.empty()) {
            try {
                LayoutFileResult r = use_layout_file(arch->matrices(), m->file(), opts.layout_dir, opts.on_layout_progress, opts.cancel,
                                                     /*map_all=*/opts.memory_budget == 0);
                m->repacked_bytes = r.bytes;
                m->layout_file = r.path;
                m->layout_built = r.built;
                m->layout_rebuilt_because = r.rebuilt_because;
                m->layout_huge_pages = r.huge_pages;
                m->layout_map_ = std::move(r.map);
            } catch (const Error& e) {
                if (e.code == "cancelled" || opts.memory_budget > 0) throw;  // not a failure to fall back from
                m->layout_error = e.what();
                log(LogLevel::Warn, strfmt("%s; relaying out the weights in memory instead", e.what()));
            }
        }
        if (m->layout_file.empty()) m->repacked_bytes = relayout_weights(arch->matrices(), ModelLoader::mapping(*m));
        if (m->repacked_bytes > 0) m->repack_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    if (opts.memory_budget > 0) use_expert_cache(*m, *arch, opts.memory_budget, opts);
    ModelLoader::set_arch(*m, std::move(arch));
    return m;
}

}  // namespace moe

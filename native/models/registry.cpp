#include "models/registry.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

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
                LayoutFileResult r = use_layout_file(arch->matrices(), m->file(), opts.layout_dir, opts.on_layout_progress, opts.cancel);
                m->repacked_bytes = r.bytes;
                m->layout_file = r.path;
                m->layout_built = r.built;
                m->layout_rebuilt_because = r.rebuilt_because;
                m->layout_huge_pages = r.huge_pages;
                m->layout_map_ = std::move(r.map);
            } catch (const Error& e) {
                if (e.code == "cancelled") throw;  // not a failure to fall back from
                m->layout_error = e.what();
                log(LogLevel::Warn, strfmt("%s; relaying out the weights in memory instead", e.what()));
            }
        }
        if (m->layout_file.empty()) m->repacked_bytes = relayout_weights(arch->matrices(), ModelLoader::mapping(*m));
        if (m->repacked_bytes > 0) m->repack_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    ModelLoader::set_arch(*m, std::move(arch));
    return m;
}

}  // namespace moe

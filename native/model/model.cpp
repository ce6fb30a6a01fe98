// What loading shares across architectures (the file, tokenizer, general.* keys) and the
// model's JSON description. Architecture-specific loading is in native/models/.
#include "model/model.h"

#ifdef __linux__
#include <unistd.h>
#endif

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/common.h"
#include "core/json.h"

namespace moe {

std::unique_ptr<Model> ModelLoader::open(const std::string& path) {
    std::unique_ptr<Model> m(new Model());
    m->file_ = GgufFile::open(path);
    const GgufFile& f = *m->file_;
    m->hp_.arch = f.get_str("general.architecture", "");
    if (m->hp_.arch.empty()) throw Error("bad_model", strfmt("%s has no general.architecture; it is not a model file", path.c_str()));
    m->name_ = f.get_str("general.name", "");
    return m;
}

void ModelLoader::read_tokenizer(Model& m) {
    const GgufFile& f = *m.file_;
    const std::string& path = f.path();
    VocabData vd;
    vd.model = f.get_str("tokenizer.ggml.model", "");
    vd.pre = f.get_str("tokenizer.ggml.pre", "");
    // bounded before anything is decoded: real vocabularies have at most a few 100k entries
    constexpr uint64_t kMaxVocab = 1u << 21;
    vd.tokens = f.get_str_arr("tokenizer.ggml.tokens", kMaxVocab);
    vd.token_types = f.get_i32_arr("tokenizer.ggml.token_type", kMaxVocab);
    vd.merges = f.get_str_arr("tokenizer.ggml.merges", kMaxVocab);
    vd.bos = f.get_i32("tokenizer.ggml.bos_token_id", -1);
    vd.eos = f.get_i32("tokenizer.ggml.eos_token_id", -1);
    vd.eot = f.get_i32("tokenizer.ggml.eot_token_id", -1);
    vd.pad = f.get_i32("tokenizer.ggml.padding_token_id", -1);
    vd.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", false);
    if (vd.tokens.empty()) throw Error("bad_model", strfmt("%s has no tokenizer vocabulary (tokenizer.ggml.tokens)", path.c_str()));
    if (vd.model != "gpt2") {
        throw Error("unsupported_tokenizer",
                    strfmt("%s: tokenizer model '%s' is not supported (byte-level BPE 'gpt2' only)", path.c_str(), vd.model.c_str()));
    }
    m.tokenizer_ = std::make_unique<Tokenizer>(std::move(vd));
    m.chat_template_ = f.get_str("tokenizer.chat_template", "");
}

namespace {
// The process's resident set in bytes (/proc/self/statm), 0 where unknown.
uint64_t resident_set_bytes() {
#ifdef __linux__
    FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    const int got = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    return got == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
#else
    return 0;
#endif
}
}  // namespace

void Model::fit_expert_cache(uint64_t n_tokens) const {
    ExpertCache* c = expert_cache_.get();
    if (!c || memory_budget == 0 || budget_fixed) return;
    const uint64_t rss = resident_set_bytes();
    if (rss == 0) return;
    const uint64_t used = c->used_bytes();
    const uint64_t other = (rss > used ? rss - used : 0) + n_tokens * hp_.kv_bytes_per_position() + kBudgetMargin;
    const uint64_t room = memory_budget > other ? memory_budget - other : 0;
    c->resize(static_cast<uint32_t>(std::max<uint64_t>(budget_min_slots, std::min<uint64_t>(room / c->slot_bytes(), c->max_capacity()))));
}

std::string Model::expert_cache_json() const {
    if (!expert_cache_) return "null";
    const ExpertCache::Stats st = expert_cache_->stats();
    auto counts = [](const ExpertCache::Counts& c) {
        return strfmt("{\"uses\":%llu,\"reads\":%llu,\"bytesRead\":%llu,\"stallMs\":%.3f}", (unsigned long long)c.uses,
                      (unsigned long long)c.reads, (unsigned long long)c.bytes_read, c.stall_ms);
    };
    std::string j = strfmt("{\"capacity\":%u,\"slotBytes\":%llu,\"extents\":%u,\"direct\":%s,\"policy\":\"%s\",\"readMs\":%.3f,",
                           st.capacity, (unsigned long long)st.slot_bytes, st.extents, st.direct ? "true" : "false",
                           st.policy == ExpertCache::Policy::Lru ? "lru" : "lfu", st.read_ms);
    j += "\"io\":" + json_str(st.io) + ",\"profileLoaded\":" + (st.profile_loaded ? "true," : "false,");
    j += strfmt("\"guesses\":%llu,\"guessedRight\":%llu,\"guessReads\":%llu,\"guessAccuracy\":%.4f,", (unsigned long long)st.guesses,
                (unsigned long long)st.guessed_right, (unsigned long long)st.guess_reads, st.guess_accuracy);
    j += "\"total\":" + counts(st.total) + ",\"layers\":[";
    for (size_t i = 0; i < st.layers.size(); ++i) j += (i ? "," : "") + counts(st.layers[i]);
    return j + "]}";
}

std::string Model::info_json() const {
    const HParams& hp = hp_;
    std::string j = "{";
    auto kv_num = [&](const char* k, double v, bool last = false) { j += json_str(k) + ":" + strfmt("%.9g", v) + (last ? "" : ","); };
    j += "\"architecture\":" + json_str(hp.arch) + ",";
    j += "\"name\":" + json_str(name_) + ",";
    j += "\"file\":" + json_str(file_->path()) + ",";
    kv_num("repackedBytes", static_cast<double>(repacked_bytes));
    kv_num("repackMs", repack_ms);
    j += "\"layout\":{\"file\":" + json_str(layout_file) + ",\"built\":" + (layout_built ? "true" : "false") +
         ",\"rebuiltBecause\":" + json_str(layout_rebuilt_because) + ",\"error\":" + json_str(layout_error) +
         strfmt(",\"hugePages\":%.4f", layout_huge_pages) + "},";
    if (expert_cache_) {
        const ExpertCache::Stats st = expert_cache_->stats();
        j += strfmt(
            "\"memoryBudget\":{\"bytes\":%llu,\"cacheSlots\":%u,\"slotBytes\":%llu,\"extents\":%u,\"residentBytes\":%llu,\"kvBytes\":%llu}"
            ",",
            (unsigned long long)memory_budget, budget_min_slots, (unsigned long long)st.slot_bytes, st.extents,
            (unsigned long long)budget_resident, (unsigned long long)budget_kv);
    } else {
        j += "\"memoryBudget\":null,";
    }
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
    j += std::string("\"tied_output\":") + (arch_ && arch_->tied_output() ? "true" : "false");
    j += "},\"layers\":[";
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        if (il) j += ",";
        j += "{\"attention\":" + json_str(hp.is_swa[il] ? "window" : "global") + ",\"rope\":" + (hp.use_rope[il] ? "true" : "false") +
             ",\"n_ff_exp\":" + std::to_string(hp.n_ff_exp[il]) + "}";
    }
    // per type: how many tensors, and their bytes (a file's quantization mix at a glance)
    std::map<std::string, uint64_t> counts, bytes;
    for (const GgufTensorInfo& t : file_->tensors()) {
        counts[type_name(t.type)] += 1;
        bytes[type_name(t.type)] += t.size;
    }
    auto object = [&](const std::map<std::string, uint64_t>& m) {
        std::string o = "{";
        for (auto& kv : m) o += (o.size() > 1 ? "," : "") + json_str(kv.first) + ":" + std::to_string(kv.second);
        return o + "}";
    };
    j += "],\"tensor_types\":" + object(counts) + ",\"tensor_type_bytes\":" + object(bytes);
    j += ",\"tensors\":[";
    bool first = true;
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

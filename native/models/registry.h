// The architectures this engine runs: a name (general.architecture) and the function that reads
// its hyperparameters and binds its tensors. Model::load (defined in registry.cpp) uses it.
#pragma once
#include <memory>
#include <string>

#include "model/model.h"

namespace moe {

// Reads the architecture's metadata into hp (checking that the token embeddings have one row per
// token of the tokenizer's n_vocab) and binds its weights; with opts.vocab_only it returns
// nullptr after the hyperparameters.
using LoadArchitecture = std::unique_ptr<Architecture> (*)(const GgufFile& f, HParams& hp, int n_vocab, const LoadOptions& opts);

struct ArchitectureEntry {
    const char* name;
    LoadArchitecture load;
};

// Every architecture, ending with an entry whose name is nullptr.
const ArchitectureEntry* architectures();
// nullptr when `name` is not an architecture this engine runs.
const ArchitectureEntry* find_architecture(const std::string& name);
// "smallthinker" (comma-separated when there are several).
std::string architecture_names();

// One declaration per architecture file.
std::unique_ptr<Architecture> load_smallthinker(const GgufFile& f, HParams& hp, int n_vocab, const LoadOptions& opts);

}  // namespace moe

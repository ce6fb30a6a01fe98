// Binding weight tensors of a GGUF file to Tensor views (every shape and type checked), and
// the in-place relayout of matrices into the row groups the kernels read fastest.
#pragma once
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/tensor.h"

namespace moe {

class TensorBinder {
 public:
    explicit TensorBinder(const GgufFile& f) : f_(f) {}

    // The tensor `name` with exactly `shape` (trailing dimensions 1) and a type the engine
    // computes with; a missing required tensor, another shape or an unsupported type throw
    // Error("bad_model"/"unsupported_type") naming it. A missing optional one is an empty view.
    Tensor get(const std::string& name, std::initializer_list<int64_t> shape, bool required = true);
    bool has(const std::string& name) const { return f_.tensor(name) != nullptr; }
    bool shape_is(const std::string& name, std::initializer_list<int64_t> shape) const;
    // Logs (info) every tensor of the file that was not bound: the architecture does not use it.
    void log_unused(const char* arch) const;

 private:
    const GgufFile& f_;
    std::set<std::string> used_;
};

// The matrices of `matrices` that get relaid out: a type with a 16-row relayout
// (kernels::TypeKernels::relayout16), rows a multiple of 16, not yet relaid out; once each.
std::vector<Tensor*> relayout_candidates(const std::vector<Tensor*>& matrices);

// Relays out, in place, every matrix of `matrices` whose type has a 16-row relayout and whose
// row count is a multiple of 16 (kernels::TypeKernels::relayout16): the mapping is private, so
// the written pages become the process's own copy-on-write pages and the file-backed ones are
// dropped from it (memory stays about the file's size). Sets Tensor::x16; returns the bytes.
uint64_t relayout_weights(const std::vector<Tensor*>& matrices, const MappedFile* map);

}  // namespace moe

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

// The layout a matrix gets at load (Layout::File: none), from its role, type and shape and the
// active kernel set: an expert's Q4_0 up and down the ReGLU-sparse layouts (BlockRows16 when the
// rows are a multiple of 512 elements long, NeuronMajor when there are a multiple of 128 rows, and
// the set has their kernels; only with MOE_SPARSE=1 for now: not yet faster than the dense kernels), otherwise 16 rows per block for a
// type with a 16-row relayout (kernels::TypeKernels::relayout16) and a multiple of 16 rows.
Layout target_layout(const Tensor& t);

// The matrices of `matrices` that get relaid out (target_layout != File, not yet relaid out); once each.
std::vector<Tensor*> relayout_candidates(const std::vector<Tensor*>& matrices);
// What a layout file holds: the relayout candidates and every expert matrix (in the file's layout
// where it has no other: under a memory budget all experts are read from the layout file), in
// the order of `matrices`; once each.
std::vector<Tensor*> layout_file_candidates(const std::vector<Tensor*>& matrices);

// The relayout's unit in bytes of the file's layout: 16 rows (Rows16), one row (BlockRows16), one
// matrix (NeuronMajor). relayout_units relays out, in place, `len` bytes at `p` (whole units,
// from a unit boundary of one of t's matrices) from the file's layout into `layout`.
uint64_t relayout_unit(const Tensor& t, Layout layout);
void relayout_units(const Tensor& t, Layout layout, uint8_t* p, uint64_t len);

// Relays out, in place, every candidate of `matrices`: the mapping is private, so the written
// pages become the process's own copy-on-write pages and the file-backed ones are dropped from it
// (memory stays about the file's size). Sets Tensor::layout; returns the bytes.
uint64_t relayout_weights(const std::vector<Tensor*>& matrices, const MappedFile* map);

}  // namespace moe

// A view of one weight tensor inside the mapped model file.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace moe {

// How a matrix's bytes are laid out: as in the GGUF file, or relaid out for our kernels
// (kernels/kernels.h): 16 rows per block (relayout16), a row's blocks 16 at a time (ReGLU-sparse
// rows: repack_q4_0r16), or neuron-major (ReGLU-sparse columns: relayout_q4_0nm).
enum class Layout : uint8_t { File = 0, Rows16 = 1, BlockRows16 = 2, NeuronMajor = 3 };

// What a matrix is to the forward pass (its architecture says): decides which layouts fit it.
enum class Role : uint8_t { Dense = 0, ExpertGate = 1, ExpertUp = 2, ExpertDown = 3 };

// Rows are ne[0] elements long; a 3-D tensor is ne[2] matrices (one per expert).
struct Tensor {
    const char* name = "";
    DType type = DType::F32;
    int64_t ne[4] = {1, 1, 1, 1};
    size_t nb1 = 0;  // bytes per row (ne[0] elements)
    size_t nb2 = 0;  // the stride between experts: bytes per matrix in the GGUF; an expert extent in a layout file
    const uint8_t* data = nullptr;
    Layout layout = Layout::File;
    Role role = Role::Dense;
    bool present() const { return data != nullptr; }
    // Row i1 of matrix i2 (not for NeuronMajor, which has no rows of its own).
    const uint8_t* row(int64_t i1, int64_t i2 = 0) const { return data + static_cast<size_t>(i2) * nb2 + static_cast<size_t>(i1) * nb1; }
    size_t matrix_bytes() const { return nb1 * static_cast<size_t>(ne[1]); }
    size_t bytes() const { return matrix_bytes() * static_cast<size_t>(ne[2]); }  // the data, without gaps between experts
};

}  // namespace moe

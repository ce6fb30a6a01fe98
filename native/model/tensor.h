// A view of one weight tensor inside the mapped model file.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace moe {

// Rows are ne[0] elements long; a 3-D tensor is ne[2] matrices (one per expert).
struct Tensor {
    const char* name = "";
    DType type = DType::F32;
    int64_t ne[4] = {1, 1, 1, 1};
    size_t nb1 = 0;  // bytes per row (ne[0] elements)
    size_t nb2 = 0;  // bytes per matrix (ne[0]*ne[1] elements), the stride between experts
    const uint8_t* data = nullptr;
    bool x16 = false;  // relaid out 16 rows per block (kernels::TypeKernels::relayout16)
    bool present() const { return data != nullptr; }
    const uint8_t* row(int64_t i1, int64_t i2 = 0) const { return data + static_cast<size_t>(i2) * nb2 + static_cast<size_t>(i1) * nb1; }
    size_t bytes() const { return nb2 * static_cast<size_t>(ne[2]); }
};

}  // namespace moe

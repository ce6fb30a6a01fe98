// RMS norm, as ggml_rms_norm followed by ggml_mul.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/threadpool.h"

namespace moe {

// y = x * 1/sqrt(mean(x^2) + eps) * w over n elements.
inline void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

// rms_norm of each of `rows` rows of n elements.
inline void rms_norm_rows(ThreadPool& pool, const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
    for_rows(pool, rows, [&](int64_t t) { rms_norm(x + t * n, w, y + t * n, n, eps); });
}

}  // namespace moe

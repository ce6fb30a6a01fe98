// Rotary position embedding, NeoX style (the halves of each head rotate together), with ggml's
// angle recurrence so that the rotations are llama.cpp's bit for bit.
#pragma once
#include <cmath>
#include <cstdint>

namespace moe {

// cos/sin of the head_dim/2 angles at position pos.
inline void rope_angles(int head_dim, int32_t pos, float freq_base, float* cs, float* sn) {
    const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(head_dim));
    float theta = static_cast<float>(pos);
    for (int i = 0; i < head_dim / 2; ++i) {
        cs[i] = std::cos(theta);
        sn[i] = std::sin(theta);
        theta *= theta_scale;
    }
}

// Rotates n_heads heads of head_dim by the angles of rope_angles.
inline void rope(float* v, int n_heads, int head_dim, const float* cs, const float* sn) {
    const int half = head_dim / 2;
    for (int hh = 0; hh < n_heads; ++hh) {
        float* p = v + static_cast<size_t>(hh) * head_dim;
        for (int i = 0; i < half; ++i) {
            const float x0 = p[i], x1 = p[i + half];
            p[i] = x0 * cs[i] - x1 * sn[i];
            p[i + half] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

// Rotates the queries (n_head heads, rows ldq apart) and keys (n_head_kv heads, ldk apart) of n
// tokens at positions pos0.. (head_dim <= 1024, checked at load).
inline void rope_rows(float* q, int64_t ldq, int n_head, float* k, int64_t ldk, int n_head_kv, int64_t n, int32_t pos0, int head_dim,
                      float freq_base, const int32_t* pos = nullptr) {
    float cs[512], sn[512];
    for (int64_t t = 0; t < n; ++t) {
        rope_angles(head_dim, pos ? pos[t] : pos0 + static_cast<int32_t>(t), freq_base, cs, sn);
        rope(q + t * ldq, n_head, head_dim, cs, sn);
        rope(k + t * ldk, n_head_kv, head_dim, cs, sn);
    }
}

}  // namespace moe

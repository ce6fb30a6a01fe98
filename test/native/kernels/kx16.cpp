// Kernel tests, relaid-out Q4_K and Q6_K (the fast path of llama-quantize's K-quant files and of
// their Q6_K output matrix): repack/unpack round trips, and every set's mul_x16 bit-identical to
// the scalar reference dot (itself tied to ggml's dequantization by kquants.cpp), for 1-6
// super-blocks, 1 and 3 groups, 1..67 tokens (every tile size, more than one 64-token chunk),
// random and extreme bytes, padded activation rows, ldy gaps and sentinels.
#include <cinttypes>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "harness.h"

namespace kt {
namespace {

// mode 0: random; 1: extremes (0x00/0xff bytes, activations +-127); 2: saturating (every quant at its
// maximum, every activation -128: the SIMD sets' int16 partial sums at their bound).
void random_block(std::mt19937_64& r, block_q4_K& b, int mode) {
    const bool extremes = mode >= 1;
    b.d = random_scale(r, true);
    b.dmin = random_scale(r, true);
    for (auto& s : b.scales) s = static_cast<uint8_t>(extremes ? 0xff : r());
    for (auto& q : b.qs) q = static_cast<uint8_t>(mode == 2 ? 0xff : extremes ? ((r() & 1) ? 0xff : 0x00) : r());
    if (!extremes && r() % 7 == 0) b.d = 0;
}

void random_block(std::mt19937_64& r, block_q6_K& b, int mode) {
    const bool extremes = mode >= 1;
    b.d = random_scale(r, true);
    for (auto& s : b.scales) s = static_cast<int8_t>(extremes ? ((r() & 1) ? 127 : -128) : static_cast<int>(r() % 256) - 128);
    for (auto& q : b.ql) q = static_cast<uint8_t>(mode == 2 ? 0xff : extremes ? ((r() & 1) ? 0xff : 0x00) : r());
    for (auto& q : b.qh) q = static_cast<uint8_t>(mode == 2 ? 0xff : extremes ? ((r() & 1) ? 0xff : 0x00) : r());
    if (!extremes && r() % 7 == 0) b.d = 0;
}

void random_q8_K(std::mt19937_64& r, block_q8_K& b, int mode) {
    const bool extremes = mode >= 1;
    b.d = static_cast<float>(uniform(r, 1e-4, 1.0));
    for (auto& q : b.qs)
        q = static_cast<int8_t>(mode == 2 ? -128 : extremes ? ((r() & 1) ? 127 : -127) : static_cast<int>(r() % 255) - 127);
    for (int j = 0; j < 16; ++j) {
        int s = 0;
        for (int i = 0; i < 16; ++i) s += b.qs[16 * j + i];
        b.bsums[j] = static_cast<int16_t>(s);
    }
}

template <class BW>
void check_type(const KernelSet& ks, DType type, const char* name, void (*repack)(uint8_t*, int64_t), void (*unpack)(uint8_t*, int64_t)) {
    const TypeKernels& k = ks.of(type);
    const bool present = k.mul_x16 && k.relayout16 == repack && scalar_set().of(type).dot;
    report(present, fmt("%s %s x16 kernels present", isa_name(ks.isa), name),
           present ? "" : "mul_x16/relayout16 or the reference dot is missing");
    if (!present) return;
    for (int mode : {0, 1, 2}) {
        bool ok = true;
        std::string detail;
        int64_t pairs = 0;
        for (int64_t nb : {1, 2, 3, 6}) {
            const int64_t n = nb * QK_K;
            for (int64_t ngroups : {1, 3}) {
                auto r = rng_for(fmt("%s x16 %d %" PRId64, name, mode, ngroups), n);
                const int64_t nr = 16 * ngroups;
                constexpr int64_t kMaxTokens = 67;
                std::vector<BW> w(static_cast<size_t>(nr * nb));
                for (BW& b : w) random_block(r, b, mode);
                const size_t xrb = static_cast<size_t>(nb) * sizeof(block_q8_K) + 4;  // padded rows
                std::vector<uint8_t> xbuf(xrb * kMaxTokens);
                for (int64_t t = 0; t < kMaxTokens; ++t) {
                    std::vector<block_q8_K> row(static_cast<size_t>(nb));
                    for (block_q8_K& b : row) random_q8_K(r, b, mode);
                    std::memcpy(xbuf.data() + static_cast<size_t>(t) * xrb, row.data(), row.size() * sizeof(block_q8_K));
                }
                auto xrow = [&](int64_t t) { return reinterpret_cast<const block_q8_K*>(xbuf.data() + static_cast<size_t>(t) * xrb); };
                const size_t group_bytes = 16 * static_cast<size_t>(nb) * sizeof(BW);
                std::vector<uint8_t> packed(reinterpret_cast<uint8_t*>(w.data()),
                                            reinterpret_cast<uint8_t*>(w.data()) + w.size() * sizeof(BW));
                for (int64_t g = 0; g < ngroups; ++g) repack(packed.data() + static_cast<size_t>(g) * group_bytes, nb);
                if (&ks == &scalar_set()) {
                    std::vector<uint8_t> back = packed;
                    for (int64_t g = 0; g < ngroups; ++g) unpack(back.data() + static_cast<size_t>(g) * group_bytes, nb);
                    if (std::memcmp(back.data(), w.data(), back.size()) != 0)
                        ok = false, detail = fmt("nb=%" PRId64 ": unpack(repack(w)) != w", nb);
                }
                for (int64_t nt : std::initializer_list<int64_t>{1, 2, 3, 4, 5, 9, kMaxTokens}) {
                    if (!ok) break;
                    const int64_t ldy = nr + 3;
                    Output<float> y(nt * ldy);
                    k.mul_x16(n, packed.data(), group_bytes, ngroups, xrow(0), xrb, nt, y.data(), ldy);
                    for (int64_t t = 0; t < nt && ok; ++t)
                        for (int64_t i = 0; i < ldy && ok; ++i) {
                            const uint8_t* cell = y.bytes.data() + static_cast<size_t>(t * ldy + i) * sizeof(float);
                            if (i >= nr) {
                                for (size_t b = 0; b < sizeof(float); ++b)
                                    if (cell[b] != kSentinel)
                                        ok = false, detail = fmt("y[%" PRId64 "][%" PRId64 "] past the rows was written", t, i);
                                continue;
                            }
                            float got;
                            std::memcpy(&got, cell, sizeof got);
                            const float want = scalar_set().of(type).dot(n, w.data() + i * nb, xrow(t));
                            ++pairs;
                            if (std::memcmp(&got, &want, sizeof got) != 0)
                                ok = false, detail = fmt("nb=%" PRId64 " groups=%" PRId64 " nt=%" PRId64 " y[%" PRId64 "][%" PRId64
                                                         "] = %.9g, reference dot %.9g (must be bit-identical)",
                                                         nb, ngroups, nt, t, i, got, want);
                        }
                    if (ok && !y.guard_intact())
                        ok = false, detail = fmt("nb=%" PRId64 " nt=%" PRId64 ": sentinel after y overwritten", nb, nt);
                }
            }
        }
        report(ok,
               fmt("%s mul_%sx16_q8_K %s", isa_name(ks.isa), name,
                   mode == 2   ? "saturating"
                   : mode == 1 ? "extremes"
                               : "random"),
               ok ? fmt("%" PRId64 " pairs bit-identical to the scalar reference dot", pairs) : detail);
    }
}

}  // namespace

void check_kx16(const KernelSet& ks) {
    check_type<block_q4_K>(ks, DType::Q4_K, "q4_K", repack_q4_Kx16, unpack_q4_Kx16);
    check_type<block_q6_K>(ks, DType::Q6_K, "q6_K", repack_q6_Kx16, unpack_q6_Kx16);
}

}  // namespace kt

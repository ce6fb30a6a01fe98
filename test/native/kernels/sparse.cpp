// Kernel tests, the ReGLU-sparse Q4_0 layouts: repack_q4_0r16 / relayout_q4_0nm round trips, and
// mul_r16 (any row list) and mul_nm (only the listed columns, the others zero in the activations)
// bit-identical to the scalar reference dot of the original rows, for every tile shape and tail;
// nothing outside the computed rows is written.
#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "harness.h"

namespace kt {
namespace {

std::vector<block_q4_0> random_q4(std::mt19937_64& r, QCase c, int64_t nblocks) {
    std::vector<block_q4_0> w(static_cast<size_t>(nblocks));
    for (block_q4_0& blk : w) {
        blk.d = c == QCase::Extremes ? 0x3c00 : random_scale(r, true);
        if (c != QCase::Extremes && r() % 7 == 0) blk.d = 0;
        for (auto& q : blk.qs)
            q = static_cast<uint8_t>(c == QCase::Extremes ? (((r() & 1) ? 0x0f : 0x00) | ((r() & 1) ? 0xf0 : 0x00)) : r());
    }
    return w;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// r16: rows of n = 512 * ng elements; row lists of every tail (all rows, a sparse subset, one row).
void check_r16(const KernelSet& ks, QCase c) {
    bool ok = true;
    std::string detail;
    int64_t pairs = 0;
    for (int64_t ng : {1, 3, 5}) {
        const int64_t n = ng * kR16Elements, nb = n / QK4_0, nrows = 53;
        auto r = rng_for(fmt("r16 %s %" PRId64, qcase_name(c), ng), n);
        const std::vector<block_q4_0> w = random_q4(r, c, nrows * nb);
        std::vector<uint8_t> packed(reinterpret_cast<const uint8_t*>(w.data()),
                                    reinterpret_cast<const uint8_t*>(w.data()) + w.size() * sizeof(block_q4_0));
        const size_t wrb = static_cast<size_t>(nb) * sizeof(block_q4_0);
        for (int64_t i = 0; i < nrows; ++i) repack_q4_0r16(packed.data() + static_cast<size_t>(i) * wrb, nb);
        if (&ks == &scalar_set()) {
            std::vector<uint8_t> back = packed;
            for (int64_t i = 0; i < nrows; ++i) unpack_q4_0r16(back.data() + static_cast<size_t>(i) * wrb, nb);
            if (std::memcmp(back.data(), w.data(), back.size()) != 0) ok = false, detail = "unpack_q4_0r16(repack_q4_0r16(w)) != w";
        }
        constexpr int64_t kMaxTokens = 67;
        std::vector<block_q8_0> x(static_cast<size_t>(kMaxTokens * nb));
        for (int64_t t = 0; t < kMaxTokens; ++t) make_activations(c, r, x.data() + t * nb, n, -128);
        std::vector<int32_t> sparse;
        for (int32_t i = 0; i < nrows; ++i)
            if (r() % 2) sparse.push_back(i);
        const std::vector<int32_t> one{static_cast<int32_t>(nrows - 1)};
        const std::vector<int32_t>* lists[] = {nullptr, &sparse, &one};
        for (const std::vector<int32_t>* rows : lists) {
            const int64_t nr = rows ? static_cast<int64_t>(rows->size()) : nrows;
            for (int64_t nt : std::initializer_list<int64_t>{1, 2, 3, 4, 5, kMaxTokens}) {
                if (!ok) break;
                const int64_t ldy = nrows + 3;
                Output<float> y(nt * ldy);
                ks.of(DType::Q4_0)
                    .mul_r16(n, packed.data(), wrb, rows ? rows->data() : nullptr, nr, x.data(), nb * sizeof(block_q8_0), nt, y.data(),
                             ldy);
                for (int64_t t = 0; t < nt && ok; ++t)
                    for (int64_t i = 0; i < ldy && ok; ++i) {
                        const bool listed = rows ? std::find(rows->begin(), rows->end(), i) != rows->end() : i < nrows;
                        const uint8_t* cell = y.bytes.data() + static_cast<size_t>(t * ldy + i) * sizeof(float);
                        if (!listed) {
                            for (size_t k = 0; k < sizeof(float); ++k)
                                if (cell[k] != kSentinel)
                                    ok = false, detail = fmt("y[%" PRId64 "][%" PRId64 "] (not listed) was written", t, i);
                            continue;
                        }
                        float got;
                        std::memcpy(&got, cell, sizeof got);
                        const float want = scalar_set().of(DType::Q4_0).dot(n, w.data() + i * nb, x.data() + t * nb);
                        ++pairs;
                        if (!same_bits(got, want))
                            ok = false, detail = fmt("ng=%" PRId64 " nr=%" PRId64 " nt=%" PRId64 " y[%" PRId64 "][%" PRId64
                                                     "] = %.9g, reference dot %.9g (must be bit-identical)",
                                                     ng, nr, nt, t, i, got, want);
                    }
                if (ok && !y.guard_intact()) ok = false, detail = "sentinel after y overwritten";
            }
        }
    }
    report(ok, fmt("%s mul_q4_0r16_q8_0 %s", isa_name(ks.isa), qcase_name(c)),
           ok ? fmt("%" PRId64 " pairs bit-identical to the scalar reference dot", pairs) : detail);
}

// nm: m rows (tiles of 128) of n columns; the activations are zero outside the listed columns
// (dense, ~half, a few, one block's worth, none), row ranges of one tile and of all.
void check_nm(const KernelSet& ks, QCase c) {
    bool ok = true;
    std::string detail;
    int64_t pairs = 0;
    for (int64_t m : {128, 384}) {
        for (int64_t n : {64, 768}) {
            const int64_t nb = n / QK4_0;
            auto r = rng_for(fmt("nm %s %" PRId64 " %" PRId64, qcase_name(c), m, n), n);
            const std::vector<block_q4_0> w = random_q4(r, c, m * nb);
            std::vector<uint8_t> nm(w.size() * sizeof(block_q4_0));
            relayout_q4_0nm(reinterpret_cast<const uint8_t*>(w.data()), nm.data(), m, n);
            if (&ks == &scalar_set()) {
                std::vector<uint8_t> back(nm.size());
                unpack_q4_0nm(nm.data(), back.data(), m, n);
                if (std::memcmp(back.data(), w.data(), back.size()) != 0) ok = false, detail = "unpack_q4_0nm(relayout_q4_0nm(w)) != w";
            }
            std::vector<std::vector<int32_t>> lists(5);
            for (int32_t j = 0; j < n; ++j) {
                lists[0].push_back(j);
                if (r() % 2) lists[1].push_back(j);
                if (r() % 9 == 0) lists[2].push_back(j);
                if (j >= 32 && j < 64) lists[3].push_back(j);
            }
            for (const std::vector<int32_t>& cols : lists) {
                constexpr int64_t kMaxTokens = 5;
                std::vector<block_q8_0> x(static_cast<size_t>(kMaxTokens * nb));
                for (int64_t t = 0; t < kMaxTokens; ++t) {
                    std::vector<float> f(static_cast<size_t>(n), 0.0f);
                    for (int32_t j : cols)
                        if (c == QCase::Extremes || r() % 4)
                            f[static_cast<size_t>(j)] = static_cast<float>(static_cast<int64_t>(r() % 2001) - 1000) / 37.0f;
                    scalar_set().of(DType::Q8_0).from_f32(f.data(), x.data() + t * nb, n);
                }
                for (int64_t nt = 1; nt <= kMaxTokens && ok; ++nt)
                    for (int64_t r0 : {int64_t{0}, m - kNmTileRows}) {
                        const int64_t nr = r0 == 0 ? m : kNmTileRows, ldy = nr + 7;
                        Output<float> y(nt * ldy);
                        ks.of(DType::Q4_0)
                            .mul_nm(n, m, nm.data(), r0, nr, cols.data(), static_cast<int64_t>(cols.size()), x.data(),
                                    nb * sizeof(block_q8_0), nt, y.data(), ldy);
                        for (int64_t t = 0; t < nt && ok; ++t)
                            for (int64_t i = 0; i < ldy && ok; ++i) {
                                const uint8_t* cell = y.bytes.data() + static_cast<size_t>(t * ldy + i) * sizeof(float);
                                if (i >= nr) {
                                    for (size_t k = 0; k < sizeof(float); ++k)
                                        if (cell[k] != kSentinel)
                                            ok = false, detail = fmt("y[%" PRId64 "][%" PRId64 "] past the rows was written", t, i);
                                    continue;
                                }
                                float got;
                                std::memcpy(&got, cell, sizeof got);
                                const float want = scalar_set().of(DType::Q4_0).dot(n, w.data() + (r0 + i) * nb, x.data() + t * nb);
                                ++pairs;
                                if (!same_bits(got, want))
                                    ok = false, detail = fmt("m=%" PRId64 " n=%" PRId64 " cols=%zu nt=%" PRId64 " y[%" PRId64 "][%" PRId64
                                                             "] = %.9g, reference dot %.9g (must be bit-identical)",
                                                             m, n, cols.size(), nt, t, r0 + i, got, want);
                            }
                        if (ok && !y.guard_intact()) ok = false, detail = "sentinel after y overwritten";
                    }
            }
        }
    }
    report(ok, fmt("%s mul_q4_0nm_q8_0 %s", isa_name(ks.isa), qcase_name(c)),
           ok ? fmt("%" PRId64 " pairs bit-identical to the scalar reference dot", pairs) : detail);
}

}  // namespace

void check_sparse(const KernelSet& ks) {
    const TypeKernels& k = ks.of(DType::Q4_0);
    if (!k.mul_r16 || !k.mul_nm) {
        std::printf("SKIP %s sparse Q4_0 layouts (not in this set)\n", isa_name(ks.isa));
        return;
    }
    for (QCase c : {QCase::Random, QCase::Extremes}) {
        check_r16(ks, c);
        check_nm(ks, c);
    }
}

}  // namespace kt

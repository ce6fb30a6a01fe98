// Kernel tests, --bench[=dots|sparse|x16|kquants|stream|experts|attention]: single-thread GB/s of weight bytes per usable ISA for the dots and the
// k-quant matrix kernels (1 and 8 tokens, weights from DRAM), and ns per quantize_row_q8_0 (use the -O3 build: test/native/build_kernels_test.sh --release).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <thread>
#include <vector>

#include "core/bandwidth.h"
#include "harness.h"

namespace kt {
namespace {

volatile float g_sink;

template <typename F>
double best_seconds(F&& f, double budget_s) {
    using clock = std::chrono::steady_clock;
    double best = 1e30;
    const auto start = clock::now();
    int reps = 0;
    do {
        const auto t0 = clock::now();
        f();
        const double dt = std::chrono::duration<double>(clock::now() - t0).count();
        if (dt < best) best = dt;
        ++reps;
    } while (reps < 3 || std::chrono::duration<double>(clock::now() - start).count() < budget_s);
    return best;
}

// Weights as the engine maps them, in 2 MB pages (its layout files are: FilePmdMapped in smaps); in
// 4 KB pages the DRAM passes would measure page walks, not the kernels.
template <class T>
struct HugePages {
    using value_type = T;
    HugePages() = default;
    template <class U>
    HugePages(const HugePages<U>&) {}
    T* allocate(size_t n) {
        void* p = moe::alloc_huge_pages(n * sizeof(T));
        if (!p) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void deallocate(T* p, size_t) { std::free(p); }
    bool operator==(const HugePages&) const { return true; }
    bool operator!=(const HugePages&) const { return false; }
};
using Weights = std::vector<uint8_t, HugePages<uint8_t>>;

// Random blocks of a quantized type, every 16-bit word that reads as an fp16 NaN/inf made finite
// (the scales sit at different offsets per type; this bench only needs finite results).
Weights random_blocks(std::mt19937_64& r, size_t nblocks, size_t type_size) {
    Weights w(nblocks * type_size);
    for (auto& b : w) b = static_cast<uint8_t>(r());
    for (size_t b = 0; b < nblocks; ++b) {
        uint8_t* blk = w.data() + b * type_size;
        for (size_t i = 0; i + 1 < type_size; i += 2)
            if ((blk[i + 1] & 0x7c) == 0x7c) blk[i + 1] &= 0x3f;
    }
    return w;
}

volatile uint64_t g_sink_u;

}  // namespace

int run_bench(const char* only) {
    auto want = [only](const char* section) { return !only || std::strcmp(only, section) == 0; };
#if defined(__SANITIZE_ADDRESS__)
    std::printf("warning: built with AddressSanitizer; build with test/native/build_kernels_test.sh --release for real numbers\n");
#endif
    const std::vector<Isa> isas = usable_isas(true);
    std::mt19937_64 r(g_seed);
    std::printf("bench: single thread, best of repeated passes; GB/s = weight bytes / time\n");

    struct Shape {
        const char* label;
        int64_t rows, n;
    };
    const Shape shapes[] = {{"1536x768 (cache-resident)", 1536, 768}, {"1536x768 x 192 (~127 MB q4_0, from DRAM)", 1536 * 192, 768}};
    for (const Shape& s : shapes) {
        if (!want("dots")) break;
        const int64_t nb = s.n / 32;
        std::vector<block_q4_0> w4(static_cast<size_t>(s.rows * nb));
        for (auto& b : w4) {
            b.d = random_scale(r, true);
            for (auto& q : b.qs) q = static_cast<uint8_t>(r());
        }
        std::vector<float> xf(static_cast<size_t>(s.n));
        gen_normal(r, xf.data(), s.n);
        std::vector<block_q8_0> xq(static_cast<size_t>(nb));
        scalar_set().of(DType::Q8_0).from_f32(xf.data(), xq.data(), s.n);
        const double bytes = static_cast<double>(w4.size() * sizeof(block_q4_0));
        for (Isa isa : isas) {
            const KernelSet& ks = *compiled_set(isa);
            const double t = best_seconds(
                [&] {
                    float acc = 0;
                    for (int64_t row = 0; row < s.rows; ++row) acc += ks.of(DType::Q4_0).dot(s.n, w4.data() + row * nb, xq.data());
                    g_sink = acc;
                },
                s.rows > 10000 ? 2.0 : 0.5);
            std::printf("bench dot_q4_0_q8_0 %-11s %s: %7.2f GB/s  (%.1f us per pass, %.1f ns/row)\n", isa_name(isa), s.label,
                        bytes / t / 1e9, t * 1e6, t * 1e9 / static_cast<double>(s.rows));
        }
    }

    // The other dots on the cache-resident shape, for reference.
    const int64_t rows = 1536, n = 768, nb = n / 32;
    std::vector<float> wf(static_cast<size_t>(rows * n)), xf(static_cast<size_t>(n));
    gen_normal(r, wf.data(), rows * n);
    gen_normal(r, xf.data(), n);
    std::vector<uint16_t> wh(wf.size()), wb(wf.size()), xh(xf.size()), xb(xf.size());
    scalar_set().of(DType::F16).from_f32(wf.data(), wh.data(), rows * n);
    scalar_set().of(DType::BF16).from_f32(wf.data(), wb.data(), rows * n);
    scalar_set().of(DType::F16).from_f32(xf.data(), xh.data(), n);
    scalar_set().of(DType::BF16).from_f32(xf.data(), xb.data(), n);
    std::vector<block_q8_0> w8(static_cast<size_t>(rows * nb)), x8(static_cast<size_t>(nb));
    scalar_set().of(DType::Q8_0).from_f32(wf.data(), w8.data(), rows * n);
    scalar_set().of(DType::Q8_0).from_f32(xf.data(), x8.data(), n);
    for (Isa isa : isas) {
        if (!want("dots")) break;
        const KernelSet& ks = *compiled_set(isa);
        auto run = [&](const char* what, double bytes, auto&& one_row) {
            const double t = best_seconds(
                [&] {
                    float acc = 0;
                    for (int64_t row = 0; row < rows; ++row) acc += one_row(row);
                    g_sink = acc;
                },
                0.3);
            std::printf("bench %-14s %-11s 1536x768: %7.2f GB/s\n", what, isa_name(isa), bytes / t / 1e9);
        };
        run("dot_q8_0_q8_0", static_cast<double>(w8.size() * sizeof(block_q8_0)),
            [&](int64_t row) { return ks.of(DType::Q8_0).dot(n, w8.data() + row * nb, x8.data()); });
        run("dot_f16", static_cast<double>(wh.size() * 2),
            [&](int64_t row) { return ks.of(DType::F16).dot(n, wh.data() + row * n, xh.data()); });
        run("dot_bf16", static_cast<double>(wb.size() * 2),
            [&](int64_t row) { return ks.of(DType::BF16).dot(n, wb.data() + row * n, xb.data()); });
        run("dot_f32", static_cast<double>(wf.size() * 4),
            [&](int64_t row) { return ks.of(DType::F32).dot(n, wf.data() + row * n, xf.data()); });
        std::vector<block_q8_0> q(static_cast<size_t>(nb));
        const double t = best_seconds([&] { ks.of(DType::Q8_0).from_f32(xf.data(), q.data(), n); }, 0.1);
        std::printf("bench %-14s %-11s n=768: %.0f ns\n", "quantize_q8_0", isa_name(isa), t * 1e9);
    }

    // The ReGLU-sparse Q4_0 layouts against the dense relaid-out one, one token, from DRAM: 160
    // experts' up (768 rows of 1536, r16) and down (1536 rows of 768, neuron-major), a third of the
    // neurons kept (the released models' sparsity), as decoding reads them. GB/s of bytes read.
    if (want("sparse")) {
        const int64_t ne = 160, nf = 768, nd = 1536, nbd = nd / QK4_0, nbf = nf / QK4_0;
        const size_t mat = static_cast<size_t>(nf * nbd) * sizeof(block_q4_0);
        Weights up(ne * mat), down(ne * mat), dense(ne * mat);
        for (auto* v : {&up, &down, &dense})
            for (size_t i = 0; i < v->size(); i += 2) (*v)[i] = static_cast<uint8_t>(r()), (*v)[i + 1] = static_cast<uint8_t>(r() & 0x3b);
        std::vector<uint8_t> tmp(mat);
        for (int64_t e = 0; e < ne; ++e) {
            for (int64_t row = 0; row < nf; ++row) repack_q4_0r16(up.data() + e * mat + static_cast<size_t>(row * nbd) * 18, nbd);
            std::memcpy(tmp.data(), down.data() + e * mat, mat);
            relayout_q4_0nm(tmp.data(), down.data() + e * mat, nd, nf);
            for (int64_t g = 0; g < nf / 16; ++g) scalar_set().of(DType::Q4_0).relayout16(dense.data() + e * mat + g * 16 * nbd * 18, nbd);
        }
        std::vector<float> xd(nd), xf(nf), y(nd);
        gen_normal(r, xd.data(), nd);
        gen_normal(r, xf.data(), nf);
        std::vector<int32_t> keep;
        for (int32_t i = 0; i < nf; ++i)
            if (r() % 3 == 0)
                keep.push_back(i);
            else
                xf[static_cast<size_t>(i)] = 0;
        std::vector<block_q8_0> qd(nbd), qf(nbf);
        scalar_set().of(DType::Q8_0).from_f32(xd.data(), qd.data(), nd);
        scalar_set().of(DType::Q8_0).from_f32(xf.data(), qf.data(), nf);
        const double kept = static_cast<double>(keep.size()) / nf;
        for (Isa isa : isas) {
            const TypeKernels& k = compiled_set(isa)->of(DType::Q4_0);
            if (!k.mul_r16 || !k.mul_nm || !k.mul_x16) continue;
            const double td = best_seconds(
                [&] {
                    for (int64_t e = 0; e < ne; ++e)
                        k.mul_x16(nd, dense.data() + e * mat, 16 * nbd * 18, nf / 16, qd.data(), 0, 1, y.data(), nf);
                },
                1.0);
            const double tu = best_seconds(
                [&] {
                    for (int64_t e = 0; e < ne; ++e)
                        k.mul_r16(nd, up.data() + e * mat, nbd * 18, keep.data(), static_cast<int64_t>(keep.size()), qd.data(), 0, 1,
                                  y.data(), nf);
                },
                1.0);
            const double tn = best_seconds(
                [&] {
                    for (int64_t e = 0; e < ne; ++e)
                        k.mul_nm(nf, nd, down.data() + e * mat, 0, nd, keep.data(), static_cast<int64_t>(keep.size()), qf.data(), 0, 1,
                                 y.data(), nd);
                },
                1.0);
            const double tn_hot = best_seconds(
                [&] {
                    for (int64_t e = 0; e < ne; ++e)
                        k.mul_nm(nf, nd, down.data(), 0, nd, keep.data(), static_cast<int64_t>(keep.size()), qf.data(), 0, 1, y.data(), nd);
                },
                0.5);
            const double tu_hot = best_seconds(
                [&] {
                    for (int64_t e = 0; e < ne; ++e)
                        k.mul_r16(nd, up.data(), nbd * 18, keep.data(), static_cast<int64_t>(keep.size()), qd.data(), 0, 1, y.data(), nf);
                },
                0.5);
            std::printf("bench sparse q4_0 %-11s cache-resident: up r16 %.1f us, down nm %.1f us per expert\n", isa_name(isa),
                        tu_hot * 1e6 / ne, tn_hot * 1e6 / ne);
            const double all = static_cast<double>(ne * mat);
            std::printf(
                "bench sparse q4_0 %-11s %.0f%% kept, 1 token: dense x16 %.2f GB/s (%.0f us/expert); up r16 %.2f GB/s read (%.0f us, %.2fx "
                "dense); "
                "down nm %.2f GB/s read (%.0f us, %.2fx dense)\n",
                isa_name(isa), 100 * kept, all / td / 1e9, td * 1e6 / ne, kept * all / tu / 1e9, tu * 1e6 / ne, tu / td,
                kept * all / tn / 1e9, tn * 1e6 / ne, tn / td);
        }
    }

    // Relaid-out (16 rows per block) Q4_0, Q4_K and Q6_K, the layouts decoding and prompts use: 1536
    // columns, ~120 MB of weights from DRAM and ~0.5 MB from cache (L2: what the kernel itself costs),
    // one token (decode) and 64 (a prompt chunk: compute-bound).
    for (DType xt : {DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
        if (!want("x16")) break;
        for (double bytes : {120e6, 0.5e6}) {
            const TypeTraits tr = type_traits(xt);
            const int64_t kn = 1536, knb = kn / tr.block_size;
            const size_t group_bytes = static_cast<size_t>(16 * knb) * tr.type_size;
            const int64_t ngroups = static_cast<int64_t>(bytes / static_cast<double>(group_bytes));
            Weights w = random_blocks(r, static_cast<size_t>(ngroups * 16 * knb), tr.type_size);
            for (int64_t g = 0; g < ngroups; ++g) scalar_set().of(xt).relayout16(w.data() + static_cast<size_t>(g) * group_bytes, knb);
            const DType at = tr.act_type;
            const size_t x_row_bytes = static_cast<size_t>(kn / type_traits(at).block_size) * type_traits(at).type_size;
            std::vector<float> xf(static_cast<size_t>(64 * kn)), y(static_cast<size_t>(64 * 16 * ngroups));
            gen_normal(r, xf.data(), 64 * kn);
            std::vector<uint8_t> xq(64 * x_row_bytes);
            scalar_set().of(at).from_f32(xf.data(), xq.data(), 64 * kn);
            for (Isa isa : isas) {
                const TypeKernels& tk = compiled_set(isa)->of(xt);
                if (!tk.mul_x16 || isa == Isa::Scalar) continue;
                for (int64_t nt : {1, 64}) {
                    const double t = best_seconds(
                        [&] { tk.mul_x16(kn, w.data(), group_bytes, ngroups, xq.data(), x_row_bytes, nt, y.data(), 16 * ngroups); },
                        bytes > 1e6 ? 1.0 : 0.3);
                    const double macs = static_cast<double>(16 * ngroups * kn * nt);
                    std::printf("bench mul_x16 %-6s %-11s %6lldx1536 x %2lld tokens (%s): %7.2f GB/s  %6.1f GMAC/s\n", tr.name,
                                isa_name(isa), static_cast<long long>(16 * ngroups), static_cast<long long>(nt),
                                bytes > 1e6 ? "DRAM " : "cache", static_cast<double>(w.size()) / t / 1e9, macs / t / 1e9);
                }
            }
        }
    }

    // k-quants: mul with one token (decode) and with 8 tokens, 1536 columns, from DRAM (~120 MB of weights).
    const DType ktypes[] = {DType::Q6_K, DType::Q4_K, DType::Q5_K, DType::Q3_K, DType::Q2_K, DType::IQ4_XS};
    for (DType kt : ktypes) {
        if (!want("kquants")) break;
        const TypeTraits tr = type_traits(kt);
        const int64_t kn = 1536, knb = kn / QK_K, krows = static_cast<int64_t>(120e6 / static_cast<double>(knb * tr.type_size));
        Weights w = random_blocks(r, static_cast<size_t>(krows * knb), tr.type_size);
        std::vector<float> kx(static_cast<size_t>(8 * kn)), y(static_cast<size_t>(8 * krows));
        gen_normal(r, kx.data(), 8 * kn);
        std::vector<block_q8_K> xq(static_cast<size_t>(8 * knb));
        scalar_set().of(DType::Q8_K).from_f32(kx.data(), xq.data(), 8 * kn);
        for (Isa isa : isas) {
            const KernelSet& ks = *compiled_set(isa);
            for (int64_t nt : {1, 8}) {
                const double t = best_seconds(
                    [&] {
                        ks.of(kt).mul(kn, w.data(), static_cast<size_t>(knb) * tr.type_size, nullptr, krows, xq.data(),
                                      static_cast<size_t>(knb) * sizeof(block_q8_K), nt, y.data(), krows);
                    },
                    1.0);
                std::printf("bench %-16s %-11s %lldx1536 x %lld tokens: %7.2f GB/s  (%.1f ns/row)\n", fmt("mul_%s_q8_K", tr.name).c_str(),
                            isa_name(isa), static_cast<long long>(krows), static_cast<long long>(nt),
                            static_cast<double>(w.size()) / t / 1e9, t * 1e9 / static_cast<double>(krows));
            }
        }
    }

    // Decoding as two cores do it: two threads each streaming half of a relaid-out matrix (512 MB in 2
    // MB pages, one token) while the other does too, against the plain read loop over the same memory
    // in the same passes: the share of the shared bandwidth a kernel's stream gets (mean of 6 passes
    // after 2; prefetch choices in the tiles were made with this).
    for (DType xt : {DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
        if (!want("stream")) break;
        const TypeTraits tr = type_traits(xt);
        const int64_t kn = 1536, knb = kn / tr.block_size;
        const size_t group_bytes = static_cast<size_t>(16 * knb) * tr.type_size;
        const int64_t half = static_cast<int64_t>((size_t{256} << 20) / group_bytes);
        Weights w = random_blocks(r, static_cast<size_t>(2 * half * 16 * knb), tr.type_size);
        const DType at = tr.act_type;
        const size_t x_row_bytes = static_cast<size_t>(kn / type_traits(at).block_size) * type_traits(at).type_size;
        std::vector<float> xf(static_cast<size_t>(kn)), y(static_cast<size_t>(2 * half * 16));
        gen_normal(r, xf.data(), kn);
        std::vector<uint8_t> xq(x_row_bytes);
        scalar_set().of(at).from_f32(xf.data(), xq.data(), kn);
        std::vector<Isa> runs;
        for (Isa isa : isas)
            if (isa != Isa::Scalar && compiled_set(isa)->of(xt).mul_x16) runs.push_back(isa);
        std::vector<double> kernel_gbs(runs.size(), 0.0);
        double loop_gbs = 0;
        const size_t half_bytes = static_cast<size_t>(half) * group_bytes;
        const auto two_threads = [&](auto&& body) {
            const auto t0 = std::chrono::steady_clock::now();
            std::thread other([&] { body(1); });
            body(0);
            other.join();
            return static_cast<double>(2 * half_bytes) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9;
        };
        for (int pass = 0; pass < 8; ++pass) {
            const double l = two_threads([&](int h) {
                g_sink_u = g_sink_u + moe::read_words(reinterpret_cast<const uint64_t*>(w.data() + h * half_bytes), half_bytes / 8);
            });
            if (pass >= 2) loop_gbs += l / 6;
            for (size_t i = 0; i < runs.size(); ++i) {
                const TypeKernels& tk = compiled_set(runs[i])->of(xt);
                const double k = two_threads([&](int h) {
                    tk.mul_x16(kn, w.data() + h * half_bytes, group_bytes, half, xq.data(), x_row_bytes, 1, y.data() + h * half * 16,
                               2 * half * 16);
                });
                if (pass >= 2) kernel_gbs[i] += k / 6;
            }
        }
        for (size_t i = 0; i < runs.size(); ++i)
            std::printf("bench stream %-6s %-11s 2 threads x 256 MB, 1 token: %6.2f GB/s, read loop %6.2f GB/s (%.0f%%)\n", tr.name,
                        isa_name(runs[i]), kernel_gbs[i], loop_gbs, 100 * kernel_gbs[i] / loop_gbs);
        g_sink = y[0];
    }

    // Experts as decoding runs them (the task path of moe_ffn): two threads, each computing whole
    // experts in turn, gate, up and down, one token, from a region of expert extents (gate, up, down
    // contiguous, as in a layout file; 2 x 160 experts of the 4B's shapes, 2 MB pages). Dense: the
    // three relaid out 16 rows per block; sparse: up r16 and down neuron-major reading only the kept
    // neurons (each expert its own random set). Mean of 6 passes, alternating the layouts.
    if (want("experts")) {
        const int64_t ne = 320, nf = 768, nd = 1536, nbd = nd / QK4_0, nbf = nf / QK4_0;
        const size_t mat = static_cast<size_t>(nf * nbd) * sizeof(block_q4_0), ext = 3 * mat;
        Weights dense(ne * ext), sparse(ne * ext);
        for (auto* v : {&dense, &sparse})
            for (size_t i = 0; i < v->size(); i += 2) (*v)[i] = static_cast<uint8_t>(r()), (*v)[i + 1] = static_cast<uint8_t>(r() & 0x3b);
        std::vector<uint8_t> tmp(mat);
        for (int64_t e = 0; e < ne; ++e) {
            uint8_t* de = dense.data() + e * ext;
            uint8_t* se = sparse.data() + e * ext;
            for (int64_t g = 0; g < nf / 16; ++g) {
                scalar_set().of(DType::Q4_0).relayout16(de + g * 16 * nbd * 18, nbd);
                scalar_set().of(DType::Q4_0).relayout16(de + mat + g * 16 * nbd * 18, nbd);
                scalar_set().of(DType::Q4_0).relayout16(se + g * 16 * nbd * 18, nbd);
            }
            for (int64_t g = 0; g < nd / 16; ++g) scalar_set().of(DType::Q4_0).relayout16(de + 2 * mat + g * 16 * nbf * 18, nbf);
            for (int64_t row = 0; row < nf; ++row) repack_q4_0r16(se + mat + static_cast<size_t>(row * nbd) * 18, nbd);
            std::memcpy(tmp.data(), se + 2 * mat, mat);
            relayout_q4_0nm(tmp.data(), se + 2 * mat, nd, nf);
        }
        std::vector<float> xd(nd), xf(nf);
        gen_normal(r, xd.data(), nd);
        gen_normal(r, xf.data(), nf);
        std::vector<block_q8_0> qd(nbd), qf(nbf);
        scalar_set().of(DType::Q8_0).from_f32(xd.data(), qd.data(), nd);
        scalar_set().of(DType::Q8_0).from_f32(xf.data(), qf.data(), nf);
        for (int keep_pct : {100, 50, 33}) {
            std::vector<std::vector<int32_t>> keep(static_cast<size_t>(ne));
            double sparse_bytes = 0;
            for (auto& k : keep) {
                int32_t last_block = -1;
                for (int32_t i = 0; i < nf; ++i)
                    if (static_cast<int>(r() % 100) < keep_pct) {
                        k.push_back(i);
                        if (i / QK4_0 != last_block) sparse_bytes += 2.0 * nd, last_block = i / QK4_0;
                    }
                sparse_bytes += static_cast<double>(mat) + static_cast<double>(k.size()) * (static_cast<double>(nbd * 18) + nd / 2.0);
            }
            for (Isa isa : isas) {
                const TypeKernels& k = compiled_set(isa)->of(DType::Q4_0);
                if (!k.mul_r16 || !k.mul_nm || !k.mul_x16 || isa == Isa::Scalar) continue;
                const auto two_threads = [&](auto&& body) {
                    const auto t0 = std::chrono::steady_clock::now();
                    std::thread other([&] { body(1); });
                    body(0);
                    other.join();
                    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                };
                std::vector<float> y(2 * 3 * static_cast<size_t>(nd));
                double td = 0, ts = 0;
                for (int pass = 0; pass < 8; ++pass) {
                    const double a = two_threads([&](int h) {
                        float* yh = y.data() + h * 3 * nd;
                        for (int64_t e = h; e < ne; e += 2) {
                            const uint8_t* de = dense.data() + e * ext;
                            k.mul_x16(nd, de, 16 * nbd * 18, nf / 16, qd.data(), 0, 1, yh, nf);
                            k.mul_x16(nd, de + mat, 16 * nbd * 18, nf / 16, qd.data(), 0, 1, yh + nd, nf);
                            k.mul_x16(nf, de + 2 * mat, 16 * nbf * 18, nd / 16, qf.data(), 0, 1, yh + 2 * nd, nd);
                        }
                    });
                    const double b = two_threads([&](int h) {
                        float* yh = y.data() + h * 3 * nd;
                        for (int64_t e = h; e < ne; e += 2) {
                            const uint8_t* se = sparse.data() + e * ext;
                            const std::vector<int32_t>& kk = keep[static_cast<size_t>(e)];
                            const int64_t nk = static_cast<int64_t>(kk.size());
                            k.mul_x16(nd, se, 16 * nbd * 18, nf / 16, qd.data(), 0, 1, yh, nf);
                            k.mul_r16(nd, se + mat, nbd * 18, kk.data(), nk, qd.data(), 0, 1, yh + nd, nf);
                            k.mul_nm(nf, nd, se + 2 * mat, 0, nd, kk.data(), nk, qf.data(), 0, 1, yh + 2 * nd, nd);
                        }
                    });
                    if (pass >= 2) td += a / 6, ts += b / 6;
                }
                const double db = static_cast<double>(ne * ext);
                std::printf(
                    "bench experts q4_0 %-11s 2 threads, %d%% kept: dense %.1f us/expert (%.2f GB/s), sparse %.1f us/expert (%.2f GB/s "
                    "of %.0f%% of the bytes): %.2fx the time\n",
                    isa_name(isa), keep_pct, td * 1e6 / ne * 2, db / td / 1e9, ts * 1e6 / ne * 2, sparse_bytes / ts / 1e9,
                    100 * sparse_bytes / db, ts / td);
                g_sink = y[0];
            }
        }
    }

    // Attention while decoding: one token's grouped-query heads (6 queries per KV head: the 4B; 7:
    // the 21B) over 2,500 cached positions of fp16 keys and values in the cache's ring layout (a
    // position's row holds every KV head: 2 x 128 and 4 x 128 elements), 32 such layers in turn (as
    // a token's layers: ~40-80 MB, from DRAM), scores, softmax and values; ms per token.
    if (want("attention")) {
        constexpr int64_t d = 128, nk = 2500, layers = 32;
        for (int64_t gqa : {6, 7}) {
            const int64_t nkv = gqa == 6 ? 2 : 4, ld = nkv * d;
            std::vector<uint16_t> k(static_cast<size_t>(layers * nk * ld)), v(k.size());
            for (auto* c : {&k, &v})
                for (uint16_t& h : *c) h = fp32_to_fp16(static_cast<float>(normal(r)));
            std::vector<float> q(static_cast<size_t>(gqa * d)), s(static_cast<size_t>(gqa * nk)), o(static_cast<size_t>(gqa * d));
            gen_normal(r, q.data(), gqa * d);
            for (Isa isa : isas) {
                const KernelSet& ks = *compiled_set(isa);
                double ts = 0, tp = 0, best = 1e30;  // the best pass's parts
                const double t = best_seconds(
                    [&] {
                        using clock = std::chrono::steady_clock;
                        double a = 0, b = 0;
                        for (int64_t l = 0; l < layers; ++l) {
                            const uint16_t* kl = k.data() + static_cast<size_t>(l * nk * ld);
                            const uint16_t* vl = v.data() + static_cast<size_t>(l * nk * ld);
                            const auto t0 = clock::now();
                            ks.attn_scores_f16(d, gqa, q.data(), d, nk, kl, ld, 0.0883883476f, s.data(), nk);
                            for (int64_t i = 0; i < gqa; ++i) ks.softmax_f16r(nk, s.data() + i * nk);
                            const auto t1 = clock::now();
                            std::fill(o.begin(), o.end(), 0.0f);
                            ks.attn_pv_f16(d, gqa, s.data(), nk, nk, vl, ld, o.data(), d);
                            a += std::chrono::duration<double>(t1 - t0).count();
                            b += std::chrono::duration<double>(clock::now() - t1).count();
                        }
                        if (a + b < best) best = a + b, ts = a, tp = b;
                    },
                    isa == Isa::Scalar ? 0.2 : 1.0);
                std::printf(
                    "bench attention %-11s %lld queries x %lld positions x %lld layers: %.2f ms per token (scores+softmax %.2f, values "
                    "%.2f)\n",
                    isa_name(isa), static_cast<long long>(gqa), static_cast<long long>(nk), static_cast<long long>(layers), t * 1e3,
                    ts * 1e3, tp * 1e3);
                g_sink = o[0];
            }
        }
    }
    return 0;
}

}  // namespace kt

// Microbenchmark of the quantized matrix kernels (KernelSet::mul_q4_0_q8_0 / mul_q8_0_q8_0)
// against the per-row dot loop they replace, single thread, every ISA set this CPU runs.
// Build and run (the addon's flags: -O3, baseline x86-64):
//   bash scripts/kernels_bench.sh [--quick] [--best] [--decode] [--isa=NAME]
// (--quick: fewer, shorter repetitions and no DRAM-sized copies, so its "DRAM" figures are not.)
//
// Reports, per set and weight matrix (rows x n): decode (one token) GB/s of weight bytes for
// the dot loop and for mul_*, with the matrix in cache (L2/L3, reused) and from DRAM (cycling
// over ~128 MB of distinct copies), then rows*tokens/s for nt = 1, 4, 8, 16, 64 tokens.
// Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID: time-slicing by other processes on
// the shared machine does not count; their cache and memory traffic still does); each figure is
// the median of several repetitions.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"

using namespace moe;
using namespace moe::kernels;

namespace {

volatile float g_sink;
int g_reps = 7;
bool g_best = false;
bool g_decode_only = false;  // --decode: only the one-token GB/s lines  // --best: the fastest repetition instead of the median (to compare code variants)
double g_rep_seconds = 0.03;

double cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Median over g_reps repetitions of the CPU seconds one call of f takes (each repetition calls f
// until g_rep_seconds have passed).
template <typename F>
double median_seconds(F&& f) {
    std::vector<double> per;
    f();  // warm-up
    for (int rep = 0; rep < g_reps; ++rep) {
        int calls = 0;
        const double t0 = cpu_seconds();
        double dt = 0;
        do {
            f();
            ++calls;
            dt = cpu_seconds() - t0;
        } while (dt < g_rep_seconds);
        per.push_back(dt / calls);
    }
    std::sort(per.begin(), per.end());
    return g_best ? per.front() : per[per.size() / 2];
}

template <typename BW>
struct Mats {
    int64_t rows, n, copies;
    size_t row_bytes;
    std::vector<BW> w;  // copies x rows x n/32 blocks
    const BW* mat(int64_t c) const { return w.data() + static_cast<size_t>(c * rows * (n / 32)); }
    double bytes() const { return static_cast<double>(row_bytes) * static_cast<double>(rows); }
};

template <typename BW>
Mats<BW> make_mats(std::mt19937_64& r, int64_t rows, int64_t n, int64_t copies) {
    Mats<BW> m{rows, n, copies, static_cast<size_t>(n / 32) * sizeof(BW), {}};
    m.w.resize(static_cast<size_t>(copies * rows * (n / 32)));
    for (auto& b : m.w) {
        b.d = fp32_to_fp16(static_cast<float>(r() % 1000 + 1) * 1e-5f);
        for (auto& q : b.qs) q = static_cast<decltype(+q)>(r());
    }
    return m;
}

std::vector<block_q8_0> make_acts(std::mt19937_64& r, int64_t n, int64_t nt) {
    std::normal_distribution<float> nd;
    std::vector<float> f(static_cast<size_t>(n * nt));
    for (auto& v : f) v = nd(r);
    std::vector<block_q8_0> x(static_cast<size_t>(n / 32 * nt));
    scalar_set().of(DType::Q8_0).from_f32(f.data(), x.data(), n * nt);
    return x;
}

template <typename BW>
void dot_loop(DotFn dot, const Mats<BW>& m, int64_t c, const block_q8_0* x, int64_t nt, float* y) {
    const int64_t nb = m.n / 32;
    const BW* w = m.mat(c);
    for (int64_t r = 0; r < m.rows; ++r)
        for (int64_t t = 0; t < nt; ++t) y[t * m.rows + r] = dot(m.n, w + r * nb, x + t * nb);
}

template <typename BW>
void bench_shape(const char* type, const KernelSet& ks, DotFn dot, MulFn mul, std::mt19937_64& r, int64_t rows, int64_t n,
                 bool quick) {
    const Mats<BW> one = make_mats<BW>(r, rows, n, 1);
    const int64_t copies = std::max<int64_t>(2, static_cast<int64_t>(128e6 / one.bytes()));
    const Mats<BW> many = make_mats<BW>(r, rows, n, quick ? 2 : copies);
    const size_t xrow = static_cast<size_t>(n / 32) * sizeof(block_q8_0);
    std::vector<float> y(static_cast<size_t>(rows * 64));

    // decode GB/s: cache-resident and from DRAM
    const std::vector<block_q8_0> x1 = make_acts(r, n, 1);
    int64_t c = 0;
    const double t_dot_c = median_seconds([&] { dot_loop<BW>(dot, one, 0, x1.data(), 1, y.data()); });
    const double t_mul_c = median_seconds([&] { mul(n, one.mat(0), one.row_bytes, nullptr, rows, x1.data(), xrow, 1, y.data(), rows); });
    const double t_dot_d = median_seconds([&] {
        dot_loop<BW>(dot, many, c, x1.data(), 1, y.data());
        c = (c + 1) % many.copies;
    });
    const double t_mul_d = median_seconds([&] {
        mul(n, many.mat(c), many.row_bytes, nullptr, rows, x1.data(), xrow, 1, y.data(), rows);
        c = (c + 1) % many.copies;
    });
    const double gb = one.bytes() / 1e9;
    std::printf("%-10s %-6s %4" PRId64 "x%-4" PRId64 " decode GB/s  cache: dot %6.2f  mul %6.2f (x%.2f) | DRAM: dot %6.2f  mul %6.2f (x%.2f)\n",
                isa_name(ks.isa), type, rows, n, gb / t_dot_c, gb / t_mul_c, t_dot_c / t_mul_c, gb / t_dot_d, gb / t_mul_d,
                t_dot_d / t_mul_d);

    if (g_decode_only) return;
    // rows*tokens per second (matrix in cache)
    std::printf("%-10s %-6s %4" PRId64 "x%-4" PRId64 " Mrow-tokens/s", isa_name(ks.isa), type, rows, n);
    for (int64_t nt : {1, 4, 8, 16, 64}) {
        const std::vector<block_q8_0> x = make_acts(r, n, nt);
        const double td = median_seconds([&] { dot_loop<BW>(dot, one, 0, x.data(), nt, y.data()); });
        const double tm = median_seconds([&] { mul(n, one.mat(0), one.row_bytes, nullptr, rows, x.data(), xrow, nt, y.data(), rows); });
        const double pairs = static_cast<double>(rows * nt) / 1e6;
        std::printf("  nt=%-2" PRId64 " dot %6.1f mul %6.1f (x%.2f)", nt, pairs / td, pairs / tm, td / tm);
    }
    std::printf("\n");
    g_sink = y[0];
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = false;
    int only = -1;
    for (int i = 1; i < argc; ++i) {
        Isa isa;
        if (std::strcmp(argv[i], "--quick") == 0) {
            quick = true;
            g_reps = 3;
            g_rep_seconds = 0.01;
        } else if (std::strcmp(argv[i], "--decode") == 0) {
            g_decode_only = true;
        } else if (std::strcmp(argv[i], "--best") == 0) {
            g_best = true;
        } else if (std::strncmp(argv[i], "--isa=", 6) == 0 && parse_isa(argv[i] + 6, &isa)) {
            only = static_cast<int>(isa);
        } else {
            std::fprintf(stderr, "usage: %s [--quick] [--best] [--decode] [--isa=scalar|avx2|avx512|avx512vnni]\n", argv[0]);
            return 2;
        }
    }
    std::printf("single thread, CPU time; %s of %d repetitions; 'x' = mul speedup over the per-row dot loop\n", g_best ? "best" : "median",
                g_reps);
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        const KernelSet* ks = compiled_set(isa);
        if (!ks || !cpu_supports(isa) || (only >= 0 && i != only)) continue;
        std::mt19937_64 r(42);
        for (auto [rows, n] : {std::pair<int64_t, int64_t>{1536, 1536}, {768, 1536}}) {
            bench_shape<block_q4_0>("q4_0", *ks, ks->of(DType::Q4_0).dot, ks->of(DType::Q4_0).mul, r, rows, n, quick);
        }
        bench_shape<block_q8_0>("q8_0", *ks, ks->of(DType::Q8_0).dot, ks->of(DType::Q8_0).mul, r, 1536, 1536, quick);
    }
    return 0;
}

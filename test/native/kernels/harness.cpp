// The shared pieces of the kernel tests, declared in harness.h.
#include <cinttypes>
#include <cstdarg>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "harness.h"

namespace kt {

uint64_t g_seed = kDefaultSeed;
int g_passed = 0;
int g_failed = 0;

void report(bool ok, const std::string& what, const std::string& detail) {
    (ok ? g_passed : g_failed)++;
    std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
    std::fflush(stdout);
}

std::string fmt(const char* f, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

std::mt19937_64 rng_for(const std::string& name, int64_t n) {
    uint64_t h = g_seed ^ 0x9e3779b97f4a7c15ull;
    for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    h ^= static_cast<uint64_t>(n) * 0xff51afd7ed558ccdull;
    return std::mt19937_64(h);
}

std::string lens_str(const std::vector<int64_t>& lens) {
    std::string s;
    for (size_t i = 0; i < lens.size(); ++i) {
        if (i) s += ",";
        // collapse runs a..b
        size_t j = i;
        while (j + 1 < lens.size() && lens[j + 1] == lens[j] + 1) ++j;
        if (j > i + 1) {
            s += fmt("%" PRId64 "..%" PRId64, lens[i], lens[j]);
            i = j;
        } else {
            s += fmt("%" PRId64, lens[i]);
        }
    }
    return s;
}

std::vector<int64_t> float_lengths() {
    std::vector<int64_t> v;
    for (int64_t n = 0; n <= 67; ++n) v.push_back(n);
    for (int64_t n : {95, 96, 97, 127, 128, 129, 255, 256, 257, 1000, 1536, 2048 + 17, 4096 + 31, 4096 + 32}) v.push_back(n);
    return v;
}

std::vector<int64_t> quant_lengths() {  // multiples of 32: 0..12 blocks (every tail mod 4), then larger
    std::vector<int64_t> v;
    for (int64_t b = 0; b <= 12; ++b) v.push_back(32 * b);
    for (int64_t n : {512, 768, 1024, 1536, 2048 + 96, 4096 + 32, 8192 + 160}) v.push_back(n);
    return v;
}

void gen_normal(std::mt19937_64& r, float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] = normal(r);
}

bool dot_close(float want, float got, double mag, double tol, double* rel) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    const double err = std::fabs(static_cast<double>(got) - want);
    *rel = mag > 0 ? err / mag : err;
    return std::isfinite(got) && err <= tol * mag;
}

const char* qcase_name(QCase c) {
    switch (c) {
        case QCase::Random: return "random";
        case QCase::ZeroScales: return "zero-scales";
        case QCase::UnitExact: return "unit-scales-exact";
        case QCase::Extremes: return "extremes-exact";
        case QCase::Saturating: return "saturating-exact";
    }
    return "?";
}

uint16_t random_scale(std::mt19937_64& r, bool allow_negative) {
    float d = static_cast<float>(std::pow(10.0, uniform(r, -4, 0)));
    if (allow_negative && (r() & 1)) d = -d;
    return fp32_to_fp16(d);
}

void make_activations(QCase c, std::mt19937_64& r, block_q8_0* x, int64_t n, int lo) {
    const int64_t nb = n / 32;
    if (c == QCase::Random || c == QCase::ZeroScales) {
        std::vector<float> f(static_cast<size_t>(n));
        gen_normal(r, f.data(), n);
        scalar_set().of(DType::Q8_0).from_f32(f.data(), x, n);
        return;
    }
    for (int64_t b = 0; b < nb; ++b) {
        x[b].d = 0x3c00;  // 1.0
        for (int j = 0; j < 32; ++j) {
            if (c == QCase::Extremes)
                x[b].qs[j] = static_cast<int8_t>((r() & 1) ? 127 : lo);
            else if (c == QCase::Saturating)
                x[b].qs[j] = static_cast<int8_t>(lo);
            else
                x[b].qs[j] = static_cast<int8_t>(lo + static_cast<int>(r() % static_cast<uint64_t>(128 - lo)));
        }
    }
}

namespace {

bool under_valgrind() {
    const char* v = std::getenv("MOE_UNDER_VALGRIND");
    return v && std::strcmp(v, "1") == 0;
}

bool is_avx512(Isa isa) { return isa == Isa::Avx512 || isa == Isa::Avx512Vnni; }

}  // namespace

std::vector<Isa> usable_isas(bool print) {
    std::vector<Isa> v;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        const bool compiled = compiled_set(isa) != nullptr;
        const bool cpu = cpu_supports(isa);
        if (compiled && cpu && is_avx512(isa) && under_valgrind()) {
            if (print) std::printf("SKIP %s: MOE_UNDER_VALGRIND=1 (valgrind cannot run AVX-512)\n", isa_name(isa));
            continue;
        }
        if (!compiled || !cpu) {
            if (print)
                std::printf("SKIP %s: %s\n", isa_name(isa),
                            !compiled
                                ? "not compiled into this build"
                                : (under_valgrind() ? "not supported by this CPU as valgrind reports it" : "not supported by this CPU"));
            continue;
        }
        v.push_back(isa);
    }
    return v;
}

unsigned usable_mask() {
    unsigned m = 0;
    for (int i = 0; i < kIsaCount; ++i)
        if (compiled_set(static_cast<Isa>(i)) && cpu_supports(static_cast<Isa>(i))) m |= 1u << i;
    return m;
}

}  // namespace kt

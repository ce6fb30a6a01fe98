// Kernel tests: every SIMD kernel set that is compiled in and supported by this CPU is compared
// with the scalar reference set (native/kernels/ref.cpp) on seeded random and hand-picked edge
// inputs, plus the run-time dispatch (set_active/active, MOE_FORCE_ISA parsing).
//
//   build/test/kernels_test [--seed=N]    run the checks; last line "kernels: N passed, M failed"
//   build/test/kernels_test --bench       single-thread GB/s of weight bytes per ISA (use the
//                                         -O3 build: build_kernels_test.sh --release)
//
// This file has main() and the per-set loop; the checks are in test/native/kernels/, one file per
// op family (conversions, attention, dots, matrix, kquants, dispatch, bench) plus the shared harness.h.
//
// Build: test/native/build_kernels_test.sh (or test/native/build.mjs). Environment:
// MOE_UNDER_VALGRIND=1 skips the AVX-512 sets: valgrind 3.19 cannot execute AVX-512 (it also
// hides the AVX-512 CPUID bits, so cpu_supports() normally excludes them there anyway).
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/harness.h"

using namespace kt;

namespace {

void check_set(const KernelSet& ks) {
    // Every type the engine computes with has its row: a dot, the conversion to its activation
    // type, and the relayout kernel when the type has a relayout. Then the shared kernels.
    bool complete = ks.axpy_f16 && ks.attn_scores_f16 && ks.attn_pv_f16 && ks.softmax_f16r;
    for (uint32_t t = 0; t < kTypeCount; ++t) {
        const TypeTraits tr = type_traits(t);
        if (!tr.supported) continue;
        const TypeKernels& k = ks.of(static_cast<DType>(t));
        const bool row_ok = k.dot && (tr.act_type == DType::F32 || ks.of(tr.act_type).from_f32) &&
                            (k.relayout16 != nullptr) == (k.mul_x16 != nullptr) &&
                            (scalar_set().of(static_cast<DType>(t)).relayout16 != nullptr) == (k.relayout16 != nullptr);
        if (!row_ok) std::printf("  %s: the row of %s is incomplete\n", isa_name(ks.isa), tr.name);
        complete = complete && row_ok;
    }
    report(complete, fmt("%s table complete", isa_name(ks.isa)), complete ? "" : "a kernel pointer is null");
    if (!complete) return;

    check_conversions(ks);
    check_attention(ks);
    check_dots(ks);
    check_matrix(ks);
    check_kquants(ks);
    check_q32(ks);
    check_kx16(ks);
    check_sparse(ks);
}

}  // namespace

int main(int argc, char** argv) {
    bool bench = false;
    const char* bench_only = nullptr;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--print-active") == 0) {  // used by the MOE_FORCE_ISA check
            std::printf("%s %u\n", isa_name(active().isa), usable_mask());
            return 0;
        } else if (std::strcmp(argv[i], "--bench") == 0) {
            bench = true;
        } else if (std::strncmp(argv[i], "--bench=", 8) == 0) {  // one section: dots, sparse, x16, kquants, stream or attention
            bench = true;
            bench_only = argv[i] + 8;
        } else if (std::strncmp(argv[i], "--seed=", 7) == 0) {
            g_seed = std::strtoull(argv[i] + 7, nullptr, 0);
        } else {
            std::fprintf(stderr, "usage: %s [--seed=N] [--bench[=dots|sparse|x16|kquants|stream|attention]]\n", argv[0]);
            return 2;
        }
    }
    std::printf("seed %" PRIu64 "\n", g_seed);
    if (bench) return run_bench(bench_only);

    for (Isa isa : usable_isas(true)) {
        if (isa == Isa::Scalar) {  // the reference itself: only its matrix kernels (strides, ldy, tails)
            check_matrix(scalar_set());
            check_kquants(scalar_set());
            check_q32(scalar_set());
            check_kx16(scalar_set());
            check_sparse(scalar_set());
            continue;
        }
        check_set(*compiled_set(isa));
    }
    check_dispatch();
    std::printf("kernels: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

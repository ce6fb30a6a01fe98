// Run-time choice of the kernel set: CPU feature detection and the MOE_FORCE_ISA override.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/common.h"
#include "kernels/kernels.h"

namespace moe::kernels {

// Defined in the per-ISA files; each returns nullptr when its file was compiled out.
const KernelSet* avx2_set();
const KernelSet* avx512_set();
const KernelSet* avx512vnni_set();

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return "scalar";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
        case Isa::Avx512Vnni: return "avx512vnni";
    }
    return "unknown";
}

bool parse_isa(const char* name, Isa* out) {
    for (int i = 0; i < kIsaCount; ++i) {
        if (std::strcmp(name, isa_name(static_cast<Isa>(i))) == 0) {
            *out = static_cast<Isa>(i);
            return true;
        }
    }
    return false;
}

const KernelSet* compiled_set(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return &scalar_set();
        case Isa::Avx2: return avx2_set();
        case Isa::Avx512: return avx512_set();
        case Isa::Avx512Vnni: return avx512vnni_set();
    }
    return nullptr;
}

bool cpu_supports(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    switch (isa) {
        case Isa::Scalar: return true;
        case Isa::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        case Isa::Avx512:
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512dq") && cpu_supports(Isa::Avx2);
        case Isa::Avx512Vnni: return __builtin_cpu_supports("avx512vnni") && cpu_supports(Isa::Avx512);
    }
    return false;
#else
    return isa == Isa::Scalar;
#endif
}

namespace {
std::atomic<const KernelSet*> g_active{nullptr};

const KernelSet* best_supported() {
    for (int i = kIsaCount - 1; i >= 0; --i) {
        Isa isa = static_cast<Isa>(i);
        const KernelSet* ks = compiled_set(isa);
        if (ks && cpu_supports(isa)) return ks;
    }
    return &scalar_set();
}

const KernelSet* choose() {
    const char* forced = std::getenv("MOE_FORCE_ISA");
    if (forced && *forced) {
        Isa isa;
        if (!parse_isa(forced, &isa)) {
            log(LogLevel::Warn, strfmt("MOE_FORCE_ISA=%s is not one of scalar|avx2|avx512|avx512vnni; ignoring it", forced));
        } else if (!compiled_set(isa) || !cpu_supports(isa)) {
            log(LogLevel::Warn, strfmt("MOE_FORCE_ISA=%s is not supported by this CPU or build; using the best supported set", forced));
        } else {
            return compiled_set(isa);
        }
    }
    return best_supported();
}
}  // namespace

const KernelSet& active() {
    const KernelSet* ks = g_active.load(std::memory_order_acquire);
    if (!ks) {
        ks = choose();
        g_active.store(ks, std::memory_order_release);
    }
    return *ks;
}

bool set_active(Isa isa) {
    const KernelSet* ks = compiled_set(isa);
    if (!ks || !cpu_supports(isa)) return false;
    g_active.store(ks, std::memory_order_release);
    return true;
}

}  // namespace moe::kernels

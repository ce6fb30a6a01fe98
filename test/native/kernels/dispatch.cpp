// Kernel tests, run-time dispatch: parse_isa / isa_name round trip, compiled_set's isa fields,
// set_active / active(), and MOE_FORCE_ISA in a fresh process (this binary run with --print-active).
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "harness.h"

namespace kt {
namespace {

// Runs this binary again with MOE_FORCE_ISA set; the child prints active()'s name and which
// sets it can use (its own view: under valgrind the CPU features differ from a native run).
struct ChildView {
    std::string active;
    unsigned usable = 0;  // bit i: compiled_set(i) && cpu_supports(i)
};
ChildView child_active(const char* forced) {
    ChildView v;
    char self[4096];
    const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        v.active = "<no /proc/self/exe>";
        return v;
    }
    self[len] = 0;
    std::string cmd = forced ? fmt("MOE_FORCE_ISA='%s' ", forced) : std::string("env -u MOE_FORCE_ISA ");
    cmd += fmt("'%s' --print-active 2>/dev/null", self);
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) {
        v.active = "<popen failed>";
        return v;
    }
    char name[64] = {0};
    if (std::fscanf(p, "%63s %u", name, &v.usable) != 2) std::snprintf(name, sizeof name, "<no output>");
    pclose(p);
    v.active = name;
    return v;
}

std::string best_in(unsigned mask) {
    for (int i = kIsaCount - 1; i >= 0; --i)
        if (mask & (1u << i)) return isa_name(static_cast<Isa>(i));
    return isa_name(Isa::Scalar);
}

}  // namespace

void check_dispatch() {
    // isa_name / parse_isa round trip and rejects
    bool ok = true;
    std::string detail;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        Isa got = Isa::Scalar;
        if (!parse_isa(isa_name(isa), &got) || got != isa) {
            ok = false;
            detail = fmt("parse_isa(\"%s\") failed", isa_name(isa));
        }
    }
    for (const char* bad : {"", "AVX2", "avx", "avx512v", "avx512vnnix", "sse4", " avx2", "avx2 "}) {
        Isa got = Isa::Avx2;
        if (parse_isa(bad, &got)) {
            ok = false;
            detail = fmt("parse_isa(\"%s\") accepted", bad);
        }
    }
    report(ok, "dispatch parse_isa", ok ? "scalar|avx2|avx512|avx512vnni round-trip, bad names rejected" : detail);

    // compiled sets report their own isa
    ok = true;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        const KernelSet* ks = compiled_set(isa);
        if (ks && ks->isa != isa) {
            ok = false;
            detail = fmt("compiled_set(%s)->isa is %s", isa_name(isa), isa_name(ks->isa));
        }
    }
    report(ok, "dispatch compiled_set isa fields", ok ? "" : detail);

    // set_active / active()
    const Isa before = active().isa;
    ok = true;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        const bool can = compiled_set(isa) && cpu_supports(isa);
        const Isa prev = active().isa;
        const bool r = set_active(isa);
        if (r != can) {
            ok = false;
            detail = fmt("set_active(%s) returned %d, expected %d", isa_name(isa), r, can);
        } else if (r && (active().isa != isa || &active() != compiled_set(isa))) {
            ok = false;
            detail = fmt("after set_active(%s) active() is %s", isa_name(isa), isa_name(active().isa));
        } else if (!r && active().isa != prev) {
            ok = false;
            detail = fmt("failed set_active(%s) changed active() to %s", isa_name(isa), isa_name(active().isa));
        }
    }
    set_active(before);
    report(ok && active().isa == before, "dispatch set_active/active", ok ? fmt("restored to %s", isa_name(before)) : detail);

    // MOE_FORCE_ISA in a fresh process (active() is chosen once per process): a valid name the
    // child can use wins; anything else falls back to the best set it can use.
    ok = true;
    std::string seen;
    std::vector<const char*> forced = {nullptr, "", "bogus", "AVX2"};
    for (int i = 0; i < kIsaCount; ++i) forced.push_back(isa_name(static_cast<Isa>(i)));
    for (const char* f : forced) {
        const ChildView v = child_active(f);
        Isa isa;
        const bool valid = f && parse_isa(f, &isa);
        const std::string expect = (valid && (v.usable & (1u << static_cast<int>(isa)))) ? std::string(f) : best_in(v.usable);
        seen += fmt("%s%s->%s", seen.empty() ? "" : " ", f ? (*f ? f : "''") : "(unset)", v.active.c_str());
        if (v.active != expect) {
            ok = false;
            detail = fmt("MOE_FORCE_ISA=%s: active() is %s, expected %s", f ? f : "(unset)", v.active.c_str(), expect.c_str());
        }
    }
    report(ok, "dispatch MOE_FORCE_ISA", ok ? seen : detail);
}

}  // namespace kt

#include "model/forward.h"

#include <cstdlib>
#include <string>

namespace moe {

Bug injected_bug() {
    const char* v = std::getenv("MOE_INJECT_BUG");
    if (!v || !*v) return Bug::None;
    const std::string s(v);
    if (s == "route_normed") return Bug::RouteNormed;
    if (s == "rope_on_nope") return Bug::RopeOnNope;
    if (s == "window_off_by_one") return Bug::WindowOffByOne;
    if (s == "softmax_gating") return Bug::SoftmaxGating;
    if (s == "no_renorm") return Bug::NoRenorm;
    if (s == "kquant_scale") return Bug::KquantScale;
    return Bug::None;
}

uint32_t perturb_seed() {
    const char* v = std::getenv("MOE_PERTURB");
    return v && *v ? static_cast<uint32_t>(std::strtoul(v, nullptr, 10)) : 0;
}

ForwardState::ForwardState(const HParams& hp, uint32_t n_ctx, uint32_t n_batch, std::shared_ptr<ThreadPool> p)
    : pool_owner(std::move(p)),
      pool(*pool_owner),
      ks(injected_bug() == Bug::KquantScale ? kernels::with_kquant_scale_bug(kernels::active()) : kernels::active()),
      mm(pool, ks),
      kv(hp, n_ctx, n_batch),
      bug(injected_bug()),
      expert_counts(static_cast<size_t>(hp.n_layer) * hp.n_expert, 0) {
    mm.set_perturb(perturb_seed());
}

}  // namespace moe

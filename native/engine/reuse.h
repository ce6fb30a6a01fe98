// Planning KV-cache reuse across edits: given the tokens a session holds and a new prompt, which
// runs of the new prompt can take their K/V entries from the cache (kept in place or moved from
// another position) and which must be evaluated. Pure functions over token ids; Session::prefill
// carries the plan out.
//
// The plan always keeps the longest common prefix exactly. With Mode::Moves it then walks the new
// prompt left to right and, wherever a run of at least `min_run` tokens also appears in the cache
// (at any position: insertions, deletions, replacements and reordered chunks all work), reuses
// that run. Reused runs that follow evaluated tokens or come from a different place than the run
// before them start with `boundary` evaluated tokens, so the tokens right after an edit see it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct ReusePolicy {
    enum class Mode { None, Prefix, Moves };
    Mode mode = Mode::Moves;
    uint32_t min_run = 8;   // shortest cached run worth moving (>= 1)
    uint32_t boundary = 2;  // tokens evaluated at the start of a moved run after a discontinuity
};

// Parses "none" | "prefix" | "moves"; false for anything else.
bool parse_reuse_mode(const std::string& s, ReusePolicy::Mode* out);

struct ReuseSegment {
    uint32_t dst = 0;  // first position in the new prompt
    uint32_t len = 0;
    int64_t src = -1;  // first cached position it comes from; -1: evaluate these tokens
};

struct ReusePlan {
    // Contiguous, in dst order, covering [0, n). The first segment is the kept prefix when
    // n_prefix > 0 (src == dst == 0).
    std::vector<ReuseSegment> segments;
    uint32_t n_prefix = 0;      // tokens kept exactly
    uint32_t n_moved = 0;       // tokens taken from the cache other than the prefix
    uint32_t n_evaluated = 0;   // tokens to evaluate
    uint32_t n_moved_runs = 0;  // segments with src >= 0 other than the prefix
};

// `cached` (n_cached ids) is what the session holds; `tokens` (n ids, n >= 1) the new prompt.
// Cached positions below `src_lo` are not available as move sources (a sliding-window ring no
// longer holds them); `max_prefix` caps the kept prefix (a ring may not allow truncating to any
// point). When `eval_last` is set the last token is always evaluated (its logits are needed).
ReusePlan plan_reuse(const int32_t* cached, size_t n_cached, const int32_t* tokens, size_t n, const ReusePolicy& policy, size_t src_lo,
                     size_t max_prefix, bool eval_last);

// A one-line description for logs: "prefix 120, move 40@+3, eval 5, ...".
std::string describe_plan(const ReusePlan& plan);

}  // namespace moe

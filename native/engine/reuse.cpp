// Reuse planning (see reuse.h).
#include "engine/reuse.h"

#include <algorithm>
#include <unordered_map>

#include "core/common.h"

namespace moe {

bool parse_reuse_mode(const std::string& s, ReusePolicy::Mode* out) {
    if (s == "none")
        *out = ReusePolicy::Mode::None;
    else if (s == "prefix")
        *out = ReusePolicy::Mode::Prefix;
    else if (s == "moves")
        *out = ReusePolicy::Mode::Moves;
    else
        return false;
    return true;
}

namespace {

uint64_t gram_hash(const int32_t* t, size_t k) {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < k; ++i) {
        h ^= static_cast<uint32_t>(t[i]);
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    return h;
}

void push_segment(std::vector<ReuseSegment>& segs, uint32_t dst, uint32_t len, int64_t src) {
    if (len == 0) return;
    if (!segs.empty()) {
        ReuseSegment& last = segs.back();
        const bool both_eval = last.src < 0 && src < 0;
        const bool continues = last.src >= 0 && src >= 0 && last.src + last.len == src && last.dst + last.len == dst;
        if (both_eval || continues) {
            last.len += len;
            return;
        }
    }
    segs.push_back({dst, len, src});
}

}  // namespace

ReusePlan plan_reuse(const int32_t* cached, size_t n_cached, const int32_t* tokens, size_t n, const ReusePolicy& policy, size_t src_lo,
                     size_t max_prefix, bool eval_last) {
    ReusePlan plan;
    if (n == 0) return plan;
    size_t L = 0;
    if (policy.mode != ReusePolicy::Mode::None) {
        const size_t m = std::min(n_cached, n);
        while (L < m && cached[L] == tokens[L]) ++L;
    }
    L = std::min(L, max_prefix);
    if (eval_last) L = std::min(L, n - 1);

    std::vector<ReuseSegment> raw;
    push_segment(raw, 0, static_cast<uint32_t>(L), 0);
    if (policy.mode != ReusePolicy::Mode::Moves) {
        push_segment(raw, static_cast<uint32_t>(L), static_cast<uint32_t>(n - L), -1);
    } else {
        const size_t min_run = std::max<uint32_t>(1, policy.min_run);
        const size_t k = std::min<size_t>(min_run, 8);
        const size_t lo = std::max(src_lo, L);  // cached runs before L are the prefix itself
        std::unordered_map<uint64_t, std::vector<uint32_t>> index;
        if (n_cached >= lo + k) {
            index.reserve(n_cached - lo);
            for (size_t i = lo; i + k <= n_cached; ++i) index[gram_hash(cached + i, k)].push_back(static_cast<uint32_t>(i));
        }
        auto match = [&](size_t i, size_t j) {
            size_t len = 0;
            while (i + len < n_cached && j + len < n && cached[i + len] == tokens[j + len]) ++len;
            return len;
        };
        size_t j = L, expect = L;
        while (j < n) {
            size_t best_len = 0, best_src = 0;
            if (expect >= lo && expect < n_cached) {
                best_len = match(expect, j);
                best_src = expect;
            }
            if (best_len < min_run && j + k <= n) {
                best_len = 0;
                auto it = index.find(gram_hash(tokens + j, k));
                if (it != index.end()) {
                    // Candidates sorted by position: look at those nearest the expected source
                    // first, at most 256 of them, so repetitive code stays cheap.
                    const std::vector<uint32_t>& c = it->second;
                    const size_t mid = static_cast<size_t>(std::lower_bound(c.begin(), c.end(), static_cast<uint32_t>(expect)) - c.begin());
                    size_t a = mid, b = mid;  // expanding window [a, b)
                    for (int tries = 0; tries < 256 && (a > 0 || b < c.size()); ++tries) {
                        size_t cand;
                        const bool take_right = b < c.size() && (a == 0 || c[b] - expect <= expect - c[a - 1]);
                        if (take_right)
                            cand = c[b++];
                        else
                            cand = c[--a];
                        const size_t len = match(cand, j);
                        if (len > best_len) {
                            best_len = len;
                            best_src = cand;
                        }
                    }
                }
            }
            if (best_len >= min_run) {
                push_segment(raw, static_cast<uint32_t>(j), static_cast<uint32_t>(best_len), static_cast<int64_t>(best_src));
                j += best_len;
                expect = best_src + best_len;
            } else {
                push_segment(raw, static_cast<uint32_t>(j), 1, -1);
                ++j;
            }
        }
    }

    // Boundaries: a reused run that does not continue what precedes it in the cache starts with
    // `boundary` evaluated tokens; the last token is evaluated when its logits are needed.
    std::vector<ReuseSegment>& out = plan.segments;
    for (size_t s = 0; s < raw.size(); ++s) {
        ReuseSegment seg = raw[s];
        const bool is_prefix = s == 0 && seg.src == 0 && seg.dst == 0 && L > 0;
        if (seg.src >= 0 && !is_prefix) {
            uint32_t cut = std::min(seg.len, policy.boundary);
            push_segment(out, seg.dst, cut, -1);
            seg.dst += cut;
            seg.src += cut;
            seg.len -= cut;
            if (eval_last && seg.len > 0 && seg.dst + seg.len == n) {
                seg.len -= 1;
                push_segment(out, seg.dst, seg.len, seg.src);
                push_segment(out, static_cast<uint32_t>(n - 1), 1, -1);
                continue;
            }
        }
        push_segment(out, seg.dst, seg.len, seg.src);
    }
    for (size_t s = 0; s < out.size(); ++s) {
        const ReuseSegment& seg = out[s];
        if (seg.src < 0)
            plan.n_evaluated += seg.len;
        else if (s == 0 && seg.dst == 0 && seg.src == 0)
            plan.n_prefix = seg.len;
        else {
            plan.n_moved += seg.len;
            plan.n_moved_runs += 1;
        }
    }
    return plan;
}

std::string describe_plan(const ReusePlan& plan) {
    std::string s;
    for (const ReuseSegment& seg : plan.segments) {
        if (!s.empty()) s += ", ";
        if (seg.src < 0)
            s += strfmt("eval %u", seg.len);
        else if (seg.src == seg.dst && seg.dst == 0)
            s += strfmt("prefix %u", seg.len);
        else
            s += strfmt("move %u@%+lld", seg.len, static_cast<long long>(seg.dst) - static_cast<long long>(seg.src));
    }
    return s;
}

}  // namespace moe

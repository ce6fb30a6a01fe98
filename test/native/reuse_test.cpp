// Reuse planning tests (native/engine/reuse.*): the plans for typical edits (append, typing
// mid-prompt, inserted and deleted lines, a dropped chunk, reordered chunks, a cold cache), the
// policy knobs, the prefix cap and unavailable sources, and plan invariants on random edits.
// Last line: "reuse: N passed, M failed".
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/reuse.h"
#include "check.h"

using namespace moe;

using Tokens = std::vector<int32_t>;

static Tokens seq(int32_t from, size_t n) {
    Tokens t(n);
    for (size_t i = 0; i < n; ++i) t[i] = from + static_cast<int32_t>(i);
    return t;
}
static Tokens cat(std::initializer_list<Tokens> parts) {
    Tokens out;
    for (const Tokens& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

static ReusePlan plan(const Tokens& cached, const Tokens& fresh, ReusePolicy pol = {}, size_t src_lo = 0, size_t max_prefix = SIZE_MAX,
                      bool eval_last = true) {
    return plan_reuse(cached.data(), cached.size(), fresh.data(), fresh.size(), pol, src_lo, max_prefix, eval_last);
}

// Every plan covers [0, n) in order, its sources hold the same tokens, and the counts add up.
static bool valid(const Tokens& cached, const Tokens& fresh, const ReusePlan& p, bool eval_last = true) {
    uint32_t pos = 0, ev = 0, mv = 0, pre = 0;
    for (size_t s = 0; s < p.segments.size(); ++s) {
        const ReuseSegment& g = p.segments[s];
        if (g.dst != pos || g.len == 0) return false;
        if (g.src >= 0) {
            for (uint32_t i = 0; i < g.len; ++i)
                if (static_cast<size_t>(g.src) + i >= cached.size() || cached[g.src + i] != fresh[g.dst + i]) return false;
            if (s == 0 && g.src == 0)
                pre += g.len;
            else
                mv += g.len;
        } else {
            ev += g.len;
        }
        pos += g.len;
    }
    if (pos != fresh.size()) return false;
    if (eval_last && p.segments.back().src >= 0) return false;
    return ev == p.n_evaluated && mv == p.n_moved && pre == p.n_prefix;
}

static void test_append() {
    const Tokens a = seq(100, 50), b = cat({a, seq(500, 7)});
    ReusePlan p = plan(a, b);
    CHECK(valid(a, b, p));
    CHECK(p.n_prefix == 50 && p.n_evaluated == 7 && p.n_moved == 0);
    // the same prompt again: everything but the last token is kept
    p = plan(b, b);
    CHECK(valid(b, b, p) && p.n_prefix == 56 && p.n_evaluated == 1);
    // without eval_last the whole prompt is kept
    p = plan(b, b, {}, 0, SIZE_MAX, false);
    CHECK(valid(b, b, p, false) && p.n_prefix == 57 && p.n_evaluated == 0);
    // a shorter prompt that is a prefix of the cache
    p = plan(b, a);
    CHECK(valid(b, a, p) && p.n_prefix == 49 && p.n_evaluated == 1);
}

static void test_insertion() {
    // a line inserted mid-prompt: the tail moves right
    const Tokens head = seq(100, 40), tail = seq(1000, 60), ins = seq(5000, 5);
    const Tokens before = cat({head, tail}), after = cat({head, ins, tail});
    ReusePlan p = plan(before, after);
    CHECK(valid(before, after, p));
    CHECK(p.n_prefix == 40);
    CHECK(p.n_evaluated == 5 + 2 + 1);  // inserted, boundary, last
    CHECK(p.n_moved == 60 - 3 && p.n_moved_runs == 1);
    CHECK(describe_plan(p) == "prefix 40, eval 7, move 57@+5, eval 1");
    // prefix mode recomputes the whole tail
    ReusePolicy pre;
    pre.mode = ReusePolicy::Mode::Prefix;
    p = plan(before, after, pre);
    CHECK(valid(before, after, p) && p.n_prefix == 40 && p.n_evaluated == 65 && p.n_moved == 0);
    // none recomputes everything
    ReusePolicy none;
    none.mode = ReusePolicy::Mode::None;
    p = plan(before, after, none);
    CHECK(valid(before, after, p) && p.n_prefix == 0 && p.n_evaluated == 105);
    // boundary 0 and a larger boundary
    ReusePolicy b0;
    b0.boundary = 0;
    p = plan(before, after, b0);
    CHECK(valid(before, after, p) && p.n_evaluated == 6 && p.n_moved == 59);
    ReusePolicy b16;
    b16.boundary = 16;
    p = plan(before, after, b16);
    CHECK(valid(before, after, p) && p.n_evaluated == 5 + 16 + 1);
}

static void test_deletion_and_replacement() {
    const Tokens a = seq(100, 30), b = seq(300, 20), c = seq(700, 40);
    const Tokens before = cat({a, b, c}), deleted = cat({a, c});
    ReusePlan p = plan(before, deleted);
    CHECK(valid(before, deleted, p));
    CHECK(p.n_prefix == 30 && p.n_moved == 37 && p.n_evaluated == 3);
    CHECK(describe_plan(p) == "prefix 30, eval 2, move 37@-20, eval 1");
    // one token replaced mid-prompt: the rest stays where it was (a move of +0)
    Tokens replaced = before;
    replaced[45] = 99999;
    p = plan(before, replaced);
    CHECK(valid(before, replaced, p));
    CHECK(p.n_prefix == 45 && p.n_evaluated == 1 + 2 + 1 && p.n_moved == 90 - 46 - 3);
    // a dropped first chunk: everything moves left
    p = plan(before, cat({b, c}));
    CHECK(valid(before, cat({b, c}), p) && p.n_prefix == 0 && p.n_moved == 60 - 2 - 1);
}

static void test_reorder_and_short_runs() {
    const Tokens a = seq(100, 30), b = seq(300, 30), c = seq(700, 30);
    const Tokens before = cat({a, b, c}), after = cat({a, c, b});
    ReusePlan p = plan(before, after);
    CHECK(valid(before, after, p));
    CHECK(p.n_prefix == 30 && p.n_moved_runs == 2 && p.n_evaluated == 2 + 2 + 1);
    // runs shorter than min_run are evaluated
    ReusePolicy big;
    big.min_run = 40;
    p = plan(before, after, big);
    CHECK(valid(before, after, p) && p.n_moved == 0 && p.n_evaluated == 60);
    // a cold cache: everything is evaluated
    const Tokens other = seq(9000, 80);
    p = plan(other, before);
    CHECK(valid(other, before, p) && p.n_evaluated == 90);
    p = plan({}, before);
    CHECK(valid({}, before, p) && p.n_evaluated == 90);
}

static void test_limits() {
    const Tokens head = seq(100, 40), tail = seq(1000, 60), ins = seq(5000, 5);
    const Tokens before = cat({head, tail}), after = cat({head, ins, tail});
    // sources below src_lo are unavailable: only the part of the tail at >= 70 can move
    ReusePlan p = plan(before, after, {}, 70);
    CHECK(valid(before, after, p));
    CHECK(p.n_moved == 30 - 3 && p.n_prefix == 40);
    // the kept prefix is capped (a ring that cannot truncate there); cached runs right after it
    // that are still available continue it
    p = plan(before, after, {}, 0, 10);
    CHECK(valid(before, after, p) && p.n_prefix == 40);
    p = plan(before, after, {}, 70, 10);
    CHECK(valid(before, after, p) && p.n_prefix == 10 && p.n_moved == 27 && p.n_evaluated == 68);
    p = plan(before, after, {}, 0, 0);
    CHECK(valid(before, after, p) && p.n_prefix == 0);
    // a one-token prompt
    p = plan(before, {100});
    CHECK(valid(before, {100}, p) && p.n_evaluated == 1);
}

// Random edit scripts: plans stay valid, and a small edit leaves most tokens reused.
static void test_random_edits() {
    std::mt19937 rng(7);
    int ok = 0, total = 0, reused_ok = 0;
    for (int it = 0; it < 300; ++it) {
        Tokens before(200 + rng() % 800);
        for (int32_t& t : before) t = static_cast<int32_t>(rng() % 50);  // repetitive, like code
        Tokens after = before;
        const int kind = static_cast<int>(rng() % 3);
        const size_t at = rng() % after.size();
        const size_t len = 1 + rng() % 20;
        if (kind == 0)
            after.insert(after.begin() + static_cast<long>(at), len, 77);
        else if (kind == 1)
            after.erase(after.begin() + static_cast<long>(at), after.begin() + static_cast<long>(std::min(after.size(), at + len)));
        else
            after[at] = 88;
        if (after.empty()) continue;
        ReusePolicy pol;
        pol.min_run = 1 + rng() % 16;
        pol.boundary = rng() % 5;
        const ReusePlan p = plan(before, after, pol);
        ++total;
        if (valid(before, after, p)) ++ok;
        if (p.n_evaluated <= len + pol.boundary + 1 + 2 * pol.min_run + 2) ++reused_ok;
    }
    CHECK(ok == total);
    CHECK(reused_ok * 10 >= total * 9);
    std::printf("random edits: %d/%d valid, %d/%d mostly reused\n", ok, total, reused_ok, total);
}

int main() {
    test_append();
    test_insertion();
    test_deletion_and_replacement();
    test_reorder_and_short_runs();
    test_limits();
    test_random_edits();
    std::printf("reuse: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

// A KV-cache session: batched prompt evaluation through the model's architecture, decoding,
// truncation, and the reuse of cached entries across edits (moves; see reuse.h).
#include "engine/session.h"

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <string>

#include "core/common.h"
#include "core/threadpool.h"
#include "model/forward.h"
#include "model/rope.h"

namespace moe {

// The forward state (model/forward.h) plus what moving cached entries needs.
struct Session::Impl : ForwardState {
    Impl(const Model& m, const SessionParams& p)
        : ForwardState(m.hparams(), p.n_ctx, p.n_batch, p.pool ? p.pool : std::make_shared<ThreadPool>(p.n_threads)), hp(m.hparams()) {}

    const HParams& hp;
    // Rows of the move sources that later writes would overwrite, per layer, in segment order.
    std::vector<std::vector<uint16_t>> snap_k, snap_v;

    // Copies the rows of `segs` (cached positions src..src+len) into the snapshot.
    void snapshot(const std::vector<const ReuseSegment*>& segs) {
        const size_t NKV = kv.row();
        size_t rows = 0;
        for (const ReuseSegment* g : segs) rows += g->len;
        snap_k.resize(hp.n_layer);
        snap_v.resize(hp.n_layer);
        pool.parallel_for(hp.n_layer, 1, [&](int64_t b, int64_t e, int) {
            for (int64_t il = b; il < e; ++il) {
                snap_k[il].resize(rows * NKV);
                snap_v[il].resize(rows * NKV);
                size_t r = 0;
                for (const ReuseSegment* g : segs)
                    for (uint32_t i = 0; i < g->len; ++i, ++r) {
                        const size_t slot = static_cast<size_t>(g->src + i) % kv.capacity(il);
                        std::memcpy(&snap_k[il][r * NKV], kv.k(il) + slot * NKV, NKV * sizeof(uint16_t));
                        std::memcpy(&snap_v[il][r * NKV], kv.v(il) + slot * NKV, NKV * sizeof(uint16_t));
                    }
            }
        });
    }
    void drop_snapshot() {
        snap_k.clear();
        snap_v.clear();
    }

    // Writes the entries of `g` at positions dst.. from the snapshot (rows from snap_row on) or,
    // when snap_row < 0, from the cache itself (then src >= dst, so reading ahead of the writes is
    // safe). Keys on RoPE layers are rotated by dst - src. Sliding-window layers skip entries no
    // position >= q_next can see.
    void place(const ReuseSegment& g, int64_t snap_row, uint32_t q_next) {
        const size_t NKV = kv.row();
        const int D = static_cast<int>(hp.n_embd_head_k);
        const int n_head_kv = static_cast<int>(hp.n_head_kv);
        const int32_t delta = static_cast<int32_t>(static_cast<int64_t>(g.dst) - g.src);
        pool.parallel_for(hp.n_layer, 1, [&](int64_t b, int64_t e, int) {
            std::vector<float> row(NKV);
            float cs[512], sn[512];
            for (int64_t il = b; il < e; ++il) {
                const uint32_t c = kv.capacity(il);
                const bool rotate = delta != 0 && (hp.use_rope[il] || bug == Bug::RopeOnNope);
                if (rotate) rope_angles(D, delta, hp.rope_base(il), cs, sn);
                uint16_t* kc = kv.k(il);
                uint16_t* vc = kv.v(il);
                for (uint32_t i = 0; i < g.len; ++i) {
                    const uint32_t p = g.dst + i;
                    if (hp.is_swa[il] && static_cast<uint64_t>(p) + hp.n_swa <= q_next) continue;  // out of every later window
                    const uint16_t* ksrc;
                    const uint16_t* vsrc;
                    if (snap_row >= 0) {
                        ksrc = &snap_k[il][(static_cast<size_t>(snap_row) + i) * NKV];
                        vsrc = &snap_v[il][(static_cast<size_t>(snap_row) + i) * NKV];
                    } else {
                        const size_t slot = static_cast<size_t>(g.src + i) % c;
                        ksrc = kc + slot * NKV;
                        vsrc = vc + slot * NKV;
                    }
                    uint16_t* kd = kc + (static_cast<size_t>(p) % c) * NKV;
                    uint16_t* vd = vc + (static_cast<size_t>(p) % c) * NKV;
                    if (kd != ksrc) std::memmove(kd, ksrc, NKV * sizeof(uint16_t));
                    if (vd != vsrc) std::memmove(vd, vsrc, NKV * sizeof(uint16_t));
                    if (rotate) {
                        for (size_t d = 0; d < NKV; ++d) row[d] = fp16_to_fp32(kd[d]);
                        rope(row.data(), n_head_kv, D, cs, sn);
                        ks.of(DType::F16).from_f32(row.data(), kd, static_cast<int64_t>(NKV));
                    }
                }
            }
        });
    }
};

Session::Session(const Model& model, const SessionParams& params) : model_(model), params_(params) {
    if (params_.n_ctx == 0) params_.n_ctx = 1;
    if (params_.n_batch == 0) params_.n_batch = 1;
    if (params_.n_ctx > (1u << 24)) throw Error("bad_input", strfmt("context size %u is too large", params_.n_ctx));
    params_.n_batch = std::min(params_.n_batch, params_.n_ctx);
    if (!model.arch())
        throw Error("bad_input", "the model was loaded for its vocabulary only (vocabOnly); load it fully to evaluate tokens");
    impl_ = std::make_unique<Impl>(model, params_);
}

Session::~Session() = default;

Session::ReluStats Session::reglu_stats() const {
    return {impl_->reglu_zero, impl_->reglu_total, impl_->moe.bytes_read, impl_->reglu_zero_layer, impl_->reglu_total_layer};
}

const std::vector<uint64_t>& Session::expert_counts() const { return impl_->expert_counts; }

size_t Session::kv_bytes() const { return impl_->kv.bytes(); }

void Session::decode(const int32_t* tokens, size_t n, LogitsMode mode, std::vector<float>& out, const std::atomic<bool>* cancel) {
    const HParams& hp = model_.hparams();
    if (n == 0) throw Error("bad_input", "nothing to evaluate: the token list is empty");
    for (size_t i = 0; i < n; ++i) {
        if (tokens[i] < 0 || static_cast<uint32_t>(tokens[i]) >= hp.n_vocab)
            throw Error("bad_input",
                        strfmt("token id %d at index %zu is out of range (the vocabulary has %u tokens)", tokens[i], i, hp.n_vocab));
    }
    if (n_past() + n > params_.n_ctx) {
        throw Error("bad_input",
                    strfmt("%zu tokens do not fit the context: %u of %u positions are already used", n, n_past(), params_.n_ctx));
    }
    out.clear();
    const size_t nb = params_.n_batch;
    for (size_t start = 0; start < n; start += nb) {
        if (cancel && cancel->load()) throw Error("cancelled", "evaluation was cancelled");
        const size_t cnt = std::min(nb, n - start);
        std::vector<int64_t> rows;
        if (mode == LogitsMode::All) {
            for (size_t i = 0; i < cnt; ++i) rows.push_back(static_cast<int64_t>(i));
        } else if (mode == LogitsMode::Last && start + cnt == n) {
            rows.push_back(static_cast<int64_t>(cnt - 1));
        }
        const size_t off = out.size();
        out.resize(off + rows.size() * hp.n_vocab);
        has_logits_ = false;
        model_.fit_expert_cache(cnt);  // (under a memory budget: the expert cache sized to what the process leaves)
        model_.arch()->forward(*impl_,
                               Batch{tokens + start, static_cast<int64_t>(cnt), static_cast<int32_t>(n_past()), rows, out.data() + off});
        tokens_.insert(tokens_.end(), tokens + start, tokens + start + cnt);
    }
    if (mode != LogitsMode::None && out.size() >= hp.n_vocab) {
        last_logits_.assign(out.end() - hp.n_vocab, out.end());
        has_logits_ = true;
    }
}

PrefillStats Session::prefill(const int32_t* tokens, size_t n, const ReusePolicy& policy, const std::atomic<bool>* cancel) {
    using Clock = std::chrono::steady_clock;
    const auto ms = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    const auto t0 = Clock::now();
    const HParams& hp = model_.hparams();
    if (n == 0) throw Error("bad_input", "nothing to evaluate: the token list is empty");
    for (size_t i = 0; i < n; ++i) {
        if (tokens[i] < 0 || static_cast<uint32_t>(tokens[i]) >= hp.n_vocab)
            throw Error("bad_input",
                        strfmt("token id %d at index %zu is out of range (the vocabulary has %u tokens)", tokens[i], i, hp.n_vocab));
    }
    if (n > params_.n_ctx) throw Error("bad_input", strfmt("the prompt has %zu tokens but the context holds %u", n, params_.n_ctx));
    PrefillStats st;
    st.n_prompt = static_cast<uint32_t>(n);
    const size_t M = tokens_.size();

    // the same prompt again with its logits still here: nothing to do
    if (policy.mode != ReusePolicy::Mode::None && M == n && has_logits_ && std::equal(tokens, tokens + n, tokens_.begin())) {
        st.n_prefix = static_cast<uint32_t>(n);
        st.plan = strfmt("prefix %zu (logits cached)", n);
        st.total_ms = ms(t0, Clock::now());
        return st;
    }
    if (policy.mode == ReusePolicy::Mode::None) clear();

    // What a sliding-window ring still holds: sources below src_lo are gone, and the prefix can
    // only be kept where truncating to it is possible.
    const bool ring = impl_->kv.has_ring(params_.n_ctx);
    const size_t src_lo = ring && M > impl_->kv.min_capacity() ? M - impl_->kv.min_capacity() : 0;
    size_t common = 0;
    while (common < std::min(M, n) && tokens_[common] == tokens[common]) ++common;
    common = std::min(common, n - 1);
    const size_t max_prefix = can_truncate(static_cast<uint32_t>(common)) ? SIZE_MAX : 0;
    ReusePlan plan = plan_reuse(tokens_.data(), M, tokens, n, policy, src_lo, max_prefix, true);
    st.n_prefix = plan.n_prefix;
    st.n_moved = plan.n_moved;
    st.n_evaluated = plan.n_evaluated;
    st.n_moved_runs = plan.n_moved_runs;
    st.plan = describe_plan(plan);
    const auto t1 = Clock::now();
    st.plan_ms = ms(t0, t1);

    // Sources that writes before them would overwrite: everything in a ring, else runs moving right.
    std::vector<const ReuseSegment*> to_snap;
    std::vector<int64_t> snap_row(plan.segments.size(), -1);
    int64_t rows = 0;
    for (size_t s = 0; s < plan.segments.size(); ++s) {
        const ReuseSegment& g = plan.segments[s];
        const bool is_prefix = s == 0 && g.src == 0 && g.dst == 0 && plan.n_prefix > 0;
        if (g.src < 0 || is_prefix) continue;
        if (ring || g.src < static_cast<int64_t>(g.dst)) {
            to_snap.push_back(&g);
            snap_row[s] = rows;
            rows += g.len;
        }
    }
    if (!to_snap.empty()) impl_->snapshot(to_snap);
    if (plan.n_prefix < tokens_.size())
        truncate(plan.n_prefix);
    else if (plan.n_prefix == 0)
        clear();
    has_logits_ = false;

    double move_ms = 0, eval_ms = 0;
    std::vector<float> logits;
    // Cancelled with at most kFinishOnCancel tokens left to evaluate, the plan is carried out to
    // its end first (moves are cheap): stopping between its segments would lose the cached runs
    // not yet moved, and the next request would evaluate them all again (thousands of tokens
    // after a cursor jump, when only a few needed evaluating).
    std::vector<uint32_t> eval_after(plan.segments.size() + 1, 0);  // tokens to evaluate from segment s on
    for (size_t s = plan.segments.size(); s-- > 0;)
        eval_after[s] = eval_after[s + 1] + (plan.segments[s].src < 0 ? plan.segments[s].len : 0);
    // Several runs to evaluate between moved ones (a cursor jump: the prompt's pieces change
    // places, a few tokens at each seam): without a ring, every move first, then all of them in one
    // pass at their positions. Each still sees exactly the positions before it, as evaluated one
    // run at a time (the same bits), but the weights are read once instead of once per run: 4B
    // shapes, a jump in a 3,200-token prompt (17 tokens in 4 runs), 400-450 -> 310-350 ms here.
    // MOE_REUSE_SEQUENTIAL=1: one run at a time (tests compare the two).
    size_t eval_runs = 0;
    for (size_t s = 0; s < plan.segments.size(); ++s)
        eval_runs += plan.segments[s].src < 0 && plan.segments[s].dst >= tokens_.size() ? 1 : 0;
    const bool one_pass = !ring && eval_runs >= 2 && eval_after[0] <= params_.n_batch && !std::getenv("MOE_REUSE_SEQUENTIAL");
    // per segment: the next evaluated position after it (entries sliding-window layers must keep)
    std::vector<uint32_t> q_next(plan.segments.size());
    uint32_t next_eval = static_cast<uint32_t>(n);
    for (size_t s = plan.segments.size(); s-- > 0;) {
        q_next[s] = next_eval;
        if (plan.segments[s].src < 0) next_eval = plan.segments[s].dst;
    }
    try {
        if (one_pass) {
            if (cancel && cancel->load() && eval_after[0] > kFinishOnCancel) throw Error("cancelled", "evaluation was cancelled");
            std::vector<int32_t> ids, pos;
            for (size_t s = 0; s < plan.segments.size(); ++s) {
                const ReuseSegment& g = plan.segments[s];
                if (g.dst < tokens_.size()) continue;  // the prefix
                if (g.src >= 0) {
                    const auto a = Clock::now();
                    impl_->place(g, snap_row[s], q_next[s]);
                    move_ms += ms(a, Clock::now());
                    continue;
                }
                for (uint32_t i = 0; i < g.len; ++i) {
                    ids.push_back(tokens[g.dst + i]);
                    pos.push_back(static_cast<int32_t>(g.dst + i));
                }
            }
            const auto a = Clock::now();
            tokens_.assign(tokens, tokens + n);  // (the forward pass reads only the batch and the cache)
            std::vector<int64_t> rows{static_cast<int64_t>(ids.size()) - 1};
            last_logits_.assign(hp.n_vocab, 0.0f);
            model_.fit_expert_cache(ids.size());
            model_.arch()->forward(*impl_,
                                   Batch{ids.data(), static_cast<int64_t>(ids.size()), pos[0], rows, last_logits_.data(), pos.data()});
            has_logits_ = true;
            eval_ms += ms(a, Clock::now());
        } else {
            for (size_t s = 0; s < plan.segments.size(); ++s) {
                const ReuseSegment& g = plan.segments[s];
                if (g.dst < tokens_.size()) continue;  // the prefix
                const bool finishing = eval_after[s] <= kFinishOnCancel;
                if (cancel && cancel->load() && !finishing) throw Error("cancelled", "evaluation was cancelled");
                const auto a = Clock::now();
                if (g.src >= 0) {
                    impl_->place(g, snap_row[s], q_next[s]);
                    tokens_.insert(tokens_.end(), tokens + g.dst, tokens + g.dst + g.len);
                    move_ms += ms(a, Clock::now());
                } else {
                    const bool last = g.dst + g.len == n;
                    decode(tokens + g.dst, g.len, last ? LogitsMode::Last : LogitsMode::None, logits, finishing ? nullptr : cancel);
                    eval_ms += ms(a, Clock::now());
                }
            }
        }
    } catch (...) {
        impl_->drop_snapshot();
        if (one_pass) truncate(plan.n_prefix);  // (what is certain to be right: nothing to continue from past it)
        throw;
    }
    impl_->drop_snapshot();
    if (cancel && cancel->load()) throw Error("cancelled", "evaluation was cancelled");  // (finished first: see above)
    st.move_ms = move_ms;
    st.eval_ms = eval_ms;
    st.total_ms = ms(t0, Clock::now());
    return st;
}

bool Session::can_truncate(uint32_t n_keep) const {
    if (n_keep >= n_past() || n_keep == 0) return true;
    const HParams& hp = model_.hparams();
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        if (!hp.is_swa[il]) continue;
        const uint32_t c = impl_->kv.capacity(il);
        if (c >= params_.n_ctx) continue;  // the ring holds every position
        // the ring holds positions [n_past - c, n_past); the next position n_keep needs
        // (n_keep - n_swa, n_keep)
        const uint32_t held_lo = n_past() > c ? n_past() - c : 0;
        const uint32_t needed_lo = n_keep >= hp.n_swa ? n_keep - hp.n_swa + 1 : 0;
        if (needed_lo < held_lo) return false;
    }
    return true;
}

void Session::truncate(uint32_t n_keep) {
    if (n_keep >= n_past()) return;
    if (!can_truncate(n_keep)) {
        throw Error("bad_input",
                    strfmt("cannot truncate from %u to %u positions: the sliding-window cache no longer holds them", n_past(), n_keep));
    }
    tokens_.resize(n_keep);
    has_logits_ = false;
}

void Session::clear() {
    tokens_.clear();
    has_logits_ = false;
}

}  // namespace moe

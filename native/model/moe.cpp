#include "model/moe.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>

namespace moe {

namespace {

// Expert tasks (moe_ffn): at most this many rows (tokens) per expert.
constexpr int64_t kExpertTaskRows = 4;

// down in PowerInfer's layout: down[row] = sum over neurons j (ascending) of mid[row][j] * (row j
// of the expert's matrix), skipping neurons no token of the expert activates and zero values.
// The ReGLU values are rounded as llama.cpp rounds them for a float weight type (f16/bf16: to
// that precision; f32: kept), so a float file gives llama.cpp's numbers up to summation order;
// for quantized weights they stay float (no 8-bit rounding: the weights' blocks run along
// n_embd here, so llama.cpp's layout is not reproducible anyway). Threads own column ranges
// (whole blocks), so each weight block is dequantized once per call and every sum runs in one order.
void down_by_neuron(ThreadPool& pool, const Tensor& W, MoeScratch& s, int64_t NX, int64_t n_ff, int64_t E, bool live_known) {
    const std::vector<int64_t>& off = s.offset;
    const int64_t nrows = off[NX];
    const TypeTraits tr = type_traits(W.type);
    if (tr.act_type == DType::F16 || tr.act_type == DType::BF16) {
        const bool f16 = tr.act_type == DType::F16;
        for_rows(pool, nrows, [&](int64_t row) {
            for (float* g = &s.gate[row * n_ff]; g < &s.gate[(row + 1) * n_ff]; ++g)
                *g = f16 ? fp16_to_fp32(fp32_to_fp16(*g)) : bf16_to_fp32(fp32_to_bf16(*g));
        });
    }
    std::fill(s.down.begin(), s.down.begin() + nrows * E, 0.0f);
    const int64_t bs = tr.block_size;
    const int64_t nblocks = E / bs;
    const int64_t nthreads = static_cast<int64_t>(pool.size());
    // column chunks: about 4 per thread, whole blocks, at least 64 columns
    const int64_t chunk_blocks = std::max<int64_t>(std::max<int64_t>(1, 64 / bs), nblocks / std::max<int64_t>(1, 4 * nthreads));
    const int64_t nchunks = (nblocks + chunk_blocks - 1) / chunk_blocks;
    s.neuron_rows.resize(static_cast<size_t>(nthreads));
    pool.parallel_for(nchunks, 1, [&](int64_t cb, int64_t ce, int thread) {
        std::vector<float>& buf = s.neuron_rows[static_cast<size_t>(thread)];
        buf.resize(static_cast<size_t>(chunk_blocks * bs));
        for (int64_t c = cb; c < ce; ++c) {
            const int64_t b0 = c * chunk_blocks, b1 = std::min(nblocks, b0 + chunk_blocks);
            const int64_t d0 = b0 * bs, nd = (b1 - b0) * bs;
            for (int64_t e = 0; e < NX; ++e) {
                const int64_t nr = off[e + 1] - off[e];
                if (nr == 0) continue;
                const std::vector<int32_t>* live = live_known ? &s.live[static_cast<size_t>(e)] : nullptr;
                const int64_t nj = live ? static_cast<int64_t>(live->size()) : n_ff;
                for (int64_t jj = 0; jj < nj; ++jj) {
                    const int64_t j = live ? (*live)[static_cast<size_t>(jj)] : jj;
                    bool any = false;
                    for (int64_t t = 0; t < nr && !any; ++t) any = s.gate[(off[e] + t) * n_ff + j] != 0.0f;
                    if (!any) continue;
                    tr.to_float(W.row(j, e) + static_cast<size_t>(b0) * tr.type_size, buf.data(), nd);
                    for (int64_t t = 0; t < nr; ++t) {
                        const float a = s.gate[(off[e] + t) * n_ff + j];
                        if (a == 0.0f) continue;
                        float* y = &s.down[(off[e] + t) * E + d0];
                        for (int64_t d = 0; d < nd; ++d) y[d] += a * buf[static_cast<size_t>(d)];
                    }
                }
            }
        }
    });
}

// The neurons some of an expert's nr rows of gate values (n_ff each) activate (gate > 0), ascending.
void live_neurons(const float* g, int64_t nr, int64_t n_ff, std::vector<int32_t>& lr) {
    lr.clear();
    for (int64_t i = 0; i < n_ff; ++i) {
        bool on = false;
        for (int64_t t = 0; t < nr; ++t) on |= g[t * n_ff + i] > 0.0f;
        if (on) lr.push_back(static_cast<int32_t>(i));
    }
}

// The weight bytes one expert's gate, up and down read (live: its active neurons when the
// layouts read only those, else nullptr).
uint64_t expert_bytes(const ExpertWeights& w, const std::vector<int32_t>* live, int64_t E, int64_t n_ff) {
    const uint64_t nlive = live ? live->size() : static_cast<uint64_t>(n_ff);
    uint64_t bytes = w.gate.matrix_bytes();
    bytes += w.up.layout != Layout::Rows16 ? nlive * w.up.nb1 : w.up.matrix_bytes();
    if (w.down.layout == Layout::NeuronMajor) {
        uint64_t blocks = 0;
        for (size_t i = 0; i < live->size(); ++i) blocks += i == 0 || (*live)[i] / 32 != (*live)[i - 1] / 32;
        bytes += nlive * static_cast<uint64_t>(E) / 2 + blocks * 2 * static_cast<uint64_t>(E);
    } else {
        bytes += w.down_by_neuron ? nlive * w.down.nb1 : w.down.matrix_bytes();
    }
    return bytes;
}

// ReGLU in place over n values: g = g > 0 ? g * up : 0. Returns how many relu silenced.
uint64_t reglu(float* g, const float* up, int64_t n) {
    uint64_t z = 0;
    for (int64_t i = 0; i < n; ++i) {
        const bool on = g[i] > 0.0f;
        z += on ? 0 : 1;
        g[i] = on ? g[i] * up[i] : 0.0f;
    }
    return z;
}

}  // namespace

void route(ThreadPool& pool, const float* logits, int64_t n, int64_t n_expert, int64_t k, Gating gating, bool renormalize, Routing& out,
           MoeScratch& s, uint64_t* counts) {
    const int64_t NX = n_expert, K = k;
    out.k = K;
    out.experts.resize(static_cast<size_t>(n * K));
    out.weights.resize(static_cast<size_t>(n * K));
    s.probs.resize(static_cast<size_t>(n * NX));
    s.order.resize(static_cast<size_t>(n * NX));
    for_rows(pool, n, [&](int64_t t) {
        float* probs = &s.probs[static_cast<size_t>(t * NX)];
        int32_t* order = &s.order[static_cast<size_t>(t * NX)];
        const float* r = logits + t * NX;
        if (gating == Gating::Sigmoid) {
            for (int64_t e = 0; e < NX; ++e) probs[e] = 1.0f / (1.0f + std::exp(-r[e]));
        } else {
            float mx = -INFINITY;
            for (int64_t e = 0; e < NX; ++e) mx = std::max(mx, r[e]);
            double sum = 0.0;
            for (int64_t e = 0; e < NX; ++e) {
                probs[e] = std::exp(r[e] - mx);
                sum += probs[e];
            }
            const float inv = static_cast<float>(1.0 / sum);
            for (int64_t e = 0; e < NX; ++e) probs[e] *= inv;
        }
        // Expert choice as ggml_argsort_top_k does it: std::sort of the ids 0..n-1 with
        // "greater probability first", so exact ties (e.g. sigmoids saturated at 1.0f) would
        // break the same way as in llama.cpp.
        std::iota(order, order + NX, 0);
        std::sort(order, order + NX, [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
        double wsum = 0.0;
        for (int64_t j = 0; j < K; ++j) wsum += probs[order[j]];
        const float ws = renormalize ? std::max(static_cast<float>(wsum), 6.103515625e-5f) : 1.0f;
        for (int64_t j = 0; j < K; ++j) {
            out.experts[static_cast<size_t>(t * K + j)] = order[j];
            out.weights[static_cast<size_t>(t * K + j)] = probs[order[j]] / ws;
        }
    });
    if (counts)
        for (int64_t i = 0; i < n * K; ++i) counts[out.experts[static_cast<size_t>(i)]] += 1;
}

namespace {
// The distinct experts of r's first n tokens, ascending, at most `max` of them, into s.active.
void distinct_experts(const Routing& r, int64_t n, int64_t n_expert, size_t max, MoeScratch& s) {
    s.wanted.assign(static_cast<size_t>(n_expert), 0);
    for (int64_t i = 0; i < n * r.k; ++i) s.wanted[static_cast<size_t>(r.experts[static_cast<size_t>(i)])] = 1;
    s.active.clear();
    for (int64_t e = 0; e < n_expert && s.active.size() < max; ++e)
        if (s.wanted[static_cast<size_t>(e)]) s.active.push_back(static_cast<int32_t>(e));
}
}  // namespace

void prefetch_experts(const ExpertWeights& w, const Routing& r, int64_t n, MoeScratch& s) {
    if (!w.cache) return;
    distinct_experts(r, n, w.gate.ne[2], w.cache->capacity(), s);
    w.cache->prefetch(w.layer, s.active.data(), s.active.size());
}

void prefetch_guess(const ExpertWeights& next, const Routing& guess, int64_t n, MoeScratch& s) {
    if (!next.cache) return;
    const int64_t NX = next.gate.ne[2];
    if (static_cast<int64_t>(next.cache->capacity()) < 4 * std::min(NX, n * guess.k)) return;
    distinct_experts(guess, n, NX, static_cast<size_t>(NX), s);
    next.cache->guess(next.layer, s.active.data(), s.active.size());
}

uint64_t moe_ffn(MatMul& mm, ThreadPool& pool, const ExpertWeights& w, const float* h, int64_t n, int64_t n_embd, const Routing& r,
                 float* x, MoeScratch& s, PhaseProfile& prof) {
    const int64_t E = n_embd, K = r.k, NX = w.gate.ne[2], n_ff = w.gate.ne[1];
    // (token, choice) pairs routed to each expert, so that an expert's tokens are processed together
    for (auto& b : s.by_expert) b.clear();
    s.by_expert.resize(static_cast<size_t>(NX));
    for (int64_t t = 0; t < n; ++t)
        for (int64_t j = 0; j < K; ++j) s.by_expert[r.experts[static_cast<size_t>(t * K + j)]].emplace_back(t, j);
    // Every expert's tokens together, each phase of all experts in one batch of jobs: gate, then
    // up for the neurons relu keeps, then down.
    std::vector<int64_t>& off = s.offset;
    off.assign(static_cast<size_t>(NX) + 1, 0);
    for (int64_t e = 0; e < NX; ++e) off[e + 1] = off[e] + static_cast<int64_t>(s.by_expert[e].size());
    const int64_t nrows = off[NX];  // n * K
    s.in.resize(static_cast<size_t>(nrows * E));
    s.gate.resize(static_cast<size_t>(nrows * n_ff));
    s.up.resize(static_cast<size_t>(nrows * n_ff));
    s.down.resize(static_cast<size_t>(nrows * E));
    s.row_token.resize(static_cast<size_t>(nrows));
    s.row_of.resize(static_cast<size_t>(nrows));
    for (int64_t e = 0; e < NX; ++e)
        for (int64_t i = 0; i < off[e + 1] - off[e]; ++i) s.row_token[static_cast<size_t>(off[e] + i)] = s.by_expert[e][i].first;
    for_rows(pool, nrows,
             [&](int64_t row) { std::memcpy(&s.in[row * E], h + s.row_token[static_cast<size_t>(row)] * E, sizeof(float) * E); });
    prof.lap(PhaseProfile::Route);

    const bool sparse_up = w.up.layout != Layout::Rows16;
    const bool need_live = sparse_up || w.down.layout == Layout::NeuronMajor;
    s.live.resize(static_cast<size_t>(NX));
    const Acts ain = mm.convert(w.gate, s.in.data(), nrows, E, s.act_in);
    const Acts aup = w.up.type == w.gate.type ? ain : mm.convert(w.up, s.in.data(), nrows, E, s.act_mid);
    std::atomic<uint64_t> zeros{0};

    s.active.clear();
    for (int64_t e = 0; e < NX; ++e)
        if (off[e + 1] > off[e]) s.active.push_back(static_cast<int32_t>(e));
    const int64_t n_active = static_cast<int64_t>(s.active.size());
    // An expert's gate (0), up (1) or down (2): in place, or its extent in the expert cache.
    const auto mat = [&](int which, int64_t e) -> std::pair<const Tensor*, int64_t> {
        if (!w.cache) return {which == 0 ? &w.gate : which == 1 ? &w.up : &w.down, e};
        return {&s.views[static_cast<size_t>(3 * s.view_of[static_cast<size_t>(e)] + which)], 0};
    };
    const int64_t nthreads = pool.size();

    // The experts s.active[b .. b + ng): their rows are off[first] .. off[last + 1].
    const auto run_group = [&](int64_t b, int64_t ng) {
        const int32_t* grp = &s.active[static_cast<size_t>(b)];
        const int64_t r_begin = off[grp[0]], r_end = off[grp[ng - 1] + 1];
        bool equal_rows = true;
        for (int64_t i = 1; i < ng; ++i) equal_rows = equal_rows && off[grp[i] + 1] - off[grp[i]] == off[grp[0] + 1] - off[grp[0]];
        // Few tokens (decoding): each thread runs whole experts, gate, up, ReGLU and down, with no
        // barrier between them and one weight stream per thread (an expert's matrices are one
        // extent in a layout file). Used when every expert has the same few rows and the experts
        // divide evenly among the threads, so the threads finish together; otherwise the phases
        // below, each spread over all threads. Both compute every element with the same kernel
        // on the same rows: the same bits.
        if (!w.down_by_neuron && equal_rows && (r_end - r_begin) / ng <= kExpertTaskRows && ng % nthreads == 0) {
            s.act_task.resize(static_cast<size_t>(nthreads));
            std::atomic<uint64_t> bytes{0};
            pool.parallel_for(ng, 1, [&](int64_t ib, int64_t ie, int thread) {
                for (int64_t i = ib; i < ie; ++i) {
                    const int64_t e = grp[i];
                    const int64_t r0 = off[e], nr = off[e + 1] - off[e];
                    float* g = &s.gate[r0 * n_ff];
                    const auto [wg, xg] = mat(0, e);
                    const auto [wu, xu] = mat(1, e);
                    const auto [wd, xd] = mat(2, e);
                    mm.compute_here(*wg, xg, {ain.data + ain.row_bytes * r0, ain.row_bytes}, nr, g, n_ff);
                    if (need_live) live_neurons(g, nr, n_ff, s.live[e]);
                    bytes.fetch_add(expert_bytes(w, need_live ? &s.live[e] : nullptr, E, n_ff), std::memory_order_relaxed);
                    mm.compute_here(*wu, xu, {aup.data + aup.row_bytes * r0, aup.row_bytes}, nr, &s.up[r0 * n_ff], n_ff, &s.live[e]);
                    zeros.fetch_add(reglu(g, &s.up[r0 * n_ff], nr * n_ff), std::memory_order_relaxed);
                    const Acts amid = mm.convert_here(*wd, g, nr, n_ff, s.act_task[static_cast<size_t>(thread)]);
                    mm.compute_here(*wd, xd, amid, nr, &s.down[r0 * E], E, wd->layout == Layout::NeuronMajor ? &s.live[e] : nullptr);
                }
            });
            s.bytes_read += bytes.load();
            prof.lap(PhaseProfile::Experts);
            return;
        }
        for (int64_t i = 0; i < ng; ++i) {
            const int64_t e = grp[i];
            const auto [wg, xg] = mat(0, e);
            mm.add(*wg, xg, {ain.data + ain.row_bytes * off[e], ain.row_bytes}, off[e + 1] - off[e], &s.gate[off[e] * n_ff], n_ff);
        }
        mm.run();
        prof.lap(PhaseProfile::Gate);

        // ReGLU sparsity: relu(gate) * up is 0 wherever gate <= 0, so `up` is computed only for the
        // neurons some token of the expert activates, and `down` reads only their columns when it is
        // neuron-major. Exact: the skipped products are +-0 either way, and both quantize to the same
        // 0 for `down`. (Weights relaid out 16 rows per block compute every row.)
        for (int64_t i = 0; i < ng; ++i) {
            const int64_t e = grp[i];
            if (need_live) live_neurons(&s.gate[off[e] * n_ff], off[e + 1] - off[e], n_ff, s.live[e]);
            s.bytes_read += expert_bytes(w, need_live ? &s.live[e] : nullptr, E, n_ff);
        }
        for (int64_t i = 0; i < ng; ++i) {
            const int64_t e = grp[i];
            const auto [wu, xu] = mat(1, e);
            mm.add(*wu, xu, {aup.data + aup.row_bytes * off[e], aup.row_bytes}, off[e + 1] - off[e], &s.up[off[e] * n_ff], n_ff,
                   &s.live[e]);
        }
        mm.run();
        prof.lap(PhaseProfile::Up);

        pool.parallel_for(r_end - r_begin, 4, [&](int64_t rb, int64_t re, int) {
            uint64_t z = 0;
            for (int64_t row = r_begin + rb; row < r_begin + re; ++row) z += reglu(&s.gate[row * n_ff], &s.up[row * n_ff], n_ff);
            zeros.fetch_add(z, std::memory_order_relaxed);
        });
        if (w.down_by_neuron) {
            down_by_neuron(pool, w.down, s, NX, n_ff, E, need_live);  // (never with a cache: one group)
        } else {
            const Acts amid = mm.convert(w.down, &s.gate[r_begin * n_ff], r_end - r_begin, n_ff, s.act_mid);
            for (int64_t i = 0; i < ng; ++i) {
                const int64_t e = grp[i];
                const auto [wd, xd] = mat(2, e);
                mm.add(*wd, xd, {amid.data + amid.row_bytes * (off[e] - r_begin), amid.row_bytes}, off[e + 1] - off[e], &s.down[off[e] * E],
                       E, wd->layout == Layout::NeuronMajor ? &s.live[e] : nullptr);
            }
            mm.run();
        }
        prof.lap(PhaseProfile::Down);
    };

    if (n_active == 0) {
        // (no rows: nothing to compute)
    } else if (!w.cache) {
        run_group(0, n_active);
    } else {
        // Under a memory budget: the batch's experts in groups the cache holds (ascending order,
        // each extent read at most once per group), each group held until done. When they do not
        // all fit, groups of half the cache, the next group read while this one computes.
        ExpertCache& cache = *w.cache;
        const int64_t cap = cache.capacity();
        const int64_t group = n_active <= cap ? cap : std::max<int64_t>(1, cap / 2);
        s.view_of.resize(static_cast<size_t>(NX));
        for (int64_t b = 0; b < n_active; b += group) {
            const int64_t ng = std::min(group, n_active - b);
            const int32_t* grp = &s.active[static_cast<size_t>(b)];
            s.tokens_of.resize(static_cast<size_t>(ng));
            for (int64_t i = 0; i < ng; ++i) s.tokens_of[static_cast<size_t>(i)] = static_cast<uint32_t>(off[grp[i] + 1] - off[grp[i]]);
            cache.acquire(w.layer, grp, static_cast<size_t>(ng), s.tokens_of.data());
            if (b + ng < n_active) cache.prefetch(w.layer, grp + ng, static_cast<size_t>(std::min(group, n_active - b - ng)));
            struct Release {
                ExpertCache& c;
                uint32_t layer;
                const int32_t* e;
                size_t n;
                ~Release() { c.release(layer, e, n); }
            } release{cache, w.layer, grp, static_cast<size_t>(ng)};
            s.views.clear();
            s.views.reserve(static_cast<size_t>(3 * ng));
            for (int64_t i = 0; i < ng; ++i) {
                const uint8_t* base = cache.wait(w.layer, static_cast<uint32_t>(grp[i]));
                int which = 0;
                for (const Tensor* t : {&w.gate, &w.up, &w.down}) {
                    Tensor v = *t;
                    v.data = base + w.extent_offset[which++];
                    s.views.push_back(v);
                }
                s.view_of[static_cast<size_t>(grp[i])] = i;
            }
            prof.lap(PhaseProfile::Stall);
            run_group(b, ng);
        }
    }

    // x += sum over the token's experts (in choice order) of weight * expert output
    for (int64_t e = 0; e < NX; ++e)
        for (int64_t i = 0; i < off[e + 1] - off[e]; ++i)
            s.row_of[static_cast<size_t>(s.by_expert[e][i].first * K + s.by_expert[e][i].second)] = off[e] + i;
    const float* wts = r.weights.data();
    for_rows(pool, n, [&](int64_t t) {
        float* xt = x + t * E;
        for (int64_t d = 0; d < E; ++d) {
            float acc = s.down[s.row_of[static_cast<size_t>(t * K)] * E + d] * wts[t * K];
            for (int64_t j = 1; j < K; ++j) acc += s.down[s.row_of[static_cast<size_t>(t * K + j)] * E + d] * wts[t * K + j];
            xt[d] = acc + xt[d];
        }
    });
    prof.lap(PhaseProfile::Combine);
    return zeros.load();
}

}  // namespace moe

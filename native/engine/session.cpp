// The SmallThinker forward pass over a KV-cache session (ENGINE-SPEC section 4), written as
// straight-line steps. Numerics mirror llama.cpp's CPU path so logits agree with the oracle:
// activations are converted to each weight type's paired type before the dot products, K/V
// are stored as fp16, q is rounded to fp16 before q.k, and attention weights are rounded to
// fp16 before weighting V (llama.cpp's non-flash-attention path).
#include "engine/session.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <cmath>
#include <cstring>
#include <numeric>

#include "kernels/kernels.h"
#include "core/common.h"
#include "core/threadpool.h"

namespace moe {

namespace {

size_t act_row_bytes(DType wtype, int64_t n) {
    switch (wtype) {
        case DType::F32: return static_cast<size_t>(n) * 4;
        case DType::F16:
        case DType::BF16: return static_cast<size_t>(n) * 2;
        case DType::Q8_0:
        case DType::Q4_0: return static_cast<size_t>(n / QK8_0) * sizeof(block_q8_0);
        default: throw Error("unsupported_type", strfmt("no kernels for weight type %s", type_name(static_cast<uint32_t>(wtype))));
    }
}

void convert_act(const kernels::KernelSet& ks, DType wtype, const float* x, void* dst, int64_t n) {
    switch (wtype) {
        case DType::F32: std::memcpy(dst, x, static_cast<size_t>(n) * 4); break;
        case DType::F16: ks.fp32_to_fp16_row(x, static_cast<uint16_t*>(dst), n); break;
        case DType::BF16: ks.fp32_to_bf16_row(x, static_cast<uint16_t*>(dst), n); break;
        case DType::Q8_0:
        case DType::Q4_0: ks.quantize_row_q8_0(x, static_cast<block_q8_0*>(dst), n); break;
        default: throw Error("unsupported_type", "no activation conversion for this weight type");
    }
}

inline float dot_row(const kernels::KernelSet& ks, DType wtype, int64_t n, const uint8_t* w, const void* a) {
    switch (wtype) {
        case DType::F32: return ks.dot_f32(n, reinterpret_cast<const float*>(w), static_cast<const float*>(a));
        case DType::F16: return ks.dot_f16(n, reinterpret_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a));
        case DType::BF16: return ks.dot_bf16(n, reinterpret_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a));
        case DType::Q8_0:
            return ks.dot_q8_0_q8_0(n, reinterpret_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(a));
        case DType::Q4_0:
            return ks.dot_q4_0_q8_0(n, reinterpret_cast<const block_q4_0*>(w), static_cast<const block_q8_0*>(a));
        default: return 0.0f;
    }
}

// y = x * 1/sqrt(mean(x^2) + eps) * w, as ggml_rms_norm followed by ggml_mul.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

// Deliberate bugs, injected only when MOE_INJECT_BUG names one: the fidelity tests use them to
// show that they fail for real mistakes. Never set in normal use.
enum class Bug { None, RouteNormed, RopeOnNope, WindowOffByOne, SoftmaxGating, NoRenorm };
Bug injected_bug() {
    const char* v = std::getenv("MOE_INJECT_BUG");
    if (!v || !*v) return Bug::None;
    const std::string s(v);
    if (s == "route_normed") return Bug::RouteNormed;
    if (s == "rope_on_nope") return Bug::RopeOnNope;
    if (s == "window_off_by_one") return Bug::WindowOffByOne;
    if (s == "softmax_gating") return Bug::SoftmaxGating;
    if (s == "no_renorm") return Bug::NoRenorm;
    return Bug::None;
}

// Wall time per forward-pass phase, printed to stderr when a session ends; only with
// MOE_PROFILE set (for choosing the next optimisation by measurement).
struct PhaseProfile {
    enum Phase { Qkv, Rope, Attn, Wo, Route, Gate, Up, Down, Combine, Output, N };
    bool on = std::getenv("MOE_PROFILE") != nullptr;
    double ms[N] = {};
    uint64_t tokens = 0, calls = 0;
    std::chrono::steady_clock::time_point t;
    void start() {
        if (on) t = std::chrono::steady_clock::now();
    }
    void lap(Phase p) {
        if (!on) return;
        const auto now = std::chrono::steady_clock::now();
        ms[p] += std::chrono::duration<double, std::milli>(now - t).count();
        t = now;
    }
    ~PhaseProfile() {
        if (!on || calls == 0) return;
        static const char* names[N] = {"qkv+router", "rope+kv", "attention", "wo", "route", "gate", "up", "down", "combine", "output"};
        double total = 0;
        for (double v : ms) total += v;
        std::fprintf(stderr, "[moe profile] %llu forward calls, %llu tokens, %.1f ms\n", (unsigned long long)calls, (unsigned long long)tokens, total);
        for (int i = 0; i < N; ++i) std::fprintf(stderr, "  %-11s %9.1f ms %5.1f%%\n", names[i], ms[i], total > 0 ? 100.0 * ms[i] / total : 0.0);
    }
};

}  // namespace

struct Session::Impl {
    const Model& m;
    const HParams& hp;
    std::shared_ptr<ThreadPool> pool_owner;
    ThreadPool& pool;
    const kernels::KernelSet& ks;
    uint32_t n_batch;
    Bug bug = injected_bug();
    PhaseProfile prof;

    // KV cache per layer: [cap][n_head_kv * head_dim] fp16, slot = pos % cap
    std::vector<std::unique_ptr<uint16_t[]>> k_cache, v_cache;
    std::vector<uint32_t> cap;

    // scratch (sized for n_batch tokens)
    std::vector<float> x, h, q, k, v, att, att_out, router, logits_in;
    std::vector<uint8_t> act;            // converted activations
    std::vector<float> attn_scratch;     // per thread: a tile's queries, outputs and scores
    std::vector<std::vector<std::pair<int64_t, int64_t>>> by_expert;  // (token, slot) per expert

    Impl(const Model& model, const SessionParams& p)
        : m(model),
          hp(model.hparams()),
          pool_owner(p.pool ? p.pool : std::make_shared<ThreadPool>(p.n_threads)),
          pool(*pool_owner),
          ks(kernels::active()),
          n_batch(p.n_batch) {
        const uint32_t n_ctx = p.n_ctx;
        const size_t row = hp.n_embd_k_gqa();
        k_cache.resize(hp.n_layer);
        v_cache.resize(hp.n_layer);
        cap.resize(hp.n_layer);
        for (uint32_t il = 0; il < hp.n_layer; ++il) {
            cap[il] = hp.is_swa[il] ? std::min<uint32_t>(n_ctx, hp.n_swa + n_batch) : n_ctx;
            k_cache[il].reset(new uint16_t[static_cast<size_t>(cap[il]) * row]);
            v_cache[il].reset(new uint16_t[static_cast<size_t>(cap[il]) * row]);
        }
    }

    // y[t*ldy + r] = dot(W[expert] row r, x[t*ldx ...]) for r < W.ne[1], t < nt.
    void matmul(const Tensor& W, int64_t expert, const float* xin, int64_t nt, int64_t ldx, float* y, int64_t ldy) {
        size_t arow = 0;
        const uint8_t* a = convert_rows(W, xin, nt, ldx, act, arow);
        add_job(W, expert, a, arow, nt, y, ldy);
        run_jobs();
    }

    // ---- batched matrix work: several matrices in one parallel_for (one fork/join instead of one
    // per matrix: a decode step runs ~6 per layer instead of ~18).

    // W[expert] (or its listed rows) times nt converted activation rows a (arow bytes apart):
    // y[t*ldy + r] = dot(W row r, a row t).
    struct MatJob {
        const Tensor* W;
        int64_t expert;
        const uint8_t* a;
        size_t arow;
        int64_t nt;
        float* y;
        int64_t ldy;
        const std::vector<int32_t>* rows;  // nullptr: every row
    };
    std::vector<MatJob> jobs;
    struct Chunk {
        int32_t job;
        int32_t rb, re;  // rows (or indices into job.rows)
    };
    std::vector<Chunk> chunks;

    // Converts nt activation rows (ldx floats apart) for W's type into buf; returns the rows and
    // their stride. F32 weights read the activations in place.
    const uint8_t* convert_rows(const Tensor& W, const float* xin, int64_t nt, int64_t ldx, std::vector<uint8_t>& buf, size_t& arow) {
        const int64_t K = W.ne[0];
        if (W.type == DType::F32) {
            arow = static_cast<size_t>(ldx) * sizeof(float);
            return reinterpret_cast<const uint8_t*>(xin);
        }
        arow = act_row_bytes(W.type, K);
        if (buf.size() < arow * static_cast<size_t>(nt)) buf.resize(arow * static_cast<size_t>(nt));
        uint8_t* dst = buf.data();
        const size_t stride = arow;
        if (nt >= 4) {
            pool.parallel_for(nt, 1, [&](int64_t b, int64_t e, int) {
                for (int64_t t = b; t < e; ++t) convert_act(ks, W.type, xin + t * ldx, dst + stride * t, K);
            });
        } else {
            for (int64_t t = 0; t < nt; ++t) convert_act(ks, W.type, xin + t * ldx, dst + stride * t, K);
        }
        return dst;
    }

    // A row list is dropped for relaid-out weights: their kernel computes whole groups of 16 rows.
    void add_job(const Tensor& W, int64_t expert, const uint8_t* a, size_t arow, int64_t nt, float* y, int64_t ldy, const std::vector<int32_t>* rows = nullptr) {
        if (W.x16) rows = nullptr;
        if (nt <= 0 || (rows && rows->empty())) return;
        jobs.push_back({&W, expert, a, arow, nt, y, ldy, rows});
    }

    // Runs the queued jobs in one parallel_for over row chunks of all of them, then clears the queue.
    void run_jobs() {
        chunks.clear();
        int64_t work = 0;
        for (const MatJob& j : jobs) work += (j.rows ? static_cast<int64_t>(j.rows->size()) : j.W->ne[1]) * j.nt;
        // about 8 chunks per thread, at least 8 rows each
        const int64_t target = std::max<int64_t>(1, work / (static_cast<int64_t>(pool.size()) * 8));
        for (size_t ji = 0; ji < jobs.size(); ++ji) {
            const MatJob& j = jobs[ji];
            const int64_t nrows = j.rows ? static_cast<int64_t>(j.rows->size()) : j.W->ne[1];
            // multiples of 16 rows: the matrix kernels work in tiles of 4 (partial tiles are slower)
            const int64_t step = std::max<int64_t>(16, (target / std::max<int64_t>(1, j.nt) + 15) / 16 * 16);
            for (int64_t rb = 0; rb < nrows; rb += step)
                chunks.push_back({static_cast<int32_t>(ji), static_cast<int32_t>(rb), static_cast<int32_t>(std::min(nrows, rb + step))});
        }
        pool.parallel_for(static_cast<int64_t>(chunks.size()), 1, [&](int64_t cb, int64_t ce, int) {
            for (int64_t ci = cb; ci < ce; ++ci) run_chunk(chunks[static_cast<size_t>(ci)]);
        });
        jobs.clear();
    }

    void run_chunk(const Chunk& c) {
        const MatJob& j = jobs[static_cast<size_t>(c.job)];
        const Tensor& W = *j.W;
        const int64_t K = W.ne[0];
        const uint8_t* base = W.data + static_cast<size_t>(j.expert) * W.nb2;
        // Quantized weights: the matrix kernels (bit-identical to the dots, with loads shared
        // across a tile of rows and tokens), over the chunk's rows or listed rows.
        const bool q4 = W.type == DType::Q4_0 && ks.mul_q4_0_q8_0;
        const bool q8 = W.type == DType::Q8_0 && ks.mul_q8_0_q8_0;
        if (W.x16) {
            // relaid out 16 rows per block: chunks start on multiples of 16 rows (run_jobs), and
            // add_job drops row lists for such tensors
            ks.mul_q4_0x16_q8_0(K, base + static_cast<size_t>(c.rb) * W.nb1, 16 * W.nb1, (c.re - c.rb) / 16,
                                reinterpret_cast<const block_q8_0*>(j.a), j.arow, j.nt, j.y + c.rb, j.ldy);
            return;
        }
        if (q4 || q8) {
            const int32_t* rows = j.rows ? j.rows->data() + c.rb : nullptr;
            const int64_t nr = c.re - c.rb;
            const uint8_t* w = rows ? base : base + static_cast<size_t>(c.rb) * W.nb1;
            float* y = rows ? j.y : j.y + c.rb;
            const auto* xa = reinterpret_cast<const block_q8_0*>(j.a);
            if (q4)
                ks.mul_q4_0_q8_0(K, reinterpret_cast<const block_q4_0*>(w), W.nb1, rows, nr, xa, j.arow, j.nt, y, j.ldy);
            else
                ks.mul_q8_0_q8_0(K, reinterpret_cast<const block_q8_0*>(w), W.nb1, rows, nr, xa, j.arow, j.nt, y, j.ldy);
            return;
        }
        for (int32_t i = c.rb; i < c.re; ++i) {
            const int64_t r = j.rows ? (*j.rows)[static_cast<size_t>(i)] : i;
            const uint8_t* w = base + static_cast<size_t>(r) * W.nb1;
            for (int64_t t = 0; t < j.nt; ++t) j.y[t * j.ldy + r] = dot_row(ks, W.type, K, w, j.a + j.arow * t);
        }
    }

    // activation buffers for batched jobs
    std::vector<uint8_t> act_x, act_h, act_in, act_mid;
    std::vector<float> ff_in_all, ff_gate_all, ff_up_all, ff_down_all;
    std::vector<std::vector<int32_t>> live;
    std::vector<int64_t> exp_off;
    std::vector<float> route_probs;   // per token: expert probabilities
    std::vector<int32_t> route_order; // per token: experts by probability
    std::vector<int64_t> row_of;      // (token, choice) -> row of the batched expert outputs
    std::vector<int64_t> row_token;   // row of the batched expert inputs -> token

    // fn(t) for every token: in parallel when there are enough of them.
    template <class Fn>
    void for_tokens(int64_t n, Fn&& fn) {
        if (n < 8) {
            for (int64_t t = 0; t < n; ++t) fn(t);
            return;
        }
        pool.parallel_for(n, 4, [&](int64_t b, int64_t e, int) {
            for (int64_t t = b; t < e; ++t) fn(t);
        });
    }

    // ReGLU statistics: gate values <= 0 (neurons relu silences) over all evaluated expert rows.
    uint64_t reglu_zero_ = 0, reglu_total_ = 0;

    // Tokens per attention tile: up to 16 (more queries per key row read), fewer when the
    // context is long so that a tile's scores (queries x positions) stay under 4 MB per thread,
    // and enough tiles for every thread.
    int64_t attn_tile_tokens(int64_t n, int64_t ctx, int gqa) const {
        int64_t t = 16;
        while (t > 1 && t * gqa * ctx * 4 > (int64_t{4} << 20)) t /= 2;
        while (t > 1 && ((n + t - 1) / t) * static_cast<int64_t>(hp.n_head_kv) < static_cast<int64_t>(pool.size()) * 2) t /= 2;
        return std::max<int64_t>(1, std::min(t, n));
    }

    // cos/sin of NeoX RoPE at position pos (ggml's theta recurrence), head_dim/2 pairs.
    static void rope_angles(int head_dim, int32_t pos, float freq_base, float* cs, float* sn) {
        const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(head_dim));
        float theta = static_cast<float>(pos);
        for (int i = 0; i < head_dim / 2; ++i) {
            cs[i] = std::cos(theta);
            sn[i] = std::sin(theta);
            theta *= theta_scale;
        }
    }

    // Rotates n_heads heads of head_dim by the angles of rope_angles.
    static void rope(float* v, int n_heads, int head_dim, const float* cs, const float* sn) {
        const int half = head_dim / 2;
        for (int hh = 0; hh < n_heads; ++hh) {
            float* p = v + static_cast<size_t>(hh) * head_dim;
            for (int i = 0; i < half; ++i) {
                const float x0 = p[i], x1 = p[i + half];
                p[i] = x0 * cs[i] - x1 * sn[i];
                p[i + half] = x0 * sn[i] + x1 * cs[i];
            }
        }
    }

    // ---- moving cached entries (Session::prefill)

    // Rows of the move sources that later writes would overwrite, per layer, in segment order.
    std::vector<std::vector<uint16_t>> snap_k, snap_v;

    // True when some sliding-window layer keeps a ring smaller than the context.
    bool has_ring(uint32_t n_ctx) const {
        for (uint32_t il = 0; il < hp.n_layer; ++il)
            if (cap[il] < n_ctx) return true;
        return false;
    }
    uint32_t min_cap() const { return *std::min_element(cap.begin(), cap.end()); }

    // Copies the rows of `segs` (cached positions src..src+len) into the snapshot.
    void snapshot(const std::vector<const ReuseSegment*>& segs) {
        const size_t NKV = hp.n_embd_k_gqa();
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
                        const size_t slot = static_cast<size_t>(g->src + i) % cap[il];
                        std::memcpy(&snap_k[il][r * NKV], k_cache[il].get() + slot * NKV, NKV * sizeof(uint16_t));
                        std::memcpy(&snap_v[il][r * NKV], v_cache[il].get() + slot * NKV, NKV * sizeof(uint16_t));
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
        const size_t NKV = hp.n_embd_k_gqa();
        const int D = static_cast<int>(hp.n_embd_head_k);
        const int n_head_kv = static_cast<int>(hp.n_head_kv);
        const int32_t delta = static_cast<int32_t>(static_cast<int64_t>(g.dst) - g.src);
        pool.parallel_for(hp.n_layer, 1, [&](int64_t b, int64_t e, int) {
            std::vector<float> row(NKV);
            float cs[512], sn[512];
            for (int64_t il = b; il < e; ++il) {
                const uint32_t c = cap[il];
                const bool rotate = delta != 0 && (hp.use_rope[il] || bug == Bug::RopeOnNope);
                if (rotate) rope_angles(D, delta, hp.is_swa[il] ? hp.rope_freq_base_swa : hp.rope_freq_base, cs, sn);
                uint16_t* kc = k_cache[il].get();
                uint16_t* vc = v_cache[il].get();
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
                        ks.fp32_to_fp16_row(row.data(), kd, static_cast<int64_t>(NKV));
                    }
                }
            }
        });
    }

    void forward(const int32_t* tokens, int64_t n, int32_t pos0, const std::vector<int64_t>& out_rows, float* logits,
                 std::vector<uint64_t>& expert_counts) {
        const int64_t E = hp.n_embd, NQ = hp.n_embd_q(), NKV = hp.n_embd_k_gqa();
        const int D = static_cast<int>(hp.n_embd_head_k);
        const int n_head = static_cast<int>(hp.n_head), n_head_kv = static_cast<int>(hp.n_head_kv);
        const int gqa = n_head / n_head_kv;
        const int64_t NX = hp.n_expert, K = hp.n_expert_used;
        const float kq_scale = 1.0f / std::sqrt(static_cast<float>(D));

        x.resize(static_cast<size_t>(n * E));
        h.resize(static_cast<size_t>(n * E));
        q.resize(static_cast<size_t>(n * NQ));
        k.resize(static_cast<size_t>(n * NKV));
        v.resize(static_cast<size_t>(n * NKV));
        att.resize(static_cast<size_t>(n * NQ));
        att_out.resize(static_cast<size_t>(n * E));
        router.resize(static_cast<size_t>(n * NX));

        // x = token_embd[tokens]
        for (int64_t t = 0; t < n; ++t) dequantize_row(m.tok_embd.type, m.tok_embd.row(tokens[t]), &x[t * E], E);

        std::vector<int32_t> sel(static_cast<size_t>(n * K));
        std::vector<float> selw(static_cast<size_t>(n * K));
        route_probs.resize(static_cast<size_t>(n * NX));
        route_order.resize(static_cast<size_t>(n * NX));
        row_of.resize(static_cast<size_t>(n * K));
        row_token.resize(static_cast<size_t>(n * K));

        prof.calls += 1;
        prof.tokens += static_cast<uint64_t>(n);
        prof.start();
        for (uint32_t il = 0; il < hp.n_layer; ++il) {
            const LayerWeights& L = m.layers[il];
            // 1. pre-attention router on the raw residual, and 2. the attention projections: one
            // batch of matrix jobs (the router's experts are known before attention runs)
            for_tokens(n, [&](int64_t t) { rms_norm(&x[t * E], m.norms[il].attn.data(), &h[t * E], E, hp.rms_eps); });
            {
                size_t arow_r = 0, arow_h = 0;
                const float* router_in = bug == Bug::RouteNormed ? h.data() : x.data();
                const uint8_t* ar = convert_rows(L.gate_inp, router_in, n, E, act_x, arow_r);
                const uint8_t* ah = convert_rows(L.wq, h.data(), n, E, act_h, arow_h);
                add_job(L.gate_inp, 0, ar, arow_r, n, router.data(), NX);
                add_job(L.wq, 0, ah, arow_h, n, q.data(), NQ);
                if (L.wk.type == L.wq.type && L.wv.type == L.wq.type) {
                    add_job(L.wk, 0, ah, arow_h, n, k.data(), NKV);
                    add_job(L.wv, 0, ah, arow_h, n, v.data(), NKV);
                    run_jobs();
                } else {
                    run_jobs();
                    matmul(L.wk, 0, h.data(), n, E, k.data(), NKV);
                    matmul(L.wv, 0, h.data(), n, E, v.data(), NKV);
                }
            }
            prof.lap(PhaseProfile::Qkv);
            if (hp.use_rope[il] || bug == Bug::RopeOnNope) {
                const float base = hp.is_swa[il] ? hp.rope_freq_base_swa : hp.rope_freq_base;
                float cs[512], sn[512];  // head_dim <= 1024 (checked at load)
                for (int64_t t = 0; t < n; ++t) {
                    rope_angles(D, pos0 + static_cast<int32_t>(t), base, cs, sn);
                    rope(&q[t * NQ], n_head, D, cs, sn);
                    rope(&k[t * NKV], n_head_kv, D, cs, sn);
                }
            }
            const uint32_t c = cap[il];
            uint16_t* kc = k_cache[il].get();
            uint16_t* vc = v_cache[il].get();
            for (int64_t t = 0; t < n; ++t) {
                const size_t slot = static_cast<size_t>(pos0 + t) % c;
                ks.fp32_to_fp16_row(&k[t * NKV], kc + slot * NKV, NKV);
                ks.fp32_to_fp16_row(&v[t * NKV], vc + slot * NKV, NKV);
            }
            prof.lap(PhaseProfile::Rope);
            const bool swa = hp.is_swa[il];
            const int32_t n_swa = static_cast<int32_t>(hp.n_swa) + (bug == Bug::WindowOffByOne ? 1 : 0);
            // Attention per (KV head, tile of tokens): the tile's queries (the heads sharing that
            // KV head, times the tile's tokens) read each cached key and value row once.
            const int64_t tile = attn_tile_tokens(n, pos0 + n, gqa);
            const int64_t nq_max = tile * gqa;
            const int64_t span_max = std::min<int64_t>(pos0 + n, static_cast<int64_t>(c));
            const size_t per_thread = static_cast<size_t>(nq_max * (span_max + 2 * D));
            if (attn_scratch.size() < per_thread * pool.size()) attn_scratch.resize(per_thread * pool.size());
            const int64_t n_tiles = (n + tile - 1) / tile;
            pool.parallel_for(n_tiles * n_head_kv, 1, [&](int64_t b, int64_t e, int tid) {
                float* base = &attn_scratch[per_thread * static_cast<size_t>(tid)];
                for (int64_t it = b; it < e; ++it) {
                    const int64_t t0 = (it / n_head_kv) * tile, t1 = std::min(n, t0 + tile);
                    const int kvh = static_cast<int>(it % n_head_kv);
                    const int64_t nq = (t1 - t0) * gqa;
                    // keys [jlo, jhi): from the first token's window start to the last token
                    const int64_t p_first = pos0 + t0, p_last = pos0 + t1 - 1;
                    const int64_t jlo = swa ? std::max<int64_t>(0, p_first - n_swa + 1) : 0, jhi = p_last + 1;
                    const int64_t span = jhi - jlo;
                    float* qf = base;                  // nq x D
                    float* of = qf + nq_max * D;       // nq x D
                    float* sc = of + nq_max * D;       // nq x span
                    // query (token t, head kvh*gqa + g) -> row (t - t0) * gqa + g; q rounded to fp16
                    for (int64_t t = t0; t < t1; ++t)
                        for (int g = 0; g < gqa; ++g) {
                            float* dst = qf + ((t - t0) * gqa + g) * D;
                            const float* src = &q[t * NQ + static_cast<int64_t>(kvh * gqa + g) * D];
                            for (int d = 0; d < D; ++d) dst[d] = fp16_to_fp32(fp32_to_fp16(src[d]));
                        }
                    // the ring's slots for [jlo, jhi): at most two contiguous runs
                    int64_t seg_j[2], seg_len[2];
                    int nseg = 0;
                    for (int64_t j = jlo; j < jhi;) {
                        const int64_t slot = j % c;
                        const int64_t len = std::min<int64_t>(jhi - j, static_cast<int64_t>(c) - slot);
                        seg_j[nseg] = j;
                        seg_len[nseg++] = len;
                        j += len;
                    }
                    for (int sgi = 0; sgi < nseg; ++sgi) {
                        const uint16_t* kr = kc + static_cast<size_t>(seg_j[sgi] % c) * NKV + static_cast<size_t>(kvh) * D;
                        ks.attn_scores_f16(D, nq, qf, D, seg_len[sgi], kr, NKV, kq_scale, sc + (seg_j[sgi] - jlo), span);
                    }
                    // each query's own window [lo, p]; everything else in the span weighs 0
                    for (int64_t t = t0; t < t1; ++t) {
                        const int64_t p = pos0 + t;
                        const int64_t lo = swa ? std::max<int64_t>(0, p - n_swa + 1) : 0;
                        for (int g = 0; g < gqa; ++g) {
                            float* row = sc + ((t - t0) * gqa + g) * span;
                            ks.softmax_f16r(p - lo + 1, row + (lo - jlo));
                            std::fill(row, row + (lo - jlo), 0.0f);
                            std::fill(row + (p - jlo + 1), row + span, 0.0f);
                        }
                    }
                    std::fill(of, of + nq * D, 0.0f);
                    for (int sgi = 0; sgi < nseg; ++sgi) {
                        const uint16_t* vr = vc + static_cast<size_t>(seg_j[sgi] % c) * NKV + static_cast<size_t>(kvh) * D;
                        ks.attn_pv_f16(D, nq, sc + (seg_j[sgi] - jlo), span, seg_len[sgi], vr, NKV, of, D);
                    }
                    for (int64_t t = t0; t < t1; ++t)
                        for (int g = 0; g < gqa; ++g)
                            std::memcpy(&att[t * NQ + static_cast<int64_t>(kvh * gqa + g) * D], of + ((t - t0) * gqa + g) * D, sizeof(float) * D);
                }
            });
            prof.lap(PhaseProfile::Attn);
            matmul(L.wo, 0, att.data(), n, NQ, att_out.data(), E);
            prof.lap(PhaseProfile::Wo);
            for (int64_t i = 0; i < n * E; ++i) x[i] = att_out[i] + x[i];  // ffn_inp

            // 3. MoE block
            for_tokens(n, [&](int64_t t) { rms_norm(&x[t * E], m.norms[il].ffn.data(), &h[t * E], E, hp.rms_eps); });
            for_tokens(n, [&](int64_t t) {
                float* probs = &route_probs[static_cast<size_t>(t * NX)];
                int32_t* order = &route_order[static_cast<size_t>(t * NX)];
                const float* r = &router[t * NX];
                if (hp.gating == Gating::Sigmoid && bug != Bug::SoftmaxGating) {
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
                // "greater probability first", so exact ties (e.g. sigmoids saturated at 1.0f)
                // would break the same way as in llama.cpp.
                std::iota(order, order + NX, 0);
                std::sort(order, order + NX, [&](int32_t a, int32_t b2) { return probs[a] > probs[b2]; });
                double wsum = 0.0;
                for (int64_t j = 0; j < K; ++j) wsum += probs[order[j]];
                const float ws = bug == Bug::NoRenorm ? 1.0f : std::max(static_cast<float>(wsum), 6.103515625e-5f);
                for (int64_t j = 0; j < K; ++j) {
                    sel[t * K + j] = order[j];
                    selw[t * K + j] = probs[order[j]] / ws;
                }
            });
            for (int64_t i = 0; i < n * K; ++i) expert_counts[static_cast<size_t>(il) * NX + sel[i]] += 1;
            const int64_t n_ff = hp.n_ff_exp[il];
            // (token, slot) pairs routed to each expert, so an expert's tokens are processed together
            for (auto& b : by_expert) b.clear();
            by_expert.resize(static_cast<size_t>(NX));
            for (int64_t t = 0; t < n; ++t)
                for (int64_t j = 0; j < K; ++j) by_expert[sel[t * K + j]].emplace_back(t, j);
            // Every expert's tokens together, each phase of all experts in one batch of jobs:
            // gate, then up for the neurons relu keeps, then down.
            exp_off.assign(static_cast<size_t>(NX) + 1, 0);
            for (int64_t e = 0; e < NX; ++e) exp_off[e + 1] = exp_off[e] + static_cast<int64_t>(by_expert[e].size());
            const int64_t nrows = exp_off[NX];  // n * K
            ff_in_all.resize(static_cast<size_t>(nrows * E));
            ff_gate_all.resize(static_cast<size_t>(nrows * n_ff));
            ff_up_all.resize(static_cast<size_t>(nrows * n_ff));
            ff_down_all.resize(static_cast<size_t>(nrows * E));
            for (int64_t e = 0; e < NX; ++e)
                for (int64_t i = 0; i < exp_off[e + 1] - exp_off[e]; ++i) row_token[static_cast<size_t>(exp_off[e] + i)] = by_expert[e][i].first;
            for_tokens(nrows, [&](int64_t r) { std::memcpy(&ff_in_all[r * E], &h[row_token[static_cast<size_t>(r)] * E], sizeof(float) * E); });
            prof.lap(PhaseProfile::Route);
            size_t arow_in = 0;
            const uint8_t* ain = convert_rows(L.gate_exps, ff_in_all.data(), nrows, E, act_in, arow_in);
            for (int64_t e = 0; e < NX; ++e)
                add_job(L.gate_exps, e, ain + arow_in * exp_off[e], arow_in, exp_off[e + 1] - exp_off[e], &ff_gate_all[exp_off[e] * n_ff], n_ff);
            run_jobs();
            prof.lap(PhaseProfile::Gate);
            // ReGLU sparsity: relu(gate) * up is 0 wherever gate <= 0, so `up` is computed only for
            // the neurons some token of the expert activates. Exact: the skipped products are +-0
            // either way, and both quantize to the same 0 for `down`. (Relaid-out weights compute
            // every row: see Model::repack_weights.)
            live.resize(static_cast<size_t>(NX));
            for (int64_t e = 0; e < NX && !L.up_exps.x16; ++e) {
                std::vector<int32_t>& lr = live[e];
                lr.clear();
                const int64_t nr = exp_off[e + 1] - exp_off[e];
                if (nr == 0) continue;
                const float* g = &ff_gate_all[exp_off[e] * n_ff];
                for (int64_t r = 0; r < n_ff; ++r) {
                    bool on = false;
                    for (int64_t i = 0; i < nr; ++i) on |= g[i * n_ff + r] > 0.0f;
                    if (on) lr.push_back(static_cast<int32_t>(r));
                }
            }
            size_t arow_up = arow_in;
            const uint8_t* aup = L.up_exps.type == L.gate_exps.type ? ain : convert_rows(L.up_exps, ff_in_all.data(), nrows, E, act_mid, arow_up);
            for (int64_t e = 0; e < NX; ++e)
                add_job(L.up_exps, e, aup + arow_up * exp_off[e], arow_up, exp_off[e + 1] - exp_off[e], &ff_up_all[exp_off[e] * n_ff], n_ff, &live[e]);
            run_jobs();
            prof.lap(PhaseProfile::Up);
            std::atomic<uint64_t> zeros{0};
            for_tokens(nrows, [&](int64_t r) {
                uint64_t z = 0;
                for (int64_t i = r * n_ff; i < (r + 1) * n_ff; ++i) {
                    const bool on = ff_gate_all[i] > 0.0f;
                    z += on ? 0 : 1;
                    ff_gate_all[i] = on ? ff_gate_all[i] * ff_up_all[i] : 0.0f;  // ReGLU
                }
                zeros.fetch_add(z, std::memory_order_relaxed);
            });
            reglu_zero_ += zeros.load();
            reglu_total_ += static_cast<uint64_t>(nrows * n_ff);
            size_t arow_mid = 0;
            const uint8_t* amid = convert_rows(L.down_exps, ff_gate_all.data(), nrows, n_ff, act_mid, arow_mid);
            for (int64_t e = 0; e < NX; ++e)
                add_job(L.down_exps, e, amid + arow_mid * exp_off[e], arow_mid, exp_off[e + 1] - exp_off[e], &ff_down_all[exp_off[e] * E], E);
            run_jobs();
            prof.lap(PhaseProfile::Down);
            // x += sum over the token's experts (in choice order) of weight * expert output
            for (int64_t e = 0; e < NX; ++e)
                for (int64_t i = 0; i < exp_off[e + 1] - exp_off[e]; ++i)
                    row_of[static_cast<size_t>(by_expert[e][i].first * K + by_expert[e][i].second)] = exp_off[e] + i;
            for_tokens(n, [&](int64_t t) {
                float* xt = &x[t * E];
                for (int64_t d = 0; d < E; ++d) {
                    float s = ff_down_all[row_of[static_cast<size_t>(t * K)] * E + d] * selw[t * K];
                    for (int64_t j = 1; j < K; ++j) s += ff_down_all[row_of[static_cast<size_t>(t * K + j)] * E + d] * selw[t * K + j];
                    xt[d] = s + xt[d];
                }
            });
            prof.lap(PhaseProfile::Combine);
        }

        // 4. output norm and logits for the requested rows
        if (out_rows.empty()) return;
        const int64_t no = static_cast<int64_t>(out_rows.size());
        logits_in.resize(static_cast<size_t>(no * E));
        for (int64_t i = 0; i < no; ++i) rms_norm(&x[out_rows[i] * E], m.output_norm_f32.data(), &logits_in[i * E], E, hp.rms_eps);
        matmul(m.output, 0, logits_in.data(), no, E, logits, hp.n_vocab);
        prof.lap(PhaseProfile::Output);
    }
};

Session::Session(const Model& model, const SessionParams& params) : model_(model), params_(params) {
    if (params_.n_ctx == 0) params_.n_ctx = 1;
    if (params_.n_batch == 0) params_.n_batch = 1;
    if (params_.n_ctx > (1u << 24)) throw Error("bad_input", strfmt("context size %u is too large", params_.n_ctx));
    params_.n_batch = std::min(params_.n_batch, params_.n_ctx);
    const HParams& hp = model.hparams();
    expert_counts_.assign(static_cast<size_t>(hp.n_layer) * hp.n_expert, 0);
    impl_ = std::make_unique<Impl>(model, params_);
}

Session::~Session() = default;

Session::ReluStats Session::reglu_stats() const { return {impl_->reglu_zero_, impl_->reglu_total_}; }

size_t Session::kv_bytes() const {
    size_t total = 0;
    for (uint32_t c : impl_->cap) total += static_cast<size_t>(c) * model_.hparams().n_embd_k_gqa() * 2 * sizeof(uint16_t);
    return total;
}

void Session::decode(const int32_t* tokens, size_t n, LogitsMode mode, std::vector<float>& out, const std::atomic<bool>* cancel) {
    const HParams& hp = model_.hparams();
    if (n == 0) throw Error("bad_input", "nothing to evaluate: the token list is empty");
    for (size_t i = 0; i < n; ++i) {
        if (tokens[i] < 0 || static_cast<uint32_t>(tokens[i]) >= hp.n_vocab)
            throw Error("bad_input", strfmt("token id %d at index %zu is out of range (the vocabulary has %u tokens)", tokens[i], i, hp.n_vocab));
    }
    if (n_past() + n > params_.n_ctx) {
        throw Error("bad_input", strfmt("%zu tokens do not fit the context: %u of %u positions are already used", n, n_past(), params_.n_ctx));
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
        impl_->forward(tokens + start, static_cast<int64_t>(cnt), static_cast<int32_t>(n_past()), rows, out.data() + off, expert_counts_);
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
            throw Error("bad_input", strfmt("token id %d at index %zu is out of range (the vocabulary has %u tokens)", tokens[i], i, hp.n_vocab));
    }
    if (n > params_.n_ctx)
        throw Error("bad_input", strfmt("the prompt has %zu tokens but the context holds %u", n, params_.n_ctx));
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
    const bool ring = impl_->has_ring(params_.n_ctx);
    const size_t src_lo = ring && M > impl_->min_cap() ? M - impl_->min_cap() : 0;
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
    if (plan.n_prefix < tokens_.size()) truncate(plan.n_prefix);
    else if (plan.n_prefix == 0) clear();
    has_logits_ = false;

    double move_ms = 0, eval_ms = 0;
    std::vector<float> logits;
    try {
        for (size_t s = 0; s < plan.segments.size(); ++s) {
            const ReuseSegment& g = plan.segments[s];
            if (g.dst < tokens_.size()) continue;  // the prefix
            if (cancel && cancel->load()) throw Error("cancelled", "evaluation was cancelled");
            const auto a = Clock::now();
            if (g.src >= 0) {
                uint32_t q_next = static_cast<uint32_t>(n);
                for (size_t s2 = s + 1; s2 < plan.segments.size(); ++s2)
                    if (plan.segments[s2].src < 0) {
                        q_next = plan.segments[s2].dst;
                        break;
                    }
                impl_->place(g, snap_row[s], q_next);
                tokens_.insert(tokens_.end(), tokens + g.dst, tokens + g.dst + g.len);
                move_ms += ms(a, Clock::now());
            } else {
                const bool last = g.dst + g.len == n;
                decode(tokens + g.dst, g.len, last ? LogitsMode::Last : LogitsMode::None, logits, cancel);
                eval_ms += ms(a, Clock::now());
            }
        }
    } catch (...) {
        impl_->drop_snapshot();
        throw;
    }
    impl_->drop_snapshot();
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
        const uint32_t c = impl_->cap[il];
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
        throw Error("bad_input", strfmt("cannot truncate from %u to %u positions: the sliding-window cache no longer holds them", n_past(), n_keep));
    }
    tokens_.resize(n_keep);
    has_logits_ = false;
}

void Session::clear() {
    tokens_.clear();
    has_logits_ = false;
}

}  // namespace moe

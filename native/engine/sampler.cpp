// Token sampling (see sampler.h). Semantics follow llama.cpp's samplers of the same names;
// the RNG and the final draw are our own so results do not depend on the C++ library.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace moe {

// ---------------------------------------------------------------- RNG

static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Rng::Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& w : s) w = splitmix64(x);
}

uint64_t Rng::next() {
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

// ---------------------------------------------------------------- candidate list

// Descending logit, ascending id on ties: a total order, so sorting is deterministic.
static inline bool by_logit(const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

static void ensure_sorted(Candidates& c) {
    if (c.sorted) return;
    std::sort(c.data.begin(), c.data.end(), by_logit);
    c.sorted = true;
}

void candidates_from_logits(const float* logits, int32_t n_vocab, Candidates& c) {
    c.data.resize(static_cast<size_t>(std::max(n_vocab, 0)));
    for (int32_t i = 0; i < n_vocab; ++i) c.data[static_cast<size_t>(i)] = {i, logits[i], 0.0f};
    c.sorted = false;
}

// ---------------------------------------------------------------- samplers

void apply_penalties(Candidates& c, const int32_t* history, size_t n_history, float repeat_penalty, float frequency_penalty,
                     float presence_penalty) {
    if (n_history == 0) return;
    if (repeat_penalty == 1.0f && frequency_penalty == 0.0f && presence_penalty == 0.0f) return;
    std::unordered_map<int32_t, int> counts;
    for (size_t i = 0; i < n_history; ++i) counts[history[i]]++;
    for (auto& cand : c.data) {
        auto it = counts.find(cand.id);
        if (it == counts.end()) continue;
        // As llama.cpp: shrink positive logits, push negative ones further down.
        if (cand.logit <= 0.0f)
            cand.logit *= repeat_penalty;
        else
            cand.logit /= repeat_penalty;
        cand.logit -= static_cast<float>(it->second) * frequency_penalty + presence_penalty;
    }
    c.sorted = false;
}

void top_k(Candidates& c, int32_t k) {
    const size_t n = c.data.size();
    if (k <= 0) return;  // as llama.cpp: off, and no sorting cost
    if (static_cast<size_t>(k) >= n) {
        ensure_sorted(c);
        return;
    }
    if (!c.sorted) {
        auto kth = c.data.begin() + k;
        std::nth_element(c.data.begin(), kth, c.data.end(), by_logit);
        std::sort(c.data.begin(), kth, by_logit);
    }
    c.data.resize(static_cast<size_t>(k));
    c.sorted = true;
}

void softmax(Candidates& c) {
    if (c.data.empty()) return;
    float max_logit = c.data[0].logit;
    if (!c.sorted)
        for (const auto& cand : c.data) max_logit = std::max(max_logit, cand.logit);
    double sum = 0.0;
    for (auto& cand : c.data) {
        cand.p = std::exp(cand.logit - max_logit);
        sum += cand.p;
    }
    for (auto& cand : c.data) cand.p = static_cast<float>(cand.p / sum);
}

void top_p(Candidates& c, float p, size_t min_keep) {
    if (p >= 1.0f || c.data.empty()) return;
    ensure_sorted(c);
    softmax(c);
    double cum = 0.0;
    size_t keep = c.data.size();
    for (size_t i = 0; i < c.data.size(); ++i) {
        cum += c.data[i].p;
        if (cum >= p && i + 1 >= min_keep) {
            keep = i + 1;
            break;
        }
    }
    c.data.resize(keep);
}

void min_p(Candidates& c, float p, size_t min_keep) {
    if (p <= 0.0f || c.data.empty()) return;
    // p_i >= p * p_max  <=>  logit_i >= logit_max + log(p)  (no normalisation needed)
    float max_logit = c.data[0].logit;
    for (const auto& cand : c.data) max_logit = std::max(max_logit, cand.logit);
    const float min_logit = max_logit + std::log(p);
    std::vector<Candidate> kept;
    kept.reserve(c.data.size());
    for (const auto& cand : c.data)
        if (cand.logit >= min_logit) kept.push_back(cand);
    if (kept.size() >= min_keep) c.data.swap(kept);  // relative order is unchanged
}

void temperature(Candidates& c, float t) {
    if (t <= 0.0f) return;  // the caller treats t <= 0 as greedy
    for (auto& cand : c.data) cand.logit /= t;
}

int32_t sample_greedy(const Candidates& c) {
    const Candidate* best = &c.data[0];
    for (const auto& cand : c.data)
        if (cand.logit > best->logit || (cand.logit == best->logit && cand.id < best->id)) best = &cand;
    return best->id;
}

int32_t sample_dist(Candidates& c, Rng& rng) {
    softmax(c);
    const double u = rng.uniform();
    double cum = 0.0;
    for (const auto& cand : c.data) {
        cum += cand.p;
        if (u < cum) return cand.id;
    }
    return c.data.back().id;  // rounding left u above the total
}

// ---------------------------------------------------------------- the chain

int32_t sample_token(const float* logits, int32_t n_vocab, const std::vector<int32_t>& history, const SamplingParams& params, Rng& rng,
                     Candidates& scratch) {
    size_t n_hist = history.size();
    if (params.penalty_last_n >= 0) n_hist = std::min(n_hist, static_cast<size_t>(params.penalty_last_n));
    const bool penalise =
        n_hist > 0 && (params.repeat_penalty != 1.0f || params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f);

    if (params.temperature <= 0.0f && !penalise) {
        // Fast path: argmax straight over the logits (strict > keeps the lowest id on ties).
        int32_t best = 0;
        for (int32_t i = 1; i < n_vocab; ++i)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    candidates_from_logits(logits, n_vocab, scratch);
    if (penalise)
        apply_penalties(scratch, history.data() + (history.size() - n_hist), n_hist, params.repeat_penalty, params.frequency_penalty,
                        params.presence_penalty);
    if (params.temperature <= 0.0f) return sample_greedy(scratch);

    top_k(scratch, params.top_k);
    top_p(scratch, params.top_p);
    min_p(scratch, params.min_p);
    temperature(scratch, params.temperature);
    return sample_dist(scratch, rng);
}

}  // namespace moe

// Token sampling: small pure functions over a candidate list, with the RNG state passed in,
// in llama.cpp's order (penalties on logits, then top-k, top-p, min-p, temperature, then a
// draw). Same seed + same logits -> same token on every machine (own RNG and float draw).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moe {

// Defaults are the published SmallThinker chat settings (temperature 0.6, top-k 20,
// top-p 0.95); penalties are off. temperature <= 0 means greedy (argmax, lowest id on ties).
struct SamplingParams {
    float temperature = 0.6f;
    int32_t top_k = 20;              // <= 0: keep all
    float top_p = 0.95f;             // >= 1: off
    float min_p = 0.0f;              // <= 0: off; keep tokens with p >= min_p * p_max
    float repeat_penalty = 1.0f;     // 1: off; logit > 0 ? logit / r : logit * r
    float frequency_penalty = 0.0f;  // logit -= count * frequency_penalty
    float presence_penalty = 0.0f;   // logit -= (count > 0) * presence_penalty
    int32_t penalty_last_n = 64;     // how many recent tokens the penalties look at (0: none, -1: all)
    uint64_t seed = 0;
};

// xoshiro256** seeded through splitmix64: fixed output sequence for a seed on any platform.
struct Rng {
    uint64_t s[4];
    explicit Rng(uint64_t seed = 0);
    uint64_t next();
    double uniform();  // [0, 1), 53 random bits
};

struct Candidate {
    int32_t id;
    float logit;
    float p;  // filled by softmax()
};
// A candidate list plus whether it is sorted by logit (descending, ties by id ascending).
struct Candidates {
    std::vector<Candidate> data;
    bool sorted = false;
};

// Fills `c` with every token of `logits` (n_vocab floats), unsorted.
void candidates_from_logits(const float* logits, int32_t n_vocab, Candidates& c);

// Repetition / frequency / presence penalties for the tokens in `history` (the caller passes
// the last N). Leaves the list unsorted.
void apply_penalties(Candidates& c, const int32_t* history, size_t n_history, float repeat_penalty, float frequency_penalty,
                     float presence_penalty);
// Keeps the k highest logits, sorted (k <= 0: off, the list is left as it is).
void top_k(Candidates& c, int32_t k);
// Fills p with softmax(logit); does not reorder.
void softmax(Candidates& c);
// Sorts, then keeps the smallest prefix whose probability mass reaches p (at least min_keep).
void top_p(Candidates& c, float p, size_t min_keep = 1);
// Keeps tokens whose probability is at least p * the largest probability (at least min_keep).
void min_p(Candidates& c, float p, size_t min_keep = 1);
// Divides logits by t (t > 0).
void temperature(Candidates& c, float t);
// argmax of logit; lowest id on ties. The list must not be empty.
int32_t sample_greedy(const Candidates& c);
// Draws from softmax(logits) with one uniform from rng. The list must not be empty.
int32_t sample_dist(Candidates& c, Rng& rng);

// The whole chain. `history` is every token so far (prompt and generated); only its last
// penalty_last_n entries are used. `scratch` is reused between calls to avoid allocation.
int32_t sample_token(const float* logits, int32_t n_vocab, const std::vector<int32_t>& history, const SamplingParams& params, Rng& rng,
                     Candidates& scratch);

}  // namespace moe

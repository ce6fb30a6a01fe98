// Matrix products of the forward pass, batched: several weight matrices (or experts of one
// expert tensor) times rows of activations run in one parallel_for (one fork/join instead of
// one per matrix), split into chunks of whole kernel tiles. Each weight type's kernels come
// from its row in the kernel set (kernels::KernelSet::of); nothing here names a type.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "model/tensor.h"

namespace moe {

// Rows of activations converted to a weight type's activation type.
struct Acts {
    const uint8_t* data;
    size_t row_bytes;
};

class MatMul {
 public:
    MatMul(ThreadPool& pool, const kernels::KernelSet& ks) : pool_(pool), ks_(ks) {}

    // nt float rows (ldx floats apart) converted to W's activation type into buf (f32 weights
    // read them in place).
    Acts convert(const Tensor& W, const float* x, int64_t nt, int64_t ldx, std::vector<uint8_t>& buf);
    // Queues y[t*ldy + r] = dot(W[expert] row r, a row t) for every row r of the matrix, or only
    // the listed rows (ignored for Layout::Rows16, whose kernel computes whole groups of 16). For
    // Layout::NeuronMajor `rows` lists the columns instead: every row is computed, reading only
    // those columns (the activations must be 0 in all others).
    void add(const Tensor& W, int64_t expert, Acts a, int64_t nt, float* y, int64_t ldy, const std::vector<int32_t>* rows = nullptr);
    // Runs everything queued in one parallel_for over row chunks, then clears the queue.
    void run();
    // One matrix at once: convert, add, run.
    void mul(const Tensor& W, const float* x, int64_t nt, int64_t ldx, float* y, int64_t ldy);
    // What add + run compute for one matrix, on the calling thread only (from inside a
    // parallel_for task: the pool is not used). The same results bit for bit.
    void compute_here(const Tensor& W, int64_t expert, Acts a, int64_t nt, float* y, int64_t ldy,
                      const std::vector<int32_t>* rows = nullptr) const;
    // convert() on the calling thread only.
    Acts convert_here(const Tensor& W, const float* x, int64_t nt, int64_t ldx, std::vector<uint8_t>& buf) const;
    // The fidelity tests' noise probe (MOE_PERTURB, see forward.h): a seeded half of every product
    // moved by one ulp, as another correct summation order would. 0: off.
    void set_perturb(uint32_t seed) { perturb_ = seed; }

 private:
    struct Job {
        const Tensor* W;
        int64_t expert;
        Acts a;
        int64_t nt;
        float* y;
        int64_t ldy;
        const std::vector<int32_t>* rows;  // nullptr: every row (NeuronMajor: the columns read)
    };
    struct Chunk {
        int32_t job;
        int32_t rb, re;  // rows (or indices into job.rows, except for NeuronMajor)
    };
    // add()'s job, or false when there is nothing to compute.
    static bool make_job(const Tensor& W, int64_t expert, Acts a, int64_t nt, float* y, int64_t ldy, const std::vector<int32_t>* rows,
                         Job* j);
    Acts convert_rows(const Tensor& W, const float* x, int64_t nt, int64_t ldx, std::vector<uint8_t>& buf, ThreadPool* pool) const;
    void run_rows(const Job& j, int32_t rb, int32_t re) const;
    void run_kernel(const Job& j, int32_t rb, int32_t re) const;
    void perturb_rows(const Job& j, int32_t rb, int32_t re) const;

    ThreadPool& pool_;
    const kernels::KernelSet& ks_;
    std::vector<Job> jobs_;
    std::vector<Chunk> chunks_;
    std::vector<uint8_t> act_;  // mul()'s activations
    uint32_t perturb_ = 0;
};

}  // namespace moe

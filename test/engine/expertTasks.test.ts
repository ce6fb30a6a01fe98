// Expert tasks (native/model/moe.cpp): when a call has few tokens per expert and the experts
// divide evenly among the threads, each thread runs whole experts (gate, up, ReGLU, down)
// without a barrier between them; otherwise each phase is spread over all threads. Both must
// give the same bits. Single-token decode steps of the 4B widths (4 of 8 experts per token):
// 1 and 2 threads take the expert tasks, 3 threads the phases; the prompt (8 tokens) always
// takes the phases. Dense layouts in this process (Q4_0, Q4_K_M), the ReGLU-sparse ones in a
// child (MOE_SPARSE=1 is read once per process).
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { loadModel } from '../../src/engine/native';
import { ensureModel, type ModelSpec, SHALLOW_4B } from '../support/fixtures';
import { quantizeWithLlama } from '../support/llamaQuantize';

const SPEC: ModelSpec = { ...SHALLOW_4B, seed: 142 };
const PROMPT = [5, 17, 300, 2048, 9, 4000, 1, 77];
const STEPS = [42, 7, 1234, 3000, 11];

/** The last logits of the prompt and of each decode step, concatenated, as bytes (base64). */
const script = `
  const { loadModel } = require(${JSON.stringify(path.resolve(__dirname, '../../src/engine/native'))});
  (async () => {
    const [file, threads, prompt, steps] = process.argv.slice(1);
    const m = await loadModel(file);
    const s = m.createSession({ nCtx: 64, threads: Number(threads) });
    const parts = [await s.eval(Int32Array.from(JSON.parse(prompt)), { logits: 'last' })];
    for (const id of JSON.parse(steps)) parts.push(await s.eval(Int32Array.from([id]), { logits: 'last' }));
    const all = Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
    console.log(all.toString('base64'));
    s.dispose(); m.dispose();
  })();`;

async function decode(file: string, threads: number): Promise<Buffer> {
  const model = await loadModel(file);
  try {
    const s = model.createSession({ nCtx: 64, threads });
    try {
      const parts = [await s.eval(Int32Array.from(PROMPT), { logits: 'last' })];
      for (const id of STEPS) parts.push(await s.eval(Int32Array.from([id]), { logits: 'last' }));
      return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
    } finally {
      s.dispose();
    }
  } finally {
    model.dispose();
  }
}

function decodeInChild(file: string, threads: number, env: NodeJS.ProcessEnv): Buffer {
  const out = execFileSync(process.execPath, ['-e', script, file, String(threads), JSON.stringify(PROMPT), JSON.stringify(STEPS)], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return Buffer.from(out.trim(), 'base64');
}

describe('expert tasks and phases give the same bits', { timeout: 600_000 }, () => {
  let q4_0 = '';
  let q4_k_m = '';
  before(async () => {
    const source = await ensureModel(SPEC);
    q4_0 = await quantizeWithLlama(source, 'Q4_0');
    q4_k_m = await quantizeWithLlama(source, 'Q4_K_M');
  });

  for (const [name, file] of [
    ['Q4_0', () => q4_0],
    ['Q4_K_M', () => q4_k_m],
  ] as const) {
    it(`${name}: 1 and 2 threads (expert tasks) equal 3 threads (phases)`, async () => {
      const phases = await decode(file(), 3);
      assert.equal(phases.length, 4 * 4096 * (1 + STEPS.length));
      assert.ok(new Float32Array(phases.buffer, phases.byteOffset, phases.length / 4).some((v) => v !== 0));
      for (const threads of [1, 2]) assert.ok(phases.equals(await decode(file(), threads)), `${threads} thread(s)`);
    });
  }

  it('Q4_0 with the ReGLU-sparse layouts (MOE_SPARSE=1): tasks equal phases equal the dense layouts', async () => {
    const dense = await decode(q4_0, 2);
    const tasks = decodeInChild(q4_0, 2, { MOE_SPARSE: '1' });
    const phases = decodeInChild(q4_0, 3, { MOE_SPARSE: '1' });
    assert.ok(tasks.equals(phases), 'sparse: 2 threads (tasks) and 3 (phases)');
    assert.ok(tasks.equals(dense), 'sparse and dense layouts');
  });
});

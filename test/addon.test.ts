// The addon's JS API (src/engine/native.ts over native/addon/addon.cpp) on tiny fixture
// models: errors with codes, tokenizer and chat, eval shapes, generate streaming, seeds and
// greedy consistency, cancellation, busy sessions and deterministic disposal.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, before, after } from 'node:test';

import { engineInfo, isEngineError, loadModel, type Model } from '../src/engine/native';
import { TINY, ensureModel } from './support/fixtures';

async function rejectsWithCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(isEngineError(err), `expected an engine error, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return;
  }
  assert.fail(`expected an error with code ${code}`);
}

function argmax(a: Float32Array, start = 0, n = a.length): number {
  let best = start;
  for (let i = start + 1; i < start + n; i++) if (a[i] > a[best]) best = i;
  return best - start;
}

describe('addon', () => {
  let model: Model;
  let qwen: Model;
  before(async () => {
    model = await loadModel(await ensureModel(TINY));
    qwen = await loadModel(await ensureModel({ ...TINY, vocab: 'qwen', tied: true }), { vocabOnly: true });
  });
  after(() => {
    model.dispose();
    qwen.dispose();
  });

  it('reports the engine version and kernel sets', () => {
    const info = engineInfo();
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    assert.ok(info.isas.includes('scalar'));
    assert.ok(info.isas.includes(info.isa));
    for (const isa of info.isas) assert.ok(info.compiledIsas.includes(isa));
    // from the architecture registry and the type traits (native/models/registry.cpp, core/dtype.cpp)
    assert.deepEqual(info.architectures, ['smallthinker']);
    assert.deepEqual([...info.weightTypes].sort(), ['bf16', 'f16', 'f32', 'q4_0', 'q8_0']);
  });

  it('rejects bad model files with a code', async () => {
    await rejectsWithCode(loadModel('/nonexistent/model.gguf'), 'io');
    await rejectsWithCode(loadModel(path.resolve(__dirname, '..', '..', 'package.json')), 'bad_gguf');
  });

  it('refuses a FIFO, a directory and a device at once (the engine never waits on a FIFO)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-addon-fifo-'));
    const fifo = path.join(dir, 'model.gguf');
    try {
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
      for (const [file, kind] of [[fifo, 'a FIFO'], [dir, 'a directory'], ['/dev/zero', 'a character device']]) {
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          loadModel(file).then(
            (m) => {
              m.dispose();
              return new Error(`${file} loaded`);
            },
            (err: unknown) => err,
          ),
          new Promise<Error>((resolve) => {
            timer = setTimeout(() => {
              try {
                // a blocked open() of the FIFO returns once a writer opens it
                fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
              } catch {
                // nobody was waiting on it
              }
              resolve(new Error(`loadModel(${file}) was still waiting after 10 s`));
            }, 10_000);
          }),
        ]);
        clearTimeout(timer);
        assert.ok(isEngineError(outcome), String(outcome));
        assert.equal(outcome.code, 'io');
        assert.match(outcome.message, new RegExp(`is not a regular file \\(${kind}\\)`));
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tokenizes, detokenizes and formats chat without parsing special text in messages', () => {
    assert.deepEqual(Array.from(qwen.tokenize('Hello world')), [9707, 1879]);
    assert.equal(qwen.detokenize([9707, 1879]), 'Hello world');
    assert.deepEqual(Array.from(qwen.tokenize('<|im_end|>', { special: true })), [151645]);
    assert.equal(qwen.tokenId('<|im_start|>'), 151644);
    assert.equal(qwen.tokenId('no such token'), -1);
    assert.ok(qwen.isEog(151645));
    const ids = Array.from(qwen.formatChat([{ role: 'user', content: 'a<|im_end|>b' }]));
    assert.equal(ids.filter((id) => id === 151645).length, 1, 'only the template adds <|im_end|>');
    assert.equal(qwen.detokenize(ids), '<|im_start|>user\na<|im_end|>b<|im_end|>\n<|im_start|>assistant\n');
    assert.deepEqual(Array.from(qwen.formatChat([{ role: 'user', content: 'x' }], { addGenerationPrompt: false })).slice(-2), [151645, 198]);
    assert.throws(() => qwen.formatChat([{ role: 'tool' as 'user', content: 'x' }]), /role/);
    assert.throws(() => qwen.detokenize([999999]), /out of range/);
  });

  it('evaluates tokens with none / last / all logits', async () => {
    const s = model.createSession({ nCtx: 64, nBatch: 2, threads: 2 });
    try {
      const all = await s.eval([1, 2, 3], { logits: 'all' });
      assert.equal(all.length, 3 * model.nVocab);
      assert.equal(s.nPast, 3);
      s.truncate(2);
      assert.deepEqual(Array.from(s.tokens()), [1, 2]);
      const last = await s.eval([3]);
      assert.equal(last.length, model.nVocab);
      for (let i = 0; i < model.nVocab; i++) assert.ok(Math.abs(last[i] - all[2 * model.nVocab + i]) < 1e-3);
      assert.equal((await s.eval([4], { logits: 'none' })).length, 0);
      assert.equal(s.nPast, 4);
      await rejectsWithCode(s.eval([model.nVocab]), 'bad_input');
      await rejectsWithCode(s.eval([]), 'bad_input');
      await rejectsWithCode(s.eval([1], { logits: 'some' as 'all' }), 'bad_input');
      s.clear();
      assert.equal(s.nPast, 0);
    } finally {
      s.dispose();
    }
  });

  it('counts expert use and ReGLU sparsity', async () => {
    const s = model.createSession({ nCtx: 64 });
    try {
      assert.deepEqual(s.regluStats(), { zero: 0, total: 0 });
      await s.eval([1, 2, 3, 4, 5]);
      const st = s.regluStats();
      const info = model.info();
      const used = Number(info.hparams.n_expert_used);
      // every token runs n_expert_used experts of n_ff_exp neurons in every layer
      assert.equal(st.total, 5 * used * info.layers.reduce((a, l) => a + l.n_ff_exp, 0));
      // random gate weights: about half the neurons are silenced by relu
      assert.ok(st.zero > 0.3 * st.total && st.zero < 0.7 * st.total, `sparsity ${st.zero}/${st.total}`);
      const counts = s.expertCounts();
      assert.equal(counts.reduce((a, b) => a + b, 0), 5 * info.layers.length * used);
    } finally {
      s.dispose();
    }
  });

  it('refuses a second operation while one runs', async () => {
    const s = model.createSession({ nCtx: 64 });
    try {
      const first = s.eval([1, 2, 3]);
      assert.equal(s.busy, true);
      await rejectsWithCode(s.eval([4]), 'busy');
      assert.throws(() => s.truncate(0), /busy/);
      await first;
      assert.equal(s.busy, false);
    } finally {
      s.dispose();
    }
  });

  it('generates greedily in agreement with eval, streams complete text, and honours seeds', async () => {
    const s = model.createSession({ nCtx: 128 });
    try {
      const logits = await s.eval([5, 6, 7]);
      const expectedFirst = argmax(logits);
      s.clear();
      const pieces: string[] = [];
      const ids: number[] = [];
      const r = await s.generate({ prompt: [5, 6, 7], maxTokens: 8, temperature: 0 }, (text, id) => {
        pieces.push(text);
        ids.push(id);
      });
      if (r.tokens.length > 0) assert.equal(r.tokens[0], expectedFirst);
      assert.equal(pieces.join(''), r.text);
      assert.deepEqual(ids.filter((id) => id >= 0), Array.from(r.tokens));
      assert.equal(r.timings.nPrompt, 3);
      assert.equal(r.timings.nGenerated, r.tokens.length);
      // The last sampled token is not evaluated.
      if (r.stopReason === 'length') assert.equal(s.nPast, 3 + r.tokens.length - 1);

      const sample = async (seed: number) => {
        s.clear();
        return Array.from((await s.generate({ prompt: [1], maxTokens: 12, temperature: 1.5, topK: 0, topP: 1, seed })).tokens);
      };
      assert.deepEqual(await sample(11), await sample(11));
      const noSeed = await s.generate({ prompt: [1], maxTokens: 1 });
      assert.ok(Number.isSafeInteger(noSeed.seed));
    } finally {
      s.dispose();
    }
  });

  it('continues from the cache with an empty prompt', async () => {
    const s = model.createSession({ nCtx: 64 });
    try {
      const a = await s.generate({ prompt: [1, 2, 3], maxTokens: 0 });
      assert.equal(a.tokens.length, 0);
      assert.equal(s.nPast, 3);
      const b = await s.generate({ prompt: [], maxTokens: 2, temperature: 0, stopOnEog: false });
      assert.equal(b.tokens.length, 2);
      assert.equal(b.timings.nPrompt, 1);
      s.clear();
      await rejectsWithCode(s.generate({ prompt: [], maxTokens: 2 }), 'bad_input');
    } finally {
      s.dispose();
    }
  });

  it('checks requests before starting', async () => {
    const s = model.createSession({ nCtx: 16 });
    try {
      await rejectsWithCode(s.generate({ prompt: [1, 2], maxTokens: 100 }), 'bad_input');
      assert.equal(s.nPast, 0);
      await rejectsWithCode(s.generate({ prompt: [1], topP: 2 }), 'bad_input');
      await rejectsWithCode(s.generate({ maxTokens: 1 }), 'bad_input');
      await rejectsWithCode(s.generate({ prompt: [1], messages: [] }), 'bad_input');
      await rejectsWithCode(s.generate({ prompt: 'x' as unknown as number[], maxTokens: -1 }), 'bad_input');
    } finally {
      s.dispose();
    }
  });

  it('cancels between tokens and rejects with the error of a throwing callback', async () => {
    const s = model.createSession({ nCtx: 512 });
    try {
      let n = 0;
      const r = await s.generate({ prompt: [1], maxTokens: 400, stopOnEog: false, seed: 1 }, () => {
        if (++n === 3) s.cancel();
      });
      assert.equal(r.stopReason, 'cancelled');
      assert.ok(r.tokens.length < 400);
      s.clear();
      await assert.rejects(
        s.generate({ prompt: [1], maxTokens: 50, stopOnEog: false }, () => {
          throw new Error('callback failed');
        }),
        /callback failed/,
      );
      assert.equal(s.busy, false);
    } finally {
      s.dispose();
    }
  });

  it('disposes deterministically and fails clearly afterwards', async () => {
    const m = await loadModel(await ensureModel(TINY));
    const s = m.createSession({ nCtx: 512 });
    const running = s.generate({ prompt: [1], maxTokens: 400, stopOnEog: false }, () => {});
    s.dispose();
    assert.equal(s.disposed, true);
    assert.equal((await running).stopReason, 'cancelled');
    await rejectsWithCode(s.eval([1]), 'disposed');
    assert.throws(() => s.nPast, /disposed/);

    const s2 = m.createSession({ nCtx: 16 });
    m.dispose();
    m.dispose(); // twice is fine
    assert.equal(m.disposed, true);
    assert.equal(s2.disposed, true);
    await rejectsWithCode(s2.eval([1]), 'disposed');
    await rejectsWithCode(() => m.tokenize('x'), 'disposed');
    await rejectsWithCode(() => m.createSession(), 'disposed');
  });
});

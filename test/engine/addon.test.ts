// The addon's JS API (src/engine/native.ts over native/addon/) on tiny fixture models: errors
// with codes, tokenizer and chat, the incremental detokenizer, eval shapes, sampling and steps in
// agreement with eval, seeds, cancellation, busy sessions and deterministic disposal.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, before, after } from 'node:test';

import { engineInfo, isEngineError, loadAddon, loadModel, type Model, type Sampler } from '../../src/engine/native';
import { TINY, byteToUnicode, ensureModel } from '../support/fixtures';

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
    assert.deepEqual([...info.weightTypes].sort(), [
      'bf16',
      'f16',
      'f32',
      'iq4_nl',
      'iq4_xs',
      'q2_K',
      'q3_K',
      'q4_0',
      'q4_1',
      'q4_K',
      'q5_0',
      'q5_1',
      'q5_K',
      'q6_K',
      'q8_0',
    ]);
  });

  it('measures the memory read bandwidth (for the bench), checking its arguments', () => {
    const gbs = loadAddon().measureReadBandwidth(64 * 2 ** 20, 2);
    assert.ok(Number.isFinite(gbs) && gbs > 0.1 && gbs < 10_000, `${gbs} GB/s`);
    assert.throws(() => loadAddon().measureReadBandwidth(1000, 2), { code: 'bad_input' });
    assert.throws(() => loadAddon().measureReadBandwidth(2 ** 20, 0), { code: 'bad_input' });
    assert.throws(() => (loadAddon().measureReadBandwidth as (b: unknown) => number)('x'), { code: 'bad_input' });
  });

  it("measures the read bandwidth of a file's pages as the engine maps them, refusing what is not a file of 2 MB or more", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-addon-bw-'));
    try {
      const file = path.join(dir, 'weights.bin');
      fs.writeFileSync(file, Buffer.alloc(9 * 2 ** 20, 7));
      const gbs = loadAddon().measureFileReadBandwidth(file, 64 * 2 ** 20, 2);
      assert.ok(Number.isFinite(gbs) && gbs > 0.1 && gbs < 10_000, `${gbs} GB/s`);
      const small = path.join(dir, 'small.bin');
      fs.writeFileSync(small, Buffer.alloc(2 ** 20, 7));
      assert.throws(() => loadAddon().measureFileReadBandwidth(small, 64 * 2 ** 20, 2), { code: 'io' });
      assert.throws(() => loadAddon().measureFileReadBandwidth(path.join(dir, 'missing.bin'), 64 * 2 ** 20, 2), { code: 'io' });
      assert.throws(() => loadAddon().measureFileReadBandwidth(dir, 64 * 2 ** 20, 2), { code: 'io' });
      const fifo = path.join(dir, 'fifo');
      if (spawnSync('mkfifo', [fifo]).status === 0)
        assert.throws(() => loadAddon().measureFileReadBandwidth(fifo, 64 * 2 ** 20, 2), { code: 'io' });
      assert.throws(() => loadAddon().measureFileReadBandwidth(file, 1000, 2), { code: 'bad_input' });
      assert.throws(() => loadAddon().measureFileReadBandwidth(file, 2 ** 20, 0), { code: 'bad_input' });
      assert.throws(() => (loadAddon().measureFileReadBandwidth as (p: unknown) => number)(5), { code: 'bad_input' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad model files with a code', async () => {
    await rejectsWithCode(loadModel('/nonexistent/model.gguf'), 'io');
    await rejectsWithCode(loadModel(path.resolve(__dirname, '..', '..', '..', 'package.json')), 'bad_gguf');
  });

  it('refuses a FIFO, a directory and a device at once (the engine never waits on a FIFO)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-addon-fifo-'));
    const fifo = path.join(dir, 'model.gguf');
    try {
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
      for (const [file, kind] of [
        [fifo, 'a FIFO'],
        [dir, 'a directory'],
        ['/dev/zero', 'a character device'],
      ]) {
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
    assert.deepEqual(
      Array.from(qwen.formatChat([{ role: 'user', content: 'x' }], { addGenerationPrompt: false })).slice(-2),
      [151645, 198],
    );
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
      assert.deepEqual(s.regluStats(), { zero: 0, total: 0, expertBytes: 0, layers: [] });
      await s.eval([1, 2, 3, 4, 5]);
      const st = s.regluStats();
      const info = model.info();
      const used = Number(info.hparams.n_expert_used);
      // every token runs n_expert_used experts of n_ff_exp neurons in every layer
      assert.equal(st.total, 5 * used * info.layers.reduce((a, l) => a + l.n_ff_exp, 0));
      // random gate weights: about half the neurons are silenced by relu
      assert.ok(st.zero > 0.3 * st.total && st.zero < 0.7 * st.total, `sparsity ${st.zero}/${st.total}`);
      // and per layer, adding up to the totals
      assert.equal(st.layers.length, info.layers.length);
      assert.equal(
        st.layers.reduce((a, l) => a + l.zero, 0),
        st.zero,
      );
      assert.deepEqual(
        st.layers.map((l) => l.total),
        info.layers.map((l) => 5 * used * l.n_ff_exp),
      );
      // the experts' weights were read: at least each evaluated (token, expert)'s gate, once per batch
      assert.ok(st.expertBytes > 0, `expert bytes ${st.expertBytes}`);
      const counts = s.expertCounts();
      assert.equal(
        counts.reduce((a, b) => a + b, 0),
        5 * info.layers.length * used,
      );
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

  it('samples and steps in agreement with eval, and honours seeds', async () => {
    const addon = loadAddon();
    const s = model.createSession({ nCtx: 128 });
    try {
      const first = await s.eval([5, 6, 7]);
      const second = await s.eval([9]);
      s.clear();
      const greedy = addon.createSampler({ temperature: 0 });
      await s.prefill([5, 6, 7]);
      assert.equal(s.sample(greedy), argmax(first));
      assert.equal(await s.step(9, greedy), argmax(second));
      assert.equal(await s.step(10), -1, 'without a sampler step() only evaluates');
      assert.deepEqual(Array.from(s.tokens()), [5, 6, 7, 9, 10]);

      const sample = async (seed: number) => {
        s.clear();
        await s.prefill([1]);
        const sampler = addon.createSampler({ temperature: 1.5, topK: 0, topP: 1, seed });
        assert.equal(sampler.seed, seed);
        const ids = [s.sample(sampler)];
        while (ids.length < 12) ids.push(await s.step(ids[ids.length - 1], sampler));
        return ids;
      };
      assert.deepEqual(await sample(11), await sample(11));
      assert.ok(Number.isSafeInteger(addon.createSampler().seed));
    } finally {
      s.dispose();
    }
  });

  it('checks requests before starting', async () => {
    const addon = loadAddon();
    const s = model.createSession({ nCtx: 16 });
    try {
      await rejectsWithCode(s.prefill([]), 'bad_input');
      await rejectsWithCode(s.prefill(Array.from({ length: 17 }, (_, i) => i + 1)), 'bad_input');
      assert.equal(s.nPast, 0);
      await rejectsWithCode(() => s.sample(addon.createSampler()), 'bad_state');
      await rejectsWithCode(() => addon.createSampler({ topP: 2 }), 'bad_input');
      await rejectsWithCode(() => addon.createSampler({ seed: -1 }), 'bad_input');
      await rejectsWithCode(s.step(model.nVocab), 'bad_input');
      await rejectsWithCode(s.step(1, {} as Sampler), 'bad_input');
      assert.equal(s.nPast, 0);
    } finally {
      s.dispose();
    }
  });

  it('cancels a prefill between batches, keeping a prefix to continue from', async () => {
    const s = model.createSession({ nCtx: 512, nBatch: 4 });
    try {
      const tokens = Array.from({ length: 400 }, (_, i) => (i * 7) % 500);
      const running = s.prefill(tokens);
      s.cancel();
      await rejectsWithCode(running, 'cancelled');
      assert.equal(s.busy, false);
      assert.ok(s.nPast < tokens.length);
      assert.deepEqual(Array.from(s.tokens()), tokens.slice(0, s.nPast));
      const stats = await s.prefill(tokens);
      assert.equal(stats.nPrefix, tokens.length - stats.nEvaluated);
      assert.equal(s.nPast, tokens.length);
    } finally {
      s.dispose();
    }
  });

  it('detokenizes incrementally: pieces equal detokenize(), special tokens as asked', async () => {
    const ids = Array.from(qwen.tokenize('Hello world <|im_end|>', { special: true }));
    assert.equal(ids[ids.length - 1], 151645);
    for (const special of [true, false]) {
      const d = qwen.createDetokenizer({ special });
      const pieces = ids.map((id) => d.push(id));
      assert.deepEqual(pieces.slice(0, 2), ['Hello', ' world']);
      assert.equal(pieces[pieces.length - 1], special ? '<|im_end|>' : '');
      assert.equal(pieces.join('') + d.finish(), qwen.detokenize(ids, { special }));
    }
    // byte tokens: a character split over three tokens comes out whole with the last one
    const b2u = byteToUnicode();
    const bytes = [...Buffer.from('中')].map((b) => qwen.tokenId(b2u[b]));
    const d = qwen.createDetokenizer();
    assert.deepEqual(
      bytes.map((id) => d.push(id)),
      ['', '', '中'],
    );
    d.push(bytes[0]);
    assert.equal(d.finish(), '\uFFFD', 'an incomplete sequence at the end');
    assert.equal(d.finish(), '');
    await rejectsWithCode(() => d.push(qwen.nVocab), 'bad_input');
    await rejectsWithCode(() => d.push(-1), 'bad_input');
    await rejectsWithCode(() => d.push('1' as unknown as number), 'bad_input');

    const m = await loadModel(await ensureModel({ ...TINY, vocab: 'qwen', tied: true }), { vocabOnly: true });
    const late = m.createDetokenizer();
    m.dispose();
    await rejectsWithCode(() => late.push(9707), 'disposed');
    await rejectsWithCode(() => late.finish(), 'disposed');
    await rejectsWithCode(() => m.createDetokenizer(), 'disposed');
  });

  it('disposes deterministically and fails clearly afterwards', async () => {
    const m = await loadModel(await ensureModel(TINY));
    const s = m.createSession({ nCtx: 512, nBatch: 4 });
    const running = s.prefill(Array.from({ length: 400 }, (_, i) => i % 500));
    s.dispose();
    assert.equal(s.disposed, true);
    await rejectsWithCode(running, 'cancelled');
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

// The engine host's decode loop (src/engineHost/generate.ts), which chat/create and
// `moe-engine generate` share, on a tiny fixture model: greedy agreement with eval, streamed
// pieces that make up the text, end tokens, the token limit (the last token never evaluated),
// stop strings, seeds, and stops by the caller.
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { loadAddon, loadModel, type Model, type SamplingOptions, type Session } from '../../src/engine/native';
import { generate, type GenerationOptions } from '../../src/engineHost/generate';
import { TINY, ensureModel } from '../support/fixtures';

describe('generate: the decode loop of chat and the CLI', () => {
  let model: Model;
  let session: Session;
  /** On this fixture the greedy continuation of "hello" reaches an end token within a few tokens; that of "a" runs for thousands. */
  let hello: Int32Array;
  let a: Int32Array;

  before(async () => {
    model = await loadModel(await ensureModel(TINY));
    session = model.createSession({ nCtx: 256 });
    hello = model.tokenize('hello', { special: true });
    a = model.tokenize('a', { special: true });
  });
  after(() => {
    session.dispose();
    model.dispose();
  });

  const run = async (prompt: Int32Array, options: GenerationOptions, sampling: SamplingOptions = { temperature: 0 }) => {
    session.clear();
    await session.prefill(prompt);
    return generate(model, session, loadAddon().createSampler(sampling), options);
  };

  it('samples greedily in agreement with eval, streams the text piece by piece, and stops at an end token', async () => {
    session.clear();
    await session.eval(hello);
    const first = session.topTokens(1).ids[0];
    const pieces: string[] = [];
    const g = await run(hello, { maxTokens: 100, onText: (p) => pieces.push(p) });
    assert.equal(g.stopReason, 'eog');
    assert.ok(g.tokens.length > 0 && g.tokens.length < 100);
    assert.equal(g.tokens[0], first);
    assert.ok(
      g.tokens.every((id) => !model.isEog(id)),
      'the end token is not part of the result',
    );
    assert.ok(pieces.every((p) => p.length > 0));
    assert.equal(pieces.join(''), g.text);
    assert.equal(g.text, model.detokenize(g.tokens));
    // every generated token was evaluated; the end token was not
    assert.deepEqual(Array.from(session.tokens()), [...hello, ...g.tokens]);
    assert.equal(g.steps, g.tokens.length);
  });

  it('stops at maxTokens without evaluating the last token, and samples nothing for 0', async () => {
    const g = await run(a, { maxTokens: 20 });
    assert.equal(g.stopReason, 'length');
    assert.equal(g.tokens.length, 20);
    assert.equal(session.nPast, a.length + 19);
    assert.equal(g.steps, 19);
    const none = await run(a, { maxTokens: 0 });
    assert.deepEqual([none.tokens, none.text, none.stopReason], [[], '', 'length']);
    assert.equal(session.nPast, a.length);
  });

  it('ends the text before a stop string', async () => {
    const full = await run(a, { maxTokens: 30 });
    assert.ok(full.text.length >= 8, `the greedy text is long enough: ${JSON.stringify(full.text)}`);
    const stop = full.text.slice(4, 6);
    const cut = await run(a, { maxTokens: 30, stop: ['never there', stop] });
    assert.equal(cut.stopReason, 'stop');
    assert.equal(cut.text, full.text.slice(0, full.text.indexOf(stop)));
    assert.ok(cut.tokens.length < full.tokens.length);
    assert.deepEqual(cut.tokens, full.tokens.slice(0, cut.tokens.length));
  });

  it('gives the same tokens for the same seed', async () => {
    const sampling = { temperature: 1, topK: 0, topP: 1, seed: 5 };
    const x = await run(a, { maxTokens: 24 }, sampling);
    const y = await run(a, { maxTokens: 24 }, sampling);
    assert.deepEqual(x.tokens, y.tokens);
    assert.equal(x.text, y.text);
  });

  it('keeps the text so far when the caller stops it, and fails on other errors', async () => {
    const stopAfter = (n: number) => {
      let calls = 0;
      return async () => {
        if (++calls === n) throw new Error('stop now');
      };
    };
    const stopped = await run(a, { maxTokens: 50, checkpoint: stopAfter(3), stopped: (err) => (err as Error).message === 'stop now' });
    assert.equal(stopped.stopReason, 'cancelled');
    assert.equal(stopped.tokens.length, 3);
    assert.equal(stopped.text, model.detokenize(stopped.tokens));
    await assert.rejects(run(a, { maxTokens: 50, checkpoint: stopAfter(3) }), /stop now/);
    await assert.rejects(
      run(a, {
        maxTokens: 50,
        onText: () => {
          throw new Error('onText failed');
        },
      }),
      /onText failed/,
    );
    assert.equal(session.busy, false);
  });
});

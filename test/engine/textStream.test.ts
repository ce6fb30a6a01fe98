// TextStream (src/engineHost/textStream.ts), the generated-ids-to-text stream of chat and
// completions, on the real Qwen vocabulary: characters split over byte tokens come out whole,
// text that could still grow into a stop string is held back, the text ends before the first stop
// string, and every push goes through the incremental detokenizer (never the whole list again).
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { loadModel, type Detokenizer, type Model } from '../../src/engine/native';
import { TextStream } from '../../src/engineHost/textStream';
import { TINY, byteToUnicode, ensureModel } from '../support/fixtures';

describe('TextStream', () => {
  let qwen: Model;
  let byteId: number[];
  /** The ids of `text` as byte tokens, one per UTF-8 byte. */
  const bytes = (text: string): number[] => [...Buffer.from(text, 'utf8')].map((b) => byteId[b]);
  /** One token per piece (each piece must be a single token). */
  const single = (...pieces: string[]): number[] =>
    pieces.map((p) => {
      const ids = Array.from(qwen.tokenize(p));
      assert.equal(ids.length, 1, `${JSON.stringify(p)} is one token`);
      return ids[0];
    });

  before(async () => {
    qwen = await loadModel(await ensureModel({ ...TINY, vocab: 'qwen', tied: true }), { vocabOnly: true });
    const b2u = byteToUnicode();
    byteId = Array.from({ length: 256 }, (_, b) => qwen.tokenId(b2u[b]));
  });
  after(() => qwen.dispose());

  it('gives a character split over byte tokens with its last byte, and text equal to detokenize()', () => {
    const ids = [...single('Hello'), ...bytes('中€😀'), ...single(' world')];
    const stream = new TextStream(qwen);
    const pieces = ids.map((id) => stream.push(id));
    assert.deepEqual(pieces, ['Hello', '', '', '中', '', '', '€', '', '', '', '😀', ' world']);
    assert.equal(stream.length, ids.length);
    assert.equal(stream.finish(), '');
    assert.equal(pieces.join(''), qwen.detokenize(ids));
    assert.equal(stream.text(), qwen.detokenize(ids));

    // an incomplete character at the end comes out of finish() as U+FFFD, as detokenize() gives it
    const cut = new TextStream(qwen);
    const tail = [...single('a'), ...bytes('中').slice(0, 2)];
    assert.equal(tail.map((id) => cut.push(id)).join(''), 'a');
    assert.equal(cut.finish(), '\uFFFD');
    assert.equal(qwen.detokenize(tail), 'a\uFFFD');
  });

  it('holds back a tail that could grow into a stop string, and releases it when it does not', () => {
    const stream = new TextStream(qwen, ['\n\n', 'STOP']);
    const ids = single('foo', '\n', 'bar', 'ST', 'OK');
    assert.deepEqual(
      ids.map((id) => stream.push(id)),
      ['foo', '', '\nbar', '', 'STOK'],
    );
    assert.equal(stream.hitStop, false);
    const held = new TextStream(qwen, ['STOP']);
    assert.deepEqual(
      single('x', 'ST').map((id) => held.push(id)),
      ['x', ''],
    );
    assert.equal(held.finish(), 'ST', 'finish() gives what was held back');
  });

  it('ends the text before the first stop string, also across tokens and split characters', () => {
    const stream = new TextStream(qwen, ['world', 'lo w']);
    const pieces = single('Hello', ' world', '!').map((id) => stream.push(id));
    // 'lo' could begin 'lo w': held back; then 'lo w' is found before 'world'
    assert.deepEqual(pieces, ['Hel', '', '']);
    assert.equal(stream.hitStop, true);
    assert.equal(stream.text(), 'Hel');
    assert.equal(stream.finish(), '');

    const euro = new TextStream(qwen, ['€']);
    const ids = [...single('a'), ...bytes('€'), ...single('b')];
    assert.deepEqual(
      ids.map((id) => euro.push(id)),
      ['a', '', '', '', ''],
    );
    assert.equal(euro.hitStop, true);
    assert.equal(euro.text(), 'a');
  });

  it('costs one detokenizer push per token and never detokenizes the whole list', () => {
    let pushes = 0;
    const counting = {
      createDetokenizer(options?: { special?: boolean }): Detokenizer {
        const d = qwen.createDetokenizer(options);
        return {
          push: (id: number) => (pushes++, d.push(id)),
          finish: () => d.finish(),
        };
      },
      detokenize(): string {
        throw new Error('TextStream detokenized the whole list');
      },
    } as unknown as Model;
    const ids = Array.from(qwen.tokenize('def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n'.repeat(50)));
    const stream = new TextStream(counting, ['\n\n\n']);
    let text = '';
    for (const id of ids) text += stream.push(id);
    text += stream.finish();
    assert.equal(pushes, ids.length);
    assert.equal(text, qwen.detokenize(ids));
  });
});

// Unit tests of the extension's client side of inline completion: the suggestion cache
// (src/common/completionCache.ts), the context chunk ring (contextChunks.ts), the acceptance
// statistics (acceptanceStats.ts), and clipForRequest (prompt.ts), which must not change the prompt.
// Run: node test/run.mjs --node completionClient
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { AcceptanceTracker, describeAcceptance, emptyAcceptanceState, loadAcceptanceState } from '../../src/common/acceptanceStats';
import { CompletionCache, hashText } from '../../src/common/completionCache';
import { ChunkRing, chunkAround, chunkSimilarity } from '../../src/common/contextChunks';
import { CLIP_PREFIX_LINES, CLIP_SNAP_LINES, CLIP_SUFFIX_LINES, buildCompletionPrompt, clipForRequest } from '../../src/common/prompt';
import { Rng } from '../support/rng';

const DOC = 'file:///w/a.ts';

describe('CompletionCache', () => {
  test('exact hit, miss on other document, prefix or suffix', () => {
    const c = new CompletionCache();
    c.put({ document: DOC, prefix: 'function f() {\n  ret', suffix: '\n}\n' }, ['urn 1;', 'urn 2;']);
    assert.deepEqual(c.get({ document: DOC, prefix: 'function f() {\n  ret', suffix: '\n}\n' }), {
      candidates: ['urn 1;', 'urn 2;'],
      typed: 0,
    });
    assert.equal(c.get({ document: 'file:///w/b.ts', prefix: 'function f() {\n  ret', suffix: '\n}\n' }), undefined);
    assert.equal(c.get({ document: DOC, prefix: 'function g() {\n  ret', suffix: '\n}\n' }), undefined);
    assert.equal(c.get({ document: DOC, prefix: 'function f() {\n  ret', suffix: '\n}\n\n' }), undefined);
  });

  test('typing the start of a suggestion serves the rest; a diverging keystroke misses', () => {
    const c = new CompletionCache();
    const prefix = 'const x = ';
    c.put({ document: DOC, prefix, suffix: '' }, ['compute(a, b);', '42;']);
    assert.deepEqual(c.get({ document: DOC, prefix: prefix + 'comp', suffix: '' }), { candidates: ['ute(a, b);'], typed: 4 });
    assert.deepEqual(c.get({ document: DOC, prefix: prefix + '4', suffix: '' }), { candidates: ['2;'], typed: 1 });
    assert.equal(c.get({ document: DOC, prefix: prefix + 'x', suffix: '' }), undefined);
    // typed to the end: nothing left to suggest from this entry
    assert.equal(c.get({ document: DOC, prefix: prefix + '42;', suffix: '' }), undefined);
    // the same length typed, but the text before the old cursor changed
    assert.equal(c.get({ document: DOC, prefix: 'const y = comp', suffix: '' }), undefined);
  });

  test('an edit far before the cursor (same lengths, same tail) is not served', () => {
    const c = new CompletionCache();
    const body = 'x'.repeat(500);
    c.put({ document: DOC, prefix: 'A' + body, suffix: '' }, ['abc']);
    assert.equal(c.get({ document: DOC, prefix: 'B' + body + 'a', suffix: '' }), undefined);
    assert.deepEqual(c.get({ document: DOC, prefix: 'A' + body + 'a', suffix: '' })?.candidates, ['bc']);
  });

  test('LRU bound and clear', () => {
    const c = new CompletionCache({ maxEntries: 3 });
    for (let i = 0; i < 5; i++) c.put({ document: DOC, prefix: `p${i}`, suffix: '' }, [`s${i}`]);
    assert.equal(c.size, 3);
    assert.equal(c.get({ document: DOC, prefix: 'p0', suffix: '' }), undefined);
    assert.ok(c.get({ document: DOC, prefix: 'p4', suffix: '' }));
    c.put({ document: 'file:///other', prefix: 'q', suffix: '' }, ['r']);
    c.clear(DOC);
    assert.equal(c.size, 1);
    c.clear();
    assert.equal(c.size, 0);
  });

  test('hashText: different texts of the same length differ; ranges hash like slices', () => {
    const rng = new Rng(7, 'hash');
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const s = Array.from({ length: 12 }, () => String.fromCharCode(97 + rng.nextInt(26))).join('');
      seen.add(hashText(s));
    }
    assert.ok(seen.size >= 1999);
    assert.equal(hashText('hello world', 0, 5), hashText('hello'));
  });
});

describe('ChunkRing', () => {
  const lines = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag} line ${i} = ${i * 7};`);

  test('chunkAround centres and clamps', () => {
    const l = lines(200, 'a');
    assert.equal(chunkAround(l, 100, 64).startLine, 68);
    assert.equal(chunkAround(l, 2, 64).startLine, 0);
    assert.equal(chunkAround(l, 199, 64).startLine, 136);
    assert.equal(chunkAround(l.slice(0, 10), 5, 64).text.split('\n').length, 10);
  });

  test('oldest first, bounded, near-duplicates not added, short chunks ignored', () => {
    const r = new ChunkRing({ maxChunks: 3, chunkLines: 8 });
    assert.equal(r.add({ source: 's', fileName: 'x', startLine: 0, text: 'a\n\n' }), false);
    for (let i = 0; i < 4; i++) assert.equal(r.addAround(`file:///f${i}`, `f${i}.ts`, lines(40, `f${i}`).join('\n'), 20), true);
    assert.deepEqual(
      r.forPrompt().map((c) => c.fileName),
      ['f1.ts', 'f2.ts', 'f3.ts'],
    );
    const before = r.changeCount;
    assert.equal(r.addAround('file:///f3', 'f3.ts', lines(40, 'f3').join('\n'), 20), false);
    assert.equal(r.changeCount, before);
    assert.deepEqual(
      r.forPrompt('file:///f2').map((c) => c.fileName),
      ['f1.ts', 'f3.ts'],
    );
    r.remove('file:///f1');
    assert.deepEqual(
      r.forPrompt().map((c) => c.fileName),
      ['f2.ts', 'f3.ts'],
    );
    assert.equal(r.forPrompt()[0].text.split('\n').length, 8);
  });

  test('chunkSimilarity', () => {
    assert.equal(chunkSimilarity('a\nb\nc', 'c\nb\na'), 1);
    assert.equal(chunkSimilarity('a\nb', 'c\nd'), 0);
    assert.ok(Math.abs(chunkSimilarity('a\nb\nc', 'a\nb\nd') - 0.5) < 1e-9);
  });
});

describe('AcceptanceTracker', () => {
  test('shown, typed over, accepted, rejected', () => {
    const t = new AcceptanceTracker();
    const text = 'x = 1';
    t.onRequest(DOC, 10, () => '');
    t.onShown(DOC, 10, 'abc', false);
    // typing "a" then "ab": the same suggestion, still on screen
    t.onRequest(DOC, 11, () => 'a');
    t.onShown(DOC, 11, 'bc', true);
    t.onRequest(DOC, 13, () => 'abc');
    assert.equal(t.state.shown, 1);
    assert.equal(t.state.typedOver, 1);
    assert.equal(t.state.cacheHits, 1);
    t.onShown(DOC, 20, text, false);
    t.onAccepted(text);
    assert.equal(t.state.accepted, 1);
    assert.equal(t.state.acceptedChars, text.length);
    t.onShown(DOC, 40, 'foo', false);
    t.onRequest(DOC, 41, () => 'z');
    assert.equal(t.state.rejected, 1);
    assert.equal(t.state.shown, 3);
    t.onEngineLatency(120);
    t.onRetentionCheck(0, true);
    t.onRetentionCheck(0, false);
    const lines = describeAcceptance(t.state).join('\n');
    assert.match(lines, /Accepted: 1 \(33% of shown/);
    assert.match(lines, /Still present after 30 s \/ 2 min \/ 10 min: 50%/);
    assert.match(lines, /median 120 ms/);
  });

  test('loadAcceptanceState repairs bad fields', () => {
    const s = loadAcceptanceState({ shown: 5, accepted: -1, retained: [1, 2], latenciesMs: [1, 'x', 3] });
    assert.equal(s.shown, 5);
    assert.equal(s.accepted, 0);
    assert.deepEqual(s.retained, [0, 0, 0]);
    assert.deepEqual(s.latenciesMs, [1, 3]);
    assert.deepEqual(loadAcceptanceState('junk'), emptyAcceptanceState());
  });
});

describe('clipForRequest', () => {
  const doc = (n: number) => Array.from({ length: n }, (_, i) => `line ${i}`).join('\n');

  test('small documents are untouched', () => {
    const text = doc(300);
    assert.deepEqual(clipForRequest(text.slice(0, 1000), text.slice(1000)), { prefix: text.slice(0, 1000), suffix: text.slice(1000) });
  });

  test("large documents: the engine's prompt is the same, clip points move in 256-line steps", () => {
    const text = doc(6000);
    for (const cursorLine of [1500, 1800, 2047, 2400, 3000, 5100, 5900]) {
      const offset = text.split('\n').slice(0, cursorLine).join('\n').length + 3;
      const prefix = text.slice(0, offset);
      const suffix = text.slice(offset);
      const clipped = clipForRequest(prefix, suffix);
      assert.ok(prefix.endsWith(clipped.prefix) && suffix.startsWith(clipped.suffix));
      const window = { maxPrefixLines: 1024, maxSuffixLines: 512 };
      const full = buildCompletionPrompt({ prefix, suffix, fileName: 'a.ts' }, { fim: true, window });
      const cut = buildCompletionPrompt({ prefix: clipped.prefix, suffix: clipped.suffix, fileName: 'a.ts' }, { fim: true, window });
      assert.deepEqual(cut.pieces, full.pieces, `cursor line ${cursorLine}`);
      const droppedFront = prefix.split('\n').length - clipped.prefix.split('\n').length;
      const droppedBack = suffix.split('\n').length - clipped.suffix.split('\n').length;
      assert.equal(droppedFront % CLIP_SNAP_LINES, 0);
      assert.equal(droppedBack % CLIP_SNAP_LINES, 0);
      assert.ok(clipped.prefix.split('\n').length - 1 >= CLIP_PREFIX_LINES || droppedFront === 0);
      assert.ok(clipped.suffix.split('\n').length - 1 >= CLIP_SUFFIX_LINES || droppedBack === 0);
    }
  });
});

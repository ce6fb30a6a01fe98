// Unit tests of src/common/lineDiff.ts: Myers line diff into hunks, applying any subset of hunks,
// carrying hunks over to an edited text, CRLF kept byte for byte; property tests on seeded edits.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  applyHunks,
  diffLines,
  editedSpan,
  eolOf,
  hunkEdits,
  hunkLabel,
  hunkPreview,
  HunkMismatchError,
  rebaseHunks,
  splitLines,
  type Hunk,
} from '../../src/common/lineDiff';

/** A tiny seeded LCG (Numerical Recipes constants). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

function randInt(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

/** A random text of lines from a small alphabet (so that equal lines recur). */
function randomLines(rand: () => number, count: number, eol = '\n'): string[] {
  const words = ['a', 'b', 'c', '  d', '}', '', 'return x;', 'x++;'];
  return Array.from({ length: count }, () => words[randInt(rand, words.length)] + eol);
}

/** Random insertions, deletions and replacements of lines. */
function randomEdit(rand: () => number, lines: string[], eol = '\n'): string[] {
  const out = [...lines];
  const edits = randInt(rand, 6);
  for (let e = 0; e < edits; e++) {
    const at = randInt(rand, out.length + 1);
    const kind = randInt(rand, 3);
    const fresh = randomLines(rand, 1 + randInt(rand, 3), eol).map((l) => `new ${l}`);
    if (kind === 0) out.splice(at, 0, ...fresh);
    else if (kind === 1) out.splice(at, 1 + randInt(rand, 3));
    else out.splice(at, 1, ...fresh);
  }
  return out;
}

/** Length of the longest common subsequence of two line lists (reference, O(NM)). */
function lcsLength(a: string[], b: string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(row[j], row[j - 1]);
      diag = up;
    }
  }
  return row[b.length];
}

/** Reference application of a hunk subset, line by line. */
function referenceApply(oldText: string, hunks: Hunk[]): string {
  const lines = splitLines(oldText);
  const byStart = new Map<number, Hunk>(hunks.map((h) => [h.oldStart, h]));
  const out: string[] = [];
  for (let i = 0; i <= lines.length; i++) {
    const h = byStart.get(i);
    if (h) {
      out.push(...h.added);
      if (h.oldLines > 0) {
        i += h.oldLines - 1;
        continue;
      }
    }
    if (i < lines.length) out.push(lines[i]);
  }
  return out.join('');
}

describe('splitLines', () => {
  test('keeps line breaks, no empty last line', () => {
    assert.deepEqual(splitLines(''), []);
    assert.deepEqual(splitLines('a'), ['a']);
    assert.deepEqual(splitLines('a\n'), ['a\n']);
    assert.deepEqual(splitLines('a\r\nb'), ['a\r\n', 'b']);
    assert.deepEqual(splitLines('\n\n'), ['\n', '\n']);
  });
  test('eolOf', () => {
    assert.equal(eolOf('a\r\nb'), '\r\n');
    assert.equal(eolOf('a\nb\r\n'), '\n');
    assert.equal(eolOf('abc'), '\n');
  });
});

describe('diffLines', () => {
  test('equal texts have no hunks', () => {
    assert.deepEqual(diffLines('a\nb\n', 'a\nb\n'), []);
    assert.deepEqual(diffLines('', ''), []);
  });

  test('a replacement in the middle', () => {
    const hunks = diffLines('a\nb\nc\nd\n', 'a\nB\nB2\nd\n');
    assert.deepEqual(hunks, [{ oldStart: 1, oldLines: 2, newStart: 1, newLines: 2, removed: ['b\n', 'c\n'], added: ['B\n', 'B2\n'] }]);
  });

  test('insertions and deletions at the ends', () => {
    assert.deepEqual(diffLines('b\n', 'a\nb\n'), [{ oldStart: 0, oldLines: 0, newStart: 0, newLines: 1, removed: [], added: ['a\n'] }]);
    assert.deepEqual(diffLines('a\n', 'a\nb\n'), [{ oldStart: 1, oldLines: 0, newStart: 1, newLines: 1, removed: [], added: ['b\n'] }]);
    assert.deepEqual(diffLines('a\nb\n', ''), [{ oldStart: 0, oldLines: 2, newStart: 0, newLines: 0, removed: ['a\n', 'b\n'], added: [] }]);
    assert.deepEqual(diffLines('', 'x'), [{ oldStart: 0, oldLines: 0, newStart: 0, newLines: 1, removed: [], added: ['x'] }]);
  });

  test('separate changes are separate hunks', () => {
    const hunks = diffLines('1\n2\n3\n4\n5\n', '1\nX\n3\n4\n5\nY\n');
    assert.equal(hunks.length, 2);
    assert.deepEqual(
      hunks.map((h) => [h.oldStart, h.oldLines, h.newStart, h.newLines]),
      [
        [1, 1, 1, 1],
        [5, 0, 5, 1],
      ],
    );
  });

  test('a missing final line break is a change of the last line', () => {
    assert.deepEqual(diffLines('a\nb', 'a\nb\n'), [{ oldStart: 1, oldLines: 1, newStart: 1, newLines: 1, removed: ['b'], added: ['b\n'] }]);
  });

  test('CRLF and LF lines differ', () => {
    const hunks = diffLines('a\r\nb\r\n', 'a\r\nb\n');
    assert.equal(hunks.length, 1);
    assert.deepEqual(hunks[0].removed, ['b\r\n']);
  });

  test('the edit script is minimal (matches an LCS) on seeded random texts', () => {
    const rand = lcg(7);
    for (let round = 0; round < 200; round++) {
      const a = randomLines(rand, randInt(rand, 30));
      const b = rand() < 0.5 ? randomEdit(rand, a) : randomLines(rand, randInt(rand, 30));
      const hunks = diffLines(a.join(''), b.join(''));
      const changed = hunks.reduce((n, h) => n + h.oldLines + h.newLines, 0);
      assert.equal(changed, a.length + b.length - 2 * lcsLength(a, b), `round ${round}`);
      for (let i = 1; i < hunks.length; i++)
        assert.ok(hunks[i].oldStart > hunks[i - 1].oldStart + hunks[i - 1].oldLines, 'hunks do not touch');
    }
  });

  test('beyond maxEditDistance the middle is one hunk, and still correct', () => {
    const a = 'keep\n' + Array.from({ length: 50 }, (_, i) => `a${i}\n`).join('') + 'end\n';
    const b = 'keep\n' + Array.from({ length: 50 }, (_, i) => `b${i}\n`).join('') + 'end\n';
    const hunks = diffLines(a, b, { maxEditDistance: 10 });
    assert.equal(hunks.length, 1);
    assert.equal(hunks[0].oldStart, 1);
    assert.equal(hunks[0].oldLines, 50);
    assert.equal(applyHunks(a, hunks), b);
  });

  test('a large file with a few scattered edits is fast and exact', () => {
    const lines = Array.from({ length: 20000 }, (_, i) => `line ${i}\n`);
    const edited = [...lines];
    for (const at of [19000, 12000, 5000, 10]) edited.splice(at, 2, `changed ${at}\n`);
    const started = Date.now();
    const hunks = diffLines(lines.join(''), edited.join(''));
    assert.ok(Date.now() - started < 2000, 'diff took too long');
    assert.equal(hunks.length, 4);
    assert.equal(applyHunks(lines.join(''), hunks), edited.join(''));
  });
});

describe('applyHunks', () => {
  test('all hunks give the new text, none the old (seeded random edits, LF and CRLF)', () => {
    const rand = lcg(12345);
    for (let round = 0; round < 300; round++) {
      const eol = round % 2 === 0 ? '\n' : '\r\n';
      const a = randomLines(rand, randInt(rand, 40), eol);
      const b = randomEdit(rand, a, eol);
      // Sometimes drop the final line break.
      const oldText = a.join('').replace(round % 5 === 0 ? /\r?\n$/ : /$^/, '');
      const newText = b.join('').replace(round % 7 === 0 ? /\r?\n$/ : /$^/, '');
      const hunks = diffLines(oldText, newText);
      assert.equal(applyHunks(oldText, hunks), newText, `round ${round}`);
      assert.equal(applyHunks(oldText, []), oldText);
    }
  });

  test('any subset matches a line-by-line reference, and the rest can be applied after', () => {
    const rand = lcg(99);
    let rebased = 0;
    for (let round = 0; round < 300; round++) {
      const a = randomLines(rand, 5 + randInt(rand, 40));
      const b = randomEdit(rand, randomEdit(rand, a));
      const oldText = a.join('');
      const newText = b.join('');
      const hunks = diffLines(oldText, newText);
      const chosen = hunks.filter(() => rand() < 0.5);
      const rest = hunks.filter((h) => !chosen.includes(h));
      const middle = applyHunks(oldText, chosen);
      assert.equal(middle, referenceApply(oldText, chosen), `round ${round}`);
      // The other hunks carried over to the partly edited text complete the change.
      const carried = rebaseHunks(oldText, rest, middle);
      if (carried.conflicts.length === 0) {
        assert.equal(applyHunks(middle, carried.hunks), newText, `round ${round}`);
        rebased++;
      }
    }
    assert.ok(rebased > 250, `only ${rebased} rounds rebased without conflicts`);
  });

  test('CRLF is kept byte for byte by a partial application', () => {
    const oldText = 'one\r\ntwo\r\nthree\r\nfour\r\n';
    const newText = 'one\r\nTWO\r\nthree\r\nFOUR\r\nfive\r\n';
    const hunks = diffLines(oldText, newText);
    assert.equal(hunks.length, 2);
    assert.equal(applyHunks(oldText, [hunks[1]]), 'one\r\ntwo\r\nthree\r\nFOUR\r\nfive\r\n');
    assert.equal(applyHunks(oldText, [hunks[0]]), 'one\r\nTWO\r\nthree\r\nfour\r\n');
  });

  test('a hunk that does not match the text is refused', () => {
    const hunks = diffLines('a\nb\n', 'a\nc\n');
    assert.throws(() => applyHunks('a\nX\n', hunks), HunkMismatchError);
    assert.throws(() => applyHunks('a\n', hunks), HunkMismatchError);
  });

  test('hunkEdits are character offsets in the old text', () => {
    const oldText = 'ab\ncd\nef\n';
    const edits = hunkEdits(oldText, diffLines(oldText, 'ab\nXY\nef\n'));
    assert.deepEqual(edits, [{ start: 3, end: 6, text: 'XY\n' }]);
  });
});

describe('rebaseHunks', () => {
  const base = 'a\nb\nc\nd\ne\nf\n';
  const proposal = diffLines(base, 'a\nb\nC\nd\ne\nf\n'); // changes line 2 (c)

  test('an edit before the hunk shifts it', () => {
    const current = 'new1\nnew2\na\nb\nc\nd\ne\nf\n';
    const result = rebaseHunks(base, proposal, current);
    assert.equal(result.conflicts.length, 0);
    assert.equal(result.hunks[0].oldStart, 4);
    assert.equal(applyHunks(current, result.hunks), 'new1\nnew2\na\nb\nC\nd\ne\nf\n');
  });

  test('edits after it, or right next to it, leave it in place', () => {
    for (const current of ['a\nb\nc\nd\ne\n', 'a\nB\nc\nD\ne\nf\n']) {
      const result = rebaseHunks(base, proposal, current);
      assert.equal(result.conflicts.length, 0, current);
      assert.equal(applyHunks(current, result.hunks), current.replace('c\n', 'C\n'));
    }
  });

  test('an edit of its lines conflicts', () => {
    const result = rebaseHunks(base, proposal, 'a\nb\nc changed\nd\ne\nf\n');
    assert.equal(result.hunks.length, 0);
    assert.equal(result.conflicts.length, 1);
  });

  test('two insertions at the same place conflict; an insertion inside a replaced range conflicts', () => {
    const insert = diffLines(base, 'a\nb\nINS\nc\nd\ne\nf\n');
    assert.equal(rebaseHunks(base, insert, 'a\nb\nUSER\nc\nd\ne\nf\n').conflicts.length, 1);
    const replace = diffLines(base, 'a\nX\nY\nd\ne\nf\n'); // replaces b, c
    assert.equal(rebaseHunks(base, replace, 'a\nb\nUSER\nc\nd\ne\nf\n').conflicts.length, 1);
  });

  test('an insertion after a last line that lost its line break gets one', () => {
    const appended = diffLines('x\ny\n', 'x\ny\nz\n');
    const current = 'x\nyy';
    const result = rebaseHunks('x\ny\n', appended, current);
    assert.equal(result.conflicts.length, 0);
    assert.equal(applyHunks(current, result.hunks), 'x\nyy\nz\n');
  });
});

describe('labels', () => {
  test('hunkLabel names old lines from 1', () => {
    const [h] = diffLines('1\n2\n3\n4\n', '1\nx\ny\nz\n4\n');
    assert.equal(hunkLabel(h), 'lines 2-3: -2 +3');
    assert.equal(hunkLabel(diffLines('1\n2\n', '1\nX\n')[0]), 'line 2: -1 +1');
    assert.equal(hunkLabel(diffLines('1\n2\n', '1\nnew\n2\n')[0]), 'after line 1: -0 +1');
    assert.equal(hunkLabel(diffLines('1\n', 'new\n1\n')[0]), 'at the start: -0 +1');
  });

  test('hunkPreview shows the first non-blank added line, else the removed one, cut', () => {
    assert.equal(hunkPreview(diffLines('a\n', '\n   const x = 1;\n')[0]), '+ const x = 1;');
    assert.equal(hunkPreview(diffLines('a\n  gone();\n', 'a\n')[0]), '- gone();');
    const long = hunkPreview(diffLines('', 'y'.repeat(200))[0], 20);
    assert.equal(long.length, 20);
    assert.ok(long.endsWith('…'));
  });
});

describe('editedSpan', () => {
  test('where the applied edits land in the new text', () => {
    const base = 'a\nb\nc\nd\ne\n';
    const proposed = 'a\nB1\nB2\nc\nd\nE\n';
    const edits = hunkEdits(base, diffLines(base, proposed));
    const span = editedSpan(edits);
    assert.ok(span);
    const after = applyHunks(base, diffLines(base, proposed));
    assert.equal(after, proposed);
    assert.equal(after.slice(span.start, span.end), 'B1\nB2\nc\nd\nE\n');
    assert.equal(editedSpan([]), undefined);
  });
});

// Unit tests of src/common/prompt.ts: the completion prompt layout (stable → volatile), its
// snapped windows, what typing and Enter change, and the token budget.
// Run: node test/run.mjs --node prompt
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  buildCompletionPrompt,
  renderPrompt,
  trimToBudget,
  type CompletionPrompt,
  type CompletionPromptInput,
  type ContextChunk,
  type PromptPiece,
  type PromptWindow,
} from '../../src/common/prompt';

const S = (special: 'fim_prefix' | 'fim_suffix' | 'fim_middle' | 'file_sep' | 'repo_name'): PromptPiece => ({ special });
const T = (text: string): PromptPiece => ({ text });

/** A document of `n` lines "L<i>" (each ending with "\n"), cursor on line `line` after `col` characters. */
function doc(n: number, line: number, col: number, extra: Partial<CompletionPromptInput> = {}): CompletionPromptInput {
  const lines = Array.from({ length: n }, (_, i) => `L${i}`);
  const before = lines
    .slice(0, line)
    .map((l) => l + '\n')
    .join('');
  const after = lines
    .slice(line + 1)
    .map((l) => l + '\n')
    .join('');
  return { prefix: before + lines[line].slice(0, col), suffix: lines[line].slice(col) + '\n' + after, fileName: 'main.ts', ...extra };
}

function textOf(p: PromptPiece | undefined): string {
  assert.ok(p && 'text' in p, `expected a text piece, got ${JSON.stringify(p)}`);
  return p.text;
}

/** Index of the special piece `name` (the last one). */
function indexOf(pieces: PromptPiece[], name: string): number {
  for (let i = pieces.length - 1; i >= 0; i--) {
    const p = pieces[i];
    if ('special' in p && p.special === name) return i;
  }
  return -1;
}

const quarter = (t: string): number => Math.ceil(t.length / 4);
function tokensOf(pieces: PromptPiece[], count: (t: string) => number = quarter): number {
  return pieces.reduce((n, p) => n + ('special' in p ? 1 : count(p.text)), 0);
}

describe('buildCompletionPrompt: layout', () => {
  const input: CompletionPromptInput = {
    chunks: [
      { fileName: 'lib/a.ts', text: 'export const a = 1;\n' },
      { fileName: 'b.py', text: 'x = 2' },
    ],
    prefix: 'import a\n\nfunction f() {\n  ret',
    suffix: 'urn;\n}\n',
    fileName: 'src/main.ts',
    languageId: 'typescript',
  };

  test('fim: chunks, file header, prefix lines, suffix, the lines since a multiple of 8 and the cursor line after fim_middle', () => {
    const r = buildCompletionPrompt(input, { fim: true });
    assert.deepEqual(r, {
      pieces: [
        S('file_sep'),
        T('lib/a.ts\nexport const a = 1;\n'),
        S('file_sep'),
        T('b.py\nx = 2\n'),
        S('file_sep'),
        T('src/main.ts\n'),
        S('fim_prefix'),
        T(''),
        S('fim_suffix'),
        T('urn;\n}\n'),
        S('fim_middle'),
        T('import a\n\nfunction f() {\n  ret'),
      ],
      cursorLine: '  ret',
      indent: 2,
      prefixLinesUsed: 3,
      suffixLinesUsed: 2,
      chunksUsed: 2,
    });
    assert.equal(
      renderPrompt(r.pieces),
      '<|file_sep|>lib/a.ts\nexport const a = 1;\n<|file_sep|>b.py\nx = 2\n<|file_sep|>src/main.ts\n' +
        '<|fim_prefix|><|fim_suffix|>urn;\n}\n<|fim_middle|>import a\n\nfunction f() {\n  ret',
    );
    // from line 8 on, lines before the last multiple of 8 are the prefix
    const long = buildCompletionPrompt(doc(30, 19, 1), { fim: true });
    assert.deepEqual(long.pieces.slice(2), [
      S('fim_prefix'),
      T(Array.from({ length: 16 }, (_, i) => `L${i}\n`).join('')),
      S('fim_suffix'),
      T('19\n' + Array.from({ length: 10 }, (_, i) => `L${20 + i}\n`).join('')),
      S('fim_middle'),
      T('L16\nL17\nL18\nL'),
    ]);
    assert.equal(long.prefixLinesUsed, 19);
    // middleSnapLines 1: the cursor line alone
    const one = buildCompletionPrompt(doc(30, 19, 1), { fim: true, window: { middleSnapLines: 1 } });
    assert.deepEqual(one.pieces.slice(-2), [S('fim_middle'), T('L')]);
  });

  test('no fim: the same without the suffix', () => {
    const r = buildCompletionPrompt(input, { fim: false });
    assert.deepEqual(r.pieces, [
      S('file_sep'),
      T('lib/a.ts\nexport const a = 1;\n'),
      S('file_sep'),
      T('b.py\nx = 2\n'),
      S('file_sep'),
      T('src/main.ts\n'),
      T('import a\n\nfunction f() {\n'),
      T('  ret'),
    ]);
    assert.equal(r.suffixLinesUsed, 0);
    assert.equal(r.prefixLinesUsed, 3);
    assert.equal(
      renderPrompt(r.pieces),
      '<|file_sep|>lib/a.ts\nexport const a = 1;\n<|file_sep|>b.py\nx = 2\n<|file_sep|>src/main.ts\nimport a\n\nfunction f() {\n  ret',
    );
  });

  test('repoName comes first when given', () => {
    const r = buildCompletionPrompt({ prefix: 'a', suffix: '', fileName: 'f', repoName: 'proj' }, { fim: true });
    assert.deepEqual(r.pieces, [
      S('repo_name'),
      T('proj\n'),
      S('file_sep'),
      T('f\n'),
      S('fim_prefix'),
      T(''),
      S('fim_suffix'),
      T(''),
      S('fim_middle'),
      T('a'),
    ]);
  });

  test('empty file: fixed structure with empty text pieces', () => {
    const r = buildCompletionPrompt({ prefix: '', suffix: '', fileName: 'empty.py' }, { fim: true });
    assert.deepEqual(r, {
      pieces: [S('file_sep'), T('empty.py\n'), S('fim_prefix'), T(''), S('fim_suffix'), T(''), S('fim_middle'), T('')],
      cursorLine: '',
      indent: 0,
      prefixLinesUsed: 0,
      suffixLinesUsed: 0,
      chunksUsed: 0,
    });
    assert.deepEqual(buildCompletionPrompt({ prefix: '', suffix: '', fileName: 'empty.py' }, { fim: false }).pieces, [
      S('file_sep'),
      T('empty.py\n'),
      T(''),
      T(''),
    ]);
  });

  test('cursor on line 0: no prefix lines, tab indentation counts to the next multiple of 4', () => {
    const r = buildCompletionPrompt({ prefix: '\t if', suffix: ' x:\n  y\n', fileName: 'a.py' }, { fim: true });
    assert.deepEqual(r.pieces.slice(2), [S('fim_prefix'), T(''), S('fim_suffix'), T(' x:\n  y\n'), S('fim_middle'), T('\t if')]);
    assert.equal(r.cursorLine, '\t if');
    assert.equal(r.indent, 5);
    assert.equal(r.prefixLinesUsed, 0);
    assert.equal(r.suffixLinesUsed, 2);
    assert.equal(buildCompletionPrompt({ prefix: '\tx', suffix: '', fileName: 'a' }, { fim: true, tabSize: 2 }).indent, 2);
  });

  test('CRLF is kept as given', () => {
    const r = buildCompletionPrompt({ prefix: 'a\r\nb\r\n  c', suffix: 'd\r\ne\r\n', fileName: 'w.cs' }, { fim: true });
    assert.deepEqual(r.pieces.slice(2), [S('fim_prefix'), T(''), S('fim_suffix'), T('d\r\ne\r\n'), S('fim_middle'), T('a\r\nb\r\n  c')]);
    assert.equal(r.cursorLine, '  c');
    assert.equal(r.prefixLinesUsed, 2);
    assert.equal(r.suffixLinesUsed, 2);
    const chunk = buildCompletionPrompt(
      { prefix: '', suffix: '', fileName: 'w.cs', chunks: [{ fileName: 'x.cs', text: 'p\r\nq' }] },
      { fim: false },
    );
    assert.deepEqual(chunk.pieces.slice(0, 2), [S('file_sep'), T('x.cs\np\r\nq\r\n')]);
  });
});

describe('buildCompletionPrompt: chunks', () => {
  const chunk = (i: number, lines = 2): ContextChunk => ({
    fileName: `c${i}.ts`,
    text: Array.from({ length: lines }, (_, j) => `c${i} line ${j}\n`).join(''),
  });

  test('order kept (oldest first); only the newest maxChunks', () => {
    const chunks = [chunk(0), chunk(1), chunk(2), chunk(3)];
    const r = buildCompletionPrompt({ chunks, prefix: 'x', suffix: '', fileName: 'm.ts' }, { fim: true, window: { maxChunks: 2 } });
    assert.deepEqual(r.pieces.slice(0, 6), [
      S('file_sep'),
      T('c2.ts\nc2 line 0\nc2 line 1\n'),
      S('file_sep'),
      T('c3.ts\nc3 line 0\nc3 line 1\n'),
      S('file_sep'),
      T('m.ts\n'),
    ]);
    assert.equal(r.chunksUsed, 2);
    const none = buildCompletionPrompt({ chunks, prefix: 'x', suffix: '', fileName: 'm.ts' }, { fim: true, window: { maxChunks: 0 } });
    assert.deepEqual(none.pieces.slice(0, 2), [S('file_sep'), T('m.ts\n')]);
    assert.equal(none.chunksUsed, 0);
  });

  test('default limits: 16 chunks of 64 lines', () => {
    const chunks = Array.from({ length: 20 }, (_, i) => chunk(i, 100));
    const r = buildCompletionPrompt({ chunks, prefix: 'x', suffix: '', fileName: 'm.ts' }, { fim: true });
    assert.equal(r.chunksUsed, 16);
    assert.equal(textOf(r.pieces[1]).split('\n')[0], 'c4.ts');
    const first = textOf(r.pieces[1]);
    assert.equal(first, 'c4.ts\n' + Array.from({ length: 64 }, (_, j) => `c4 line ${j}\n`).join(''));
    assert.equal(textOf(r.pieces[31]).split('\n')[0], 'c19.ts');
  });

  test('maxChunkLines cuts each chunk to its first lines; short and empty chunks are kept whole', () => {
    const chunks = [chunk(0, 5), { fileName: 'e.ts', text: '' }, { fileName: 'n.ts', text: 'one\ntwo' }];
    const r = buildCompletionPrompt({ chunks, prefix: '', suffix: '', fileName: 'm.ts' }, { fim: true, window: { maxChunkLines: 3 } });
    assert.deepEqual(r.pieces.slice(0, 6), [
      S('file_sep'),
      T('c0.ts\nc0 line 0\nc0 line 1\nc0 line 2\n'),
      S('file_sep'),
      T('e.ts\n'),
      S('file_sep'),
      T('n.ts\none\ntwo\n'),
    ]);
    const one = buildCompletionPrompt({ chunks, prefix: '', suffix: '', fileName: 'm.ts' }, { fim: true, window: { maxChunkLines: 1 } });
    assert.equal(textOf(one.pieces[5]), 'n.ts\none\n');
  });
});

describe('buildCompletionPrompt: windows', () => {
  test('prefix window start snaps down: one line of movement keeps it, crossing a multiple of snap moves it by snap', () => {
    const at = (line: number): CompletionPrompt => buildCompletionPrompt(doc(1000, line, 1), { fim: true, window: { middleSnapLines: 1 } });
    const prefixOf = (r: CompletionPrompt): string => textOf(r.pieces[indexOf(r.pieces, 'fim_prefix') + 1]);
    const firstLine = (r: CompletionPrompt): string => prefixOf(r).slice(0, prefixOf(r).indexOf('\n'));

    assert.equal(at(100).prefixLinesUsed, 100);
    assert.equal(firstLine(at(100)), 'L0');
    assert.equal(at(287).prefixLinesUsed, 287); // 256 + 32 - 1: the most it holds
    assert.equal(firstLine(at(287)), 'L0');
    assert.equal(at(288).prefixLinesUsed, 256);
    assert.equal(firstLine(at(288)), 'L32');
    for (const line of [300, 301, 319]) {
      const r = at(line);
      assert.equal(firstLine(r), 'L32', `line ${line}`);
      assert.equal(r.prefixLinesUsed, line - 32);
      assert.ok(prefixOf(r).endsWith(`L${line - 1}\n`));
      assert.equal(r.cursorLine, 'L');
    }
    assert.equal(firstLine(at(320)), 'L64');
    assert.equal(at(320).prefixLinesUsed, 256);
  });

  test('suffix window end snaps, counted from the end of the file', () => {
    const at = (line: number): CompletionPrompt => buildCompletionPrompt(doc(1000, line, 1), { fim: true });
    const suffixOf = (r: CompletionPrompt): string => textOf(r.pieces[indexOf(r.pieces, 'fim_suffix') + 1]);
    // 1000 lines and a final empty one: S = 1000 - line lines after the cursor line.
    const r300 = at(300);
    assert.equal(r300.suffixLinesUsed, 92); // dropped = floor((700 - 64) / 32) * 32 = 608
    assert.ok(suffixOf(r300).startsWith('300\nL301\n'));
    assert.ok(suffixOf(r300).endsWith('\nL391\nL392\n'));
    for (const line of [301, 328]) assert.ok(suffixOf(at(line)).endsWith('\nL392\n'), `line ${line}`);
    assert.equal(at(328).suffixLinesUsed, 64);
    assert.ok(suffixOf(at(329)).endsWith('\nL424\n'));
    assert.equal(at(329).suffixLinesUsed, 95); // 64 + 32 - 1: the most it holds
    const nearEnd = at(990);
    assert.equal(nearEnd.suffixLinesUsed, 10);
    assert.equal(suffixOf(nearEnd), '990\n' + Array.from({ length: 9 }, (_, i) => `L${991 + i}\n`).join(''));
  });

  test('small windows; snapLines below 1 means no snapping', () => {
    const w: Partial<PromptWindow> = { maxPrefixLines: 4, maxSuffixLines: 2, snapLines: 3, middleSnapLines: 1 };
    const r = buildCompletionPrompt(doc(20, 10, 0), { fim: true, window: w });
    // start = floor((10 - 4) / 3) * 3 = 6; S = 10, dropped = floor(8 / 3) * 3 = 6, K = 4
    assert.deepEqual(r.pieces.slice(2), [
      S('fim_prefix'),
      T('L6\nL7\nL8\nL9\n'),
      S('fim_suffix'),
      T('L10\nL11\nL12\nL13\nL14\n'),
      S('fim_middle'),
      T(''),
    ]);
    const exact = buildCompletionPrompt(doc(20, 10, 0), {
      fim: true,
      window: { maxPrefixLines: 4, maxSuffixLines: 2, snapLines: 0, middleSnapLines: 0 },
    });
    assert.deepEqual(exact.pieces.slice(2), [
      S('fim_prefix'),
      T('L6\nL7\nL8\nL9\n'),
      S('fim_suffix'),
      T('L10\nL11\nL12\n'),
      S('fim_middle'),
      T(''),
    ]);
    const noLines = buildCompletionPrompt(doc(20, 10, 2), { fim: true, window: { maxPrefixLines: 0, maxSuffixLines: 0, snapLines: 1 } });
    assert.deepEqual(noLines.pieces.slice(2), [S('fim_prefix'), T(''), S('fim_suffix'), T('0\n'), S('fim_middle'), T('L1')]);
  });
});

describe('buildCompletionPrompt: what typing changes', () => {
  const chunks: ContextChunk[] = [
    { fileName: 'a.ts', text: 'a\n' },
    { fileName: 'b.ts', text: 'b\n' },
  ];
  const base = (line: number, cursorText: string, rest: string): CompletionPromptInput => {
    const d = doc(600, line, 0, { chunks });
    return { ...d, prefix: d.prefix + cursorText, suffix: rest + d.suffix };
  };

  for (const fim of [true, false]) {
    test(`typing a character changes only the last piece (fim: ${fim})`, () => {
      const before = buildCompletionPrompt(base(300, '  foo', 'bar'), { fim });
      const after = buildCompletionPrompt(base(300, '  foo(', 'bar'), { fim });
      assert.equal(after.pieces.length, before.pieces.length);
      assert.deepEqual(after.pieces.slice(0, -1), before.pieces.slice(0, -1));
      const last = (r: CompletionPrompt): string => textOf(r.pieces[r.pieces.length - 1]);
      assert.equal(last(after), last(before) + '(');
      if (fim) assert.ok(last(before).endsWith('\n  foo'));
      else assert.equal(last(before), '  foo');
    });
  }

  test('Enter appends to the last piece only (fim: the finished line stays in the middle); earlier pieces and the suffix stay', () => {
    const before = buildCompletionPrompt(base(300, '  foo', 'bar'), { fim: true });
    const d = base(300, '  foo', 'bar');
    const after = buildCompletionPrompt({ ...d, prefix: d.prefix + '\n  ' }, { fim: true });
    const pi = indexOf(before.pieces, 'fim_prefix') + 1;
    assert.equal(after.pieces.length, before.pieces.length);
    assert.deepEqual(after.pieces.slice(0, -1), before.pieces.slice(0, -1));
    assert.ok(textOf(before.pieces[pi]).startsWith('L32\n') && textOf(before.pieces[pi]).endsWith('L295\n'));
    // The suffix piece is the same: "bar" was the rest of the line before and is the rest of the new line now.
    const last = (r: CompletionPrompt): string => textOf(r.pieces[r.pieces.length - 1]);
    assert.equal(last(before), 'L296\nL297\nL298\nL299\n  foo');
    assert.equal(last(after), last(before) + '\n  ');
    assert.equal(after.prefixLinesUsed, before.prefixLinesUsed + 1);
    assert.equal(after.suffixLinesUsed, before.suffixLinesUsed);
    assert.equal(after.indent, 2);
  });

  test('Enter onto a multiple of 8 moves the middle lines into the prefix piece', () => {
    const d = base(303, '  foo', 'bar');
    const before = buildCompletionPrompt(d, { fim: true });
    const after = buildCompletionPrompt({ ...d, prefix: d.prefix + '\n' }, { fim: true });
    const pi = indexOf(before.pieces, 'fim_prefix') + 1;
    assert.equal(textOf(after.pieces[pi]), textOf(before.pieces[pi]) + 'L296\nL297\nL298\nL299\nL300\nL301\nL302\n  foo\n');
    assert.deepEqual(after.pieces[after.pieces.length - 1], T(''));
  });

  test('Enter across a snap boundary moves the window start by snapLines', () => {
    const d = base(319, 'x', '');
    const before = buildCompletionPrompt(d, { fim: true, window: { middleSnapLines: 1 } });
    const after = buildCompletionPrompt({ ...d, prefix: d.prefix + '\n' }, { fim: true, window: { middleSnapLines: 1 } });
    const pi = indexOf(before.pieces, 'fim_prefix') + 1;
    const dropped = Array.from({ length: 32 }, (_, i) => `L${32 + i}\n`).join('');
    assert.ok(textOf(before.pieces[pi]).startsWith(dropped));
    assert.equal(textOf(after.pieces[pi]), textOf(before.pieces[pi]).slice(dropped.length) + 'x\n');
    assert.equal(after.prefixLinesUsed, before.prefixLinesUsed + 1 - 32);
  });
});

describe('trimToBudget', () => {
  const chunks: ContextChunk[] = [0, 1, 2].map((i) => ({ fileName: `c${i}.ts`, text: `chunk ${i} ${'x'.repeat(40)}\n`.repeat(3) }));
  // (middleSnapLines 1: the cursor line alone after fim_middle, so that the stages are easy to see)
  const window: Partial<PromptWindow> = { maxPrefixLines: 8, maxSuffixLines: 4, snapLines: 2, middleSnapLines: 1 };
  const opts = { fim: true, window };
  // 40 lines; cursor on line 20 after "    co": prefix start = 12 (8 lines), S = 20, dropped = 16, K = 4.
  const input: CompletionPromptInput = (() => {
    const d = doc(40, 20, 0, { chunks });
    return { ...d, prefix: d.prefix + '    const value = compute(', suffix: 'a, b);' + d.suffix };
  })();
  const full = buildCompletionPrompt(input, opts);
  const fullTokens = tokensOf(full.pieces);

  test('fits as is: the same prompt', () => {
    const r = trimToBudget(input, opts, quarter, fullTokens);
    assert.deepEqual(r, { ...full, tokens: fullTokens, fits: true });
    assert.equal(full.prefixLinesUsed, 8);
    assert.equal(full.suffixLinesUsed, 4);
  });

  test('first the oldest chunks go, one at a time', () => {
    const r = trimToBudget(input, opts, quarter, fullTokens - 1);
    assert.deepEqual(r.pieces, buildCompletionPrompt({ ...input, chunks: chunks.slice(1) }, opts).pieces);
    assert.equal(r.chunksUsed, 2);
    const noChunks = buildCompletionPrompt({ ...input, chunks: [] }, opts);
    const r2 = trimToBudget(input, opts, quarter, tokensOf(noChunks.pieces));
    assert.deepEqual(r2.pieces, noChunks.pieces);
    assert.equal(r2.fits, true);
  });

  test('then the prefix window shrinks from the front by snapLines, start kept snapped', () => {
    const noChunks = tokensOf(buildCompletionPrompt({ ...input, chunks: [] }, opts).pieces);
    const r = trimToBudget(input, opts, quarter, noChunks - 1);
    assert.equal(r.chunksUsed, 0);
    assert.equal(r.prefixLinesUsed, 6);
    assert.equal(r.suffixLinesUsed, 4);
    assert.equal(textOf(r.pieces[indexOf(r.pieces, 'fim_prefix') + 1]), 'L14\nL15\nL16\nL17\nL18\nL19\n');
    assert.deepEqual(
      r.pieces,
      buildCompletionPrompt({ ...input, chunks: [] }, { fim: true, window: { ...window, maxPrefixLines: 6 } }).pieces,
    );
  });

  test('then the suffix window from the end, then the rest of the line, then the cursor line from its start', () => {
    const noPrefix = buildCompletionPrompt({ ...input, chunks: [] }, { fim: true, window: { ...window, maxPrefixLines: 0, snapLines: 1 } });
    assert.equal(noPrefix.prefixLinesUsed, 0);
    const t0 = tokensOf(noPrefix.pieces);
    const r = trimToBudget(input, opts, quarter, t0 - 1);
    assert.equal(r.prefixLinesUsed, 0);
    assert.equal(r.suffixLinesUsed, 2);
    assert.equal(textOf(r.pieces[indexOf(r.pieces, 'fim_suffix') + 1]), 'a, b);L20\nL21\nL22\n');

    // The smallest structure: file_sep, "main.ts\n" (2), fim_prefix, "", fim_suffix, fim_middle = 6 tokens;
    // the cursor line is 26 characters (7 tokens); the rest of the line with its newline, "a, b);L20\n", 3.
    const small = trimToBudget(input, opts, quarter, 15);
    assert.equal(small.suffixLinesUsed, 0);
    assert.deepEqual(small.pieces, [
      S('file_sep'),
      T('main.ts\n'),
      S('fim_prefix'),
      T(''),
      S('fim_suffix'),
      T('a, b);L2'),
      S('fim_middle'),
      T('    const value = compute('),
    ]);
    assert.equal(small.tokens, 15);

    const smaller = trimToBudget(input, opts, quarter, 10);
    assert.deepEqual(smaller.pieces, [
      S('file_sep'),
      T('main.ts\n'),
      S('fim_prefix'),
      T(''),
      S('fim_suffix'),
      T(''),
      S('fim_middle'),
      T('value = compute('),
    ]);
    assert.equal(smaller.tokens, 10);
    assert.equal(smaller.fits, true);
    assert.equal(smaller.cursorLine, '    const value = compute(');
    assert.equal(smaller.indent, 4);

    const impossible = trimToBudget(input, opts, quarter, 3);
    assert.deepEqual(impossible.pieces, [
      S('file_sep'),
      T('main.ts\n'),
      S('fim_prefix'),
      T(''),
      S('fim_suffix'),
      T(''),
      S('fim_middle'),
      T(''),
    ]);
    assert.equal(impossible.fits, false);
    assert.equal(impossible.tokens, 6);
  });

  test('with lines in the middle (the default): every budget that can fit does, and fewer tokens never hold more lines', () => {
    const withMiddle = { fim: true, window: { ...window, middleSnapLines: 8 } };
    const all = tokensOf(buildCompletionPrompt(input, withMiddle).pieces);
    let prevLines = Infinity;
    for (let budget = all; budget >= 6; budget--) {
      const r = trimToBudget(input, withMiddle, quarter, budget);
      assert.ok(r.fits && r.tokens <= budget, `budget ${budget}: ${r.tokens}`);
      assert.ok(r.prefixLinesUsed <= prevLines, `budget ${budget}`);
      prevLines = r.prefixLinesUsed;
      // the lines since line 16 go after fim_middle while the window holds them
      if (r.prefixLinesUsed >= 4) assert.ok(textOf(r.pieces[r.pieces.length - 1]).startsWith('L16\nL17\nL18\nL19\n'));
    }
  });

  test('every budget: fits when possible, stage order respected, and each stage stops as soon as it fits', () => {
    let prev: { chunks: number; prefix: number; suffix: number; rest: number; cursor: number } | undefined;
    for (let budget = fullTokens + 2; budget >= 0; budget--) {
      const r = trimToBudget(input, opts, quarter, budget);
      assert.equal(r.tokens, tokensOf(r.pieces), `budget ${budget}`);
      assert.equal(r.fits, r.tokens <= budget);
      assert.equal(r.fits, budget >= 6, `budget ${budget}`);
      const rest = textOf(r.pieces[indexOf(r.pieces, 'fim_suffix') + 1]);
      const cursor = textOf(r.pieces[r.pieces.length - 1]);
      const state = {
        chunks: r.chunksUsed,
        prefix: r.prefixLinesUsed,
        suffix: r.suffixLinesUsed,
        rest: rest.length,
        cursor: cursor.length,
      };
      // Stage order: a later stage only shrinks once the earlier ones are exhausted.
      if (state.prefix < 8) assert.equal(state.chunks, 0);
      if (state.suffix < 4) assert.equal(state.prefix, 0);
      if (state.suffix === 0 && !rest.includes('\n')) assert.ok(input.suffix.startsWith(rest));
      if (state.cursor < 26) assert.equal(rest, '');
      assert.ok(cursor.length === 0 || '    const value = compute('.endsWith(cursor));
      // Monotone: less budget never gives a bigger prompt.
      if (prev) {
        for (const k of Object.keys(state) as (keyof typeof state)[]) assert.ok(state[k] <= prev[k], `budget ${budget}: ${k} grew`);
      }
      prev = state;
      // Each stage stops at the first fitting step: with one more unit of the stage being cut, it does not fit.
      if (r.fits && r.tokens < fullTokens) {
        const noChunks = { ...input, chunks: [] };
        let bigger: PromptPiece[];
        if (state.chunks < 3 && state.prefix === 8) {
          bigger = buildCompletionPrompt({ ...input, chunks: chunks.slice(2 - state.chunks) }, opts).pieces;
        } else if (state.prefix < 8 && state.suffix === 4) {
          bigger = buildCompletionPrompt(noChunks, { fim: true, window: { ...window, maxPrefixLines: state.prefix + 2 } }).pieces;
        } else if (state.suffix > 0 || state.rest === 'a, b);L20\n'.length) {
          bigger = buildCompletionPrompt(noChunks, {
            fim: true,
            window: { ...window, maxPrefixLines: 0, maxSuffixLines: state.suffix + 2 },
          }).pieces;
        } else if (state.cursor === 26) {
          bigger = r.pieces.slice(0, 5).concat(T('a, b);L20\n'.slice(0, state.rest + 1)), r.pieces.slice(6));
        } else {
          bigger = r.pieces.slice(0, -1).concat(T('    const value = compute('.slice(-(state.cursor + 1))));
        }
        assert.ok(tokensOf(bigger) > budget, `budget ${budget}: a bigger prompt (${tokensOf(bigger)} tokens) fits too`);
      }
    }
  });

  test('no fim: prefix lines, then the cursor line', () => {
    const o = { fim: false, window };
    const r = trimToBudget(input, o, quarter, 4 + 1 + quarter('    const value = compute('));
    assert.deepEqual(r.pieces, [S('file_sep'), T('main.ts\n'), T('L18\nL19\n'), T('    const value = compute(')]);
    assert.equal(r.prefixLinesUsed, 2);
    assert.equal(r.suffixLinesUsed, 0);
  });

  test('countTokens: once per distinct text, a few calls per stage even on a big file', () => {
    const big = doc(5000, 4000, 2, { chunks: Array.from({ length: 16 }, (_, i) => ({ fileName: `f${i}`, text: 'y'.repeat(200) + '\n' })) });
    const seen = new Map<string, number>();
    const count = (t: string): number => {
      seen.set(t, (seen.get(t) ?? 0) + 1);
      return quarter(t);
    };
    const r = trimToBudget(big, { fim: true }, count, 20);
    assert.equal(r.fits, true);
    assert.equal(r.chunksUsed, 0);
    assert.equal(r.prefixLinesUsed, 0);
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      'a text was counted twice',
    );
    assert.ok(!seen.has(''), "'' was counted");
    assert.ok(seen.size < 60, `${seen.size} calls`);
  });

  test('surrogate pairs are never split', () => {
    const r = trimToBudget({ prefix: '😀😀😀', suffix: '', fileName: 'e' }, { fim: false }, (t) => t.length, 6);
    assert.deepEqual(r.pieces.slice(2), [T(''), T('😀')]);
    assert.equal(r.tokens, 5);
    assert.equal(r.fits, true);
    const rest = trimToBudget({ prefix: '', suffix: '😀😀', fileName: 'e' }, { fim: true }, (t) => t.length, 6 + 3);
    assert.deepEqual(rest.pieces.slice(4), [S('fim_suffix'), T('😀'), S('fim_middle'), T('')]);
  });
});

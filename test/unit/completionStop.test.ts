// Unit tests of src/common/completionStop.ts: when a streamed code completion stops (dedent,
// closing lines, stop strings, line limits) and how a suggestion is cleaned against the text after
// the cursor. Run: node test/run.mjs --node completionStop
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  firstLineEnd,
  CompletionStopper,
  indentWidth,
  trimSuggestion,
  type CompletionStopperOptions,
  type StopCheck,
} from '../../src/common/completionStop';

function stopper(o: Partial<CompletionStopperOptions> & { cursorLinePrefix: string }): CompletionStopper {
  return new CompletionStopper({ cursorIndent: indentWidth(o.cursorLinePrefix), stopOnDedent: true, stop: [], ...o });
}

/** Feeds `text` in pieces of `step` characters, as a streaming caller would; returns the first stopping check (or the last check). */
function stream(s: CompletionStopper, text: string, step = 1): { check: StopCheck; consumed: number } {
  let last: StopCheck = { stop: false, keep: '' };
  for (let n = step; n < text.length + step; n += step) {
    const upTo = Math.min(n, text.length);
    last = s.check(text.slice(0, upTo));
    if (last.stop) return { check: last, consumed: upTo };
  }
  return { check: last, consumed: text.length };
}

describe('indentWidth', () => {
  test('spaces, tabs to tab stops, other characters end it', () => {
    assert.equal(indentWidth(''), 0);
    assert.equal(indentWidth('x'), 0);
    assert.equal(indentWidth('    x'), 4);
    assert.equal(indentWidth('\tx'), 4);
    assert.equal(indentWidth('  \tx'), 4);
    assert.equal(indentWidth('\t  x'), 6);
    assert.equal(indentWidth('\t\t'), 8);
    assert.equal(indentWidth('   \r'), 3);
    assert.equal(indentWidth('\tx', 8), 8);
    assert.equal(indentWidth(' \tx', 2), 2);
    assert.equal(indentWidth('\u00a0x'), 0);
  });
});

describe('CompletionStopper: dedent', () => {
  test('Python: blank indented cursor line, stops at the dedented def (partial line) and drops blank lines', () => {
    const s = stopper({ cursorLinePrefix: '        ', cursorIndent: 8 });
    const text = 'return self.w * self.h\n\n    def perimeter(self):\n        return 0\n';
    const { check, consumed } = stream(s, text);
    assert.deepEqual(check, { stop: true, keep: 'return self.w * self.h', reason: 'dedent' });
    // Stops on the first non-blank character of the dedented line, not at its end.
    assert.equal(consumed, text.indexOf('def') + 1);
  });

  test("Python: lines at the cursor's indentation or deeper continue; blank lines never stop", () => {
    const s = stopper({ cursorLinePrefix: '    x = 1' });
    assert.deepEqual(s.check('\n    if x:\n        y = 2\n\n    z = 3\n'), {
      stop: false,
      keep: '\n    if x:\n        y = 2\n\n    z = 3\n',
    });
    assert.deepEqual(s.check('\n    if x:\n        y = 2\n\n  \n'), { stop: false, keep: '\n    if x:\n        y = 2\n\n  \n' });
    assert.deepEqual(s.check('\n    if x:\n        y = 2\n\nprint(x)'), {
      stop: true,
      keep: '\n    if x:\n        y = 2',
      reason: 'dedent',
    });
  });

  test('the continuation of the cursor line (line 0) is never checked', () => {
    const s = stopper({ cursorLinePrefix: '        ', cursorIndent: 8 });
    assert.deepEqual(s.check('x = 1'), { stop: false, keep: 'x = 1' });
    const t = stopper({ cursorLinePrefix: '', cursorIndent: 0 });
    assert.deepEqual(t.check('}\n}\n'), { stop: false, keep: '}\n}\n' });
  });

  test('a partial whitespace-only line does not stop yet', () => {
    const s = stopper({ cursorLinePrefix: '    ', cursorIndent: 4 });
    assert.deepEqual(s.check('a()\n  '), { stop: false, keep: 'a()\n  ' });
    assert.deepEqual(s.check('a()\n  b'), { stop: true, keep: 'a()', reason: 'dedent' });
  });

  test('non-blank cursor line: its own indentation is the reference, whatever cursorIndent says', () => {
    const s = stopper({ cursorLinePrefix: '  foo(a, ', cursorIndent: 12 });
    assert.deepEqual(s.check('b)\n  bar()\n x'), { stop: true, keep: 'b)\n  bar()', reason: 'dedent' });
  });

  test('tabs are compared as widths', () => {
    const s = stopper({ cursorLinePrefix: '\t\tx = 1;', tabSize: 4 });
    assert.deepEqual(s.check('\n\t\ty = 2;\n        z = 3;\n\t}'), { stop: true, keep: '\n\t\ty = 2;\n        z = 3;', reason: 'dedent' });
  });

  test('stopOnDedent false: no dedent or closer stops', () => {
    const s = stopper({ cursorLinePrefix: '    if (x) {', stopOnDedent: false });
    assert.deepEqual(s.check('\n        a();\n    }\n}\nfoo'), { stop: false, keep: '\n        a();\n    }\n}\nfoo' });
  });

  test("CRLF output: the '\\r' of the last kept line is cut with its newline", () => {
    const s = stopper({ cursorLinePrefix: '    ', cursorIndent: 4 });
    assert.deepEqual(s.check('a()\r\n  b'), { stop: true, keep: 'a()', reason: 'dedent' });
    const t = stopper({ cursorLinePrefix: '    ', cursorIndent: 4, maxLines: 1 });
    assert.deepEqual(t.check('a()\r\n    b()\r\n'), { stop: true, keep: 'a()', reason: 'lines' });
    // maxLines cuts at the end of line 0, before the dedent on line 1 is reached.
    assert.deepEqual(t.check('a()\r\n  b'), { stop: true, keep: 'a()', reason: 'lines' });
  });
});

describe('CompletionStopper: C-like blocks and closing lines', () => {
  test("closing brace below the cursor's indentation stops (dedent)", () => {
    const s = stopper({ cursorLinePrefix: '    const a = 1;' });
    assert.deepEqual(s.check('\n    return a;\n}\n\nfunction g() {'), { stop: true, keep: '\n    return a;', reason: 'dedent' });
  });

  test("unmatched closer at the cursor's indentation, already in the document below: dropped", () => {
    const s = stopper({ cursorLinePrefix: '    if (x) {', textAfterCursor: '\n        old();\n    }\n}\n' });
    const { check, consumed } = stream(s, '\n        a();\n    }\n    b();\n');
    assert.deepEqual(check, { stop: true, keep: '\n        a();', reason: 'dedent' });
    assert.equal(consumed, '\n        a();\n    }'.length); // stops as soon as the brace shows
  });

  test('unmatched closer, auto-closed on the cursor line: dropped', () => {
    const s = stopper({ cursorLinePrefix: '    foo(', textAfterCursor: ');\n}' });
    assert.deepEqual(s.check('\n        a,\n    );\n'), { stop: true, keep: '\n        a,', reason: 'dedent' });
  });

  test('unmatched closer, no textAfterCursor given: dropped (conservative)', () => {
    const s = stopper({ cursorLinePrefix: '    if (x) {' });
    assert.deepEqual(s.check('\n        a();\n    }'), { stop: true, keep: '\n        a();', reason: 'dedent' });
  });

  test('unmatched closer missing from the document: the closing line is kept and generation stops after it', () => {
    // The '}' below the cursor is at indentation 0: it closes the function, not the if.
    const s = stopper({ cursorLinePrefix: '    if (x) {', textAfterCursor: '\n}\n' });
    const text = '\n        a();\n    }\n    b();\n';
    assert.deepEqual(s.check('\n        a();\n    }'), { stop: false, keep: '\n        a();\n    }' });
    const { check, consumed } = stream(s, text);
    assert.deepEqual(check, { stop: true, keep: '\n        a();\n    }', reason: 'dedent' });
    assert.equal(consumed, '\n        a();\n    }\n'.length);
  });

  test("pure closer lines with punctuation are kept: '});'", () => {
    const s = stopper({ cursorLinePrefix: "  it('x', () => {", textAfterCursor: '' });
    assert.deepEqual(s.check("\n    expect(1);\n  });\n  it('y'"), { stop: true, keep: '\n    expect(1);\n  });', reason: 'dedent' });
  });

  test("a closing line that goes on ('} else {') continues, and its own closer is then matched", () => {
    const s = stopper({ cursorLinePrefix: '    if (x) {', textAfterCursor: '\n}' });
    const text = '\n        a();\n    } else {\n        b();\n    }\n    c();\n}\n';
    assert.deepEqual(s.check(text), { stop: true, keep: '\n        a();\n    } else {\n        b();\n    }\n    c();', reason: 'dedent' });
  });

  test("a block opened by the generated text at the cursor's indentation closes without stopping", () => {
    const s = stopper({ cursorLinePrefix: '    const x = 1;' });
    const text = '\n    if (y) {\n        z();\n    }\n    w();\n}\n';
    assert.deepEqual(s.check(text), { stop: true, keep: '\n    if (y) {\n        z();\n    }\n    w();', reason: 'dedent' });
  });

  test("blank-indented cursor line: closers at the cursor's indentation never stop", () => {
    const s = stopper({ cursorLinePrefix: '    ', cursorIndent: 4 });
    assert.deepEqual(s.check('a();\n    }\n}\n'), { stop: true, keep: 'a();\n    }', reason: 'dedent' });
  });

  test("closers deeper than the cursor's indentation continue", () => {
    const s = stopper({ cursorLinePrefix: '    foo({' });
    assert.deepEqual(s.check('\n        a: [\n            1,\n        ],\n'), {
      stop: false,
      keep: '\n        a: [\n            1,\n        ],\n',
    });
  });

  test("Ruby/Lua 'end': a word, not a prefix of a word", () => {
    const s = stopper({ cursorLinePrefix: '  def area' });
    assert.deepEqual(s.check('\n    w * h\n  en'), { stop: false, keep: '\n    w * h\n  en' });
    assert.deepEqual(s.check('\n    w * h\n  end'), { stop: false, keep: '\n    w * h\n  end' });
    assert.deepEqual(s.check('\n    w * h\n  end\n'), { stop: true, keep: '\n    w * h', reason: 'dedent' });
    assert.deepEqual(s.check('\n    w * h\n  endpoint = 1\n'), { stop: false, keep: '\n    w * h\n  endpoint = 1\n' });
    const kept = stopper({ cursorLinePrefix: '  def area', textAfterCursor: '\nend\n' });
    assert.deepEqual(kept.check('\n    w * h\n  end\n  def'), { stop: true, keep: '\n    w * h\n  end', reason: 'dedent' });
  });
});

describe('CompletionStopper: stop strings', () => {
  test('found across streamed pieces; text from it on is dropped', () => {
    const s = stopper({ cursorLinePrefix: 'x = ', stopOnDedent: false, stop: ['```', '<|endoftext|>'] });
    assert.deepEqual(s.check('foo`'), { stop: false, keep: 'foo`' });
    assert.deepEqual(s.check('foo``'), { stop: false, keep: 'foo``' });
    assert.deepEqual(s.check('foo```bar'), { stop: true, keep: 'foo', reason: 'stop' });
    const { check, consumed } = stream(s, 'a\nb<|endoftext|>zzz', 3);
    assert.deepEqual(check, { stop: true, keep: 'a\nb', reason: 'stop' });
    assert.equal(consumed, 18); // pieces of 3: "a\nb<|endoftext|>" (16) is complete at the check of 18
  });

  test('the earliest occurrence wins, whatever the order of the list', () => {
    const s = stopper({ cursorLinePrefix: '', stopOnDedent: false, stop: ['b', 'ab', 'xa'] });
    assert.deepEqual(s.check('zzxabb'), { stop: true, keep: 'zz', reason: 'stop' });
    const t = stopper({ cursorLinePrefix: '', stopOnDedent: false, stop: ['', 'cd'] });
    assert.deepEqual(t.check('abcdef'), { stop: true, keep: 'ab', reason: 'stop' });
    assert.deepEqual(t.check('ab'), { stop: false, keep: 'ab' });
  });

  test('a dedent before the stop string wins; one after it is ignored', () => {
    const s = stopper({ cursorLinePrefix: '    ', cursorIndent: 4, stop: ['\n\n\n'] });
    assert.deepEqual(s.check('a()\nb()\n\n\n'), { stop: true, keep: 'a()', reason: 'dedent' });
    assert.deepEqual(s.check('a()\n\n\nb()'), { stop: true, keep: 'a()', reason: 'stop' });
    // The text after the stop string is not read: "  <stop>" is only whitespace before it.
    const t = stopper({ cursorLinePrefix: '    ', cursorIndent: 4, stop: ['<|'] });
    assert.deepEqual(t.check('a()\n  <|im_end|>'), { stop: true, keep: 'a()\n  ', reason: 'stop' });
  });
});

describe('CompletionStopper: maxLines', () => {
  test('stops at the newline that completes the n-th non-blank line', () => {
    const s = stopper({ cursorLinePrefix: '    ', cursorIndent: 4, maxLines: 2 });
    assert.deepEqual(s.check('a()\n'), { stop: false, keep: 'a()\n' });
    assert.deepEqual(s.check('a()\n\n    b()'), { stop: false, keep: 'a()\n\n    b()' });
    assert.deepEqual(s.check('a()\n\n    b()\n    c()'), { stop: true, keep: 'a()\n\n    b()', reason: 'lines' });
  });

  test('an empty continuation of the cursor line does not count', () => {
    const s = stopper({ cursorLinePrefix: '    foo();', maxLines: 1 });
    assert.deepEqual(s.check('\n'), { stop: false, keep: '\n' });
    assert.deepEqual(s.check('\n    bar();\n'), { stop: true, keep: '\n    bar();', reason: 'lines' });
    assert.deepEqual(s.check(' // done\n    bar();'), { stop: true, keep: ' // done', reason: 'lines' });
  });

  test('no limit when maxLines is 0 or missing', () => {
    const s = stopper({ cursorLinePrefix: '', maxLines: 0 });
    assert.deepEqual(s.check('a\nb\nc\n'), { stop: false, keep: 'a\nb\nc\n' });
  });

  test('a dedent on an earlier line wins over the line limit', () => {
    const s = stopper({ cursorLinePrefix: '    ', cursorIndent: 4, maxLines: 3 });
    assert.deepEqual(s.check('a()\nb()\nc()\n'), { stop: true, keep: 'a()', reason: 'dedent' });
  });
});

describe('trimSuggestion', () => {
  test('drops the repeated rest of the line', () => {
    assert.equal(trimSuggestion('foo)', ')'), 'foo');
    assert.equal(trimSuggestion('foo);', ');\nbar'), 'foo');
    assert.equal(trimSuggestion('foo);', ');  \r\nbar'), 'foo');
    assert.equal(trimSuggestion('foo)  ', ')'), 'foo');
    assert.equal(trimSuggestion('\n  a,\n  b\n)', ')'), '\n  a,\n  b\n');
  });

  test("'' when the suggestion is already there or is only whitespace", () => {
    assert.equal(trimSuggestion(')', ')'), '');
    assert.equal(trimSuggestion('foo', 'foo(bar)'), '');
    assert.equal(trimSuggestion('a\n  b', 'a\n  b\nc'), '');
    assert.equal(trimSuggestion('   ', ''), '');
    assert.equal(trimSuggestion('', 'x'), '');
    assert.equal(trimSuggestion('  )', ')'), '');
  });

  test('keeps suggestions that do not end with the whole rest of the line', () => {
    assert.equal(trimSuggestion('foo)', ''), 'foo)');
    assert.equal(trimSuggestion('foo)', '\n)'), 'foo)');
    assert.equal(trimSuggestion('x)', '))'), 'x)');
    assert.equal(trimSuggestion('foo(a)', ') + 1'), 'foo(a)');
    assert.equal(trimSuggestion('bar', '   '), 'bar');
  });
});

describe('firstLineEnd', () => {
  test('the newline ending the first line with text; blank lines before it do not count', () => {
    assert.equal(firstLineEnd('return x;\n}'), 9);
    assert.equal(firstLineEnd('\n    return x;\n'), 14);
    assert.equal(firstLineEnd('  \n\t\n  y = 1\r\nz'), 13);
    assert.equal(firstLineEnd('return x;'), -1, 'no newline yet');
    assert.equal(firstLineEnd('\n  \n'), -1, 'only blank lines');
    assert.equal(firstLineEnd(''), -1);
  });
});

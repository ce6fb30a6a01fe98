// Unit tests of src/common/refactor.ts: the edit prompts (context, selection, per-action task),
// extracting code from model answers (fences, streaming, CRLF) and fitting it to the replaced lines.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  answerLimitText,
  answerTokenBudget,
  appendCode,
  buildEditMessages,
  commonIndent,
  cutOffForecast,
  docConvention,
  expectedAnswerTokens,
  extractCode,
  fitReplacement,
  generationLimitState,
  normalizeNewCode,
  partialCode,
  selectionLines,
  splitRegion,
  testFileNameFor,
  type EditPromptInput,
} from '../../src/common/refactor';

describe('extractCode', () => {
  test('a fenced block with a language, prose around it', () => {
    const answer = 'Here is the code:\n```ts\nconst x = 1;\n  return x;\n```\nThis is better because...';
    assert.deepEqual(extractCode(answer), { code: 'const x = 1;\n  return x;', fenced: true, closed: true });
  });

  test('a fence without a language, and ~~~ fences', () => {
    assert.equal(extractCode('```\na\nb\n```').code, 'a\nb');
    assert.equal(extractCode('~~~python\ndef f():\n    pass\n~~~\n').code, 'def f():\n    pass');
  });

  test('several blocks: the first one', () => {
    assert.equal(extractCode('```js\nfirst();\n```\nand usage:\n```js\nsecond();\n```').code, 'first();');
  });

  test('a closing fence must use the same character and be at least as long', () => {
    assert.equal(extractCode('~~~\n```\ninner\n```\n~~~').code, '```\ninner\n```');
    assert.equal(extractCode('````md\n```ts\nx\n```\n````').code, '```ts\nx\n```');
    // A fence line with an info string never closes.
    assert.equal(extractCode('```\na\n```ts\nb\n```').code, 'a\n```ts\nb');
  });

  test('an unterminated fence (streaming or cut off): everything after it, not closed', () => {
    assert.deepEqual(extractCode('```ts\nconst a = 1;\nconst b'), { code: 'const a = 1;\nconst b', fenced: true, closed: false });
    // A closing fence still arriving is dropped.
    assert.deepEqual(extractCode('```ts\nconst a = 1;\n``'), { code: 'const a = 1;', fenced: true, closed: false });
    assert.deepEqual(extractCode('```ts\n'), { code: '', fenced: true, closed: false });
  });

  test('no fence: the whole answer without blank lines around it', () => {
    assert.deepEqual(extractCode('\n\n  indented();\nnext();\n\n'), { code: '  indented();\nnext();', fenced: false, closed: false });
  });

  test('CRLF answers', () => {
    assert.equal(extractCode('```c\r\nint x;\r\nint y;\r\n```\r\n').code, 'int x;\nint y;');
  });

  test('indented fences are recognised', () => {
    assert.equal(extractCode('  ```ts\n  code();\n  ```').code, '  code();');
  });

  test('a <think> part is skipped; an unfinished one leaves nothing', () => {
    assert.equal(extractCode('<think>maybe ```x``` here</think>\n```py\nok()\n```').code, 'ok()');
    assert.equal(extractCode('<think>still thinking').code, '');
  });
});

describe('partialCode (the live preview of an answer being written)', () => {
  test('grows with the answer, token by token, inside and outside a fence', () => {
    assert.equal(partialCode('const a'), 'const a');
    assert.equal(partialCode('```ts\nconst a = 1;\nconst b'), 'const a = 1;\nconst b');
    assert.equal(partialCode('```ts\nconst a = 1;\n```\nmore words'), 'const a = 1;');
  });

  test('an unfinished last line that may become a fence or a <think> tag is left out', () => {
    assert.equal(partialCode('Here it is:\n``'), 'Here it is:');
    assert.equal(partialCode('Here it is:\n```t'), 'Here it is:');
    assert.equal(partialCode('Here it is:\n```ts\n'), '');
    assert.equal(partialCode('```ts\nconst a = 1;\n`'), 'const a = 1;\n'); // (the blank line goes in fitReplacement)
    assert.equal(partialCode('<thi'), '');
    assert.equal(partialCode('<think>hmm'), '');
  });
});

describe('fitReplacement', () => {
  const original = '    if (a) {\n        b();\n    }\n';

  test('code that kept the indentation is used as is', () => {
    assert.equal(fitReplacement('    if (a) {\n        c();\n    }', original), '    if (a) {\n        c();\n    }\n');
  });

  test('code that dropped the base indentation is re-indented', () => {
    assert.equal(fitReplacement('if (a) {\n    c();\n}\n\nd();', original), '    if (a) {\n        c();\n    }\n\n    d();\n');
  });

  test('code indented too much is brought back to the base indentation', () => {
    assert.equal(fitReplacement('        x();\n            y();', original), '    x();\n        y();\n');
  });

  test('tabs as base indentation', () => {
    assert.equal(fitReplacement('a();\nb();', '\t\told();\n'), '\t\ta();\n\t\tb();\n');
  });

  test('CRLF originals get CRLF; no final line break when the original had none', () => {
    assert.equal(fitReplacement('x();\ny();', '  a();\r\n  b();\r\n'), '  x();\r\n  y();\r\n');
    assert.equal(fitReplacement('x();\r\ny();', '  last();'), '  x();\n  y();');
    assert.equal(fitReplacement('x();\ny();', 'one line, no break', '\r\n'), 'x();\r\ny();');
  });

  test("blank lines around the original stay; the code's own are dropped", () => {
    assert.equal(fitReplacement('\n\nnew();\n\n', '\n  old();\n\n'), '\n  new();\n\n');
  });

  test('trailing spaces are dropped; empty code gives nothing', () => {
    assert.equal(fitReplacement('a();   \n', 'b();\n'), 'a();\n');
    assert.equal(fitReplacement('  \n\n', 'b();\n'), '');
  });

  test('an all-blank original adds no blank lines', () => {
    assert.equal(fitReplacement('x', '\n'), 'x\n');
  });
});

describe('regions', () => {
  test('selectionLines: a selection ending at column 0 leaves that line out', () => {
    assert.deepEqual(selectionLines({ line: 2, character: 4 }, { line: 5, character: 0 }), { startLine: 2, endLine: 4 });
    assert.deepEqual(selectionLines({ line: 2, character: 4 }, { line: 5, character: 1 }), { startLine: 2, endLine: 5 });
    assert.deepEqual(selectionLines({ line: 3, character: 0 }, { line: 3, character: 0 }), { startLine: 3, endLine: 3 });
  });

  test('splitRegion takes whole lines with their breaks', () => {
    assert.deepEqual(splitRegion('a\r\nb\r\nc\r\n', { startLine: 1, endLine: 1 }), { before: 'a\r\n', region: 'b\r\n', after: 'c\r\n' });
    assert.deepEqual(splitRegion('a\nb', { startLine: 1, endLine: 1 }), { before: 'a\n', region: 'b', after: '' });
    assert.deepEqual(splitRegion('a\nb\n', { startLine: 0, endLine: 9 }), { before: '', region: 'a\nb\n', after: '' });
  });

  test('commonIndent', () => {
    assert.equal(commonIndent(['  a', '', '    b', '  ']), '  ');
    assert.equal(commonIndent(['\t a', '\t\tb']), '\t');
    assert.equal(commonIndent([]), '');
  });
});

describe('buildEditMessages', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `line${i};`);
  const text = lines.join('\n') + '\n';
  const input = (extra: Partial<EditPromptInput>): EditPromptInput => ({
    action: 'refactor',
    fileName: 'src/app.ts',
    languageId: 'typescript',
    text,
    region: { startLine: 40, endLine: 42 },
    ...extra,
  });

  test('a system message asking for only code, and the file, language, selection and context', () => {
    const messages = buildEditMessages(input({ instruction: 'use const', contextLines: 3 }));
    assert.equal(messages.length, 2);
    assert.equal(messages[0].role, 'system');
    assert.match(messages[0].content, /ONLY code/);
    const user = messages[1].content;
    assert.equal(messages[1].role, 'user');
    assert.match(user, /File: src\/app\.ts \(TypeScript\)/);
    assert.match(user, /The code to rewrite \(lines 41-43\):\n```ts\nline40;\nline41;\nline42;\n```/);
    assert.match(user, /Lines 38-40 of the file, before the code[^\n]*\n```ts\nline37;\nline38;\nline39;\n```/);
    assert.match(user, /Lines 44-46, after the code[^\n]*\n```ts\nline43;\nline44;\nline45;\n```/);
    assert.doesNotMatch(user, /line36;|line46;/);
    assert.match(user, /use const/);
    assert.match(user, /complete new version of lines 41-43/);
  });

  test('context is capped in characters too, at whole lines', () => {
    const user = buildEditMessages(input({ contextLines: 50, contextChars: 30 }))[1].content;
    assert.match(user, /line39;/);
    assert.doesNotMatch(user, /line3[0-5];/);
    assert.match(user, /line43;/);
    assert.doesNotMatch(user, /line4[7-9];/);
  });

  test('no context sections at the ends of the file', () => {
    const user = buildEditMessages(input({ region: { startLine: 0, endLine: 99 } }))[1].content;
    assert.doesNotMatch(user, /before the code|after the code/);
    assert.match(user, /lines 1-100/);
  });

  test('a selection containing ``` gets a longer fence', () => {
    const md = 'intro\n```js\nx\n```\n';
    const user = buildEditMessages(input({ text: md, languageId: 'markdown', region: { startLine: 0, endLine: 3 } }))[1].content;
    assert.match(user, /````markdown\nintro\n```js\nx\n```\n````/);
  });

  test('Fix lists the diagnostics with 1-based lines and severities', () => {
    const user = buildEditMessages(
      input({
        action: 'fix',
        diagnostics: [
          { severity: 'error', line: 41, message: "Cannot find name 'foo'.\nDid you mean 'for'?", source: 'ts', code: '2304' },
          { severity: 'warning', line: 42, message: 'Unused variable.' },
        ],
      }),
    )[1].content;
    assert.match(user, /- line 42, error: Cannot find name 'foo'\. Did you mean 'for'\? \(ts 2304\)/);
    assert.match(user, /- line 43, warning: Unused variable\.\n/);
  });

  test('Fix without diagnostics asks the model to look for bugs', () => {
    const user = buildEditMessages(input({ action: 'fix', diagnostics: [] }))[1].content;
    assert.match(user, /reports no problems/);
    assert.match(user, /return the code unchanged/);
  });

  test("Add documentation names the language's convention", () => {
    assert.match(buildEditMessages(input({ action: 'document' }))[1].content, /JSDoc/);
    assert.match(buildEditMessages(input({ action: 'document', languageId: 'python', fileName: 'a.py' }))[1].content, /docstrings/);
    assert.match(docConvention('rust'), /\/\/\//);
    assert.match(docConvention('zig'), /zig/);
  });

  test('Write tests: a new file, or only new tests to append to an existing one', () => {
    const fresh = buildEditMessages(input({ action: 'tests', testFileName: 'app.test.ts' }))[1].content;
    assert.match(fresh, /The code to test/);
    assert.match(fresh, /They go in app\.test\.ts, in the same folder as app\.ts/);
    assert.match(fresh, /complete test file, imports included/);
    const more = buildEditMessages(
      input({ action: 'tests', testFileName: 'app.test.ts', existingTests: "import { f } from './app';\ntest('x', () => {});\n" }),
    )[1].content;
    assert.match(more, /already exists; it starts like this:\n```ts\nimport \{ f \} from '\.\/app';/);
    assert.match(more, /only the new tests, to append/);
  });
});

describe('test files', () => {
  test('testFileNameFor', () => {
    assert.equal(testFileNameFor('foo.ts', 'typescript'), 'foo.test.ts');
    assert.equal(testFileNameFor('src/ui/Button.tsx', 'typescriptreact'), 'Button.test.tsx');
    assert.equal(testFileNameFor('foo.test.ts', 'typescript'), 'foo.test.ts');
    assert.equal(testFileNameFor('lib.mjs', 'javascript'), 'lib.test.mjs');
    assert.equal(testFileNameFor('foo.py', 'python'), 'test_foo.py');
    assert.equal(testFileNameFor('test_foo.py', 'python'), 'test_foo.py');
    assert.equal(testFileNameFor('Foo.java', 'java'), 'FooTest.java');
    assert.equal(testFileNameFor('main.go', 'go'), 'main_test.go');
    assert.equal(testFileNameFor('main_test.go', 'go'), 'main_test.go');
    assert.equal(testFileNameFor('Makefile', 'makefile'), 'Makefile_test');
  });

  test('normalizeNewCode and appendCode', () => {
    assert.equal(normalizeNewCode('\n    a\n      b\n\n', '\r\n'), 'a\r\n  b\r\n');
    assert.equal(normalizeNewCode('   ', '\n'), '');
    assert.equal(appendCode('one\n\n\n', 'two\n', '\n'), 'one\n\ntwo\n');
    assert.equal(appendCode('one', 'two\r\n', '\r\n'), 'one\r\n\r\ntwo\r\n');
    assert.equal(appendCode('  \n', 'two\n', '\n'), 'two\n');
  });

  test('answerTokenBudget', () => {
    assert.equal(answerTokenBudget('x'.repeat(300), 1024), 1024);
    assert.equal(answerTokenBudget('x'.repeat(9000), 1024), 3256);
    assert.equal(answerTokenBudget('x'.repeat(90000), 1024), 8192);
  });
});

describe('feedback while an edit is generated', () => {
  const limit = { allowed: 300, requested: 1024, promptTokens: 3796, contextLength: 4096 };

  test('expected answer size: the region again, a third more for documentation', () => {
    const region = 'x'.repeat(900);
    assert.equal(expectedAnswerTokens('refactor', region), 316);
    assert.equal(expectedAnswerTokens('document', region), 415);
  });

  test('a cut-off is forecast before generating when the code cannot fit, naming what limits it', () => {
    assert.equal(cutOffForecast(200, limit), undefined);
    const forecast = cutOffForecast(900, limit);
    assert.match(forecast ?? '', /^The answer will probably be cut off: the code needs about 900 tokens/);
    assert.match(
      forecast ?? '',
      /3796-token prompt leaves room for only 300 new tokens in the context of 4096 \(setting smallthinker\.engine\.contextLength\)/,
    );
    assert.match(answerLimitText({ ...limit, allowed: 1024 }), /at most 1024 tokens \(setting smallthinker\.chat\.maxTokens\)/);
  });

  test('while generating: near the limit past 85% with the block open, reached at the limit; a closed block is fine', () => {
    assert.equal(generationLimitState(100, 300, false), 'ok');
    assert.equal(generationLimitState(255, 300, false), 'near');
    assert.equal(generationLimitState(300, 300, false), 'reached');
    assert.equal(generationLimitState(300, 300, true), 'ok');
  });
});

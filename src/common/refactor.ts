// The edit commands' model side: the one-shot chat prompt for Refactor / Add documentation / Fix /
// Write tests, and getting the code back out of the model's answer, fitted to the lines it
// replaces (indentation, line breaks). Pure: no vscode, no Node.
import type { ChatMessage } from './protocol';

export type EditAction = 'refactor' | 'document' | 'fix' | 'tests';

/** Whole lines of a document: 0-based, inclusive. */
export interface LineRegion {
  startLine: number;
  endLine: number;
}

export interface PromptDiagnostic {
  severity: 'error' | 'warning' | 'information' | 'hint';
  /** 0-based line of the problem's start. */
  line: number;
  message: string;
  source?: string;
  code?: string;
}

export interface EditPromptInput {
  action: EditAction;
  /** As shown to the model (workspace-relative path or base name). */
  fileName: string;
  languageId: string;
  /** The whole document. */
  text: string;
  region: LineRegion;
  /** Refactor: what the user asked for. */
  instruction?: string;
  /** Fix: the problems reported in the region (none: the model looks for bugs itself). */
  diagnostics?: PromptDiagnostic[];
  /** Context lines shown before and after the region (default 30 each side). */
  contextLines?: number;
  /** ... and at most this many characters each side (default 3000). */
  contextChars?: number;
  /** Write tests: the test file's name, and its current text when it exists. */
  testFileName?: string;
  existingTests?: string;
}

/** Splits a document around whole-line region: `region` ends with its last line's line break. */
export function splitRegion(text: string, region: LineRegion): { before: string; region: string; after: string } {
  const start = lineOffset(text, region.startLine);
  const end = lineOffset(text, region.endLine + 1);
  return { before: text.slice(0, start), region: text.slice(start, end), after: text.slice(end) };
}

/** Offset of the start of 0-based `line` (the text's length past the last line). */
function lineOffset(text: string, line: number): number {
  let at = 0;
  for (let i = 0; i < line; i++) {
    const nl = text.indexOf('\n', at);
    if (nl < 0) return text.length;
    at = nl + 1;
  }
  return at;
}

/**
 * The whole lines a selection covers: a selection ending at column 0 of a later line does not
 * take that line.
 */
export function selectionLines(start: { line: number; character: number }, end: { line: number; character: number }): LineRegion {
  const endLine = end.line > start.line && end.character === 0 ? end.line - 1 : end.line;
  return { startLine: start.line, endLine };
}

const LANGUAGE_NAMES: Readonly<Record<string, string>> = {
  typescript: 'TypeScript',
  typescriptreact: 'TypeScript (React)',
  javascript: 'JavaScript',
  javascriptreact: 'JavaScript (React)',
  python: 'Python',
  rust: 'Rust',
  go: 'Go',
  java: 'Java',
  kotlin: 'Kotlin',
  csharp: 'C#',
  cpp: 'C++',
  c: 'C',
  ruby: 'Ruby',
  php: 'PHP',
  shellscript: 'shell script',
  swift: 'Swift',
  lua: 'Lua',
};

const FENCE_LANGUAGES: Readonly<Record<string, string>> = {
  typescript: 'ts',
  typescriptreact: 'tsx',
  javascript: 'js',
  javascriptreact: 'jsx',
  python: 'python',
  shellscript: 'bash',
  csharp: 'csharp',
  cpp: 'cpp',
  plaintext: 'text',
};

/** A readable language name for the prompt. */
export function languageName(languageId: string): string {
  return LANGUAGE_NAMES[languageId] ?? languageId;
}

/** The Markdown fence info string for a language id. */
export function fenceLanguage(languageId: string): string {
  return FENCE_LANGUAGES[languageId] ?? languageId;
}

/** How documentation comments are written in a language. */
export function docConvention(languageId: string): string {
  switch (languageId) {
    case 'typescript':
    case 'typescriptreact':
    case 'javascript':
    case 'javascriptreact':
      return 'JSDoc comments (/** ... */) before each declaration, with @param and @returns where they help';
    case 'python':
      return 'PEP 257 docstrings (triple-quoted, as the first statement of each module, class and function)';
    case 'rust':
      return 'rustdoc comments (/// before items, //! for modules)';
    case 'go':
      return 'Go doc comments (// lines right before each declaration, starting with its name)';
    case 'java':
    case 'kotlin':
      return 'Javadoc/KDoc comments (/** ... */) with @param and @return where they help';
    case 'csharp':
      return 'XML documentation comments (/// <summary>...</summary>, <param>, <returns>)';
    case 'c':
    case 'cpp':
      return 'Doxygen comments (/** ... */ or ///) with \\param and \\return where they help';
    case 'php':
      return 'PHPDoc comments (/** ... */) with @param and @return';
    case 'ruby':
      return 'YARD comments (# lines before each method, with @param and @return)';
    case 'shellscript':
      return '# comment lines before each function';
    default:
      return `the usual documentation comment style of ${languageName(languageId)}`;
  }
}

/** A fence of backticks longer than any backtick run at the start of a line of `text`. */
function fenceFor(text: string): string {
  let longest = 0;
  for (const match of text.matchAll(/^[ \t]*(`+)/gm)) longest = Math.max(longest, match[1].length);
  return '`'.repeat(Math.max(3, longest + 1));
}

function fenced(text: string, languageId: string): string {
  const fence = fenceFor(text);
  const body = text.endsWith('\n') ? text : text + '\n';
  return `${fence}${fenceLanguage(languageId)}\n${body}${fence}`;
}

/** The last `maxLines` lines of `text`, cut further to at most `maxChars` (at a line start). */
function tailLines(text: string, maxLines: number, maxChars: number): string {
  const lines = text.split(/(?<=\n)/);
  let out = lines.slice(Math.max(0, lines.length - maxLines)).join('');
  while (out.length > maxChars) {
    const nl = out.indexOf('\n');
    if (nl < 0 || nl + 1 >= out.length) return '';
    out = out.slice(nl + 1);
  }
  return out;
}

/** The first `maxLines` lines of `text`, cut further to at most `maxChars` (at a line end). */
function headLines(text: string, maxLines: number, maxChars: number): string {
  const lines = text.split(/(?<=\n)/);
  let out = lines.slice(0, maxLines).join('');
  while (out.length > maxChars) {
    const nl = out.lastIndexOf('\n', out.length - 2);
    if (nl < 0) return '';
    out = out.slice(0, nl + 1);
  }
  return out;
}

function countLines(text: string): number {
  if (text === '') return 0;
  const breaks = text.split('\n').length - 1;
  return text.endsWith('\n') ? breaks : breaks + 1;
}

function severityWord(severity: PromptDiagnostic['severity']): string {
  return severity === 'information' ? 'info' : severity;
}

/** A suggested test framework for the prompt. */
function testFrameworkHint(languageId: string): string {
  switch (languageId) {
    case 'typescript':
    case 'typescriptreact':
    case 'javascript':
    case 'javascriptreact':
      return 'the test framework the project appears to use (if unclear, node:test with node:assert/strict)';
    case 'python':
      return 'pytest';
    case 'go':
      return 'the standard testing package';
    case 'rust':
      return "Rust's built-in #[test] functions";
    case 'java':
      return 'JUnit 5';
    case 'csharp':
      return 'xUnit';
    default:
      return `the most common test framework for ${languageName(languageId)}`;
  }
}

const SYSTEM_PROMPT =
  'You are SmallThinker, a careful coding assistant that edits code inside an editor. ' +
  'You answer with ONLY code, in exactly one fenced code block, with no explanation before or after it. ' +
  'Keep the style, naming and indentation of the surrounding code.';

/** The messages of a one-shot chat request (no conversation) for an edit command. */
export function buildEditMessages(input: EditPromptInput): ChatMessage[] {
  const contextLines = input.contextLines ?? 30;
  const contextChars = input.contextChars ?? 3000;
  const lang = fenceLanguage(input.languageId);
  const parts = splitRegion(input.text, input.region);
  const first = input.region.startLine + 1;
  const last = first + Math.max(1, countLines(parts.region)) - 1;
  const span = first === last ? `line ${first}` : `lines ${first}-${last}`;
  const sections: string[] = [`File: ${input.fileName} (${languageName(input.languageId)})`];

  const before = tailLines(parts.before, contextLines, contextChars);
  if (before !== '') {
    const from = input.region.startLine - countLines(before) + 1;
    sections.push(
      `Lines ${from}-${input.region.startLine} of the file, before the code (context only; do not repeat them):\n${fenced(before, input.languageId)}`,
    );
  }
  const what =
    input.action === 'tests'
      ? 'The code to test'
      : `The code to ${input.action === 'document' ? 'document' : input.action === 'fix' ? 'fix' : 'rewrite'}`;
  sections.push(`${what} (${span}):\n${fenced(parts.region, input.languageId)}`);
  const after = headLines(parts.after, contextLines, contextChars);
  if (after !== '') {
    sections.push(
      `Lines ${last + 1}-${last + countLines(after)}, after the code (context only; do not repeat them):\n${fenced(after, input.languageId)}`,
    );
  }

  const keepIndent = `Reply with the complete new version of ${span} (all of it, changed or not) in one \`\`\`${lang} block, keeping the original indentation. Nothing else.`;
  switch (input.action) {
    case 'refactor':
      sections.push(
        `Task: rewrite the code as follows: ${(input.instruction ?? '').trim() || 'improve its readability'}.\n` +
          'Keep its behaviour unless the task says otherwise, and keep it working with the code around it.\n' +
          keepIndent,
      );
      break;
    case 'document':
      sections.push(
        `Task: add documentation to the code, as ${docConvention(input.languageId)}. ` +
          'Document every function, method, class and type declared in it, saying what it does, its parameters and its result; ' +
          'add short comments only where the logic is not obvious. Do not change the code itself.\n' +
          keepIndent,
      );
      break;
    case 'fix': {
      const problems = input.diagnostics ?? [];
      if (problems.length > 0) {
        const list = problems
          .map((d) => {
            const tag = [d.source, d.code].filter((x) => x !== undefined && x !== '').join(' ');
            return `- line ${d.line + 1}, ${severityWord(d.severity)}: ${d.message.replace(/\s*\n\s*/g, ' ')}${tag ? ` (${tag})` : ''}`;
          })
          .join('\n');
        sections.push(`Task: fix these problems the editor reports in the code:\n${list}\nChange only what the fixes need.\n${keepIndent}`);
      } else {
        sections.push(
          'Task: the editor reports no problems in this code. Look for bugs (wrong logic, unhandled cases, off-by-one errors, typos) and fix them; ' +
            'if there are none, return the code unchanged. Change only what the fixes need.\n' +
            keepIndent,
        );
      }
      break;
    }
    case 'tests': {
      const testFile = input.testFileName ?? 'a new test file';
      let task =
        `Task: write unit tests for the code above, using ${testFrameworkHint(input.languageId)}. ` +
        `They go in ${testFile}, in the same folder as ${baseName(input.fileName)}. ` +
        'Cover the normal cases, edge cases and errors; each test checks real results.';
      if (input.existingTests !== undefined && input.existingTests.trim() !== '') {
        const head = headLines(input.existingTests, 60, contextChars);
        task +=
          `\n${testFile} already exists; it starts like this:\n${fenced(head, input.languageId)}\n` +
          `Reply with only the new tests, to append at the end of ${testFile} (follow its conventions; do not repeat its imports unless new ones are needed), in one \`\`\`${lang} block. Nothing else.`;
      } else {
        task += `\nReply with the complete test file, imports included, in one \`\`\`${lang} block. Nothing else.`;
      }
      sections.push(task);
      break;
    }
  }
  return [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: sections.join('\n\n') },
  ];
}

function baseName(path: string): string {
  const slash = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return path.slice(slash + 1);
}

/**
 * The name of the test file for `fileName` (a base name), next to it: foo.ts -> foo.test.ts
 * (TS/JS), foo.py -> test_foo.py, Foo.java -> FooTest.java (Java/Kotlin/C#), else
 * foo.ext -> foo_test.ext. A name that already is a test file is returned as is.
 */
export function testFileNameFor(fileName: string, languageId: string): string {
  const name = baseName(fileName);
  const dot = name.lastIndexOf('.');
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot) : '';
  switch (languageId) {
    case 'typescript':
    case 'typescriptreact':
    case 'javascript':
    case 'javascriptreact':
      if (/\.(test|spec)$/.test(stem)) return name;
      return `${stem}.test${ext}`;
    case 'python':
      if (stem.startsWith('test_') || stem.endsWith('_test')) return name;
      return `test_${stem}${ext}`;
    case 'java':
    case 'kotlin':
    case 'csharp':
      if (/Tests?$/.test(stem)) return name;
      return `${stem}Test${ext}`;
    default:
      if (stem.endsWith('_test')) return name;
      return `${stem}_test${ext}`;
  }
}

/** An answer token budget: the configured one, or enough to repeat the region plus some. */
export function answerTokenBudget(regionText: string, configured: number, ceiling = 8192): number {
  return Math.min(ceiling, Math.max(configured, Math.ceil(regionText.length / 3) + 256));
}

// ---------------------------------------------------------------- feedback while waiting

/**
 * About how many tokens the answer's code block takes: the region again (about 3 characters a
 * token in code), a third more with documentation added, plus its fences. Tests are at least as
 * long as the code they test, so the region's size is a floor for them too.
 */
export function expectedAnswerTokens(action: EditAction, regionText: string): number {
  const code = Math.ceil(regionText.length / 3);
  return (action === 'document' ? Math.ceil(code * 1.33) : code) + 16;
}

/** What limits the answer's length, in words: the setting, or the room the prompt leaves in the context. */
export function answerLimitText(limit: { allowed: number; requested: number; promptTokens: number; contextLength: number }): string {
  return limit.allowed < limit.requested
    ? `the ${limit.promptTokens}-token prompt leaves room for only ${limit.allowed} new tokens in the context of ${limit.contextLength} (setting smallthinker.engine.contextLength)`
    : `the answer may have at most ${limit.allowed} tokens (setting smallthinker.chat.maxTokens)`;
}

/** Known before generating: the answer will probably not fit its token limit. Undefined when it should. */
export function cutOffForecast(
  expectedTokens: number,
  limit: { allowed: number; requested: number; promptTokens: number; contextLength: number },
): string | undefined {
  if (expectedTokens <= limit.allowed) return undefined;
  return `The answer will probably be cut off: the code needs about ${expectedTokens} tokens, but ${answerLimitText(limit)}.`;
}

/** While generating: 'near' past 85% of the limit with the code block still open, 'reached' at the limit. */
export function generationLimitState(generated: number, allowed: number, blockClosed: boolean): 'ok' | 'near' | 'reached' {
  if (blockClosed || allowed <= 0) return 'ok';
  if (generated >= allowed) return 'reached';
  return generated >= Math.floor(allowed * 0.85) ? 'near' : 'ok';
}

// ---------------------------------------------------------------- reading the answer

export interface ExtractedCode {
  /** The code, lines joined with "\n", without the fences. */
  code: string;
  /** Whether the answer had a fenced block (else `code` is the whole answer). */
  fenced: boolean;
  /** Whether the block was closed (false while streaming, or if the answer was cut off). */
  closed: boolean;
}

const OPEN_FENCE = /^[ \t]*(`{3,}|~{3,})[ \t]*([^`]*)$/;
const CLOSE_FENCE = /^[ \t]*(`{3,}|~{3,})[ \t]*$/;

/** Drops a leading <think>...</think> part (an unclosed one is all thinking: nothing left). */
function withoutThinking(answer: string): string {
  const open = answer.search(/^\s*<think>/);
  if (open < 0) return answer;
  const close = answer.indexOf('</think>');
  return close < 0 ? '' : answer.slice(close + '</think>'.length);
}

/** Removes blank lines at the start and the end. */
function trimBlankLines(lines: string[]): string[] {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start].trim() === '') start++;
  while (end > start && lines[end - 1].trim() === '') end--;
  return lines.slice(start, end);
}

/**
 * The code in a model's answer: the first fenced block (``` or ~~~, with or without a language;
 * a longer fence may contain shorter ones); while the block is still open (streaming, or an answer
 * cut off) everything after the opening fence, less a partial closing fence on the last line.
 * Without any fence: the whole answer, blank lines at both ends removed.
 */
export function extractCode(answer: string): ExtractedCode {
  const lines = withoutThinking(answer).split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN_FENCE.exec(lines[i]);
    if (!open) continue;
    const marker = open[1];
    const body: string[] = [];
    for (let j = i + 1; j < lines.length; j++) {
      const close = CLOSE_FENCE.exec(lines[j]);
      if (close && close[1][0] === marker[0] && close[1].length >= marker.length) {
        return { code: body.join('\n'), fenced: true, closed: true };
      }
      body.push(lines[j]);
    }
    // Still open: a last line made only of the fence character may be a closing fence arriving.
    const lastLine = body.length > 0 ? body[body.length - 1] : undefined;
    if (lastLine !== undefined && new RegExp(`^[ \\t]*\\${marker[0]}+$`).test(lastLine)) body.pop();
    return { code: body.join('\n'), fenced: true, closed: false };
  }
  return { code: trimBlankLines(lines).join('\n'), fenced: false, closed: false };
}

/**
 * The code of an answer still being written, as the proposal would take it if the answer ended
 * here (extractCode), less an unfinished last line that may still become a fence or a <think> tag.
 */
export function partialCode(answer: string): string {
  const lastBreak = answer.lastIndexOf('\n');
  const lastLine = answer.slice(lastBreak + 1);
  return extractCode(/^[ \t]*[`~<]/.test(lastLine) ? answer.slice(0, lastBreak + 1) : answer).code;
}

/** The leading whitespace all non-blank lines share. */
export function commonIndent(lines: readonly string[]): string {
  let common: string | undefined;
  for (const line of lines) {
    if (line.trim() === '') continue;
    const indent = /^[ \t]*/.exec(line)![0];
    if (common === undefined) {
      common = indent;
      continue;
    }
    let n = 0;
    while (n < common.length && n < indent.length && common[n] === indent[n]) n++;
    common = common.slice(0, n);
  }
  return common ?? '';
}

/**
 * The extracted code made to replace `original` (whole lines of a document, as from
 * splitRegion): the same base indentation (re-indented if the model changed it), the original's
 * blank lines at both ends, its line breaks ("\r\n" if it has any, else `eol`), and a final line
 * break if the original had one. Returns '' when the code is empty.
 */
export function fitReplacement(code: string, original: string, eol = '\n'): string {
  const lineBreak = original.includes('\r\n') ? '\r\n' : original.includes('\n') ? '\n' : eol;
  const endsWithBreak = original.endsWith('\n');
  const originalLines = (endsWithBreak ? original.slice(0, original.endsWith('\r\n') ? -2 : -1) : original).split(/\r?\n/);
  let codeLines = trimBlankLines(code.split(/\r?\n/).map((l) => l.replace(/[ \t]+$/, '')));
  if (codeLines.length === 0) return '';

  const base = commonIndent(originalLines);
  const codeBase = commonIndent(codeLines);
  if (codeBase !== base) codeLines = codeLines.map((l) => (l.trim() === '' ? '' : base + l.slice(codeBase.length)));

  // Blank lines around the original code stay (none when the original is all blank).
  let leading = 0;
  while (leading < originalLines.length && originalLines[leading].trim() === '') leading++;
  let trailing = 0;
  if (leading === originalLines.length) leading = 0;
  else while (originalLines[originalLines.length - 1 - trailing].trim() === '') trailing++;
  const all = [...originalLines.slice(0, leading), ...codeLines, ...originalLines.slice(originalLines.length - trailing)];
  return all.join(lineBreak) + (endsWithBreak ? lineBreak : '');
}

/** New code (tests) in a document's line breaks, without indentation of its own, ending with a line break. */
export function normalizeNewCode(code: string, eol: string): string {
  const lines = trimBlankLines(code.split(/\r?\n/).map((l) => l.replace(/[ \t]+$/, '')));
  if (lines.length === 0) return '';
  const base = commonIndent(lines);
  return lines.map((l) => (l.trim() === '' ? '' : l.slice(base.length))).join(eol) + eol;
}

/** `existing` with `addition` appended after one blank line (in existing's line breaks). */
export function appendCode(existing: string, addition: string, eol: string): string {
  if (existing.trim() === '') return addition;
  const trimmed = existing.replace(/(\r?\n|[ \t])*$/, '');
  return trimmed + eol + eol + addition;
}

// The code-completion prompt, laid out so that typing touches only its tail.
//
// The engine keeps the KV cache of the previous prompt: it reuses the longest common prefix and can
// move cached runs of tokens after an insertion, but anything that changes near the front costs
// recomputation. So the pieces go from stable to volatile:
//
//   [repo_name, "<repoName>\n"]                      only when input.repoName is given
//   file_sep, "<chunk.fileName>\n<chunk text>"       per context chunk, oldest first
//   file_sep, "<fileName>\n"
//   fim:     fim_prefix, <prefix lines before B>, fim_suffix, <rest of cursor line + suffix lines>,
//            fim_middle, <prefix lines from B + cursor line before the cursor>
//   no fim:  <prefix lines>, <cursor line before the cursor>
// where B is the cursor line rounded down to a multiple of middleSnapLines (8; not before the
// window's start): at most 7 whole lines in the middle, a span FIM models are trained on.
//
// (Qwen2.5-Coder's repo-level FIM format. llama.cpp's /infill appends the cursor line's prefix to
// the prefix, before fim_suffix; here it goes after fim_middle, with the lines since B, as text the
// model "already wrote", so that typing changes only the end of the last piece.)
//
// - Typing within a line changes only the end of the last piece. So does Enter: the finished line
//   stays in the last piece and the suffix piece stays the same (the rest of the line is its first
//   line either way), so a new line costs the few tokens at the end. Only when the cursor line
//   crosses a multiple of middleSnapLines do those lines move into the prefix piece.
// - The piece structure is fixed for a given layout and chunk count: a text piece may be '' (empty
//   file, cursor on line 0, ...) but is never left out, so piece indices are stable.
// - Pieces are meant to be tokenized one by one (a text piece never merges with its neighbour), so
//   that a change in one piece does not change the tokens of another.
//
// Lines are split at '\n'; a '\r' before it stays part of the line (CRLF text is kept as given).
// Nothing else is normalised, except that a context chunk whose text does not end with a line
// break gets one (its own style, "\r\n" when it holds any), so that the next file_sep starts a line.
//
// Windows (line numbers count from 0; P = the cursor's line = number of line breaks in `prefix`;
// S = number of line breaks in `suffix` = lines after the cursor line):
// - prefix: lines [start, P) with start = max(0, floor((P - maxPrefixLines) / snap) * snap): at most
//   maxPrefixLines + snap - 1 lines, and the start only moves when the cursor crosses a multiple of
//   snap; Enter does not move it (unless it crosses such a multiple).
// - suffix: the rest of the cursor line and the next K = S - dropped lines, where dropped =
//   max(0, floor((S - maxSuffixLines) / snap) * snap) lines are left out at the end of the file.
//   The window end is snapped like the start, but counted from the end of the document, because
//   that is what stays put while typing: Enter (anywhere in the line) leaves S, hence the suffix
//   piece, unchanged; moving the cursor moves the end only every snap lines. At most
//   maxSuffixLines + snap - 1 lines. When lines are left out, the kept text ends with the line
//   break of the last kept line.
// - chunks: at most maxChunks (the last ones given, i.e. the newest), each cut to its first
//   maxChunkLines lines.
//
// cursorLine / indent in the result always describe the whole cursor line prefix (even when
// trimToBudget cut the prompt's copy of it): indent = indentWidth(cursorLine, tabSize), its leading
// whitespace with tabs advancing to the next multiple of tabSize (default 4); see completionStop.ts.

import { indentWidth } from './completionStop';

export type SpecialToken = 'fim_prefix' | 'fim_suffix' | 'fim_middle' | 'file_sep' | 'repo_name';
export type PromptPiece = { text: string } | { special: SpecialToken };

/** The vocabulary text of each special token (Qwen2.5-Coder / Qwen3). */
export const SPECIAL_TOKEN_TEXT: Readonly<Record<SpecialToken, string>> = {
  fim_prefix: '<|fim_prefix|>',
  fim_suffix: '<|fim_suffix|>',
  fim_middle: '<|fim_middle|>',
  file_sep: '<|file_sep|>',
  repo_name: '<|repo_name|>',
};

export interface ContextChunk {
  fileName: string;
  text: string;
}

export interface CompletionPromptInput {
  /** Cross-file context, oldest first (a stable ring: keep the order between requests). */
  chunks?: ContextChunk[];
  /** All text before the cursor (may be the whole file). */
  prefix: string;
  /** All text after the cursor. */
  suffix: string;
  fileName: string;
  /** Not used by the layout (kept for callers and future per-language tweaks). */
  languageId?: string;
  /** When given (and not ''), the prompt starts with repo_name "<repoName>\n". */
  repoName?: string;
}

export interface PromptWindow {
  /** default 256 */
  maxPrefixLines: number;
  /** default 64 */
  maxSuffixLines: number;
  /** default 32; values < 1 mean 1 (no snapping) */
  snapLines: number;
  /** fim: the middle holds the lines since the last multiple of this before the cursor line (default 8; 1: none) */
  middleSnapLines?: number;
  /** default 64 */
  maxChunkLines?: number;
  /** default 16 */
  maxChunks?: number;
}

export const DEFAULT_PROMPT_WINDOW: Readonly<Required<PromptWindow>> = {
  maxPrefixLines: 256,
  maxSuffixLines: 64,
  snapLines: 32,
  middleSnapLines: 8,
  maxChunkLines: 64,
  maxChunks: 16,
};

export interface CompletionPromptOptions {
  fim: boolean;
  window?: Partial<PromptWindow>;
  /** Tab width for `indent` (default 4). */
  tabSize?: number;
}

export interface CompletionPrompt {
  pieces: PromptPiece[];
  /** The cursor line's text before the cursor (whole, even when the prompt holds only its end). */
  cursorLine: string;
  /** indentWidth(cursorLine, tabSize). */
  indent: number;
  /** Lines before the cursor line in the prompt. */
  prefixLinesUsed: number;
  /** Lines after the cursor line in the prompt (0 without fim). */
  suffixLinesUsed: number;
  /** Context chunks in the prompt. */
  chunksUsed: number;
}

export interface BudgetedPrompt extends CompletionPrompt {
  /** Tokens of the result as counted (sum over pieces; a special piece counts 1). */
  tokens: number;
  /** Whether tokens <= maxTokens (false when even the smallest prompt is too long). */
  fits: boolean;
}

/** The prompt as one string, special tokens written as their vocabulary text. */
export function renderPrompt(pieces: readonly PromptPiece[]): string {
  let s = '';
  for (const p of pieces) s += 'special' in p ? SPECIAL_TOKEN_TEXT[p.special] : p.text;
  return s;
}

// ------------------------------------------------------------------ internals

function newlines(text: string): number[] {
  const out: number[] = [];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) out.push(i);
  return out;
}

function intOr(v: number | undefined, def: number, min: number): number {
  if (v === undefined || !Number.isFinite(v)) return def;
  return Math.max(min, Math.floor(v));
}

function resolveWindow(w: Partial<PromptWindow> | undefined): Required<PromptWindow> {
  const d = DEFAULT_PROMPT_WINDOW;
  return {
    maxPrefixLines: intOr(w?.maxPrefixLines, d.maxPrefixLines, 0),
    maxSuffixLines: intOr(w?.maxSuffixLines, d.maxSuffixLines, 0),
    snapLines: intOr(w?.snapLines, d.snapLines, 1),
    middleSnapLines: intOr(w?.middleSnapLines, d.middleSnapLines, 1),
    maxChunkLines: intOr(w?.maxChunkLines, d.maxChunkLines, 0),
    maxChunks: intOr(w?.maxChunks, d.maxChunks, 0),
  };
}

function chunkPieceText(chunk: ContextChunk, maxLines: number): string {
  let text = chunk.text;
  let nl = -1;
  for (let n = 0; n < maxLines; n++) {
    nl = text.indexOf('\n', nl + 1);
    if (nl < 0) break;
  }
  if (maxLines === 0) text = '';
  else if (nl >= 0) text = text.slice(0, nl + 1);
  if (text.length > 0 && !text.endsWith('\n')) text += chunk.text.includes('\r\n') ? '\r\n' : '\n';
  return chunk.fileName + '\n' + text;
}

/** Everything derived from the input once; cuts then only select from it. */
interface Plan {
  fim: boolean;
  head: PromptPiece[];
  chunkTexts: string[];
  fileHeader: string;
  prefix: string;
  prefixNl: number[];
  suffix: string;
  suffixNl: number[];
  cursorLine: string;
  indent: number;
  middleSnap: number;
  /** Prefix window starts, from the default one to P (no prefix lines); snapped except maybe the last. */
  prefixStarts: number[];
  /** Suffix line counts K, from the default one down to 0; snapped from the end except maybe the last. */
  suffixKeeps: number[];
}

interface Cut {
  chunkFrom: number;
  prefixStart: number;
  suffixKeep: number;
  /** Characters kept of the suffix text when suffixKeep is 0 (cut from its end); -1: all. */
  restKeep: number;
  /** Characters kept of the cursor line (cut from its start); -1: all. */
  cursorKeep: number;
}

function makePlan(input: CompletionPromptInput, options: CompletionPromptOptions): Plan {
  const win = resolveWindow(options.window);
  const snap = win.snapLines;
  const all = input.chunks ?? [];
  const chunks = win.maxChunks === 0 ? [] : all.slice(Math.max(0, all.length - win.maxChunks));
  const head: PromptPiece[] = input.repoName ? [{ special: 'repo_name' }, { text: input.repoName + '\n' }] : [];

  const prefixNl = newlines(input.prefix);
  const P = prefixNl.length;
  const cursorLine = P === 0 ? input.prefix : input.prefix.slice(prefixNl[P - 1] + 1);

  const prefixStarts: number[] = [];
  for (let s = Math.max(0, Math.floor((P - win.maxPrefixLines) / snap) * snap); s <= P; s += snap) prefixStarts.push(s);
  if (prefixStarts[prefixStarts.length - 1] !== P) prefixStarts.push(P);

  const suffixNl = options.fim ? newlines(input.suffix) : [];
  const S = suffixNl.length;
  const suffixKeeps: number[] = [];
  for (let d = Math.max(0, Math.floor((S - win.maxSuffixLines) / snap) * snap); d <= S; d += snap) suffixKeeps.push(S - d);
  if (suffixKeeps[suffixKeeps.length - 1] !== 0) suffixKeeps.push(0);

  return {
    fim: options.fim,
    head,
    chunkTexts: chunks.map((c) => chunkPieceText(c, win.maxChunkLines)),
    fileHeader: input.fileName + '\n',
    prefix: input.prefix,
    prefixNl,
    suffix: options.fim ? input.suffix : '',
    suffixNl,
    cursorLine,
    indent: indentWidth(cursorLine, options.tabSize ?? 4),
    middleSnap: win.middleSnapLines,
    prefixStarts,
    suffixKeeps,
  };
}

function defaultCut(plan: Plan): Cut {
  return { chunkFrom: 0, prefixStart: plan.prefixStarts[0], suffixKeep: plan.suffixKeeps[0], restKeep: -1, cursorKeep: -1 };
}

function lineStart(nl: number[], line: number): number {
  return line === 0 ? 0 : nl[line - 1] + 1;
}

function suffixText(plan: Plan, keep: number): string {
  const S = plan.suffixNl.length;
  return keep >= S ? plan.suffix : plan.suffix.slice(0, plan.suffixNl[keep] + 1);
}

function isHigh(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff;
}

function isLow(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff;
}

/** s cut to its first n UTF-16 units, never splitting a surrogate pair. */
function headOf(s: string, n: number): string {
  if (n >= s.length) return s;
  if (n > 0 && isHigh(s, n - 1)) n--;
  return s.slice(0, n);
}

/** s cut to its last n UTF-16 units, never splitting a surrogate pair. */
function tailOf(s: string, n: number): string {
  if (n >= s.length) return s;
  let from = s.length - n;
  if (n > 0 && isLow(s, from)) from++;
  return s.slice(from);
}

function assemble(plan: Plan, cut: Cut): CompletionPrompt {
  const pieces: PromptPiece[] = [...plan.head];
  for (let i = cut.chunkFrom; i < plan.chunkTexts.length; i++) pieces.push({ special: 'file_sep' }, { text: plan.chunkTexts[i] });
  pieces.push({ special: 'file_sep' }, { text: plan.fileHeader });

  const P = plan.prefixNl.length;
  // fim: the lines from B on go with the cursor line (see the layout above)
  const B = plan.fim ? Math.max(cut.prefixStart, Math.floor(P / plan.middleSnap) * plan.middleSnap) : P;
  const prefixText = plan.prefix.slice(lineStart(plan.prefixNl, cut.prefixStart), lineStart(plan.prefixNl, B));
  const recentText = plan.prefix.slice(lineStart(plan.prefixNl, B), lineStart(plan.prefixNl, P));
  const cursorText = cut.cursorKeep < 0 ? plan.cursorLine : tailOf(plan.cursorLine, cut.cursorKeep);
  let suffixKeep = 0;
  if (plan.fim) {
    suffixKeep = cut.suffixKeep;
    let suffix = suffixText(plan, suffixKeep);
    if (suffixKeep === 0 && cut.restKeep >= 0) suffix = headOf(suffix, cut.restKeep);
    pieces.push(
      { special: 'fim_prefix' },
      { text: prefixText },
      { special: 'fim_suffix' },
      { text: suffix },
      { special: 'fim_middle' },
      { text: recentText + cursorText },
    );
  } else {
    pieces.push({ text: prefixText }, { text: cursorText });
  }
  return {
    pieces,
    cursorLine: plan.cursorLine,
    indent: plan.indent,
    prefixLinesUsed: P - cut.prefixStart,
    suffixLinesUsed: suffixKeep,
    chunksUsed: plan.chunkTexts.length - cut.chunkFrom,
  };
}

/** Smallest i in [0, n) with fits(i), assuming fits is monotone (false...false true...true); -1 if none. */
function firstFit(n: number, fits: (i: number) => boolean): number {
  if (n <= 0 || !fits(n - 1)) return -1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// ------------------------------------------------------------------ API

/** The prompt for a completion at the cursor between input.prefix and input.suffix (see the layout above). */
export function buildCompletionPrompt(input: CompletionPromptInput, options: CompletionPromptOptions): CompletionPrompt {
  const plan = makePlan(input, options);
  return assemble(plan, defaultCut(plan));
}

/**
 * buildCompletionPrompt, shrunk until its token count (the sum over pieces of countTokens(text),
 * 1 per special piece) is <= maxTokens, in this order, each step only as far as needed:
 *  1. drop the oldest chunks, one at a time;
 *  2. move the prefix window start forward by snapLines at a time (staying snapped), and finally to
 *     the cursor line (no prefix lines);
 *  3. fim: drop suffix lines at the end, snapLines at a time (counted from the end of the file, as
 *     the window is), and finally all of them;
 *  4. fim: cut the rest of the cursor line (the suffix piece that is left) from its end;
 *  5. cut the cursor line's prefix text from its start (last resort).
 * If even that is too long, the smallest prompt comes back with fits: false.
 * countTokens is called once per distinct piece text (cached within the call; '' counts 0 without
 * a call); each stage searches its steps by bisection, assuming fewer lines/characters never
 * count more tokens, so a call costs O(log n) counts per stage.
 */
export function trimToBudget(
  input: CompletionPromptInput,
  options: CompletionPromptOptions,
  countTokens: (text: string) => number,
  maxTokens: number,
): BudgetedPrompt {
  const plan = makePlan(input, options);
  const cache = new Map<string, number>();
  const count = (text: string): number => {
    if (text.length === 0) return 0;
    let n = cache.get(text);
    if (n === undefined) {
      n = countTokens(text);
      cache.set(text, n);
    }
    return n;
  };
  const measure = (cut: Cut): number => {
    let total = 0;
    for (const p of assemble(plan, cut).pieces) total += 'special' in p ? 1 : count(p.text);
    return total;
  };
  const result = (cut: Cut): BudgetedPrompt => {
    const prompt = assemble(plan, cut);
    const tokens = measure(cut);
    return { ...prompt, tokens, fits: tokens <= maxTokens };
  };

  let cut = defaultCut(plan);
  if (measure(cut) <= maxTokens) return result(cut);

  // Each stage: candidate cuts from the current one to the smallest; take the first that fits,
  // or the smallest and go on to the next stage.
  const stages: Array<{ n: number; at: (c: Cut, i: number) => Cut } | null> = [
    { n: plan.chunkTexts.length + 1, at: (c, i) => ({ ...c, chunkFrom: i }) },
    { n: plan.prefixStarts.length, at: (c, i) => ({ ...c, prefixStart: plan.prefixStarts[i] }) },
    plan.fim ? { n: plan.suffixKeeps.length, at: (c, i) => ({ ...c, suffixKeep: plan.suffixKeeps[i] }) } : null,
    plan.fim ? { n: suffixText(plan, 0).length + 1, at: (c, i) => ({ ...c, restKeep: suffixText(plan, 0).length - i }) } : null,
    { n: plan.cursorLine.length + 1, at: (c, i) => ({ ...c, cursorKeep: plan.cursorLine.length - i }) },
  ];
  for (const stage of stages) {
    if (!stage) continue;
    const base = cut;
    const i = firstFit(stage.n, (j) => measure(stage.at(base, j)) <= maxTokens);
    if (i >= 0) return result(stage.at(base, i));
    cut = stage.at(base, stage.n - 1);
  }
  return result(cut);
}

/** Lines kept around the cursor by clipForRequest, in steps of CLIP_SNAP_LINES. */
export const CLIP_PREFIX_LINES = 1536;
export const CLIP_SUFFIX_LINES = 768;
export const CLIP_SNAP_LINES = 256;

/**
 * Cuts a document's text before/after the cursor to what a completion request needs to carry,
 * without changing the prompt the engine builds from it: lines are dropped from the far ends in
 * steps of CLIP_SNAP_LINES (a multiple of the engine's 32-line window snap), and only beyond
 * CLIP_PREFIX_LINES / CLIP_SUFFIX_LINES, which exceed the engine's windows (1024 / 512 lines). So
 * the window the engine cuts from the clipped text is the one it would cut from the whole text, and
 * the clip point moves only every CLIP_SNAP_LINES lines of cursor movement.
 */
export function clipForRequest(prefix: string, suffix: string): { prefix: string; suffix: string } {
  return { prefix: clipFront(prefix), suffix: clipBack(suffix) };
}

/** Offsets of the '\n's of `text`. */
function lineBreaks(text: string): number[] {
  const at: number[] = [];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) at.push(i);
  return at;
}

/** Lines to drop beyond `keep` lines, in whole CLIP_SNAP_LINES steps. */
function clipLines(breaks: number, keep: number): number {
  return Math.max(0, Math.floor((breaks - keep) / CLIP_SNAP_LINES) * CLIP_SNAP_LINES);
}

function clipFront(prefix: string): string {
  const breaks = lineBreaks(prefix);
  const cut = clipLines(breaks.length, CLIP_PREFIX_LINES);
  return cut === 0 ? prefix : prefix.slice(breaks[cut - 1] + 1);
}

function clipBack(suffix: string): string {
  const breaks = lineBreaks(suffix);
  const drop = clipLines(breaks.length, CLIP_SUFFIX_LINES);
  // Keep the first (breaks - drop) line breaks: the text through the last kept line's break.
  return drop === 0 ? suffix : suffix.slice(0, breaks[breaks.length - drop - 1] + 1);
}

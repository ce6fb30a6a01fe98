// Line diff for reviewing proposed edits: Myers' O(ND) diff of two texts into hunks, applying any
// subset of the hunks, and carrying hunks over to a text that changed since they were computed.
// Pure: no vscode, no Node.

// A "line" here keeps its terminator ("\n" or "\r\n"; the last line of a text may have none), so
// that applying hunks rebuilds a text byte for byte, CRLF included. Line numbers count from 0.

/** One run of consecutive changed lines. */
export interface Hunk {
  /** First old line replaced (or, when oldLines is 0, the old line the new lines go before). */
  oldStart: number;
  oldLines: number;
  /** Where the added lines start in the new text (the full new text, all hunks applied). */
  newStart: number;
  newLines: number;
  /** The old lines, each with its line break. */
  removed: string[];
  /** The new lines, each with its line break. */
  added: string[];
}

/** A replacement of oldText.slice(start, end) by text. */
export interface TextEdit {
  start: number;
  end: number;
  text: string;
}

export interface DiffOptions {
  /**
   * Above this many inserted plus deleted lines (after the common start and end are set aside),
   * the middle becomes one hunk instead of being diffed (bounds time and memory). Default 4000.
   */
  maxEditDistance?: number;
}

/** Raised by applyHunks when a hunk's removed lines are not in the text where it says. */
export class HunkMismatchError extends Error {
  constructor(readonly hunk: Hunk) {
    super(`The text at line ${hunk.oldStart + 1} is not what the change expects.`);
    this.name = 'HunkMismatchError';
  }
}

/** The text's lines, each with its line break ('' has no lines). */
export function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) break;
    lines.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

/** The hunks that turn oldText into newText (sorted, never overlapping or touching). */
export function diffLines(oldText: string, newText: string, options: DiffOptions = {}): Hunk[] {
  const a = splitLines(oldText);
  const b = splitLines(newText);
  return hunksFromMatches(a, b, matchLines(a, b, options.maxEditDistance ?? 4000));
}

/**
 * Pairs [oldIndex, newIndex] of equal lines kept by the diff, increasing in both. The common
 * start and end are matched directly; Myers' greedy algorithm matches the middle.
 */
function matchLines(a: string[], b: string[], maxD: number): Array<[number, number]> {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;

  const matches: Array<[number, number]> = [];
  for (let i = 0; i < head; i++) matches.push([i, i]);

  // Lines as small integers, so that the inner loop compares numbers.
  const ids = new Map<string, number>();
  const idOf = (line: string): number => {
    let id = ids.get(line);
    if (id === undefined) {
      id = ids.size;
      ids.set(line, id);
    }
    return id;
  };
  const xa = Int32Array.from(a.slice(head, a.length - tail), idOf);
  const xb = Int32Array.from(b.slice(head, b.length - tail), idOf);
  const middle = myers(xa, xb, maxD);
  if (middle) for (const [x, y] of middle) matches.push([x + head, y + head]);

  for (let i = tail; i > 0; i--) matches.push([a.length - i, b.length - i]);
  return matches;
}

/**
 * Myers' greedy shortest edit script; returns the matched (equal) index pairs in order, or
 * undefined when more than maxD edits are needed.
 */
function myers(a: Int32Array, b: Int32Array, maxD: number): Array<[number, number]> | undefined {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return [];
  const max = n + m;
  const offset = max + 1;
  // v[offset + k]: the furthest x reached on diagonal k = x - y.
  const v = new Int32Array(2 * max + 3);
  // trace[d]: v over diagonals -d-1 .. d+1 as it was before step d.
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= Math.min(max, maxD); d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]) ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
    if (found >= 0) break;
  }
  if (found < 0) return undefined;

  const matches: Array<[number, number]> = [];
  let x = n;
  let y = m;
  for (let d = found; d >= 0; d--) {
    const snap = trace[d];
    const at = (k: number): number => snap[k + d + 1];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : at(prevK);
    const prevY = d === 0 ? 0 : prevX - prevK;
    // The snake after the edit of step d (for d = 0: from the origin).
    const startX = d === 0 ? 0 : prevK === k + 1 ? prevX : prevX + 1;
    while (x > startX) {
      x--;
      y--;
      matches.push([x, y]);
    }
    x = prevX;
    y = prevY;
  }
  return matches.reverse();
}

function hunksFromMatches(a: string[], b: string[], matches: Array<[number, number]>): Hunk[] {
  const hunks: Hunk[] = [];
  let i = 0;
  let j = 0;
  const close = (mi: number, mj: number): void => {
    if (i < mi || j < mj) {
      hunks.push({ oldStart: i, oldLines: mi - i, newStart: j, newLines: mj - j, removed: a.slice(i, mi), added: b.slice(j, mj) });
    }
  };
  for (const [mi, mj] of matches) {
    close(mi, mj);
    i = mi + 1;
    j = mj + 1;
  }
  close(a.length, b.length);
  return hunks;
}

/** The character edits of `hunks` on oldText, in order (for an editor's edit API). */
export function hunkEdits(oldText: string, hunks: readonly Hunk[]): TextEdit[] {
  const lines = splitLines(oldText);
  const offsets = new Array<number>(lines.length + 1);
  offsets[0] = 0;
  for (let i = 0; i < lines.length; i++) offsets[i + 1] = offsets[i] + lines[i].length;
  const sorted = [...hunks].sort((x, y) => x.oldStart - y.oldStart || x.oldLines - y.oldLines);
  const edits: TextEdit[] = [];
  let lastEnd = 0;
  for (const hunk of sorted) {
    const end = hunk.oldStart + hunk.oldLines;
    if (hunk.oldStart < lastEnd || end > lines.length || hunk.removed.length !== hunk.oldLines) throw new HunkMismatchError(hunk);
    for (let i = 0; i < hunk.oldLines; i++) if (lines[hunk.oldStart + i] !== hunk.removed[i]) throw new HunkMismatchError(hunk);
    let text = hunk.added.join('');
    // Inserting after a last line that has no line break: give that line one first.
    if (hunk.oldStart === lines.length && hunk.oldStart > 0 && !lines[lines.length - 1].endsWith('\n') && text !== '') {
      text = eolOf(oldText) + text;
    }
    edits.push({ start: offsets[hunk.oldStart], end: offsets[end], text });
    lastEnd = end;
  }
  return edits;
}

/**
 * Where `edits` (sorted, not overlapping, as hunkEdits returns them) land in the text after they
 * are applied: from the first one's start to the last one's end, as offsets of the new text.
 * Undefined for no edits.
 */
export function editedSpan(edits: readonly TextEdit[]): { start: number; end: number } | undefined {
  if (edits.length === 0) return undefined;
  let shift = 0;
  for (const e of edits.slice(0, -1)) shift += e.text.length - (e.end - e.start);
  const last = edits[edits.length - 1];
  return { start: edits[0].start, end: last.start + shift + last.text.length };
}

/** oldText with the given hunks (any subset of diffLines(oldText, ...)) applied. */
export function applyHunks(oldText: string, hunks: readonly Hunk[]): string {
  let out = '';
  let at = 0;
  for (const edit of hunkEdits(oldText, hunks)) {
    out += oldText.slice(at, edit.start) + edit.text;
    at = edit.end;
  }
  return out + oldText.slice(at);
}

/** The text's line break: "\r\n" when its first line break is one, else "\n". */
export function eolOf(text: string): string {
  const nl = text.indexOf('\n');
  return nl > 0 && text[nl - 1] === '\r' ? '\r\n' : '\n';
}

export interface RebaseResult {
  /** The hunks that carry over, in the current text's line numbers. */
  hunks: Hunk[];
  /** The hunks whose lines were changed in the meantime (left out of `hunks`). */
  conflicts: Hunk[];
}

/**
 * Carries hunks computed against baseText over to currentText (baseText edited since): a hunk
 * whose old lines were untouched moves by the lines inserted or deleted before it; one whose
 * lines were edited (or an insertion at the very place of another insertion) conflicts.
 */
export function rebaseHunks(baseText: string, hunks: readonly Hunk[], currentText: string): RebaseResult {
  const edits = diffLines(baseText, currentText);
  const result: RebaseResult = { hunks: [], conflicts: [] };
  let shift = 0;
  const sorted = [...hunks].sort((x, y) => x.oldStart - y.oldStart);
  for (const hunk of sorted) {
    if (edits.some((e) => rangesConflict(hunk.oldStart, hunk.oldLines, e.oldStart, e.oldLines))) {
      result.conflicts.push(hunk);
      continue;
    }
    let offset = 0;
    for (const e of edits) if (e.oldStart + e.oldLines <= hunk.oldStart) offset += e.newLines - e.oldLines;
    const oldStart = hunk.oldStart + offset;
    result.hunks.push({ ...hunk, oldStart, newStart: oldStart + shift });
    shift += hunk.newLines - hunk.oldLines;
  }
  return result;
}

/** Whether old-line ranges [a, a+n) and [b, b+m) are edits that cannot both be applied. */
function rangesConflict(a: number, n: number, b: number, m: number): boolean {
  if (n > 0 && m > 0) return a < b + m && b < a + n;
  if (n === 0 && m === 0) return a === b;
  if (n === 0) return b < a && a < b + m;
  return a < b && b < a + n;
}

/** A short label: "lines 12-18: -7 +5" (line numbers from 1). */
export function hunkLabel(hunk: Hunk): string {
  const first = hunk.oldStart + 1;
  const last = hunk.oldStart + hunk.oldLines;
  const where =
    hunk.oldLines === 0
      ? hunk.oldStart === 0
        ? 'at the start'
        : `after line ${hunk.oldStart}`
      : hunk.oldLines === 1
        ? `line ${first}`
        : `lines ${first}-${last}`;
  return `${where}: -${hunk.oldLines} +${hunk.newLines}`;
}

/** The first non-blank added line (else removed line), trimmed and cut to maxLength. */
export function hunkPreview(hunk: Hunk, maxLength = 80): string {
  const pick = (lines: string[]): string | undefined => lines.map((l) => l.trim()).find((l) => l !== '');
  const added = pick(hunk.added);
  const text = added !== undefined ? `+ ${added}` : `- ${pick(hunk.removed) ?? ''}`;
  return text.length > maxLength ? text.slice(0, maxLength - 1) + '…' : text;
}

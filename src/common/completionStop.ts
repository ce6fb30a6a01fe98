// When a code completion should stop, given the text generated so far; and the clean-up of a
// finished suggestion against the text that follows the cursor. Pure TypeScript (no vscode, no
// node:*), so that the engine host, the extension and the tests can all use it.
//
// Rules (CompletionStopper.check):
//
// * Lines. The generated text is split at '\n' ('\r' before it is ignored for the analysis). Line 0
//   is the continuation of the cursor line; lines 1.. are the new lines. A line is "blank" when it
//   holds only whitespace. A line is complete when a '\n' follows it (or a stop string cuts it).
//
// * Reference indentation R: when the cursor line prefix (the text on the cursor line before the
//   cursor) holds anything but whitespace, R = indentWidth(cursorLinePrefix), i.e. that line's own
//   indentation; when it is blank, R = options.cursorIndent (what the caller says the cursor's
//   indentation is; buildCompletionPrompt's `indent`, the width of that whitespace).
//
// * Dedent (stopOnDedent): the first new line (1..), complete or partial, that is not blank and
//   whose indentation is < R stops generation. That line is dropped, and so is all whitespace
//   before it: the newline that ended the previous line, blank lines, trailing blanks. A partial
//   line stops as soon as its first non-whitespace character shows it dedents.
//
// * Closing line at R (stopOnDedent, and only when the cursor line prefix is not blank): a new
//   line at indentation exactly R whose first non-whitespace is `}`, `)`, `]` or the word `end`
//   closes the block the cursor line opened, unless the generated text itself opened a block at R
//   (some earlier new line sits at indentation R: then the closer is taken to be its own and the
//   generation goes on). For such an "unmatched" closer:
//     - if the document already has the closer (see below), or textAfterCursor was not given, the
//       line is dropped like a dedent (stop as soon as the closer character is seen);
//     - otherwise, if the complete line is only closers and punctuation (`}`, `});`, `end`, `],`),
//       the line is kept and generation stops right after it (without its newline);
//     - otherwise (`} else {`, `end)` followed by code...) it is an ordinary line at R.
//   "The document already has it": the rest of the cursor line (textAfterCursor up to its first
//   newline) starts, after whitespace, with a closer; or, when that rest is blank, the first
//   non-blank line of textAfterCursor whose indentation is <= R has indentation R and starts with
//   a closer.
//   With a blank cursor line (the user is on an indented empty line) closers at R never stop: any
//   block closed at R was opened by the generated text (dedent still applies).
//
// * Stop strings: the earliest occurrence of any of them wins; it and everything after it are
//   dropped. The other rules only look at the text before it.
//
// * maxLines: stop once that many complete non-blank lines were produced (line 0 counts when its
//   generated part is not blank); keep ends before the newline that completed the last one.
//
// check() is stateless: it re-reads the whole text each time, so it may be called with the
// growing text after every streamed piece (stop strings split across pieces are found), or once.
// When several rules apply, the one whose cut comes first in the text wins.

export type StopReason = 'stop' | 'dedent' | 'lines';

export interface CompletionStopperOptions {
  /** Indentation width of the cursor line (used as R when the cursor line prefix is blank). */
  cursorIndent: number;
  /** The text on the cursor line before the cursor. */
  cursorLinePrefix: string;
  stopOnDedent: boolean;
  /** Stop strings; empty strings are ignored. */
  stop: string[];
  /** Stop after this many complete non-blank lines (undefined or <= 0: no limit). */
  maxLines?: number;
  /** The document text after the cursor (the rest of the line and, ideally, following lines). */
  textAfterCursor?: string;
  /** Tab width for indentation (default 4). */
  tabSize?: number;
}

export interface StopCheck {
  stop: boolean;
  /** The text to return: `generated` cut before a stop string / before a dropped line / after the last line allowed. */
  keep: string;
  reason?: StopReason;
}

/**
 * Visual width of the leading whitespace of `line`: a space counts 1, a tab advances to the next
 * multiple of tabSize (so "\t" = 4, "  \t" = 4, "\t  " = 6 with the default 4). Any other
 * character ends the indentation.
 */
export function indentWidth(line: string, tabSize = 4): number {
  const tab = tabSize >= 1 ? Math.floor(tabSize) : 1;
  let w = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x20) w += 1;
    else if (c === 0x09) w += tab - (w % tab);
    else break;
  }
  return w;
}

const CLOSERS = ')]}';

function isBlank(s: string): boolean {
  return /^\s*$/.test(s);
}

function isIdentChar(c: string): boolean {
  return /[A-Za-z0-9_$]/.test(c);
}

/**
 * Whether `text` (already stripped of leading whitespace) starts with a closer: 'yes', 'no', or
 * 'undecided' when it could still become `end` / stop being `end` (partial line "en", "end").
 */
function leadingCloser(text: string, complete: boolean): 'yes' | 'no' | 'undecided' {
  if (text.length === 0) return complete ? 'no' : 'undecided';
  if (CLOSERS.includes(text[0])) return 'yes';
  if (text.startsWith('end')) {
    if (text.length === 3) return complete ? 'yes' : 'undecided';
    return isIdentChar(text[3]) ? 'no' : 'yes';
  }
  if (!complete && 'end'.startsWith(text)) return 'undecided';
  return 'no';
}

/** A line holding only closers and punctuation, e.g. "}", "});", "],", "end", "end)". */
function isPureCloserLine(trimmed: string): boolean {
  return /^(?:[)\]}]|end(?![A-Za-z0-9_$]))[)\]};,.\s]*$/.test(trimmed);
}

/** End of `text` at a line break index: excludes a '\r' that precedes the '\n'. */
function cutAtNewline(text: string, nl: number): number {
  return nl > 0 && text.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
}

export class CompletionStopper {
  private readonly refIndent: number;
  private readonly closerRule: boolean;
  private readonly closerPresent: boolean;
  private readonly stops: string[];
  private readonly maxLines: number;
  private readonly tabSize: number;
  private readonly stopOnDedent: boolean;

  constructor(options: CompletionStopperOptions) {
    this.tabSize = options.tabSize ?? 4;
    const prefixBlank = isBlank(options.cursorLinePrefix);
    this.refIndent = prefixBlank ? Math.max(0, options.cursorIndent) : indentWidth(options.cursorLinePrefix, this.tabSize);
    this.closerRule = !prefixBlank;
    this.stopOnDedent = options.stopOnDedent;
    this.stops = options.stop.filter((s) => s.length > 0);
    this.maxLines = options.maxLines !== undefined && options.maxLines > 0 ? Math.floor(options.maxLines) : Infinity;
    this.closerPresent = options.textAfterCursor === undefined ? true : this.closerInDocument(options.textAfterCursor);
  }

  private closerInDocument(after: string): boolean {
    let nl = after.indexOf('\n');
    const rest = (nl < 0 ? after : after.slice(0, nl)).trim();
    if (rest.length > 0) return leadingCloser(rest, true) === 'yes';
    while (nl >= 0) {
      const start = nl + 1;
      nl = after.indexOf('\n', start);
      const line = nl < 0 ? after.slice(start) : after.slice(start, nl);
      if (isBlank(line)) continue;
      const w = indentWidth(line, this.tabSize);
      if (w > this.refIndent) continue;
      return w === this.refIndent && leadingCloser(line.trim(), true) === 'yes';
    }
    return false;
  }

  check(generated: string): StopCheck {
    let stopAt = -1;
    for (const s of this.stops) {
      const i = generated.indexOf(s);
      if (i >= 0 && (stopAt < 0 || i < stopAt)) stopAt = i;
    }
    const text = stopAt >= 0 ? generated.slice(0, stopAt) : generated;

    let lines = 0;
    let seenAtRef = false;
    let start = 0;
    for (let index = 0; ; index++) {
      const nl = text.indexOf('\n', start);
      const end = nl < 0 ? text.length : nl;
      const complete = nl >= 0 || stopAt >= 0;
      const line = text.slice(start, end);
      const blank = isBlank(line);

      if (index > 0 && this.stopOnDedent && !blank) {
        const w = indentWidth(line, this.tabSize);
        const dropLine = (): StopCheck => ({ stop: true, keep: text.slice(0, start - 1).replace(/\s+$/, ''), reason: 'dedent' });
        if (w < this.refIndent) return dropLine();
        if (w === this.refIndent && this.closerRule && !seenAtRef) {
          const trimmed = line.trim();
          const closer = leadingCloser(trimmed, complete);
          if (closer === 'undecided') return { stop: false, keep: generated };
          if (closer === 'yes') {
            if (this.closerPresent) return dropLine();
            if (!complete) return { stop: false, keep: generated };
            if (isPureCloserLine(trimmed)) {
              return { stop: true, keep: text.slice(0, nl >= 0 ? cutAtNewline(text, nl) : end), reason: 'dedent' };
            }
          }
        }
        if (w === this.refIndent) seenAtRef = true;
      }

      if (nl >= 0 && !blank && ++lines >= this.maxLines) {
        return { stop: true, keep: text.slice(0, cutAtNewline(text, nl)), reason: 'lines' };
      }
      if (nl < 0) break;
      start = nl + 1;
    }
    if (stopAt >= 0) return { stop: true, keep: text, reason: 'stop' };
    return { stop: false, keep: generated };
  }
}

/**
 * Cleans a finished suggestion against the document text after the cursor:
 *  - '' when the suggestion is only whitespace, or when textAfterCursor already starts with the
 *    whole suggestion (accepting it would change nothing visible but duplicate text);
 *  - when the suggestion ends with the rest of the cursor line (textAfterCursor up to its first
 *    line break, trailing whitespace ignored; also matched before trailing spaces/tabs of the
 *    suggestion), that repeated part is dropped: "foo)" with ")" after the cursor → "foo", and a
 *    multi-line "\n  a\n)" with ")" after the cursor → "\n  a\n"; if nothing but whitespace
 *    remains, ''.
 * Only the whole rest of the line is matched, never a part of it (a suggestion "x)" before "))"
 * is kept: it may close a bracket of its own).
 */
export function trimSuggestion(text: string, textAfterCursor: string): string {
  if (isBlank(text)) return '';
  if (textAfterCursor.startsWith(text)) return '';
  const nl = textAfterCursor.indexOf('\n');
  const rest = (nl < 0 ? textAfterCursor : textAfterCursor.slice(0, nl)).replace(/\s+$/, '');
  if (rest.length === 0) return text;
  let body = text;
  if (!body.endsWith(rest)) {
    body = body.replace(/[ \t]+$/, '');
    if (!body.endsWith(rest)) return text;
  }
  const out = body.slice(0, body.length - rest.length);
  return isBlank(out) ? '' : out;
}

/** Index of the newline that ends the first line of `text` holding more than whitespace; -1 if none yet. */
export function firstLineEnd(text: string): number {
  for (let from = 0; ;) {
    const nl = text.indexOf('\n', from);
    if (nl < 0) return -1;
    if (/\S/.test(text.slice(from, nl))) return nl;
    from = nl + 1;
  }
}

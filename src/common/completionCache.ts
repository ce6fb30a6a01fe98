// The client-side cache of inline completions: suggestions by (document, text before the cursor,
// text after the cursor). A lookup also serves "typed ahead" positions: when the user types the
// first characters of a cached suggestion, the rest of it is returned without a model call.
// Pure TypeScript. Prefixes are kept as a hash and a length, not copied, so that many entries of a
// large file cost little memory.

/** 32-bit FNV-1a over UTF-16 code units, as two halves mixed into a 53-bit safe integer. */
export function hashText(text: string, start = 0, end = text.length): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ (end - start);
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ (c + 0x9e37), 0x5bd1e995) >>> 0;
  }
  return (h1 >>> 0) * 0x200000 + (h2 & 0x1fffff);
}

export interface CacheKey {
  /** The document (its URI as a string). */
  document: string;
  /** All text before the cursor. */
  prefix: string;
  /** All text after the cursor. */
  suffix: string;
}

export interface CacheHit {
  /** The suggestions for this position, best first (the typed part removed). */
  candidates: string[];
  /** Characters of the cached suggestion the user typed since it was computed (0: exact hit). */
  typed: number;
}

interface Entry {
  document: string;
  prefixLength: number;
  prefixHash: number;
  /** The last characters of the prefix, compared exactly (guards against hash collisions). */
  prefixTail: string;
  suffixHash: number;
  suffixLength: number;
  candidates: string[];
}

const TAIL = 64;

export interface CompletionCacheOptions {
  /** Entries kept (least recently used go first); default 256. */
  maxEntries?: number;
  /** Longest typed-ahead distance served from an entry (default 512 characters). */
  maxTyped?: number;
}

export class CompletionCache {
  private readonly entries: Entry[] = []; // most recently used last
  private readonly maxEntries: number;
  private readonly maxTyped: number;

  constructor(options: CompletionCacheOptions = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? 256);
    this.maxTyped = Math.max(0, options.maxTyped ?? 512);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Stores the suggestions computed for `key` (empty suggestions are kept: "nothing to say here"). */
  put(key: CacheKey, candidates: readonly string[]): void {
    const entry: Entry = {
      document: key.document,
      prefixLength: key.prefix.length,
      prefixHash: hashText(key.prefix),
      prefixTail: key.prefix.slice(-TAIL),
      suffixHash: hashText(key.suffix),
      suffixLength: key.suffix.length,
      candidates: [...candidates],
    };
    const same = this.entries.findIndex(
      (e) =>
        e.document === entry.document &&
        e.prefixLength === entry.prefixLength &&
        e.prefixHash === entry.prefixHash &&
        e.suffixHash === entry.suffixHash &&
        e.suffixLength === entry.suffixLength,
    );
    if (same >= 0) this.entries.splice(same, 1);
    this.entries.push(entry);
    while (this.entries.length > this.maxEntries) this.entries.shift();
  }

  /**
   * Suggestions for `key`: an exact entry, or one computed at an earlier position of the same line
   * whose suggestion the user has been typing (the suffix unchanged, the new prefix = old prefix +
   * the start of a suggestion). Typed-ahead hits return only the candidates that still match, with
   * the typed part cut off; a candidate typed to its end is not returned. Undefined: no hit.
   */
  get(key: CacheKey): CacheHit | undefined {
    const suffixHash = hashText(key.suffix);
    let prefixHash: number | undefined;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e.document !== key.document || e.suffixLength !== key.suffix.length || e.suffixHash !== suffixHash) continue;
      const typed = key.prefix.length - e.prefixLength;
      if (typed < 0 || typed > this.maxTyped) continue;
      if (typed === 0) {
        prefixHash ??= hashText(key.prefix);
        if (prefixHash !== e.prefixHash) continue;
        this.touch(i);
        return { candidates: [...e.candidates], typed: 0 };
      }
      const typedText = key.prefix.slice(e.prefixLength);
      const rest = e.candidates.filter((c) => c.length > typed && c.startsWith(typedText)).map((c) => c.slice(typed));
      if (rest.length === 0) continue;
      if (!key.prefix.startsWith(e.prefixTail, e.prefixLength - e.prefixTail.length)) continue;
      if (hashText(key.prefix, 0, e.prefixLength) !== e.prefixHash) continue;
      this.touch(i);
      return { candidates: rest, typed };
    }
    return undefined;
  }

  /** Forgets every entry of a document (closed) or everything. */
  clear(document?: string): void {
    if (document === undefined) {
      this.entries.length = 0;
      return;
    }
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i].document === document) this.entries.splice(i, 1);
  }

  private touch(i: number): void {
    const [e] = this.entries.splice(i, 1);
    this.entries.push(e);
  }
}

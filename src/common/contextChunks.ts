// The ring of cross-file context chunks for completion prompts: pieces of up to 64 lines from
// places the user recently edited, saved, left or copied. Oldest first and otherwise stable, so
// that the prompt's front (and the engine's KV cache of it) stays the same between requests: a
// new chunk is appended, the oldest falls off, and a chunk nearly equal to one in the ring is not
// added again. Pure TypeScript.
import type { ContextChunk } from './prompt';

export interface ChunkRingOptions {
  /** Chunks kept (default 16). */
  maxChunks?: number;
  /** Lines per chunk (default 64). */
  chunkLines?: number;
  /** A chunk whose line set overlaps an existing one at least this much replaces nothing and is dropped (default 0.9). */
  similarity?: number;
  /** Chunks shorter than this many non-blank lines are not worth a place (default 3). */
  minLines?: number;
}

export interface RingChunk extends ContextChunk {
  /** Where it came from (the document's URI as a string, or 'clipboard'). */
  source: string;
  /** 0-based first line in the source (0 for the clipboard). */
  startLine: number;
}

/** Jaccard similarity of two chunks' sets of trimmed, non-blank lines. */
export function chunkSimilarity(a: string, b: string): number {
  const set = (t: string): Set<string> =>
    new Set(
      t
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.length > 0),
    );
  const sa = set(a);
  const sb = set(b);
  if (sa.size === 0 && sb.size === 0) return 1;
  let both = 0;
  for (const l of sa) if (sb.has(l)) both++;
  return both / (sa.size + sb.size - both);
}

/** The `chunkLines` lines of `lines` centred on `line` (clamped to the text). */
export function chunkAround(lines: readonly string[], line: number, chunkLines: number): { startLine: number; text: string } {
  const n = Math.max(1, chunkLines);
  const start = Math.max(0, Math.min(lines.length - n, line - Math.floor(n / 2)));
  const text = lines.slice(start, start + n).join('\n');
  return { startLine: start, text };
}

export class ChunkRing {
  private readonly chunks: RingChunk[] = [];
  private readonly maxChunks: number;
  private readonly chunkLines: number;
  private readonly similarity: number;
  private readonly minLines: number;
  private version = 0;

  constructor(options: ChunkRingOptions = {}) {
    this.maxChunks = Math.max(1, options.maxChunks ?? 16);
    this.chunkLines = Math.max(1, options.chunkLines ?? 64);
    this.similarity = options.similarity ?? 0.9;
    this.minLines = options.minLines ?? 3;
  }

  /** Bumped whenever the ring changes. */
  get changeCount(): number {
    return this.version;
  }

  get size(): number {
    return this.chunks.length;
  }

  /**
   * Adds the chunk of `text` (a whole document's lines, or a clipboard text) around `line`.
   * Returns whether the ring changed.
   */
  addAround(source: string, fileName: string, text: string, line: number): boolean {
    const lines = text.split('\n');
    const { startLine, text: chunkText } = chunkAround(lines, line, this.chunkLines);
    return this.add({ source, fileName, startLine, text: chunkText });
  }

  /** Adds a chunk (cut to chunkLines lines). Returns whether the ring changed. */
  add(chunk: RingChunk): boolean {
    const text = chunk.text.split('\n').slice(0, this.chunkLines).join('\n');
    const nonBlank = text.split('\n').filter((l) => l.trim().length > 0).length;
    if (nonBlank < this.minLines) return false;
    for (const existing of this.chunks) {
      if (chunkSimilarity(existing.text, text) >= this.similarity) return false;
    }
    this.chunks.push({ ...chunk, text });
    while (this.chunks.length > this.maxChunks) this.chunks.shift();
    this.version++;
    return true;
  }

  /** Forgets the chunks of a source (a deleted file). */
  remove(source: string): void {
    const before = this.chunks.length;
    for (let i = this.chunks.length - 1; i >= 0; i--) if (this.chunks[i].source === source) this.chunks.splice(i, 1);
    if (this.chunks.length !== before) this.version++;
  }

  /** The chunks for a prompt in `excludeSource` (its own document is in the prompt already), oldest first. */
  forPrompt(excludeSource?: string): ContextChunk[] {
    return this.chunks.filter((c) => c.source !== excludeSource).map((c) => ({ fileName: c.fileName, text: c.text }));
  }

  all(): readonly RingChunk[] {
    return this.chunks;
  }
}

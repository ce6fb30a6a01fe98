// Generated token ids to text, incrementally: detokenizes the ids so far as a whole (so
// multi-byte characters split across tokens come out right), holds back a trailing U+FFFD
// (an incomplete UTF-8 sequence) and any tail that could still grow into a stop string, and
// cuts the text before the first stop string.
import type { Model } from '../engine/native';

const REPLACEMENT = '\uFFFD';

export class TextStream {
  private readonly ids: number[] = [];
  private full = '';
  private emitted = 0;
  private stopped = false;
  private readonly maxStop: number;

  constructor(
    private readonly model: Model,
    private readonly stops: readonly string[] = [],
  ) {
    this.maxStop = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Ids pushed so far. */
  get length(): number {
    return this.ids.length;
  }

  /** A stop string was found; text() ends before it. */
  get hitStop(): boolean {
    return this.stopped;
  }

  /** Adds a generated id; returns the text that became final with it (possibly ''). */
  push(id: number): string {
    if (this.stopped) return '';
    this.ids.push(id);
    const before = this.full.length;
    this.full = this.model.detokenize(this.ids);
    if (this.maxStop > 0) {
      const from = Math.max(0, before - this.maxStop);
      let cut = -1;
      for (const s of this.stops) {
        if (s.length === 0) continue;
        const at = this.full.indexOf(s, from);
        if (at >= 0 && (cut < 0 || at < cut)) cut = at;
      }
      if (cut >= 0) {
        this.full = this.full.slice(0, cut);
        this.stopped = true;
        return this.take(this.full.length);
      }
    }
    return this.take(this.stableLength());
  }

  /** Everything so far, including held-back text: call at the end. */
  finish(): string {
    return this.take(this.full.length);
  }

  /** The whole text so far (held-back tail included). */
  text(): string {
    return this.full;
  }

  private take(end: number): string {
    if (end <= this.emitted) return '';
    const out = this.full.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }

  /** Length of the text that no later token can change. */
  private stableLength(): number {
    let end = this.full.length;
    while (end > this.emitted && this.full[end - 1] === REPLACEMENT) end--;
    // Hold back a tail that is a proper prefix of a stop string.
    for (let k = Math.min(this.maxStop - 1, end - this.emitted); k > 0; k--) {
      const tail = this.full.slice(end - k, end);
      if (this.stops.some((s) => s.startsWith(tail))) {
        end -= k;
        break;
      }
    }
    return end;
  }
}

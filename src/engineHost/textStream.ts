// Generated token ids to text, incrementally: each id goes through the model's incremental
// detokenizer (Model.createDetokenizer), which holds back an incomplete UTF-8 sequence, so a push
// costs the new token only; on top of that the stream holds back any tail that could still grow
// into a stop string, and cuts the text before the first stop string.
import type { Detokenizer, Model } from '../engine/native';

export class TextStream {
  private readonly detokenizer: Detokenizer;
  private count = 0;
  /** The final text so far (the detokenizer holds what is not final yet). */
  private full = '';
  private emitted = 0;
  private stopped = false;
  private readonly maxStop: number;

  constructor(
    model: Model,
    private readonly stops: readonly string[] = [],
  ) {
    this.detokenizer = model.createDetokenizer();
    this.maxStop = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Ids pushed so far. */
  get length(): number {
    return this.count;
  }

  /** A stop string was found; text() ends before it. */
  get hitStop(): boolean {
    return this.stopped;
  }

  /** Adds a generated id; returns the text that became final with it (possibly ''). */
  push(id: number): string {
    if (this.stopped) return '';
    this.count++;
    const before = this.full.length;
    this.full += this.detokenizer.push(id);
    if (this.cutAtStop(before)) return this.take(this.full.length);
    return this.take(this.stableLength());
  }

  /** Everything so far, including held-back text: call at the end. */
  finish(): string {
    if (!this.stopped) {
      const before = this.full.length;
      this.full += this.detokenizer.finish();
      this.cutAtStop(before);
    }
    return this.take(this.full.length);
  }

  /** The whole final text so far (a tail held back for the stop strings included). */
  text(): string {
    return this.full;
  }

  /** Cuts the text before the first stop string that ends after `before`; whether one was found. */
  private cutAtStop(before: number): boolean {
    if (this.maxStop === 0) return false;
    const from = Math.max(0, before - this.maxStop + 1);
    let cut = -1;
    for (const s of this.stops) {
      if (s.length === 0) continue;
      const at = this.full.indexOf(s, from);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut < 0) return false;
    this.full = this.full.slice(0, cut);
    this.stopped = true;
    return true;
  }

  private take(end: number): string {
    if (end <= this.emitted) return '';
    const out = this.full.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }

  /** Length of the text that no later token can change: all but a tail that is a proper prefix of a stop string. */
  private stableLength(): number {
    const end = this.full.length;
    for (let k = Math.min(this.maxStop - 1, end - this.emitted); k > 0; k--) {
      const tail = this.full.slice(end - k, end);
      if (this.stops.some((s) => s.startsWith(tail))) return end - k;
    }
    return end;
  }
}

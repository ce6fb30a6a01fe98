// Inline completion statistics, kept on the user's machine only (never sent anywhere): how many
// suggestions were shown, accepted, typed over (the user typed them instead of accepting, served
// from the cache) or rejected, whether accepted text survives a while later, and latencies. The
// state is a plain JSON object the extension saves in its global storage. Pure TypeScript.

export interface AcceptanceState {
  version: 1;
  shown: number;
  accepted: number;
  /** Suggestions the user typed character by character (the cache served the rest). */
  typedOver: number;
  /** Shown suggestions replaced by something else without acceptance. */
  rejected: number;
  /** Characters inserted by accepted suggestions. */
  acceptedChars: number;
  /** Retention checks: accepted text still present when checked [after 30 s, 2 min, 10 min]. */
  retained: [number, number, number];
  /** Retention checks done at each delay. */
  retentionChecks: [number, number, number];
  /** Requests answered from the client cache without a model call. */
  cacheHits: number;
  /** Requests the engine answered. */
  engineRequests: number;
  /** The last (up to 200) engine latencies to the first token, in ms. */
  latenciesMs: number[];
}

export const RETENTION_DELAYS_MS: readonly [number, number, number] = [30_000, 120_000, 600_000];

export function emptyAcceptanceState(): AcceptanceState {
  return {
    version: 1,
    shown: 0,
    accepted: 0,
    typedOver: 0,
    rejected: 0,
    acceptedChars: 0,
    retained: [0, 0, 0],
    retentionChecks: [0, 0, 0],
    cacheHits: 0,
    engineRequests: 0,
    latenciesMs: [],
  };
}

/** A stored state, repaired field by field (a missing or bad field starts from zero). */
export function loadAcceptanceState(raw: unknown): AcceptanceState {
  const s = emptyAcceptanceState();
  if (!raw || typeof raw !== 'object') return s;
  const r = raw as Record<string, unknown>;
  const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
  const triple = (v: unknown): [number, number, number] =>
    Array.isArray(v) && v.length === 3 ? [count(v[0]), count(v[1]), count(v[2])] : [0, 0, 0];
  s.shown = count(r.shown);
  s.accepted = count(r.accepted);
  s.typedOver = count(r.typedOver);
  s.rejected = count(r.rejected);
  s.acceptedChars = count(r.acceptedChars);
  s.retained = triple(r.retained);
  s.retentionChecks = triple(r.retentionChecks);
  s.cacheHits = count(r.cacheHits);
  s.engineRequests = count(r.engineRequests);
  s.latenciesMs = Array.isArray(r.latenciesMs)
    ? r.latenciesMs.filter((v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0).slice(-200)
    : [];
  return s;
}

/** The suggestion currently on screen, as the tracker knows it. */
interface Shown {
  document: string;
  /** Offset of the cursor when it was shown, and the prefix length there. */
  prefixLength: number;
  text: string;
}

/**
 * Turns provider events into counts. A suggestion counts as shown once per (position, text);
 * what happens next decides its fate: accept → accepted; the next request at a position that
 * typed into it → nothing yet (typedOver once the whole text was typed, or when the user goes on
 * typing it to its end); any other request while it was on screen → rejected.
 */
export class AcceptanceTracker {
  private shownNow: Shown | undefined;

  constructor(readonly state: AcceptanceState = emptyAcceptanceState()) {}

  /** A suggestion was returned to the editor (text '' is not a suggestion). */
  onShown(document: string, prefixLength: number, text: string, fromCache: boolean): void {
    if (fromCache) this.state.cacheHits++;
    if (!text) return;
    const prev = this.shownNow;
    // Typing into the shown suggestion keeps it the same suggestion.
    if (
      prev &&
      prev.document === document &&
      prefixLength >= prev.prefixLength &&
      prev.text.endsWith(text) &&
      prefixLength - prev.prefixLength === prev.text.length - text.length
    ) {
      return;
    }
    this.settlePrevious(document, prefixLength);
    this.shownNow = { document, prefixLength, text };
    this.state.shown++;
  }

  /** A request came in at a new position (before its answer is known). */
  onRequest(document: string, prefixLength: number, typedPrefix: (from: number) => string): void {
    const prev = this.shownNow;
    if (!prev) return;
    if (prev.document === document && prefixLength > prev.prefixLength) {
      const typed = typedPrefix(prev.prefixLength);
      if (prev.text.startsWith(typed)) {
        if (typed.length >= prev.text.length) {
          this.state.typedOver++;
          this.shownNow = undefined;
        }
        return;
      }
    }
    if (prev.document === document && prefixLength === prev.prefixLength) return; // the same place asked again
    this.state.rejected++;
    this.shownNow = undefined;
  }

  onAccepted(text: string): void {
    this.state.accepted++;
    this.state.acceptedChars += text.length;
    this.shownNow = undefined;
  }

  onEngineLatency(ms: number): void {
    this.state.engineRequests++;
    this.state.latenciesMs.push(Math.round(ms));
    if (this.state.latenciesMs.length > 200) this.state.latenciesMs.splice(0, this.state.latenciesMs.length - 200);
  }

  onRetentionCheck(delayIndex: 0 | 1 | 2, kept: boolean): void {
    this.state.retentionChecks[delayIndex]++;
    if (kept) this.state.retained[delayIndex]++;
  }

  private settlePrevious(document: string, prefixLength: number): void {
    const prev = this.shownNow;
    if (!prev) return;
    if (prev.document === document && prev.prefixLength === prefixLength) return; // replaced at the same place
    this.state.rejected++;
    this.shownNow = undefined;
  }
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const pct = (n: number, d: number): string => (d > 0 ? `${((100 * n) / d).toFixed(0)}%` : '–');

/** A human-readable summary, one fact per line. */
export function describeAcceptance(s: AcceptanceState): string[] {
  const lat = [...s.latenciesMs].sort((a, b) => a - b);
  const p = (q: number): string => (lat.length ? `${lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]} ms` : '–');
  const med = median(lat);
  return [
    `Shown: ${s.shown}`,
    `Accepted: ${s.accepted} (${pct(s.accepted, s.shown)} of shown, ${s.acceptedChars} characters)`,
    `Typed over: ${s.typedOver}`,
    `Rejected: ${s.rejected}`,
    `Still present after 30 s / 2 min / 10 min: ${pct(s.retained[0], s.retentionChecks[0])} / ${pct(s.retained[1], s.retentionChecks[1])} / ${pct(s.retained[2], s.retentionChecks[2])}`,
    `Served from the cache: ${s.cacheHits}; engine requests: ${s.engineRequests}`,
    `Time to first token: median ${med === undefined ? '–' : `${Math.round(med)} ms`}, 90th percentile ${p(0.9)} (last ${lat.length})`,
  ];
}

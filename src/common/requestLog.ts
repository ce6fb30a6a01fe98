// The engine log's lines about requests and model loads: one line per request with its figures
// (prompt tokens, reused, evaluated, time to first token, tokens/s, stop reason), and what a
// cancelled or failed request got to. Pure: no vscode, no Node; the extension writes them to its
// LogOutputChannel (src/vscode/engineService.ts).
import type { ChatStats, ChatStopReason, CompletionStats, WarmResult } from './protocol';
import { formatMs, formatTokensPerS } from './statusText';

/** The prompt part: "prompt 734 tokens (700 reused, 34 evaluated in 120 ms)". */
function promptPart(promptTokens: number, reusedTokens: number, evaluatedTokens: number, prefillMs: number): string {
  return `prompt ${promptTokens} tokens (${reusedTokens} reused, ${evaluatedTokens} evaluated in ${formatMs(prefillMs)})`;
}

/** The generation part: "first token 95 ms, 30 tokens at 24 tok/s". */
function generationPart(timeToFirstTokenMs: number, decodeTokens: number, decodeTokensPerS: number): string {
  return `first token ${formatMs(timeToFirstTokenMs)}, ${decodeTokens} tokens at ${formatTokensPerS(decodeTokensPerS)}`;
}

/** A finished completion/create. `label` says what asked (e.g. "completion math.ts:15"). */
export function completionLogLine(label: string, stats: CompletionStats, candidates: number): string {
  const parts = [
    promptPart(stats.promptTokens, stats.reusedTokens, stats.evaluatedTokens, stats.prefillMs),
    generationPart(stats.timeToFirstTokenMs, stats.decodeTokens, stats.decodeTokensPerS),
    `total ${formatMs(stats.totalMs)}`,
    `stop ${stats.stopReason ?? 'unknown'}`,
  ];
  if (candidates > 1) parts.push(`${candidates} candidates`);
  if (!stats.fim) parts.push('prefix only');
  return `${label}: ${parts.join(', ')}`;
}

/** A finished chat/create (chat, refactor, language model). */
export function chatLogLine(label: string, stats: ChatStats, stopReason: ChatStopReason | 'client', totalMs: number): string {
  return (
    `${label}: ${promptPart(stats.promptTokens, stats.reusedTokens, stats.evaluatedTokens, stats.prefillMs)}, ` +
    `${generationPart(stats.timeToFirstTokenMs, stats.decodeTokens, stats.decodeTokensPerS)}, total ${formatMs(totalMs)}, stop ${stopReason}`
  );
}

/** A finished context/warm. */
export function warmLogLine(label: string, result: WarmResult): string {
  return `${label}: ${promptPart(result.promptTokens, result.reusedTokens, result.evaluatedTokens, result.ms)}`;
}

/** A request the client cancelled (a newer keystroke, Stop, Escape, a closed code block). */
export function cancelledLogLine(label: string, ms: number, detail?: string): string {
  return `${label}: cancelled after ${formatMs(ms)}${detail ? ` (${detail})` : ''}`;
}

/** A request that failed. */
export function failedLogLine(label: string, ms: number, message: string): string {
  return `${label}: failed after ${formatMs(ms)}: ${message}`;
}

/**
 * Model load phases worth a line: a new phase, and within the layout build every `step` percent.
 * Returns the line to log for a progress value, or undefined when it adds nothing.
 */
export class LoadLog {
  private phase: string | undefined;
  private lastPercentage = -1;
  private readonly startedAt: number;
  private phaseStartedAt: number;
  /** Finished phases with their durations, for the final line. */
  private readonly phases: string[] = [];

  constructor(
    now: number,
    private readonly step = 25,
  ) {
    this.startedAt = now;
    this.phaseStartedAt = now;
  }

  progress(now: number, message: string | undefined, percentage: number | undefined): string | undefined {
    const phase = message ?? '';
    if (phase !== this.phase) {
      this.closePhase(now);
      this.phase = phase;
      this.phaseStartedAt = now;
      this.lastPercentage = percentage ?? -1;
      return `model load: ${phase || 'working'}${percentage === undefined ? '' : ` (${Math.round(percentage)}%)`} at ${formatMs(now - this.startedAt)}`;
    }
    if (percentage === undefined || percentage < this.lastPercentage + this.step) return undefined;
    this.lastPercentage = percentage;
    return `model load: ${phase} ${Math.round(percentage)}% at ${formatMs(now - this.startedAt)}`;
  }

  /** "reading the model file 120 ms, laying out ... 21 s": the phases seen and how long each took. */
  finish(now: number): string {
    this.closePhase(now);
    return this.phases.join(', ');
  }

  private closePhase(now: number): void {
    if (this.phase !== undefined) this.phases.push(`${this.phase || 'working'} ${formatMs(now - this.phaseStartedAt)}`);
    this.phase = undefined;
  }
}

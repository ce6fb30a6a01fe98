// What the status bar item says for an engine state: its text (with codicons), tooltip lines
// (Markdown), severity and accessibility label. Pure: no vscode, no Node; unit-tested.
import type { CompletionStats, ExpertCacheSummary, ModelSummary } from './protocol';

/** The engine states the status bar shows (the same shape as EngineService's EngineStatus). */
export type EngineStateView =
  | { kind: 'noModel'; message: string }
  | { kind: 'starting' }
  | { kind: 'loading'; modelPath: string; percentage?: number; message?: string }
  | { kind: 'ready'; modelPath: string; model: ModelSummary; loadMs: number }
  | { kind: 'error'; message: string; modelPath?: string; restarting?: boolean };

export interface StatusInput {
  status: EngineStateView;
  /** The latest completion's figures, if any completion ran since the model loaded. */
  lastCompletion?: CompletionStats;
  /** How long ago that completion finished (the figures are history, not the current speed). */
  lastCompletionAgeMs?: number;
  /** Kernel set of the running engine (avx2, ...). */
  engineIsa?: string;
  engineVersion?: string;
  completionEnabled: boolean;
  /** Under a memory budget: the expert cache's latest figures (engine/stats). */
  experts?: ExpertCacheSummary | null;
}

export type StatusSeverity = 'normal' | 'warning' | 'error';

export interface StatusView {
  text: string;
  /** Markdown lines; user-provided text in them is escaped. */
  tooltip: string[];
  severity: StatusSeverity;
  /** For screen readers (and UI tests): "SmallThinker: <state>". */
  accessibilityLabel: string;
}

const NAME = 'SmallThinker';
const MAX_MODEL_NAME = 28;

/** Escapes text for Markdown (tooltips render it). */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>~]/g, (c) => `\\${c}`);
}

/** The last part of a path, either separator. */
export function baseName(filePath: string): string {
  const parts = filePath.split(/[\\/]/);
  return parts[parts.length - 1] || filePath;
}

/** A short model name: the GGUF's general.name, else the file name without `.gguf`. */
export function modelDisplayName(modelPath: string, model?: Pick<ModelSummary, 'name'>): string {
  const name = model?.name?.trim() || baseName(modelPath).replace(/\.gguf$/i, '');
  return name.length > MAX_MODEL_NAME ? `${name.slice(0, MAX_MODEL_NAME - 1)}…` : name;
}

/** A byte count for people: 2.30 GB, 512.0 MB, 12 KB, 100 bytes (binary units). */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${bytes} bytes`;
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '? ms';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(0)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms)} ms`;
}

export function formatTokensPerS(rate: number): string {
  if (!Number.isFinite(rate) || rate <= 0) return '– tok/s';
  return rate >= 10 ? `${Math.round(rate)} tok/s` : `${rate.toFixed(1)} tok/s`;
}

function percent(part: number, whole: number): string {
  if (whole <= 0) return '0%';
  return `${Math.round((100 * part) / whole)}%`;
}

function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
  return `${Math.round(bytes / 1024 ** 2)} MB`;
}

/** "just now", "40 s ago", "3 min ago", "2 h ago". */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms) || ms < 5000) return 'just now';
  if (ms < 90_000) return `${Math.round(ms / 1000)} s ago`;
  if (ms < 90 * 60_000) return `${Math.round(ms / 60_000)} min ago`;
  return `${Math.round(ms / 3_600_000)} h ago`;
}

/** Tooltip lines about the last completion (empty when there was none). */
export function completionLines(stats: CompletionStats | undefined, ageMs?: number): string[] {
  if (!stats) return ['No completion yet.'];
  const reuse = `${stats.reusedTokens} of ${stats.promptTokens} prompt tokens reused (${percent(stats.reusedTokens, stats.promptTokens)})`;
  const when = ageMs === undefined ? '' : ` (${formatAge(ageMs)})`;
  return [
    `Last completion${when}: first token ${formatMs(stats.timeToFirstTokenMs)}, total ${formatMs(stats.totalMs)}, ${formatTokensPerS(stats.decodeTokensPerS)} (${stats.decodeTokens} tokens)`,
    `Cache: ${reuse}; ${stats.evaluatedTokens} evaluated in ${formatMs(stats.prefillMs)}${stats.movedTokens > 0 ? `; ${stats.movedTokens} moved` : ''}`,
  ];
}

function engineLine(input: StatusInput): string[] {
  const parts: string[] = [];
  if (input.engineVersion) parts.push(`version ${escapeMarkdown(input.engineVersion)}`);
  if (input.engineIsa) parts.push(`kernels ${escapeMarkdown(input.engineIsa)}`);
  return parts.length > 0 ? [`Engine: ${parts.join(', ')}`] : [];
}

/** Under a memory budget: the budget and the expert cache (its latest figures when known). */
export function budgetLines(model: ModelSummary, experts?: ExpertCacheSummary | null): string[] {
  const b = model.memoryBudget;
  if (!b) return [];
  const lines = [
    `Memory budget ${formatBytes(b.bytes)}: ${b.cacheSlots} of ${b.extents} experts cached, read from disk as the router picks them`,
  ];
  if (experts && experts.uses > 0)
    lines.push(
      `Experts: ${percent(experts.uses - experts.reads, experts.uses)} found in the cache, ${formatBytes(experts.bytesRead)} read, ${formatMs(experts.stallMs)} waiting for the disk`,
    );
  return lines;
}

const CLICK_HINT = 'Click for actions.';

/** The status bar item's content for an engine state. */
export function statusView(input: StatusInput): StatusView {
  const { status } = input;
  const completion = `Inline completion: ${input.completionEnabled ? 'on' : 'off'}`;
  switch (status.kind) {
    case 'noModel':
      return {
        text: `$(circle-slash) ${NAME}: no model`,
        tooltip: [`**${NAME}**: no model`, escapeMarkdown(status.message), 'Download the default model or choose a GGUF file.', CLICK_HINT],
        severity: 'warning',
        accessibilityLabel: `${NAME}: no model. ${status.message}`,
      };
    case 'starting':
      return {
        text: `$(loading~spin) ${NAME}`,
        tooltip: [`**${NAME}**: starting the engine…`, CLICK_HINT],
        severity: 'normal',
        accessibilityLabel: `${NAME}: starting`,
      };
    case 'loading': {
      const pct = status.percentage === undefined ? '' : ` ${Math.max(0, Math.min(100, Math.round(status.percentage)))}%`;
      const name = modelDisplayName(status.modelPath);
      const phase = status.message ? `, ${status.message}` : '';
      return {
        text: `$(loading~spin) ${NAME}${pct}`,
        tooltip: [
          `**${NAME}**: loading ${escapeMarkdown(name)}${pct}`,
          ...(status.message ? [`Now: ${escapeMarkdown(status.message)}`] : []),
          ...engineLine(input),
          CLICK_HINT,
        ],
        severity: 'normal',
        accessibilityLabel: `${NAME}: loading${pct}${phase}`,
      };
    }
    case 'ready': {
      const name = modelDisplayName(status.modelPath, status.model);
      // The last completion's figures stay in the tooltip, dated: in the item they would read as the current speed.
      const stats = input.lastCompletion;
      const m = status.model;
      return {
        text: `$(hubot) ${name}`,
        tooltip: [
          `**${NAME}**: ready, ${escapeMarkdown(name)}`,
          `Model: ${escapeMarkdown(baseName(status.modelPath))} (${formatSize(m.fileSize)}, ${m.n_layer} layers, context ${m.context}${m.fim ? ', fill-in-the-middle' : ''}), loaded in ${formatMs(status.loadMs)}`,
          ...completionLines(stats, input.lastCompletionAgeMs),
          ...budgetLines(m, input.experts),
          completion,
          ...engineLine(input),
          CLICK_HINT,
        ],
        severity: 'normal',
        accessibilityLabel: `${NAME}: ready, ${name}`,
      };
    }
    case 'error':
      return {
        text: status.restarting ? `$(error) ${NAME}: restarting` : `$(error) ${NAME}`,
        tooltip: [
          `**${NAME}**: ${status.restarting ? 'the engine stopped; restarting it' : 'error'}`,
          escapeMarkdown(status.message),
          'Click for actions (Show Engine Log, Restart Engine, Choose Model File).',
        ],
        severity: 'error',
        accessibilityLabel: `${NAME}: error. ${status.message}`,
      };
  }
}

/**
 * The notification for a configured model file that is not there: the path, the setting, and what
 * to do (its buttons: Choose GGUF File…, Download…, Open Walkthrough).
 */
export function missingModelMessage(modelPath: string): string {
  return (
    `SmallThinker: the model file ${modelPath} was not found (setting smallthinker.model.path). ` +
    'Choose a GGUF file you have, download a model, or follow the walkthrough to get started.'
  );
}

/** What a load's progress notification says: its title, its line, and how far it is (0-100). */
export interface LoadNoticeView {
  title: string;
  message: string;
  percentage: number;
}

/**
 * The progress notification of a load that takes a while (the engine starting, then the model
 * loading: "42% · laying out"), or undefined for any other state (the notification then ends).
 */
export function loadNoticeView(status: EngineStateView): LoadNoticeView | undefined {
  if (status.kind === 'starting') return { title: `${NAME}: loading the model`, message: 'starting the engine', percentage: 0 };
  if (status.kind !== 'loading') return undefined;
  const percentage = Math.max(0, Math.min(100, Math.round(status.percentage ?? 0)));
  return {
    title: `${NAME}: loading ${modelDisplayName(status.modelPath)}`,
    message: `${percentage}%${status.message ? ` · ${status.message}` : ''}`,
    percentage,
  };
}

// Typed reading of the extension's settings (ids in src/common/ids.ts, defaults in package.json).
import * as vscode from 'vscode';

import { CONFIG_SECTION, DEFAULT_MODEL_URL, Settings, type SettingKey } from '../common/ids';
import { effectiveDownloadUrl } from '../common/modelCatalog';

export interface EngineConfig {
  modelPath: string;
  threads: number;
  contextLength: number;
  memoryLimitMB: number;
  /** 0: automatic (chooseMemoryBudgetMB) */
  memoryBudgetMB: number;
}

export interface CompletionConfig {
  enabled: boolean;
  languages: Record<string, boolean>;
  trigger: 'automatic' | 'manual';
  debounceMs: number;
  maxTokens: number;
  timeBudgetMs: number;
  /** Show the first line after at most this much decoding, then grow it; 0: whole suggestions. */
  firstLineMs: number;
  candidates: number;
  contextChunks: boolean;
}

export interface ChatConfig {
  temperature: number;
  maxTokens: number;
}

export interface DownloadConfig {
  url: string;
  sha256: string;
  folder: string;
}

function section(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(CONFIG_SECTION);
}

function get<T>(key: SettingKey, fallback: T): T {
  const value = section().get<T>(key);
  return value === undefined || value === null ? fallback : value;
}

export function engineConfig(): EngineConfig {
  return {
    modelPath: get(Settings.modelPath, '').trim(),
    threads: Math.max(0, Math.floor(get(Settings.threads, 0))),
    contextLength: Math.max(256, Math.floor(get(Settings.contextLength, 4096))),
    memoryLimitMB: Math.max(64, Math.floor(get(Settings.memoryLimitMB, 1024))),
    memoryBudgetMB: Math.max(0, Math.floor(get(Settings.memoryBudgetMB, 0))),
  };
}

export function completionConfig(): CompletionConfig {
  const trigger = get<string>(Settings.completionTrigger, 'automatic');
  return {
    enabled: get(Settings.completionEnabled, true),
    languages: get<Record<string, boolean>>(Settings.completionLanguages, { '*': true }),
    trigger: trigger === 'manual' ? 'manual' : 'automatic',
    debounceMs: Math.max(0, get(Settings.completionDebounceMs, 0)),
    maxTokens: Math.max(1, get(Settings.completionMaxTokens, 96)),
    timeBudgetMs: Math.max(50, get(Settings.completionTimeBudgetMs, 1500)),
    firstLineMs: Math.max(0, get(Settings.completionFirstLineMs, 80)),
    candidates: Math.min(8, Math.max(1, get(Settings.completionCandidates, 3))),
    contextChunks: get(Settings.completionContextChunks, true),
  };
}

export function chatConfig(): ChatConfig {
  return {
    temperature: Math.max(0, get(Settings.chatTemperature, 0.7)),
    maxTokens: Math.max(16, get(Settings.chatMaxTokens, 1024)),
  };
}

export function downloadConfig(): DownloadConfig {
  return {
    // Empty, or the wrong default of earlier versions: today's default.
    url: effectiveDownloadUrl(get(Settings.modelDownloadUrl, DEFAULT_MODEL_URL)),
    sha256: get(Settings.modelSha256, '').trim().toLowerCase(),
    folder: get(Settings.modelDownloadFolder, '').trim(),
  };
}

/** Writes a setting in the user (global) scope. */
export async function updateSetting(key: SettingKey, value: unknown): Promise<void> {
  await section().update(key, value, vscode.ConfigurationTarget.Global);
}

/** True when the change touches any of `keys`. */
export function affects(event: vscode.ConfigurationChangeEvent, ...keys: SettingKey[]): boolean {
  return keys.some((key) => event.affectsConfiguration(`${CONFIG_SECTION}.${key}`));
}

/** Per-language switch: the language's own entry, else '*', else on. */
export function languageEnabled(config: CompletionConfig, languageId: string): boolean {
  const own = config.languages[languageId];
  if (typeof own === 'boolean') return own;
  const all = config.languages['*'];
  return typeof all === 'boolean' ? all : true;
}

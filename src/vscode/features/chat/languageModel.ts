// The loaded model as a VS Code language model (vscode.lm, VS Code >= 1.104), so VS Code's own chat
// and other extensions can use it: one model while the engine is ready, none otherwise; answers
// stream as text parts; no tools, no images. Each request gets a fresh engine session.
import * as path from 'node:path';

import * as vscode from 'vscode';

import { estimateTokens, promptBudget, trimMessages } from '../../../common/chatHistory';
import type { ChatMessage } from '../../../common/protocol';
import { chatConfig } from '../../config';
import { EngineUnavailableError, isCancellation, type EngineService } from '../../engineService';

export const LANGUAGE_MODEL_ID = 'smallthinker-local';
export const LANGUAGE_MODEL_FAMILY = 'smallthinker';

/** LanguageModelChatMessageRole.System in VS Code's proposed API; may reach providers all the same. */
const SYSTEM_ROLE = 3;

function partText(part: unknown): string {
  if (part instanceof vscode.LanguageModelTextPart) return part.value;
  if (typeof part === 'object' && part !== null && typeof (part as { value?: unknown }).value === 'string')
    return (part as { value: string }).value;
  return '';
}

/** The request's messages as engine chat messages: text parts only, same-role neighbours joined. */
export function toEngineMessages(messages: readonly vscode.LanguageModelChatRequestMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const m of messages) {
    const role: ChatMessage['role'] =
      m.role === vscode.LanguageModelChatMessageRole.Assistant ? 'assistant' : (m.role as number) === SYSTEM_ROLE ? 'system' : 'user';
    const content = m.content.map(partText).join('');
    if (!content.trim()) continue;
    const last = out[out.length - 1];
    if (last && last.role === role) last.content += `\n\n${content}`;
    else out.push({ role, content });
  }
  return out;
}

function numberOption(options: { readonly [name: string]: unknown } | undefined, ...names: string[]): number | undefined {
  for (const name of names) {
    const v = options?.[name];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

export class SmallThinkerChatModelProvider implements vscode.LanguageModelChatProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeLanguageModelChatInformation = this.changed.event;
  private lastKey: string;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly engine: EngineService) {
    this.lastKey = this.modelKey();
    this.subscription = engine.onDidChangeStatus(() => {
      const key = this.modelKey();
      if (key === this.lastKey) return;
      this.lastKey = key;
      this.changed.fire();
    });
  }

  /** Changes exactly when the offered model list does. */
  private modelKey(): string {
    const s = this.engine.status;
    return s.kind === 'ready' ? `${s.modelPath}|${s.model.name}|${s.model.context}` : '';
  }

  provideLanguageModelChatInformation(): vscode.LanguageModelChatInformation[] {
    const s = this.engine.status;
    if (s.kind !== 'ready') return [];
    const context = s.model.context;
    const maxOutputTokens = Math.min(chatConfig().maxTokens, Math.floor(context / 2));
    const file = path.basename(s.modelPath);
    return [
      {
        id: LANGUAGE_MODEL_ID,
        name: s.model.name || file,
        family: LANGUAGE_MODEL_FAMILY,
        version: s.model.architecture || '1',
        maxInputTokens: context - maxOutputTokens,
        maxOutputTokens,
        tooltip: `Runs on this machine with the SmallThinker engine (${file}, context ${context} tokens).`,
        detail: 'local',
        capabilities: { imageInput: false, toolCalling: false },
      },
    ];
  }

  async provideLanguageModelChatResponse(
    model: vscode.LanguageModelChatInformation,
    messages: readonly vscode.LanguageModelChatRequestMessage[],
    options: vscode.ProvideLanguageModelChatResponseOptions,
    progress: vscode.Progress<vscode.LanguageModelResponsePart>,
    token: vscode.CancellationToken,
  ): Promise<void> {
    const converted = toEngineMessages(messages);
    if (converted.length === 0) throw new Error('The request has no text to answer: SmallThinker reads text parts only.');
    const maxTokens = Math.max(1, Math.floor(numberOption(options.modelOptions, 'maxTokens', 'max_tokens') ?? model.maxOutputTokens));
    const temperature = numberOption(options.modelOptions, 'temperature') ?? chatConfig().temperature;
    const s = this.engine.status;
    const context = s.kind === 'ready' ? s.model.context : model.maxInputTokens + model.maxOutputTokens;
    const trimmed = trimMessages(converted, promptBudget(context, maxTokens));
    try {
      await this.engine.chat(
        { messages: trimmed, sampling: { temperature }, maxTokens },
        (delta) => progress.report(new vscode.LanguageModelTextPart(delta)),
        token,
        { label: 'language model' },
      );
    } catch (err) {
      if (token.isCancellationRequested || isCancellation(err)) throw new vscode.CancellationError();
      if (err instanceof EngineUnavailableError) throw new Error(`SmallThinker cannot answer: ${err.message}`);
      throw err;
    }
  }

  async provideTokenCount(
    _model: vscode.LanguageModelChatInformation,
    text: string | vscode.LanguageModelChatRequestMessage,
    token: vscode.CancellationToken,
  ): Promise<number> {
    const value = typeof text === 'string' ? text : text.content.map(partText).join('');
    if (this.engine.status.kind !== 'ready' || token.isCancellationRequested) return estimateTokens(value);
    try {
      return await this.engine.tokenCount(value);
    } catch {
      return estimateTokens(value);
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}

/** Registers the provider where the host has the API (VS Code >= 1.104); logs and skips otherwise. */
export function registerLanguageModel(vendor: string, engine: EngineService, log: vscode.LogOutputChannel): vscode.Disposable | undefined {
  const lm = vscode.lm as Partial<typeof vscode.lm> | undefined;
  if (typeof lm?.registerLanguageModelChatProvider !== 'function') {
    log.info('This VS Code has no language-model provider API (needs 1.104 or newer): SmallThinker is not offered to VS Code chat.');
    return undefined;
  }
  const provider = new SmallThinkerChatModelProvider(engine);
  try {
    const registration = lm.registerLanguageModelChatProvider(vendor, provider);
    return vscode.Disposable.from(registration, provider);
  } catch (err) {
    provider.dispose();
    log.warn(`Could not offer SmallThinker as a VS Code language model: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

// The inline completion provider (ghost text). Per request: settings gates, the client cache
// (exact positions and typed-ahead suggestions are served without a model call), a debounce, then
// one completion/create with the editor's CancellationToken passed down (a stale request stops in
// the engine), the time budget and stop-at-block-end rules. After a suggestion is shown, the
// completion for "the suggestion was accepted" is computed ahead into the cache.
import * as vscode from 'vscode';

import { AcceptanceTracker } from '../../../common/acceptanceStats';
import { CompletionCache } from '../../../common/completionCache';
import { Commands } from '../../../common/ids';
import { clipForRequest } from '../../../common/prompt';
import type { CompletionParams, CompletionPrompt, CompletionResult } from '../../../common/protocol';
import { completionConfig, languageEnabled, type CompletionConfig } from '../../config';
import { errorMessage, isCancellation, type EngineService } from '../../engineService';
import { displayName, type ContextTracker } from './contextTracker';

/** Schemes whose documents get completions (not output panes, git inputs, settings...). */
const SCHEMES = new Set(['file', 'untitled', 'vscode-remote', 'vscode-userdata', 'vscode-notebook-cell']);

function sleep(ms: number, token: vscode.CancellationToken): Promise<boolean> {
  return new Promise((resolve) => {
    if (token.isCancellationRequested) return resolve(false);
    const timer = setTimeout(() => {
      sub.dispose();
      resolve(!token.isCancellationRequested);
    }, ms);
    const sub = token.onCancellationRequested(() => {
      clearTimeout(timer);
      sub.dispose();
      resolve(false);
    });
  });
}

/** The completion/create (and context/warm) prompt for a document position, clipped for transport. */
export function completionPrompt(
  document: vscode.TextDocument,
  prefix: string,
  suffix: string,
  context: ContextTracker,
  config: CompletionConfig,
): CompletionPrompt {
  const clipped = clipForRequest(prefix, suffix);
  return {
    chunks: config.contextChunks ? context.ring.forPrompt(document.uri.toString()) : [],
    prefix: clipped.prefix,
    suffix: clipped.suffix,
    fileName: displayName(document),
    languageId: document.languageId,
  };
}

export interface ProviderEvents {
  /** Set by the manual trigger command: the next request computes several candidates. */
  manualTriggerPending: boolean;
}

export class CompletionProvider implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  readonly cache = new CompletionCache();
  private ahead: vscode.CancellationTokenSource | undefined;
  private readonly events: ProviderEvents = { manualTriggerPending: false };
  /** Requests that reached the engine (for tests and the statistics). */
  engineCalls = 0;

  constructor(
    private readonly engine: EngineService,
    private readonly context: ContextTracker,
    readonly tracker: AcceptanceTracker,
    private readonly log: vscode.LogOutputChannel,
    private readonly onStatsChanged: () => void,
  ) {}

  /** The next request was asked for by hand (Alt+\): compute several candidates, ignore the debounce. */
  markManualTrigger(): void {
    this.events.manualTriggerPending = true;
  }

  async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    this.cancelAhead();
    const config = completionConfig();
    const invoked = context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke || this.events.manualTriggerPending;
    this.events.manualTriggerPending = false;
    if (!config.enabled && !invoked) return undefined;
    if (!languageEnabled(config, document.languageId) && !invoked) return undefined;
    if (config.trigger === 'manual' && !invoked) return undefined;
    if (!SCHEMES.has(document.uri.scheme)) return undefined;
    if (context.selectedCompletionInfo) return undefined; // the suggest widget is open: leave it alone
    if (this.engine.status.kind !== 'ready') return undefined;

    const offset = document.offsetAt(position);
    const text = document.getText();
    const prefix = text.slice(0, offset);
    const suffix = text.slice(offset);
    const docKey = document.uri.toString();
    this.tracker.onRequest(docKey, prefix.length, (from) => prefix.slice(from));

    const hit = this.cache.get({ document: docKey, prefix, suffix });
    if (hit && (!invoked || hit.candidates.length >= config.candidates || hit.typed > 0)) {
      const items = this.items(document, position, hit.candidates, prefix, suffix, true);
      return items;
    }

    if (!invoked && config.debounceMs > 0 && !(await sleep(config.debounceMs, token))) return undefined;
    if (config.contextChunks) await this.context.pollClipboard();
    if (token.isCancellationRequested) return undefined;

    const params = this.params(document, prefix, suffix, config, invoked ? config.candidates : 1);
    let result: CompletionResult;
    try {
      this.engineCalls++;
      result = await this.engine.complete(params, token);
    } catch (err) {
      if (!isCancellation(err) && !token.isCancellationRequested) this.log.warn(`completion failed: ${errorMessage(err)}`);
      return undefined;
    }
    this.tracker.onEngineLatency(result.stats.timeToFirstTokenMs);
    this.cache.put({ document: docKey, prefix, suffix }, result.candidates);
    this.log.debug(
      `completion ${displayName(document)}:${position.line + 1}: ${result.stats.evaluatedTokens}/${result.stats.promptTokens} tokens evaluated, ` +
        `first token ${result.stats.timeToFirstTokenMs.toFixed(0)} ms, ${result.stats.decodeTokens} generated, total ${result.stats.totalMs.toFixed(0)} ms`,
    );
    if (token.isCancellationRequested) return undefined;
    return this.items(document, position, result.candidates, prefix, suffix, false);
  }

  private params(
    document: vscode.TextDocument,
    prefix: string,
    suffix: string,
    config: CompletionConfig,
    candidates: number,
  ): CompletionParams {
    return {
      documentId: document.uri.toString(),
      prompt: completionPrompt(document, prefix, suffix, this.context, config),
      maxTokens: config.maxTokens,
      timeBudgetMs: config.timeBudgetMs,
      stopOnDedent: true,
      candidates,
    };
  }

  private items(
    document: vscode.TextDocument,
    position: vscode.Position,
    candidates: readonly string[],
    prefix: string,
    suffix: string,
    fromCache: boolean,
  ): vscode.InlineCompletionItem[] | undefined {
    const texts = candidates.filter((c) => c.length > 0);
    const docKey = document.uri.toString();
    this.tracker.onShown(docKey, prefix.length, texts[0] ?? '', fromCache);
    this.onStatsChanged();
    if (texts.length === 0) return undefined;
    this.computeAhead(document, prefix, suffix, texts[0]);
    return texts.map((t) => {
      const item = new vscode.InlineCompletionItem(t, new vscode.Range(position, position));
      item.command = { command: Commands.completionAccepted, title: 'Accepted', arguments: [docKey, t, prefix.length] };
      return item;
    });
  }

  /** Computes the completion for the position after `shown` is accepted, into the cache. */
  private computeAhead(document: vscode.TextDocument, prefix: string, suffix: string, shown: string): void {
    const config = completionConfig();
    const nextPrefix = prefix + shown;
    const docKey = document.uri.toString();
    if (this.cache.get({ document: docKey, prefix: nextPrefix, suffix })) return;
    const source = new vscode.CancellationTokenSource();
    this.ahead = source;
    const version = document.version;
    // Let the editor render the suggestion first.
    setTimeout(() => {
      if (source.token.isCancellationRequested || document.version !== version) return;
      const params = this.params(document, nextPrefix, suffix, config, 1);
      this.engine.complete(params, source.token, { record: false }).then(
        (result) => {
          if (!source.token.isCancellationRequested) this.cache.put({ document: docKey, prefix: nextPrefix, suffix }, result.candidates);
        },
        (err: unknown) => {
          if (!isCancellation(err)) this.log.debug(`completion ahead failed: ${errorMessage(err)}`);
        },
      );
    }, 30);
  }

  private cancelAhead(): void {
    this.ahead?.cancel();
    this.ahead?.dispose();
    this.ahead = undefined;
  }

  dispose(): void {
    this.cancelAhead();
  }
}

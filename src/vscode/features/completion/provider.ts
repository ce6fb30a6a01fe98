// The inline completion provider (ghost text). Per request: settings gates, the client cache
// (exact positions and typed-ahead suggestions are served without a model call), a debounce, then
// one completion/create with the editor's CancellationToken passed down (a stale request stops in
// the engine), the time budget and stop-at-block-end rules. After a suggestion is shown, the
// completion for "the suggestion was accepted" is computed ahead into the cache.
//
// Line first: a typed request asks only for the first line (firstLineMs), which shows at once; the
// completion ahead is then its continuation, and when it arrives while the cursor has not moved,
// the suggestion grows to first line + continuation (the editor is asked for it again).
//
// Resting at the end of a line, the first line of the next one is predicted (predictNewLine), so
// that Enter shows it at once.
//
// With the suggest widget open, the request is made as if its selected item were applied (the
// prompt, the cache key and the completion ahead all see the text with the item in it), and the
// items replace the item's range with its text followed by the completion: VS Code shows an inline
// item next to the widget only when applying it equals applying the selected item and then more.
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

/**
 * Where a request splits the document: at the cursor, or, with the suggest widget open, as if its
 * selected item were applied (prefix = the text before the item's range + the item's text, suffix =
 * the text after its range). Items replace `range` with `selected` + a completion.
 */
export interface RequestSplit {
  prefix: string;
  suffix: string;
  /** What the items replace: the cursor (an empty range), or the selected item's range. */
  range: vscode.Range;
  /** The selected item's text, which every item starts with ('' without the suggest widget). */
  selected: string;
  /** The cursor's offset in the document (the suggestion grows only while the cursor stays there). */
  cursor: number;
}

/**
 * The split of a request at `position` (see RequestSplit); undefined when the widget's selected
 * item cannot be extended inline (its range is not on one line around the cursor).
 */
export function requestSplit(
  document: vscode.TextDocument,
  position: vscode.Position,
  selected: vscode.SelectedCompletionInfo | undefined,
): RequestSplit | undefined {
  const text = document.getText();
  const cursor = document.offsetAt(position);
  if (!selected)
    return { prefix: text.slice(0, cursor), suffix: text.slice(cursor), range: new vscode.Range(position, position), selected: '', cursor };
  const range = document.validateRange(selected.range);
  if (!range.isSingleLine || !range.contains(position)) return undefined;
  return {
    prefix: text.slice(0, document.offsetAt(range.start)) + selected.text,
    suffix: text.slice(document.offsetAt(range.end)),
    range,
    selected: selected.text,
    cursor,
  };
}

export interface ProviderEvents {
  /** Set by the manual trigger command: the next request computes several candidates. */
  manualTriggerPending: boolean;
  /** Set when the provider re-triggers the editor to grow a shown first line: not a manual request. */
  growPending: boolean;
}

export class CompletionProvider implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  readonly cache = new CompletionCache();
  private ahead: vscode.CancellationTokenSource | undefined;
  /**
   * Where the suggestion that `ahead` continues is shown, and what it computes (a request served
   * there again leaves it running when it would start the same computation).
   */
  private aheadAt: { document: string; offset: number; version: number; prefix: string; suffix: string; grow: boolean } | undefined;
  /** Per document: the last suggestion shown that is only a first line (to grow when served again). */
  private readonly firstLines = new Map<string, { prefixLength: number; text: string }>();
  private readonly events: ProviderEvents = { manualTriggerPending: false, growPending: false };
  /** The suggestion for the line an Enter would start where the cursor rests (predictNewLine), while it is computed. */
  private predicted:
    | {
        document: string;
        prefix: string;
        suffix: string;
        result: Promise<CompletionResult | undefined>;
        source: vscode.CancellationTokenSource;
      }
    | undefined;
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
    // (a request at the position of the suggestion being continued may show it again: items() then
    // leaves that computation running; anywhere else it is stale)
    const aheadAt = this.aheadAt;
    if (aheadAt?.document !== document.uri.toString() || aheadAt.offset !== document.offsetAt(position)) this.cancelAhead();
    const config = completionConfig();
    const grow = this.events.growPending;
    this.events.growPending = false;
    const invoked = (context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke && !grow) || this.events.manualTriggerPending;
    this.events.manualTriggerPending = false;
    if (!config.enabled && !invoked) return undefined;
    if (!languageEnabled(config, document.languageId) && !invoked) return undefined;
    if (config.trigger === 'manual' && !invoked) return undefined;
    if (!SCHEMES.has(document.uri.scheme)) return undefined;
    if (this.engine.status.kind !== 'ready') return undefined;
    // With the suggest widget open: as if its selected item were applied (undefined: it cannot be extended).
    const at = requestSplit(document, position, context.selectedCompletionInfo);
    if (!at) return undefined;
    const { prefix, suffix } = at;
    const docKey = document.uri.toString();
    this.tracker.onRequest(docKey, prefix.length, (from) => prefix.slice(from));

    const hit = this.cache.get({ document: docKey, prefix, suffix });
    if (hit && (!invoked || hit.candidates.length >= config.candidates || hit.typed > 0)) {
      this.cancelPrediction();
      const line = this.firstLines.get(docKey);
      const firstLineOnly = hit.typed === 0 && line?.prefixLength === prefix.length && line.text === hit.candidates[0];
      return this.items(document, at, hit.candidates, true, firstLineOnly);
    }
    // The new line predicted while the cursor rested, still being computed: wait for it.
    const predicted = this.predicted;
    if (predicted && !invoked && predicted.document === docKey && predicted.prefix === prefix && predicted.suffix === suffix) {
      let listener: vscode.Disposable | undefined;
      const cancelled = new Promise<undefined>((resolve) => (listener = token.onCancellationRequested(() => resolve(undefined))));
      const result = await Promise.race([predicted.result, cancelled]);
      listener?.dispose();
      if (token.isCancellationRequested) return undefined;
      if (result) return this.items(document, at, result.candidates, true, result.stats.stopReason === 'line');
    }
    this.cancelPrediction();

    if (!invoked && config.debounceMs > 0 && !(await sleep(config.debounceMs, token))) return undefined;
    if (config.contextChunks) await this.context.pollClipboard();
    if (token.isCancellationRequested) return undefined;

    this.cancelAhead(); // (the engine is asked here: a continuation of what was shown would only delay it)
    const params = this.params(document, prefix, suffix, config, invoked ? config.candidates : 1);
    // Typed: the first line at once, the rest ahead (a manual request waits for whole candidates).
    // (firstLineMs: decoding after which a first line that has not ended shows as it is, then grows;
    // short, since keystroke to ghost text is the latency users feel)
    if (!invoked && config.firstLineMs > 0) params.firstLineMs = config.firstLineMs;
    let result: CompletionResult;
    try {
      this.engineCalls++;
      const label = `completion ${displayName(document)}:${position.line + 1}${at.selected ? ' after the selected suggestion' : ''}`;
      result = await this.engine.complete(params, token, { label });
    } catch (err) {
      if (!isCancellation(err) && !token.isCancellationRequested) this.log.warn(`completion failed: ${errorMessage(err)}`);
      return undefined;
    }
    this.tracker.onEngineLatency(result.stats.timeToFirstTokenMs);
    this.cache.put({ document: docKey, prefix, suffix }, result.candidates);
    if (token.isCancellationRequested) return undefined;
    return this.items(document, at, result.candidates, false, result.stats.stopReason === 'line');
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
    at: RequestSplit,
    candidates: readonly string[],
    fromCache: boolean,
    firstLineOnly = false,
  ): vscode.InlineCompletionItem[] | undefined {
    const texts = candidates.filter((c) => c.length > 0);
    const docKey = document.uri.toString();
    const { prefix } = at;
    if (firstLineOnly && texts[0]) this.firstLines.set(docKey, { prefixLength: prefix.length, text: texts[0] });
    else this.firstLines.delete(docKey);
    this.tracker.onShown(docKey, prefix.length, texts[0] ?? '', fromCache);
    this.onStatsChanged();
    if (texts.length === 0) return undefined;
    this.computeAhead(document, at, texts[0], firstLineOnly);
    return texts.map((t) => {
      const insert = at.selected + t;
      const item = new vscode.InlineCompletionItem(insert, at.range);
      // (the statistics count the model's text, not the selected item's)
      item.command = { command: Commands.completionAccepted, title: 'Accepted', arguments: [docKey, t, prefix.length] };
      return item;
    });
  }

  /**
   * Computes the completion for the position after `shown` is accepted, into the cache. When
   * `shown` is only a first line, that completion is its continuation: once it arrives, if the
   * document and the cursor are as they were, the suggestion at `at` becomes shown +
   * continuation and the editor is asked again (it gets it from the cache).
   */
  private computeAhead(document: vscode.TextDocument, at: RequestSplit, shown: string, grow = false): void {
    const config = completionConfig();
    const { prefix, suffix } = at;
    const nextPrefix = prefix + shown;
    const docKey = document.uri.toString();
    const version = document.version;
    const a = this.aheadAt;
    const underWay =
      a?.document === docKey &&
      a.offset === at.cursor &&
      a.version === version &&
      a.prefix === nextPrefix &&
      a.suffix === suffix &&
      a.grow === grow;
    if (underWay) return;
    this.cancelAhead();
    const cached = this.cache.get({ document: docKey, prefix: nextPrefix, suffix });
    if (cached && !grow) return;
    const grown = (rest: readonly string[]): void => {
      if (!grow || !rest[0] || document.version !== version) return;
      const editor = vscode.window.activeTextEditor;
      const cursor = editor?.document === document && editor.selection.isEmpty ? document.offsetAt(editor.selection.active) : -1;
      if (cursor !== at.cursor) return;
      this.cache.put({ document: docKey, prefix, suffix }, [shown + rest[0]]);
      this.firstLines.delete(docKey);
      this.events.growPending = true;
      void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    };
    if (cached) {
      grown(cached.candidates);
      return;
    }
    const source = new vscode.CancellationTokenSource();
    this.ahead = source;
    this.aheadAt = { document: docKey, offset: at.cursor, version, prefix: nextPrefix, suffix, grow };
    const settled = (): void => {
      if (this.ahead !== source) return;
      this.ahead = undefined;
      this.aheadAt = undefined;
      source.dispose();
    };
    // Let the editor render the suggestion first.
    setTimeout(() => {
      if (source.token.isCancellationRequested || document.version !== version) return settled();
      const params = this.params(document, nextPrefix, suffix, config, 1);
      this.engine.complete(params, source.token, { record: false, label: `completion ahead ${displayName(document)}` }).then(
        (result) => {
          const cancelled = source.token.isCancellationRequested;
          settled();
          if (cancelled) return;
          this.cache.put({ document: docKey, prefix: nextPrefix, suffix }, result.candidates);
          grown(result.candidates);
        },
        (err: unknown) => {
          settled();
          if (!isCancellation(err)) this.log.debug(`completion ahead failed: ${errorMessage(err)}`);
        },
      );
    }, 30);
  }

  /**
   * The cursor rests at the end of a line (after the warm-up there): computes into the cache the
   * first line of the suggestion for the line Enter would start there (this line's indentation,
   * one level more after an opening bracket or a colon), so that pressing Enter shows it at once
   * (a request for that position while it is computed waits for it). A guess: when Enter indents
   * otherwise, that request just asks the engine.
   */
  predictNewLine(editor: vscode.TextEditor): void {
    // (a prediction under way stays until another one starts: after an Enter, the warm-up that ends
    // on the new, still blank line must not cancel the prediction that line's request waits for)
    const document = editor.document;
    const config = completionConfig();
    if (!config.enabled || config.trigger === 'manual' || !languageEnabled(config, document.languageId)) return;
    if (!SCHEMES.has(document.uri.scheme) || this.engine.status.kind !== 'ready' || !editor.selection.isEmpty) return;
    const position = editor.selection.active;
    const line = document.lineAt(position.line);
    if (position.character !== line.text.length || line.isEmptyOrWhitespace) return;
    const { indentSize, tabSize, insertSpaces } = editor.options;
    const size = typeof indentSize === 'number' ? indentSize : typeof tabSize === 'number' ? tabSize : 4;
    const unit = insertSpaces === false ? '\t' : ' '.repeat(size);
    const indent = line.text.slice(0, line.firstNonWhitespaceCharacterIndex) + (/[{[(:]\s*$/.test(line.text) ? unit : '');
    const text = document.getText();
    const offset = document.offsetAt(position);
    const prefix = text.slice(0, offset) + (document.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n') + indent;
    const suffix = text.slice(offset);
    const docKey = document.uri.toString();
    const p = this.predicted;
    if (p && p.document === docKey && p.prefix === prefix && p.suffix === suffix) return;
    if (this.cache.get({ document: docKey, prefix, suffix })) return;
    this.cancelPrediction();
    const params = this.params(document, prefix, suffix, config, 1);
    if (config.firstLineMs > 0) params.firstLineMs = config.firstLineMs;
    const source = new vscode.CancellationTokenSource();
    const result = this.engine
      .complete(params, source.token, { record: false, label: `completion for a new line ${displayName(document)}` })
      .then(
        (r) => {
          if (source.token.isCancellationRequested) return undefined;
          this.cache.put({ document: docKey, prefix, suffix }, r.candidates);
          if (r.stats.stopReason === 'line' && r.candidates[0])
            this.firstLines.set(docKey, { prefixLength: prefix.length, text: r.candidates[0] });
          return r;
        },
        (err: unknown) => {
          if (!isCancellation(err)) this.log.debug(`completion for a new line failed: ${errorMessage(err)}`);
          return undefined;
        },
      );
    this.predicted = { document: docKey, prefix, suffix, result, source };
    void result.finally(() => {
      if (this.predicted?.source === source) this.predicted = undefined;
      source.dispose();
    });
  }

  private cancelPrediction(): void {
    this.predicted?.source.cancel();
    this.predicted = undefined;
  }

  /** A document closed: its cached suggestions go. */
  forget(docKey: string): void {
    this.cache.clear(docKey);
    this.firstLines.delete(docKey);
  }

  /** The cursor moved by hand: what is computed ahead for a suggestion shown elsewhere is stale. */
  onCursorMoved(document: vscode.TextDocument, offset: number): void {
    this.cancelPrediction();
    if (this.aheadAt?.document === document.uri.toString() && this.aheadAt.offset === offset) return;
    this.cancelAhead();
  }

  private cancelAhead(): void {
    this.ahead?.cancel();
    this.ahead?.dispose();
    this.ahead = undefined;
    this.aheadAt = undefined;
  }

  dispose(): void {
    this.cancelAhead();
    this.cancelPrediction();
  }
}

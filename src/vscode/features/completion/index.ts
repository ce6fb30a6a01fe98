// Inline completion: the provider for every language, the manual trigger, acceptance statistics
// (kept in the extension's global state on this machine only, with retention checks of accepted
// text), and warming the engine's cache for a file the user switched to.
import * as vscode from 'vscode';

import {
  AcceptanceTracker,
  RETENTION_DELAYS_MS,
  describeAcceptance,
  emptyAcceptanceState,
  loadAcceptanceState,
} from '../../../common/acceptanceStats';
import { Commands } from '../../../common/ids';
import { completionConfig, languageEnabled } from '../../config';
import { errorMessage, isCancellation } from '../../engineService';
import type { Services } from '../../services';
import { ContextTracker } from './contextTracker';
import { CompletionProvider, completionPrompt } from './provider';

const STATS_KEY = 'smallthinker.completionStats';
/** Idle time after switching files before the engine evaluates the new file's prompt. */
const WARM_DELAY_MS = 700;
/**
 * Idle time after the cursor moved (not by typing) before the engine evaluates the prompt at the
 * new position, so that the first keystroke there costs a few tokens instead of the whole change.
 */
const CURSOR_WARM_DELAY_MS = 250;

let providerForTests: CompletionProvider | undefined;
/** The live provider (extension-host tests inspect its cache and counters). */
export function completionProviderForTests(): CompletionProvider | undefined {
  return providerForTests;
}

export function registerCompletion(context: vscode.ExtensionContext, services: Services): void {
  const tracker = new AcceptanceTracker(loadAcceptanceState(context.globalState.get(STATS_KEY)));
  let saveTimer: NodeJS.Timeout | undefined;
  const saveStats = (): void => {
    if (saveTimer) return;
    saveTimer = setTimeout(() => {
      saveTimer = undefined;
      void context.globalState.update(STATS_KEY, tracker.state);
    }, 2000);
  };

  const contextTracker = new ContextTracker(() => completionConfig().contextChunks);
  const provider = new CompletionProvider(services.engine, contextTracker, tracker, services.log, saveStats);
  providerForTests = provider;

  // Retention: is accepted text still in the document after 30 s, 2 min, 10 min?
  const timers = new Set<NodeJS.Timeout>();
  const scheduleRetention = (docKey: string, text: string): void => {
    if (text.trim().length < 4) return;
    RETENTION_DELAYS_MS.forEach((delay, i) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === docKey);
        if (!doc) return; // closed: nothing to check
        tracker.onRetentionCheck(i as 0 | 1 | 2, doc.getText().includes(text));
        saveStats();
      }, delay);
      timers.add(timer);
    });
  };

  // Warming: after switching to a file or moving the cursor, evaluate the prompt there before the
  // first keystroke. A keystroke cancels a warm-up not yet sent, not one the engine runs: that one
  // is the work the keystroke's completion needs (the engine lets it finish first).
  let warmSource: vscode.CancellationTokenSource | undefined;
  /** The document of the warm-up in flight. */
  let warmDocument: string | undefined;
  let warmTimer: NodeJS.Timeout | undefined;
  /** The last edit of a document (a selection change right after it is the edit's, not a move). */
  let lastEdit: { document: vscode.TextDocument; version: number; at: number } | undefined;
  const cancelWarmTimer = (): void => {
    if (warmTimer) clearTimeout(warmTimer);
    warmTimer = undefined;
  };
  const cancelWarm = (): void => {
    cancelWarmTimer();
    warmSource?.cancel();
    warmSource?.dispose();
    warmSource = undefined;
    warmDocument = undefined;
  };
  const scheduleWarm = (editor: vscode.TextEditor | undefined, delayMs = WARM_DELAY_MS): void => {
    // A warm-up of another document is stale; one of this document finishes (cheaper than
    // evaluating again what an interrupted one loses) and the new one follows it.
    if (editor && warmDocument === editor.document.uri.toString()) cancelWarmTimer();
    else cancelWarm();
    const config = completionConfig();
    if (!editor || !config.enabled || config.trigger === 'manual' || !languageEnabled(config, editor.document.languageId)) return;
    if (services.engine.status.kind !== 'ready' || editor.document.uri.scheme === 'output') return;
    warmTimer = setTimeout(() => {
      warmTimer = undefined;
      const doc = editor.document;
      if (doc.isClosed) return;
      const offset = doc.offsetAt(editor.selection.active);
      const version = doc.version;
      const text = doc.getText();
      const source = new vscode.CancellationTokenSource();
      warmSource = source;
      const documentId = doc.uri.toString();
      warmDocument = documentId;
      const done = (): void => {
        source.dispose();
        if (warmSource !== source) return;
        warmSource = undefined;
        warmDocument = undefined;
      };
      services.engine
        .warm(
          {
            documentId,
            prompt: completionPrompt(doc, text.slice(0, offset), text.slice(offset), contextTracker, config),
            maxTokens: config.maxTokens,
          },
          source.token,
        )
        .then(
          () => {
            const cancelled = source.token.isCancellationRequested;
            done(); // (the engine service logs its figures)
            // still resting there: the line Enter would start, predicted
            const now = vscode.window.activeTextEditor;
            if (cancelled || now !== editor || doc.version !== version || !now.selection.isEmpty) return;
            if (doc.offsetAt(now.selection.active) === offset) provider.predictNewLine(now);
          },
          (err: unknown) => {
            done();
            if (!isCancellation(err)) services.log.debug(`warming failed: ${errorMessage(err)}`);
          },
        );
    }, delayMs);
  };

  context.subscriptions.push(
    contextTracker,
    provider,
    vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, provider),
    vscode.commands.registerCommand(Commands.triggerCompletion, async () => {
      cancelWarmTimer();
      provider.markManualTrigger();
      await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    }),
    vscode.commands.registerCommand(Commands.completionAccepted, (docKey: string, text: string) => {
      tracker.onAccepted(typeof text === 'string' ? text : '');
      if (typeof docKey === 'string' && typeof text === 'string') scheduleRetention(docKey, text);
      saveStats();
    }),
    vscode.commands.registerCommand(Commands.showStats, async () => {
      // A list to read, not a dialog: Enter or Escape just closes it. Resetting is the last row and asks first.
      const reset = { label: '$(discard) Reset Statistics…', description: 'asks first', reset: true };
      const items: Array<vscode.QuickPickItem & { reset?: boolean }> = [
        ...describeAcceptance(tracker.state).map((line) => ({ label: line })),
        { label: '', kind: vscode.QuickPickItemKind.Separator },
        reset,
      ];
      const picked = await vscode.window.showQuickPick(items, {
        title: 'SmallThinker inline completion statistics (kept on this machine only)',
        placeHolder: 'Enter or Escape closes this list',
      });
      if (!picked?.reset) return;
      const keep = { label: '$(check) Keep the Statistics', reset: false };
      const confirm = await vscode.window.showQuickPick([keep, { label: '$(discard) Reset the Statistics', reset: true }], {
        title: 'Reset the inline completion statistics? This cannot be undone.',
        placeHolder: 'Keep them, or reset them to zero',
      });
      if (!confirm?.reset) return;
      Object.assign(tracker.state, emptyAcceptanceState());
      await context.globalState.update(STATS_KEY, tracker.state);
      services.log.info('completion statistics reset (asked and confirmed).');
      vscode.window.setStatusBarMessage('SmallThinker completion statistics reset', 3000);
    }),
    vscode.window.onDidChangeActiveTextEditor((editor) => scheduleWarm(editor)),
    vscode.workspace.onDidChangeTextDocument((e) => {
      cancelWarmTimer();
      if (e.contentChanges.length > 0) lastEdit = { document: e.document, version: e.document.version, at: Date.now() };
    }),
    // The cursor moved by hand (not by typing, which moves it too): warm the prompt at the new position.
    vscode.window.onDidChangeTextEditorSelection((e) => {
      if (e.kind === undefined || e.textEditor !== vscode.window.activeTextEditor || !e.selections[0]?.isEmpty) return;
      const doc = e.textEditor.document;
      if (lastEdit?.document === doc && lastEdit.version === doc.version && Date.now() - lastEdit.at < 200) return;
      provider.onCursorMoved(doc, doc.offsetAt(e.selections[0].active));
      scheduleWarm(e.textEditor, CURSOR_WARM_DELAY_MS);
    }),
    vscode.workspace.onDidCloseTextDocument((doc) => provider.forget(doc.uri.toString())),
    services.engine.onDidChangeStatus((status) => {
      if (status.kind === 'ready') scheduleWarm(vscode.window.activeTextEditor);
      else provider.cache.clear();
    }),
    {
      dispose: () => {
        cancelWarm();
        for (const t of timers) clearTimeout(t);
        if (saveTimer) clearTimeout(saveTimer);
        void context.globalState.update(STATS_KEY, tracker.state);
        providerForTests = undefined;
      },
    },
  );
}

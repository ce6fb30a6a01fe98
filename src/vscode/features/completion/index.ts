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
import { ContextTracker, displayName } from './contextTracker';
import { CompletionProvider, completionPrompt } from './provider';

const STATS_KEY = 'smallthinker.completionStats';
/** Idle time after switching files before the engine evaluates the new file's prompt. */
const WARM_DELAY_MS = 700;

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

  // Warming: after switching to a file, evaluate its prompt before the first keystroke.
  let warmSource: vscode.CancellationTokenSource | undefined;
  let warmTimer: NodeJS.Timeout | undefined;
  const cancelWarm = (): void => {
    if (warmTimer) clearTimeout(warmTimer);
    warmTimer = undefined;
    warmSource?.cancel();
    warmSource?.dispose();
    warmSource = undefined;
  };
  const scheduleWarm = (editor: vscode.TextEditor | undefined): void => {
    cancelWarm();
    const config = completionConfig();
    if (!editor || !config.enabled || config.trigger === 'manual' || !languageEnabled(config, editor.document.languageId)) return;
    if (services.engine.status.kind !== 'ready' || editor.document.uri.scheme === 'output') return;
    warmTimer = setTimeout(() => {
      warmTimer = undefined;
      const doc = editor.document;
      if (doc.isClosed) return;
      const offset = doc.offsetAt(editor.selection.active);
      const text = doc.getText();
      const source = new vscode.CancellationTokenSource();
      warmSource = source;
      services.engine
        .warm(
          {
            documentId: doc.uri.toString(),
            prompt: completionPrompt(doc, text.slice(0, offset), text.slice(offset), contextTracker, config),
            maxTokens: config.maxTokens,
          },
          source.token,
        )
        .then(
          (r) =>
            services.log.debug(
              `warmed ${displayName(doc)}: ${r.evaluatedTokens}/${r.promptTokens} tokens evaluated in ${r.ms.toFixed(0)} ms`,
            ),
          (err: unknown) => {
            if (!isCancellation(err)) services.log.debug(`warming failed: ${errorMessage(err)}`);
          },
        );
    }, WARM_DELAY_MS);
  };

  context.subscriptions.push(
    contextTracker,
    provider,
    vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, provider),
    vscode.commands.registerCommand(Commands.triggerCompletion, async () => {
      cancelWarm();
      provider.markManualTrigger();
      await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    }),
    vscode.commands.registerCommand(Commands.completionAccepted, (docKey: string, text: string) => {
      tracker.onAccepted(typeof text === 'string' ? text : '');
      if (typeof docKey === 'string' && typeof text === 'string') scheduleRetention(docKey, text);
      saveStats();
    }),
    vscode.commands.registerCommand(Commands.showStats, async () => {
      const lines = describeAcceptance(tracker.state);
      const choice = await vscode.window.showInformationMessage(
        'SmallThinker inline completion statistics (kept on this machine only)',
        { modal: true, detail: lines.join('\n') },
        'Reset',
      );
      if (choice === 'Reset') {
        Object.assign(tracker.state, emptyAcceptanceState());
        await context.globalState.update(STATS_KEY, tracker.state);
      }
    }),
    vscode.window.onDidChangeActiveTextEditor((editor) => scheduleWarm(editor)),
    vscode.workspace.onDidChangeTextDocument(() => cancelWarm()),
    vscode.workspace.onDidCloseTextDocument((doc) => provider.cache.clear(doc.uri.toString())),
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

// The status bar item (engine state, model, last completion latency and speed, cache reuse) and
// its menu of common actions, plus the Show Engine Log, Restart Engine and Toggle Inline
// Completion commands, and a load's progress notification (loadNotice.ts). The text itself comes
// from src/common/statusText.ts.
import * as vscode from 'vscode';

import { Commands, Settings } from '../../../common/ids';
import { defaultCatalogEntry, sizeText } from '../../../common/modelCatalog';
import type { ExpertCacheSummary } from '../../../common/protocol';
import { statusView } from '../../../common/statusText';
import { affects, completionConfig, updateSetting } from '../../config';
import { errorMessage } from '../../engineService';
import type { Services } from '../../services';
import { registerLoadNotice } from './loadNotice';

const EXTENSION_SETTINGS_QUERY = '@ext:smallthinker-code.smallthinker-code';

interface ActionItem extends vscode.QuickPickItem {
  run?: () => unknown;
}

export function registerStatus(context: vscode.ExtensionContext, services: Services): void {
  const { engine } = services;
  const item = vscode.window.createStatusBarItem('smallthinker.status', vscode.StatusBarAlignment.Right, 100);
  item.name = 'SmallThinker';
  item.command = Commands.showStatusMenu;
  context.subscriptions.push(item);

  /** When the current model became ready: completions from before belong to another load. */
  let readySince = 0;
  /** Under a memory budget: the expert cache's figures, fetched after each completion. */
  let experts: ExpertCacheSummary | null = null;
  const update = (): void => {
    const status = engine.status;
    if (status.kind !== 'ready') {
      readySince = 0;
      experts = null;
    } else if (readySince === 0) readySince = Date.now();
    const record = engine.lastCompletion;
    const current = status.kind === 'ready' && record && record.at >= readySince ? record : undefined;
    const view = statusView({
      status,
      lastCompletion: current?.stats,
      lastCompletionAgeMs: current ? Date.now() - current.at : undefined,
      engineIsa: engine.engineInfo?.isa,
      engineVersion: engine.engineInfo?.engineVersion,
      completionEnabled: completionConfig().enabled,
      experts,
    });
    item.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip.join('\n\n'), true);
    tooltip.isTrusted = false;
    item.tooltip = tooltip;
    item.accessibilityInformation = { label: view.accessibilityLabel, role: 'button' };
    item.backgroundColor = view.severity === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  };
  update();
  item.show();
  registerLoadNotice(context, engine);
  // The tooltip dates the last completion ("2 min ago"): keep that true while nothing else changes.
  const ageTimer = setInterval(() => {
    if (engine.status.kind === 'ready' && engine.lastCompletion) update();
  }, 15_000);
  context.subscriptions.push(
    { dispose: () => clearInterval(ageTimer) },
    engine.onDidChangeStatus(update),
    engine.onDidComplete(() => {
      update();
      const status = engine.status;
      if (status.kind !== 'ready' || !status.model.memoryBudget) return;
      engine.stats().then(
        (s) => {
          experts = s.experts;
          update();
        },
        () => {}, // (the engine restarting: figures come with the next completion)
      );
    }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (affects(event, Settings.completionEnabled)) update();
    }),
  );

  const restartEngine = async (): Promise<void> => {
    services.log.info('restarting the engine (requested).');
    try {
      await engine.restart();
    } catch (err) {
      const choice = await vscode.window.showErrorMessage(
        `SmallThinker: restarting the engine failed: ${errorMessage(err)} See the engine log for details.`,
        'Show Log',
      );
      if (choice === 'Show Log') services.log.show();
    }
  };

  const toggleCompletion = async (): Promise<void> => {
    const enabled = !completionConfig().enabled;
    await updateSetting(Settings.completionEnabled, enabled);
    vscode.window.setStatusBarMessage(`SmallThinker inline completion ${enabled ? 'on' : 'off'}`, 3000);
  };

  const showStatusMenu = async (): Promise<void> => {
    const status = engine.status;
    const view = statusView({ status, completionEnabled: completionConfig().enabled });
    const enabled = completionConfig().enabled;
    const modelActions: ActionItem[] = [
      {
        label: '$(folder-opened) Choose Model File…',
        description: 'a local GGUF file',
        run: () => vscode.commands.executeCommand(Commands.chooseModel),
      },
      {
        label: '$(cloud-download) Download Default Model',
        description: `SmallThinker-4B-A0.6B Q4_0, ${sizeText(defaultCatalogEntry())}`,
        run: () => vscode.commands.executeCommand(Commands.downloadModel),
      },
      {
        label: '$(list-selection) Download Model…',
        description: 'other SmallThinker files, with their sizes and memory',
        run: () => vscode.commands.executeCommand(Commands.pickModelDownload),
      },
    ];
    const showLog: ActionItem = { label: '$(output) Show Engine Log', run: () => services.log.show() };
    const restart: ActionItem = { label: '$(debug-restart) Restart Engine', run: restartEngine };
    const engineActions: ActionItem[] = [showLog, restart];
    // Harmless first: the row the menu opens on (Enter) only shows something. The completion
    // switch comes after them, so a stray Enter never turns completion off.
    const useActions: ActionItem[] = [
      { label: '$(comment-discussion) Open Chat', run: () => vscode.commands.executeCommand(Commands.focusChat) },
      { label: '$(graph) Show Completion Statistics', run: () => vscode.commands.executeCommand(Commands.showStats) },
      {
        label: enabled ? '$(check) Inline Completion: On' : '$(circle-large-outline) Inline Completion: Off',
        description: enabled ? 'turn off' : 'turn on',
        run: toggleCompletion,
      },
    ];
    const walkthrough: ActionItem = {
      label: '$(book) Get Started',
      description: 'the walkthrough: a model, inline completion, chat, a refactor',
      run: () => vscode.commands.executeCommand(Commands.openWalkthrough),
    };
    const settings: ActionItem = {
      label: '$(gear) Open Settings',
      run: () => vscode.commands.executeCommand('workbench.action.openSettings', EXTENSION_SETTINGS_QUERY),
    };
    const separator = (label: string): ActionItem => ({ label, kind: vscode.QuickPickItemKind.Separator });
    // What the state calls for comes first, and the first row (where Enter lands) only shows or
    // opens something: Choose Model File opens a dialog, Show Engine Log the log, Open Chat the panel.
    const items: ActionItem[] =
      status.kind === 'noModel'
        ? [...modelActions, walkthrough, separator(''), ...useActions, ...engineActions, settings]
        : status.kind === 'error'
          ? [...engineActions, ...modelActions, separator(''), ...useActions, settings, walkthrough]
          : [...useActions, separator('model'), ...modelActions, separator('engine'), ...engineActions, settings, walkthrough];
    const picked = await vscode.window.showQuickPick(items, { title: view.accessibilityLabel, placeHolder: 'SmallThinker actions' });
    await picked?.run?.();
  };

  context.subscriptions.push(
    vscode.commands.registerCommand(Commands.showStatusMenu, showStatusMenu),
    vscode.commands.registerCommand(Commands.showLog, () => services.log.show()),
    vscode.commands.registerCommand(Commands.restartEngine, restartEngine),
    vscode.commands.registerCommand(Commands.toggleCompletion, toggleCompletion),
  );
}

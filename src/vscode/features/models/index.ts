// Model management: Choose Model File (a local GGUF), Download Default Model (resumable, verified,
// with a cancellable progress notification), the one first-run prompt when no model is set, and a
// notification for each distinct engine error (or missing model file) that says what to do.
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as vscode from 'vscode';

import { Commands, CONFIG_SECTION, DEFAULT_MODEL_URL, Settings } from '../../../common/ids';
import {
  downloadFile,
  DownloadError,
  fileNameFromUrl,
  formatBytes,
  isDownloadCancelled,
  isGgufFile,
  type DownloadProgress,
} from '../../../node/download';
import { downloadConfig, engineConfig, updateSetting } from '../../config';
import type { EngineStatus } from '../../engineService';
import type { Services } from '../../services';

/** globalState key: the user answered (or dismissed) the first-run prompt; it is not shown again. */
export const FIRST_RUN_PROMPT_KEY = 'smallthinker.firstRunPromptAnswered';

const CHOOSE = 'Choose File…';
const SHOW_LOG = 'Show Log';
const RESTART = 'Restart Engine';
const RETRY = 'Retry';
const RESUME = 'Resume';
const OPEN_SETTINGS = 'Open Settings';
const NOT_NOW = 'Not now';

function openSetting(key: string): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', `${CONFIG_SECTION}.${key}`);
}

/** Where Download Default Model puts the file. */
export function downloadDestination(context: vscode.ExtensionContext): { url: string; sha256: string; dest: string } {
  const config = downloadConfig();
  const folder = config.folder || path.join(context.globalStorageUri.fsPath, 'models');
  return { url: config.url, sha256: config.sha256, dest: path.join(folder, fileNameFromUrl(config.url)) };
}

function progressMessage(p: DownloadProgress): string {
  const done = p.total ? `${formatBytes(p.received)} of ${formatBytes(p.total)}` : formatBytes(p.received);
  if (p.bytesPerSecond <= 0) return p.received > 0 ? `${done}: checking the part downloaded earlier…` : 'Connecting…';
  let eta = '';
  if (p.total && p.total > p.received) {
    const seconds = (p.total - p.received) / p.bytesPerSecond;
    eta = seconds >= 90 ? `, ${Math.round(seconds / 60)} min left` : `, ${Math.max(1, Math.round(seconds))} s left`;
  }
  return `${done} (${formatBytes(p.bytesPerSecond)}/s${eta})`;
}

/** Sets the model path; when it is already the setting, reloads (a same-value update fires no change). */
async function useModel(services: Services, file: string): Promise<void> {
  if (engineConfig().modelPath === file) {
    await services.engine.reload();
  } else {
    await updateSetting(Settings.modelPath, file);
  }
}

export function registerModels(context: vscode.ExtensionContext, services: Services): void {
  const { log } = services;
  let downloading: Promise<void> | undefined;

  const chooseModel = async (): Promise<void> => {
    const current = engineConfig().modelPath;
    const defaultFolder = current ? path.dirname(current) : path.dirname(downloadDestination(context).dest);
    const picked = await vscode.window.showOpenDialog({
      title: 'Choose a SmallThinker model (GGUF)',
      openLabel: 'Use This Model',
      canSelectFiles: true,
      canSelectFolders: false,
      canSelectMany: false,
      filters: { 'GGUF models': ['gguf'], 'All files': ['*'] },
      defaultUri: fs.existsSync(defaultFolder) ? vscode.Uri.file(defaultFolder) : undefined,
    });
    const uri = picked?.[0];
    if (!uri) return;
    if (uri.scheme !== 'file') {
      void vscode.window
        .showErrorMessage(
          `${uri.toString()} is not on this machine's disk. The engine runs locally: choose a GGUF file on a local drive.`,
          CHOOSE,
        )
        .then((choice) => {
          if (choice === CHOOSE) void chooseModel();
        });
      return;
    }
    const file = uri.fsPath;
    if (!(await isGgufFile(file))) {
      const choice = await vscode.window.showErrorMessage(
        `${path.basename(file)} is not a GGUF model file (it does not start with "GGUF"). Choose a .gguf file such as SmallThinker-4B-A0.6B-Instruct-Q4_0.gguf, or download the default model.`,
        CHOOSE,
        'Download',
      );
      if (choice === CHOOSE) void chooseModel();
      else if (choice === 'Download') void vscode.commands.executeCommand(Commands.downloadModel);
      return;
    }
    log.info(`model file chosen: ${file}`);
    await useModel(services, file);
  };

  const runDownload = async (): Promise<void> => {
    const { url, sha256, dest } = downloadDestination(context);
    log.info(`downloading ${url} to ${dest}`);
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Downloading ${path.basename(dest)}`, cancellable: true },
        async (progress, token) => {
          const controller = new AbortController();
          const subscription = token.onCancellationRequested(() => controller.abort());
          let reported = 0;
          try {
            return await downloadFile({
              url,
              dest,
              expectedSha256: sha256 || undefined,
              signal: controller.signal,
              progressIntervalMs: 500,
              onProgress: (p) => {
                const pct = p.total ? Math.min(100, (100 * p.received) / p.total) : undefined;
                const increment = pct === undefined ? undefined : Math.max(0, pct - reported);
                if (pct !== undefined) reported = Math.max(reported, pct);
                progress.report({ message: progressMessage(p), increment });
              },
            });
          } finally {
            subscription.dispose();
          }
        },
      );
      log.info(
        result.alreadyPresent
          ? `${dest} is already downloaded and verified (sha256 ${result.sha256}).`
          : `downloaded ${formatBytes(result.bytes)}${result.resumed ? ' (resumed)' : ''}; sha256 ${result.sha256} verified.`,
      );
      await useModel(services, result.path);
      void vscode.window.showInformationMessage(
        result.alreadyPresent
          ? `The model ${path.basename(dest)} was already downloaded and verified; loading it.`
          : `Downloaded ${path.basename(dest)} (${formatBytes(result.bytes)}, checksum verified); loading it.`,
      );
    } catch (err) {
      await reportDownloadFailure(err, dest);
    }
  };

  const reportDownloadFailure = async (err: unknown, dest: string): Promise<void> => {
    if (isDownloadCancelled(err)) {
      const part = await fs.promises.stat(`${dest}.part`).catch(() => undefined);
      log.info(`download cancelled${part ? ` with ${formatBytes(part.size)} kept` : ''}.`);
      const kept = part && part.size > 0 ? ` ${formatBytes(part.size)} downloaded so far is kept.` : '';
      const choice = await vscode.window.showInformationMessage(
        `Download paused.${kept} Run Download Default Model again to resume.`,
        RESUME,
      );
      if (choice === RESUME) void vscode.commands.executeCommand(Commands.downloadModel);
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    log.error(`download failed: ${message}`);
    const buttons: string[] = [RETRY];
    let settingKey: string | undefined;
    if (err instanceof DownloadError) {
      if (err.kind === 'noChecksum' || err.kind === 'checksum') settingKey = Settings.modelSha256;
      else if (err.kind === 'diskSpace' || err.kind === 'diskFull' || err.kind === 'io') settingKey = Settings.modelDownloadFolder;
      else if (err.kind === 'http' || err.kind === 'url' || err.kind === 'notGguf') settingKey = Settings.modelDownloadUrl;
    }
    if (settingKey) buttons.push(OPEN_SETTINGS);
    buttons.push(CHOOSE);
    const choice = await vscode.window.showErrorMessage(`Model download failed: ${message}`, ...buttons);
    if (choice === RETRY) void vscode.commands.executeCommand(Commands.downloadModel);
    else if (choice === OPEN_SETTINGS && settingKey) void openSetting(settingKey);
    else if (choice === CHOOSE) void chooseModel();
  };

  const downloadModel = (): Promise<void> => {
    if (downloading) {
      void vscode.window.showInformationMessage('The model is already downloading; its progress is in the notification area.');
      return downloading;
    }
    downloading = runDownload().finally(() => {
      downloading = undefined;
    });
    return downloading;
  };

  context.subscriptions.push(
    vscode.commands.registerCommand(Commands.chooseModel, chooseModel),
    vscode.commands.registerCommand(Commands.downloadModel, downloadModel),
  );

  // ------------------------------------------------------------ notifications

  const downloadLabel = (): string => (downloadConfig().url === DEFAULT_MODEL_URL ? 'Download (2.4 GB)' : 'Download');

  const firstRunPrompt = async (): Promise<void> => {
    if (context.globalState.get<boolean>(FIRST_RUN_PROMPT_KEY)) return;
    const download = downloadLabel();
    const choice = await vscode.window.showInformationMessage(
      'SmallThinker Code needs a model to run locally. Download the default model (SmallThinker-4B-A0.6B, Q4_0), or choose a GGUF file you already have.',
      download,
      CHOOSE,
      NOT_NOW,
    );
    if (choice === download) void downloadModel();
    else if (choice === CHOOSE) void chooseModel();
    else await context.globalState.update(FIRST_RUN_PROMPT_KEY, true); // "Not now" or dismissed: never again.
  };

  const shown = new Set<string>();
  const notify = (status: EngineStatus): void => {
    if (status.kind === 'error') {
      if (shown.has(status.message)) return;
      shown.add(status.message);
      const buttons = status.restarting ? [SHOW_LOG] : status.modelPath ? [CHOOSE, SHOW_LOG] : [RESTART, SHOW_LOG];
      const text = status.restarting
        ? `SmallThinker: ${status.message} If this repeats, see the engine log.`
        : `SmallThinker: ${status.message}`;
      void vscode.window.showErrorMessage(text, ...buttons).then((choice) => {
        if (choice === SHOW_LOG) services.log.show();
        else if (choice === CHOOSE) void chooseModel();
        else if (choice === RESTART) void vscode.commands.executeCommand(Commands.restartEngine);
      });
    } else if (status.kind === 'noModel' && engineConfig().modelPath) {
      // A configured model that is missing: say so once per message (not the first-run prompt).
      if (shown.has(status.message)) return;
      shown.add(status.message);
      const download = downloadLabel();
      void vscode.window
        .showWarningMessage(`SmallThinker: ${status.message} Choose another GGUF file or download the default model.`, CHOOSE, download)
        .then((choice) => {
          if (choice === CHOOSE) void chooseModel();
          else if (choice === download) void downloadModel();
        });
    } else if (status.kind === 'ready') {
      shown.clear(); // A later failure is worth telling again.
    }
  };

  // After activation has started the first load (it runs right after the features register),
  // wait until it settles: no model and none configured -> the one first-run prompt.
  let disposed = false;
  context.subscriptions.push({ dispose: () => (disposed = true) });
  setTimeout(() => {
    void (async () => {
      const status = await services.engine.settled();
      if (disposed) return;
      context.subscriptions.push(services.engine.onDidChangeStatus(notify));
      if (status.kind === 'noModel' && !engineConfig().modelPath && !downloading) await firstRunPrompt();
      else notify(status);
    })().catch((err: unknown) => log.error(`model check after start: ${err instanceof Error ? err.message : String(err)}`));
  }, 0);
}

// Model management: Choose Model File (a local GGUF), Download Default Model (resumable, verified,
// with a cancellable progress notification), Download Model… (a quick pick of the model catalogue,
// src/common/modelCatalog.ts, each with its size and whether it fits this machine's memory, then a
// custom URL or a local file), the first run when no model is set (the "Get started with
// SmallThinker" walkthrough opens once, and one prompt), and a notification for each distinct
// engine error (or missing model file, named with its path) that says what to do.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as vscode from 'vscode';

import { SUPPORTED_ARCHITECTURES } from '../../../common/ggufHeader';
import { Commands, CONFIG_SECTION, ContextKeys, Settings, WALKTHROUGH } from '../../../common/ids';
import {
  catalogEntryForUrl,
  catalogPickItems,
  memoryNeeded,
  MODEL_CATALOG,
  sizeText,
  type CatalogEntry,
  type CatalogPickItem,
} from '../../../common/modelCatalog';
import {
  downloadFile,
  DownloadError,
  downloadUrlProblem,
  fileNameFromUrl,
  formatBytes,
  isDownloadCancelled,
  isGgufFile,
  readHeaderArchitecture,
  type DownloadProgress,
} from '../../../node/download';
import { missingModelMessage } from '../../../common/statusText';
import { layoutUsage, removeLayoutFiles } from '../../../node/layoutFiles';
import { downloadConfig, engineConfig, updateSetting } from '../../config';
import { layoutFolder, type EngineStatus } from '../../engineService';
import type { Services } from '../../services';

/** globalState key: the user answered (or dismissed) the first-run prompt; it is not shown again. */
export const FIRST_RUN_PROMPT_KEY = 'smallthinker.firstRunPromptAnswered';
/** globalState key: the walkthrough was opened on a first run; it is not opened by itself again. */
export const WALKTHROUGH_OPENED_KEY = 'smallthinker.walkthroughOpened';

/** Opens the "Get started with SmallThinker" walkthrough. */
export function openWalkthrough(): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH.ref, false);
}

/**
 * The first run: with no model configured, opens the walkthrough unless it was opened before
 * (remembered in `state`, the global state). True when it opened it now.
 */
export async function firstRunWalkthrough(state: vscode.Memento, modelConfigured: boolean, open = openWalkthrough): Promise<boolean> {
  if (modelConfigured || state.get<boolean>(WALKTHROUGH_OPENED_KEY)) return false;
  await state.update(WALKTHROUGH_OPENED_KEY, true);
  await open();
  return true;
}

const CHOOSE = 'Choose File…';
const CHOOSE_GGUF = 'Choose GGUF File…';
const DOWNLOAD_PICK = 'Download…';
const OPEN_WALKTHROUGH = 'Open Walkthrough';
const SHOW_LOG = 'Show Log';
const RESTART = 'Restart Engine';
const RETRY = 'Retry';
const RESUME = 'Resume';
const OPEN_SETTINGS = 'Open Settings';
const NOT_NOW = 'Not now';
const PICK_ANOTHER = 'Pick Another Model…';

function openSetting(key: string): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', `${CONFIG_SECTION}.${key}`);
}

/** The folder downloads go to: the setting, else the extension's global storage. */
export function modelsFolder(context: vscode.ExtensionContext): string {
  return downloadConfig().folder || path.join(context.globalStorageUri.fsPath, 'models');
}

/** Where Download Default Model puts the file. */
export function downloadDestination(context: vscode.ExtensionContext): { url: string; sha256: string; dest: string } {
  const config = downloadConfig();
  return { url: config.url, sha256: config.sha256, dest: path.join(modelsFolder(context), fileNameFromUrl(config.url)) };
}

/** What the error sentences advise about a catalogue file (there is no setting to check). */
const CATALOG_URL_ADVICE = 'pick another model with the SmallThinker: Download Model… command';
const CUSTOM_URL = 'Custom URL…';
const CHOOSE_FILE = 'Choose a file…';

/** A Download Model… item: a catalogue entry, or one of the two other ways to get a model. */
export type ModelPickItem = vscode.QuickPickItem &
  ({ action: 'catalog'; pick: CatalogPickItem } | { action: 'custom' } | { action: 'file' } | { action?: undefined });

/** The items Download Model… shows: the catalogue (the default first) for this machine's memory, then Custom URL… and Choose a file…. */
export function modelPickItems(context: vscode.ExtensionContext): ModelPickItem[] {
  const folder = modelsFolder(context);
  const downloaded = new Set(MODEL_CATALOG.filter((e) => fs.existsSync(path.join(folder, e.file))).map((e) => e.id));
  const picks = catalogPickItems({
    memory: { free: os.freemem(), total: os.totalmem() },
    kvLimitBytes: engineConfig().memoryLimitMB * 1024 * 1024,
    downloaded,
  });
  const url = downloadConfig().url;
  const custom = catalogEntryForUrl(url) ? undefined : url;
  return [
    ...picks.map((pick): ModelPickItem => ({
      label: pick.label,
      description: pick.description,
      detail: pick.detail,
      action: 'catalog',
      pick,
    })),
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    {
      label: `$(link) ${CUSTOM_URL}`,
      description: custom ? `now ${custom}` : 'a GGUF file at an https URL',
      detail: `Sets ${CONFIG_SECTION}.${Settings.modelDownloadUrl} and downloads from it`,
      action: 'custom',
    },
    { label: `$(folder-opened) ${CHOOSE_FILE}`, description: 'a SmallThinker GGUF file already on this machine', action: 'file' },
  ];
}

interface DownloadTarget {
  url: string;
  sha256: string;
  dest: string;
  /** From the download URL setting (errors about the URL point at it), or a catalogue entry. */
  fromSetting: boolean;
  /** Runs this download again (Retry, Resume). */
  again: () => void;
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

let pickItemsForTests: (() => ModelPickItem[]) | undefined;

/** For the extension-host tests: the items Download Model… would show now (empty before activation). */
export function modelPickItemsForTests(): ModelPickItem[] {
  return pickItemsForTests?.() ?? [];
}

/** A notification the models feature showed about the engine's state (the tests read them). */
export interface ModelNotice {
  message: string;
  buttons: string[];
}
const noticesForTests: ModelNotice[] = [];
/** For the extension-host tests: the notifications about the engine's state shown so far. */
export function modelNoticesForTests(): readonly ModelNotice[] {
  return noticesForTests;
}

export function registerModels(context: vscode.ExtensionContext, services: Services): void {
  pickItemsForTests = () => modelPickItems(context);
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
    const header = (await isGgufFile(file)) ? await readHeaderArchitecture(file) : undefined;
    const problem = !header
      ? `${path.basename(file)} is not a GGUF model file (it does not start with "GGUF"); choose a .gguf file such as SmallThinker-4B-A0.6B-Instruct.Q4_0.gguf, or download a model.`
      : header.kind === 'found' && !SUPPORTED_ARCHITECTURES.includes(header.architecture)
        ? `${path.basename(file)} is a model of the "${header.architecture}" architecture, not SmallThinker, so this engine cannot run it; choose a SmallThinker GGUF file, or download one.`
        : header.kind === 'missing'
          ? `${path.basename(file)} names no model architecture, so this engine cannot run it; choose a SmallThinker GGUF file, or download one.`
          : undefined; // Unreadable headers are the engine's to explain when it loads the file.
    if (problem) {
      const choice = await vscode.window.showErrorMessage(problem, CHOOSE, 'Download…');
      if (choice === CHOOSE) void chooseModel();
      else if (choice === 'Download…') void vscode.commands.executeCommand(Commands.pickModelDownload);
      return;
    }
    log.info(`model file chosen: ${file}`);
    await useModel(services, file);
  };

  const runDownload = async (target: DownloadTarget): Promise<void> => {
    const { url, sha256, dest } = target;
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
              urlAdvice: target.fromSetting ? undefined : CATALOG_URL_ADVICE,
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
      await reportDownloadFailure(err, target);
    }
  };

  const reportDownloadFailure = async (err: unknown, target: DownloadTarget): Promise<void> => {
    const { dest } = target;
    if (isDownloadCancelled(err)) {
      const part = await fs.promises.stat(`${dest}.part`).catch(() => undefined);
      log.info(`download cancelled${part ? ` with ${formatBytes(part.size)} kept` : ''}.`);
      const kept = part && part.size > 0 ? ` ${formatBytes(part.size)} downloaded so far is kept.` : '';
      const choice = await vscode.window.showInformationMessage(
        `Download of ${path.basename(dest)} paused.${kept} Download it again to resume.`,
        RESUME,
      );
      if (choice === RESUME) target.again();
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    log.error(`download failed: ${message}`);
    // Retrying a file that is not there, gated or not a SmallThinker model changes nothing: pick another instead.
    const urlProblem =
      err instanceof DownloadError && (err.kind === 'auth' || err.kind === 'notGguf' || err.kind === 'wrongModel' || err.kind === 'url');
    const buttons: string[] = urlProblem ? [PICK_ANOTHER] : [RETRY];
    let settingKey: string | undefined;
    if (err instanceof DownloadError) {
      if (err.kind === 'noChecksum' || err.kind === 'checksum') settingKey = Settings.modelSha256;
      else if (err.kind === 'diskSpace' || err.kind === 'diskFull' || err.kind === 'io') settingKey = Settings.modelDownloadFolder;
      else if (urlProblem || err.kind === 'http') settingKey = target.fromSetting ? Settings.modelDownloadUrl : undefined;
    }
    if (settingKey) buttons.push(OPEN_SETTINGS);
    buttons.push(CHOOSE);
    const choice = await vscode.window.showErrorMessage(`Model download failed: ${message}`, ...buttons);
    if (choice === RETRY) target.again();
    else if (choice === PICK_ANOTHER) void vscode.commands.executeCommand(Commands.pickModelDownload);
    else if (choice === OPEN_SETTINGS && settingKey) void openSetting(settingKey);
    else if (choice === CHOOSE) void chooseModel();
  };

  /** One download at a time. */
  const startDownload = (target: DownloadTarget): Promise<void> => {
    if (downloading) {
      void vscode.window.showInformationMessage('A model is already downloading; its progress is in the notification area.');
      return downloading;
    }
    downloading = runDownload(target).finally(() => {
      downloading = undefined;
    });
    return downloading;
  };

  /** Download Default Model: what the download URL setting names (with the sha256 setting). */
  const downloadModel = (): Promise<void> =>
    startDownload({ ...downloadDestination(context), fromSetting: true, again: () => void downloadModel() });

  const downloadEntry = (entry: CatalogEntry): Promise<void> => {
    const config = downloadConfig();
    // The default download is the setting's URL: it keeps the sha256 setting (and its advice).
    if (entry.url === config.url) return downloadModel();
    return startDownload({
      url: entry.url,
      sha256: '',
      dest: path.join(modelsFolder(context), fileNameFromUrl(entry.url)),
      fromSetting: false,
      again: () => void downloadEntry(entry),
    });
  };

  const customUrl = async (): Promise<void> => {
    const current = downloadConfig().url;
    const url = await vscode.window.showInputBox({
      title: 'Download a SmallThinker GGUF model from a URL',
      prompt: `An https URL of a .gguf file (saved as ${CONFIG_SECTION}.${Settings.modelDownloadUrl})`,
      placeHolder: 'https://huggingface.co/<owner>/<repository>/resolve/main/<file>.gguf',
      value: catalogEntryForUrl(current) ? '' : current,
      ignoreFocusOut: true,
      validateInput: (value) => (value.trim() ? downloadUrlProblem(value.trim()) : 'Enter the URL of a .gguf file.'),
    });
    if (!url?.trim()) return;
    await updateSetting(Settings.modelDownloadUrl, url.trim());
    await downloadModel();
  };

  const pickModelDownload = async (): Promise<void> => {
    const picked = await vscode.window.showQuickPick(modelPickItems(context), {
      title: 'Download a SmallThinker model',
      placeHolder: `Sizes, and whether each fits this machine's memory (${formatBytes(os.freemem())} free of ${formatBytes(os.totalmem())})`,
      matchOnDescription: true,
      matchOnDetail: true,
    });
    if (!picked?.action) return;
    if (picked.action === 'file') return chooseModel();
    if (picked.action === 'custom') return customUrl();
    const { entry, fit } = picked.pick;
    if (fit === 'tooBig') {
      const anyway = 'Download Anyway';
      const needed = memoryNeeded(entry, engineConfig().memoryLimitMB * 1024 * 1024);
      const choice = await vscode.window.showWarningMessage(
        `${entry.label} needs about ${formatBytes(needed)} of memory, more than this machine's ${formatBytes(os.totalmem())}, so it would run very slowly or not at all.`,
        { modal: true },
        anyway,
      );
      if (choice !== anyway) return;
    }
    await downloadEntry(entry);
  };

  const removeLayouts = async (): Promise<void> => {
    const dir = layoutFolder(context);
    const usage = layoutUsage(dir);
    if (usage.files.length === 0) {
      void vscode.window.showInformationMessage(`SmallThinker has no layout files (in ${dir}).`);
      return;
    }
    const remove = 'Remove';
    const choice = await vscode.window.showWarningMessage(
      `SmallThinker's layout files use ${formatBytes(usage.bytes)} (${usage.files.length} file${usage.files.length === 1 ? '' : 's'} in ${dir}). ` +
        'They let a model load in a fraction of a second; the next load of each model writes its file again.',
      { modal: true },
      remove,
    );
    if (choice !== remove) return;
    const removed = removeLayoutFiles(dir);
    log.info(`removed ${removed.files.length} layout file(s), ${formatBytes(removed.bytes)}, from ${dir}.`);
    void vscode.window.showInformationMessage(`Removed ${formatBytes(removed.bytes)} of layout files.`);
  };

  context.subscriptions.push(
    vscode.commands.registerCommand(Commands.removeLayoutFiles, removeLayouts),
    vscode.commands.registerCommand(Commands.chooseModel, chooseModel),
    vscode.commands.registerCommand(Commands.downloadModel, downloadModel),
    vscode.commands.registerCommand(Commands.pickModelDownload, pickModelDownload),
    vscode.commands.registerCommand(Commands.openWalkthrough, openWalkthrough),
    // The walkthrough's first step is done once a model runs.
    services.engine.onDidChangeStatus((status) => {
      void vscode.commands.executeCommand('setContext', ContextKeys.modelReady, status.kind === 'ready');
    }),
  );

  // ------------------------------------------------------------ notifications

  const downloadLabel = (): string => {
    const entry = catalogEntryForUrl(downloadConfig().url);
    return entry ? `Download (${sizeText(entry)})` : 'Download';
  };

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
  /** Set while the "restarting" notification is up: it ends when the engine is back (or gave up). */
  let restartNotice = false;
  const notify = (status: EngineStatus): void => {
    if (status.kind === 'error' && status.restarting) {
      // A progress notification, not a message with buttons: it goes away once the restart is over.
      if (restartNotice) return;
      restartNotice = true;
      void vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `SmallThinker: ${status.message}` },
        (progress) =>
          new Promise<void>((resolve) => {
            progress.report({ message: 'If this repeats, see the engine log (SmallThinker: Show Engine Log).' });
            const sub = services.engine.onDidChangeStatus((now) => {
              if (now.kind === 'error' && now.restarting) return;
              sub.dispose();
              restartNotice = false;
              resolve();
            });
          }),
      );
      return;
    }
    if (status.kind === 'error') {
      if (shown.has(status.message)) return;
      shown.add(status.message);
      const buttons = status.modelPath ? [CHOOSE, SHOW_LOG] : [RESTART, SHOW_LOG];
      noticesForTests.push({ message: `SmallThinker: ${status.message}`, buttons });
      void vscode.window.showErrorMessage(`SmallThinker: ${status.message}`, ...buttons).then((choice) => {
        if (choice === SHOW_LOG) services.log.show();
        else if (choice === CHOOSE) void chooseModel();
        else if (choice === RESTART) void vscode.commands.executeCommand(Commands.restartEngine);
      });
    } else if (status.kind === 'noModel' && engineConfig().modelPath) {
      // A configured model that is missing: say so once per message (not the first-run prompt).
      if (shown.has(status.message)) return;
      shown.add(status.message);
      const message = missingModelMessage(engineConfig().modelPath);
      const buttons = [CHOOSE_GGUF, DOWNLOAD_PICK, OPEN_WALKTHROUGH];
      noticesForTests.push({ message, buttons });
      void vscode.window.showWarningMessage(message, ...buttons).then((choice) => {
        if (choice === CHOOSE_GGUF) void chooseModel();
        else if (choice === DOWNLOAD_PICK) void pickModelDownload();
        else if (choice === OPEN_WALKTHROUGH) void openWalkthrough();
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
      if (status.kind === 'noModel' && !engineConfig().modelPath && !downloading) {
        // (Not in the extension-host tests: an editor opening by itself there would take the focus from theirs.)
        if (context.extensionMode !== vscode.ExtensionMode.Test)
          await firstRunWalkthrough(context.globalState, false).catch((err: unknown) =>
            log.warn(`could not open the walkthrough: ${String(err)}`),
          );
        await firstRunPrompt();
      } else notify(status);
    })().catch((err: unknown) => log.error(`model check after start: ${err instanceof Error ? err.message : String(err)}`));
  }, 0);
}

// The extension's one engine: a supervised child process (src/node/engineProcess.ts) with the
// model from the settings loaded. Features ask it for completions and chat; it keeps the status
// (stopped, loading with progress, ready, error) that the status bar shows, the engine log in an
// output channel, and the latest completion figures. One model serves every feature.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';

import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc';

import {
  EngineErrorCodes,
  type ChatParams,
  type ChatResult,
  type ChatWorkDoneProgress,
  type CompletionParams,
  type CompletionResult,
  type CompletionStats,
  type EngineStatsResult,
  type WarmParams,
  type WarmResult,
} from '../common/protocol';
import type { ChatCallbacks } from '../node/engineClient';
import { EngineProcess } from '../node/engineProcess';
import { affects, engineConfig } from './config';
import { Settings } from '../common/ids';
import { chooseMemoryBudgetMB } from '../common/modelCatalog';
import { cancelledLogLine, chatLogLine, completionLogLine, failedLogLine, LoadLog, warmLogLine } from '../common/requestLog';
import type { EngineStateView } from '../common/statusText';

/** Environment variable naming another engine host script (tests use a scripted fake engine). */
export const ENGINE_HOST_ENV = 'SMALLTHINKER_ENGINE_HOST';

/**
 * noModel: nothing configured (or the file is missing), nothing runs; error: a load failed or the
 * engine crashed, with a message saying what happened and what to do. (Declared in
 * src/common/statusText.ts, which formats it for the status bar.)
 */
export type EngineStatus = EngineStateView;

/** Thrown by requests when the engine cannot serve them; the message is for the user. */
export class EngineUnavailableError extends Error {
  constructor(
    message: string,
    readonly status: EngineStatus,
  ) {
    super(message);
    this.name = 'EngineUnavailableError';
  }
}

/** True for the error a cancelled request ends with. */
export function isCancellation(err: unknown): boolean {
  return (err instanceof ResponseError && err.code === EngineErrorCodes.RequestCancelled) || err instanceof vscode.CancellationError;
}

/** A message for the user from any error a request can end with. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export interface CompletionRecord {
  stats: CompletionStats;
  at: number;
}

function toJsonrpcToken(token: vscode.CancellationToken | undefined): import('vscode-jsonrpc').CancellationToken | undefined {
  // vscode's and vscode-jsonrpc's tokens have the same shape.
  return token as unknown as import('vscode-jsonrpc').CancellationToken | undefined;
}

/** Where the engine keeps the models' layout files (native/model/layout_file.h). */
export function layoutFolder(context: vscode.ExtensionContext): string {
  return vscode.Uri.joinPath(context.globalStorageUri, 'layouts').fsPath;
}

/** What a chat request is for (the log names it) and who hears of its progress. */
export interface ChatOptions {
  /** "chat", "refactor", "language model"... (default "chat"). */
  label?: string;
  /** The engine's progress before the first token: the prompt's size, then generation starting. */
  onProgress?: (value: ChatWorkDoneProgress) => void;
}

export class EngineService implements vscode.Disposable {
  private process: EngineProcess | undefined;
  // A model configured: the first load starts at activation, so the status bar says so at once.
  private current: EngineStatus = engineConfig().modelPath ? { kind: 'starting' } : { kind: 'noModel', message: 'No model is set.' };
  private readonly statusEmitter = new vscode.EventEmitter<EngineStatus>();
  private readonly completionEmitter = new vscode.EventEmitter<CompletionRecord>();
  private readonly disposables: vscode.Disposable[] = [];
  /** Bumped by every (re)load; a load that finds it changed lost to a newer one. */
  private generation = 0;
  private loading: Promise<void> | undefined;
  private lastCompletionRecord: CompletionRecord | undefined;
  private disposed = false;

  readonly onDidChangeStatus = this.statusEmitter.event;
  /** Fired after every completion the engine answered. */
  readonly onDidComplete = this.completionEmitter.event;

  constructor(
    private readonly extensionPath: string,
    readonly log: vscode.LogOutputChannel,
    /** where the engine keeps models' layout files (relaid-out weights, built once per model) */
    private readonly layoutDir?: string,
  ) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (affects(event, Settings.modelPath, Settings.threads, Settings.contextLength, Settings.memoryLimitMB, Settings.memoryBudgetMB))
          void this.reload();
      }),
    );
  }

  get status(): EngineStatus {
    return this.current;
  }

  get lastCompletion(): CompletionRecord | undefined {
    return this.lastCompletionRecord;
  }

  /** The ISA and version of the running engine, once started. */
  get engineInfo(): EngineProcess['engineInfo'] {
    return this.process?.engineInfo;
  }

  /** Loads the model named by the settings (or reports that none is set). Safe to call again. */
  reload(): Promise<void> {
    const generation = ++this.generation;
    const run = this.load(generation);
    this.loading = run;
    return run;
  }

  /** Stops the engine process and starts a fresh one with the configured model. */
  async restart(): Promise<void> {
    const old = this.process;
    this.process = undefined;
    if (old) await old.dispose();
    await this.reload();
  }

  /** Resolves once the current load attempt settled (whatever its outcome). */
  async settled(): Promise<EngineStatus> {
    for (;;) {
      const loading = this.loading;
      await loading?.catch(() => {});
      if (loading === this.loading) return this.current;
    }
  }

  // ---------------------------------------------------------------- requests

  /**
   * `record: false` for speculative requests: their figures do not become the "last completion".
   * `label` names the request in the log (default "completion <file>").
   */
  async complete(
    params: CompletionParams,
    token?: vscode.CancellationToken,
    options: { record?: boolean; label?: string } = {},
  ): Promise<CompletionResult> {
    const engine = this.readyEngine();
    const label = options.label ?? `completion ${params.prompt.fileName}`;
    const result = await this.logged(label, engine.complete(params, toJsonrpcToken(token)), (r) =>
      completionLogLine(label, r.stats, params.candidates ?? 1),
    );
    if (options.record === false) return result;
    this.lastCompletionRecord = { stats: result.stats, at: Date.now() };
    this.completionEmitter.fire(this.lastCompletionRecord);
    return result;
  }

  chat(
    params: Omit<ChatParams, 'partialResultToken' | 'workDoneToken'>,
    onDelta?: (text: string) => void,
    token?: vscode.CancellationToken,
    options: ChatOptions = {},
  ): Promise<ChatResult> {
    const engine = this.readyEngine();
    const label = options.label ?? 'chat';
    const startedAt = Date.now();
    let pieces = 0;
    const callbacks: ChatCallbacks = {
      onDelta: (text) => {
        pieces++;
        onDelta?.(text);
      },
      onProgress: (value) => {
        if (value.kind === 'begin' && value.prompt)
          this.log.debug(
            `${label}: evaluating ${value.prompt.promptTokens - value.prompt.cachedTokens} of ${value.prompt.promptTokens} prompt tokens (at most ${value.prompt.maxTokens} new)`,
          );
        options.onProgress?.(value);
      },
      token: toJsonrpcToken(token),
    };
    return this.logged(
      label,
      engine.chat(params, callbacks),
      (r) => chatLogLine(label, r.stats, r.stopReason, Date.now() - startedAt),
      () => `${pieces} pieces of text received`,
    );
  }

  warm(params: WarmParams, token?: vscode.CancellationToken): Promise<WarmResult> {
    const label = `warm ${params.prompt.fileName}`;
    return this.logged(label, this.readyEngine().warm(params, toJsonrpcToken(token)), (r) => warmLogLine(label, r));
  }

  /** Logs how `request` ended: its figures (info), a cancellation (info) or a failure (warn). */
  private async logged<R>(label: string, request: Promise<R>, describe: (result: R) => string, progress?: () => string): Promise<R> {
    const startedAt = Date.now();
    try {
      const result = await request;
      this.log.info(describe(result));
      return result;
    } catch (err) {
      const ms = Date.now() - startedAt;
      if (isCancellation(err)) this.log.info(cancelledLogLine(label, ms, progress?.()));
      else this.log.warn(failedLogLine(label, ms, errorMessage(err)));
      throw err;
    }
  }

  async tokenCount(text: string): Promise<number> {
    return (await this.readyEngine().tokenize(text)).length;
  }

  stats(): Promise<EngineStatsResult> {
    return this.readyEngine().stats();
  }

  /** The engine, or an EngineUnavailableError that says why not and what to do. */
  private readyEngine(): EngineProcess {
    const status = this.current;
    if (status.kind === 'ready' && this.process) return this.process;
    switch (status.kind) {
      case 'noModel':
        throw new EngineUnavailableError(
          `${status.message} Choose a GGUF file or download the default model (SmallThinker: Choose Model File / Download Default Model).`,
          status,
        );
      case 'starting':
      case 'loading':
        throw new EngineUnavailableError('The model is still loading; try again in a moment.', status);
      case 'error':
        throw new EngineUnavailableError(status.message, status);
      default:
        throw new EngineUnavailableError('The engine is not ready.', status);
    }
  }

  // ---------------------------------------------------------------- loading

  private setStatus(status: EngineStatus): void {
    this.current = status;
    this.statusEmitter.fire(status);
  }

  private ensureProcess(): EngineProcess {
    if (this.process) return this.process;
    const hostScript = process.env[ENGINE_HOST_ENV] || path.join(this.extensionPath, 'dist', 'engineHost.js');
    const engine = new EngineProcess({ hostScript, clientInfo: { name: 'smallthinker-code-vscode' } });
    engine.onLog((line) => this.log.info(line));
    engine.onDidChangeState((change) => {
      if (this.process !== engine || this.disposed) return;
      if (change.state === 'crashed') {
        const modelPath = this.current.kind === 'ready' ? this.current.modelPath : undefined;
        this.log.error(change.message ?? 'The engine process stopped unexpectedly.');
        this.setStatus({
          kind: 'error',
          message: change.message ?? 'The engine process stopped unexpectedly; restarting it.',
          modelPath,
          restarting: true,
        });
      } else if (change.state === 'failed') {
        this.log.error(change.message ?? 'The engine failed.');
        this.setStatus({ kind: 'error', message: change.message ?? 'The engine failed; reload the window to try again.' });
      } else if (change.state === 'ready' && this.current.kind === 'error' && this.current.restarting) {
        // Restarted after a crash: the process replayed the last model load.
        void this.afterRestart(engine);
      }
    });
    this.process = engine;
    return engine;
  }

  private async afterRestart(engine: EngineProcess): Promise<void> {
    try {
      const info = await engine.modelInfo();
      if (this.process !== engine) return;
      if (info.loaded && info.path && info.info) {
        this.log.info(`engine restarted; ${path.basename(info.path)} loaded again.`);
        this.setStatus({ kind: 'ready', modelPath: info.path, model: info.info, loadMs: 0 });
      } else {
        await this.reload();
      }
    } catch (err) {
      this.log.error(`after the restart: ${errorMessage(err)}`);
    }
  }

  private async load(generation: number): Promise<void> {
    const config = engineConfig();
    if (!config.modelPath) {
      if (this.process?.state === 'ready') await this.process.unloadModel().catch(() => {});
      this.setStatus({ kind: 'noModel', message: 'No model is set.' });
      return;
    }
    const modelPath = config.modelPath;
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(modelPath);
    } catch {
      this.setStatus({ kind: 'noModel', message: `The model file ${modelPath} does not exist.` });
      return;
    }
    if (!stat.isFile()) {
      this.setStatus({ kind: 'error', message: `${modelPath} is not a file. Choose a GGUF model file.`, modelPath });
      return;
    }
    const engine = this.ensureProcess();
    this.setStatus({ kind: 'starting' });
    const startedAt = Date.now();
    try {
      const info = await engine.start();
      if (generation !== this.generation) return;
      this.log.info(`engine ${info.engineVersion} started in ${Date.now() - startedAt} ms (pid ${info.pid}, kernels ${info.isa}).`);
      this.setStatus({ kind: 'loading', modelPath, percentage: 0 });
      const loadStartedAt = Date.now();
      const loadLog = new LoadLog(loadStartedAt);
      this.log.info(
        `loading ${modelPath} (${(stat.size / 1024 ** 3).toFixed(2)} GB; context ${config.contextLength}, KV limit ${config.memoryLimitMB} MiB, threads ${config.threads || 'all'}).`,
      );
      const budgetMB = chooseMemoryBudgetMB(config.memoryBudgetMB, fs.statSync(modelPath).size, config.memoryLimitMB * 1024 * 1024, {
        free: os.freemem(),
        total: os.totalmem(),
      });
      if (budgetMB > 0) this.log.info(`memory budget ${budgetMB} MiB (${config.memoryBudgetMB > 0 ? 'setting' : 'automatic'}).`);
      const result = await engine.loadModel(
        {
          path: modelPath,
          threads: config.threads || undefined,
          contextLength: config.contextLength,
          kvMemoryLimitBytes: config.memoryLimitMB * 1024 * 1024,
          layoutDir: this.layoutDir,
          memoryBudgetMB: this.layoutDir ? budgetMB : undefined,
        },
        (progress) => {
          if (generation !== this.generation || progress.kind === 'end') return;
          // 'begin' carries the path as its message: the phase comes with the reports.
          const message = progress.kind === 'report' ? progress.message : undefined;
          const line = progress.kind === 'report' ? loadLog.progress(Date.now(), message, progress.percentage) : undefined;
          if (line) this.log.info(line);
          const previous = this.current.kind === 'loading' ? this.current : undefined;
          this.setStatus({
            kind: 'loading',
            modelPath,
            percentage: progress.percentage ?? previous?.percentage,
            message: message ?? previous?.message,
          });
        },
      );
      if (generation !== this.generation) return;
      this.log.info(
        `loaded ${result.info.name || path.basename(modelPath)} (${result.info.n_layer} layers, context ${result.info.context}) in ${result.loadMs.toFixed(0)} ms ` +
          `(engine start ${loadStartedAt - startedAt} ms; ${loadLog.finish(Date.now()) || 'no phases reported'}).`,
      );
      const layout = result.info.layout;
      if (layout?.file) this.log.info(`weights ${layout.built ? 'laid out once into' : 'mapped from'} ${layout.file}.`);
      if (layout?.error) this.log.warn(`no layout file (${layout.error}); the weights were relaid out in memory.`);
      this.setStatus({ kind: 'ready', modelPath, model: result.info, loadMs: result.loadMs });
    } catch (err) {
      if (generation !== this.generation) return;
      const message = `Loading ${path.basename(modelPath)} failed: ${errorMessage(err)}`;
      this.log.error(`${message} (after ${Date.now() - startedAt} ms)`);
      this.setStatus({ kind: 'error', message, modelPath });
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.generation++;
    for (const d of this.disposables) d.dispose();
    const engine = this.process;
    this.process = undefined;
    await engine?.dispose();
    this.statusEmitter.dispose();
    this.completionEmitter.dispose();
  }
}

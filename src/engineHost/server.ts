// The engine's JSON-RPC server: binds the protocol's methods (src/common/protocol.ts) to a
// MessageConnection. It owns the loaded model and the scheduler, turns every failure into a
// ResponseError with a code and an actionable sentence, and keeps serving after bad input.
// It does not know about processes: main.ts serves stdio, tests in-memory streams (serveStreams).
import {
  CancellationToken,
  ResponseError,
  type MessageConnection,
  type ProgressToken,
  type RequestHandler,
  type RequestHandler0,
  type RequestType,
  type RequestType0,
} from 'vscode-jsonrpc';

import {
  ChatDeltaProgressType,
  ChatRequest,
  ChatWorkDoneProgressType,
  CompletionRequest,
  EngineErrorCodes,
  EngineStatsRequest,
  ExitNotification,
  InitializeRequest,
  ModelInfoRequest,
  ModelLoadRequest,
  ModelUnloadRequest,
  PROTOCOL_VERSION,
  ShutdownRequest,
  TokenizeRequest,
  WarmRequest,
  WorkDoneProgressType,
  type ChatWorkDoneProgress,
  type EngineStatsResult,
  type InitializeResult,
  type ModelInfoResult,
  type ModelLoadParams,
  type ModelLoadResult,
  type RequestCounts,
  type TokenizeResult,
  type WorkDoneProgress,
} from '../common/protocol';
import { StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';

import { LOAD_PHASE_MESSAGES, loadPercentage } from '../common/loadProgress';
import { isEngineError, loadAddon, type Addon } from '../engine/native';
import { checkChatParams, runChat } from './chat';
import { checkCompletionParams, checkWarmParams, runCompletion, runWarm } from './completion';
import { FrameReader } from './frameReader';
import { GuardedMessageReader } from './messageGuard';
import { LoadedModel } from './model';
import { ParamChecker } from './params';
import { Priority, Scheduler, cancelledError } from './scheduler';

export interface EngineServerOptions {
  /** Loads the native addon (default: loadAddon from src/engine/native.ts). */
  loadAddon?: () => Addon;
  /** Called on the `exit` notification: 0 after `shutdown`, 1 without. */
  onExit?: (code: number) => void;
  /** Log lines (default: none). */
  log?: (line: string) => void;
}

type State = 'uninitialized' | 'running' | 'shutdown';

/** The engine's side of the protocol over one connection. Call connection.listen() after constructing. */
export class EngineServer {
  private state: State = 'uninitialized';
  private addon: Addon | undefined;
  private model: LoadedModel | undefined;
  /** model/load and model/unload, one after the other. */
  private modelQueue: Promise<unknown> = Promise.resolve();
  private loading: Promise<unknown> | undefined;
  /** The signals of the model/load requests not yet settled (aborted when another model change comes). */
  private readonly loadAborts = new Set<AbortController>();
  /** What close() does, once started: every later call returns it. */
  private closing: Promise<null> | undefined;
  private readonly scheduler: Scheduler;
  private readonly counts: RequestCounts = { completion: 0, chat: 0, warm: 0, cancelled: 0, failed: 0, preemptions: 0, evictions: 0 };
  private readonly cache = { prefillCalls: 0, promptTokens: 0, reusedTokens: 0 };
  private readonly log: (line: string) => void;

  constructor(
    private readonly connection: MessageConnection,
    private readonly options: EngineServerOptions = {},
  ) {
    this.log = options.log ?? (() => {});
    this.scheduler = new Scheduler({ onPreempt: () => this.counts.preemptions++ });
    this.register();
  }

  // ---------------------------------------------------------------- handlers

  private register(): void {
    const c = this.connection;
    c.onRequest(InitializeRequest, (params) => this.guard('initialize', () => this.initialize(params), { beforeInit: true }));
    c.onRequest(ShutdownRequest, () => this.guard('shutdown', () => this.close(), { afterShutdown: true }));
    c.onNotification(ExitNotification, () => this.options.onExit?.(this.state === 'shutdown' ? 0 : 1));

    this.handle(ModelLoadRequest, (params, token) => this.loadModel(params, token));
    this.handle0(ModelUnloadRequest, async () => {
      this.abortLoads('model/unload');
      await this.replaceModel(undefined);
      return null;
    });
    this.handle0(ModelInfoRequest, () => this.modelInfo());

    this.handle(CompletionRequest, async (raw, token) => {
      const receivedAt = Date.now();
      const params = checkCompletionParams(raw);
      const lm = await this.requireModel();
      const result = await this.scheduler.run(
        Priority.Completion,
        token,
        (ctx) => runCompletion(ctx, lm, params, receivedAt),
        params.documentId,
      );
      this.counts.completion++;
      this.countPrefill(result.stats.promptTokens, result.stats.reusedTokens);
      return result;
    });

    this.handle(WarmRequest, async (raw, token) => {
      const params = checkWarmParams(raw);
      const lm = await this.requireModel();
      const result = await this.scheduler.run(Priority.Warm, token, (ctx) => runWarm(ctx, lm, params), params.documentId);
      this.counts.warm++;
      this.countPrefill(result.promptTokens, result.reusedTokens);
      return result;
    });

    this.handle(ChatRequest, async (raw, token) => {
      const receivedAt = Date.now();
      const params = checkChatParams(raw);
      const lm = await this.requireModel();
      const addon = this.requireAddon();
      const progress = params.partialResultToken;
      const onDelta = (text: string): void => {
        if (progress !== undefined) void this.connection.sendProgress(ChatDeltaProgressType, progress, { text }).catch(() => {});
      };
      const workDone = params.workDoneToken;
      let begun = false;
      const onProgress = (value: ChatWorkDoneProgress): void => {
        if (value.kind === 'begin') begun = true;
        if (workDone !== undefined) void this.connection.sendProgress(ChatWorkDoneProgressType, workDone, value).catch(() => {});
      };
      const result = await this.scheduler
        .run(Priority.Background, token, (ctx) => runChat(ctx, lm, addon, params, onDelta, receivedAt, onProgress))
        .finally(() => {
          if (begun) onProgress({ kind: 'end' });
        });
      this.counts.chat++;
      this.countPrefill(result.stats.promptTokens, result.stats.reusedTokens);
      return result;
    });

    this.handle(TokenizeRequest, async (raw): Promise<TokenizeResult> => {
      const c: ParamChecker = new ParamChecker('tokenize');
      const p = c.object(raw);
      const text = c.string(p.text, 'text');
      const special = c.optionalBoolean(p.special, 'special') ?? false;
      const lm = await this.requireModel();
      return { tokens: Array.from(lm.model.tokenize(text, { special })) };
    });

    this.handle0(EngineStatsRequest, () => this.stats());

    // Methods nobody registered (vscode-jsonrpc's own reply would not say what to do).
    c.onRequest(
      (method) =>
        new ResponseError(
          EngineErrorCodes.MethodNotFound,
          `The engine has no method "${method}"; the extension and the engine may be different versions.`,
        ),
    );
  }

  /** Registers a request handler that runs only while initialized, through guard(). */
  private handle<P, R>(type: RequestType<P, R, void>, handler: (params: P, token: CancellationToken) => Promise<R>): void {
    // (The cast: vscode-jsonrpc's HandlerResult is a conditional type that a generic R cannot satisfy.)
    const run: RequestHandler<P, R, void> = ((params: P, token: CancellationToken) =>
      this.guard(type.method, () => handler(params, token))) as RequestHandler<P, R, void>;
    this.connection.onRequest(type, run);
  }

  private handle0<R>(type: RequestType0<R, void>, handler: () => R | Promise<R>): void {
    const run: RequestHandler0<R, void> = (() => this.guard(type.method, async () => handler())) as RequestHandler0<R, void>;
    this.connection.onRequest(type, run);
  }

  /** Checks the lifecycle state, runs `body`, and turns anything it throws into a ResponseError. */
  private async guard<R>(method: string, body: () => Promise<R>, opts: { beforeInit?: boolean; afterShutdown?: boolean } = {}): Promise<R> {
    try {
      if (this.state === 'uninitialized' && !opts.beforeInit) {
        throw new ResponseError(EngineErrorCodes.NotInitialized, `The engine is not initialized: send initialize before ${method}.`);
      }
      if (this.state === 'shutdown' && !opts.afterShutdown) {
        throw new ResponseError(
          EngineErrorCodes.InvalidRequest,
          `The engine is shutting down and no longer serves ${method}; start a new engine.`,
        );
      }
      return await body();
    } catch (err) {
      const error = toResponseError(method, err);
      if (error.code === EngineErrorCodes.RequestCancelled) this.counts.cancelled++;
      else {
        this.counts.failed++;
        this.log(`engine: ${method} failed [${error.code}]: ${error.message}`);
      }
      throw error;
    }
  }

  // ---------------------------------------------------------------- lifecycle

  private async initialize(raw: unknown): Promise<InitializeResult> {
    const c: ParamChecker = new ParamChecker('initialize');
    const p = c.object(raw);
    const version = c.optionalNumber(p.protocolVersion, 'protocolVersion', { integer: true });
    if (version === undefined) c.fail('protocolVersion is missing.');
    if (version !== PROTOCOL_VERSION) {
      throw new ResponseError(
        EngineErrorCodes.InvalidRequest,
        `The engine speaks protocol version ${PROTOCOL_VERSION} but the client speaks ${version}; install matching versions of the extension and its engine.`,
      );
    }
    if (this.state === 'shutdown')
      throw new ResponseError(EngineErrorCodes.InvalidRequest, 'The engine is shutting down; start a new engine.');
    const addon = this.requireAddon();
    const info = addon.engineInfo();
    this.state = 'running';
    return {
      protocolVersion: PROTOCOL_VERSION,
      engineVersion: info.version,
      isa: info.isa,
      isas: info.isas,
      architectures: info.architectures,
      pid: process.pid,
    };
  }

  /**
   * What `shutdown` does: stops every request, frees the model, and serves no more requests.
   * Resolves once no native work of this server runs (a model load in flight, a prefill batch);
   * every call, also one made while an earlier one waits, returns that same promise: the process
   * exits on it (host.ts), and exiting while native work runs would wait for that work.
   */
  close(): Promise<null> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<null> {
    this.state = 'shutdown';
    const stopped = new ResponseError(EngineErrorCodes.EngineStopped, 'The engine is shutting down; the request was stopped.');
    for (const abort of this.loadAborts) abort.abort(stopped);
    this.scheduler.stopAll(stopped);
    await this.modelQueue.catch(() => {});
    // Requests that waited for that model change may have queued jobs meanwhile.
    this.scheduler.stopAll(stopped);
    await this.scheduler.idle();
    this.model?.dispose();
    this.model = undefined;
    return null;
  }

  private requireAddon(): Addon {
    if (!this.addon) {
      try {
        this.addon = (this.options.loadAddon ?? loadAddon)();
      } catch (err) {
        throw new ResponseError(EngineErrorCodes.EngineInternal, err instanceof Error ? err.message : String(err));
      }
    }
    return this.addon;
  }

  // ---------------------------------------------------------------- models

  /** Stops the model loads in flight or queued (their requests fail with RequestCancelled): `by` replaces them. */
  private abortLoads(by: string): void {
    const reason = new ResponseError(EngineErrorCodes.RequestCancelled, `The model load was cancelled: a later ${by} replaced it.`);
    for (const abort of this.loadAborts) abort.abort(reason);
    this.loadAborts.clear();
  }

  /**
   * model/load: replaces the model. Cancelling the request ($/cancelRequest), a later model/load or
   * model/unload, or shutdown stops it (a layout file build within about a megabyte); a stopped
   * load leaves no model loaded.
   */
  private loadModel(raw: unknown, token: CancellationToken): Promise<ModelLoadResult> {
    const c: ParamChecker = new ParamChecker('model/load');
    const p = c.object(raw);
    const params: ModelLoadParams = {
      path: c.nonEmptyString(p.path, 'path'),
      threads: c.optionalNumber(p.threads, 'threads', { integer: true, min: 0, max: 1024 }),
      contextLength: c.optionalNumber(p.contextLength, 'contextLength', { integer: true, min: 16, max: 1 << 24 }),
      batchSize: c.optionalNumber(p.batchSize, 'batchSize', { integer: true, min: 1, max: 1 << 16 }),
      kvMemoryLimitBytes: c.optionalNumber(p.kvMemoryLimitBytes, 'kvMemoryLimitBytes', { min: 0 }),
      maxSessions: c.optionalNumber(p.maxSessions, 'maxSessions', { integer: true, min: 1, max: 1024 }),
      layoutDir: c.optionalString(p.layoutDir, 'layoutDir'),
      memoryBudgetMB: c.optionalNumber(p.memoryBudgetMB, 'memoryBudgetMB', { integer: true, min: 0, max: 1 << 24 }),
    };
    const addon = this.requireAddon();
    const progressToken = p.workDoneToken as ProgressToken | undefined;
    const progress = (value: WorkDoneProgress): void => {
      if (progressToken !== undefined) void this.connection.sendProgress(WorkDoneProgressType, progressToken, value).catch(() => {});
    };
    const started = Date.now();
    this.abortLoads('model/load');
    const abort = new AbortController();
    this.loadAborts.add(abort);
    const cancellation = token.onCancellationRequested(() => abort.abort(cancelledError()));
    return this.replaceModel(async () => {
      progress({ kind: 'begin', title: 'Loading model', message: params.path, percentage: 0 });
      try {
        progress({ kind: 'report', message: LOAD_PHASE_MESSAGES.reading, percentage: loadPercentage('reading') });
        // the addon may deliver a progress call after the load settled: none may follow 'end'
        let settled = false;
        let lastPercentage = -1;
        const lm = await LoadedModel.load(
          addon,
          params,
          (fraction) => {
            const percentage = loadPercentage('layout', fraction);
            if (settled || percentage === lastPercentage) return;
            lastPercentage = percentage;
            progress({ kind: 'report', message: LOAD_PHASE_MESSAGES.layout, percentage });
          },
          abort.signal,
        ).finally(() => (settled = true));
        progress({ kind: 'end', message: 'loaded' });
        return lm;
      } catch (err) {
        progress({ kind: 'end', message: abort.signal.aborted ? 'cancelled' : 'failed' });
        throw err;
      }
    })
      .then((lm) => ({ path: params.path, info: lm!.summary, loadMs: Date.now() - started }))
      .finally(() => {
        cancellation.dispose();
        this.loadAborts.delete(abort);
      });
  }

  /**
   * Stops every request of the current model, frees it, then loads another with `load` (or
   * none). Model changes run one after the other; requests that arrive meanwhile wait for the
   * outcome (requireModel).
   */
  private replaceModel(load: (() => Promise<LoadedModel>) | undefined): Promise<LoadedModel | undefined> {
    const change = async (): Promise<LoadedModel | undefined> => {
      const old = this.model;
      this.model = undefined;
      if (old) {
        this.scheduler.stopAll(
          new ResponseError(
            EngineErrorCodes.ModelNotLoaded,
            'The model was unloaded while the request waited or ran; load a model and try again.',
          ),
        );
        await this.scheduler.idle();
        old.dispose();
      }
      if (load) this.model = await load();
      return this.model;
    };
    const result = this.modelQueue.then(change, change);
    const pending = result.finally(() => {
      if (this.loading === pending) this.loading = undefined;
    });
    this.loading = pending;
    this.modelQueue = pending.catch(() => {});
    return result;
  }

  /** The loaded model, once any model change in progress is done; ModelNotLoaded if there is none. */
  private async requireModel(): Promise<LoadedModel> {
    while (this.loading) await this.loading.catch(() => {});
    if (this.state === 'shutdown') {
      throw new ResponseError(EngineErrorCodes.EngineStopped, 'The engine is shutting down; the request was stopped.');
    }
    if (!this.model || this.model.disposed) {
      throw new ResponseError(
        EngineErrorCodes.ModelNotLoaded,
        'No model is loaded: choose a SmallThinker GGUF file to load (model/load) first.',
      );
    }
    return this.model;
  }

  private modelInfo(): ModelInfoResult {
    const lm = this.model;
    return lm ? { loaded: true, path: lm.path, info: lm.summary } : { loaded: false };
  }

  // ---------------------------------------------------------------- stats

  private countPrefill(promptTokens: number, reusedTokens: number): void {
    this.cache.prefillCalls++;
    this.cache.promptTokens += promptTokens;
    this.cache.reusedTokens += reusedTokens;
  }

  private stats(): EngineStatsResult {
    const pool = this.model?.pool;
    return {
      rssBytes: process.memoryUsage().rss,
      kvBytes: pool?.kvBytes ?? 0,
      kvLimitBytes: pool?.options.kvLimitBytes ?? 0,
      sessions: pool?.stats() ?? [],
      requests: { ...this.counts, evictions: pool?.evictions ?? 0 },
      experts: this.model?.expertStats() ?? null,
      cache: { ...this.cache, hitRate: this.cache.promptTokens > 0 ? this.cache.reusedTokens / this.cache.promptTokens : 0 },
    };
  }
}

/**
 * Serves the protocol on a pair of byte streams (stdin/stdout of the engine process, or the
 * in-memory streams of a test): frames from `input` (read by FrameReader, which resynchronises
 * after malformed frames), replies to `output`, malformed input answered by GuardedMessageReader.
 * The connection is listening when this returns.
 */
export function serveStreams(
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  options: EngineServerOptions = {},
): { connection: MessageConnection; server: EngineServer } {
  const log = options.log ?? (() => {});
  const writer = new StreamMessageWriter(output);
  const reader = new GuardedMessageReader(new FrameReader(input), writer, log);
  const connection = createMessageConnection(reader, writer, { error: log, warn: log, info: log, log });
  const server = new EngineServer(connection, options);
  connection.listen();
  return { connection, server };
}

/** Any failure as a ResponseError with a code and a sentence. */
export function toResponseError(method: string, err: unknown): ResponseError<unknown> {
  if (err instanceof ResponseError) return err;
  if (isEngineError(err)) {
    const message = err.message.replace(/\.?$/, '.');
    switch (err.code) {
      case 'cancelled':
        return new ResponseError(EngineErrorCodes.RequestCancelled, 'The request was cancelled.');
      case 'disposed':
        return new ResponseError(
          EngineErrorCodes.ModelNotLoaded,
          `The model was unloaded while ${method} ran; load a model and try again.`,
        );
      case 'bad_input':
      case 'bad_token':
        return new ResponseError(EngineErrorCodes.InvalidParams, `Invalid ${method} request: ${message}`, { code: err.code });
      case 'out_of_memory':
        return new ResponseError(
          EngineErrorCodes.EngineInternal,
          `The engine ran out of memory during ${method}: ${message} Lower contextLength or kvMemoryLimitBytes, or use a smaller model.`,
          { code: err.code },
        );
      default:
        return new ResponseError(EngineErrorCodes.EngineInternal, `The engine failed during ${method}: ${message}`, { code: err.code });
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ResponseError(EngineErrorCodes.EngineInternal, `The engine failed during ${method}: ${message}`);
}

// The parent side of the engine process: spawns the engine host (dist/engineHost.js) with the
// editor's own runtime, speaks JSON-RPC over its stdio, and supervises it. A crash rejects the
// requests in flight with a clear error, restarts the child (up to 3 times in 3 minutes) and
// loads the last model again; after that it gives up with a readable message. Plain Node: no
// vscode import, so it runs in tests and in the extension host alike.
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';

import {
  ConnectionError,
  Emitter,
  ErrorCodes,
  ResponseError,
  type CancellationToken,
  type Event,
  type MessageConnection,
} from 'vscode-jsonrpc';
import { StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';

import {
  EngineErrorCodes,
  ExitNotification,
  InitializeRequest,
  ModelLoadRequest,
  ModelUnloadRequest,
  PARENT_PID_ENV,
  PROTOCOL_VERSION,
  ShutdownRequest,
  type InitializeParams,
  type InitializeResult,
  type ModelLoadParams,
} from '../common/protocol';
import { EngineApi, sendOn, type AnyRequestType, type ProgressListener } from './engineClient';

export type EngineState = 'idle' | 'starting' | 'ready' | 'crashed' | 'stopped' | 'failed';

export interface EngineStateChange {
  state: EngineState;
  /** For crashed and failed: what happened, as a sentence for the user. */
  message?: string;
}

export interface EngineProcessOptions {
  /** The engine host script (the extension's dist/engineHost.js). */
  hostScript: string;
  /** The runtime (default process.execPath: Node, or the editor's Electron as Node). */
  execPath?: string;
  /** Arguments for the runtime before the script. */
  execArgv?: string[];
  /** Extra environment variables for the engine. */
  env?: NodeJS.ProcessEnv;
  clientInfo?: InitializeParams['clientInfo'];
  /** Restarts allowed within restartWindowMs before giving up (default 3). */
  maxRestarts?: number;
  /** Default 3 minutes. */
  restartWindowMs?: number;
  /** How long shutdown/exit may take before the child is killed (default 3 s). */
  shutdownTimeoutMs?: number;
  /** How long the child may take to answer initialize before it is killed (and restarted) (default 30 s). */
  startTimeoutMs?: number;
}

interface Child {
  process: ChildProcess;
  connection: MessageConnection;
  /** Set once the child exited. */
  exited: Promise<void>;
}

interface InFlight {
  reject(err: unknown): void;
}

/** How long a request that failed on a broken pipe waits for the child's exit (and its reason). */
const TRANSPORT_GRACE_MS = 2000;

/** Errors of the connection itself (a broken pipe, a closed connection), not replies of the engine. */
function isTransportError(err: unknown): boolean {
  if (err instanceof ConnectionError) return true;
  if (!(err instanceof ResponseError)) return false;
  return (
    err.code === ErrorCodes.MessageWriteError ||
    err.code === ErrorCodes.MessageReadError ||
    err.code === ErrorCodes.PendingResponseRejected ||
    err.code === ErrorCodes.ConnectionInactive
  );
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `exit code ${code}`;
}

/** A timer that does not keep the process alive. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export class EngineProcess extends EngineApi {
  private readonly stateEmitter = new Emitter<EngineStateChange>();
  private readonly logEmitter = new Emitter<string>();
  /** State changes: starting, ready, crashed (restarting), stopped (disposed), failed (gave up). */
  readonly onDidChangeState: Event<EngineStateChange> = this.stateEmitter.event;
  /** The engine's stderr, line by line, and the supervisor's own notes. */
  readonly onLog: Event<string> = this.logEmitter.event;

  private current: EngineState = 'idle';
  private child: Child | undefined;
  /** Resolves when the current child is initialized and its model reloaded. */
  private ready: Promise<void> | undefined;
  private initResult: InitializeResult | undefined;
  private readonly inFlight = new Set<InFlight>();
  private readonly crashes: number[] = [];
  /** The last successful model/load, replayed after a restart. */
  private lastLoad: Omit<ModelLoadParams, 'workDoneToken'> | undefined;
  private failure: string | undefined;
  private disposing = false;

  constructor(private readonly options: EngineProcessOptions) {
    super();
  }

  get state(): EngineState {
    return this.current;
  }

  /** The engine process id, while one runs. */
  get pid(): number | undefined {
    return this.child?.process.pid;
  }

  /** The handshake result of the current child. */
  get engineInfo(): InitializeResult | undefined {
    return this.initResult;
  }

  /** Starts the engine (once) and resolves after the initialize handshake. */
  async start(): Promise<InitializeResult> {
    if (this.current === 'idle') this.ready = this.launch();
    await this.whenReady();
    return this.initResult!;
  }

  /** shutdown, then exit, then SIGKILL if the child is still there after the timeout. */
  async dispose(): Promise<void> {
    if (this.disposing) return;
    this.disposing = true;
    const child = this.child;
    if (child && child.process.exitCode === null && child.process.signalCode === null) {
      const timeout = this.options.shutdownTimeoutMs ?? 3000;
      try {
        const shutdown = sendOn(child.connection, ShutdownRequest, undefined);
        shutdown.catch(() => {}); // may settle after the race
        await Promise.race([shutdown, delay(timeout)]);
        await child.connection.sendNotification(ExitNotification);
      } catch {
        // Already gone or not answering: the kill below covers it.
      }
      await Promise.race([child.exited, delay(timeout)]);
      if (child.process.exitCode === null && child.process.signalCode === null) {
        this.logEmitter.fire('engine: the engine process did not exit after shutdown; killing it.');
        child.process.kill('SIGKILL');
        await child.exited;
      }
    }
    child?.connection.dispose();
    this.rejectInFlight(new ResponseError(EngineErrorCodes.EngineStopped, 'The engine was stopped.'));
    this.setState({ state: 'stopped' });
    this.stateEmitter.dispose();
    this.logEmitter.dispose();
  }

  // ---------------------------------------------------------------- requests

  protected async send<P, R>(
    type: AnyRequestType<P, R>,
    params: P | undefined,
    token?: CancellationToken,
    progress?: ProgressListener<unknown> | ProgressListener<unknown>[],
  ): Promise<R> {
    const child = await this.whenReady();
    const result = await this.track(child, sendOn<P, R>(child.connection, type, params, token, progress));
    if (type.method === ModelLoadRequest.method) {
      const { workDoneToken: _token, ...load } = params as ModelLoadParams;
      this.lastLoad = load;
    } else if (type.method === ModelUnloadRequest.method) {
      this.lastLoad = undefined;
    }
    return result;
  }

  /**
   * Rejects `request` at once if the child dies before it settles. A request that fails because
   * the pipe broke (the child is dying) waits for the exit, which rejects it with the reason.
   */
  private track<R>(child: Child, request: Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const entry: InFlight = { reject };
      this.inFlight.add(entry);
      const settle = (): void => {
        this.inFlight.delete(entry);
      };
      request.then(
        (value) => {
          settle();
          resolve(value);
        },
        (err: unknown) => {
          if (!isTransportError(err)) {
            settle();
            reject(err);
            return;
          }
          const detail = err instanceof Error ? err.message : String(err);
          void Promise.race([child.exited, delay(TRANSPORT_GRACE_MS)]).then(() => {
            settle();
            reject(new ResponseError(EngineErrorCodes.EngineStopped, `The connection to the engine process failed (${detail}).`));
          });
        },
      );
    });
  }

  private rejectInFlight(error: ResponseError<unknown>): void {
    for (const entry of [...this.inFlight]) entry.reject(error);
    this.inFlight.clear();
  }

  /** The child once it is ready; waits through restarts; rejects once stopped or failed. */
  private async whenReady(): Promise<Child> {
    for (;;) {
      if (this.disposing) throw new ResponseError(EngineErrorCodes.EngineStopped, 'The engine was stopped.');
      if (this.failure) throw new ResponseError(EngineErrorCodes.EngineStopped, this.failure);
      const ready = this.ready;
      if (!ready) throw new ResponseError(EngineErrorCodes.EngineStopped, 'The engine is not started; call start() first.');
      try {
        await ready;
      } catch (err) {
        if (this.ready === ready && !this.failure) throw err;
        continue;
      }
      if (this.ready === ready && this.child) return this.child;
    }
  }

  // ---------------------------------------------------------------- the child

  private setState(change: EngineStateChange): void {
    this.current = change.state;
    this.stateEmitter.fire(change);
  }

  /** Spawns a child, initializes it and loads the last model again. */
  private async launch(): Promise<void> {
    this.setState({ state: 'starting' });
    const child = this.spawnChild();
    this.child = child;
    const params: InitializeParams = { protocolVersion: PROTOCOL_VERSION, clientInfo: this.options.clientInfo };
    const timeoutMs = this.options.startTimeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      this.logEmitter.fire(`engine: the engine process did not answer initialize within ${timeoutMs / 1000} s; killing it.`);
      child.process.kill('SIGKILL');
    }, timeoutMs);
    try {
      this.initResult = await this.track(child, sendOn(child.connection, InitializeRequest, params));
    } finally {
      clearTimeout(timer);
    }
    if (this.child !== child) return;
    if (this.lastLoad) {
      try {
        await this.track(child, sendOn(child.connection, ModelLoadRequest, this.lastLoad));
      } catch (err) {
        if (this.child !== child) return;
        this.logEmitter.fire(`engine: reloading the model after a restart failed: ${err instanceof Error ? err.message : String(err)}`);
        this.lastLoad = undefined;
      }
    }
    if (this.child === child) this.setState({ state: 'ready' });
  }

  private spawnChild(): Child {
    const { execPath = process.execPath, execArgv = [], hostScript, env } = this.options;
    const proc = spawn(execPath, [...execArgv, hostScript], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env, ELECTRON_RUN_AS_NODE: '1', [PARENT_PID_ENV]: String(process.pid) },
      windowsHide: true,
    });
    const stdin = proc.stdin!;
    const stdout = proc.stdout!;
    // A write to a child that just died must not become an unhandled 'error' event.
    stdin.on('error', (err) => this.logEmitter.fire(`engine: writing to the engine failed: ${err.message}`));
    readline.createInterface({ input: proc.stderr! }).on('line', (line) => this.logEmitter.fire(line));

    const connection = createMessageConnection(new StreamMessageReader(stdout), new StreamMessageWriter(stdin), {
      error: (m) => this.logEmitter.fire(`engine connection: ${m}`),
      warn: (m) => this.logEmitter.fire(`engine connection: ${m}`),
      info: () => {},
      log: () => {},
    });
    connection.listen();
    const exited = new Promise<void>((resolve) => {
      let done = false;
      const onExit = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
        if (done) return;
        done = true;
        resolve();
        this.onChildExit(child, code, signal, spawnError);
      };
      proc.on('exit', (code, signal) => onExit(code, signal));
      proc.on('error', (err) => {
        // Failed to spawn (no 'exit' follows) or failed to kill: only the first matters.
        if (proc.pid === undefined) onExit(null, null, err);
      });
    });
    const child: Child = { process: proc, connection, exited };
    return child;
  }

  private onChildExit(child: Child, code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void {
    child.connection.dispose();
    if (this.disposing || this.child !== child) return;
    const how = spawnError ? `it could not be started: ${spawnError.message}` : describeExit(code, signal);
    const now = Date.now();
    const window = this.options.restartWindowMs ?? 3 * 60 * 1000;
    const maxRestarts = this.options.maxRestarts ?? 3;
    this.crashes.push(now);
    while (this.crashes.length > 0 && now - this.crashes[0] > window) this.crashes.shift();

    if (this.crashes.length > maxRestarts) {
      const minutes = Math.round(window / 60000);
      this.failure =
        `The engine process stopped unexpectedly ${this.crashes.length} times within ${minutes} minute${minutes === 1 ? '' : 's'} ` +
        `(last: ${how}); it will not be restarted. See the engine log for the cause, then reload the window to try again.`;
      this.rejectInFlight(new ResponseError(EngineErrorCodes.EngineStopped, this.failure));
      this.child = undefined;
      this.ready = Promise.reject(new ResponseError(EngineErrorCodes.EngineStopped, this.failure));
      this.ready.catch(() => {});
      this.logEmitter.fire(`engine: ${this.failure}`);
      this.setState({ state: 'failed', message: this.failure });
      return;
    }
    const message = `The engine process stopped unexpectedly (${how}); restarting it.`;
    this.logEmitter.fire(`engine: ${message}`);
    this.rejectInFlight(new ResponseError(EngineErrorCodes.EngineStopped, message));
    this.setState({ state: 'crashed', message });
    const ready = this.launch();
    ready.catch(() => {}); // a failed launch shows up as another exit, or through whenReady()
    this.ready = ready;
  }
}

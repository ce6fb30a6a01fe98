// The client side of the engine protocol: one typed method per request (src/common/protocol.ts),
// with progress and partial results delivered to callbacks. EngineApi holds the methods over an
// abstract send(); EngineClient sends on a fixed connection, EngineProcess (engineProcess.ts) on
// the connection of a supervised child process.
import {
  type CancellationToken,
  type MessageConnection,
  type ProgressToken,
  type ProgressType,
  type RequestType,
  type RequestType0,
} from 'vscode-jsonrpc';

import {
  ChatDeltaProgressType,
  ChatRequest,
  ChatWorkDoneProgressType,
  CompletionRequest,
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
  type ChatParams,
  type ChatResult,
  type ChatWorkDoneProgress,
  type CompletionParams,
  type CompletionResult,
  type EngineStatsResult,
  type InitializeParams,
  type InitializeResult,
  type ModelInfoResult,
  type ModelLoadParams,
  type ModelLoadResult,
  type TokenizeResult,
  type WarmParams,
  type WarmResult,
  type WorkDoneProgress,
} from '../common/protocol';

/** `$/progress` notifications on `token` go to `handler` while the request runs. */
export interface ProgressListener<T> {
  type: ProgressType<T>;
  token: ProgressToken;
  handler: (value: T) => void;
}

export type AnyRequestType<P, R> = RequestType<P, R, void> | RequestType0<R, void>;

let nextProgressToken = 1;
function progressToken(kind: string): string {
  return `${kind}-${process.pid}-${nextProgressToken++}`;
}

/** Sends one request on `connection`, with `progress` (one listener or several) registered for its duration. */
export async function sendOn<P, R>(
  connection: MessageConnection,
  type: AnyRequestType<P, R>,
  params: P | undefined,
  token?: CancellationToken,
  progress?: ProgressListener<unknown> | ProgressListener<unknown>[],
): Promise<R> {
  const listeners = progress === undefined ? [] : Array.isArray(progress) ? progress : [progress];
  const subscriptions = listeners.map((p) => connection.onProgress(p.type, p.token, p.handler));
  try {
    // (Untyped call: sendRequest's NoInfer'd parameter types cannot be met with a generic P.)
    const sendRequest = connection.sendRequest as (type: AnyRequestType<P, R>, ...args: unknown[]) => Promise<R>;
    return await (type.numberOfParams === 0 ? sendRequest(type, token) : sendRequest(type, params, token));
  } finally {
    for (const s of subscriptions) s.dispose();
  }
}

export interface ChatCallbacks {
  /** Text as it is generated; the pieces concatenate to the result's text. */
  onDelta?: (text: string) => void;
  /** What the engine does before the first token: the prompt's size (begin), generation starting (report). */
  onProgress?: (value: ChatWorkDoneProgress) => void;
  token?: CancellationToken;
}

/** The protocol's requests as methods. */
export abstract class EngineApi {
  protected abstract send<P, R>(
    type: AnyRequestType<P, R>,
    params: P | undefined,
    token?: CancellationToken,
    progress?: ProgressListener<unknown> | ProgressListener<unknown>[],
  ): Promise<R>;

  /** Cancelling `token` stops the load (a layout file build at once); it fails with RequestCancelled. */
  loadModel(
    params: Omit<ModelLoadParams, 'workDoneToken'>,
    onProgress?: (value: WorkDoneProgress) => void,
    token?: CancellationToken,
  ): Promise<ModelLoadResult> {
    if (!onProgress) return this.send(ModelLoadRequest, params, token);
    const progress = progressToken('load');
    return this.send(ModelLoadRequest, { ...params, workDoneToken: progress }, token, {
      type: WorkDoneProgressType,
      token: progress,
      handler: onProgress as (value: unknown) => void,
    });
  }

  unloadModel(): Promise<void> {
    return this.send(ModelUnloadRequest, undefined).then(() => undefined);
  }

  modelInfo(): Promise<ModelInfoResult> {
    return this.send(ModelInfoRequest, undefined);
  }

  complete(params: CompletionParams, token?: CancellationToken): Promise<CompletionResult> {
    return this.send(CompletionRequest, params, token);
  }

  /** chat/create; `onDelta` gets the text as it streams, `onProgress` what happens before it. */
  chat(params: Omit<ChatParams, 'partialResultToken' | 'workDoneToken'>, callbacks: ChatCallbacks = {}): Promise<ChatResult> {
    const { onDelta, onProgress, token } = callbacks;
    const sent: ChatParams = { ...params };
    const listeners: ProgressListener<unknown>[] = [];
    if (onDelta) {
      sent.partialResultToken = progressToken('chat');
      listeners.push({
        type: ChatDeltaProgressType,
        token: sent.partialResultToken,
        handler: (value) => onDelta((value as { text: string }).text),
      });
    }
    if (onProgress) {
      sent.workDoneToken = progressToken('chat-work');
      listeners.push({ type: ChatWorkDoneProgressType, token: sent.workDoneToken, handler: onProgress as (value: unknown) => void });
    }
    return this.send(ChatRequest, sent, token, listeners);
  }

  warm(params: WarmParams, token?: CancellationToken): Promise<WarmResult> {
    return this.send(WarmRequest, params, token);
  }

  tokenize(text: string, special = false): Promise<number[]> {
    return this.send(TokenizeRequest, { text, special }).then((r: TokenizeResult) => r.tokens);
  }

  stats(): Promise<EngineStatsResult> {
    return this.send(EngineStatsRequest, undefined);
  }
}

/** EngineApi over one connection (the in-process engine of tests, or a child's stdio). */
export class EngineClient extends EngineApi {
  constructor(readonly connection: MessageConnection) {
    super();
  }

  protected send<P, R>(
    type: AnyRequestType<P, R>,
    params: P | undefined,
    token?: CancellationToken,
    progress?: ProgressListener<unknown> | ProgressListener<unknown>[],
  ): Promise<R> {
    return sendOn(this.connection, type, params, token, progress);
  }

  initialize(clientInfo?: InitializeParams['clientInfo']): Promise<InitializeResult> {
    return this.send(InitializeRequest, { protocolVersion: PROTOCOL_VERSION, clientInfo });
  }

  /** `shutdown`, then `exit`. */
  async shutdown(): Promise<void> {
    await this.send(ShutdownRequest, undefined);
    await this.connection.sendNotification(ExitNotification);
  }
}

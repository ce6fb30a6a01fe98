// A scripted fake engine host for UI tests: speaks the engine's JSON-RPC protocol on stdio
// (src/common/protocol.ts) without the native addon or a real model. Use it by starting VS Code
// with SMALLTHINKER_ENGINE_HOST=<repo>/out/test/vscode/fakeEngine.js. Scripted by env vars below.
//
//   FAKE_ENGINE_CHAT_TEXT         chat answer (default: a sentence, a ```ts block, a sentence)
//   FAKE_ENGINE_CHAT_DELAY_MS     delay between streamed words (default 15)
//   FAKE_ENGINE_COMPLETION        completion/create's first candidate (default DEFAULT_COMPLETION)
//   FAKE_ENGINE_COMPLETION_DELAY_MS  (default 30)
//   FAKE_ENGINE_PREFILL_MS        time chat/create "evaluates" its prompt before the first word (default 0)
//   FAKE_ENGINE_START_MS          time `initialize` takes to answer (default 0)
//   FAKE_ENGINE_LOAD_MS           time model/load takes, with progress reports (default 300)
//   FAKE_ENGINE_LOAD_FAIL         non-empty: model/load fails with this message
//   FAKE_ENGINE_MODEL_NAME        model name in ModelSummary (default "SmallThinker Fake")
//   FAKE_ENGINE_RECORD            file: one JSON line per request {method, params, at} is appended
//   FAKE_ENGINE_CRASH_ON          method name: the process exits with code 3 when it receives it
import * as fs from 'node:fs';

import { CancellationToken, ResponseError } from 'vscode-jsonrpc';
import { StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';

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
  PARENT_PID_ENV,
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
  type InitializeResult,
  type ModelInfoResult,
  type ModelLoadParams,
  type ModelLoadResult,
  type ModelSummary,
  type WarmResult,
  type WorkDoneProgress,
} from '../../src/common/protocol';
import { LOAD_PHASE_MESSAGES, loadPercentage } from '../../src/common/loadProgress';

export const DEFAULT_CHAT_TEXT = [
  'Here is a function that adds two numbers:',
  '',
  '```ts',
  'export function add(a: number, b: number): number {',
  '  return a + b;',
  '}',
  '```',
  '',
  'It returns the sum of `a` and `b`.',
].join('\n');

export const DEFAULT_COMPLETION = 'return a + b;';
export const DEFAULT_MODEL_NAME = 'SmallThinker Fake';

/** Serves the protocol on stdio until `exit`, stdin closes, or the parent is gone. */
export function main(): void {
  const env = process.env;
  const num = (name: string, fallback: number): number => {
    const v = Number(env[name]);
    return env[name] !== undefined && env[name] !== '' && Number.isFinite(v) ? v : fallback;
  };

  const chatText = env.FAKE_ENGINE_CHAT_TEXT || DEFAULT_CHAT_TEXT;
  const chatDelayMs = num('FAKE_ENGINE_CHAT_DELAY_MS', 15);
  const completionText = env.FAKE_ENGINE_COMPLETION ?? DEFAULT_COMPLETION;
  const completionDelayMs = num('FAKE_ENGINE_COMPLETION_DELAY_MS', 30);
  const loadMs = num('FAKE_ENGINE_LOAD_MS', 300);
  const prefillMs = num('FAKE_ENGINE_PREFILL_MS', 0);
  const startMs = num('FAKE_ENGINE_START_MS', 0);
  const modelName = env.FAKE_ENGINE_MODEL_NAME || DEFAULT_MODEL_NAME;

  const log = (line: string): void => void process.stderr.write(`fake-engine: ${line}\n`);

  function record(method: string, params: unknown): void {
    if (method === env.FAKE_ENGINE_CRASH_ON) {
      log(`crashing on ${method} (FAKE_ENGINE_CRASH_ON)`);
      process.exit(3);
    }
    const file = env.FAKE_ENGINE_RECORD;
    if (file) fs.appendFileSync(file, JSON.stringify({ method, params, at: Date.now() }) + '\n');
  }

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  function cancelled(): ResponseError<unknown> {
    return new ResponseError(EngineErrorCodes.RequestCancelled, 'The request was cancelled.');
  }

  /** About four characters a token, like the real tokenizer on code. */
  const tokenCount = (text: string): number => Math.ceil(text.length / 4);

  let state: 'uninitialized' | 'running' | 'shutdown' = 'uninitialized';
  let model: { path: string; info: ModelSummary } | undefined;
  let contextLength = 4096;
  const counts = { completion: 0, chat: 0, warm: 0, cancelled: 0, failed: 0, preemptions: 0, evictions: 0 };

  const connection = createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout), {
    error: log,
    warn: log,
    info: () => {},
    log: () => {},
  });

  /** Records the request, checks the lifecycle state and counts failures and cancellations. */
  async function guard<R>(method: string, params: unknown, body: () => Promise<R> | R, opts: { beforeInit?: boolean } = {}): Promise<R> {
    record(method, params);
    try {
      if (state === 'uninitialized' && !opts.beforeInit) {
        throw new ResponseError(EngineErrorCodes.NotInitialized, `The engine is not initialized: send initialize before ${method}.`);
      }
      if (state === 'shutdown' && method !== 'shutdown') {
        throw new ResponseError(
          EngineErrorCodes.InvalidRequest,
          `The engine is shutting down and no longer serves ${method}; start a new engine.`,
        );
      }
      return await body();
    } catch (err) {
      if (err instanceof ResponseError && err.code === EngineErrorCodes.RequestCancelled) counts.cancelled++;
      else counts.failed++;
      throw err;
    }
  }

  function requireModel(): { path: string; info: ModelSummary } {
    if (!model)
      throw new ResponseError(
        EngineErrorCodes.ModelNotLoaded,
        'No model is loaded: choose a SmallThinker GGUF file to load (model/load) first.',
      );
    return model;
  }

  connection.onRequest(InitializeRequest, (params) =>
    guard(
      'initialize',
      params,
      async (): Promise<InitializeResult> => {
        if (startMs > 0) await sleep(startMs);
        if (params.protocolVersion !== PROTOCOL_VERSION) {
          throw new ResponseError(
            EngineErrorCodes.InvalidRequest,
            `The engine speaks protocol version ${PROTOCOL_VERSION} but the client speaks ${params.protocolVersion}; install matching versions of the extension and its engine.`,
          );
        }
        state = 'running';
        return {
          protocolVersion: PROTOCOL_VERSION,
          engineVersion: '0.0.0-fake',
          isa: 'scalar',
          isas: ['scalar'],
          architectures: ['smallthinker'],
          pid: process.pid,
        };
      },
      { beforeInit: true },
    ),
  );

  connection.onRequest(ShutdownRequest, () =>
    guard(
      'shutdown',
      undefined,
      () => {
        state = 'shutdown';
        model = undefined;
        return null;
      },
      { beforeInit: true },
    ),
  );

  connection.onNotification(ExitNotification, () => {
    record('exit', undefined);
    process.exit(state === 'shutdown' ? 0 : 1);
  });

  connection.onRequest(ModelLoadRequest, (params: ModelLoadParams) =>
    guard('model/load', params, async (): Promise<ModelLoadResult> => {
      const started = Date.now();
      model = undefined;
      const token = params.workDoneToken;
      const progress = (value: WorkDoneProgress): void => {
        if (token !== undefined) void connection.sendProgress(WorkDoneProgressType, token, value).catch(() => {});
      };
      progress({ kind: 'begin', title: 'Loading model', message: params.path, percentage: 0 });
      let stat: fs.Stats;
      try {
        stat = fs.statSync(params.path);
      } catch {
        progress({ kind: 'end', message: 'failed' });
        throw new ResponseError(
          EngineErrorCodes.ModelLoadFailed,
          `Cannot open the model file ${params.path}: it does not exist. Choose another file.`,
        );
      }
      // Like a first load: reading the file, then laying out the weights in steps.
      const steps = 4;
      progress({ kind: 'report', message: LOAD_PHASE_MESSAGES.reading, percentage: loadPercentage('reading') });
      for (let i = 1; i <= steps; i++) {
        await sleep(loadMs / steps);
        progress({ kind: 'report', message: LOAD_PHASE_MESSAGES.layout, percentage: loadPercentage('layout', i / steps) });
      }
      if (env.FAKE_ENGINE_LOAD_FAIL) {
        progress({ kind: 'end', message: 'failed' });
        throw new ResponseError(EngineErrorCodes.ModelLoadFailed, env.FAKE_ENGINE_LOAD_FAIL);
      }
      contextLength = params.contextLength ?? 4096;
      const info: ModelSummary = {
        architecture: 'smallthinker',
        name: modelName,
        n_layer: 2,
        n_vocab: 151936,
        n_ctx_train: 32768,
        context: contextLength,
        fim: true,
        chat: true,
        fileSize: stat.size,
      };
      model = { path: params.path, info };
      progress({ kind: 'end', message: 'loaded' });
      return { path: params.path, info, loadMs: Date.now() - started };
    }),
  );

  connection.onRequest(ModelUnloadRequest, () =>
    guard('model/unload', undefined, () => {
      model = undefined;
      return null;
    }),
  );

  connection.onRequest(ModelInfoRequest, () =>
    guard('model/info', undefined, (): ModelInfoResult =>
      model ? { loaded: true, path: model.path, info: model.info } : { loaded: false },
    ),
  );

  connection.onRequest(CompletionRequest, (params: CompletionParams, token: CancellationToken) =>
    guard('completion/create', params, async (): Promise<CompletionResult> => {
      requireModel();
      const started = Date.now();
      await sleep(completionDelayMs);
      if (token.isCancellationRequested) throw cancelled();
      counts.completion++;
      const promptTokens = tokenCount(params.prompt.prefix + params.prompt.suffix);
      const n = Math.max(1, Math.min(8, params.candidates ?? 1));
      const candidates = [completionText];
      for (let i = 1; i < n; i++) candidates.push(`${completionText} // ${i + 1}`);
      const decodeTokens = tokenCount(candidates.join(''));
      const totalMs = Date.now() - started;
      return {
        candidates,
        stats: {
          promptTokens,
          reusedTokens: 0,
          prefixTokens: 0,
          movedTokens: 0,
          evaluatedTokens: promptTokens,
          prefillMs: 1,
          timeToFirstTokenMs: totalMs,
          decodeTokens,
          decodeTokensPerS: decodeTokens / Math.max(totalMs / 1000, 0.001),
          totalMs,
          fim: params.fim ?? true,
          stopReason: 'eog',
        },
      };
    }),
  );

  connection.onRequest(ChatRequest, (params: ChatParams, token: CancellationToken) =>
    guard('chat/create', params, async (): Promise<ChatResult> => {
      requireModel();
      const started = Date.now();
      const promptTokens = tokenCount(params.messages.map((m) => m.content).join('\n'));
      const maxTokens = params.maxTokens ?? 1024;
      // Word by word, whitespace attached to the word before it; one "token" a piece.
      let pieces: string[] = chatText.match(/\s+|\S+\s*/g) ?? [];
      let stopReason: ChatResult['stopReason'] = 'eog';
      if (pieces.length > maxTokens) {
        pieces = pieces.slice(0, maxTokens);
        stopReason = 'length';
      }
      const workDone = params.workDoneToken;
      const sendWork = (value: ChatWorkDoneProgress): void => {
        if (workDone !== undefined) void connection.sendProgress(ChatWorkDoneProgressType, workDone, value).catch(() => {});
      };
      sendWork({
        kind: 'begin',
        title: 'chat',
        message: `evaluating ${promptTokens} prompt tokens`,
        prompt: { promptTokens, cachedTokens: 0, maxTokens: Math.min(maxTokens, contextLength - promptTokens), contextLength },
      });
      if (prefillMs > 0) await sleep(prefillMs);
      sendWork({ kind: 'report', message: 'generating' });
      let text = '';
      let firstTokenMs = 0;
      for (const piece of pieces) {
        if (chatDelayMs > 0) await sleep(chatDelayMs);
        if (token.isCancellationRequested) throw cancelled();
        const next = text + piece;
        const stopAt = (params.stop ?? []).map((s) => (s ? next.indexOf(s) : -1)).filter((i) => i >= 0);
        if (stopAt.length > 0) {
          const cut = next.slice(0, Math.min(...stopAt));
          if (cut.length > text.length && params.partialResultToken !== undefined) {
            void connection
              .sendProgress(ChatDeltaProgressType, params.partialResultToken, { text: cut.slice(text.length) })
              .catch(() => {});
          }
          text = cut;
          stopReason = 'stop';
          break;
        }
        if (!firstTokenMs) firstTokenMs = Date.now() - started;
        text = next;
        if (params.partialResultToken !== undefined) {
          void connection.sendProgress(ChatDeltaProgressType, params.partialResultToken, { text: piece }).catch(() => {});
        }
      }
      sendWork({ kind: 'end' });
      counts.chat++;
      const ms = Date.now() - started;
      return {
        text,
        stopReason,
        seed: params.sampling?.seed ?? 1234,
        stats: {
          promptTokens,
          reusedTokens: 0,
          evaluatedTokens: promptTokens,
          prefillMs: 1,
          timeToFirstTokenMs: firstTokenMs,
          decodeTokens: pieces.length,
          decodeTokensPerS: pieces.length / Math.max(ms / 1000, 0.001),
        },
      };
    }),
  );

  connection.onRequest(WarmRequest, (params) =>
    guard('context/warm', params, (): WarmResult => {
      requireModel();
      counts.warm++;
      const promptTokens = tokenCount(params.prompt.prefix + params.prompt.suffix);
      return { promptTokens, evaluatedTokens: promptTokens, reusedTokens: 0, ms: 1 };
    }),
  );

  connection.onRequest(TokenizeRequest, (params) =>
    guard('tokenize', params, () => {
      requireModel();
      return { tokens: Array.from({ length: tokenCount(params.text) }, (_, i) => i + 1) };
    }),
  );

  connection.onRequest(EngineStatsRequest, () =>
    guard('engine/stats', undefined, (): EngineStatsResult => ({
      rssBytes: process.memoryUsage().rss,
      kvBytes: 0,
      kvLimitBytes: 1 << 30,
      sessions: [],
      experts: null,
      requests: { ...counts },
      cache: { prefillCalls: counts.completion + counts.chat + counts.warm, promptTokens: 0, reusedTokens: 0, hitRate: 0 },
    })),
  );

  connection.onRequest((method) => {
    record(method, undefined);
    return new ResponseError(
      EngineErrorCodes.MethodNotFound,
      `The engine has no method "${method}"; the extension and the engine may be different versions.`,
    );
  });

  connection.onClose(() => process.exit(state === 'shutdown' ? 0 : 1));
  connection.listen();

  // Like the real engine: exit once the parent (the extension host) is gone.
  const parentPid = Number(env[PARENT_PID_ENV]);
  if (Number.isInteger(parentPid) && parentPid > 0) {
    setInterval(() => {
      try {
        process.kill(parentPid, 0);
      } catch {
        log(`parent ${parentPid} is gone; exiting`);
        process.exit(1);
      }
    }, 1000).unref();
  }
  log(`started (pid ${process.pid})`);
}

if (require.main === module) main();

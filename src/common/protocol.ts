// The JSON-RPC protocol between the extension (client) and the engine process (server), typed
// once as values both sides import. Pure: imports only vscode-jsonrpc's common API. To add a
// method: declare its params/result interfaces and a RequestType here, then a handler in
// src/engineHost/server.ts and a helper in src/node/engineClient.ts.
import { ProgressType, RequestType, RequestType0, NotificationType0 } from 'vscode-jsonrpc';
import type { ProgressToken } from 'vscode-jsonrpc';

import type { ContextChunk } from './prompt';

/** Bumped on any incompatible change; `initialize` refuses a client that speaks another version. */
export const PROTOCOL_VERSION = 1;

/** Environment variable with the parent's pid: the engine process exits when that process is gone. */
export const PARENT_PID_ENV = 'MOE_ENGINE_PARENT_PID';

// ---------------------------------------------------------------- errors

/**
 * Error codes in replies. The standard JSON-RPC ones, the LSP cancellation code, and our own in
 * the implementation-defined server range (-32000 to -32099). Every error also carries a sentence
 * a user can act on as its message.
 */
export const EngineErrorCodes = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** The request was cancelled ($/cancelRequest), before it started or while it ran. */
  RequestCancelled: -32800,
  /** No model is loaded (or it was unloaded while the request waited or ran). */
  ModelNotLoaded: -32001,
  /** model/load failed: missing file, not a GGUF, unsupported architecture or type, ... */
  ModelLoadFailed: -32002,
  /** The prompt does not fit the context length of the loaded model's sessions. */
  ContextOverflow: -32003,
  /** No KV session can be had within the memory limit right now (all are in use). */
  EngineBusy: -32004,
  /** The engine failed in a way that is not the request's fault. */
  EngineInternal: -32005,
  /** A request other than `initialize` came before `initialize`. */
  NotInitialized: -32006,
  /** Client side: the engine process stopped while the request was in flight, or gave up restarting. */
  EngineStopped: -32007,
} as const;
export type EngineErrorCode = (typeof EngineErrorCodes)[keyof typeof EngineErrorCodes];

// ---------------------------------------------------------------- progress

/** `$/progress` values for a work-done token (the LSP shape). */
export interface WorkDoneProgressBegin {
  kind: 'begin';
  title: string;
  message?: string;
  /** 0-100 when known. */
  percentage?: number;
}
export interface WorkDoneProgressReport {
  kind: 'report';
  message?: string;
  percentage?: number;
}
export interface WorkDoneProgressEnd {
  kind: 'end';
  message?: string;
}
export type WorkDoneProgress = WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd;
export const WorkDoneProgressType = new ProgressType<WorkDoneProgress>();

export interface WorkDoneProgressParams {
  /** Progress of the request arrives as `$/progress` notifications on this token. */
  workDoneToken?: ProgressToken;
}
export interface PartialResultParams {
  /** Partial results of the request arrive as `$/progress` notifications on this token. */
  partialResultToken?: ProgressToken;
}

// ---------------------------------------------------------------- lifecycle

export interface InitializeParams {
  protocolVersion: number;
  clientInfo?: { name: string; version?: string };
}
export interface InitializeResult {
  protocolVersion: number;
  /** The native engine's version. */
  engineVersion: string;
  /** The kernel set in use (scalar, avx2, avx512, avx512vnni). */
  isa: string;
  /** Kernel sets this CPU can run. */
  isas: string[];
  /** Model architectures the engine runs. */
  architectures: string[];
  /** The engine process id. */
  pid: number;
}
export const InitializeRequest = new RequestType<InitializeParams, InitializeResult, void>('initialize');
/** Stops all work and frees the model; the client then sends `exit`. */
export const ShutdownRequest = new RequestType0<null, void>('shutdown');
/** Ends the engine process (exit code 0 after `shutdown`, 1 without). */
export const ExitNotification = new NotificationType0('exit');

// ---------------------------------------------------------------- models

export interface ModelLoadParams extends WorkDoneProgressParams {
  /** A SmallThinker GGUF file. */
  path: string;
  /** Worker threads per session; absent or 0: all cores. */
  threads?: number;
  /** Positions per KV session (default 4096, at most the model's training context). */
  contextLength?: number;
  /** Tokens per forward pass during prompt evaluation (default 512). */
  batchSize?: number;
  /** Upper bound on the KV memory of all sessions together (default 1 GiB). */
  kvMemoryLimitBytes?: number;
  /** Upper bound on the number of KV sessions (default 8). */
  maxSessions?: number;
  /**
   * A folder for the model's layout file: its relaid-out weights, built at the first load and
   * mapped read-only (file-backed, shared) by later ones. Absent: relaid out in memory.
   */
  layoutDir?: string;
  /**
   * Run the model within this many MiB, the whole engine process (absent or 0: no budget). Needs
   * layoutDir: the experts are read from the layout file into an expert cache of what the budget
   * leaves after the other weights and the KV caches (whose limit becomes at most a quarter of the
   * budget). Below the minimum that can run, the load fails with a sentence naming the minimum.
   */
  memoryBudgetMB?: number;
}

export interface ModelSummary {
  architecture: string;
  name: string;
  n_layer: number;
  n_vocab: number;
  /** The model's training context. */
  n_ctx_train: number;
  /** Positions per KV session as loaded. */
  context: number;
  /** The vocabulary has fill-in-the-middle tokens. */
  fim: boolean;
  /** The model has a chat template. */
  chat: boolean;
  fileSize: number;
  /** Where the relaid-out weights come from: the layout file ("" in memory), built by this load, why none could be used. */
  layout?: { file: string; built: boolean; error: string };
  /** Under a memory budget: the budget, the expert cache's slots of the model's extents, the other weights' bytes. */
  memoryBudget?: { bytes: number; cacheSlots: number; extents: number; residentBytes: number } | null;
}
export interface ModelLoadResult {
  path: string;
  info: ModelSummary;
  loadMs: number;
}
export const ModelLoadRequest = new RequestType<ModelLoadParams, ModelLoadResult, void>('model/load');
export const ModelUnloadRequest = new RequestType0<null, void>('model/unload');

export interface ModelInfoResult {
  loaded: boolean;
  path?: string;
  info?: ModelSummary;
}
export const ModelInfoRequest = new RequestType0<ModelInfoResult, void>('model/info');

// ---------------------------------------------------------------- completion

export type { ContextChunk };
export interface CompletionPrompt {
  /** Cross-file context, most stable first. */
  chunks?: ContextChunk[];
  /** The document's text before the cursor. */
  prefix: string;
  /** The document's text after the cursor. */
  suffix: string;
  fileName: string;
  languageId: string;
}
export type ReuseMode = 'none' | 'prefix' | 'moves';

export interface CompletionParams {
  /** Key of the KV session (one per open document). */
  documentId: string;
  prompt: CompletionPrompt;
  /** Fill-in-the-middle when the model has FIM tokens (default true); prefix-only otherwise. */
  fim?: boolean;
  /** Default 128. */
  maxTokens?: number;
  /**
   * Per candidate (the first counts from the request's arrival): once spent, stop at the last
   * complete line if a newline was produced; stop regardless at twice this.
   */
  timeBudgetMs?: number;
  /** Stop when a generated line dedents below the cursor line's indentation (default true). */
  stopOnDedent?: boolean;
  /** Generation ends before the first occurrence of any of these. */
  stop?: string[];
  /** Alternatives to compute (default 1, at most 8): the i-th starts from the i-th best first token. */
  candidates?: number;
  /** KV cache reuse (default 'moves'); the others exist for benchmarks and checks. */
  reuse?: ReuseMode;
  /**
   * For showing a suggestion at once: each candidate ends at the end of its first line that has
   * text, or, when that line takes longer, once this many ms of decoding have produced some text
   * (stopReason 'line'). The caller asks for the rest with the text appended to the prefix.
   * Absent: no early end.
   */
  firstLineMs?: number;
}
/**
 * Why the first candidate ended: 'eog' an end token, 'length' maxTokens, 'stop' a stop rule (a
 * stop string, a dedent below the cursor line, text repeating what follows the cursor), 'budget'
 * the time budget, 'line' early at its first line (firstLineMs: more may follow).
 */
export type CompletionStopReason = 'eog' | 'length' | 'stop' | 'budget' | 'line';
export interface CompletionStats {
  promptTokens: number;
  /** prefixTokens + movedTokens. */
  reusedTokens: number;
  prefixTokens: number;
  movedTokens: number;
  evaluatedTokens: number;
  prefillMs: number;
  /** From the request's arrival to the first token of the first candidate. */
  timeToFirstTokenMs: number;
  /** Tokens generated over all candidates. */
  decodeTokens: number;
  decodeTokensPerS: number;
  totalMs: number;
  fim: boolean;
  /** Absent from engines before it was added. */
  stopReason?: CompletionStopReason;
}
export interface CompletionResult {
  /** Distinct texts, best first; the first may be '' (nothing to insert). */
  candidates: string[];
  stats: CompletionStats;
}
export const CompletionRequest = new RequestType<CompletionParams, CompletionResult, void>('completion/create');

// ---------------------------------------------------------------- chat

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
/** Defaults are the published SmallThinker chat settings; temperature 0 is greedy. */
export interface ChatSampling {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  /** Integer; absent: a random seed. */
  seed?: number;
}
export interface ChatParams extends PartialResultParams, WorkDoneProgressParams {
  /** Key of the KV session kept between turns; absent: a fresh session for this request. */
  conversationId?: string;
  messages: ChatMessage[];
  sampling?: ChatSampling;
  /** Default 1024 (less if the context has less room). */
  maxTokens?: number;
  /** Generation ends before the first occurrence of any of these. */
  stop?: string[];
}
/** The partial result of chat/create: the text generated since the last one. */
export interface ChatDelta {
  text: string;
}
export const ChatDeltaProgressType = new ProgressType<ChatDelta>();
/** What the engine knows about a chat prompt before evaluating it. */
export interface ChatPromptInfo {
  promptTokens: number;
  /** Leading prompt tokens already in the session's cache (reuse may find more further on). */
  cachedTokens: number;
  /** New tokens the answer may have: maxTokens, or fewer when the context has less room left. */
  maxTokens: number;
  /** Positions of the session. */
  contextLength: number;
}
/**
 * Work-done progress of chat/create on its workDoneToken: 'begin' (with `prompt`) once the prompt
 * is tokenized, before it is evaluated; 'report' once it was evaluated and generation starts; 'end'.
 */
export type ChatWorkDoneProgress = (WorkDoneProgressBegin & { prompt?: ChatPromptInfo }) | WorkDoneProgressReport | WorkDoneProgressEnd;
export const ChatWorkDoneProgressType = new ProgressType<ChatWorkDoneProgress>();
export interface ChatStats {
  promptTokens: number;
  reusedTokens: number;
  evaluatedTokens: number;
  prefillMs: number;
  timeToFirstTokenMs: number;
  decodeTokens: number;
  decodeTokensPerS: number;
}
/** 'cancelled': the engine stopped the generation itself (model unloaded, shutdown). */
export type ChatStopReason = 'eog' | 'length' | 'stop' | 'cancelled';
export interface ChatResult {
  text: string;
  stopReason: ChatStopReason;
  /** The seed the sampler used (give it back to reproduce the answer). */
  seed: number;
  stats: ChatStats;
}
export const ChatRequest = new RequestType<ChatParams, ChatResult, void>('chat/create');

// ---------------------------------------------------------------- context warming

export interface WarmParams {
  documentId: string;
  prompt: CompletionPrompt;
  fim?: boolean;
  /** The maxTokens of the completions to come: it sets how much of the context the prompt may use (default 128). */
  maxTokens?: number;
}
export interface WarmResult {
  promptTokens: number;
  evaluatedTokens: number;
  reusedTokens: number;
  ms: number;
}
export const WarmRequest = new RequestType<WarmParams, WarmResult, void>('context/warm');

// ---------------------------------------------------------------- tokenize and stats

export interface TokenizeParams {
  text: string;
  /** Turn special-token text such as <|im_start|> into its token (default false). */
  special?: boolean;
}
export interface TokenizeResult {
  tokens: number[];
}
export const TokenizeRequest = new RequestType<TokenizeParams, TokenizeResult, void>('tokenize');

export type SessionKind = 'completion' | 'chat' | 'request';
export interface SessionStats {
  id: string;
  kind: SessionKind;
  tokens: number;
  kvBytes: number;
  /** Milliseconds since the epoch. */
  lastUsed: number;
  busy: boolean;
}
export interface RequestCounts {
  completion: number;
  chat: number;
  warm: number;
  cancelled: number;
  failed: number;
  /** Times a running chat gave the engine to more urgent work. */
  preemptions: number;
  /** Sessions freed to stay under the memory limit. */
  evictions: number;
}
export interface EngineStatsResult {
  rssBytes: number;
  kvBytes: number;
  kvLimitBytes: number;
  sessions: SessionStats[];
  requests: RequestCounts;
  /** Under a memory budget: the expert cache since the load (per layer too); null without a budget. */
  experts: ExpertCacheSummary | null;
  cache: {
    prefillCalls: number;
    promptTokens: number;
    reusedTokens: number;
    /** reusedTokens / promptTokens (0 before any prefill). */
    hitRate: number;
  };
}
export interface ExpertCacheCounts {
  /** experts the forward passes asked for */
  uses: number;
  /** extents read from the layout file */
  reads: number;
  bytesRead: number;
  /** time the forward passes waited for extents still being read */
  stallMs: number;
}
export interface ExpertCacheSummary extends ExpertCacheCounts {
  budgetBytes: number;
  /** extents held at once, of `extents` in the model */
  capacity: number;
  extents: number;
  /** 1 - reads / uses (0 before any use) */
  hitRate: number;
  layers: ExpertCacheCounts[];
}
export const EngineStatsRequest = new RequestType0<EngineStatsResult, void>('engine/stats');

// Typed loader for the native engine addon (native/addon/): finds the package root,
// loads build/Release/moe_engine.node or a prebuild through node-gyp-build, and describes the
// addon's API in TypeScript. Every engine error is an Error with a string `code`.
import * as fs from 'node:fs';
import * as path from 'node:path';

// ---------------------------------------------------------------- types

export type LogitsMode = 'none' | 'last' | 'all';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type ChatRole = 'system' | 'user' | 'assistant';

/** Codes seen so far; the engine may add more. */
export type EngineErrorCode =
  | 'io'
  | 'bad_gguf'
  | 'unsupported_arch'
  | 'unsupported_type'
  | 'unsupported_model'
  | 'bad_input'
  | 'bad_token'
  | 'cancelled'
  | 'busy'
  | 'disposed'
  | 'bad_state'
  | 'out_of_memory'
  | 'internal'
  | (string & {});

export interface EngineError extends Error {
  code: EngineErrorCode;
}

export interface EngineInfo {
  version: string;
  /** The kernel set in use (MOE_FORCE_ISA can choose another supported one). */
  isa: string;
  /** Kernel sets this CPU can run. */
  isas: string[];
  /** Kernel sets compiled into the addon. */
  compiledIsas: string[];
  /** Model architectures (general.architecture) the engine runs. */
  architectures: string[];
  /** Weight types (ggml names) the engine computes with. */
  weightTypes: string[];
}

export interface LoadOptions {
  /** Tokenizer and metadata only: fast, and enough for tokenize/detokenize. */
  vocabOnly?: boolean;
  /** Relayout Q4_0, Q4_K and Q6_K matrices 16 rows per block at load (default true; the fast path). */
  repack?: boolean;
  /**
   * Keep the relaid-out matrices in a layout file in this folder: built at the first load,
   * mapped read-only (file-backed, shared, reclaimable) by later ones. Absent: relayout in memory.
   */
  layoutDir?: string;
  /** Called with the fraction written (0..1, once per percent) while the layout file is built. */
  onLayoutProgress?: (fraction: number) => void;
  /**
   * Aborting it stops the load: a layout file build stops within about a megabyte of writing
   * (its temporary file is removed, no in-memory relayout follows) and the promise rejects with
   * code 'cancelled'. Already aborted: rejects at once. A load past the relayout completes.
   */
  signal?: AbortSignal;
  /**
   * A memory budget for the whole process in MiB (0 or absent: none). Needs layoutDir: the experts
   * are read from the layout file into an expert cache of what the budget leaves after the other
   * weights and memoryReserveMB; below the minimum that can run, the load fails with code
   * 'budget_too_small' and a sentence naming the minimum.
   */
  memoryBudgetMB?: number;
  /** Under a budget: MiB kept aside for buffers and the runtime (0 or absent: 256). */
  memoryReserveMB?: number;
  /**
   * Under a budget: the KV caches' limit in MiB (0 or absent: one session of 4096 positions); they
   * get at most a quarter of the budget: info().memoryBudget.kvBytes.
   */
  kvLimitMB?: number;
}

/** The expert cache's counters (model.expertCacheStats()); uses: experts the forward passes asked for, reads: extents read. */
export interface ExpertCacheCounts {
  uses: number;
  reads: number;
  bytesRead: number;
  /** time the forward passes waited for extents still being read */
  stallMs: number;
}

export interface ExpertCacheStats {
  /** extents held at once, each slotBytes */
  capacity: number;
  slotBytes: number;
  /** extents (layer, expert) in the layout file */
  extents: number;
  /** O_DIRECT reads (false: buffered, dropped from the page cache after each read) */
  direct: boolean;
  /** which extent makes room: the least frequently used (default) or, with MOE_EXPERT_POLICY=lru, the least recently used */
  policy: 'lfu' | 'lru';
  /** how extents are read: "io_uring", or "N reader threads (why not io_uring)" */
  io: string;
  /** the use counts came from an earlier session (`<layout file>.uses`, written when the model is disposed) */
  profileLoaded: boolean;
  /** time the reader threads spent reading (summed over threads) */
  readMs: number;
  /** decoding: the next layer's experts guessed ahead (checked against what it used), extents read because of guesses, recent accuracy (reads ahead at >= 0.5) */
  guesses: number;
  guessedRight: number;
  guessReads: number;
  guessAccuracy: number;
  total: ExpertCacheCounts;
  layers: ExpertCacheCounts[];
}

export interface LayerInfo {
  attention: 'global' | 'window';
  rope: boolean;
  n_ff_exp: number;
}

/** Model.info(): parsed from the engine's info JSON (see Model::info_json in model.cpp). */
export interface ModelInfo {
  architecture: string;
  name: string;
  file: string;
  file_size: number;
  gguf_version: number;
  hparams: Record<string, number | boolean | string | number[]>;
  layers: LayerInfo[];
  /** Per ggml type name: how many tensors, and their bytes. */
  tensor_types: Record<string, number>;
  tensor_type_bytes: Record<string, number>;
  tensors: { name: string; type: string; shape: number[] }[];
  chat_template: boolean;
  /** bytes relaid out at load (16-row groups), and the time it took */
  repackedBytes: number;
  repackMs: number;
  /**
   * The layout file the relaid-out weights are mapped from ("" in memory), whether this load
   * built it, why an existing one was rebuilt, why none could be used (then: in memory).
   */
  /** hugePages: the share of the layout file mapped with 2 MB pages at load (0..1; 0 without a layout file) */
  layout: { file: string; built: boolean; rebuiltBecause: string; error: string; hugePages: number };
  /**
   * under a memory budget: the budget, the cache's slots at load (with the reserve and the KV share
   * set aside; it then grows into what the process leaves unused: expertCacheStats().capacity), and
   * the other weights' bytes (mapped); null without
   */
  memoryBudget: { bytes: number; cacheSlots: number; slotBytes: number; extents: number; residentBytes: number; kvBytes: number } | null;
  [key: string]: unknown;
}

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface SessionOptions {
  /** Maximum positions (default 4096). */
  nCtx?: number;
  /** Tokens per forward pass during prompt evaluation (default 512). */
  nBatch?: number;
  /** Worker threads; 0 or absent: hardware concurrency. */
  threads?: number;
}

/** Defaults are the published SmallThinker chat settings (native/engine/sampler.h). */
export interface SamplingOptions {
  /** Default 0.6; <= 0 is greedy (argmax, lowest id on ties). */
  temperature?: number;
  /** Default 20; <= 0 keeps all. */
  topK?: number;
  /** Default 0.95; 1 is off. */
  topP?: number;
  /** Default 0 (off). */
  minP?: number;
  /** Default 1 (off). */
  repeatPenalty?: number;
  /** Default 0 (off). */
  frequencyPenalty?: number;
  /** Default 0 (off). */
  presencePenalty?: number;
  /** Recent tokens the penalties look at; default 64, -1 all. */
  penaltyLastN?: number;
  /** Integer up to 2^53-1; absent: a random seed, returned in the result. */
  seed?: number;
}

export type TokenInput = Int32Array | Uint32Array | readonly number[];

/**
 * How prefill() reuses what the session already holds.
 * - 'none': recompute everything (the cache is cleared first);
 * - 'prefix': keep the longest common prefix of the cached and new tokens (llama.cpp's cache_prompt);
 * - 'moves' (default): also move cached runs of at least `minRun` equal tokens to their new
 *   positions (re-rotating K on RoPE layers; NoPE layers as they are), for insertions, deletions
 *   and replacements anywhere. The first `boundary` tokens of a moved run that follows new tokens
 *   are recomputed. Moved entries keep the conditioning of their old left context.
 */
export interface ReuseOptions {
  mode?: 'none' | 'prefix' | 'moves';
  minRun?: number;
  boundary?: number;
}

export interface PrefillStats {
  /** Tokens of the new prompt. */
  nPrompt: number;
  /** Leading tokens kept exactly (the common prefix). */
  nPrefix: number;
  /** Tokens whose cached entries were moved to a new position (or kept past an edit). */
  nMoved: number;
  /** Tokens evaluated by the model. */
  nEvaluated: number;
  /** Runs of moved tokens. */
  nMovedRuns: number;
  planMs: number;
  moveMs: number;
  evalMs: number;
  totalMs: number;
  /** The plan in words, e.g. "prefix 120, eval 7, move 57@+5, eval 1". */
  plan: string;
}

/** A sampler: sampling settings plus its own random state (so a paused generation resumes identically). */
export interface Sampler {
  readonly seed: number;
}

export interface Session {
  /**
   * Makes the session hold exactly `tokens` and the logits of the last one, reusing the cache as
   * `options.reuse` says. Rejects with code 'cancelled' on cancel() (checked between batches);
   * the session then holds a valid prefix of `tokens`, so calling prefill() again continues.
   */
  prefill(tokens: TokenInput, options?: { reuse?: ReuseOptions }): Promise<PrefillStats>;
  /**
   * Appends `token`, evaluates it, and (with a sampler) samples the next token from its logits,
   * penalties looking at the session's tokens. Resolves with that id, or -1 without a sampler.
   */
  step(token: number, sampler?: Sampler): Promise<number>;
  /** Samples from the logits of the last evaluated position (throws 'bad_state' if there are none). */
  sample(sampler: Sampler): number;
  /** The k highest logits of the last evaluated position, best first (ties: lower id first). */
  topTokens(k: number): { ids: Int32Array; logits: Float32Array };
  /** A copy of the logits of the last evaluated position, or null if there are none. */
  lastLogits(): Float32Array | null;
  /** Evaluates tokens after the cached ones; resolves with n_vocab floats per returned position. */
  eval(tokens: TokenInput, options?: { logits?: LogitsMode }): Promise<Float32Array>;
  /**
   * Stops the running eval or prefill between batches (it rejects with code 'cancelled'), or a
   * step that has not started evaluating yet.
   */
  cancel(): void;
  /** Drops cached positions >= n. Throws code 'bad_input' if a sliding-window cache cannot go back that far. */
  truncate(n: number): void;
  canTruncate(n: number): boolean;
  clear(): void;
  /** The cached token ids. */
  tokens(): Int32Array;
  /** Routing counts so far: [layer * n_expert + expert]. */
  expertCounts(): Float64Array;
  /** ReGLU sparsity so far: expert neuron evaluations whose gate was <= 0, out of all (and per layer); expert weight bytes read. */
  regluStats(): { zero: number; total: number; expertBytes: number; layers: { zero: number; total: number }[] };
  /** Frees the KV cache now (after the running operation, which is cancelled). */
  dispose(): void;
  readonly nPast: number;
  readonly nCtx: number;
  readonly kvBytes: number;
  readonly busy: boolean;
  readonly disposed: boolean;
}

/**
 * Generated ids to text one token at a time (Model.createDetokenizer), at the cost of the new
 * token only. The pieces push() and finish() return concatenate to Model.detokenize() of the
 * same ids (with the same `special`), for any ids.
 */
export interface Detokenizer {
  /**
   * Adds a token; returns the text that became final with it, possibly ''. An incomplete UTF-8
   * sequence at the end is held back until a later token completes it (or shows it broken:
   * then it becomes U+FFFD). Throws code 'bad_input' for an id outside the vocabulary.
   */
  push(id: number): string;
  /** What is still held back (an incomplete sequence, as U+FFFD), and starts over. */
  finish(): string;
}

export interface Model {
  info(): ModelInfo;
  /** Under a memory budget: the expert cache's statistics since the load; null without a budget. */
  expertCacheStats(): ExpertCacheStats | null;
  tokenize(text: string, options?: { special?: boolean }): Int32Array;
  /** Concatenated token texts; special (default true): control tokens such as <|im_end|> as their text, else ''. */
  detokenize(ids: TokenInput, options?: { special?: boolean }): string;
  /** An incremental detokenize() (special as there). Fails with code 'disposed' once the model is. */
  createDetokenizer(options?: { special?: boolean }): Detokenizer;
  /** Exact vocabulary lookup; -1 if absent. */
  tokenId(text: string): number;
  isEog(id: number): boolean;
  /** ChatML tokens for the messages; message text never becomes special tokens. */
  formatChat(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): Int32Array;
  createSession(options?: SessionOptions): Session;
  /** Frees the model and disposes its sessions (busy ones after their operation is cancelled). */
  dispose(): void;
  readonly nVocab: number;
  readonly nCtxTrain: number;
  readonly disposed: boolean;
}

export interface Addon {
  loadModel(path: string, options?: LoadOptions): Promise<Model>;
  engineInfo(): EngineInfo;
  /** Engine log lines go to stderr at or above this level (default 'warn', or $MOE_LOG_LEVEL). */
  setLogLevel(level: LogLevel): void;
  /** Kernel set for sessions created from now on (one of engineInfo().isas); returns the set in use. */
  setIsa(isa: string): string;
  /** A sampler with these settings (no seed: a random one, readable as sampler.seed). */
  createSampler(options?: SamplingOptions): Sampler;
  /**
   * Memory read bandwidth in GB/s (1e9 bytes/s): the best of 3 sums of a `bytes` buffer by
   * `threads` threads. Blocks for about a second; for benchmarks.
   */
  measureReadBandwidth(bytes: number, threads: number): number;
  /**
   * The same read over the first `maxBytes` of a file's pages, mapped as the engine maps its
   * layout files (shared, 2 MB pages where the system gives them): the speed of the memory the
   * page cache holds them in. Reads the file in if it is not cached; for benchmarks.
   */
  measureFileReadBandwidth(path: string, maxBytes: number, threads: number): number;
}

// ---------------------------------------------------------------- loading

const PACKAGE_NAME = 'smallthinker-code';

/** The package root: the nearest ancestor of this file with our package.json and binding.gyp. */
export function packageRoot(start: string = __dirname): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && fs.existsSync(path.join(dir, 'binding.gyp'))) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
      } catch {
        // unreadable package.json: keep looking
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`Cannot find the ${PACKAGE_NAME} package root above ${start}.`);
  }
}

export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

let cached: Addon | undefined;

/**
 * Loads the addon once. $MOE_ENGINE_ADDON may name a .node file to use instead of the
 * package's build/ or prebuilds/.
 */
export function loadAddon(): Addon {
  if (cached) return cached;
  const override = process.env.MOE_ENGINE_ADDON;
  if (override) {
    cached = require(path.resolve(override)) as Addon;
    return cached;
  }
  const root = packageRoot();
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    cached = nodeGypBuild(root) as Addon;
  } catch (err) {
    const e = new Error(
      `The native engine is not built (${(err as Error).message.split('\n')[0]}); run "npm install" or "npm run build:native" in ${root}.`,
    ) as EngineError;
    e.code = 'not_built';
    throw e;
  }
  return cached;
}

export function isEngineError(err: unknown): err is EngineError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

export function loadModel(file: string, options?: LoadOptions): Promise<Model> {
  return loadAddon().loadModel(file, options);
}

export function engineInfo(): EngineInfo {
  return loadAddon().engineInfo();
}

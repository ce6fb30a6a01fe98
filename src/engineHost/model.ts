// The loaded model of the engine process: the native Model, its pool of KV sessions, the
// greedy sampler completions share, and what the protocol reports about it (model/info).
import { ResponseError } from 'vscode-jsonrpc';

import {
  EngineErrorCodes,
  type ExpertCacheCounts,
  type ExpertCacheSummary,
  type ModelLoadParams,
  type ModelSummary,
} from '../common/protocol';
import { isEngineError, type Addon, type Model, type Sampler } from '../engine/native';
import { cancelledError } from './scheduler';
import { SessionPool, mib } from './sessions';

export const DEFAULT_CONTEXT_LENGTH = 4096;
export const DEFAULT_BATCH_SIZE = 512;
export const DEFAULT_KV_LIMIT_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_MAX_SESSIONS = 8;
/** Under a memory budget: MiB kept aside for buffers and the runtime, besides the KV caches. */
export const RUNTIME_RESERVE_MB = 256;
const MIB = 1024 * 1024;

/** Vocabulary entries that end a code completion besides the end-of-generation tokens. */
const COMPLETION_STOP_TEXTS = ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>', '<|im_start|>', '<|im_end|>', '<|endoftext|>'];
const FIM_TEXTS = ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>'];

export class LoadedModel {
  private constructor(
    readonly path: string,
    readonly model: Model,
    readonly pool: SessionPool,
    readonly summary: ModelSummary,
    /** Greedy: argmax, lowest id on ties; has no random state, so it is shared. */
    readonly greedy: Sampler,
    private readonly completionStops: ReadonlySet<number>,
  ) {}

  /**
   * Loads `params.path` and checks the session settings against the model and the memory limit.
   * Throws ResponseError ModelLoadFailed or InvalidParams with a sentence for the user; when
   * `signal` stops the load (a layout file build stops at once), its reason if that is a
   * ResponseError, else RequestCancelled.
   */
  static async load(
    addon: Addon,
    params: ModelLoadParams,
    onLayoutProgress?: (fraction: number) => void,
    signal?: AbortSignal,
  ): Promise<LoadedModel> {
    // Under a memory budget the engine keeps RUNTIME_RESERVE_MB aside for buffers and the runtime
    // and gives the KV caches their limit, at most a quarter of the budget (info().memoryBudget.kvBytes).
    const budgetMB = params.memoryBudgetMB ?? 0;
    const budget = {
      memoryBudgetMB: budgetMB,
      memoryReserveMB: RUNTIME_RESERVE_MB,
      kvLimitMB: Math.max(1, Math.floor((params.kvMemoryLimitBytes ?? DEFAULT_KV_LIMIT_BYTES) / MIB)),
    };
    let model: Model;
    try {
      model = await addon.loadModel(
        params.path,
        params.layoutDir
          ? { layoutDir: params.layoutDir, onLayoutProgress, signal, ...(budgetMB > 0 ? budget : {}) }
          : { signal, ...(budgetMB > 0 ? budget : {}) },
      );
    } catch (err) {
      const code = isEngineError(err) ? err.code : 'internal';
      if (code === 'cancelled') throw signal?.reason instanceof ResponseError ? signal.reason : cancelledError();
      const detail = err instanceof Error ? err.message.replace(/\.$/, '') : String(err);
      const hint =
        code === 'budget_too_small'
          ? 'raise the memory budget or choose a smaller model'
          : code === 'io' && /not a regular file/.test(detail)
            ? 'choose a GGUF model file'
            : code === 'io'
              ? 'check that the file exists and is readable'
              : 'choose a SmallThinker GGUF file';
      throw new ResponseError(EngineErrorCodes.ModelLoadFailed, `Cannot load the model ${params.path}: ${detail}; ${hint}.`, { code });
    }
    try {
      const info = model.info();
      const nCtxTrain = Math.max(1, model.nCtxTrain);
      const nCtx = Math.min(params.contextLength ?? DEFAULT_CONTEXT_LENGTH, nCtxTrain);
      const nBatch = Math.min(params.batchSize ?? DEFAULT_BATCH_SIZE, nCtx);
      const kvLimitBytes = info.memoryBudget ? info.memoryBudget.kvBytes : (params.kvMemoryLimitBytes ?? DEFAULT_KV_LIMIT_BYTES);
      const maxSessions = params.maxSessions ?? DEFAULT_MAX_SESSIONS;
      const pool = new SessionPool(model, { nCtx, nBatch, threads: params.threads, kvLimitBytes, maxSessions });
      const perSession = pool.measureSessionBytes();
      if (perSession > kvLimitBytes) {
        throw new ResponseError(
          EngineErrorCodes.InvalidParams,
          `kvMemoryLimitBytes (${mib(kvLimitBytes)}) is smaller than the KV cache of one session ` +
            `(${mib(perSession)} at a context length of ${nCtx}); raise the limit or lower contextLength.`,
        );
      }
      const ids = (texts: string[]) => texts.map((t) => model.tokenId(t)).filter((id) => id >= 0);
      const hp = info.hparams;
      const summary: ModelSummary = {
        architecture: info.architecture,
        name: info.name,
        n_layer: Number(hp.n_layer),
        n_vocab: model.nVocab,
        n_ctx_train: model.nCtxTrain,
        context: nCtx,
        fim: ids(FIM_TEXTS).length === FIM_TEXTS.length,
        chat: info.chat_template === true,
        fileSize: info.file_size,
        layout: { file: info.layout.file, built: info.layout.built, error: info.layout.error },
        ...(info.memoryBudget
          ? {
              memoryBudget: {
                bytes: info.memoryBudget.bytes,
                cacheSlots: info.memoryBudget.cacheSlots,
                extents: info.memoryBudget.extents,
                residentBytes: info.memoryBudget.residentBytes,
              },
            }
          : {}),
      };
      const greedy = addon.createSampler({ temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1 });
      return new LoadedModel(params.path, model, pool, summary, greedy, new Set(ids(COMPLETION_STOP_TEXTS)));
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /** The expert cache's statistics under a memory budget (null without). */
  expertStats(): ExpertCacheSummary | null {
    const st = this.model.expertCacheStats();
    const budget = this.summary.memoryBudget;
    if (!st || !budget) return null;
    const counts = (c: ExpertCacheCounts): ExpertCacheCounts => ({
      uses: c.uses,
      reads: c.reads,
      bytesRead: c.bytesRead,
      stallMs: c.stallMs,
    });
    return {
      ...counts(st.total),
      budgetBytes: budget.bytes,
      capacity: st.capacity,
      extents: st.extents,
      hitRate: st.total.uses > 0 ? Math.max(0, 1 - st.total.reads / st.total.uses) : 0,
      layers: st.layers.map(counts),
    };
  }

  get disposed(): boolean {
    return this.model.disposed;
  }

  /** Tokens that end a code completion (end of generation, FIM and ChatML markers). */
  endsCompletion(id: number): boolean {
    return this.completionStops.has(id) || this.model.isEog(id);
  }

  /** Frees every session, then the model. */
  dispose(): void {
    if (this.model.disposed) return;
    this.pool.disposeAll();
    this.model.dispose();
  }
}

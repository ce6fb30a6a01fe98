// llama.cpp as the reference ("oracle"), through node-llama-cpp's prebuilt CPU binary: raw
// logits per position, tokenization and greedy decoding on a GGUF file. Test-only.
// One Llama instance per process; contexts use the non-flash attention path (F16 KV cache).

import { readGgufHeader } from './gguf';

import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp' with { 'resolution-mode': 'import' };

export interface OracleOptions {
  /** context size in tokens (default 512) */
  contextSize?: number;
  /** CPU threads (default 2) */
  threads?: number;
  /** tokens per llama_decode call (default: contextSize, so a prompt is one batch) */
  batchSize?: number;
  /** keep the full KV cache on sliding-window layers (default false, like llama.cpp) */
  swaFullCache?: boolean;
}

export interface LogitsOptions {
  /** logits of every position (default: the last position only) */
  all?: boolean;
}

export interface GreedyOptions {
  /** stop after an end-of-generation token (default false: always n tokens) */
  stopAtEog?: boolean;
}

export interface Oracle {
  readonly modelPath: string;
  readonly contextSize: number;
  /** vocabulary size (length of every logits row) */
  readonly nVocab: number;
  tokenize(text: string, opts?: { special?: boolean }): number[];
  detokenize(ids: readonly number[], opts?: { special?: boolean }): string;
  /**
   * Raw logits, from an empty context, in one evaluation of the whole list: one row for the
   * last position, or one per position with {all: true}.
   */
  logits(tokens: readonly number[], opts?: LogitsOptions): Promise<Float32Array[]>;
  /** Greedy decoding (no penalties) after `tokens`, from an empty context: n new token ids. */
  greedy(tokens: readonly number[], n: number, opts?: GreedyOptions): Promise<number[]>;
  /** Whether `id` is an end-of-generation token for this model. */
  isEog(id: number): boolean;
  close(): Promise<void>;
}

type NodeLlamaCpp = typeof import('node-llama-cpp', { with: { 'resolution-mode': 'import' } });

let modulePromise: Promise<NodeLlamaCpp> | undefined;
let llamaPromise: Promise<Llama> | undefined;

/** The node-llama-cpp module (an ES module, loaded with a real dynamic import). */
export function loadNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  modulePromise ??= import('node-llama-cpp');
  return modulePromise;
}

/** The process-wide Llama instance: CPU only, prebuilt binary, never builds or downloads. */
export function getOracleLlama(): Promise<Llama> {
  llamaPromise ??= loadNodeLlamaCpp().then((m) =>
    m.getLlama({
      gpu: false,
      build: 'never',
      usePrebuiltBinaries: true,
      skipDownload: true,
      progressLogs: false,
      logLevel: m.LlamaLogLevel.error,
    }),
  );
  return llamaPromise;
}

export async function openOracle(modelPath: string, opts: OracleOptions = {}): Promise<Oracle> {
  const llama = await getOracleLlama();
  const contextSize = opts.contextSize ?? 512;
  const model: LlamaModel = await llama.loadModel({ modelPath, gpuLayers: 0 });
  let context: LlamaContext;
  try {
    context = await model.createContext({
      contextSize,
      batchSize: opts.batchSize ?? contextSize,
      threads: opts.threads ?? 2,
      flashAttention: false,
      sequences: 1,
      swaFullCache: opts.swaFullCache ?? false,
      // fail instead of silently shrinking the context
      failedCreationRemedy: false,
    });
  } catch (err) {
    await model.dispose();
    throw err;
  }
  const sequence: LlamaContextSequence = context.getSequence();
  const tokensKv = readGgufHeader(modelPath, { arrays: false }).kv.find((e) => e.key === 'tokenizer.ggml.tokens');
  let nVocab = tokensKv?.length ?? 0;
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();

  // evaluations on one sequence must not interleave
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const checkTokens = (tokens: readonly number[], extra: number) => {
    if (closed) throw new Error('oracle is closed');
    if (tokens.length === 0) throw new Error('oracle: empty token list');
    if (tokens.length + extra > contextSize) {
      throw new Error(`oracle: ${tokens.length + extra} tokens do not fit the context of ${contextSize}`);
    }
  };

  const toRow = (m: Map<Token, number>): Float32Array => {
    if (nVocab === 0) nVocab = m.size; // no token list in the file
    if (m.size !== nVocab) throw new Error(`oracle: got ${m.size} logits, expected ${nVocab}`);
    const row = new Float32Array(nVocab);
    row.fill(Number.NaN);
    for (const [tok, v] of m) row[tok] = v;
    return row;
  };

  const oracle: Oracle = {
    modelPath,
    contextSize,
    get nVocab() {
      return nVocab;
    },
    tokenize(text, o) {
      return model.tokenize(text, o?.special ?? false).map(Number);
    },
    detokenize(ids, o) {
      return model.detokenize(ids as Token[], o?.special ?? false);
    },
    logits(tokens, o) {
      return serial(async () => {
        checkTokens(tokens, 0);
        await sequence.clearHistory();
        const all = o?.all ?? false;
        const last = tokens.length - 1;
        const input = tokens.map((t, i) =>
          all || i === last
            ? ([t as Token, { generateNext: { logits: true } }] as [Token, { generateNext: { logits: true } }])
            : (t as Token),
        );
        const res = await sequence.controlledEvaluate(input);
        const rows: Float32Array[] = [];
        for (let i = 0; i < tokens.length; i++) {
          if (!all && i !== last) continue;
          const lg = res[i]?.next.logits;
          if (!lg) throw new Error(`oracle: no logits for position ${i}`);
          rows.push(toRow(lg));
        }
        return rows;
      });
    },
    greedy(tokens, n, o) {
      return serial(async () => {
        checkTokens(tokens, n);
        await sequence.clearHistory();
        const out: number[] = [];
        const want = { generateNext: { token: true } } as const;
        let input: Array<Token | [Token, typeof want]> = tokens.map((t, i) =>
          i === tokens.length - 1 ? [t as Token, want] : (t as Token),
        );
        while (out.length < n) {
          const res = await sequence.controlledEvaluate(input);
          const next = res[input.length - 1]?.next.token;
          if (next === undefined || next === null) throw new Error('oracle: no token generated');
          out.push(next);
          if (o?.stopAtEog && model.isEogToken(next)) break;
          input = [[next, want]];
        }
        return out;
      });
    },
    isEog(id) {
      return model.isEogToken(id as Token);
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue.catch(() => undefined);
      sequence.dispose();
      await context.dispose();
      await model.dispose();
    },
  };
  return oracle;
}

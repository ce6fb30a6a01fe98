// One measurement of `npm run bench` in a process of its own, so that load time and peak memory
// belong to one engine: loads the model with our engine or llama.cpp (node-llama-cpp), runs a
// warm-up prompt, a timed prompt, the first sampled token and a timed decode, and prints a JSON
// result on stdout after RESULT_MARKER. Progress goes to stderr. Started by scripts/bench.ts.
import * as fs from 'node:fs';

import { loadAddon, type ExpertCacheCounts, type Sampler, type Session } from '../src/engine/native';

import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp' with { 'resolution-mode': 'import' };

export const RESULT_MARKER = '@@bench-result@@ ';

/** ours-free: our engine without a memory budget or limit (bench:memory's in-memory reference) */
export type EngineName = 'ours' | 'llama' | 'ours-free';

/** What bench.ts asks a worker to do (written to a JSON file, passed as --request). */
export interface WorkerRequest {
  model: string;
  threads: number;
  /** positions of the session / context */
  nCtx: number;
  /** tokens per forward pass while evaluating a prompt */
  nBatch: number;
  /** the warm-up prompt (its time is reported as the first prompt) */
  warmup: number[];
  /** the timed prompt */
  prompt: number[];
  /** tokens fed one at a time during decoding (from a seeded RNG, not the sampled ones) */
  decode: number[];
  /** ours: the layout-file folder (LoadOptions.layoutDir); absent: relayout in memory */
  layoutDir?: string;
  /** ours (not ours-free): LoadOptions.memoryBudgetMB */
  memoryBudgetMB?: number;
}

/** CPU time of the whole machine and of this process, in jiffies (USER_HZ, 100/s on Linux). */
interface CpuSnapshot {
  wallMs: number;
  busy: number;
  self: number;
}

export interface PhaseLoad {
  wallMs: number;
  /** cores' worth of busy time not spent by this process (steal included) */
  otherCores: number;
  /** cores' worth of busy time spent by this process */
  selfCores: number;
}

export interface WorkerResult {
  engine: EngineName;
  ok: true;
  /** the engine's identity: our version and kernel set, or llama.cpp's release and CPU features */
  engineDetail: string;
  /** loading the addon / node-llama-cpp's getLlama (not part of loadMs) */
  initMs: number;
  /** loading the model and creating the session (ours) or context (llama.cpp) */
  loadMs: number;
  /** the warm-up prompt: evaluation plus the first sampled token, page faults of the weights included */
  firstPromptMs: number;
  nPrompt: number;
  /** evaluating the timed prompt up to the last position's logits (llama.cpp: the first sample included) */
  promptMs: number;
  promptTokensPerS: number;
  /** prompt evaluation plus the first sampled token */
  ttftMs: number;
  nDecode: number;
  decodeMs: number;
  decodeTokensPerS: number;
  memory: { vmHwmKiB: number; vmRssKiB: number; rssAnonKiB: number; rssFileKiB: number; rssShmemKiB: number };
  load: { load: PhaseLoad; warmup: PhaseLoad; prompt: PhaseLoad; decode: PhaseLoad; total: PhaseLoad };
  /** ours: routing counts [layer * nExpert + expert] during the timed prompt and the decode */
  experts: { nLayer: number; nExpert: number; nUsed: number; prompt: number[]; decode: number[] } | null;
  /** ours, when the addon has Session.regluStats(): gate values <= 0 during the decode / the timed prompt */
  reglu: { decode: RegluStats; prompt: RegluStats } | null;
  /** ours under a memory budget: the expert cache during the first prompt, the timed prompt and the decode */
  expertCache: {
    budgetBytes: number;
    capacity: number;
    /** slots after the decode: the cache grows into what the process leaves unused */
    finalCapacity: number;
    extents: number;
    firstPrompt: ExpertCacheCounts;
    prompt: ExpertCacheCounts;
    decode: ExpertCacheCounts;
  } | null;
  /** the first sampled token and the last one (a check that the engines agree on greedy argmax) */
  firstToken: number;
  kvBytes: number | null;
  /** ours with a layout file: the share of it mapped with 2 MB pages at load (0..1), else null */
  layoutHugePages: number | null;
}

export interface WorkerFailure {
  engine: EngineName;
  ok: false;
  error: string;
}

// ---------------------------------------------------------------- /proc

function readProcStatus(): WorkerResult['memory'] {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  const kib = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return {
    vmHwmKiB: kib('VmHWM'),
    vmRssKiB: kib('VmRSS'),
    rssAnonKiB: kib('RssAnon'),
    rssFileKiB: kib('RssFile'),
    rssShmemKiB: kib('RssShmem'),
  };
}

function cpuSnapshot(): CpuSnapshot {
  const wallMs = performance.now();
  const stat = fs.readFileSync('/proc/stat', 'utf8');
  const cpu = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + (cpu[7] ?? 0);
  const own = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = own.slice(own.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15
  const self = Number(fields[11]) + Number(fields[12]);
  return { wallMs, busy, self };
}

const HZ = 100;

function phaseLoad(a: CpuSnapshot, b: CpuSnapshot): PhaseLoad {
  const wallS = Math.max(1e-3, (b.wallMs - a.wallMs) / 1000);
  const self = (b.self - a.self) / HZ;
  const other = Math.max(0, (b.busy - a.busy) / HZ - self);
  return { wallMs: b.wallMs - a.wallMs, otherCores: other / wallS, selfCores: self / wallS };
}

// ---------------------------------------------------------------- the engines

interface Harness {
  detail: string;
  /** evaluates the tokens from an empty cache; returns ms to the last logits, and the first sampled token */
  prompt(tokens: number[]): Promise<{ evalMs: number; totalMs: number; first: number }>;
  /** appends one token, evaluates it and samples greedily */
  step(token: number): Promise<number>;
  clear(): Promise<void>;
  expertCounts(): Float64Array | null;
  reglu(): RegluStats | null;
  kvBytes(): number | null;
  layoutHugePages(): number | null;
  /** layers, experts and experts per token (ours) */
  expertShape(): { nLayer: number; nExpert: number; nUsed: number } | null;
  /** ours under a memory budget: the next-layer guesses so far */
  guesses(): { guesses: number; guessedRight: number; guessReads: number } | null;
  /** ours under a memory budget: the expert cache's totals so far, its size */
  expertCache(): { counts: ExpertCacheCounts; budgetBytes: number; capacity: number; extents: number } | null;
}

/** gate values <= 0 out of all; expert weight bytes read (0 from builds that do not count them) */
export interface RegluStats {
  zero: number;
  total: number;
  expertBytes: number;
  /** per layer (builds of the addon before it: absent) */
  layers?: { zero: number; total: number }[];
}
type RegluFn = () => RegluStats;

async function openOurs(req: WorkerRequest, log: (s: string) => void): Promise<{ h: Harness; initMs: number; loadMs: number }> {
  const t0 = performance.now();
  const addon = loadAddon();
  const info = addon.engineInfo();
  const t1 = performance.now();
  const budget = req.memoryBudgetMB && req.layoutDir ? { memoryBudgetMB: req.memoryBudgetMB } : {};
  const model = await addon.loadModel(req.model, req.layoutDir ? { layoutDir: req.layoutDir, ...budget } : {});
  const mb = model.info().memoryBudget;
  if (mb)
    log(
      `ours: memory budget ${(mb.bytes / 2 ** 20).toFixed(0)} MiB: ${mb.cacheSlots} of ${mb.extents} expert extents cached, ` +
        `${(mb.residentBytes / 2 ** 20).toFixed(0)} MiB of other weights, ${(mb.kvBytes / 2 ** 20).toFixed(0)} MiB for KV caches`,
    );
  const layout = model.info().layout;
  if (layout.built) log(`ours: WARNING: this load built the layout file ${layout.file} (the bench builds it before the runs)`);
  if (layout.error) log(`ours: no layout file (${layout.error}): relaid out in memory`);
  else if (layout.file && layout.hugePages < 0.5)
    log(`ours: only ${(100 * layout.hugePages).toFixed(0)}% of the layout file mapped with 2 MB pages (decode is slower with 4 KB pages)`);
  const session: Session = model.createSession({ nCtx: req.nCtx, nBatch: req.nBatch, threads: req.threads });
  const t2 = performance.now();
  log(`ours: engine ${info.version}, kernels ${info.isa}; loaded in ${(t2 - t1).toFixed(0)} ms`);
  const sampler: Sampler = addon.createSampler({ temperature: 0 });
  // Session.regluStats() is newer than some builds of the addon: feature-detect it.
  const regluFn = (session as unknown as { regluStats?: unknown }).regluStats;
  const reglu = typeof regluFn === 'function' ? (regluFn as RegluFn).bind(session) : null;
  const h: Harness = {
    detail: `moe-engine ${info.version} (${info.isa})`,
    async prompt(tokens) {
      const a = performance.now();
      await session.prefill(tokens, { reuse: { mode: 'none' } });
      const b = performance.now();
      const first = session.sample(sampler);
      const c = performance.now();
      return { evalMs: b - a, totalMs: c - a, first };
    },
    step: (token) => session.step(token, sampler),
    async clear() {
      session.clear();
    },
    expertCounts: () => session.expertCounts(),
    reglu: () => (reglu ? reglu() : null),
    kvBytes: () => session.kvBytes,
    layoutHugePages: () => (layout.file && !layout.error ? layout.hugePages : null),
    expertShape() {
      const hp = model.info().hparams;
      return { nLayer: Number(hp.n_layer), nExpert: Number(hp.n_expert), nUsed: Number(hp.n_expert_used) };
    },
    guesses() {
      const st = model.expertCacheStats();
      return st ? { guesses: st.guesses, guessedRight: st.guessedRight, guessReads: st.guessReads } : null;
    },
    expertCache() {
      const st = model.expertCacheStats();
      return st && mb ? { counts: st.total, budgetBytes: mb.bytes, capacity: st.capacity, extents: st.extents } : null;
    },
  };
  return { h, initMs: t1 - t0, loadMs: t2 - t1 };
}

async function openLlama(req: WorkerRequest, log: (s: string) => void): Promise<{ h: Harness; initMs: number; loadMs: number }> {
  const t0 = performance.now();
  const m = await import('node-llama-cpp');
  const llama: Llama = await m.getLlama({
    gpu: false,
    build: 'never',
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    maxThreads: req.threads,
    logLevel: m.LlamaLogLevel.error,
  });
  const t1 = performance.now();
  // node-llama-cpp's defaults otherwise (mmap, Q4_0 repacking, flash attention "auto")
  const model: LlamaModel = await llama.loadModel({ modelPath: req.model, gpuLayers: 0 });
  const context: LlamaContext = await model.createContext({
    contextSize: req.nCtx,
    batchSize: req.nBatch,
    threads: req.threads,
    sequences: 1,
  });
  const sequence: LlamaContextSequence = context.getSequence();
  const t2 = performance.now();
  const rel = llama.llamaCppRelease;
  log(`llama: llama.cpp ${rel.release} (${llama.buildType}); loaded in ${(t2 - t1).toFixed(0)} ms`);
  const want = { generateNext: { token: true, options: { temperature: 0 } } } as const;
  const h: Harness = {
    detail: `llama.cpp ${rel.release} via node-llama-cpp (${llama.buildType})`,
    async prompt(tokens) {
      const a = performance.now();
      const last = tokens.length - 1;
      const res = await sequence.controlledEvaluate(
        tokens.map((t, i) => (i === last ? ([t as Token, want] as [Token, typeof want]) : (t as Token))),
      );
      const b = performance.now();
      const first = res[last]?.next.token;
      if (first === undefined || first === null) throw new Error('llama.cpp returned no token after the prompt');
      return { evalMs: b - a, totalMs: b - a, first };
    },
    async step(token) {
      const res = await sequence.controlledEvaluate([[token as Token, want]]);
      const next = res[0]?.next.token;
      if (next === undefined || next === null) throw new Error('llama.cpp returned no token');
      return next;
    },
    clear: () => sequence.clearHistory(),
    expertCounts: () => null,
    reglu: () => null,
    kvBytes: () => null,
    layoutHugePages: () => null,
    expertShape: () => null,
    expertCache: () => null,
    guesses: () => null,
  };
  return { h, initMs: t1 - t0, loadMs: t2 - t1 };
}

// ---------------------------------------------------------------- the measurement

const sub = (a: Float64Array | null, b: Float64Array | null): number[] | null => (a && b ? Array.from(b, (x, i) => x - a[i]) : null);
const subReglu = (a: RegluStats | null, b: RegluStats | null): RegluStats | null =>
  a && b
    ? {
        zero: b.zero - a.zero,
        total: b.total - a.total,
        expertBytes: (b.expertBytes ?? 0) - (a.expertBytes ?? 0),
        layers: b.layers?.map((l, i) => ({ zero: l.zero - (a.layers?.[i]?.zero ?? 0), total: l.total - (a.layers?.[i]?.total ?? 0) })),
      }
    : null;

async function measure(engine: EngineName, req: WorkerRequest): Promise<WorkerResult> {
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const c0 = cpuSnapshot();
  const opened =
    engine === 'llama' ? await openLlama(req, log) : await openOurs(engine === 'ours' ? req : { ...req, memoryBudgetMB: undefined }, log);
  const { h } = opened;
  const c1 = cpuSnapshot();

  const x0 = h.expertCache();
  const warm = await h.prompt(req.warmup);
  const x1 = h.expertCache();
  log(`${engine}: first prompt (${req.warmup.length} tokens, page faults included) ${(warm.totalMs / 1000).toFixed(2)} s`);
  await h.clear();
  const c2 = cpuSnapshot();

  const e0 = h.expertCounts();
  const r0 = h.reglu();
  const x2 = h.expertCache();
  const p = await h.prompt(req.prompt);
  const x3 = h.expertCache();
  const e1 = h.expertCounts();
  const r1 = h.reglu();
  const c3 = cpuSnapshot();
  const ppTps = (req.prompt.length * 1000) / p.evalMs;
  log(
    `${engine}: prompt ${req.prompt.length} tokens in ${(p.evalMs / 1000).toFixed(2)} s = ${ppTps.toFixed(1)} tokens/s, first token after ${p.totalMs.toFixed(0)} ms`,
  );

  const every = Math.max(1, Math.ceil(req.decode.length / 4));
  const d0 = performance.now();
  for (let i = 0; i < req.decode.length; i++) {
    await h.step(req.decode[i]);
    if ((i + 1) % every === 0 && i + 1 < req.decode.length) {
      log(`${engine}: decoded ${i + 1}/${req.decode.length}, ${(((i + 1) * 1000) / (performance.now() - d0)).toFixed(1)} tokens/s so far`);
    }
  }
  const decodeMs = performance.now() - d0;
  const c4 = cpuSnapshot();
  const e2 = h.expertCounts();
  const r2 = h.reglu();
  const x4 = h.expertCache();
  const counts = (a: ExpertCacheCounts, b: ExpertCacheCounts): ExpertCacheCounts => ({
    uses: b.uses - a.uses,
    reads: b.reads - a.reads,
    bytesRead: b.bytesRead - a.bytesRead,
    stallMs: b.stallMs - a.stallMs,
  });
  const expertCache: WorkerResult['expertCache'] =
    x0 && x1 && x2 && x3 && x4
      ? {
          budgetBytes: x0.budgetBytes,
          capacity: x0.capacity,
          finalCapacity: x4.capacity,
          extents: x0.extents,
          firstPrompt: counts(x0.counts, x1.counts),
          prompt: counts(x2.counts, x3.counts),
          decode: counts(x3.counts, x4.counts),
        }
      : null;
  if (expertCache) {
    const d = expertCache.decode;
    const g = h.guesses();
    if (g)
      log(
        `${engine}: next-layer guesses ${g.guesses}, ${g.guesses ? ((100 * g.guessedRight) / g.guesses).toFixed(0) : '-'}% right, ${g.guessReads} reads`,
      );
    log(
      `${engine}: expert cache during the decode: ${d.uses ? (100 * (1 - d.reads / d.uses)).toFixed(1) : '-'}% hits, ` +
        `${(d.bytesRead / 1e6 / Math.max(1, req.decode.length)).toFixed(0)} MB read and ${(d.stallMs / Math.max(1, req.decode.length)).toFixed(1)} ms waited per token`,
    );
  }
  const tgTps = (req.decode.length * 1000) / decodeMs;
  log(`${engine}: decode ${req.decode.length} tokens in ${(decodeMs / 1000).toFixed(2)} s = ${tgTps.toFixed(1)} tokens/s`);

  let experts: WorkerResult['experts'] = null;
  const promptCounts = sub(e0, e1);
  const decodeCounts = sub(e1, e2);
  const shape = h.expertShape();
  if (shape && promptCounts && decodeCounts) experts = { ...shape, prompt: promptCounts, decode: decodeCounts };
  const rp = subReglu(r0, r1);
  const rd = subReglu(r1, r2);
  return {
    engine,
    ok: true,
    engineDetail: h.detail,
    initMs: opened.initMs,
    loadMs: opened.loadMs,
    firstPromptMs: warm.totalMs,
    nPrompt: req.prompt.length,
    promptMs: p.evalMs,
    promptTokensPerS: ppTps,
    ttftMs: p.totalMs,
    nDecode: req.decode.length,
    decodeMs,
    decodeTokensPerS: tgTps,
    memory: readProcStatus(),
    load: {
      load: phaseLoad(c0, c1),
      warmup: phaseLoad(c1, c2),
      prompt: phaseLoad(c2, c3),
      decode: phaseLoad(c3, c4),
      total: phaseLoad(c0, c4),
    },
    experts,
    reglu: rp && rd ? { prompt: rp, decode: rd } : null,
    expertCache,
    firstToken: p.first,
    kvBytes: h.kvBytes(),
    layoutHugePages: h.layoutHugePages(),
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const engine = arg('--engine') as EngineName | undefined;
  const reqFile = arg('--request');
  if ((engine !== 'ours' && engine !== 'llama' && engine !== 'ours-free') || !reqFile) {
    process.stderr.write('usage: benchWorker --engine ours|ours-free|llama --request FILE (started by scripts/bench.ts)\n');
    process.exit(2);
  }
  const req = JSON.parse(fs.readFileSync(reqFile, 'utf8')) as WorkerRequest;
  let out: WorkerResult | WorkerFailure;
  try {
    out = await measure(engine, req);
  } catch (err) {
    out = { engine, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
  process.stdout.write(`${RESULT_MARKER}${JSON.stringify(out)}\n`, () => process.exit(out.ok ? 0 : 1));
}

if (require.main === module) void main();

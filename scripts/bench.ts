// `npm run bench`: our engine against llama.cpp (node-llama-cpp 3.22.1, default settings) on the
// same generated GGUF with the real SmallThinker shapes and varied routing, same thread count,
// alternating engines, each measurement in a fresh process (scripts/benchWorker.ts). Prints
// min/median/max per metric, our/llama.cpp ratios per pair, the expert use and ReGLU sparsity of
// our decode and the memory-bandwidth ceiling (from the read bandwidth measured at the start with
// the same thread count, or --bandwidth), and writes everything as JSON.
// --type: a llama-quantize file type (q4_0, q4_k_m, q5_k_m, q6_k, iq4_xs, ...: the generated
// model, Q8_0 for the 4B and Q4_0 for the 21B, requantized by llama.cpp's own quantizer, so the
// file has the type mix users download, e.g. Q4_0 with its Q6_K output), or gen-q4_0 / gen-q8_0
// (our generator's files, every matrix in one type). Default q4_0.
//
// Usage: npm run bench -- [--shape 4b|21b] [--type q4_0|q4_k_m|...|gen-q4_0|gen-q8_0] [--model FILE] [--threads 2]
//   [--runs 3] [--pp 512] [--tg 128] [--engines ours,llama] [--json FILE] [--seed 1]
//   [--bandwidth GB/s] [--noisy 0.2] [--drop-noisy] [--settle 60] [--repeat-noisy 2] [--layout DIR|none]
// --layout: our engine maps its relaid-out weights from a layout file in DIR (default
// ~/.cache/smallthinker-code/layouts, as the extension does), built once before the runs and
// reported separately; `none` relays them out in memory at every load.
// Before each run it waits (up to --settle seconds) for other processes to go quiet; a run during
// which other processes used more than --noisy cores is flagged and repeated (up to --repeat-noisy
// times; the repeated ones stay in the JSON and are counted); runs still noisy are kept in the
// table and counted (--drop-noisy leaves them out).
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { loadAddon, loadModel, packageRoot } from '../src/engine/native';
import {
  SMALLTHINKER_21B,
  SMALLTHINKER_4B,
  ensureModel,
  normalizeSpec,
  weightCount,
  type ModelSpec,
  type WeightTypeName,
} from '../test/support/fixtures';
import { fixtureCacheDir } from '../test/support/cache';
import { readGgufHeader, type GgufHeader } from '../test/support/gguf';
import { LLAMA_FTYPE, type LlamaFtype, quantizeWithLlama } from '../test/support/llamaQuantize';
import { Rng } from '../test/support/rng';
import {
  commandInGroups,
  createGroups,
  dropFromPageCache,
  finishGroups,
  forgetUsageProfiles,
  layoutFiles,
  limitsUnavailable,
  THROTTLES,
  type GroupReport,
  type ThrottleName,
} from './benchLimits';
import { RESULT_MARKER, type EngineName, type RegluStats, type WorkerFailure, type WorkerRequest, type WorkerResult } from './benchWorker';

// ---------------------------------------------------------------- options

interface Options {
  shape: '4b' | '21b';
  /** a llama-quantize ftype (lowercase) or gen-q4_0 / gen-q8_0 */
  type: string;
  model: string | undefined;
  threads: number;
  runs: number;
  pp: number;
  tg: number;
  engines: EngineName[];
  json: string | undefined;
  seed: number;
  /** memory read bandwidth for the ceiling; undefined: measured at the start */
  bandwidthGBs: number | undefined;
  noisyCores: number;
  dropNoisy: boolean;
  settleS: number;
  repeatNoisy: number;
  /** layout-file folder for our engine, or undefined: relayout in memory */
  layoutDir: string | undefined;
  routing: 'varied' | 'skewed';
  /** the generated file's ReGLU sparsity: 'random' (about half) or 'realistic' (the released models') */
  sparsity: 'random' | 'realistic';
  /** each worker (but ours-free) in a cgroup v1 memory limit of this many MiB */
  memoryLimitMB: number | undefined;
  /** ours: LoadOptions.memoryBudgetMB (default: the memory limit) */
  budgetMB: number | undefined;
  throttle: ThrottleName;
  /** drop the model and layout files from the page cache before every run */
  cold: boolean;
}

const USAGE = `usage: npm run bench -- [--shape 4b|21b] [--type q4_0|q4_k_m|...|gen-q4_0|gen-q8_0] [--model FILE] [--threads N] [--runs N]
       [--pp N] [--tg N] [--engines ours,llama] [--json FILE] [--seed N] [--bandwidth GB/s] [--noisy CORES] [--drop-noisy] [--settle S] [--repeat-noisy N]
       [--layout DIR|none] [--routing varied|skewed] [--sparsity random|realistic] [--memory] [--memory-limit MiB] [--budget MiB|none] [--throttle none|ssd|flash] [--cold]
--memory (npm run bench:memory): --memory-limit 8192 for the 21B shapes, 1024 for the 4B, --cold, --engines ours,llama,ours-free
  (ours-free: our engine without a budget or limit, the in-memory reference); each worker but ours-free runs in a cgroup v1
  memory limit (root), ours with --budget (default: the limit); --throttle caps the disk's reads (ssd 2 GB/s, flash 500 MB/s).`;

function parseArgs(argv: string[]): Options {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) fail(`${name} needs a value`);
    return v;
  };
  const known = new Set([
    '--shape',
    '--type',
    '--model',
    '--threads',
    '--runs',
    '--pp',
    '--tg',
    '--engines',
    '--json',
    '--seed',
    '--bandwidth',
    '--noisy',
    '--drop-noisy',
    '--settle',
    '--repeat-noisy',
    '--layout',
    '--routing',
    '--sparsity',
    '--memory',
    '--memory-limit',
    '--budget',
    '--throttle',
    '--cold',
    '--help',
  ]);
  for (const a of argv) if (a.startsWith('--') && !known.has(a)) fail(`unknown option ${a}`);
  if (argv.includes('--help')) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name: string, def: number, min: number) => {
    const v = Number(get(name) ?? def);
    if (!Number.isInteger(v) || v < min) fail(`${name} must be an integer >= ${min}`);
    return v;
  };
  const num = (name: string, def: number) => {
    const v = Number(get(name) ?? def);
    if (!Number.isFinite(v) || v <= 0) fail(`${name} must be a positive number`);
    return v;
  };
  const shape = (get('--shape') ?? '4b').toLowerCase();
  if (shape !== '4b' && shape !== '21b') fail('--shape must be 4b or 21b');
  const type = (get('--type') ?? 'q4_0').toLowerCase();
  const ftypes = Object.keys(LLAMA_FTYPE).map((f) => f.toLowerCase());
  if (!['gen-q4_0', 'gen-q8_0', ...ftypes].includes(type)) fail(`--type must be one of ${ftypes.join(', ')}, gen-q4_0, gen-q8_0`);
  const memory = argv.includes('--memory');
  const engines = (get('--engines') ?? (memory ? 'ours,llama,ours-free' : 'ours,llama')).split(',').filter(Boolean);
  for (const e of engines) if (e !== 'ours' && e !== 'llama' && e !== 'ours-free') fail(`unknown engine ${e} (ours, llama, ours-free)`);
  const routing = get('--routing') ?? 'varied';
  if (routing !== 'varied' && routing !== 'skewed') fail('--routing must be varied or skewed');
  const sparsity = get('--sparsity') ?? 'random';
  if (sparsity !== 'random' && sparsity !== 'realistic') fail('--sparsity must be random or realistic');
  const throttle = get('--throttle') ?? 'none';
  if (!(throttle in THROTTLES)) fail(`--throttle must be one of ${Object.keys(THROTTLES).join(', ')}`);
  const memoryLimitMB =
    get('--memory-limit') !== undefined ? int('--memory-limit', 0, 64) : memory ? (shape === '21b' ? 8192 : 1024) : undefined;
  const budget = get('--budget');
  const budgetMB = budget === 'none' ? undefined : budget !== undefined ? int('--budget', 0, 1) : memoryLimitMB;
  if (throttle !== 'none' && memoryLimitMB === undefined) fail('--throttle needs --memory-limit (or --memory)');
  if (engines.length === 0) fail('--engines is empty');
  return {
    shape,
    type,
    model: get('--model'),
    threads: int('--threads', 2, 1),
    runs: int('--runs', 3, 1),
    pp: int('--pp', 512, 1),
    tg: int('--tg', 128, 1),
    engines: engines as EngineName[],
    json: get('--json'),
    seed: int('--seed', 1, 0),
    bandwidthGBs: get('--bandwidth') === undefined ? undefined : num('--bandwidth', 0),
    noisyCores: num('--noisy', 0.2),
    dropNoisy: argv.includes('--drop-noisy'),
    settleS: int('--settle', 60, 0),
    repeatNoisy: int('--repeat-noisy', 2, 0),
    layoutDir: ((l) => (l === 'none' ? undefined : path.resolve(l)))(
      get('--layout') ?? path.join(path.dirname(fixtureCacheDir()), 'layouts'),
    ),
    routing,
    sparsity,
    memoryLimitMB,
    budgetMB,
    throttle: throttle as ThrottleName,
    cold: memory || argv.includes('--cold'),
  };
}

// ---------------------------------------------------------------- the machine

/** The CPU's model name from /proc/cpuinfo (os.cpus() elsewhere). */
function cpuModelName(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // no /proc: below
  }
  return os.cpus()[0]?.model ?? 'unknown CPU';
}

/** Bytes summed per pass of the bandwidth measurement: far beyond any cache, about a second in all. */
const BANDWIDTH_BYTES = 512 * 2 ** 20;

function fail(msg: string): never {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(2);
}

/** Per-layer share of gate values <= 0, summed over runs (empty when the addon does not report layers). */
function layerSparsity(stats: RegluStats[]): number[] {
  const n = Math.min(...stats.map((r) => r.layers?.length ?? 0));
  if (!Number.isFinite(n) || n === 0) return [];
  return Array.from({ length: n }, (_, i) => {
    const z = stats.reduce((a, r) => a + r.layers![i].zero, 0);
    const t = stats.reduce((a, r) => a + r.layers![i].total, 0);
    return t ? z / t : NaN;
  });
}

// ---------------------------------------------------------------- the model and the inputs

/** The generated model: the --type itself for gen-*, else the source llama-quantize requantizes. */
function fixtureSpec(o: Options): ModelSpec {
  const t: WeightTypeName = o.type === 'gen-q8_0' || (!o.type.startsWith('gen-') && o.shape === '4b') ? 'Q8_0' : 'Q4_0';
  const base = o.shape === '21b' ? SMALLTHINKER_21B : SMALLTHINKER_4B;
  return { ...base, routing: o.routing, sparsity: o.sparsity, types: { default: t } };
}

async function resolveModel(o: Options): Promise<string> {
  if (o.model) {
    if (!fs.existsSync(o.model)) fail(`no such file: ${o.model}`);
    return path.resolve(o.model);
  }
  const spec = fixtureSpec(o);
  const q8 = spec.types?.default === 'Q8_0';
  const bytes = (weightCount(normalizeSpec(spec)) * (q8 ? 34 : 18)) / 32;
  const gb = (bytes / 1e9).toFixed(1);
  if (o.shape === '21b')
    console.log(`note: the 21B shapes are a ${gb} GB generated file; llama.cpp's Q4_0 repack needs about twice that in memory.`);
  if (bytes * 2 > os.totalmem())
    console.log(
      `warning: ${gb} GB x 2 exceeds this machine's ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; llama.cpp may be killed for memory.`,
    );
  let t0 = Date.now();
  const file = await ensureModel(spec);
  if (Date.now() - t0 > 2000) console.log(`generated ${path.basename(file)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (o.type.startsWith('gen-')) return file;
  t0 = Date.now();
  const ftype = o.type.toUpperCase() as LlamaFtype;
  const out = await quantizeWithLlama(file, ftype, { requantize: true });
  if (Date.now() - t0 > 2000)
    console.log(`llama-quantize ${ftype} of ${path.basename(file)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return out;
}

/** Ordinary (token_type 1) ids of the model's vocabulary; all ids when the file has no types. */
function normalTokenIds(h: GgufHeader): number[] {
  const types = h.get('tokenizer.ggml.token_type');
  if (Array.isArray(types) && types.length > 0) {
    const ids: number[] = [];
    types.forEach((t, i) => {
      if (Number(t) === 1) ids.push(i);
    });
    if (ids.length > 0) return ids;
  }
  const tokens = h.get('tokenizer.ggml.tokens');
  const n = Array.isArray(tokens) ? tokens.length : (h.tensors.find((t) => t.name === 'token_embd.weight')?.ne[1] ?? 0);
  if (n === 0) throw new Error('the GGUF file has neither a vocabulary nor token_embd.weight');
  return Array.from({ length: n }, (_, i) => i);
}

function randomTokens(ids: number[], seed: number, stream: string, n: number): number[] {
  const rng = new Rng(seed, stream);
  return Array.from({ length: n }, () => ids[rng.nextInt(ids.length)]);
}

// ---------------------------------------------------------------- the bandwidth ceiling

interface Ceiling {
  /** bytes read per decoded token: all non-expert weights, the active experts (dense), one embedding row, the KV cache */
  bytesPerToken: number;
  /** of which the active experts' matrices (read densely) */
  expertBytes: number;
  expertUpDownBytes: number;
  kvBytes: number;
  positions: number;
  tokensPerS: number;
}

function ceiling(h: GgufHeader, positions: number, bandwidthGBs: number): Ceiling | null {
  const arch = String(h.get('general.architecture') ?? '');
  const n = (k: string) => Number(h.get(`${arch}.${k}`) ?? NaN);
  const nExpert = n('expert_count');
  const nUsed = n('expert_used_count');
  const nLayer = n('block_count');
  const nHeadKv = n('attention.head_count_kv');
  const kl = n('attention.key_length');
  const vl = n('attention.value_length');
  if (![nExpert, nUsed, nLayer, nHeadKv, kl, vl].every(Number.isFinite)) return null;
  let dense = 0;
  let upDown = 0;
  let experts = 0;
  let hasOutput = false;
  for (const t of h.tensors) {
    const b = t.nbytes ?? 0;
    if (t.name === 'output.weight') hasOutput = true;
    if (t.name === 'token_embd.weight') dense += b / (t.ne[1] ?? 1);
    else if (t.name.includes('_exps')) {
      const active = (b * nUsed) / nExpert;
      dense += active;
      experts += active;
      if (t.name.includes('ffn_up_exps') || t.name.includes('ffn_down_exps')) upDown += active;
    } else dense += b;
  }
  if (!hasOutput) dense += h.tensors.find((t) => t.name === 'token_embd.weight')?.nbytes ?? 0; // tied output
  const kvBytes = nLayer * nHeadKv * (kl + vl) * 2 * positions; // F16 K and V
  const bytesPerToken = dense + kvBytes;
  return {
    bytesPerToken,
    expertBytes: experts,
    expertUpDownBytes: upDown,
    kvBytes,
    positions,
    tokensPerS: (bandwidthGBs * 1e9) / bytesPerToken,
  };
}

// ---------------------------------------------------------------- running the workers

interface RunRecord {
  run: number;
  engine: EngineName;
  wallMs: number;
  /** the largest other-load (cores) over the load, prompt and decode phases of at least 1 s */
  otherCores: number;
  noisy: boolean;
  /** 0 for the first try; a noisy run is repeated up to --repeat-noisy times */
  attempt: number;
  /** noisy and repeated: kept in the JSON, left out of the table */
  repeated: boolean;
  /** ours: when build/Release/moe_engine.node was last built (it may be rebuilt between runs) */
  addonMtime: string | null;
  /** under --memory-limit: the worker's cgroup (peak usage, kills) */
  cgroup: GroupReport | null;
  result: WorkerResult | WorkerFailure;
}

/** The worker running now and the request file, cleaned up on Ctrl+C / SIGTERM. */
let currentChild: ChildProcess | undefined;
let currentRequest: string | undefined;
let currentGroups: Parameters<typeof finishGroups>[0] | undefined;

function onSignal(signal: NodeJS.Signals): void {
  console.log(`\nbench: ${signal}; stopping the running worker (no results written)`);
  if (currentChild && currentChild.exitCode === null) currentChild.kill('SIGKILL');
  if (currentRequest) fs.rmSync(currentRequest, { force: true });
  const groups = currentGroups;
  if (groups) void finishGroups(groups).finally(() => process.exit(130));
  else process.exit(130);
}

function runWorker(
  engine: EngineName,
  reqFile: string,
  tag: string,
  wrap?: (argv: string[]) => { file: string; args: string[] },
): Promise<WorkerResult | WorkerFailure> {
  const worker = path.join(__dirname, 'benchWorker.js');
  return new Promise((resolve) => {
    const argv = [process.execPath, worker, '--engine', engine, '--request', reqFile];
    const cmd = wrap ? wrap(argv) : { file: argv[0], args: argv.slice(1) };
    const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    currentChild = child;
    let result: WorkerResult | WorkerFailure | undefined;
    let stderrTail = '';
    const lines = (stream: NodeJS.ReadableStream, onLine: (line: string) => void) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      stream.on('end', () => buf && onLine(buf));
    };
    lines(child.stdout!, (line) => {
      if (line.startsWith(RESULT_MARKER)) result = JSON.parse(line.slice(RESULT_MARKER.length)) as WorkerResult | WorkerFailure;
      else if (line.trim()) console.log(`  ${tag} ${line}`);
    });
    lines(child.stderr!, (line) => {
      stderrTail = (stderrTail + line + '\n').slice(-2000);
      if (line.trim()) console.log(`  ${tag} ${line}`);
    });
    child.on('close', (code, signal) => {
      currentChild = undefined;
      if (result) resolve(result);
      else {
        const why = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exit code ${code}`;
        resolve({ engine, ok: false, error: `the worker ended without a result (${why}); its last output:\n${stderrTail}` });
      }
    });
  });
}

/** When build/Release/moe_engine.node was built, or null. */
function addonMtime(): string | null {
  try {
    return fs.statSync(path.join(packageRoot(), 'build', 'Release', 'moe_engine.node')).mtime.toISOString();
  } catch {
    return null;
  }
}

/** Other load during a run: the worst of the whole run and its load, prompt and decode phases of at least 1 s. */
function otherLoad(r: WorkerResult): number {
  const phases = [r.load.load, r.load.prompt, r.load.decode].filter((p) => p.wallMs >= 1000);
  return Math.max(r.load.total.otherCores, ...phases.map((p) => p.otherCores));
}

/** Busy jiffies of the whole machine (this process is idle meanwhile, so it is all other load). */
function machineBusy(): number {
  const stat = fs.readFileSync('/proc/stat', 'utf8');
  const c = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  return c[0] + c[1] + c[2] + c[5] + c[6] + (c[7] ?? 0);
}

/** Seconds in a row the machine must be quiet before a run starts. */
const QUIET_SECONDS = 5;

/**
 * Waits (up to `maxS` seconds) until other processes used at most `cores` in each of
 * QUIET_SECONDS one-second windows in a row; returns the last window's load.
 */
async function settle(cores: number, maxS: number, tag: string): Promise<number> {
  const t0 = Date.now();
  let said = false;
  let quiet = 0;
  for (;;) {
    const a = machineBusy();
    await new Promise((r) => setTimeout(r, 1000));
    const load = (machineBusy() - a) / 100;
    quiet = load <= cores ? quiet + 1 : 0;
    const timedOut = (Date.now() - t0) / 1000 >= maxS;
    if (quiet >= QUIET_SECONDS || timedOut) {
      if (said)
        console.log(
          `${tag} ${quiet >= QUIET_SECONDS ? `quiet for ${QUIET_SECONDS} s` : `still busy after ${maxS} s; measuring anyway`} (${load.toFixed(2)} cores)`,
        );
      return load;
    }
    if (!said && load > cores) {
      console.log(
        `${tag} other processes use ${load.toFixed(2)} cores; waiting up to ${maxS} s for ${QUIET_SECONDS} quiet seconds (--settle)`,
      );
      said = true;
    }
  }
}

// ---------------------------------------------------------------- statistics and printing

interface Stat {
  min: number;
  median: number;
  max: number;
  n: number;
}

function stat(xs: number[]): Stat {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return { min: NaN, median: NaN, max: NaN, n: 0 };
  const mid = s.length >> 1;
  return { min: s[0], median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, max: s[s.length - 1], n: s.length };
}

interface Metric {
  key: string;
  label: string;
  better: 'higher' | 'lower';
  digits: number;
  get: (r: WorkerResult) => number;
}

const METRICS: Metric[] = [
  { key: 'pp', label: 'prompt t/s', better: 'higher', digits: 1, get: (r) => r.promptTokensPerS },
  { key: 'tg', label: 'decode t/s', better: 'higher', digits: 1, get: (r) => r.decodeTokensPerS },
  { key: 'ttft', label: 'ttft ms', better: 'lower', digits: 0, get: (r) => r.ttftMs },
  { key: 'load', label: 'load ms', better: 'lower', digits: 0, get: (r) => r.loadMs },
  { key: 'first', label: 'first prompt ms', better: 'lower', digits: 0, get: (r) => r.firstPromptMs },
  { key: 'rss', label: 'peak RSS GiB', better: 'lower', digits: 2, get: (r) => r.memory.vmHwmKiB / 2 ** 20 },
  { key: 'anon', label: '  anon RSS GiB', better: 'lower', digits: 2, get: (r) => r.memory.rssAnonKiB / 2 ** 20 },
  { key: 'file', label: '  file RSS GiB', better: 'lower', digits: 2, get: (r) => r.memory.rssFileKiB / 2 ** 20 },
];

const fmt = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const fmtStat = (s: Stat, d: number) => (s.n ? `${fmt(s.min, d)} / ${fmt(s.median, d)} / ${fmt(s.max, d)}` : 'n/a');
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');

interface MeanStat {
  mean: number;
  min: number;
  max: number;
}

interface ExpertSummary {
  tokens: number;
  distinct: MeanStat;
  top8: MeanStat;
  busiest: MeanStat;
  /** experts picked by under 14% of the tokens (the paper: 70-80% of experts in the released models) */
  rare: MeanStat;
  perLayer: { distinct: number; top8: number; busiest: number; rare: number }[];
}

/** Per layer: the fraction of experts used at least once, the top-8 experts' share of picks, the busiest expert's share of tokens. */
function expertSummary(counts: number[], nLayer: number, nExpert: number, nUsed: number): ExpertSummary {
  const perLayer: ExpertSummary['perLayer'] = [];
  let tokens = 0;
  for (let l = 0; l < nLayer; l++) {
    const c = counts.slice(l * nExpert, (l + 1) * nExpert).sort((a, b) => b - a);
    const total = c.reduce((a, b) => a + b, 0);
    tokens = Math.max(tokens, total / nUsed);
    if (total === 0) continue;
    perLayer.push({
      distinct: c.filter((x) => x > 0).length / nExpert,
      top8: c.slice(0, 8).reduce((a, b) => a + b, 0) / total,
      busiest: c[0] / (total / nUsed),
      rare: c.filter((x) => x / (total / nUsed) < 0.14).length / nExpert,
    });
  }
  const withMean = (xs: number[]): MeanStat => {
    const s = stat(xs);
    return { mean: xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length), min: s.min, max: s.max };
  };
  return {
    tokens: Math.round(tokens),
    distinct: withMean(perLayer.map((p) => p.distinct)),
    top8: withMean(perLayer.map((p) => p.top8)),
    busiest: withMean(perLayer.map((p) => p.busiest)),
    rare: withMean(perLayer.map((p) => p.rare)),
    perLayer,
  };
}

function describeExperts(what: string, e: ExpertSummary): string {
  const f = (s: MeanStat) => `mean ${pct(s.mean)} (min ${pct(s.min)}, max ${pct(s.max)})`;
  return (
    `  ${what} (${e.tokens} tokens): distinct experts used per layer ${f(e.distinct)}; top-8 share ${f(e.top8)}; busiest expert's share of tokens ${f(e.busiest)}; ` +
    `experts picked by under 14% of tokens ${f(e.rare)} (the paper's released models: 70-80%)`
  );
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  // before anything else loads the machine: the read bandwidth our decode threads can reach
  const measuredGBs = o.bandwidthGBs === undefined ? loadAddon().measureReadBandwidth(BANDWIDTH_BYTES, o.threads) : undefined;
  const bandwidthGBs = o.bandwidthGBs ?? measuredGBs!;
  const bandwidthSource = o.bandwidthGBs === undefined ? `measured, ${o.threads} threads, best of 3` : '--bandwidth';
  const model = await resolveModel(o);
  const label =
    (o.model
      ? path.basename(model, '.gguf')
      : `${o.shape}-${o.type}${o.routing === 'skewed' ? '-skewed' : ''}${o.sparsity === 'realistic' ? '-sparse' : ''}`) +
    (o.memoryLimitMB ? `-limit${o.memoryLimitMB}${o.throttle !== 'none' ? `-${o.throttle}` : ''}` : '');
  if (o.memoryLimitMB) {
    const why = limitsUnavailable(o.throttle);
    if (why) fail(`--memory-limit: ${why}`);
    if (o.engines.includes('ours') && o.budgetMB !== undefined && !o.layoutDir) fail('a memory budget needs a layout file (--layout DIR)');
  }
  const jsonFile = path.resolve(o.json ?? path.join(packageRoot(), 'bench-results', `bench-${label}.json`));
  const header = readGgufHeader(model);
  const fileSize = fs.statSync(model).size;
  const ids = normalTokenIds(header);
  const nCtx = Math.max(256, Math.ceil((o.pp + o.tg) / 256) * 256);
  const req: WorkerRequest = {
    model,
    threads: o.threads,
    nCtx,
    nBatch: 512,
    warmup: randomTokens(ids, o.seed, 'bench-warmup', o.pp),
    prompt: randomTokens(ids, o.seed, 'bench-prompt', o.pp),
    decode: randomTokens(ids, o.seed, 'bench-decode', o.tg),
    layoutDir: o.engines.includes('ours') || o.engines.includes('ours-free') ? o.layoutDir : undefined,
    memoryBudgetMB: o.budgetMB,
  };
  let layoutFile: string | undefined;
  if (req.layoutDir) {
    // the one-time layout build, outside the timed runs
    const t0 = performance.now();
    const m = await loadModel(model, { layoutDir: req.layoutDir });
    const layout = m.info().layout;
    layoutFile = layout.file || undefined;
    m.dispose();
    if (layout.error) console.log(`layout file: none (${layout.error}); our engine relays out in memory`);
    else if (layout.built)
      console.log(`layout file: built ${layout.file} in ${((performance.now() - t0) / 1000).toFixed(1)} s (once per model)`);
    else console.log(`layout file: ${layout.file} (already built)`);
    if (layout.file) console.log(`layout file mapped with 2 MB pages: ${(100 * layout.hugePages).toFixed(0)}%`);
  }
  const reqFile = path.join(os.tmpdir(), `smallthinker-bench-${process.pid}.json`);
  fs.writeFileSync(reqFile, JSON.stringify(req));
  currentRequest = reqFile;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const cpuModel = cpuModelName();

  console.log(`bench  ${path.basename(model)} (${(fileSize / 1e9).toFixed(2)} GB)`);
  console.log(
    `  ${o.engines.join(' vs ')}, ${o.threads} threads, ${o.runs} run(s) each, alternating; prompt ${o.pp} random tokens (batch 512), decode ${o.tg} tokens`,
  );
  console.log(
    `  decode feeds tokens from a seeded RNG (not the sampled ones: random weights would repeat one token); each step still samples greedily`,
  );
  console.log(
    `  machine: ${cpuModel}, ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; a run is noisy when other load exceeds ${o.noisyCores} cores`,
  );
  console.log(`  memory read bandwidth: ${bandwidthGBs.toFixed(1)} GB/s (${bandwidthSource})`);
  if (o.memoryLimitMB) {
    const t = THROTTLES[o.throttle];
    console.log(
      `  each worker but ours-free in a ${o.memoryLimitMB} MiB cgroup v1 memory limit (page cache included)` +
        (o.budgetMB !== undefined ? `, ours with a ${o.budgetMB} MiB memory budget` : ', ours without a budget') +
        (t ? `; reads of the disk throttled to ${t.label}` : '; the disk unthrottled'),
    );
  }
  if (o.cold) console.log('  the model and layout files are dropped from the page cache before every run (cold start)');
  if (o.memoryLimitMB)
    console.log("  the experts' use counts kept beside the layout file are removed before every run: each learns from its own tokens");

  const records: RunRecord[] = [];
  try {
    for (let run = 1; run <= o.runs; run++) {
      for (const engine of o.engines) {
        for (let attempt = 0; ; attempt++) {
          const tag = `[${engine} ${run}/${o.runs}${attempt ? ` repeat ${attempt}` : ''}]`;
          if (o.settleS > 0) await settle(o.noisyCores, o.settleS, tag);
          console.log(`${tag} starting`);
          if (o.cold) dropFromPageCache([model, ...layoutFiles(req.layoutDir)]);
          forgetUsageProfiles(req.layoutDir);
          const t0 = performance.now();
          let result: WorkerResult | WorkerFailure;
          let cgroup: GroupReport | null = null;
          if (o.memoryLimitMB && engine !== 'ours-free') {
            const groups = createGroups(
              `smallthinker-bench-${process.pid}-${records.length}`,
              o.memoryLimitMB * 2 ** 20,
              o.throttle,
              layoutFiles(req.layoutDir)[0] ?? model,
            );
            currentGroups = groups;
            result = await runWorker(engine, reqFile, tag, (argv) => commandInGroups(groups, argv));
            cgroup = await finishGroups(groups);
            currentGroups = undefined;
          } else result = await runWorker(engine, reqFile, tag);
          const wallMs = performance.now() - t0;
          const other = result.ok ? otherLoad(result) : 0;
          const rec: RunRecord = {
            run,
            engine,
            attempt,
            wallMs,
            otherCores: other,
            noisy: other > o.noisyCores,
            repeated: false,
            addonMtime: engine === 'llama' ? null : addonMtime(),
            cgroup,
            result,
          };
          records.push(rec);
          const limit = cgroup
            ? `; cgroup peak ${fmt(cgroup.peakBytes / 2 ** 30, 2)} of ${fmt(cgroup.limitBytes / 2 ** 30, 2)} GiB${cgroup.oomKills ? `, ${cgroup.oomKills} killed for memory` : ''}`
            : '';
          if (!result.ok) console.log(`${tag} FAILED${limit}: ${result.error}`);
          else if (limit) console.log(`${tag}${limit}`);
          else {
            console.log(
              `${tag} pp ${fmt(result.promptTokensPerS, 1)} t/s, tg ${fmt(result.decodeTokensPerS, 1)} t/s, ttft ${fmt(result.ttftMs, 0)} ms, ` +
                `load ${fmt(result.loadMs, 0)} ms, peak RSS ${fmt(result.memory.vmHwmKiB / 2 ** 20, 2)} GiB, ` +
                (result.layoutHugePages !== null && result.layoutHugePages !== undefined
                  ? `layout file in 2 MB pages ${(100 * result.layoutHugePages).toFixed(0)}%, `
                  : '') +
                `other load ${other.toFixed(2)} cores${rec.noisy ? ' (NOISY)' : ''}`,
            );
          }
          if (!rec.noisy || attempt >= o.repeatNoisy) break;
          rec.repeated = true;
          console.log(`${tag} noisy: repeating it (--repeat-noisy ${o.repeatNoisy}); this attempt stays in the JSON, out of the table`);
        }
      }
    }
  } finally {
    fs.rmSync(reqFile, { force: true });
  }

  // ---- where our weights sit: the read speed of the layout file's pages in the page cache, and of
  // a fresh anonymous buffer (where llama.cpp's repacked weights live), measured now, after the runs.
  // On a virtual machine guest memory can read at different speeds in different places (here the
  // same layout file read 20 GB/s from one copy's pages and 34 from a fresh buffer), which moves our
  // share of the ceiling and the ratio with it.
  let weightsMemory: { layoutFile: string; pageCacheGBs: number; anonymousGBs: number; threads: number } | null = null;
  // (not for a file over half the memory: it would be read from the disk, three times)
  if (layoutFile && !o.cold && !o.memoryLimitMB && fs.statSync(layoutFile).size < os.totalmem() / 2) {
    const addon = loadAddon();
    weightsMemory = {
      layoutFile,
      pageCacheGBs: addon.measureFileReadBandwidth(layoutFile, 64 * 2 ** 30, o.threads),
      anonymousGBs: addon.measureReadBandwidth(BANDWIDTH_BYTES, o.threads),
      threads: o.threads,
    };
  }

  // ---- summary
  const ok = records.filter((r): r is RunRecord & { result: WorkerResult } => r.result.ok);
  const failed = records.filter((r) => !r.result.ok);
  const noisy = ok.filter((r) => r.noisy);
  const repeated = records.filter((r) => r.repeated);
  const final = ok.filter((r) => !r.repeated);
  const stillNoisy = final.filter((r) => r.noisy);
  const used = o.dropNoisy ? final.filter((r) => !r.noisy) : final;
  const of = (e: EngineName) => used.filter((r) => r.engine === e).map((r) => r.result);
  const pairs: { ours: WorkerResult; llama: WorkerResult }[] = [];
  for (let run = 1; run <= o.runs; run++) {
    const a = used.find((r) => r.run === run && r.engine === 'ours');
    const b = used.find((r) => r.run === run && r.engine === 'llama');
    if (a && b) pairs.push({ ours: a.result, llama: b.result });
  }

  console.log(`\nresults (min / median / max over runs; ratio = ours/llama.cpp per pair, median (min-max); ${pairs.length} pair(s))`);
  const w = [17, 26, 26, 22];
  const row = (cells: string[]) => console.log('  ' + cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
  row(['metric', 'ours', 'llama.cpp', 'ours/llama']);
  const table: Record<string, { ours: Stat; llama: Stat; ratio: Stat; better: string }> = {};
  for (const m of METRICS) {
    const so = stat(of('ours').map(m.get));
    const sl = stat(of('llama').map(m.get));
    const ratio = stat(pairs.map((p) => m.get(p.ours) / m.get(p.llama)));
    table[m.key] = { ours: so, llama: sl, ratio, better: m.better };
    const rtxt = ratio.n ? `${fmt(ratio.median, 2)}x (${fmt(ratio.min, 2)}-${fmt(ratio.max, 2)})` : 'n/a';
    row([m.label, fmtStat(so, m.digits), fmtStat(sl, m.digits), rtxt]);
  }
  console.log(
    `  (higher is better for t/s, lower for the rest; pp = evaluating the ${o.pp} prompt tokens, ttft adds the first sampled token)`,
  );
  console.log(
    `  noisy runs (other load > ${o.noisyCores} cores): ${noisy.length} of ${ok.length}` +
      (noisy.length
        ? ` (${noisy.map((r) => `${r.engine} ${r.run}${r.attempt ? `.${r.attempt}` : ''}: ${r.otherCores.toFixed(2)}`).join(', ')})`
        : '') +
      (repeated.length ? `; ${repeated.length} repeated and left out of the table` : '') +
      (stillNoisy.length
        ? `; ${stillNoisy.length} still noisy after repeats, ${o.dropNoisy ? 'left out of the table (--drop-noisy)' : 'kept in the table (--drop-noisy leaves them out)'}`
        : '') +
      (failed.length ? `; FAILED runs: ${failed.length} (${failed.map((r) => `${r.engine} ${r.run}`).join(', ')})` : ''),
  );
  const firsts = ok.map((r) => `${r.engine} ${r.result.firstToken}`);
  const details = [...new Set(ok.map((r) => r.result.engineDetail))];
  if (details.length) console.log(`  engines: ${details.join('; ')}`);
  const builds = new Set(ok.map((r) => r.addonMtime).filter((m) => m !== null));
  if (builds.size > 1)
    console.log(`  WARNING: the addon was rebuilt during the benchmark (${[...builds].join(', ')}); our runs used different builds`);
  if (new Set(ok.map((r) => r.result.firstToken)).size > 1) {
    console.log(
      `  greedy first token after the prompt: ${[...new Set(firsts)].join(', ')} (random weights give near-tied logits; the fidelity tests compare logits)`,
    );
  }

  // ---- expert use and ReGLU (ours)
  const oursOk = ok.filter((r) => r.engine === 'ours').map((r) => r.result);
  const ex = oursOk.find((r) => r.experts)?.experts ?? null;
  let experts: { decode: ExpertSummary; prompt: ExpertSummary } | null = null;
  if (ex) {
    experts = {
      decode: expertSummary(ex.decode, ex.nLayer, ex.nExpert, ex.nUsed),
      prompt: expertSummary(ex.prompt, ex.nLayer, ex.nExpert, ex.nUsed),
    };
    console.log(
      `\nexpert use of our engine (${ex.nLayer} layers x ${ex.nExpert} experts, ${ex.nUsed} per token; the same inputs every run)`,
    );
    console.log(describeExperts('decode', experts.decode));
    console.log(describeExperts('prompt', experts.prompt));
    if (experts.decode.top8.mean > 0.9 && ex.nExpert > 8)
      console.log(
        '  WARNING: nearly every token picks the same experts (degenerate routing); speed figures on this file flatter batching and caching',
      );
  } else console.log('\nexpert use: n/a (no successful run of our engine)');
  let sparsity: { decode: number; prompt: number } | null = null;
  let expertBytesPerToken: number | null = null;
  const rs = oursOk.map((r) => r.reglu).filter((x): x is NonNullable<WorkerResult['reglu']> => x !== null);
  if (rs.length) {
    const sum = (k: 'decode' | 'prompt') =>
      rs.reduce((a, r) => ({ zero: a.zero + r[k].zero, total: a.total + r[k].total }), { zero: 0, total: 0 });
    const d = sum('decode');
    const p = sum('prompt');
    sparsity = { decode: d.total ? d.zero / d.total : NaN, prompt: p.total ? p.zero / p.total : NaN };
    console.log(`ReGLU sparsity (share of gate values <= 0): decode ${pct(sparsity.decode)}, prompt ${pct(sparsity.prompt)}`);
    const perLayer = layerSparsity(rs.map((r) => r.decode));
    if (perLayer.length) {
      const sorted = [...perLayer].sort((a, b) => a - b);
      console.log(
        `  per layer while decoding: first ${pct(perLayer[0])}, median ${pct(sorted[sorted.length >> 1])}, ` +
          `min ${pct(sorted[0])}, max ${pct(sorted[sorted.length - 1])} (ENGINE-SPEC: released models' median over 60%, early layers 90%+)`,
      );
    }
    const bytes = rs.reduce((a, r) => a + (r.decode.expertBytes ?? 0), 0);
    const steps = oursOk.reduce((a, r) => a + (r.reglu ? r.nDecode : 0), 0);
    if (bytes > 0 && steps > 0) {
      expertBytesPerToken = bytes / steps;
      console.log(`expert weight bytes read per decoded token (measured by our engine): ${(expertBytesPerToken / 1e6).toFixed(1)} MB`);
    }
  } else console.log(`ReGLU sparsity: n/a${oursOk.length ? ' (this build of the addon has no Session.regluStats())' : ''}`);

  // ---- under a memory limit
  let memory: object | null = null;
  if (o.memoryLimitMB) {
    console.log(
      `\nwithin ${o.memoryLimitMB} MiB (cgroup v1, page cache included)${o.throttle !== 'none' ? `, reads throttled to ${THROTTLES[o.throttle]!.label}` : ''}:`,
    );
    const perEngine: Record<string, object> = {};
    for (const e of o.engines) {
      const rs = records.filter((r) => r.engine === e && !r.repeated);
      const peaks = rs.map((r) => r.cgroup?.peakBytes ?? (r.result.ok ? r.result.memory.vmHwmKiB * 1024 : NaN));
      const kills = rs.reduce((a, r) => a + (r.cgroup?.oomKills ?? 0), 0);
      const fails = rs.filter((r) => !r.result.ok).length;
      const what = e === 'ours-free' ? 'ours-free (no limit, in-memory reference; peak = VmHWM)' : e;
      console.log(
        `  ${what}: ${rs.length - fails} of ${rs.length} run(s) finished, ${kills} killed for memory; peak ${fmtStat(stat(peaks.map((b) => b / 2 ** 30)), 2)} GiB`,
      );
      const caches = rs.map((r) => (r.result.ok ? r.result.expertCache : null)).filter((x) => x !== null);
      const rate = (c: { uses: number; reads: number }) => (c.uses > 0 ? 1 - c.reads / c.uses : NaN);
      if (caches.length) {
        const c0 = caches[0];
        const perTok = (c: (typeof caches)[0], k: 'bytesRead' | 'stallMs') => c.decode[k] / o.tg;
        console.log(
          `    expert cache ${c0.capacity} of ${c0.extents} extents at load, ${fmtStat(stat(caches.map((c) => c.finalCapacity)), 0)} after the decode; decode: hits ${fmtStat(stat(caches.map((c) => 100 * rate(c.decode))), 1)}%, ` +
            `read ${fmtStat(stat(caches.map((c) => perTok(c, 'bytesRead') / 1e6)), 0)} MB/token, waited ${fmtStat(stat(caches.map((c) => perTok(c, 'stallMs'))), 1)} ms/token`,
        );
        console.log(
          `    prompt (warm cache): hits ${fmtStat(stat(caches.map((c) => 100 * rate(c.prompt))), 1)}%, read ${fmtStat(stat(caches.map((c) => c.prompt.bytesRead / 1e6)), 0)} MB; ` +
            `first prompt (cold): read ${fmtStat(stat(caches.map((c) => c.firstPrompt.bytesRead / 1e6)), 0)} MB, waited ${fmtStat(stat(caches.map((c) => c.firstPrompt.stallMs / 1000)), 2)} s`,
        );
      }
      perEngine[e] = { runs: rs.length, failed: fails, oomKills: kills, peakBytes: stat(peaks), expertCache: caches };
    }
    const free = (run: number) => records.find((r) => r.run === run && r.engine === 'ours-free' && !r.repeated && r.result.ok)?.result;
    const limited = (run: number) => records.find((r) => r.run === run && r.engine === 'ours' && !r.repeated && r.result.ok)?.result;
    const share: number[] = [];
    const sharePp: number[] = [];
    for (let run = 1; run <= o.runs; run++) {
      const a = limited(run);
      const b = free(run);
      if (a && b && a.ok && b.ok) {
        share.push(a.decodeTokensPerS / b.decodeTokensPerS);
        sharePp.push(a.promptTokensPerS / b.promptTokensPerS);
      }
    }
    if (share.length) {
      const st = stat(share);
      const sp = stat(sharePp);
      console.log(
        `  ours within the limit vs ours in memory, per run: decode ${pct(st.median)} (${pct(st.min)}-${pct(st.max)}), prompt ${pct(sp.median)} (${pct(sp.min)}-${pct(sp.max)})`,
      );
    }
    memory = {
      limitMB: o.memoryLimitMB,
      budgetMB: o.budgetMB ?? null,
      throttle: o.throttle,
      cold: o.cold,
      perEngine,
      oursVsFree: { decode: share, prompt: sharePp },
    };
  }

  // ---- bandwidth ceiling
  const c = ceiling(header, o.pp + Math.round(o.tg / 2), bandwidthGBs);
  let ceilingSparse: number | null = null;
  if (c) {
    const tg = table.tg;
    console.log(
      `\nbandwidth ceiling: decode reads about ${(c.bytesPerToken / 1e6).toFixed(0)} MB per token (active experts read densely, KV cache at ~${c.positions} positions in F16),` +
        ` so at ${bandwidthGBs.toFixed(1)} GB/s (${bandwidthSource}) at most ${c.tokensPerS.toFixed(1)} tokens/s`,
    );
    const parts: string[] = [];
    if (tg.ours.n) parts.push(`ours ${pct(tg.ours.median / c.tokensPerS)}`);
    if (tg.llama.n) parts.push(`llama.cpp ${pct(tg.llama.median / c.tokensPerS)}`);
    if (parts.length) console.log(`  median decode speed as a share of that ceiling: ${parts.join(', ')}`);
    if (expertBytesPerToken !== null)
      console.log(
        `  bytes read per decoded token, measured: ${((c.bytesPerToken - c.expertBytes + expertBytesPerToken) / 1e6).toFixed(0)} MB (experts ${(expertBytesPerToken / 1e6).toFixed(0)} MB of it, ${(c.expertBytes / 1e6).toFixed(0)} MB when read densely)`,
      );
    if (weightsMemory)
      console.log(
        `  the memory our weights sit in, read after the runs (${weightsMemory.threads} threads): the layout file's pages ${weightsMemory.pageCacheGBs.toFixed(1)} GB/s, ` +
          `a fresh anonymous buffer (where llama.cpp's repacked weights live) ${weightsMemory.anonymousGBs.toFixed(1)} GB/s` +
          (weightsMemory.pageCacheGBs < 0.85 * weightsMemory.anonymousGBs
            ? ': the page cache holds our file in slower memory here, which lowers our speed and the ratio'
            : ''),
      );
    if (sparsity && Number.isFinite(sparsity.decode)) {
      const bytes = c.bytesPerToken - c.expertUpDownBytes * sparsity.decode;
      ceilingSparse = (bandwidthGBs * 1e9) / bytes;
      console.log(
        `  skipping the up/down rows of inactive neurons (measured sparsity): ${(bytes / 1e6).toFixed(0)} MB per token, ceiling ${ceilingSparse.toFixed(1)} tokens/s`,
      );
    }
  }

  fs.mkdirSync(path.dirname(jsonFile), { recursive: true });
  const out = {
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: {
      cpu: cpuModel,
      cpus: os.cpus().length,
      memGiB: os.totalmem() / 2 ** 30,
      node: process.version,
      readBandwidthGBs: measuredGBs ?? null,
      readBandwidthThreads: o.threads,
      weightsMemory,
    },
    model: { path: model, bytes: fileSize, label },
    settings: { ...o, nCtx, nBatch: req.nBatch, decodeInput: 'tokens from a seeded RNG; each step samples greedily (discarded)' },
    table,
    pairs: pairs.length,
    noisy: noisy.length,
    repeated: repeated.length,
    stillNoisy: stillNoisy.length,
    failed: failed.length,
    experts,
    reglu: sparsity,
    expertBytesPerDecodedToken: expertBytesPerToken,
    memory,
    ceiling: c ? { ...c, bandwidthGBs, bandwidthSource, withSparsityTokensPerS: ceilingSparse } : null,
    runs: records,
  };
  fs.writeFileSync(jsonFile, JSON.stringify(out, null, 2) + '\n');
  const rel = path.relative(process.cwd(), jsonFile);
  console.log(`\nwrote ${rel.startsWith('..') ? jsonFile : rel}`);
  if (failed.length === records.length) process.exit(1);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});

// Logit comparison against the oracle, and a runner for our engine, shared by the fidelity tests.
//
// The metric: for each position, the largest absolute difference between our logits and
// llama.cpp's, divided by the standard deviation of llama.cpp's logits at that position
// ("relative max error"); and whether the top-1 token agrees, except where llama.cpp's own top
// two are a near-tie. A real bug (wrong routing, a rotation where there should be none, wrong
// gating) moves logits by a sizeable fraction of their spread from the first positions on;
// rounding differences between two correct implementations (summation order) move them by
// about 1e-6 of it.
//
// One more effect must be allowed for: discrete events. Two correct engines whose float sums
// differ in the last bit occasionally round a q8_0 activation, or choose the k-th expert at a
// near-tie, the other way; from then on that token's state (and, through attention, later
// positions) legitimately differs, and random-weight MoE stacks amplify it. Measured here: none
// in 2-5 layer files over dozens of positions; in a 52-layer F32 file the first flip came after
// 20 positions. So `judge` requires tight agreement on the leading positions (where every bug
// we know of already shows) and top-1 agreement almost everywhere, not tight agreement at every
// position of a long prompt.
import { engineInfo, loadAddon, loadModel, type Model } from '../../src/engine/native';

export interface PositionStats {
  relMax: number;
  relRms: number;
  top1Ours: number;
  top1Ref: number;
  /** llama.cpp's top-1 minus top-2 logit, divided by the spread */
  refMargin: number;
}

export interface CompareSummary {
  positions: PositionStats[];
  worstRelMax: number;
  meanRelRms: number;
  /** positions whose top-1 differs although llama.cpp's margin is above the near-tie level */
  top1Mismatches: number;
}

export interface Verdict {
  ok: boolean;
  /** leading positions whose relative max error is below `tight` */
  leading: number;
  /** fraction of positions whose top-1 agrees (near-ties count as agreeing) */
  top1Agree: number;
  reason: string;
}

export interface JudgeOptions {
  /** relative max error two correct implementations stay under (per weight type, measured) */
  tight: number;
  /** leading positions that must be within `tight` (all when the prompt is shorter) */
  leading?: number;
  /** fraction of positions whose top-1 must agree */
  minTop1?: number;
}

export function judge(s: CompareSummary, o: JudgeOptions): Verdict {
  const wantLeading = Math.min(o.leading ?? 16, s.positions.length);
  let leading = 0;
  while (leading < s.positions.length && s.positions[leading].relMax < o.tight) leading++;
  const top1Agree = 1 - s.top1Mismatches / s.positions.length;
  const minTop1 = o.minTop1 ?? 0.9;
  const ok = leading >= wantLeading && top1Agree >= minTop1;
  const reason = `${leading}/${s.positions.length} leading positions within ${o.tight} (need ${wantLeading}), top-1 agreement ${(top1Agree * 100).toFixed(1)}% (need ${minTop1 * 100}%); ${describeSummary(s)}`;
  return { ok, leading, top1Agree, reason };
}

function std(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  const mean = s / a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - mean) * (a[i] - mean);
  return Math.sqrt(v / a.length);
}

function top2(a: Float32Array): [number, number, number] {
  let i1 = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[i1]) i1 = i;
  let i2 = i1 === 0 ? 1 : 0;
  for (let i = 0; i < a.length; i++) if (i !== i1 && a[i] > a[i2]) i2 = i;
  return [i1, i2, a[i1] - a[i2]];
}

export function comparePosition(ours: Float32Array, ref: Float32Array): PositionStats {
  if (ours.length !== ref.length) throw new Error(`logit rows differ in length: ${ours.length} vs ${ref.length}`);
  const sd = std(ref) || 1;
  let maxAbs = 0;
  let sq = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : d;
    sq += d * d;
  }
  const [r1, , margin] = top2(ref);
  const [o1] = top2(ours);
  return { relMax: maxAbs / sd, relRms: Math.sqrt(sq / ref.length) / sd, top1Ours: o1, top1Ref: r1, refMargin: margin / sd };
}

/** Near-tie: llama.cpp's top two within 1% of the logit spread; either order is correct. */
export const NEAR_TIE = 0.01;

/** max |a - b| over the spread (max - min) of b: how far a cache's logits are from a recomputation's. */
export function relToSpread(a: Float32Array, b: Float32Array): number {
  let mx = -Infinity;
  let mn = Infinity;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    mx = Math.max(mx, b[i]);
    mn = Math.min(mn, b[i]);
    err = Math.max(err, Math.abs(a[i] - b[i]));
  }
  return err / (mx - mn);
}

export function compareRows(ours: Float32Array[], ref: Float32Array[]): CompareSummary {
  if (ours.length !== ref.length) throw new Error(`position counts differ: ${ours.length} vs ${ref.length}`);
  const positions = ours.map((row, i) => comparePosition(row, ref[i]));
  return {
    positions,
    worstRelMax: Math.max(...positions.map((p) => p.relMax)),
    meanRelRms: positions.reduce((s, p) => s + p.relRms, 0) / positions.length,
    top1Mismatches: positions.filter((p) => p.top1Ours !== p.top1Ref && p.refMargin > NEAR_TIE).length,
  };
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * For deep random-weight files, where rounding flips grow chaotically with depth (see above):
 * llama.cpp must differ from us no more than differently rounded runs of ourselves differ from
 * us. `selves` (from ourNoise) compare our logits with such runs; the widest of them counts.
 */
export function judgeCalibrated(oracle: CompareSummary, selves: CompareSummary[], tight: number): Verdict {
  const medO = median(oracle.positions.map((p) => p.relMax));
  const medS = Math.max(...selves.map((x) => median(x.positions.map((p) => p.relMax))));
  const top1O = 1 - oracle.top1Mismatches / oracle.positions.length;
  const top1S = Math.min(...selves.map((x) => 1 - x.top1Mismatches / x.positions.length));
  const ok = medO <= 3 * medS + tight && top1O >= top1S - 0.25;
  const reason =
    `median rel max vs llama.cpp ${medO.toExponential(2)} (ours vs ours ${medS.toExponential(2)}), ` +
    `top-1 agreement ${(top1O * 100).toFixed(0)}% (ours vs ours ${(top1S * 100).toFixed(0)}%)`;
  return { ok, leading: 0, top1Agree: top1O, reason };
}

export function splitRows(flat: Float32Array, nVocab: number): Float32Array[] {
  const rows: Float32Array[] = [];
  for (let off = 0; off < flat.length; off += nVocab) rows.push(flat.subarray(off, off + nVocab));
  return rows;
}

const models = new Map<string, Promise<Model>>();

/** Our engine's model, loaded once per path (and repack setting) per process. */
export function ourModel(path: string, repack = true): Promise<Model> {
  const key = `${path}#${repack}`;
  let p = models.get(key);
  if (!p) {
    p = loadModel(path, { repack });
    models.set(key, p);
  }
  return p;
}

export interface OurLogitsOptions {
  all?: boolean;
  nCtx?: number;
  nBatch?: number;
  threads?: number;
  /** MOE_INJECT_BUG for this evaluation only (see native/engine/session.cpp) */
  bug?: string;
  /** kernel set for this evaluation (default: the best the CPU supports) */
  isa?: string;
  /** false: the model without the 16-row Q4_0 relayout (other float summation order) */
  repack?: boolean;
  /** MOE_PERTURB seed: a seeded half of every matrix product's results moved by one ulp (a noise probe) */
  perturb?: number;
}

/**
 * The best kernel set, and a different correct one. The relaid-out Q4_0 kernels give the same
 * bits on every set, so the alternative evaluation also uses `repack: false` (row-layout kernels).
 */
export function kernelSets(): { best: string; alt: string } {
  const { isas } = engineInfo();
  const best = isas[isas.length - 1];
  const alt = best.startsWith('avx512') && isas.includes('avx2') ? 'avx2' : 'scalar';
  return { best, alt };
}

/** Seeds of the one-ulp perturbations (MOE_PERTURB) that measure our noise floor. */
export const PERTURB_SEEDS = [1, 2, 3];

/**
 * Our own noise floor: `ours` compared with differently rounded evaluations of the same tokens:
 * the other kernel set, and every matrix product's results moved by one ulp in a seeded half
 * (MOE_PERTURB, several seeds). Where all
 * our kernel sets round identically (AVX2 machines) only the perturbations differ; a model that
 * amplifies a last-bit difference into a flipped activation rounding or expert choice does so
 * for either, as it does for llama.cpp's other summation order.
 */
export async function ourNoise(
  path: string,
  tokens: readonly number[],
  ours: Float32Array[],
  opts: OurLogitsOptions = {},
): Promise<CompareSummary[]> {
  const out = [compareRows(ours, await ourLogits(path, tokens, { ...opts, isa: kernelSets().alt, repack: false }))];
  for (const perturb of PERTURB_SEEDS) out.push(compareRows(ours, await ourLogits(path, tokens, { ...opts, perturb })));
  return out;
}

/** Our logits for `tokens` from an empty session: one row per position (all) or the last. */
export async function ourLogits(path: string, tokens: readonly number[], opts: OurLogitsOptions = {}): Promise<Float32Array[]> {
  const model = await ourModel(path, opts.repack ?? true);
  const prev = { bug: process.env.MOE_INJECT_BUG, perturb: process.env.MOE_PERTURB };
  setEnv('MOE_INJECT_BUG', opts.bug);
  setEnv('MOE_PERTURB', opts.perturb ? String(opts.perturb) : undefined);
  let session;
  try {
    loadAddon().setIsa(opts.isa ?? kernelSets().best);
    session = model.createSession({
      nCtx: opts.nCtx ?? Math.max(64, tokens.length),
      nBatch: opts.nBatch ?? 512,
      threads: opts.threads ?? 2,
    });
  } finally {
    setEnv('MOE_INJECT_BUG', prev.bug);
    setEnv('MOE_PERTURB', prev.perturb);
  }
  try {
    const flat = await session.eval(Int32Array.from(tokens), { logits: opts.all ? 'all' : 'last' });
    return splitRows(flat, model.nVocab);
  } finally {
    session.dispose();
  }
}

function setEnv(name: string, value: string | undefined): void {
  if (value) process.env[name] = value;
  else delete process.env[name];
}

export function describeSummary(s: CompareSummary): string {
  return `worst rel max ${s.worstRelMax.toExponential(2)}, mean rel rms ${s.meanRelRms.toExponential(2)}, top-1 mismatches ${s.top1Mismatches}/${s.positions.length}`;
}

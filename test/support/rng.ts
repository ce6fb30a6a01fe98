// Seeded, deterministic random numbers for test fixtures: xoshiro128** seeded through
// splitmix32, plus Box-Muller normals. Same seed and stream label give the same numbers on
// every machine and every run (integer arithmetic only; normals use Math.log/cos/sin).

/** 32-bit FNV-1a of a string (UTF-16 code units), used to derive stream seeds from labels. */
export function hashString32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** One step of splitmix32: returns [next state, output]. */
function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) >>> 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z = (z ^ (z >>> 16)) >>> 0;
  return [s, z];
}

const TWO_POW_M24 = 1 / 16777216;
const TWO_POW_M23 = 1 / 8388608;

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare = 0;
  private hasSpare = false;

  /** seed: any 32-bit integer; stream: an optional label giving an independent stream. */
  constructor(seed: number, stream = '') {
    let st = (seed ^ hashString32(stream)) >>> 0;
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [ns, z] = splitmix32(st);
      st = ns;
      out.push(z);
    }
    if ((out[0] | out[1] | out[2] | out[3]) === 0) out[0] = 1; // all-zero state is invalid
    this.s0 = out[0];
    this.s1 = out[1];
    this.s2 = out[2];
    this.s3 = out[3];
  }

  /** Next uniform 32-bit unsigned integer (xoshiro128**). */
  nextU32(): number {
    const s1 = this.s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** Uniform in [0, 1) with 24 bits of resolution (exactly representable as float32). */
  nextFloat(): number {
    return (this.nextU32() >>> 8) * TWO_POW_M24;
  }

  /** Uniform integer in [0, n). Slight modulo bias is irrelevant for fixtures. */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }

  /** Standard normal N(0, 1) via Box-Muller (pairs are cached). */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = ((this.nextU32() >>> 8) + 0.5) * TWO_POW_M24; // (0, 1)
    const u2 = (this.nextU32() >>> 8) * TWO_POW_M24;
    const r = Math.sqrt(-2 * Math.log(u1));
    const a = 2 * Math.PI * u2;
    this.spare = r * Math.sin(a);
    this.hasSpare = true;
    return r * Math.cos(a);
  }

  /**
   * Fill dst with mean + std * N(0, 1): Marsaglia's polar method with the generator state
   * kept in locals (several times faster than calling normal() per value).
   */
  fillNormal(dst: Float32Array, std = 1, mean = 0): Float32Array {
    const n = dst.length;
    let i = 0;
    if (this.hasSpare && n > 0) dst[i++] = mean + std * this.normal();
    let s0 = this.s0,
      s1 = this.s1,
      s2 = this.s2,
      s3 = this.s3;
    while (i + 1 < n) {
      // two uniforms in (-1, 1) from two xoshiro128** outputs
      let r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      let t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      const u = (r >> 8) * TWO_POW_M23 + TWO_POW_M24; // signed 24-bit, centred: (-1, 1)
      r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      const v = (r >> 8) * TWO_POW_M23 + TWO_POW_M24;
      const q = u * u + v * v;
      if (q >= 1) continue;
      const f = std * Math.sqrt((-2 * Math.log(q)) / q);
      dst[i] = mean + u * f;
      dst[i + 1] = mean + v * f;
      i += 2;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    if (i < n) dst[i] = mean + std * this.normal();
    return dst;
  }

  /** Fill dst with uniform random bytes. */
  fillBytes(dst: Uint8Array): Uint8Array {
    const n = dst.length;
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const r = this.nextU32();
      dst[i] = r & 0xff;
      dst[i + 1] = (r >>> 8) & 0xff;
      dst[i + 2] = (r >>> 16) & 0xff;
      dst[i + 3] = r >>> 24;
    }
    if (i < n) {
      let r = this.nextU32();
      for (; i < n; i++, r >>>= 8) dst[i] = r & 0xff;
    }
    return dst;
  }

  /** Fisher-Yates permutation of [0, n). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

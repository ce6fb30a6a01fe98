// Bit-exact TypeScript versions of ggml's reference conversions: f32<->f16, f32<->bf16 and the
// Q8_0 / Q4_0 block quantisers (quantize_row_q8_0_ref / quantize_row_q4_0_ref in
// ggml-quants.c), with float32 rounding at every step as the C code does.

import { GgmlType, ggmlTypeInfo, tensorNbytes } from './gguf';

export const QK = 32; // weights per Q4_0 / Q8_0 block
export const Q8_0_BLOCK_BYTES = 34; // f16 d + 32 x int8
export const Q4_0_BLOCK_BYTES = 18; // f16 d + 16 bytes of nibbles

const fround = Math.fround;
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

// ---------------------------------------------------------------- f16

/** float32 bit pattern -> IEEE binary16 bits, round to nearest even; NaN -> sign|0x7E00. */
export function f32BitsToF16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00; // NaN (ggml returns a quiet NaN, payload dropped)
  if (a >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds to infinity (or is infinity)
  if (a < 0x38800000) {
    // result is an f16 subnormal (or zero): value / 2^-24, rounded to nearest even
    f32Scratch[0] = 0;
    u32Scratch[0] = a;
    const v = f32Scratch[0] * 16777216; // exact in double
    const fl = Math.floor(v);
    const frac = v - fl;
    let r = fl;
    if (frac > 0.5 || (frac === 0.5 && (fl & 1) === 1)) r = fl + 1;
    return sign | r;
  }
  const mant = a & 0x7fffff;
  const exp = (a >>> 23) - 112; // rebias 127 -> 15
  let h = (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1; // carry may bump exponent
  return sign | h;
}

/** number (rounded to float32 first) -> f16 bits. */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToF16Bits(u32Scratch[0]);
}

/** f16 bits -> number (exact). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 5.960464477539063e-8; // 2^-24
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1024 + m) * Math.pow(2, e - 25);
}

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = f16ToF32(i);
  return t;
})();

/** Table lookup version of f16ToF32 (fast path for bulk decoding). */
export function f16BitsToF32Fast(h: number): number {
  return F16_TABLE[h & 0xffff];
}

export function f32ArrayToF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) dst[i] = f32BitsToF16Bits(bits[i]);
  return dst;
}

export function f16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) dst[i] = F16_TABLE[src[i]];
  return dst;
}

// ---------------------------------------------------------------- bf16

/** float32 bit pattern -> bf16 bits: round to nearest even; NaN forced quiet (as ggml). */
export function f32BitsToBf16Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToBf16(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToBf16Bits(u32Scratch[0]);
}

export function bf16ToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0];
}

export function f32ArrayToBf16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const u = bits[i];
    dst[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 64 : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return dst;
}

export function bf16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return dst;
}

// ---------------------------------------------------------------- Q8_0

/** Quantise x (length multiple of 32) into Q8_0 blocks, exactly as quantize_row_q8_0_ref. */
export function quantizeQ8_0(x: Float32Array, dst: Uint8Array = new Uint8Array((x.length / QK) * Q8_0_BLOCK_BYTES)): Uint8Array {
  if (x.length % QK !== 0) throw new Error(`Q8_0 needs a multiple of ${QK} values, got ${x.length}`);
  const nb = x.length / QK;
  for (let i = 0; i < nb; i++) {
    const base = i * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) {
      const v = Math.abs(x[base + j]);
      amax = amax > v ? amax : v; // MAX(amax, fabsf(v)) as the C macro expands
    }
    const d = fround(amax / 127);
    const id = d !== 0 ? fround(1 / d) : 0;
    const dh = f32ToF16(d);
    const o = i * Q8_0_BLOCK_BYTES;
    dst[o] = dh & 0xff;
    dst[o + 1] = dh >>> 8;
    for (let j = 0; j < QK; j++) {
      const x0 = fround(x[base + j] * id);
      // roundf (half away from zero); exact here because x0 + 0.5 is computed in double
      dst[o + 2 + j] = Math.trunc(x0 < 0 ? x0 - 0.5 : x0 + 0.5) & 0xff;
    }
  }
  return dst;
}

export function dequantizeQ8_0(src: Uint8Array, n: number, dst: Float32Array = new Float32Array(n)): Float32Array {
  if (n % QK !== 0) throw new Error(`Q8_0 needs a multiple of ${QK} values, got ${n}`);
  const nb = n / QK;
  for (let i = 0; i < nb; i++) {
    const o = i * Q8_0_BLOCK_BYTES;
    const d = F16_TABLE[src[o] | (src[o + 1] << 8)];
    const base = i * QK;
    for (let j = 0; j < QK; j++) {
      const q = (src[o + 2 + j] << 24) >> 24;
      dst[base + j] = q * d;
    }
  }
  return dst;
}

// ---------------------------------------------------------------- Q4_0

/** Quantise x (length multiple of 32) into Q4_0 blocks, exactly as quantize_row_q4_0_ref. */
export function quantizeQ4_0(x: Float32Array, dst: Uint8Array = new Uint8Array((x.length / QK) * Q4_0_BLOCK_BYTES)): Uint8Array {
  if (x.length % QK !== 0) throw new Error(`Q4_0 needs a multiple of ${QK} values, got ${x.length}`);
  const nb = x.length / QK;
  for (let i = 0; i < nb; i++) {
    const base = i * QK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[base + j];
      const av = Math.abs(v);
      if (amax < av) {
        amax = av;
        max = v;
      }
    }
    const d = fround(max / -8);
    const id = d !== 0 ? fround(1 / d) : 0;
    const dh = f32ToF16(d);
    const o = i * Q4_0_BLOCK_BYTES;
    dst[o] = dh & 0xff;
    dst[o + 1] = dh >>> 8;
    for (let j = 0; j < QK / 2; j++) {
      const x0 = fround(x[base + j] * id);
      const x1 = fround(x[base + QK / 2 + j] * id);
      // (int8_t)(x + 8.5f) truncates toward zero; the result is in [0, 16]
      const xi0 = Math.min(15, Math.trunc(fround(x0 + 8.5)));
      const xi1 = Math.min(15, Math.trunc(fround(x1 + 8.5)));
      dst[o + 2 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
    }
  }
  return dst;
}

export function dequantizeQ4_0(src: Uint8Array, n: number, dst: Float32Array = new Float32Array(n)): Float32Array {
  if (n % QK !== 0) throw new Error(`Q4_0 needs a multiple of ${QK} values, got ${n}`);
  const nb = n / QK;
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_0_BLOCK_BYTES;
    const d = F16_TABLE[src[o] | (src[o + 1] << 8)];
    const base = i * QK;
    for (let j = 0; j < QK / 2; j++) {
      const b = src[o + 2 + j];
      dst[base + j] = ((b & 0x0f) - 8) * d;
      dst[base + QK / 2 + j] = ((b >>> 4) - 8) * d;
    }
  }
  return dst;
}

// ---------------------------------------------------------------- any supported type

/** Types this module can convert from/to float32. */
export const CONVERTIBLE_TYPES: readonly GgmlType[] = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0];

/**
 * float32 values -> the on-disk bytes of `type` (little endian). For F32 the result views
 * x's memory; for other types a new buffer is returned unless `dst` is given.
 */
export function encodeTensor(type: GgmlType, x: Float32Array, dst?: Uint8Array): Uint8Array {
  const nbytes = tensorNbytes(type, [x.length]);
  if (dst && dst.length < nbytes) throw new Error(`encodeTensor: dst too small (${dst.length} < ${nbytes})`);
  switch (type) {
    case GgmlType.F32:
      if (dst) {
        dst.set(new Uint8Array(x.buffer, x.byteOffset, nbytes));
        return dst.subarray(0, nbytes);
      }
      return new Uint8Array(x.buffer, x.byteOffset, nbytes);
    case GgmlType.F16:
    case GgmlType.BF16: {
      const out = dst ?? new Uint8Array(nbytes);
      if (out.byteOffset % 2 !== 0) throw new Error('encodeTensor: dst must be 2-byte aligned');
      const u16 = new Uint16Array(out.buffer, out.byteOffset, x.length);
      if (type === GgmlType.F16) f32ArrayToF16(x, u16);
      else f32ArrayToBf16(x, u16);
      return out.subarray(0, nbytes);
    }
    case GgmlType.Q8_0:
      return quantizeQ8_0(x, dst ? dst.subarray(0, nbytes) : undefined);
    case GgmlType.Q4_0:
      return quantizeQ4_0(x, dst ? dst.subarray(0, nbytes) : undefined);
    default:
      throw new Error(`encodeTensor: unsupported type ${ggmlTypeInfo(type).name}`);
  }
}

/** On-disk bytes of `type` -> n float32 values. */
export function decodeTensor(type: GgmlType, src: Uint8Array, n: number, dst: Float32Array = new Float32Array(n)): Float32Array {
  switch (type) {
    case GgmlType.F32: {
      const copy = new Uint8Array(dst.buffer, dst.byteOffset, n * 4);
      copy.set(src.subarray(0, n * 4));
      return dst;
    }
    case GgmlType.F16:
    case GgmlType.BF16: {
      // src may be unaligned: assemble the 16-bit values byte by byte
      if (type === GgmlType.F16) {
        for (let i = 0; i < n; i++) dst[i] = F16_TABLE[src[2 * i] | (src[2 * i + 1] << 8)];
      } else {
        const out = new Uint32Array(dst.buffer, dst.byteOffset, n);
        for (let i = 0; i < n; i++) out[i] = (src[2 * i] << 16) | (src[2 * i + 1] << 24);
      }
      return dst;
    }
    case GgmlType.Q8_0:
      return dequantizeQ8_0(src, n, dst);
    case GgmlType.Q4_0:
      return dequantizeQ4_0(src, n, dst);
    default:
      throw new Error(`decodeTensor: unsupported type ${ggmlTypeInfo(type).name}`);
  }
}

// GGUF (v3, optionally v2) writer that streams tensor data to disk, and a small header reader
// that also reports the byte offset of every section, for fixtures and corruption tests.
// Layout: magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, KVs, tensor infos, pad, data.

import * as fs from 'node:fs';
import * as path from 'node:path';

// ---------------------------------------------------------------- types

/** GGUF metadata value types (gguf.h). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** ggml tensor types (ggml.h ids). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ4_NL = 20,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
}

export type GgmlTypeName = keyof typeof GgmlType;

export interface GgmlTypeInfo {
  name: string;
  /** weights per block */
  blockSize: number;
  /** bytes per block */
  typeSize: number;
}

const TYPE_INFO: Partial<Record<GgmlType, GgmlTypeInfo>> = {
  [GgmlType.F32]: { name: 'F32', blockSize: 1, typeSize: 4 },
  [GgmlType.F16]: { name: 'F16', blockSize: 1, typeSize: 2 },
  [GgmlType.Q4_0]: { name: 'Q4_0', blockSize: 32, typeSize: 18 },
  [GgmlType.Q4_1]: { name: 'Q4_1', blockSize: 32, typeSize: 20 },
  [GgmlType.Q5_0]: { name: 'Q5_0', blockSize: 32, typeSize: 22 },
  [GgmlType.Q5_1]: { name: 'Q5_1', blockSize: 32, typeSize: 24 },
  [GgmlType.Q8_0]: { name: 'Q8_0', blockSize: 32, typeSize: 34 },
  [GgmlType.Q8_1]: { name: 'Q8_1', blockSize: 32, typeSize: 36 },
  [GgmlType.Q2_K]: { name: 'Q2_K', blockSize: 256, typeSize: 84 },
  [GgmlType.Q3_K]: { name: 'Q3_K', blockSize: 256, typeSize: 110 },
  [GgmlType.Q4_K]: { name: 'Q4_K', blockSize: 256, typeSize: 144 },
  [GgmlType.Q5_K]: { name: 'Q5_K', blockSize: 256, typeSize: 176 },
  [GgmlType.Q6_K]: { name: 'Q6_K', blockSize: 256, typeSize: 210 },
  [GgmlType.Q8_K]: { name: 'Q8_K', blockSize: 256, typeSize: 292 },
  [GgmlType.IQ4_NL]: { name: 'IQ4_NL', blockSize: 32, typeSize: 18 },
  [GgmlType.IQ4_XS]: { name: 'IQ4_XS', blockSize: 256, typeSize: 136 },
  [GgmlType.I8]: { name: 'I8', blockSize: 1, typeSize: 1 },
  [GgmlType.I16]: { name: 'I16', blockSize: 1, typeSize: 2 },
  [GgmlType.I32]: { name: 'I32', blockSize: 1, typeSize: 4 },
  [GgmlType.I64]: { name: 'I64', blockSize: 1, typeSize: 8 },
  [GgmlType.F64]: { name: 'F64', blockSize: 1, typeSize: 8 },
  [GgmlType.BF16]: { name: 'BF16', blockSize: 1, typeSize: 2 },
};

export function ggmlTypeInfo(type: GgmlType): GgmlTypeInfo {
  const info = TYPE_INFO[type];
  if (!info) throw new Error(`unknown ggml type id ${type}`);
  return info;
}

export function ggmlTypeFromName(name: string): GgmlType {
  const t = (GgmlType as unknown as Record<string, number | undefined>)[name.toUpperCase()];
  if (t === undefined) throw new Error(`unknown ggml type name ${JSON.stringify(name)}`);
  return t as GgmlType;
}

/** Bytes of a tensor of `type` with shape `ne` (fastest dimension first). */
export function tensorNbytes(type: GgmlType, ne: readonly number[]): number {
  const { blockSize, typeSize, name } = ggmlTypeInfo(type);
  if (ne.length === 0) throw new Error('tensor needs at least one dimension');
  if (ne[0] % blockSize !== 0) {
    throw new Error(`${name} tensor: ne[0]=${ne[0]} is not a multiple of the block size ${blockSize}`);
  }
  let rows = 1;
  for (let i = 1; i < ne.length; i++) rows *= ne[i];
  return (ne[0] / blockSize) * typeSize * rows;
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

// ---------------------------------------------------------------- metadata values

export type GgufScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;
export type GgufScalar = number | bigint | boolean | string;

export type GgufKv =
  | { key: string; type: GgufScalarType; value: GgufScalar }
  | { key: string; type: GgufValueType.ARRAY; itemType: GgufScalarType; value: readonly GgufScalar[] };

/** Shorthand constructors for metadata entries. */
export const kv = {
  u8: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.UINT8, value }),
  i8: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.INT8, value }),
  u16: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.UINT16, value }),
  i16: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.INT16, value }),
  u32: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.UINT32, value }),
  i32: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.INT32, value }),
  f32: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.FLOAT32, value }),
  bool: (key: string, value: boolean): GgufKv => ({ key, type: GgufValueType.BOOL, value }),
  str: (key: string, value: string): GgufKv => ({ key, type: GgufValueType.STRING, value }),
  u64: (key: string, value: number | bigint): GgufKv => ({ key, type: GgufValueType.UINT64, value }),
  i64: (key: string, value: number | bigint): GgufKv => ({ key, type: GgufValueType.INT64, value }),
  f64: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.FLOAT64, value }),
  arr: (key: string, itemType: GgufScalarType, value: readonly GgufScalar[]): GgufKv => ({
    key,
    type: GgufValueType.ARRAY,
    itemType,
    value,
  }),
};

/** Growable little-endian byte buffer. */
class ByteWriter {
  buf = Buffer.alloc(1 << 16);
  len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const nb = Buffer.alloc(cap);
    this.buf.copy(nb, 0, 0, this.len);
    this.buf = nb;
  }
  u8(v: number) {
    this.ensure(1);
    this.buf.writeUInt8(v, this.len);
    this.len += 1;
  }
  i8(v: number) {
    this.ensure(1);
    this.buf.writeInt8(v, this.len);
    this.len += 1;
  }
  u16(v: number) {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.len);
    this.len += 2;
  }
  i16(v: number) {
    this.ensure(2);
    this.buf.writeInt16LE(v, this.len);
    this.len += 2;
  }
  u32(v: number) {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
  }
  i32(v: number) {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.len);
    this.len += 4;
  }
  f32(v: number) {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.len);
    this.len += 4;
  }
  f64(v: number) {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
  }
  u64(v: number | bigint) {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.len);
    this.len += 8;
  }
  i64(v: number | bigint) {
    this.ensure(8);
    this.buf.writeBigInt64LE(BigInt(v), this.len);
    this.len += 8;
  }
  str(s: string) {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    this.ensure(n);
    this.buf.write(s, this.len, n, 'utf8');
    this.len += n;
  }
  pad(alignment: number) {
    const target = alignUp(this.len, alignment);
    this.ensure(target - this.len);
    this.buf.fill(0, this.len, target);
    this.len = target;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

function writeScalar(w: ByteWriter, type: GgufScalarType, v: GgufScalar, key: string): void {
  const num = (): number => {
    if (typeof v !== 'number') throw new Error(`GGUF key ${key}: expected a number, got ${typeof v}`);
    return v;
  };
  switch (type) {
    case GgufValueType.UINT8:
      return w.u8(num());
    case GgufValueType.INT8:
      return w.i8(num());
    case GgufValueType.UINT16:
      return w.u16(num());
    case GgufValueType.INT16:
      return w.i16(num());
    case GgufValueType.UINT32:
      return w.u32(num());
    case GgufValueType.INT32:
      return w.i32(num());
    case GgufValueType.FLOAT32:
      return w.f32(num());
    case GgufValueType.FLOAT64:
      return w.f64(num());
    case GgufValueType.BOOL:
      if (typeof v !== 'boolean') throw new Error(`GGUF key ${key}: expected a boolean`);
      return w.u8(v ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof v !== 'string') throw new Error(`GGUF key ${key}: expected a string`);
      return w.str(v);
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
      if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`GGUF key ${key}: expected a number or bigint`);
      return type === GgufValueType.UINT64 ? w.u64(v) : w.i64(v);
    default:
      throw new Error(`GGUF key ${key}: unsupported value type ${type as number}`);
  }
}

// ---------------------------------------------------------------- writer

/** Producer of a tensor's bytes: call write(chunk) in order; chunks are copied immediately. */
export type TensorDataProducer = (write: (chunk: Uint8Array) => void) => void;

export interface GgufTensorSpec {
  name: string;
  /** shape, fastest dimension first */
  ne: readonly number[];
  type: GgmlType;
  /** the bytes, or a producer streaming them */
  data: Uint8Array | TensorDataProducer;
  /** byte size override, for types without a size rule here (default: from ne and type) */
  nbytes?: number;
}

export interface GgufWriteOptions {
  /** GGUF version written in the header: 3 (default) or 2 (same layout). */
  version?: 2 | 3;
  /**
   * data alignment used for the layout; when not 32 and kv has no general.alignment, that key
   * is added. A general.alignment entry in kv is written as given (even if it disagrees).
   */
  alignment?: number;
  kv: readonly GgufKv[];
  tensors: readonly GgufTensorSpec[];
  /** bytes staged before each write() system call (default 8 MiB) */
  chunkBytes?: number;
}

export interface GgufWriteResult {
  path: string;
  fileSize: number;
  /** absolute offset of the tensor data section */
  dataOffset: number;
  alignment: number;
}

/**
 * Write a GGUF file at `filePath`. Tensor data is streamed tensor by tensor through a small
 * staging buffer; the file is written under a temporary name and renamed when complete.
 */
export function writeGguf(filePath: string, opts: GgufWriteOptions): GgufWriteResult {
  const version = opts.version ?? 3;
  const kvs = [...opts.kv];
  const alignKv = kvs.find((e) => e.key === 'general.alignment');
  let alignment = opts.alignment ?? (alignKv && typeof alignKv.value === 'number' ? alignKv.value : 32);
  if (!alignKv && opts.alignment !== undefined && opts.alignment !== 32) {
    kvs.push(kv.u32('general.alignment', opts.alignment));
  }
  if (!Number.isInteger(alignment) || alignment <= 0) alignment = 32;

  // header, KVs and tensor infos in memory (a few MB at most, with a full vocabulary)
  const w = new ByteWriter();
  w.u8(0x47);
  w.u8(0x47);
  w.u8(0x55);
  w.u8(0x46); // "GGUF"
  w.u32(version);
  w.u64(opts.tensors.length);
  w.u64(kvs.length);
  for (const e of kvs) {
    w.str(e.key);
    w.u32(e.type);
    if (e.type === GgufValueType.ARRAY) {
      w.u32(e.itemType);
      w.u64(e.value.length);
      for (const item of e.value) writeScalar(w, e.itemType, item, e.key);
    } else {
      writeScalar(w, e.type, e.value, e.key);
    }
  }
  const sizes = opts.tensors.map((t) => t.nbytes ?? tensorNbytes(t.type, t.ne));
  let rel = 0;
  opts.tensors.forEach((t, i) => {
    w.str(t.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.u64(d);
    w.u32(t.type);
    w.u64(rel);
    rel += alignUp(sizes[i], alignment);
  });
  w.pad(alignment);
  const dataOffset = w.len;

  const dir = path.dirname(filePath);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${filePath}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const fd = fs.openSync(tmp, 'w');
  const chunkBytes = opts.chunkBytes ?? 8 << 20;
  const stage = Buffer.allocUnsafe(chunkBytes);
  let staged = 0;
  let fileSize = 0;
  const flush = () => {
    let off = 0;
    while (off < staged) off += fs.writeSync(fd, stage, off, staged - off);
    fileSize += staged;
    staged = 0;
  };
  const put = (chunk: Uint8Array) => {
    let off = 0;
    while (off < chunk.length) {
      if (staged === 0 && chunk.length - off >= chunkBytes) {
        // large chunk: write it straight through
        let o = off;
        while (o < chunk.length) o += fs.writeSync(fd, chunk, o, chunk.length - o);
        fileSize += chunk.length - off;
        return;
      }
      const n = Math.min(chunkBytes - staged, chunk.length - off);
      stage.set(chunk.subarray(off, off + n), staged);
      staged += n;
      off += n;
      if (staged === chunkBytes) flush();
    }
  };
  const zeros = new Uint8Array(alignment);
  try {
    put(w.bytes());
    opts.tensors.forEach((t, i) => {
      let written = 0;
      const write = (chunk: Uint8Array) => {
        written += chunk.length;
        if (written > sizes[i]) throw new Error(`tensor ${t.name}: producer wrote more than ${sizes[i]} bytes`);
        put(chunk);
      };
      if (typeof t.data === 'function') t.data(write);
      else write(t.data);
      if (written !== sizes[i]) throw new Error(`tensor ${t.name}: expected ${sizes[i]} bytes, producer wrote ${written}`);
      const padN = alignUp(sizes[i], alignment) - sizes[i];
      if (padN > 0) put(zeros.subarray(0, padN));
    });
    flush();
    fs.closeSync(fd);
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* nothing to remove */
    }
    throw err;
  }
  fs.renameSync(tmp, filePath);
  return { path: filePath, fileSize, dataOffset, alignment };
}

// ---------------------------------------------------------------- reader

export type GgufValue = GgufScalar | GgufValue[];

export interface GgufKvInfo {
  key: string;
  type: GgufValueType;
  /** element type for arrays */
  itemType?: GgufValueType;
  /** array length for arrays */
  length?: number;
  /** the value (arrays materialised unless readGgufHeader was told to skip them) */
  value: GgufValue | undefined;
  /** absolute offset of this entry (its key length) */
  offset: number;
  /** absolute offset of its type field */
  typeOffset: number;
  /** absolute offset of its value */
  valueOffset: number;
  /** absolute offset one past its end */
  end: number;
}

export interface GgufTensorInfo {
  name: string;
  ne: number[];
  type: GgmlType;
  /** offset relative to the data section, as stored */
  offset: number;
  /** absolute file offset of the data (dataStart + offset) */
  dataOffset: number;
  /** byte size, when the type is known */
  nbytes: number | undefined;
  /** absolute offsets of this tensor-info record and one past its end */
  infoOffset: number;
  infoEnd: number;
}

export interface GgufHeader {
  version: number;
  nTensors: number;
  nKv: number;
  alignment: number;
  kv: GgufKvInfo[];
  tensors: GgufTensorInfo[];
  sections: {
    /** magic at 0, version at 4, n_tensors at 8, n_kv at 16 */
    kvStart: number;
    kvEnd: number;
    tensorInfoStart: number;
    tensorInfoEnd: number;
    /** start of the tensor data (tensorInfoEnd padded to the alignment) */
    dataStart: number;
    fileSize: number;
  };
  get(key: string): GgufValue | undefined;
}

class FileReader {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;
  constructor(
    private fd: number,
    readonly size: number,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.size) throw new Error(`GGUF truncated: need ${n} bytes at offset ${this.pos}, file has ${this.size}`);
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length) return;
    const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
    const b = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const r = fs.readSync(this.fd, b, got, len - got, this.pos + got);
      if (r === 0) break;
      got += r;
    }
    this.buf = b.subarray(0, got);
    this.bufStart = this.pos;
    if (got < n) throw new Error(`GGUF truncated at offset ${this.pos}`);
  }
  private at(n: number): number {
    this.need(n);
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }
  u8() {
    const o = this.at(1);
    return this.buf.readUInt8(o);
  }
  i8() {
    const o = this.at(1);
    return this.buf.readInt8(o);
  }
  u16() {
    const o = this.at(2);
    return this.buf.readUInt16LE(o);
  }
  i16() {
    const o = this.at(2);
    return this.buf.readInt16LE(o);
  }
  u32() {
    const o = this.at(4);
    return this.buf.readUInt32LE(o);
  }
  i32() {
    const o = this.at(4);
    return this.buf.readInt32LE(o);
  }
  f32() {
    const o = this.at(4);
    return this.buf.readFloatLE(o);
  }
  f64() {
    const o = this.at(8);
    return this.buf.readDoubleLE(o);
  }
  u64(): number | bigint {
    const o = this.at(8);
    return safeNum(this.buf.readBigUInt64LE(o));
  }
  i64(): number | bigint {
    const o = this.at(8);
    return safeNum(this.buf.readBigInt64LE(o));
  }
  u64n(what: string): number {
    const o = this.at(8);
    const v = this.buf.readBigUInt64LE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`GGUF ${what} too large: ${v}`);
    return Number(v);
  }
  str(): string {
    const n = this.u64n('string length');
    if (n > this.size - this.pos) throw new Error(`GGUF string length ${n} at offset ${this.pos - 8} runs past the end of the file`);
    if (n > 64 << 20) {
      const b = Buffer.allocUnsafe(n);
      fs.readSync(this.fd, b, 0, n, this.pos);
      this.pos += n;
      return b.toString('utf8');
    }
    const o = this.at(n);
    return this.buf.toString('utf8', o, o + n);
  }
  skip(n: number) {
    if (this.pos + n > this.size) throw new Error(`GGUF truncated at offset ${this.pos}`);
    this.pos += n;
  }
}

function safeNum(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

const SCALAR_SIZE: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

function readScalar(r: FileReader, type: GgufValueType): GgufScalar {
  switch (type) {
    case GgufValueType.UINT8:
      return r.u8();
    case GgufValueType.INT8:
      return r.i8();
    case GgufValueType.UINT16:
      return r.u16();
    case GgufValueType.INT16:
      return r.i16();
    case GgufValueType.UINT32:
      return r.u32();
    case GgufValueType.INT32:
      return r.i32();
    case GgufValueType.FLOAT32:
      return r.f32();
    case GgufValueType.FLOAT64:
      return r.f64();
    case GgufValueType.BOOL:
      return r.u8() !== 0;
    case GgufValueType.STRING:
      return r.str();
    case GgufValueType.UINT64:
      return r.u64();
    case GgufValueType.INT64:
      return r.i64();
    default:
      throw new Error(`GGUF: unknown value type ${type} at offset ${r.pos - 4}`);
  }
}

export interface ReadGgufHeaderOptions {
  /** keep array values (default true); false records only their type and length */
  arrays?: boolean;
}

/** Parse a GGUF file's header, metadata and tensor infos (not the tensor data). */
export function readGgufHeader(filePath: string, opts: ReadGgufHeaderOptions = {}): GgufHeader {
  const keepArrays = opts.arrays ?? true;
  const fd = fs.openSync(filePath, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const r = new FileReader(fd, size);
    const magic = [r.u8(), r.u8(), r.u8(), r.u8()];
    if (String.fromCharCode(...magic) !== 'GGUF')
      throw new Error(`not a GGUF file (magic ${JSON.stringify(String.fromCharCode(...magic))})`);
    const version = r.u32();
    if (version < 2 || version > 3) throw new Error(`unsupported GGUF version ${version}`);
    const nTensors = r.u64n('n_tensors');
    const nKv = r.u64n('n_kv');
    const kvStart = r.pos;
    const kvs: GgufKvInfo[] = [];
    for (let i = 0; i < nKv; i++) {
      const offset = r.pos;
      const key = r.str();
      const typeOffset = r.pos;
      const type = r.u32() as GgufValueType;
      const valueOffset = r.pos;
      let value: GgufValue | undefined;
      let itemType: GgufValueType | undefined;
      let length: number | undefined;
      if (type === GgufValueType.ARRAY) {
        itemType = r.u32() as GgufValueType;
        length = r.u64n(`array length of ${key}`);
        if (itemType === GgufValueType.ARRAY) throw new Error(`GGUF key ${key}: nested arrays are not supported`);
        const fixed = SCALAR_SIZE[itemType];
        if (!keepArrays && fixed !== undefined) {
          r.skip(fixed * length);
        } else if (!keepArrays && itemType === GgufValueType.STRING) {
          for (let j = 0; j < length; j++) r.skip(r.u64n('string length'));
        } else {
          const items: GgufScalar[] = [];
          for (let j = 0; j < length; j++) items.push(readScalar(r, itemType));
          if (keepArrays) value = items;
        }
      } else {
        value = readScalar(r, type);
      }
      kvs.push({ key, type, itemType, length, value, offset, typeOffset, valueOffset, end: r.pos });
    }
    const kvEnd = r.pos;
    const alignKv = kvs.find((e) => e.key === 'general.alignment');
    const alignment = alignKv && typeof alignKv.value === 'number' ? alignKv.value : 32;
    const tensorInfoStart = r.pos;
    const partial: Omit<GgufTensorInfo, 'dataOffset'>[] = [];
    for (let i = 0; i < nTensors; i++) {
      const infoOffset = r.pos;
      const name = r.str();
      const nDims = r.u32();
      if (nDims > 4) throw new Error(`tensor ${name}: ${nDims} dimensions (max 4)`);
      const ne: number[] = [];
      for (let d = 0; d < nDims; d++) ne.push(r.u64n(`ne of ${name}`));
      const type = r.u32() as GgmlType;
      const offset = r.u64n(`offset of ${name}`);
      let nbytes: number | undefined;
      try {
        nbytes = tensorNbytes(type, ne);
      } catch {
        nbytes = undefined;
      }
      partial.push({ name, ne, type, offset, nbytes, infoOffset, infoEnd: r.pos });
    }
    const tensorInfoEnd = r.pos;
    const dataStart = alignUp(tensorInfoEnd, alignment);
    const tensors = partial.map((t) => ({ ...t, dataOffset: dataStart + t.offset }));
    const map = new Map(kvs.map((e) => [e.key, e.value] as const));
    return {
      version,
      nTensors,
      nKv,
      alignment,
      kv: kvs,
      tensors,
      sections: { kvStart, kvEnd, tensorInfoStart, tensorInfoEnd, dataStart, fileSize: size },
      get: (key: string) => map.get(key),
    };
  } finally {
    fs.closeSync(fd);
  }
}

/** Read one tensor's bytes (for tests on small files). */
export function readTensorBytes(filePath: string, header: GgufHeader, name: string): Uint8Array {
  const t = header.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`tensor ${name} not in ${filePath}`);
  if (t.nbytes === undefined) throw new Error(`tensor ${name}: unknown size for type ${t.type}`);
  const b = Buffer.allocUnsafe(t.nbytes);
  const fd = fs.openSync(filePath, 'r');
  try {
    let got = 0;
    while (got < t.nbytes) {
      const n = fs.readSync(fd, b, got, t.nbytes - got, t.dataOffset + got);
      if (n === 0) throw new Error(`tensor ${name}: file truncated`);
      got += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

// The one thing the downloader needs from a GGUF header before the engine sees the file: its
// `general.architecture`. Reads the start of a file (magic "GGUF", u32 version, u64 tensor count,
// u64 metadata count, then key/value pairs, all little-endian) from a byte prefix and stops at that
// key; it never needs the whole file. Pure: no Node, no vscode.

/** The architectures (general.architecture) our engine runs; the engine's own list is engineInfo().architectures. */
export const SUPPORTED_ARCHITECTURES: readonly string[] = ['smallthinker'];

export type GgufArchitecture =
  /** The key was found. */
  | { kind: 'found'; architecture: string }
  /** Every metadata entry was read and none is general.architecture. */
  | { kind: 'missing' }
  /** The prefix ends before the key (or the end of the metadata): read more bytes. */
  | { kind: 'truncated' }
  /** Not a GGUF file, or one no loader reads (`reason` says why, for a message). */
  | { kind: 'invalid'; reason: string };

const STRING = 8;
const ARRAY = 9;
/** Byte sizes of the scalar value types (gguf.h ids 0-12; 8 and 9 have variable size). */
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
/** Longer keys (or an architecture name) mean a damaged header. */
const MAX_KEY_BYTES = 65_536;

class Truncated extends Error {}
class Invalid extends Error {}

/** Finds general.architecture in the first bytes of a GGUF file. */
export function ggufArchitecture(bytes: Uint8Array): GgufArchitecture {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  const need = (n: number): void => {
    if (offset + n > bytes.byteLength) throw new Truncated();
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(offset, true);
    offset += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(offset, true);
    offset += 8;
    // Counts and lengths beyond 2^53 are damage, not data.
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Invalid(`a length of ${v} bytes`);
    return Number(v);
  };
  const skip = (n: number): void => {
    need(n);
    offset += n;
  };
  const str = (limit: number): string => {
    const length = u64();
    if (length > limit) throw new Invalid(`a ${length}-byte string where a name belongs`);
    need(length);
    const text = new TextDecoder('utf-8').decode(bytes.subarray(offset, offset + length));
    offset += length;
    return text;
  };
  const skipValue = (type: number): void => {
    if (type === STRING) {
      skip(u64());
    } else if (type === ARRAY) {
      const itemType = u32();
      const count = u64();
      if (itemType === ARRAY) throw new Invalid('a nested array in its metadata');
      if (itemType === STRING) for (let i = 0; i < count; i++) skip(u64());
      else if (SCALAR_BYTES[itemType] !== undefined) skip(SCALAR_BYTES[itemType] * count);
      else throw new Invalid(`an unknown metadata type ${itemType}`);
    } else if (SCALAR_BYTES[type] !== undefined) {
      skip(SCALAR_BYTES[type]);
    } else {
      throw new Invalid(`an unknown metadata type ${type}`);
    }
  };

  try {
    need(4);
    if (String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]) !== 'GGUF') {
      return { kind: 'invalid', reason: 'it does not start with "GGUF"' };
    }
    offset = 4;
    const version = u32();
    if (version !== 2 && version !== 3) {
      return { kind: 'invalid', reason: `it is GGUF version ${version}, and only versions 2 and 3 are read` };
    }
    u64(); // tensors
    const kvCount = u64();
    for (let i = 0; i < kvCount; i++) {
      const key = str(MAX_KEY_BYTES);
      const type = u32();
      if (key === 'general.architecture') {
        if (type !== STRING) return { kind: 'invalid', reason: 'its general.architecture is not a string' };
        return { kind: 'found', architecture: str(MAX_KEY_BYTES) };
      }
      skipValue(type);
    }
    return { kind: 'missing' };
  } catch (err) {
    if (err instanceof Truncated) return { kind: 'truncated' };
    if (err instanceof Invalid) return { kind: 'invalid', reason: `its header holds ${err.message}` };
    throw err;
  }
}

// Files in PowerInfer's own layout (the `.powerinfer.gguf` files of the official SmallThinker
// repositories, ENGINE-SPEC section 8), made from one of our F32/F16 fixtures the way PowerInfer's
// converter makes them: `ffn_down_exps` transposed (`--transpose-down`: {n_embd, n_ff, n_expert},
// one row per neuron), an `lm_head_profiler.weight` tensor llama.cpp's runtime does not know,
// and no `expert_gating_func` key (PowerInfer's converter writes it only for softmax gating).
// Quantized versions come from llama-quantize `--pure`, as PowerInfer's README does it.
import * as fs from 'node:fs';

import { ensureFile } from './cache';
import { GgmlType, type GgufKv, type GgufScalarType, GgufValueType, readGgufHeader, readTensorBytes, writeGguf } from './gguf';

const ELEMENT_BYTES: Partial<Record<GgmlType, number>> = { [GgmlType.F32]: 4, [GgmlType.F16]: 2 };

/** `source` (F32/F16 weights in llama.cpp's layout) rewritten in PowerInfer's layout. */
export function powerInferLayout(source: string): Promise<string> {
  const target = source.replace(/\.gguf$/, '') + '.powerinfer.gguf';
  return ensureFile(target, () => {
    const header = readGgufHeader(source);
    const kvs: GgufKv[] = [];
    for (const e of header.kv) {
      if (e.key.endsWith('.expert_gating_func') || e.key === 'general.alignment') continue;
      if (e.type === GgufValueType.ARRAY)
        kvs.push({ key: e.key, type: e.type, itemType: e.itemType as GgufScalarType, value: e.value as never });
      else kvs.push({ key: e.key, type: e.type as GgufScalarType, value: e.value as never });
    }
    const nEmbd = header.tensors.find((t) => t.name === 'output_norm.weight')!.ne[0];
    const tensors = header.tensors.map((t) => {
      const bytes = readTensorBytes(source, header, t.name);
      if (!t.name.endsWith('.ffn_down_exps.weight')) return { name: t.name, ne: t.ne, type: t.type, data: bytes };
      const [nff, ne1, nx] = t.ne;
      const size = ELEMENT_BYTES[t.type];
      if (!size || ne1 !== nEmbd) throw new Error(`powerInferLayout: ${t.name} must be F32/F16 {n_ff, n_embd, n_expert}`);
      const out = new Uint8Array(bytes.length);
      for (let e = 0; e < nx; e++) {
        const base = e * nff * nEmbd * size;
        for (let d = 0; d < nEmbd; d++)
          for (let j = 0; j < nff; j++) {
            const from = base + (d * nff + j) * size;
            out.set(bytes.subarray(from, from + size), base + (j * nEmbd + d) * size);
          }
      }
      return { name: t.name, ne: [nEmbd, nff, nx], type: t.type, data: out };
    });
    // PowerInfer's sparse LM head predictor; its shape is its own business ({-1, 1} in its loader)
    tensors.push({ name: 'lm_head_profiler.weight', ne: [256, 1], type: GgmlType.F32, data: new Uint8Array(256 * 4) });
    const tmp = `${target}.${process.pid}.tmp`;
    writeGguf(tmp, { version: header.version === 2 ? 2 : 3, alignment: header.alignment, kv: kvs, tensors });
    fs.renameSync(tmp, target);
  });
}

// Files exactly as llama.cpp's llama-quantize writes them: llama_model_quantize of the libllama
// that node-llama-cpp ships (ENGINE-SPEC section 8), called by a small C++ driver
// (test/support/native/llama_quantize.cpp, built once into build/test/). Results are cached in
// the fixture cache next to their F32/F16 source, one file per (source, ftype).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ensureFile } from './cache';

/** llama_ftype values (include/llama.h): the file types llama-quantize is asked for by name. */
export const LLAMA_FTYPE = {
  Q4_0: 2,
  Q4_1: 3,
  Q8_0: 7,
  Q5_0: 8,
  Q5_1: 9,
  Q2_K: 10,
  Q3_K_S: 11,
  Q3_K_M: 12,
  Q3_K_L: 13,
  Q4_K_S: 14,
  Q4_K_M: 15,
  Q5_K_S: 16,
  Q5_K_M: 17,
  Q6_K: 18,
  IQ4_NL: 25,
  IQ4_XS: 30,
} as const;
export type LlamaFtype = keyof typeof LLAMA_FTYPE;

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DRIVER_SRC = path.join(ROOT, 'test', 'support', 'native', 'llama_quantize.cpp');
const DRIVER = path.join(ROOT, 'build', 'test', 'llama_quantize');

/** The directory of node-llama-cpp's prebuilt libllama for this platform. */
export function llamaLibDir(): string {
  // the package exports no package.json: find it as a folder on node's module paths
  const name = `${process.platform}-${process.arch}`;
  for (const dir of require.resolve.paths('@node-llama-cpp/x') ?? []) {
    const bins = path.join(dir, '@node-llama-cpp', name, 'bins', name);
    if (fs.existsSync(bins)) return bins;
  }
  throw new Error(`node-llama-cpp's prebuilt binaries for ${name} (@node-llama-cpp/${name}) are not installed`);
}

function driver(): string {
  const stale = !fs.existsSync(DRIVER) || fs.statSync(DRIVER).mtimeMs < fs.statSync(DRIVER_SRC).mtimeMs;
  if (stale) {
    fs.mkdirSync(path.dirname(DRIVER), { recursive: true });
    const tmp = `${DRIVER}.${process.pid}.tmp`;
    execFileSync('g++', ['-std=c++17', '-O1', '-Wall', '-Wextra', DRIVER_SRC, '-ldl', '-o', tmp], { stdio: 'inherit' });
    fs.renameSync(tmp, DRIVER);
  }
  return DRIVER;
}

/**
 * `source` (an F32/F16/BF16 GGUF) quantized to `ftype` by llama.cpp's own quantizer, with its
 * type mixes (output.weight in Q6_K for Q4_0, Q6_K layers in Q4_K_M, fallbacks for rows that are
 * not a multiple of 256, ...), or every matrix in the ftype's type with `pure` (llama-quantize
 * --pure). `requantize`: the source may be quantized itself (Q8_0, Q4_0: --allow-requantize).
 * Returns the cached file's path.
 */
export function quantizeWithLlama(source: string, ftype: LlamaFtype, opts: { pure?: boolean; requantize?: boolean } = {}): Promise<string> {
  const target = source.replace(/\.gguf$/, '') + `.llama-${opts.pure ? 'pure-' : ''}${ftype.toLowerCase()}.gguf`;
  return ensureFile(target, () => {
    const libDir = llamaLibDir();
    const tmp = `${target}.${process.pid}.tmp`;
    const args = [
      path.join(libDir, 'libllama.v0.5.0.so'),
      source,
      tmp,
      String(LLAMA_FTYPE[ftype]),
      '2',
      ...(opts.pure ? ['pure'] : []),
      ...(opts.requantize ? ['requantize'] : []),
    ];
    const r = spawnSync(driver(), args, {
      env: { ...process.env, LD_LIBRARY_PATH: [libDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(path.delimiter) },
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0) {
      fs.rmSync(tmp, { force: true });
      throw new Error(
        `llama_model_quantize ${ftype} of ${source} failed (exit ${r.status ?? r.signal}): ${(r.stderr || '').trim().split('\n').slice(-5).join(' | ')}`,
      );
    }
    fs.renameSync(tmp, target);
  });
}

// The model catalogue (src/common/modelCatalog.ts): the default entry is the default URL, names
// and sizes are what the official repository publishes, and each quick pick item says whether it
// fits this machine's memory; and the GGUF header reader (src/common/ggufHeader.ts) it relies on.
// Run: node test/run.mjs --node modelCatalog
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ggufArchitecture } from '../../src/common/ggufHeader';
import { DEFAULT_MODEL_URL } from '../../src/common/ids';
import {
  catalogEntryForUrl,
  catalogPickItems,
  chooseMemoryBudgetMB,
  EDITOR_ROOM_BYTES,
  defaultCatalogEntry,
  effectiveDownloadUrl,
  LEGACY_DEFAULT_MODEL_URLS,
  memoryFit,
  memoryFitText,
  memoryMinimum,
  memoryNeeded,
  MODEL_CATALOG,
  RUNTIME_OVERHEAD_BYTES,
  sizeText,
} from '../../src/common/modelCatalog';
import { fileNameFromUrl } from '../../src/node/download';
import { GgmlType, GgufValueType, kv, writeGguf } from '../support/gguf';

const GiB = 1024 ** 3;
const KV = 1024 * 1024 * 1024; // the default smallthinker.engine.memoryLimitMB

describe('catalogue', () => {
  test('the default entry is first, official, 4B Q4_0 with its published size, at DEFAULT_MODEL_URL', () => {
    const def = defaultCatalogEntry();
    assert.equal(MODEL_CATALOG[0], def);
    assert.equal(MODEL_CATALOG.filter((e) => e.isDefault).length, 1);
    assert.equal(def.url, DEFAULT_MODEL_URL);
    assert.equal(
      def.url,
      'https://huggingface.co/Tiiny/SmallThinker-4BA0.6B-Instruct-GGUF/resolve/main/SmallThinker-4B-A0.6B-Instruct.Q4_0.gguf',
    );
    assert.equal(def.label, 'SmallThinker 4B-A0.6B · Q4_0 (official)');
    assert.equal(def.sizeBytes, 2_472_877_152);
    assert.equal(def.sizeExact, true);
    assert.equal(fileNameFromUrl(def.url), 'SmallThinker-4B-A0.6B-Instruct.Q4_0.gguf');
  });

  test('every entry: a unique id, a .gguf file saved under its own name, an https Hugging Face URL, a sane size', () => {
    assert.equal(new Set(MODEL_CATALOG.map((e) => e.id)).size, MODEL_CATALOG.length);
    assert.equal(new Set(MODEL_CATALOG.map((e) => e.file)).size, MODEL_CATALOG.length, 'no two entries share a file on disk');
    for (const e of MODEL_CATALOG) {
      assert.match(e.file, /\.gguf$/, e.id);
      assert.doesNotMatch(e.file, /\.powerinfer\.gguf$/, `${e.id}: PowerInfer-only files do not run in llama.cpp-style engines`);
      assert.equal(e.url, `https://huggingface.co/${e.repo}/resolve/main/${e.file}`);
      assert.equal(fileNameFromUrl(e.url), e.file);
      assert.equal(catalogEntryForUrl(e.url), e);
      assert.match(
        e.label,
        new RegExp(`^SmallThinker ${e.family === '4B' ? '4B-A0\\.6B' : '21B-A3B'} · ${e.quantization} \\(${e.source}\\)$`),
      );
      const [min, max] = e.family === '4B' ? [1.5e9, 3.5e9] : [10e9, 25e9];
      assert.ok(e.sizeBytes > min && e.sizeBytes < max, `${e.id}: ${e.sizeBytes}`);
      if (e.source === 'official') assert.equal(e.repo, 'Tiiny/SmallThinker-4BA0.6B-Instruct-GGUF');
    }
    // The official file names put a dot before the quantization (the old default had a dash).
    for (const e of MODEL_CATALOG.filter((x) => x.source === 'official')) assert.match(e.file, /-Instruct\.Q\w+\.gguf$/);
    assert.equal(MODEL_CATALOG.find((e) => e.id === '4b-q4_k_s')?.sizeBytes, 2_491_948_128);
    assert.ok(MODEL_CATALOG.some((e) => e.family === '21B'));
  });

  test("the old default URL (PowerInfer, dash before Q4_0) means today's default; a custom URL is kept", () => {
    assert.equal(effectiveDownloadUrl(LEGACY_DEFAULT_MODEL_URLS[0]), DEFAULT_MODEL_URL);
    assert.equal(effectiveDownloadUrl(` ${LEGACY_DEFAULT_MODEL_URLS[0]} `), DEFAULT_MODEL_URL);
    assert.equal(effectiveDownloadUrl(''), DEFAULT_MODEL_URL);
    assert.equal(effectiveDownloadUrl(undefined), DEFAULT_MODEL_URL);
    assert.equal(effectiveDownloadUrl(' https://example.com/my.gguf '), 'https://example.com/my.gguf');
    assert.equal(catalogEntryForUrl('https://example.com/my.gguf'), undefined);
  });
});

describe('memory', () => {
  test('needed = the file (memory-mapped) + the KV limit + the runtime', () => {
    assert.equal(memoryNeeded({ sizeBytes: 2 * GiB }, KV), 3 * GiB + RUNTIME_OVERHEAD_BYTES);
    assert.equal(memoryFit(4 * GiB, { free: 5 * GiB, total: 16 * GiB }), 'fits');
    assert.equal(memoryFit(4 * GiB, { free: 4 * GiB, total: 16 * GiB }), 'fits');
    assert.equal(memoryFit(4 * GiB, { free: 2 * GiB, total: 16 * GiB }), 'tight');
    assert.equal(memoryFit(20 * GiB, { free: 2 * GiB, total: 16 * GiB }), 'tooBig');
  });

  test('sizes: exact as bytes, estimates as "about"', () => {
    assert.equal(sizeText({ sizeBytes: 2_472_877_152, sizeExact: true }), '2.30 GB');
    assert.equal(sizeText({ sizeBytes: 15_300_000_000, sizeExact: false }), 'about 14.2 GB');
  });

  test('the sentences for each fit', () => {
    const memory = { free: 6 * GiB, total: 16 * GiB };
    assert.equal(memoryFitText(3.5 * GiB, memory), 'Fits: needs about 3.5 GB of memory, 6.00 GB is free');
    assert.equal(
      memoryFitText(10 * GiB, memory),
      'Tight: needs about 10.0 GB of memory but 6.00 GB is free (of 16.00 GB); close other programs first',
    );
    assert.equal(memoryFitText(17 * GiB, memory), "Too big: needs about 17.0 GB of memory, more than this machine's 16.00 GB");
  });

  test('a model larger than the free memory runs within a budget when its minimum and the editor`s room fit', () => {
    const memory = { free: 5 * GiB, total: 8 * GiB };
    assert.equal(memoryFit(16 * GiB, memory, 2 * GiB), 'budget');
    assert.equal(memoryFit(16 * GiB, memory, 4.5 * GiB), 'tight', 'the minimum fits the machine, not the free memory less the room');
    assert.equal(memoryFit(16 * GiB, memory, 9 * GiB), 'tooBig');
    assert.equal(memoryFit(16 * GiB, memory), 'tooBig', 'without a minimum: no budget');
    assert.equal(memoryMinimum({ sizeBytes: 10 * GiB }), GiB + 768 * 1024 * 1024);
    assert.equal(
      memoryFitText(16 * GiB, memory, 2 * GiB),
      'Runs from disk: needs about 16.0 GB of memory to run fully in memory but 5.00 GB is free; within that its experts are read from disk as needed (slower)',
    );
  });

  test('quick pick items on an 8 GB machine with 5 GB free: the 4B models fit, the 21B one runs from disk', () => {
    const items = catalogPickItems({ memory: { free: 5 * GiB, total: 8 * GiB }, kvLimitBytes: KV, downloaded: new Set(['4b-q4_k_s']) });
    assert.equal(items.length, MODEL_CATALOG.length);
    assert.equal(items[0].entry.isDefault, true);
    assert.equal(items[0].label, 'SmallThinker 4B-A0.6B · Q4_0 (official)');
    assert.equal(items[0].description, '2.30 GB · default');
    assert.equal(items[0].fit, 'fits');
    assert.equal(items[0].detail, '$(pass) Fits: needs about 3.8 GB of memory, 5.00 GB is free · Tiiny/SmallThinker-4BA0.6B-Instruct-GGUF');
    const qks = items.find((i) => i.entry.id === '4b-q4_k_s')!;
    assert.equal(qks.description, '2.32 GB · downloaded');
    const estimate = items.find((i) => !i.entry.sizeExact && i.entry.family === '4B')!;
    assert.match(estimate.description, /^about \d+\.\d GB$/);
    const big = items.find((i) => i.entry.family === '21B')!;
    assert.equal(big.fit, 'budget');
    assert.match(
      big.detail,
      /^\$\(info\) Runs from disk: needs about 15\.7 GB of memory to run fully in memory but 5\.00 GB is free; .* · DevQuasar\//,
    );
    const tiny = catalogPickItems({ memory: { free: 1 * GiB, total: 2 * GiB }, kvLimitBytes: KV });
    assert.equal(tiny.find((i) => i.entry.family === '21B')!.fit, 'tooBig', 'its minimum exceeds a 2 GB machine');
  });

  test('on a 32 GB machine with 12 GB free the 21B model runs from disk (tight with 2 GB free), and a larger KV limit counts', () => {
    const items = catalogPickItems({ memory: { free: 12 * GiB, total: 32 * GiB }, kvLimitBytes: KV });
    assert.equal(items.find((i) => i.entry.family === '21B')!.fit, 'budget');
    const busy = catalogPickItems({ memory: { free: 2 * GiB, total: 32 * GiB }, kvLimitBytes: KV });
    assert.equal(busy.find((i) => i.entry.family === '21B')!.fit, 'tight');
    assert.match(busy.find((i) => i.entry.family === '21B')!.detail, /^\$\(warning\) Tight: /);
    const roomy = catalogPickItems({ memory: { free: 4 * GiB, total: 32 * GiB }, kvLimitBytes: KV });
    assert.equal(roomy[0].fit, 'fits');
    const bigKv = catalogPickItems({ memory: { free: 4 * GiB, total: 32 * GiB }, kvLimitBytes: 4 * KV });
    assert.equal(bigKv[0].fit, 'budget', 'a 4 GiB KV limit no longer fits the free memory: within a budget');
  });
});

describe('GGUF header: general.architecture', () => {
  function fixture(entries: ReturnType<typeof kv.str>[], version: 2 | 3 = 3): Buffer {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-gguf-'));
    const file = path.join(dir, 'm.gguf');
    writeGguf(file, {
      version,
      kv: entries,
      tensors: [{ name: 't', ne: [8], type: GgmlType.F32, data: new Uint8Array(32) }],
    });
    const bytes = fs.readFileSync(file);
    fs.rmSync(dir, { recursive: true });
    return bytes;
  }

  test('found after other keys, arrays of strings and numbers skipped; v2 too', () => {
    const bytes = fixture([
      kv.u32('general.quantization_version', 2),
      kv.arr('tokenizer.ggml.tokens', GgufValueType.STRING, ['<|im_start|>', 'a', '']),
      kv.arr('tokenizer.ggml.scores', GgufValueType.FLOAT32, [0, 1, 2]),
      kv.bool('x.flag', true),
      kv.f64('x.f64', 1.5),
      kv.str('general.architecture', 'smallthinker'),
      kv.str('general.name', 'after'),
    ]);
    assert.deepEqual(ggufArchitecture(bytes), { kind: 'found', architecture: 'smallthinker' });
    assert.deepEqual(ggufArchitecture(fixture([kv.str('general.architecture', 'llama')], 2)), { kind: 'found', architecture: 'llama' });
  });

  test('missing, truncated at every length, and invalid headers', () => {
    assert.deepEqual(ggufArchitecture(fixture([kv.str('general.name', 'x')])), { kind: 'missing' });
    const bytes = fixture([kv.str('general.name', 'x'), kv.str('general.architecture', 'smallthinker')]);
    const end = bytes.indexOf('smallthinker') + 'smallthinker'.length;
    for (let n = 0; n < end; n++) assert.deepEqual(ggufArchitecture(bytes.subarray(0, n)), { kind: 'truncated' }, `${n} bytes`);
    assert.equal(ggufArchitecture(bytes.subarray(0, end)).kind, 'found');

    assert.deepEqual(ggufArchitecture(Buffer.from('<!DOCTYPE html>')), { kind: 'invalid', reason: 'it does not start with "GGUF"' });
    const v1 = Buffer.from(bytes);
    v1.writeUInt32LE(1, 4);
    assert.match((ggufArchitecture(v1) as { reason: string }).reason, /GGUF version 1/);
    const hugeKey = Buffer.from(bytes);
    hugeKey.writeBigUInt64LE(1n << 40n, 24); // the first key's length
    assert.match((ggufArchitecture(hugeKey) as { reason: string }).reason, /string where a name belongs/);
    const badType = Buffer.from(fixture([kv.str('a', 'b'), kv.str('general.architecture', 'smallthinker')]));
    badType.writeUInt32LE(99, 24 + 8 + 1); // the first value's type
    assert.match((ggufArchitecture(badType) as { reason: string }).reason, /unknown metadata type 99/);
  });
});

describe('automatic memory budget', () => {
  const MiB = 1024 * 1024;
  test('a budget set in the settings is used as it is', () => {
    assert.equal(chooseMemoryBudgetMB(8192, 12 * GiB, KV, { free: 64 * GiB, total: 64 * GiB }), 8192);
  });
  test('automatic: none when the model runs in memory with 1 GiB left for the editor', () => {
    const file = 2 * GiB;
    const need = memoryNeeded({ sizeBytes: file }, KV);
    assert.equal(chooseMemoryBudgetMB(0, file, KV, { free: need + EDITOR_ROOM_BYTES, total: 16 * GiB }), 0);
    assert.equal(chooseMemoryBudgetMB(0, file, KV, { free: need + EDITOR_ROOM_BYTES - MiB, total: 16 * GiB }), Math.floor(need / MiB) - 1);
  });
  test('automatic: the 21B (12 GB) on an 8 GB laptop with 6 GiB free gets 5 GiB', () => {
    assert.equal(chooseMemoryBudgetMB(0, 12 * 10 ** 9, KV, { free: 6 * GiB, total: 8 * GiB }), 5 * 1024);
  });
  test('automatic: less free than the editor room still asks for a budget (the engine names the minimum)', () => {
    assert.equal(chooseMemoryBudgetMB(0, 12 * 10 ** 9, KV, { free: 512 * MiB, total: 8 * GiB }), 1);
  });
});

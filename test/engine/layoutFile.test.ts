// Layout files (native/model/layout_file.h): the relaid-out matrices written once into a cache
// folder and mapped read-only by later loads. Logits must be bit-identical to the in-memory
// relayout; the weights must stay file-backed (no anonymous copy); a layout file that does not
// belong to the GGUF (truncated, damaged, another GGUF's, another layout version) is rebuilt,
// never used; a folder that cannot hold one falls back to the in-memory relayout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { loadModel, type ModelInfo } from '../../src/engine/native';
import { ensureModel, type ModelSpec, SHALLOW_4B, SMALLTHINKER_4B } from '../support/fixtures';
import { quantizeWithLlama } from '../support/llamaQuantize';

/** the real 4B widths, two layers: a Q4_K_M file has Q4_K and Q6_K matrices to relay out */
const SPEC: ModelSpec = { ...SHALLOW_4B, seed: 142 };
const IDS = Int32Array.from([5, 17, 300, 2048, 9, 4000, 1, 77]);
/** the 4B shapes two layers deep, Q4_0, 400 MB: its layout file takes long enough to build to cancel it midway */
const BIG: ModelSpec = { ...SMALLTHINKER_4B, n_layer: 2, routing: 'varied' };

async function run(
  file: string,
  layoutDir?: string,
  onLayoutProgress?: (f: number) => void,
): Promise<{ info: ModelInfo; logits: Float32Array }> {
  const model = await loadModel(file, layoutDir === undefined ? {} : { layoutDir, onLayoutProgress });
  try {
    const session = model.createSession({ nCtx: 64, threads: 2 });
    try {
      return { info: model.info(), logits: await session.eval(IDS, { logits: 'all' }) };
    } finally {
      session.dispose();
    }
  } finally {
    model.dispose();
  }
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('layout files', { timeout: 600_000 }, () => {
  let file = '';
  let other = '';
  let dir = '';
  let reference: Float32Array;
  before(async () => {
    file = await quantizeWithLlama(await ensureModel(SPEC), 'Q4_K_M');
    other = await quantizeWithLlama(await ensureModel(SPEC), 'Q4_0');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-layout-'));
    const inMemory = await run(file);
    assert.equal(inMemory.info.layout.file, '');
    assert.equal(inMemory.info.layout.hugePages, 0, 'no layout file: nothing mapped from one');
    assert.ok(inMemory.info.repackedBytes > 0);
    reference = inMemory.logits;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const layoutFiles = () => fs.readdirSync(dir).sort();

  it('is built at the first load (with progress) and mapped by the next; logits bit-identical to the in-memory relayout', async () => {
    const progress: number[] = [];
    const first = await run(file, dir, (f) => progress.push(f));
    await new Promise((resolve) => setImmediate(resolve)); // progress calls queued before the load settled
    assert.ok(progress.length >= 2, `progress: ${progress.join(', ')}`);
    assert.ok(
      progress.every((f, i) => f > 0 && f <= 1 && (i === 0 || f > progress[i - 1])),
      `progress rises: ${progress.join(', ')}`,
    );
    assert.equal(progress[progress.length - 1], 1);
    assert.equal(first.info.layout.built, true);
    assert.equal(first.info.layout.error, '');
    // the share of the file mapped with 2 MB pages: how much depends on the kernel, the file system and free memory
    assert.ok(first.info.layout.hugePages >= 0 && first.info.layout.hugePages <= 1, `hugePages ${first.info.layout.hugePages}`);
    assert.equal(path.dirname(first.info.layout.file), dir);
    assert.match(path.basename(first.info.layout.file), /^[0-9a-f]{16}\.v2\.stlayout$/);
    assert.deepEqual(layoutFiles(), [path.basename(first.info.layout.file)], 'no temporary file left');
    assert.ok(sameBits(first.logits, reference), 'logits of the load that built the layout file');
    const again: number[] = [];
    const second = await run(file, dir, (f) => again.push(f));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(again, [], 'no progress when the layout file is mapped');
    assert.equal(second.info.layout.built, false);
    assert.equal(second.info.layout.file, first.info.layout.file);
    assert.equal(second.info.repackedBytes, first.info.repackedBytes);
    assert.ok(sameBits(second.logits, reference), 'logits from the mapped layout file');
  });

  it('keeps the weights file-backed: the load adds no anonymous copy of them', () => {
    // in a fresh process: anonymous memory before and after loading, in memory vs. layout file
    const script = `
      const { loadModel } = require(${JSON.stringify(path.resolve(__dirname, '../../src/engine/native'))});
      const anon = () => Number(require('fs').readFileSync('/proc/self/status', 'utf8').match(/RssAnon:\\s+(\\d+)/)[1]) * 1024;
      (async () => {
        const before = anon();
        const m = await loadModel(process.argv[1], process.argv[2] ? { layoutDir: process.argv[2] } : {});
        console.log(JSON.stringify({ grew: anon() - before, bytes: m.info().repackedBytes }));
      })();`;
    const measure = (...args: string[]) =>
      JSON.parse(execFileSync(process.execPath, ['-e', script, file, ...args], { encoding: 'utf8' })) as { grew: number; bytes: number };
    const inMemory = measure();
    const mapped = measure(dir);
    console.log(
      `layout file: anonymous memory grew ${(mapped.grew / 1e6).toFixed(1)} MB (in memory: ${(inMemory.grew / 1e6).toFixed(1)} MB) for ${(mapped.bytes / 1e6).toFixed(1)} MB relaid out`,
    );
    assert.ok(inMemory.grew > 0.8 * inMemory.bytes, `the in-memory relayout should own its pages: ${inMemory.grew} of ${inMemory.bytes}`);
    assert.ok(mapped.grew < 0.2 * mapped.bytes, `anonymous memory grew by ${mapped.grew} bytes for ${mapped.bytes} relaid out`);
  });

  it('with the ReGLU-sparse layouts (MOE_SPARSE=1): logits bit-identical to the dense ones, in memory and from a layout file', async () => {
    // a fresh process each (the switch is read once); the Q4_0 file's expert up and down get the sparse layouts
    const script = `
      const { loadModel } = require(${JSON.stringify(path.resolve(__dirname, '../../src/engine/native'))});
      (async () => {
        const m = await loadModel(process.argv[1], process.argv[2] ? { layoutDir: process.argv[2] } : {});
        const s = m.createSession({ nCtx: 64, threads: 2 });
        const logits = await s.eval(Int32Array.from(JSON.parse(process.argv[3])), { logits: 'all' });
        const before = s.regluStats().expertBytes;
        await s.eval(Int32Array.from([42]), { logits: 'last' }); // one decode step
        console.log(JSON.stringify({ logits: Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength).toString('base64'),
          built: m.info().layout.built, expertBytes: s.regluStats().expertBytes - before }));
      })();`;
    const sparseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-layout-sparse-'));
    try {
      const dense = await run(other);
      const child = (sparse: boolean, layoutDir: string) => {
        const out = JSON.parse(
          execFileSync(process.execPath, ['-e', script, other, layoutDir, JSON.stringify([...IDS])], {
            encoding: 'utf8',
            env: { ...process.env, MOE_SPARSE: sparse ? '1' : '0' },
          }),
        ) as { logits: string; built: boolean; expertBytes: number };
        const b = Buffer.from(out.logits, 'base64');
        return { ...out, values: new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) };
      };
      const denseChild = child(false, '');
      const inMemory = child(true, '');
      const built = child(true, sparseDir);
      const mapped = child(true, sparseDir);
      assert.ok(sameBits(denseChild.values, dense.logits), 'the dense child agrees with this process');
      assert.ok(sameBits(inMemory.values, dense.logits), 'sparse layouts relaid out in memory');
      assert.ok(built.built && !mapped.built, 'the second load maps the layout file the first built');
      assert.ok(sameBits(built.values, dense.logits) && sameBits(mapped.values, dense.logits), 'sparse layouts from a layout file');
      // one decode step: random weights silence about half the neurons, so up and down read about half their bytes
      assert.ok(
        inMemory.expertBytes < 0.85 * denseChild.expertBytes,
        `expert bytes read: ${inMemory.expertBytes} sparse, ${denseChild.expertBytes} dense`,
      );
    } finally {
      fs.rmSync(sparseDir, { recursive: true, force: true });
    }
  });

  it('rebuilds a truncated, damaged, foreign or other-version layout file, never uses it', async () => {
    const good = (await run(file, dir)).info.layout.file;
    const size = fs.statSync(good).size;
    const damage: [string, () => void, RegExp][] = [
      ['truncated', () => fs.truncateSync(good, size - 4096), /truncated|size/],
      ['truncated to nothing', () => fs.truncateSync(good, 0), /empty|truncated/],
      [
        'a matrix entry changed',
        () => {
          const fd = fs.openSync(good, 'r+');
          fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 64); // the first entry's size (header: 56 bytes, entry: gguf offset, size, ...)
          fs.closeSync(fd);
        },
        /matrices differ/,
      ],
      [
        'another layout version',
        () => {
          const fd = fs.openSync(good, 'r+');
          fs.writeSync(fd, Buffer.from([0, 0, 0, 0]), 0, 4, 8);
          fs.closeSync(fd);
        },
        /layout version 0/,
      ],
      [
        "another GGUF's layout file",
        () => {
          const foreign = fs.mkdtempSync(path.join(os.tmpdir(), 'st-layout-other-'));
          execFileSync(process.execPath, [
            '-e',
            `require(${JSON.stringify(path.resolve(__dirname, '../../src/engine/native'))}).loadModel(process.argv[1], { layoutDir: process.argv[2] }).then((m) => m.dispose())`,
            other,
            foreign,
          ]);
          const [made] = fs.readdirSync(foreign);
          fs.copyFileSync(path.join(foreign, made), good);
          fs.rmSync(foreign, { recursive: true, force: true });
        },
        /another GGUF/,
      ],
    ];
    for (const [label, spoil, why] of damage) {
      spoil();
      const r = await run(file, dir);
      assert.equal(r.info.layout.built, true, `${label}: rebuilt`);
      assert.match(r.info.layout.rebuiltBecause, why, label);
      assert.equal(fs.statSync(good).size, size, `${label}: the rebuilt file is whole`);
      assert.ok(sameBits(r.logits, reference), `${label}: logits after the rebuild`);
    }
  });

  it('removes the layout files of other layout versions when it builds one', async () => {
    const good = (await run(file, dir)).info.layout.file;
    const old = good.replace(/\.v\d+\.stlayout$/, '.v1.stlayout');
    const otherModel = path.join(dir, 'fedcba9876543210.v1.stlayout');
    fs.copyFileSync(good, old);
    fs.writeFileSync(otherModel, 'an old layout file of another model');
    fs.rmSync(good);
    const r = await run(file, dir);
    assert.equal(r.info.layout.built, true);
    assert.ok(!fs.existsSync(old), 'the old version was removed');
    assert.ok(!fs.existsSync(otherModel), "another model's old version was removed");
    assert.deepEqual(layoutFiles(), [path.basename(good)]);
  });

  it('removes the layout files of GGUFs that changed or are gone, and unfinished builds of dead processes; keeps the rest', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'st-layout-orphans-'));
    const folder = path.join(work, 'layouts');
    try {
      const a = path.join(work, 'a.gguf');
      const b = path.join(work, 'b.gguf');
      fs.copyFileSync(file, a);
      fs.copyFileSync(file, b);
      fs.utimesSync(b, new Date(2001, 1, 1), new Date(2001, 1, 1)); // another identity than a's
      const fileOf = async (gguf: string) => {
        const r = await run(gguf, folder);
        assert.ok(sameBits(r.logits, reference), `logits of ${path.basename(gguf)}`);
        return path.basename(r.info.layout.file);
      };
      const la = await fileOf(a);
      const lb = await fileOf(b);
      assert.notEqual(la, lb);
      assert.deepEqual(fs.readdirSync(folder).sort(), [la, lb].sort(), "b's load keeps a's layout file (a is unchanged)");

      // unfinished builds: of a process that is gone (removed), of one that runs (kept)
      const dead = execFileSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).trim();
      const deadTmp = `${la}.tmp.${dead}`;
      const liveTmp = `${la}.tmp.1`;
      fs.writeFileSync(path.join(folder, deadTmp), 'x');
      fs.writeFileSync(path.join(folder, liveTmp), 'x');
      fs.writeFileSync(path.join(folder, 'notes.txt'), 'not ours');

      // a changes (touched): its next load removes the old layout file and builds a new one
      fs.utimesSync(a, new Date(), new Date(Date.now() + 5000));
      const la2 = await fileOf(a);
      assert.notEqual(la2, la);
      assert.deepEqual(fs.readdirSync(folder).sort(), [la2, lb, liveTmp, 'notes.txt'].sort());

      // a moved: its layout file is still used (same identity), and a's new path recorded
      const moved = path.join(work, 'a-moved.gguf');
      fs.renameSync(a, moved);
      const again = await run(moved, folder);
      assert.equal(again.info.layout.built, false);
      assert.equal(path.basename(again.info.layout.file), la2);

      // b deleted: the next load of another model (the fixture itself) removes b's layout file and
      // keeps a's (whose recorded path is now a-moved.gguf)
      fs.rmSync(b);
      const lf = await fileOf(file);
      assert.deepEqual(fs.readdirSync(folder).sort(), [la2, lf, liveTmp, 'notes.txt'].sort());
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  it('a cancelled build stops, leaves no file behind and fails the load with code cancelled (no in-memory fallback)', async () => {
    const big = await ensureModel(BIG);
    const cancelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-layout-cancel-'));
    try {
      const abort = new AbortController();
      const progress: number[] = [];
      const t0 = Date.now();
      let abortedAt = 0;
      await assert.rejects(
        loadModel(big, {
          layoutDir: cancelDir,
          signal: abort.signal,
          onLayoutProgress: (f) => {
            progress.push(f);
            if (!abort.signal.aborted) {
              abortedAt = Date.now();
              abort.abort();
            }
          },
        }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'cancelled');
          assert.match(err.message, /cancelled while its layout file was being written/);
          return true;
        },
      );
      console.log(
        `cancelled at ${((progress[0] ?? 0) * 100).toFixed(0)}% after ${abortedAt - t0} ms, stopped ${Date.now() - abortedAt} ms later`,
      );
      assert.ok(progress.length >= 1 && progress[0] < 1, `cancelled before the end: ${progress.join(', ')}`);
      assert.deepEqual(fs.readdirSync(cancelDir), [], 'no temporary file and no layout file left');

      // an AbortSignal aborted before the call: rejected at once; something else: bad_input
      const aborted = AbortSignal.abort();
      await assert.rejects(loadModel(big, { layoutDir: cancelDir, signal: aborted }), { code: 'cancelled' });
      await assert.rejects(loadModel(big, { signal: {} as AbortSignal }), { code: 'bad_input' });

      // a load with a signal that is never aborted builds the file as usual
      const model = await loadModel(big, { layoutDir: cancelDir, signal: new AbortController().signal });
      try {
        assert.equal(model.info().layout.built, true);
        assert.deepEqual(fs.readdirSync(cancelDir), [path.basename(model.info().layout.file)]);
      } finally {
        model.dispose();
      }
    } finally {
      fs.rmSync(cancelDir, { recursive: true, force: true });
    }
  });

  it('a folder that cannot hold the layout file: one warning, the relayout in memory, the same logits', async () => {
    const blocker = path.join(dir, 'not-a-folder');
    fs.writeFileSync(blocker, 'x');
    const r = await run(file, path.join(blocker, 'layouts'));
    assert.equal(r.info.layout.file, '');
    assert.match(r.info.layout.error, /cannot create the layout folder/);
    assert.ok(r.info.repackedBytes > 0, 'relaid out in memory instead');
    assert.ok(sameBits(r.logits, reference));
  });
});

// Two processes loading the same model with a layout file share its pages: the weights are
// mapped read-only from the layout file (and the GGUF), so the second process adds no copy of
// them. Measured from /proc/<pid>/smaps_rollup of two child processes that loaded the model and
// evaluated a few tokens: little anonymous memory, the layout file's pages Shared_Clean in both,
// and each charged about half of them (Pss).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

import { ensureModel, type ModelSpec, SMALLTHINKER_4B } from '../support/fixtures';

/** the 4B shapes two layers deep, Q4_0: 400 MB, nearly all of it relaid out into the layout file */
const SPEC: ModelSpec = { ...SMALLTHINKER_4B, n_layer: 2, routing: 'varied' };
const NATIVE = path.resolve(__dirname, '../../src/engine/native');

/** Loads argv[1] with layoutDir argv[2], evaluates a few tokens, prints one JSON line, waits for stdin to close. */
const CHILD = `
  const { loadModel } = require(${JSON.stringify(NATIVE)});
  (async () => {
    const model = await loadModel(process.argv[1], { layoutDir: process.argv[2] });
    const session = model.createSession({ nCtx: 64, threads: 2 });
    await session.eval(Int32Array.from([5, 17, 300, 2048, 9, 4000, 1, 77]), { logits: 'last' });
    const info = model.info();
    console.log(JSON.stringify({ layout: info.layout.file, built: info.layout.built }));
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  })().catch((err) => { console.error(err); process.exit(1); });`;

interface Loaded {
  child: ChildProcess;
  layout: string;
  built: boolean;
}

function startChild(file: string, dir: string): Promise<Loaded> {
  const child = spawn(process.execPath, ['-e', CHILD, file, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the child exited with ${code} before it loaded the model`)));
    readline.createInterface({ input: child.stdout! }).once('line', (line) => {
      const r = JSON.parse(line) as { layout: string; built: boolean };
      resolve({ child, ...r });
    });
  });
}

/** /proc/<pid>/smaps_rollup in bytes, by field. */
function rollup(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]] = Number(m[2]) * 1024;
  return out;
}

const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;

describe('page sharing between processes', { timeout: 600_000 }, () => {
  let file = '';
  let dir = '';
  before(async () => {
    file = await ensureModel(SPEC);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-layout-share-'));
    // the layout file, built by a process of its own (one that maps it would be a third sharer)
    execFileSync(process.execPath, [
      '-e',
      `require(${JSON.stringify(NATIVE)}).loadModel(process.argv[1], { layoutDir: process.argv[2] }).then((m) => m.dispose())`,
      file,
      dir,
    ]);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('two processes that loaded the same model share its file-backed pages instead of copying them', async () => {
    const children: ChildProcess[] = [];
    try {
      const loaded = await Promise.all([startChild(file, dir), startChild(file, dir)]);
      children.push(...loaded.map((l) => l.child));
      for (const l of loaded) {
        assert.equal(l.built, false, 'the layout file built beforehand is mapped');
        assert.equal(path.dirname(l.layout), dir);
      }
      const layoutBytes = fs.statSync(loaded[0].layout).size;
      const weightBytes = layoutBytes + fs.statSync(file).size;
      for (const { child } of loaded) {
        const r = rollup(child.pid!);
        const fileRss = r.Rss - r.Anonymous;
        const fileShare = r.Pss_File / fileRss;
        console.log(
          `pid ${child.pid}: Rss ${mb(r.Rss)}, Anonymous ${mb(r.Anonymous)}, Shared_Clean ${mb(r.Shared_Clean)}, ` +
            `Private_Clean ${mb(r.Private_Clean)}, Pss ${mb(r.Pss)} (file ${mb(r.Pss_File)} of ${mb(fileRss)} resident: ` +
            `${(fileShare * 100).toFixed(0)}%); layout file ${mb(layoutBytes)}, GGUF ${mb(weightBytes - layoutBytes)}`,
        );
        assert.ok(r.Anonymous < 0.25 * weightBytes, `anonymous ${mb(r.Anonymous)}: the weights were copied`);
        assert.ok(r.Shared_Clean >= 0.5 * layoutBytes, `Shared_Clean ${mb(r.Shared_Clean)} < half the layout file: not shared`);
        assert.ok(fileShare > 0.35 && fileShare < 0.65, `each process is charged about half of its file pages: ${fileShare}`);
      }
    } finally {
      for (const child of children) child.stdin?.end();
      await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((resolve) => c.once('exit', resolve)) : undefined)));
    }
  });
});

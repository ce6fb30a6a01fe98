// Digests of our engine's logits on every GGUF in the fixture cache, to prove that a change
// which should not alter arithmetic (a refactor, a move) leaves every logit bit-identical:
//   node out/scripts/logits-digest.js --record F.json   before the change
//   node out/scripts/logits-digest.js --check F.json    after it (exit 1 on any difference)
// For each file, each kernel set the CPU has and both weight layouts (relaid out and as in the
// file): a fixed pseudo-random prompt evaluated in batches with every row's logits, then greedy
// steps, all hashed (SHA-256 of the float32 bytes). Options: --dir D (default: the fixture
// cache), --max-bytes N (skip larger files; default 3e9), --tokens N (prompt length, default 40).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { engineInfo, loadAddon, loadModel } from '../src/engine/native';
import { fixtureCacheDir } from '../test/support/cache';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

type Digests = Record<string, Record<string, string>>;

async function digestFile(file: string, nPrompt: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const repack of [true, false]) {
    for (const isa of engineInfo().isas) {
      loadAddon().setIsa(isa);
      const model = await loadModel(file, { repack });
      try {
        const nVocab = Number(model.info().hparams.n_vocab);
        // xorshift prompt: the same ids for every file of the same vocabulary size
        let s = 0x9e3779b9;
        const tokens: number[] = [];
        for (let i = 0; i < nPrompt; i++) {
          s ^= s << 13;
          s ^= s >>> 17;
          s ^= s << 5;
          tokens.push((s >>> 0) % nVocab);
        }
        const session = model.createSession({ nCtx: 128, nBatch: 16, threads: 2 });
        const h = crypto.createHash('sha256');
        const all = await session.eval(tokens, { logits: 'all' });
        h.update(Buffer.from(all.buffer, all.byteOffset, all.byteLength));
        let next = argmax(all.subarray(all.length - nVocab));
        for (let i = 0; i < 4; i++) {
          const logits = await session.eval([next], { logits: 'last' });
          h.update(Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
          next = argmax(logits);
        }
        session.dispose();
        out[`${isa}${repack ? '' : '/no-repack'}`] = h.digest('hex').slice(0, 32);
      } finally {
        model.dispose();
      }
    }
  }
  return out;
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

async function main(): Promise<number> {
  const record = arg('--record');
  const check = arg('--check');
  if (!record === !check) {
    console.error('usage: logits-digest (--record F.json | --check F.json) [--dir D] [--max-bytes N] [--tokens N]');
    return 2;
  }
  const dir = arg('--dir') ?? fixtureCacheDir();
  const maxBytes = Number(arg('--max-bytes') ?? 3e9);
  const nPrompt = Number(arg('--tokens') ?? 40);
  const expected: Digests = check ? JSON.parse(fs.readFileSync(check, 'utf8')) : {};
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.gguf') && (!check || f in expected))
    .filter((f) => fs.statSync(path.join(dir, f)).size <= maxBytes)
    .sort();
  const got: Digests = {};
  let differ = 0;
  let failed = 0;
  for (const f of files) {
    const t0 = Date.now();
    try {
      got[f] = await digestFile(path.join(dir, f), nPrompt);
    } catch (err) {
      // Files the engine refuses (the tests' deliberately bad fixtures) are recorded as refused.
      got[f] = { error: (err instanceof Error ? err.message : String(err)).slice(0, 200) };
    }
    const bad = check ? Object.keys({ ...expected[f], ...got[f] }).filter((k) => expected[f]?.[k] !== got[f][k]) : [];
    if (bad.length) differ += 1;
    if (got[f].error && !check) failed += 1;
    console.log(
      `${bad.length ? 'DIFFERS' : 'ok     '} ${f} (${Object.keys(got[f]).length} digests, ${((Date.now() - t0) / 1000).toFixed(1)} s)${bad.length ? ': ' + bad.join(', ') : ''}`,
    );
  }
  if (check) {
    const missing = Object.keys(expected).filter((f) => !(f in got));
    for (const f of missing) console.log(`missing ${f} (not in ${dir} or over --max-bytes)`);
    console.log(`${files.length - differ} identical, ${differ} differ, ${missing.length} missing`);
    return differ > 0 ? 1 : 0;
  }
  fs.writeFileSync(record!, JSON.stringify(got, null, 1) + '\n');
  console.log(`recorded ${files.length} files (${failed} refused by the engine) in ${record}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);

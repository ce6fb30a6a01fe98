// The moe-engine CLI contract (bin/moe-engine.js, src/cli/cli.ts): help, version, usage errors
// (exit 2), runtime errors (exit 1), and the four commands on tiny generated fixture models,
// generate's Ctrl-C included.
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, before } from 'node:test';

import { TINY, ensureModel } from '../support/fixtures';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'moe-engine.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Run {
  return cliWithin(0, ...args);
}

/** cli() killed after `ms` (0: no limit), for inputs that once made it wait forever. */
function cliWithin(ms: number, ...args: string[]): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    env: { ...process.env, MOE_LOG_LEVEL: 'warn' },
    timeout: ms || undefined,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json<T = unknown>(r: Run): T {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** One line on stderr, starting with the program name. */
function assertOneLineError(r: Run, code: number, pattern?: RegExp): void {
  assert.equal(r.code, code, `expected exit ${code}, got ${r.code}; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `stderr should be one line: ${r.stderr}`);
  assert.match(lines[0], /^moe-engine: /);
  if (pattern) assert.match(lines[0], pattern);
}

describe('moe-engine without a model', () => {
  it('prints usage with --help and exits 0', () => {
    for (const flag of ['--help', '-h', 'help']) {
      const r = cli(flag);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Usage:/);
      for (const cmd of ['info', 'tokenize', 'logits', 'generate']) assert.match(r.stdout, new RegExp(`moe-engine ${cmd} --model`));
    }
    assert.match(cli('generate', '--help').stdout, /Usage:/);
  });

  it('prints the package version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = cli('--version');
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  it('exits 2 on usage errors', () => {
    assertOneLineError(cli(), 2, /missing command/);
    assertOneLineError(cli('frobnicate'), 2, /unknown command/);
    assertOneLineError(cli('info'), 2, /--model/);
    assertOneLineError(cli('info', '--model', 'x.gguf', '--bogus'), 2, /--bogus/);
    assertOneLineError(cli('info', '--model'), 2, /needs a value/);
    assertOneLineError(cli('tokenize', '--model', 'x.gguf'), 2, /--text/);
    assertOneLineError(cli('tokenize', '--model', 'x.gguf', '--text', 'a', '--file', 'b'), 2);
    assertOneLineError(cli('logits', '--model', 'x.gguf', '--tokens', '1,x'), 2, /--tokens/);
    assertOneLineError(cli('logits', '--model', 'x.gguf', '--tokens', '1', '--threads', '-1'), 2, /--threads/);
    assertOneLineError(cli('generate', '--model', 'x.gguf'), 2, /--prompt/);
    assertOneLineError(cli('generate', '--model', 'x.gguf', '--prompt', 'a', '-n', 'many'), 2, /-n/);
    assertOneLineError(cli('generate', '--model', 'x.gguf', '--prompt', 'a', '-n', '1.5'), 2, /integer/);
    assertOneLineError(cli('generate', '--model', 'x.gguf', '--prompt', 'a', '--top-p', '2'), 2, /--top-p/);
    assertOneLineError(cli('generate', '--model', 'x.gguf', '--prompt', 'a', '--json=yes'), 2, /--json/);
  });

  it('exits 1 with one sentence for a missing or invalid model file', () => {
    const missing = path.join(os.tmpdir(), `no-such-model-${process.pid}.gguf`);
    assertOneLineError(cli('info', '--model', missing), 1, /not found/);
    assertOneLineError(cli('generate', '--model', missing, '--prompt', 'hi', '-n', '1'), 1, /not found/);
    assertOneLineError(cli('info', '--model', path.join(ROOT, 'package.json')), 1, /GGUF/i);
    assertOneLineError(cli('info', '--model', ROOT), 1, /directory/);
    assertOneLineError(cli('info', '--model', '/dev/zero'), 1, /not a regular file \(a character device\)/);
  });

  it('refuses a FIFO as the model at once (opening it would wait for a writer)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-cli-fifo-'));
    try {
      const fifo = path.join(dir, 'model.gguf');
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
      assertOneLineError(cliWithin(30_000, 'info', '--model', fifo), 1, /not a regular file \(a FIFO\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('moe-engine on a tiny model', () => {
  let model = '';
  let qwen = '';
  before(async () => {
    model = await ensureModel(TINY);
    qwen = await ensureModel({ ...TINY, vocab: 'qwen', tied: true });
  });

  it('info describes the model', () => {
    const info = json<{
      architecture: string;
      file_size: number;
      hparams: { n_layer: number; n_vocab: number };
      layers: { attention: string; rope: boolean }[];
      tensor_types: Record<string, number>;
    }>(cli('info', '--model', model));
    assert.equal(info.architecture, 'smallthinker');
    assert.equal(info.hparams.n_layer, 2);
    assert.equal(info.layers.length, 2);
    for (const l of info.layers) assert.deepEqual([l.attention, l.rope], ['global', true]);
    assert.equal(info.file_size, fs.statSync(model).size);
    assert.ok(Object.keys(info.tensor_types).length > 0);
  });

  it('tokenize gives Qwen ids, with and without special tokens', () => {
    assert.deepEqual(json(cli('tokenize', '--model', qwen, '--text', 'Hello world')), [9707, 1879]);
    assert.deepEqual(json(cli('tokenize', '--model', qwen, '--text', '<|im_start|>user', '--special')), [151644, 872]);
    const literal = json<number[]>(cli('tokenize', '--model', qwen, '--text', '<|im_start|>user'));
    assert.ok(!literal.includes(151644) && literal.length > 2);
    const file = path.join(os.tmpdir(), `moe-cli-${process.pid}.txt`);
    fs.writeFileSync(file, 'Hello world');
    try {
      assert.deepEqual(json(cli('tokenize', '--model', qwen, '--file', file)), [9707, 1879]);
    } finally {
      fs.rmSync(file, { force: true });
    }
    assert.deepEqual(json(cli('tokenize', '--model', qwen, '--text', '')), []);
  });

  it('logits returns n_vocab floats for the last position, or one row per position with --all', () => {
    const last = json<{ n_vocab: number; logits: number[] }>(cli('logits', '--model', model, '--tokens', '1,2,3', '--threads', '2'));
    assert.equal(last.n_vocab, 512);
    assert.equal(last.logits.length, 512);
    assert.ok(last.logits.every((v) => typeof v === 'number' && Number.isFinite(v)));
    const all = json<{ n_vocab: number; logits: number[][] }>(cli('logits', '--model', model, '--tokens', '1,2,3', '--all'));
    assert.equal(all.logits.length, 3);
    for (const row of all.logits) assert.equal(row.length, 512);
    const maxDiff = Math.max(...last.logits.map((v, i) => Math.abs(v - all.logits[2][i])));
    assert.ok(maxDiff < 1e-3, `last row of --all differs from the last-position logits by ${maxDiff}`);
    // Values are float32 and print so that they round-trip.
    for (const v of last.logits.slice(0, 50)) assert.equal(Math.fround(v), v);
    assertOneLineError(cli('logits', '--model', model, '--tokens', '1,99999'), 1);
  });

  it('generate is deterministic at temperature 0 and prints the same text with and without --json', () => {
    const args = ['generate', '--model', model, '--prompt', 'hello', '-n', '4', '--temp', '0'];
    const a = json<{ tokens: number[]; text: string; stopReason: string; timings: { nPrompt: number; nGenerated: number } }>(
      cli(...args, '--json'),
    );
    const b = json<typeof a>(cli(...args, '--json', '--threads', '1'));
    assert.ok(a.tokens.length <= 4);
    assert.deepEqual(a.tokens, b.tokens);
    assert.equal(a.text, b.text);
    assert.ok(['eog', 'length'].includes(a.stopReason));
    assert.equal(a.timings.nGenerated, a.tokens.length);
    const plain = cli(...args);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, a.text);
    // A seed makes sampling reproducible.
    const seeded = ['generate', '--model', model, '--prompt', 'hello', '-n', '6', '--temp', '1', '--seed', '7', '--json'];
    assert.deepEqual(json<typeof a>(cli(...seeded)).tokens, json<typeof a>(cli(...seeded)).tokens);
  });

  it('generate stops at Ctrl-C and keeps what was produced', async () => {
    // On this fixture the greedy continuation of "a" runs to the limit (4000 tokens, about half a second).
    const args = ['generate', '--model', model, '--prompt', 'a', '-n', '4000', '--temp', '0', '--ctx', '4096'];
    const full = json<{ text: string; tokens: number[]; stopReason: string }>(cli(...args, '--json'));
    assert.equal(full.stopReason, 'length');
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, MOE_LOG_LEVEL: 'warn' } });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      if (chunks.length === 0) child.kill('SIGINT');
      chunks.push(d);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 0, `exit ${code}: ${stderr}`);
    assert.equal(stderr, '');
    const partial = Buffer.concat(chunks).toString('utf8');
    assert.ok(partial.length > 0 && partial.length < full.text.length, `${partial.length} of ${full.text.length} characters`);
    // what was produced, up to a character the stop left incomplete (printed as U+FFFD)
    assert.ok(full.text.startsWith(partial.replace(/\uFFFD$/, '')), 'the output is the start of the full text');
  });

  it('generate --chat formats a ChatML prompt', () => {
    const r = json<{ tokens: number[]; timings: { nPrompt: number } }>(
      cli('generate', '--model', qwen, '--prompt', 'Hi', '--chat', '-n', '2', '--temp', '0', '--json'),
    );
    // <|im_start|> user \n Hi <|im_end|> \n <|im_start|> assistant \n
    assert.equal(r.timings.nPrompt, 9);
    assert.ok(r.tokens.length <= 2);
  });

  it('generate refuses a request larger than the context, before starting', () => {
    assertOneLineError(cli('generate', '--model', model, '--prompt', 'hello', '-n', '50', '--ctx', '8'), 1, /context/);
  });
});

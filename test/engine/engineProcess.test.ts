// The engine as a real child process: EngineProcess (src/node/engineProcess.ts) spawning the
// bundled host (dist/engineHost.js): handshake, model and completion, a SIGKILLed child restarted
// with its model reloaded, giving up after repeated crashes, clean shutdown, exit when the parent
// dies (also in the middle of a long prefill), exit within the grace period after `shutdown` +
// `exit` or a closed stdin while a native call cannot stop, malformed bytes on stdin, and
// `moe-engine serve --stdio`.
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, before } from 'node:test';

import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc';
import { StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';

import {
  EngineErrorCodes,
  ExitNotification,
  PARENT_PID_ENV,
  PROTOCOL_VERSION,
  ShutdownRequest,
  type CompletionParams,
} from '../../src/common/protocol';
import { EngineClient } from '../../src/node/engineClient';
import { EngineProcess, type EngineState, type EngineStateChange } from '../../src/node/engineProcess';
import { SMALLTHINKER_4B, TINY, ensureModel, type ModelSpec } from '../support/fixtures';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const HOST = path.join(ROOT, 'dist', 'engineHost.js');
const BIN = path.join(ROOT, 'bin', 'moe-engine.js');

const COMPLETION: CompletionParams = {
  documentId: 'file:///main.py',
  prompt: { prefix: 'def main():\n    print(', suffix: ')\n', fileName: 'main.py', languageId: 'python' },
  maxTokens: 6,
};

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** isAlive, but a zombie counts as gone (an orphan that exited waits for init to reap it). */
function isRunning(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** A prefill of PREFILL_TOKENS takes 20 s or more on two cores, each batch of 64 tokens about 0.1 s. */
const SLOW_PREFILL: ModelSpec = {
  n_layer: 4,
  n_embd: 512,
  n_head: 4,
  n_head_kv: 2,
  head_dim: 64,
  n_expert: 8,
  n_expert_used: 2,
  n_ff_exp: 512,
  context_length: 16384,
  types: { default: 'Q4_0' },
};
const PREFILL_TOKENS = 12000;
/**
 * A prompt evaluated as ONE batch (batchSize = context): a single native call that a cancel
 * cannot stop before it ends, about 8 s for 12,000 tokens on two cores, and 16,000 take longer.
 */
const ONE_BATCH_TOKENS = 16000;

async function waitUntil(what: string, condition: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!condition()) {
    if (Date.now() - t0 > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return Date.now() - t0;
}

function nextState(engine: EngineProcess, state: EngineState): Promise<EngineStateChange> {
  return new Promise((resolve) => {
    const sub = engine.onDidChangeState((change) => {
      if (change.state === state) {
        sub.dispose();
        resolve(change);
      }
    });
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function newEngine(options: { maxRestarts?: number } = {}): { engine: EngineProcess; logs: string[]; states: EngineStateChange[] } {
  const engine = new EngineProcess({ hostScript: HOST, clientInfo: { name: 'engineProcess.test' }, ...options });
  const logs: string[] = [];
  const states: EngineStateChange[] = [];
  engine.onLog((line) => logs.push(line));
  engine.onDidChangeState((change) => states.push(change));
  return { engine, logs, states };
}

describe('engine process', () => {
  let modelPath: string;
  before(async () => {
    assert.ok(fs.existsSync(HOST), `${HOST} is missing: run node esbuild.mjs`);
    modelPath = await ensureModel({ ...TINY, vocab: 'qwen' });
  });

  it('starts the engine in a child process, loads a model, completes, and shuts down cleanly', async () => {
    const { engine, logs, states } = newEngine();
    const init = await engine.start();
    const pid = engine.pid!;
    assert.equal(init.pid, pid);
    assert.notEqual(pid, process.pid);
    assert.equal(init.protocolVersion, PROTOCOL_VERSION);
    assert.deepEqual(
      states.map((s) => s.state),
      ['starting', 'ready'],
    );
    const loaded = await engine.loadModel({ path: modelPath, threads: 2 });
    assert.equal(loaded.info.fim, true);
    const result = await engine.complete(COMPLETION);
    assert.equal(result.candidates.length, 1);
    assert.ok(result.stats.promptTokens > 0);

    await engine.dispose();
    assert.equal(engine.state, 'stopped');
    await waitUntil('the engine process exits', () => !isAlive(pid), 5000);
    assert.ok(!logs.some((l) => /killing it/.test(l)), `the engine had to be killed: ${logs.join('\n')}`);
    await assert.rejects(engine.complete(COMPLETION), (err: ResponseError<unknown>) => err.code === EngineErrorCodes.EngineStopped);
  });

  it('model/load with layoutDir: the first load lays the weights out into a file, the next maps it', async () => {
    const q4 = await ensureModel({ ...TINY, types: { default: 'Q4_0' }, seed: 15 });
    const layoutDir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-engine-layout-'));
    const { engine } = newEngine();
    try {
      await engine.start();
      const reports: string[] = [];
      const first = await engine.loadModel({ path: q4, threads: 2, layoutDir }, (p) => {
        if (p.kind === 'report') reports.push(`${p.message ?? ''} ${p.percentage ?? ''}`);
      });
      assert.equal(first.info.layout?.built, true);
      assert.ok(
        reports.some((r) => /laying out the weights/.test(r)),
        `progress: ${reports.join('; ')}`,
      );
      assert.equal(path.dirname(first.info.layout?.file ?? ''), layoutDir);
      const a = await engine.complete(COMPLETION);
      const second = await engine.loadModel({ path: q4, threads: 2, layoutDir });
      assert.deepEqual(second.info.layout, { ...first.info.layout, built: false });
      const b = await engine.complete(COMPLETION);
      assert.deepEqual(b.candidates, a.candidates);
      await assert.rejects(
        engine.loadModel({ path: q4, layoutDir: 7 as unknown as string }),
        (err: ResponseError<unknown>) => err.code === EngineErrorCodes.InvalidParams && /layoutDir/.test(err.message),
      );
    } finally {
      await engine.dispose();
      fs.rmSync(layoutDir, { recursive: true, force: true });
    }
  });

  it('model/load with memoryBudgetMB: the experts come through the expert cache, the same completions, engine/stats counts it', async () => {
    const q4 = await ensureModel({ ...TINY, types: { default: 'Q4_0' }, seed: 16 });
    const layoutDir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-engine-budget-'));
    const { engine } = newEngine();
    try {
      await engine.start();
      const mapped = await engine.loadModel({ path: q4, threads: 2, layoutDir });
      assert.equal(mapped.info.memoryBudget, undefined);
      const a = await engine.complete(COMPLETION);
      assert.equal((await engine.stats()).experts, null);
      // too small: the sentence names the minimum and what to do
      const err = await engine.loadModel({ path: q4, threads: 2, layoutDir, memoryBudgetMB: 1 }).then(
        () => assert.fail('a 1 MiB budget loaded'),
        (e: ResponseError<unknown>) => e,
      );
      assert.equal(err.code, EngineErrorCodes.ModelLoadFailed);
      assert.match(err.message, /too small .* it needs at least \d+ MB; raise the memory budget or choose a smaller model\.$/);
      const minimum = Number(/at least (\d+) MB/.exec(err.message)![1]);
      const budgeted = await engine.loadModel({ path: q4, threads: 2, layoutDir, memoryBudgetMB: minimum });
      assert.ok(budgeted.info.memoryBudget, 'a memory budget in the summary');
      assert.equal(budgeted.info.memoryBudget.bytes, minimum * 1024 * 1024);
      // (this model's extents are a page or two: the minimum rounded up to MiB may hold them all)
      assert.ok(budgeted.info.memoryBudget.cacheSlots >= 2 && budgeted.info.memoryBudget.cacheSlots <= budgeted.info.memoryBudget.extents);
      const b = await engine.complete(COMPLETION);
      assert.deepEqual(b.candidates, a.candidates, 'the same completions under the budget');
      const stats = await engine.stats();
      assert.ok(stats.experts, 'expert cache statistics');
      assert.ok(stats.experts.uses > 0 && stats.experts.reads > 0 && stats.experts.bytesRead > 0, JSON.stringify(stats.experts));
      assert.equal(stats.experts.layers.length, budgeted.info.n_layer);
      assert.ok(stats.experts.hitRate >= 0 && stats.experts.hitRate < 1);
      assert.ok(stats.kvLimitBytes <= (minimum * 1024 * 1024) / 4, 'the KV caches get at most a quarter of the budget');
    } finally {
      await engine.dispose();
      fs.rmSync(layoutDir, { recursive: true, force: true });
    }
  });

  it('model/load stops building the layout file when the request is cancelled or another model is loaded', async () => {
    // 400 MB of Q4_0: its layout file takes a few seconds to build, long enough to stop midway
    const big = await ensureModel({ ...SMALLTHINKER_4B, n_layer: 2, routing: 'varied' });
    const layoutDir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-engine-layout-cancel-'));
    const { engine } = newEngine();
    try {
      await engine.start();
      const laying = (p: { kind: string; message?: string }) => p.kind === 'report' && /laying out the weights/.test(p.message ?? '');

      // $/cancelRequest
      const source = new CancellationTokenSource();
      const ends: string[] = [];
      await assert.rejects(
        engine.loadModel(
          { path: big, threads: 2, layoutDir },
          (p) => {
            if (laying(p)) source.cancel();
            if (p.kind === 'end') ends.push(p.message ?? '');
          },
          source.token,
        ),
        (err: ResponseError<unknown>) => err.code === EngineErrorCodes.RequestCancelled,
      );
      assert.deepEqual(ends, ['cancelled']);
      assert.deepEqual(fs.readdirSync(layoutDir), [], 'no temporary file and no layout file left');
      assert.deepEqual(await engine.modelInfo(), { loaded: false });

      // another model/load while the first builds
      let second: Promise<unknown> | undefined;
      await assert.rejects(
        engine.loadModel({ path: big, threads: 2, layoutDir }, (p) => {
          if (laying(p)) second ??= engine.loadModel({ path: modelPath, threads: 2 });
        }),
        (err: ResponseError<unknown>) =>
          err.code === EngineErrorCodes.RequestCancelled && /a later model\/load replaced it/.test(err.message),
      );
      assert.ok(second, 'the second load was sent');
      await second;
      assert.deepEqual(fs.readdirSync(layoutDir), [], 'no temporary file and no layout file left');
      assert.equal((await engine.modelInfo()).path, modelPath);
      assert.equal((await engine.complete(COMPLETION)).candidates.length, 1);

      // uncancelled, the same load builds the file
      const loaded = await engine.loadModel({ path: big, threads: 2, layoutDir });
      assert.equal(loaded.info.layout?.built, true);
      assert.deepEqual(fs.readdirSync(layoutDir), [path.basename(loaded.info.layout?.file ?? '')]);
    } finally {
      await engine.dispose();
      fs.rmSync(layoutDir, { recursive: true, force: true });
    }
  });

  it('rejects the request in flight when the child is killed, restarts it, and reloads the model', async () => {
    const { engine, states } = newEngine();
    try {
      await engine.start();
      await engine.loadModel({ path: modelPath, threads: 2 });
      const firstPid = engine.pid!;
      let killed = false;
      const restarted = nextState(engine, 'crashed').then(() => nextState(engine, 'ready'));
      const chat = engine.chat(
        { messages: [{ role: 'user', content: 'Talk for a long time.' }], maxTokens: 4000 },
        {
          onDelta: () => {
            if (!killed) {
              killed = true;
              process.kill(firstPid, 'SIGKILL');
            }
          },
        },
      );
      await assert.rejects(chat, (err: ResponseError<unknown>) => {
        assert.equal(err.code, EngineErrorCodes.EngineStopped);
        assert.equal(err.message, 'The engine process stopped unexpectedly (signal SIGKILL); restarting it.');
        return true;
      });
      await restarted;
      assert.notEqual(engine.pid, firstPid);
      assert.deepEqual(
        states.map((s) => s.state),
        ['starting', 'ready', 'crashed', 'starting', 'ready'],
      );
      const crashed = states.find((s) => s.state === 'crashed')!;
      assert.match(crashed.message!, /signal SIGKILL/);
      const info = await engine.modelInfo();
      assert.equal(info.loaded, true, 'the model was loaded again');
      assert.equal(info.path, modelPath);
      const result = await engine.complete(COMPLETION);
      assert.equal(result.candidates.length, 1);
    } finally {
      await engine.dispose();
    }
  });

  it('gives up with a readable message after repeated crashes', async () => {
    const { engine, states } = newEngine({ maxRestarts: 2 });
    try {
      await engine.start();
      for (let i = 0; i < 2; i++) {
        const ready = nextState(engine, 'crashed').then(() => nextState(engine, 'ready'));
        process.kill(engine.pid!, 'SIGKILL');
        await ready;
      }
      const failed = nextState(engine, 'failed');
      const pending = engine.stats();
      process.kill(engine.pid!, 'SIGKILL');
      const change = await failed;
      assert.match(
        change.message!,
        /^The engine process stopped unexpectedly 3 times within 3 minutes \(last: signal SIGKILL\); it will not be restarted\. See the engine log/,
      );
      assert.equal(engine.state, 'failed');
      assert.equal(states.filter((s) => s.state === 'crashed').length, 2);
      await assert.rejects(pending, (err: ResponseError<unknown>) => err.code === EngineErrorCodes.EngineStopped);
      await assert.rejects(engine.tokenize('x'), (err: ResponseError<unknown>) => {
        assert.equal(err.code, EngineErrorCodes.EngineStopped);
        assert.equal(err.message, change.message);
        return true;
      });
    } finally {
      await engine.dispose();
    }
  });

  it('exits when its parent process dies', async () => {
    // An intermediate process spawns the engine (as the extension host would), then is SIGKILLed.
    const script = path.join(os.tmpdir(), `engine-parent-${process.pid}.js`);
    fs.writeFileSync(
      script,
      `const { spawn } = require('node:child_process');
       const child = spawn(process.execPath, [${JSON.stringify(HOST)}], {
         stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, ${PARENT_PID_ENV}: String(process.pid) } });
       process.stdout.write(child.pid + '\\n');
       setInterval(() => {}, 1000);`,
    );
    try {
      const parent = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const pid = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
      assert.ok(isAlive(pid));
      parent.kill('SIGKILL');
      await exited(parent);
      await waitUntil('the engine exits after its parent', () => !isAlive(pid), 5000);
    } finally {
      fs.rmSync(script, { force: true });
    }

    // With stdin still open, the parent-pid watch alone ends it.
    const sleeper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const host = spawn(process.execPath, [HOST], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, [PARENT_PID_ENV]: String(sleeper.pid) },
    });
    let stderr = '';
    host.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(host.exitCode, null, 'the engine runs while its parent lives');
      sleeper.kill('SIGKILL');
      const ms = await waitUntil('the engine notices its parent is gone', () => host.exitCode !== null, 5000);
      assert.ok(ms < 3000, `took ${ms} ms`);
      assert.match(stderr, new RegExp(`the parent process ${sleeper.pid} is gone`));
    } finally {
      host.kill('SIGKILL');
      sleeper.kill('SIGKILL');
    }
  });

  it('exits within seconds when its parent dies during a long prefill', async () => {
    // An intermediate process supervises the engine as the extension host does (EngineProcess:
    // stdin, stdout and stderr are pipes to it), starts a prefill of PREFILL_TOKENS tokens, and is
    // SIGKILLed while the prefill runs. The engine must stop the prefill instead of finishing it
    // (process.exit waits for native work on libuv's threads), and must survive logging to the
    // broken stderr pipe.
    const slowModel = await ensureModel(SLOW_PREFILL);
    const script = path.join(os.tmpdir(), `engine-parent-prefill-${process.pid}.js`);
    const engineProcessModule = path.join(__dirname, '..', '..', 'src', 'node', 'engineProcess.js');
    fs.writeFileSync(
      script,
      `const { EngineProcess } = require(${JSON.stringify(engineProcessModule)});
       (async () => {
         const engine = new EngineProcess({ hostScript: ${JSON.stringify(HOST)} });
         await engine.start();
         await engine.loadModel({ path: ${JSON.stringify(slowModel)}, threads: 2, contextLength: ${PREFILL_TOKENS + 64}, batchSize: 64 });
         // One token per letter in the fixture's vocabulary.
         const content = Array.from({ length: ${PREFILL_TOKENS} }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
         engine.chat({ messages: [{ role: 'user', content }], maxTokens: 1 }).catch(() => {});
         while (!(await engine.stats()).sessions.some((s) => s.busy)) await new Promise((r) => setTimeout(r, 20));
         process.stdout.write(engine.pid + '\\n');
         setInterval(() => {}, 1000);
       })().catch((err) => { console.error(err); process.exit(1); });`,
    );
    let pid: number | undefined;
    try {
      const parent = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      pid = await new Promise<number>((resolve, reject) => {
        parent.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
        parent.once('exit', (code) => reject(new Error(`the intermediate process exited (${code}) before the prefill started`)));
      });
      assert.ok(isRunning(pid), 'the engine runs the prefill');
      parent.kill('SIGKILL');
      await exited(parent);
      const enginePid = pid;
      await waitUntil('the engine exits after its parent died mid-prefill', () => !isRunning(enginePid), 5000);
    } finally {
      if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
      fs.rmSync(script, { force: true });
    }
  });

  it('ends within the grace period after shutdown + exit, or a closed stdin, while a native call cannot stop', async () => {
    // The prompt is prefilled in one batch: a native call of many seconds that the cancel sent by
    // `shutdown` only stops when it ends. The process must not wait for it: after `exit` (which
    // arrives while `shutdown` still waits for that call) or a closed stdin, it ends within its
    // 3 s grace period, killing itself if need be (process.exit would wait for the native call).
    const slowModel = await ensureModel(SLOW_PREFILL);
    const content = Array.from({ length: ONE_BATCH_TOKENS }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
    for (const ending of ['shutdown + exit', 'stdin closed'] as const) {
      const host = spawn(process.execPath, [HOST], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      host.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      host.stdin!.on('error', () => {});
      const connection = createMessageConnection(new StreamMessageReader(host.stdout!), new StreamMessageWriter(host.stdin!));
      connection.listen();
      try {
        const client = new EngineClient(connection);
        await client.initialize({ name: 'grace' });
        await client.loadModel({ path: slowModel, threads: 2, contextLength: ONE_BATCH_TOKENS + 64, batchSize: ONE_BATCH_TOKENS + 64 });
        const chat = client.chat({ messages: [{ role: 'user', content }], maxTokens: 1 });
        // An answer or an error reply means the prefill ended; a closed connection does not.
        let chatDone = false;
        chat.then(
          () => (chatDone = true),
          (err: unknown) => (chatDone ||= err instanceof ResponseError),
        );
        while (!(await client.stats()).sessions.some((s) => s.busy)) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(chatDone, false, 'the prefill runs');
        const t0 = Date.now();
        if (ending === 'shutdown + exit') {
          // The shutdown reply would only come once the batch ended; exit does not wait for it.
          connection.sendRequest(ShutdownRequest).catch(() => {});
          await connection.sendNotification(ExitNotification);
        } else {
          host.stdin!.end();
        }
        const result = await exited(host);
        const ms = Date.now() - t0;
        assert.ok(ms < 5000, `${ending}: the engine took ${ms} ms to end (${JSON.stringify(result)}); stderr:\n${stderr}`);
        assert.equal(chatDone, false, `${ending}: the prefill was still running when the engine ended (else this shows nothing)`);
        assert.match(stderr, /did not stop within 3 s; killing the process/, ending);
      } finally {
        connection.dispose();
        host.kill('SIGKILL');
      }
    }
  });

  it('answers malformed bytes on stdin with an error and keeps serving; stdout carries only frames', async () => {
    const host = spawn(process.execPath, [HOST], { stdio: ['pipe', 'pipe', 'pipe'] });
    let raw = '';
    host.stdout!.on('data', (d: Buffer) => (raw += d.toString('utf8')));
    const connection = createMessageConnection(new StreamMessageReader(host.stdout!), new StreamMessageWriter(host.stdin!));
    connection.listen();
    try {
      const body = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{';
      host.stdin!.write(`Content-Length: ${body.length}\r\n\r\n${body}`);
      const client = new EngineClient(connection);
      const init = await client.initialize({ name: 'raw' });
      assert.equal(init.pid, host.pid);
      assert.deepEqual(await client.modelInfo(), { loaded: false });
      // Every byte on stdout belongs to a frame.
      const frames = raw.split(/Content-Length: \d+\r\n\r\n/);
      assert.equal(frames[0], '');
      const replies = frames.slice(1).map((f) => JSON.parse(f) as { id: unknown; error?: { code: number } });
      assert.ok(
        replies.some((r) => r.id === null && r.error?.code === EngineErrorCodes.ParseError),
        raw,
      );
      await client.shutdown();
      assert.deepEqual(await exited(host), { code: 0, signal: null });
    } finally {
      connection.dispose();
      host.kill('SIGKILL');
    }
  });

  it('serves the protocol from `moe-engine serve --stdio`', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--stdio'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    connection.listen();
    try {
      const client = new EngineClient(connection);
      const init = await client.initialize({ name: 'cli' });
      assert.equal(init.pid, child.pid);
      assert.deepEqual(init.architectures, ['smallthinker']);
      await client.loadModel({ path: modelPath });
      assert.deepEqual(await client.tokenize('Hello world'), [9707, 1879]);
      await client.shutdown();
      assert.deepEqual(await exited(child), { code: 0, signal: null });
    } finally {
      connection.dispose();
      child.kill('SIGKILL');
    }
    // Without --stdio it is a usage error.
    const usage = spawn(process.execPath, [BIN, 'serve'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    usage.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    assert.deepEqual(await exited(usage), { code: 2, signal: null });
    assert.match(stderr, /serve needs --stdio/);
  });
});

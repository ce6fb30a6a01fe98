// The engine protocol end to end in one process (test/support/inProcess.ts: server and client
// over in-memory streams, framing included) on tiny fixture models with the Qwen vocabulary:
// handshake, model loading with progress, errors that keep the server serving, completion, chat
// streaming, cancellation, pre-emption of chat by completion, the KV memory limit, reuse modes.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, before, after } from 'node:test';

import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc';

import {
  EngineErrorCodes,
  ExitNotification,
  InitializeRequest,
  PROTOCOL_VERSION,
  type ChatParams,
  type CompletionParams,
  type CompletionPrompt,
  type WorkDoneProgress,
} from '../../src/common/protocol';
import { connectInProcess, type InProcessEngine } from '../support/inProcess';
import { TINY, ensureModel, type ModelSpec } from '../support/fixtures';

const QWEN_TINY: ModelSpec = { ...TINY, vocab: 'qwen' };

async function rejectsWith(p: Promise<unknown>, code: number, pattern?: RegExp): Promise<ResponseError<unknown>> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ResponseError, `expected a ResponseError, got ${String(err)}`);
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected an error with code ${code}`);
}

/** Some Python-like source, `lines` lines long, deterministic. */
function sourceText(lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    out.push(i % 7 === 0 ? `def step_${i}(state, value):` : `    state[${i % 13}] = value * ${i} + len(state)  # line ${i}`);
  }
  return out.join('\n') + '\n';
}

function prompt(prefix: string, suffix = '', fileName = 'main.py'): CompletionPrompt {
  return { prefix, suffix, fileName, languageId: 'python' };
}

async function started(options: { log?: (line: string) => void } = {}): Promise<InProcessEngine> {
  const engine = connectInProcess(options);
  await engine.client.initialize({ name: 'protocol.test' });
  return engine;
}

describe('engine protocol', () => {
  let modelPath: string;
  before(async () => {
    modelPath = await ensureModel(QWEN_TINY);
  });

  it('answers initialize and refuses other requests before it and after shutdown', async () => {
    let exitCode: number | undefined;
    const engine = connectInProcess({ onExit: (code) => (exitCode = code) });
    try {
      await rejectsWith(engine.client.tokenize('x'), EngineErrorCodes.NotInitialized, /send initialize/);
      await rejectsWith(
        engine.client.connection.sendRequest(InitializeRequest, { protocolVersion: PROTOCOL_VERSION + 1 }),
        EngineErrorCodes.InvalidRequest,
        /protocol version/,
      );
      const init = await engine.client.initialize({ name: 'protocol.test', version: '1' });
      assert.equal(init.protocolVersion, PROTOCOL_VERSION);
      assert.match(init.engineVersion, /^\d+\.\d+\.\d+/);
      assert.ok(init.isas.includes(init.isa));
      assert.deepEqual(init.architectures, ['smallthinker']);
      assert.equal(init.pid, process.pid);

      await engine.client.loadModel({ path: modelPath });
      await engine.client.connection.sendRequest('shutdown');
      await rejectsWith(engine.client.modelInfo(), EngineErrorCodes.InvalidRequest, /shutting down/);
      await engine.client.connection.sendNotification(ExitNotification);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(exitCode, 0);
    } finally {
      await engine.dispose();
    }
  });

  it('answers malformed frames, invalid messages, unknown methods, bad params and a missing model, and keeps serving', async () => {
    const logs: string[] = [];
    const engine = await started({ log: (line) => logs.push(line) });
    let raw = '';
    engine.toClient.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    const frame = (body: string) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const { client } = engine;
    try {
      await rejectsWith(client.tokenize('x'), EngineErrorCodes.ModelNotLoaded, /No model is loaded: choose a SmallThinker GGUF file/);
      await rejectsWith(client.complete({ documentId: 'd', prompt: prompt('x') }), EngineErrorCodes.ModelNotLoaded);
      assert.deepEqual(await client.modelInfo(), { loaded: false });
      await rejectsWith(
        client.loadModel({ path: '/nonexistent/model.gguf' }),
        EngineErrorCodes.ModelLoadFailed,
        /Cannot load the model \/nonexistent\/model\.gguf: .*check that the file exists/,
      );
      await rejectsWith(client.loadModel({ path: __filename }), EngineErrorCodes.ModelLoadFailed, /choose a SmallThinker GGUF file/);
      // A FIFO once blocked model/load forever, and every request queued behind it: now it is
      // refused at once and the next request is answered.
      const fifo = path.join(os.tmpdir(), `smallthinker-protocol-${process.pid}.gguf`);
      fs.rmSync(fifo, { force: true });
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
      try {
        await rejectsWith(
          client.loadModel({ path: fifo }),
          EngineErrorCodes.ModelLoadFailed,
          /is not a regular file \(a FIFO\); choose a GGUF model file/,
        );
        await rejectsWith(client.tokenize('x'), EngineErrorCodes.ModelNotLoaded);
      } finally {
        fs.rmSync(fifo, { force: true });
      }
      await rejectsWith(
        client.loadModel({ path: modelPath, kvMemoryLimitBytes: 1000 }),
        EngineErrorCodes.InvalidParams,
        /kvMemoryLimitBytes .* is smaller than the KV cache of one session/,
      );

      // Bytes that are not JSON, a header without Content-Length, JSON that is not JSON-RPC.
      engine.toServer.write(frame('{"jsonrpc": "2.0", "id": 1, "method": "tokenize", "params": {'));
      engine.toServer.write(frame('{"jsonrpc":"2.0","id":77,"method":5}'));
      engine.toServer.write(frame('{"jsonrpc":"1.0","id":78,"method":"tokenize","params":{"text":"x"}}'));
      engine.toServer.write(frame('[1,2,3]'));
      engine.toServer.write('Garbage: yes\r\n\r\n');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const replies = raw
        .split(/Content-Length: \d+\r\n\r\n/)
        .filter((s) => s.length > 0)
        .map((s) => JSON.parse(s) as { id: unknown; error?: { code: number; message: string } });
      const parseErrors = replies.filter((r) => r.id === null && r.error?.code === EngineErrorCodes.ParseError);
      assert.equal(parseErrors.length, 2, JSON.stringify(replies));
      assert.match(parseErrors[0].error!.message, /could not read a message/);
      assert.equal(replies.find((r) => r.id === 77)?.error?.code, EngineErrorCodes.InvalidRequest);
      assert.equal(replies.find((r) => r.id === 78)?.error?.code, EngineErrorCodes.InvalidRequest);
      assert.ok(replies.some((r) => r.id === null && r.error?.code === EngineErrorCodes.InvalidRequest && /batches/.test(r.error.message)));

      await rejectsWith(client.connection.sendRequest('no/such/method', {}), EngineErrorCodes.MethodNotFound);
      await rejectsWith(
        client.connection.sendRequest('tokenize', { text: 5 }),
        EngineErrorCodes.InvalidParams,
        /Invalid tokenize request: text must be a string/,
      );
      await rejectsWith(
        client.connection.sendRequest('completion/create', { documentId: 'd', prompt: { prefix: 'x' } }),
        EngineErrorCodes.InvalidParams,
        /prompt\.suffix must be a string/,
      );
      await rejectsWith(
        client.complete({ documentId: 'd', prompt: prompt('x'), candidates: 100 }),
        EngineErrorCodes.InvalidParams,
        /candidates must be at most 8/,
      );
      await rejectsWith(
        client.chat({ messages: [{ role: 'robot' as 'user', content: 'hi' }] }),
        EngineErrorCodes.InvalidParams,
        /messages\[0\]\.role must be one of/,
      );

      // Still serving.
      const loaded = await client.loadModel({ path: modelPath });
      assert.equal(loaded.info.architecture, 'smallthinker');
      assert.deepEqual(await client.tokenize('Hello world'), [9707, 1879]);
      const stats = await client.stats();
      assert.equal(stats.requests.failed, 11, `failed requests counted: ${JSON.stringify(stats.requests)}`);
      assert.ok(logs.some((l) => /unreadable message/.test(l)));
    } finally {
      await engine.dispose();
    }
  });

  describe('with a model loaded', () => {
    let engine: InProcessEngine;
    before(async () => {
      engine = await started();
    });
    after(async () => {
      await engine.dispose();
    });

    it('loads a model with progress and reports it', async () => {
      const progress: WorkDoneProgress[] = [];
      const result = await engine.client.loadModel({ path: modelPath, threads: 2 }, (v) => progress.push(v));
      assert.deepEqual(
        progress.map((p) => p.kind),
        ['begin', 'report', 'end'],
      );
      assert.equal(progress[1].message, 'reading the model file');
      assert.deepEqual(
        progress.map((p) => ('percentage' in p ? p.percentage : undefined)),
        [0, 0, undefined],
      );
      assert.equal(result.path, modelPath);
      assert.ok(result.loadMs >= 0);
      const info = await engine.client.modelInfo();
      assert.equal(info.loaded, true);
      assert.equal(info.path, modelPath);
      assert.deepEqual(
        { ...info.info, fileSize: 0 },
        {
          architecture: 'smallthinker',
          name: 'smallthinker-fixture',
          n_layer: 2,
          n_vocab: 151936,
          n_ctx_train: 4096,
          context: 4096,
          fim: true,
          chat: true,
          fileSize: 0,
          layout: { file: '', built: false, error: '' }, // no layoutDir: nothing to lay out, or in memory
        },
      );
      assert.ok(info.info!.fileSize > 0);
      assert.deepEqual(await engine.client.tokenize('<|im_end|>', true), [151645]);
      assert.notDeepEqual(await engine.client.tokenize('<|im_end|>'), [151645]);
    });

    it('completes code with candidates and reuses the document session', async () => {
      const params: CompletionParams = {
        documentId: 'file:///a.py',
        prompt: prompt('def add(a, b):\n    return', '\n\nprint(add(1, 2))\n'),
        maxTokens: 12,
        candidates: 3,
        stopOnDedent: false,
      };
      const first = await engine.client.complete(params);
      assert.ok(first.candidates.length >= 1 && first.candidates.length <= 3);
      assert.equal(new Set(first.candidates).size, first.candidates.length, 'candidates are distinct');
      const s = first.stats;
      assert.equal(s.fim, true);
      assert.equal(s.promptTokens, s.reusedTokens + s.evaluatedTokens);
      assert.equal(s.reusedTokens, s.prefixTokens + s.movedTokens);
      assert.ok(s.decodeTokens > 0 && s.decodeTokens <= 36);
      assert.ok(s.timeToFirstTokenMs <= s.totalMs);

      const again = await engine.client.complete(params);
      assert.deepEqual(again.candidates, first.candidates, 'greedy candidates are deterministic');
      assert.ok(
        again.stats.reusedTokens >= again.stats.promptTokens - 1,
        `reused ${again.stats.reusedTokens} of ${again.stats.promptTokens}`,
      );

      const plain = await engine.client.complete({ ...params, documentId: 'file:///b.py', fim: false, candidates: 1 });
      assert.equal(plain.stats.fim, false);
      assert.ok(plain.stats.promptTokens < s.promptTokens, 'no suffix without FIM');

      const warm = await engine.client.warm({ documentId: 'file:///c.py', prompt: params.prompt });
      assert.equal(warm.promptTokens, s.promptTokens);
      assert.equal(warm.evaluatedTokens, warm.promptTokens);
      const afterWarm = await engine.client.complete({ ...params, documentId: 'file:///c.py' });
      assert.equal(afterWarm.stats.evaluatedTokens <= 1, true, `evaluated ${afterWarm.stats.evaluatedTokens} after warming`);
      assert.deepEqual(afterWarm.candidates, first.candidates);
    });

    it('ends a completion early at its first line (firstLineMs), and says so', async () => {
      const base: CompletionParams = { documentId: 'file:///line.py', prompt: prompt('y = '), maxTokens: 40, stopOnDedent: false };
      const full = await engine.client.complete(base);
      assert.notEqual(full.stats.stopReason, 'line');
      // no time at all: the first token with text ends it
      const early = await engine.client.complete({ ...base, firstLineMs: 0 });
      assert.equal(early.stats.stopReason, 'line');
      assert.match(early.candidates[0], /\S/);
      assert.ok(full.candidates[0].startsWith(early.candidates[0]), `"${early.candidates[0]}" begins "${full.candidates[0]}"`);
      assert.ok(early.stats.decodeTokens < full.stats.decodeTokens, `${early.stats.decodeTokens} vs ${full.stats.decodeTokens} tokens`);
      // all the time it needs: up to the end of the first line with text, which is all there is without a newline
      const line = await engine.client.complete({ ...base, firstLineMs: 1e9 });
      const nl = full.candidates[0].search(/\S[^\n]*\n/);
      const expected = nl < 0 ? full.candidates[0] : full.candidates[0].slice(0, full.candidates[0].indexOf('\n', nl));
      assert.equal(line.candidates[0], expected);
      assert.equal(line.stats.stopReason, nl < 0 ? full.stats.stopReason : 'line');
    });

    it('stops completions at stop strings and maxTokens', async () => {
      const base: CompletionParams = { documentId: 'file:///stop.py', prompt: prompt('x = '), maxTokens: 24, stopOnDedent: false };
      const free = await engine.client.complete(base);
      const text = free.candidates[0];
      assert.ok(free.stats.decodeTokens <= 24);
      if (text.length >= 4) {
        const stop = text.slice(2, 4);
        const cut = await engine.client.complete({ ...base, stop: [stop] });
        const expected = text.slice(0, text.indexOf(stop));
        assert.equal(cut.candidates[0], /^\s*$/.test(expected) ? '' : expected);
      }
      const one = await engine.client.complete({ ...base, maxTokens: 1 });
      assert.equal(one.stats.decodeTokens, 1);
      // A spent time budget ends the generation (at twice the budget without a newline): with a
      // budget of a few tokens' time, far fewer than maxTokens come out. (A fixed 1 ms budget
      // assumed a step takes about a millisecond; on a fast machine three tiny-model steps fit.)
      const msPerToken = 1000 / Math.max(1, free.stats.decodeTokensPerS);
      const budget = Math.max(1, Math.round(2 * msPerToken));
      const quick = await engine.client.complete({ ...base, maxTokens: 100, timeBudgetMs: budget });
      const bound = Math.ceil((4 * budget) / msPerToken) + 3;
      assert.ok(
        quick.stats.decodeTokens <= Math.min(bound, 60),
        `${quick.stats.decodeTokens} tokens with a ${budget} ms budget (${msPerToken.toFixed(2)} ms a token)`,
      );
    });

    it('streams chat deltas that concatenate to the final text, and reuses the conversation', async () => {
      const params: Omit<ChatParams, 'partialResultToken'> = {
        conversationId: 'conv-1',
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'Say something.' },
        ],
        sampling: { temperature: 0.7, seed: 7 },
        maxTokens: 24,
      };
      const deltas: string[] = [];
      const result = await engine.client.chat(params, { onDelta: (t) => deltas.push(t) });
      assert.ok(deltas.length > 0);
      assert.equal(deltas.join(''), result.text);
      assert.ok(['eog', 'length'].includes(result.stopReason));
      assert.equal(result.seed, 7);
      assert.ok(result.stats.decodeTokens > 0 && result.stats.decodeTokens <= 24);
      assert.equal(result.stats.evaluatedTokens, result.stats.promptTokens);

      const same = await engine.client.chat({ ...params, conversationId: undefined });
      assert.equal(same.text, result.text, 'the same seed gives the same text');

      const next = await engine.client.chat({
        ...params,
        messages: [...params.messages, { role: 'assistant', content: result.text }, { role: 'user', content: 'More.' }],
      });
      assert.ok(next.stats.reusedTokens > 0, 'the second turn reuses the first');

      const greedy = await engine.client.chat({ messages: params.messages, sampling: { temperature: 0 }, maxTokens: 8, stop: [] });
      const stopAt = greedy.text.slice(3, 5);
      if (greedy.stopReason === 'length' && stopAt.length === 2) {
        const stopped = await engine.client.chat({ messages: params.messages, sampling: { temperature: 0 }, maxTokens: 8, stop: [stopAt] });
        assert.equal(stopped.stopReason, 'stop');
        assert.equal(stopped.text, greedy.text.slice(0, greedy.text.indexOf(stopAt)));
      }
    });

    it('cancels a request before it starts, during prefill and during decode', async () => {
      const { client } = engine;
      // Already cancelled when sent.
      const cancelled = new CancellationTokenSource();
      cancelled.cancel();
      await rejectsWith(client.complete({ documentId: 'c0', prompt: prompt('x') }, cancelled.token), EngineErrorCodes.RequestCancelled);

      // Waiting behind another chat.
      const long = client.chat({ messages: [{ role: 'user', content: 'Go on.' }], sampling: { temperature: 0 }, maxTokens: 40 });
      const queued = new CancellationTokenSource();
      const waiting = client.chat(
        { messages: [{ role: 'user', content: 'Me too.' }], maxTokens: 40 },
        { token: queued.token, onDelta: () => assert.fail('a cancelled chat must not start') },
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      queued.cancel();
      await rejectsWith(waiting, EngineErrorCodes.RequestCancelled, /cancelled/);
      assert.equal((await long).stats.decodeTokens > 0, true);

      // During a prefill of a few thousand tokens.
      const big = prompt(sourceText(240), sourceText(40));
      const full = await client.complete({ documentId: 'ref', prompt: big, maxTokens: 1, reuse: 'none' });
      const prefillMs = full.stats.prefillMs;
      assert.ok(full.stats.promptTokens > 2000, `prompt of ${full.stats.promptTokens} tokens`);
      const source = new CancellationTokenSource();
      const t0 = Date.now();
      const during = client.complete({ documentId: 'big', prompt: big, maxTokens: 4 }, source.token);
      setTimeout(() => source.cancel(), prefillMs / 4);
      await rejectsWith(during, EngineErrorCodes.RequestCancelled);
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < prefillMs * 0.8, `cancelled after ${elapsed} ms of a ${prefillMs.toFixed(0)} ms prefill`);
      // The session kept what it had evaluated: the next request continues from there.
      const resumed = await client.complete({ documentId: 'big', prompt: big, maxTokens: 1 });
      assert.ok(resumed.stats.reusedTokens > 0, 'the cancelled prefill left a valid prefix');
      assert.deepEqual(resumed.candidates, full.candidates);

      // During decode.
      const decode = new CancellationTokenSource();
      let pieces = 0;
      const chat = client.chat(
        { messages: [{ role: 'user', content: 'Talk for a long time.' }], sampling: { seed: 3 }, maxTokens: 2000 },
        {
          token: decode.token,
          onDelta: () => {
            if (++pieces === 3) decode.cancel();
          },
        },
      );
      await rejectsWith(chat, EngineErrorCodes.RequestCancelled);
      assert.ok(pieces >= 3 && pieces < 200, `${pieces} pieces before the cancellation took effect`);

      const stats = await client.stats();
      assert.ok(stats.requests.cancelled >= 4);
    });

    it('pre-empts chat with completions, and the chat text is the same as without them', async () => {
      const { client } = engine;
      const params: Omit<ChatParams, 'partialResultToken'> = {
        messages: [{ role: 'user', content: 'Tell me a long story about a compiler.' }],
        sampling: { temperature: 0.9, seed: 1234, repeatPenalty: 1.1 },
        maxTokens: 90,
      };
      const alone = await client.chat(params);
      assert.ok(alone.stats.decodeTokens >= 40, `the reference chat produced ${alone.stats.decodeTokens} tokens`);

      const before = (await client.stats()).requests.preemptions;
      const completions: Promise<{ at: number; text: string }>[] = [];
      let pieces = 0;
      const complete = (i: number) =>
        client
          .complete({ documentId: `pre-${i % 2}`, prompt: prompt(`value_${i} = compute(`), maxTokens: 6 })
          .then((r) => ({ at: Date.now(), text: r.candidates[0] }));
      const interrupted = client.chat(params, {
        onDelta: () => {
          pieces++;
          if (pieces === 2) completions.push(complete(0));
          if (pieces === 10) completions.push(complete(1), complete(2));
          if (pieces === 25) completions.push(complete(3));
        },
      });
      const result = await interrupted;
      const chatDone = Date.now();
      const done = await Promise.all(completions);
      assert.equal(done.length, 4);
      assert.equal(result.text, alone.text, 'pre-emption does not change the chat output');
      assert.equal(result.stopReason, alone.stopReason);
      for (const c of done) assert.ok(c.at <= chatDone, 'each completion finished before the chat it interrupted');
      const after = (await client.stats()).requests.preemptions;
      assert.ok(after - before >= 2, `${after - before} pre-emptions`);
    });

    it("lets a document's warm-up finish for its completion, and pre-empts it for another document's", async () => {
      const { client } = engine;
      const body = Array.from({ length: 400 }, (_, i) => `value_${i} = compute(${i}, "item ${i}")\n`).join('');
      const warmDoc = { documentId: 'warm-same', prompt: prompt(body, '\nprint(1)\n') };
      const before = (await client.stats()).requests.preemptions;
      // The keystroke arrives while the warm-up evaluates: it waits, then evaluates about one token.
      const warming = client.warm(warmDoc);
      const typed = await client.complete({ ...warmDoc, prompt: prompt(body + 'x', '\nprint(1)\n'), maxTokens: 2 });
      const warmed = await warming;
      assert.ok(warmed.evaluatedTokens > 1000, `the warm-up evaluated ${warmed.evaluatedTokens} tokens`);
      assert.ok(typed.stats.evaluatedTokens <= 3, `the completion evaluated ${typed.stats.evaluatedTokens} tokens`);
      assert.equal((await client.stats()).requests.preemptions, before, 'no pre-emption within a document');
      // Another document's completion does not wait for it.
      const other = client.warm({ ...warmDoc, documentId: 'warm-other' });
      await client.complete({ documentId: 'elsewhere', prompt: prompt('y = '), maxTokens: 2 });
      await other;
      assert.ok((await client.stats()).requests.preemptions > before, 'the other document pre-empted the warm-up');
    });

    it('keeps the KV memory of all sessions under the limit, evicting the least recently used', async () => {
      const { client } = engine;
      await client.loadModel({ path: modelPath, contextLength: 256, kvMemoryLimitBytes: 1 << 30 });
      await client.complete({ documentId: 'doc-0', prompt: prompt('a = 1\n'), maxTokens: 2 });
      const perSession = (await client.stats()).sessions[0].kvBytes;
      assert.ok(perSession > 0);

      const limit = Math.floor(2.5 * perSession);
      await client.loadModel({ path: modelPath, contextLength: 256, kvMemoryLimitBytes: limit });
      for (const doc of ['doc-1', 'doc-2', 'doc-3', 'doc-4']) {
        await client.complete({ documentId: doc, prompt: prompt(`${doc.replace('-', '_')} = 1\n`), maxTokens: 2 });
        const stats = await client.stats();
        assert.ok(stats.kvBytes <= limit, `${stats.kvBytes} bytes of KV over the ${limit} limit`);
      }
      const stats = await client.stats();
      assert.equal(stats.kvLimitBytes, limit);
      assert.deepEqual(stats.sessions.map((s) => s.id).sort(), ['completion:doc-3', 'completion:doc-4']);
      assert.equal(stats.requests.evictions, 2);
      assert.ok(stats.rssBytes > 0);
      // An evicted document still completes (in a new session).
      const again = await client.complete({ documentId: 'doc-1', prompt: prompt('doc_1 = 1\n'), maxTokens: 2 });
      assert.equal(again.stats.reusedTokens, 0);
    });

    it('gives identical completions with reuse none, prefix and moves on an append-only typing sequence', async () => {
      const { client } = engine;
      await client.loadModel({ path: modelPath });
      // Typing at the end of a long line, prefix-only: each prompt extends the previous one.
      const file = sourceText(30);
      const line = '    total = sum(value * weight for value, weight in zip(values, weights)) + offset - bias';
      const steps: string[] = [];
      for (let end = 4; end <= line.length; end += 9) steps.push(file + line.slice(0, end));
      const byMode: Record<string, string[][]> = { none: [], prefix: [], moves: [] };
      const reused: Record<string, number> = { none: 0, prefix: 0, moves: 0 };
      for (const prefix of steps) {
        for (const mode of ['none', 'prefix', 'moves'] as const) {
          const r = await client.complete({
            documentId: `reuse-${mode}`,
            prompt: prompt(prefix),
            fim: false,
            maxTokens: 8,
            candidates: 2,
            reuse: mode,
          });
          byMode[mode].push(r.candidates);
          reused[mode] += r.stats.reusedTokens;
        }
      }
      assert.deepEqual(byMode.prefix, byMode.none);
      assert.deepEqual(byMode.moves, byMode.none);
      assert.equal(reused.none, 0);
      assert.ok(reused.prefix > 0 && reused.moves >= reused.prefix, JSON.stringify(reused));
    });

    it('stops running work when the model is unloaded', async () => {
      const { client } = engine;
      let first: () => void = () => {};
      const firstDelta = new Promise<void>((resolve) => (first = resolve));
      const chat = client.chat({ messages: [{ role: 'user', content: 'Talk.' }], maxTokens: 2000 }, { onDelta: () => first() });
      await firstDelta;
      await client.unloadModel();
      const result = await chat;
      assert.equal(result.stopReason, 'cancelled');
      assert.ok(result.stats.decodeTokens < 2000);
      assert.deepEqual(await client.modelInfo(), { loaded: false });
      await rejectsWith(client.complete({ documentId: 'x', prompt: prompt('x') }), EngineErrorCodes.ModelNotLoaded);
    });
  });
});

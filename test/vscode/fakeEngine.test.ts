// The scripted fake engine (test/vscode/fakeEngine.ts) speaks the engine protocol the way the
// extension expects: spawned by EngineProcess like the real host, it loads any existing file with
// progress, streams the chat answer word by word, answers completions, honours cancellation,
// stop strings and maxTokens, records requests, and refuses a missing file.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc';

import { EngineErrorCodes, type CompletionParams, type WorkDoneProgress } from '../../src/common/protocol';
import { EngineProcess } from '../../src/node/engineProcess';
import { DEFAULT_CHAT_TEXT, DEFAULT_COMPLETION, DEFAULT_MODEL_NAME } from './fakeEngine';

const HOST = path.join(__dirname, 'fakeEngine.js');

const COMPLETION: CompletionParams = {
  documentId: 'file:///a.ts',
  prompt: { prefix: 'function add(a: number, b: number) {\n  ', suffix: '\n}\n', fileName: 'a.ts', languageId: 'typescript' },
};

describe('fake engine', () => {
  let dir: string;
  let model: string;
  let record: string;
  let engine: EngineProcess;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-engine-test-'));
    model = path.join(dir, 'model.gguf');
    record = path.join(dir, 'requests.jsonl');
    fs.writeFileSync(model, 'not really a model');
    engine = new EngineProcess({
      hostScript: HOST,
      env: { FAKE_ENGINE_RECORD: record, FAKE_ENGINE_LOAD_MS: '40', FAKE_ENGINE_CHAT_DELAY_MS: '1' },
    });
    const info = await engine.start();
    assert.equal(info.engineVersion, '0.0.0-fake');
  });

  after(async () => {
    await engine.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a missing model file with ModelLoadFailed', async () => {
    await assert.rejects(engine.loadModel({ path: path.join(dir, 'missing.gguf') }), (err: unknown) => {
      assert.ok(err instanceof ResponseError);
      assert.equal(err.code, EngineErrorCodes.ModelLoadFailed);
      assert.match(err.message, /does not exist/);
      return true;
    });
  });

  it('completion before a model is loaded fails with ModelNotLoaded', async () => {
    await assert.rejects(
      engine.complete(COMPLETION),
      (err: unknown) => err instanceof ResponseError && err.code === EngineErrorCodes.ModelNotLoaded,
    );
  });

  it('loads any existing file with begin/report/end progress', async () => {
    const progress: WorkDoneProgress[] = [];
    const result = await engine.loadModel({ path: model, contextLength: 2048 }, (p) => progress.push(p));
    assert.equal(result.path, model);
    assert.equal(result.info.name, DEFAULT_MODEL_NAME);
    assert.equal(result.info.context, 2048);
    assert.equal(result.info.fileSize, fs.statSync(model).size);
    assert.equal(progress[0]?.kind, 'begin');
    assert.equal(progress[progress.length - 1]?.kind, 'end');
    // Like the engine: a percentage with every report, rising through the phases to 99 (100 is ready).
    const reports = progress.filter((p) => p.kind === 'report');
    assert.ok(
      reports.every((p, i) => p.percentage !== undefined && (i === 0 || p.percentage >= (reports[i - 1].percentage ?? 0))),
      JSON.stringify(progress),
    );
    assert.equal(reports[reports.length - 1]?.percentage, 99, JSON.stringify(progress));
    assert.ok(
      reports.some((p) => /laying out/.test(p.message ?? '')),
      JSON.stringify(progress),
    );
    assert.deepEqual(await engine.modelInfo(), { loaded: true, path: model, info: result.info });
  });

  it('streams the chat answer in pieces that add up to the result', async () => {
    const deltas: string[] = [];
    const kinds: string[] = [];
    const result = await engine.chat(
      { messages: [{ role: 'user', content: 'add two numbers' }] },
      {
        onDelta: (t) => {
          if (deltas.length === 0) kinds.push('first delta');
          deltas.push(t);
        },
        onProgress: (p) => kinds.push(p.kind === 'begin' ? `begin ${p.prompt?.promptTokens}` : p.kind),
      },
    );
    // The prompt's size comes before the first word, like the engine's.
    assert.deepEqual(kinds, ['begin 4', 'report', 'first delta', 'end']);
    assert.equal(result.text, DEFAULT_CHAT_TEXT);
    assert.match(result.text, /```ts\n[\s\S]*\n```/);
    assert.equal(result.stopReason, 'eog');
    assert.ok(deltas.length > 10, `${deltas.length} pieces`);
    assert.equal(deltas.join(''), result.text);
  });

  it('chat honours maxTokens and stop strings', async () => {
    const short = await engine.chat({ messages: [{ role: 'user', content: 'x' }], maxTokens: 3 });
    assert.equal(short.stopReason, 'length');
    assert.equal(short.stats.decodeTokens, 3);
    const stopped = await engine.chat({ messages: [{ role: 'user', content: 'x' }], stop: ['```'] });
    assert.equal(stopped.stopReason, 'stop');
    assert.equal(stopped.text, DEFAULT_CHAT_TEXT.slice(0, DEFAULT_CHAT_TEXT.indexOf('```')));
  });

  it('a cancelled chat ends with RequestCancelled', async () => {
    const source = new CancellationTokenSource();
    let pieces = 0;
    const chat = engine.chat(
      { messages: [{ role: 'user', content: 'x' }] },
      { token: source.token, onDelta: () => ++pieces === 2 && source.cancel() },
    );
    await assert.rejects(chat, (err: unknown) => err instanceof ResponseError && err.code === EngineErrorCodes.RequestCancelled);
  });

  it('answers completion/create with the fixed suggestion and its alternatives', async () => {
    const one = await engine.complete(COMPLETION);
    assert.deepEqual(one.candidates, [DEFAULT_COMPLETION]);
    assert.ok(one.stats.promptTokens > 0);
    const three = await engine.complete({ ...COMPLETION, candidates: 3 });
    assert.equal(three.candidates.length, 3);
    assert.equal(new Set(three.candidates).size, 3);
  });

  it('records every request with its params', () => {
    const lines = fs
      .readFileSync(record, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { method: string; params: unknown });
    const methods = lines.map((l) => l.method);
    for (const m of ['initialize', 'model/load', 'chat/create', 'completion/create'])
      assert.ok(methods.includes(m), `${m} in ${methods.join(', ')}`);
    const completion = lines.find((l) => l.method === 'completion/create');
    assert.deepEqual((completion?.params as CompletionParams).prompt, COMPLETION.prompt);
  });
});

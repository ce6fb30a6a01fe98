// The load's progress notification (src/vscode/features/status/loadNotice.ts), driven by a scripted
// engine status and a recording withProgress: when it opens, what it says, when it ends.
import * as assert from 'node:assert/strict';

import { suite, test } from 'mocha';
import * as vscode from 'vscode';

import type { EngineStatus } from '../../../src/vscode/engineService';
import { registerLoadNotice } from '../../../src/vscode/features/status/loadNotice';

interface Shown {
  title: string;
  reports: string[];
  /** the percentage the bar reached (sum of increments) */
  bar: number;
  ended: boolean;
}

function harness(delayMs: number) {
  const emitter = new vscode.EventEmitter<EngineStatus>();
  let status: EngineStatus = { kind: 'starting' };
  const shown: Shown[] = [];
  const context = { subscriptions: [] as { dispose(): unknown }[] };
  registerLoadNotice(
    context,
    {
      get status() {
        return status;
      },
      onDidChangeStatus: emitter.event,
    },
    {
      delayMs,
      withProgress: (options, task) => {
        const s: Shown = { title: options.title ?? '', reports: [], bar: 0, ended: false };
        shown.push(s);
        const done = task({
          report: (v) => {
            s.reports.push(v.message ?? '');
            s.bar += v.increment ?? 0;
          },
        });
        return done.then((r) => {
          s.ended = true;
          return r;
        });
      },
    },
  );
  const set = (next: EngineStatus): void => {
    status = next;
    emitter.fire(next);
  };
  const dispose = (): void => {
    for (const d of context.subscriptions) d.dispose();
    emitter.dispose();
  };
  return { shown, set, dispose };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const loading = (modelPath: string, percentage: number, message = 'laying out the weights'): EngineStatus => ({
  kind: 'loading',
  modelPath,
  percentage,
  message,
});

suite('load notification', () => {
  test('a quick load gets none', async () => {
    const h = harness(50);
    h.set(loading('/m/a.gguf', 0));
    h.set(loading('/m/a.gguf', 60));
    h.set({ kind: 'noModel', message: 'No model is set.' });
    await sleep(120);
    assert.equal(h.shown.length, 0);
    h.dispose();
  });

  test('a slow load: opens at the first loading state after the delay, follows it, ends with it', async () => {
    const h = harness(30);
    await sleep(80); // still starting when the delay passes: nothing yet (no model to name)
    assert.equal(h.shown.length, 0);
    h.set(loading('/m/a.gguf', 10));
    assert.equal(h.shown.length, 1, 'opens at once at the first loading state');
    assert.equal(h.shown[0].title, 'SmallThinker: loading a');
    h.set(loading('/m/a.gguf', 55));
    h.set({ kind: 'starting' }); // an engine restart under it: the bar does not move back
    h.set(loading('/m/a.gguf', 20));
    assert.deepEqual(h.shown[0].reports, [
      '10% · laying out the weights',
      '55% · laying out the weights',
      'starting the engine',
      '20% · laying out the weights',
    ]);
    assert.equal(h.shown[0].bar, 55);
    h.set({
      kind: 'ready',
      modelPath: '/m/a.gguf',
      model: {
        architecture: 'smallthinker',
        name: 'a',
        n_layer: 2,
        n_vocab: 512,
        n_ctx_train: 4096,
        context: 4096,
        fim: true,
        chat: true,
        fileSize: 1,
      },
      loadMs: 900,
    });
    await sleep(10);
    assert.ok(h.shown[0].ended, 'ended with the load');
    assert.equal(h.shown.length, 1);
    h.dispose();
  });

  test('another model loading meanwhile: the first notification ends, one titled with the new model opens', async () => {
    const h = harness(10);
    h.set(loading('/m/a.gguf', 5));
    await sleep(50);
    assert.equal(h.shown.length, 1);
    h.set(loading('/m/b.gguf', 3));
    await sleep(10);
    assert.equal(h.shown.length, 2);
    assert.ok(h.shown[0].ended);
    assert.equal(h.shown[1].title, 'SmallThinker: loading b');
    assert.deepEqual(h.shown[1].reports, ['3% · laying out the weights']);
    h.set({ kind: 'error', message: 'bad magic', modelPath: '/m/b.gguf' });
    await sleep(10);
    assert.ok(h.shown[1].ended, 'a failed load ends it too');
    h.dispose();
  });
});

// Unit tests of src/common/requestLog.ts (the engine log's request and load lines) and
// src/common/loadProgress.ts (the model load as one percentage).
// Run: node --test out/test/unit/requestLog.test.js
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { LOAD_PHASE_MESSAGES, loadPercentage } from '../../src/common/loadProgress';
import type { ChatStats, CompletionStats } from '../../src/common/protocol';
import { cancelledLogLine, chatLogLine, completionLogLine, failedLogLine, LoadLog, warmLogLine } from '../../src/common/requestLog';

const completion: CompletionStats = {
  promptTokens: 720,
  reusedTokens: 592,
  prefixTokens: 500,
  movedTokens: 92,
  evaluatedTokens: 128,
  prefillMs: 410,
  timeToFirstTokenMs: 1210,
  decodeTokens: 79,
  decodeTokensPerS: 43.2,
  totalMs: 3050,
  fim: true,
  stopReason: 'budget',
};

describe('request log lines', () => {
  test('a completion: prompt, reuse, evaluated, first token, speed, total and stop reason', () => {
    assert.equal(
      completionLogLine('completion math.ts:15', completion, 1),
      'completion math.ts:15: prompt 720 tokens (592 reused, 128 evaluated in 410 ms), first token 1.2 s, 79 tokens at 43 tok/s, total 3.0 s, stop budget',
    );
    const older = { ...completion, stopReason: undefined, fim: false };
    assert.match(completionLogLine('completion x', older, 3), /stop unknown, 3 candidates, prefix only$/);
  });

  test('a chat answer, a warm-up, a cancellation and a failure', () => {
    const chat: ChatStats = {
      promptTokens: 734,
      reusedTokens: 0,
      evaluatedTokens: 734,
      prefillMs: 2100,
      timeToFirstTokenMs: 2300,
      decodeTokens: 120,
      decodeTokensPerS: 38.4,
    };
    assert.equal(
      chatLogLine('refactor', chat, 'length', 5400),
      'refactor: prompt 734 tokens (0 reused, 734 evaluated in 2.1 s), first token 2.3 s, 120 tokens at 38 tok/s, total 5.4 s, stop length',
    );
    assert.equal(
      warmLogLine('warm a.py', { promptTokens: 300, reusedTokens: 280, evaluatedTokens: 20, ms: 35 }),
      'warm a.py: prompt 300 tokens (280 reused, 20 evaluated in 35 ms)',
    );
    assert.equal(cancelledLogLine('chat', 1500, '12 pieces of text received'), 'chat: cancelled after 1.5 s (12 pieces of text received)');
    assert.equal(failedLogLine('chat', 20, 'No model is loaded.'), 'chat: failed after 20 ms: No model is loaded.');
  });

  test('model load: a line per phase, the layout every 25%, and the phases with their durations at the end', () => {
    const log = new LoadLog(1000);
    const lines = [
      log.progress(1000, LOAD_PHASE_MESSAGES.reading, 0),
      log.progress(1200, LOAD_PHASE_MESSAGES.layout, 5),
      log.progress(1300, LOAD_PHASE_MESSAGES.layout, 12),
      log.progress(2000, LOAD_PHASE_MESSAGES.layout, 30),
      log.progress(3000, LOAD_PHASE_MESSAGES.layout, 56),
      log.progress(3100, LOAD_PHASE_MESSAGES.layout, 60),
    ].filter((l) => l !== undefined);
    assert.deepEqual(lines, [
      'model load: reading the model file (0%) at 0 ms',
      'model load: laying out the weights for fast loading (once) (5%) at 200 ms',
      'model load: laying out the weights for fast loading (once) 30% at 1.0 s',
      'model load: laying out the weights for fast loading (once) 56% at 2.0 s',
    ]);
    assert.equal(log.finish(4000), 'reading the model file 200 ms, laying out the weights for fast loading (once) 2.8 s');
  });
});

describe('load percentage', () => {
  test('reading, then the layout build from 5 to 99: never 100 before the model is ready, never backwards', () => {
    assert.equal(loadPercentage('reading'), 0);
    assert.equal(loadPercentage('layout', 0), 5);
    assert.equal(loadPercentage('layout', 0.5), 52);
    assert.equal(loadPercentage('layout', 1), 99);
    assert.equal(loadPercentage('layout', 7), 99);
    assert.equal(loadPercentage('layout', Number.NaN), 5);
    let last = 0;
    for (let f = 0; f <= 1; f += 0.01) {
      const p = loadPercentage('layout', f);
      assert.ok(p >= last);
      last = p;
    }
  });
});

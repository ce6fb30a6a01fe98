// Unit tests of src/common/statusText.ts: the status bar item's text, tooltip, severity and
// accessibility label for each engine state. Run: node --test out/test/unit/statusText.test.js
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import type { CompletionStats, ModelSummary } from '../../src/common/protocol';
import {
  baseName,
  escapeMarkdown,
  formatAge,
  formatMs,
  formatTokensPerS,
  loadNoticeView,
  missingModelMessage,
  modelDisplayName,
  statusView,
} from '../../src/common/statusText';

const model: ModelSummary = {
  architecture: 'smallthinker',
  name: 'SmallThinker-4B',
  n_layer: 32,
  n_vocab: 151936,
  n_ctx_train: 32768,
  context: 4096,
  fim: true,
  chat: true,
  fileSize: 2.4 * 1024 ** 3,
};

const stats: CompletionStats = {
  promptTokens: 1000,
  reusedTokens: 900,
  prefixTokens: 850,
  movedTokens: 50,
  evaluatedTokens: 100,
  prefillMs: 40,
  timeToFirstTokenMs: 95.4,
  decodeTokens: 30,
  decodeTokensPerS: 24.3,
  totalMs: 180.2,
  fim: true,
};

describe('helpers', () => {
  test('names, durations, rates, escaping', () => {
    assert.equal(baseName('/a/b/model.gguf'), 'model.gguf');
    assert.equal(baseName('C:\\models\\m.gguf'), 'm.gguf');
    assert.equal(modelDisplayName('/m/SmallThinker-4B-A0.6B-Instruct-Q4_0.gguf'), 'SmallThinker-4B-A0.6B-Instr…');
    assert.equal(modelDisplayName('/m/tiny.gguf'), 'tiny');
    assert.equal(modelDisplayName('/m/tiny.gguf', { name: '  ' }), 'tiny');
    assert.equal(modelDisplayName('/m/tiny.gguf', { name: 'Named' }), 'Named');
    assert.equal(formatMs(180.2), '180 ms');
    assert.equal(formatMs(1530), '1.5 s');
    assert.equal(formatMs(12_400), '12 s');
    assert.equal(formatTokensPerS(24.3), '24 tok/s');
    assert.equal(formatTokensPerS(7.25), '7.3 tok/s');
    assert.equal(formatTokensPerS(0), '– tok/s');
    assert.equal(escapeMarkdown('a_b*[c](d)'), 'a\\_b\\*\\[c\\]\\(d\\)');
  });
});

describe('statusView', () => {
  test('no model: a warning with circle-slash that says what to do', () => {
    const view = statusView({ status: { kind: 'noModel', message: 'No model is set.' }, completionEnabled: true });
    assert.equal(view.text, '$(circle-slash) SmallThinker: no model');
    assert.equal(view.severity, 'warning');
    assert.match(view.accessibilityLabel, /^SmallThinker: no model/);
    assert.ok(view.tooltip.some((line) => /Download the default model or choose a GGUF file/.test(line)));
  });

  test('starting and loading spin; loading shows a clamped, rounded percentage', () => {
    assert.equal(statusView({ status: { kind: 'starting' }, completionEnabled: true }).text, '$(loading~spin) SmallThinker');
    const loading = statusView({
      status: { kind: 'loading', modelPath: '/m/x.gguf', percentage: 44.6, message: 'tensors' },
      completionEnabled: true,
    });
    assert.equal(loading.text, '$(loading~spin) SmallThinker 45%');
    assert.equal(loading.accessibilityLabel, 'SmallThinker: loading 45%, tensors');
    assert.ok(loading.tooltip.includes('Now: tensors'));
    assert.equal(
      statusView({ status: { kind: 'loading', modelPath: '/m/x.gguf', percentage: 140 }, completionEnabled: true }).text,
      '$(loading~spin) SmallThinker 100%',
    );
    assert.equal(
      statusView({ status: { kind: 'loading', modelPath: '/m/x.gguf' }, completionEnabled: true }).text,
      '$(loading~spin) SmallThinker',
    );
  });

  test('ready without a completion: the model name only', () => {
    const view = statusView({ status: { kind: 'ready', modelPath: '/m/st.gguf', model, loadMs: 900 }, completionEnabled: true });
    assert.equal(view.text, '$(hubot) SmallThinker-4B');
    assert.equal(view.severity, 'normal');
    assert.ok(view.tooltip.includes('No completion yet.'));
    assert.ok(view.tooltip.includes('Inline completion: on'));
  });

  test('ready after a completion: the item shows no figures; the tooltip dates them as the last completion', () => {
    const view = statusView({
      status: { kind: 'ready', modelPath: '/m/st.gguf', model, loadMs: 900 },
      lastCompletion: stats,
      lastCompletionAgeMs: 140_000,
      engineIsa: 'avx2',
      engineVersion: '0.3.0',
      completionEnabled: false,
    });
    // Figures in the item would read as the current speed long after that completion.
    assert.equal(view.text, '$(hubot) SmallThinker-4B');
    assert.equal(view.accessibilityLabel, 'SmallThinker: ready, SmallThinker-4B');
    const tooltip = view.tooltip.join('\n');
    assert.match(tooltip, /^Last completion \(2 min ago\): first token 95 ms/m);
    assert.match(tooltip, /900 of 1000 prompt tokens reused \(90%\)/);
    assert.match(tooltip, /100 evaluated in 40 ms; 50 moved/);
    assert.match(tooltip, /first token 95 ms, total 180 ms, 24 tok\/s \(30 tokens\)/);
    assert.match(tooltip, /Engine: version 0\\\.3\\\.0, kernels avx2/);
    assert.match(tooltip, /st\\\.gguf \(2\.40 GB, 32 layers, context 4096, fill-in-the-middle\), loaded in 900 ms/);
    assert.match(tooltip, /Inline completion: off/);
  });

  test('under a memory budget: the budget and the expert cache`s figures in the tooltip', () => {
    const budgeted = { ...model, memoryBudget: { bytes: 8 * 1024 ** 3, cacheSlots: 1950, extents: 3328, residentBytes: 10 ** 9 } };
    const ready = { kind: 'ready' as const, modelPath: '/m/st.gguf', model: budgeted, loadMs: 900 };
    const before = statusView({ status: ready, completionEnabled: true }).tooltip.join('\n');
    assert.match(before, /Memory budget 8\.00 GB: 1950 of 3328 experts cached/);
    assert.doesNotMatch(before, /found in the cache/);
    const counts = { uses: 1000, reads: 80, bytesRead: 256 * 1024 ** 2, stallMs: 420 };
    const experts = { ...counts, budgetBytes: 8 * 1024 ** 3, capacity: 1950, extents: 3328, hitRate: 0.92, layers: [counts] };
    const after = statusView({ status: ready, completionEnabled: true, experts }).tooltip.join('\n');
    assert.match(after, /Experts: 92% found in the cache, 256\.0 MB read, 420 ms waiting for the disk/);
    assert.doesNotMatch(statusView({ status: { ...ready, model }, completionEnabled: true, experts }).tooltip.join('\n'), /budget|Experts/);
  });

  test('error: error severity, the message (escaped) in the tooltip, restarting shown', () => {
    const view = statusView({ status: { kind: 'error', message: 'Loading x_y.gguf failed: bad magic' }, completionEnabled: true });
    assert.equal(view.text, '$(error) SmallThinker');
    assert.equal(view.severity, 'error');
    assert.ok(view.tooltip.includes('Loading x\\_y\\.gguf failed: bad magic'));
    assert.equal(view.accessibilityLabel, 'SmallThinker: error. Loading x_y.gguf failed: bad magic');
    const restarting = statusView({ status: { kind: 'error', message: 'crashed', restarting: true }, completionEnabled: true });
    assert.equal(restarting.text, '$(error) SmallThinker: restarting');
  });

  test('formatAge: just now, seconds, minutes, hours', () => {
    assert.equal(formatAge(1200), 'just now');
    assert.equal(formatAge(42_000), '42 s ago');
    assert.equal(formatAge(5 * 60_000), '5 min ago');
    assert.equal(formatAge(3 * 3_600_000), '3 h ago');
  });
});

test('a missing model file: the message names the path and the setting', () => {
  const message = missingModelMessage('/home/me/models/SmallThinker-4B-A0.6B-Instruct.Q4_0.gguf');
  assert.match(message, /the model file \/home\/me\/models\/SmallThinker-4B-A0\.6B-Instruct\.Q4_0\.gguf was not found/);
  assert.match(message, /smallthinker\.model\.path/);
});

test('a load`s notification: the engine starting, then the percentage and phase; none in any other state', () => {
  assert.deepEqual(loadNoticeView({ kind: 'starting' }), {
    title: 'SmallThinker: loading the model',
    message: 'starting the engine',
    percentage: 0,
  });
  const loading = loadNoticeView({ kind: 'loading', modelPath: '/m/SmallThinker-4B.Q4_0.gguf', percentage: 41.6, message: 'laying out' });
  assert.equal(loading?.title, 'SmallThinker: loading SmallThinker-4B.Q4_0');
  assert.equal(loading?.message, '42% · laying out');
  assert.equal(loading?.percentage, 42);
  assert.equal(loadNoticeView({ kind: 'loading', modelPath: '/m/a.gguf', percentage: 130 })?.message, '100%');
  assert.equal(loadNoticeView({ kind: 'loading', modelPath: '/m/a.gguf' })?.percentage, 0);
  assert.equal(loadNoticeView({ kind: 'ready', modelPath: '/m/a.gguf', model, loadMs: 80 }), undefined);
  assert.equal(loadNoticeView({ kind: 'error', message: 'bad magic' }), undefined);
  assert.equal(loadNoticeView({ kind: 'noModel', message: 'No model is set.' }), undefined);
});

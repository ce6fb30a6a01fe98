// An engine crash in a real VS Code: killing the engine process shows an error state with a
// message, the engine restarts with the model reloaded, and requests work again.
import * as assert from 'node:assert/strict';

import { suite, test } from 'mocha';

import type { EngineStatus } from '../../../src/vscode/engineService';
import { readyEngine, waitFor } from './helpers';

suite('engine crash (real engine)', () => {
  test('a killed engine shows an error, restarts and serves again', async function () {
    this.timeout(180_000);
    const api = await readyEngine();
    const pid = api.engine.engineInfo?.pid;
    assert.ok(pid, 'the engine process id is known');
    const seen: EngineStatus[] = [];
    const sub = api.engine.onDidChangeStatus((s) => seen.push(s));
    try {
      process.kill(pid, 'SIGKILL');
      await waitFor('an error status', () => seen.some((s) => s.kind === 'error'), 30_000);
      const error = seen.find((s) => s.kind === 'error') as Extract<EngineStatus, { kind: 'error' }>;
      assert.match(error.message, /stopped unexpectedly/);
      await waitFor('the engine to be ready again', () => api.engine.status.kind === 'ready', 120_000);
      assert.notEqual(api.engine.engineInfo?.pid, pid, 'a new engine process');
      const result = await api.engine.complete({
        documentId: 'after-crash',
        prompt: { prefix: 'let x = ', suffix: '', fileName: 'a.ts', languageId: 'typescript' },
        maxTokens: 4,
      });
      assert.ok(result.stats.promptTokens > 0);
    } finally {
      sub.dispose();
    }
  });
});

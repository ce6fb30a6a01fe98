// The loaded model as a VS Code language model (vscode.lm): selectable by vendor, and a request
// streams text from the real engine.
import * as assert from 'node:assert/strict';

import { suite, test } from 'mocha';
import * as vscode from 'vscode';

import { LANGUAGE_MODEL_VENDOR } from '../../../src/common/ids';
import { readyEngine, waitFor } from './helpers';

suite('language model provider (real engine)', () => {
  test('vscode.lm offers the model and streams an answer', async function () {
    this.timeout(120_000);
    await readyEngine();
    const [model] = await waitFor(
      'the SmallThinker language model',
      async () => {
        const models = await vscode.lm.selectChatModels({ vendor: LANGUAGE_MODEL_VENDOR });
        return models.length > 0 ? models : undefined;
      },
      30_000,
    );
    assert.equal(model.vendor, LANGUAGE_MODEL_VENDOR);
    assert.ok(model.maxInputTokens > 0);
    const source = new vscode.CancellationTokenSource();
    const response = await model.sendRequest([vscode.LanguageModelChatMessage.User('Say hello.')], {}, source.token);
    let text = '';
    let pieces = 0;
    let cancelled = false;
    try {
      for await (const piece of response.text) {
        text += piece;
        if (++pieces >= 8) source.cancel();
      }
    } catch (err) {
      // Cancelling mid-stream ends the stream with VS Code's cancellation error.
      assert.match(String(err), /cancel/i);
      cancelled = true;
    }
    assert.ok(text.length > 0, 'streamed text');
    assert.ok(cancelled || pieces < 8, 'cancellation stopped the stream');
    assert.ok((await model.countTokens('hello world')) > 0);
  });
});

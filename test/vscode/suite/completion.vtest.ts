// Inline completion in a real VS Code with the real engine and a generated GGUF: a suggestion
// appears and is accepted into the document; typing into a shown suggestion is served from the
// client cache without an engine call; with the suggest widget open the suggestion extends its
// selected item; a cancelled request stops.
import * as assert from 'node:assert/strict';

import { suite, suiteSetup, suiteTeardown, test } from 'mocha';
import * as vscode from 'vscode';

import { Commands } from '../../../src/common/ids';
import type { CompletionParams } from '../../../src/common/protocol';
import { closeAllEditors, openFile, placeCursor, readyEngine, recordCompletions, sleep, waitFor } from './helpers';

const SOURCE = 'def add(a, b):\n    """Add two numbers."""\n    total = ';

async function editorAtEnd(name: string, text: string): Promise<vscode.TextEditor> {
  const editor = await openFile(name, text);
  const end = editor.document.positionAt(editor.document.getText().length);
  await placeCursor(editor, end);
  return editor;
}

suite('inline completion (real engine)', () => {
  suiteSetup(async function () {
    this.timeout(180_000);
    await readyEngine();
  });
  suiteTeardown(closeAllEditors);

  test('a suggestion appears and is accepted', async function () {
    this.timeout(120_000);
    const api = await readyEngine();
    const editor = await editorAtEnd('accept.py', SOURCE);
    const before = editor.document.getText();
    const calls = api.testing.completionProvider()!.engineCalls;
    // The inline suggestion is computed by hand (Alt+\ = several candidates); accept it with the
    // editor's own command, retrying while the engine works.
    await vscode.commands.executeCommand(Commands.triggerCompletion);
    await waitFor(
      'an accepted suggestion to change the document',
      async () => {
        await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
        if (editor.document.getText() !== before) return true;
        if (api.testing.completionProvider()!.engineCalls > calls)
          await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
        return false;
      },
      90_000,
      400,
    );
    const after = editor.document.getText();
    assert.ok(after.startsWith(before) && after.length > before.length, 'the suggestion is inserted at the cursor');
    assert.ok(api.testing.completionProvider()!.engineCalls > calls, 'the engine was asked');
    assert.ok(api.engine.lastCompletion, 'the engine service recorded the completion');
    assert.ok(api.testing.completionProvider()!.tracker.state.accepted >= 1, 'the acceptance was counted');
  });

  test('typing the start of a shown suggestion is served from the cache', async function () {
    this.timeout(120_000);
    const api = await readyEngine();
    const provider = api.testing.completionProvider()!;
    const editor = await editorAtEnd('typed.py', 'import os\n\ndef main():\n    path = ');
    const doc = editor.document;
    const key = (text: string, offset: number) => ({
      document: doc.uri.toString(),
      prefix: text.slice(0, offset),
      suffix: text.slice(offset),
    });
    await vscode.commands.executeCommand(Commands.triggerCompletion);
    const text0 = doc.getText();
    const hit = await waitFor(
      'a cached suggestion',
      () => {
        const h = provider.cache.get(key(text0, text0.length));
        return h && h.candidates[0] && h.candidates[0].length >= 2 ? h : undefined;
      },
      90_000,
    );
    const suggestion = hit.candidates[0];
    const callsBefore = provider.engineCalls;
    // Type the first character of the suggestion.
    await editor.edit((b) => b.insert(doc.positionAt(text0.length), suggestion[0]));
    const text1 = doc.getText();
    await placeCursor(editor, doc.positionAt(text1.length));
    const served = provider.cache.get(key(text1, text1.length));
    assert.ok(served, 'the cache serves the typed-ahead position');
    assert.equal(served.typed, 1);
    assert.equal(served.candidates[0], suggestion.slice(1));
    const items = await provider.provideInlineCompletionItems(
      doc,
      doc.positionAt(text1.length),
      { triggerKind: vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined },
      new vscode.CancellationTokenSource().token,
    );
    assert.ok(items && items.length > 0);
    assert.equal(items[0].insertText, suggestion.slice(1));
    assert.equal(provider.engineCalls, callsBefore, 'no engine call for a typed-ahead suggestion');
  });

  test('resting at the end of a line predicts the line Enter starts: Enter there waits for it, no second engine call', async function () {
    this.timeout(120_000);
    const api = await readyEngine();
    const provider = api.testing.completionProvider()!;
    // (the editor's own requests, which would cancel the prediction from other positions, off: this test asks by hand)
    const editorConfig = vscode.workspace.getConfiguration('editor');
    await editorConfig.update('inlineSuggest.enabled', false, vscode.ConfigurationTarget.Global);
    // the requests sent for this file, and by whom (the provider's own are labelled "completion enter.py:<line>")
    const recorded = recordCompletions(api);
    try {
      await predictedEnter(provider, () =>
        recorded.sent.filter((c) => c.params.prompt.fileName.endsWith('enter.py')).map((c) => c.options?.label ?? 'completion'),
      );
    } finally {
      recorded.restore();
      await editorConfig.update('inlineSuggest.enabled', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  async function predictedEnter(
    provider: NonNullable<ReturnType<Awaited<ReturnType<typeof readyEngine>>['testing']['completionProvider']>>,
    labels: () => string[],
  ) {
    const editor = await openFile('enter.py', 'import os\n\ndef main():\n    return 0\n');
    const doc = editor.document;
    const end = doc.lineAt(2).range.end; // after "def main():"
    await placeCursor(editor, end);
    provider.predictNewLine(editor);
    // Enter at once, while the prediction is computed: after the colon, one level deeper
    await editor.edit((b) => b.insert(end, '\n    '));
    const pos = doc.positionAt(doc.offsetAt(end) + 5);
    await placeCursor(editor, pos);
    // a warm-up ending now, on the new and still blank line, asks again: the prediction must go on
    provider.predictNewLine(editor);
    const items = await provider.provideInlineCompletionItems(
      doc,
      pos,
      { triggerKind: vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined },
      new vscode.CancellationTokenSource().token,
    );
    assert.ok(
      labels().length > 0 && labels().every((l) => l.startsWith('completion for a new line')),
      `served by the prediction: ${labels().join('; ')}`,
    );
    const text = doc.getText();
    const offset = doc.offsetAt(pos);
    const cached = provider.cache.get({ document: doc.uri.toString(), prefix: text.slice(0, offset), suffix: text.slice(offset) });
    assert.ok(cached, 'the prediction is in the cache');
    const first = cached.candidates.find((c) => c.length > 0);
    if (first) assert.equal(items?.[0]?.insertText, first);
    // a line the cursor does not end: no prediction
    const mid = doc.lineAt(0).range.start.translate(0, 3);
    await placeCursor(editor, mid);
    const before = labels().length;
    provider.predictNewLine(editor);
    await sleep(300);
    assert.deepEqual(
      labels()
        .slice(before)
        .filter((l) => l.startsWith('completion for a new line')),
      [],
    );
  }

  test('a typed request shows the first line at once, then grows it with its continuation', async function () {
    this.timeout(120_000);
    const api = await readyEngine();
    const provider = api.testing.completionProvider()!;
    const config = vscode.workspace.getConfiguration('smallthinker');
    // 1 ms: the first token with text ends the first request, so there is always more to grow
    await config.update('completion.firstLineMs', 1, vscode.ConfigurationTarget.Global);
    // the continuations sent for this file, with their cancellation tokens
    const recorded = recordCompletions(api);
    const aheads = () =>
      recorded.sent.filter((c) => c.params.prompt.fileName.endsWith('grow.py') && c.options?.label?.startsWith('completion ahead'));
    try {
      const editor = await editorAtEnd('grow.py', 'import sys\n\ndef run(args):\n    value = ');
      const doc = editor.document;
      const text = doc.getText();
      const ask = () =>
        provider.provideInlineCompletionItems(
          doc,
          doc.positionAt(text.length),
          { triggerKind: vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined },
          new vscode.CancellationTokenSource().token,
        );
      const items = await waitFor('a first-line suggestion', ask, 60_000);
      const first = String(items[0].insertText);
      assert.ok(first.trim().length > 0);
      // The editor asks again at the same position while the continuation is computed (it does,
      // e.g. when the suggestion is rendered): the continuation goes on.
      const ahead = await waitFor('the continuation to be sent', () => aheads()[0]?.token, 10_000, 2);
      const again = await ask();
      assert.equal(again?.[0]?.insertText, first, 'the first line is served again');
      // The continuation arrives and the cached suggestion becomes first line + continuation.
      const key = { document: doc.uri.toString(), prefix: text, suffix: '' };
      const grown = await waitFor(
        'the suggestion to grow',
        () => {
          const c = provider.cache.get(key)?.candidates[0];
          return c && c.length > first.length ? c : undefined;
        },
        60_000,
      );
      assert.ok(grown.startsWith(first), `"${grown}" continues "${first}"`);
      assert.equal(ahead.isCancellationRequested, false, 'the continuation was not cancelled by the request at its position');
      // and the continuation alone serves the position after accepting the first line
      assert.equal(provider.cache.get({ ...key, prefix: text + first })?.candidates[0], grown.slice(first.length));
    } finally {
      recorded.restore();
      await config.update('completion.firstLineMs', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  test('with the suggest widget open, the suggestion extends its selected item: prompt, range, cache and growth', async function () {
    this.timeout(150_000);
    const api = await readyEngine();
    const provider = api.testing.completionProvider()!;
    const config = vscode.workspace.getConfiguration('smallthinker');
    // 1 ms: the first token with text ends the first request, so the suggestion then grows
    await config.update('completion.firstLineMs', 1, vscode.ConfigurationTarget.Global);
    const recorded = recordCompletions(api);
    const sent = (): CompletionParams[] => recorded.sent.map((c) => c.params);
    try {
      // "w" typed after "return ", the widget's selected item is "width" (it replaces the "w").
      const editor = await editorAtEnd('widget.py', 'def area(width, height):\n    """The area."""\n    return w');
      const doc = editor.document;
      const text = doc.getText();
      const position = doc.positionAt(text.length);
      const range = new vscode.Range(position.translate(0, -1), position);
      const before = text.slice(0, text.length - 1);
      const ask = (selected: string) =>
        provider.provideInlineCompletionItems(
          doc,
          position,
          { triggerKind: vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: { range, text: selected } },
          new vscode.CancellationTokenSource().token,
        );

      // Requests by prompt (the editor may ask for the document itself too, e.g. once the suggestion grew)
      const asked = (end: string): number => sent().filter((p) => p.prompt.prefix.endsWith(end)).length;
      const items = await ask('width');
      assert.ok(items && items.length > 0, 'a suggestion beside the suggest widget');
      assert.equal(asked('    return width'), 1, 'the engine was asked with the selected item in the text');
      // VS Code shows it only if applying it = applying the selected item, then more text.
      const insert = String(items[0].insertText);
      assert.ok(items[0].range?.isEqual(range), `the item replaces the selected item's range (${JSON.stringify(items[0].range)})`);
      assert.ok(insert.startsWith('width') && insert.length > 'width'.length, `"${insert}" extends "width"`);
      // The prompt is the text as if "width" were inserted; the scheduler key is the document.
      const params = sent().find((p) => p.prompt.prefix.endsWith('    return width'))!;
      assert.equal(params.documentId, doc.uri.toString());
      assert.equal(params.prompt.prefix, before + 'width');
      assert.equal(params.prompt.suffix, '');
      // Cached under the text with the selected item in it, not under the document as it is.
      const key = { document: doc.uri.toString(), prefix: before + 'width', suffix: '' };
      assert.ok(provider.cache.get(key)?.candidates[0]?.startsWith(insert.slice(5)), 'cached with the selected item in the text');
      assert.equal(provider.cache.get({ ...key, prefix: text }), undefined, 'nothing cached for the text without the item');

      // The first line grows with its continuation, as for a typed request (the cursor stays there).
      const grown = await waitFor(
        'the suggestion beside the widget to grow',
        () => {
          const c = provider.cache.get(key)?.candidates[0];
          return c && c.length > insert.length - 5 ? c : undefined;
        },
        60_000,
      );
      assert.ok(grown.startsWith(insert.slice(5)), `"${grown}" continues "${insert.slice(5)}"`);

      // Asked again for the same item: from the cache. Another item: its own request and items.
      const again = await ask('width');
      assert.equal(asked('    return width'), 1, 'the same selected item is served from the cache');
      assert.equal(String(again?.[0]?.insertText), 'width' + grown);
      const other = await ask('while');
      assert.equal(asked('    return while'), 1, 'another selected item is another request');
      for (const item of other ?? []) assert.ok(String(item.insertText).startsWith('while'), String(item.insertText));
    } finally {
      recorded.restore();
      await config.update('completion.firstLineMs', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  test('a cancelled request stops and the next one works', async function () {
    this.timeout(120_000);
    const api = await readyEngine();
    const source = new vscode.CancellationTokenSource();
    const params = {
      documentId: 'cancel-test',
      prompt: { prefix: 'x'.repeat(3000) + '\nfunction f() {\n  ', suffix: '\n}\n', fileName: 'c.ts', languageId: 'typescript' },
      maxTokens: 512,
      timeBudgetMs: 20_000,
    };
    const started = Date.now();
    const pending = api.engine.complete(params, source.token);
    await sleep(30);
    source.cancel();
    await assert.rejects(pending, (err: { code?: number }) => err.code === -32800, 'a cancelled completion rejects with RequestCancelled');
    assert.ok(Date.now() - started < 20_000, 'cancellation ends the request early');
    const result = await api.engine.complete({ ...params, maxTokens: 4 });
    assert.ok(result.stats.promptTokens > 0);
  });

  test('with a memory budget (smallthinker.engine.memoryBudgetMB) the engine reloads, completes through its expert cache and counts it', async function () {
    this.timeout(180_000);
    const api = await readyEngine();
    const config = vscode.workspace.getConfiguration('smallthinker');
    await config.update('engine.memoryBudgetMB', 4096, vscode.ConfigurationTarget.Global);
    try {
      const model = await waitFor(
        'the engine reloaded within the budget',
        () => (api.engine.status.kind === 'ready' && api.engine.status.model.memoryBudget ? api.engine.status.model : undefined),
        120_000,
      );
      assert.equal(model.memoryBudget!.bytes, 4096 * 1024 * 1024);
      const result = await api.engine.complete({
        documentId: 'budget-test',
        prompt: { prefix: 'def add(a, b):\n    return ', suffix: '\n', fileName: 'b.py', languageId: 'python' },
        maxTokens: 8,
      });
      assert.ok(result.stats.promptTokens > 0);
      const stats = await api.engine.stats();
      assert.ok(stats.experts && stats.experts.uses > 0 && stats.experts.reads > 0, JSON.stringify(stats.experts));
      assert.equal(stats.experts.layers.length, model.n_layer);
    } finally {
      await config.update('engine.memoryBudgetMB', undefined, vscode.ConfigurationTarget.Global);
      await waitFor(
        'the engine reloaded without a budget',
        () => api.engine.status.kind === 'ready' && !api.engine.status.model.memoryBudget,
        120_000,
      );
    }
  });
});

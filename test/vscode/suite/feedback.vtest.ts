// What the extension tells the user while the real engine works (issue 17): the engine log has a
// line per request with its figures and the model load with its phases; a model load reports a
// percentage at every step; the chat panel says what happens before the first token; a refactor's
// progress names the prompt evaluation and the tokens generated, says before generating that the
// answer will be cut off when it cannot fit, and an accepted proposal leaves no selection behind.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { suite, suiteSetup, suiteTeardown, test } from 'mocha';
import * as vscode from 'vscode';

import type { HostToWebview } from '../../../src/common/chatMessages';
import { Commands } from '../../../src/common/ids';
import type { EngineStatus } from '../../../src/vscode/engineService';
import { closeAllEditors, openFile, readyEngine, waitFor, workspaceDir } from './helpers';

/** The LogOutputChannel's file: "<name>.log" in the extension's log folder (or near it). */
function logFile(logUri: vscode.Uri): string | undefined {
  const direct = path.join(logUri.fsPath, 'SmallThinker.log');
  if (fs.existsSync(direct)) return direct;
  const walk = (dir: string, depth: number): string | undefined => {
    if (depth < 0 || !fs.existsSync(dir)) return undefined;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isFile() && e.name === 'SmallThinker.log') return p;
      if (e.isDirectory()) {
        const hit = walk(p, depth - 1);
        if (hit) return hit;
      }
    }
    return undefined;
  };
  return walk(path.dirname(logUri.fsPath), 3);
}

/** About `chars` characters of JavaScript: functions that add up numbers. */
function longCode(chars: number): string {
  const lines: string[] = [];
  for (let i = 0; lines.join('\n').length < chars; i++)
    lines.push(`function total${i}(values) {\n  let sum = ${i};\n  for (const v of values) sum += v * ${i + 1};\n  return sum;\n}\n`);
  return lines.join('\n');
}

suite('feedback while the engine works (real engine)', () => {
  suiteSetup(async function () {
    this.timeout(180_000);
    await readyEngine();
  });
  suiteTeardown(closeAllEditors);

  test('a model load reports a percentage and a phase at every step, rising to ready', async function () {
    this.timeout(180_000);
    const api = await readyEngine();
    const seen: EngineStatus[] = [];
    const sub = api.engine.onDidChangeStatus((s) => seen.push(s));
    try {
      await api.engine.reload();
      await waitFor('the engine to be ready again', () => api.engine.status.kind === 'ready', 120_000);
    } finally {
      sub.dispose();
    }
    const loading = seen.filter((s): s is Extract<EngineStatus, { kind: 'loading' }> => s.kind === 'loading');
    assert.ok(loading.length >= 2, JSON.stringify(seen));
    for (const [i, s] of loading.entries()) {
      assert.equal(typeof s.percentage, 'number', `every loading status has a percentage: ${JSON.stringify(loading)}`);
      if (i > 0) assert.ok(s.percentage! >= loading[i - 1].percentage!, `never backwards: ${JSON.stringify(loading)}`);
    }
    assert.ok(
      loading.some((s) => /reading the model file/.test(s.message ?? '')),
      `the reading phase is named: ${JSON.stringify(loading)}`,
    );
    assert.equal(seen[seen.length - 1].kind, 'ready');
  });

  test('chat says what happens before the first token: reading the attachment, evaluating the prompt', async function () {
    this.timeout(120_000);
    const api = await readyEngine();
    await vscode.commands.executeCommand(Commands.focusChat);
    const view = await waitFor('the chat view', () => api.testing.chatView(), 30_000);
    const events: string[] = [];
    const sub = view.onDidPostMessage((m: HostToWebview) => {
      if (m.type === 'progress') events.push(`progress ${m.text}`);
      else if (m.type === 'delta' && !events.includes('delta')) events.push('delta');
    });
    try {
      const answer = await view.ask({
        prompt: 'What does this do?',
        newConversation: true,
        attachments: [
          {
            id: 'feedback-file',
            kind: 'file',
            uri: vscode.Uri.file(path.join(workspaceDir(), 'sum.js')).toString(),
            label: 'sum.js',
            languageId: 'javascript',
            text: 'function sum(a, b) {\n  return a + b;\n}\n',
          },
        ],
      });
      assert.ok(answer && !answer.error, `an answer (${answer?.error})`);
    } finally {
      sub.dispose();
    }
    const firstDelta = events.indexOf('delta');
    const before = firstDelta < 0 ? events : events.slice(0, firstDelta);
    assert.equal(before[0], 'progress Reading sum.js…', events.join(' | '));
    assert.ok(
      before.some((e) => /^progress Evaluating \d+ prompt tokens…$/.test(e)),
      `the prompt's size before the first token: ${events.join(' | ')}`,
    );
  });

  test('refactor: progress names the prompt and the tokens; a cut-off is said before generating; accept leaves no selection', async function () {
    this.timeout(300_000);
    const api = await readyEngine();
    const config = vscode.workspace.getConfiguration('smallthinker');
    // A small context: the prompt (which holds the code) leaves less room than the rewritten code needs.
    await config.update('engine.contextLength', 1024, vscode.ConfigurationTarget.Global);
    try {
      await waitFor(
        'the engine with a 1024-token context',
        () => api.engine.status.kind === 'ready' && api.engine.status.model.context === 1024,
        120_000,
      );
      const code = longCode(1800);
      const editor = await openFile('totals.js', code);
      editor.selection = new vscode.Selection(0, 0, editor.document.lineCount - 1, 0);
      await vscode.commands.executeCommand(Commands.refactor, { instruction: 'Rename sum to total.' });
      const progress = [...api.testing.refactorProgress()];
      const evaluating = progress.findIndex((m) => /^evaluating \d+ prompt tokens/.test(m));
      const forecast = progress.findIndex((m) => /will probably be cut off: the code needs about \d+ tokens/.test(m));
      const generated = progress.findIndex((m) => /^\d+ tokens generated of at most \d+/.test(m));
      assert.ok(evaluating >= 0, `evaluating the prompt is shown: ${progress.join(' | ')}`);
      assert.ok(generated > evaluating, `tokens generated are shown: ${progress.join(' | ')}`);
      assert.ok(forecast >= 0 && forecast <= evaluating, `the cut-off is said before generating: ${progress.join(' | ')}`);
      assert.match(progress[forecast], /smallthinker\.engine\.contextLength/);
      if (api.testing.pendingProposal()) await vscode.commands.executeCommand(Commands.rejectEdit);
    } finally {
      await config.update('engine.contextLength', undefined, vscode.ConfigurationTarget.Global);
      await waitFor(
        'the engine with its default context',
        () => api.engine.status.kind === 'ready' && api.engine.status.model.context === 4096,
        120_000,
      );
    }

    // Accepting: the selection the command ran on does not stay over the edit or the code below it.
    const text = 'function area(w, h) {\n  return w * h;\n}\n\nfunction perimeter(w, h) {\n  return 2 * (w + h);\n}\n';
    const editor = await openFile('geometry-feedback.js', text);
    editor.selection = new vscode.Selection(0, 0, 3, 0);
    await vscode.commands.executeCommand(Commands.document);
    await waitFor('a pending proposal', () => api.testing.pendingProposal(), 150_000);
    assert.equal(await vscode.commands.executeCommand<boolean>(Commands.acceptEdit), true);
    const after = vscode.window.activeTextEditor;
    assert.ok(after && after.document.uri.toString() === editor.document.uri.toString(), 'the file is the active editor again');
    assert.ok(after.selection.isEmpty, `no selection is left after accepting (${JSON.stringify(after.selection)})`);
  });

  test('the engine log has each request with its figures, cancellations, and the model load with its phases', async function () {
    this.timeout(120_000);
    const api = await readyEngine();
    const file = 'log.js';
    await api.engine.complete(
      {
        documentId: 'feedback-log',
        prompt: { prefix: 'function add(a, b) {\n  return ', suffix: '\n}\n', fileName: file, languageId: 'javascript' },
        maxTokens: 8,
      },
      undefined,
      { label: 'completion log.js:2' },
    );
    const cts = new vscode.CancellationTokenSource();
    const cancelled = api.engine.chat(
      { messages: [{ role: 'user', content: 'Write a long story.' }], maxTokens: 2000 },
      () => cts.cancel(),
      cts.token,
    );
    await assert.rejects(cancelled);
    await api.engine.chat({ messages: [{ role: 'user', content: 'Say hi.' }], maxTokens: 8 });
    const want: Array<[string, RegExp]> = [
      [
        'completion',
        /completion log\.js:2: prompt \d+ tokens \(\d+ reused, \d+ evaluated in [\d.]+ m?s\), first token [\d.]+ m?s, \d+ tokens at .*, total .*, stop (eog|length|stop|budget)/,
      ],
      ['chat', /\bchat: prompt \d+ tokens \(\d+ reused, \d+ evaluated in .*\), first token .*, \d+ tokens at .*, stop (eog|length|stop)/],
      ['cancellation', /\bchat: cancelled after [\d.]+ m?s/],
      ['load start', /loading .*\.gguf \(/],
      ['load end', /loaded .* in \d+ ms \(engine start \d+ ms; reading the model file/],
    ];
    const found = await waitFor(
      'the log lines',
      () => {
        const f = logFile(api.context.logUri);
        if (!f) return undefined;
        const log = fs.readFileSync(f, 'utf8');
        return want.every(([, re]) => re.test(log)) ? log : undefined;
      },
      15_000,
    ).catch((err: unknown) => {
      const f = logFile(api.context.logUri);
      const log = f ? fs.readFileSync(f, 'utf8') : `(no log file under ${api.context.logUri.fsPath})`;
      const missing = want.filter(([, re]) => !re.test(log)).map(([name]) => name);
      throw new Error(`${String(err)}; missing: ${missing.join(', ')}; the log:\n${log.slice(-4000)}`);
    });
    assert.ok(found);
    // Levels: the figures are info lines.
    assert.match(found, /\[info\] completion log\.js:2:/);
  });
});

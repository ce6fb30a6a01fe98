// Chat and refactor in a real VS Code with the real engine: the chat panel streams an answer; a
// refactor command produces a diff that is accepted into the file (and undone), or rejected; a
// chat answer can be stopped.
import * as assert from 'node:assert/strict';

import { suite, suiteSetup, suiteTeardown, test } from 'mocha';
import * as vscode from 'vscode';

import type { HostToWebview } from '../../../src/common/chatMessages';
import { Commands } from '../../../src/common/ids';
import { closeAllEditors, openFile, readyEngine, waitFor } from './helpers';

const CODE = 'function area(w, h) {\n  return w * h;\n}\n\nfunction perimeter(w, h) {\n  return 2 * (w + h);\n}\n';

suite('chat and refactor (real engine)', () => {
  suiteSetup(async function () {
    this.timeout(180_000);
    await readyEngine();
  });
  suiteTeardown(closeAllEditors);

  test('the chat panel streams an answer', async function () {
    this.timeout(120_000);
    const api = await readyEngine();
    await vscode.commands.executeCommand(Commands.focusChat);
    const view = await waitFor('the chat view', () => api.testing.chatView(), 30_000);
    const deltas: string[] = [];
    const sub = view.onDidPostMessage((m: HostToWebview) => {
      if (m.type === 'delta') deltas.push(m.text);
    });
    try {
      const answer = await view.ask({ prompt: 'What does area() compute?', attachments: [], newConversation: true });
      assert.ok(answer, 'an answer message');
      assert.equal(answer.error, undefined, `no error (${answer.error})`);
      assert.ok(answer.text.length > 0, 'the answer has text');
      assert.ok(deltas.length >= 2, `the answer streamed in pieces (${deltas.length})`);
      assert.equal(deltas.join(''), answer.text);
    } finally {
      sub.dispose();
    }
  });

  test('stop ends a chat answer early and keeps its text', async function () {
    this.timeout(120_000);
    const api = await readyEngine();
    const view = await waitFor('the chat view', () => api.testing.chatView(), 30_000);
    let deltas = 0;
    const sub = view.onDidPostMessage((m: HostToWebview) => {
      if (m.type === 'delta' && ++deltas === 3) view.stop();
    });
    try {
      const answer = await view.ask({ prompt: 'Write a long essay about sorting algorithms.', attachments: [], newConversation: true });
      assert.ok(answer);
      assert.equal(answer.stopReason, 'stopped');
      assert.ok(answer.text.length > 0);
    } finally {
      sub.dispose();
    }
  });

  test('refactor: a diff is proposed, accepting changes the file, undo restores it', async function () {
    this.timeout(180_000);
    const api = await readyEngine();
    const editor = await openFile('geometry.js', CODE);
    editor.selection = new vscode.Selection(0, 0, 2, 1);
    await vscode.commands.executeCommand(Commands.refactor, { instruction: 'Use descriptive parameter names.' });
    const proposal = await waitFor('a pending proposal', () => api.testing.pendingProposal(), 150_000);
    assert.equal(editor.document.getText(), CODE, 'nothing changes before the user accepts');
    const accepted = await vscode.commands.executeCommand<boolean>(Commands.acceptEdit);
    assert.equal(accepted, true);
    const doc = editor.document;
    assert.equal(doc.getText(), proposal.proposedText, 'the file now holds the proposal');
    assert.notEqual(doc.getText(), CODE);
    assert.equal(api.testing.pendingProposal(), undefined);
    await vscode.window.showTextDocument(doc);
    await vscode.commands.executeCommand('undo');
    await waitFor('undo to restore the file', () => doc.getText() === CODE, 10_000);
  });

  test('refactor: rejecting leaves the file unchanged', async function () {
    this.timeout(180_000);
    const api = await readyEngine();
    const editor = await openFile('geometry2.js', CODE);
    editor.selection = new vscode.Selection(4, 0, 6, 1);
    await vscode.commands.executeCommand(Commands.document);
    await waitFor('a pending proposal', () => api.testing.pendingProposal(), 150_000);
    const rejected = await vscode.commands.executeCommand<boolean>(Commands.rejectEdit);
    assert.equal(rejected, true);
    assert.equal(api.testing.pendingProposal(), undefined);
    assert.equal(editor.document.getText(), CODE);
  });
});

// Chat and refactor in a real VS Code with the real engine: the chat panel streams an answer; a
// refactor command produces a diff that is accepted into the file (and undone), or rejected; the
// diff shows the proposal while the model writes it, and cancelling then leaves the file as it was;
// a chat answer can be stopped.
import * as assert from 'node:assert/strict';

import { suite, suiteSetup, suiteTeardown, test } from 'mocha';
import * as vscode from 'vscode';

import type { HostToWebview } from '../../../src/common/chatMessages';
import { Commands } from '../../../src/common/ids';
import { closeAllEditors, openFile, readyEngine, waitFor } from './helpers';

/** The scheme of a proposal's diff (src/vscode/features/refactor/proposals.ts). */
const PROPOSAL_SCHEME = 'smallthinker-proposal';

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

  test('refactor: the proposal is written into its diff while the model generates, and the same diff becomes the proposal', async function () {
    this.timeout(180_000);
    const api = await readyEngine();
    const editor = await openFile('preview.js', CODE);
    editor.selection = new vscode.Selection(0, 0, 6, 1);
    // The right side of the diff as VS Code sees it, and whether the proposal had ended then.
    const seen: Array<{ uri: string; length: number; ended: boolean }> = [];
    const sub = vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document.uri.scheme !== PROPOSAL_SCHEME || e.contentChanges.length === 0) return;
      seen.push({
        uri: e.document.uri.toString(),
        length: e.document.getText().length,
        ended: api.testing.pendingProposal() !== undefined,
      });
    });
    try {
      await vscode.commands.executeCommand(Commands.refactor, { instruction: 'Rewrite both functions as arrow functions with comments.' });
    } finally {
      sub.dispose();
    }
    const proposal = await waitFor('a pending proposal', () => api.testing.pendingProposal(), 10_000);
    const written = seen.filter((s) => !s.ended);
    const lengths = [...new Set(written.map((s) => s.length))];
    assert.ok(lengths.length >= 2, `the preview changed at least twice while the model wrote (${JSON.stringify(seen)})`);
    assert.ok(Math.max(...lengths) > lengths[0], `the preview grew: ${lengths.join(', ')}`);
    assert.deepEqual([...new Set(seen.map((s) => s.uri))], [proposal.proposalUri.toString()], 'one diff, from the preview to the proposal');
    const diffs = vscode.window.tabGroups.all
      .flatMap((g) => g.tabs)
      .filter((t) => t.input instanceof vscode.TabInputTextDiff && t.input.modified.scheme === PROPOSAL_SCHEME);
    assert.equal(diffs.length, 1, 'one diff tab');
    assert.equal(editor.document.getText(), CODE, 'nothing changes before the user accepts');
    assert.equal(await vscode.commands.executeCommand<boolean>(Commands.rejectEdit), true);
    assert.equal(editor.document.getText(), CODE);
  });

  test('refactor: Cancel while the proposal is written stops the model and closes the preview; the file is unchanged', async function () {
    this.timeout(240_000);
    const api = await readyEngine();
    const editor = await openFile('cancel.js', CODE);
    const proposalTabs = () =>
      vscode.window.tabGroups.all
        .flatMap((g) => g.tabs)
        .filter((t) => t.input instanceof vscode.TabInputTextDiff && t.input.modified.scheme === PROPOSAL_SCHEME);
    // Cancel: the progress notification's button; Reject: Esc or ✕ in the preview's diff.
    for (const how of ['Cancel', 'Reject'] as const) {
      await vscode.window.showTextDocument(editor.document);
      editor.selection = new vscode.Selection(0, 0, 6, 1);
      const running = Promise.resolve(
        vscode.commands.executeCommand<boolean>(Commands.refactor, {
          instruction: 'Rewrite both functions as arrow functions with comments.',
        }),
      );
      const preview = await waitFor(
        'the preview to show the first generated text',
        () => {
          const p = api.testing.refactorPreview();
          return p && p.opened && p.updates >= 1 ? p : undefined;
        },
        150_000,
        20,
      );
      assert.equal(api.testing.pendingProposal(), undefined, 'still being written');
      const cancelledAt = Date.now();
      if (how === 'Cancel') assert.equal(api.testing.cancelRefactor(), true);
      else assert.equal(await vscode.commands.executeCommand<boolean>(Commands.rejectEdit), true);
      assert.equal(await running, false, `${how}: the command ends without a proposal`);
      assert.ok(Date.now() - cancelledAt < 10_000, `${how}: the model stopped (${Date.now() - cancelledAt} ms)`);
      assert.equal(api.testing.refactorPreview(), undefined);
      assert.equal(api.testing.pendingProposal(), undefined);
      await waitFor(`${how}: the preview's diff to close`, () => proposalTabs().length === 0, 10_000);
      assert.ok(
        !vscode.workspace.textDocuments.some((d) => d.uri.toString() === preview.proposalUri.toString() && d.getText() !== ''),
        'the preview text is gone',
      );
      assert.equal(editor.document.getText(), CODE, `${how}: the file is unchanged`);
      assert.equal(editor.document.isDirty, false);
    }
  });
});

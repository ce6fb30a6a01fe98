// The first run and a missing model (issue 17) inside a real VS Code: the walkthrough is contributed
// and VS Code knows it, its buttons' commands exist; the first run opens it once (remembered in the
// global state); a configured model file that is not there is named in the message, with Choose GGUF
// File…, Download… and Open Walkthrough.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { suite, suiteTeardown, test } from 'mocha';
import * as vscode from 'vscode';

import { Commands, EXTENSION_ID, WALKTHROUGH } from '../../../src/common/ids';
import { closeAllEditors, extensionApi, readyEngine, waitFor, workspaceDir } from './helpers';

/** A global state in memory (the first run's decision is tested on it, not on the real one). */
class MemoryState implements vscode.Memento {
  readonly values = new Map<string, unknown>();
  keys(): readonly string[] {
    return [...this.values.keys()];
  }
  get<T>(key: string, defaultValue?: T): T | undefined {
    return this.values.has(key) ? (this.values.get(key) as T) : defaultValue;
  }
  update(key: string, value: unknown): Thenable<void> {
    this.values.set(key, value);
    return Promise.resolve();
  }
}

interface WalkthroughStep {
  id: string;
  description: string;
  media: { image?: string };
  completionEvents?: string[];
}

suite('first run and a missing model', () => {
  suiteTeardown(closeAllEditors);

  test('the walkthrough is contributed, its buttons run registered commands, and it opens', async () => {
    await extensionApi();
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const walkthroughs = ext.packageJSON.contributes.walkthroughs as Array<{ id: string; title: string; steps: WalkthroughStep[] }>;
    const walkthrough = walkthroughs.find((w) => w.id === WALKTHROUGH.id);
    assert.ok(walkthrough, 'contributes.walkthroughs has getStarted');
    assert.equal(walkthrough.title, 'Get started with SmallThinker');
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const step of walkthrough.steps) {
      const commands = [...step.description.matchAll(/\]\(command:([\w.]+)\)/g)].map((m) => m[1]);
      assert.ok(commands.length > 0, `${step.id}: a command button`);
      for (const c of commands) assert.ok(registered.has(c), `${step.id}: ${c} is registered`);
      assert.ok(step.completionEvents?.length, `${step.id}: a completion event`);
      assert.ok(fs.existsSync(path.join(ext.extensionPath, step.media.image ?? '')), `${step.id}: its image`);
    }
    // VS Code resolves the id: the walkthrough opens in an editor.
    await closeAllEditors();
    await vscode.commands.executeCommand(Commands.openWalkthrough);
    const tab = await waitFor(
      'the walkthrough editor',
      () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => /Walkthrough|Welcome|SmallThinker/i.test(t.label)),
      15_000,
    );
    assert.ok(tab.isActive, `the walkthrough tab "${tab.label}" is active`);
    await closeAllEditors();
  });

  test('the first run without a model opens the walkthrough once (global state)', async () => {
    const api = await extensionApi();
    const state = new MemoryState();
    let opened = 0;
    const open = (): Promise<void> => {
      opened++;
      return Promise.resolve();
    };
    assert.equal(await api.testing.firstRunWalkthrough(state, true, open), false, 'not with a model configured');
    assert.equal(opened, 0);
    assert.equal(await api.testing.firstRunWalkthrough(state, false, open), true, 'the first run without a model');
    assert.equal(opened, 1);
    assert.deepEqual(state.keys(), ['smallthinker.walkthroughOpened']);
    assert.equal(await api.testing.firstRunWalkthrough(state, false, open), false, 'the next activation');
    assert.equal(opened, 1, 'opened once');
  });

  test('a missing model file: the message names its path and offers Choose GGUF File…, Download… and Open Walkthrough', async function () {
    this.timeout(180_000);
    const api = await extensionApi();
    const missing = path.join(workspaceDir(), 'models', 'not-there.gguf');
    const config = vscode.workspace.getConfiguration('smallthinker');
    await config.update('model.path', missing, vscode.ConfigurationTarget.Global);
    try {
      const notice = await waitFor(
        'the missing-model message',
        () => api.testing.modelNotices().find((n) => n.message.includes(missing)),
        30_000,
      );
      assert.match(notice.message, /was not found \(setting smallthinker\.model\.path\)/);
      assert.deepEqual(notice.buttons, ['Choose GGUF File…', 'Download…', 'Open Walkthrough']);
      assert.equal(api.engine.status.kind, 'noModel');
    } finally {
      await readyEngine(); // the test model again
    }
  });
});

// Shared helpers of the extension-host suites: the extension's API, the model setting, waiting,
// and files in the test workspace.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as vscode from 'vscode';

import type { ExtensionApi } from '../../../src/extension';

export const EXTENSION_ID = 'smallthinker-code.smallthinker-code';

/** The GGUF the suites load (the runner generates it and passes its path). */
export const TEST_MODEL_ENV = 'SMALLTHINKER_TEST_MODEL';

export async function extensionApi(): Promise<ExtensionApi> {
  const ext = vscode.extensions.getExtension<ExtensionApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not installed`);
  return ext.activate();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then fails with `what`). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000, intervalMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(intervalMs);
  }
}

/** Sets smallthinker.model.path to the test model and waits for the engine to be ready. */
export async function readyEngine(): Promise<ExtensionApi> {
  const api = await extensionApi();
  const model = process.env[TEST_MODEL_ENV];
  assert.ok(model && fs.existsSync(model), `${TEST_MODEL_ENV} must name an existing GGUF file (got ${model})`);
  const config = vscode.workspace.getConfiguration('smallthinker');
  if (config.get('model.path') !== model) await config.update('model.path', model, vscode.ConfigurationTarget.Global);
  await waitFor(
    'the engine to be ready',
    () =>
      api.engine.status.kind === 'ready' ||
      (api.engine.status.kind === 'error' && !api.engine.status.restarting ? Promise.reject(new Error(api.engine.status.message)) : false),
    120_000,
  );
  return api;
}

export function workspaceDir(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the tests need a workspace folder');
  return folder.uri.fsPath;
}

type CompleteFn = ExtensionApi['engine']['complete'];

/** One completion request the extension sent to the engine. */
export interface SentCompletion {
  params: Parameters<CompleteFn>[0];
  token: Parameters<CompleteFn>[1];
  options: Parameters<CompleteFn>[2];
}

/**
 * Records the completion requests the extension sends to the engine (they still run) until
 * `restore` is called; `sent` lists them in order.
 */
export function recordCompletions(api: ExtensionApi): { sent: SentCompletion[]; restore(): void } {
  const engine = api.engine;
  const sent: SentCompletion[] = [];
  const complete = engine.complete;
  engine.complete = function (this: typeof engine, params, token, options) {
    sent.push({ params, token, options });
    return complete.call(this, params, token, options);
  };
  return { sent, restore: () => (engine.complete = complete) };
}

/**
 * Moves the cursor to `position` and waits until the extension host has delivered the selection
 * change (the extension's own listener, registered first, has run). Set by the API the change
 * arrives asynchronously with the kind Command, which the extension takes for a move by hand: one
 * delivered late cancels work a test started after setting the cursor.
 */
export async function placeCursor(editor: vscode.TextEditor, position: vscode.Position): Promise<void> {
  const selection = editor.selection;
  if (selection.isEmpty && selection.active.isEqual(position)) return;
  let listener: vscode.Disposable | undefined;
  const delivered = new Promise<void>((resolve) => {
    listener = vscode.window.onDidChangeTextEditorSelection((e) => {
      if (e.textEditor.document === editor.document && e.selections[0]?.active.isEqual(position)) resolve();
    });
  });
  editor.selection = new vscode.Selection(position, position);
  await Promise.race([delivered, sleep(5000)]);
  listener?.dispose();
}

/** Writes a file into the workspace and opens it in an editor. */
export async function openFile(name: string, text: string): Promise<vscode.TextEditor> {
  const file = path.join(workspaceDir(), name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  return vscode.window.showTextDocument(doc, { preview: false });
}

export async function closeAllEditors(): Promise<void> {
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
}

// Sanity suite for the extension-host harness: the extension is installed, activates, returns
// its Services API, and registers every public command of src/common/ids.ts.
import * as assert from 'node:assert/strict';

import { suite, test } from 'mocha';
import * as vscode from 'vscode';

import { Commands } from '../../../src/common/ids';
import type { Services } from '../../../src/vscode/services';

export const EXTENSION_ID = 'smallthinker-code.smallthinker-code';

/** Commands that are not meant for users (not in the palette) but still registered. */
const INTERNAL = new Set<string>([Commands.completionAccepted]);

suite('activation', () => {
  test('the extension is present and activates with its Services API', async () => {
    const ext = vscode.extensions.getExtension<Services>(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is not installed in this VS Code`);
    const api = await ext.activate();
    assert.equal(ext.isActive, true);
    assert.ok(api && api.engine && api.log && api.chat, 'activate() should return the Services object');
    assert.equal(typeof api.engine.settled, 'function');
  });

  test('every public command is registered', async () => {
    await vscode.extensions.getExtension(EXTENSION_ID)?.activate();
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = Object.values(Commands).filter((id) => !INTERNAL.has(id) && !registered.has(id));
    assert.deepEqual(missing, [], `commands not registered: ${missing.join(', ')}`);
  });
});

// Download Model… inside a real VS Code: the quick pick lists the model catalogue with the default
// first, each item with its size and whether it fits this machine's memory (os.freemem/totalmem
// of the extension host), then Custom URL… and Choose a file…; the command is registered.
import * as assert from 'node:assert/strict';

import { suite, test } from 'mocha';
import * as vscode from 'vscode';

import { Commands } from '../../../src/common/ids';
import { MODEL_CATALOG } from '../../../src/common/modelCatalog';
import { extensionApi } from './helpers';

suite('model download quick pick', () => {
  test('the catalogue, the default first, sizes and memory fit, then a custom URL and a local file', async () => {
    const api = await extensionApi();
    assert.ok((await vscode.commands.getCommands(true)).includes(Commands.pickModelDownload));
    const items = api.testing.modelPickItems();
    const catalog = items.filter((i) => i.action === 'catalog');
    assert.equal(catalog.length, MODEL_CATALOG.length);
    assert.equal(items[0].label, 'SmallThinker 4B-A0.6B · Q4_0 (official)');
    assert.match(items[0].description ?? '', /^2\.30 GB · default/);
    for (const item of catalog) {
      assert.match(item.description ?? '', /^(about )?\d+\.\d+ GB/, item.label);
      assert.match(
        item.detail ?? '',
        /^\$\((pass|info|warning|error)\) (Fits|Runs from disk|Tight|Too big): needs about \d+\.\d GB of memory/,
        item.label,
      );
    }
    const rest = items.slice(catalog.length);
    assert.equal(rest[0].kind, vscode.QuickPickItemKind.Separator);
    assert.deepEqual(
      rest.slice(1).map((i) => i.action),
      ['custom', 'file'],
    );
    assert.match(rest[1].label, /Custom URL…$/);
    assert.match(rest[2].label, /Choose a file…$/);
  });
});

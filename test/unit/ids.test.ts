// Checks that the ids declared once in src/common/ids.ts and package.json's contributions agree in
// both directions: every command, view and setting in code is contributed, and every contribution
// is known to the code. Run: node test/run.mjs --node ids
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { CONFIG_SECTION, Commands, ContextKeys, DEFAULT_MODEL_URL, Settings, Views } from '../../src/common/ids';

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));

test('commands: code and package.json agree', () => {
  const contributed = (pkg.contributes.commands as { command: string }[]).map((c) => c.command).sort();
  assert.deepEqual(contributed, Object.values(Commands).sort());
});

test('menus and keybindings name only known commands and context keys', () => {
  const known = new Set<string>(Object.values(Commands));
  const menus = pkg.contributes.menus as Record<string, { command?: string; submenu?: string; when?: string }[]>;
  const submenus = new Set((pkg.contributes.submenus as { id: string }[]).map((s) => s.id));
  for (const [menu, entries] of Object.entries(menus)) {
    for (const e of entries) {
      if (e.command) assert.ok(known.has(e.command), `${menu}: ${e.command}`);
      if (e.submenu) assert.ok(submenus.has(e.submenu), `${menu}: submenu ${e.submenu}`);
      for (const key of (e.when ?? '').match(/smallthinker\.[A-Za-z.]+/g) ?? []) {
        assert.ok(Object.values(ContextKeys).includes(key as never) || Object.values(Views).includes(key as never), `${menu}: when ${key}`);
      }
    }
  }
  for (const k of pkg.contributes.keybindings as { command: string }[]) assert.ok(known.has(k.command), k.command);
});

test('views and view container', () => {
  assert.deepEqual(
    pkg.contributes.viewsContainers.activitybar.map((c: { id: string }) => c.id),
    [Views.container],
  );
  assert.deepEqual(
    pkg.contributes.views[Views.container].map((v: { id: string }) => v.id),
    [Views.chat],
  );
});

test('settings: code and package.json agree, defaults agree', () => {
  const props = pkg.contributes.configuration.properties as Record<string, { default: unknown }>;
  const contributed = Object.keys(props).sort();
  assert.deepEqual(
    contributed,
    Object.values(Settings)
      .map((k) => `${CONFIG_SECTION}.${k}`)
      .sort(),
  );
  assert.equal(props[`${CONFIG_SECTION}.${Settings.modelDownloadUrl}`].default, DEFAULT_MODEL_URL);
});

test('activation and entry point', () => {
  assert.ok(pkg.activationEvents.includes('onStartupFinished'));
  assert.equal(pkg.main, './dist/extension.js');
  assert.match(pkg.engines.vscode, /^\^1\.(10[4-9]|1[1-9]\d)/);
});

// Checks that the ids declared once in src/common/ids.ts and package.json's contributions agree in
// both directions: every command, view and setting in code is contributed, and every contribution
// is known to the code. Run: node test/run.mjs --node ids
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { CONFIG_SECTION, Commands, ContextKeys, DEFAULT_MODEL_URL, EXTENSION_ID, Settings, Views, WALKTHROUGH } from '../../src/common/ids';

const ROOT = path.join(__dirname, '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

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

test('the walkthrough: "Get started with SmallThinker", each step with a command button, a completion event and its media', () => {
  assert.equal(`${pkg.publisher}.${pkg.name}`, EXTENSION_ID);
  const walkthroughs = pkg.contributes.walkthroughs as Array<{
    id: string;
    title: string;
    steps: Array<{ id: string; description: string; media: { image?: string }; completionEvents?: string[] }>;
  }>;
  assert.deepEqual(
    walkthroughs.map((w) => w.id),
    [WALKTHROUGH.id],
  );
  assert.equal(WALKTHROUGH.ref, `${EXTENSION_ID}#${WALKTHROUGH.id}`);
  const [walkthrough] = walkthroughs;
  assert.equal(walkthrough.title, 'Get started with SmallThinker');
  assert.deepEqual(
    walkthrough.steps.map((s) => s.id),
    ['model', 'completion', 'chat', 'refactor'],
  );
  const ours = new Set<string>(Object.values(Commands));
  const buttons = (s: { description: string }) => [...s.description.matchAll(/\]\(command:([\w.]+)\)/g)].map((m) => m[1]);
  assert.deepEqual(buttons(walkthrough.steps[0]), [Commands.pickModelDownload, Commands.chooseModel]);
  assert.deepEqual(buttons(walkthrough.steps[2]), [Commands.focusChat]);
  assert.deepEqual(buttons(walkthrough.steps[3]), [Commands.document]);
  for (const step of walkthrough.steps) {
    const commands = buttons(step);
    assert.ok(commands.length > 0, `${step.id}: a command button`);
    for (const c of commands) assert.ok(ours.has(c) || c === 'workbench.action.quickOpen', `${step.id}: ${c}`);
    assert.ok(step.media.image && fs.existsSync(path.join(ROOT, step.media.image)), `${step.id}: ${step.media.image}`);
    assert.ok(step.completionEvents && step.completionEvents.length > 0, `${step.id}: a completion event`);
    for (const event of step.completionEvents) {
      const [kind, what] = [event.slice(0, event.indexOf(':')), event.slice(event.indexOf(':') + 1)];
      if (kind === 'onCommand') assert.ok(ours.has(what), `${step.id}: ${event}`);
      else if (kind === 'onView') assert.ok(Object.values(Views).includes(what as never), `${step.id}: ${event}`);
      else if (kind === 'onContext') assert.ok(Object.values(ContextKeys).includes(what as never), `${step.id}: ${event}`);
      else if (kind === 'onSettingChanged') assert.ok(what in pkg.contributes.configuration.properties, `${step.id}: ${event}`);
      else assert.fail(`${step.id}: unexpected completion event ${event}`);
    }
  }
});

// UI test of the packaged extension: builds the .vsix (scripts/package.mjs), installs it into a
// clean code-server profile offline with --install-extension, and checks that it activates and
// that the REAL engine (child process + native addon from inside the installed extension) loads
// a tiny generated GGUF model: the status bar reaches "ready". Screenshot "vsix-installed".
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { codeServerCli, createProfile } from '../harness/codeServer.mjs';
import { EXTENSION_ID, OUT_DIR, ROOT } from '../harness/ui.mjs';

const require = createRequire(import.meta.url);
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const VSIX = path.join(ROOT, 'dist', `${pkg.name}-${pkg.version}.vsix`);

/** Packages the extension (esbuild --minify, prebuild if stale, vsce): a few seconds when cached. */
function buildVsix(ui) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'package.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run package failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  ui.log(`packaged ${path.relative(ROOT, VSIX)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

export const tests = [
  {
    name: 'the packaged .vsix installs offline and its real engine loads a model',
    timeoutMs: 300_000,
    async run(ui) {
      buildVsix(ui);
      assert.ok(fs.existsSync(VSIX), `${VSIX} was not written`);

      // Installing alone, in a profile of its own, proves --install-extension works offline.
      const probe = createProfile();
      try {
        codeServerCli(probe, ['--install-extension', VSIX, '--force']);
        const listed = codeServerCli(probe, ['--list-extensions', '--show-versions']);
        assert.match(listed, new RegExp(`${EXTENSION_ID.replace('.', '\\.')}@${pkg.version.replace(/\./g, '\\.')}`));
        const installed = path.join(probe.extensionsDir, `${EXTENSION_ID}-${pkg.version}`);
        assert.ok(fs.existsSync(path.join(installed, 'prebuilds', 'linux-x64')), 'the installed extension has no prebuilds/linux-x64');
        assert.ok(!fs.existsSync(path.join(installed, 'build')), 'the installed extension must not carry build/');
      } finally {
        fs.rmSync(probe.root, { recursive: true, force: true });
      }

      const { ensureModel, TINY } = require(path.join(OUT_DIR, 'test', 'support', 'fixtures.js'));
      const model = await ensureModel(TINY);
      const wb = await ui.open({
        extension: { vsix: VSIX },
        fakeEngine: false,
        settings: { 'smallthinker.model.path': model, 'smallthinker.engine.threads': 1 },
        // The engine must come from the installed extension, not from this checkout.
        env: { MOE_ENGINE_ADDON: undefined, SMALLTHINKER_ENGINE_HOST: undefined },
      });
      await wb.openFile('src/math.ts');
      const item = await wb.waitForStatusBarItem(/SmallThinker/i, { timeoutMs: 60_000 });
      ui.log(`status bar: "${item.text}" (${item.label})`);
      const ready = await wb.waitForStatusBarItem(/ready/i, { timeoutMs: 60_000 }).catch((err) => {
        throw new Error(`${err.message}\n(the engine did not get ready: see the SmallThinker output channel)`);
      });
      assert.ok(ready.id.startsWith(EXTENSION_ID), `the ready item ${ready.id} is not the extension's`);
      assert.doesNotMatch(ready.label, /error|failed/i);
      ui.log(`ready: "${ready.text}" (${ready.label})`);
      await wb.screenshot('vsix-installed');
    },
  },
];

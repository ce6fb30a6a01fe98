#!/usr/bin/env node
// Runs the Playwright UI tests (test/ui/*.ui.mjs) one at a time against a real VS Code.
// A UI test file exports `tests`: [{ name, timeoutMs?, run(ui) }]. `ui` has:
//   open(options)  -> Workbench (test/harness/ui.mjs openWorkbench; closed after the test)
//   log(line), screenshot dir helpers through the Workbench, and `root` (the repository).
// A failing test leaves test-results/screenshots/FAILED-<file>-<n>.png.
// Usage: node test/harness/runUiTests.mjs [substring ...]   (filters files and test names)
// The last line printed is "ui-tests: N passed, M failed".
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { closeAllBrowsers } from './browser.mjs';
import { stopServersOnSignals } from './codeServer.mjs';
import { ROOT, openWorkbench } from './ui.mjs';

export const UI_DIR = path.join(ROOT, 'test', 'ui');

export function findUiTests() {
  if (!fs.existsSync(UI_DIR)) return [];
  return fs
    .readdirSync(UI_DIR)
    .filter((f) => f.endsWith('.ui.mjs'))
    .sort()
    .map((f) => path.join(UI_DIR, f));
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Runs the UI tests whose file name or test name contains one of `filters` (all when empty).
 * Resolves to { passed, failed, ms }.
 */
export async function runUiTests({ filters = [], print = (l) => console.log(l), files = findUiTests() } = {}) {
  const started = Date.now();
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    const base = path.basename(file, '.ui.mjs');
    let mod;
    try {
      mod = await import(pathToFileURL(file).href);
    } catch (err) {
      print(`✖ ${base}: cannot load: ${err.stack ?? err}`);
      failed++;
      continue;
    }
    const tests = (mod.tests ?? []).filter(
      (t) => filters.length === 0 || filters.some((s) => base.includes(s) || t.name.includes(s) || path.relative(ROOT, file).includes(s)),
    );
    tests.forEach((t, i) => (t.index = i + 1));
    for (const t of tests) {
      const opened = [];
      const ui = {
        root: ROOT,
        log: (line) => print(`    ${line}`),
        async open(options) {
          const wb = await openWorkbench(options);
          opened.push(wb);
          return wb;
        },
      };
      const t0 = Date.now();
      try {
        await withTimeout(
          Promise.resolve().then(() => t.run(ui)),
          t.timeoutMs ?? 180_000,
          `UI test "${t.name}"`,
        );
        passed++;
        print(`✔ ${base}: ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (err) {
        failed++;
        print(`✖ ${base}: ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${indent(err.stack ?? String(err))}`);
        const wb = opened[opened.length - 1];
        if (wb) {
          const shot = await wb.screenshot(`FAILED-${base}-${t.index}`).catch(() => undefined);
          if (shot) print(`    screenshot: ${path.relative(ROOT, shot)}`);
          const out = wb.server.output().split('\n').slice(-30).join('\n');
          print(`    code-server output (last lines):\n${indent(out, 6)}`);
        }
      } finally {
        for (const wb of opened.reverse()) await wb.close().catch(() => {});
      }
    }
  }
  return { passed, failed, ms: Date.now() - started };
}

function indent(text, n = 4) {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href || fileURLToPath(import.meta.url) === process.argv[1]) {
  stopServersOnSignals(closeAllBrowsers);
  const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const r = await runUiTests({ filters }).catch((err) => {
    console.log(`ui tests: ${err.stack ?? err}`);
    return { passed: 0, failed: 1, ms: 0 };
  });
  console.log(`ui tests: ${(r.ms / 1000).toFixed(1)} s`);
  console.log(`ui-tests: ${r.passed} passed, ${r.failed} failed`);
  process.exitCode = r.failed > 0 ? 1 : 0;
}

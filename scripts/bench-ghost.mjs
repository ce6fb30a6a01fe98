#!/usr/bin/env node
// `npm run bench:ghost`: keystroke to visible ghost text, measured through the UI of a real VS Code
// (code-server + Chromium, test/harness) with the real engine and a 4B-shape model, in a file of
// about 400 lines, at new positions: a new line (End, Enter), mid-line (a space typed inside a
// line) and after a cursor jump (a character typed at the end of a line far from the last one).
// Between positions the "user" pauses as people do after moving the cursor (--pause-ms, default
// 1000 ms). Prints min / median / p95 / max and writes bench-results/ghost-<date>.json.
// A benchmark, not a test: it asserts nothing about the times.
//
// Usage: npm run bench:ghost -- [--model FILE] [--positions 20] [--pause-ms 1000] [--threads 2] [--type q4_0]
//        [--set smallthinker.completion.debounceMs=0 ...] (settings to try; values are JSON or strings)
//        (default model: the 4B shapes, llama-quantize Q4_0 of the generated Q8_0 file, as `npm run bench`)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { stopServersOnSignals } from '../test/harness/codeServer.mjs';
import { harnessInstalled, installHarness } from '../test/harness/install.mjs';
import { OUT_DIR, openWorkbench } from '../test/harness/ui.mjs';
import { makeTempDir, removeTempDir } from '../test/harness/tempDirs.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const USAGE =
  'usage: npm run bench:ghost -- [--model FILE] [--positions N] [--pause-ms MS] [--threads N] [--type q4_0|q8_0|...] [--set KEY=VALUE ...]';

function parseArgs(argv) {
  const o = { positions: 20, pauseMs: 1000, threads: 2, type: 'q4_0', model: undefined, settings: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value\n${USAGE}`);
      return argv[++i];
    };
    if (a === '--model') o.model = path.resolve(value());
    else if (a === '--positions') o.positions = Number(value());
    else if (a === '--pause-ms') o.pauseMs = Number(value());
    else if (a === '--threads') o.threads = Number(value());
    else if (a === '--type') o.type = value().toLowerCase();
    else if (a === '--set') {
      const kv = value();
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`--set wants KEY=VALUE, got ${kv}\n${USAGE}`);
      const raw = kv.slice(eq + 1);
      let parsed;
      try {
        parsed = JSON.parse(raw);
      } catch {
        parsed = raw;
      }
      o.settings[kv.slice(0, eq)] = parsed;
    } else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (!Number.isInteger(o.positions) || o.positions < 1) throw new Error('--positions wants a positive integer');
  return o;
}

/** The 4B-shape model `npm run bench` uses by default (generated once, cached). */
async function defaultModel(type) {
  const fixtures = require(path.join(OUT_DIR, 'test', 'support', 'fixtures.js'));
  const { quantizeWithLlama } = require(path.join(OUT_DIR, 'test', 'support', 'llamaQuantize.js'));
  const source = await fixtures.ensureModel({ ...fixtures.SMALLTHINKER_4B, types: { default: 'Q8_0' } });
  return type === 'q8_0' ? source : quantizeWithLlama(source, type.toUpperCase(), { requantize: true });
}

/**
 * A workspace with one real file of 400 lines that does not change with this repository: the
 * first 400 lines of vscode-jsonrpc's connection.js (a pinned dependency; npm run bench:edits uses it too).
 */
function makeWorkspace() {
  const dir = makeTempDir('ghost-bench-');
  const text = fs.readFileSync(path.join(ROOT, 'node_modules', 'vscode-jsonrpc', 'lib', 'common', 'connection.js'), 'utf8');
  const lines = text.split('\n').slice(0, 400);
  fs.writeFileSync(path.join(dir, 'connection.js'), lines.join('\n') + '\n');
  return { dir, lines };
}

/** Deterministic positions: [line (1-based), kind] spread over the file, code lines only. */
function positions(lines, n) {
  const code = [];
  for (let i = 20; i < lines.length - 5; i++) {
    const t = lines[i].trim();
    if (t.length > 8 && !t.startsWith('//') && !t.startsWith('*') && !t.startsWith('/*')) code.push(i + 1);
  }
  const kinds = ['newline', 'midline', 'jump'];
  const out = [];
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < n; i++) out.push({ line: code[next() % code.length], kind: kinds[i % kinds.length] });
  return out;
}

function layoutCacheDir() {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'smallthinker-code', 'layouts');
}

/** Builds the model's layout file into the cache when it is not there yet (a load does it). */
async function ensureLayout(model) {
  const { loadModel } = require(path.join(OUT_DIR, 'src', 'engine', 'native.js'));
  const t0 = Date.now();
  const m = await loadModel(model, { layoutDir: layoutCacheDir() });
  const built = m.info().layout?.built;
  m.dispose();
  if (built) console.log(`laid out ${path.basename(model)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

/** Hard-links the layout files of ~/.cache/smallthinker-code/layouts (bench and test runs) into `dir`. */
function linkLayouts(dir) {
  const from = layoutCacheDir();
  if (!fs.existsSync(from)) return;
  fs.mkdirSync(dir, { recursive: true });
  for (const name of fs.readdirSync(from)) {
    if (!name.endsWith('.stlayout')) continue;
    try {
      fs.linkSync(path.join(from, name), path.join(dir, name));
    } catch {
      // another file system: the first load builds its own
    }
  }
}

/** Copies the extension's output channels (the engine log) to test-results/ghost-logs/ before the profile goes. */
function saveLogs(userDataDir) {
  if (!userDataDir) return;
  const dest = path.join(ROOT, 'test-results', 'ghost-logs');
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  const walk = (dir) => {
    for (const e of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/smallthinker/i.test(e.name) && e.name.endsWith('.log')) fs.copyFileSync(p, path.join(dest, e.name));
    }
  };
  walk(path.join(userDataDir, 'logs'));
  console.log(`engine logs: ${path.relative(ROOT, dest)}`);
}

/**
 * In the page: records when the next keydown happens and when ghost text with some text enters
 * the editor's DOM after it (a MutationObserver, so the time is when it is added, before the paint).
 */
function armGhostTimer(selector) {
  const timer = { key: 0, shown: 0 };
  window.__ghostTimer = timer;
  const check = () => {
    if (!timer.key || timer.shown) return;
    for (const el of document.querySelectorAll(selector)) {
      if (el.textContent && el.textContent.trim().length > 0) {
        timer.shown = performance.now();
        observer.disconnect();
        return;
      }
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, { childList: true, subtree: true, characterData: true });
  document.addEventListener(
    'keydown',
    () => {
      if (!timer.key) timer.key = performance.now();
    },
    { capture: true, once: true },
  );
}

const GHOST = '.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text';

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  stopServersOnSignals();
  if (!harnessInstalled()) await installHarness();
  const model = o.model ?? (await defaultModel(o.type));
  await ensureLayout(model);
  const ws = makeWorkspace();
  console.log(`model ${path.basename(model)}; ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores; threads ${o.threads}`);
  if (Object.keys(o.settings).length > 0) console.log(`settings tried: ${JSON.stringify(o.settings)}`);
  const wb = await openWorkbench({
    fakeEngine: false,
    workspace: ws.dir,
    // A user's second session: the model's layout file exists (hard links of the ones in the cache,
    // so that their cached pages are shared). Without one, the first load builds it.
    prepareProfile: (profile) =>
      linkLayouts(path.join(profile.userDataDir, 'User', 'globalStorage', 'smallthinker-code.smallthinker-code', 'layouts')),
    settings: {
      'smallthinker.model.path': model,
      'smallthinker.engine.threads': o.threads,
      'editor.inlineSuggest.enabled': true,
      ...o.settings,
    },
  });
  const results = [];
  try {
    await wb.openFile('connection.js');
    const page = wb.page;
    const ghost = page.locator(GHOST).first();
    // Ready when a first suggestion appears (the model loads, its layout file may be built).
    const t0 = Date.now();
    await wb.goToLine(60, 1);
    await wb.press('End');
    for (;;) {
      await wb.press('Enter');
      const shown = await ghost.waitFor({ state: 'visible', timeout: 60_000 }).then(
        () => true,
        () => false,
      );
      await wb.press('Escape');
      await wb.press('Control+Z');
      if (shown) break;
      if (Date.now() - t0 > 15 * 60_000) throw new Error('no ghost text within 15 minutes of opening the file');
    }
    console.log(`first suggestion ${((Date.now() - t0) / 1000).toFixed(1)} s after opening the file (model load included)`);
    await page.waitForTimeout(2000);

    for (const [i, p] of positions(ws.lines, o.positions).entries()) {
      const lineText = ws.lines[p.line - 1];
      const col = p.kind === 'midline' ? Math.max(lineText.search(/\S/) + 1, Math.floor(lineText.length / 2)) + 1 : lineText.length + 1;
      await wb.press('Escape');
      try {
        await wb.goToLine(p.line, col);
      } catch (err) {
        console.log(`${String(i + 1).padStart(2)}. line ${p.line}: cannot move there (${String(err).split('\n')[0]}); skipped`);
        continue;
      }
      await page.waitForTimeout(o.pauseMs);
      // (a space mid-line: a letter there opens the suggest widget, where ghost text is not offered)
      const key = p.kind === 'newline' ? 'Enter' : ' ';
      await page.evaluate(armGhostTimer, GHOST);
      const a = performance.now();
      await wb.press(key);
      const shown = await page
        .waitForFunction(() => window.__ghostTimer.shown > 0, null, { timeout: 20_000, polling: 'raf' })
        .then(
          () => true,
          () => false,
        );
      const t = await page.evaluate(() => window.__ghostTimer);
      // the page's own clock: from the keydown event to the ghost text in the DOM (Playwright's
      // polling would add up to 100 ms or more)
      const ms = shown && t.key > 0 ? t.shown - t.key : performance.now() - a;
      const r = { line: p.line, kind: p.kind, ms: shown ? ms : null, at: new Date(Date.now() - ms).toISOString() };
      results.push(r);
      console.log(
        `${String(i + 1).padStart(2)}. line ${p.line} ${p.kind.padEnd(7)} ${shown ? `${ms.toFixed(0)} ms` : 'no ghost text in 20 s'} (key at ${r.at.slice(11, 23)})`,
      );
      await wb.press('Escape');
      await wb.press('Control+Z');
    }
  } finally {
    saveLogs(wb.server?.profile?.userDataDir);
    await wb.close();
    removeTempDir(ws.dir);
  }
  const times = results.filter((r) => r.ms !== null).map((r) => r.ms);
  times.sort((a, b) => a - b);
  const f = (x) => `${x.toFixed(0)} ms`;
  console.log(
    `\nkeystroke to visible ghost text, ${times.length}/${results.length} positions: ` +
      `min ${f(times[0])}, median ${f(quantile(times, 0.5))}, p95 ${f(quantile(times, 0.95))}, max ${f(times[times.length - 1])}`,
  );
  for (const kind of ['newline', 'midline', 'jump']) {
    const k = results.filter((r) => r.kind === kind && r.ms !== null).map((r) => r.ms);
    k.sort((a, b) => a - b);
    if (k.length) console.log(`  ${kind.padEnd(7)} median ${f(quantile(k, 0.5))} (${k.length})`);
  }
  const outDir = path.join(ROOT, 'bench-results');
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `ghost-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        model: path.basename(model),
        cpu: os.cpus()[0]?.model,
        cores: os.cpus().length,
        threads: o.threads,
        pauseMs: o.pauseMs,
        settings: o.settings,
        results,
        summary: { n: times.length, min: times[0], median: quantile(times, 0.5), p95: quantile(times, 0.95), max: times[times.length - 1] },
      },
      null,
      2,
    ),
  );
  console.log(`results: ${path.relative(ROOT, out)}`);
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});

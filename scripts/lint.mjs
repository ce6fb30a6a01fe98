#!/usr/bin/env node
// Lint and format checks, the first stage of `npm test` (and `npm run lint`):
//   eslint      typescript-eslint's recommended rules and the layering of src/ (eslint.config.mjs)
//   prettier    TypeScript and JavaScript formatting (.prettierrc.json)
//   clang-format  C++ formatting of native/ and test/native/ (.clang-format)
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
];
const passed = results.filter(Boolean).length;
if (!fix && passed < results.length)
  console.log('Run `npm run format` to apply the formatters; eslint problems other than formatting need a hand.');
console.log(`lint: ${passed} passed, ${results.length - passed} failed`);
process.exitCode = passed === results.length ? 0 : 1;

#!/usr/bin/env node
// Builds the pure-C++ test programs under AddressSanitizer + UndefinedBehaviorSanitizer into
// build/test/: every test/native/*_test.cpp and *_driver.cpp is a program with its own main(),
// linked with every .cpp of native/{core,kernels,model,models,engine} (-O1 -g -std=c++17 -Wall -Wextra);
// any other test/native/*.cpp is a shared helper linked into each program. Objects are cached
// in build/test/obj and rebuilt when a source or an included header changes.
//
// To add a test: drop test/native/<name>_test.cpp with a main() that prints a last line
// "<name>: N passed, M failed" and exits non-zero on failure; test/run.mjs runs it.
//
// Usage: node test/native/build.mjs [name-substring ...]   (default: all programs)
// Include path: native (sources include "core/dtype.h", "model/model.h", ... from there).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OUT_DIR = path.join(ROOT, 'build', 'test');
const OBJ_DIR = path.join(OUT_DIR, 'obj');

const CXX = process.env.CXX || 'g++';
const SANITIZE = ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer'];
const CXXFLAGS = [
  '-std=c++17', '-O1', '-ffp-contract=off', '-g', '-Wall', '-Wextra', '-pthread', ...SANITIZE,
  '-Inative',
];
const LDFLAGS = ['-pthread', ...SANITIZE];

const rel = (p) => path.relative(ROOT, p);
const cppIn = (dir) =>
  fs.existsSync(path.join(ROOT, dir))
    ? fs.readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.cpp')).sort().map((f) => path.join(ROOT, dir, f))
    : [];

/** The programs and their kinds, without building. */
export function listPrograms() {
  return cppIn('test/native')
    .filter((f) => /_(test|driver)\.cpp$/.test(f))
    .map((src) => {
      const name = path.basename(src, '.cpp');
      return { name, src, kind: name.endsWith('_test') ? 'test' : 'driver', exe: path.join(OUT_DIR, name) };
    });
}

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

// An object is stale when it is missing or older than its source or any header in its .d file.
function stale(obj, src) {
  const t = mtime(obj);
  if (t < 0 || mtime(src) > t) return true;
  const dep = obj.replace(/\.o$/, '.d');
  if (!fs.existsSync(dep)) return true;
  const text = fs.readFileSync(dep, 'utf8').replace(/\\\n/g, ' ');
  const colon = text.indexOf(': ');
  const files = (colon >= 0 ? text.slice(colon + 2) : '').split(/\s+/).filter((f) => f && !f.endsWith(':'));
  return files.some((f) => {
    const m = mtime(path.resolve(ROOT, f));
    return m < 0 || m > t;
  });
}

function run(cmd, args, label) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (err) => resolve({ ok: false, output: `${label}: ${err.message}\n` }));
    child.on('close', (code) => resolve({ ok: code === 0, output }));
  });
}

// Runs jobs with at most `n` at a time; resolves with their results in order.
async function pool(jobs, n) {
  const results = new Array(jobs.length);
  let next = 0;
  async function worker() {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return results;
}

function objectFor(src) {
  return path.join(OBJ_DIR, rel(src).replace(/\.cpp$/, '.o'));
}

function compileJob(src, log) {
  const obj = objectFor(src);
  return async () => {
    if (!stale(obj, src)) return { ok: true, obj };
    fs.mkdirSync(path.dirname(obj), { recursive: true });
    log(`  CXX ${rel(src)}`);
    const r = await run(CXX, [...CXXFLAGS, '-MMD', '-MP', '-c', rel(src), '-o', rel(obj)], rel(src));
    if (r.output.trim()) log(r.output.trimEnd());
    if (!r.ok) fs.rmSync(obj, { force: true });
    return { ok: r.ok, obj, src };
  };
}

/**
 * Builds the selected programs (all when `filters` is empty). Returns
 * { ok, programs: [{name, kind, exe, built}] }; compiler output goes to `log`.
 */
export async function buildNativeTests({ filters = [], log = (s) => process.stderr.write(s + '\n'), jobs } = {}) {
  const programs = listPrograms().filter((p) => filters.length === 0 || filters.some((f) => p.name.includes(f)));
  if (programs.length === 0) return { ok: true, programs: [] };
  const libSrcs = ['core', 'kernels', 'model', 'models', 'engine'].flatMap((d) => cppIn(`native/${d}`));
  const helperSrcs = cppIn('test/native').filter((f) => !/_(test|driver)\.cpp$/.test(f));
  const n = jobs || Number(process.env.MOE_BUILD_JOBS) || os.cpus().length;

  const libResults = await pool([...libSrcs, ...helperSrcs].map((s) => compileJob(s, log)), n);
  const libOk = libResults.every((r) => r.ok);
  const libObjs = libResults.map((r) => r.obj);

  const progResults = await pool(programs.map((p) => compileJob(p.src, log)), n);
  let ok = libOk;
  const out = [];
  for (let i = 0; i < programs.length; i++) {
    const p = programs[i];
    let built = libOk && progResults[i].ok;
    if (built) {
      const objs = [progResults[i].obj, ...libObjs];
      const exeTime = mtime(p.exe);
      if (exeTime < 0 || objs.some((o) => mtime(o) > exeTime)) {
        log(`  LINK ${rel(p.exe)}`);
        const r = await run(CXX, [...objs.map(rel), ...LDFLAGS, '-o', rel(p.exe)], p.name);
        if (r.output.trim()) log(r.output.trimEnd());
        built = r.ok;
      }
    }
    if (!built) ok = false;
    out.push({ name: p.name, kind: p.kind, exe: p.exe, built });
  }
  return { ok, programs: out };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await buildNativeTests({ filters: process.argv.slice(2) });
  for (const p of result.programs) console.log(`${p.built ? 'built' : 'FAILED'} ${rel(p.exe)}`);
  process.exitCode = result.ok ? 0 : 1;
}

#!/usr/bin/env node
// Builds the pure-C++ test programs under AddressSanitizer + UndefinedBehaviorSanitizer into
// build/test/: every test/native/*_test.cpp and *_driver.cpp is a program with its own main(),
// linked with every .cpp of native/{core,kernels,model,models,engine} (-O1 -g -std=c++17 -Wall -Wextra);
// any other .cpp directly in test/native/ is a shared helper linked into each program. A test
// <name>_test also compiles and links every .cpp in the folder test/native/<name>/ if there is one
// (its own sources, linked into that program only: kernels_test.cpp + test/native/kernels/*.cpp).
// Objects are cached in build/test/obj (mirroring the source paths, e.g.
// build/test/obj/test/native/kernels/dots.o) and rebuilt when a source or an included header
// changes; a program is relinked when any of its objects is newer than it or its list of objects
// changed (build/test/obj/<program>.link).
//
// To add a test: drop test/native/<name>_test.cpp with a main() that prints a last line
// "<name>: N passed, M failed" and exits non-zero on failure; test/run.mjs runs it. A large test
// can split its checks into test/native/<name>/*.cpp.
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

/**
 * The programs and their kinds, without building. `srcs` are the program's own sources: its
 * main file and, for a test <name>_test, every .cpp in test/native/<name>/.
 */
export function listPrograms() {
  return cppIn('test/native')
    .filter((f) => /_(test|driver)\.cpp$/.test(f))
    .map((src) => {
      const name = path.basename(src, '.cpp');
      const kind = name.endsWith('_test') ? 'test' : 'driver';
      const own = kind === 'test' ? cppIn(`test/native/${name.slice(0, -'_test'.length)}`) : [];
      return { name, src, srcs: [src, ...own], kind, exe: path.join(OUT_DIR, name) };
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

  // Each program's own sources (its main file and test/native/<name>/*.cpp), in one pool.
  const progResults = await pool(programs.flatMap((p) => p.srcs.map((s) => compileJob(s, log))), n);
  let ok = libOk;
  const out = [];
  for (let i = 0, next = 0; i < programs.length; i++) {
    const p = programs[i];
    const own = progResults.slice(next, (next += p.srcs.length));
    let built = libOk && own.every((r) => r.ok);
    if (built) {
      const objs = [...own.map((r) => r.obj), ...libObjs];
      const exeTime = mtime(p.exe);
      // The object list of the last link: a source added or removed (e.g. in test/native/<name>/)
      // relinks even when no object is newer than the program.
      const linkList = path.join(OBJ_DIR, `${p.name}.link`);
      const list = objs.map(rel).join('\n') + '\n';
      const listChanged = !fs.existsSync(linkList) || fs.readFileSync(linkList, 'utf8') !== list;
      if (exeTime < 0 || listChanged || objs.some((o) => mtime(o) > exeTime)) {
        log(`  LINK ${rel(p.exe)}`);
        const r = await run(CXX, [...objs.map(rel), ...LDFLAGS, '-o', rel(p.exe)], p.name);
        if (r.output.trim()) log(r.output.trimEnd());
        built = r.ok;
        if (built) fs.writeFileSync(linkList, list);
        else fs.rmSync(linkList, { force: true });
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

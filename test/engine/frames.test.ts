// Hostile input on the engine's stdin (issue 12): the framing rules of src/engineHost/frameReader.ts
// in process, then a bounded, seeded fuzz stage against ONE real engine host process
// (dist/engineHost.js): every regression input of test/fuzz/frames.regressions.json and a few
// hundred generated malformed frame sequences (header edits, lengths off by N, truncation,
// inserted garbage, bodies that are not JSON or not UTF-8, writes split at random byte
// boundaries), each followed by a valid request that must be answered. A desynchronised stream
// would leave that request unanswered. MOE_FUZZ_SEED picks another seed, MOE_FUZZ_CASES another
// count; a failing case is printed in the regression file's format, to be added there.
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';

import type { Message } from 'vscode-jsonrpc';
import { StreamMessageReader } from 'vscode-jsonrpc/node';

import { EngineErrorCodes, PROTOCOL_VERSION } from '../../src/common/protocol';
import {
  FrameParser,
  FrameReader,
  MAX_CONTENT_LENGTH,
  MAX_HEADER_BYTES,
  indexOfMarker,
  type FrameError,
  type FrameEvent,
} from '../../src/engineHost/frameReader';
import { Rng } from '../support/rng';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const HOST = path.join(ROOT, 'dist', 'engineHost.js');
const REGRESSIONS = path.join(ROOT, 'test', 'fuzz', 'frames.regressions.json');

const DEFAULT_SEED = 12;
const DEFAULT_CASES = 300;
/** A probe must be answered within this (a cut-short frame before it costs the reader's 1 s timeout, maybe a few times). */
const PROBE_TIMEOUT_MS = 8000;
/** The generated cases stop here even if not all ran (the count run is reported). */
const FUZZ_BUDGET_MS = 60_000;

// ---------------------------------------------------------------- helpers

const frame = (body: string | Buffer, header?: string): Buffer => {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([Buffer.from(header ?? `Content-Length: ${bytes.length}\r\n\r\n`, 'latin1'), bytes]);
};
const request = (id: string | number, method = 'model/info', params?: unknown): string =>
  JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });

function messages(events: FrameEvent[]): unknown[] {
  return events.filter((e): e is { message: Message } => 'message' in e).map((e) => e.message);
}
function errors(events: FrameEvent[]): string[] {
  return events.filter((e): e is { error: FrameError } => 'error' in e).map((e) => e.error.message);
}
function ids(events: FrameEvent[]): unknown[] {
  return messages(events).map((m) => (m as { id?: unknown }).id);
}

// ---------------------------------------------------------------- regression file

type Piece =
  string | { hex: string } | { repeat: string; times: number } | { frames: { method: string; count: number; idPrefix: string } } | Piece[];

interface RegressionCase {
  name: string;
  source: string;
  writes: Piece[];
  answered?: string[];
  answeredPrefix?: { prefix: string; count: number };
}

function pieceBytes(piece: Piece): Buffer {
  if (typeof piece === 'string') return Buffer.from(piece, 'utf8');
  if (Array.isArray(piece)) return Buffer.concat(piece.map(pieceBytes));
  if ('hex' in piece) return Buffer.from(piece.hex, 'hex');
  if ('repeat' in piece) return Buffer.from(piece.repeat.repeat(piece.times), 'utf8');
  const { method, count, idPrefix } = piece.frames;
  return Buffer.concat(Array.from({ length: count }, (_, i) => frame(request(`${idPrefix}-${i}`, method))));
}

function loadRegressions(): RegressionCase[] {
  const doc = JSON.parse(fs.readFileSync(REGRESSIONS, 'utf8')) as { cases: RegressionCase[] };
  return doc.cases;
}

// ---------------------------------------------------------------- the rules, in process

describe('frame parser', () => {
  it('reads CRLF, LF-only and mixed header lines, any header-name case, extra headers, leading zeros', () => {
    const p = new FrameParser();
    const body = request(1);
    const events = p.push(
      Buffer.concat([
        frame(body),
        frame(body.replace('1', '2'), `Content-Length: ${body.length}\n\n`),
        frame(body.replace('1', '3'), `Content-Type: application/vscode-jsonrpc; charset=utf-8\ncontent-LENGTH:\t00${body.length} \r\n\n`),
        Buffer.from('\r\n\n'), // CR/LF between frames is skipped
        frame(body.replace('1', '4')),
      ]),
    );
    assert.deepEqual(errors(events), []);
    assert.deepEqual(ids(events), [1, 2, 3, 4]);
    assert.equal(p.buffered, 0);
  });

  it('delivers the same messages whatever the byte boundaries of the writes', () => {
    const input = Buffer.concat([
      frame(request(1)),
      frame(request(2), `Content-Length: ${request(2).length}\n\n`),
      frame('{"jsonrpc":"2.0","method":"n","params":{"t":"é ✓ 𝄞"}}'),
    ]);
    const expected = messages(new FrameParser().push(input));
    assert.equal(expected.length, 3);
    for (let cut = 1; cut < input.length; cut++) {
      for (const second of [cut + 1, cut + 7, input.length]) {
        const p = new FrameParser();
        const events = [...p.push(input.subarray(0, cut)), ...p.push(input.subarray(cut, second)), ...p.push(input.subarray(second))];
        assert.deepEqual(errors(events), [], `cut at ${cut}, ${second}`);
        assert.deepEqual(messages(events), expected, `cut at ${cut}, ${second}`);
      }
    }
  });

  it('reports each malformed frame once, with what is wrong, and resynchronises on the next frame', () => {
    const good = (id: number): Buffer => frame(request(id));
    const cases: [string, Buffer, RegExp][] = [
      ['no Content-Length', frame(request(0), 'Content-Type: x\r\n\r\n'), /no Content-Length header/],
      ['negative', frame(request(0), 'Content-Length: -5\r\n\r\n'), /Content-Length "-5" is not a non-negative decimal integer/],
      ['minus one', frame(request(0), 'Content-Length: -1\r\n\r\n'), /"-1" is not a non-negative/],
      ['letters', frame(request(0), 'Content-Length: abc\r\n\r\n'), /"abc" is not a non-negative/],
      ['empty value', frame(request(0), 'Content-Length:\r\n\r\n'), /"" is not a non-negative/],
      ['exponent', frame(request(0), 'Content-Length: 1e3\r\n\r\n'), /"1e3"/],
      [
        'too large',
        frame(request(0), 'Content-Length: 999999999999\r\n\r\n'),
        /Content-Length 999999999999 is over the limit of 67108864 bytes/,
      ],
      ['twice', frame(request(0), 'Content-Length: 5\r\nContent-Length: 5\r\n\r\n'), /more than one Content-Length/],
      ['no colon', frame(request(0), 'Content-Length 5\r\n\r\n'), /header line "Content-Length 5" is not "Name: value"/],
      ['space before colon', frame(request(0), 'Content-Length : 5\r\n\r\n'), /is not "Name: value"/],
      ['shorter than the body', frame(request(0), 'Content-Length: 10\r\n\r\n'), /10-byte body is not valid JSON/],
      ['zero', frame('', 'Content-Length: 0\r\n\r\n'), /0-byte body is not valid JSON/],
      ['not UTF-8', frame(Buffer.from('{"jsonrpc":"2.0","method":"x","params":{"t":"\xff"}}', 'latin1')), /body is not valid UTF-8/],
      ['binary garbage', Buffer.from('00ff13c3a9fe80417bd20a0d0a', 'hex'), /header line "\\x00\\xff.*" is not "Name: value"/],
    ];
    for (const [name, bad, pattern] of cases) {
      const p = new FrameParser();
      const events = p.push(Buffer.concat([good(1), bad, good(2)]));
      const errs = errors(events);
      assert.equal(errs.length, 1, `${name}: ${JSON.stringify(errs)}`);
      assert.match(errs[0], pattern, name);
      assert.deepEqual(ids(events), [1, 2], name);
      assert.equal(p.pending, false, name);
    }
  });

  it('finds frames a too-long Content-Length swallowed, at once when the bytes are there, else after expire()', () => {
    const swallowed = Buffer.concat([frame(request(2)), frame(request(3))]);
    // The swallowed frames fill the claimed length: the body is not JSON, and the search starts inside it.
    const p = new FrameParser();
    let events = p.push(
      Buffer.concat([frame(request(1), `Content-Length: ${request(1).length + swallowed.length - 5}\r\n\r\n`), swallowed]),
    );
    assert.equal(errors(events).length, 1);
    assert.deepEqual(ids(events), [2, 3]);
    // They do not: the frame waits, and expire() reports it cut short and finds them.
    const q = new FrameParser();
    events = q.push(Buffer.concat([frame(request(1), 'Content-Length: 4000\r\n\r\n'), swallowed]));
    assert.deepEqual(events, []);
    assert.equal(q.pending, true);
    events = q.expire(1000);
    assert.match(
      errors(events)[0],
      new RegExp(`the frame was cut short: ${request(1).length + swallowed.length} of its 4000 body bytes arrived, then nothing for 1 s`),
    );
    assert.deepEqual(ids(events), [2, 3]);
    assert.equal(q.pending, false);
    // A header cut short.
    const r = new FrameParser();
    assert.deepEqual(r.push(Buffer.from('Content-Len')), []);
    assert.match(errors(r.expire(1500))[0], /the frame's header was cut short \(Content-Len\), then nothing for 1\.5 s/);
    assert.deepEqual(ids(r.push(frame(request(4)))), [4]);
  });

  it('bounds the header block (8 KiB of lines, the empty line not counted) and the Content-Length (64 MiB)', () => {
    const body = request(1);
    const line = (n: number): string => `X-Pad: ${'a'.repeat(n - 9)}\r\n`; // n bytes with its CRLF
    const cl = `Content-Length: ${body.length}\r\n`;
    // Exactly at the limit: read.
    const atLimit = cl + line(MAX_HEADER_BYTES - cl.length);
    assert.equal(Buffer.byteLength(atLimit), MAX_HEADER_BYTES);
    let events = new FrameParser().push(frame(body, atLimit + '\r\n'));
    assert.deepEqual(errors(events), []);
    assert.deepEqual(ids(events), [1]);
    // One byte over: refused, even before the empty line arrives.
    const p = new FrameParser();
    events = p.push(Buffer.from(cl + line(MAX_HEADER_BYTES - cl.length + 1)));
    assert.match(errors(events)[0], /header block is longer than 8192 bytes/);
    // 100 KB of header lines with no empty line: one error, then the next frame is read.
    const q = new FrameParser();
    events = [...q.push(Buffer.from(line(72).repeat(1400))), ...q.push(frame(request(2)))];
    assert.equal(errors(events).length, 1);
    assert.deepEqual(ids(events), [2]);
    // Content-Length at the limit is accepted (and waits for its body); one more is refused at once.
    const r = new FrameParser();
    assert.deepEqual(r.push(Buffer.from(`Content-Length: ${MAX_CONTENT_LENGTH}\r\n\r\n{`)), []);
    assert.equal(r.pending, true);
    const s = new FrameParser();
    assert.match(errors(s.push(Buffer.from(`Content-Length: ${MAX_CONTENT_LENGTH + 1}\r\n\r\n{`)))[0], /over the limit/);
    assert.equal(s.pending, false);
  });

  it('reports a run of bad input once, and stays fast on a body full of Content-Length: markers', () => {
    const p = new FrameParser();
    // Two bad frames in a row, then a good one, then another bad one: two runs, two errors.
    let events = p.push(
      Buffer.concat([
        frame(request(0), 'Content-Length: x\r\n\r\n'),
        frame('{', 'Content-Length: 1\r\n\r\n'),
        frame(request(1)),
        Buffer.from('junk\r\n\r\n'),
        frame(request(2)),
      ]),
    );
    assert.equal(errors(events).length, 2, JSON.stringify(errors(events)));
    assert.deepEqual(ids(events), [1, 2]);
    // 8 MB of markers without a line end: each is a failed frame of the same run.
    const markers = Buffer.from('Content-Length:'.repeat((8 * 1024 * 1024) / 15));
    const input = Buffer.concat([frame(markers, `Content-Length: ${markers.length}\r\n\r\n`), frame(request(3))]);
    const q = new FrameParser();
    const t0 = Date.now();
    events = [];
    for (let i = 0; i < input.length; i += 65536) for (const e of q.push(input.subarray(i, i + 65536))) events.push(e);
    const ms = Date.now() - t0;
    assert.equal(errors(events).length, 1);
    assert.deepEqual(ids(events), [3]);
    assert.ok(ms < 20_000, `${ms} ms`);
  });

  it('holds no more than a partial marker while skipping garbage', () => {
    const p = new FrameParser();
    p.push(Buffer.from('garbage\r\n'));
    for (let i = 0; i < 100; i++) p.push(Buffer.alloc(65536, 0x41));
    assert.ok(p.buffered < 16, `${p.buffered} bytes held`);
    // The marker split across chunks is still found.
    const next = frame(request(5));
    assert.deepEqual([...ids(p.push(next.subarray(0, 7))), ...ids(p.push(next.subarray(7)))], [5]);
    assert.equal(indexOfMarker(Buffer.from('xxCONTENT-length:'), 0), 2);
    assert.equal(indexOfMarker(Buffer.from('Content\rLength:'), 0), -1);
  });

  it('FrameReader reports a frame cut short after its timeout and keeps reading', async () => {
    const input = new PassThrough();
    const reader = new FrameReader(input, { incompleteTimeoutMs: 50 });
    const got: unknown[] = [];
    const errs: string[] = [];
    reader.onError((e) => errs.push(e.message));
    reader.listen((m) => got.push((m as { id?: unknown }).id));
    input.write(frame(request(1), 'Content-Length: 500\r\n\r\n'));
    input.write(frame(request(2)));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(got, []);
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.deepEqual(got, [2]);
    assert.equal(errs.length, 1);
    assert.match(errs[0], /cut short/);
    let closed = false;
    reader.onClose(() => (closed = true));
    input.end();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, true);
    reader.dispose();
  });
});

// ---------------------------------------------------------------- a real engine process

/** The engine host as a child process, written raw bytes, its replies collected by id. */
class Host {
  readonly child: ChildProcessWithoutNullStreams;
  readonly replies = new Map<string, Message>();
  parseErrors = 0;
  stderrTail = '';
  stdoutErrors: string[] = [];
  private waiters = new Map<string, () => void>();

  constructor() {
    this.child = spawn(process.execPath, [HOST], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString()).slice(-8000)));
    this.child.stdin.on('error', () => {});
    const reader = new StreamMessageReader(this.child.stdout);
    reader.onError((e) => this.stdoutErrors.push(e.message));
    reader.listen((message) => {
      const m = message as { id?: unknown; error?: { code: number } };
      if (m.id === null && m.error?.code === EngineErrorCodes.ParseError) this.parseErrors++;
      if (typeof m.id === 'string') {
        this.replies.set(m.id, message);
        this.waiters.get(m.id)?.();
        this.waiters.delete(m.id);
      }
    });
  }

  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.child.stdin.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** Resolves with the reply to `id` (a string id), or rejects after `timeoutMs`. */
  reply(id: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<Message> {
    const have = this.replies.get(id);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(
          new Error(
            `no reply to ${id} within ${timeoutMs} ms (engine alive: ${this.child.exitCode === null}); engine stderr ends:\n${this.stderrTail.slice(-2000)}`,
          ),
        );
      }, timeoutMs);
      this.waiters.set(id, () => {
        clearTimeout(timer);
        resolve(this.replies.get(id)!);
      });
    });
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
    return new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));
  }
}

let probeCount = 0;
/** Writes a valid model/info request and waits for its answer: the stream is in sync. */
async function probe(host: Host): Promise<number> {
  const id = `probe-${++probeCount}`;
  const t0 = Date.now();
  await host.write(frame(request(id)));
  const reply = (await host.reply(id)) as { result?: unknown; error?: unknown };
  assert.deepEqual(reply.result, { loaded: false }, JSON.stringify(reply));
  return Date.now() - t0;
}

// ---------------------------------------------------------------- the generator

const TEMPLATE_METHODS = ['model/info', 'engine/stats', 'tokenize', 'no/such/method'];

/** A valid frame's parts, for mutating. */
interface FrameParts {
  headers: [string, string][];
  eol: string;
  blank: boolean;
  body: Buffer;
}

function randomText(rng: Rng, n: number): string {
  const alphabet = 'abcdefgh ijk\\"{}:,\n\té✓𝄞Content-Length: 12\r\n';
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[rng.nextInt(alphabet.length)];
  return s;
}

function randomBytes(rng: Rng, n: number, printable: boolean): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = printable ? 0x20 + rng.nextInt(0x5f) : rng.nextInt(256);
  return b;
}

function templateFrame(rng: Rng, caseIndex: number, k: number): FrameParts {
  const method = TEMPLATE_METHODS[rng.nextInt(TEMPLATE_METHODS.length)];
  const kind = rng.nextInt(10);
  let body: string;
  if (kind === 0) body = JSON.stringify({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 424242 } });
  else if (kind === 1) body = JSON.stringify({ jsonrpc: '2.0', id: 900000 + caseIndex, result: null });
  else body = request(100000 + caseIndex * 10 + k, method, method === 'tokenize' ? { text: randomText(rng, rng.nextInt(40)) } : undefined);
  const bytes = Buffer.from(body, 'utf8');
  const headers: [string, string][] = [['Content-Length', String(bytes.length)]];
  if (rng.nextInt(4) === 0) headers.unshift(['Content-Type', 'application/vscode-jsonrpc; charset=utf-8']);
  return { headers, eol: rng.nextInt(5) === 0 ? '\n' : '\r\n', blank: true, body: bytes };
}

function render(f: FrameParts): Buffer {
  const head = f.headers.map(([n, v]) => `${n}: ${v}${f.eol}`).join('') + (f.blank ? f.eol : '');
  return Buffer.concat([Buffer.from(head, 'latin1'), f.body]);
}

function setLength(f: FrameParts, value: string): void {
  const h = f.headers.find(([n]) => n.toLowerCase() === 'content-length');
  if (h) h[1] = value;
  else f.headers.push(['Content-Length', value]);
}

const BAD_LENGTHS = [
  '-5',
  '-1',
  'abc',
  '',
  ' ',
  '1e3',
  '0x10',
  '+5',
  '5.0',
  '99999999999999999999',
  '٣',
  'NaN',
  'Infinity',
  '12 34',
  '999999999999',
];

/** Mutates a frame's parts; returns the mutation's name. Some mutations leave the frame valid. */
function mutateParts(rng: Rng, f: FrameParts): string {
  const len = f.body.length;
  switch (rng.nextInt(11)) {
    case 0: {
      const r = rng.nextInt(10);
      const delta = r < 4 ? -(1 + rng.nextInt(len)) : r < 8 ? 1 + rng.nextInt(20) : r < 9 ? 21 + rng.nextInt(300) : 1e9;
      setLength(f, String(Math.max(0, len + delta)));
      return `length ${delta > 0 ? '+' : ''}${delta}`;
    }
    case 1: {
      const v = BAD_LENGTHS[rng.nextInt(BAD_LENGTHS.length)];
      setLength(f, v);
      return `length "${v}"`;
    }
    case 2:
      f.headers = f.headers.filter(([n]) => n.toLowerCase() !== 'content-length');
      return 'no length';
    case 3:
      f.headers.push(['Content-Length', String(rng.nextInt(2) === 0 ? len : rng.nextInt(200))]);
      return 'two lengths';
    case 4: {
      const names = [
        'content-length',
        'CONTENT-LENGTH',
        'Content_Length',
        'Content-Length ',
        ' Content-Length',
        'Content Length',
        'Content-Lengt',
      ];
      const name = names[rng.nextInt(names.length)];
      const h = f.headers.find(([n]) => n === 'Content-Length');
      if (h) h[0] = name;
      return `name "${name}"`;
    }
    case 5: {
      const eols = ['\n', '\r', '\r\r\n', '\n\r'];
      f.eol = eols[rng.nextInt(eols.length)];
      return `eol ${JSON.stringify(f.eol)}`;
    }
    case 6:
      f.blank = false;
      return 'no empty line';
    case 7: {
      const r = rng.nextInt(4);
      if (r === 0) f.headers.push(['X-Junk', randomBytes(rng, rng.nextInt(60), true).toString('latin1')]);
      else if (r === 1)
        f.headers.splice(rng.nextInt(f.headers.length + 1), 0, [randomBytes(rng, 1 + rng.nextInt(20), false).toString('latin1'), 'x']);
      else if (r === 2) f.headers.push(['X-Long', 'y'.repeat(MAX_HEADER_BYTES - 100 + rng.nextInt(200))]);
      else f.headers.unshift([randomText(rng, 10).replace(/[\r\n:]/g, ''), randomText(rng, 10).replace(/[\r\n]/g, '')]);
      return `junk header ${r}`;
    }
    case 8: {
      // Body bytes changed, length kept: usually not JSON (or not UTF-8) any more.
      const body = Buffer.from(f.body);
      const n = 1 + rng.nextInt(3);
      for (let i = 0; i < n && body.length > 0; i++) body[rng.nextInt(body.length)] = rng.nextInt(2) === 0 ? 0xff : rng.nextInt(256);
      f.body = body;
      return 'body bytes';
    }
    case 9: {
      // Bytes inserted into or removed from the body, length kept.
      const at = rng.nextInt(len + 1);
      f.body =
        rng.nextInt(2) === 0
          ? Buffer.concat([f.body.subarray(0, at), randomBytes(rng, 1 + rng.nextInt(8), true), f.body.subarray(at)])
          : Buffer.concat([f.body.subarray(0, at), f.body.subarray(at + 1 + rng.nextInt(8))]);
      return 'body length changed';
    }
    default:
      return 'none';
  }
}

interface GeneratedCase {
  writes: Buffer[];
  /** Delay after each write but the last (ms). */
  delays: number[];
  what: string[];
}

function generateCase(rng: Rng, index: number): GeneratedCase {
  const what: string[] = [];
  const parts: Buffer[] = [];
  if (rng.nextInt(8) === 0) {
    parts.push(randomBytes(rng, 1 + rng.nextInt(64), rng.nextInt(2) === 0));
    what.push('garbage first');
  }
  const frames = 1 + rng.nextInt(3);
  let mutated = false;
  for (let k = 0; k < frames; k++) {
    const f = templateFrame(rng, index, k);
    const mutations = k === frames - 1 && !mutated ? 1 + rng.nextInt(2) : rng.nextInt(3);
    for (let m = 0; m < mutations; m++) {
      const name = mutateParts(rng, f);
      what.push(name);
      mutated ||= name !== 'none';
    }
    let bytes = render(f);
    const r = rng.nextInt(6);
    if (r === 0) {
      const cut = rng.nextInt(bytes.length);
      bytes = bytes.subarray(0, cut);
      what.push(`truncated at ${cut}`);
    } else if (r === 1) {
      const at = rng.nextInt(bytes.length + 1);
      bytes = Buffer.concat([bytes.subarray(0, at), randomBytes(rng, 1 + rng.nextInt(32), rng.nextInt(2) === 0), bytes.subarray(at)]);
      what.push(`garbage at ${at}`);
    }
    parts.push(bytes);
  }
  const all = Buffer.concat(parts);
  // Split at random byte boundaries.
  const pieces = 1 + rng.nextInt(5);
  const cuts = Array.from({ length: pieces - 1 }, () => rng.nextInt(all.length + 1)).sort((a, b) => a - b);
  const writes: Buffer[] = [];
  let from = 0;
  for (const c of [...cuts, all.length]) {
    writes.push(all.subarray(from, c));
    from = c;
  }
  const delays = writes.slice(1).map(() => (rng.nextInt(3) === 0 ? rng.nextInt(5) : 0));
  if (pieces > 1) what.push(`${pieces} writes`);
  return { writes: writes.filter((w) => w.length > 0), delays, what };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));

// ---------------------------------------------------------------- the fuzz stage

describe('engine host under malformed frames (one process)', () => {
  let host: Host;
  before(async () => {
    assert.ok(fs.existsSync(HOST), `${HOST} is missing: run node esbuild.mjs`);
    host = new Host();
    await host.write(frame(request('init', 'initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'frames.test' } })));
    const init = (await host.reply('init')) as { result?: { pid?: number } };
    assert.equal(init.result?.pid, host.child.pid);
  });

  after(async () => {
    if (host.child.exitCode !== null || host.child.signalCode !== null) return;
    host.child.kill('SIGKILL');
  });

  it('answers a valid request after every regression input (test/fuzz/frames.regressions.json)', { timeout: 120_000 }, async () => {
    const cases = loadRegressions();
    assert.ok(cases.length >= 20);
    const t0 = Date.now();
    const before = host.parseErrors;
    for (const c of cases) {
      for (const w of c.writes) await host.write(pieceBytes(w));
      try {
        await probe(host);
        for (const id of c.answered ?? []) await host.reply(id, 1000);
        if (c.answeredPrefix) {
          for (let i = 0; i < c.answeredPrefix.count; i++) await host.reply(`${c.answeredPrefix.prefix}${i}`, 1000);
        }
      } catch (err) {
        assert.fail(`regression case "${c.name}": ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    console.log(
      `frames: ${cases.length} regression cases answered in ${Date.now() - t0} ms, ${host.parseErrors - before} parse-error replies`,
    );
    assert.deepEqual(host.stdoutErrors, [], 'stdout carries only frames');
  });

  it('answers a valid request after every seeded malformed sequence', { timeout: 180_000 }, async () => {
    const seed = process.env.MOE_FUZZ_SEED ? Number(process.env.MOE_FUZZ_SEED) >>> 0 : DEFAULT_SEED;
    const count = process.env.MOE_FUZZ_CASES ? Number(process.env.MOE_FUZZ_CASES) : DEFAULT_CASES;
    console.log(`frames: fuzz seed ${seed} (MOE_FUZZ_SEED overrides), ${count} cases`);
    const rng = new Rng(seed, 'frames');
    const t0 = Date.now();
    const before = host.parseErrors;
    let ran = 0;
    let slow = 0;
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      if (Date.now() - t0 > FUZZ_BUDGET_MS) break;
      const c = generateCase(rng, i);
      for (let w = 0; w < c.writes.length; w++) {
        await host.write(c.writes[w]);
        bytes += c.writes[w].length;
        if (w < c.delays.length) await sleep(c.delays[w]);
      }
      try {
        if ((await probe(host)) > 900) slow++;
      } catch (err) {
        const regression = {
          name: `fuzz seed ${seed} case ${i}: ${c.what.join(', ')}`,
          source: `frames.test.ts generator, seed ${seed}`,
          writes: c.writes.map((w) => ({ hex: w.toString('hex') })),
        };
        console.log(`frames: failing case, to add to test/fuzz/frames.regressions.json:\n${JSON.stringify(regression)}`);
        assert.fail(`fuzz seed ${seed} case ${i} (${c.what.join(', ')}): ${err instanceof Error ? err.message : String(err)}`);
      }
      ran++;
    }
    const ms = Date.now() - t0;
    console.log(
      `frames: ${ran} of ${count} generated cases (${bytes} bytes) each followed by an answered request in ${ms} ms; ` +
        `${host.parseErrors - before} parse-error replies, ${slow} waited for the 1 s cut-short timeout`,
    );
    assert.ok(ran >= Math.min(count, 100), `only ${ran} cases ran within ${FUZZ_BUDGET_MS} ms`);
    assert.deepEqual(host.stdoutErrors, [], 'stdout carries only frames');

    // Still the same process, serving, and it shuts down cleanly.
    await host.write(frame(request('stats', 'engine/stats')));
    const stats = (await host.reply('stats')) as { result?: { requests?: unknown } };
    assert.ok(stats.result?.requests);
    await host.write(frame(request('bye', 'shutdown')));
    await host.reply('bye');
    await host.write(frame(JSON.stringify({ jsonrpc: '2.0', method: 'exit' })));
    assert.deepEqual(await host.exited(), { code: 0, signal: null });
  });
});

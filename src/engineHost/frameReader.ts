// The engine's own framing reader (a vscode-jsonrpc MessageReader): reads `Content-Length` frames
// from a byte stream and, unlike vscode-jsonrpc's StreamMessageReader, survives any malformed
// input. One bad frame costs only itself: it is reported (GuardedMessageReader answers it with a
// ParseError reply, id null) and the reader resynchronises on the next frame.
//
// The rules (the README's "The engine process" states them too):
// - A frame is a header block, an empty line, then exactly Content-Length bytes of body.
// - Header lines end with CRLF or a bare LF (both may be mixed); the empty line too. Each line is
//   `Name: value`, the name an RFC 9110 token; a line that is not is an error as soon as it is seen
//   (binary garbage fails at once instead of waiting for an end of line).
// - Content-Length (name case-insensitive) must appear exactly once, its value (spaces and tabs
//   around it ignored) a non-negative decimal integer of at most MAX_CONTENT_LENGTH (64 MiB).
//   A larger one is an error at once; nothing is allocated for it. Other headers (Content-Type)
//   are ignored: the body is always UTF-8 JSON.
// - The header block may hold at most MAX_HEADER_BYTES (8 KiB) of header lines with their line
//   ends, the empty line not counted; past that, without an empty line, it is an error.
// - CR and LF bytes where a frame should start (e.g. a CRLF after a body) are skipped silently.
// - The body must be valid UTF-8 (a BOM is dropped) and valid JSON; else it is an error. Whether
//   the JSON is a JSON-RPC message is GuardedMessageReader's business.
// - A frame that stays incomplete (header or body) with no new input for INCOMPLETE_TIMEOUT_MS
//   (1 s) is reported as cut short. Its bytes may be the start of a frame whose Content-Length
//   was too large and swallowed the frames after it; resynchronising finds those.
// - Resynchronising, after any error: the bytes from the start of the failed frame + 1 up to the
//   next `Content-Length:` (case-insensitive, anywhere, including inside the failed frame's body)
//   are dropped, and a frame is read from there. Bytes with no `Content-Length:` in them are
//   dropped as they arrive (only a possible partial marker at the end is kept).
// - Errors are reported per run: the first failure after a frame that was read is reported; the
//   failures that follow it before the next frame is read (the resynchronisation landing on a
//   `Content-Length:` inside garbage, one after the other) are part of the same run and are not.
//   So each run of bad input gets one ParseError reply, and a body full of `Content-Length:`
//   cannot turn into a flood of replies and log lines.
// Frames are delivered in order, synchronously as their last byte arrives.
import type { Readable } from 'node:stream';

import { AbstractMessageReader, Disposable, type DataCallback, type Message, type MessageReader } from 'vscode-jsonrpc';

export const MAX_CONTENT_LENGTH = 64 * 1024 * 1024;
export const MAX_HEADER_BYTES = 8 * 1024;
export const INCOMPLETE_TIMEOUT_MS = 1000;

export interface FrameLimits {
  maxContentLength?: number;
  maxHeaderBytes?: number;
}

export interface FrameReaderOptions extends FrameLimits {
  /** How long an incomplete frame may wait for more input before it is reported (default 1 s). */
  incompleteTimeoutMs?: number;
}

/** A frame that could not be read; the reader has resynchronised past it. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

export type FrameEvent = { message: Message } | { error: FrameError };

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const MARKER = Buffer.from('content-length:', 'latin1');

/** RFC 9110 token characters (header names). */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

/** Where `Content-Length:` (any case) starts in `buf` at or after `from`, or -1. */
export function indexOfMarker(buf: Uint8Array, from = 0): number {
  const last = buf.length - MARKER.length;
  const c0 = MARKER[0];
  outer: for (let i = from; i <= last; i++) {
    if ((buf[i] | 0x20) !== c0) continue;
    for (let j = 1; j < MARKER.length; j++) {
      const want = MARKER[j];
      const got = buf[i + j];
      // Letters compare without case; '-' and ':' exactly.
      if (want >= 0x61 && want <= 0x7a ? (got | 0x20) !== want : got !== want) continue outer;
    }
    return i;
  }
  return -1;
}

/** Some header bytes for an error message: printable ASCII, cut short. */
function show(bytes: Uint8Array, max = 40): string {
  let text = '';
  for (let i = 0; i < bytes.length && text.length < max; i++) {
    const b = bytes[i];
    text += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : b === CR ? '\\r' : b === LF ? '\\n' : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return bytes.length > max || text.length > max ? `${text.slice(0, max)}...` : text;
}

type HeaderResult = { kind: 'more' } | { kind: 'error'; message: string } | { kind: 'ok'; bodyStart: number; length: number };

/**
 * The framing state machine without I/O or timers: push() bytes, get the messages and errors they
 * complete; expire() reports an incomplete frame as cut short. The buffered bytes always start at
 * the frame being read (or, while resynchronising, at the next place to search).
 */
export class FrameParser {
  private readonly maxContentLength: number;
  private readonly maxHeaderBytes: number;
  private chunks: Buffer[] = [];
  private size = 0;
  /** After an error, until the next `Content-Length:` is found. */
  private scanning = false;
  /** Once the frame's header is read: where its body starts and how long it is. */
  private bodyStart = -1;
  private bodyLength = -1;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  /** Set by a reported error, cleared by the next frame read: errors in between are not reported. */
  private quiet = false;

  constructor(limits: FrameLimits = {}) {
    this.maxContentLength = limits.maxContentLength ?? MAX_CONTENT_LENGTH;
    this.maxHeaderBytes = limits.maxHeaderBytes ?? MAX_HEADER_BYTES;
  }

  /** True while part of a frame is buffered (what expire() would report). */
  get pending(): boolean {
    return !this.scanning && this.size > 0;
  }

  /** Bytes held (a frame in progress, or a possible partial marker while resynchronising). */
  get buffered(): number {
    return this.size;
  }

  push(chunk: Uint8Array): FrameEvent[] {
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.size += chunk.length;
    }
    const events: FrameEvent[] = [];
    this.run(events);
    return events;
  }

  /** Reports the incomplete frame, if any, as cut short and resynchronises past its first byte. */
  expire(waitedMs: number = INCOMPLETE_TIMEOUT_MS): FrameEvent[] {
    const events: FrameEvent[] = [];
    if (!this.pending) return events;
    const seconds = `${Math.round(waitedMs / 100) / 10} s`;
    const message =
      this.bodyLength >= 0
        ? `the frame was cut short: ${Math.max(0, this.size - this.bodyStart)} of its ${this.bodyLength} body bytes arrived, then nothing for ${seconds}`
        : `the frame's header was cut short (${show(this.collapse())}), then nothing for ${seconds}`;
    this.fail(events, message);
    this.run(events);
    return events;
  }

  // ---------------------------------------------------------------- internals

  private run(events: FrameEvent[]): void {
    for (;;) {
      if (this.scanning) {
        const buf = this.collapse();
        const at = indexOfMarker(buf);
        if (at < 0) {
          // Keep what could be the start of a marker split across chunks.
          this.keepFrom(Math.max(0, buf.length - (MARKER.length - 1)));
          return;
        }
        this.keepFrom(at);
        this.scanning = false;
      }
      if (this.bodyLength < 0) {
        if (this.size === 0) return;
        let buf = this.collapse();
        let skip = 0;
        while (skip < buf.length && (buf[skip] === CR || buf[skip] === LF)) skip++;
        if (skip > 0) {
          this.keepFrom(skip);
          if (this.size === 0) return;
          buf = this.collapse();
        }
        const header = this.readHeader(buf);
        if (header.kind === 'more') return;
        if (header.kind === 'error') {
          this.fail(events, header.message);
          continue;
        }
        this.bodyStart = header.bodyStart;
        this.bodyLength = header.length;
      }
      const end = this.bodyStart + this.bodyLength;
      if (this.size < end) return;
      const buf = this.collapse();
      const body = buf.subarray(this.bodyStart, end);
      let text: string;
      try {
        text = this.decoder.decode(body);
      } catch {
        this.fail(events, `the ${body.length}-byte body is not valid UTF-8`);
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
        this.fail(events, `the ${body.length}-byte body is not valid JSON (${detail})`);
        continue;
      }
      this.keepFrom(end);
      this.bodyStart = this.bodyLength = -1;
      this.quiet = false;
      events.push({ message: value as Message });
    }
  }

  /** Reports `message` (unless this run of bad input was reported) and resynchronises: drop the failed frame's first byte, then search. */
  private fail(events: FrameEvent[], message: string): void {
    if (!this.quiet) events.push({ error: new FrameError(message) });
    this.quiet = true;
    this.keepFrom(Math.min(1, this.size));
    this.bodyStart = this.bodyLength = -1;
    this.scanning = true;
  }

  /** Parses the header block at the start of `buf`. */
  private readHeader(buf: Buffer): HeaderResult {
    const limit = this.maxHeaderBytes;
    const tooLong: HeaderResult = { kind: 'error', message: `the header block is longer than ${limit} bytes without an empty line` };
    let length: number | undefined;
    let pos = 0;
    // Only the first limit + 2 bytes can hold header lines and the empty line: never look further
    // (a body full of `Content-Length:` and no LF would otherwise be searched to its end each time).
    const view = buf.length > limit + 2 ? buf.subarray(0, limit + 2) : buf;
    for (;;) {
      const nl = view.indexOf(LF, pos);
      const lineEnd = nl < 0 ? view.length : nl;
      // Without the CR of a CRLF (or of one still arriving).
      const contentEnd = lineEnd > pos && buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
      // The name must be a token up to its colon: garbage fails here, before any line end arrives.
      let colon = -1;
      for (let i = pos; i < contentEnd; i++) {
        const b = buf[i];
        if (b === COLON) {
          colon = i;
          break;
        }
        if (!TOKEN[b]) return { kind: 'error', message: `the header line "${show(buf.subarray(pos, contentEnd))}" is not "Name: value"` };
      }
      if (nl < 0) {
        if (view.length < buf.length) return tooLong;
        // An incomplete line: an error once it cannot fit (the empty line, CR at most, is not counted).
        const partial = buf.length - pos;
        const mayBeEmptyLine = partial === 0 || (partial === 1 && buf[pos] === CR);
        if (!mayBeEmptyLine && buf.length + 1 > limit) return tooLong;
        return { kind: 'more' };
      }
      if (contentEnd === pos) {
        // The empty line: the header block ends.
        if (length === undefined) return { kind: 'error', message: 'the frame has no Content-Length header' };
        return { kind: 'ok', bodyStart: nl + 1, length };
      }
      if (nl + 1 > limit) return tooLong;
      if (colon < 0 || colon === pos || colon > contentEnd) {
        return { kind: 'error', message: `the header line "${show(buf.subarray(pos, contentEnd))}" is not "Name: value"` };
      }
      const name = buf.toString('latin1', pos, colon).toLowerCase();
      if (name === 'content-length') {
        if (length !== undefined) return { kind: 'error', message: 'the frame has more than one Content-Length header' };
        const raw = buf.subarray(colon + 1, contentEnd);
        const value = buf.toString('latin1', colon + 1, contentEnd).replace(/^[ \t]+|[ \t]+$/g, '');
        if (!/^[0-9]+$/.test(value))
          return { kind: 'error', message: `Content-Length "${show(raw).trim()}" is not a non-negative decimal integer` };
        const digits = value.replace(/^0+(?=.)/, '');
        const n = digits.length > 15 ? Infinity : Number(digits);
        if (n > this.maxContentLength) {
          return {
            kind: 'error',
            message: `Content-Length ${show(Buffer.from(digits, 'latin1'), 30)} is over the limit of ${this.maxContentLength} bytes`,
          };
        }
        length = n;
      }
      pos = nl + 1;
    }
  }

  /** The buffered bytes as one Buffer. */
  private collapse(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Drops the first `n` buffered bytes. */
  private keepFrom(n: number): void {
    if (n <= 0) return;
    const buf = this.collapse();
    const rest = buf.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
  }
}

/**
 * A MessageReader over a byte stream with FrameParser's rules: messages to the listen() callback,
 * framing and JSON errors to onError (after which it goes on reading), end of input to onClose.
 */
export class FrameReader extends AbstractMessageReader implements MessageReader {
  private readonly parser: FrameParser;
  private readonly timeoutMs: number;
  private callback: DataCallback | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  /** Counts data events: the incomplete-frame timer only fires if none came since it was armed. */
  private arrivals = 0;
  private lastArrival = 0;
  private closed = false;
  private readonly handleData = (chunk: Buffer | string): void =>
    this.onData(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
  private readonly handleEnd = (): void => this.onEnd();
  private readonly handleError = (err: Error): void => this.fireError(err);

  constructor(
    private readonly input: NodeJS.ReadableStream | Readable,
    options: FrameReaderOptions = {},
  ) {
    super();
    this.parser = new FrameParser(options);
    this.timeoutMs = options.incompleteTimeoutMs ?? INCOMPLETE_TIMEOUT_MS;
  }

  listen(callback: DataCallback): Disposable {
    if (this.callback) throw new Error('FrameReader.listen can be called only once.');
    this.callback = callback;
    this.input.on('data', this.handleData);
    this.input.on('end', this.handleEnd);
    this.input.on('close', this.handleEnd);
    this.input.on('error', this.handleError);
    return Disposable.create(() => this.stop());
  }

  override dispose(): void {
    super.dispose();
    this.stop();
  }

  private stop(): void {
    this.input.removeListener('data', this.handleData);
    this.input.removeListener('end', this.handleEnd);
    this.input.removeListener('close', this.handleEnd);
    this.input.removeListener('error', this.handleError);
    this.clearTimer();
    this.callback = undefined;
  }

  private onData(chunk: Buffer): void {
    this.arrivals++;
    this.lastArrival = Date.now();
    this.clearTimer();
    try {
      this.deliver(this.parser.push(chunk));
    } finally {
      this.armTimer();
    }
  }

  private onEnd(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.fireClose();
  }

  private deliver(events: FrameEvent[]): void {
    let thrown: unknown;
    for (const event of events) {
      try {
        if ('message' in event) this.callback?.(event.message);
        else this.fireError(event.error);
      } catch (err) {
        thrown ??= err;
      }
    }
    if (thrown !== undefined) throw thrown;
  }

  private armTimer(): void {
    if (!this.parser.pending || this.closed || !this.callback) return;
    const arrivals = this.arrivals;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // After a busy spell the timer phase runs before the poll phase that would deliver input
      // already waiting in the pipe: let one poll happen before calling the frame cut short.
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        if (arrivals !== this.arrivals || !this.parser.pending) return;
        try {
          this.deliver(this.parser.expire(Date.now() - this.lastArrival));
        } finally {
          this.armTimer();
        }
      });
    }, this.timeoutMs);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = this.immediate = undefined;
  }
}

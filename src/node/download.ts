// Downloads a model file: resumable (<dest>.part + a <dest>.part.json sidecar, Range/If-Range),
// checked for free disk space first, hashed while writing and verified (SHA-256, GGUF magic)
// before it is renamed to its final name. Plain Node (no vscode); every error says what to do.
// Only https is fetched (plain http only from this machine, for tests and local mirrors): the
// URL and every redirect hop are checked before any connection (downloadUrlProblem).
// A download that cannot be the model leaves nothing behind, neither a file nor a `.part` a later
// run would resume: a 404, a gated file (401/403, or a redirect to a sign-in page), a web page
// instead of a GGUF (text/html, or other first bytes than "GGUF"), and a GGUF of an architecture
// the engine does not run (general.architecture, read from the header as it arrives and again
// before the file gets its name). Each says in one sentence what happened and what to do.
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ggufArchitecture, SUPPORTED_ARCHITECTURES } from '../common/ggufHeader';
import { formatBytes } from '../common/statusText';

export { formatBytes };

export interface DownloadProgress {
  /** Bytes of the file on disk so far (a resumed part counts). */
  received: number;
  /** The file's size, when the server said. */
  total: number | undefined;
  /** Transfer speed of this run (bytes that came over the network / elapsed time). */
  bytesPerSecond: number;
}

/** The subset of a writable file stream the download uses (injectable for tests). */
export interface PartWriter {
  write(chunk: Uint8Array, callback: (err?: Error | null) => void): boolean;
  once(event: 'drain' | 'error' | 'close', listener: (...args: unknown[]) => void): unknown;
  removeListener(event: 'drain' | 'error' | 'close', listener: (...args: unknown[]) => void): unknown;
  end(callback?: () => void): unknown;
  destroy(err?: Error): unknown;
  /** True once 'close' was emitted (an error destroys the stream by itself). */
  readonly closed?: boolean;
}

export interface DiskSpace {
  bavail: number | bigint;
  bsize: number | bigint;
}

export interface DownloadOptions {
  url: string;
  /** Final path of the file; the download writes `<dest>.part` until it is verified. */
  dest: string;
  /** Expected SHA-256 (hex). Without it, the checksum the server publishes is used. */
  expectedSha256?: string;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Free space to leave on the disk beyond what the file needs (default 256 MiB). */
  minFreeBytesMargin?: number;
  /** Defaults to the global fetch. */
  fetchImpl?: typeof fetch;
  /** Defaults to fs.promises.statfs (tests simulate a small disk). */
  statfs?: (dir: string) => Promise<DiskSpace>;
  /** Defaults to fs.createWriteStream (tests simulate a full disk). */
  createWriteStream?: (file: string, flags: 'a' | 'w') => PartWriter;
  /** Give up when no byte arrives for this long (default 60 s). */
  stallTimeoutMs?: number;
  /** Minimum time between progress reports (default 250 ms). */
  progressIntervalMs?: number;
  /**
   * What a user does about a URL that gives no model, ending the error sentences (default: check
   * the smallthinker.model.downloadUrl setting, or pick another model with Download Model…).
   */
  urlAdvice?: string;
  /** The general.architecture values accepted (default SUPPORTED_ARCHITECTURES: "smallthinker"). */
  architectures?: readonly string[];
}

export interface DownloadResult {
  path: string;
  sha256: string;
  bytes: number;
  /** True when part of the file came from an earlier, interrupted run. */
  resumed: boolean;
  /** True when `dest` already existed and matched the checksum: nothing was fetched. */
  alreadyPresent: boolean;
}

export type DownloadErrorKind =
  | 'cancelled'
  | 'noChecksum'
  | 'checksum'
  /** Not a GGUF file: a web page (text/html), other first bytes, or a header no loader reads. */
  | 'notGguf'
  /** A GGUF file of another architecture than the engine runs. */
  | 'wrongModel'
  /** The file needs a sign-in: 401, 403, or a redirect to a login page (gated or private repositories). */
  | 'auth'
  | 'diskSpace'
  | 'diskFull'
  | 'http'
  | 'network'
  | 'url'
  | 'io';

/** Every failure of downloadFile; the message says what happened and what to do. */
export class DownloadError extends Error {
  constructor(
    readonly kind: DownloadErrorKind,
    message: string,
    /** True when a `.part` file was kept and a later run resumes from it. */
    readonly partKept = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = kind === 'cancelled' ? 'DownloadCancelledError' : 'DownloadError';
  }
}

export function isDownloadCancelled(err: unknown): boolean {
  return err instanceof DownloadError && err.kind === 'cancelled';
}

/** The settings key users set for a checksum (named in error messages). */
const SHA_SETTING = 'smallthinker.model.sha256';
const URL_SETTING = 'smallthinker.model.downloadUrl';
const FOLDER_SETTING = 'smallthinker.model.downloadFolder';
const GGUF_MAGIC = 'GGUF';
const MAX_REDIRECTS = 10;
/** The default end of the sentences about a URL that gives no model. */
export const DEFAULT_URL_ADVICE = `check the ${URL_SETTING} setting or pick another model with the SmallThinker: Download Model… command`;
/** What to do about a gated file (before the advice about the URL). */
const GATED_ADVICE = 'download it in a browser where you are signed in and open it with SmallThinker: Choose Model File (GGUF)…';
/** Bytes of a download's start kept to read its GGUF header while it arrives. */
const HEAD_LIMIT = 4 * 1024 * 1024;
/** Bytes of a finished file read at most to find general.architecture. */
const HEADER_READ_LIMIT = 64 * 1024 * 1024;

/** True for a URL that is a sign-in page (Hugging Face sends gated files' requests to /login). */
export function isSignInUrl(url: string): boolean {
  try {
    return /(^|\/)(login|log-in|signin|sign-in|sign_in|sso|oauth|authorize)(\/|$)/i.test(new URL(url).pathname);
  } catch {
    return false;
  }
}

/** True for hosts that are this machine: localhost, 127.0.0.0/8 and [::1] (as URL.hostname spells them). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A URL for an error message: scheme, host and path, cut short (a data: URL can be megabytes). */
function shortUrl(url: URL): string {
  const text = url.protocol === 'http:' || url.protocol === 'https:' ? `${url.protocol}//${url.host}${url.pathname}` : url.href;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * The downloader's URL policy: https only, plain http only to a loopback host and never after an
 * https hop (no downgrade). Returns the sentence to show when `url` is refused (`redirectedFrom`:
 * the hop that redirected to it), or undefined when it may be fetched.
 */
export function downloadUrlProblem(url: string, redirectedFrom?: string): string | undefined {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return redirectedFrom === undefined
      ? `"${url}" is not a valid URL. Check the ${URL_SETTING} setting.`
      : `${redirectedFrom} redirects to "${url.slice(0, 80)}", which is not a valid URL; the download was refused.`;
  }
  let from: URL | undefined;
  try {
    from = redirectedFrom === undefined ? undefined : new URL(redirectedFrom);
  } catch {
    from = undefined;
  }
  let why: string | undefined;
  if (target.protocol === 'https:') why = undefined;
  else if (target.protocol !== 'http:') why = `${target.protocol.replace(/:$/, '')}: URLs are never downloaded, only https`;
  else if (from?.protocol === 'https:') why = 'it goes from https down to plain http';
  else if (!isLoopbackHost(target.hostname)) why = 'plain http is allowed only to this machine (localhost, 127.0.0.0/8, [::1])';
  if (why === undefined) return undefined;
  return from === undefined
    ? `The download URL ${shortUrl(target)} is refused because ${why}; check the ${URL_SETTING} setting.`
    : `The download was refused because ${shortUrl(from)} redirects to ${shortUrl(target)} and ${why}.`;
}

interface Sidecar {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
  sha256?: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** The SHA-256 in an (x-linked-)etag value, if it is one: `"<64 hex>"`, optionally weak. */
export function sha256FromEtag(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const bare = value.trim().replace(/^W\//i, '').replace(/^"|"$/g, '').toLowerCase();
  return HEX64.test(bare) ? bare : undefined;
}

/** The first 64-hex token of a `.sha256` file (`<hash>  <name>` or just the hash). */
export function sha256FromText(text: string): string | undefined {
  const match = /(?:^|\s)([0-9a-fA-F]{64})(?:\s|$)/.exec(text);
  return match ? match[1].toLowerCase() : undefined;
}

/** Hashes a file; resolves its SHA-256 hex and size. */
export async function hashFile(
  file: string,
  signal?: AbortSignal,
  hash: Hash = createHash('sha256'),
): Promise<{ sha256: string; bytes: number; hash: Hash }> {
  let bytes = 0;
  const stream = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw cancelled(true);
      hash.update(chunk);
      bytes += chunk.length;
    }
  } finally {
    stream.destroy();
  }
  return { sha256: hash.copy().digest('hex'), bytes, hash };
}

function cancelled(partKept: boolean): DownloadError {
  return new DownloadError(
    'cancelled',
    partKept
      ? 'The download was cancelled; the part downloaded so far is kept. Run the download again to resume it.'
      : 'The download was cancelled.',
    partKept,
  );
}

async function fileSize(file: string): Promise<number | undefined> {
  try {
    const stat = await fs.promises.stat(file);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return undefined;
  }
}

async function readSidecar(file: string): Promise<Sidecar | undefined> {
  try {
    const value = JSON.parse(await fs.promises.readFile(file, 'utf8')) as Sidecar;
    return typeof value?.url === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

async function removeQuietly(file: string): Promise<void> {
  await fs.promises.rm(file, { force: true }).catch(() => {});
}

async function readMagic(file: string): Promise<Buffer> {
  // O_NONBLOCK: opening a FIFO (or a device) must not block; then only a regular file is read.
  const handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) return Buffer.alloc(0);
    const buffer = Buffer.alloc(4);
    const { bytesRead } = await handle.read(buffer, 0, 4, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function describeMagic(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('latin1');
  return /^[\x20-\x7e]*$/.test(text) ? `"${text}"` : Buffer.from(bytes).toString('hex');
}

function notGguf(url: string, first: Uint8Array, advice: string): DownloadError {
  return new DownloadError(
    'notGguf',
    `The file at ${url} is not a GGUF model (it starts with ${describeMagic(first)}, not "GGUF"), so it was not kept; ${advice}.`,
  );
}

function webPage(url: string, contentType: string, advice: string): DownloadError {
  return new DownloadError(
    'notGguf',
    `${url} answered with a web page (${contentType.split(';')[0].trim()}) instead of a GGUF model file, so nothing was kept; ${advice}.`,
  );
}

/** The error for a GGUF header that is not one the engine runs, or undefined when it is. */
function headerProblem(url: string, header: ReturnType<typeof ggufArchitecture>, accepted: readonly string[], advice: string) {
  if (header.kind === 'truncated') return undefined;
  if (header.kind === 'found' && accepted.includes(header.architecture)) return undefined;
  if (header.kind === 'invalid')
    return new DownloadError(
      'notGguf',
      `The file at ${url} is not a GGUF model this engine can read (${header.reason}), so it was not kept; ${advice}.`,
    );
  const what = header.kind === 'found' ? `a model of the "${header.architecture}" architecture` : 'a GGUF file that names no architecture';
  return new DownloadError(
    'wrongModel',
    `The file at ${url} is ${what}, not SmallThinker (general.architecture "${accepted.join('" or "')}"), so this engine cannot run it and it was not kept; ${advice}.`,
  );
}

function httpError(status: number, statusText: string, url: string, partKept: boolean, advice: string): DownloadError {
  const answer = `HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
  if (status === 404 || status === 410)
    return new DownloadError('http', `There is no file at ${url} (the server answered ${answer}), so nothing was kept; ${advice}.`);
  if (status === 401 || status === 403)
    return new DownloadError(
      'auth',
      `The server refused ${url} without a sign-in (${answer}): the model is gated or private, so nothing was kept; ${GATED_ADVICE}, or ${advice}.`,
    );
  const kept = partKept ? ', and the part downloaded so far is kept for the next run' : '';
  let todo: string;
  if (status === 429) todo = 'the server limits requests: try again in a few minutes';
  else if (status >= 500) todo = 'the server has a problem: try again later';
  else todo = `${advice}, and try again`;
  return new DownloadError('http', `The server answered ${answer} for ${url}${kept}; ${todo}.`, partKept);
}

function networkError(err: unknown, url: string, partKept: boolean): DownloadError {
  const detail = errorDetail(err);
  const kept = partKept
    ? ' The part downloaded so far is kept; run the download again to resume it.'
    : ' Check your connection and try again.';
  return new DownloadError('network', `The connection to ${new URL(url).host} failed (${detail}).${kept}`, partKept, { cause: err });
}

function errorDetail(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error && cause.message && cause.message !== err.message) return `${err.message}: ${cause.message}`;
  return err.message;
}

function isEnospc(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    ((err as { code?: string }).code === 'ENOSPC' || (err as { code?: string }).code === 'EDQUOT')
  );
}

function defaultWriter(file: string, flags: 'a' | 'w'): PartWriter {
  return fs.createWriteStream(file, { flags }) as unknown as PartWriter;
}

async function defaultStatfs(dir: string): Promise<DiskSpace> {
  return fs.promises.statfs(dir);
}

/** Parses a Content-Range: `bytes <start>-<end>/<total>`, or `bytes *` + `/<total>` (416). */
function parseContentRange(value: string | null): { start?: number; total?: number } {
  if (!value) return {};
  const m = /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)/i.exec(value.trim());
  if (!m) return {};
  return { start: m[1] === undefined ? undefined : Number(m[1]), total: m[2] === '*' ? undefined : Number(m[2]) };
}

function headerNumber(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

interface Fetched {
  response: Response;
  finalUrl: string;
  /** Checksum published on any hop, earliest first (HF puts x-linked-etag on the redirect). */
  publishedSha256?: string;
  /** File size published on a redirect (HF: x-linked-size). */
  linkedSize?: number;
}

/** GET with redirects followed by hand, so Range/If-Range go to every hop and each hop's headers are seen. */
async function get(
  fetchImpl: typeof fetch,
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  advice = DEFAULT_URL_ADVICE,
): Promise<Fetched> {
  let current = url;
  let previous: string | undefined;
  let publishedSha256: string | undefined;
  let linkedSize: number | undefined;
  for (let hop = 0; ; hop++) {
    // Every hop is checked before it is fetched (fetch itself would follow data:, or https -> http).
    const refused = downloadUrlProblem(current, previous);
    if (refused) throw new DownloadError('url', refused);
    const response = await fetchImpl(current, { headers: { 'accept-encoding': 'identity', ...headers }, redirect: 'manual', signal });
    publishedSha256 ??= sha256FromEtag(response.headers.get('x-linked-etag')) ?? sha256FromEtag(response.headers.get('etag'));
    linkedSize ??= headerNumber(response.headers.get('x-linked-size'));
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel().catch(() => {});
      if (hop >= MAX_REDIRECTS) throw new DownloadError('http', `${url} redirects too many times, so nothing was kept; ${advice}.`);
      previous = current;
      try {
        current = new URL(location, current).toString();
      } catch {
        throw new DownloadError(
          'url',
          downloadUrlProblem(location, previous) ?? `${previous} redirects to an invalid URL; the download was refused.`,
        );
      }
      // A sign-in page is never followed: it is a web page, and the file behind it is gated.
      if (isSignInUrl(current)) {
        throw new DownloadError(
          'auth',
          `${url} redirects to a sign-in page (${shortUrl(new URL(current))}): the model is gated or private, so nothing was kept; ${GATED_ADVICE}, or ${advice}.`,
        );
      }
      continue;
    }
    return { response, finalUrl: current, publishedSha256, linkedSize };
  }
}

/** The checksum from a `<url>.sha256` file, if the server has one. */
async function fetchSha256File(fetchImpl: typeof fetch, url: string, signal: AbortSignal): Promise<string | undefined> {
  let sidecarUrl: string;
  try {
    const parsed = new URL(url);
    parsed.pathname += '.sha256';
    sidecarUrl = parsed.toString();
  } catch {
    return undefined;
  }
  try {
    const { response } = await get(fetchImpl, sidecarUrl, {}, signal);
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {});
      return undefined;
    }
    const text = await response.text();
    return text.length < 4096 ? sha256FromText(text) : undefined;
  } catch (err) {
    if (signal.aborted) throw err;
    return undefined;
  }
}

/**
 * Downloads `url` to `dest`, resuming an earlier `.part`, and returns only after the file is
 * verified (checksum, GGUF magic) and renamed into place. Throws DownloadError.
 */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const fetchImpl = options.fetchImpl ?? fetch;
  const statfs = options.statfs ?? defaultStatfs;
  const createWriter = options.createWriteStream ?? defaultWriter;
  const margin = options.minFreeBytesMargin ?? 256 * 1024 * 1024;
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const progressIntervalMs = options.progressIntervalMs ?? 250;
  const dest = path.resolve(options.dest);
  const part = `${dest}.part`;
  const sidecarFile = `${part}.json`;
  const dir = path.dirname(dest);
  const url = options.url;
  const advice = options.urlAdvice ?? DEFAULT_URL_ADVICE;
  const accepted = options.architectures ?? SUPPORTED_ARCHITECTURES;
  let expected = options.expectedSha256?.trim().toLowerCase() || undefined;
  if (expected !== undefined && !HEX64.test(expected)) {
    throw new DownloadError(
      'noChecksum',
      `The ${SHA_SETTING} setting ("${options.expectedSha256}") is not a SHA-256: it must be 64 hexadecimal characters, or empty to use the server's checksum.`,
    );
  }
  try {
    new URL(url);
  } catch {
    throw new DownloadError('http', `"${url}" is not a valid URL. Check the ${URL_SETTING} setting.`);
  }
  const refused = downloadUrlProblem(url);
  if (refused) throw new DownloadError('url', refused);

  // One controller for the user's signal and the stall timer.
  const controller = new AbortController();
  const userSignal = options.signal;
  const onUserAbort = (): void => controller.abort();
  if (userSignal?.aborted) throw cancelled(false);
  userSignal?.addEventListener('abort', onUserAbort, { once: true });
  let stalled = false;
  let stallTimer: NodeJS.Timeout | undefined;
  const armStall = (): void => {
    if (stallTimer) clearTimeout(stallTimer);
    stallTimer = setTimeout(() => {
      stalled = true;
      controller.abort();
    }, stallTimeoutMs);
  };
  const disarmStall = (): void => {
    if (stallTimer) clearTimeout(stallTimer);
    stallTimer = undefined;
  };
  const signal = controller.signal;

  try {
    await fs.promises.mkdir(dir, { recursive: true }).catch((err: unknown) => {
      throw new DownloadError(
        'io',
        `Cannot create the folder ${dir} (${errorDetail(err)}). Set ${FOLDER_SETTING} to a folder you can write to.`,
      );
    });

    for (let attempt = 0; ; attempt++) {
      // What an earlier run left.
      let sidecar = await readSidecar(sidecarFile);
      let partBytes = (await fileSize(part)) ?? 0;
      if (
        partBytes > 0 &&
        (!sidecar || sidecar.url !== url || (expected && sidecar.sha256 && sidecar.sha256 !== expected) || attempt > 0)
      ) {
        // A part of some other download (or one the server no longer vouches for): start over.
        await removeQuietly(part);
        partBytes = 0;
      }
      if (partBytes === 0) sidecar = undefined;

      // Hash the part first, so the connection does not idle while the disk is read.
      let partHash: Hash | undefined;
      if (partBytes > 0) {
        options.onProgress?.({ received: partBytes, total: sidecar?.total, bytesPerSecond: 0 });
        try {
          const hashed = await hashFile(part, userSignal);
          if (hashed.bytes !== partBytes) throw new Error('the partial file changed while it was read');
          partHash = hashed.hash;
        } catch (err) {
          if (err instanceof DownloadError) throw err;
          throw new DownloadError(
            'io',
            `Reading the partial download ${part} failed (${errorDetail(err)}). Delete it and run the download again.`,
          );
        }
      }

      const headers: Record<string, string> = {};
      const validator = sidecar?.etag && !/^W\//i.test(sidecar.etag) ? sidecar.etag : sidecar?.lastModified;
      if (partBytes > 0) {
        headers.range = `bytes=${partBytes}-`;
        if (validator) headers['if-range'] = validator;
      }

      armStall();
      let fetched: Fetched;
      try {
        fetched = await get(fetchImpl, url, headers, signal, advice);
      } catch (err) {
        if (err instanceof DownloadError && err.kind === 'auth') {
          // A gated file: what an earlier run left of it must not be resumed (or loaded) later.
          await removeQuietly(part);
          await removeQuietly(sidecarFile);
        }
        if (err instanceof DownloadError) throw err;
        if (userSignal?.aborted) throw cancelled(partBytes > 0);
        if (stalled)
          throw new DownloadError(
            'network',
            `${new URL(url).host} did not answer for ${Math.round(stallTimeoutMs / 1000)} s. Check your connection and try again.`,
            partBytes > 0,
          );
        throw networkError(err, url, partBytes > 0);
      } finally {
        disarmStall();
      }
      const { response } = fetched;
      const cancelBody = (): Promise<void> => (response.body ? response.body.cancel().catch(() => {}) : Promise.resolve());

      // Which bytes come, and how many in all.
      let append: boolean;
      let complete = false;
      let total: number | undefined;
      if (response.status === 206 && partBytes > 0) {
        const range = parseContentRange(response.headers.get('content-range'));
        if (range.start !== partBytes) {
          await cancelBody();
          if (attempt === 0) continue; // The server resumed from elsewhere: start over.
          throw new DownloadError('http', `The server sent the wrong part of the file. Delete ${part} and run the download again.`);
        }
        append = true;
        const length = headerNumber(response.headers.get('content-length'));
        total = range.total ?? (length === undefined ? undefined : length + partBytes);
      } else if (response.status === 200) {
        // A fresh download, or a server that ignored the Range (or whose file changed): from byte 0.
        append = false;
        partBytes = 0;
        total = headerNumber(response.headers.get('content-length'));
      } else if (response.status === 416 && partBytes > 0) {
        await cancelBody();
        const range = parseContentRange(response.headers.get('content-range'));
        const knownTotal = range.total ?? sidecar?.total;
        if (knownTotal !== partBytes) {
          if (attempt === 0) continue; // The part does not match the file: start over.
          throw new DownloadError(
            'http',
            `The server refused to resume the download (HTTP 416). Delete ${part} and run the download again.`,
          );
        }
        append = true;
        complete = true; // The part is the whole file; it only needs verifying.
        total = knownTotal;
      } else {
        await cancelBody();
        const err = httpError(
          response.status,
          response.statusText,
          fetched.finalUrl === url ? url : `${url} (redirected to ${new URL(fetched.finalUrl).host})`,
          partBytes > 0,
          advice,
        );
        if (!err.partKept) {
          // The file is gone or gated: a part of it must not be resumed (or loaded) later.
          await removeQuietly(part);
          await removeQuietly(sidecarFile);
        }
        throw err;
      }
      // A web page (a sign-in or error page served with 200) is not the model: nothing is kept.
      const contentType = response.headers.get('content-type') ?? '';
      if (!complete && /^\s*(text\/html|application\/xhtml\+xml)\b/i.test(contentType)) {
        await cancelBody();
        await removeQuietly(part);
        await removeQuietly(sidecarFile);
        throw webPage(url, contentType, advice);
      }
      total ??= fetched.linkedSize;

      // The checksum to compare against.
      const published = fetched.publishedSha256;
      if (!expected && append && sidecar?.sha256 && published && sidecar.sha256 !== published) {
        // The file changed on the server since the part was fetched.
        await cancelBody();
        if (attempt === 0) continue;
      }
      if (!expected) expected = published ?? (append ? sidecar?.sha256 : undefined);
      if (!expected) expected = await fetchSha256File(fetchImpl, url, signal).catch(() => undefined);
      if (!expected) {
        await cancelBody();
        if (userSignal?.aborted) throw cancelled(partBytes > 0);
        throw new DownloadError(
          'noChecksum',
          `The server publishes no checksum for ${url}, so the download could not be verified and was not started. Set ${SHA_SETTING} to the file's SHA-256 and run the download again.`,
          partBytes > 0,
        );
      }

      // An earlier download that already verifies: nothing to fetch.
      const existing = await fileSize(dest);
      if (existing !== undefined && (total === undefined || existing === total)) {
        let sha256: string;
        try {
          sha256 = (await hashFile(dest, userSignal)).sha256;
        } catch (err) {
          await cancelBody();
          throw err instanceof DownloadError
            ? err
            : new DownloadError('io', `Reading ${dest} failed (${errorDetail(err)}). Delete it and run the download again.`);
        }
        if (sha256 === expected) {
          await cancelBody();
          await removeQuietly(part);
          await removeQuietly(sidecarFile);
          // It is what the server has; still, a file the engine cannot run is not handed back to be loaded.
          const problem = headerProblem(url, await readHeaderArchitecture(dest), accepted, advice);
          if (problem) throw problem;
          return { path: dest, sha256, bytes: existing, resumed: false, alreadyPresent: true };
        }
      }

      // The part's hash goes on with the new bytes; a download from byte 0 starts a new one.
      const hash = (append ? partHash : undefined) ?? createHash('sha256');
      let received = partBytes;
      if (!complete) {
        // Enough room for the rest?
        const remaining = total !== undefined ? Math.max(0, total - partBytes) : 0;
        let free: number | undefined;
        try {
          const stat = await statfs(dir);
          free = Number(stat.bavail) * Number(stat.bsize);
        } catch {
          free = undefined; // Unknown (statfs unsupported): the write itself reports a full disk.
        }
        if (free !== undefined && free < remaining + margin) {
          await cancelBody();
          throw new DownloadError(
            'diskSpace',
            `Not enough disk space in ${dir}: the download needs ${formatBytes(remaining + margin)} (${formatBytes(remaining)} for the file plus ${formatBytes(margin)} to spare) but ${formatBytes(free)} is free. Free some space, or set ${FOLDER_SETTING} to a folder on another disk.`,
            partBytes > 0,
          );
        }

        // Remember how to resume before writing a byte.
        const etag = response.headers.get('etag') ?? undefined;
        const lastModified = response.headers.get('last-modified') ?? undefined;
        const nextSidecar: Sidecar = { url, etag, lastModified, total, sha256: expected };
        try {
          await fs.promises.writeFile(sidecarFile, JSON.stringify(nextSidecar));
        } catch (err) {
          await cancelBody();
          if (isEnospc(err))
            throw new DownloadError(
              'diskFull',
              `The disk holding ${dir} is full. Free some space and run the download again.`,
              partBytes > 0,
            );
          throw new DownloadError(
            'io',
            `Cannot write in ${dir} (${errorDetail(err)}). Set ${FOLDER_SETTING} to a folder you can write to.`,
            partBytes > 0,
          );
        }

        received = await receive({
          response,
          part,
          append,
          startBytes: partBytes,
          total,
          hash,
          url,
          advice,
          accepted,
          createWriter,
          onProgress: options.onProgress,
          progressIntervalMs,
          armStall,
          disarmStall,
          isStalled: () => stalled,
          stallTimeoutMs,
          userSignal,
        });
      }
      // Verify: the whole length, the GGUF magic, the checksum. Only then does the file get its name.
      if (total !== undefined && received !== total) {
        throw new DownloadError(
          'network',
          `The connection closed after ${formatBytes(received)} of ${formatBytes(total)}. The part is kept; run the download again to resume it.`,
          true,
        );
      }
      const magic = await readMagic(part);
      if (magic.toString('latin1') !== GGUF_MAGIC) {
        await removeQuietly(part);
        await removeQuietly(sidecarFile);
        throw notGguf(url, magic, advice);
      }
      const sha256 = hash.digest('hex');
      if (sha256 !== expected) {
        await removeQuietly(part);
        await removeQuietly(sidecarFile);
        throw new DownloadError(
          'checksum',
          `The downloaded file is damaged or not the expected one: its SHA-256 is ${sha256}, expected ${expected}. It was deleted; run the download again, or correct ${SHA_SETTING} if it is wrong.`,
        );
      }
      // The whole header this time (a resumed download's start was not seen as it arrived).
      const problem = headerProblem(url, await readHeaderArchitecture(part), accepted, advice);
      if (problem) {
        await removeQuietly(part);
        await removeQuietly(sidecarFile);
        throw problem;
      }
      try {
        await fs.promises.rename(part, dest);
      } catch (err) {
        throw new DownloadError(
          'io',
          `The verified download could not be moved to ${dest} (${errorDetail(err)}). Check the folder's permissions and run the download again.`,
          true,
        );
      }
      await removeQuietly(sidecarFile);
      return { path: dest, sha256, bytes: received, resumed: append && partBytes > 0, alreadyPresent: false };
    }
  } finally {
    if (stallTimer) clearTimeout(stallTimer);
    userSignal?.removeEventListener('abort', onUserAbort);
  }
}

interface ReceiveArgs {
  response: Response;
  part: string;
  append: boolean;
  startBytes: number;
  total: number | undefined;
  hash: Hash;
  url: string;
  advice: string;
  accepted: readonly string[];
  createWriter: (file: string, flags: 'a' | 'w') => PartWriter;
  onProgress?: (progress: DownloadProgress) => void;
  progressIntervalMs: number;
  armStall: () => void;
  disarmStall: () => void;
  isStalled: () => boolean;
  stallTimeoutMs: number;
  userSignal: AbortSignal | undefined;
}

/** Streams the body into the part file, hashing as it goes; resolves the part's length. */
async function receive(args: ReceiveArgs): Promise<number> {
  const { response, hash, startBytes, total } = args;
  let received = startBytes;
  const started = Date.now();
  let lastReport = 0;
  const report = (force: boolean): void => {
    if (!args.onProgress) return;
    const now = Date.now();
    if (!force && now - lastReport < args.progressIntervalMs) return;
    lastReport = now;
    const seconds = Math.max(0.001, (now - started) / 1000);
    args.onProgress({ received, total, bytesPerSecond: (received - startBytes) / seconds });
  };
  report(true);
  if (!response.body) return received;

  let writer: PartWriter;
  try {
    writer = args.createWriter(args.part, args.append ? 'a' : 'w');
  } catch (err) {
    await response.body.cancel().catch(() => {});
    throw new DownloadError(
      'io',
      `Cannot write ${args.part} (${errorDetail(err)}). Set ${FOLDER_SETTING} to a folder you can write to.`,
      startBytes > 0,
    );
  }
  let writeError: unknown;
  const onError = (err: unknown): void => {
    writeError ??= err;
  };
  writer.once('error', onError);
  // The start of a fresh download is kept (up to HEAD_LIMIT) until its header says what it is:
  // another file than a SmallThinker GGUF stops at once instead of after gigabytes.
  let checkingHead = startBytes === 0;
  const headChunks: Buffer[] = [];
  let headBytes = 0;
  let nextParseAt = 4;
  const checkHead = (chunk: Uint8Array): void => {
    const take = Buffer.from(chunk.subarray(0, HEAD_LIMIT - headBytes));
    headChunks.push(take);
    headBytes += take.length;
    if (headBytes < nextParseAt && headBytes < HEAD_LIMIT) return;
    const head = headChunks.length === 1 ? headChunks[0] : Buffer.concat(headChunks);
    headChunks.splice(0, headChunks.length, head);
    if (head.subarray(0, 4).toString('latin1') !== GGUF_MAGIC) throw notGguf(args.url, head.subarray(0, 4), args.advice);
    const header = ggufArchitecture(head);
    const problem = headerProblem(args.url, header, args.accepted, args.advice);
    if (problem) throw problem;
    if (header.kind !== 'truncated' || headBytes >= HEAD_LIMIT) {
      checkingHead = false; // Known good, or too long to tell here: the finished file is checked again.
      headChunks.length = 0;
    }
    nextParseAt = headBytes * 2;
  };

  // One write at a time, each awaited: an error (ENOSPC) surfaces at the chunk that caused it.
  const write = (chunk: Uint8Array): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      let settled = false;
      const onErr = (err: unknown): void => done(err ?? new Error('write failed'));
      const done = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        writer.removeListener('error', onErr);
        if (err) reject(err);
        else resolve();
      };
      writer.once('error', onErr);
      writer.write(chunk, (err) => done(err ?? undefined));
    });

  let failure: unknown;
  args.armStall();
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      args.armStall();
      if (checkingHead) checkHead(chunk);
      if (writeError) throw writeError;
      try {
        await write(chunk);
      } catch (err) {
        writeError ??= err;
        throw err;
      }
      hash.update(chunk);
      received += chunk.length;
      report(false);
    }
    if (checkingHead && headBytes < 4) throw notGguf(args.url, Buffer.concat(headChunks), args.advice);
  } catch (err) {
    failure = err;
    await response.body.cancel().catch(() => {});
  } finally {
    args.disarmStall();
  }
  // Close the part (wait for 'close': the file is renamed next, and a resumed run reads its length).
  await new Promise<void>((resolve) => {
    if (writer.closed) {
      resolve();
      return;
    }
    const timer = setTimeout(resolve, 10_000);
    writer.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (failure) writer.destroy();
    else writer.end();
  });
  if (!failure && writeError) failure = writeError;
  report(true);
  if (!failure) return received;

  if (failure instanceof DownloadError) {
    if (failure.kind === 'notGguf' || failure.kind === 'wrongModel') {
      await removeQuietly(args.part);
      await removeQuietly(`${args.part}.json`);
    }
    throw failure;
  }
  const kept = (await fileSize(args.part)) ?? 0;
  if (args.userSignal?.aborted) throw cancelled(kept > 0);
  if (isEnospc(failure)) {
    throw new DownloadError(
      'diskFull',
      `The disk filled up after ${formatBytes(received)}${total ? ` of ${formatBytes(total)}` : ''}. The part downloaded so far is kept: free some space (or set ${FOLDER_SETTING} to another disk) and run the download again to resume it.`,
      kept > 0,
      { cause: failure },
    );
  }
  if (writeError !== undefined) {
    throw new DownloadError(
      'io',
      `Writing ${args.part} failed (${errorDetail(failure)}). Check the folder and run the download again.`,
      kept > 0,
      { cause: failure },
    );
  }
  if (args.isStalled()) {
    throw new DownloadError(
      'network',
      `No data arrived for ${Math.round(args.stallTimeoutMs / 1000)} s after ${formatBytes(received)}. The part is kept; run the download again to resume it.`,
      kept > 0,
    );
  }
  throw networkError(failure, args.url, kept > 0);
}

/** The file name a download from `url` gets: its last path segment, made safe (default `model.gguf`). */
export function fileNameFromUrl(url: string): string {
  let segment = '';
  try {
    segment = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
  } catch {
    segment = '';
  }
  const safe = segment
    .replace(/[\\/:*?"<>|\x00-\x1f]/g, '_')
    .replace(/^\.+/, '')
    .trim();
  return safe || 'model.gguf';
}

/**
 * general.architecture of a GGUF file, reading only as much of its start as needed (at most
 * HEADER_READ_LIMIT; beyond that it answers 'truncated'). A file that cannot be read is 'invalid'.
 */
export async function readHeaderArchitecture(file: string): Promise<ReturnType<typeof ggufArchitecture>> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    return { kind: 'invalid', reason: `it cannot be read: ${errorDetail(err)}` };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { kind: 'invalid', reason: 'it is not a regular file' };
    let length = Math.min(stat.size, 1024 * 1024);
    for (;;) {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, 0);
      const header = ggufArchitecture(buffer.subarray(0, bytesRead));
      if (header.kind === 'truncated' && bytesRead >= stat.size) return { kind: 'invalid', reason: 'it ends inside its header' };
      if (header.kind !== 'truncated' || bytesRead < length || length >= Math.min(stat.size, HEADER_READ_LIMIT)) return header;
      length = Math.min(stat.size, HEADER_READ_LIMIT, length * 4);
    }
  } finally {
    await handle.close();
  }
}

/** True when the file starts with the GGUF magic. */
export async function isGgufFile(file: string): Promise<boolean> {
  try {
    return (await readMagic(file)).toString('latin1') === GGUF_MAGIC;
  } catch {
    return false;
  }
}

// Tests of src/node/download.ts against a local HTTP server (127.0.0.1, random port) that serves a
// generated GGUF-like payload with Range/If-Range/ETag/X-Linked-Etag and a redirect, and counts
// the bytes it sends, and the URL policy (https only; http only to this machine; every redirect
// hop checked before it is fetched). Run: node --test out/test/unit/download.test.js
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';

import { defaultCatalogEntry } from '../../src/common/modelCatalog';
import {
  downloadFile,
  DownloadError,
  downloadUrlProblem,
  fileNameFromUrl,
  isDownloadCancelled,
  isGgufFile,
  isLoopbackHost,
  sha256FromEtag,
  sha256FromText,
  type DownloadOptions,
  type PartWriter,
  readHeaderArchitecture,
} from '../../src/node/download';
import { GgmlType, GgufValueType, kv, writeGguf } from '../support/gguf';

const SIZE = 4 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** A GGUF v3 header with only general.architecture (what the downloader reads), as written by hand. */
function ggufHeader(architecture = 'smallthinker'): Buffer {
  const key = Buffer.from('general.architecture');
  const value = Buffer.from(architecture);
  const header = Buffer.alloc(4 + 4 + 8 + 8 + 8 + key.length + 4 + 8 + value.length);
  let o = header.write('GGUF', 0, 'latin1');
  o = header.writeUInt32LE(3, o);
  o = header.writeBigUInt64LE(0n, o); // tensors
  o = header.writeBigUInt64LE(1n, o); // metadata entries
  o = header.writeBigUInt64LE(BigInt(key.length), o);
  o += key.copy(header, o);
  o = header.writeUInt32LE(8, o); // string
  o = header.writeBigUInt64LE(BigInt(value.length), o);
  value.copy(header, o);
  return header;
}

/** `size` bytes: a SmallThinker GGUF header, then random bytes. */
function ggufPayload(size = SIZE): Buffer {
  const payload = randomBytes(size);
  ggufHeader().copy(payload, 0, 0, Math.min(size, ggufHeader().length));
  return payload;
}

function sha(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

/** What the server does; tests change it between requests. */
interface Behaviour {
  payload: Buffer;
  /** The file's ETag (strong), sent on the file's responses. */
  etag: string;
  /** Whether the file's ETag is its sha256 (else the random `etag`). */
  etagIsSha: boolean;
  /** `/model.gguf` answers 302 to `/cdn/model.gguf` with this X-Linked-Etag (undefined: none). */
  linkedEtag?: string;
  /** Content of `/cdn/model.gguf.sha256` and `/model.gguf.sha256` (undefined: 404). */
  shaFile?: string;
  ignoreRange: boolean;
  /** Every file request answers this status. */
  failStatus?: number;
  /** Destroy the socket after sending this many body bytes. */
  cutAfter?: number;
  /** Content-Type of the file's responses (default none). */
  contentType?: string;
}

interface Served {
  path: string;
  range?: string;
  ifRange?: string;
  status: number;
  bytes: number;
}

class TestServer {
  readonly server: http.Server;
  behaviour!: Behaviour;
  served: Served[] = [];
  port = 0;

  constructor() {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** URL of the model (through the redirect). */
  get url(): string {
    return `${this.base}/model.gguf`;
  }

  bytesServed(): number {
    return this.served.reduce((sum, s) => sum + s.bytes, 0);
  }

  reset(behaviour: Partial<Behaviour> = {}): void {
    const payload = behaviour.payload ?? ggufPayload();
    this.behaviour = { payload, etag: `"v-${randomBytes(4).toString('hex')}"`, etagIsSha: false, ignoreRange: false, ...behaviour };
    this.served = [];
  }

  private fileEtag(): string {
    return this.behaviour.etagIsSha ? `"${sha(this.behaviour.payload)}"` : this.behaviour.etag;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const b = this.behaviour;
    const url = req.url ?? '/';
    const record: Served = {
      path: url,
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      status: 0,
      bytes: 0,
    };
    this.served.push(record);
    if (url.startsWith('/redirect?to=')) {
      // Redirects anywhere (the policy tests): /redirect?to=<encoded Location>.
      record.status = 302;
      res.writeHead(302, { location: decodeURIComponent(url.slice('/redirect?to='.length)) }).end();
      return;
    }
    if (url === '/model.gguf') {
      const headers: http.OutgoingHttpHeaders = { location: '/cdn/model.gguf' };
      if (b.linkedEtag !== undefined) headers['x-linked-etag'] = b.linkedEtag;
      record.status = 302;
      res.writeHead(302, headers).end();
      return;
    }
    if (url === '/gated/model.gguf') {
      // What Hugging Face did for gated files: a redirect to its sign-in page.
      record.status = 302;
      res.writeHead(302, { location: '/login?next=%2Fgated%2Fmodel.gguf' }).end();
      return;
    }
    if (url.startsWith('/login')) {
      record.status = 200;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!DOCTYPE html><html><body>Sign in</body></html>');
      return;
    }
    if (url.endsWith('.sha256')) {
      record.status = b.shaFile === undefined ? 404 : 200;
      res.writeHead(record.status, { 'content-type': 'text/plain' }).end(b.shaFile ?? 'not found');
      return;
    }
    if (url !== '/cdn/model.gguf' && url !== '/plain.gguf' && !url.includes('/resolve/main/')) {
      record.status = 404;
      res.writeHead(404).end();
      return;
    }
    if (b.failStatus) {
      record.status = b.failStatus;
      res.writeHead(b.failStatus, { 'content-type': 'text/plain' }).end('error page');
      return;
    }
    const total = b.payload.length;
    const etag = this.fileEtag();
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (range && !b.ignoreRange && (ifRange === undefined || ifRange === etag)) {
      start = Number(range[1]);
      if (start >= total) {
        record.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${total}` }).end();
        return;
      }
      status = 206;
    }
    const headers: http.OutgoingHttpHeaders = { etag, 'content-length': String(total - start), 'accept-ranges': 'bytes' };
    if (b.contentType) headers['content-type'] = b.contentType;
    if (status === 206) headers['content-range'] = `bytes ${start}-${total - 1}/${total}`;
    record.status = status;
    res.writeHead(status, headers);
    // Send in chunks, yielding between them, so a client can abort part-way.
    for (let offset = start; offset < total; offset += CHUNK) {
      if (res.destroyed) return;
      const end = Math.min(total, offset + CHUNK);
      if (b.cutAfter !== undefined && record.bytes + (end - offset) > b.cutAfter) {
        const last = b.cutAfter - record.bytes;
        res.write(b.payload.subarray(offset, offset + last));
        record.bytes += last;
        // Close the connection once what was written is flushed: the body ends short.
        res.socket?.end();
        return;
      }
      const more = res.write(b.payload.subarray(offset, end));
      record.bytes += end - offset;
      if (!more) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done).off('close', done);
            resolve();
          };
          res.on('drain', done).on('close', done);
        });
      } else await new Promise((r) => setImmediate(r));
    }
    res.end();
  }
}

const server = new TestServer();
let dir: string;

before(async () => {
  await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
  server.port = (server.server.address() as { port: number }).port;
});

after(async () => {
  server.server.closeAllConnections();
  await new Promise((r) => server.server.close(r));
});

beforeEach(async () => {
  dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'st-download-'));
});

afterEach(async () => {
  await fs.promises.rm(dir, { recursive: true, force: true });
});

function dest(): string {
  return path.join(dir, 'models', 'model.gguf');
}

function opts(extra: Partial<DownloadOptions> = {}): DownloadOptions {
  return { url: server.url, dest: dest(), minFreeBytesMargin: 0, progressIntervalMs: 0, ...extra };
}

async function exists(file: string): Promise<boolean> {
  return fs.promises.access(file).then(
    () => true,
    () => false,
  );
}

/** Starts a download and aborts it once `bytes` arrived; resolves the error it threw. */
async function abortAfter(bytes: number, extra: Partial<DownloadOptions> = {}): Promise<unknown> {
  const controller = new AbortController();
  try {
    await downloadFile(
      opts({
        signal: controller.signal,
        onProgress: (p) => {
          if (p.received >= bytes) controller.abort();
        },
        ...extra,
      }),
    );
  } catch (err) {
    return err;
  }
  assert.fail('the download should have been cancelled');
}

async function rejectsWith(promise: Promise<unknown>, kind: DownloadError['kind']): Promise<DownloadError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DownloadError, `expected a DownloadError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    return err;
  }
  assert.fail(`expected a ${kind} error`);
}

describe('checksum parsing', () => {
  test('etag values that are a sha256, and ones that are not', () => {
    const hex = 'ab'.repeat(32);
    assert.equal(sha256FromEtag(`"${hex}"`), hex);
    assert.equal(sha256FromEtag(`W/"${hex.toUpperCase()}"`), hex);
    assert.equal(sha256FromEtag('"d41d8cd98f00b204e9800998ecf8427e"'), undefined);
    assert.equal(sha256FromEtag(null), undefined);
    assert.equal(sha256FromText(`${hex}  model.gguf\n`), hex);
    assert.equal(sha256FromText('no hash here'), undefined);
  });
});

describe('file names and magic', () => {
  test("the file name comes from the URL's last segment, made safe", () => {
    assert.equal(
      fileNameFromUrl('https://huggingface.co/o/r/resolve/main/SmallThinker-4B-A0.6B-Instruct-Q4_0.gguf?download=true'),
      'SmallThinker-4B-A0.6B-Instruct-Q4_0.gguf',
    );
    assert.equal(fileNameFromUrl('http://h/dir/my%20model.gguf'), 'my model.gguf');
    assert.equal(fileNameFromUrl('http://h/a%2F..%2Fb.gguf'), 'a_.._b.gguf');
    assert.equal(fileNameFromUrl('http://h/'), 'model.gguf');
    assert.equal(fileNameFromUrl('not a url'), 'model.gguf');
  });

  test('isGgufFile reads the magic', async () => {
    const good = path.join(dir, 'good.gguf');
    const bad = path.join(dir, 'bad.gguf');
    await fs.promises.writeFile(good, ggufPayload(64));
    await fs.promises.writeFile(bad, 'GGML....');
    assert.equal(await isGgufFile(good), true);
    assert.equal(await isGgufFile(bad), false);
    assert.equal(await isGgufFile(path.join(dir, 'missing.gguf')), false);
  });

  test('isGgufFile refuses a FIFO, a directory and a device at once (choosing one must not hang)', async () => {
    const fifo = path.join(dir, 'pipe.gguf');
    fs.rmSync(fifo, { force: true });
    const made = spawnSync('mkfifo', [fifo]);
    assert.equal(made.status, 0, 'mkfifo');
    const within = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still waiting after 5 s')), 5000).unref())]);
    assert.equal(await within(isGgufFile(fifo)), false);
    assert.equal(await within(isGgufFile(dir)), false);
    assert.equal(await within(isGgufFile('/dev/zero')), false);
    fs.rmSync(fifo, { force: true });
  });
});

describe('downloadFile', () => {
  test('downloads through the redirect and verifies the x-linked-etag checksum', async () => {
    server.reset();
    server.behaviour.linkedEtag = `"${sha(server.behaviour.payload)}"`;
    const progress: number[] = [];
    const result = await downloadFile(opts({ onProgress: (p) => progress.push(p.received) }));
    assert.equal(result.path, dest());
    assert.equal(result.sha256, sha(server.behaviour.payload));
    assert.equal(result.bytes, SIZE);
    assert.equal(result.resumed, false);
    assert.equal(result.alreadyPresent, false);
    assert.deepEqual(await fs.promises.readFile(dest()), server.behaviour.payload);
    assert.equal(await exists(`${dest()}.part`), false);
    assert.equal(await exists(`${dest()}.part.json`), false);
    assert.equal(progress.at(-1), SIZE);
    assert.ok(progress.length > 2, 'progress is reported along the way');
  });

  test('a wrong x-linked-etag on the redirect fails the download (the header is what is checked)', async () => {
    server.reset({ linkedEtag: `"${'0'.repeat(64)}"` });
    const err = await rejectsWith(downloadFile(opts()), 'checksum');
    assert.match(err.message, /smallthinker\.model\.sha256/);
    assert.equal(await exists(dest()), false);
    assert.equal(await exists(`${dest()}.part`), false);
  });

  test('uses an ETag that is a sha256 when no other checksum is given', async () => {
    server.reset({ etagIsSha: true });
    const result = await downloadFile(opts());
    assert.equal(result.sha256, sha(server.behaviour.payload));
  });

  test('an expected sha256 that does not match: error, and neither the file nor the part remains', async () => {
    server.reset({ etagIsSha: true });
    const err = await rejectsWith(downloadFile(opts({ expectedSha256: 'a'.repeat(64) })), 'checksum');
    assert.match(err.message, /expected a{64}/);
    assert.equal(await exists(dest()), false);
    assert.equal(await exists(`${dest()}.part`), false);
  });

  test('no checksum anywhere: refused before writing anything, naming the setting', async () => {
    server.reset();
    const err = await rejectsWith(downloadFile(opts()), 'noChecksum');
    assert.match(err.message, /smallthinker\.model\.sha256/);
    assert.equal(await exists(dest()), false);
    assert.equal(await exists(`${dest()}.part`), false);
    assert.ok(
      server.served.some((s) => s.path.endsWith('.sha256')),
      'the .sha256 file was looked for',
    );
  });

  test('a <url>.sha256 file supplies the checksum', async () => {
    server.reset();
    server.behaviour.shaFile = `${sha(server.behaviour.payload)}  model.gguf\n`;
    const result = await downloadFile(opts());
    assert.equal(result.sha256, sha(server.behaviour.payload));
    server.reset();
    server.behaviour.shaFile = `${'1'.repeat(64)}  model.gguf\n`;
    await fs.promises.rm(dest());
    await rejectsWith(downloadFile(opts()), 'checksum');
  });

  test('an expected sha256 from the setting is enough on its own', async () => {
    server.reset();
    const result = await downloadFile(opts({ expectedSha256: sha(server.behaviour.payload).toUpperCase() }));
    assert.equal(result.bytes, SIZE);
  });

  test('abort: a cancellation error, the .part and its sidecar stay; the next run fetches only the rest', async () => {
    server.reset({ etagIsSha: true });
    const err = await abortAfter(SIZE / 4);
    assert.ok(isDownloadCancelled(err), String(err));
    assert.equal((err as DownloadError).partKept, true);
    const partSize = (await fs.promises.stat(`${dest()}.part`)).size;
    assert.ok(partSize >= SIZE / 4 && partSize < SIZE, `part ${partSize}`);
    assert.ok(await exists(`${dest()}.part.json`));
    assert.equal(await exists(dest()), false);

    server.served = [];
    const result = await downloadFile(opts());
    assert.equal(result.resumed, true);
    assert.equal(server.bytesServed(), SIZE - partSize, 'only the remainder was sent');
    const fileRequest = server.served.find((s) => s.path === '/cdn/model.gguf');
    assert.equal(fileRequest?.range, `bytes=${partSize}-`, 'the Range survived the redirect');
    assert.equal(fileRequest?.ifRange, `"${sha(server.behaviour.payload)}"`);
    assert.equal(fileRequest?.status, 206);
    assert.equal(result.sha256, sha(server.behaviour.payload));
    assert.deepEqual(await fs.promises.readFile(dest()), server.behaviour.payload);
  });

  test('a server that ignores Range (200): the download starts again from byte 0', async () => {
    server.reset({ etagIsSha: true });
    await abortAfter(SIZE / 2);
    assert.ok(await exists(`${dest()}.part`));
    server.served = [];
    server.behaviour.ignoreRange = true;
    const result = await downloadFile(opts());
    assert.equal(result.resumed, false);
    assert.equal(server.bytesServed(), SIZE);
    assert.deepEqual(await fs.promises.readFile(dest()), server.behaviour.payload);
  });

  test('the file changed on the server (If-Range fails): the new file is downloaded whole', async () => {
    server.reset({ etagIsSha: true });
    await abortAfter(SIZE / 2);
    const next = ggufPayload();
    server.reset({ payload: next, etagIsSha: true });
    const result = await downloadFile(opts());
    assert.equal(result.resumed, false);
    assert.equal(result.sha256, sha(next));
    assert.deepEqual(await fs.promises.readFile(dest()), next);
  });

  test('416 for a part that is already complete: verified without fetching a byte', async () => {
    server.reset({ etagIsSha: true });
    await fs.promises.mkdir(path.dirname(dest()), { recursive: true });
    await fs.promises.writeFile(`${dest()}.part`, server.behaviour.payload);
    await fs.promises.writeFile(
      `${dest()}.part.json`,
      JSON.stringify({ url: server.url, etag: `"${sha(server.behaviour.payload)}"`, total: SIZE, sha256: sha(server.behaviour.payload) }),
    );
    const result = await downloadFile(opts());
    assert.equal(server.served.find((s) => s.path === '/cdn/model.gguf')?.status, 416);
    assert.equal(server.bytesServed(), 0);
    assert.equal(result.resumed, true);
    assert.equal(result.sha256, sha(server.behaviour.payload));
    assert.ok(await exists(dest()));
  });

  test('a part from another URL is not resumed', async () => {
    server.reset({ etagIsSha: true });
    await fs.promises.mkdir(path.dirname(dest()), { recursive: true });
    await fs.promises.writeFile(`${dest()}.part`, Buffer.from('GGUFjunk'));
    await fs.promises.writeFile(`${dest()}.part.json`, JSON.stringify({ url: 'http://elsewhere.invalid/x.gguf', total: SIZE }));
    const result = await downloadFile(opts());
    assert.equal(result.resumed, false);
    assert.equal(server.served.find((s) => s.path === '/cdn/model.gguf')?.range, undefined);
    assert.deepEqual(await fs.promises.readFile(dest()), server.behaviour.payload);
  });

  test('an existing destination that verifies is kept and nothing is downloaded', async () => {
    server.reset({ etagIsSha: true });
    await fs.promises.mkdir(path.dirname(dest()), { recursive: true });
    await fs.promises.writeFile(dest(), server.behaviour.payload);
    const result = await downloadFile(opts());
    assert.equal(result.alreadyPresent, true);
    assert.equal(await exists(`${dest()}.part`), false, 'nothing was written');
    // One that does not verify is replaced.
    await fs.promises.writeFile(dest(), Buffer.from('GGUF old'));
    const again = await downloadFile(opts());
    assert.equal(again.alreadyPresent, false);
    assert.deepEqual(await fs.promises.readFile(dest()), server.behaviour.payload);
  });

  test('too little free disk space: error before any byte is written, saying how much is needed and free', async () => {
    server.reset({ etagIsSha: true });
    const err = await rejectsWith(
      downloadFile(opts({ minFreeBytesMargin: 1024 * 1024, statfs: async () => ({ bavail: 1024, bsize: 1024 }) })),
      'diskSpace',
    );
    assert.match(err.message, /needs 5\.0 MB/);
    assert.match(err.message, /1\.0 MB is free/);
    assert.equal(await exists(`${dest()}.part`), false);
    // Enough space: the same call goes through.
    const ok = await downloadFile(opts({ minFreeBytesMargin: 1024 * 1024, statfs: async () => ({ bavail: 6n * 1024n, bsize: 1024n }) }));
    assert.equal(ok.bytes, SIZE);
  });

  test('a full disk mid-download (ENOSPC): clear error, the part stays, and the next run resumes', async () => {
    server.reset({ etagIsSha: true });
    const limit = 1024 * 1024 + 123;
    const fullDisk = (file: string, flags: 'a' | 'w'): PartWriter => {
      const fd = fs.openSync(file, flags);
      let written = 0;
      return new Writable({
        write(chunk: Buffer, _enc, callback) {
          const room = limit - written;
          const n = Math.min(room, chunk.length);
          fs.writeSync(fd, chunk, 0, n);
          written += n;
          if (n < chunk.length) callback(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
          else callback();
        },
        destroy(err, callback) {
          fs.closeSync(fd);
          callback(err);
        },
        final(callback) {
          callback();
        },
      }) as unknown as PartWriter;
    };
    const err = await rejectsWith(downloadFile(opts({ createWriteStream: fullDisk })), 'diskFull');
    assert.match(err.message, /free some space/i);
    assert.equal(err.partKept, true);
    assert.equal((await fs.promises.stat(`${dest()}.part`)).size, limit);
    server.served = [];
    const result = await downloadFile(opts());
    assert.equal(result.resumed, true);
    assert.equal(server.bytesServed(), SIZE - limit);
    assert.deepEqual(await fs.promises.readFile(dest()), server.behaviour.payload);
  });

  test('the connection drops mid-way: a network error, the part stays and resumes', async () => {
    server.reset({ etagIsSha: true, cutAfter: SIZE / 2 });
    const err = await rejectsWith(downloadFile(opts()), 'network');
    assert.match(err.message, /resume/);
    const partSize = (await fs.promises.stat(`${dest()}.part`)).size;
    // Data still queued in the client when the stream errored is dropped; the part holds what was written.
    assert.ok(partSize > SIZE / 4 && partSize <= SIZE / 2, `part ${partSize}`);
    server.behaviour.cutAfter = undefined;
    server.served = [];
    const result = await downloadFile(opts());
    assert.equal(result.resumed, true);
    assert.equal(server.bytesServed(), SIZE - partSize);
    assert.equal(result.sha256, sha(server.behaviour.payload));
  });

  test('a file that is not GGUF is rejected and removed', async () => {
    const html = Buffer.from('<!DOCTYPE html><html>sign in</html>'.padEnd(200_000, ' '));
    server.reset({ payload: html, etagIsSha: true });
    const err = await rejectsWith(downloadFile(opts()), 'notGguf');
    assert.match(err.message, /not a GGUF model/);
    assert.match(err.message, /"<!DO"/);
    assert.equal(await exists(dest()), false);
    assert.equal(await exists(`${dest()}.part`), false);
  });

  test('HTTP 404 and 500 give messages that say what to do', async () => {
    server.reset({ etagIsSha: true, failStatus: 404 });
    const notFound = await rejectsWith(downloadFile(opts()), 'http');
    assert.match(notFound.message, /HTTP 404/);
    assert.match(notFound.message, /smallthinker\.model\.downloadUrl/);
    server.reset({ etagIsSha: true, failStatus: 500 });
    const serverError = await rejectsWith(downloadFile(opts()), 'http');
    assert.match(serverError.message, /HTTP 500/);
    assert.match(serverError.message, /try again later/);
    assert.equal(await exists(dest()), false);
  });

  test('a refused connection is a network error; an already-aborted signal cancels at once', async () => {
    server.reset({ etagIsSha: true });
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const err = await rejectsWith(downloadFile(opts({ url: `http://127.0.0.1:${port}/model.gguf` })), 'network');
    assert.match(err.message, /connection/i);
    const controller = new AbortController();
    controller.abort();
    await rejectsWith(downloadFile(opts({ signal: controller.signal })), 'cancelled');
  });
});

/**
 * A real GGUF file (test/support/gguf.ts) with the given general.architecture (none: undefined)
 * after a tokenizer-like string array, and a 4 MiB tensor, as bytes.
 */
function ggufFile(architecture: string | undefined): Buffer {
  const file = path.join(dir, `fixture-${architecture ?? 'none'}.gguf`);
  writeGguf(file, {
    kv: [
      kv.str('general.name', 'fixture'),
      kv.arr('tokenizer.ggml.tokens', GgufValueType.STRING, ['a', 'bc', 'def']),
      ...(architecture === undefined ? [] : [kv.str('general.architecture', architecture)]),
    ],
    tensors: [{ name: 'token_embd.weight', ne: [1024, 1024], type: GgmlType.F32, data: new Uint8Array(4 * 1024 * 1024) }],
  });
  const bytes = fs.readFileSync(file);
  fs.rmSync(file);
  return bytes;
}

/** Nothing of the download is left in the models folder: no file, no part, no sidecar. */
async function assertNothingLeft(file = dest()): Promise<void> {
  assert.equal(await exists(file), false, 'no file');
  assert.equal(await exists(`${file}.part`), false, 'no .part');
  assert.equal(await exists(`${file}.part.json`), false, 'no .part.json');
}

/** One sentence: no ". X" inside, ends with a period. */
function assertOneSentence(message: string): void {
  assert.equal(message.match(/[.!?] [A-Z]/g), null, message);
  assert.ok(/[.…]$/.test(message), message);
}

/** An earlier run's part of this URL, as a resumable download would have left it. */
async function leaveAPart(url = server.url): Promise<void> {
  await fs.promises.mkdir(path.dirname(dest()), { recursive: true });
  await fs.promises.writeFile(`${dest()}.part`, server.behaviour.payload.subarray(0, 100_000));
  await fs.promises.writeFile(`${dest()}.part.json`, JSON.stringify({ url, etag: server.behaviour.etag, total: SIZE }));
}

describe('failures that leave nothing to load later', () => {
  test('404: one sentence naming the URL and what to do; an earlier part of it is removed', async () => {
    server.reset({ etagIsSha: true, failStatus: 404 });
    await leaveAPart();
    const err = await rejectsWith(downloadFile(opts()), 'http');
    assert.match(err.message, /^There is no file at http:\/\/127\.0\.0\.1:\d+\/model\.gguf .*HTTP 404 Not Found/);
    assert.match(
      err.message,
      /check the smallthinker\.model\.downloadUrl setting or pick another model with the SmallThinker: Download Model… command\.$/,
    );
    assertOneSentence(err.message);
    assert.equal(err.partKept, false);
    await assertNothingLeft();
    // The advice can be the caller's (a catalogue entry has no setting to check).
    const other = await rejectsWith(downloadFile(opts({ urlAdvice: 'pick another model' })), 'http');
    assert.match(other.message, /; pick another model\.$/);
  });

  test('a redirect to a sign-in page (a gated file) is not followed: an auth error, nothing kept', async () => {
    server.reset({ etagIsSha: true });
    const url = `${server.base}/gated/model.gguf`;
    await leaveAPart(url);
    const err = await rejectsWith(downloadFile(opts({ url })), 'auth');
    assert.match(err.message, /redirects to a sign-in page \(http:\/\/127\.0\.0\.1:\d+\/login\): the model is gated or private/);
    assert.match(err.message, /Choose Model File/);
    assertOneSentence(err.message);
    assert.equal(
      server.served.some((s) => s.path.startsWith('/login')),
      false,
      'the sign-in page was not fetched',
    );
    await assertNothingLeft();
  });

  for (const status of [401, 403]) {
    test(`HTTP ${status}: an auth error saying the file is gated or private, and an earlier part is removed`, async () => {
      server.reset({ etagIsSha: true, failStatus: status });
      await leaveAPart();
      const err = await rejectsWith(downloadFile(opts()), 'auth');
      assert.match(err.message, new RegExp(`HTTP ${status}`));
      assert.match(err.message, /gated or private/);
      assert.match(err.message, /Choose Model File \(GGUF\)…, or check the smallthinker\.model\.downloadUrl setting/);
      assertOneSentence(err.message);
      await assertNothingLeft();
    });
  }

  test('a web page (text/html) instead of a GGUF: refused before a byte is written', async () => {
    const page = Buffer.from('<!DOCTYPE html><html><body>Not here</body></html>');
    server.reset({ payload: page, etagIsSha: true, contentType: 'text/html; charset=utf-8' });
    let written = 0;
    const err = await rejectsWith(
      downloadFile(
        opts({
          createWriteStream: (file, flags) => {
            written += 1;
            return fs.createWriteStream(file, { flags }) as unknown as PartWriter;
          },
        }),
      ),
      'notGguf',
    );
    assert.match(err.message, /answered with a web page \(text\/html\) instead of a GGUF model file/);
    assertOneSentence(err.message);
    assert.equal(written, 0, 'no part file was opened');
    await assertNothingLeft();
  });

  test('an HTML body without the content type is caught by its first bytes, in one sentence', async () => {
    server.reset({ payload: Buffer.from('<html>'.padEnd(10_000, ' ')), etagIsSha: true });
    const err = await rejectsWith(downloadFile(opts()), 'notGguf');
    assert.match(err.message, /it starts with "<htm", not "GGUF"/);
    assertOneSentence(err.message);
    await assertNothingLeft();
  });

  test('a GGUF of another architecture stops as soon as its header arrives, and nothing is kept', async () => {
    const llama = ggufFile('llama');
    server.reset({ payload: llama, etagIsSha: true });
    let written = 0;
    const counting = (file: string, flags: 'a' | 'w'): PartWriter => {
      const stream = fs.createWriteStream(file, { flags });
      const write = stream.write.bind(stream) as (chunk: Uint8Array, cb: (err?: Error | null) => void) => boolean;
      return Object.assign(stream, {
        write: (chunk: Uint8Array, cb: (err?: Error | null) => void) => {
          written += chunk.length;
          return write(chunk, cb);
        },
      }) as unknown as PartWriter;
    };
    const err = await rejectsWith(downloadFile(opts({ createWriteStream: counting })), 'wrongModel');
    assert.match(err.message, /is a model of the "llama" architecture, not SmallThinker \(general\.architecture "smallthinker"\)/);
    assert.match(err.message, /this engine cannot run it and it was not kept; check the smallthinker\.model\.downloadUrl setting/);
    assertOneSentence(err.message);
    assert.ok(written < 256 * 1024, `it stopped at the header: ${written} of ${llama.length} bytes were written`);
    await assertNothingLeft();

    server.reset({ payload: ggufFile(undefined), etagIsSha: true });
    const none = await rejectsWith(downloadFile(opts()), 'wrongModel');
    assert.match(none.message, /a GGUF file that names no architecture/);
    await assertNothingLeft();
  });

  test('a resumed part of another architecture is caught before the file gets its name', async () => {
    const llama = ggufFile('llama');
    server.reset({ payload: llama, etagIsSha: true });
    const hash = sha(llama);
    await fs.promises.mkdir(path.dirname(dest()), { recursive: true });
    await fs.promises.writeFile(`${dest()}.part`, llama.subarray(0, 1_000_000));
    await fs.promises.writeFile(
      `${dest()}.part.json`,
      JSON.stringify({ url: server.url, etag: `"${hash}"`, total: llama.length, sha256: hash }),
    );
    const err = await rejectsWith(downloadFile(opts()), 'wrongModel');
    assert.equal(server.served.find((s) => s.path === '/cdn/model.gguf')?.status, 206, 'it was resumed');
    assert.match(err.message, /"llama" architecture/);
    await assertNothingLeft();
  });

  test("the catalogue's default file name downloads and verifies", async () => {
    const entry = defaultCatalogEntry();
    const model = ggufFile('smallthinker');
    server.reset({ payload: model, etagIsSha: true, contentType: 'application/octet-stream' });
    const url = `${server.base}/${entry.repo}/resolve/main/${entry.file}`;
    const target = path.join(dir, 'models', fileNameFromUrl(url));
    assert.equal(path.basename(target), 'SmallThinker-4B-A0.6B-Instruct.Q4_0.gguf');
    const result = await downloadFile(opts({ url, dest: target }));
    assert.equal(result.path, target);
    assert.equal(result.bytes, model.length);
    assert.deepEqual(await fs.promises.readFile(target), model);
    assert.deepEqual(await readHeaderArchitecture(target), { kind: 'found', architecture: 'smallthinker' });
    assert.equal(await exists(`${target}.part`), false);
    assert.equal(await exists(`${target}.part.json`), false);
  });
});

describe('URL policy', () => {
  test('https anywhere; http only to this machine and never after https; no other scheme', () => {
    assert.equal(downloadUrlProblem('https://huggingface.co/o/r/resolve/main/m.gguf'), undefined);
    for (const ok of [
      'http://127.0.0.1:8080/m.gguf',
      'http://127.9.8.7/m.gguf',
      'http://localhost/m.gguf',
      'http://LOCALHOST./m.gguf',
      'http://[::1]:9/m.gguf',
    ]) {
      assert.equal(downloadUrlProblem(ok), undefined, ok);
    }
    assert.equal(downloadUrlProblem('http://127.0.0.1/b.gguf', 'http://localhost/a.gguf'), undefined);
    assert.equal(downloadUrlProblem('https://cdn.example/b.gguf', 'http://127.0.0.1/a.gguf'), undefined);
    assert.ok(
      isLoopbackHost('127.0.0.1') && isLoopbackHost('[::1]') && !isLoopbackHost('128.0.0.1') && !isLoopbackHost('localhost.example.com'),
    );

    const refused: [string, string | undefined, RegExp][] = [
      ['http://example.com/m.gguf', undefined, /plain http is allowed only to this machine/],
      ['http://10.0.0.1/m.gguf', undefined, /plain http/],
      ['http://127.0.0.1.example.com/m.gguf', undefined, /plain http/],
      ['file:///etc/passwd', undefined, /file: URLs are never downloaded, only https/],
      ['ftp://example.com/m.gguf', undefined, /ftp: URLs are never downloaded/],
      ['data:application/octet-stream;base64,R0dVRg==', undefined, /data: URLs are never downloaded/],
      [
        'data:application/octet-stream;base64,R0dVRg==',
        'https://huggingface.co/m.gguf',
        /redirects to data:.*data: URLs are never downloaded/,
      ],
      ['http://example.com/m.gguf', 'https://huggingface.co/m.gguf', /from https down to plain http/],
      // Even to this machine: an https server must not be able to send the download to a local port.
      [
        'http://127.0.0.1:9/m.gguf',
        'https://huggingface.co/m.gguf',
        /redirects to http:\/\/127\.0\.0\.1:9\/m\.gguf and it goes from https down to plain http/,
      ],
      ['javascript:alert(1)', 'https://huggingface.co/m.gguf', /javascript: URLs are never downloaded/],
    ];
    for (const [url, from, pattern] of refused) {
      const problem = downloadUrlProblem(url, from);
      assert.ok(problem, `${url} from ${from} should be refused`);
      assert.match(problem, pattern);
      // One sentence.
      assert.equal(problem.match(/[.;] [A-Z]/g), null, problem);
      assert.ok(problem.endsWith('.'), problem);
    }
    // A data: URL is not echoed whole.
    const long = `data:application/octet-stream;base64,${'A'.repeat(10_000)}`;
    assert.ok(downloadUrlProblem(long)!.length < 300);
  });

  /** fetch that records every URL it is asked for and passes loopback ones to the real fetch. */
  function recordingFetch(): { fetchImpl: typeof fetch; urls: string[] } {
    const urls: string[] = [];
    const fetchImpl = ((input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      urls.push(url);
      return fetch(input, init);
    }) as typeof fetch;
    return { fetchImpl, urls };
  }

  test('the initial URL: file:, ftp:, data: and non-local http are refused before any request', async () => {
    server.reset({ etagIsSha: true });
    for (const url of [
      'file:///etc/passwd',
      'ftp://127.0.0.1/model.gguf',
      'data:application/octet-stream;base64,R0dVRg==',
      'http://192.0.2.1/model.gguf',
    ]) {
      const { fetchImpl, urls } = recordingFetch();
      const err = await rejectsWith(downloadFile(opts({ url, fetchImpl })), 'url');
      assert.match(err.message, /smallthinker\.model\.downloadUrl/);
      assert.deepEqual(urls, [], `nothing is fetched for ${url}`);
    }
    assert.equal(await exists(dest()), false);
    assert.equal(await exists(`${dest()}.part`), false);
  });

  test('redirects to data:, file:, ftp: or a non-local http URL are refused without following them', async () => {
    server.reset({ etagIsSha: true });
    const targets: [string, RegExp][] = [
      ['data:application/octet-stream;base64,R0dVRgAAAAA=', /data: URLs are never downloaded/],
      ['file:///etc/passwd', /file: URLs are never downloaded/],
      ['ftp://127.0.0.1/model.gguf', /ftp: URLs are never downloaded/],
      // TEST-NET-1: a connection attempt would hang, so the test also shows none is made.
      ['http://192.0.2.1/model.gguf', /plain http is allowed only to this machine/],
    ];
    for (const [target, pattern] of targets) {
      const { fetchImpl, urls } = recordingFetch();
      const start = `${server.base}/redirect?to=${encodeURIComponent(target)}`;
      const err = await rejectsWith(downloadFile(opts({ url: start, fetchImpl, stallTimeoutMs: 5000 })), 'url');
      assert.match(err.message, pattern);
      assert.match(err.message, /^The download was refused because http:\/\/127\.0\.0\.1:\d+\/redirect redirects to /);
      assert.deepEqual(urls, [start], `only the first hop was fetched for ${target}`);
      assert.equal(await exists(`${dest()}.part`), false);
    }
    // A redirect between local http URLs is still followed.
    const result = await downloadFile(opts({ url: `${server.base}/redirect?to=${encodeURIComponent(server.url)}` }));
    assert.equal(result.bytes, SIZE);
  });

  test('an https server redirecting to http (even on this machine) is refused before the http request', async () => {
    server.reset({ etagIsSha: true });
    const urls: string[] = [];
    // A stand-in for an https server (no TLS in tests): it answers every https URL with a redirect to our http server.
    const fetchImpl = ((input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      urls.push(url);
      if (url.startsWith('https://')) return Promise.resolve(new Response(null, { status: 302, headers: { location: server.url } }));
      return fetch(input, init);
    }) as typeof fetch;
    const err = await rejectsWith(downloadFile(opts({ url: 'https://models.example/model.gguf', fetchImpl })), 'url');
    assert.equal(
      err.message,
      `The download was refused because https://models.example/model.gguf redirects to ${server.url} and it goes from https down to plain http.`,
    );
    assert.deepEqual(urls, ['https://models.example/model.gguf']);
    assert.equal(server.served.length, 0, 'the http server was never contacted');
  });
});

// The engine process around the server: run by main.ts (dist/engineHost.js) and by `moe-engine
// serve --stdio`. stdout carries JSON-RPC frames only: console output and stray stdout writes go to
// stderr. The process ends on `exit`, when stdin closes, or when its parent process is gone
// (its pid from --parent-pid or $MOE_ENGINE_PARENT_PID, checked every second). On the way out it
// stops the native work in flight first: process.exit() joins libuv's worker threads, so it would
// wait for a running prefill to finish.
import { Writable } from 'node:stream';

import { PARENT_PID_ENV } from '../common/protocol';
import { serveStreams, type EngineServer } from './server';

const PARENT_POLL_MS = 1000;
/** How long the process waits, on its way out, for the native work it cancelled to stop; then it kills itself. */
const EXIT_GRACE_MS = 3000;

export interface EngineHostOptions {
  /** Exit when this process is gone (default: --parent-pid N in argv, or $MOE_ENGINE_PARENT_PID). */
  parentPid?: number;
}

function log(line: string): void {
  process.stderr.write(line.endsWith('\n') ? line : line + '\n');
}

function parentPidFromEnvironment(argv: readonly string[]): number | undefined {
  const i = argv.indexOf('--parent-pid');
  const raw = i >= 0 ? argv[i + 1] : process.env[PARENT_PID_ENV];
  const pid = Number(raw);
  return raw !== undefined && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Serves the protocol on stdin/stdout until the process should end; resolves with the exit
 * code (0 after shutdown + exit, 1 otherwise). The caller exits the process with it.
 */
export function runEngineHost(options: EngineHostOptions = {}): Promise<number> {
  // Protocol frames go through the original stdout write; everything else that writes to stdout
  // (console.log, a library) lands on stderr instead of corrupting the stream.
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  const protocolOut = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      stdoutWrite(chunk, (err) => callback(err ?? null));
    },
  });
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    console[method] = (...args: unknown[]) => log(args.map((a) => (typeof a === 'string' ? a : String(a))).join(' '));
  }
  process.on('unhandledRejection', (reason) =>
    log(`engine: unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`),
  );

  return new Promise<number>((resolve) => {
    let done = false;
    // Assigned once below, but finish() may run before that (prefer-const would move it there).
    // eslint-disable-next-line prefer-const
    let server: EngineServer | undefined;
    const finish = (code: number, why: string): void => {
      if (done) return;
      done = true;
      if (why) log(`engine: ${why}; exiting.`);
      // process.exit() joins libuv's worker threads, so it would wait for the native operation in
      // flight (a prefill of thousands of tokens can take minutes). close() cancels it (it stops
      // at its next batch) and resolves once no native work runs; past the grace period, kill
      // ourselves. After `shutdown`, close() returns the promise of that shutdown, still pending
      // while a native call is stuck (a model load, one long batch): `exit` then waits for it
      // under the same grace period instead of calling process.exit() at once and hanging in it.
      const grace = setTimeout(() => {
        log(`engine: the native work in flight did not stop within ${EXIT_GRACE_MS / 1000} s; killing the process.`);
        process.kill(process.pid, 'SIGKILL');
      }, EXIT_GRACE_MS);
      void Promise.resolve(server?.close())
        .catch(() => null)
        .then(() => {
          clearTimeout(grace);
          resolve(code);
        });
    };
    process.on('uncaughtException', (err) => {
      log(`engine: uncaught exception: ${err.stack ?? err.message}`);
      finish(1, 'an unexpected error left the engine in an unknown state');
    });
    process.stdout.on('error', (err: NodeJS.ErrnoException) => finish(1, `stdout failed (${err.code ?? err.message})`));
    // Logging is best effort. Without a listener, a write to a stderr pipe whose reader is gone (a
    // dead parent) raises EPIPE as an uncaught exception, whose handler logs again: an endless loop
    // that starves the promise that would exit the process.
    process.stderr.on('error', () => {});

    const served = serveStreams(process.stdin, protocolOut, { log, onExit: (code) => finish(code, '') });
    server = served.server;
    served.connection.onClose(() => finish(1, 'stdin closed'));

    const parentPid = options.parentPid ?? parentPidFromEnvironment(process.argv);
    if (parentPid !== undefined) {
      const timer = setInterval(() => {
        if (!isAlive(parentPid)) finish(1, `the parent process ${parentPid} is gone`);
      }, PARENT_POLL_MS);
      timer.unref();
    }
  });
}

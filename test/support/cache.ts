// The fixture cache outside the repository, and a cross-process "create once" helper: a lock
// file (O_EXCL, holding the owner's pid; stale locks of dead processes are taken over) guards
// generation, and the producer writes under a temporary name that is renamed into place.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** $MOE_FIXTURE_DIR, else $XDG_CACHE_HOME (or ~/.cache) + /smallthinker-code/fixtures. */
export function fixtureCacheDir(): string {
  const explicit = process.env.MOE_FIXTURE_DIR;
  if (explicit && explicit.length > 0) return path.resolve(explicit);
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && xdg.length > 0 ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'smallthinker-code', 'fixtures');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface EnsureFileOptions {
  /** give up waiting for another process's lock after this long (default 30 min) */
  timeoutMs?: number;
  /** called when this process has to wait for another one */
  onWait?: (lockPath: string, ownerPid: number) => void;
}

/**
 * Return `target` once it exists. If it is missing, take `${target}.lock` and run `create`
 * (which must produce `target` atomically, e.g. temp file + rename); other processes asking
 * for the same file wait for it meanwhile.
 */
export function ensureFile(target: string, create: () => void | Promise<void>, opts: EnsureFileOptions = {}): Promise<string> {
  // one generation per target per process; other processes are handled by the lock file
  const pending = inProcess.get(target);
  if (pending) return pending;
  const p = ensureFileLocked(target, create, opts).finally(() => inProcess.delete(target));
  inProcess.set(target, p);
  return p;
}

const inProcess = new Map<string, Promise<string>>();

async function ensureFileLocked(target: string, create: () => void | Promise<void>, opts: EnsureFileOptions): Promise<string> {
  const lockPath = `${target}.lock`;
  const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  let warned = false;
  for (;;) {
    if (fs.existsSync(target)) return target;
    let fd: number | undefined;
    try {
      fd = fs.openSync(lockPath, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (fd !== undefined) {
      try {
        fs.writeSync(fd, String(process.pid));
        fs.closeSync(fd);
        fd = undefined;
        if (!fs.existsSync(target)) await create();
        if (!fs.existsSync(target)) throw new Error(`fixture producer did not create ${target}`);
        return target;
      } finally {
        if (fd !== undefined) fs.closeSync(fd);
        try {
          fs.unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      }
    }
    // someone else holds the lock: wait for the file, or take over a stale lock
    let owner = NaN;
    try {
      owner = parseInt(fs.readFileSync(lockPath, 'utf8'), 10);
    } catch {
      continue; // lock vanished between our open and read: retry at once
    }
    if (Number.isNaN(owner)) {
      // the owner has created the file but not yet written its pid; give it a moment
      const st = statOrNull(lockPath);
      if (st && Date.now() - st.mtimeMs > 10_000) tryUnlink(lockPath);
    } else if (!pidAlive(owner) || owner === process.pid) {
      tryUnlink(lockPath); // stale: its owner died (or is us, from an earlier crash in-process)
      continue;
    }
    if (!warned) {
      opts.onWait?.(lockPath, owner);
      warned = true;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${target} (lock ${lockPath} held by pid ${owner})`);
    await sleep(250);
  }
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

function tryUnlink(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch {
    /* someone else removed it */
  }
}

/** Remove temporary files left by crashed writers (older than maxAgeMs) in the cache dir. */
export function cleanStaleTemporaries(dir = fixtureCacheDir(), maxAgeMs = 60 * 60_000): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /\.tmp-(\d+)-[a-z0-9]+$/.exec(name);
    if (!m) continue;
    const p = path.join(dir, name);
    const st = statOrNull(p);
    if (st && Date.now() - st.mtimeMs > maxAgeMs && !pidAlive(parseInt(m[1], 10))) tryUnlink(p);
  }
}

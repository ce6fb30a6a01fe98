// Temporary folders of the harness (profiles, workspaces, browser profiles): created here and
// removed by their owner, or all at once when the process exits or is interrupted, so that an
// aborted test run leaves nothing in /tmp.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const live = new Set();
let hooked = false;

/** A new folder /tmp/<prefix>XXXXXX, removed at process exit at the latest. */
export function makeTempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  live.add(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', removeAllTempDirs);
  }
  return dir;
}

export function removeTempDir(dir) {
  live.delete(dir);
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Removes every folder made by makeTempDir that is still there (synchronous). */
export function removeAllTempDirs() {
  for (const dir of [...live]) {
    try {
      removeTempDir(dir);
    } catch {
      // in use or gone: nothing more to do at exit
    }
  }
}

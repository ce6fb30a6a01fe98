// Launches Debian's Chromium (/usr/bin/chromium) headless through playwright-core for the
// harness: fresh user-data-dir, HOME/XDG inside it (Chromium writes crash reports into the real
// home otherwise), no network services. Never downloads a browser.
import fs from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { settleWithin } from './codeServer.mjs';
import { CHROMIUM } from './paths.mjs';
import { makeTempDir, removeTempDir } from './tempDirs.mjs';

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--disable-features=Translate,MediaRouter,OptimizationHints',
];

/** close() of every browser this process launched and has not closed yet. */
const openBrowsers = new Set();

/** Closes every open browser (for signal handlers: stopServersOnSignals(closeAllBrowsers)). */
export async function closeAllBrowsers() {
  await Promise.all([...openBrowsers].map((close) => close()));
}

/**
 * Launches Chromium with a persistent context in a new temporary profile.
 * Options: headless (default true; env HARNESS_HEADED=1 shows it), viewport (default 1400x900),
 * timeoutMs for the launch (default 60 s).
 * Resolves to { context, page, close() }; close() also removes the profile folder.
 */
export async function launchBrowser({
  headless = process.env.HARNESS_HEADED !== '1',
  viewport = { width: 1400, height: 900 },
  timeoutMs = 60_000,
} = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: install the Debian package "chromium" (apt-get install chromium), or set CHROMIUM_PATH.`,
    );
  }
  const dir = makeTempDir('smallthinker-chromium-');
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
  };
  let context;
  try {
    context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless,
      args: CHROMIUM_FLAGS,
      env,
      viewport,
      timeout: timeoutMs,
    });
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    openBrowsers.delete(close);
    await settleWithin(context.close(), 10_000);
    removeTempDir(dir);
  };
  openBrowsers.add(close);
  return { context, page, close };
}

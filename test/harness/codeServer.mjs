// Starts and stops code-server (a real VS Code installed from npm, see test/harness/README.md)
// for tests and `npm start`: Node 24 + code-server's entry.js in its own process group on
// 127.0.0.1:<free port>, with a throwaway profile (config.yaml, HOME/XDG, user settings).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { codeServerEntry, node24Bin } from './paths.mjs';
import { makeTempDir, removeAllTempDirs, removeTempDir } from './tempDirs.mjs';

/** User settings every harness profile gets (quiet, offline, no built-in AI chat). */
export const BASE_SETTINGS = {
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'chat.disableAIFeatures': true,
  'security.workspace.trust.enabled': false,
  'editor.inlineSuggest.enabled': true,
  'git.enabled': false,
  'npm.autoDetect': 'off',
  'typescript.tsserver.experimental.enableProjectDiagnostics': false,
  'window.restoreWindows': 'none',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `promise` settles or after `ms`, whichever is first; leaves no timer behind. */
export function settleWithin(promise, ms) {
  let timer;
  return Promise.race([Promise.resolve(promise).catch(() => {}), new Promise((r) => (timer = setTimeout(r, ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** Process groups of the servers this process started and has not stopped yet. */
const liveGroups = new Set();
let exitHookInstalled = false;

function killGroupNow(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Kills every server this process started and removes the harness's temporary folders (synchronous). */
export function killAllServers() {
  for (const pid of liveGroups) killGroupNow(pid);
  liveGroups.clear();
  removeAllTempDirs();
}

/**
 * For command-line entry points: on SIGINT/SIGTERM/SIGHUP, run `onSignal` (e.g. stop the server
 * gracefully, close the browser; 5 s at most), kill every server group this process started that
 * is still there, and exit 130. A library never installs this.
 */
export function stopServersOnSignals(onSignal = async () => {}) {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      settleWithin(Promise.resolve().then(onSignal), 5000)
        .then(killAllServers)
        .finally(() => process.exit(130));
    });
  }
}

/**
 * Creates a profile folder: config.yaml, ud/User/settings.json, ext/, home/.
 * `dir` defaults to a new temporary folder (removed by stop() when `cleanup` is true).
 */
export function createProfile({ dir, settings = {} } = {}) {
  const profile = profilePaths(dir ?? makeTempDir('smallthinker-cs-'));
  for (const d of [profile.userDataDir, profile.extensionsDir, profile.home, path.join(profile.userDataDir, 'User')])
    fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(profile.config, 'auth: none\ncert: false\n');
  writeSettings(profile, settings);
  return profile;
}

/** The folders and files of a profile rooted at `root` (existing or not). */
export function profilePaths(root) {
  return {
    root,
    config: path.join(root, 'config.yaml'),
    userDataDir: path.join(root, 'ud'),
    extensionsDir: path.join(root, 'ext'),
    home: path.join(root, 'home'),
  };
}

/**
 * (Re)writes the profile's settings: BASE_SETTINGS with `settings` over them, into the user
 * settings and the machine settings. code-server windows are remote windows, where VS Code
 * ignores machine-scoped settings (smallthinker.model.path) found in the user settings and
 * reads them from <user-data-dir>/Machine/settings.json instead.
 */
export function writeSettings(profile, settings = {}) {
  const text = JSON.stringify({ ...BASE_SETTINGS, ...settings }, null, 2) + '\n';
  for (const scope of ['User', 'Machine']) {
    fs.mkdirSync(path.join(profile.userDataDir, scope), { recursive: true });
    fs.writeFileSync(path.join(profile.userDataDir, scope, 'settings.json'), text);
  }
}

/** HOME/XDG and quiet flags for any process of the harness running in `profile`. */
function profileEnv(profile, extraEnv = {}) {
  return {
    ...process.env,
    HOME: profile.home,
    XDG_CONFIG_HOME: path.join(profile.home, '.config'),
    XDG_DATA_HOME: path.join(profile.home, '.local', 'share'),
    XDG_CACHE_HOME: process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'),
    EXTENSIONS_GALLERY: '{}',
    VSCODE_CLI: undefined,
    ...extraEnv,
  };
}

function commonArgs(profile) {
  return ['--config', profile.config, '--user-data-dir', profile.userDataDir, '--extensions-dir', profile.extensionsDir];
}

/** Runs code-server's CLI once (install/list extensions) in `profile`; throws on failure. */
export function codeServerCli(profile, args, { timeoutMs = 120_000 } = {}) {
  const r = spawnSync(node24Bin(), [codeServerEntry(), ...commonArgs(profile), ...args], {
    env: profileEnv(profile),
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`code-server ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${output}`);
  return output;
}

/** Installs a .vsix into the profile's extensions folder (offline). */
export function installVsix(profile, vsixPath) {
  return codeServerCli(profile, ['--install-extension', path.resolve(vsixPath), '--force']);
}

/**
 * Starts code-server. Options:
 *   profile        from createProfile() (default: a new temporary one, removed on stop)
 *   settings       extra user settings (written into the profile)
 *   env            extra environment for the server and so its extension host (e.g.
 *                  SMALLTHINKER_ENGINE_HOST); a value of undefined removes a variable
 *   port           default: a free one
 *   folder         workspace folder opened by default
 *   smokeTestDriver  pass --vscode-option enable-smoke-test-driver (needed for extension tests)
 *   extraArgs      more code-server arguments
 *   log            'inherit' | 'pipe' (default 'pipe': kept in server.output(), last 64 KiB)
 *   readyTimeoutMs default 60 s
 * Resolves to { url, port, profile, pid, output(), stop() }. stop() kills the whole group.
 */
export async function startCodeServer(options = {}) {
  const { settings = {}, env = {}, folder, smokeTestDriver = false, extraArgs = [], log = 'pipe', readyTimeoutMs = 60_000 } = options;
  const ownProfile = !options.profile;
  const profile = options.profile ?? createProfile({ settings });
  if (options.profile && Object.keys(settings).length > 0) writeSettings(profile, settings);
  const port = options.port ?? (await freePort());
  const args = [
    codeServerEntry(),
    ...commonArgs(profile),
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--reconnection-grace-time',
    '10',
    ...(smokeTestDriver ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
    ...extraArgs,
    ...(folder ? [folder] : []),
  ];
  const childEnv = profileEnv(profile, env);
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  const child = spawn(node24Bin(), args, {
    env: childEnv,
    detached: true, // its own process group: stop() kills the server and its extension hosts together
    stdio: ['ignore', log === 'inherit' ? 'inherit' : 'pipe', log === 'inherit' ? 'inherit' : 'pipe'],
  });
  let output = '';
  const keep = (d) => {
    output = (output + d).slice(-65536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = null;
  const exitPromise = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }),
  );
  child.on('error', (err) => keep(`spawn failed: ${err.message}\n`));
  if (child.pid) liveGroups.add(child.pid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killAllServers); // a crashing test run must not leave servers behind
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const sig of ['SIGTERM', 'SIGKILL']) {
      try {
        process.kill(-child.pid, sig);
      } catch {
        break; // the group is gone
      }
      if (sig === 'SIGTERM') await settleWithin(exitPromise, 3000);
      // give the group's other members (extension host, engine) a moment after the leader
      await sleep(200);
    }
    liveGroups.delete(child.pid);
    if (ownProfile) removeTempDir(profile.root);
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`code-server exited during start-up (${exited.signal ?? `exit ${exited.code}`}):\n${output}`);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`code-server did not answer ${url}/healthz within ${readyTimeoutMs / 1000} s:\n${output}`);
    }
    await sleep(200);
  }
  return { url, port, profile, pid: child.pid, output: () => output, exited: exitPromise, stop };
}

// What the VS Code harness needs from the machine, checked before any long work, and the
// environment a child npm gets so that it behaves the same however this code was started.
import fs from 'node:fs';
import path from 'node:path';

import { CHROMIUM } from './paths.mjs';

function onPath(cmd) {
  return (process.env.PATH || '').split(path.delimiter).some((dir) => {
    if (!dir) return false;
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const anyExists = (...paths) => paths.some((p) => fs.existsSync(p));

// Each row: what is checked, the Debian package that provides it, and for which step.
//   build: code-server's install script compiles VS Code's native modules (node-gyp, kerberos)
//   browser: the UI tests drive Debian's Chromium and need a font for the screenshots
const CHECKS = [
  { what: 'a C++ compiler', pkg: 'g++', for: 'build', ok: () => onPath('c++') || onPath('g++') },
  { what: 'make', pkg: 'make', for: 'build', ok: () => onPath('make') },
  { what: 'python3', pkg: 'python3', for: 'build', ok: () => onPath('python3') },
  {
    what: 'the Kerberos headers',
    pkg: 'libkrb5-dev',
    for: 'build',
    ok: () => onPath('krb5-config') || anyExists('/usr/include/gssapi/gssapi.h', '/usr/include/krb5.h'),
  },
  { what: `Chromium at ${CHROMIUM}`, pkg: 'chromium', for: 'browser', ok: () => fs.existsSync(CHROMIUM) },
  {
    what: 'the DejaVu fonts',
    pkg: 'fonts-dejavu-core',
    for: 'browser',
    ok: () => anyExists('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/truetype/dejavu'),
  },
];

/**
 * The Debian packages missing for the given steps ('build', 'browser'), as
 * `{ packages: string[], message: string }`; message is '' when nothing is missing.
 * `only` overrides the check results in tests: a set of package names to report missing.
 */
export function missingPrerequisites(steps, { only } = {}) {
  const rows = CHECKS.filter((c) => steps.includes(c.for));
  const missing = rows.filter((c) => (only ? only.has(c.pkg) : !c.ok()));
  if (missing.length === 0) return { packages: [], message: '' };
  const packages = missing.map((c) => c.pkg);
  const named = missing.map((c) => `${c.pkg} (${c.what})`);
  const list = named.length === 1 ? named[0] : `${named.slice(0, -1).join(', ')} and ${named[named.length - 1]}`;
  const message =
    `The VS Code tests need the Debian package${packages.length === 1 ? '' : 's'} ${list}, ` +
    `which ${packages.length === 1 ? 'is' : 'are'} not installed: run \`sudo apt-get install ${packages.join(' ')}\`.`;
  return { packages, message };
}

// Variables an outer `npm run`/`npm test` exports that a child npm must not inherit: it takes
// them as its own configuration (npm_config_user_agent names the outer Node, which code-server's
// install script reads as "the Node you run"; npm_config_node_gyp and nodedir point at the
// outer Node's), and npm's lifecycle and package variables describe another package. Network
// settings a user may have put in the environment pass through.
const KEEP_NPM_CONFIG =
  /^npm_config_(registry|proxy|https_proxy|http_proxy|noproxy|no_proxy|cafile|ca|strict_ssl|cache|fetch_retries|fetch_timeout)$/i;

/** `env` less what an outer npm script runner added (variables and PATH entries). */
export function childNpmEnv(env = process.env) {
  const out = {};
  for (const [k, v] of Object.entries(env)) {
    if (/^npm_/i.test(k) && !KEEP_NPM_CONFIG.test(k)) continue;
    if (k === 'NODE' || k === 'INIT_CWD' || k === 'NODE_GYP_FORCE_PYTHON') continue;
    out[k] = v;
  }
  const PATH = (env.PATH || '')
    .split(path.delimiter)
    .filter(
      (dir) =>
        dir && !/[\\/]node_modules[\\/]\.bin[\\/]?$/.test(dir) && !/[\\/]@npmcli[\\/]run-script[\\/]lib[\\/]node-gyp-bin[\\/]?$/.test(dir),
    )
    .join(path.delimiter);
  out.PATH = PATH;
  return out;
}

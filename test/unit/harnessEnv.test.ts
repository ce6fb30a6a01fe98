// Tests of the VS Code harness's machine checks (test/harness/prerequisites.mjs): the clean
// environment a child npm gets (an outer `npm test` once made code-server's install script see
// Node 20 through the inherited npm_config_user_agent), and the one-sentence message naming
// missing Debian packages. Run: node --test out/test/unit/harnessEnv.test.js
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const MODULE = path.join(ROOT, 'test', 'harness', 'prerequisites.mjs');

interface Prerequisites {
  childNpmEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  missingPrerequisites(steps: string[], options?: { only?: Set<string> }): { packages: string[]; message: string };
}
const load = async () => (await import(pathToFileURL(MODULE).href)) as Prerequisites;

describe('childNpmEnv', () => {
  test('drops what an outer npm script runner exported, keeps the rest', async () => {
    const { childNpmEnv } = await load();
    const env = childNpmEnv({
      HOME: '/home/u',
      NODE: '/usr/bin/node',
      INIT_CWD: '/w',
      npm_config_user_agent: 'npm/11 node/v20.20.2 linux x64',
      npm_config_node_gyp: '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
      npm_config_nodedir: '/usr',
      npm_lifecycle_event: 'test',
      npm_package_name: 'smallthinker-code',
      npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js',
      npm_config_registry: 'http://127.0.0.1:4873/',
      npm_config_https_proxy: 'http://proxy:3128',
      PATH: [
        '/w/node_modules/.bin',
        '/node_modules/.bin',
        '/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin',
        '/usr/local/bin',
        '/usr/bin',
      ].join(path.delimiter),
    });
    assert.deepEqual(Object.keys(env).sort(), ['HOME', 'PATH', 'npm_config_https_proxy', 'npm_config_registry']);
    assert.equal(env.PATH, ['/usr/local/bin', '/usr/bin'].join(path.delimiter));
  });

  test('a child npm run from inside `npm run` sets its own user agent', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smallthinker-npmenv-'));
    try {
      // inner: prints the user agent npm gives its scripts. outer: runs `npm run inner` the way
      // test/harness/install.mjs runs npm, with the environment childNpmEnv makes (or not).
      fs.writeFileSync(path.join(dir, 'agent.js'), 'console.log("AGENT=" + process.env.npm_config_user_agent)');
      fs.writeFileSync(
        path.join(dir, 'outer.mjs'),
        `import { spawnSync } from 'node:child_process';
import { childNpmEnv } from ${JSON.stringify(pathToFileURL(MODULE).href)};
const env = process.argv[2] === 'clean' ? childNpmEnv(process.env) : process.env;
const r = spawnSync('npm', ['run', '-s', 'inner'], { env, encoding: 'utf8' });
process.stdout.write(r.stdout);`,
      );
      fs.writeFileSync(
        path.join(dir, 'package.json'),
        JSON.stringify({ name: 'npmenv', version: '1.0.0', private: true, scripts: { inner: 'node agent.js', outer: 'node outer.mjs' } }),
      );
      const agent = (mode: string) => {
        const r = spawnSync('npm', ['--user-agent', 'outer-agent/1', 'run', '-s', 'outer', '--', mode], { cwd: dir, encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        return /AGENT=(.*)/.exec(r.stdout)?.[1];
      };
      // Without cleaning, the inner npm takes the outer's agent as its own configuration: the
      // defect code-server's install script ran into ("you are on node v20").
      assert.equal(agent('inherit'), 'outer-agent/1');
      const clean = agent('clean');
      assert.match(clean ?? '', new RegExp(`^npm/\\S+ node/${process.version.replace(/\./g, '\\.')} `));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('missingPrerequisites', () => {
  test('one sentence naming each missing Debian package and the command', async () => {
    const { missingPrerequisites } = await load();
    const one = missingPrerequisites(['build', 'browser'], { only: new Set(['libkrb5-dev']) });
    assert.deepEqual(one.packages, ['libkrb5-dev']);
    assert.equal(
      one.message,
      'The VS Code tests need the Debian package libkrb5-dev (the Kerberos headers), which is not installed: run `sudo apt-get install libkrb5-dev`.',
    );
    const two = missingPrerequisites(['build', 'browser'], { only: new Set(['g++', 'chromium']) });
    assert.deepEqual(two.packages, ['g++', 'chromium']);
    assert.match(
      two.message,
      /^The VS Code tests need the Debian packages g\+\+ \(a C\+\+ compiler\) and chromium \(Chromium at .*\), which are not installed: run `sudo apt-get install g\+\+ chromium`\.$/,
    );
    assert.equal(two.message.split('. ').length, 1, 'one sentence');
    // Steps filter: Chromium is not needed to build the harness.
    assert.deepEqual(missingPrerequisites(['build'], { only: new Set(['chromium']) }).packages, []);
  });
});

// Mocha runner for the extension-host suites (the @vscode/test-electron contract: VS Code loads
// this module inside its extension host and awaits run()). TDD interface: suite/test/setup/
// teardown, imported from 'mocha' in each test file (tsconfig has no mocha globals).
//
// Loads every out/test/vscode/suite/**/*.vtest.js (the .vtest naming keeps these files out of the
// plain `node --test out/test/**/*.test.js` stage: they need the `vscode` API). Filters:
//   SMALLTHINKER_TEST_GREP        a mocha grep (substring or /regex/flags) on full test titles
//   SMALLTHINKER_TEST_GREP_FILE   a file whose first line is such a grep
//   SMALLTHINKER_TEST_FILES       comma-separated substrings: only suite files whose path has one
//   SMALLTHINKER_TEST_TIMEOUT_MS  per test (default 60000)
// The last line it prints is parseable: "vscode-tests: N passed, M failed, K pending".
import * as fs from 'node:fs';
import * as path from 'node:path';

import Mocha from 'mocha';

export const SUMMARY_PREFIX = 'vscode-tests:';

function findSuiteFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findSuiteFiles(p));
    else if (entry.name.endsWith('.vtest.js')) out.push(p);
  }
  return out.sort();
}

/** "/pattern/flags" as a RegExp, anything else as a literal substring. */
function toGrep(text: string): RegExp | string {
  const m = /^\/(.+)\/([a-z]*)$/.exec(text);
  return m ? new RegExp(m[1], m[2]) : text;
}

function readGrep(): RegExp | string | undefined {
  const direct = process.env.SMALLTHINKER_TEST_GREP;
  if (direct) return toGrep(direct);
  const file = process.env.SMALLTHINKER_TEST_GREP_FILE;
  if (file && fs.existsSync(file)) {
    const line = fs.readFileSync(file, 'utf8').split('\n')[0].trim();
    if (line) return toGrep(line);
  }
  return undefined;
}

export function run(): Promise<void> {
  const mocha = new Mocha({
    ui: 'tdd',
    reporter: 'spec',
    color: false,
    timeout: Number(process.env.SMALLTHINKER_TEST_TIMEOUT_MS) || 60_000,
  });
  const grep = readGrep();
  if (grep !== undefined) mocha.grep(grep);

  const only = (process.env.SMALLTHINKER_TEST_FILES || '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const files = findSuiteFiles(__dirname).filter((f) => only.length === 0 || only.some((s) => f.includes(s)));
  for (const f of files) mocha.addFile(f);
  console.log(`vscode-tests: ${files.length} suite file(s)${grep !== undefined ? `, grep ${String(grep)}` : ''}`);

  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run((failures) => {
        const stats = runner.stats ?? { passes: 0, failures, pending: 0 };
        console.log(`${SUMMARY_PREFIX} ${stats.passes} passed, ${stats.failures} failed, ${stats.pending} pending`);
        if (failures > 0) reject(new Error(`${failures} extension-host test(s) failed.`));
        else resolve();
      });
    } catch (err) {
      console.error(err);
      console.log(`${SUMMARY_PREFIX} 0 passed, 1 failed, 0 pending`);
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

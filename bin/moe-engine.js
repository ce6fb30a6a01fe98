#!/usr/bin/env node
// The moe-engine command (package.json "bin"): runs the CLI that esbuild.mjs bundles from
// src/cli/cli.ts into dist/cli.js (built by `npm install` and `npm run build`).
'use strict';
const path = require('node:path');

const bundle = path.join(__dirname, '..', 'dist', 'cli.js');
let cli;
try {
  cli = require(bundle);
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(bundle)) {
    process.stderr.write('moe-engine: the CLI is not built; run "npm install" or "npm run build" in the package folder.\n');
    process.exit(1);
  }
  throw err;
}
cli.main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`moe-engine: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

// Bundles the TypeScript entry points with esbuild (no type checking: `npm run typecheck`):
//   dist/extension.js  the VS Code extension (external: vscode)
//   dist/cli.js        the moe-engine CLI used by bin/moe-engine.js
//   dist/engineHost.js the engine process the extension spawns (src/engineHost/main.ts)
//   media/dist/chat.js the chat panel's webview script (src/webview/chat/main.ts)
// Usage: node esbuild.mjs [--watch] [--minify]. Run by `npm install` (postinstall) and `npm run build`.
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const minify = process.argv.includes('--minify');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  minify,
  logLevel: 'warning',
  // node-gyp-build finds the addon relative to the package root at run time; keep it a plain require.
  external: ['vscode', 'node-gyp-build'],
};

const builds = [
  { ...common, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js' },
  { ...common, entryPoints: ['src/cli/cli.ts'], outfile: 'dist/cli.js' },
  { ...common, entryPoints: ['src/engineHost/main.ts'], outfile: 'dist/engineHost.js' },
  // The chat panel's script, loaded by its webview (browser, no Node).
  {
    bundle: true,
    platform: 'browser',
    target: 'es2020',
    format: 'iife',
    sourcemap: true,
    minify,
    logLevel: 'warning',
    entryPoints: ['src/webview/chat/main.ts'],
    outfile: 'media/dist/chat.js',
  },
];

if (watch) {
  for (const options of builds) await (await esbuild.context(options)).watch();
  console.error('esbuild: watching for changes');
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
}

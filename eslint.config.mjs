// Lint rules: typescript-eslint's recommended set, and the layering of src/ as import rules
// (README, "Layout"): common/ is pure TypeScript; only vscode/ (and extension.ts) imports
// 'vscode'; the engine host and the addon wrapper never reach into the editor side; the webview
// sees only common/.
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [
  'node:*',
  'fs',
  'path',
  'os',
  'child_process',
  'crypto',
  'http',
  'https',
  'net',
  'stream',
  'events',
  'util',
  'worker_threads',
  'url',
];

/** no-restricted-imports for a folder: `patterns` are import paths it may not use, each with why. */
function layer(files, rules) {
  return {
    files,
    rules: {
      'no-restricted-imports': ['error', { patterns: rules.map(([group, message]) => ({ group, message })) }],
    },
  };
}

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'media/dist/**', 'node_modules/**', 'build/**', 'prebuilds/**', 'test-results/**', 'bench-results/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  layer(
    ['src/common/**/*.ts'],
    [
      [['vscode'], 'src/common is shared by every side: no vscode.'],
      [NODE_BUILTINS, 'src/common runs in the webview too: no Node modules.'],
      [
        ['**/vscode/**', '**/node/**', '**/engine/**', '**/engineHost/**', '**/webview/**', '**/cli/**'],
        'src/common imports only src/common.',
      ],
    ],
  ),
  layer(
    ['src/webview/**/*.ts'],
    [
      [['vscode'], 'The webview cannot import vscode: it talks to the extension through messages.'],
      [NODE_BUILTINS, 'The webview runs in a browser: no Node modules.'],
      [['**/vscode/**', '**/node/**', '**/engine/**', '**/engineHost/**', '**/cli/**'], 'The webview imports only src/common.'],
    ],
  ),
  layer(
    ['src/engine/**/*.ts'],
    [
      [['vscode'], 'The addon wrapper runs outside VS Code.'],
      [
        ['**/vscode/**', '**/node/**', '**/engineHost/**', '**/webview/**', '**/cli/**'],
        'src/engine wraps the addon and imports only src/common.',
      ],
    ],
  ),
  layer(
    ['src/engineHost/**/*.ts'],
    [
      [['vscode'], 'The engine host is its own process: no vscode.'],
      [['**/vscode/**', '**/node/**', '**/webview/**', '**/cli/**'], 'The engine host imports src/common and src/engine only.'],
    ],
  ),
  layer(
    ['src/node/**/*.ts'],
    [
      [['vscode'], 'src/node is editor-independent: no vscode.'],
      [
        ['**/vscode/**', '**/engine/**', '**/engineHost/**', '**/webview/**', '**/cli/**'],
        'src/node starts the engine as a process; it never loads the addon or the host.',
      ],
    ],
  ),
  layer(
    ['src/vscode/**/*.ts', 'src/extension.ts'],
    [
      [
        ['**/engine/**', '**/engineHost/**', '**/cli/**'],
        'The extension talks to the engine process over JSON-RPC (src/node): it never loads the addon or the host.',
      ],
    ],
  ),
  layer(
    ['src/cli/**/*.ts'],
    [
      [['vscode'], 'The CLI runs outside VS Code.'],
      [['**/vscode/**', '**/webview/**'], 'The CLI imports the engine side only.'],
    ],
  ),
);

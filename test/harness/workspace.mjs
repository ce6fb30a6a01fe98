// A small sample workspace for the harness and `npm start`: a few source files in TypeScript,
// Python and Markdown, enough to try completions, chat attachments and refactors on.
import fs from 'node:fs';
import path from 'node:path';

import { makeTempDir } from './tempDirs.mjs';

export const SAMPLE_FILES = {
  'src/math.ts': [
    '// Small numeric helpers.',
    '',
    'export function add(a: number, b: number): number {',
    '  return a + b;',
    '}',
    '',
    'export function mean(values: number[]): number {',
    '  if (values.length === 0) return 0;',
    '  let total = 0;',
    '  for (const v of values) total += v;',
    '  return total / values.length;',
    '}',
    '',
    'export function clamp(value: number, min: number, max: number): number {',
    '',
    '}',
    '',
  ].join('\n'),
  'src/shapes.ts': [
    'export interface Point {',
    '  x: number;',
    '  y: number;',
    '}',
    '',
    'export function distance(a: Point, b: Point): number {',
    '  const dx = a.x - b.x;',
    '  const dy = a.y - b.y;',
    '  return Math.sqrt(dx * dx + dy * dy);',
    '}',
    '',
  ].join('\n'),
  'scripts/stats.py': [
    '"""Statistics over a list of numbers."""',
    '',
    '',
    'def median(values):',
    '    ordered = sorted(values)',
    '    n = len(ordered)',
    '    if n == 0:',
    '        return None',
    '    mid = n // 2',
    '    if n % 2:',
    '        return ordered[mid]',
    '    return (ordered[mid - 1] + ordered[mid]) / 2',
    '',
  ].join('\n'),
  'README.md': '# Sample workspace\n\nA few files to try SmallThinker Code on.\n',
  'package.json': JSON.stringify({ name: 'sample-workspace', version: '1.0.0', private: true }, null, 2) + '\n',
};

/**
 * Writes the sample files into `dir` (default: a new temporary folder), leaving files that
 * exist alone unless `overwrite`. Returns the folder.
 */
export function createSampleWorkspace(dir, { overwrite = false } = {}) {
  const root = dir ?? makeTempDir('smallthinker-ws-');
  for (const [rel, text] of Object.entries(SAMPLE_FILES)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (overwrite || !fs.existsSync(p)) fs.writeFileSync(p, text);
  }
  return root;
}

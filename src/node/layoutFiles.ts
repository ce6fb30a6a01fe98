// The engine's layout files (native/model/layout_file.h: each model's relaid-out weights, written
// once so that later loads map them) in the folder the extension gives the engine: their disk use,
// and their removal. A removed file that a running engine still maps stays readable to it until
// it unloads the model; the next load writes the file again.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Layout files, their experts' use counts and unfinished ones (`<identity>.v<N>.stlayout`, `….stlayout.uses`, `….tmp.<pid>`). */
const LAYOUT_FILE = /^[0-9a-f]{16}\.v\d+\.stlayout(\.uses)?(\.tmp\.\d+)?$/;

export interface LayoutUsage {
  files: { name: string; bytes: number }[];
  bytes: number;
}

/** The layout files in `dir` and their total size (none when the folder does not exist). */
export function layoutUsage(dir: string): LayoutUsage {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return { files: [], bytes: 0 };
  }
  const files: LayoutUsage['files'] = [];
  for (const name of names.filter((n) => LAYOUT_FILE.test(n)).sort()) {
    try {
      files.push({ name, bytes: fs.statSync(path.join(dir, name)).size });
    } catch {
      // removed meanwhile
    }
  }
  return { files, bytes: files.reduce((s, f) => s + f.bytes, 0) };
}

/** Removes the layout files of `dir` (nothing else); returns what was removed. */
export function removeLayoutFiles(dir: string): LayoutUsage {
  const usage = layoutUsage(dir);
  const removed: LayoutUsage['files'] = [];
  for (const f of usage.files) {
    try {
      fs.rmSync(path.join(dir, f.name));
      removed.push(f);
    } catch {
      // already gone, or not ours to remove
    }
  }
  return { files: removed, bytes: removed.reduce((s, f) => s + f.bytes, 0) };
}

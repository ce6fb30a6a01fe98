// src/node/layoutFiles.ts: the disk use of the engine's layout files and their removal, which
// must leave every other file of the folder alone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { layoutUsage, removeLayoutFiles } from '../../src/node/layoutFiles';

describe('layout files in the extension folder', () => {
  it('counts and removes layout files, their experts` use counts and unfinished ones, nothing else', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-layouts-'));
    try {
      const ours = {
        '0123456789abcdef.v1.stlayout': 3000,
        'fedcba9876543210.v2.stlayout': 5000,
        '0123456789abcdef.v1.stlayout.tmp.4242': 700,
        'fedcba9876543210.v2.stlayout.uses': 40,
        'fedcba9876543210.v2.stlayout.uses.tmp.77': 60,
      };
      const theirs = ['notes.txt', 'model.gguf', 'abc.v1.stlayout', '0123456789abcdef.v1.stlayout.bak'];
      for (const [name, size] of Object.entries(ours)) fs.writeFileSync(path.join(dir, name), Buffer.alloc(size));
      for (const name of theirs) fs.writeFileSync(path.join(dir, name), 'x');
      const usage = layoutUsage(dir);
      assert.deepEqual(usage.files.map((f) => f.name).sort(), Object.keys(ours).sort());
      assert.equal(usage.bytes, 8800);
      const removed = removeLayoutFiles(dir);
      assert.equal(removed.bytes, 8800);
      assert.deepEqual(fs.readdirSync(dir).sort(), theirs.slice().sort());
      assert.deepEqual(layoutUsage(dir), { files: [], bytes: 0 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a folder that does not exist has none', () => {
    assert.deepEqual(layoutUsage(path.join(os.tmpdir(), 'st-no-such-folder', 'layouts')), { files: [], bytes: 0 });
    assert.deepEqual(removeLayoutFiles(path.join(os.tmpdir(), 'st-no-such-folder', 'layouts')), { files: [], bytes: 0 });
  });
});

// UI test: with the fake engine and a model file set, the status bar shows the SmallThinker item
// (engine state / model name) once the extension has activated; screenshot "status-bar".
import assert from 'node:assert/strict';

export const tests = [
  {
    name: 'the status bar shows the SmallThinker item',
    timeoutMs: 120_000,
    async run(ui) {
      const wb = await ui.open({ fakeEngine: true, fakeModel: true });
      await wb.openFile('src/math.ts');
      const item = await wb.waitForStatusBarItem(/SmallThinker/i, { timeoutMs: 60_000 });
      assert.match(`${item.label} ${item.text}`, /SmallThinker/i);
      // The fake engine loads any existing file as "SmallThinker Fake": the item should get to it.
      const ready = await wb.waitForStatusBarItem(/SmallThinker Fake/, { timeoutMs: 30_000 });
      ui.log(`status bar item ${ready.id}: "${ready.text}" (${ready.label})`);
      await wb.screenshot('status-bar');
    },
  },
];

// UI tests (fake engine) of what the extension shows while it works and what its defaults do
// (issue 17): the proposal notification ends when the proposal is accepted from the diff and no
// selection is left; the statistics are a list that Enter only closes, and Reset asks with Keep
// first; the status menu opens on a harmless row; the status item is there while the engine starts
// and shows the load as a percentage with its phase, as does a notification that ends with the load;
// the chat says what happens before the first word.
import assert from 'node:assert/strict';

import { proposeDocumentation, sendChat } from '../harness/ui.mjs';

/** The aria-label of the quick input's focused row (where Enter lands). */
async function focusedRow(wb) {
  const row = wb.page.locator('.quick-input-widget .quick-input-list .monaco-list-row.focused').first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  return (await row.getAttribute('aria-label')) ?? '';
}

/** The focused row once it matches `re` (a picked row opens the next list a moment later). */
async function focusedRowMatching(wb, re, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  let label = await focusedRow(wb);
  while (!re.test(label) && Date.now() < until) {
    await wb.page.waitForTimeout(100);
    label = await focusedRow(wb);
  }
  return label;
}

/** Clicks the quick input row whose aria-label starts with `label`. */
async function pickRow(wb, label) {
  const row = wb.page.locator(`.quick-input-widget .quick-input-list .monaco-list-row[aria-label*="${label}"]`).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await row.click();
}

/** The statistics list's "Shown: N" count (opens and closes the list). */
async function shownCount(wb) {
  await wb.runCommand('SmallThinker: Show Completion Statistics');
  const label = await focusedRow(wb);
  await wb.press('Enter');
  await wb.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 });
  const m = /Shown: (\d+)/.exec(label);
  assert.ok(m, `the list opens on the "Shown" line, not on an action (focused: "${label}")`);
  return Number(m[1]);
}

export const tests = [
  {
    name: 'the proposal notification ends when the proposal is accepted from the diff, and no selection is left',
    timeoutMs: 150_000,
    async run(ui) {
      const wb = await ui.open({ fakeEngine: true, fakeModel: true });
      await proposeDocumentation(wb);
      const toast = wb.page.locator('.notification-toast', { hasText: 'SmallThinker proposes' });
      await toast.waitFor({ state: 'visible', timeout: 15_000 });
      const buttons = (await toast.locator('.monaco-button').allTextContents()).map((t) => t.trim()).filter(Boolean);
      await wb.screenshot('proposal-notification');
      const accept = wb.page.locator('.editor-actions [aria-label*="Accept Proposed Edit"]').first();
      await accept.waitFor({ state: 'visible', timeout: 15_000 });
      await accept.click();
      await wb.page.locator('.monaco-diff-editor').first().waitFor({ state: 'hidden', timeout: 30_000 });
      await wb.page.waitForTimeout(500);
      // The cursor is at the change, nothing selected ("Ln 7, Col 1", not "Ln 7, Col 1 (120 selected)").
      const selection = wb.page.locator('.statusbar-item[id="status.editor.selection"]');
      await selection.waitFor({ state: 'visible', timeout: 10_000 });
      const where = (await selection.textContent()) ?? '';
      assert.match(where, /Ln \d+, Col \d+/);
      assert.doesNotMatch(where, /selected/, `a selection was left after accepting: "${where}"`);
      // The notification went with the proposal: no toast, nothing in the notification centre.
      await toast.waitFor({ state: 'hidden', timeout: 10_000 });
      await wb.runCommand('Notifications: Show Notifications');
      await wb.page.waitForTimeout(500);
      const centre = await wb.page.locator('.notifications-center').allTextContents();
      assert.ok(!centre.join(' ').includes('SmallThinker proposes'), `the notification centre still has it: ${centre}`);
      await wb.press('Escape');
      // While it was up, its only button was one that can always act (Cancel rejects the proposal).
      assert.deepEqual(buttons, ['Cancel'], `the notification's buttons: ${buttons}`);
    },
  },
  {
    name: 'statistics: a list that Enter only closes; Reset asks first with Keep as the default',
    timeoutMs: 180_000,
    async run(ui) {
      const wb = await ui.open({
        fakeEngine: true,
        fakeModel: true,
        env: { FAKE_ENGINE_COMPLETION: 'urn Math.min(Math.max(value, min), max);' },
      });
      await wb.waitForStatusBarItem(/SmallThinker Fake/, { timeoutMs: 60_000 });
      await wb.openFile('src/math.ts');
      await wb.goToLine(15, 1);
      await wb.type('  ret', { delayMs: 60 });
      await wb.page
        .locator('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text')
        .first()
        .waitFor({ state: 'visible', timeout: 30_000 });
      await wb.press('Escape');
      const shown = await shownCount(wb);
      assert.ok(shown >= 1, `a suggestion was counted (${shown})`);
      assert.equal(await shownCount(wb), shown, 'Enter on the statistics changed nothing');

      // Reset asks, and Enter keeps them.
      await wb.runCommand('SmallThinker: Show Completion Statistics');
      await pickRow(wb, 'Reset Statistics');
      assert.match(await focusedRowMatching(wb, /Keep the Statistics/), /Keep the Statistics/);
      await wb.screenshot('statistics-reset-asks');
      await wb.press('Enter');
      await wb.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 });
      assert.equal(await shownCount(wb), shown, 'Keep kept them');

      // Only choosing Reset resets.
      await wb.runCommand('SmallThinker: Show Completion Statistics');
      await pickRow(wb, 'Reset Statistics');
      await pickRow(wb, 'Reset the Statistics');
      await wb.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 });
      assert.equal(await shownCount(wb), 0);
    },
  },
  {
    name: 'the status menu opens on a harmless row, not on turning completion off',
    timeoutMs: 120_000,
    async run(ui) {
      const wb = await ui.open({ fakeEngine: true, fakeModel: true });
      await wb.waitForStatusBarItem(/SmallThinker Fake/, { timeoutMs: 60_000 });
      await wb.runCommand('SmallThinker: Show Actions');
      const first = await focusedRow(wb);
      assert.doesNotMatch(first, /Inline Completion/, `the menu opens on "${first}"`);
      assert.match(first, /Open Chat/);
      await wb.screenshot('status-menu');
      await wb.press('Escape');
    },
  },
  {
    name: 'the status item is there while the engine starts, then shows the load as a percentage with its phase; so does a notification, gone when loaded',
    timeoutMs: 150_000,
    async run(ui) {
      const wb = await ui.open({
        fakeEngine: true,
        fakeModel: true,
        env: { FAKE_ENGINE_START_MS: '4000', FAKE_ENGINE_LOAD_MS: '16000' },
      });
      const starting = await wb.waitForStatusBarItem(/SmallThinker: starting/, { timeoutMs: 60_000 });
      ui.log(`while the engine starts: "${starting.label}"`);
      const loading = await wb.waitForStatusBarItem(/SmallThinker: loading \d+%, laying out/, { timeoutMs: 30_000 });
      assert.match(loading.text, /SmallThinker \d+%/);
      ui.log(`while loading: "${loading.text}" (${loading.label})`);
      // A load that takes a while also has a notification with the percentage and the phase...
      const toast = wb.page.locator('.notification-toast', { hasText: 'SmallThinker: loading' });
      await toast
        .locator('.notification-list-item-message', { hasText: /\d+% · laying out/ })
        .waitFor({ state: 'visible', timeout: 30_000 });
      ui.log(`notification: "${((await toast.first().textContent()) ?? '').trim()}"`);
      await wb.screenshot('status-loading');
      await wb.waitForStatusBarItem(/SmallThinker Fake/, { timeoutMs: 60_000 });
      // ...which ends with the load: gone from the screen and from the notification centre.
      await toast.first().waitFor({ state: 'hidden', timeout: 10_000 });
      await wb.runCommand('Notifications: Show Notifications');
      await wb.page.waitForTimeout(500);
      const centre = (await wb.page.locator('.notifications-center').allTextContents()).join(' ');
      assert.ok(!centre.includes('SmallThinker: loading'), `a finished load's notification stayed: "${centre}"`);
      await wb.press('Escape');
    },
  },
  {
    name: 'the chat says what happens before the first word',
    timeoutMs: 150_000,
    async run(ui) {
      const wb = await ui.open({ fakeEngine: true, fakeModel: true, env: { FAKE_ENGINE_PREFILL_MS: '4000' } });
      await wb.waitForStatusBarItem(/SmallThinker Fake/, { timeoutMs: 60_000 });
      const chat = await sendChat(wb, 'Write a function that adds two numbers.');
      const progress = chat.locator('[data-testid="message"][data-role="assistant"] [data-testid="message-progress"]').last();
      await progress.waitFor({ state: 'visible', timeout: 30_000 });
      await chat
        .locator('[data-testid="message-progress"]', { hasText: /Evaluating \d+ prompt tokens/ })
        .waitFor({ state: 'visible', timeout: 10_000 });
      await wb.screenshot('chat-progress');
      await chat.locator('[data-testid="stop"]').waitFor({ state: 'hidden', timeout: 30_000 });
    },
  },
];

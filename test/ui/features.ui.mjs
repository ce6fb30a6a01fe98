// UI tests through a real browser with the fake engine (scripted answers, so the pictures are
// predictable): ghost text appears after typing and Tab accepts it; the chat panel renders a
// streamed answer with a highlighted code block; a refactor opens a diff that Accept applies.
// Screenshots: ghost-text, chat-panel, refactor-diff (test-results/screenshots/).
import assert from 'node:assert/strict';

import { proposeDocumentation, sendChat } from '../harness/ui.mjs';

// The fake engine answers this whatever the prompt: the rest of "ret" typed below.
const COMPLETION = 'urn Math.min(Math.max(value, min), max);';

export const tests = [
  {
    name: 'ghost text is visible after typing and Tab accepts it',
    timeoutMs: 150_000,
    async run(ui) {
      const wb = await ui.open({ fakeEngine: true, fakeModel: true, env: { FAKE_ENGINE_COMPLETION: COMPLETION } });
      await wb.waitForStatusBarItem(/SmallThinker Fake/, { timeoutMs: 60_000 });
      await wb.openFile('src/math.ts');
      await wb.goToLine(15, 1);
      await wb.type('  ret', { delayMs: 60 });
      const ghost = wb.page.locator('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text').first();
      await ghost.waitFor({ state: 'visible', timeout: 30_000 });
      const shown = (await wb.page.locator('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text').allTextContents())
        .join('')
        .replace(/\u00a0/g, ' ');
      assert.ok(shown.includes('Math.min(Math.max(value, min), max);'), `ghost text "${shown}"`);
      await wb.screenshot('ghost-text');
      await wb.press('Tab');
      await wb.page.waitForTimeout(300);
      const text = await wb.editorText();
      assert.ok(text.includes('  return Math.min(Math.max(value, min), max);'), `accepted text in the editor:\n${text}`);
    },
  },
  {
    name: 'the chat panel renders a streamed answer with a highlighted code block',
    timeoutMs: 150_000,
    async run(ui) {
      const wb = await ui.open({ fakeEngine: true, fakeModel: true, env: { FAKE_ENGINE_CHAT_DELAY_MS: '40' } });
      await wb.waitForStatusBarItem(/SmallThinker Fake/, { timeoutMs: 60_000 });
      await wb.openFile('src/math.ts');
      const chat = await sendChat(wb, 'Write a function that adds two numbers.');
      // While streaming, the answer grows and the stop button is shown.
      const answer = chat.locator('[data-testid="message"][data-role="assistant"]').last();
      await answer.waitFor({ state: 'visible', timeout: 30_000 });
      await chat.locator('[data-testid="stop"]').waitFor({ state: 'visible', timeout: 10_000 });
      const block = answer.locator('[data-testid="code-block"]').first();
      await block.waitFor({ state: 'visible', timeout: 30_000 });
      await chat.locator('[data-testid="stop"]').waitFor({ state: 'hidden', timeout: 30_000 });
      const code = await block.innerText();
      assert.match(code, /export function add\(a: number, b: number\): number/);
      assert.ok((await block.locator('.hljs-keyword').count()) > 0, 'the code block is highlighted');
      for (const id of ['code-copy', 'code-insert', 'code-apply'])
        assert.equal(await block.locator(`[data-testid="${id}"]`).count(), 1, id);
      assert.match(await chat.locator('[data-testid="message"][data-role="user"]').last().innerText(), /adds two numbers/);
      await wb.screenshot('chat-panel');
    },
  },
  {
    name: 'a refactor opens a diff and Accept applies it',
    timeoutMs: 150_000,
    async run(ui) {
      const wb = await ui.open({ fakeEngine: true, fakeModel: true });
      await proposeDocumentation(wb);
      await wb.page.waitForTimeout(500);
      await wb.screenshot('refactor-diff');
      // Accept from the diff editor's title bar (the check mark).
      const accept = wb.page.locator('.editor-actions [aria-label*="Accept Proposed Edit"]').first();
      await accept.waitFor({ state: 'visible', timeout: 15_000 });
      await accept.click();
      await wb.page.locator('.monaco-diff-editor').first().waitFor({ state: 'hidden', timeout: 30_000 });
      await wb.page.waitForTimeout(300);
      const text = await wb.editorText(); // the diff closed: math.ts is the active editor again
      assert.ok(!text.includes('export function mean'), text);
    },
  },
];

tests.push({
  name: 'first run without a model: one prompt offering download or a file, and the status says so',
  timeoutMs: 120_000,
  async run(ui) {
    const wb = await ui.open({ fakeEngine: true, fakeModel: false });
    const item = await wb.waitForStatusBarItem(/no model/i, { timeoutMs: 60_000 });
    assert.match(`${item.label} ${item.text}`, /SmallThinker/);
    const toast = wb.page.locator('.notification-toast', { hasText: 'SmallThinker Code needs a model' });
    await toast.waitFor({ state: 'visible', timeout: 30_000 });
    for (const button of ['Download', 'Choose File', 'Not now']) {
      assert.equal((await toast.locator('.monaco-button', { hasText: button }).count()) >= 1, true, `button ${button}`);
    }
    await wb.screenshot('first-run');
    await toast.locator('.monaco-button', { hasText: 'Not now' }).first().click();
    await toast.waitFor({ state: 'hidden', timeout: 10_000 });
  },
});

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
  name: 'first run without a model: the walkthrough opens (once), one prompt offers download or a file, and the status says so',
  timeoutMs: 150_000,
  async run(ui) {
    const wb = await ui.open({ fakeEngine: true, fakeModel: false });
    const item = await wb.waitForStatusBarItem(/no model/i, { timeoutMs: 60_000 });
    assert.match(`${item.label} ${item.text}`, /SmallThinker/);
    const toast = wb.page.locator('.notification-toast', { hasText: 'SmallThinker Code needs a model' });
    await toast.waitFor({ state: 'visible', timeout: 30_000 });
    for (const button of ['Download', 'Choose File', 'Not now']) {
      assert.equal((await toast.locator('.monaco-button', { hasText: button }).count()) >= 1, true, `button ${button}`);
    }
    // The walkthrough is open on its first step, with its buttons.
    const walkthrough = wb.page.locator('.gettingStartedContainer', { hasText: 'Get started with SmallThinker' });
    await walkthrough.waitFor({ state: 'visible', timeout: 30_000 });
    for (const step of ['Choose or download a model', 'Try inline completion', 'Open the chat', 'Try a refactor'])
      assert.ok(await walkthrough.getByText(step).first().isVisible(), `step "${step}"`);
    for (const button of ['Download…', 'Choose GGUF File…'])
      assert.ok(await walkthrough.getByRole('button', { name: button }).first().isVisible(), `button ${button}`);
    await wb.screenshot('first-run');
    await wb.screenshot('walkthrough');
    await toast.locator('.monaco-button', { hasText: 'Not now' }).first().click();
    await toast.waitFor({ state: 'hidden', timeout: 10_000 });

    // Once: after a reload (the same profile, the walkthrough closed), it does not open again.
    await wb.runCommand('View: Close All Editors');
    await walkthrough.waitFor({ state: 'hidden', timeout: 10_000 });
    // Developer: Reload Window, as a user would: the workbench shuts down in order, saving its
    // editors and storage (a bare page reload can lose what was not yet flushed, and restore the
    // walkthrough from the periodic save).
    const reloaded = wb.page.waitForEvent('framenavigated', { timeout: 60_000 });
    await wb.runCommand('Developer: Reload Window');
    await reloaded;
    await wb.waitForWorkbench();
    await wb.waitForStatusBarItem(/no model/i, { timeoutMs: 60_000 });
    await wb.page.waitForTimeout(6000);
    assert.equal(await wb.page.locator('.gettingStartedContainer').count(), 0, 'the walkthrough did not open again');
    assert.equal(await wb.page.locator('.notification-toast', { hasText: 'SmallThinker Code needs a model' }).count(), 0);
  },
});

tests.push({
  name: 'a missing model file: the message names its path and offers Choose GGUF File…, Download… and Open Walkthrough',
  timeoutMs: 120_000,
  async run(ui) {
    const missing = '/tmp/smallthinker-ui-missing/SmallThinker-4B-A0.6B-Instruct.Q4_0.gguf';
    const wb = await ui.open({ fakeEngine: true, settings: { 'smallthinker.model.path': missing } });
    const toast = wb.page.locator('.notification-toast', { hasText: 'was not found' });
    await toast.waitFor({ state: 'visible', timeout: 60_000 });
    assert.ok(((await toast.textContent()) ?? '').includes(missing), await toast.textContent());
    const buttons = (await toast.locator('.monaco-button').allTextContents()).map((t) => t.trim()).filter(Boolean);
    assert.deepEqual(buttons, ['Choose GGUF File…', 'Download…', 'Open Walkthrough']);
    await wb.screenshot('missing-model');
    await toast.locator('.monaco-button', { hasText: 'Open Walkthrough' }).click();
    await wb.page
      .locator('.gettingStartedContainer', { hasText: 'Get started with SmallThinker' })
      .waitFor({ state: 'visible', timeout: 30_000 });
  },
});

tests.push({
  name: 'ghost text beside the suggest widget extends its selected item',
  timeoutMs: 150_000,
  async run(ui) {
    // The fake engine answers this whatever the prompt; the provider puts the selected item before it.
    const wb = await ui.open({ fakeEngine: true, fakeModel: true, env: { FAKE_ENGINE_COMPLETION: '[:3]  # the three smallest' } });
    await wb.waitForStatusBarItem(/SmallThinker Fake/, { timeoutMs: 60_000 });
    await wb.openFile('scripts/stats.py');
    await wb.goToLine(13, 1);
    await wb.type('    x = ord', { delayMs: 60 });
    await wb.press('Control+Space');
    const widget = wb.page.locator('.editor-widget.suggest-widget.visible');
    await widget.waitFor({ state: 'visible', timeout: 30_000 });
    await widget.locator('.monaco-list-row.focused', { hasText: 'ordered' }).waitFor({ state: 'visible', timeout: 15_000 });
    // The rest of the selected item is .ghost-text-decoration, the text beyond it -preview.
    const ghost = wb.page.locator('.monaco-editor [class*="ghost-text-decoration"]');
    let shown = '';
    for (let i = 0; i < 60 && !shown.startsWith('ered[:3]'); i++) {
      await wb.page.waitForTimeout(250);
      shown = (await ghost.allTextContents()).join('').replace(/\u00a0/g, ' ');
    }
    // "ered" is the rest of the selected "ordered", then the completion: one inline suggestion.
    assert.ok(shown.startsWith('ered[:3]  # the three smallest'), `ghost text beside the widget: "${shown}"`);
    assert.ok(await widget.isVisible(), 'the suggest widget is still open');
    await wb.screenshot('ghost-text-suggest-widget');
    // Accepting the selected item keeps the rest as ghost text; Tab accepts it.
    await wb.press('Enter');
    await widget.waitFor({ state: 'hidden', timeout: 10_000 });
    await ghost.first().waitFor({ state: 'visible', timeout: 15_000 });
    await wb.press('Tab');
    await wb.page.waitForTimeout(300);
    const text = await wb.editorText();
    assert.ok(text.includes('    x = ordered[:3]  # the three smallest'), `accepted text in the editor:\n${text}`);
  },
});

tests.push({
  name: 'a refactor is written into its diff as the model generates; Cancel (or Esc) stops it and leaves the file as it was',
  timeoutMs: 150_000,
  async run(ui) {
    // A slow answer (a word every 300 ms): the diff is there while it is written.
    const answer = [
      '```ts',
      '/** The mean of the values (0 when there are none). */',
      'export function mean(values: number[]): number {',
      '  if (values.length === 0) return 0;',
      '  let total = 0;',
      '  for (const v of values) total += v;',
      '  return total / values.length;',
      '}',
      '```',
    ].join('\n');
    const wb = await ui.open({
      fakeEngine: true,
      fakeModel: true,
      env: { FAKE_ENGINE_CHAT_DELAY_MS: '300', FAKE_ENGINE_CHAT_TEXT: answer },
    });
    await proposeDocumentation(wb); // resolves once the diff is visible
    const progress = wb.page.locator('.notification-toast', { hasText: 'SmallThinker: adding documentation' });
    await progress.waitFor({ state: 'visible', timeout: 15_000 });
    const modified = wb.page.locator('.monaco-diff-editor .editor.modified .view-lines').first();
    const proposedText = async () => ((await modified.textContent()) ?? '').replace(/\u00a0/g, ' ');
    // The documentation comment arrives word by word.
    const seen = [];
    for (let i = 0; i < 60 && !seen.some((t) => t.includes('(0 when there are none). */')); i++) {
      const text = await proposedText();
      if (text.includes('/**') && text !== seen[seen.length - 1]) seen.push(text);
      await wb.page.waitForTimeout(100);
    }
    assert.ok(seen.length >= 2, `the right side grew while the model wrote:\n${seen.join('\n---\n')}`);
    assert.ok(seen[seen.length - 1].includes('(0 when there are none). */'), seen[seen.length - 1]);
    assert.equal(await wb.page.locator('.notification-toast', { hasText: 'SmallThinker proposes' }).count(), 0, 'not a proposal yet');
    await wb.screenshot('refactor-preview');
    await progress.locator('.monaco-button', { hasText: 'Cancel' }).first().click();
    await wb.page.locator('.monaco-diff-editor').first().waitFor({ state: 'hidden', timeout: 15_000 });
    await progress.waitFor({ state: 'hidden', timeout: 10_000 });
    await wb.page.waitForTimeout(1000);
    assert.equal(await wb.page.locator('.notification-toast', { hasText: 'SmallThinker proposes' }).count(), 0, 'no proposal after Cancel');
    const text = await wb.editorText(); // math.ts again, as it was
    assert.ok(text.includes('export function mean(values: number[]): number {') && !text.includes('/** The mean'), text);
    assert.ok(!(await wb.page.locator('.tabs-container .tab.dirty').count()), 'the file is not modified');

    // Esc in the diff while it is written stops it too.
    await wb.goToLine(7, 1);
    for (let i = 0; i < 6; i++) await wb.press('Shift+ArrowDown');
    await wb.runCommand('SmallThinker: Add Documentation');
    await wb.page.locator('.monaco-diff-editor').first().waitFor({ state: 'visible', timeout: 60_000 });
    await progress.waitFor({ state: 'visible', timeout: 15_000 });
    await wb.page.locator('.monaco-diff-editor .editor.modified textarea').first().focus();
    await wb.press('Escape');
    await wb.page.locator('.monaco-diff-editor').first().waitFor({ state: 'hidden', timeout: 15_000 });
    await progress.waitFor({ state: 'hidden', timeout: 10_000 });
    await wb.page.waitForTimeout(1000);
    assert.equal(await wb.page.locator('.notification-toast', { hasText: 'SmallThinker proposes' }).count(), 0, 'no proposal after Esc');
    assert.ok(!(await wb.editorText()).includes('/** The mean'), 'the file is as it was after Esc');
  },
});

// Helpers for Playwright UI tests against a real VS Code (code-server + headless Chromium): open
// a workbench with the extension installed (the dev folder, or a .vsix), run commands through
// the palette, open files, type, find status bar items, take screenshots.
// UI tests live in test/ui/*.ui.mjs and run through test/harness/runUiTests.mjs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { launchBrowser } from './browser.mjs';
import { createProfile, installVsix, startCodeServer } from './codeServer.mjs';
import { removeTempDir } from './tempDirs.mjs';
import { createSampleWorkspace } from './workspace.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const EXTENSION_ID = 'smallthinker-code.smallthinker-code';
/** Where compiled tests live: $SMALLTHINKER_TEST_OUT or <repo>/out. */
export const OUT_DIR = process.env.SMALLTHINKER_TEST_OUT ? path.resolve(process.env.SMALLTHINKER_TEST_OUT) : path.join(ROOT, 'out');
export const FAKE_ENGINE = path.join(OUT_DIR, 'test', 'vscode', 'fakeEngine.js');
export const SCREENSHOT_DIR = path.join(ROOT, 'test-results', 'screenshots');
export const PUBLISHED_SCREENSHOT_DIR = path.join(ROOT, 'media', 'screenshots');

/** Copies test-results/screenshots/<name>.png to media/screenshots/<as>.png (for the README). */
export function publishScreenshot(name, as = name) {
  const from = path.join(SCREENSHOT_DIR, `${name}.png`);
  if (!fs.existsSync(from)) throw new Error(`No screenshot ${from}: run the UI test that takes it first.`);
  fs.mkdirSync(PUBLISHED_SCREENSHOT_DIR, { recursive: true });
  const to = path.join(PUBLISHED_SCREENSHOT_DIR, `${as}.png`);
  fs.copyFileSync(from, to);
  return to;
}

/** Writes a placeholder "model" file for the fake engine (it accepts any existing file). */
export function fakeModelFile(dir, name = 'SmallThinker-Fake.gguf') {
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, name);
  if (!fs.existsSync(p)) fs.writeFileSync(p, 'GGUF fake model for UI tests\n');
  return p;
}

export class Workbench {
  constructor({ server, browser, workspace, cleanup }) {
    this.server = server;
    this.browser = browser;
    /** The Playwright page of the workbench. */
    this.page = browser.page;
    this.workspace = workspace;
    this.cleanup = cleanup;
  }

  /** Waits for `.monaco-workbench` (about 5-6 s after page load). */
  async waitForWorkbench(timeoutMs = 60_000) {
    await this.page.waitForSelector('.monaco-workbench', { timeout: timeoutMs });
  }

  /**
   * Runs a command through the palette by its full label ("SmallThinker: Show Engine Log"): waits
   * for the row whose aria-label is exactly the label (fuzzy matching can pick a neighbour), or the
   * label followed by what VS Code adds after a comma ("…, recently used", its keybinding).
   */
  async runCommand(label, { timeoutMs = 15_000 } = {}) {
    const page = this.page;
    await this.dismissQuickInput();
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: timeoutMs });
    await input.fill(`>${label}`);
    const exact = cssString(label);
    const row = page
      .locator(`.quick-input-list .monaco-list-row[aria-label="${exact}"], .quick-input-list .monaco-list-row[aria-label^="${exact}, "]`)
      .first();
    await row.waitFor({ state: 'visible', timeout: timeoutMs });
    await row.click();
    await page
      .locator('.quick-input-widget')
      .waitFor({ state: 'hidden', timeout: timeoutMs })
      .catch(() => {});
  }

  /** Opens a workspace file (path relative to the workspace) through Quick Open; waits for its tab. */
  async openFile(relPath, { timeoutMs = 15_000 } = {}) {
    const page = this.page;
    const base = path.basename(relPath);
    const dir = path.dirname(relPath);
    await this.dismissQuickInput();
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: timeoutMs });
    await input.fill(relPath);
    // Rows read "math.ts src, file results" (the name, then its folder).
    const rowLabel = dir === '.' ? base : `${base} ${dir}`;
    const row = page.locator(`.quick-input-list .monaco-list-row[aria-label^="${cssString(rowLabel)}"]`).first();
    await row.waitFor({ state: 'visible', timeout: timeoutMs });
    await row.click();
    await page
      .locator(`.tabs-container .tab[aria-label^="${cssString(base)}"]`)
      .first()
      .waitFor({ timeout: timeoutMs });
    await this.focusEditor();
  }

  /** Focuses the active editor's text area. */
  async focusEditor() {
    await this.page.locator('.editor-group-container.active .monaco-editor textarea').first().focus();
  }

  /** Moves the cursor of the active editor to line[:column] (1-based) through Quick Open ":line:col". */
  async goToLine(line, column, { timeoutMs = 15_000 } = {}) {
    await this.dismissQuickInput();
    await this.focusEditor();
    await this.page.keyboard.press('Control+P');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: timeoutMs });
    await input.fill(column ? `:${line}:${column}` : `:${line}`);
    await this.page.waitForTimeout(200);
    await this.page.keyboard.press('Enter');
    await this.page
      .locator('.quick-input-widget')
      .waitFor({ state: 'hidden', timeout: timeoutMs })
      .catch(() => {});
    const want = `Ln ${line}, Col ${column ?? 1}`;
    await this.page.locator('.statusbar-item[id="status.editor.selection"]', { hasText: want }).waitFor({ timeout: timeoutMs });
  }

  /** Types into the focused element (the editor after openFile). */
  async type(text, { delayMs = 20 } = {}) {
    await this.page.keyboard.type(text, { delay: delayMs });
  }

  async press(keys) {
    await this.page.keyboard.press(keys);
  }

  /** The visible text of the active editor (spaces normalized: Monaco renders them as U+00A0). */
  async editorText() {
    const lines = await this.page.locator('.editor-group-container.active .monaco-editor .view-lines .view-line').allTextContents();
    return lines.map((l) => l.replace(/\u00a0/g, ' ')).join('\n');
  }

  /** Locator of the status bar entries whose text matches `pattern` (RegExp or substring). */
  statusBarItem(pattern) {
    return this.page.locator('.statusbar-item').filter({ hasText: pattern });
  }

  /** Locator of a status bar entry by its id ("<extension id>.<item id>" for extensions). */
  statusBarItemById(id) {
    return this.page.locator(`.statusbar-item[id="${cssString(id)}"]`);
  }

  /** Waits for a status bar entry whose aria-label or text matches; resolves to {id, label, text}. */
  async waitForStatusBarItem(pattern, { timeoutMs = 60_000 } = {}) {
    const re = typeof pattern === 'string' ? new RegExp(escapeRegExp(pattern)) : pattern;
    const deadline = Date.now() + timeoutMs;
    let seen = [];
    while (Date.now() < deadline) {
      seen = await this.statusBarEntries();
      const hit = seen.find((e) => re.test(e.label) || re.test(e.text));
      if (hit) return hit;
      await this.page.waitForTimeout(250);
    }
    throw new assert.AssertionError({
      message: `No status bar item matching ${re} within ${timeoutMs / 1000} s; the status bar had: ${seen.map((e) => JSON.stringify(e.label || e.text)).join(', ')}`,
    });
  }

  /** Every status bar entry: {id, label (aria-label), text}. */
  async statusBarEntries() {
    return this.page.$$eval('.statusbar-item', (els) =>
      els.map((e) => ({
        id: e.id,
        label: e.getAttribute('aria-label') || e.querySelector('[aria-label]')?.getAttribute('aria-label') || '',
        text: (e.textContent || '').trim(),
      })),
    );
  }

  /** Closes a quick input left open by a previous step. */
  async dismissQuickInput() {
    if (
      await this.page
        .locator('.quick-input-widget')
        .isVisible()
        .catch(() => false)
    )
      await this.page.keyboard.press('Escape');
  }

  /** Saves a screenshot to test-results/screenshots/<name>.png; returns its path. */
  async screenshot(name, { fullPage = false } = {}) {
    fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const p = path.join(SCREENSHOT_DIR, `${name}.png`);
    await this.page.screenshot({ path: p, fullPage });
    return p;
  }

  /** Closes the browser and stops the server (its whole process group). */
  async close() {
    await this.browser.close().catch(() => {});
    await this.server.stop().catch(() => {});
    await this.cleanup?.();
  }
}

/**
 * Starts code-server with the extension and opens a workbench on a workspace.
 * Options:
 *   workspace    folder (default: a new temporary sample workspace, removed on close)
 *   settings     user settings (e.g. {'smallthinker.model.path': ...})
 *   env          environment of the server and extension host
 *   fakeEngine   true (default): SMALLTHINKER_ENGINE_HOST = the compiled fake engine; false: real engine
 *   fakeModel    true: set smallthinker.model.path to a placeholder file (for the fake engine)
 *   extension    'dev' (default): the repository folder, linked into the profile's extensions;
 *                {vsix: path}: installed from a .vsix with --install-extension; 'none'
 *   waitForWorkbench  default true
 *   prepareProfile    called with the new profile's paths before the server starts (e.g. to put files in it)
 * Resolves to a Workbench; call close() (runUiTests does it for you).
 */
export async function openWorkbench(options = {}) {
  const { env = {}, fakeEngine = true, fakeModel = false, extension = 'dev', waitForWorkbench = true } = options;
  const ownWorkspace = !options.workspace;
  const workspace = options.workspace ?? createSampleWorkspace();
  const profile = createProfile();
  options.prepareProfile?.(profile);
  const settings = { ...(options.settings ?? {}) };
  if (fakeModel && settings['smallthinker.model.path'] === undefined) settings['smallthinker.model.path'] = fakeModelFile(profile.root);
  const serverEnv = { ...env };
  if (fakeEngine) {
    if (!fs.existsSync(FAKE_ENGINE)) throw new Error(`The fake engine ${FAKE_ENGINE} is not compiled: run npx tsc -p . first.`);
    serverEnv.SMALLTHINKER_ENGINE_HOST = FAKE_ENGINE;
  }
  const cleanup = () => {
    removeTempDir(profile.root);
    if (ownWorkspace) removeTempDir(workspace);
  };
  let server;
  let browser;
  try {
    if (extension === 'dev') linkDevExtension(profile, ROOT);
    else if (extension && extension.vsix) installVsix(profile, extension.vsix);
    server = await startCodeServer({ profile, settings, env: serverEnv, folder: workspace });
    browser = await launchBrowser();
    const wb = new Workbench({ server, browser, workspace, cleanup });
    await browser.page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}`, { timeout: 60_000 });
    if (waitForWorkbench) await wb.waitForWorkbench();
    return wb;
  } catch (err) {
    await browser?.close().catch(() => {});
    await server?.stop().catch(() => {});
    cleanup();
    throw err;
  }
}

/**
 * Makes a folder an installed extension of a profile: a symlink named <publisher>.<name>-<version>
 * in its extensions folder. VS Code scans it like an installed extension (no marketplace needed).
 */
export function linkDevExtension(profile, folder = ROOT) {
  const pkg = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8'));
  const link = path.join(profile.extensionsDir, `${pkg.publisher}.${pkg.name}-${pkg.version}`);
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync(folder, link, 'dir');
  return link;
}

function cssString(s) {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The chat webview's document (two nested iframes). */
export function chatFrame(page) {
  return page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
}

/** Opens the chat panel and sends `text` as the user; resolves to the chat frame. */
export async function sendChat(wb, text) {
  await wb.runCommand('SmallThinker: Open Chat');
  const chat = chatFrame(wb.page);
  const input = chat.locator('[data-testid="chat-input"]');
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  await input.fill(text);
  await input.press('Enter');
  return chat;
}

/**
 * Opens the sample workspace's src/math.ts, selects mean() (lines 7-12) and runs Add Documentation;
 * resolves once the proposal's diff is visible (the fake engine answers with an add() function, so
 * there is a change).
 */
export async function proposeDocumentation(wb) {
  await wb.waitForStatusBarItem(/SmallThinker Fake/, { timeoutMs: 60_000 });
  await wb.openFile('src/math.ts');
  await wb.goToLine(7, 1);
  for (let i = 0; i < 6; i++) await wb.press('Shift+ArrowDown');
  await wb.runCommand('SmallThinker: Add Documentation');
  await wb.page.locator('.monaco-diff-editor').first().waitFor({ state: 'visible', timeout: 60_000 });
}

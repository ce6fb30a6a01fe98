// The selection commands: Explain (asks in the chat panel), and Refactor / Add Documentation /
// Fix / Write Tests, which ask the model for new code (one-shot chat, no conversation) and show it
// as a proposal the user reviews in a diff and accepts (all or part) or rejects (proposals.ts).
// While the model writes, that diff is already open and shows the proposal so far (live preview).
import * as path from 'node:path';

import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc';

import type { ChatAttachment } from '../../../common/chatTypes';
import { Commands } from '../../../common/ids';
import { EngineErrorCodes, type ChatMessage } from '../../../common/protocol';
import {
  answerTokenBudget,
  appendCode,
  answerLimitText,
  buildEditMessages,
  cutOffForecast,
  expectedAnswerTokens,
  extractCode,
  fitReplacement,
  generationLimitState,
  normalizeNewCode,
  partialCode,
  selectionLines,
  splitRegion,
  testFileNameFor,
  type EditAction,
  type LineRegion,
  type PromptDiagnostic,
} from '../../../common/refactor';
import { chatConfig } from '../../config';
import { EngineUnavailableError, errorMessage, isCancellation } from '../../engineService';
import type { Services } from '../../services';
import { ProposalManager, type PendingProposalInfo, type PreviewInfo, type ProposalPreview } from './proposals';

/** Files longer than this are not taken whole when nothing is selected. */
const WHOLE_FILE_MAX_LINES = 400;
/** Temperature ceiling for edits (the chat setting may be higher). */
const EDIT_TEMPERATURE = 0.2;

let manager: ProposalManager | undefined;

/** For the extension-host tests: the pending proposal, if any. */
export function pendingProposalForTests(): PendingProposalInfo | undefined {
  return manager?.pending;
}

/** For the extension-host tests: the live preview of the proposal being written, if any. */
export function refactorPreviewForTests(): PreviewInfo | undefined {
  return manager?.preview;
}

/** Optional arguments of the edit commands (tests use them to skip the prompts). */
interface EditArgs {
  /** Refactor: the instruction (no input box). */
  instruction?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !(value instanceof vscode.Uri);
}

export function registerRefactor(context: vscode.ExtensionContext, services: Services): void {
  const proposals = new ProposalManager(services.log);
  manager = proposals;
  const edit = (action: EditAction) => (args?: unknown) => runEdit(action, services, proposals, isRecord(args) ? (args as EditArgs) : {});
  context.subscriptions.push(
    proposals,
    { dispose: () => void (manager === proposals && (manager = undefined)) },
    vscode.commands.registerCommand(Commands.explain, () => explain(services)),
    vscode.commands.registerCommand(Commands.refactor, edit('refactor')),
    vscode.commands.registerCommand(Commands.document, edit('document')),
    vscode.commands.registerCommand(Commands.fix, edit('fix')),
    vscode.commands.registerCommand(Commands.writeTests, edit('tests')),
    vscode.commands.registerCommand(Commands.acceptEdit, () => proposals.accept()),
    // From the editor title bar the argument is the file's URI; { hunks: [...] } skips the QuickPick.
    vscode.commands.registerCommand(Commands.acceptEditPart, (args?: unknown) => {
      const hunks =
        isRecord(args) && Array.isArray(args.hunks)
          ? (args.hunks as unknown[]).filter((x): x is number => typeof x === 'number')
          : undefined;
      return hunks ? proposals.accept(hunks) : proposals.acceptPart();
    }),
    vscode.commands.registerCommand(Commands.rejectEdit, () => proposals.reject()),
  );
}

// ---------------------------------------------------------------- what the command works on

interface Target {
  region: LineRegion;
  kind: 'selection' | 'symbol' | 'file';
}

const BLOCK_KINDS = new Set([
  vscode.SymbolKind.Function,
  vscode.SymbolKind.Method,
  vscode.SymbolKind.Constructor,
  vscode.SymbolKind.Class,
  vscode.SymbolKind.Interface,
  vscode.SymbolKind.Enum,
  vscode.SymbolKind.Struct,
]);

/** The innermost function, method or class around `position`, from the language's symbols. */
async function enclosingBlock(document: vscode.TextDocument, position: vscode.Position): Promise<vscode.Range | undefined> {
  const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1500));
  let symbols: Array<vscode.DocumentSymbol | vscode.SymbolInformation> | undefined;
  try {
    symbols = await Promise.race([
      vscode.commands.executeCommand<Array<vscode.DocumentSymbol | vscode.SymbolInformation> | undefined>(
        'vscode.executeDocumentSymbolProvider',
        document.uri,
      ),
      timeout,
    ]);
  } catch {
    return undefined;
  }
  let best: vscode.Range | undefined;
  const visit = (list: ReadonlyArray<vscode.DocumentSymbol | vscode.SymbolInformation>): void => {
    for (const symbol of list) {
      const range = 'location' in symbol ? symbol.location.range : symbol.range;
      if (!range.contains(position)) continue;
      if (BLOCK_KINDS.has(symbol.kind) && (!best || best.contains(range))) best = range;
      if ('children' in symbol) visit(symbol.children);
    }
  };
  visit(symbols ?? []);
  return best;
}

/**
 * The lines a command works on: the selection (whole lines); with none, the enclosing function,
 * method or class (Write Tests: the whole file); else the whole file if it is not too long.
 */
async function commandTarget(editor: vscode.TextEditor, action: EditAction | 'explain'): Promise<Target | undefined> {
  const { selection, document } = editor;
  if (!selection.isEmpty) return { region: selectionLines(selection.start, selection.end), kind: 'selection' };
  if (action !== 'tests') {
    const block = await enclosingBlock(document, selection.active);
    if (block) return { region: { startLine: block.start.line, endLine: block.end.line }, kind: 'symbol' };
  }
  if (document.lineCount <= WHOLE_FILE_MAX_LINES)
    return { region: { startLine: 0, endLine: Math.max(0, document.lineCount - 1) }, kind: 'file' };
  if (action === 'explain') {
    const line = selection.active.line;
    const startLine = Math.max(0, line - 60);
    return { region: { startLine, endLine: Math.min(document.lineCount - 1, startLine + 119) }, kind: 'selection' };
  }
  return undefined;
}

const VERBS: Readonly<Record<EditAction | 'explain', string>> = {
  explain: 'explain',
  refactor: 'refactor',
  document: 'document',
  fix: 'fix',
  tests: 'write tests for',
};

function activeEditor(action: EditAction | 'explain'): vscode.TextEditor | undefined {
  // Run from something else that has the focus (the walkthrough's button): the one file in view.
  const visible = vscode.window.visibleTextEditors.filter((e) => e.document.uri.scheme !== 'output');
  const editor = vscode.window.activeTextEditor ?? (visible.length === 1 ? visible[0] : undefined);
  if (!editor) void vscode.window.showInformationMessage(`Open a file and select the code to ${VERBS[action]} first.`);
  return editor;
}

function fileLabel(uri: vscode.Uri): string {
  return path.posix.basename(uri.path) || uri.toString();
}

// ---------------------------------------------------------------- Explain

async function explain(services: Services): Promise<void> {
  const editor = activeEditor('explain');
  if (!editor) return;
  const target = await commandTarget(editor, 'explain');
  if (!target) return;
  const { document } = editor;
  const { region } = target;
  const text = splitRegion(document.getText(), region).region;
  if (text.trim() === '') {
    void vscode.window.showInformationMessage('There is no code here to explain: select some code first.');
    return;
  }
  const name = fileLabel(document.uri);
  const attachment: ChatAttachment = {
    id: `explain-${Date.now()}`,
    kind: target.kind === 'file' ? 'file' : 'selection',
    uri: document.uri.toString(),
    label: target.kind === 'file' ? name : `${name}:${region.startLine + 1}-${region.endLine + 1}`,
    languageId: document.languageId,
    text,
    startLine: region.startLine,
    endLine: region.endLine,
  };
  services.chat.ask({ prompt: 'Explain this code.', attachments: [attachment] });
  try {
    await vscode.commands.executeCommand(Commands.focusChat);
  } catch (err) {
    services.log.error(`Could not open the chat panel: ${errorMessage(err)}`);
    void vscode.window.showErrorMessage(
      'SmallThinker could not open the chat panel to explain the code; see the log (SmallThinker: Show Engine Log).',
    );
  }
}

// ---------------------------------------------------------------- the edit commands

function diagnosticsIn(uri: vscode.Uri, region: LineRegion): PromptDiagnostic[] {
  const severities: PromptDiagnostic['severity'][] = ['error', 'warning', 'information', 'hint'];
  return vscode.languages
    .getDiagnostics(uri)
    .filter((d) => d.range.start.line <= region.endLine && d.range.end.line >= region.startLine)
    .sort((a, b) => a.severity - b.severity || a.range.start.line - b.range.start.line)
    .slice(0, 20)
    .sort((a, b) => a.range.start.line - b.range.start.line)
    .map((d) => ({
      severity: severities[d.severity] ?? 'error',
      line: d.range.start.line,
      message: d.message,
      source: d.source,
      code: d.code === undefined ? undefined : typeof d.code === 'object' ? String(d.code.value) : String(d.code),
    }));
}

interface TestTarget {
  uri: vscode.Uri;
  exists: boolean;
  text: string;
}

/** The test file next to the document (Write Tests): foo.test.ts, test_foo.py, foo_test.go, ... */
async function testTarget(document: vscode.TextDocument): Promise<TestTarget> {
  const own = fileLabel(document.uri);
  const name = testFileNameFor(own, document.languageId);
  if (name === own) return { uri: document.uri, exists: true, text: document.getText() };
  const uri =
    document.uri.scheme === 'untitled'
      ? vscode.Uri.from({ scheme: 'untitled', path: name })
      : vscode.Uri.joinPath(document.uri, '..', name);
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (open) return { uri, exists: open.uri.scheme !== 'untitled' || open.getText() !== '', text: open.getText() };
  if (uri.scheme === 'untitled') return { uri, exists: false, text: '' };
  try {
    await vscode.workspace.fs.stat(uri);
  } catch {
    return { uri, exists: false, text: '' };
  }
  const doc = await vscode.workspace.openTextDocument(uri);
  return { uri, exists: true, text: doc.getText() };
}

async function runEdit(action: EditAction, services: Services, proposals: ProposalManager, args: EditArgs): Promise<boolean> {
  const editor = activeEditor(action);
  if (!editor) return false;
  const { document } = editor;

  let instruction: string | undefined;
  if (action === 'refactor') {
    instruction =
      typeof args.instruction === 'string'
        ? args.instruction
        : await vscode.window.showInputBox({
            title: 'SmallThinker: Refactor',
            prompt: 'How should the code change?',
            placeHolder: 'e.g. use async/await · extract a helper function · rename x to count',
            ignoreFocusOut: true,
          });
    if (instruction === undefined || instruction.trim() === '') return false;
  }

  const target = await commandTarget(editor, action);
  if (!target) {
    void vscode.window.showInformationMessage(
      `The file is too long to ${VERBS[action]} as a whole: select the code to ${VERBS[action]} first.`,
    );
    return false;
  }
  const baseText = document.getText();
  const baseVersion = document.version;
  const parts = splitRegion(baseText, target.region);
  if (parts.region.trim() === '') {
    void vscode.window.showInformationMessage(`There is no code here to ${VERBS[action]}: select some code first.`);
    return false;
  }
  const eol = document.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n';
  const diagnostics = action === 'fix' ? diagnosticsIn(document.uri, target.region) : undefined;
  const tests = action === 'tests' ? await testTarget(document) : undefined;

  const config = chatConfig();
  const messages = buildEditMessages({
    action,
    fileName: vscode.workspace.asRelativePath(document.uri, false),
    languageId: document.languageId,
    text: baseText,
    region: target.region,
    instruction,
    diagnostics,
    testFileName: tests ? fileLabel(tests.uri) : undefined,
    existingTests: tests?.exists ? tests.text : undefined,
  });
  const maxTokens = answerTokenBudget(parts.region, action === 'tests' ? Math.max(config.maxTokens, 1536) : config.maxTokens);

  // The proposal made of some code: the region replaced, or the tests added to their file.
  const testsEol = tests?.exists && tests.text.includes('\n') ? (tests.text.includes('\r\n') ? '\r\n' : '\n') : eol;
  const proposalText = (code: string): string => {
    if (tests) {
      const added = normalizeNewCode(code, testsEol);
      return tests.exists ? appendCode(tests.text, added, testsEol) : added;
    }
    return parts.before + fitReplacement(code, parts.region, eol) + parts.after;
  };
  const file = tests ? { target: tests.uri, exists: tests.exists, baseText: tests.text } : { target: document.uri, exists: true, baseText };
  const preview = await proposals.startPreview(file);
  try {
    const answer = await generate(
      services,
      action,
      messages,
      Math.min(config.temperature, EDIT_TEMPERATURE),
      maxTokens,
      expectedAnswerTokens(action, parts.region),
      {
        preview,
        // The proposal as it would be if the answer ended here (nothing yet: the file as it is).
        onText: (text) => {
          const code = partialCode(text);
          preview.update(code.trim() === '' ? file.baseText : proposalText(code));
        },
      },
    );
    if (!answer) return false;

    const extracted = extractCode(answer.text);
    if (extracted.code.trim() === '') {
      services.log.warn(`${action}: the answer had no code: ${JSON.stringify(answer.text.slice(0, 500))}`);
      void vscode.window.showWarningMessage('SmallThinker answered without any code. Try again, or rephrase the request.');
      return false;
    }
    const notes: string[] = [];
    if (answer.truncated)
      notes.push(
        `The answer was cut off at its token limit (${answer.limitText ?? 'setting smallthinker.chat.maxTokens'}): check the end of the change.`,
      );
    if (diagnostics && diagnostics.length === 0)
      notes.push('No problems were reported in the selection, so SmallThinker looked for bugs itself.');
    const note = notes.length > 0 ? notes.join(' ') : undefined;

    const proposedText = proposalText(extracted.code);
    if (!tests && proposedText === baseText) {
      void vscode.window.showInformationMessage(`SmallThinker proposes no changes to ${fileLabel(document.uri)}.${note ? ` ${note}` : ''}`);
      return false;
    }
    if (!tests && document.version !== baseVersion)
      services.log.info(`${fileLabel(document.uri)} changed while SmallThinker worked; the proposal is carried over to it.`);
    await proposals.propose({ ...file, proposedText, note }, preview);
    return true;
  } finally {
    // Cancelled, failed or without a change: the preview goes (no-op once it became the proposal).
    await proposals.closePreview(preview);
  }
}

const PROGRESS_TITLES: Readonly<Record<EditAction, string>> = {
  refactor: 'refactoring',
  document: 'adding documentation',
  fix: 'fixing',
  tests: 'writing tests',
};

interface Answer {
  text: string;
  /** Cut off by the token limit before the code block ended. */
  truncated: boolean;
  /** What limited the answer, in words (for the note when it was cut off). */
  limitText?: string;
}

/** The progress messages of the latest edit command (extension-host tests read them). */
let progressLog: string[] = [];
export function refactorProgressForTests(): readonly string[] {
  return progressLog;
}

/** Cancels the running edit command as its notification's Cancel button does (false: none runs). */
let cancelRunning: (() => void) | undefined;
export function cancelRefactorForTests(): boolean {
  if (!cancelRunning) return false;
  cancelRunning();
  return true;
}

interface GenerateOptions {
  /** The live preview: the user cancels the generation through it too (Reject, closing its diff). */
  preview?: ProposalPreview;
  /** The answer so far, after each token. */
  onText?: (text: string) => void;
}

/**
 * Runs the one-shot chat request under a cancellable progress notification that says what happens:
 * waiting for the model, evaluating the prompt, tokens generated of the limit, and as soon as it is
 * known that the answer will be cut off. Stops the model once the code block is closed. Undefined
 * when cancelled or failed (the error is shown).
 */
async function generate(
  services: Services,
  action: EditAction,
  messages: ChatMessage[],
  temperature: number,
  maxTokens: number,
  expectedTokens: number,
  options: GenerateOptions = {},
): Promise<Answer | undefined> {
  const log: string[] = [];
  progressLog = log;
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `SmallThinker: ${PROGRESS_TITLES[action]}…`, cancellable: true },
      async (progress, notificationToken) => {
        // The user cancels with the notification's Cancel, or through the preview.
        const user = new vscode.CancellationTokenSource();
        const token = user.token;
        const cancel = (): void => user.cancel();
        cancelRunning = cancel;
        const fromNotification = notificationToken.onCancellationRequested(cancel);
        const fromPreview = options.preview?.token.onCancellationRequested(cancel);
        if (options.preview?.token.isCancellationRequested) cancel();
        try {
          const stop = new vscode.CancellationTokenSource();
          const linked = token.onCancellationRequested(() => stop.cancel());
          let warning = '';
          const report = (message: string): void => {
            const text = warning ? `${message}. ⚠ ${warning}` : message;
            if (log[log.length - 1] === text) return;
            log.push(text);
            progress.report({ message: text });
          };
          const warn = (text: string): void => {
            if (warning === text) return;
            warning = text;
            services.log.warn(`${action}: ${text}`);
          };
          let text = '';
          let tokens = 0;
          let lastReport = 0;
          let blockDone = false;
          /** The answer's token limit as the engine set it (known once it has the prompt). */
          let limit: { allowed: number; requested: number; promptTokens: number; contextLength: number } | undefined;
          const status = services.engine.status;
          if (status.kind === 'loading' || status.kind === 'starting') {
            report('waiting for the model to load');
            await services.engine.settled();
            if (token.isCancellationRequested) return undefined;
          }
          report('waiting for the engine');
          try {
            const result = await services.engine.chat(
              { messages, sampling: { temperature }, maxTokens },
              (delta) => {
                text += delta;
                tokens++;
                if (!token.isCancellationRequested) options.onText?.(text);
                // A closing fence counts once its line has ended (a longer fence may be arriving).
                if (!blockDone && delta.includes('\n')) {
                  const code = extractCode(text.slice(0, text.lastIndexOf('\n')));
                  if (code.fenced && code.closed) {
                    blockDone = true;
                    stop.cancel();
                  }
                }
                if (limit) {
                  const state = generationLimitState(tokens, limit.allowed, blockDone);
                  if (state === 'reached') warn(`The answer reached its token limit and is cut off: ${answerLimitText(limit)}.`);
                  else if (state === 'near') warn(`The answer is close to its token limit and may be cut off: ${answerLimitText(limit)}.`);
                }
                const now = Date.now();
                if (now - lastReport >= 250 || tokens === 1) {
                  lastReport = now;
                  report(`${tokens} tokens generated${limit ? ` of at most ${limit.allowed}` : ''}`);
                }
              },
              stop.token,
              {
                label: action,
                onProgress: (value) => {
                  if (value.kind === 'begin' && value.prompt) {
                    const p = value.prompt;
                    limit = { allowed: p.maxTokens, requested: maxTokens, promptTokens: p.promptTokens, contextLength: p.contextLength };
                    const forecast = cutOffForecast(expectedTokens, limit);
                    if (forecast) warn(forecast);
                    const fresh = p.promptTokens - p.cachedTokens;
                    report(`evaluating ${fresh} prompt tokens${p.cachedTokens > 0 ? ` (${p.cachedTokens} cached)` : ''}`);
                  } else if (value.kind === 'report' && tokens === 0) {
                    report('generating');
                  }
                },
              },
            );
            if (token.isCancellationRequested) return undefined;
            const answerText = blockDone ? text : result.text;
            return {
              text: answerText,
              truncated: result.stopReason === 'length' && !extractCode(answerText).closed,
              limitText: limit ? answerLimitText(limit) : undefined,
            };
          } catch (err) {
            if (blockDone && !token.isCancellationRequested && isCancellation(err)) return { text, truncated: false };
            throw err;
          } finally {
            linked.dispose();
            stop.dispose();
          }
        } finally {
          fromNotification.dispose();
          fromPreview?.dispose();
          user.dispose();
          if (cancelRunning === cancel) cancelRunning = undefined;
        }
      },
    );
  } catch (err) {
    if (isCancellation(err)) return undefined;
    showFailure(services, action, err);
    return undefined;
  }
}

function showFailure(services: Services, action: EditAction, err: unknown): void {
  services.log.error(`${action} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  const buttons: string[] = [];
  let message: string;
  if (err instanceof EngineUnavailableError) {
    message = err.message;
    if (err.status.kind === 'noModel' || err.status.kind === 'error') buttons.push('Choose Model File');
  } else if (err instanceof ResponseError && err.code === EngineErrorCodes.ContextOverflow) {
    message = `The code and its context do not fit the model's context (${err.message}). Select less code, or raise the setting smallthinker.engine.contextLength.`;
  } else {
    message = `SmallThinker could not ${VERBS[action]} the code: ${errorMessage(err)}. Try again; if it keeps failing, see the engine log.`;
  }
  buttons.push('Show Log');
  void vscode.window.showErrorMessage(message, ...buttons).then((choice) => {
    if (choice === 'Choose Model File') void vscode.commands.executeCommand(Commands.chooseModel);
    else if (choice === 'Show Log') void vscode.commands.executeCommand(Commands.showLog);
  });
}

// What the chat panel offers to attach to the next message: the selection of the text editor the
// user works in (the active one, or the last one while focus is in the panel) and that editor's
// file (a window around the cursor when the file is long). Chips the user removed, or already sent,
// stay away until the selection or the file changes.
import * as vscode from 'vscode';

import { baseName, truncateText, windowAroundLine } from '../../../common/chatHistory';
import type { ChatAttachment } from '../../../common/chatTypes';

/** Editors whose text is not the user's code. */
const IGNORED_SCHEMES = new Set(['output', 'debug', 'vscode-scm', 'comment', 'vscode-terminal', 'walkThroughSnippet']);
export const SELECTION_MAX_CHARS = 24_000;
const SELECTION_DEBOUNCE_MS = 200;

export function usableDocument(document: vscode.TextDocument): boolean {
  return !IGNORED_SCHEMES.has(document.uri.scheme);
}

function fileName(document: vscode.TextDocument): string {
  return baseName(document.uri.path) || document.uri.toString();
}

function lines(startLine: number, endLine: number): string {
  return startLine === endLine ? `${startLine + 1}` : `${startLine + 1}-${endLine + 1}`;
}

export function selectionAttachment(editor: vscode.TextEditor): ChatAttachment | undefined {
  const selection = editor.selection;
  if (selection.isEmpty) return undefined;
  const { document } = editor;
  const text = document.getText(selection);
  if (!text.trim()) return undefined;
  const startLine = selection.start.line;
  // A selection that ends at the start of a line does not include that line.
  const endLine = selection.end.character === 0 && selection.end.line > startLine ? selection.end.line - 1 : selection.end.line;
  const uri = document.uri.toString();
  return {
    id: `selection:${uri}#${selection.start.line}:${selection.start.character}-${selection.end.line}:${selection.end.character}`,
    kind: 'selection',
    uri,
    label: `${fileName(document)}:${lines(startLine, endLine)}`,
    languageId: document.languageId,
    text: truncateText(text, SELECTION_MAX_CHARS),
    startLine,
    endLine,
  };
}

export function fileAttachment(editor: vscode.TextEditor, maxChars: number): ChatAttachment | undefined {
  const { document } = editor;
  const text = document.getText();
  if (!text.trim()) return undefined;
  const uri = document.uri.toString();
  const base = { id: `file:${uri}`, kind: 'file' as const, uri, languageId: document.languageId };
  if (text.length <= maxChars) return { ...base, label: fileName(document), text };
  const window = windowAroundLine(text, editor.selection.active.line, maxChars);
  return {
    ...base,
    label: `${fileName(document)}:${lines(window.startLine, window.endLine)}`,
    text: window.text,
    startLine: window.startLine,
    endLine: window.endLine,
  };
}

export class EditorAttachments implements vscode.Disposable {
  private last: vscode.TextEditor | undefined;
  private lastDocument: string | undefined;
  private readonly hidden = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly emitter = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [];
  /** Fired (debounced) when the chips on offer may have changed. */
  readonly onDidChange = this.emitter.event;

  constructor(private readonly fileMaxChars: () => number) {
    this.track(vscode.window.activeTextEditor);
    this.disposables.push(
      this.emitter,
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (this.track(editor)) this.changed(0);
      }),
      vscode.window.onDidChangeTextEditorSelection((event) => {
        if (event.textEditor === this.editor) this.changed(SELECTION_DEBOUNCE_MS);
      }),
      vscode.workspace.onDidCloseTextDocument((document) => {
        if (this.last?.document === document) {
          this.last = undefined;
          this.lastDocument = undefined;
          this.changed(0);
        }
      }),
    );
  }

  /** Remembers the editor if it holds the user's code; true when it did. */
  private track(editor: vscode.TextEditor | undefined): boolean {
    if (!editor || !usableDocument(editor.document)) return false;
    const uri = editor.document.uri.toString();
    if (uri !== this.lastDocument) this.hidden.clear();
    this.lastDocument = uri;
    this.last = editor;
    return true;
  }

  private changed(delayMs: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.emitter.fire();
    }, delayMs);
  }

  /** The editor code actions and attachments work with: the active text editor, else the last one. */
  get editor(): vscode.TextEditor | undefined {
    const active = vscode.window.activeTextEditor;
    if (active && usableDocument(active.document)) return active;
    const last = this.last;
    if (!last) return undefined;
    const visible = vscode.window.visibleTextEditors;
    return visible.find((e) => e === last) ?? visible.find((e) => e.document === last.document) ?? last;
  }

  /** Everything that could be attached now, including chips the user removed. */
  private all(): ChatAttachment[] {
    const editor = this.editor;
    if (!editor || editor.document.isClosed) return [];
    const out: ChatAttachment[] = [];
    const selection = selectionAttachment(editor);
    if (selection) out.push(selection);
    const file = fileAttachment(editor, this.fileMaxChars());
    if (file) out.push(file);
    return out;
  }

  /** The chips on offer. */
  list(): ChatAttachment[] {
    return this.all().filter((a) => !this.hidden.has(a.id));
  }

  /** The attachments with these ids, with their current text. */
  pick(ids: readonly string[]): ChatAttachment[] {
    const wanted = new Set(ids);
    return this.list().filter((a) => wanted.has(a.id));
  }

  /** The user removed a chip. */
  remove(id: string): void {
    this.hidden.add(id);
    this.changed(0);
  }

  /** These were sent: do not offer them again until the selection or file changes. */
  consume(ids: readonly string[]): void {
    for (const id of ids) this.hidden.add(id);
    this.changed(0);
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}

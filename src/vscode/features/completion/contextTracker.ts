// Collects cross-file context for completion prompts into a ChunkRing: the place the user last
// edited in a document (once the cursor moves away from it or the user switches files), the cursor
// region of a file being saved or left, and multi-line text copied to the clipboard. Also warms the
// engine's KV cache for the active document when the user pauses after switching files.
import * as vscode from 'vscode';

import { ChunkRing } from '../../../common/contextChunks';

/** Lines the cursor must move from the last edit before that edit's region becomes a chunk. */
const MOVE_AWAY_LINES = 32;
const MAX_CLIPBOARD_LINES = 64;

export function displayName(document: vscode.TextDocument): string {
  if (document.uri.scheme === 'file' || document.uri.scheme === 'vscode-remote') {
    const relative = vscode.workspace.asRelativePath(document.uri, false);
    return relative.replace(/\\/g, '/');
  }
  return document.fileName.split(/[\\/]/).pop() ?? document.fileName;
}

function eligible(document: vscode.TextDocument): boolean {
  return (
    !document.isClosed && ['file', 'untitled', 'vscode-remote', 'vscode-userdata'].includes(document.uri.scheme) && document.lineCount > 0
  );
}

export class ContextTracker implements vscode.Disposable {
  readonly ring = new ChunkRing();
  private readonly lastEdit = new Map<string, number>();
  private readonly lastCursor = new Map<string, number>();
  private lastClipboard = '';
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly enabled: () => boolean) {
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.contentChanges.length === 0) return;
        this.lastEdit.set(e.document.uri.toString(), e.contentChanges[0].range.start.line);
      }),
      vscode.window.onDidChangeTextEditorSelection((e) => {
        const doc = e.textEditor.document;
        const key = doc.uri.toString();
        const line = e.selections[0]?.active.line ?? 0;
        this.lastCursor.set(key, line);
        const edited = this.lastEdit.get(key);
        if (edited !== undefined && Math.abs(line - edited) > MOVE_AWAY_LINES) {
          this.addAround(doc, edited);
          this.lastEdit.delete(key);
        }
      }),
      vscode.window.onDidChangeActiveTextEditor(() => this.onLeave()),
      vscode.workspace.onDidSaveTextDocument((doc) => {
        const line = this.lastCursor.get(doc.uri.toString()) ?? this.lastEdit.get(doc.uri.toString());
        if (line !== undefined) this.addAround(doc, line);
      }),
      vscode.workspace.onDidDeleteFiles((e) => {
        for (const uri of e.files) this.ring.remove(uri.toString());
      }),
    );
    this.previousEditor = vscode.window.activeTextEditor;
  }

  private previousEditor: vscode.TextEditor | undefined;

  /** The editor the user left: its last edit (or cursor) region becomes a chunk. */
  private onLeave(): void {
    const left = this.previousEditor;
    this.previousEditor = vscode.window.activeTextEditor;
    if (!left) return;
    const key = left.document.uri.toString();
    const line = this.lastEdit.get(key) ?? this.lastCursor.get(key);
    if (line !== undefined) this.addAround(left.document, line);
    this.lastEdit.delete(key);
  }

  private addAround(document: vscode.TextDocument, line: number): void {
    if (!this.enabled() || !eligible(document)) return;
    this.ring.addAround(document.uri.toString(), displayName(document), document.getText(), line);
  }

  /**
   * Adds the clipboard as a chunk when it holds new multi-line text (called per request: no copy
   * event exists). Desktop only: in a browser-based VS Code (code-server, vscode.dev) reading the
   * clipboard asks the browser for permission and shows an error notification when refused.
   */
  async pollClipboard(): Promise<void> {
    if (!this.enabled() || vscode.env.uiKind !== vscode.UIKind.Desktop) return;
    let text: string;
    try {
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve(this.lastClipboard), 50));
      text = await Promise.race([vscode.env.clipboard.readText(), timeout]);
    } catch {
      return;
    }
    if (text === this.lastClipboard) return;
    this.lastClipboard = text;
    const lines = text.split('\n');
    if (lines.length < 3 || lines.length > MAX_CLIPBOARD_LINES * 4) return;
    this.ring.add({ source: 'clipboard', fileName: 'clipboard', startLine: 0, text: lines.slice(0, MAX_CLIPBOARD_LINES).join('\n') });
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

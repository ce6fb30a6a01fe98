// The buttons on the chat's code blocks: copy (through VS Code's clipboard: the webview's own may be
// blocked), insert at the cursor, and replace the selection. Edits go through editor.edit, so one
// Undo takes them back.
import * as vscode from 'vscode';

import type { CodeAction } from '../../../common/chatMessages';

export interface CodeActionResult {
  ok: boolean;
  /** For the user: what happened or what to do; absent when the result speaks for itself. */
  message?: string;
}

/** A live editor for the document of `editor` (the panel may hold a stale one while it has focus). */
async function liveEditor(editor: vscode.TextEditor): Promise<vscode.TextEditor> {
  if (vscode.window.visibleTextEditors.includes(editor)) return editor;
  const visible = vscode.window.visibleTextEditors.find((e) => e.document === editor.document);
  if (visible) return visible;
  return vscode.window.showTextDocument(editor.document, {
    viewColumn: editor.viewColumn,
    preserveFocus: true,
    selection: editor.selection,
  });
}

export async function runCodeAction(action: CodeAction, code: string, target: vscode.TextEditor | undefined): Promise<CodeActionResult> {
  if (action === 'copy') {
    await vscode.env.clipboard.writeText(code);
    return { ok: true };
  }
  if (!target) return { ok: false, message: 'Open a file in the editor first: the code goes where its cursor or selection is.' };
  const editor = await liveEditor(target);
  if (action === 'insert') {
    const at = editor.selection.active;
    const done = await editor.edit((edit) => edit.insert(at, code));
    if (!done) return { ok: false, message: 'The editor refused the edit (is the file read-only?).' };
    editor.revealRange(new vscode.Range(at, at), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    return { ok: true, message: `Inserted the code into ${vscode.workspace.asRelativePath(editor.document.uri)}.` };
  }
  const selection = editor.selection;
  if (selection.isEmpty) return { ok: false, message: 'Select the code to replace in the editor first, then press Apply again.' };
  // Whole lines selected (the selection ends at the start of a line): keep the line break.
  const wholeLines = selection.end.character === 0 && selection.end.line > selection.start.line;
  const text = wholeLines && !code.endsWith('\n') ? `${code}\n` : code;
  const done = await editor.edit((edit) => edit.replace(selection, text));
  if (!done) return { ok: false, message: 'The editor refused the edit (is the file read-only?).' };
  editor.revealRange(new vscode.Range(selection.start, selection.start), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  return { ok: true, message: `Replaced the selection in ${vscode.workspace.asRelativePath(editor.document.uri)}.` };
}

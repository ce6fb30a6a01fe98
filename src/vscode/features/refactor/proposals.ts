// Proposed edits under review: the proposed text served under the 'smallthinker-proposal' scheme,
// shown in a diff editor against the real file; Accept (all or some hunks, one undoable
// WorkspaceEdit on the real document), Accept Part… (QuickPick of hunks) and Reject.
//
// Live preview: while the model writes, the diff is already open and its right side grows with the
// text so far (updated at most every PREVIEW_INTERVAL_MS); when the answer ends the same diff becomes
// the proposal. Reject (Esc, ✕) or closing the diff while it is written cancels the generation.

// One proposal is pending at a time (a new one rejects the old). Closing its diff tab without
// choosing rejects it. While it is pending a notification says so; it ends with the proposal
// (a notification with Accept / Reject buttons could not be taken back once the proposal is
// settled elsewhere, so its only button is Cancel, which rejects). After Accept the cursor sits at
// the start of the change, with nothing selected. While it is pending, edits to the file carry the proposal over (the diff
// stays right) unless they touch its lines; Accept then refuses and keeps it open.
import * as vscode from 'vscode';

import { ContextKeys } from '../../../common/ids';
import { applyHunks, diffLines, editedSpan, hunkEdits, hunkLabel, hunkPreview, rebaseHunks, type Hunk } from '../../../common/lineDiff';

export const PROPOSAL_SCHEME = 'smallthinker-proposal';
/** Shortest time between two updates of a live preview. */
export const PREVIEW_INTERVAL_MS = 150;

export interface ProposalInput {
  /** The file the edit is for (it may not exist yet: `exists` false). */
  target: vscode.Uri;
  exists: boolean;
  /** The target's text the proposal was made from ('' when it does not exist). */
  baseText: string;
  proposedText: string;
  /** Extra line for the notification (e.g. "The answer was cut off."). */
  note?: string;
}

interface Proposal extends ProposalInput {
  id: number;
  /** Right side of the diff: the proposed text. */
  proposalUri: vscode.Uri;
  /** Left side: the file itself, or an empty document when it does not exist yet. */
  originalUri: vscode.Uri;
  /** Set once its diff editor is open (before that, tab changes do not reject it). */
  opened: boolean;
  /** Ends its notification (set while one is shown). */
  endNotification?: () => void;
}

/** The file a proposal is for, known before the model writes it. */
export type PreviewInput = Pick<ProposalInput, 'target' | 'exists' | 'baseText'>;

/** A proposal the model is writing: its diff shows the text so far. */
export interface ProposalPreview {
  /** Cancelled when the user rejects the preview (Esc, Reject, closing its diff) or another replaces it. */
  readonly token: vscode.CancellationToken;
  /** The proposed text so far (shown within PREVIEW_INTERVAL_MS; the diff opens with the first). */
  update(text: string): void;
}

interface Preview extends PreviewInput, ProposalPreview {
  id: number;
  proposalUri: vscode.Uri;
  originalUri: vscode.Uri;
  cancellation: vscode.CancellationTokenSource;
  /** Set once its diff editor is open. */
  opened: boolean;
  opening?: Promise<void>;
  /** The text not yet shown, and when the shown text last changed. */
  waiting?: string;
  shownAt: number;
  timer?: NodeJS.Timeout;
  /** Times the shown text changed. */
  updates: number;
  closed: boolean;
}

/** What the extension-host tests can see of a live preview. */
export interface PreviewInfo {
  id: number;
  uri: vscode.Uri;
  proposalUri: vscode.Uri;
  /** The text the diff shows now. */
  text: string;
  updates: number;
  opened: boolean;
}

/** What the extension-host tests can see of the pending proposal. */
export interface PendingProposalInfo {
  id: number;
  uri: vscode.Uri;
  proposalUri: vscode.Uri;
  exists: boolean;
  baseText: string;
  proposedText: string;
  hunks: Hunk[];
}

function basename(uri: vscode.Uri): string {
  const path = uri.path;
  return path.slice(path.lastIndexOf('/') + 1) || path;
}

/** The diff's title, the same while the proposal is written and after (an open diff keeps its title). */
function diffTitle(target: vscode.Uri, exists: boolean): string {
  const key = process.platform === 'darwin' ? 'Cmd' : 'Ctrl';
  return `${basename(target)}${exists ? '' : ' (new file)'}: SmallThinker proposal (Accept ${key}+Enter / Reject Esc)`;
}

/** The right and left sides of proposal `id`'s diff. */
function proposalUris(id: number, target: vscode.Uri, exists: boolean): { proposalUri: vscode.Uri; originalUri: vscode.Uri } {
  const query = `proposal=${id}`;
  return {
    proposalUri: vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: target.path, query }),
    originalUri: exists ? target : vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: target.path, query: `${query}&side=original` }),
  };
}

export class ProposalManager implements vscode.Disposable, vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly disposables: vscode.Disposable[] = [];
  private current: Proposal | undefined;
  private previewing: Preview | undefined;
  private nextId = 1;
  private accepting = false;

  readonly onDidChange = this.changed.event;

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.disposables.push(
      vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, this),
      vscode.window.tabGroups.onDidChangeTabs(() => this.checkStillShown()),
      vscode.window.tabGroups.onDidChangeTabGroups(() => this.checkStillShown()),
      vscode.workspace.onDidChangeTextDocument((event) => this.onDocumentChanged(event.document)),
    );
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '';
  }

  get preview(): PreviewInfo | undefined {
    const p = this.previewing;
    if (!p) return undefined;
    const text = this.texts.get(p.proposalUri.toString()) ?? '';
    return { id: p.id, uri: p.target, proposalUri: p.proposalUri, text, updates: p.updates, opened: p.opened };
  }

  /**
   * Starts the live preview of a proposal the model is about to write (rejecting a pending proposal
   * and cancelling another preview: one at a time). Its diff opens with the first update.
   */
  async startPreview(input: PreviewInput): Promise<ProposalPreview> {
    if (this.previewing) {
      this.log.info(`A new proposal replaces the one being written for ${basename(this.previewing.target)} (cancelled).`);
      await this.closePreview(this.previewing);
    }
    if (this.current) {
      this.log.info(`A new proposal replaces the one for ${basename(this.current.target)} (rejected).`);
      await this.finish(this.current);
    }
    const id = this.nextId++;
    const cancellation = new vscode.CancellationTokenSource();
    const preview: Preview = {
      ...input,
      ...proposalUris(id, input.target, input.exists),
      id,
      cancellation,
      token: cancellation.token,
      opened: false,
      shownAt: 0,
      updates: 0,
      closed: false,
      update: (text) => this.updatePreview(preview, text),
    };
    this.texts.set(preview.proposalUri.toString(), input.baseText);
    if (!input.exists) this.texts.set(preview.originalUri.toString(), '');
    this.previewing = preview;
    await vscode.commands.executeCommand('setContext', ContextKeys.editPreview, true);
    return preview;
  }

  private updatePreview(preview: Preview, text: string): void {
    if (preview.closed) return;
    preview.waiting = text;
    if (preview.timer) return;
    const wait = Math.max(0, preview.shownAt + PREVIEW_INTERVAL_MS - Date.now());
    preview.timer = setTimeout(() => this.showPreview(preview), wait);
  }

  /** Shows the waiting text of a preview (opening its diff the first time). */
  private showPreview(preview: Preview): void {
    preview.timer = undefined;
    const text = preview.waiting;
    preview.waiting = undefined;
    const key = preview.proposalUri.toString();
    if (preview.closed || text === undefined || text === this.texts.get(key)) return;
    this.texts.set(key, text);
    preview.shownAt = Date.now();
    preview.updates++;
    if (preview.opened) this.changed.fire(preview.proposalUri);
    else preview.opening ??= this.openPreview(preview);
  }

  private async openPreview(preview: Preview): Promise<void> {
    try {
      await vscode.commands.executeCommand(
        'vscode.diff',
        preview.originalUri,
        preview.proposalUri,
        diffTitle(preview.target, preview.exists),
        {
          preview: false,
        },
      );
    } catch (err) {
      this.log.warn(`Could not open the preview of the proposal for ${basename(preview.target)}: ${String(err)}`);
      return;
    }
    if (preview.closed) return;
    preview.opened = true;
    this.changed.fire(preview.proposalUri); // text that arrived while it opened
    this.checkStillShown();
  }

  /** Ends a preview that did not become a proposal: cancels its generation, closes its diff. */
  async closePreview(preview: ProposalPreview): Promise<void> {
    const p = preview as Preview;
    if (p.closed) return;
    p.closed = true;
    if (p.timer) clearTimeout(p.timer);
    p.cancellation.cancel();
    p.cancellation.dispose();
    if (this.previewing === p) {
      this.previewing = undefined;
      await vscode.commands.executeCommand('setContext', ContextKeys.editPreview, false);
    }
    await p.opening;
    const tabs = this.tabsShowing(p.proposalUri);
    this.texts.delete(p.proposalUri.toString());
    this.texts.delete(p.originalUri.toString());
    if (tabs.length > 0) await vscode.window.tabGroups.close(tabs);
  }

  get pending(): PendingProposalInfo | undefined {
    const p = this.current;
    if (!p) return undefined;
    return {
      id: p.id,
      uri: p.target,
      proposalUri: p.proposalUri,
      exists: p.exists,
      baseText: p.baseText,
      proposedText: p.proposedText,
      hunks: diffLines(p.baseText, p.proposedText),
    };
  }

  /**
   * Opens the diff of a proposal and makes it the pending one (rejecting any other). With the
   * preview it was written in, the preview's diff becomes the proposal's. Resolves once the diff is
   * open; the Accept / Accept Part… / Reject notification is not waited for.
   */
  async propose(input: ProposalInput, preview?: ProposalPreview): Promise<void> {
    const from = preview as Preview | undefined;
    const adopt = from && !from.closed && from.target.toString() === input.target.toString() && from.exists === input.exists;
    if (from && !adopt) await this.closePreview(from);
    if (this.current) {
      this.log.info(`A new proposal replaces the one for ${basename(this.current.target)} (rejected).`);
      await this.finish(this.current);
    }
    let proposal: Proposal;
    if (adopt) {
      from.closed = true; // now the proposal's: no more updates
      if (from.timer) clearTimeout(from.timer);
      from.cancellation.dispose();
      if (this.previewing === from) this.previewing = undefined;
      await from.opening;
      proposal = { ...input, id: from.id, proposalUri: from.proposalUri, originalUri: from.originalUri, opened: false };
      await vscode.commands.executeCommand('setContext', ContextKeys.editPreview, false);
    } else {
      const id = this.nextId++;
      proposal = { ...input, id, ...proposalUris(id, input.target, input.exists), opened: false };
      if (!input.exists) this.texts.set(proposal.originalUri.toString(), '');
    }
    this.texts.set(proposal.proposalUri.toString(), input.proposedText);
    this.changed.fire(proposal.proposalUri);
    this.current = proposal;
    // The file may have changed while the model worked: carry the proposal over at once.
    const open = input.exists ? vscode.workspace.textDocuments.find((d) => d.uri.toString() === input.target.toString()) : undefined;
    if (open) this.onDocumentChanged(open);
    await vscode.commands.executeCommand('setContext', ContextKeys.editPending, true);

    // (An open preview's diff is revealed, not opened again.)
    await vscode.commands.executeCommand('vscode.diff', proposal.originalUri, proposal.proposalUri, diffTitle(input.target, input.exists), {
      preview: false,
    });
    if (this.current !== proposal) return;
    proposal.opened = true;
    this.checkStillShown();
    if (this.current === proposal) this.notify(proposal);
  }

  /** A notification for as long as the proposal is pending; its Cancel button rejects it. */
  private notify(proposal: Proposal): void {
    const count = diffLines(proposal.baseText, proposal.proposedText).length;
    const what = proposal.exists
      ? `${count} change${count === 1 ? '' : 's'} to ${basename(proposal.target)}`
      : `a new file, ${basename(proposal.target)}`;
    const key = process.platform === 'darwin' ? 'Cmd' : 'Ctrl';
    const message =
      `review the diff, then Accept (${key}+Enter or ✓ above the diff), Accept Part… (☑) or Reject (Esc, or Cancel here).` +
      (proposal.note ? ` ${proposal.note}` : '');
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `SmallThinker proposes ${what}`, cancellable: true },
      (progress, token) => {
        progress.report({ message });
        return new Promise<void>((resolve) => {
          if (this.current !== proposal) return resolve();
          const cancel = token.onCancellationRequested(() => {
            if (this.current === proposal) void this.reject();
            end();
          });
          const end = (): void => {
            cancel.dispose();
            if (proposal.endNotification === end) proposal.endNotification = undefined;
            resolve();
          };
          proposal.endNotification = end;
        });
      },
    );
  }

  /** Applies the pending proposal (all hunks, or those at `indexes` of its hunk list). */
  async accept(indexes?: readonly number[]): Promise<boolean> {
    // One accept at a time (the notification's button and Ctrl+Enter can both arrive).
    if (this.accepting) return false;
    this.accepting = true;
    try {
      return await this.applyPending(indexes);
    } finally {
      this.accepting = false;
    }
  }

  private async applyPending(indexes?: readonly number[]): Promise<boolean> {
    const p = this.current;
    if (!p && this.previewing) {
      void vscode.window.showInformationMessage('SmallThinker is still writing the proposal: accept it once it is done.');
      return false;
    }
    if (!p) {
      void vscode.window.showInformationMessage(
        'No SmallThinker proposal is pending: run Refactor, Add Documentation, Fix or Write Tests first.',
      );
      return false;
    }
    const all = diffLines(p.baseText, p.proposedText);
    const chosen =
      indexes === undefined ? all : [...new Set(indexes)].filter((i) => Number.isInteger(i) && i >= 0 && i < all.length).map((i) => all[i]);
    if (chosen.length === 0) {
      void vscode.window.showInformationMessage('No change was chosen; the proposal stays open (reject it to close it).');
      return false;
    }
    const name = basename(p.target);
    const edit = new vscode.WorkspaceEdit();
    let document: vscode.TextDocument | undefined;
    /** Where the change lands in the new text (offsets), for the cursor. */
    let span: { start: number; end: number } | undefined;
    if (p.exists) {
      document = await vscode.workspace.openTextDocument(p.target);
      const current = document.getText();
      let hunks = chosen;
      let base = p.baseText;
      if (current !== base) {
        const rebased = rebaseHunks(base, chosen, current);
        if (rebased.conflicts.length > 0) {
          const lines = rebased.conflicts.map((h) => hunkLabel(h).split(':')[0]).join(', ');
          void vscode.window.showWarningMessage(
            `${name} changed where SmallThinker proposes edits (${lines}), so nothing was applied. The proposal stays open: reject it and run the command again.`,
          );
          return false;
        }
        hunks = rebased.hunks;
        base = current;
      }
      const doc = document;
      const edits = hunkEdits(base, hunks);
      for (const e of edits) edit.replace(p.target, new vscode.Range(doc.positionAt(e.start), doc.positionAt(e.end)), e.text);
      span = editedSpan(edits);
    } else {
      const text = applyHunks('', chosen);
      if (p.target.scheme === 'untitled') {
        document = await vscode.workspace.openTextDocument(p.target);
        if (document.getText() !== '') {
          void vscode.window.showWarningMessage(
            `${name} is no longer empty, so nothing was applied. The proposal stays open: reject it and run the command again.`,
          );
          return false;
        }
      } else {
        if (await exists(p.target)) {
          void vscode.window.showWarningMessage(
            `${name} was created in the meantime, so nothing was applied. The proposal stays open: reject it and run Write Tests again (it will add to the file).`,
          );
          return false;
        }
        edit.createFile(p.target, { ignoreIfExists: false, overwrite: false });
      }
      edit.insert(p.target, new vscode.Position(0, 0), text);
    }
    const applied = await vscode.workspace.applyEdit(edit);
    if (!applied) {
      void vscode.window.showErrorMessage(`VS Code could not apply the edit to ${name}. The proposal stays open: try again, or reject it.`);
      return false;
    }
    this.log.info(`Accepted ${chosen.length} of ${all.length} proposed change(s) to ${name}.`);
    await this.finish(p);
    document ??= await vscode.workspace.openTextDocument(p.target);
    const visible = vscode.window.visibleTextEditors.find((e) => e.document === document);
    const editor = await vscode.window.showTextDocument(document, { viewColumn: visible?.viewColumn, preview: false });
    // The selection the command ran on was stretched or shifted by the edit: it would cover code
    // the change did not touch. A cursor at the start of the change instead, and the change in view.
    const start = document.positionAt(span?.start ?? 0);
    editor.selection = new vscode.Selection(start, start);
    editor.revealRange(new vscode.Range(start, document.positionAt(span?.end ?? 0)), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    return true;
  }

  /** Lets the user choose hunks in a QuickPick (all preselected) and applies those. */
  async acceptPart(): Promise<boolean> {
    const p = this.current;
    if (!p) return this.accept();
    const hunks = diffLines(p.baseText, p.proposedText);
    const items = hunks.map((h, index) => ({ label: hunkLabel(h), detail: hunkPreview(h), picked: true, index }));
    const picked = await vscode.window.showQuickPick(items, {
      canPickMany: true,
      title: `Changes to apply to ${basename(p.target)}`,
      placeHolder: 'Uncheck the changes to leave out, then press Enter',
    });
    if (!picked || this.current !== p) return false;
    return this.accept(picked.map((item) => item.index));
  }

  /** Drops the pending proposal (or cancels the one being written) and closes its diff; the file is not touched. */
  async reject(): Promise<boolean> {
    const written = this.previewing;
    if (written && !this.current) {
      this.log.info(`Cancelled the proposal being written for ${basename(written.target)}.`);
      await this.closePreview(written);
      return true;
    }
    const p = this.current;
    if (!p) return false;
    this.log.info(`Rejected the proposal for ${basename(p.target)}.`);
    await this.finish(p);
    return true;
  }

  private async finish(p: Proposal): Promise<void> {
    p.endNotification?.();
    if (this.current === p) {
      this.current = undefined;
      await vscode.commands.executeCommand('setContext', ContextKeys.editPending, false);
    }
    const tabs = this.tabsShowing(p.proposalUri);
    this.texts.delete(p.proposalUri.toString());
    this.texts.delete(p.originalUri.toString());
    if (tabs.length > 0) await vscode.window.tabGroups.close(tabs);
  }

  private tabsShowing(proposalUri: vscode.Uri): vscode.Tab[] {
    const uri = proposalUri.toString();
    return vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .filter((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.toString() === uri);
  }

  /**
   * A pending proposal whose diff is no longer open anywhere was closed: it is rejected. A preview
   * whose diff was closed: its generation is cancelled.
   */
  private checkStillShown(): void {
    const written = this.previewing;
    if (written?.opened && this.tabsShowing(written.proposalUri).length === 0) {
      this.log.info(`The diff of the proposal being written for ${basename(written.target)} was closed: cancelled.`);
      void this.closePreview(written);
    }
    const p = this.current;
    if (!p || !p.opened || this.tabsShowing(p.proposalUri).length > 0) return;
    this.log.info(`The diff of the proposal for ${basename(p.target)} was closed: proposal rejected.`);
    void this.finish(p);
  }

  /** Carries the proposal over edits of its file that do not touch its lines. */
  private onDocumentChanged(document: vscode.TextDocument): void {
    const p = this.current;
    if (!p || !p.exists || document.uri.toString() !== p.target.toString()) return;
    const current = document.getText();
    if (current === p.baseText) return;
    const rebased = rebaseHunks(p.baseText, diffLines(p.baseText, p.proposedText), current);
    // Edited where the proposal changes things: the diff keeps showing it as made; Accept refuses.
    if (rebased.conflicts.length > 0) return;
    p.baseText = current;
    p.proposedText = applyHunks(current, rebased.hunks);
    this.texts.set(p.proposalUri.toString(), p.proposedText);
    this.changed.fire(p.proposalUri);
  }

  dispose(): void {
    if (this.previewing) {
      this.previewing.closed = true;
      if (this.previewing.timer) clearTimeout(this.previewing.timer);
      this.previewing.cancellation.cancel();
      this.previewing.cancellation.dispose();
      void vscode.commands.executeCommand('setContext', ContextKeys.editPreview, false);
      this.previewing = undefined;
    }
    this.current?.endNotification?.();
    if (this.current) void vscode.commands.executeCommand('setContext', ContextKeys.editPending, false);
    this.current = undefined;
    for (const d of this.disposables) d.dispose();
    this.changed.dispose();
  }
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}

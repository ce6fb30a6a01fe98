// Proposed edits under review: the proposed text served under the 'smallthinker-proposal' scheme,
// shown in a diff editor against the real file; Accept (all or some hunks, one undoable
// WorkspaceEdit on the real document), Accept Part… (QuickPick of hunks) and Reject.

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

export class ProposalManager implements vscode.Disposable, vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly disposables: vscode.Disposable[] = [];
  private current: Proposal | undefined;
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
   * Opens the diff of a proposal and makes it the pending one (rejecting any other). Resolves once
   * the diff is open; the Accept / Accept Part… / Reject notification is not waited for.
   */
  async propose(input: ProposalInput): Promise<void> {
    if (this.current) {
      this.log.info(`A new proposal replaces the one for ${basename(this.current.target)} (rejected).`);
      await this.finish(this.current);
    }
    const id = this.nextId++;
    const query = `proposal=${id}`;
    const proposalUri = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: input.target.path, query });
    const originalUri = input.exists
      ? input.target
      : vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: input.target.path, query: `${query}&side=original` });
    const proposal: Proposal = { ...input, id, proposalUri, originalUri, opened: false };
    this.texts.set(proposalUri.toString(), input.proposedText);
    if (!input.exists) this.texts.set(originalUri.toString(), '');
    this.current = proposal;
    // The file may have changed while the model worked: carry the proposal over at once.
    const open = input.exists ? vscode.workspace.textDocuments.find((d) => d.uri.toString() === input.target.toString()) : undefined;
    if (open) this.onDocumentChanged(open);
    await vscode.commands.executeCommand('setContext', ContextKeys.editPending, true);

    const key = process.platform === 'darwin' ? 'Cmd' : 'Ctrl';
    const title = `${basename(input.target)}${input.exists ? '' : ' (new file)'}: SmallThinker proposal (Accept ${key}+Enter / Reject Esc)`;
    await vscode.commands.executeCommand('vscode.diff', originalUri, proposalUri, title, { preview: false });
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

  /** Drops the pending proposal and closes its diff; the file is not touched. */
  async reject(): Promise<boolean> {
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
    const tabs = this.tabsShowing(p);
    this.texts.delete(p.proposalUri.toString());
    this.texts.delete(p.originalUri.toString());
    if (tabs.length > 0) await vscode.window.tabGroups.close(tabs);
  }

  private tabsShowing(p: Proposal): vscode.Tab[] {
    const uri = p.proposalUri.toString();
    return vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .filter((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.toString() === uri);
  }

  /** A pending proposal whose diff is no longer open anywhere was closed: it is rejected. */
  private checkStillShown(): void {
    const p = this.current;
    if (!p || !p.opened || this.tabsShowing(p).length > 0) return;
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

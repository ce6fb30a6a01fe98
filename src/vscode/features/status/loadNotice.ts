// The load's progress notification: a load that is still going after a moment (the first load of a
// model builds its layout file: seconds for the 4B shapes, minutes for the 21B) gets a notification
// with the percentage and the phase, which ends by itself when the load does (ready, failed, no
// model). A laid-out model maps in well under a second and shows only in the status item.
import * as vscode from 'vscode';

import { loadNoticeView } from '../../../common/statusText';
import type { EngineStatus } from '../../engineService';

/** How long a load runs before it gets a notification. */
export const LOAD_NOTICE_DELAY_MS = 1500;

interface StatusSource {
  readonly status: EngineStatus;
  readonly onDidChangeStatus: vscode.Event<EngineStatus>;
}

/** How the notification is shown: vscode.window.withProgress (tests pass a recorder). */
type ShowProgress = <R>(
  options: vscode.ProgressOptions,
  task: (progress: vscode.Progress<{ message?: string; increment?: number }>) => Thenable<R>,
) => Thenable<R>;

export function registerLoadNotice(
  context: Pick<vscode.ExtensionContext, 'subscriptions'>,
  engine: StatusSource,
  { delayMs = LOAD_NOTICE_DELAY_MS, withProgress = ((options, task) => vscode.window.withProgress(options, task)) as ShowProgress } = {},
): void {
  let timer: NodeJS.Timeout | undefined;
  /** Set while the notification is up: reports a state to it, or ends it (undefined). */
  let follow: ((status: EngineStatus) => void) | undefined;

  /** The delay passed while the engine was still starting: open at the first loading state (its title names the model). */
  let due = false;

  const open = (): void => {
    timer = undefined;
    due = engine.status.kind === 'starting';
    const first = engine.status.kind === 'loading' ? loadNoticeView(engine.status) : undefined;
    if (!first) return;
    void withProgress({ location: vscode.ProgressLocation.Notification, title: first.title }, (progress) => {
      let shown = 0;
      const report = (status: EngineStatus): boolean => {
        const view = loadNoticeView(status);
        if (!view) return false;
        // The bar only moves forward (a restart's new load starts at 0 again: the line says so).
        const increment = Math.max(0, view.percentage - shown);
        shown += increment;
        progress.report({ message: view.message, increment });
        return true;
      };
      report(engine.status);
      return new Promise<void>((resolve) => {
        follow = (status) => {
          // Another model's load (the setting changed meanwhile) gets its own notification, titled with it.
          const other = status.kind === 'loading' && loadNoticeView(status)?.title !== first.title;
          if (!other && report(status)) return;
          follow = undefined;
          resolve();
          if (other) open();
        };
      });
    });
  };

  const onStatus = (status: EngineStatus): void => {
    if (follow) return follow(status);
    const loading = loadNoticeView(status) !== undefined;
    if (loading && due) open();
    else if (loading && !timer) timer = setTimeout(open, delayMs);
    else if (!loading) {
      due = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
    }
  };

  onStatus(engine.status);
  context.subscriptions.push(engine.onDidChangeStatus(onStatus), {
    dispose: () => {
      if (timer) clearTimeout(timer);
      follow?.({ kind: 'noModel', message: '' });
    },
  });
}

// The engine process's scheduler: one job holds the engine at a time, so one native operation
// runs at a time. Jobs wait in priority order (completion, then context warming, then chat and
// refactor); a less urgent job that holds the engine gives it up to more urgent queued work at
// its checkpoints (between tokens) or, inside an interruptible operation (a prefill), through
// the operation's interrupt hook, and then resumes where it was. Jobs with the same key (a
// document's KV session) do not pre-empt each other: warming a document's prompt is the work its
// next completion needs, and an interrupted prefill loses the cache entries it had not yet moved.
import { CancellationToken, ResponseError } from 'vscode-jsonrpc';

import { EngineErrorCodes } from '../common/protocol';
import { isEngineError } from '../engine/native';

/** Lower is more urgent. */
export enum Priority {
  Completion = 0,
  Warm = 1,
  Background = 2,
}

export function cancelledError(): ResponseError<void> {
  return new ResponseError(EngineErrorCodes.RequestCancelled, 'The request was cancelled.');
}

/** What a job's body gets from the scheduler. */
export interface JobContext {
  /** Why the job was stopped ($/cancelRequest, model unload, shutdown), once it was. */
  readonly stopReason: ResponseError<unknown> | undefined;
  /** Throws the stop reason if the job was stopped. */
  throwIfStopped(): void;
  /**
   * A pre-emption point (between tokens): throws if the job was stopped; if more urgent work is
   * waiting, gives it the engine and resolves once this job has the engine back.
   */
  checkpoint(): Promise<void>;
  /**
   * Runs a resumable native operation that `interrupt()` ends early with an error coded
   * 'cancelled' (Session.prefill and Session.cancel). On pre-emption the operation is
   * interrupted, the engine goes to the more urgent work, and `op` runs again afterwards (a
   * prefill continues from what it had evaluated). On a stop, the stop reason is thrown.
   */
  interruptible<T>(op: () => Promise<T>, interrupt: () => void): Promise<T>;
}

interface Job {
  readonly seq: number;
  readonly priority: Priority;
  /** Jobs with the same key do not pre-empt each other. */
  readonly key?: string;
  stopReason?: ResponseError<unknown>;
  /** Set while the job runs an interruptible operation. */
  interrupt?: () => void;
  /** A more urgent job asked for the engine while an interruptible operation ran. */
  preemptRequested: boolean;
  /** Set while the job waits for the engine. */
  waiter?: { resolve(): void; reject(err: unknown): void };
}

export interface SchedulerEvents {
  /** A job gave the engine to more urgent work. */
  onPreempt?(): void;
}

export class Scheduler {
  private holder: Job | undefined;
  /** Jobs waiting for the engine, most urgent first, then oldest first. */
  private readonly waiting: Job[] = [];
  private readonly jobs = new Set<Job>();
  private readonly idleWaiters: (() => void)[] = [];
  private nextSeq = 1;

  constructor(private readonly events: SchedulerEvents = {}) {}

  /** Jobs queued, running or paused. */
  get size(): number {
    return this.jobs.size;
  }

  /**
   * Runs `body` as a job once it holds the engine. Rejects with RequestCancelled if `token`
   * is cancelled before or while it runs, and with the reason given to stopAll().
   */
  async run<T>(priority: Priority, token: CancellationToken, body: (ctx: JobContext) => Promise<T>, key?: string): Promise<T> {
    const job: Job = { seq: this.nextSeq++, priority, key, preemptRequested: false };
    this.jobs.add(job);
    const subscription = token.onCancellationRequested(() => this.stop(job, cancelledError()));
    try {
      if (token.isCancellationRequested) throw cancelledError();
      await this.acquire(job);
      try {
        return await body(this.context(job));
      } catch (err) {
        // Whatever a stopped job's native calls threw (cancelled, disposed), the caller gets the reason.
        throw job.stopReason ?? err;
      } finally {
        this.release(job);
      }
    } finally {
      subscription.dispose();
      this.jobs.delete(job);
      if (this.jobs.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  /** Stops every job with `reason` (queued ones at once, running ones at their next chance). */
  stopAll(reason: ResponseError<unknown>): void {
    for (const job of [...this.jobs]) this.stop(job, reason);
  }

  /** Resolves when no job is queued, running or paused. */
  idle(): Promise<void> {
    if (this.jobs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ---------------------------------------------------------------- internals

  private context(job: Job): JobContext {
    const throwIfStopped = (): void => {
      if (job.stopReason) throw job.stopReason;
    };
    return {
      get stopReason() {
        return job.stopReason;
      },
      throwIfStopped,
      checkpoint: async () => {
        throwIfStopped();
        if (this.moreUrgentWaiting(job)) await this.pause(job);
        throwIfStopped();
      },
      interruptible: async <T>(op: () => Promise<T>, interrupt: () => void): Promise<T> => {
        for (;;) {
          throwIfStopped();
          if (this.moreUrgentWaiting(job)) await this.pause(job);
          job.preemptRequested = false;
          job.interrupt = interrupt;
          try {
            return await op();
          } catch (err) {
            if (job.stopReason) throw job.stopReason;
            if (!(job.preemptRequested && isEngineError(err) && err.code === 'cancelled')) throw err;
            // Interrupted for more urgent work: pause, then run the operation again.
          } finally {
            job.interrupt = undefined;
          }
        }
      },
    };
  }

  private moreUrgentWaiting(job: Job): boolean {
    return this.waiting.length > 0 && this.preempts(this.waiting[0], job);
  }

  /** Whether `waiting` may take the engine from `holder`. */
  private preempts(waiting: Job, holder: Job): boolean {
    return waiting.priority < holder.priority && (holder.key === undefined || waiting.key !== holder.key);
  }

  /** Gives the engine to the waiting jobs and waits for it again, keeping the job's place. */
  private async pause(job: Job): Promise<void> {
    this.events.onPreempt?.();
    this.release(job);
    await this.acquire(job);
  }

  private acquire(job: Job): Promise<void> {
    if (job.stopReason) return Promise.reject(job.stopReason);
    if (!this.holder && this.waiting.length === 0) {
      this.holder = job;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      job.waiter = { resolve, reject };
      let i = this.waiting.length;
      while (i > 0 && this.before(job, this.waiting[i - 1])) i--;
      this.waiting.splice(i, 0, job);
      const holder = this.holder;
      if (holder && this.preempts(job, holder)) {
        holder.preemptRequested = true;
        holder.interrupt?.();
      }
    });
  }

  private before(a: Job, b: Job): boolean {
    return a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq);
  }

  private release(job: Job): void {
    if (this.holder !== job) return;
    this.holder = undefined;
    const next = this.waiting.shift();
    if (next) {
      this.holder = next;
      const waiter = next.waiter;
      next.waiter = undefined;
      waiter?.resolve();
    }
  }

  private stop(job: Job, reason: ResponseError<unknown>): void {
    if (job.stopReason) return;
    job.stopReason = reason;
    if (job.waiter) {
      const i = this.waiting.indexOf(job);
      if (i >= 0) this.waiting.splice(i, 1);
      const waiter = job.waiter;
      job.waiter = undefined;
      waiter.reject(reason);
    } else if (this.holder === job) {
      job.interrupt?.();
    }
  }
}

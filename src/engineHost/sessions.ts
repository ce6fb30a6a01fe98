// KV sessions of the loaded model, keyed by what they serve: one per open document
// (completion), one per chat conversation, one per request (refactor, chats without an id).
// The sum of their KV memory stays under a limit: idle sessions are evicted least recently
// used first; a session pinned by a job (running or paused) is never evicted.
import { ResponseError } from 'vscode-jsonrpc';

import { EngineErrorCodes, type ReuseMode, type SessionKind, type SessionStats } from '../common/protocol';
import type { Model, PrefillStats, Session, SessionOptions, TokenInput } from '../engine/native';
import type { JobContext } from './scheduler';

export interface SessionPoolOptions extends SessionOptions {
  nCtx: number;
  kvLimitBytes: number;
  maxSessions: number;
}

export class PooledSession {
  /** Jobs using the session; evictable at 0. */
  pins = 0;
  lastUsed = Date.now();

  constructor(
    readonly id: string,
    readonly kind: SessionKind,
    readonly session: Session,
    /** Freed when its last job ends (sessions of single requests). */
    readonly ephemeral: boolean,
  ) {}
}

const MiB = 1024 * 1024;
/** Bytes as MiB for messages. */
export const mib = (n: number): string => `${(n / MiB).toFixed(n < 10 * MiB ? 1 : 0)} MiB`;

export class SessionPool {
  private readonly entries = new Map<string, PooledSession>();
  private nextRequest = 1;
  /** KV bytes of one session (all have the same options): measureSessionBytes() or the last one made. */
  private bytesPerSession = 0;
  evictions = 0;

  constructor(
    private readonly model: Model,
    readonly options: SessionPoolOptions,
  ) {}

  /**
   * The session for `key` (made if needed), pinned until release(). Without a key, a fresh
   * session for one request. Throws EngineBusy if the memory limit leaves no room because every
   * other session is in use.
   */
  acquire(kind: SessionKind, key?: string): PooledSession {
    const id = key === undefined ? `request:${this.nextRequest++}` : `${kind}:${key}`;
    let entry = this.entries.get(id);
    if (!entry) {
      this.makeRoom(this.bytesPerSession, 1);
      const session = this.createSession();
      this.bytesPerSession = session.kvBytes;
      entry = new PooledSession(id, kind, session, key === undefined);
      this.entries.set(id, entry);
      try {
        this.makeRoom(0, 0);
      } catch (err) {
        this.entries.delete(id);
        session.dispose();
        throw err;
      }
    }
    entry.pins++;
    entry.lastUsed = Date.now();
    return entry;
  }

  /** The KV bytes of one session with the pool's options (makes one and frees it). */
  measureSessionBytes(): number {
    const session = this.createSession();
    this.bytesPerSession = session.kvBytes;
    session.dispose();
    return this.bytesPerSession;
  }

  release(entry: PooledSession): void {
    entry.pins = Math.max(0, entry.pins - 1);
    entry.lastUsed = Date.now();
    if (entry.ephemeral && entry.pins === 0) this.drop(entry);
  }

  get kvBytes(): number {
    let total = 0;
    for (const e of this.entries.values()) total += e.session.disposed ? 0 : e.session.kvBytes;
    return total;
  }

  stats(): SessionStats[] {
    return [...this.entries.values()].map((e) => ({
      id: e.id,
      kind: e.kind,
      tokens: e.session.disposed ? 0 : e.session.nPast,
      kvBytes: e.session.disposed ? 0 : e.session.kvBytes,
      lastUsed: e.lastUsed,
      busy: e.pins > 0,
    }));
  }

  disposeAll(): void {
    for (const e of this.entries.values()) e.session.dispose();
    this.entries.clear();
  }

  /** Evicts idle sessions, least recently used first, until `bytes` more and `count` more fit. */
  private makeRoom(bytes: number, count: number): void {
    const { kvLimitBytes, maxSessions } = this.options;
    while (this.kvBytes + bytes > kvLimitBytes || this.entries.size + count > maxSessions) {
      let victim: PooledSession | undefined;
      for (const e of this.entries.values()) if (e.pins === 0 && (!victim || e.lastUsed < victim.lastUsed)) victim = e;
      if (!victim) {
        const inUse = this.entries.size;
        throw new ResponseError(
          EngineErrorCodes.EngineBusy,
          `All ${inUse} KV sessions are in use and the memory limit (${mib(kvLimitBytes)}, at most ${maxSessions} sessions) ` +
            `leaves no room for another; try again when a chat or completion finishes, or raise kvMemoryLimitBytes.`,
        );
      }
      this.drop(victim);
      this.evictions++;
    }
  }

  private createSession(): Session {
    const { nCtx, nBatch, threads } = this.options;
    return this.model.createSession({ nCtx, nBatch, threads });
  }

  private drop(entry: PooledSession): void {
    this.entries.delete(entry.id);
    entry.session.dispose();
  }
}

/**
 * session.prefill() as an interruptible job operation: a cancellation or more urgent work stops
 * it between batches (session.cancel()); after a pre-emption it continues from the valid prefix
 * the session kept (with reuse 'prefix' when the first call recomputed everything).
 */
export function prefill(ctx: JobContext, session: Session, tokens: TokenInput, mode: ReuseMode): Promise<PrefillStats> {
  let first = true;
  return ctx.interruptible(
    () => {
      const reuse: ReuseMode = first || mode !== 'none' ? mode : 'prefix';
      first = false;
      return session.prefill(tokens, { reuse: { mode: reuse } });
    },
    () => session.cancel(),
  );
}

// completion/create and context/warm in the engine process: the prompt laid out from stable to
// volatile (src/common/prompt.ts) and tokenized piece by piece, a prefill that reuses the
// document's KV session, then greedy candidates: the i-th starts from the i-th best first token.
// Generation stops at an end token, maxTokens, a stop string, a dedent below the cursor line
// (src/common/completionStop.ts), or the time budget.
import { ResponseError } from 'vscode-jsonrpc';

import { CompletionStopper, firstLineEnd, trimSuggestion } from '../common/completionStop';
import { SPECIAL_TOKEN_TEXT, trimToBudget, type BudgetedPrompt } from '../common/prompt';
import {
  EngineErrorCodes,
  type CompletionParams,
  type CompletionPrompt,
  type CompletionResult,
  type CompletionStopReason,
  type WarmParams,
  type WarmResult,
} from '../common/protocol';
import type { Model } from '../engine/native';
import type { LoadedModel } from './model';
import { ParamChecker } from './params';
import type { JobContext } from './scheduler';
import { prefill } from './sessions';
import { TextStream } from './textStream';

export const DEFAULT_COMPLETION_MAX_TOKENS = 128;
export const MAX_CANDIDATES = 8;

/** The fields context/warm shares with completion/create. */
function checkWarmFields(c: ParamChecker, p: Record<string, unknown>): WarmParams {
  return {
    documentId: c.nonEmptyString(p.documentId, 'documentId'),
    prompt: c.completionPrompt(p.prompt),
    fim: c.optionalBoolean(p.fim, 'fim'),
    maxTokens: c.optionalNumber(p.maxTokens, 'maxTokens', { integer: true, min: 1 }),
  };
}

export function checkCompletionParams(raw: unknown): CompletionParams {
  const c: ParamChecker = new ParamChecker('completion/create');
  const p = c.object(raw);
  return {
    ...checkWarmFields(c, p),
    timeBudgetMs: c.optionalNumber(p.timeBudgetMs, 'timeBudgetMs', { min: 1 }),
    stopOnDedent: c.optionalBoolean(p.stopOnDedent, 'stopOnDedent'),
    stop: c.optionalStrings(p.stop, 'stop'),
    candidates: c.optionalNumber(p.candidates, 'candidates', { integer: true, min: 1, max: MAX_CANDIDATES }),
    reuse: c.oneOf(p.reuse, 'reuse', ['none', 'prefix', 'moves'] as const),
    firstLineMs: c.optionalNumber(p.firstLineMs, 'firstLineMs', { min: 0 }),
  };
}

export function checkWarmParams(raw: unknown): WarmParams {
  const c: ParamChecker = new ParamChecker('context/warm');
  return checkWarmFields(c, c.object(raw));
}

// ---------------------------------------------------------------- prompt

/**
 * Lines around the cursor the prompt may hold before the token budget trims it. Generous on
 * purpose: with KV reuse, text already in the cache costs nothing, and a prompt that holds the
 * whole file (when it fits) turns a cursor jump into moved cache entries instead of new tokens.
 */
export const COMPLETION_WINDOW = { maxPrefixLines: 1024, maxSuffixLines: 512 } as const;

/**
 * Tokens of recent prompt pieces, so that the pieces a keystroke did not touch (and the window
 * sizes trimToBudget tries) are not tokenized again on every request. Least recently used first
 * out, bounded by the characters it holds.
 */
class TokenCache {
  private readonly entries = new Map<string, Int32Array>();
  private chars = 0;
  constructor(
    private readonly model: Model,
    private readonly maxChars = 4 * 1024 * 1024,
  ) {}
  get(text: string): Int32Array {
    let ids = this.entries.get(text);
    if (ids) {
      this.entries.delete(text);
      this.entries.set(text, ids);
      return ids;
    }
    ids = this.model.tokenize(text);
    this.entries.set(text, ids);
    this.chars += text.length;
    for (const [key] of this.entries) {
      if (this.chars <= this.maxChars || this.entries.size <= 1) break;
      this.entries.delete(key);
      this.chars -= key.length;
    }
    return ids;
  }
}

const tokenCaches = new WeakMap<Model, TokenCache>();
function tokenCacheFor(model: Model): TokenCache {
  let c = tokenCaches.get(model);
  if (!c) {
    c = new TokenCache(model);
    tokenCaches.set(model, c);
  }
  return c;
}

export interface PromptTokens {
  tokens: Int32Array;
  layout: BudgetedPrompt;
}

/**
 * The completion prompt's tokens, within `budget` tokens (fim: the FIM layout; the caller checks
 * that the vocabulary has FIM tokens). Text pieces are tokenized one by one, so an edit in one
 * piece leaves the tokens of the others as they were; special pieces the vocabulary lacks are
 * left out. Throws ContextOverflow if even the smallest layout does not fit.
 */
export function completionPromptTokens(model: Model, prompt: CompletionPrompt, fim: boolean, budget: number): PromptTokens {
  const cache = tokenCacheFor(model);
  const tokenize = (text: string): Int32Array => cache.get(text);
  const layout = trimToBudget(prompt, { fim, window: COMPLETION_WINDOW }, (text) => tokenize(text).length, budget);
  if (!layout.fits) {
    throw new ResponseError(
      EngineErrorCodes.ContextOverflow,
      `The text around the cursor does not fit the context (${layout.tokens} tokens, ${budget} available); ` +
        `lower maxTokens or load the model with a larger contextLength.`,
    );
  }
  const parts: number[] = [];
  for (const piece of layout.pieces) {
    if ('special' in piece) {
      const id = model.tokenId(SPECIAL_TOKEN_TEXT[piece.special]);
      if (id >= 0) parts.push(id);
    } else if (piece.text.length > 0) {
      for (const id of tokenize(piece.text)) parts.push(id);
    }
  }
  return { tokens: Int32Array.from(parts), layout };
}

/** Tokens a completion may generate: what the caller asked, leaving at least one position for the prompt. */
function maxNewTokens(lm: LoadedModel, asked: number | undefined): number {
  return Math.min(asked ?? DEFAULT_COMPLETION_MAX_TOKENS, lm.pool.options.nCtx - 1);
}

// ---------------------------------------------------------------- completion/create

export async function runCompletion(
  ctx: JobContext,
  lm: LoadedModel,
  params: CompletionParams,
  receivedAt: number,
): Promise<CompletionResult> {
  ctx.throwIfStopped();
  const { model, pool } = lm;
  const maxNew = maxNewTokens(lm, params.maxTokens);
  const fim = (params.fim ?? true) && lm.summary.fim;
  const { tokens, layout } = completionPromptTokens(model, params.prompt, fim, pool.options.nCtx - maxNew);
  if (tokens.length === 0)
    throw new ResponseError(EngineErrorCodes.InvalidParams, 'Invalid completion/create request: the prompt is empty.');

  const entry = pool.acquire('completion', params.documentId);
  const { session } = entry;
  try {
    const stats = await prefill(ctx, session, tokens, params.reuse ?? 'moves');
    const nCandidates = Math.min(params.candidates ?? 1, model.nVocab);
    const firsts = session.topTokens(nCandidates).ids;
    const firstTokenAt = Date.now();

    const texts: string[] = [];
    /** Why the first candidate ended. */
    let stopReason: CompletionStopReason = 'length';
    let decodeTokens = 0;
    let decodeMs = 0;
    let steps = 0;
    for (let i = 0; i < firsts.length; i++) {
      const startedAt = i === 0 ? receivedAt : Date.now();
      if (i > 0) {
        // Back to the prompt (its last logits are not needed: the first token is known).
        if (session.canTruncate(tokens.length)) session.truncate(tokens.length);
        else await prefill(ctx, session, tokens, 'prefix');
      }
      const stopper = new CompletionStopper({
        cursorIndent: layout.indent,
        cursorLinePrefix: layout.cursorLine,
        stopOnDedent: params.stopOnDedent ?? true,
        stop: params.stop ?? [],
        textAfterCursor: params.prompt.suffix,
      });
      const stream = new TextStream(model);
      const budget = params.timeBudgetMs ?? Infinity;
      const lineStartedAt = Date.now();
      let text = '';
      let token = firsts[i];
      /** Set when a rule cut the text: what the stream still holds back is past the cut. */
      let cut = false;
      let why: CompletionStopReason = 'length';
      for (;;) {
        if (lm.endsCompletion(token)) {
          why = 'eog';
          break;
        }
        text += stream.push(token);
        const check = stopper.check(text);
        if (check.stop) {
          text = check.keep;
          cut = true;
          why = 'stop';
          break;
        }
        if (params.firstLineMs !== undefined) {
          // Early end, to show something at once: the first line with text, or what there is.
          const end = firstLineEnd(text);
          if (end >= 0 || (Date.now() - lineStartedAt >= params.firstLineMs && /\S/.test(text))) {
            if (end >= 0) text = text.slice(0, end).replace(/\r$/, '');
            cut = true;
            why = 'line';
            break;
          }
        }
        if (stream.length >= maxNew) break;
        const elapsed = Date.now() - startedAt;
        const newline = text.lastIndexOf('\n');
        if (elapsed >= budget && newline >= 0) {
          // Budget spent: keep the complete lines.
          text = text.slice(0, newline);
          cut = true;
          why = 'budget';
          break;
        }
        if (elapsed >= 2 * budget) {
          why = 'budget';
          break;
        }
        await ctx.checkpoint();
        const t0 = Date.now();
        token = await session.step(token, lm.greedy);
        decodeMs += Date.now() - t0;
        steps++;
      }
      if (i === 0) stopReason = why;
      decodeTokens += stream.length;
      if (!cut) text = stopper.check(text + stream.finish()).keep;
      texts.push(trimSuggestion(text, params.prompt.suffix));
    }

    // Distinct suggestions, best first; the first stays even when empty.
    const candidates = texts.filter((t, i) => i === 0 || (t.length > 0 && texts.indexOf(t) === i));
    return {
      candidates,
      stats: {
        promptTokens: tokens.length,
        reusedTokens: stats.nPrefix + stats.nMoved,
        prefixTokens: stats.nPrefix,
        movedTokens: stats.nMoved,
        evaluatedTokens: stats.nEvaluated,
        prefillMs: stats.totalMs,
        timeToFirstTokenMs: firstTokenAt - receivedAt,
        decodeTokens,
        decodeTokensPerS: decodeMs > 0 ? (steps * 1000) / decodeMs : 0,
        totalMs: Date.now() - receivedAt,
        fim,
        stopReason,
      },
    };
  } finally {
    pool.release(entry);
  }
}

// ---------------------------------------------------------------- context/warm

export async function runWarm(ctx: JobContext, lm: LoadedModel, params: WarmParams): Promise<WarmResult> {
  ctx.throwIfStopped();
  const startedAt = Date.now();
  const budget = lm.pool.options.nCtx - maxNewTokens(lm, params.maxTokens);
  const { tokens } = completionPromptTokens(lm.model, params.prompt, (params.fim ?? true) && lm.summary.fim, budget);
  if (tokens.length === 0) return { promptTokens: 0, evaluatedTokens: 0, reusedTokens: 0, ms: 0 };
  const entry = lm.pool.acquire('completion', params.documentId);
  try {
    const stats = await prefill(ctx, entry.session, tokens, 'moves');
    return {
      promptTokens: tokens.length,
      evaluatedTokens: stats.nEvaluated,
      reusedTokens: stats.nPrefix + stats.nMoved,
      ms: Date.now() - startedAt,
    };
  } finally {
    lm.pool.release(entry);
  }
}

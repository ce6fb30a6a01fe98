// chat/create in the engine process: messages → ChatML tokens → prefill in the conversation's
// KV session (reusing what the previous turn left there) → sampling token by token (generate.ts),
// with a pre-emption point between tokens, each piece of text streamed as a partial result.
import { ResponseError } from 'vscode-jsonrpc';

import { EngineErrorCodes, type ChatMessage, type ChatParams, type ChatResult, type ChatWorkDoneProgress } from '../common/protocol';
import type { Addon, SamplingOptions } from '../engine/native';
import { generate } from './generate';
import type { LoadedModel } from './model';
import { ParamChecker } from './params';
import type { JobContext } from './scheduler';
import { prefill } from './sessions';

export const DEFAULT_CHAT_MAX_TOKENS = 1024;

/** Checks chat/create params; throws InvalidParams. */
export function checkChatParams(raw: unknown): ChatParams {
  const c: ParamChecker = new ParamChecker('chat/create');
  const p = c.object(raw);
  const list = p.messages;
  if (!Array.isArray(list) || list.length === 0) c.fail('messages must be a non-empty list of {role, content}.');
  const messages: ChatMessage[] = list.map((m: unknown, i: number) => {
    const o = c.object(m, `messages[${i}]`);
    const role = c.oneOf(o.role, `messages[${i}].role`, ['system', 'user', 'assistant'] as const);
    if (role === undefined) c.fail(`messages[${i}].role is missing.`);
    return { role, content: c.string(o.content, `messages[${i}].content`) };
  });
  let sampling: ChatParams['sampling'];
  if (p.sampling !== undefined) {
    const s = c.object(p.sampling, 'sampling');
    sampling = {
      temperature: c.optionalNumber(s.temperature, 'sampling.temperature', { min: 0 }),
      topK: c.optionalNumber(s.topK, 'sampling.topK', { integer: true, min: 0 }),
      topP: c.optionalNumber(s.topP, 'sampling.topP', { min: 0, max: 1 }),
      minP: c.optionalNumber(s.minP, 'sampling.minP', { min: 0, max: 1 }),
      repeatPenalty: c.optionalNumber(s.repeatPenalty, 'sampling.repeatPenalty', { min: 0 }),
      seed: c.optionalNumber(s.seed, 'sampling.seed', { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER }),
    };
  }
  const conversationId = c.optionalString(p.conversationId, 'conversationId');
  return {
    conversationId,
    messages,
    sampling,
    maxTokens: c.optionalNumber(p.maxTokens, 'maxTokens', { integer: true, min: 1 }),
    stop: c.optionalStrings(p.stop, 'stop'),
    partialResultToken: p.partialResultToken as ChatParams['partialResultToken'],
    workDoneToken: p.workDoneToken as ChatParams['workDoneToken'],
  };
}

/** Only the fields that were given, so the engine's defaults apply to the others. */
function samplingOptions(s: ChatParams['sampling']): SamplingOptions {
  const out: SamplingOptions = {};
  if (!s) return out;
  for (const key of ['temperature', 'topK', 'topP', 'minP', 'repeatPenalty', 'seed'] as const) {
    if (s[key] !== undefined) out[key] = s[key];
  }
  return out;
}

/** Leading tokens `a` and `b` have in common. */
function commonPrefix(a: Int32Array, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Runs one chat request as a scheduler job. `onDelta` gets the text as it is produced; the
 * pieces concatenate to the result's text. `onProgress` hears of the prompt before it is
 * evaluated (its size, what the cache holds, the answer's token limit) and of generation starting.
 * `receivedAt` is when the request arrived.
 */
export async function runChat(
  ctx: JobContext,
  lm: LoadedModel,
  addon: Addon,
  params: ChatParams,
  onDelta: (text: string) => void,
  receivedAt: number,
  onProgress: (value: ChatWorkDoneProgress) => void = () => {},
): Promise<ChatResult> {
  ctx.throwIfStopped();
  const { model, pool } = lm;
  const tokens = model.formatChat(params.messages);
  const nCtx = pool.options.nCtx;
  if (tokens.length >= nCtx) {
    throw new ResponseError(
      EngineErrorCodes.ContextOverflow,
      `The conversation is ${tokens.length} tokens long, but the context holds ${nCtx}; start a new conversation or shorten the messages.`,
    );
  }
  const maxNew = Math.min(params.maxTokens ?? DEFAULT_CHAT_MAX_TOKENS, nCtx - tokens.length);
  const entry = pool.acquire(params.conversationId === undefined ? 'request' : 'chat', params.conversationId);
  const { session } = entry;
  try {
    const cachedTokens = commonPrefix(session.tokens(), tokens);
    const toEvaluate = tokens.length - cachedTokens;
    onProgress({
      kind: 'begin',
      title: 'chat',
      message: `evaluating ${toEvaluate} of ${tokens.length} prompt tokens`,
      prompt: { promptTokens: tokens.length, cachedTokens, maxTokens: maxNew, contextLength: nCtx },
    });
    const stats = await prefill(ctx, session, tokens, 'moves');
    onProgress({ kind: 'report', message: `generating (${stats.nEvaluated} prompt tokens evaluated in ${Math.round(stats.totalMs)} ms)` });
    const sampler = addon.createSampler(samplingOptions(params.sampling));
    const generation = await generate(model, session, sampler, {
      maxTokens: maxNew,
      stop: params.stop ?? [],
      onText: onDelta,
      checkpoint: () => ctx.checkpoint(),
      // The engine stopped the generation itself (model unloaded, shutdown): the text so far is
      // the answer. A cancelled request fails.
      stopped: () => ctx.stopReason !== undefined && ctx.stopReason.code !== EngineErrorCodes.RequestCancelled,
    });
    const { decodeMs, steps } = generation;
    return {
      text: generation.text,
      stopReason: generation.stopReason,
      seed: sampler.seed,
      stats: {
        promptTokens: tokens.length,
        reusedTokens: stats.nPrefix + stats.nMoved,
        evaluatedTokens: stats.nEvaluated,
        prefillMs: stats.totalMs,
        timeToFirstTokenMs: generation.firstTokenAt - receivedAt,
        decodeTokens: generation.tokens.length,
        decodeTokensPerS: decodeMs > 0 ? (steps * 1000) / decodeMs : 0,
      },
    };
  } finally {
    pool.release(entry);
  }
}

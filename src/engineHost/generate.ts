// The decode loop of chat/create (chat.ts) and of `moe-engine generate` (src/cli/): from a
// session that holds the prompt and its last logits, sample a token, turn it into text
// (TextStream: incremental, stop strings), evaluate it and sample the next (Session.step), until
// an end-of-generation token, a stop string, the token limit, or the caller stops it. The last
// sampled token is never evaluated.
import type { ChatStopReason } from '../common/protocol';
import type { Model, Sampler, Session } from '../engine/native';
import { TextStream } from './textStream';

export interface GenerationOptions {
  /** New tokens at most; 0 samples nothing. */
  maxTokens: number;
  /** The text ends before the first of these strings. */
  stop?: readonly string[];
  /** Gets the text as it becomes final; the pieces concatenate to the result's text. */
  onText?: (piece: string) => void;
  /** Awaited between tokens (a pre-emption point); what it throws ends the generation. */
  checkpoint?: () => Promise<void>;
  /**
   * Whether an error thrown while generating (by checkpoint or the engine) means the caller
   * stopped the generation: then the text so far is the answer, with stopReason 'cancelled'.
   * Otherwise (and by default) the error is rethrown.
   */
  stopped?: (err: unknown) => boolean;
}

export interface Generation {
  text: string;
  /** Generated ids (an end-of-generation token is not included). */
  tokens: number[];
  stopReason: ChatStopReason;
  /** Date.now() when the first token had been sampled (when none was: when the loop ended). */
  firstTokenAt: number;
  /** Time spent in Session.step() (evaluating a token and sampling the next), and how many steps. */
  decodeMs: number;
  steps: number;
}

export async function generate(model: Model, session: Session, sampler: Sampler, options: GenerationOptions): Promise<Generation> {
  const stream = new TextStream(model, options.stop ?? []);
  const tokens: number[] = [];
  let text = '';
  const emit = (piece: string): void => {
    if (piece.length === 0) return;
    text += piece;
    options.onText?.(piece);
  };
  let stopReason: ChatStopReason = 'length';
  let firstTokenAt = Date.now();
  let decodeMs = 0;
  let steps = 0;
  if (options.maxTokens > 0) {
    let token = session.sample(sampler);
    firstTokenAt = Date.now();
    try {
      for (;;) {
        if (model.isEog(token)) {
          stopReason = 'eog';
          break;
        }
        tokens.push(token);
        emit(stream.push(token));
        if (stream.hitStop) {
          stopReason = 'stop';
          break;
        }
        if (tokens.length >= options.maxTokens) break;
        await options.checkpoint?.();
        const t0 = Date.now();
        token = await session.step(token, sampler);
        decodeMs += Date.now() - t0;
        steps++;
      }
    } catch (err) {
      if (!options.stopped?.(err)) throw err;
      stopReason = 'cancelled';
    }
  }
  emit(stream.finish());
  return { text, tokens, stopReason, firstTokenAt, decodeMs, steps };
}

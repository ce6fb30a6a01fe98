// Checks of request parameters: each failure is an InvalidParams ResponseError whose message
// names the method and the field and says what is expected.
import { ResponseError } from 'vscode-jsonrpc';

import { EngineErrorCodes, type CompletionPrompt } from '../common/protocol';

export function invalidParams(method: string, message: string): ResponseError<void> {
  return new ResponseError(EngineErrorCodes.InvalidParams, `Invalid ${method} request: ${message}`);
}

/** Field checks for one request's params. */
export class ParamChecker {
  constructor(readonly method: string) {}

  fail(message: string): never {
    throw invalidParams(this.method, message);
  }

  object(value: unknown, name = 'params'): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(`${name} must be an object.`);
    return value as Record<string, unknown>;
  }

  string(value: unknown, name: string): string {
    if (typeof value !== 'string') this.fail(`${name} must be a string.`);
    return value;
  }

  optionalString(value: unknown, name: string): string | undefined {
    return value === undefined ? undefined : this.string(value, name);
  }

  nonEmptyString(value: unknown, name: string): string {
    const s = this.string(value, name);
    if (s.length === 0) this.fail(`${name} must not be empty.`);
    return s;
  }

  optionalBoolean(value: unknown, name: string): boolean | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') this.fail(`${name} must be true or false.`);
    return value;
  }

  optionalNumber(value: unknown, name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(`${name} must be a number.`);
    if (opts.integer && !Number.isInteger(value)) this.fail(`${name} must be an integer, not ${value}.`);
    if (opts.min !== undefined && value < opts.min) this.fail(`${name} must be at least ${opts.min}, not ${value}.`);
    if (opts.max !== undefined && value > opts.max) this.fail(`${name} must be at most ${opts.max}, not ${value}.`);
    return value;
  }

  optionalStrings(value: unknown, name: string): string[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || !value.every((s) => typeof s === 'string')) this.fail(`${name} must be a list of strings.`);
    return value as string[];
  }

  oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}.`);
    }
    return value as T;
  }

  /** The prompt of completion/create and context/warm. */
  completionPrompt(value: unknown): CompletionPrompt {
    const p = this.object(value, 'prompt');
    let chunks: CompletionPrompt['chunks'];
    if (p.chunks !== undefined) {
      if (!Array.isArray(p.chunks)) this.fail('prompt.chunks must be a list of {fileName, text}.');
      chunks = p.chunks.map((c: unknown, i: number) => {
        const o = this.object(c, `prompt.chunks[${i}]`);
        return { fileName: this.string(o.fileName, `prompt.chunks[${i}].fileName`), text: this.string(o.text, `prompt.chunks[${i}].text`) };
      });
    }
    return {
      chunks,
      prefix: this.string(p.prefix, 'prompt.prefix'),
      suffix: this.string(p.suffix, 'prompt.suffix'),
      fileName: this.string(p.fileName, 'prompt.fileName'),
      languageId: this.string(p.languageId, 'prompt.languageId'),
    };
  }
}

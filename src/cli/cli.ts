// The moe-engine command line: info, tokenize, logits and generate over the native engine
// (src/engine/native.ts), generate through the engine host's decode loop
// (src/engineHost/generate.ts), and serve, the engine host itself (src/engineHost/host.ts).
// stdout carries only the command's result (JSON or generated text); errors are one sentence
// on stderr. Exit codes: 0 ok, 1 runtime error, 2 usage error.
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { ChatStopReason } from '../common/protocol';
import { isEngineError, loadAddon, packageVersion, type Model, type SamplingOptions, type Session } from '../engine/native';
import { generate } from '../engineHost/generate';
import { runEngineHost } from '../engineHost/host';

const USAGE = `moe-engine: run SmallThinker MoE GGUF models on the native engine.

Usage:
  moe-engine info --model F
  moe-engine tokenize --model F (--text T | --file P) [--special]
  moe-engine logits --model F --tokens 1,2,3 [--all] [--threads N]
  moe-engine generate --model F --prompt T -n N [--temp 0] [--seed S] [--top-k K]
                      [--top-p P] [--min-p M] [--chat] [--json] [--threads N] [--ctx N]
  moe-engine serve --stdio [--parent-pid P]
  moe-engine --help | --version

Commands:
  info      The model as JSON: architecture, hyperparameters, per-layer attention
            (global/NoPE or window/RoPE), each tensor type's count (tensor_types) and
            bytes (tensor_type_bytes), the tensors, file size.
  tokenize  Token ids as a JSON array. --special turns special-token text such as
            <|im_start|> into its token; without it the text is taken literally.
  logits    {"n_vocab": V, "logits": [...]} for the last position after evaluating the
            tokens; --all gives "logits" as one array per position.
  generate  The generated text on stdout as it is produced (special-token text in the
            prompt is recognised). --chat sends the prompt as a ChatML user message.
            --json prints {tokens, text, stopReason, seed, timings} at the end instead.
            Defaults: -n 128, --temp 0.6, --top-k 20, --top-p 0.95, --min-p 0, a random
            seed, --ctx 4096 (or what prompt + n need, up to the model's training context).
            --temp 0 is greedy. Ctrl-C stops the generation and keeps what was produced.
  serve     The engine as a JSON-RPC server (the protocol of the editor extension,
            src/common/protocol.ts) on stdin/stdout; stdout carries protocol frames
            only, logs go to stderr. Ends on the exit notification, when stdin
            closes, or when process P (--parent-pid) is gone.

Options for every command: --threads N (default: all cores), --verbose (engine log to stderr),
  --layout-dir D (keep the relaid-out weights in a layout file there: built once, mapped later),
  --memory-budget MB (run within MB MiB, the whole process: the experts are read from the layout
  file into a cache of what the budget leaves; needs a layout file, in --layout-dir or else in
  $XDG_CACHE_HOME/smallthinker-code/layouts; a budget too small to run says the minimum).

Environment:
  MOE_FORCE_ISA    kernel set: scalar | avx2 | avx512 | avx512vnni (default: best supported)
  MOE_LOG_LEVEL    engine log level on stderr: debug | info | warn | error | silent (default warn)

Exit status: 0 success, 1 runtime error (bad model file, ...), 2 usage error.`;

// ---------------------------------------------------------------- argument parsing

/** Bad command line: exit code 2. */
class UsageError extends Error {}
/** A failure the user can act on, found by the CLI itself: exit code 1. */
class RuntimeError extends Error {}

type Kind = 'string' | 'boolean';
interface Command {
  options: Record<string, Kind>;
  run(args: Args): Promise<void>;
}
type Args = Map<string, string | boolean>;

const COMMON: Record<string, Kind> = {
  help: 'boolean',
  verbose: 'boolean',
  threads: 'string',
  'layout-dir': 'string',
  'memory-budget': 'string',
};

function parseArgs(argv: string[], spec: Record<string, Kind>): Args {
  const all = { ...COMMON, ...spec };
  const out: Args = new Map();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let name: string;
    let value: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      value = eq >= 0 ? arg.slice(eq + 1) : undefined;
    } else if (arg === '-n') {
      name = 'n';
    } else if (arg === '-h') {
      name = 'help';
    } else {
      throw new UsageError(`unexpected argument "${arg}".`);
    }
    const kind = all[name];
    if (!kind) throw new UsageError(`unknown option "--${name}" for this command.`);
    if (kind === 'boolean') {
      if (value !== undefined) throw new UsageError(`option --${name} takes no value.`);
      out.set(name, true);
    } else {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value.`);
        value = argv[++i];
      }
      out.set(name, value);
    }
  }
  return out;
}

function str(args: Args, name: string): string | undefined {
  const v = args.get(name);
  return typeof v === 'string' ? v : undefined;
}

function required(args: Args, name: string): string {
  const v = str(args, name);
  if (v === undefined) throw new UsageError(`missing --${name}.`);
  return v;
}

function num(args: Args, name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  const raw = str(args, name);
  if (raw === undefined) return undefined;
  const v = Number(raw);
  const label = name === 'n' ? '-n' : `--${name}`;
  if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${label} needs a number, not "${raw}".`);
  if (opts.integer && !Number.isInteger(v)) throw new UsageError(`${label} needs an integer, not "${raw}".`);
  if (opts.min !== undefined && v < opts.min) throw new UsageError(`${label} must be at least ${opts.min}.`);
  if (opts.max !== undefined && v > opts.max) throw new UsageError(`${label} must be at most ${opts.max}.`);
  return v;
}

function threads(args: Args): number | undefined {
  return num(args, 'threads', { integer: true, min: 0, max: 1024 });
}

// ---------------------------------------------------------------- output

/** Writes to stdout, waiting when the stream buffers (large logits dumps). */
async function out(text: string): Promise<void> {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
}

const CHUNK = 8192;

/** One JSON array of floats, built and written in chunks; float32 values round-trip. */
async function writeFloats(data: Float32Array, start: number, end: number): Promise<void> {
  await out('[');
  const parts: string[] = [];
  for (let i = start; i < end; i += CHUNK) {
    const stop = Math.min(i + CHUNK, end);
    parts.length = 0;
    for (let j = i; j < stop; j++) {
      const v = data[j];
      parts.push(Number.isFinite(v) ? String(v) : 'null');
    }
    await out((i > start ? ',' : '') + parts.join(','));
  }
  await out(']');
}

// ---------------------------------------------------------------- generation

/** What `generate --json` prints. */
interface GenerateResult {
  /** Generated ids (an end-of-generation token is not included). */
  tokens: number[];
  text: string;
  /** 'eog', 'length' or 'cancelled' (no stop strings here). */
  stopReason: ChatStopReason;
  seed: number;
  timings: {
    nPrompt: number;
    nGenerated: number;
    promptMs: number;
    /** From the first sample to the end. */
    generateMs: number;
    promptTokensPerS: number;
    tokensPerS: number;
  };
}

/**
 * Evaluates the prompt in the (new) session, then generates with the engine host's decode loop
 * (src/engineHost/generate.ts, as chat/create does), streaming the text to `onText`. Ctrl-C
 * (SIGINT) stops the prompt evaluation between batches or the generation between tokens; the
 * result then holds what was produced, with stopReason 'cancelled'.
 */
async function generateText(
  model: Model,
  session: Session,
  prompt: Int32Array,
  maxTokens: number,
  sampling: SamplingOptions,
  onText?: (text: string) => void,
): Promise<GenerateResult> {
  const sampler = loadAddon().createSampler(sampling);
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    session.cancel();
  };
  process.once('SIGINT', onSigint);
  try {
    const result: GenerateResult = {
      tokens: [],
      text: '',
      stopReason: 'cancelled',
      seed: sampler.seed,
      timings: { nPrompt: 0, nGenerated: 0, promptMs: 0, generateMs: 0, promptTokensPerS: 0, tokensPerS: 0 },
    };
    const t = result.timings;
    const t0 = performance.now();
    try {
      await session.prefill(prompt);
    } catch (err) {
      t.promptMs = performance.now() - t0;
      if (interrupted && isEngineError(err) && err.code === 'cancelled') return result;
      throw err;
    }
    t.promptMs = performance.now() - t0;
    t.nPrompt = prompt.length;
    if (t.promptMs > 0) t.promptTokensPerS = (1000 * prompt.length) / t.promptMs;

    const t1 = performance.now();
    const generation = await generate(model, session, sampler, {
      maxTokens,
      onText,
      checkpoint: async () => {
        if (interrupted) throw new Error('interrupted');
      },
      stopped: () => interrupted,
    });
    t.generateMs = performance.now() - t1;
    t.nGenerated = generation.tokens.length;
    if (t.generateMs > 0) t.tokensPerS = (1000 * t.nGenerated) / t.generateMs;
    result.tokens = generation.tokens;
    result.text = generation.text;
    result.stopReason = generation.stopReason;
    return result;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

// ---------------------------------------------------------------- commands

function fileKind(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'an unknown kind of file';
}

async function openModel(args: Args, vocabOnly = false): Promise<Model> {
  const file = required(args, 'model');
  if (!fs.existsSync(file)) throw new RuntimeError(`Model file not found: ${file}.`);
  // stat only (never opens the path: opening a FIFO would wait for a writer); the engine checks
  // the file type again on the descriptor it opens.
  const st = fs.statSync(file);
  if (st.isDirectory()) throw new RuntimeError(`${file} is a directory, not a GGUF model file.`);
  if (!st.isFile()) throw new RuntimeError(`${file} is not a regular file (${fileKind(st)}), not a GGUF model file.`);
  const addon = loadAddon();
  if (args.get('verbose')) addon.setLogLevel('info');
  if (vocabOnly) return addon.loadModel(file, { vocabOnly });
  const memoryBudgetMB = num(args, 'memory-budget', { integer: true, min: 1, max: 1 << 24 });
  const given = args.get('layout-dir');
  const layoutDir = typeof given === 'string' ? given : memoryBudgetMB !== undefined ? defaultLayoutDir() : undefined;
  return addon.loadModel(file, { layoutDir, memoryBudgetMB });
}

/** Where the CLI keeps layout files when --memory-budget needs one and --layout-dir is not given. */
function defaultLayoutDir(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'smallthinker-code', 'layouts');
}

const commands: Record<string, Command> = {
  info: {
    options: { model: 'string' },
    async run(args) {
      const model = await openModel(args);
      try {
        await out(JSON.stringify(model.info(), null, 2) + '\n');
      } finally {
        model.dispose();
      }
    },
  },

  tokenize: {
    options: { model: 'string', text: 'string', file: 'string', special: 'boolean' },
    async run(args) {
      required(args, 'model');
      const text = str(args, 'text');
      const file = str(args, 'file');
      if ((text === undefined) === (file === undefined)) throw new UsageError('give exactly one of --text and --file.');
      let input = text;
      if (file !== undefined) {
        try {
          input = fs.readFileSync(file, 'utf8');
        } catch (err) {
          throw new RuntimeError(`Cannot read ${file}: ${(err as Error).message}.`);
        }
      }
      const model = await openModel(args, true);
      try {
        const ids = model.tokenize(input ?? '', { special: args.get('special') === true });
        await out(JSON.stringify(Array.from(ids)) + '\n');
      } finally {
        model.dispose();
      }
    },
  },

  logits: {
    options: { model: 'string', tokens: 'string', all: 'boolean' },
    async run(args) {
      required(args, 'model');
      const raw = required(args, 'tokens');
      const tokens = raw.split(',').map((s) => {
        const t = s.trim();
        if (!/^\d+$/.test(t) || Number(t) > 0x7fffffff) throw new UsageError(`--tokens needs comma-separated token ids, not "${raw}".`);
        return Number(t);
      });
      const all = args.get('all') === true;
      const model = await openModel(args);
      try {
        const session = model.createSession({ nCtx: tokens.length, nBatch: Math.min(512, tokens.length), threads: threads(args) });
        const logits = await session.eval(Int32Array.from(tokens), { logits: all ? 'all' : 'last' });
        const nVocab = model.nVocab;
        await out(`{"n_vocab":${nVocab},"logits":`);
        if (all) {
          await out('[');
          for (let p = 0; p * nVocab < logits.length; p++) {
            if (p) await out(',');
            await writeFloats(logits, p * nVocab, (p + 1) * nVocab);
          }
          await out(']');
        } else {
          await writeFloats(logits, 0, nVocab);
        }
        await out('}\n');
        session.dispose();
      } finally {
        model.dispose();
      }
    },
  },

  generate: {
    options: {
      model: 'string',
      prompt: 'string',
      n: 'string',
      temp: 'string',
      seed: 'string',
      'top-k': 'string',
      'top-p': 'string',
      'min-p': 'string',
      chat: 'boolean',
      json: 'boolean',
      ctx: 'string',
    },
    async run(args) {
      required(args, 'model');
      const prompt = required(args, 'prompt');
      const n = num(args, 'n', { integer: true, min: 0 }) ?? 128;
      const sampling = {
        temperature: num(args, 'temp'),
        seed: num(args, 'seed', { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER }),
        topK: num(args, 'top-k', { integer: true }),
        topP: num(args, 'top-p', { min: 0, max: 1 }),
        minP: num(args, 'min-p', { min: 0, max: 1 }),
      };
      const ctx = num(args, 'ctx', { integer: true, min: 1 });
      const json = args.get('json') === true;

      const model = await openModel(args);
      try {
        const tokens = args.get('chat') ? model.formatChat([{ role: 'user', content: prompt }]) : model.tokenize(prompt, { special: true });
        const nCtx = ctx ?? Math.min(Math.max(4096, tokens.length + n), Math.max(model.nCtxTrain, 1));
        const session = model.createSession({ nCtx, threads: threads(args) });
        try {
          if (tokens.length + n > nCtx) {
            throw new RuntimeError(
              `The prompt (${tokens.length} tokens) and up to ${n} new tokens need ${tokens.length + n} positions, ` +
                `but the context holds ${nCtx}; lower the token limit or raise the context size.`,
            );
          }
          const result = await generateText(
            model,
            session,
            tokens,
            n,
            sampling,
            json ? undefined : (text) => void process.stdout.write(text),
          );
          if (json) {
            await out(JSON.stringify(result) + '\n');
          } else if (process.stdout.isTTY) {
            await out('\n');
          }
          if (args.get('verbose')) {
            const t = result.timings;
            process.stderr.write(
              `moe-engine: prompt ${t.nPrompt} tokens in ${t.promptMs.toFixed(1)} ms (${t.promptTokensPerS.toFixed(1)} tok/s), ` +
                `generated ${t.nGenerated} in ${t.generateMs.toFixed(1)} ms (${t.tokensPerS.toFixed(1)} tok/s), stop: ${result.stopReason}, seed ${result.seed}\n`,
            );
          }
        } finally {
          session.dispose();
        }
      } finally {
        model.dispose();
      }
    },
  },

  serve: {
    options: { stdio: 'boolean', 'parent-pid': 'string' },
    async run(args) {
      if (args.get('stdio') !== true) throw new UsageError('serve needs --stdio (the only transport).');
      const parentPid = num(args, 'parent-pid', { integer: true, min: 1 });
      const code = await runEngineHost({ parentPid });
      process.exit(code);
    },
  },
};

// ---------------------------------------------------------------- main

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  // A closed pipe (moe-engine logits ... | head) ends the program quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    if (name === undefined) throw new UsageError('missing command.');
    if (name === '--help' || name === '-h' || name === 'help') {
      await out(USAGE + '\n');
      return 0;
    }
    if (name === '--version' || name === '-v') {
      await out(packageVersion() + '\n');
      return 0;
    }
    const command = Object.prototype.hasOwnProperty.call(commands, name) ? commands[name] : undefined;
    if (!command) throw new UsageError(`unknown command "${name}".`);
    const args = parseArgs(rest, command.options);
    if (args.get('help')) {
      await out(USAGE + '\n');
      return 0;
    }
    threads(args); // validate before any (slow) model load
    await command.run(args);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`moe-engine: ${err.message} Run "moe-engine --help" for usage.\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    // The engine's error code is for programs; people get the sentence (and the code with --verbose).
    const code = isEngineError(err) && rest.includes('--verbose') ? ` [${err.code}]` : '';
    process.stderr.write(`moe-engine: ${message}${code}\n`);
    return 1;
  }
}

// Run directly (node out/src/cli/cli.js); bin/moe-engine.js calls main() itself.
if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`moe-engine: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

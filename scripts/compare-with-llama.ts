// Compares our engine's logits with llama.cpp's (node-llama-cpp 3.22.1) on any SmallThinker GGUF:
//   node out/scripts/compare-with-llama.js --model F [--text T | --tokens 1,2,3] [--ctx N]
// Prints per-position relative errors, the tight verdict (shallow files) and the verdict against
// our own noise (deep files; see ourNoise in test/support/compare.ts). Exit 0 when either passes.
import { compareRows, describeSummary, judge, judgeCalibrated, ourLogits, ourNoise } from '../test/support/compare';
import { openOracle } from '../test/support/oracle';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const model = arg('--model');
  if (!model) {
    console.error('usage: compare-with-llama --model F [--text T | --tokens 1,2,3] [--ctx N] [--tight X]');
    return 2;
  }
  const ctx = Number(arg('--ctx') ?? 512);
  const tight = Number(arg('--tight') ?? 5e-3);
  const oracle = await openOracle(model, { contextSize: ctx });
  try {
    const tokens = arg('--tokens')
      ? arg('--tokens')!.split(',').map(Number)
      : oracle.tokenize(arg('--text') ?? 'def fibonacci(n):\n    if n < 2:\n        return n\n', { special: false });
    const ref = await oracle.logits(tokens, { all: true });
    const ours = await ourLogits(model, tokens, { all: true, nCtx: ctx });
    const noise = await ourNoise(model, tokens, ours, { all: true, nCtx: ctx });
    const s = compareRows(ours, ref);
    console.log(`tokens: ${tokens.length}; ${describeSummary(s)}`);
    console.log(`per position: ${s.positions.map((p) => p.relMax.toExponential(1)).join(' ')}`);
    const strict = judge(s, { tight });
    const cal = judgeCalibrated(s, noise, tight);
    console.log(`tight verdict: ${strict.ok ? 'PASS' : 'fail'} (${strict.reason})`);
    console.log(`noise-floor verdict: ${cal.ok ? 'PASS' : 'fail'} (${cal.reason})`);
    return strict.ok || cal.ok ? 0 : 1;
  } finally {
    await oracle.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);

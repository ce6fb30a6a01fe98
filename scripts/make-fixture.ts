// Generate (or find in the cache) a SmallThinker GGUF fixture and print its path.
// Usage: node out/scripts/make-fixture.js [tiny|4b|21b] [JSON spec overrides]
//   e.g. node out/scripts/make-fixture.js 4b '{"routing":"skewed","types":{"default":"Q4_0"}}'

import { ensureModelInfo, ModelSpec, SMALLTHINKER_21B, SMALLTHINKER_4B, TINY } from '../test/support/fixtures';

const PRESETS: Record<string, ModelSpec> = { tiny: TINY, '4b': SMALLTHINKER_4B, '21b': SMALLTHINKER_21B };

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let base: ModelSpec = TINY;
  if (args[0] && !args[0].trim().startsWith('{')) {
    const preset = PRESETS[args[0].toLowerCase()];
    if (!preset) throw new Error(`unknown preset ${args[0]} (known: ${Object.keys(PRESETS).join(', ')})`);
    base = preset;
    args.shift();
  }
  const overrides = args[0] ? (JSON.parse(args[0]) as ModelSpec) : {};
  const spec: ModelSpec = { ...base, ...overrides, types: { ...base.types, ...overrides.types } };
  const t0 = Date.now();
  const info = await ensureModelInfo(spec);
  process.stderr.write(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write(`${info.path}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`make-fixture: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

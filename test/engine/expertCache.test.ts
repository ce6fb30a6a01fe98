// Under a memory budget (loadModel's memoryBudgetMB, native/model/expert_cache.h) the experts are
// read from the layout file into a cache of fixed slots instead of being mapped. The logits must be
// bit-identical to the mapped layout file with every budget, down to the smallest that can run,
// where every layer's experts miss and a prompt's experts go through the cache in groups; the
// statistics must count what happened; budgets that cannot work fail with a sentence.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { loadAddon, loadModel, type LoadOptions } from '../../src/engine/native';
import { ensureModel, type ModelSpec, SHALLOW_4B } from '../support/fixtures';
import { quantizeWithLlama } from '../support/llamaQuantize';

/** the real 4B widths, two layers, 16 experts (top 4): a prompt of 8 tokens routes to more experts than the smallest cache holds */
const SPEC = { ...SHALLOW_4B, n_layer: 2, n_expert: 16, n_expert_used: 4, seed: 161 } satisfies ModelSpec;
const PROMPT = Int32Array.from([5, 17, 300, 2048, 9, 4000, 1, 77]);
const STEPS = 6;

interface Run {
  prompt: Float32Array;
  tokens: number[];
  steps: Float32Array[];
}

/** the prompt's logits (all rows), then STEPS greedy steps with their logits */
async function run(file: string, options: LoadOptions, threads = 2): Promise<Run & { stats: ReturnType<typeof statsOf> }> {
  const model = await loadModel(file, options);
  try {
    return await runOn(model, threads);
  } finally {
    model.dispose();
  }
}

async function runOn(model: Awaited<ReturnType<typeof loadModel>>, threads = 2): Promise<Run & { stats: ReturnType<typeof statsOf> }> {
  const session = model.createSession({ nCtx: 64, threads });
  const sampler = loadAddon().createSampler({ temperature: 0 });
  try {
    const prompt = await session.eval(PROMPT, { logits: 'all' });
    const tokens: number[] = [];
    const steps: Float32Array[] = [];
    let next = session.sample(sampler);
    for (let i = 0; i < STEPS; ++i) {
      tokens.push(next);
      next = await session.step(next, sampler);
      steps.push(Float32Array.from(session.lastLogits() ?? []));
    }
    return { prompt, tokens, steps, stats: statsOf(model) };
  } finally {
    session.dispose();
  }
}

function statsOf(model: Awaited<ReturnType<typeof loadModel>>) {
  return { info: model.info().memoryBudget, cache: model.expertCacheStats() };
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function assertSame(got: Run, want: Run, what: string): void {
  assert.ok(sameBits(got.prompt, want.prompt), `${what}: prompt logits bit-identical`);
  assert.deepEqual(got.tokens, want.tokens, `${what}: greedy tokens`);
  got.steps.forEach((s, i) => assert.ok(sameBits(s, want.steps[i]), `${what}: step ${i} logits bit-identical`));
}

describe('expert cache under a memory budget', { timeout: 600_000 }, () => {
  let dir = '';
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-budget-'));
  });

  for (const type of ['Q4_0', 'Q4_K_M'] as const) {
    describe(type, () => {
      let file = '';
      let reference: Run;
      let minimumMB = 0;
      before(async () => {
        file = await quantizeWithLlama(await ensureModel(SPEC), type);
        const r = await run(file, { layoutDir: dir });
        assert.equal(r.stats.info, null, 'no budget: no expert cache');
        assert.equal(r.stats.cache, null);
        reference = r;
      });

      it('a budget below the minimum fails with a sentence naming the minimum', async () => {
        await assert.rejects(loadModel(file, { layoutDir: dir, memoryBudgetMB: 1 }), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'budget_too_small');
          const m = /it needs at least (\d+) MB/.exec(err.message);
          assert.ok(m, err.message);
          minimumMB = Number(m[1]);
          return true;
        });
        assert.ok(minimumMB > 256, `minimum ${minimumMB} MB`);
        await assert.rejects(loadModel(file, { layoutDir: dir, memoryBudgetMB: minimumMB - 1 }), /at least/);
      });

      it('the smallest budget: every layer misses, prompts go in groups; logits bit-identical with 1, 2 and 3 threads', async () => {
        assert.ok(minimumMB > 0);
        // (the cache stays at its load size: it would grow into what this small process leaves unused)
        process.env.MOE_EXPERT_CACHE = 'fixed';
        try {
          await smallest();
        } finally {
          delete process.env.MOE_EXPERT_CACHE;
        }
      });

      async function smallest(): Promise<void> {
        for (const threads of [1, 2, 3]) {
          const r = await run(file, { layoutDir: dir, memoryBudgetMB: minimumMB }, threads);
          assertSame(r, reference, `${threads} thread(s)`);
          const { info, cache } = r.stats;
          assert.ok(info && cache, 'an expert cache');
          assert.equal(cache.capacity, SPEC.n_expert_used, 'the minimum holds one token`s experts');
          assert.equal(cache.extents, SPEC.n_layer * SPEC.n_expert);
          assert.equal(cache.layers.length, SPEC.n_layer);
          // each layer: the prompt's distinct experts in groups of 4, then 4 per step, all missing
          // (a layer's experts evicted by the other layer's)
          assert.ok(cache.total.uses >= SPEC.n_layer * (SPEC.n_expert_used + STEPS * SPEC.n_expert_used), `uses ${cache.total.uses}`);
          assert.equal(cache.total.reads, cache.total.uses, 'every use a read: nothing stays between layers');
          // each read one whole extent of its layer (extents differ between layers where the types do: Q4_K_M)
          for (const l of cache.layers) {
            assert.ok(l.reads > 0 && l.bytesRead % l.reads === 0 && l.bytesRead / l.reads <= info.slotBytes, JSON.stringify(l));
            assert.equal((l.bytesRead / l.reads) % 4096, 0, 'whole pages (direct reads)');
          }
          assert.equal(
            cache.layers.reduce((a, l) => a + l.bytesRead, 0),
            cache.total.bytesRead,
          );
          assert.equal(
            cache.layers.reduce((a, l) => a + l.reads, 0),
            cache.total.reads,
          );
          assert.ok(cache.total.stallMs >= 0 && cache.readMs > 0);
        }
      }

      it('grows into what the process leaves unused (its reserve, KV not yet written): more slots, the same logits', async () => {
        assert.ok(minimumMB > 0);
        const probe = await loadModel(file, { layoutDir: dir, memoryBudgetMB: minimumMB });
        const mb = probe.info().memoryBudget!;
        probe.dispose();
        // a reserve that leaves the cache six slots at load, in a budget of this whole test
        // process and more: the process uses far less than the reserve and KV share set aside
        const budgetMB = Math.ceil(process.memoryUsage().rss / 2 ** 20) + 512;
        const reserveMB = Math.floor((budgetMB * 2 ** 20 - mb.residentBytes - mb.kvBytes - 6 * mb.slotBytes) / 2 ** 20);
        const model = await loadModel(file, { layoutDir: dir, memoryBudgetMB: budgetMB, memoryReserveMB: reserveMB });
        try {
          const r = await runOn(model);
          assertSame(r, reference, 'grown');
          const { info, cache } = r.stats;
          assert.ok(info && cache);
          assert.ok(info.cacheSlots >= 6 && info.cacheSlots <= 7, `${info.cacheSlots} slots at load`);
          assert.ok(cache.capacity >= info.cacheSlots + 8, `capacity ${cache.capacity}, ${info.cacheSlots} at load`);
          assert.ok(cache.total.reads < cache.total.uses, `reads ${cache.total.reads} of ${cache.total.uses} uses: some found`);
          // the process grows beyond the whole budget (written, so resident; whatever the garbage
          // collector gives back meanwhile): the cache shrinks back to its load size before the
          // next batch, and the logits stay the same
          const ballast = Buffer.alloc((budgetMB + 64) * 2 ** 20, 1);
          const again = await runOn(model);
          assertSame(again, reference, 'shrunk');
          assert.equal(again.stats.cache!.capacity, info.cacheSlots, 'back to the load size');
          assert.ok(ballast.length > 0);
        } finally {
          model.dispose();
        }
      });

      it('reads with io_uring where the kernel has it, else (and with MOE_EXPERT_IO=threads) with reader threads: the same logits', async () => {
        assert.ok(minimumMB > 0);
        const auto = await run(file, { layoutDir: dir, memoryBudgetMB: minimumMB });
        assert.match(auto.stats.cache!.io, /^(io_uring|\d+ reader threads \(.+\))$/, auto.stats.cache!.io);
        process.env.MOE_EXPERT_IO = 'threads';
        try {
          const threads = await run(file, { layoutDir: dir, memoryBudgetMB: minimumMB });
          assert.equal(threads.stats.cache!.io, '4 reader threads (MOE_EXPERT_IO=threads)');
          assertSame(threads, reference, 'reader threads');
        } finally {
          delete process.env.MOE_EXPERT_IO;
        }
        assertSame(auto, reference, auto.stats.cache!.io);
      });

      it('keeps the experts` use counts beside the layout file when the model goes, and starts from them next time', async () => {
        assert.ok(minimumMB > 0);
        const first = await run(file, { layoutDir: dir, memoryBudgetMB: minimumMB });
        const profile = fs.readdirSync(dir).filter((n) => n.endsWith('.stlayout.uses'));
        assert.ok(
          profile.length >= 1 && profile.every((n) => fs.existsSync(path.join(dir, n.replace(/\.uses$/, '')))),
          `profiles: ${profile.join(', ')}`,
        );
        const again = await run(file, { layoutDir: dir, memoryBudgetMB: minimumMB });
        assert.equal(again.stats.cache!.profileLoaded, true);
        assertSame(again, first, 'with the use counts of the last session');
        assert.deepEqual(
          fs.readdirSync(dir).filter((n) => n.includes('.tmp.')),
          [],
          'no temporary file left',
        );
      });

      it('two sessions at once with the smallest budget take turns with the slots: the same logits, no deadlock', async () => {
        assert.ok(minimumMB > 0);
        const model = await loadModel(file, { layoutDir: dir, memoryBudgetMB: minimumMB });
        try {
          const sessions = [model.createSession({ nCtx: 64, threads: 1 }), model.createSession({ nCtx: 64, threads: 2 })];
          const logits = await Promise.all(sessions.map((s) => s.eval(PROMPT, { logits: 'all' })));
          for (const l of logits) assert.ok(sameBits(l, reference.prompt), 'prompt logits bit-identical');
          sessions.forEach((s) => s.dispose());
        } finally {
          model.dispose();
        }
      });

      it('a budget that holds every expert reads each once', async () => {
        const r = await run(file, { layoutDir: dir, memoryBudgetMB: minimumMB + 1024 });
        assertSame(r, reference, 'large budget');
        const { cache } = r.stats;
        assert.ok(cache);
        assert.equal(cache.capacity, cache.extents, 'every extent fits');
        assert.ok(cache.total.reads <= cache.extents, `reads ${cache.total.reads} of ${cache.extents} extents`);
        assert.ok(cache.total.uses > cache.total.reads, 'later steps hit');
      });
    });
  }

  it('every weight type: experts without a relayout of their own (Q8_0, Q5_K, IQ4_XS) go into the layout file as they are; logits bit-identical to memory', async () => {
    for (const type of ['Q8_0', 'Q5_K_M', 'IQ4_XS'] as const) {
      const file = await quantizeWithLlama(await ensureModel(SPEC), type);
      const inMemory = await run(file, {});
      const mapped = await run(file, { layoutDir: dir });
      assertSame(mapped, inMemory, `${type} from the layout file`);
      const tooSmall = await loadModel(file, { layoutDir: dir, memoryBudgetMB: 1 }).then(
        (m) => {
          m.dispose();
          return '';
        },
        (e: Error) => e.message,
      );
      const minimum = Number(/at least (\d+) MB/.exec(tooSmall)?.[1]);
      assert.ok(minimum > 0, `${type}: ${tooSmall}`);
      const budgeted = await run(file, { layoutDir: dir, memoryBudgetMB: minimum });
      assert.ok(budgeted.stats.cache && budgeted.stats.cache.total.reads > 0, `${type}: through the expert cache`);
      assertSame(budgeted, inMemory, `${type} under the smallest budget`);
    }
  });

  it('a budget needs a layout file', async () => {
    const file = await quantizeWithLlama(await ensureModel(SPEC), 'Q4_0');
    await assert.rejects(loadModel(file, { memoryBudgetMB: 100_000 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'bad_input');
      assert.match(err.message, /layout file/);
      return true;
    });
  });
});

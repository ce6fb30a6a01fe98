// The models "Download Model…" offers: SmallThinker GGUF files on Hugging Face, each with its size
// (exact when published, else an estimate shown as "about") and the memory it needs to run, and
// how each item reads in the quick pick for this machine's memory. The default comes first.
// Pure: no vscode, no Node (the extension host passes os.freemem/totalmem in).
//
// Where the entries come from (public references, checked when this list was written):
// - The official GGUF repository is Tiiny/SmallThinker-4BA0.6B-Instruct-GGUF (it was
//   PowerInfer/SmallThinker-4BA0.6B-Instruct-GGUF; Hugging Face redirects the old name). Its model
//   card says the `.gguf` files run in llama.cpp and the `.powerinfer.gguf` ones only in PowerInfer.
//   Its files put a dot before the quantization: `SmallThinker-4B-A0.6B-Instruct.Q4_0.gguf`
//   (2,472,877,152 bytes, as downloaded in a public llama.cpp benchmark report and named by several
//   scripts), `SmallThinker-4B-A0.6B-Instruct.Q4_K_S.gguf` (2,491,948,128 bytes, in an app's model
//   catalogue that names this repository), and `.Q3_K_S.gguf` and `.Q4_K.gguf`, named by users
//   (their sizes are not published where we looked, so they are estimates here).
// - Community quantizations: mradermacher/SmallThinker-4BA0.6B-Instruct-GGUF holds
//   `SmallThinker-4BA0.6B-Instruct.Q4_K_M.gguf`; DevQuasar/PowerInfer.SmallThinker-21BA3B-Instruct-GGUF
//   holds `PowerInfer.SmallThinker-21BA3B-Instruct.Q5_K_M.gguf` (21B). The official 21B repository
//   (PowerInfer/SmallThinker-21BA3B-Instruct-GGUF, now Tiiny/) is not listed: its file names are
//   not confirmed, and a guessed URL would only end in a 404.
// The old default URL (PowerInfer/..., `-Q4_0.gguf` with a dash) never existed; a setting that
// still holds it means the default (LEGACY_DEFAULT_MODEL_URLS).

import { DEFAULT_MODEL_URL } from './ids';
import { formatBytes } from './statusText';

export type ModelFamily = '4B' | '21B';

export interface CatalogEntry {
  /** Stable id (for tests and logs). */
  id: string;
  /** What the quick pick shows, e.g. "SmallThinker 4B-A0.6B · Q4_0 (official)". */
  label: string;
  family: ModelFamily;
  quantization: string;
  /** Published by the model's authors, or a community quantization. */
  source: 'official' | 'community';
  /** Hugging Face repository, owner/name. */
  repo: string;
  /** File name in the repository (also the name it gets on disk). */
  file: string;
  url: string;
  /** The file's size in bytes: exact when `sizeExact`, else an estimate. */
  sizeBytes: number;
  sizeExact: boolean;
  /** True for the entry the default download (and the first-run prompt) fetches. */
  isDefault?: boolean;
}

/** A Hugging Face download URL for a file in a repository's main branch. */
export function huggingFaceUrl(repo: string, file: string): string {
  return `https://huggingface.co/${repo}/resolve/main/${encodeURIComponent(file)}`;
}

const OFFICIAL_4B = 'Tiiny/SmallThinker-4BA0.6B-Instruct-GGUF';

function entry(e: Omit<CatalogEntry, 'url' | 'label'>): CatalogEntry {
  const name = e.family === '4B' ? 'SmallThinker 4B-A0.6B' : 'SmallThinker 21B-A3B';
  return { ...e, label: `${name} · ${e.quantization} (${e.source})`, url: huggingFaceUrl(e.repo, e.file) };
}

/** Every model Download Model… offers; the default first. */
export const MODEL_CATALOG: readonly CatalogEntry[] = [
  entry({
    id: '4b-q4_0',
    family: '4B',
    quantization: 'Q4_0',
    source: 'official',
    repo: OFFICIAL_4B,
    file: 'SmallThinker-4B-A0.6B-Instruct.Q4_0.gguf',
    sizeBytes: 2_472_877_152,
    sizeExact: true,
    isDefault: true,
  }),
  entry({
    id: '4b-q4_k_s',
    family: '4B',
    quantization: 'Q4_K_S',
    source: 'official',
    repo: OFFICIAL_4B,
    file: 'SmallThinker-4B-A0.6B-Instruct.Q4_K_S.gguf',
    sizeBytes: 2_491_948_128,
    sizeExact: true,
  }),
  entry({
    id: '4b-q4_k',
    family: '4B',
    quantization: 'Q4_K',
    source: 'official',
    repo: OFFICIAL_4B,
    file: 'SmallThinker-4B-A0.6B-Instruct.Q4_K.gguf',
    sizeBytes: 2_650_000_000,
    sizeExact: false,
  }),
  entry({
    id: '4b-q3_k_s',
    family: '4B',
    quantization: 'Q3_K_S',
    source: 'official',
    repo: OFFICIAL_4B,
    file: 'SmallThinker-4B-A0.6B-Instruct.Q3_K_S.gguf',
    sizeBytes: 1_950_000_000,
    sizeExact: false,
  }),
  entry({
    id: '4b-q4_k_m-mradermacher',
    family: '4B',
    quantization: 'Q4_K_M',
    source: 'community',
    repo: 'mradermacher/SmallThinker-4BA0.6B-Instruct-GGUF',
    file: 'SmallThinker-4BA0.6B-Instruct.Q4_K_M.gguf',
    sizeBytes: 2_650_000_000,
    sizeExact: false,
  }),
  entry({
    id: '21b-q5_k_m-devquasar',
    family: '21B',
    quantization: 'Q5_K_M',
    source: 'community',
    repo: 'DevQuasar/PowerInfer.SmallThinker-21BA3B-Instruct-GGUF',
    file: 'PowerInfer.SmallThinker-21BA3B-Instruct.Q5_K_M.gguf',
    sizeBytes: 15_300_000_000,
    sizeExact: false,
  }),
];

/** Default download URLs of earlier versions (wrong: that file never existed); a setting holding one means the default. */
export const LEGACY_DEFAULT_MODEL_URLS: readonly string[] = [
  'https://huggingface.co/PowerInfer/SmallThinker-4BA0.6B-Instruct-GGUF/resolve/main/SmallThinker-4B-A0.6B-Instruct-Q4_0.gguf',
];

/** The download URL setting's value as it should be used: an old default means today's. */
export function effectiveDownloadUrl(setting: string | undefined): string {
  const url = (setting ?? '').trim();
  return !url || LEGACY_DEFAULT_MODEL_URLS.includes(url) ? DEFAULT_MODEL_URL : url;
}

export function defaultCatalogEntry(): CatalogEntry {
  return MODEL_CATALOG.find((e) => e.isDefault) ?? MODEL_CATALOG[0];
}

/** The catalogue entry a URL downloads, if any. */
export function catalogEntryForUrl(url: string): CatalogEntry | undefined {
  return MODEL_CATALOG.find((e) => e.url === url.trim());
}

/** Memory the engine needs besides the weights and the KV cache (scratch buffers, the process). */
export const RUNTIME_OVERHEAD_BYTES = 512 * 1024 * 1024;

/**
 * Memory needed to run a model fully in memory: the engine memory-maps the weights, so all of
 * the file must fit in RAM to run at full speed, plus the KV cache limit
 * (smallthinker.engine.memoryLimitMB) and the runtime's own.
 */
export function memoryNeeded(entry: Pick<CatalogEntry, 'sizeBytes'>, kvLimitBytes: number): number {
  return entry.sizeBytes + kvLimitBytes + RUNTIME_OVERHEAD_BYTES;
}

/**
 * About the smallest memory budget a model runs in with its experts read from disk
 * (smallthinker.engine.memoryBudgetMB): its other weights (about a tenth of the file), one
 * token's experts, the KV caches' quarter and the runtime. The engine names the exact minimum.
 */
export function memoryMinimum(entry: Pick<CatalogEntry, 'sizeBytes'>): number {
  return Math.round(entry.sizeBytes * 0.1) + 768 * 1024 * 1024;
}

/** What the automatic memory budget leaves free for the editor and other programs. */
export const EDITOR_ROOM_BYTES = 1024 * 1024 * 1024;

/**
 * The memory budget (MiB) to load a model with: the setting when it names one; automatic (0):
 * none (0) when the model runs in memory, in the free memory less EDITOR_ROOM_BYTES, else all of
 * that (the engine says so when it is below the minimum the model needs).
 */
export function chooseMemoryBudgetMB(settingMB: number, fileBytes: number, kvLimitBytes: number, memory: MachineMemory): number {
  if (settingMB > 0) return Math.floor(settingMB);
  const usable = memory.free - EDITOR_ROOM_BYTES;
  if (memoryNeeded({ sizeBytes: fileBytes }, kvLimitBytes) <= usable) return 0;
  return Math.max(1, Math.floor(usable / (1024 * 1024)));
}

export interface MachineMemory {
  /** Bytes free now (os.freemem()). */
  free: number;
  /** Bytes in all (os.totalmem()). */
  total: number;
}

/**
 * fits: in the free memory now; budget: not, but within a memory budget of the free memory (its
 * experts read from disk as needed: slower); tight: in the machine once other programs free
 * some; tooBig: not in this machine even within a budget.
 */
export type MemoryFit = 'fits' | 'budget' | 'tight' | 'tooBig';

/** `minimum`: the smallest memory budget it runs in (memoryMinimum; default `needed`, no budget). */
export function memoryFit(needed: number, memory: MachineMemory, minimum = needed): MemoryFit {
  if (needed <= memory.free) return 'fits';
  if (minimum < needed && minimum + EDITOR_ROOM_BYTES <= memory.free) return 'budget';
  if (minimum <= memory.total) return 'tight';
  return 'tooBig';
}

/** The size as shown: exact, or "about" an estimate (rounded to 0.1 GB). */
export function sizeText(entry: Pick<CatalogEntry, 'sizeBytes' | 'sizeExact'>): string {
  if (entry.sizeExact) return formatBytes(entry.sizeBytes);
  return `about ${(entry.sizeBytes / 1024 ** 3).toFixed(1)} GB`;
}

/** One sentence on whether the model fits this machine's memory. */
export function memoryFitText(needed: number, memory: MachineMemory, minimum = needed): string {
  const need = `needs about ${(needed / 1024 ** 3).toFixed(1)} GB of memory`;
  switch (memoryFit(needed, memory, minimum)) {
    case 'fits':
      return `Fits: ${need}, ${formatBytes(memory.free)} is free`;
    case 'budget':
      return `Runs from disk: ${need} to run fully in memory but ${formatBytes(memory.free)} is free; within that its experts are read from disk as needed (slower)`;
    case 'tight':
      return `Tight: ${need} but ${formatBytes(memory.free)} is free (of ${formatBytes(memory.total)}); close other programs first`;
    case 'tooBig':
      return `Too big: ${need}, more than this machine's ${formatBytes(memory.total)}`;
  }
}

export interface CatalogPickItem {
  entry: CatalogEntry;
  label: string;
  description: string;
  detail: string;
  fit: MemoryFit;
}

export interface CatalogPickOptions {
  memory: MachineMemory;
  /** The KV cache limit the engine runs with (bytes). */
  kvLimitBytes: number;
  /** Ids of entries whose file is already in the download folder. */
  downloaded?: ReadonlySet<string>;
}

const FIT_ICON: Record<MemoryFit, string> = { fits: '$(pass)', budget: '$(info)', tight: '$(warning)', tooBig: '$(error)' };

/** The quick pick items for the catalogue, the default first: size in the description, memory fit in the detail. */
export function catalogPickItems(options: CatalogPickOptions, entries: readonly CatalogEntry[] = MODEL_CATALOG): CatalogPickItem[] {
  const ordered = [...entries.filter((e) => e.isDefault), ...entries.filter((e) => !e.isDefault)];
  return ordered.map((entry) => {
    const needed = memoryNeeded(entry, options.kvLimitBytes);
    const minimum = memoryMinimum(entry);
    const fit = memoryFit(needed, options.memory, minimum);
    const description = [
      sizeText(entry),
      ...(entry.isDefault ? ['default'] : []),
      ...(options.downloaded?.has(entry.id) ? ['downloaded'] : []),
    ].join(' · ');
    return {
      entry,
      label: entry.label,
      description,
      detail: `${FIT_ICON[fit]} ${memoryFitText(needed, options.memory, minimum)} · ${entry.repo}`,
      fit,
    };
  });
}

// Model loading as one percentage for the status bar: the engine reads the GGUF file, then (at
// a model's first load) lays its weights out into the layout file, then is ready. Each phase
// owns a span of 0-100; the layout build, the long part, reports its own fraction within its span.
// Pure: no vscode, no Node; shared by the engine host (which reports) and the extension.

export type LoadPhase = 'reading' | 'layout';

/** What each phase is called in progress messages. */
export const LOAD_PHASE_MESSAGES: Readonly<Record<LoadPhase, string>> = {
  reading: 'reading the model file',
  layout: 'laying out the weights for fast loading (once)',
};

/** The span of the whole load each phase covers, [from, to) in percent. */
const SPANS: Readonly<Record<LoadPhase, readonly [number, number]>> = {
  reading: [0, 5],
  layout: [5, 99],
};

/** The load's overall percentage (an integer 0-99; 100 is "ready") at `fraction` (0-1) of `phase`. */
export function loadPercentage(phase: LoadPhase, fraction = 0): number {
  const [from, to] = SPANS[phase];
  const f = Number.isFinite(fraction) ? Math.max(0, Math.min(1, fraction)) : 0;
  return Math.min(99, Math.floor(from + (to - from) * f));
}

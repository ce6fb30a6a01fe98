// Every command, view, view container and setting id of the extension, declared once. The
// package.json contributions must match these (test/unit/ids.test.ts checks both directions).
// Pure: no vscode, no Node.

/** The extension's id (package.json publisher.name). */
export const EXTENSION_ID = 'smallthinker-code.smallthinker-code';

/** The walkthrough (package.json contributes.walkthroughs), as workbench.action.openWalkthrough names it. */
export const WALKTHROUGH = { id: 'getStarted', ref: `${EXTENSION_ID}#getStarted` } as const;

/** The configuration section: settings are `smallthinker.<key>`. */
export const CONFIG_SECTION = 'smallthinker';

export const Commands = {
  chooseModel: 'smallthinker.chooseModel',
  /** Downloads the model the smallthinker.model.downloadUrl setting names (the default model unless changed). */
  downloadModel: 'smallthinker.downloadModel',
  /** A quick pick of the model catalogue (src/common/modelCatalog.ts), a custom URL or a local file. */
  pickModelDownload: 'smallthinker.pickModelDownload',
  /** Shows the disk use of the engine's layout files (fast-load copies of models) and removes them. */
  removeLayoutFiles: 'smallthinker.removeLayoutFiles',
  restartEngine: 'smallthinker.restartEngine',
  /** Opens the "Get started with SmallThinker" walkthrough. */
  openWalkthrough: 'smallthinker.openWalkthrough',
  showLog: 'smallthinker.showLog',
  showStatusMenu: 'smallthinker.showStatusMenu',
  showStats: 'smallthinker.showStats',
  toggleCompletion: 'smallthinker.toggleCompletion',
  triggerCompletion: 'smallthinker.triggerCompletion',
  /** Internal: run by an accepted inline suggestion (counts acceptances). */
  completionAccepted: 'smallthinker.completionAccepted',
  newChat: 'smallthinker.newChat',
  focusChat: 'smallthinker.focusChat',
  explain: 'smallthinker.explain',
  refactor: 'smallthinker.refactor',
  document: 'smallthinker.document',
  fix: 'smallthinker.fix',
  writeTests: 'smallthinker.writeTests',
  acceptEdit: 'smallthinker.acceptEdit',
  acceptEditPart: 'smallthinker.acceptEditPart',
  rejectEdit: 'smallthinker.rejectEdit',
} as const;
export type CommandId = (typeof Commands)[keyof typeof Commands];

export const Views = {
  container: 'smallthinker',
  chat: 'smallthinker.chatView',
} as const;

/** Setting keys relative to CONFIG_SECTION. */
export const Settings = {
  modelPath: 'model.path',
  modelDownloadUrl: 'model.downloadUrl',
  modelSha256: 'model.sha256',
  modelDownloadFolder: 'model.downloadFolder',
  threads: 'engine.threads',
  contextLength: 'engine.contextLength',
  memoryLimitMB: 'engine.memoryLimitMB',
  memoryBudgetMB: 'engine.memoryBudgetMB',
  completionEnabled: 'completion.enabled',
  completionLanguages: 'completion.languages',
  completionTrigger: 'completion.trigger',
  completionDebounceMs: 'completion.debounceMs',
  completionMaxTokens: 'completion.maxTokens',
  completionTimeBudgetMs: 'completion.timeBudgetMs',
  completionFirstLineMs: 'completion.firstLineMs',
  completionCandidates: 'completion.candidates',
  completionContextChunks: 'completion.contextChunks',
  chatTemperature: 'chat.temperature',
  chatMaxTokens: 'chat.maxTokens',
} as const;
export type SettingKey = (typeof Settings)[keyof typeof Settings];

/** Context keys set by the extension (used in `when` clauses). */
export const ContextKeys = {
  editPending: 'smallthinker.editPending',
  /** A proposal's diff is open while the model writes it (live preview). */
  editPreview: 'smallthinker.editPreview',
  /** A model is loaded and ready (the walkthrough's first step is done). */
  modelReady: 'smallthinker.modelReady',
} as const;

/** The language model id registered with vscode.lm. */
export const LANGUAGE_MODEL_VENDOR = 'smallthinker';

/**
 * Default model download: SmallThinker-4B-A0.6B-Instruct, Q4_0, from the official GGUF repository
 * on Hugging Face (the catalogue's default entry, src/common/modelCatalog.ts, says where this
 * comes from; a unit test checks they agree).
 */
export const DEFAULT_MODEL_URL =
  'https://huggingface.co/Tiiny/SmallThinker-4BA0.6B-Instruct-GGUF/resolve/main/SmallThinker-4B-A0.6B-Instruct.Q4_0.gguf';

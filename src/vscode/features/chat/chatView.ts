// The chat side panel's host half: owns the conversation, the per-workspace history and the running
// answer; talks to the webview with typed messages (nothing is sent before the page says `ready`,
// then the full state), streams answers from the engine and runs the code-block actions.
import * as crypto from 'node:crypto';
import * as path from 'node:path';

import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc';

import {
  buildChatPrompt,
  ChatHistory,
  CHARS_PER_TOKEN,
  conversationTitle,
  createConversation,
  parseHistory,
  promptBudget,
  toAnswerStats,
  type CommandAction,
  type Conversation,
  type ConversationMessage,
} from '../../../common/chatHistory';
import {
  describeMessage,
  evaluatingText,
  parseWebviewMessage,
  readingText,
  toChip,
  toConversationView,
  type ChatViewState,
  type EngineView,
  type HostToWebview,
  type WebviewToHost,
} from '../../../common/chatMessages';
import type { ChatAskRequest, ChatAttachment } from '../../../common/chatTypes';
import { Commands, Views } from '../../../common/ids';
import { EngineErrorCodes } from '../../../common/protocol';
import { chatConfig, engineConfig } from '../../config';
import { EngineUnavailableError, errorMessage, isCancellation } from '../../engineService';
import type { Services } from '../../services';
import { EditorAttachments } from './attachments';
import { runCodeAction } from './codeActions';
import { chatHtml } from './html';

/** workspaceState keys. */
export const HISTORY_KEY = 'smallthinker.chat.history';
export const CURRENT_KEY = 'smallthinker.chat.current';

const ACTIONS = {
  chooseModel: { label: 'Choose Model File', command: Commands.chooseModel },
  downloadModel: { label: 'Download Default Model', command: Commands.downloadModel },
  restartEngine: { label: 'Restart Engine', command: Commands.restartEngine },
  showLog: { label: 'Show Log', command: Commands.showLog },
  newChat: { label: 'New Chat', command: Commands.newChat },
} satisfies Record<string, CommandAction>;

interface RunningAnswer {
  conversation: Conversation;
  message: ConversationMessage;
  /** What happens before the first token, for the panel. */
  progress?: string;
  cts: vscode.CancellationTokenSource;
  done: Promise<void>;
  /** The user deleted the conversation while it ran: do not save it back. */
  deleted?: boolean;
}

const newId = (): string => crypto.randomUUID();

function isContextOverflow(err: unknown): boolean {
  return err instanceof ResponseError && err.code === EngineErrorCodes.ContextOverflow;
}

/** Resolves when `promise` settles or `token` is cancelled, whichever comes first. */
function untilCancelled(promise: Promise<unknown>, token: vscode.CancellationToken): Promise<void> {
  return new Promise((resolve) => {
    const sub = token.onCancellationRequested(() => {
      sub.dispose();
      resolve();
    });
    void promise.finally(() => {
      sub.dispose();
      resolve();
    });
  });
}

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private viewDisposables: vscode.Disposable[] = [];
  private ready = false;
  private focusWhenReady = false;
  private readonly history: ChatHistory;
  private current: Conversation;
  private running: RunningAnswer | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly postEmitter = new vscode.EventEmitter<HostToWebview>();
  /** Every message posted to the webview (for tests). */
  readonly onDidPostMessage = this.postEmitter.event;
  readonly attachments: EditorAttachments;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly services: Services,
  ) {
    this.history = new ChatHistory(parseHistory(context.workspaceState.get(HISTORY_KEY)));
    const currentId = context.workspaceState.get<string>(CURRENT_KEY);
    this.current = (currentId && this.history.get(currentId)) || createConversation(newId(), Date.now());
    this.attachments = new EditorAttachments(() => this.fileMaxChars());
    this.disposables.push(
      this.postEmitter,
      this.attachments,
      this.attachments.onDidChange(() => this.post({ type: 'attachments', list: this.attachments.list().map(toChip) })),
      services.engine.onDidChangeStatus(() => this.post({ type: 'engine', engine: this.engineView() })),
    );
  }

  // ---------------------------------------------------------------- webview

  resolveWebviewView(view: vscode.WebviewView): void {
    for (const d of this.viewDisposables) d.dispose();
    this.view = view;
    this.ready = false;
    const media = vscode.Uri.joinPath(this.context.extensionUri, 'media');
    // No command URIs: a link in an answer (model output) must never run a command. Link clicks are
    // handled by VS Code itself, and markdown.ts renders only http, https and mailto links; the
    // page's own buttons post `runCommand`, which parseWebviewMessage allow-lists (WEBVIEW_COMMANDS).
    view.webview.options = { enableScripts: true, enableCommandUris: false, localResourceRoots: [media] };
    view.webview.html = chatHtml({
      cspSource: view.webview.cspSource,
      nonce: crypto.randomBytes(18).toString('base64'),
      scriptUri: view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'dist', 'chat.js')).toString(),
      styleUri: view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css')).toString(),
    });
    this.viewDisposables = [
      view.webview.onDidReceiveMessage((message: unknown) => this.receive(message)),
      view.onDidChangeVisibility(() => {
        // Hidden, the page is torn down (no retained context); shown again, it says `ready` anew.
        if (!view.visible) this.ready = false;
        else if (this.ready) this.postState();
      }),
      view.onDidDispose(() => {
        if (this.view !== view) return;
        this.view = undefined;
        this.ready = false;
        for (const d of this.viewDisposables) d.dispose();
        this.viewDisposables = [];
      }),
    ];
  }

  /** True once the page said `ready` (and was not torn down since). */
  get isReady(): boolean {
    return this.ready && this.view !== undefined;
  }

  private post(message: HostToWebview): void {
    this.postEmitter.fire(message);
    if (!this.view || !this.ready) return; // the full state goes out on `ready`
    this.view.webview
      .postMessage(message)
      .then(undefined, (err: unknown) => this.services.log.warn(`chat: could not post to the panel: ${errorMessage(err)}`));
  }

  /** What the panel shows, complete. */
  viewState(): ChatViewState {
    const running = this.running && this.running.conversation === this.current ? this.running : undefined;
    return {
      conversation: toConversationView(this.current),
      history: this.history.list(),
      attachments: this.attachments.list().map(toChip),
      busy: this.running !== undefined,
      streamingMessageId: running?.message.id,
      progress: running?.progress,
      engine: this.engineView(),
    };
  }

  private postState(): void {
    this.post({ type: 'state', state: this.viewState() });
  }

  private receive(raw: unknown): void {
    const message = parseWebviewMessage(raw);
    if (!message) {
      this.services.log.warn(`chat: dropped a malformed message from the panel: ${describeMessage(raw)}`);
      return;
    }
    this.handle(message).catch((err: unknown) => {
      this.services.log.error(
        `chat: handling '${message.type}' failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      this.post({ type: 'error', message: `That did not work: ${errorMessage(err)}. See the log (SmallThinker: Show Engine Log).` });
    });
  }

  /** Handles one (validated) message from the panel; public so tests can act as the panel. */
  async handle(message: WebviewToHost): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.ready = true;
        this.postState();
        if (this.focusWhenReady) {
          this.focusWhenReady = false;
          this.post({ type: 'focusInput' });
        }
        return;
      case 'send': {
        if (this.running) {
          this.post({ type: 'error', message: 'An answer is still being written: wait for it, or press Stop (Escape).' });
          return;
        }
        const attachments = this.attachments.pick(message.attachmentIds);
        this.attachments.consume(attachments.map((a) => a.id));
        await this.send(message.text, attachments);
        return;
      }
      case 'stop':
        this.stop();
        return;
      case 'newConversation':
        this.newConversation();
        return;
      case 'removeAttachment':
        this.attachments.remove(message.id);
        return;
      case 'selectConversation':
        this.selectConversation(message.id);
        return;
      case 'deleteConversation':
        this.deleteConversation(message.id);
        return;
      case 'codeAction': {
        const result = await runCodeAction(message.action, message.code, this.attachments.editor);
        if (!result.ok && result.message) {
          this.post({ type: 'error', message: result.message });
          void vscode.window.showWarningMessage(result.message);
        } else if (result.message) {
          this.post({ type: 'notice', message: result.message });
        }
        return;
      }
      case 'runCommand':
        await vscode.commands.executeCommand(message.command);
        return;
    }
  }

  // ---------------------------------------------------------------- conversation

  get conversation(): Conversation {
    return this.current;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves when no answer is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running.done;
  }

  /** Shows the panel (and puts the cursor in its input once the page is up). */
  async reveal(focusInput = true): Promise<void> {
    if (focusInput) {
      if (this.isReady) this.post({ type: 'focusInput' });
      else this.focusWhenReady = true;
    }
    await vscode.commands.executeCommand(`${Views.chat}.focus`);
  }

  /** Asks in the panel (Explain, tests): resolves with the answer once it finished. */
  async ask(request: ChatAskRequest): Promise<ConversationMessage | undefined> {
    try {
      await this.reveal(false);
    } catch (err) {
      this.services.log.warn(`chat: could not show the panel: ${errorMessage(err)}`);
    }
    if (this.running) {
      this.stop();
      await this.idle();
    }
    if (request.newConversation) this.newConversation();
    return this.send(request.prompt, request.attachments);
  }

  /** Sends a user message and streams the answer; resolves with the answer once it finished. */
  async send(text: string, attachments: readonly ChatAttachment[] = []): Promise<ConversationMessage | undefined> {
    if (this.running) {
      this.post({ type: 'error', message: 'An answer is still being written: wait for it, or press Stop (Escape).' });
      return undefined;
    }
    const prompt = text.trim();
    if (!prompt && attachments.length === 0) return undefined;
    const conversation = this.current;
    const now = Date.now();
    const user: ConversationMessage = { id: newId(), role: 'user', text: prompt, at: now };
    if (attachments.length > 0) user.attachments = attachments.map((a) => ({ ...a }));
    const answer: ConversationMessage = { id: newId(), role: 'assistant', text: '', at: now };
    conversation.messages.push(user, answer);
    if (!conversation.title) conversation.title = conversationTitle(prompt || attachments[0].label);
    conversation.updatedAt = now;
    this.history.save(conversation);
    void this.persist();

    const cts = new vscode.CancellationTokenSource();
    const run: RunningAnswer = { conversation, message: answer, cts, done: Promise.resolve() };
    this.running = run;
    run.done = this.answer(conversation, answer, cts.token);
    this.postState();
    try {
      await run.done;
    } finally {
      cts.dispose();
      this.running = undefined;
      conversation.updatedAt = Date.now();
      if (!run.deleted) this.history.save(conversation);
      void this.persist();
      if (answer.error) this.post({ type: 'error', messageId: answer.id, message: answer.error, actions: answer.actions });
      else this.post({ type: 'done', messageId: answer.id, stopReason: answer.stopReason ?? 'stopped', stats: answer.stats });
      this.postState();
    }
    return answer;
  }

  /** Says in the panel what happens before the answer's first token. */
  private progress(answer: ConversationMessage, text: string): void {
    const running = this.running;
    if (!running || running.message !== answer || answer.text !== '') return;
    running.progress = text;
    this.post({ type: 'progress', messageId: answer.id, text });
  }

  /** Streams the engine's answer into `answer`; never throws (failures become `answer.error`). */
  private async answer(conversation: Conversation, answer: ConversationMessage, token: vscode.CancellationToken): Promise<void> {
    const engine = this.services.engine;
    try {
      const question = conversation.messages[conversation.messages.indexOf(answer) - 1];
      const reading = readingText(question?.attachments ?? []);
      if (reading) this.progress(answer, reading);
      const status = engine.status.kind;
      if (status === 'starting' || status === 'loading') {
        this.progress(answer, 'Waiting for the model to load…');
        await untilCancelled(engine.settled(), token);
      }
      if (token.isCancellationRequested) {
        answer.stopReason = 'stopped';
        return;
      }
      const config = chatConfig();
      const upToQuestion = conversation.messages.slice(0, conversation.messages.indexOf(answer));
      let budget = promptBudget(this.contextLength(), config.maxTokens);
      for (let attempt = 0; ; attempt++) {
        const prompt = buildChatPrompt({ messages: upToQuestion, budgetTokens: budget });
        if (prompt.droppedTurns > 0 || prompt.truncatedAttachments) {
          this.services.log.info(
            `chat: left out ${prompt.droppedTurns} earlier exchange(s)${prompt.truncatedAttachments ? ' and shortened the attachments' : ''} to fit the context.`,
          );
        }
        try {
          const result = await engine.chat(
            {
              conversationId: conversation.id,
              messages: prompt.messages,
              sampling: { temperature: config.temperature },
              maxTokens: config.maxTokens,
            },
            (delta) => {
              answer.text += delta;
              this.post({ type: 'delta', messageId: answer.id, text: delta });
            },
            token,
            {
              label: 'chat',
              onProgress: (value) => {
                if (value.kind === 'begin' && value.prompt)
                  this.progress(answer, evaluatingText(value.prompt.promptTokens, value.prompt.cachedTokens));
                else if (value.kind === 'report') this.progress(answer, 'Writing the answer…');
              },
            },
          );
          answer.text = result.text || answer.text;
          answer.stopReason = result.stopReason;
          answer.stats = toAnswerStats(result.stats);
          return;
        } catch (err) {
          // The estimate was off: try once more with a smaller budget.
          if (attempt === 0 && isContextOverflow(err) && answer.text === '' && !token.isCancellationRequested) {
            budget = Math.floor(budget * 0.6);
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      if (token.isCancellationRequested || isCancellation(err)) {
        answer.stopReason = 'stopped';
        return;
      }
      if (err instanceof EngineUnavailableError) this.services.log.warn(`chat: no answer: ${err.message}`);
      else this.services.log.error(`chat: the answer failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      const { message, actions } = this.describeFailure(err);
      answer.error = message;
      answer.actions = actions;
    }
  }

  private describeFailure(err: unknown): { message: string; actions: CommandAction[] } {
    if (err instanceof EngineUnavailableError) {
      switch (err.status.kind) {
        case 'noModel':
          return { message: err.message, actions: [ACTIONS.chooseModel, ACTIONS.downloadModel] };
        case 'error':
          return { message: err.message, actions: [ACTIONS.restartEngine, ACTIONS.showLog] };
        default:
          return { message: err.message, actions: [] };
      }
    }
    if (isContextOverflow(err)) return { message: errorMessage(err), actions: [ACTIONS.newChat] };
    return {
      message: `The answer failed: ${errorMessage(err)} See the log for details.`,
      actions: [ACTIONS.showLog, ACTIONS.restartEngine],
    };
  }

  /** Stops the running answer (its text so far stays). */
  stop(): void {
    this.running?.cts.cancel();
  }

  newConversation(): void {
    this.stop();
    this.current = createConversation(newId(), Date.now());
    void this.persist();
    this.postState();
  }

  selectConversation(id: string): boolean {
    const conversation = id === this.current.id ? this.current : this.history.get(id);
    if (!conversation) {
      this.post({ type: 'error', message: 'That conversation is no longer in the history.' });
      this.postState();
      return false;
    }
    if (this.running && this.running.conversation !== conversation) this.stop();
    this.current = conversation;
    void this.persist();
    this.postState();
    return true;
  }

  deleteConversation(id: string): void {
    if (this.running?.conversation.id === id) {
      this.running.deleted = true;
      this.stop();
    }
    this.history.delete(id);
    if (this.current.id === id) this.current = createConversation(newId(), Date.now());
    void this.persist();
    this.postState();
  }

  private async persist(): Promise<void> {
    try {
      await this.context.workspaceState.update(HISTORY_KEY, this.history.toJSON());
      await this.context.workspaceState.update(CURRENT_KEY, this.current.id);
    } catch (err) {
      this.services.log.error(`chat: could not save the history: ${errorMessage(err)}`);
    }
  }

  // ---------------------------------------------------------------- engine

  private contextLength(): number {
    const status = this.services.engine.status;
    return status.kind === 'ready' ? status.model.context : engineConfig().contextLength;
  }

  /** The longest file text offered as a chip: about 40% of the context. */
  private fileMaxChars(): number {
    const tokens = Math.min(16_000, Math.max(512, Math.floor(this.contextLength() * 0.4)));
    return Math.floor(tokens * CHARS_PER_TOKEN);
  }

  engineView(): EngineView {
    const status = this.services.engine.status;
    switch (status.kind) {
      case 'ready':
        return { ready: true, text: `${status.model.name || path.basename(status.modelPath)} · ready` };
      case 'starting':
        return { ready: false, text: 'Starting the engine…' };
      case 'loading':
        return {
          ready: false,
          text: `Loading ${path.basename(status.modelPath)}…${status.percentage !== undefined ? ` ${Math.round(status.percentage)}%` : ''}`,
        };
      case 'noModel':
        return { ready: false, text: status.message, actions: [ACTIONS.chooseModel, ACTIONS.downloadModel] };
      case 'error':
        return { ready: false, text: status.message, actions: status.restarting ? [] : [ACTIONS.restartEngine, ACTIONS.showLog] };
    }
  }

  dispose(): void {
    this.stop();
    for (const d of this.viewDisposables) d.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

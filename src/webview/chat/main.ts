// The chat panel's script (runs in the webview, bundled by esbuild into media/dist/chat.js): shows
// the state the host sends, streams answers as Markdown (re-rendered at most every 50 ms), and posts
// the user's actions back as typed messages. The host owns all state; this page can be rebuilt any time.
import type { AttachmentChip, ChatViewState, EngineView, HostToWebview, MessageView, WebviewToHost } from '../../common/chatMessages';
import type { AnswerEnd, AnswerStats, CommandAction, ConversationSummary } from '../../common/chatHistory';
import { renderMarkdown } from './markdown';

interface PageState {
  draft?: string;
}

const api = acquireVsCodeApi<PageState>();
const RENDER_INTERVAL_MS = 50;

function element<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`chat webview: #${id} is missing`);
  return el as T;
}

const ui = {
  engineText: element<HTMLSpanElement>('engine-text'),
  engineActions: element<HTMLSpanElement>('engine-actions'),
  historyButton: element<HTMLButtonElement>('history-button'),
  newButton: element<HTMLButtonElement>('new-button'),
  history: element<HTMLElement>('history'),
  historyList: element<HTMLUListElement>('history-list'),
  messages: element<HTMLElement>('messages'),
  empty: element<HTMLElement>('empty'),
  chips: element<HTMLElement>('chips'),
  input: element<HTMLTextAreaElement>('input'),
  send: element<HTMLButtonElement>('send'),
  stop: element<HTMLButtonElement>('stop'),
  notice: element<HTMLElement>('notice'),
};

let state: ChatViewState | undefined;
/** The message being streamed: its text so far and the pending render. */
const stream = {
  id: undefined as string | undefined,
  timer: undefined as number | undefined,
  lastRender: 0,
  /** What happens before its first token (the host says: "Evaluating 734 prompt tokens…"). */
  progress: undefined as string | undefined,
};
let noticeTimer: number | undefined;

function post(message: WebviewToHost): void {
  api.postMessage(message);
}

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else el.setAttribute(name, value);
  }
  for (const child of children) el.append(child);
  return el;
}

function actionButtons(actions: readonly CommandAction[] | undefined): HTMLElement[] {
  return (actions ?? []).map((a) =>
    h('button', { type: 'button', class: 'link-button', 'data-command': a.command, 'data-testid': 'command-button', text: a.label }),
  );
}

// ---------------------------------------------------------------- rendering

function nearBottom(): boolean {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 48;
}

function scrollToBottom(): void {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function chipElement(chip: AttachmentChip, removable: boolean): HTMLElement {
  const el = h('span', {
    class: `chip chip-${chip.kind}`,
    'data-testid': 'attachment-chip',
    'data-kind': chip.kind,
    'data-id': chip.id,
    title: chip.detail,
  });
  el.append(h('span', { class: 'chip-kind', 'aria-hidden': 'true', text: chip.kind === 'selection' ? '⌶' : '▤' }));
  el.append(h('span', { class: 'chip-label', text: chip.label }));
  if (removable) {
    el.append(
      h('button', {
        type: 'button',
        class: 'chip-remove',
        'data-remove-id': chip.id,
        'data-testid': 'attachment-remove',
        'aria-label': `Remove attachment ${chip.label}`,
        title: 'Remove',
        text: '×',
      }),
    );
  }
  return el;
}

function describeEnd(end: AnswerEnd | undefined, stats: AnswerStats | undefined): string {
  const parts: string[] = [];
  if (end === 'stopped') parts.push('Stopped.');
  else if (end === 'length') parts.push('Stopped at the length limit (setting smallthinker.chat.maxTokens).');
  else if (end === 'cancelled') parts.push('The engine stopped this answer.');
  if (stats && stats.decodeTokens > 0) parts.push(`${stats.decodeTokens} tokens, ${stats.decodeTokensPerS.toFixed(1)} tokens/s`);
  return parts.join(' ');
}

function fillMessageBody(article: HTMLElement, m: MessageView, streaming: boolean): void {
  const body = article.querySelector<HTMLElement>('.message-body');
  if (!body) return;
  if (m.role === 'user') {
    body.textContent = m.text;
  } else if (m.text) {
    body.innerHTML = renderMarkdown(m.text);
  } else {
    const progress = (streaming && stream.id === m.id && stream.progress) || 'Thinking…';
    body.replaceChildren(streaming ? h('span', { class: 'thinking', 'data-testid': 'message-progress', text: progress }) : '');
  }
  article.classList.toggle('streaming', streaming);
  article.setAttribute('aria-busy', streaming ? 'true' : 'false');
  const status = article.querySelector<HTMLElement>('.message-status');
  if (status) {
    const text = streaming ? '' : describeEnd(m.stopReason, m.stats);
    status.textContent = text;
    status.hidden = !text;
  }
  const error = article.querySelector<HTMLElement>('.message-error');
  if (error) {
    error.hidden = !m.error;
    error.replaceChildren();
    if (m.error) error.append(h('span', { class: 'error-text', text: m.error }), ...actionButtons(m.actions));
  }
}

function messageElement(m: MessageView, streaming: boolean): HTMLElement {
  const article = h('article', {
    class: `message message-${m.role}`,
    'data-testid': 'message',
    'data-role': m.role,
    'data-message-id': m.id,
  });
  article.append(h('div', { class: 'message-author', text: m.role === 'user' ? 'You' : 'SmallThinker' }));
  if (m.attachments && m.attachments.length > 0) {
    article.append(h('div', { class: 'message-chips' }, ...m.attachments.map((c) => chipElement(c, false))));
  }
  article.append(
    h('div', { class: m.role === 'user' ? 'message-body user-text' : 'message-body markdown', 'data-testid': 'message-body' }),
  );
  if (m.role === 'assistant') {
    article.append(h('div', { class: 'message-error', role: 'alert', 'data-testid': 'message-error', hidden: '' }));
    article.append(h('div', { class: 'message-status', 'data-testid': 'message-status', hidden: '' }));
  }
  fillMessageBody(article, m, streaming);
  return article;
}

function renderTranscript(): void {
  if (!state) return;
  const stick = nearBottom();
  const { messages } = state.conversation;
  ui.messages.replaceChildren(...messages.map((m) => messageElement(m, m.id === stream.id)));
  ui.empty.hidden = messages.length > 0;
  if (stick || messages.length === 0) scrollToBottom();
}

function renderEngine(engine: EngineView): void {
  ui.engineText.textContent = engine.text;
  ui.engineText.classList.toggle('engine-not-ready', !engine.ready);
  ui.engineActions.replaceChildren(...actionButtons(engine.actions));
}

function formatWhen(ms: number): string {
  const date = new Date(ms);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }) : date.toLocaleDateString();
}

function renderHistory(list: readonly ConversationSummary[]): void {
  const current = state?.conversation.id;
  ui.historyList.replaceChildren(
    ...list.map((c) => {
      const open = h('button', { type: 'button', class: 'history-open', 'data-open-id': c.id, 'data-testid': 'history-item' });
      open.append(
        h('span', { class: 'history-title', text: c.title }),
        h('span', { class: 'history-when', text: formatWhen(c.updatedAt) }),
      );
      if (c.id === current) open.setAttribute('aria-current', 'true');
      const remove = h('button', {
        type: 'button',
        class: 'history-delete',
        'data-delete-id': c.id,
        'data-testid': 'history-delete',
        'aria-label': `Delete conversation ${c.title}`,
        title: 'Delete',
        text: '×',
      });
      return h('li', {}, open, remove);
    }),
  );
  if (list.length === 0) ui.historyList.append(h('li', { class: 'history-empty', text: 'No earlier conversations in this workspace.' }));
}

function renderChips(list: readonly AttachmentChip[]): void {
  ui.chips.replaceChildren(...list.map((c) => chipElement(c, true)));
  ui.chips.hidden = list.length === 0;
}

function renderBusy(): void {
  const busy = state?.busy ?? false;
  const hadFocus = document.activeElement === ui.send || document.activeElement === ui.stop;
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  document.body.classList.toggle('busy', busy);
  if (hadFocus) (busy ? ui.stop : ui.send).focus();
}

function renderState(): void {
  if (!state) return;
  renderEngine(state.engine);
  renderHistory(state.history);
  renderChips(state.attachments);
  renderTranscript();
  renderBusy();
}

function findMessage(id: string): MessageView | undefined {
  return state?.conversation.messages.find((m) => m.id === id);
}

/** Re-renders the streaming message now. */
function flushStream(): void {
  if (stream.timer !== undefined) {
    clearTimeout(stream.timer);
    stream.timer = undefined;
  }
  stream.lastRender = Date.now();
  const id = stream.id;
  const m = id ? findMessage(id) : undefined;
  const article = id ? ui.messages.querySelector<HTMLElement>(`article[data-message-id="${CSS.escape(id)}"]`) : null;
  if (!m || !article) return;
  const stick = nearBottom();
  fillMessageBody(article, m, true);
  if (stick) scrollToBottom();
}

/** Renders the streaming message at most every RENDER_INTERVAL_MS. */
function scheduleStreamRender(): void {
  if (stream.timer !== undefined) return;
  const wait = Math.max(0, RENDER_INTERVAL_MS - (Date.now() - stream.lastRender));
  stream.timer = window.setTimeout(flushStream, wait);
}

function showNotice(text: string, isError: boolean): void {
  ui.notice.textContent = text;
  ui.notice.classList.toggle('notice-error', isError);
  ui.notice.hidden = false;
  if (noticeTimer !== undefined) clearTimeout(noticeTimer);
  noticeTimer = window.setTimeout(() => {
    ui.notice.hidden = true;
  }, 8000);
}

// ---------------------------------------------------------------- host messages

function onHostMessage(message: HostToWebview): void {
  switch (message.type) {
    case 'state': {
      state = message.state;
      if (stream.timer !== undefined) clearTimeout(stream.timer);
      stream.timer = undefined;
      stream.id = state.busy ? state.streamingMessageId : undefined;
      stream.progress = state.busy ? state.progress : undefined;
      renderState();
      break;
    }
    case 'delta': {
      const m = findMessage(message.messageId);
      if (!m) break;
      m.text += message.text;
      stream.id = message.messageId;
      scheduleStreamRender();
      break;
    }
    case 'progress': {
      const m = findMessage(message.messageId);
      if (!m) break;
      stream.id = message.messageId;
      stream.progress = message.text;
      if (!m.text) flushStream();
      break;
    }
    case 'done': {
      const m = findMessage(message.messageId);
      if (!m) break;
      m.stopReason = message.stopReason;
      m.stats = message.stats;
      flushStream();
      if (stream.id === message.messageId) stream.id = undefined;
      const article = ui.messages.querySelector<HTMLElement>(`article[data-message-id="${CSS.escape(message.messageId)}"]`);
      if (article) fillMessageBody(article, m, false);
      break;
    }
    case 'error': {
      const m = message.messageId ? findMessage(message.messageId) : undefined;
      if (!m) {
        showNotice(message.message, true);
        break;
      }
      m.error = message.message;
      m.actions = message.actions;
      if (stream.id === m.id) stream.id = undefined;
      const article = ui.messages.querySelector<HTMLElement>(`article[data-message-id="${CSS.escape(m.id)}"]`);
      if (article) fillMessageBody(article, m, false);
      break;
    }
    case 'notice':
      showNotice(message.message, false);
      break;
    case 'attachments':
      if (state) state.attachments = message.list;
      renderChips(message.list);
      break;
    case 'engine':
      if (state) state.engine = message.engine;
      renderEngine(message.engine);
      break;
    case 'focusInput':
      ui.input.focus();
      break;
    default:
      break;
  }
}

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const data = event.data;
  if (typeof data !== 'object' || data === null || typeof (data as { type?: unknown }).type !== 'string') return;
  try {
    onHostMessage(data as HostToWebview);
  } catch (err) {
    console.error('chat webview: could not handle a message', err);
  }
});

// ---------------------------------------------------------------- user actions

function send(): void {
  if (!state || state.busy) {
    if (state?.busy) showNotice('Wait for the answer to finish, or press Escape to stop it.', false);
    return;
  }
  const text = ui.input.value;
  if (!text.trim()) return;
  post({ type: 'send', text, attachmentIds: state.attachments.map((a) => a.id) });
  ui.input.value = '';
  api.setState({ draft: '' });
}

function stop(): void {
  if (state?.busy) post({ type: 'stop' });
}

function setHistoryOpen(open: boolean): void {
  ui.history.hidden = !open;
  ui.historyButton.setAttribute('aria-expanded', String(open));
  if (open) ui.historyList.querySelector<HTMLButtonElement>('button')?.focus();
}

ui.send.addEventListener('click', send);
ui.stop.addEventListener('click', stop);
ui.newButton.addEventListener('click', () => {
  post({ type: 'newConversation' });
  ui.input.focus();
});
ui.historyButton.addEventListener('click', () => setHistoryOpen(ui.history.hidden));

ui.input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
ui.input.addEventListener('input', () => api.setState({ draft: ui.input.value }));

document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  if (state?.busy) {
    event.preventDefault();
    stop();
  } else if (!ui.history.hidden) {
    event.preventDefault();
    setHistoryOpen(false);
    ui.historyButton.focus();
  }
});

ui.chips.addEventListener('click', (event) => {
  const button = (event.target as Element).closest<HTMLButtonElement>('button[data-remove-id]');
  const id = button?.dataset.removeId;
  if (!button || !id) return;
  // Move focus to the next chip's button (or the input) before the chip goes.
  const buttons = Array.from(ui.chips.querySelectorAll<HTMLButtonElement>('button[data-remove-id]'));
  const next = buttons[buttons.indexOf(button) + 1] ?? buttons[buttons.indexOf(button) - 1];
  button.closest('.chip')?.remove();
  if (state) state.attachments = state.attachments.filter((a) => a.id !== id);
  ui.chips.hidden = !ui.chips.querySelector('.chip');
  (next ?? ui.input).focus();
  post({ type: 'removeAttachment', id });
});

ui.historyList.addEventListener('click', (event) => {
  const target = event.target as Element;
  const open = target.closest<HTMLElement>('[data-open-id]');
  if (open?.dataset.openId) {
    post({ type: 'selectConversation', id: open.dataset.openId });
    setHistoryOpen(false);
    ui.input.focus();
    return;
  }
  const remove = target.closest<HTMLElement>('[data-delete-id]');
  if (remove?.dataset.deleteId) {
    const item = remove.closest('li');
    const sibling = (item?.nextElementSibling ?? item?.previousElementSibling)?.querySelector<HTMLButtonElement>('button');
    post({ type: 'deleteConversation', id: remove.dataset.deleteId });
    (sibling ?? ui.historyButton).focus();
  }
});

document.addEventListener('click', (event) => {
  const target = event.target as Element;
  const command = target.closest<HTMLElement>('[data-command]')?.dataset.command;
  if (command) {
    post({ type: 'runCommand', command });
    return;
  }
  const button = target.closest<HTMLButtonElement>('button[data-code-action]');
  if (!button) return;
  const block = button.closest<HTMLElement>('.code-block');
  const code = block?.querySelector('pre code')?.textContent;
  const action = button.dataset.codeAction;
  if (!block || code == null || (action !== 'copy' && action !== 'insert' && action !== 'apply')) return;
  const language = block.dataset.language || undefined;
  // A fenced block's text ends with the newline before the closing fence; it is not part of the code.
  post({ type: 'codeAction', action, code: code.endsWith('\n') ? code.slice(0, -1) : code, language });
  if (action === 'copy') {
    button.textContent = 'Copied';
    window.setTimeout(() => (button.textContent = 'Copy'), 1500);
  }
});

// ---------------------------------------------------------------- start

ui.input.value = api.getState()?.draft ?? '';
post({ type: 'ready' });

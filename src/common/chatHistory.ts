// The chat panel's conversation model: conversations and their messages, the per-workspace history
// (validated when read back from storage, capped), and the prompt sent to the engine (system prompt,
// turns, attachments as fenced code) trimmed to a token budget. Pure: no vscode, no Node.
import type { ChatAttachment } from './chatTypes';
import type { ChatMessage, ChatStats, ChatStopReason } from './protocol';

/** How an answer ended: the engine's reason, or 'stopped' when the user pressed Stop. */
export type AnswerEnd = ChatStopReason | 'stopped';

/** A button under an error: runs one of the extension's commands. */
export interface CommandAction {
  label: string;
  command: string;
}

/** The figures shown under an answer. */
export interface AnswerStats {
  promptTokens: number;
  reusedTokens: number;
  decodeTokens: number;
  decodeTokensPerS: number;
  timeToFirstTokenMs: number;
}

export interface ConversationMessage {
  id: string;
  role: 'user' | 'assistant';
  /** User: what was typed. Assistant: the Markdown answer (partial while streaming or when stopped). */
  text: string;
  /** Epoch ms. */
  at: number;
  /** User messages: the editor content sent with the message. */
  attachments?: ChatAttachment[];
  /** Assistant messages, once finished. */
  stopReason?: AnswerEnd;
  /** Assistant messages: the answer failed; a sentence saying what happened and what to do. */
  error?: string;
  /** Buttons shown with the error. */
  actions?: CommandAction[];
  stats?: AnswerStats;
}

export interface Conversation {
  id: string;
  /** The first user message, shortened; empty until one was sent. */
  title: string;
  messages: ConversationMessage[];
  createdAt: number;
  updatedAt: number;
}

/** A history entry as listed in the panel. */
export interface ConversationSummary {
  id: string;
  title: string;
  updatedAt: number;
  messageCount: number;
}

export const DEFAULT_HISTORY_LIMIT = 50;
export const TITLE_MAX_CHARS = 60;

export function createConversation(id: string, now: number): Conversation {
  return { id, title: '', messages: [], createdAt: now, updatedAt: now };
}

/** A title from a user message: its first non-blank line, whitespace collapsed, shortened with '…'. */
export function conversationTitle(text: string, max = TITLE_MAX_CHARS): string {
  const line = text.split(/\r?\n/).find((l) => l.trim().length > 0) ?? '';
  const collapsed = line.replace(/\s+/g, ' ').trim();
  if (collapsed.length <= max) return collapsed;
  return `${collapsed.slice(0, Math.max(1, max - 1)).trimEnd()}…`;
}

export function summarize(conversation: Conversation): ConversationSummary {
  return {
    id: conversation.id,
    title: conversation.title || 'New conversation',
    updatedAt: conversation.updatedAt,
    messageCount: conversation.messages.length,
  };
}

export function toAnswerStats(stats: ChatStats): AnswerStats {
  return {
    promptTokens: stats.promptTokens,
    reusedTokens: stats.reusedTokens,
    decodeTokens: stats.decodeTokens,
    decodeTokensPerS: stats.decodeTokensPerS,
    timeToFirstTokenMs: stats.timeToFirstTokenMs,
  };
}

/**
 * The conversations of one workspace, most recently updated first, at most `limit` of them.
 * Empty conversations are never kept (a new conversation enters the history with its first message).
 */
export class ChatHistory {
  private conversations: Conversation[];

  constructor(
    conversations: readonly Conversation[] = [],
    readonly limit = DEFAULT_HISTORY_LIMIT,
  ) {
    this.conversations = [];
    for (const c of conversations) this.save(c);
  }

  get size(): number {
    return this.conversations.length;
  }

  list(): ConversationSummary[] {
    return this.conversations.map(summarize);
  }

  get(id: string): Conversation | undefined {
    return this.conversations.find((c) => c.id === id);
  }

  /** Adds or replaces a conversation (by id), keeps the order by updatedAt and drops the oldest beyond the limit. */
  save(conversation: Conversation): void {
    this.conversations = this.conversations.filter((c) => c.id !== conversation.id);
    if (conversation.messages.length === 0) return;
    this.conversations.push(conversation);
    this.conversations.sort((a, b) => b.updatedAt - a.updatedAt);
    if (this.conversations.length > this.limit) this.conversations.length = this.limit;
  }

  delete(id: string): boolean {
    const before = this.conversations.length;
    this.conversations = this.conversations.filter((c) => c.id !== id);
    return this.conversations.length !== before;
  }

  /** What is written to storage. */
  toJSON(): Conversation[] {
    return this.conversations.slice();
  }
}

// ---------------------------------------------------------------- reading stored history

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const ANSWER_ENDS: readonly string[] = ['eog', 'length', 'stop', 'cancelled', 'stopped'];

function parseAttachment(v: unknown): ChatAttachment | undefined {
  if (!isObject(v)) return undefined;
  const { id, kind, uri, label, languageId, text, startLine, endLine } = v;
  if (typeof id !== 'string' || (kind !== 'selection' && kind !== 'file')) return undefined;
  if (typeof uri !== 'string' || typeof label !== 'string' || typeof languageId !== 'string' || typeof text !== 'string') return undefined;
  const a: ChatAttachment = { id, kind, uri, label, languageId, text };
  if (isFiniteNumber(startLine) && isFiniteNumber(endLine)) {
    a.startLine = startLine;
    a.endLine = endLine;
  }
  return a;
}

function parseStats(v: unknown): AnswerStats | undefined {
  if (!isObject(v)) return undefined;
  const keys = ['promptTokens', 'reusedTokens', 'decodeTokens', 'decodeTokensPerS', 'timeToFirstTokenMs'] as const;
  if (!keys.every((k) => isFiniteNumber(v[k]))) return undefined;
  return toAnswerStats(v as unknown as ChatStats);
}

function parseMessage(v: unknown): ConversationMessage | undefined {
  if (!isObject(v)) return undefined;
  const { id, role, text, at } = v;
  if (typeof id !== 'string' || (role !== 'user' && role !== 'assistant') || typeof text !== 'string') return undefined;
  const m: ConversationMessage = { id, role, text, at: isFiniteNumber(at) ? at : 0 };
  if (role === 'user' && Array.isArray(v.attachments)) {
    const attachments = v.attachments.map(parseAttachment).filter((a): a is ChatAttachment => a !== undefined);
    if (attachments.length > 0) m.attachments = attachments;
  }
  if (role === 'assistant') {
    if (typeof v.error === 'string') m.error = v.error;
    if (Array.isArray(v.actions)) {
      const actions = v.actions.filter(
        (a): a is CommandAction => isObject(a) && typeof a.label === 'string' && typeof a.command === 'string',
      );
      if (actions.length > 0) m.actions = actions.map((a) => ({ label: a.label, command: a.command }));
    }
    const stats = parseStats(v.stats);
    if (stats) m.stats = stats;
    // An answer without an end was cut off (the window closed while it streamed): stopped.
    m.stopReason = typeof v.stopReason === 'string' && ANSWER_ENDS.includes(v.stopReason) ? (v.stopReason as AnswerEnd) : 'stopped';
  }
  return m;
}

/** Conversations read back from storage: malformed entries and messages are dropped, never thrown. */
export function parseHistory(value: unknown): Conversation[] {
  if (!Array.isArray(value)) return [];
  const out: Conversation[] = [];
  const seen = new Set<string>();
  for (const v of value) {
    if (!isObject(v) || typeof v.id !== 'string' || seen.has(v.id) || !Array.isArray(v.messages)) continue;
    const messages = v.messages.map(parseMessage).filter((m): m is ConversationMessage => m !== undefined);
    if (messages.length === 0) continue;
    seen.add(v.id);
    const updatedAt = isFiniteNumber(v.updatedAt) ? v.updatedAt : 0;
    const firstUser = messages.find((m) => m.role === 'user');
    out.push({
      id: v.id,
      title: typeof v.title === 'string' && v.title ? v.title : conversationTitle(firstUser?.text ?? ''),
      messages,
      createdAt: isFiniteNumber(v.createdAt) ? v.createdAt : updatedAt,
      updatedAt,
    });
  }
  return out;
}

// ---------------------------------------------------------------- prompt assembly

export const CHAT_SYSTEM_PROMPT = [
  "You are SmallThinker, a coding assistant running locally inside the user's code editor.",
  'Answer concisely and precisely; say so when you are not sure.',
  'Put code in fenced code blocks tagged with their language (for example ```python).',
  'When the user attaches code, it is shown with its file name and line numbers; refer to it by those.',
].join(' ');

/** Tokens per message for the chat template's role markers. */
export const MESSAGE_OVERHEAD_TOKENS = 4;
/** Characters per token assumed when estimating. */
export const CHARS_PER_TOKEN = 3.5;

export function estimateTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

/**
 * Tokens the prompt may take in a context of `contextLength`: what is left after the answer's
 * room (at most half the context) and a small margin for estimation error.
 */
export function promptBudget(contextLength: number, maxTokens: number): number {
  const answer = Math.min(Math.max(0, maxTokens), Math.floor(contextLength / 2));
  const margin = Math.max(16, Math.floor(contextLength * 0.05));
  return Math.max(64, contextLength - answer - margin);
}

/** A backtick fence longer than any run of backticks inside `text` (at least three). */
export function fenceFor(text: string): string {
  let longest = 0;
  for (const run of text.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  return '`'.repeat(Math.max(3, longest + 1));
}

/** The file name at the end of a URI or path. */
export function baseName(uri: string): string {
  const path = uri.replace(/[?#].*$/, '').replace(/\/+$/, '');
  const name = path.slice(path.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** An attachment as the model sees it: a heading with file and lines, then the text fenced. */
export function renderAttachment(attachment: ChatAttachment): string {
  const name = baseName(attachment.uri) || attachment.label;
  const lines =
    attachment.startLine !== undefined && attachment.endLine !== undefined
      ? attachment.startLine === attachment.endLine
        ? ` (line ${attachment.startLine + 1})`
        : ` (lines ${attachment.startLine + 1}-${attachment.endLine + 1})`
      : '';
  const what = attachment.kind === 'selection' ? 'Selected code from' : 'File';
  const text = attachment.text.endsWith('\n') ? attachment.text : `${attachment.text}\n`;
  const fence = fenceFor(text);
  return `${what} ${name}${lines}:\n${fence}${attachment.languageId}\n${text}${fence}`;
}

/** The user message sent to the model: the attachments first, then what the user typed. */
export function renderUserMessage(text: string, attachments: readonly ChatAttachment[] = []): string {
  const parts = attachments.map(renderAttachment);
  if (text.trim()) parts.push(text.trim());
  return parts.join('\n\n');
}

/** Shortens text to about `maxChars`, cutting at a line end where one is near, and says so. */
export function truncateText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const keep = Math.max(0, maxChars);
  let cut = text.lastIndexOf('\n', keep);
  if (cut < keep * 0.8) cut = keep;
  return `${text.slice(0, cut)}\n… (truncated)`;
}

export interface PromptInput {
  /** The conversation up to and including the question: the last message must be the user's. */
  messages: readonly ConversationMessage[];
  budgetTokens: number;
  system?: string;
  estimate?: (text: string) => number;
}

export interface AssembledPrompt {
  messages: ChatMessage[];
  /** Estimated tokens of `messages`. */
  tokens: number;
  /** Earlier exchanges left out to fit the budget. */
  droppedTurns: number;
  /** The question's attachments were shortened to fit. */
  truncatedAttachments: boolean;
  /** Still over the budget (the question alone is too long). */
  overBudget: boolean;
}

interface Turn {
  user: ConversationMessage;
  answer?: ConversationMessage;
}

/**
 * The messages for the engine: the system prompt, the earlier exchanges that have an answer
 * (stopped answers count; failed ones and their questions are left out), and the question with
 * its attachments. Over the budget, the oldest exchanges go first; then the question's attachments
 * are shortened.
 */
export function buildChatPrompt(input: PromptInput): AssembledPrompt {
  const estimate = input.estimate ?? estimateTokens;
  const cost = (content: string): number => estimate(content) + MESSAGE_OVERHEAD_TOKENS;
  const system: ChatMessage = { role: 'system', content: input.system ?? CHAT_SYSTEM_PROMPT };

  const turns: Turn[] = [];
  for (const m of input.messages) {
    if (m.role === 'user') turns.push({ user: m });
    else if (turns.length > 0 && !turns[turns.length - 1].answer) turns[turns.length - 1].answer = m;
  }
  const question = turns.pop();
  if (!question || question.answer) throw new Error('buildChatPrompt: the last message must be a user message.');
  const history = turns.filter((t) => t.answer && t.answer.text.trim().length > 0);

  const rendered = history.map((t) => {
    const user: ChatMessage = { role: 'user', content: renderUserMessage(t.user.text, t.user.attachments) };
    const answer: ChatMessage = { role: 'assistant', content: t.answer?.text ?? '' };
    return { messages: [user, answer], tokens: cost(user.content) + cost(answer.content) };
  });

  let attachments = question.user.attachments ?? [];
  let questionContent = renderUserMessage(question.user.text, attachments);
  const fixed = cost(system.content);
  let total = fixed + cost(questionContent) + rendered.reduce((n, t) => n + t.tokens, 0);
  let dropped = 0;
  while (total > input.budgetTokens && dropped < rendered.length) {
    total -= rendered[dropped].tokens;
    dropped++;
  }

  let truncatedAttachments = false;
  if (total > input.budgetTokens && attachments.length > 0) {
    // Share what is left among the attachments (in characters, by the same estimate).
    const withoutTexts = renderUserMessage(
      question.user.text,
      attachments.map((a) => ({ ...a, text: '' })),
    );
    const room = input.budgetTokens - fixed - cost(withoutTexts);
    const perAttachment = Math.max(0, Math.floor((room * CHARS_PER_TOKEN) / attachments.length) - 32);
    attachments = attachments.map((a) => ({ ...a, text: truncateText(a.text, perAttachment) }));
    questionContent = renderUserMessage(question.user.text, attachments);
    total = fixed + cost(questionContent);
    truncatedAttachments = true;
  }

  const messages: ChatMessage[] = [system];
  for (const t of rendered.slice(dropped)) messages.push(...t.messages);
  messages.push({ role: 'user', content: questionContent });
  return { messages, tokens: total, droppedTurns: dropped, truncatedAttachments, overBudget: total > input.budgetTokens };
}

/**
 * For requests that come as a list of messages (VS Code's language-model API): keeps the leading
 * system messages and the last message, and drops the oldest of the others until the estimate fits.
 */
export function trimMessages(
  messages: readonly ChatMessage[],
  budgetTokens: number,
  estimate: (text: string) => number = estimateTokens,
): ChatMessage[] {
  const cost = (m: ChatMessage): number => estimate(m.content) + MESSAGE_OVERHEAD_TOKENS;
  let lead = 0;
  while (lead < messages.length - 1 && messages[lead].role === 'system') lead++;
  const head = messages.slice(0, lead);
  const rest = messages.slice(lead);
  let total = messages.reduce((n, m) => n + cost(m), 0);
  let drop = 0;
  while (total > budgetTokens && drop < rest.length - 1) {
    total -= cost(rest[drop]);
    drop++;
  }
  // Chat templates expect the first non-system message to be the user's.
  while (drop < rest.length - 1 && rest[drop].role === 'assistant') drop++;
  return [...head, ...rest.slice(drop)];
}

/**
 * A window of a long file around a line, at most about `maxChars` long, on whole lines.
 * Lines are 0-based and inclusive.
 */
export function windowAroundLine(text: string, line: number, maxChars: number): { text: string; startLine: number; endLine: number } {
  const lines = text.split('\n');
  const center = Math.min(Math.max(0, line), lines.length - 1);
  let start = center;
  let end = center;
  let size = lines[center].length + 1;
  for (;;) {
    const grewBefore = start > 0 && size + lines[start - 1].length + 1 <= maxChars;
    if (grewBefore) {
      start--;
      size += lines[start].length + 1;
    }
    const grewAfter = end < lines.length - 1 && size + lines[end + 1].length + 1 <= maxChars;
    if (grewAfter) {
      end++;
      size += lines[end].length + 1;
    }
    if (!grewBefore && !grewAfter) break;
  }
  let window = lines.slice(start, end + 1).join('\n');
  if (window.length > maxChars) window = window.slice(0, maxChars);
  return { text: window, startLine: start, endLine: end };
}

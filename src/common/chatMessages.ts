// The messages between the chat webview and the extension host, typed once for both sides, and
// the host's validator for what the webview posts (anything malformed is rejected, never trusted).
// Pure: no vscode, no Node, no DOM; the webview bundle imports it.
import type { AnswerEnd, AnswerStats, CommandAction, Conversation, ConversationMessage, ConversationSummary } from './chatHistory';
import type { ChatAttachment } from './chatTypes';
import { Commands } from './ids';

export type CodeAction = 'copy' | 'insert' | 'apply';
export const CODE_ACTIONS: readonly CodeAction[] = ['copy', 'insert', 'apply'];

/** Commands the webview may ask the host to run (error buttons); anything else is refused. */
export const WEBVIEW_COMMANDS: readonly string[] = [
  Commands.chooseModel,
  Commands.downloadModel,
  Commands.restartEngine,
  Commands.showLog,
  Commands.newChat,
];

/** An attachment as the webview shows it: a chip (the text stays on the host). */
export interface AttachmentChip {
  id: string;
  kind: ChatAttachment['kind'];
  label: string;
  /** Tooltip: the file path and lines. */
  detail: string;
  languageId: string;
}

export type MessageView = Omit<ConversationMessage, 'attachments'> & { attachments?: AttachmentChip[] };
export type ConversationView = Omit<Conversation, 'messages'> & { messages: MessageView[] };

export interface EngineView {
  ready: boolean;
  /** One line for the panel's header, e.g. "SmallThinker-4B · ready" or "Loading model… 40%". */
  text: string;
  actions?: CommandAction[];
}

export interface ChatViewState {
  conversation: ConversationView;
  history: ConversationSummary[];
  /** Chips offered for the next message. */
  attachments: AttachmentChip[];
  busy: boolean;
  /** The assistant message being streamed, when busy in this conversation. */
  streamingMessageId?: string;
  /** What happens before its first token ("Evaluating 734 prompt tokens…"). */
  progress?: string;
  engine: EngineView;
}

/** Webview → host. */
export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'send'; text: string; attachmentIds: string[] }
  | { type: 'stop' }
  | { type: 'newConversation' }
  | { type: 'removeAttachment'; id: string }
  | { type: 'codeAction'; action: CodeAction; code: string; language?: string }
  | { type: 'selectConversation'; id: string }
  | { type: 'deleteConversation'; id: string }
  | { type: 'runCommand'; command: string };

/** Host → webview. */
export type HostToWebview =
  | { type: 'state'; state: ChatViewState }
  | { type: 'delta'; messageId: string; text: string }
  /** What happens before the answer's first token; shown in place of its text until that comes. */
  | { type: 'progress'; messageId: string; text: string }
  | { type: 'done'; messageId: string; stopReason: AnswerEnd; stats?: AnswerStats }
  /** With messageId: the answer failed (shown in the transcript); without: a passing notice. */
  | { type: 'error'; message: string; messageId?: string; actions?: CommandAction[] }
  | { type: 'notice'; message: string }
  | { type: 'attachments'; list: AttachmentChip[] }
  | { type: 'engine'; engine: EngineView }
  | { type: 'focusInput' };

/** "Reading app.ts…", "Reading 2 files and a selection…": what the answer starts with when the message has attachments. */
export function readingText(attachments: ReadonlyArray<Pick<ChatAttachment, 'kind' | 'label'>>): string | undefined {
  if (attachments.length === 0) return undefined;
  if (attachments.length === 1) return `Reading ${attachments[0].kind === 'file' ? attachments[0].label : 'the selection'}…`;
  const files = attachments.filter((a) => a.kind === 'file').length;
  const selections = attachments.length - files;
  const part = (n: number, one: string, many: string): string => (n === 1 ? `1 ${one}` : `${n} ${many}`);
  const parts = [files > 0 ? part(files, 'file', 'files') : '', selections > 0 ? part(selections, 'selection', 'selections') : ''];
  return `Reading ${parts.filter(Boolean).join(' and ')}…`;
}

/** "Evaluating 734 prompt tokens…", or with a cache: "Evaluating 34 new prompt tokens (700 cached)…". */
export function evaluatingText(promptTokens: number, cachedTokens: number): string {
  const fresh = Math.max(0, promptTokens - cachedTokens);
  return cachedTokens > 0 ? `Evaluating ${fresh} new prompt tokens (${cachedTokens} cached)…` : `Evaluating ${fresh} prompt tokens…`;
}

export const MAX_TEXT_CHARS = 200_000;
export const MAX_CODE_CHARS = 2_000_000;
export const MAX_ID_CHARS = 1_000;
export const MAX_ATTACHMENT_IDS = 64;

type Fields = Record<string, unknown>;

const isString = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;
const isId = (v: unknown): v is string => isString(v, MAX_ID_CHARS) && v.length > 0;

/**
 * What the webview posted, checked field by field; undefined when malformed (wrong or missing
 * type, fields of the wrong type, over the size limits, unknown command). Extra fields are dropped.
 */
export function parseWebviewMessage(value: unknown): WebviewToHost | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const m = value as Fields;
  switch (m.type) {
    case 'ready':
    case 'stop':
    case 'newConversation':
      return { type: m.type };
    case 'send': {
      if (!isString(m.text, MAX_TEXT_CHARS)) return undefined;
      const ids = m.attachmentIds ?? [];
      if (!Array.isArray(ids) || ids.length > MAX_ATTACHMENT_IDS || !ids.every(isId)) return undefined;
      return { type: 'send', text: m.text, attachmentIds: ids.slice() };
    }
    case 'removeAttachment':
    case 'selectConversation':
    case 'deleteConversation':
      return isId(m.id) ? { type: m.type, id: m.id } : undefined;
    case 'codeAction': {
      if (!CODE_ACTIONS.includes(m.action as CodeAction) || !isString(m.code, MAX_CODE_CHARS)) return undefined;
      if (m.language !== undefined && !isString(m.language, 100)) return undefined;
      const msg: WebviewToHost = { type: 'codeAction', action: m.action as CodeAction, code: m.code };
      if (typeof m.language === 'string' && m.language) msg.language = m.language;
      return msg;
    }
    case 'runCommand':
      return typeof m.command === 'string' && WEBVIEW_COMMANDS.includes(m.command) ? { type: 'runCommand', command: m.command } : undefined;
    default:
      return undefined;
  }
}

/** A short description of a rejected message for the log (type and keys only, never its text). */
export function describeMessage(value: unknown): string {
  if (typeof value !== 'object' || value === null) return typeof value;
  if (Array.isArray(value)) return `array(${value.length})`;
  const m = value as Fields;
  const type = typeof m.type === 'string' ? m.type.slice(0, 40) : typeof m.type;
  return `{type: ${type}; keys: ${Object.keys(m).slice(0, 10).join(', ')}}`;
}

function lineRange(a: ChatAttachment): string {
  if (a.startLine === undefined || a.endLine === undefined) return '';
  return a.startLine === a.endLine ? `, line ${a.startLine + 1}` : `, lines ${a.startLine + 1}-${a.endLine + 1}`;
}

export function toChip(a: ChatAttachment): AttachmentChip {
  let path = a.uri;
  try {
    path = decodeURIComponent(a.uri.replace(/^file:\/\//, ''));
  } catch {
    // keep the URI as it is
  }
  return { id: a.id, kind: a.kind, label: a.label, detail: `${path}${lineRange(a)}`, languageId: a.languageId };
}

/** A conversation as sent to the webview: attachments become chips (their text stays on the host). */
export function toConversationView(c: Conversation): ConversationView {
  return {
    ...c,
    messages: c.messages.map((m) => {
      const { attachments, ...rest } = m;
      return attachments ? { ...rest, attachments: attachments.map(toChip) } : rest;
    }),
  };
}

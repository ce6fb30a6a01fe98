// Values shared by the chat panel, the refactor commands and the webview: what can be attached to
// a chat message, and a request to ask something in the chat panel. Pure: no vscode, no Node.

/** Editor content attached to a message: shown as a removable chip, sent to the model as context. */
export interface ChatAttachment {
  /** Stable id within a conversation (chips are removed by id). */
  id: string;
  kind: 'selection' | 'file';
  /** The document's URI as a string. */
  uri: string;
  /** Short label for the chip, e.g. "app.ts:12-30" or "app.ts". */
  label: string;
  languageId: string;
  text: string;
  /** For selections: 0-based inclusive line range. */
  startLine?: number;
  endLine?: number;
}

/** A request from elsewhere in the extension (Explain, ...) to ask in the chat panel. */
export interface ChatAskRequest {
  /** The user message as shown in the transcript. */
  prompt: string;
  attachments: ChatAttachment[];
  /** Start a new conversation first (default false). */
  newConversation?: boolean;
}

// The chat webview's HTML: a strict Content-Security-Policy (scripts only with the page's nonce,
// styles and images only from the extension's media folder), the page skeleton with stable
// data-testid hooks, and the bundled script (media/dist/chat.js). No vscode import: plain strings in.

export interface ChatHtmlOptions {
  /** webview.cspSource */
  cspSource: string;
  /** A fresh random nonce per page. */
  nonce: string;
  /** webview.asWebviewUri(media/dist/chat.js) */
  scriptUri: string;
  /** webview.asWebviewUri(media/chat.css) */
  styleUri: string;
}

const escapeAttribute = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function chatHtml(o: ChatHtmlOptions): string {
  const csp = [
    "default-src 'none'",
    `style-src ${o.cspSource}`,
    `script-src 'nonce-${o.nonce}'`,
    `img-src ${o.cspSource} data:`,
    `font-src ${o.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttribute(o.styleUri)}">
<title>SmallThinker Chat</title>
</head>
<body>
<div class="app">
  <header class="toolbar">
    <span class="engine" data-testid="engine-status" role="status" aria-live="polite"><span id="engine-text"></span><span id="engine-actions" class="engine-actions"></span></span>
    <span class="toolbar-buttons">
      <button type="button" id="history-button" class="toolbar-button" data-testid="history-button" aria-label="Conversation history" aria-expanded="false" aria-controls="history" title="Conversation history">History</button>
      <button type="button" id="new-button" class="toolbar-button" data-testid="new-conversation" aria-label="New conversation" title="New conversation">New</button>
    </span>
  </header>
  <nav id="history" class="history" aria-label="Conversation history" hidden>
    <ul id="history-list" data-testid="history-list"></ul>
  </nav>
  <main class="transcript">
    <div id="messages" class="messages" data-testid="message-list" role="log" aria-label="Conversation" tabindex="0"></div>
    <div id="empty" class="empty" data-testid="empty-state">
      <p>Ask about your code. The selection and the active file are attached as chips; remove any you do not want to send.</p>
      <p>Enter sends, Shift+Enter starts a new line, Escape stops an answer.</p>
    </div>
  </main>
  <footer class="composer">
    <div id="notice" class="notice" data-testid="notice" role="status" hidden></div>
    <div id="chips" class="chips" data-testid="attachments" aria-label="Attachments" hidden></div>
    <div class="input-row">
      <textarea id="input" class="input" data-testid="chat-input" rows="2" aria-label="Message to SmallThinker. Enter sends, Shift+Enter adds a line." placeholder="Ask SmallThinker (Enter to send)"></textarea>
      <button type="button" id="send" class="primary-button" data-testid="send" aria-label="Send">Send</button>
      <button type="button" id="stop" class="secondary-button" data-testid="stop" aria-label="Stop the answer (Escape)" hidden>Stop</button>
    </div>
  </footer>
</div>
<script nonce="${escapeAttribute(o.nonce)}" src="${escapeAttribute(o.scriptUri)}"></script>
</body>
</html>`;
}

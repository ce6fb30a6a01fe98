// VS Code entry point. A placeholder for now: the extension's features arrive in a later
// issue. It must stay light (no engine or Node-heavy imports) so activation is instant.

/** Called by VS Code when the extension activates. Registers nothing yet. */
export function activate(_context: unknown): void {
  // Features will register here, each disposable pushed to context.subscriptions.
}

/** Called by VS Code on shutdown. */
export function deactivate(): void {
  // Nothing to release yet.
}

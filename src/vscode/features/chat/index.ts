// The chat feature: the side panel (webview view smallthinker.chatView), its commands (New Chat,
// Open Chat), the bridge through which Explain asks in it, and the loaded model offered to VS Code's
// own chat as a language model.
import * as vscode from 'vscode';

import { Commands, LANGUAGE_MODEL_VENDOR, Views } from '../../../common/ids';
import { errorMessage } from '../../engineService';
import type { Services } from '../../services';
import { ChatViewProvider } from './chatView';
import { registerLanguageModel } from './languageModel';

let instance: ChatViewProvider | undefined;

/** The panel's provider, for the extension-host tests (ask(), handle(), onDidPostMessage, ...). */
export function chatViewForTests(): ChatViewProvider | undefined {
  return instance;
}

export function registerChat(context: vscode.ExtensionContext, services: Services): void {
  const provider = new ChatViewProvider(context, services);
  instance = provider;
  context.subscriptions.push(
    provider,
    { dispose: () => (instance = instance === provider ? undefined : instance) },
    // Not retained when hidden: the host owns all state and sends it in full when the page is back.
    vscode.window.registerWebviewViewProvider(Views.chat, provider, { webviewOptions: { retainContextWhenHidden: false } }),
    vscode.commands.registerCommand(Commands.newChat, async () => {
      provider.newConversation();
      await provider.reveal();
    }),
    vscode.commands.registerCommand(Commands.focusChat, () => provider.reveal()),
    services.chat.listen((request) => {
      provider.ask(request).catch((err: unknown) => services.log.error(`chat: could not ask in the panel: ${errorMessage(err)}`));
    }),
  );
  const languageModel = registerLanguageModel(LANGUAGE_MODEL_VENDOR, services.engine, services.log);
  if (languageModel) context.subscriptions.push(languageModel);
}

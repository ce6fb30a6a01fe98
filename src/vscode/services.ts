// What features share: the engine, the log, and a bridge through which commands ask the chat
// panel something. Created once in activate() and passed to every register<Feature>() function.
import * as vscode from 'vscode';

import type { ChatAskRequest } from '../common/chatTypes';
import type { EngineService } from './engineService';

/** Lets commands (Explain, ...) ask in the chat panel; the chat feature subscribes. */
export class ChatBridge implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<ChatAskRequest>();
  private readonly pending: ChatAskRequest[] = [];
  private listening = false;

  /** Asks in the chat panel; requests made before the panel is ready are queued for it. */
  ask(request: ChatAskRequest): void {
    if (this.listening) this.emitter.fire(request);
    else this.pending.push(request);
  }

  /** For the chat feature: receives queued requests at once, then each new one. */
  listen(handler: (request: ChatAskRequest) => void): vscode.Disposable {
    const subscription = this.emitter.event(handler);
    this.listening = true;
    for (const request of this.pending.splice(0)) handler(request);
    return subscription;
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

export interface Services {
  readonly context: vscode.ExtensionContext;
  readonly engine: EngineService;
  readonly log: vscode.LogOutputChannel;
  readonly chat: ChatBridge;
}

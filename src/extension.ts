// VS Code entry point: activate() only wires things up. Each feature registers itself through
// one register<Feature>(context, services) function (src/vscode/features/); a feature that
// fails to register is logged and the others still work. Only src/vscode/ imports 'vscode'.
import * as vscode from 'vscode';

import { EngineService } from './vscode/engineService';
import { ChatBridge, type Services } from './vscode/services';
import { registerFeatures } from './vscode/features';

let services: Services | undefined;

export function activate(context: vscode.ExtensionContext): Services {
  const log = vscode.window.createOutputChannel('SmallThinker', { log: true });
  const engine = new EngineService(context.extensionPath, log);
  const chat = new ChatBridge();
  context.subscriptions.push(log, chat, { dispose: () => void engine.dispose() });
  services = { context, engine, log, chat };
  registerFeatures(context, services);
  void engine.reload();
  // Returned as the extension's API: the extension-host tests use it to inspect state.
  return services;
}

export async function deactivate(): Promise<void> {
  await services?.engine.dispose();
  services = undefined;
}

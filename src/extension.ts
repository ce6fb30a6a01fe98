// VS Code entry point: activate() only wires things up. Each feature registers itself through
// one register<Feature>(context, services) function (src/vscode/features/); a feature that
// fails to register is logged and the others still work. Only src/vscode/ imports 'vscode'.
import * as vscode from 'vscode';

import { EngineService, layoutFolder } from './vscode/engineService';
import { ChatBridge, type Services } from './vscode/services';
import { registerFeatures } from './vscode/features';
import { testingViews, type TestingViews } from './vscode/testing';

let services: Services | undefined;

/** What activate() returns: the services, plus read-only views the extension-host tests inspect. */
export interface ExtensionApi extends Services {
  readonly testing: TestingViews;
}

export function activate(context: vscode.ExtensionContext): ExtensionApi {
  const log = vscode.window.createOutputChannel('SmallThinker', { log: true });
  const engine = new EngineService(context.extensionPath, log, layoutFolder(context));
  const chat = new ChatBridge();
  context.subscriptions.push(log, chat, { dispose: () => void engine.dispose() });
  services = { context, engine, log, chat };
  registerFeatures(context, services);
  void engine.reload();
  // Returned as the extension's API: the extension-host tests use it to inspect state.
  return { ...services, testing: testingViews() };
}

export async function deactivate(): Promise<void> {
  await services?.engine.dispose();
  services = undefined;
}

// Registers every feature. To add one: write features/<name>/index.ts exporting
// register<Name>(context, services) and list it here. A feature that throws while registering
// is logged; the rest still register.
import type * as vscode from 'vscode';

import type { Services } from '../services';
import { registerChat } from './chat';
import { registerCompletion } from './completion';
import { registerModels } from './models';
import { registerRefactor } from './refactor';
import { registerStatus } from './status';

const FEATURES: ReadonlyArray<[string, (context: vscode.ExtensionContext, services: Services) => void]> = [
  ['status', registerStatus],
  ['models', registerModels],
  ['completion', registerCompletion],
  ['chat', registerChat],
  ['refactor', registerRefactor],
];

export function registerFeatures(context: vscode.ExtensionContext, services: Services): void {
  for (const [name, register] of FEATURES) {
    try {
      register(context, services);
    } catch (err) {
      services.log.error(`The ${name} feature failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
}

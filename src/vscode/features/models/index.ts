// Placeholder: replaced by the models feature.
import type * as vscode from 'vscode';

import type { Services } from '../../services';

export function registerModels(_context: vscode.ExtensionContext, _services: Services): void {}

// Placeholder: replaced by the completion feature.
import type * as vscode from 'vscode';

import type { Services } from '../../services';

export function registerCompletion(_context: vscode.ExtensionContext, _services: Services): void {}

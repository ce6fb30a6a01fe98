// Placeholder: replaced by the chat feature.
import type * as vscode from 'vscode';

import type { Services } from '../../services';

export function registerChat(_context: vscode.ExtensionContext, _services: Services): void {}

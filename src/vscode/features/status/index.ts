// Placeholder: replaced by the status feature.
import type * as vscode from 'vscode';

import type { Services } from '../../services';

export function registerStatus(_context: vscode.ExtensionContext, _services: Services): void {}

// Placeholder: replaced by the refactor feature.
import type * as vscode from 'vscode';

import type { Services } from '../../services';

export function registerRefactor(_context: vscode.ExtensionContext, _services: Services): void {}

// Read-only views of feature state that the extension-host tests inspect (test/vscode/suite/),
// returned with the services as the extension's API. Nothing here changes state.
import { chatViewForTests } from './features/chat';
import { completionProviderForTests } from './features/completion';
import { modelPickItemsForTests } from './features/models';
import { pendingProposalForTests } from './features/refactor';

export interface TestingViews {
  completionProvider: typeof completionProviderForTests;
  pendingProposal: typeof pendingProposalForTests;
  chatView: typeof chatViewForTests;
  modelPickItems: typeof modelPickItemsForTests;
}

export function testingViews(): TestingViews {
  return {
    completionProvider: completionProviderForTests,
    pendingProposal: pendingProposalForTests,
    chatView: chatViewForTests,
    modelPickItems: modelPickItemsForTests,
  };
}

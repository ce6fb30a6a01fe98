// Read-only views of feature state that the extension-host tests inspect (test/vscode/suite/),
// returned with the services as the extension's API. Nothing here changes state.
import { chatViewForTests } from './features/chat';
import { completionProviderForTests } from './features/completion';
import { modelPickItemsForTests } from './features/models';
import { pendingProposalForTests, refactorProgressForTests } from './features/refactor';

export interface TestingViews {
  completionProvider: typeof completionProviderForTests;
  pendingProposal: typeof pendingProposalForTests;
  /** The progress messages of the latest Refactor / Document / Fix / Write Tests command. */
  refactorProgress: typeof refactorProgressForTests;
  chatView: typeof chatViewForTests;
  modelPickItems: typeof modelPickItemsForTests;
}

export function testingViews(): TestingViews {
  return {
    completionProvider: completionProviderForTests,
    pendingProposal: pendingProposalForTests,
    refactorProgress: refactorProgressForTests,
    chatView: chatViewForTests,
    modelPickItems: modelPickItemsForTests,
  };
}

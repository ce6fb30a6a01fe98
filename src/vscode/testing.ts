// Views of feature state that the extension-host tests inspect (test/vscode/suite/), returned
// with the services as the extension's API. Two act: cancelRefactor is the Cancel button of a
// refactor's progress notification, which a test in the extension host cannot click, and
// firstRunWalkthrough runs the first run's decision on a state the test passes in.
import { chatViewForTests } from './features/chat';
import { completionProviderForTests } from './features/completion';
import { firstRunWalkthrough, modelNoticesForTests, modelPickItemsForTests } from './features/models';
import { cancelRefactorForTests, pendingProposalForTests, refactorPreviewForTests, refactorProgressForTests } from './features/refactor';

export interface TestingViews {
  completionProvider: typeof completionProviderForTests;
  pendingProposal: typeof pendingProposalForTests;
  /** The progress messages of the latest Refactor / Document / Fix / Write Tests command. */
  refactorProgress: typeof refactorProgressForTests;
  /** The live preview of the proposal being written (its diff's right side), if any. */
  refactorPreview: typeof refactorPreviewForTests;
  /** Cancels the running edit command as its progress notification's Cancel button does. */
  cancelRefactor: typeof cancelRefactorForTests;
  chatView: typeof chatViewForTests;
  modelPickItems: typeof modelPickItemsForTests;
  /** The notifications about the engine's state (missing model file, errors) shown so far. */
  modelNotices: typeof modelNoticesForTests;
  /** The first run's walkthrough decision, with the global state and the opener passed in. */
  firstRunWalkthrough: typeof firstRunWalkthrough;
}

export function testingViews(): TestingViews {
  return {
    completionProvider: completionProviderForTests,
    pendingProposal: pendingProposalForTests,
    refactorProgress: refactorProgressForTests,
    refactorPreview: refactorPreviewForTests,
    cancelRefactor: cancelRefactorForTests,
    chatView: chatViewForTests,
    modelPickItems: modelPickItemsForTests,
    modelNotices: modelNoticesForTests,
    firstRunWalkthrough,
  };
}

// Unit tests of src/common/chatMessages.ts: the host's validation of what the chat webview posts
// (good messages pass with only their known fields, malformed ones are rejected) and the views
// of conversations and attachments sent to the webview.
// Run: node test/run.mjs --node chatMessages
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  describeMessage,
  evaluatingText,
  readingText,
  MAX_ATTACHMENT_IDS,
  MAX_TEXT_CHARS,
  parseWebviewMessage,
  toChip,
  toConversationView,
  WEBVIEW_COMMANDS,
  type WebviewToHost,
} from '../../src/common/chatMessages';
import type { Conversation } from '../../src/common/chatHistory';
import type { ChatAttachment } from '../../src/common/chatTypes';
import { Commands } from '../../src/common/ids';

describe('parseWebviewMessage accepts', () => {
  const good: WebviewToHost[] = [
    { type: 'ready' },
    { type: 'stop' },
    { type: 'newConversation' },
    { type: 'send', text: 'What does this do?', attachmentIds: ['file:a', 'selection:b'] },
    { type: 'send', text: '', attachmentIds: [] },
    { type: 'removeAttachment', id: 'file:file:///a.ts' },
    { type: 'selectConversation', id: 'c1' },
    { type: 'deleteConversation', id: 'c1' },
    { type: 'codeAction', action: 'copy', code: 'x = 1' },
    { type: 'codeAction', action: 'insert', code: 'x = 1', language: 'python' },
    { type: 'codeAction', action: 'apply', code: '' },
    { type: 'runCommand', command: Commands.chooseModel },
  ];
  for (const message of good) {
    test(`${message.type} ${JSON.stringify(message).slice(0, 60)}`, () => {
      assert.deepEqual(parseWebviewMessage(message), message);
    });
  }

  test('drops unknown extra fields', () => {
    assert.deepEqual(parseWebviewMessage({ type: 'stop', evil: true }), { type: 'stop' });
    assert.deepEqual(parseWebviewMessage({ type: 'selectConversation', id: 'c', extra: 1 }), { type: 'selectConversation', id: 'c' });
  });

  test('send without attachmentIds means none', () => {
    assert.deepEqual(parseWebviewMessage({ type: 'send', text: 'hi' }), { type: 'send', text: 'hi', attachmentIds: [] });
  });

  test('copies the attachment id array (later changes to the input do not leak in)', () => {
    const ids = ['a'];
    const parsed = parseWebviewMessage({ type: 'send', text: 'hi', attachmentIds: ids });
    ids.push('b');
    assert.deepEqual(parsed, { type: 'send', text: 'hi', attachmentIds: ['a'] });
  });

  test('an empty language is left out', () => {
    assert.deepEqual(parseWebviewMessage({ type: 'codeAction', action: 'copy', code: 'c', language: '' }), {
      type: 'codeAction',
      action: 'copy',
      code: 'c',
    });
  });
});

describe('parseWebviewMessage rejects', () => {
  const bad: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['null', null],
    ['a string', 'ready'],
    ['a number', 42],
    ['an array', [{ type: 'ready' }]],
    ['no type', { text: 'hi' }],
    ['an unknown type', { type: 'format-disk' }],
    ['a non-string type', { type: 7 }],
    ['send without text', { type: 'send', attachmentIds: [] }],
    ['send with numeric text', { type: 'send', text: 5, attachmentIds: [] }],
    ['send with too long text', { type: 'send', text: 'x'.repeat(MAX_TEXT_CHARS + 1), attachmentIds: [] }],
    ['send with non-array ids', { type: 'send', text: 'hi', attachmentIds: 'a' }],
    ['send with a numeric id', { type: 'send', text: 'hi', attachmentIds: ['a', 2] }],
    ['send with an empty id', { type: 'send', text: 'hi', attachmentIds: [''] }],
    [
      'send with too many ids',
      { type: 'send', text: 'hi', attachmentIds: Array.from({ length: MAX_ATTACHMENT_IDS + 1 }, (_, i) => `id${i}`) },
    ],
    ['removeAttachment without id', { type: 'removeAttachment' }],
    ['removeAttachment with an empty id', { type: 'removeAttachment', id: '' }],
    ['selectConversation with an object id', { type: 'selectConversation', id: { toString: 'x' } }],
    ['deleteConversation with a numeric id', { type: 'deleteConversation', id: 3 }],
    ['codeAction with an unknown action', { type: 'codeAction', action: 'delete', code: 'x' }],
    ['codeAction without code', { type: 'codeAction', action: 'copy' }],
    ['codeAction with a numeric language', { type: 'codeAction', action: 'copy', code: 'x', language: 1 }],
    ['runCommand with a command not on the list', { type: 'runCommand', command: 'workbench.action.terminal.sendSequence' }],
    ['runCommand without a command', { type: 'runCommand' }],
  ];
  for (const [name, value] of bad) {
    test(name, () => {
      assert.equal(parseWebviewMessage(value), undefined);
    });
  }
});

test("the webview may run only the extension's own recovery commands", () => {
  for (const command of WEBVIEW_COMMANDS) assert.ok(command.startsWith('smallthinker.'), command);
  assert.ok(WEBVIEW_COMMANDS.includes(Commands.chooseModel));
  assert.ok(!WEBVIEW_COMMANDS.includes(Commands.acceptEdit));
});

test('describeMessage names the type and keys but never the text', () => {
  const described = describeMessage({ type: 'send', text: 'my secret code', attachmentIds: 3 });
  assert.match(described, /send/);
  assert.match(described, /attachmentIds/);
  assert.doesNotMatch(described, /secret/);
  assert.equal(describeMessage(null), 'object');
  assert.equal(describeMessage('x'), 'string');
  assert.equal(describeMessage([1, 2]), 'array(2)');
});

const attachment: ChatAttachment = {
  id: 'selection:file:///src/app.ts#3:0-5:0',
  kind: 'selection',
  uri: 'file:///src/my%20app.ts',
  label: 'my app.ts:4-5',
  languageId: 'typescript',
  text: 'const secret = 1;\n',
  startLine: 3,
  endLine: 4,
};

test('toChip keeps what the chip shows and leaves the text on the host', () => {
  const chip = toChip(attachment);
  assert.deepEqual(chip, {
    id: attachment.id,
    kind: 'selection',
    label: 'my app.ts:4-5',
    detail: '/src/my app.ts, lines 4-5',
    languageId: 'typescript',
  });
  assert.equal(toChip({ ...attachment, startLine: 2, endLine: 2 }).detail, '/src/my app.ts, line 3');
  assert.equal(toChip({ ...attachment, kind: 'file', startLine: undefined, endLine: undefined }).detail, '/src/my app.ts');
});

test('toConversationView turns message attachments into chips and keeps the rest', () => {
  const conversation: Conversation = {
    id: 'c1',
    title: 'Explain',
    createdAt: 1,
    updatedAt: 2,
    messages: [
      { id: 'u1', role: 'user', text: 'Explain', at: 1, attachments: [attachment] },
      { id: 'a1', role: 'assistant', text: 'It sets a constant.', at: 2, stopReason: 'eog' },
    ],
  };
  const view = toConversationView(conversation);
  assert.equal(view.messages.length, 2);
  assert.deepEqual(view.messages[0].attachments, [toChip(attachment)]);
  assert.equal(JSON.stringify(view).includes('const secret'), false);
  assert.deepEqual(view.messages[1], conversation.messages[1]);
  assert.equal('attachments' in view.messages[1], false);
  // The stored conversation is not changed.
  assert.equal(conversation.messages[0].attachments?.[0].text, 'const secret = 1;\n');
});

describe('what the answer says before its first token', () => {
  test('reading the attachments', () => {
    assert.equal(readingText([]), undefined);
    assert.equal(readingText([{ kind: 'file', label: 'app.ts' }]), 'Reading app.ts…');
    assert.equal(readingText([{ kind: 'selection', label: 'app.ts:3-9' }]), 'Reading the selection…');
    assert.equal(
      readingText([
        { kind: 'file', label: 'a.ts' },
        { kind: 'file', label: 'b.ts' },
      ]),
      'Reading 2 files…',
    );
    assert.equal(
      readingText([
        { kind: 'file', label: 'a.ts' },
        { kind: 'selection', label: 'b.ts:1-2' },
      ]),
      'Reading 1 file and 1 selection…',
    );
  });

  test('evaluating the prompt, with what the cache already holds', () => {
    assert.equal(evaluatingText(734, 0), 'Evaluating 734 prompt tokens…');
    assert.equal(evaluatingText(734, 700), 'Evaluating 34 new prompt tokens (700 cached)…');
  });
});

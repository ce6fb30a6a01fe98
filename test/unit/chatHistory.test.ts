// Unit tests of src/common/chatHistory.ts: titles, the capped per-workspace history and reading it
// back from storage, attachments rendered for the model, and prompt assembly within a token budget.
// Run: node test/run.mjs --node chatHistory
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  baseName,
  buildChatPrompt,
  CHAT_SYSTEM_PROMPT,
  ChatHistory,
  conversationTitle,
  createConversation,
  estimateTokens,
  fenceFor,
  MESSAGE_OVERHEAD_TOKENS,
  parseHistory,
  promptBudget,
  renderAttachment,
  renderUserMessage,
  trimMessages,
  truncateText,
  windowAroundLine,
  type Conversation,
  type ConversationMessage,
} from '../../src/common/chatHistory';
import type { ChatAttachment } from '../../src/common/chatTypes';
import type { ChatMessage } from '../../src/common/protocol';

let nextId = 0;
const user = (text: string, attachments?: ChatAttachment[]): ConversationMessage => ({
  id: `u${nextId++}`,
  role: 'user',
  text,
  at: nextId,
  attachments,
});
const answer = (text: string, extra: Partial<ConversationMessage> = {}): ConversationMessage => ({
  id: `a${nextId++}`,
  role: 'assistant',
  text,
  at: nextId,
  stopReason: 'eog',
  ...extra,
});

function conversation(id: string, updatedAt: number, messages: ConversationMessage[] = [user('hi'), answer('hello')]): Conversation {
  return { id, title: `title ${id}`, messages, createdAt: updatedAt, updatedAt };
}

const selection: ChatAttachment = {
  id: 'sel',
  kind: 'selection',
  uri: 'file:///work/src/app.ts',
  label: 'app.ts:13-14',
  languageId: 'typescript',
  text: 'const a = 1;\nconst b = 2;',
  startLine: 12,
  endLine: 13,
};

describe('conversationTitle', () => {
  test('uses the first non-blank line with whitespace collapsed', () => {
    assert.equal(conversationTitle('\n\n  Why   does\tthis fail?  \nmore'), 'Why does this fail?');
  });
  test('shortens long text with an ellipsis within the limit', () => {
    const title = conversationTitle('word '.repeat(40), 20);
    assert.ok(title.length <= 20, title);
    assert.ok(title.endsWith('…'));
  });
  test('empty text gives an empty title', () => {
    assert.equal(conversationTitle('   \n '), '');
  });
});

describe('ChatHistory', () => {
  test('lists conversations most recently updated first', () => {
    const h = new ChatHistory([conversation('old', 1), conversation('new', 3), conversation('mid', 2)]);
    assert.deepEqual(
      h.list().map((c) => c.id),
      ['new', 'mid', 'old'],
    );
    assert.equal(h.list()[0].messageCount, 2);
  });

  test('keeps at most `limit`, dropping the oldest', () => {
    const h = new ChatHistory([], 3);
    for (let i = 0; i < 5; i++) h.save(conversation(`c${i}`, i));
    assert.deepEqual(
      h.list().map((c) => c.id),
      ['c4', 'c3', 'c2'],
    );
    assert.equal(h.get('c0'), undefined);
  });

  test('saving again replaces by id and re-sorts', () => {
    const h = new ChatHistory([conversation('a', 1), conversation('b', 2)]);
    const a = conversation('a', 5);
    a.title = 'renamed';
    h.save(a);
    assert.equal(h.size, 2);
    assert.deepEqual(
      h.list().map((c) => [c.id, c.title]),
      [
        ['a', 'renamed'],
        ['b', 'title b'],
      ],
    );
  });

  test('empty conversations are not kept', () => {
    const h = new ChatHistory();
    h.save(createConversation('empty', 1));
    assert.equal(h.size, 0);
    assert.equal(h.list().length, 0);
  });

  test('an untitled conversation is listed as New conversation', () => {
    const c = conversation('x', 1);
    c.title = '';
    assert.equal(new ChatHistory([c]).list()[0].title, 'New conversation');
  });

  test('delete removes by id and says whether it did', () => {
    const h = new ChatHistory([conversation('a', 1)]);
    assert.equal(h.delete('nope'), false);
    assert.equal(h.delete('a'), true);
    assert.equal(h.size, 0);
  });

  test('round-trips through JSON storage', () => {
    const h = new ChatHistory([
      conversation('a', 1, [
        user('explain', [selection]),
        answer('It declares two constants.', {
          stats: { promptTokens: 10, reusedTokens: 2, decodeTokens: 5, decodeTokensPerS: 20, timeToFirstTokenMs: 30 },
        }),
      ]),
    ]);
    const stored = JSON.parse(JSON.stringify(h.toJSON())) as unknown;
    assert.deepEqual(parseHistory(stored), h.toJSON());
  });
});

describe('parseHistory', () => {
  test('anything but an array gives an empty history', () => {
    for (const v of [undefined, null, 3, 'x', { id: 'a' }]) assert.deepEqual(parseHistory(v), []);
  });

  test('drops malformed conversations and messages, keeps the good ones', () => {
    const stored = [
      null,
      { id: 5, messages: [] },
      { id: 'no-messages' },
      { id: 'only-bad-messages', messages: [{ role: 'user' }, { id: 'm', role: 'robot', text: 'x' }] },
      {
        id: 'good',
        title: 't',
        updatedAt: 7,
        messages: [
          { id: 'm1', role: 'user', text: 'hi', at: 1, attachments: [selection, { id: 'broken' }] },
          { id: 'm2', role: 'assistant', text: 42 },
          {
            id: 'm3',
            role: 'assistant',
            text: 'hello',
            stopReason: 'eog',
            actions: [{ label: 'Show Log', command: 'smallthinker.showLog' }, { label: 1 }],
          },
        ],
      },
      { id: 'good', messages: [{ id: 'dup', role: 'user', text: 'dup' }] },
    ];
    const parsed = parseHistory(stored);
    assert.deepEqual(
      parsed.map((c) => c.id),
      ['good'],
    );
    const [c] = parsed;
    assert.deepEqual(
      c.messages.map((m) => m.id),
      ['m1', 'm3'],
    );
    assert.deepEqual(c.messages[0].attachments, [selection]);
    assert.deepEqual(c.messages[1].actions, [{ label: 'Show Log', command: 'smallthinker.showLog' }]);
    assert.equal(c.createdAt, 7);
  });

  test('an answer cut off mid-stream (no end stored) reads back as stopped', () => {
    const [c] = parseHistory([
      {
        id: 'c',
        messages: [
          { id: 'u', role: 'user', text: 'q' },
          { id: 'a', role: 'assistant', text: 'partial' },
        ],
      },
    ]);
    assert.equal(c.messages[1].stopReason, 'stopped');
    assert.equal(c.messages[0].stopReason, undefined);
  });

  test('a missing title comes from the first user message', () => {
    const [c] = parseHistory([{ id: 'c', messages: [{ id: 'u', role: 'user', text: 'How do I sort a map?\nthanks' }] }]);
    assert.equal(c.title, 'How do I sort a map?');
  });
});

describe('attachments for the model', () => {
  test('fenceFor is longer than any backtick run inside', () => {
    assert.equal(fenceFor('plain'), '```');
    assert.equal(fenceFor('a ``` b'), '````');
    assert.equal(fenceFor('`````'), '``````');
  });

  test('baseName takes the last path segment, decoded', () => {
    assert.equal(baseName('file:///a/b/my%20file.ts'), 'my file.ts');
    assert.equal(baseName('untitled:Untitled-1'), 'untitled:Untitled-1');
    assert.equal(baseName('/x/y.py?query#frag'), 'y.py');
  });

  test('a selection is fenced with its language, file and 1-based lines', () => {
    assert.equal(renderAttachment(selection), 'Selected code from app.ts (lines 13-14):\n```typescript\nconst a = 1;\nconst b = 2;\n```');
  });

  test('a whole file has no line range; a single line says line', () => {
    const file: ChatAttachment = { ...selection, kind: 'file', startLine: undefined, endLine: undefined, text: 'x\n' };
    assert.equal(renderAttachment(file), 'File app.ts:\n```typescript\nx\n```');
    assert.match(renderAttachment({ ...selection, startLine: 4, endLine: 4 }), /\(line 5\):/);
  });

  test("code containing a fence cannot close the attachment's fence", () => {
    const text = '```js\nalert(1)\n```';
    const rendered = renderAttachment({ ...selection, languageId: 'markdown', text });
    assert.ok(rendered.startsWith('Selected code from app.ts (lines 13-14):\n````markdown\n'));
    assert.ok(rendered.endsWith('\n````'));
  });

  test('the user message puts attachments first, then the question', () => {
    const m = renderUserMessage('  Why?  ', [selection]);
    assert.ok(m.startsWith('Selected code from app.ts'));
    assert.ok(m.endsWith('```\n\nWhy?'));
    assert.equal(renderUserMessage('only text'), 'only text');
  });

  test('truncateText cuts at a line end near the limit and says so', () => {
    const text = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n');
    const cut = truncateText(text, 100);
    assert.ok(cut.endsWith('\n… (truncated)'));
    assert.ok(cut.length <= 100 + '\n… (truncated)'.length);
    assert.ok(text.startsWith(cut.replace('\n… (truncated)', '')));
    assert.equal(truncateText('short', 100), 'short');
  });

  test('windowAroundLine keeps whole lines around the cursor within the size', () => {
    const lines = Array.from({ length: 1000 }, (_, i) => `line ${String(i).padStart(4, '0')}`); // 9 chars + newline
    const w = windowAroundLine(lines.join('\n'), 500, 200);
    assert.ok(w.text.length <= 200, String(w.text.length));
    assert.ok(w.startLine <= 500 && w.endLine >= 500);
    assert.ok(w.endLine - w.startLine >= 15, `${w.startLine}-${w.endLine}`);
    assert.equal(w.text, lines.slice(w.startLine, w.endLine + 1).join('\n'));
    const top = windowAroundLine(lines.join('\n'), 0, 200);
    assert.equal(top.startLine, 0);
    const past = windowAroundLine('a\nb', 99, 100);
    assert.deepEqual(past, { text: 'a\nb', startLine: 0, endLine: 1 });
  });
});

describe('promptBudget', () => {
  test('leaves room for the answer and a margin', () => {
    assert.equal(promptBudget(4096, 1024), 4096 - 1024 - 204);
  });
  test('the answer never takes more than half the context', () => {
    assert.equal(promptBudget(1000, 5000), 1000 - 500 - 50);
  });
  test('never below a small floor', () => {
    assert.equal(promptBudget(10, 5), 64);
  });
});

describe('buildChatPrompt', () => {
  test('system prompt, earlier exchanges, then the question with its attachments', () => {
    const p = buildChatPrompt({ messages: [user('first'), answer('one'), user('second', [selection])], budgetTokens: 10_000 });
    assert.deepEqual(p.messages, [
      { role: 'system', content: CHAT_SYSTEM_PROMPT },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'one' },
      { role: 'user', content: renderUserMessage('second', [selection]) },
    ]);
    assert.equal(p.droppedTurns, 0);
    assert.equal(p.truncatedAttachments, false);
    assert.equal(p.overBudget, false);
    const expected = p.messages.reduce((n, m) => n + estimateTokens(m.content) + MESSAGE_OVERHEAD_TOKENS, 0);
    assert.equal(p.tokens, expected);
  });

  test('earlier attachments stay with their messages', () => {
    const p = buildChatPrompt({ messages: [user('look', [selection]), answer('ok'), user('and now?')], budgetTokens: 10_000 });
    assert.equal(p.messages[1].content, renderUserMessage('look', [selection]));
  });

  test('failed answers and their questions are left out; stopped partial answers stay', () => {
    const p = buildChatPrompt({
      messages: [
        user('q1'),
        answer('', { error: 'engine down', stopReason: undefined }),
        user('q2'),
        answer('partial', { stopReason: 'stopped' }),
        user('q3'),
      ],
      budgetTokens: 10_000,
    });
    assert.deepEqual(
      p.messages.slice(1).map((m) => m.content),
      ['q2', 'partial', 'q3'],
    );
  });

  test('a custom system prompt replaces the default', () => {
    const p = buildChatPrompt({ messages: [user('q')], budgetTokens: 1000, system: 'Be brief.' });
    assert.deepEqual(p.messages[0], { role: 'system', content: 'Be brief.' });
  });

  test('over the budget, the oldest exchanges go first', () => {
    const long = 'x'.repeat(350); // 100 tokens
    const messages = [user(long), answer(long), user('second'), answer('two'), user('third')];
    const estimate = (s: string): number => Math.ceil(s.length / 3.5);
    const all = buildChatPrompt({ messages, budgetTokens: 100_000, estimate });
    const p = buildChatPrompt({ messages, budgetTokens: all.tokens - 1, estimate });
    assert.equal(p.droppedTurns, 1);
    assert.deepEqual(p.messages.map((m) => m.content).slice(1), ['second', 'two', 'third']);
    assert.ok(p.tokens <= all.tokens - 1);
    const tight = buildChatPrompt({
      messages,
      budgetTokens: estimate(CHAT_SYSTEM_PROMPT) + estimate('third') + 2 * MESSAGE_OVERHEAD_TOKENS,
      estimate,
    });
    assert.equal(tight.droppedTurns, 2);
    assert.equal(tight.messages.length, 2);
    assert.equal(tight.overBudget, false);
  });

  test('when the question alone is too long, its attachments are shortened to fit', () => {
    const big: ChatAttachment = { ...selection, text: Array.from({ length: 2000 }, (_, i) => `let v${i} = ${i};`).join('\n') };
    const p = buildChatPrompt({ messages: [user('old'), answer('reply'), user('explain', [big, selection])], budgetTokens: 600 });
    assert.equal(p.droppedTurns, 1);
    assert.equal(p.truncatedAttachments, true);
    assert.equal(p.overBudget, false);
    assert.ok(p.tokens <= 600, String(p.tokens));
    const question = p.messages[p.messages.length - 1].content;
    assert.match(question, /… \(truncated\)/);
    assert.ok(question.endsWith('explain'));
    assert.ok(question.includes('let v0 = 0;'));
  });

  test('a question too long even without attachments is flagged over budget', () => {
    const p = buildChatPrompt({ messages: [user('y'.repeat(10_000))], budgetTokens: 100 });
    assert.equal(p.overBudget, true);
  });

  test("the last message must be the user's", () => {
    assert.throws(() => buildChatPrompt({ messages: [user('q'), answer('a')], budgetTokens: 100 }));
    assert.throws(() => buildChatPrompt({ messages: [], budgetTokens: 100 }));
  });
});

describe('trimMessages', () => {
  const m = (role: ChatMessage['role'], content: string): ChatMessage => ({ role, content });
  const cost = (list: ChatMessage[]): number => list.reduce((n, x) => n + estimateTokens(x.content) + MESSAGE_OVERHEAD_TOKENS, 0);

  test('within the budget nothing changes', () => {
    const list = [m('system', 's'), m('user', 'a'), m('assistant', 'b'), m('user', 'c')];
    assert.deepEqual(trimMessages(list, 1000), list);
  });

  test('keeps the system messages and the last message, drops the oldest others', () => {
    const filler = 'z'.repeat(700);
    const list = [
      m('system', 's'),
      m('user', filler),
      m('assistant', filler),
      m('user', 'recent'),
      m('assistant', 'ok'),
      m('user', 'last'),
    ];
    const budget = cost([list[0], list[3], list[4], list[5]]);
    const trimmed = trimMessages(list, budget);
    assert.deepEqual(trimmed, [list[0], list[3], list[4], list[5]]);
  });

  test('does not start the conversation with an assistant message', () => {
    const filler = 'z'.repeat(700);
    const list = [m('user', filler), m('assistant', 'short'), m('user', 'last')];
    const trimmed = trimMessages(list, cost([list[1], list[2]]));
    assert.deepEqual(trimmed, [list[2]]);
  });

  test('the last message stays even when it alone is over the budget', () => {
    const list = [m('system', 's'), m('user', 'q'.repeat(1000))];
    assert.deepEqual(trimMessages(list, 10), list);
  });
});

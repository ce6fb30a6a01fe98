// The chat's Markdown renderer (src/webview/chat/markdown.ts) on hostile model output: only http,
// https and mailto links are rendered as links; `command:`, `vscode:`, `javascript:`, `file:`,
// `data:` and relative targets stay plain text whatever the construct (inline link, reference,
// autolink, image, raw HTML, entity or percent tricks), and images never get a src.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { allowedLink, renderMarkdown } from '../../src/webview/chat/markdown';

/** Every href/src attribute value in some HTML, entities decoded the way a browser would for a scheme check. */
function urls(html: string): string[] {
  return [...html.matchAll(/\s(?:href|src|srcset|action|formaction|xlink:href)="([^"]*)"/gi)].map((m) =>
    m[1]
      .replace(/&amp;/g, '&')
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>'),
  );
}

const HOSTILE_TARGETS = [
  'command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22rm%20-rf%20~%5Cn%22%7D',
  'COMMAND:workbench.action.openSettings',
  'vscode://vscode.git/clone?url=https%3A%2F%2Fevil.example%2Frepo',
  'vscode-insiders://ms-python.python/x',
  'vscode-webview://abc/index.html',
  'javascript:alert(1)',
  'file:///etc/passwd',
  'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
  'data:image/png;base64,iVBORw0KGgo=',
  'relative/path.html',
  '/absolute/path',
  '#anchor',
  '//evil.example/x',
];

describe('chat markdown links', () => {
  it('renders http, https and mailto links, with their target as the title', () => {
    const html = renderMarkdown(
      'See [the docs](https://example.com/a?b=1&c=2), [plain](http://example.com), [mail](mailto:a@example.com), <https://auto.example/x> and <someone@example.com>.',
    );
    assert.deepEqual(urls(html), [
      'https://example.com/a?b=1&c=2',
      'http://example.com',
      'mailto:a@example.com',
      'https://auto.example/x',
      'mailto:someone@example.com',
    ]);
    assert.match(html, /<a href="https:\/\/example\.com\/a\?b=1&amp;c=2" title="https:\/\/example\.com\/a\?b=1&amp;c=2">the docs<\/a>/);
    const ref = renderMarkdown('Read [this][ref].\n\n[ref]: https://example.com/ref "Ref"\n');
    assert.deepEqual(urls(ref), ['https://example.com/ref']);
    assert.equal(allowedLink('HTTPS://EXAMPLE.COM'), true);
  });

  it('never renders another scheme or a relative target as a link or image source', () => {
    for (const target of HOSTILE_TARGETS) {
      const sources = [
        `[click me](${target})`,
        `[click me](<${target}>)`,
        `[click me](${target} "title")`,
        `[click me][r]\n\n[r]: ${target}\n`,
        `[r]\n\n[r]: <${target}>\n`,
        `<${target}>`,
        `![image](${target})`,
        `![image][i]\n\n[i]: ${target}\n`,
        `[![image](${target})](${target})`,
        `[![image](https://example.com/i.png)](${target})`,
        `<a href="${target}">raw html</a>`,
        `<img src="${target}">`,
        `[entity](${target.replace(':', '&#58;')})`,
        `[entity](${target.replace(':', '&colon;')})`,
        `[escaped](${target.replace(':', '\\:')})`,
        `[percent](${target.replace(':', '%3A')})`,
        `[space]( ${target} )`,
        `[tab](\t${target})`,
        `Bare ${target} text`,
      ];
      for (const source of sources) {
        const html = renderMarkdown(source);
        for (const url of urls(html)) {
          assert.ok(/^(https?|mailto):/i.test(url), `${JSON.stringify(source)} rendered a link to ${url}: ${html}`);
        }
        assert.doesNotMatch(html, /<img\b/i, `${JSON.stringify(source)} rendered an image: ${html}`);
        assert.doesNotMatch(
          html,
          /<a\b(?![^>]*\bhref="(?:https?|mailto):)/i,
          `${JSON.stringify(source)} rendered an anchor to elsewhere: ${html}`,
        );
      }
    }
  });

  it('shows a refused link as its text, and an image as its alt text', () => {
    assert.equal(renderMarkdown('[run](command:workbench.action.reloadWindow)'), '<p>[run](command:workbench.action.reloadWindow)</p>\n');
    assert.equal(renderMarkdown('<vscode://vscode.git/clone>'), '<p>&lt;vscode://vscode.git/clone&gt;</p>\n');
    assert.equal(renderMarkdown('![a cat](https://example.com/cat.png)'), '<p><span class="image-alt">[a cat]</span></p>\n');
    assert.equal(renderMarkdown('`[x](command:y)`'), '<p><code>[x](command:y)</code></p>\n');
  });
});

// Markdown to HTML for the chat webview: markdown-it with raw HTML escaped, code blocks highlighted
// by highlight.js (a fixed set of common languages, bundled) and given Copy / Insert / Apply buttons.
// Images are shown as their alt text (the CSP allows no remote images anyway). Model output is
// untrusted: only http, https and mailto URLs become links (validateLink below), so no Markdown
// construct (inline, reference or autolink, image) can produce a `command:`, `vscode:`,
// `javascript:`, `file:` or relative link; anything else stays plain text.
import MarkdownIt from 'markdown-it';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import markdown from 'highlight.js/lib/languages/markdown';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';

const LANGUAGES = { bash, c, cpp, css, diff, go, java, javascript, json, markdown, python, rust, sql, typescript, xml };
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);
// Names models and VS Code use that the grammars do not alias themselves.
hljs.registerAliases(['shell', 'sh', 'zsh', 'console'], { languageName: 'bash' });
hljs.registerAliases(['typescriptreact'], { languageName: 'typescript' });
hljs.registerAliases(['javascriptreact'], { languageName: 'javascript' });
hljs.registerAliases(['jsonc', 'json5'], { languageName: 'json' });
hljs.registerAliases(['vue', 'svelte'], { languageName: 'xml' });

const md = new MarkdownIt({ html: false, linkify: false, typographer: false, breaks: false });
const escapeHtml = md.utils.escapeHtml;

/**
 * The only link targets rendered: markdown-it calls this for every link, reference definition,
 * autolink and image with the normalized URL (entities decoded, then percent-encoded, so a scheme
 * cannot hide behind `&#58;` or control characters). A link it refuses is not parsed as a link and
 * shows as its source text.
 */
export function allowedLink(url: string): boolean {
  return /^(?:https?|mailto):/i.test(url);
}
md.validateLink = allowedLink;

/** True when highlight.js knows the language (or one of its aliases). */
export function knownLanguage(language: string): boolean {
  return language !== '' && hljs.getLanguage(language) !== undefined;
}

/** Highlighted HTML for code; plain escaped text when the language is unknown. */
export function highlight(code: string, language: string): string {
  if (knownLanguage(language)) {
    try {
      return hljs.highlight(code, { language, ignoreIllegals: true }).value;
    } catch {
      // fall through to plain text
    }
  }
  return escapeHtml(code);
}

function codeBlock(code: string, info: string): string {
  const language = info.trim().split(/\s+/)[0] ?? '';
  const lang = escapeHtml(language);
  const label = lang || 'text';
  const button = (action: string, text: string, aria: string): string =>
    `<button type="button" class="code-button" data-code-action="${action}" data-testid="code-${action}" aria-label="${aria} (${label})" title="${aria}">${text}</button>`;
  return (
    `<div class="code-block" data-testid="code-block" data-language="${lang}">` +
    `<div class="code-header"><span class="code-language">${label}</span><span class="code-buttons">` +
    button('copy', 'Copy', 'Copy the code') +
    button('insert', 'Insert', 'Insert the code at the cursor') +
    button('apply', 'Apply', 'Replace the selection with the code') +
    `</span></div><pre tabindex="0"><code class="hljs${lang ? ` language-${lang}` : ''}">${highlight(code, language)}</code></pre></div>\n`
  );
}

md.renderer.rules.fence = (tokens, idx) => codeBlock(tokens[idx].content, tokens[idx].info);
md.renderer.rules.code_block = (tokens, idx) => codeBlock(tokens[idx].content, '');
md.renderer.rules.image = (tokens, idx) => {
  const alt = tokens[idx].content;
  return alt ? `<span class="image-alt">[${escapeHtml(alt)}]</span>` : '';
};

// Links open in the browser (the webview host handles the click); show where they go.
const defaultLinkOpen = md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  const href = token.attrGet('href');
  if (href === null || !allowedLink(href)) {
    // Cannot happen through validateLink; should a rule ever make one, an <a> without href is inert.
    token.attrs = (token.attrs ?? []).filter(([name]) => name !== 'href');
    return defaultLinkOpen(tokens, idx, options, env, self);
  }
  if (!token.attrGet('title')) token.attrSet('title', href);
  return defaultLinkOpen(tokens, idx, options, env, self);
};

// Table alignment comes as style attributes, which the Content-Security-Policy blocks: use classes.
md.core.ruler.push('align_classes', (state) => {
  for (const token of state.tokens) {
    if (token.type !== 'th_open' && token.type !== 'td_open') continue;
    const style = token.attrGet('style');
    const align = style?.match(/text-align:\s*(left|right|center)/)?.[1];
    if (!style) continue;
    token.attrs = (token.attrs ?? []).filter(([name]) => name !== 'style');
    if (align) token.attrJoin('class', `align-${align}`);
  }
});

/** HTML for an answer (safe to assign to innerHTML: raw HTML in the source is escaped). */
export function renderMarkdown(text: string): string {
  return md.render(text);
}

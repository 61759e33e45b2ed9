import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../platform/http.ts';
import { PACKAGE_ROOT } from '../platform/paths.ts';

/**
 * The integration guides (docs/guides/*.md) served beside the API reference: `/docs/guides` lists them and
 * `/docs/guides/<name>` shows one as HTML (`?format=md`: the Markdown itself). They are read once, at start, from the
 * package root (the sources and the build alike), so a request names only a guide that exists: no path from a request
 * ever reaches the file system. The Markdown is rendered by the small renderer below, which escapes every character of
 * the text it does not format (the guides are ours, but a renderer that trusts its input is one edit from an injection).
 */
export const GUIDES_DIR = join(PACKAGE_ROOT, 'docs', 'guides');

export interface Guide {
  readonly name: string;
  readonly title: string;
  readonly markdown: string;
}

/** The guides, in a reading order: quickstarts first, then the concepts, then the rest by name. */
export function loadGuides(dir: string = GUIDES_DIR): Guide[] {
  if (!existsSync(dir)) return [];
  const first = ['quickstart-wallet', 'quickstart-bank', 'quickstart-merchant', 'sandbox'];
  const order = (name: string) => (first.includes(name) ? first.indexOf(name) : first.length);
  return readdirSync(dir)
    .filter((f) => /^[a-z0-9-]+\.md$/.test(f))
    .map((f) => {
      const markdown = readFileSync(join(dir, f), 'utf8');
      const name = f.slice(0, -3);
      return { name, title: /^# (.+)$/m.exec(markdown)?.[1]?.trim() ?? name, markdown };
    })
    .sort((a, b) => order(a.name) - order(b.name) || a.name.localeCompare(b.name));
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": '#39' }[c] ?? ''};`);

/** A link target as the page should use it: another guide by name, a hub path or an http(s) URL; else none. */
function linkTarget(href: string, guides: ReadonlySet<string>): string | undefined {
  const guide = /^(?:\.\/)?([a-z0-9-]+)\.md(#[a-z0-9-]+)?$/.exec(href);
  if (guide !== null && guide[1] !== undefined && guides.has(guide[1])) return `/docs/guides/${guide[1]}${guide[2] ?? ''}`;
  if (/^https?:\/\/[^\s"'<>]+$/.test(href) || /^\/[A-Za-z0-9/_.#?=&-]*$/.test(href) || /^#[a-z0-9-]+$/.test(href)) return href;
  return undefined;
}

/** Inline Markdown: `code`, **bold**, *emphasis*, [text](link); everything else escaped. */
function inline(text: string, guides: ReadonlySet<string>): string {
  let out = '';
  const pattern = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;
  let last = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    out += escapeHtml(text.slice(last, m.index));
    if (m[1] !== undefined) out += `<code>${escapeHtml(m[1])}</code>`;
    else if (m[2] !== undefined) out += `<strong>${inline(m[2], guides)}</strong>`;
    else if (m[3] !== undefined) out += `<em>${inline(m[3], guides)}</em>`;
    else if (m[4] !== undefined && m[5] !== undefined) {
      const target = linkTarget(m[5], guides);
      // A link into the repository (an example, a source file) names its path: the reader has the repository.
      out += target !== undefined ? `<a href="${escapeHtml(target)}">${inline(m[4], guides)}</a>` : `${inline(m[4], guides)} (<code>${escapeHtml(m[5])}</code>)`;
    }
    last = m.index + m[0].length;
  }
  return out + escapeHtml(text.slice(last));
}

const slug = (text: string) => text.toLowerCase().replace(/[`*]/g, '').replace(/[^a-z0-9\s-]/g, '').trim().replace(/\s+/g, '-');

/** Block Markdown: headings, fenced code, tables, lists (one level), block quotes and paragraphs. */
export function renderMarkdown(markdown: string, guideNames: Iterable<string> = []): string {
  const guides = new Set(guideNames);
  const lines = markdown.replace(/\r\n/g, '\n').split('\n');
  const html: string[] = [];
  let i = 0;
  const at = (n: number) => lines[n] ?? '';
  while (i < lines.length) {
    const line = at(i);
    const fence = /^```(\w*)\s*$/.exec(line);
    if (fence !== null) {
      const code: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(at(i)); i++) code.push(at(i));
      i++;
      html.push(`<pre><code${fence[1] !== undefined && fence[1] !== '' ? ` class="language-${escapeHtml(fence[1])}"` : ''}>${escapeHtml(code.join('\n'))}</code></pre>`);
      continue;
    }
    const heading = /^(#{1,4}) (.+)$/.exec(line);
    if (heading !== null && heading[1] !== undefined && heading[2] !== undefined) {
      const level = heading[1].length;
      html.push(`<h${level} id="${escapeHtml(slug(heading[2]))}">${inline(heading[2], guides)}</h${level}>`);
      i++;
      continue;
    }
    if (line.startsWith('|')) {
      const rows: string[][] = [];
      for (; i < lines.length && at(i).startsWith('|'); i++) rows.push(at(i).replace(/^\||\|\s*$/g, '').split('|').map((c) => c.trim()));
      const [head, separator, ...body] = rows;
      const isSeparator = separator !== undefined && separator.every((c) => /^:?-+:?$/.test(c));
      const cells = (row: string[], tag: string) => `<tr>${row.map((c) => `<${tag}>${inline(c, guides)}</${tag}>`).join('')}</tr>`;
      html.push(`<table>${head !== undefined ? `<thead>${cells(head, 'th')}</thead>` : ''}<tbody>${(isSeparator ? body : rows.slice(1)).map((r) => cells(r, 'td')).join('')}</tbody></table>`);
      continue;
    }
    const listItem = /^(\s*)([-*]|[0-9]+\.) (.*)$/;
    if (listItem.test(line)) {
      const ordered = /^\s*[0-9]+\./.test(line);
      const items: string[] = [];
      for (; i < lines.length; i++) {
        const m = listItem.exec(at(i));
        if (m !== null && m[3] !== undefined) items.push(m[3]);
        else if (/^\s{2,}\S/.test(at(i)) && items.length > 0) items[items.length - 1] += ` ${at(i).trim()}`;
        else break;
      }
      html.push(`<${ordered ? 'ol' : 'ul'}>${items.map((it) => `<li>${inline(it, guides)}</li>`).join('')}</${ordered ? 'ol' : 'ul'}>`);
      continue;
    }
    if (line.startsWith('>')) {
      const quoted: string[] = [];
      for (; i < lines.length && at(i).startsWith('>'); i++) quoted.push(at(i).replace(/^>\s?/, ''));
      html.push(`<blockquote>${inline(quoted.join(' '), guides)}</blockquote>`);
      continue;
    }
    if (line.trim() === '') {
      i++;
      continue;
    }
    const paragraph: string[] = [];
    for (; i < lines.length && at(i).trim() !== '' && !/^(```|#{1,4} |\||>|\s*([-*]|[0-9]+\.) )/.test(at(i)); i++) paragraph.push(at(i).trim());
    html.push(`<p>${inline(paragraph.join(' '), guides)}</p>`);
  }
  return html.join('\n');
}

const STYLE =
  'body{font:16px/1.55 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1f2328}' +
  'pre{background:#f6f8fa;padding:.8rem;overflow:auto;border-radius:6px;font-size:13px;line-height:1.45}code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}' +
  'p code,li code,td code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;vertical-align:top}' +
  'nav{font-size:14px;margin-bottom:1.5rem}blockquote{border-left:4px solid #d0d7de;margin:0;padding:0 1rem;color:#57606a}a{color:#0969da}';

/** The pages run no script and load nothing: only their own inline style. */
const PAGE_HEADERS = { 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'", 'x-content-type-options': 'nosniff' } as const;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} · Hutong</title><style>${STYLE}</style></head><body><nav><a href="/docs/guides">Guides</a> · <a href="/docs">API reference</a> · <a href="/openapi.json">openapi.json</a></nav>${body}</body></html>`;
}

export function registerGuideRoutes(app: HttpServer, guides: readonly Guide[] = loadGuides()): void {
  const byName = new Map(guides.map((g) => [g.name, g]));
  const names = [...byName.keys()];
  const index = page(
    'Guides',
    `<h1>Hutong guides</h1><p>Start with a quickstart: each is a script in <code>examples/</code> that CI runs against a fresh hub. The API reference is at <a href="/docs">/docs</a>.</p><ul>${guides
      .map((g) => `<li><a href="/docs/guides/${g.name}">${escapeHtml(g.title)}</a></li>`)
      .join('')}</ul>`,
  );
  const rendered = new Map(guides.map((g) => [g.name, page(g.title, renderMarkdown(g.markdown, names))]));
  const security: never[] = [];
  app.get(
    '/docs/guides',
    { schema: { tags: ['system'], summary: 'The integration guides (HTML)', description: 'Quickstarts for a wallet, a bank and a merchant, and the concepts behind the API. Public.', security, response: { 200: Type.String({ description: 'text/html' }) } } },
    async (_request, reply) => reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(index),
  );
  app.get(
    '/docs/guides/:name',
    {
      schema: {
        tags: ['system'],
        summary: 'One integration guide (HTML; its Markdown with ?format=md)',
        description: 'The guides of docs/guides in this repository, as served by this hub. Public.',
        security,
        params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9-]{1,64}(\\.md)?$', description: 'The guide, e.g. quickstart-wallet (or its file name, quickstart-wallet.md, as the repository links it)' }) }, { additionalProperties: false }),
        querystring: Type.Object({ format: Type.Optional(Type.Union([Type.Literal('html'), Type.Literal('md')])) }, { additionalProperties: false }),
        response: { 200: Type.String({ description: 'text/html' }) },
      },
    },
    async (request, reply) => {
      // The file name too: guides link each other by it (quickstart-bank.md), and people paste those links.
      const guide = byName.get(request.params.name.replace(/\.md$/, ''));
      if (guide === undefined) return reply.fail({ code: 'not_found', message: `no guide ${request.params.name}: see /docs/guides` });
      if (request.query.format === 'md') return reply.headers(PAGE_HEADERS).type('text/markdown; charset=utf-8').send(guide.markdown);
      return reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(rendered.get(guide.name) ?? '');
    },
  );
}

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customerAccountId } from '../../src/accounts/index.ts';
import { HANDLE_PATTERN } from '../../src/aliases/index.ts';
import { creditAccountIdOf } from '../../src/cards/service.ts';
import { SANDBOX_CARDS } from '../../src/demo/sandbox.ts';
import { DEMO_CARD_PRODUCTS } from '../../src/demo/seed-cards.ts';
import { demoCustomerId } from '../../src/demo/seed.ts';
import { formatAmount } from '../../src/platform/money.ts';
import { GUIDES_DIR, loadGuides, renderMarkdown } from '../../src/system/guides.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * The guides (docs/guides) as a reader meets them: every one served at /docs/guides, its links leading somewhere (to
 * another guide, or to a file of this repository), the three quickstarts present with the scripts CI runs, and the
 * renderer escaping what it does not format.
 */
const guides = loadGuides();

describe('docs/guides', () => {
  it('has the three quickstarts and the concepts, each with a title', () => {
    const names = guides.map((g) => g.name);
    expect(names.slice(0, 3)).toEqual(['quickstart-wallet', 'quickstart-bank', 'quickstart-merchant']);
    for (const concept of ['participants', 'money', 'ownership', 'idempotency', 'errors', 'webhooks', 'tokens', 'settlement', 'sandbox']) expect(names).toContain(concept);
    for (const g of guides) expect(g.title, g.name).not.toBe(g.name);
    expect(readdirSync(GUIDES_DIR).filter((f) => f.endsWith('.md'))).toHaveLength(guides.length);
  });

  it('links only to guides and files that exist', () => {
    for (const g of guides) {
      for (const [, target] of g.markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (target === undefined || /^https?:/.test(target) || target.startsWith('/')) continue;
        const path = target.split('#')[0] ?? '';
        expect(existsSync(resolve(GUIDES_DIR, path)), `${g.name}.md links to ${target}`).toBe(true);
      }
    }
  });

  it('each quickstart names its script, which exists and uses the SDK, not the hub’s modules', () => {
    for (const name of ['wallet', 'bank', 'merchant']) {
      const guide = guides.find((g) => g.name === `quickstart-${name}`);
      expect(guide?.markdown).toContain(`examples/${name}-quickstart.ts`);
      const script = join(dirname(GUIDES_DIR), '..', 'examples', `${name}-quickstart.ts`);
      const imports = [...readFileSync(script, 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1] ?? '');
      expect(imports.filter((i) => i.includes('/src/') && !i.startsWith('../packages/sdk/')), script).toEqual([]);
    }
    const support = readFileSync(join(dirname(GUIDES_DIR), '..', 'examples', 'support.ts'), 'utf8');
    expect([...support.matchAll(/from '([^']+)'/g)].map((m) => m[1] ?? '').filter((i) => i.startsWith('.') && !i.startsWith('../packages/sdk/'))).toEqual([]);
  });

  it('gives shell commands that run wherever Node does (no uuidgen), and names every demo bank with its mode', () => {
    const readme = readFileSync(join(dirname(GUIDES_DIR), '..', 'README.md'), 'utf8');
    for (const [name, text] of [...guides.map((g) => [g.name, g.markdown] as const), ['README', readme] as const]) expect(text, name).not.toMatch(/uuidgen/);
    for (const [name, text] of [['README', readme], ['sandbox', guides.find((g) => g.name === 'sandbox')?.markdown ?? ''], ['quickstart-wallet', guides.find((g) => g.name === 'quickstart-wallet')?.markdown ?? '']] as const) {
      expect(text, name).not.toMatch(/two banks/);
      expect(text, name).toMatch(/bank-c[^]{0,200}connected/);
    }
    // The handle rule the hub enforces is the one the wallet quickstart states.
    expect(guides.find((g) => g.name === 'quickstart-wallet')?.markdown).toContain(`\`${HANDLE_PATTERN.source}\``);
    // Every command of the CLI is in the README's table.
    const table = readme.slice(readme.indexOf('## CLI'), readme.indexOf('## Configuration'));
    for (const command of ['start', 'token', 'migrate', 'audit', 'keys', 'qr', 'demo', 'simulate', 'doctor']) expect(table).toContain(`| \`${command}`);
  });

  it('says which account each sandbox test card spends from: a debit card its funding account, a credit card its credit line', () => {
    const sandbox = guides.find((g) => g.name === 'sandbox')?.markdown ?? '';
    for (const card of SANDBOX_CARDS) {
      const product = DEMO_CARD_PRODUCTS.find((p) => p.id === card.productId);
      const row = sandbox.split('\n').find((line) => line.startsWith(`| \`${card.bank}\``)) ?? '';
      const spendsFrom = row.split('|').at(-2)?.trim() ?? '';
      if (product?.cardType === 'credit') {
        expect(spendsFrom).toMatch(new RegExp(`^\`${creditAccountIdOf(card.id)}\`, a credit line of ${formatAmount(product.defaultCreditLimitMinor, card.currency).replace(/\B(?=(\d{3})+(?!\d))/g, ',')} ${card.currency}`));
      } else {
        expect(spendsFrom).toMatch(new RegExp(`^\`${customerAccountId(demoCustomerId(card.holder), card.currency)}\``));
      }
    }
  });

  it('renders Markdown with everything it does not format escaped', () => {
    const html = renderMarkdown('# T <b>\n\nA `<x>` **b** [g](money.md) [s](../../src/a.ts) [x](javascript:alert(1)) <script>\n\n| a | b |\n| --- | --- |\n| <i> | 2 |\n\n```html\n<p>\n```', ['money']);
    expect(html).toContain('<h1 id="t-b">T &lt;b&gt;</h1>');
    expect(html).toContain('<code>&lt;x&gt;</code> <strong>b</strong> <a href="/docs/guides/money">g</a> s (<code>../../src/a.ts</code>)');
    expect(html).not.toContain('href="javascript');
    expect(html).toContain('&lt;script&gt;');
    expect(html).toContain('<td>&lt;i&gt;</td>');
    expect(html).toContain('<pre><code class="language-html">&lt;p&gt;</code></pre>');
  });
});

describe('/docs/guides on the hub', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub('pglite', { seed: false });
  }, 300_000);
  afterAll(async () => {
    await t?.close();
  });

  it('lists every guide and serves each, public, as HTML or Markdown; an unknown one is 404', async () => {
    const anonymous = t.api('anonymous');
    const index = await anonymous.get('/docs/guides');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toContain('text/html');
    expect(String(index.headers['content-security-policy'])).toContain("default-src 'none'");
    for (const g of guides) {
      expect(String(index.body)).toContain(`href="/docs/guides/${g.name}"`);
      const page = await anonymous.get(`/docs/guides/${g.name}`);
      expect(page.status, g.name).toBe(200);
      expect(String(page.body)).toContain('<h1');
      expect((await anonymous.get(`/docs/guides/${g.name}.md`)).body, `${g.name}.md`).toBe(page.body);
      const md = await anonymous.get(`/docs/guides/${g.name}?format=md`);
      expect(md.headers['content-type']).toContain('text/markdown');
      expect(md.body).toBe(g.markdown);
    }
    const missing = await anonymous.get('/docs/guides/no-such-guide');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: { code: 'not_found' } });
    expect((await anonymous.get('/docs/guides/..%2Fpackage')).status).toBe(400);
  });

  it('appears in the API document', async () => {
    const doc = (await t.api('anonymous').get('/openapi.json')).body as { paths: Record<string, { get?: { responses?: Record<string, { content?: Record<string, unknown> }> } }> };
    expect(Object.keys(doc.paths['/docs/guides/{name}']?.get?.responses?.['200']?.content ?? {})).toEqual(['text/html']);
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openWebHarness, type WebHarness } from './support.ts';

/**
 * The rest of what the wallet and console pages do, through the UI like a person, in Debian's Chromium against a real
 * hub: the customer's payment code, payment links, requests with their warning, bill splits; participant credentials,
 * audit verify, risk alerts, webhook deliveries; and a keyboard/label accessibility pass over both pages. A screenshot
 * per step (test-results/web/more-*.png); any page error or console error fails the step.
 */
/** The little of the DOM the accessibility pass uses inside page.evaluate (the Node tsconfig has no DOM lib). */
interface El {
  readonly tagName: string;
  readonly type?: string;
  readonly name?: string;
  readonly checked?: boolean;
  readonly disabled?: boolean;
  readonly outerHTML: string;
  readonly textContent: string | null;
  readonly labels?: ArrayLike<{ readonly textContent: string | null }> | null;
  readonly dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  getClientRects(): { readonly length: number };
  closest(selector: string): unknown;
  blur(): void;
}
declare const document: { querySelectorAll(selector: string): Iterable<El>; querySelector(selector: string): El | null; getElementById(id: string): El | null; readonly activeElement: El | null };
declare const getComputedStyle: (el: El) => { readonly visibility: string };

let h: WebHarness;
let hookServer: Server;
const hooks: string[] = [];

const li = { walletA: 'cus_demo_li_at_wallet_a', bank: 'cus_demo_li_at_bank_a' };
const zhang = 'cus_demo_zhang_at_wallet_b';
let merchantId = '';

describe('more of the wallet and console pages in Chromium', () => {
  beforeEach(() => {
    h.problems.length = 0;
  });
  beforeAll(async () => {
    h = await openWebHarness();
    // Merchant A receives webhooks on a local endpoint, so the console has deliveries to list.
    hookServer = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += String(c)));
      req.on('end', () => {
        hooks.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', () => r()));
    const port = (hookServer.address() as AddressInfo).port;
    const me = await h.t.api('merchant-a').patch('/v1/me', { webhookUrl: `http://127.0.0.1:${port}/hooks` }, { 'idempotency-key': 'more-web-hook-url' });
    expect(me.status).toBe(200);
    merchantId = (await h.t.api('merchant-a').get('/v1/merchants')).body.items[0].id;
  }, 180_000);

  afterAll(async () => {
    await h?.close();
    await new Promise((r) => hookServer?.close(r));
  });

  it('1. shows the payment code; it refreshes with a new ATC and cryptogram; a merchant authorizes what is shown', async () => {
    const { page, t } = h;
    // The page's own timers, fast-forwarded instead of waiting 30 s (time otherwise flows normally).
    await page.clock.install();
    const accounts = await t.api('bank-a').get(`/v1/accounts?customerId=${li.bank}`);
    const funding = (accounts.body.items as { id: string; currency: string }[]).find((a) => a.currency === 'CNY');
    const issued = await t.api('bank-a').post('/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: li.bank, fundingAccountId: funding?.id }, { 'idempotency-key': 'more-web-card-1' });
    expect(issued.status).toBe(201);
    expect((await t.api('bank-a').post(`/v1/issuer/cards/${issued.body.card.id}/activate`)).status).toBe(200);
    await h.signIn('wallet-a', li.walletA);
    await h.addCard(async () => {
      await page.locator('input[name=cardNumber]').fill(issued.body.cardNumber);
      await page.locator('input[name=expiry]').fill(issued.body.card.expiry);
      await page.locator('input[name=cvv]').fill(issued.body.cvv);
    });
    await page.getByTestId('tab-pay').click();
    const code = page.getByTestId('payment-code');
    await code.getByTestId('cpm-qr').waitFor();
    await code.locator('summary').click();
    const shown = code.getByTestId('cpm-payload');
    await shown.waitFor();
    const first = { payload: (await shown.textContent()) ?? '', atc: Number(await shown.getAttribute('data-atc')) };
    expect(first.payload).toMatch(/^[A-Za-z0-9+/=]{40,}$/);
    await h.shot('more-1a-payment-code');
    await page.clock.runFor(30_000);
    await expect.poll(async () => shown.textContent()).not.toBe(first.payload);
    const second = { payload: (await shown.textContent()) ?? '', atc: Number(await shown.getAttribute('data-atc')) };
    expect(second.atc).toBeGreaterThan(first.atc);
    // The ATC (tag 9F36) and the cryptogram (9F26) inside the code changed, not just the unpredictable number.
    const tlv = (b64: string, tag: string) => {
      const hex = Buffer.from(b64, 'base64').toString('hex').toUpperCase();
      const at = hex.indexOf(tag);
      return at < 0 ? '' : hex.slice(at + tag.length + 2, at + tag.length + 2 + parseInt(hex.slice(at + tag.length, at + tag.length + 2), 16) * 2);
    };
    expect(tlv(second.payload, '9F36')).not.toBe(tlv(first.payload, '9F36'));
    expect(tlv(second.payload, '9F26')).not.toBe(tlv(first.payload, '9F26'));
    await h.shot('more-1b-payment-code-refreshed');
    // On demand too (a failed scan): a new counter at once, without waiting for the timer.
    await code.getByTestId('cpm-refresh').click();
    await expect.poll(async () => Number(await shown.getAttribute('data-atc'))).toBeGreaterThan(second.atc);
    const third = (await shown.textContent()) ?? '';
    expect(tlv(third, '9F26')).not.toBe(tlv(second.payload, '9F26'));
    // The cashier scans the code now on screen (the latest).
    const auth = await t.api('merchant-a').post(`/v1/merchants/${merchantId}/payments/cpm`, { payload: third, amount: { amount: '12.50', currency: 'CNY' } }, { 'idempotency-key': 'more-web-cpm-1' });
    expect(auth.status, JSON.stringify(auth.body)).toBe(201);
    expect(auth.body.amount).toEqual({ amount: '12.50', currency: 'CNY' });
    expect(h.problems).toEqual([]);
  });

  it('2. pays a payment link a merchant created through the API', async () => {
    const { page, t } = h;
    const link = await t.api('merchant-a').post(`/v1/merchants/${merchantId}/payment-links`, { amount: { amount: '18.80', currency: 'CNY' }, description: 'Airport shuttle', expiresInS: 3600 }, { 'idempotency-key': 'more-web-link-1' });
    expect(link.status).toBe(201);
    await page.getByTestId('tab-pay').click();
    const section = page.getByTestId('pay-link');
    await section.locator('input[name=link]').fill(`${h.base}${link.body.url}`);
    await section.getByTestId('link-open').click();
    const info = section.getByTestId('link-info');
    await info.waitFor();
    expect(await info.textContent()).toContain('Airport shuttle');
    expect(await info.textContent()).toContain('18.80');
    // Pay from the wallet balance.
    const source = section.locator('select[name=source]');
    const account = await source.locator('option', { hasText: 'Lantern Pay' }).first().getAttribute('value');
    await source.selectOption(account ?? '');
    await h.shot('more-2a-payment-link-opened');
    await section.getByTestId('link-pay').click();
    await section.locator('[data-testid=link-paid], [role=alert]').first().waitFor({ timeout: 15_000 });
    expect(await section.locator('[role=alert]').allTextContents()).toEqual([]);
    expect(await section.getByTestId('link-paid').textContent()).toContain('18.80');
    await h.shot('more-2b-payment-link-paid');
    expect((await t.api('merchant-a').get(`/v1/payment-links/${link.body.id}`)).body.payCount).toBe(1);
    expect(h.problems).toEqual([]);
  });

  let requestId = '';
  it("3. requests money from an alias; the payer sees the warning, then approves and pays in their own wallet", async () => {
    const { page, t } = h;
    await h.signIn('wallet-b', zhang);
    await page.getByTestId('tab-transfer').click();
    const req = page.getByTestId('request-money');
    await req.locator('select[name=request-type]').selectOption('handle');
    await req.locator('input[name=request-alias]').fill('liwei');
    await req.locator('input[name=request-amount]').fill('6.60');
    await req.locator('input[name=request-note]').fill('dumplings');
    await req.getByTestId('request-send').click();
    requestId = ((await req.getByTestId('requested').locator('.mono').textContent({ timeout: 15_000 })) ?? '').trim();
    expect(requestId).not.toBe('');
    await h.shot('more-3a-request-sent');
    await h.signIn('wallet-a', li.walletA);
    await page.getByTestId('tab-transfer').click();
    const item = page.locator(`[data-testid=incoming-request][data-request-id="${requestId}"]`);
    await item.waitFor();
    expect(await item.textContent()).toContain('6.60');
    // The warning is on screen before anything is approved.
    expect(await item.getByTestId('request-warning').textContent()).toContain('Approving this request SENDS money from your account');
    await h.shot('more-3b-request-with-warning');
    await item.getByTestId('request-approve').click();
    const quote = item.getByTestId('request-quote');
    await quote.waitFor({ timeout: 15_000 });
    expect(await quote.textContent()).toContain('You never receive money by approving a request');
    expect((await t.api('wallet-b').get(`/v1/transfers/requests/${requestId}`)).body.status).toBe('pending');
    await h.shot('more-3c-request-quote');
    await quote.getByTestId('request-confirm').click();
    await page.getByTestId('request-paid').waitFor({ timeout: 15_000 });
    await expect.poll(async () => item.count()).toBe(0);
    await h.shot('more-3d-request-paid');
    expect((await t.api('wallet-b').get(`/v1/transfers/requests/${requestId}`)).body.status).toBe('paid');
    expect(h.problems).toEqual([]);
  });

  it('4. splits a bill among members: each other member gets a request for their share', async () => {
    const { page, t } = h;
    await page.getByTestId('tab-transfer').click();
    const split = page.getByTestId('split-bill');
    await split.locator('input[name=split-total]').fill('30.00');
    await split.locator('input[name=split-members]').fill('liwei, zhangmin');
    await split.locator('input[name=split-note]').fill('hotpot');
    await split.getByTestId('split-submit').click();
    const done = split.getByTestId('split-done');
    await done.waitFor({ timeout: 15_000 });
    const members = await done.getByTestId('split-member').allTextContents();
    expect(members).toHaveLength(2);
    for (const m of members) expect(m).toContain('15.00');
    await h.shot('more-4-bill-split');
    const theirs = await t.api('wallet-b').get(`/v1/transfers/requests?customerId=${zhang}&role=payer`);
    expect(theirs.body.items.some((r: { splitId: string | null; status: string; amount: { amount: string } }) => r.splitId !== null && r.status === 'pending' && r.amount.amount === '15.00')).toBe(true);
    expect(h.problems).toEqual([]);
  });

  it('5. console: creates a participant (secret shown once), issues a second credential, suspends it', async () => {
    const { page, t } = h;
    await h.consoleSignIn();
    const name = 'Web Test Noodle Bar';
    await page.locator('select[name=kind]').selectOption('merchant');
    await page.locator('input[name=name]').fill(name);
    await page.locator('input[name=country]').fill('CN');
    await page.locator('input[name=currencies]').fill('CNY');
    await page.locator('input[name=webhookUrl]').fill('https://noodle.example/hutong-hooks');
    await page.getByTestId('participant-create').click();
    const secret = page.getByTestId('participant-secret');
    await secret.waitFor({ timeout: 15_000 });
    const [clientId = '', clientSecret = ''] = await secret.locator('.mono').allTextContents();
    expect(clientId).not.toBe('');
    expect(clientSecret.length).toBeGreaterThan(16);
    // The webhook signing secret too, once, and the URL was stored.
    const webhookSecret = (await page.getByTestId('participant-webhook-secret').locator('.mono').textContent()) ?? '';
    expect(webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/=]{20,}$/);
    const token = async (id: string, s: string) => (await t.hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: id, client_secret: s } })).statusCode;
    expect(await token(clientId, clientSecret)).toBe(200);
    await h.shot('more-5a-participant-created-secret-once');
    // Once: gone after a reload.
    await page.reload();
    const row = page.getByTestId('participant-row').filter({ hasText: name });
    await row.waitFor();
    expect(await page.content()).not.toContain(clientSecret);
    expect(await page.content()).not.toContain(webhookSecret);
    expect(await row.getByTestId('participant-webhook-url').textContent()).toBe('https://noodle.example/hutong-hooks');
    await row.getByRole('button', { name: new RegExp(name) }).click();
    const creds = page.getByTestId('credentials');
    await expect.poll(async () => creds.locator('h2').textContent()).toContain(name);
    await expect.poll(async () => creds.getByTestId('credential-row').count()).toBe(1);
    await creds.getByTestId('credential-rotate').click();
    const second = creds.getByTestId('credential-secret');
    await second.waitFor({ timeout: 15_000 });
    const [clientId2 = '', clientSecret2 = ''] = await second.locator('.mono').allTextContents();
    expect(clientId2).not.toBe(clientId);
    expect(await token(clientId2, clientSecret2)).toBe(200);
    await expect.poll(async () => creds.getByTestId('credential-row').count()).toBe(2);
    await h.shot('more-5b-second-credential');
    // Suspending asks first; the status is said in words.
    await row.getByTestId('participant-suspend').click();
    await row.getByTestId('participant-suspend-yes').click();
    await expect.poll(async () => row.locator('.pill').textContent()).toBe('Suspended');
    const id = await row.getAttribute('data-participant-id');
    expect((await t.api('operator').get(`/v1/operator/participants/${id}`)).body.participant.status).toBe('suspended');
    await h.shot('more-5c-participant-suspended');
    expect(h.problems).toEqual([]);
  });

  it('6. console: audit Verify shows the chain verified', async () => {
    const { page } = h;
    await page.getByTestId('tab-audit').click();
    await page.getByTestId('audit-verify').click();
    const result = page.getByTestId('audit-result');
    await expect.poll(async () => result.textContent()).toMatch(/^Chain verified — [0-9]+ /);
    expect(await result.getAttribute('class')).toBe('ok');
    await h.shot('more-6-audit-verified');
    expect(h.problems).toEqual([]);
  });

  it('7. console: a P2P payment declined by a risk rule raises an alert, which the operator resolves', async () => {
    const { page, t } = h;
    const rule = (minRefEurCents: number) => t.api('wallet-a').post('/v1/risk/rules', { rule: 'large_amount', enabled: true, action: 'decline', score: 80, minRefEurCents });
    expect((await rule(100)).status).toBe(200);
    let alertId = '';
    try {
      const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li.walletA, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '20.00', currency: 'CNY' } }, { 'idempotency-key': 'more-web-risk-q' });
      expect(q.status).toBe(201);
      const paid = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, { 'idempotency-key': 'more-web-risk-p' });
      expect(paid.body.error?.code).toBe('risk_declined');
      const open = await t.api('operator').get('/v1/operator/risk/alerts?status=open');
      alertId = open.body.items.find((a: { context: { quoteId?: string } }) => a.context.quoteId === q.body.id)?.id ?? '';
      expect(alertId).not.toBe('');
    } finally {
      expect((await rule(2_000_000)).status).toBe(200);
    }
    await page.getByTestId('tab-risk').click();
    const risk = page.getByTestId('risk');
    const row = risk.locator(`[data-testid=risk-alert-row][data-alert-id="${alertId}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('large_amount');
    await risk.locator('input[name=resolution]').fill('called the customer: legitimate (web test)');
    await h.shot('more-7a-risk-alert-open');
    // Resolving asks first (the resolution is repeated on the confirming button).
    await row.getByTestId('risk-resolve').click();
    await row.getByTestId('risk-resolve-yes').click();
    await expect.poll(async () => row.count()).toBe(0);
    await risk.locator('select[name=risk-status]').selectOption('resolved');
    await expect.poll(async () => row.textContent()).toContain('called the customer: legitimate (web test)');
    await h.shot('more-7b-risk-alert-resolved');
    expect(h.problems).toEqual([]);
  });

  it('8. console: webhook deliveries are listed', async () => {
    const { page } = h;
    await page.getByTestId('tab-webhooks').click();
    const section = page.getByTestId('webhooks');
    await section.waitFor();
    // The payment link and the payment code paid merchant A in steps 1–2: their events are queued for its endpoint.
    await expect.poll(async () => section.getByTestId('webhook-row').count(), { timeout: 15_000 }).toBeGreaterThan(0);
    const rows = await section.getByTestId('webhook-row').allTextContents();
    expect(rows.some((r) => r.includes('payment.authorized') && r.includes('/hooks'))).toBe(true);
    // The participant created in step 5 with a webhook URL was told of its suspension at that URL.
    expect(rows.some((r) => r.includes('participant.suspended') && r.includes('https://noodle.example/hutong-hooks'))).toBe(true);
    await h.shot('more-8-webhook-deliveries');
    // Delivered (the dispatcher runs here on demand), then sent again from the console: a new delivery of the same
    // event reaches merchant A's endpoint.
    await h.t.hub.webhooks.runOnce();
    const delivered = section.locator('[data-testid=webhook-row]', { hasText: 'payment.authorized' }).filter({ has: page.getByTestId('webhook-redeliver') }).first();
    await delivered.waitFor({ timeout: 15_000 });
    const hooksBefore = hooks.length;
    await delivered.getByTestId('webhook-redeliver').click();
    await section.getByTestId('webhook-resent').waitFor({ timeout: 15_000 });
    await h.t.hub.webhooks.runOnce();
    expect(hooks.length).toBe(hooksBefore + 1);
    expect(hooks.at(-1)).toContain('payment.authorized');
    await h.shot('more-8-webhook-redelivered');
    expect(h.problems).toEqual([]);
  });

  /**
   * Every input, select and textarea on screen has a label (label[for] or a wrapping label, aria-label or
   * aria-labelledby), and pressing Tab from the top reaches every enabled control on screen; `expected` names the
   * main actions (data-testid or name) that must be among them.
   */
  async function accessibility(where: string, expected: readonly string[]) {
    const { page } = h;
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => el.type !== 'hidden')
        .filter((el) => {
          const labelledBy = (el.getAttribute('aria-labelledby') ?? '').split(/\s+/).filter((id) => id !== '' && document.getElementById(id)?.textContent?.trim());
          const forLabel = el.labels !== null && el.labels !== undefined && Array.from(el.labels).some((l) => (l.textContent ?? '').trim() !== '');
          return !forLabel && (el.getAttribute('aria-label') ?? '').trim() === '' && labelledBy.length === 0;
        })
        .map((el) => el.outerHTML.slice(0, 120)),
    );
    expect(unlabelled, `${where}: controls without a label`).toEqual([]);
    const candidates = await page.evaluate(() => {
      const out: string[] = [];
      const radioGroups = new Set<string>();
      let i = 0;
      for (const el of document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]')) {
        const visible = el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
        if (!visible || el.disabled === true || el.getAttribute('tabindex') === '-1' || el.closest('[inert]') !== null) continue;
        if (el.tagName === 'INPUT' && el.type === 'radio') {
          // One stop per radio group (arrow keys move within it): the checked one.
          if (radioGroups.has(el.name ?? '') || !(el.checked || document.querySelector(`input[type=radio][name="${el.name ?? ''}"]:checked`) === null)) continue;
          radioGroups.add(el.name ?? '');
        }
        el.dataset.a11y = String(i++);
        out.push(el.dataset.testid ?? el.getAttribute('name') ?? el.getAttribute('aria-label') ?? (el.textContent ?? '').trim().slice(0, 40));
      }
      document.activeElement?.blur();
      return out;
    });
    const reached = new Set<number>();
    const names = new Set<string>();
    for (let n = 0; n < candidates.length + 3; n++) {
      await page.keyboard.press('Tab');
      const at = await page.evaluate(() => {
        const el = document.activeElement;
        return el === null ? undefined : { i: el.dataset.a11y, name: el.dataset.testid ?? el.getAttribute('name') ?? el.getAttribute('aria-label') ?? (el.textContent ?? '').trim().slice(0, 40) };
      });
      if (at?.i !== undefined) reached.add(Number(at.i));
      if (at !== undefined) names.add(at.name);
    }
    const missed = candidates.filter((_, i) => !reached.has(i));
    expect(missed, `${where}: controls Tab never reaches`).toEqual([]);
    for (const e of expected) expect([...names], `${where}: ${e} reachable with Tab`).toContain(e);
  }

  it('9. accessibility: labels on every field and every control reachable with Tab, on both pages', async () => {
    const { page } = h;
    // The bottom tab bar, "add a card" and the language in the header; "budget" is a view of the activity tab.
    const walletTabs = ['tab-home', 'tab-add', 'tab-pay', 'tab-transfer', 'tab-history', 'tab-me', 'lang-switch', 'sign-out'];
    await page.goto(`${h.base}/wallet`);
    await page.getByTestId('sign-out').click();
    await page.getByTestId('sign-in').waitFor();
    await accessibility('wallet sign-in', ['wallet', 'customer', 'sign-in', 'lang-switch']);
    await h.signIn('wallet-a', li.walletA);
    const perTab: Record<string, string[]> = {
      home: ['show-wallets', 'quick-budget'],
      add: ['mode-typed', 'cardNumber', 'expiry', 'cvv', 'consent'],
      pay: ['scan-camera', 'qr-image', 'payload', 'link'],
      transfer: ['send-alias', 'request-alias', 'request-amount', 'split-total', 'split-members', 'packet-total', 'packet-send', 'claim-id'],
      history: ['tab-activity', 'tab-budget', 'history-search', 'history-kind'],
      budget: ['tab-activity', 'tab-budget', 'budget-limit', 'budget-low'],
      me: ['passkey-add', 'link-participant', 'link-request'],
    };
    for (const [tab, main] of Object.entries(perTab)) {
      await page.getByTestId(`tab-${tab}`).click();
      await page.waitForTimeout(300);
      await accessibility(`wallet ${tab}`, [...walletTabs, ...main]);
    }
    await h.shot('more-9a-wallet-keyboard');
    await h.consoleSignIn();
    const consoleTabs = ['participants', 'transactions', 'risk', 'webhooks', 'audit', 'figures', 'issuer'];
    const consoleMain: Record<string, string[]> = { participants: ['kind', 'name', 'country', 'currencies'], transactions: ['search'], risk: ['risk-status', 'resolution'], audit: ['audit-verify'] };
    for (const tab of consoleTabs) {
      await page.getByTestId(`tab-${tab}`).click();
      await page.waitForTimeout(300);
      await accessibility(`console ${tab}`, [...consoleTabs.map((k) => `tab-${k}`), 'lang-switch', ...(consoleMain[tab] ?? [])]);
    }
    await h.shot('more-9b-console-keyboard');
    expect(h.problems).toEqual([]);
  });
});

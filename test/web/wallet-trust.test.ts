import { generateSync } from 'otplib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CDPSession } from 'playwright-core';
import { DEFAULT_RULES } from '../../src/risk/service.ts';
import { openWebHarness, type WebHarness } from './support.ts';
import { newDevice } from '../../src/demo/device.ts';

/**
 * The reference wallet's trust features in Debian's Chromium against a real hub, through the page like a person:
 * customer links made and revoked in "Me"; a passkey registered in "Me" (Chromium's virtual authenticator over CDP) and
 * used to approve a stepped-up merchant payment; a stepped-up P2P payment approved with the one-time code the demo
 * wallet "texted" (wrong codes, a lock, starting again); a stepped-up payment link approved with the authenticator app;
 * and a customer session that sees only its own cards. The page is loaded from http://localhost:<port>, the origin
 * passkeys are bound to. Screenshots at 390×844 and 1280×800 (test-results/web/trust-*.png); any page error or console
 * error fails the step, except the refusals a step provokes on purpose.
 */

/** The little of the DOM the layout check uses inside page.evaluate (the Node tsconfig has no DOM lib). */
declare const document: { readonly documentElement: { readonly scrollWidth: number } };
declare const window: { readonly innerWidth: number };
declare const sessionStorage: { getItem(key: string): string | null };

let h: WebHarness;
const li = { walletA: 'cus_demo_li_at_wallet_a', walletB: 'cus_demo_li_at_wallet_b', bankA: 'cus_demo_li_at_bank_a' };
const zhang = { walletB: 'cus_demo_zhang_at_wallet_b', bankB: 'cus_demo_zhang_at_bank_b' };
const BANK_A = 'par_demo_bank_a';
const SIZES = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 800 },
] as const;

/** A screenshot at each size, and nothing wider than the window (no sideways scrolling on a phone). */
async function shotsAtBothSizes(name: string): Promise<void> {
  const { page } = h;
  for (const size of SIZES) {
    await page.setViewportSize({ width: size.width, height: size.height });
    await page.waitForTimeout(100);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${name} at ${size.width}×${size.height}: wider than the window`).toBeLessThanOrEqual(0);
    await h.shot(`trust-${name}-${size.name}`);
  }
}

/** The access token the page holds for its customer session (what the page itself sends as Bearer). */
async function pageSessionToken(): Promise<string> {
  const raw = await h.page.evaluate(() => sessionStorage.getItem('hutong.wallet.session'));
  const token = raw === null ? undefined : (JSON.parse(raw) as { token?: unknown }).token;
  if (typeof token !== 'string') throw new Error('the page holds no session');
  return token;
}

/** Calls the hub over HTTP as the page's customer session. */
async function asPage(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${await pageSessionToken()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method === 'POST') headers['idempotency-key'] = `trust-${Math.random().toString(36).slice(2)}`;
  const res = await fetch(`${h.base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: await res.json() };
}

const cnyBalance = async (as: string, customerId: string): Promise<number> => {
  const res = await h.t.api(as).get(`/v1/accounts?customerId=${customerId}`);
  const account = (res.body.items as { currency: string; available: { amount: string } }[]).find((a) => a.currency === 'CNY');
  if (account === undefined) throw new Error(`no CNY account for ${customerId}`);
  return Math.round(Number(account.available.amount) * 100);
};

/** Makes wallet A's large-amount rule ask for a step-up on anything above 1 EUR (instead of declining above 20,000 EUR). */
const stepUpAnyAmount = async (on: boolean) => {
  const res = await h.t.api('wallet-a').post('/v1/risk/rules', { rule: 'large_amount', enabled: true, ...(on ? { action: 'step_up', score: 80, minRefEurCents: 100 } : DEFAULT_RULES.large_amount) });
  expect(res.status).toBe(200);
};

/** Makes wallet A's risk rule ask for a step-up on every first payment to a counterparty (as the participant, through the API). */
const stepUpNewCounterparties = async (on: boolean) => {
  const res = await h.t.api('wallet-a').post('/v1/risk/rules', { rule: 'new_counterparty', enabled: true, ...(on ? { action: 'step_up', score: 20, minRefEurCents: 0 } : DEFAULT_RULES.new_counterparty) });
  expect(res.status).toBe(200);
};

/**
 * The page errors and console errors of a step, less the refusals the step provokes on purpose (Chromium logs every
 * 4xx answer as a console error): each is named by its status and the path it answered.
 */
const unexpectedProblems = (expected: readonly { status: number; path: RegExp }[]) =>
  h.problems.filter((p) => {
    const refused = /^console\.error: Failed to load resource: the server responded with a status of ([0-9]{3}) \([^)]*\) http:\/\/localhost:[0-9]+(\/\S*)$/.exec(p);
    return refused === null || !expected.some((e) => e.status === Number(refused[1]) && e.path.test(refused[2] ?? ''));
  });

/** The customer's step-up challenges, newest first, as the database holds them. */
const latestChallenges = (customerId: string) =>
  h.t.hub.db.query<{ id: string; method: string; status: string; attempts: number; consumed_by: string | null }>(
    'select id, method, status, attempts, consumed_by from step_up_challenges where customer_id = $1 order by created_at desc, id desc',
    [customerId],
  );

describe('the wallet page: customer links, passkeys and step-up, one customer at a time', () => {
  beforeEach(() => {
    h.problems.length = 0;
  });
  beforeAll(async () => {
    h = await openWebHarness({ host: 'localhost' });
  }, 180_000);
  afterAll(async () => {
    await h?.close();
  });

  it('1. links her record at her bank in "Me" (a wrong code shows the attempts left), sees it in both places, then revokes it after a confirmation', async () => {
    const { page, t } = h;
    expect(h.base).toMatch(/^http:\/\/localhost:[0-9]+$/);
    await h.signIn('wallet-a', li.walletA);
    await page.getByTestId('tab-me').click();
    const links = page.getByTestId('customer-links');
    await links.getByText('No linked bank or wallet.').waitFor();
    const select = links.locator('select[name=link-participant]');
    // The demo's banks and the other wallets are offered; this wallet itself is not.
    await expect.poll(async () => select.locator('option').allTextContents()).toEqual(expect.arrayContaining(['Hutong Commercial Bank 互通商业银行', 'Jade Wallet 翡翠钱包']));
    expect(await select.locator('option').allTextContents()).not.toContain('Lantern Pay 灯笼钱包');
    await select.selectOption(BANK_A);
    await links.getByTestId('link-request').click();
    const code = (await links.getByTestId('link-demo-code').textContent({ timeout: 15_000 })) ?? '';
    expect(code).toMatch(/^[0-9]{6}$/);
    expect(await links.getByTestId('link-consent').textContent()).toContain('Hutong Commercial Bank');
    await shotsAtBothSizes('1a-link-code');
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    await links.locator('input[name=link-code]').fill(wrong);
    await links.getByTestId('link-confirm').click();
    await expect.poll(async () => links.getByTestId('link-problem').textContent()).toBe('That code is not right. Attempts left: 4.');
    await links.locator('input[name=link-code]').fill(code);
    await links.getByTestId('link-confirm').click();
    await links.getByTestId('link-made').waitFor({ timeout: 15_000 });
    const row = links.locator(`[data-testid=customer-link][data-participant=${BANK_A}]`);
    expect(await row.getAttribute('data-status')).toBe('active');
    expect(await row.textContent()).toContain('Hutong Commercial Bank');
    expect(await row.textContent()).toContain('Linked');
    // Both sides hold the link: the wallet (this customer) and the bank (its customer, the same person).
    const linkId = (await row.getAttribute('data-link-id')) ?? '';
    const walletSide = await t.api('wallet-a').get(`/v1/customer-links?customerId=${li.walletA}`);
    expect(walletSide.body.items).toEqual([expect.objectContaining({ id: linkId, status: 'active', other: expect.objectContaining({ participantId: BANK_A, customerId: li.bankA }) })]);
    const bankSide = await t.api('bank-a').get(`/v1/customer-links?customerId=${li.bankA}`);
    expect(bankSide.body.items).toEqual([expect.objectContaining({ id: linkId, status: 'active' })]);
    // The merged history names the bank now.
    await page.getByTestId('tab-history').click();
    await expect.poll(async () => page.getByTestId('history-linked').textContent()).toContain('Hutong Commercial Bank');
    await page.getByTestId('tab-me').click();
    await shotsAtBothSizes('1b-linked');

    // Revoke asks first; "Cancel" keeps the link.
    await row.getByTestId('link-revoke').click();
    const ask = row.getByRole('group', { name: 'Revoke the link to Hutong Commercial Bank 互通商业银行?' });
    await ask.waitFor();
    await shotsAtBothSizes('1c-revoke-confirmation');
    await ask.getByRole('button', { name: 'Cancel' }).click();
    expect(await row.getAttribute('data-status')).toBe('active');
    await row.getByTestId('link-revoke').click();
    await row.getByTestId('link-revoke-yes').click();
    await expect.poll(async () => row.getAttribute('data-status')).toBe('revoked');
    expect(await row.textContent()).toContain('Revoked');
    expect(await row.getByTestId('link-revoke').count()).toBe(0);
    expect((await t.api('bank-a').get(`/v1/customer-links?customerId=${li.bankA}`)).body.items).toEqual([expect.objectContaining({ id: linkId, status: 'revoked' })]);
    await page.getByTestId('tab-history').click();
    await expect.poll(async () => page.getByTestId('history-linked').textContent()).not.toContain('Hutong Commercial Bank');

    // In 中文 too.
    await page.getByTestId('tab-me').click();
    await page.getByTestId('lang-switch').click();
    await links.getByRole('heading', { name: '关联的银行和钱包' }).waitFor();
    expect(await row.textContent()).toContain('已解除');
    await page.getByTestId('passkeys').getByRole('heading', { name: '通行密钥' }).waitFor();
    await shotsAtBothSizes('1d-me-zh');
    await page.getByTestId('lang-switch').click();
    expect(unexpectedProblems([{ status: 422, path: /^\/v1\/customer-links\/consents\/clc_[a-z0-9]+\/confirm$/ }])).toEqual([]);
  });

  it('2. registers a passkey in "Me", then approves a stepped-up merchant payment with it: paid once, the challenge consumed', async () => {
    const { page, context, t } = h;
    // Chromium's virtual authenticator: a platform authenticator with user verification, answering without a prompt.
    const cdp: CDPSession = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    await page.getByTestId('tab-me').click();
    const passkeys = page.getByTestId('passkeys');
    await passkeys.getByText('No passkey yet.').waitFor();
    await passkeys.getByTestId('passkey-add').click();
    await passkeys.getByTestId('passkey-added').waitFor({ timeout: 15_000 });
    await expect.poll(async () => passkeys.getByTestId('passkey-row').count()).toBe(1);
    expect(await passkeys.getByTestId('passkey-row').textContent()).toContain('Never');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect((await t.api('wallet-a').get(`/v1/step-up/customers/${li.walletA}/passkeys`)).body.items).toHaveLength(1);
    await shotsAtBothSizes('2a-passkey-registered');

    await stepUpNewCounterparties(true);
    try {
      const merchantId = (await t.api('merchant-a').get('/v1/merchants')).body.items[0].id as string;
      const qr = await t.api('merchant-a').post(`/v1/merchants/${merchantId}/qr-codes`, { kind: 'dynamic', amount: '23.00', billNumber: 'TRUST-1' }, { 'idempotency-key': 'trust-qr-1' });
      expect(qr.status).toBe(201);
      const before = await cnyBalance('wallet-a', li.walletA);
      await page.getByTestId('tab-pay').click();
      const pay = page.getByTestId('pay-qr');
      await pay.locator('textarea[name=payload]').fill(qr.body.payload);
      await pay.getByTestId('qr-decode').click();
      await pay.getByTestId('qr-preview').waitFor();
      const source = pay.locator('select[name=source]');
      await source.selectOption((await source.locator('option', { hasText: 'Lantern Pay' }).first().getAttribute('value')) ?? '');
      await pay.getByTestId('qr-pay').click();
      // Risk asks for a step-up: the page shows what is approved and the methods this customer has.
      const stepUp = pay.getByTestId('step-up');
      await stepUp.waitFor({ timeout: 15_000 });
      const summary = (await stepUp.getByTestId('step-up-summary').textContent()) ?? '';
      expect(summary).toContain('23.00');
      expect(summary).toContain('Best Transport');
      expect(await stepUp.getByTestId('step-up-method-otp').isVisible()).toBe(true);
      expect(await pay.getByTestId('qr-paid').count()).toBe(0);
      expect(await cnyBalance('wallet-a', li.walletA)).toBe(before);
      await shotsAtBothSizes('2b-step-up-methods');
      await stepUp.getByTestId('step-up-method-passkey').click();
      const paid = pay.getByTestId('qr-paid');
      await paid.waitFor({ timeout: 15_000 });
      expect(await paid.textContent()).toContain('23.00');
      expect(await pay.getByTestId('step-up').count()).toBe(0);
      await shotsAtBothSizes('2c-paid-with-passkey');
      // Paid once: the balance and the history say so.
      expect(await cnyBalance('wallet-a', li.walletA)).toBe(before - 2300);
      const paymentId = ((await paid.locator('.mono').textContent()) ?? '').trim();
      const [challenge, ...older] = await latestChallenges(li.walletA);
      expect(older).toEqual([]);
      expect(challenge).toMatchObject({ method: 'passkey', status: 'consumed', consumed_by: paymentId });
      await page.getByTestId('tab-history').click();
      const row = page.locator('[data-testid=history-row][data-kind=merchant]').first();
      await row.waitFor();
      expect(await row.textContent()).toContain('23.00');
      // The passkey was used.
      await page.getByTestId('tab-me').click();
      await expect.poll(async () => passkeys.getByTestId('passkey-row').textContent()).not.toContain('Never');
    } finally {
      await stepUpNewCounterparties(false);
    }
    expect(unexpectedProblems([{ status: 428, path: /^\/v1\/wallet\/payments\/qr$/ }])).toEqual([]);
  });

  it('3. approves a stepped-up P2P payment with the code the demo wallet sent: wrong codes show the attempts left, a lock says start again, then it pays', async () => {
    const { page, t } = h;
    await stepUpNewCounterparties(true);
    try {
      await page.setViewportSize({ width: 390, height: 844 });
      const before = { payer: await cnyBalance('wallet-a', li.walletA), payee: await cnyBalance('wallet-b', zhang.walletB) };
      await page.getByTestId('tab-transfer').click();
      const send = page.getByTestId('send-money');
      await send.locator('input[name=send-alias]').fill('zhangmin');
      await send.getByTestId('send-lookup').click();
      await send.locator('input[name=send-amount]').fill('10.00');
      await send.getByTestId('send-quote').click();
      await send.getByTestId('send-confirm').click();
      const stepUp = send.getByTestId('step-up');
      await stepUp.waitFor({ timeout: 15_000 });
      expect(await stepUp.getByTestId('step-up-summary').textContent()).toContain('10.00');
      // Her passkey (registered in step 2) is offered too.
      expect(await stepUp.getByTestId('step-up-method-passkey').count()).toBe(1);
      await stepUp.getByTestId('step-up-method-otp').click();
      const code = (await stepUp.getByTestId('step-up-demo-code').textContent({ timeout: 15_000 })) ?? '';
      expect(code).toMatch(/^[0-9]{6}$/);
      expect(await stepUp.textContent()).toContain('Lantern Pay');
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
      const problem = stepUp.getByTestId('step-up-problem');
      for (const left of [4, 3, 2, 1]) {
        await stepUp.locator('input[name=step-up-code]').fill(wrong);
        await stepUp.getByTestId('step-up-submit').click();
        await expect.poll(async () => problem.textContent()).toBe(`That code is not right. Attempts left: ${left}.`);
      }
      await shotsAtBothSizes('3a-wrong-code-attempts-left');
      await stepUp.locator('input[name=step-up-code]').fill(wrong);
      await stepUp.getByTestId('step-up-submit').click();
      await expect.poll(async () => problem.getAttribute('data-problem')).toBe('stepup.locked');
      expect(await problem.textContent()).toContain('Start again');
      await shotsAtBothSizes('3b-locked-start-again');
      const [locked] = await latestChallenges(li.walletA);
      expect(locked).toMatchObject({ method: 'otp', status: 'failed', attempts: 5 });
      expect(await cnyBalance('wallet-a', li.walletA)).toBe(before.payer);

      // Not a dead end: starting again asks for a new approval (a new offer, a new code).
      await stepUp.getByTestId('step-up-restart').click();
      await send.getByTestId('step-up-method-otp').waitFor({ timeout: 15_000 });
      await send.getByTestId('step-up-method-otp').click();
      const fresh = (await send.getByTestId('step-up-demo-code').textContent({ timeout: 15_000 })) ?? '';
      expect(fresh).toMatch(/^[0-9]{6}$/);
      await send.locator('input[name=step-up-code]').fill(fresh);
      await shotsAtBothSizes('3c-new-code');
      await send.getByTestId('step-up-submit').click();
      const sent = send.getByTestId('sent');
      await sent.waitFor({ timeout: 15_000 });
      expect(await sent.textContent()).toContain('10.00');
      await shotsAtBothSizes('3d-sent');
      const [used, failed] = await latestChallenges(li.walletA);
      expect(used).toMatchObject({ method: 'otp', status: 'consumed' });
      expect(used?.consumed_by).toMatch(/^pay_/);
      expect(failed?.id).toBe(locked?.id);
      expect(await cnyBalance('wallet-b', zhang.walletB)).toBe(before.payee + 1000);
      expect(await cnyBalance('wallet-a', li.walletA)).toBeLessThanOrEqual(before.payer - 1000);
      const payment = await t.api('wallet-a').get(`/v1/transfers/payments/${used?.consumed_by ?? ''}`);
      expect(payment.status).toBe(200);
    } finally {
      await stepUpNewCounterparties(false);
      await page.setViewportSize({ width: 1200, height: 900 });
    }
    expect(
      unexpectedProblems([
        { status: 428, path: /^\/v1\/transfers\/payments$/ },
        { status: 422, path: /^\/v1\/step-up\/challenges\/stu_[a-z0-9]+\/complete$/ },
        { status: 423, path: /^\/v1\/step-up\/challenges\/stu_[a-z0-9]+\/complete$/ },
      ]),
    ).toEqual([]);
  });

  it('4. approves a stepped-up payment link with the authenticator app the wallet enrolled for her', async () => {
    const { page, t } = h;
    // The wallet's back end enrols her authenticator app (not a customer-session route); the page then offers it.
    const enrolled = await t.api('wallet-a').post(`/v1/step-up/customers/${li.walletA}/totp`, {});
    expect(enrolled.status).toBe(201);
    const merchantId = (await t.api('merchant-a').get('/v1/merchants')).body.items[0].id as string;
    const link = await t.api('merchant-a').post(`/v1/merchants/${merchantId}/payment-links`, { amount: { amount: '18.80', currency: 'CNY' }, description: 'Airport shuttle', expiresInS: 3600 }, { 'idempotency-key': 'trust-link-1' });
    expect(link.status).toBe(201);
    await stepUpAnyAmount(true);
    try {
      await h.signIn('wallet-a', li.walletA);
      const before = await cnyBalance('wallet-a', li.walletA);
      await page.getByTestId('tab-pay').click();
      const section = page.getByTestId('pay-link');
      await section.locator('input[name=link]').fill(`${h.base}${link.body.url}`);
      await section.getByTestId('link-open').click();
      await section.getByTestId('link-info').waitFor();
      const source = section.locator('select[name=source]');
      await source.selectOption((await source.locator('option', { hasText: 'Lantern Pay' }).first().getAttribute('value')) ?? '');
      await section.getByTestId('link-pay').click();
      const stepUp = section.getByTestId('step-up');
      await stepUp.waitFor({ timeout: 15_000 });
      expect(await stepUp.getByTestId('step-up-summary').textContent()).toContain('18.80');
      await stepUp.getByTestId('step-up-method-totp').click();
      await stepUp.locator('input[name=step-up-code]').waitFor();
      expect(await stepUp.getByTestId('step-up-demo-code').count()).toBe(0);
      await stepUp.locator('input[name=step-up-code]').fill(generateSync({ secret: enrolled.body.secret, epoch: Math.floor(Date.now() / 1000) }));
      await h.shot('trust-4a-authenticator-code');
      await stepUp.getByTestId('step-up-submit').click();
      const paid = section.getByTestId('link-paid');
      await paid.waitFor({ timeout: 15_000 });
      expect(await paid.textContent()).toContain('18.80');
      expect((await t.api('merchant-a').get(`/v1/payment-links/${link.body.id}`)).body.payCount).toBe(1);
      expect(await cnyBalance('wallet-a', li.walletA)).toBe(before - 1880);
      const [challenge] = await latestChallenges(li.walletA);
      expect(challenge).toMatchObject({ method: 'totp', status: 'consumed', consumed_by: ((await paid.locator('.mono').textContent()) ?? '').trim() });
    } finally {
      await stepUpAnyAmount(false);
    }
    expect(unexpectedProblems([{ status: 428, path: /^\/v1\/payment-links\/[A-Za-z0-9_]+\/pay$/ }])).toEqual([]);
  });

  it("5. a customer session sees only its own cards: another customer's token reference answers 404, the list holds only its own", async () => {
    const { page, t } = h;
    const issue = async (bank: string, productId: string, customerId: string, key: string) => {
      const accounts = await t.api(bank).get(`/v1/accounts?customerId=${customerId}`);
      const funding = (accounts.body.items as { id: string }[])[0];
      const issued = await t.api(bank).post('/v1/issuer/cards', { productId, customerId, ...(funding !== undefined ? { fundingAccountId: funding.id } : {}) }, { 'idempotency-key': key });
      expect(issued.status, JSON.stringify(issued.body)).toBe(201);
      expect((await t.api(bank).post(`/v1/issuer/cards/${issued.body.card.id}/activate`)).status).toBe(200);
      return issued.body as { cardNumber: string; cvv: string; card: { expiry: string; last4: string } };
    };
    const addTyped = async (card: { cardNumber: string; cvv: string; card: { expiry: string } }) =>
      h.addCard(async () => {
        await page.locator('input[name=cardNumber]').fill(card.cardNumber);
        await page.locator('input[name=expiry]').fill(card.card.expiry);
        await page.locator('input[name=cvv]').fill(card.cvv);
      });
    const tileRef = async (last4: string) => {
      await page.getByTestId('tab-home').click();
      const tile = page.getByTestId('card-tile').filter({ hasText: last4 });
      await tile.waitFor();
      return (await tile.getAttribute('data-token-ref')) ?? '';
    };
    // 张敏 adds her Pearl River card to Jade Wallet; then 李伟 adds his bank card to the same wallet.
    const hers = await issue('bank-b', 'cpr_demo_bank_b_credit', zhang.bankB, 'trust-card-zhang');
    await h.signIn('wallet-b', zhang.walletB);
    await addTyped(hers);
    const herRef = await tileRef(hers.card.last4);
    const his = await issue('bank-a', 'cpr_demo_bank_a_debit', li.bankA, 'trust-card-li');
    await h.signIn('wallet-b', li.walletB);
    await addTyped(his);
    const hisRef = await tileRef(his.card.last4);
    // The page shows only his card.
    expect(await page.getByTestId('card-tile').count()).toBe(1);
    expect(await page.getByTestId('card-tile').getAttribute('data-token-ref')).toBe(hisRef);
    await shotsAtBothSizes('5a-only-own-cards');

    // With the page's own session token: his token answers, hers is unknown (404, as a token that does not exist).
    expect((await asPage('GET', `/v1/wallet/tokens/${hisRef}`)).status).toBe(200);
    const other = await asPage('GET', `/v1/wallet/tokens/${herRef}`);
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('token_not_found');
    expect((await asPage('GET', '/v1/wallet/tokens/tok_does_not_exist')).body.error.code).toBe(other.body.error.code);
    expect((await asPage('POST', `/v1/wallet/tokens/${herRef}/suspend`)).status).toBe(404);
    expect((await asPage('GET', `/v1/wallet/tokens/${herRef}/card-wallets`)).status).toBe(404);
    // Nor can he add her card by its reference.
    const byRef = await asPage('POST', '/v1/wallet/tokens', { customerId: li.walletB, consent: true, devicePublicKey: newDevice().publicKey, source: { type: 'token_ref', tokenRef: herRef } });
    expect(byRef.status).toBe(404);
    expect(byRef.body.error.code).toBe('reference_not_found');
    // The list, with or without the filter, holds only his tokens; naming her as the filter answers 404.
    for (const path of ['/v1/wallet/tokens?limit=100', `/v1/wallet/tokens?customerId=${li.walletB}&limit=100`]) {
      const list = await asPage('GET', path);
      expect(list.status).toBe(200);
      expect((list.body.items as { tokenRef: string; customerId: string }[]).map((x) => [x.tokenRef, x.customerId])).toEqual([[hisRef, li.walletB]]);
    }
    expect((await asPage('GET', `/v1/wallet/tokens?customerId=${zhang.walletB}`)).status).toBe(404);
    expect((await asPage('GET', `/v1/accounts?customerId=${zhang.walletB}`)).status).toBe(404);
    expect((await asPage('GET', `/v1/history?customerId=${zhang.walletB}`)).status).toBe(404);
    // The wallet's back end (not a customer session) still sees both.
    const all = await t.api('wallet-b').get('/v1/wallet/tokens?limit=100');
    expect((all.body.items as { tokenRef: string }[]).map((x) => x.tokenRef)).toEqual(expect.arrayContaining([hisRef, herRef]));
    expect(h.problems).toEqual([]);
  });
});

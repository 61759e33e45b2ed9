import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { customerAccountId } from '../../src/accounts/index.ts';
import { newDevice } from '../../src/demo/device.ts';
import { tapBody, type WalletToken } from '../../src/demo/fixtures.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import type { TestHub } from '../support/hub.ts';
import { SHOTS, checkView, openWebHarness, setPageLang, type WebHarness } from './support.ts';

/**
 * Credit lines and disputes in the pages, in Chromium against a real listening hub at 390×844, in both languages:
 * the wallet shows a credit card's line (limit, available, owed, the statement's minimum and due date) and repays it
 * from the customer's account after asking; a card payment in the history is disputed (reason, part of the amount)
 * and listed under "my disputes"; the issuer desk lists the bank's disputes and charges it back after asking; the
 * wallet then shows the chargeback and its trail in words. Every view: axe (no serious or critical violation) and no
 * horizontal overflow. Screenshots: test-results/web/credit-*.png.
 */
let h: WebHarness;
let t: TestHub;
let page: Page;
let problems: string[] = [];
const axeCounts: Record<string, number> = {};

const PHONE = { width: 390, height: 844 };
const key = () => ({ 'idempotency-key': randomUUID() });
const zhang = demoCustomerId('zhang-at-wallet-b');
const setLang = setPageLang;

/** The shared view check (axe, overflow, screenshot test-results/web/credit-<name>.png), counted for credit-axe.json. */
async function check(p: Page, name: string) {
  axeCounts[name] = await checkView(p, `credit-${name}`);
}

describe('credit lines and disputes in the wallet and on the issuer desk, at 390×844', () => {
  let token: WalletToken;
  let creditAccountId = '';
  let cardPaymentId = '';
  const walletHkd = customerAccountId(zhang, 'HKD');

  beforeEach(() => {
    problems.length = 0;
  });
  beforeAll(async () => {
    h = await openWebHarness();
    ({ t, page, problems } = h);
    await page.setViewportSize(PHONE);
    // Pearl River Bank issues a 5,000.00 HKD credit card to a customer with an empty account; 张敏 adds it to Jade Wallet.
    const bank = t.api('bank-b');
    const c = await bank.post('/v1/customers', { externalId: 'web-credit-holder', name: '张敏', phone: '+85291230000' }, key());
    expect(c.status).toBe(201);
    expect((await bank.post('/v1/accounts', { customerId: c.body.id, currency: 'HKD' }, key())).status).toBe(201);
    const issued = await bank.post('/v1/issuer/cards', { productId: 'cpr_demo_bank_b_credit', customerId: c.body.id, fundingAccountId: customerAccountId(c.body.id, 'HKD'), creditLimit: '5000.00' }, key());
    expect(issued.status).toBe(201);
    creditAccountId = issued.body.card.fundingAccountId;
    expect((await bank.post(`/v1/issuer/cards/${issued.body.card.id}/activate`, {}, key())).status).toBe(200);
    await t.hub.db.transaction((tx) =>
      t.hub.cards.walletTokens.setRules(tx, { type: 'system' }, demoParticipantId('bank-b'), { typed: 'approve', byReference: 'approve', newDevice: 'approve', keyMaxTransactions: 100, keyTtlHours: 24 }),
    );
    const added = await t.api('wallet-b').post('/v1/wallet/tokens', { customerId: zhang, consent: true, deviceId: 'web-credit-phone', devicePublicKey: newDevice().publicKey, source: { type: 'typed', cardNumber: issued.body.cardNumber, expiry: issued.body.card.expiry, cvv: issued.body.cvv } }, key());
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    const expiry = String(added.body.token.expiry);
    token = { wallet: 'wallet-b', customerId: zhang, tokenRef: added.body.token.tokenRef, tokenNumber: added.body.tokenNumber, tokenKey: added.body.limitedUseKey.key, expiryYymm: `${expiry.slice(3, 5)}${expiry.slice(0, 2)}`, atc: 0 };
    // 1,200.00 at Harbour Tea House on the card, then a statement; 张敏 has 500.00 HKD at the wallet to repay from.
    const tap = await t.api('merchant-b').post('/v1/merchants/mer_demo_merchant_b/payments/tap', tapBody(token, { amount: '1200.00', amountMinor: 120_000n, currency: 'HKD', country: 'HK', now: new Date() }), key());
    expect(tap.status, JSON.stringify(tap.body)).toBe(201);
    cardPaymentId = String(tap.body.id);
    if (tap.body.status !== 'captured') expect((await t.api('merchant-b').post(`/v1/payments/${cardPaymentId}/capture`, {}, key())).status).toBe(200);
    expect((await bank.post(`/v1/issuer/credit-lines/${creditAccountId}/statements`, {}, key())).status).toBe(201);
    const opened = await t.api('wallet-b').post('/v1/accounts', { customerId: zhang, currency: 'HKD' }, key());
    expect([201, 409]).toContain(opened.status);
    expect((await t.api('wallet-b').post(`/v1/accounts/${walletHkd}/deposits`, { amount: { amount: '500.00', currency: 'HKD' } }, key())).status).toBe(201);
  }, 180_000);
  afterAll(async () => {
    writeFileSync(join(SHOTS, 'credit-axe.json'), `${JSON.stringify(axeCounts, null, 2)}\n`);
    await h?.close();
  });

  it('shows the credit line on the card in both languages and repays it from the wallet account after asking', async () => {
    await h.signIn('wallet-b', zhang);
    for (const lang of ['en', 'zh-CN'] as const) {
      await setLang(page, lang);
      const line = page.getByTestId('credit-line');
      await line.waitFor();
      expect(await line.getAttribute('data-owed')).toBe('1200.00');
      expect(await line.getAttribute('data-available')).toBe('3800.00');
      const statement = line.getByTestId('credit-statement');
      expect(await statement.getAttribute('data-status')).toBe('due');
      // The minimum is 5 % of 1,200.00 = 60.00.
      expect(await statement.textContent()).toContain(lang === 'en' ? 'minimum' : '最低还款');
      expect(await statement.textContent()).toContain('60.00');
      await check(page, `line-${lang}`);
    }
    const line = page.getByTestId('credit-line');
    await line.locator('select[name=repay-from]').selectOption(walletHkd);
    await line.locator('input[name=repay-amount]').fill('60.00');
    await line.getByTestId('credit-repay-submit').click();
    await line.getByTestId('credit-repay-yes').waitFor();
    // Asked first: nothing moved yet.
    expect((await t.api('wallet-b').get(`/v1/wallet/tokens/${token.tokenRef}`)).body.credit.owed.amount).toBe('1200.00');
    await check(page, 'repay-confirm-zh-CN');
    await line.getByTestId('credit-repay-yes').click();
    await line.getByTestId('credit-repaid').waitFor({ timeout: 15_000 });
    const after = (await t.api('wallet-b').get(`/v1/wallet/tokens/${token.tokenRef}`)).body.credit;
    expect(after).toMatchObject({ owed: { amount: '1140.00' }, statement: { status: 'minimum_paid' } });
    await expect.poll(() => page.getByTestId('credit-line').getAttribute('data-owed')).toBe('1140.00');
    expect(await page.getByTestId('credit-statement').getAttribute('data-status')).toBe('minimum_paid');
    await check(page, 'repaid-zh-CN');
    expect(problems).toEqual([]);
  }, 300_000);

  let disputeId = '';

  it('disputes the card payment from the history (reason, part of the amount) and lists it under "my disputes"', async () => {
    await setLang(page, 'en');
    await page.getByTestId('tab-history').click();
    const row = page.locator(`[data-testid=history-row][data-kind=merchant]`).first();
    await row.waitFor();
    await row.getByTestId('history-dispute').click();
    const box = page.getByTestId('disputes');
    await box.getByTestId('dispute-payment').waitFor();
    await box.locator('input[name=dispute-reason]').fill('Charged twice at the tea house');
    await box.locator('input[name=dispute-amount]').fill('200.00');
    await check(page, 'dispute-form-en');
    await box.getByTestId('dispute-submit').click();
    await box.getByTestId('dispute-opened').waitFor({ timeout: 15_000 });
    const mine = box.getByTestId('dispute-row');
    await expect.poll(() => mine.count()).toBe(1);
    // The payment now being decided offers no second dispute.
    await expect.poll(() => row.getByTestId('history-dispute').count()).toBe(0);
    disputeId = (await mine.first().getAttribute('data-dispute-id')) ?? '';
    const d = (await t.api('wallet-b').get(`/v1/disputes/${disputeId}`)).body;
    expect(d).toMatchObject({ kind: 'card', paymentId: cardPaymentId, status: 'opened', customerId: zhang, amount: { amount: '200.00', currency: 'HKD' }, issuerParticipantId: demoParticipantId('bank-b') });
    expect(await mine.first().getByTestId('dispute-status').textContent()).toBe('Open: waiting for an answer');
    expect(await mine.first().getByTestId('dispute-trail').textContent()).toContain('Your wallet: opened the dispute');
    await check(page, 'my-disputes-en');
    // Another customer of the wallet does not see it (a customer session lists its own customer's disputes).
    expect((await t.api('wallet-b').get(`/v1/disputes?customerId=${demoCustomerId('li-at-wallet-b')}`)).body.items).toEqual([]);
    expect(problems).toEqual([]);
  }, 300_000);

  it('the issuer desk lists the dispute and charges it back after asking; the wallet shows the chargeback and its trail', async () => {
    const desk = await h.context.newPage();
    await desk.setViewportSize(PHONE);
    desk.on('pageerror', (e) => problems.push(`issuer pageerror: ${e.message}`));
    await desk.goto(`${h.base}/issuer`);
    await desk.locator('input[name=bank-key]').fill('bank-b');
    await desk.getByTestId('issuer-sign-in').click();
    const row = desk.locator(`[data-testid=issuer-dispute][data-dispute-id="${disputeId}"]`);
    for (const lang of ['zh-CN', 'en'] as const) {
      await setLang(desk, lang);
      await row.waitFor();
      expect(await row.getByTestId('issuer-dispute-status').textContent()).toBe(lang === 'en' ? 'Open: waiting for an answer' : '处理中：等待答复');
      expect(await row.getByTestId('dispute-trail').textContent()).toContain(lang === 'en' ? 'The cardholder’s wallet: opened the dispute' : '持卡人的钱包: 提出争议');
      await check(desk, `issuer-disputes-${lang}`);
    }
    expect(await row.getByTestId('issuer-chargeback').isDisabled()).toBe(true);
    await row.locator(`textarea[name="evidence-${disputeId}"]`).fill('Duplicate authorisation on the merchant’s terminal log');
    await row.getByTestId('issuer-chargeback').click();
    await row.getByTestId('issuer-dispute-yes').waitFor();
    expect((await t.api('bank-b').get(`/v1/disputes/${disputeId}`)).body.status).toBe('opened');
    await check(desk, 'issuer-chargeback-confirm-en');
    await row.getByTestId('issuer-dispute-yes').click();
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('chargeback');
    const d = (await t.api('bank-b').get(`/v1/disputes/${disputeId}`)).body;
    expect(d.steps.map((s: { action: string; participantId: string }) => [s.action, s.participantId])).toEqual([
      ['opened', demoParticipantId('wallet-b')],
      ['chargeback', demoParticipantId('bank-b')],
    ]);
    await check(desk, 'issuer-charged-back-en');
    await desk.close();

    for (const lang of ['en', 'zh-CN'] as const) {
      await setLang(page, lang);
      await page.getByTestId('tab-history').click();
      const mine = page.getByTestId('disputes').locator(`[data-testid=dispute-row][data-dispute-id="${disputeId}"]`);
      await mine.waitFor();
      expect(await mine.getAttribute('data-status')).toBe('chargeback');
      expect(await mine.getByTestId('dispute-trail').textContent()).toContain(lang === 'en' ? 'The bank: charged the payment back' : '银行: 退单');
      await check(page, `my-disputes-chargeback-${lang}`);
    }
    expect(problems).toEqual([]);
  }, 300_000);
});

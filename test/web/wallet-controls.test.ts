import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { demoParticipantId } from '../../src/demo/seed.ts';
import type { TestHub } from '../support/hub.ts';
import { SHOTS, checkView, openWebHarness, setPageLang, type WebHarness } from './support.ts';

/**
 * The cardholder's own controls and the wallet's pages, in Chromium against a real listening hub at 390×844:
 * - freeze a card in the wallet (its bank is told by webhook), the card and the payment code say why it cannot pay
 *   (not "no cards yet"), unfreeze it; a card frozen by the bank says so and offers no unfreeze; remove a card;
 * - the budget and low-balance alert are saved at the hub (not in the browser): a fresh browser storage still shows
 *   them, and crossing them is told to the wallet by webhook;
 * - the wallet's other pages (bank accounts, top-up and withdrawal, aliases, requests, splits, red packets, payment
 *   status) in both languages.
 * Every view: axe (no serious or critical violation) and no horizontal overflow. Screenshots: test-results/web/controls-*.png.
 */
let h: WebHarness;
let t: TestHub;
let page: Page;
let problems: string[] = [];
const axeCounts: Record<string, number> = {};

type Lang = 'en' | 'zh-CN';
declare const localStorage: { setItem(key: string, value: string): void; removeItem(key: string): void; length: number; key(i: number): string | null };

const PHONE = { width: 390, height: 844 };
const li = { walletA: 'cus_demo_li_at_wallet_a', bank: 'cus_demo_li_at_bank_a' };

const setLang = (p: Page, lang: Lang) => setPageLang(p, lang);

async function check(p: Page, name: string) {
  axeCounts[name] = await checkView(p, `controls-${name}`);
}

const eventsOf = (participantKey: string, type: string) =>
  t.hub.db.query<{ payload: Record<string, unknown> }>('select payload from events where participant_id = $1 and type = $2 order by id', [demoParticipantId(participantKey), type]);

describe('the cardholder’s card controls, budgets at the hub and the wallet’s pages, at 390×844', () => {
  beforeEach(() => {
    problems.length = 0;
  });
  beforeAll(async () => {
    h = await openWebHarness();
    ({ t, page, problems } = h);
    await page.setViewportSize(PHONE);
  }, 180_000);
  afterAll(async () => {
    writeFileSync(join(SHOTS, 'controls-axe.json'), `${JSON.stringify(axeCounts, null, 2)}\n`);
    await h?.close();
  });

  let cardId = '';
  let cardLast4 = '';

  it('freezes a card in the wallet (the bank is told), says why it cannot pay, withholds the payment code, and unfreezes it', async () => {
    const accounts = await t.api('bank-a').get(`/v1/accounts?customerId=${li.bank}`);
    const funding = (accounts.body.items as { id: string; currency: string }[]).find((a) => a.currency === 'CNY');
    const issued = await t.api('bank-a').post('/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: li.bank, fundingAccountId: funding?.id }, { 'idempotency-key': 'controls-card-1' });
    expect(issued.status).toBe(201);
    cardId = issued.body.card.id;
    cardLast4 = issued.body.card.last4;
    expect((await t.api('bank-a').post(`/v1/issuer/cards/${cardId}/activate`)).status).toBe(200);
    await h.signIn('wallet-a', li.walletA);
    await h.addCard(async () => {
      await page.locator('input[name=cardNumber]').fill(issued.body.cardNumber);
      await page.locator('input[name=expiry]').fill(issued.body.card.expiry);
      await page.locator('input[name=cvv]').fill(issued.body.cvv);
    });
    await setLang(page, 'zh-CN');
    await page.getByTestId('tab-home').click();
    const tile = page.getByTestId('card-tile').filter({ hasText: cardLast4 });
    await tile.waitFor();
    const tokenRef = (await tile.getAttribute('data-token-ref')) ?? '';
    await tile.getByTestId('card-freeze').click();
    await tile.getByTestId('card-confirm-yes').waitFor();
    await check(page, 'freeze-confirm-zh-CN');
    await tile.getByTestId('card-confirm-yes').click();
    const why = tile.getByTestId('card-suspended');
    await why.waitFor();
    expect(await why.getAttribute('data-by')).toBe('wallet');
    expect(await why.textContent()).toContain('您已在本钱包冻结此卡');
    await check(page, 'card-frozen-zh-CN');
    // The hub's record, and the bank told by webhook.
    expect((await t.api('wallet-a').get(`/v1/wallet/tokens/${tokenRef}`)).body).toMatchObject({ status: 'suspended', suspendedBy: 'wallet' });
    expect((await eventsOf('bank-a', 'token.suspended')).map((e) => e.payload)).toContainEqual(expect.objectContaining({ cardId, status: 'suspended', by: 'wallet' }));

    // The payment code says the card is frozen, not "no cards yet".
    await page.getByTestId('tab-pay').click();
    const code = page.getByTestId('payment-code');
    await code.getByTestId('cpm-frozen').waitFor();
    expect(await code.textContent()).not.toContain('还没有卡片');
    expect(await code.getByTestId('cpm-qr').count()).toBe(0);
    await check(page, 'code-frozen-zh-CN');

    await page.getByTestId('tab-home').click();
    await tile.getByTestId('card-unfreeze').click();
    await tile.getByTestId('card-freeze').waitFor();
    expect((await t.api('wallet-a').get(`/v1/wallet/tokens/${tokenRef}`)).body.status).toBe('active');
    expect((await eventsOf('bank-a', 'token.resumed')).map((e) => e.payload)).toContainEqual(expect.objectContaining({ cardId, by: 'wallet' }));
    await page.getByTestId('tab-pay').click();
    await code.getByTestId('cpm-qr').waitFor();
    expect(problems).toEqual([]);
  }, 300_000);

  it('a card the bank froze says so in both languages and offers no unfreeze; the bank lifts it', async () => {
    expect((await t.api('bank-a').post(`/v1/issuer/cards/${cardId}/freeze`)).status).toBe(200);
    for (const lang of ['en', 'zh-CN'] as const) {
      await setLang(page, lang);
      await page.getByTestId('tab-home').click();
      const tile = page.getByTestId('card-tile').filter({ hasText: cardLast4 });
      const why = tile.getByTestId('card-suspended');
      await why.waitFor();
      expect(await why.getAttribute('data-by')).toBe('card');
      expect(await why.textContent()).toContain(lang === 'en' ? 'Your bank froze the card itself' : '您的银行已冻结此卡本身');
      expect(await tile.getByTestId('card-unfreeze').count()).toBe(0);
      await check(page, `card-frozen-by-bank-${lang}`);
    }
    expect((await t.api('bank-a').post(`/v1/issuer/cards/${cardId}/unfreeze`)).status).toBe(200);
    await page.reload();
    await page.getByTestId('card-tile').filter({ hasText: cardLast4 }).getByTestId('card-freeze').waitFor();
    expect(problems).toEqual([]);
  }, 300_000);

  it('keeps the budget and low-balance alert at the hub: another browser storage still shows them, and crossing them is told by webhook', async () => {
    await setLang(page, 'en');
    // 李伟 spends 5.00 this month (a payment to 张敏), then sets a budget of 1.00 and an alert above his balance.
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li.walletA, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '5.00', currency: 'CNY' } });
    expect((await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, { 'idempotency-key': randomUUID() })).status).toBe(201);
    await page.getByTestId('quick-budget').click();
    const budget = page.getByTestId('budget');
    await budget.waitFor();
    await check(page, 'budget-empty-en');
    await budget.locator('input[name=budget-limit]').fill('1.00');
    await budget.locator('input[name=budget-low]').fill('99999.00');
    await budget.getByTestId('budget-save').click();
    await budget.getByTestId('budget-saved').waitFor();
    await budget.getByTestId('budget-over').waitFor();
    await budget.getByTestId('budget-low').waitFor();
    await check(page, 'budget-crossed-en');
    expect((await eventsOf('wallet-a', 'budget.exceeded')).map((e) => e.payload)).toEqual([expect.objectContaining({ customerId: li.walletA, currency: 'CNY', monthlyLimit: { amount: '1.00', currency: 'CNY' } })]);
    expect((await eventsOf('wallet-a', 'budget.low_balance')).map((e) => e.payload)).toEqual([expect.objectContaining({ customerId: li.walletA, threshold: { amount: '99999.00', currency: 'CNY' } })]);
    // Not browser storage: with every hutong.budget* key gone, the page reads the same budget back from the hub.
    const browserBudgetKeys = await page.evaluate(() => {
      const keys: string[] = [];
      for (let i = 0; i < localStorage.length; i++) if ((localStorage.key(i) ?? '').startsWith('hutong.budget')) keys.push(localStorage.key(i) ?? '');
      return keys;
    });
    expect(browserBudgetKeys).toEqual([]);
    await page.reload();
    await page.getByTestId('quick-budget').click();
    await expect.poll(() => page.locator('input[name=budget-limit]').inputValue()).toBe('1.00');
    await setLang(page, 'zh-CN');
    await page.getByTestId('quick-budget').click();
    await page.getByTestId('budget-over').waitFor();
    expect(await page.getByTestId('budget-over').textContent()).toContain('已超出预算');
    await check(page, 'budget-crossed-zh-CN');
    expect(problems).toEqual([]);
  }, 300_000);

  it('removes a card from the wallet after asking (the token is deleted; the bank is told)', async () => {
    await setLang(page, 'en');
    await page.getByTestId('tab-home').click();
    const tile = page.getByTestId('card-tile').filter({ hasText: cardLast4 });
    const tokenRef = (await tile.getAttribute('data-token-ref')) ?? '';
    await tile.getByTestId('card-remove').click();
    await tile.getByTestId('card-confirm-yes').waitFor();
    await check(page, 'remove-confirm-en');
    await tile.getByTestId('card-confirm-yes').click();
    await expect.poll(() => page.getByTestId('card-tile').filter({ hasText: cardLast4 }).count()).toBe(0);
    expect((await t.api('wallet-a').get(`/v1/wallet/tokens/${tokenRef}`)).body.status).toBe('deleted');
    expect((await eventsOf('bank-a', 'token.deleted')).map((e) => e.payload)).toContainEqual(expect.objectContaining({ cardId, by: 'wallet' }));
    expect(problems).toEqual([]);
  }, 300_000);

  it('the wallet’s pages in both languages: a bank account linked with the bank’s code, the aliases, payments with their status, requests sent, a split with reminders, red-packet details', async () => {
    // What the pages show: a split and a red packet 李伟 sent (through the wallet's API, as another device would).
    const split = await t.api('wallet-a').post('/v1/transfers/splits', { customerId: li.walletA, total: { amount: '30.00', currency: 'CNY' }, method: 'equal', members: [{ alias: { type: 'handle', value: 'liwei' } }, { alias: { type: 'handle', value: 'zhangmin' } }], note: 'Hotpot 火锅' }, { 'idempotency-key': randomUUID() });
    expect(split.status).toBe(201);
    const packet = await t.api('wallet-a').post('/v1/transfers/red-packets', { customerId: li.walletA, total: { amount: '8.88', currency: 'CNY' }, shares: 2, mode: 'equal', members: [{ type: 'handle', value: 'zhangmin' }], message: '新年快乐' }, { 'idempotency-key': randomUUID() });
    expect(packet.status).toBe(201);
    const zhang = await t.api('wallet-b').post(`/v1/transfers/red-packets/${packet.body.id as string}/claim`, { customerId: 'cus_demo_zhang_at_wallet_b' }, { 'idempotency-key': randomUUID() });
    expect(zhang.status).toBe(201);

    await setLang(page, 'zh-CN');
    await page.getByTestId('tab-me').click();
    const banks = page.getByTestId('bank-accounts');
    await banks.getByTestId('bank-link-request').waitFor();
    await check(page, 'me-zh-CN');
    await banks.getByTestId('bank-link-request').click();
    const code = (await banks.getByTestId('bank-demo-code').textContent({ timeout: 15_000 })) ?? '';
    expect(code).toMatch(/^[0-9]{6}$/);
    await banks.locator('input[name=bank-code]').fill(code);
    await check(page, 'bank-consent-zh-CN');
    await banks.getByTestId('bank-confirm').click();
    await banks.getByTestId('bank-linked').waitFor({ timeout: 15_000 });
    await expect.poll(() => banks.getByTestId('bank-link').count()).toBeGreaterThan(0);
    expect((await t.api('wallet-a').get(`/v1/account-links?customerId=${li.walletA}`)).body.items.filter((l: { status: string }) => l.status === 'active').length).toBeGreaterThan(0);
    // The home page now shows the linked bank's currencies too (CNY and USD), each in its own currency.
    await page.getByTestId('tab-home').click();
    await expect.poll(() => page.getByTestId('balances').locator('.figure[data-currency=USD]').count()).toBe(1);
    await page.getByTestId('tab-me').click();

    const aliases = page.getByTestId('aliases');
    await aliases.locator('[data-testid=alias-row][data-value=liwei]').waitFor();
    await check(page, 'me-linked-zh-CN');
    // An e-mail alias added with the code the wallet sent to it, then removed after the page asks.
    await aliases.locator('select[name=alias-type]').selectOption('email');
    await aliases.locator('input[name=alias-value]').fill('li.page@example.com');
    await aliases.getByTestId('alias-add-submit').click();
    const aliasCode = (await aliases.getByTestId('alias-demo-code').textContent({ timeout: 15_000 })) ?? '';
    expect(aliasCode).toMatch(/^[0-9]{6}$/);
    await aliases.locator('input[name=alias-code]').fill(aliasCode);
    await check(page, 'alias-verify-zh-CN');
    await aliases.getByTestId('alias-verify-submit').click();
    const added = aliases.locator('[data-testid=alias-row][data-value="li.page@example.com"]');
    await added.waitFor({ timeout: 15_000 });
    expect((await t.api('wallet-b').get('/v1/aliases/lookup?customerId=cus_demo_zhang_at_wallet_b&type=email&value=li.page%40example.com')).status).toBe(200);
    await added.getByTestId('alias-remove').click();
    await check(page, 'alias-remove-zh-CN');
    await added.getByTestId('alias-remove-yes').click();
    await expect.poll(() => added.count()).toBe(0);
    expect((await t.api('wallet-b').get('/v1/aliases/lookup?customerId=cus_demo_zhang_at_wallet_b&type=email&value=li.page%40example.com')).status).toBe(404);

    for (const lang of ['zh-CN', 'en'] as const) {
      await setLang(page, lang);
      await page.getByTestId('tab-transfer').click();
      const payments = page.getByTestId('payments');
      await payments.locator('[data-testid=payment-row]').first().waitFor();
      await payments.locator('[data-testid=payment-row] button').first().click();
      const detail = payments.getByTestId('payment-detail');
      await detail.waitFor();
      expect(await detail.getAttribute('data-status')).toBe('completed');
      expect(await detail.textContent()).toContain(lang === 'en' ? 'Completed' : '已完成');
      const sent = page.getByTestId('sent-requests');
      const splitRow = sent.locator(`[data-testid=split-status][data-split-id="${split.body.id as string}"]`);
      await splitRow.getByTestId('split-paid').waitFor();
      expect(await splitRow.getByTestId('split-paid').textContent()).toBe(lang === 'en' ? '0 of 1 paid' : '1人中已付0人');
      const packets = page.getByTestId('sent-packets');
      const mine = packets.locator(`[data-testid=sent-packet][data-packet-id="${packet.body.id as string}"]`);
      await mine.getByTestId('packet-details').click();
      await mine.getByTestId('packet-detail').waitFor();
      expect(await mine.getByTestId('packet-detail').textContent()).toContain(lang === 'en' ? '1 of 2 opened' : '2个中已领1个');
      await check(page, `transfer-pages-${lang}`);
    }
    const splitRow = page.locator(`[data-testid=split-status][data-split-id="${split.body.id as string}"]`);
    await splitRow.getByTestId('split-remind').click();
    await expect.poll(() => splitRow.getByTestId('split-remind').textContent()).toContain('Reminded');
    expect(problems).toEqual([]);
  }, 300_000);

  it('the console shows the FX rates with the spread and the risk rules (the hub’s defaults, one participant’s) in both languages, and sets a fee after asking', async () => {
    const fx = await t.api('operator').get('/v1/operator/fx');
    expect(fx.status).toBe(200);
    expect(fx.body).toMatchObject({ base: 'EUR', spreadBps: expect.any(Number) });
    expect(Object.keys(fx.body.rates)).toContain('CNY');
    expect((await t.api('wallet-a').get('/v1/operator/fx')).status).toBeGreaterThanOrEqual(401);
    expect((await t.api('operator').get('/v1/operator/risk/rules?participantId=nobody')).status).toBe(404);
    await h.consoleSignIn();
    for (const lang of ['en', 'zh-CN'] as const) {
      await setLang(page, lang);
      await page.getByTestId('tab-settings').click();
      await page.locator('[data-testid=fx-rate][data-currency=CNY]').waitFor();
      await expect.poll(() => page.locator('[data-testid=risk-rule]').count()).toBe(5);
      await check(page, `console-settings-${lang}`);
    }
    const select = page.locator('select[name=rules-participant]');
    const walletA = await select.locator('option', { hasText: 'Lantern' }).first().getAttribute('value');
    await select.selectOption(walletA ?? '');
    await expect.poll(() => page.locator('[data-testid=risk-rule]').count()).toBe(5);
    expect(await page.locator('[data-testid=risk-rule][data-rule=velocity]').textContent()).toContain('要求加强验证');

    // Fees: the operator sets wallet A → wallet B at 0.10 CNY + 25 bp after the page asks; the table and the next quote show it.
    const fees = page.getByTestId('settings-fees');
    const [payerId, payeeId] = [demoParticipantId('wallet-a'), demoParticipantId('wallet-b')];
    await fees.locator('select[name=fee-payer]').selectOption(payerId);
    await fees.locator('select[name=fee-payee]').selectOption(payeeId);
    await fees.locator('input[name=fee-fixed]').fill('0.10');
    await fees.locator('input[name=fee-bps]').fill('25');
    await fees.getByTestId('fee-set').click();
    await fees.getByTestId('fee-confirm').waitFor();
    expect((await t.api('operator').get('/v1/operator/fees')).body.items.filter((f: { payerParticipantId: string; payeeParticipantId: string }) => f.payerParticipantId === payerId && f.payeeParticipantId === payeeId)).toEqual([]);
    await check(page, 'console-fee-confirm-zh-CN');
    await fees.getByTestId('fee-set-yes').click();
    await fees.locator(`[data-testid=fee-row][data-payer="${payerId}"][data-payee="${payeeId}"]`).waitFor({ timeout: 15_000 });
    expect((await t.api('operator').get('/v1/operator/fees')).body.items).toContainEqual({ payerParticipantId: payerId, payeeParticipantId: payeeId, fixed: { amount: '0.10', currency: 'CNY' }, bps: 25 });
    expect((await t.api('wallet-a').get('/v1/operator/fees')).status).toBeGreaterThanOrEqual(401);
    const quote = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li.walletA, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '100.00', currency: 'CNY' } });
    expect(quote.status).toBe(201);
    expect(quote.body.fee).toEqual({ amount: '0.35', currency: 'CNY' });
    expect(problems).toEqual([]);
  }, 300_000);
});

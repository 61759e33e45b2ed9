import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestHub } from '../support/hub.ts';
import { openWebHarness, type WebHarness } from './support.ts';

/**
 * The golden paths of the wallet and the console, in Debian's Chromium (playwright-core, /usr/bin/chromium), against a
 * real listening hub with the demo network (the harness in ./support.ts). Any page error or console error fails the
 * run. Screenshots of each step go to test-results/web/.
 */
let h: WebHarness;
let t: TestHub;
let base = '';
let page: Page;
let problems: string[] = [];

const shot = (name: string) => h.shot(name);
const signIn = (wallet: string, customerId: string) => h.signIn(wallet, customerId);
const addCard = (fill: () => Promise<void>) => h.addCard(fill);

describe('the wallet and console pages in Chromium', () => {
  // Each step reports its own page errors.
  beforeEach(() => {
    problems.length = 0;
  });
  beforeAll(async () => {
    h = await openWebHarness();
    ({ t, base, page, problems } = h);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  const li = { walletA: 'cus_demo_li_at_wallet_a', walletB: 'cus_demo_li_at_wallet_b', bank: 'cus_demo_li_at_bank_a' };
  let cardLast4 = '';
  let tokenRefA = '';

  it('1. binds a card in wallet A by typing it once (with the bank’s one-time code)', async () => {
    // The bank issues a debit card on 李伟's CNY account and hands it over (the test plays the bank's back office).
    const accounts = await t.api('bank-a').get(`/v1/accounts?customerId=${li.bank}`);
    const funding = (accounts.body.items as { id: string; currency: string }[]).find((a) => a.currency === 'CNY');
    expect(funding).toBeDefined();
    const issued = await t.api('bank-a').post('/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: li.bank, fundingAccountId: funding?.id }, { 'idempotency-key': 'web-card-1' });
    expect(issued.status).toBe(201);
    expect((await t.api('bank-a').post(`/v1/issuer/cards/${issued.body.card.id}/activate`)).status).toBe(200);
    cardLast4 = issued.body.card.last4;
    await signIn('wallet-a', li.walletA);
    await shot('0-signed-in-wallet-a');
    await addCard(async () => {
      await page.locator('input[name=cardNumber]').fill(issued.body.cardNumber);
      await page.locator('input[name=expiry]').fill(issued.body.card.expiry);
      await page.locator('input[name=cvv]').fill(issued.body.cvv);
    });
    await shot('1a-card-added-wallet-a');
    await page.getByTestId('tab-home').click();
    const tile = page.getByTestId('card-tile').filter({ hasText: cardLast4 });
    await tile.waitFor();
    tokenRefA = (await tile.getByTestId('token-ref').textContent()) ?? '';
    expect(tokenRefA).toMatch(/^[A-Za-z0-9_]+$/);
    await shot('1b-cards-wallet-a');
    expect(problems).toEqual([]);
  });

  it('2. links her records at wallet B and wallet A (a code on each side), then adds the same card to wallet B by reference, typing no card number; sees both wallets', async () => {
    expect(tokenRefA).not.toBe('');
    await signIn('wallet-b', li.walletB);
    // A card reference names a card only for a customer whose record is linked, with consent, to the cardholder's.
    await h.linkRecordAt('Lantern Pay');
    await shot('2-linked-to-wallet-a');
    await addCard(async () => {
      await page.getByTestId('mode-ref').check();
      await page.locator('input[name=tokenRef]').fill(tokenRefA);
    });
    await shot('2a-card-added-by-reference-wallet-b');
    await page.getByTestId('tab-home').click();
    const tile = page.getByTestId('card-tile').filter({ hasText: cardLast4 });
    await tile.getByTestId('show-wallets').click();
    await expect.poll(async () => tile.locator('table tr').count()).toBe(2);
    await shot('2b-wallets-holding-the-card');
    expect(problems).toEqual([]);
  });

  it("3. pays a merchant's dynamic QR from wallet B with the card (a fresh token cryptogram)", async () => {
    const merchants = await t.api('merchant-a').get('/v1/merchants');
    expect(merchants.status, 'payments module: GET /v1/merchants').toBe(200);
    const merchantId = merchants.body.items[0].id as string;
    const qr = await t.api('merchant-a').post(`/v1/merchants/${merchantId}/qr-codes`, { kind: 'dynamic', amount: '23.00', billNumber: 'WEB-1' }, { 'idempotency-key': 'web-qr-1' });
    expect(qr.status).toBe(201);
    await page.getByTestId('tab-pay').click();
    await page.locator('textarea[name=payload]').fill(qr.body.payload);
    await page.getByTestId('qr-decode').click();
    await page.getByTestId('qr-preview').waitFor();
    const source = page.locator('select[name=source]').first();
    const tokenOption = await source.locator('option', { hasText: cardLast4 }).getAttribute('value');
    await source.selectOption(tokenOption ?? '');
    await shot('3a-merchant-qr-preview');
    await page.getByTestId('qr-pay').click();
    await page.locator('[data-testid=qr-paid], [data-testid=pay-qr] [role=alert]').first().waitFor({ timeout: 15_000 });
    await shot('3b-merchant-qr-paid');
    expect(await page.locator('[data-testid=pay-qr] [role=alert]').allTextContents()).toEqual([]);
    await shot('3b-merchant-qr-paid');
    expect(problems).toEqual([]);
  });

  it('4. sees the payment in the unified history', async () => {
    await page.getByTestId('tab-history').click();
    const row = page.locator('[data-testid=history-row][data-kind=merchant]').first();
    await row.waitFor();
    expect(await row.textContent()).toContain('23.00');
    // Step 2 linked 李伟's records at wallet B and wallet A (a customer link, a code on each side): wallet B's history
    // also shows what happened at wallet A (his opening balance there), named as such.
    const fromA = page.locator(`[data-testid=history-row][data-own=false][data-participant=${t.demo.participants.find((p) => p.key === 'wallet-a')?.participantId}]`).first();
    await fromA.waitFor();
    expect(await fromA.textContent()).toContain('Lantern Pay');
    await shot('4a-unified-history');
    await page.getByTestId('tab-budget').click();
    await page.getByTestId('budget').waitFor();
    await shot('4b-budget-and-charts');
    expect(problems).toEqual([]);
  });

  it('5. sends money to an alias on another wallet (masked name first), and a red packet is claimed there', async () => {
    await signIn('wallet-a', li.walletA);
    await page.getByTestId('tab-transfer').click();
    const send = page.getByTestId('send-money');
    await send.locator('input[name=send-alias]').fill('zhangmin');
    await page.getByTestId('send-lookup').click();
    const payee = await page.getByTestId('payee').textContent();
    expect(payee).toContain('*');
    expect(payee).not.toContain('张敏');
    await send.locator('input[name=send-amount]').fill('10.00');
    await page.getByTestId('send-quote').click();
    await shot('5a-send-quote-with-masked-payee');
    await page.getByTestId('send-confirm').click();
    await page.getByTestId('sent').waitFor({ timeout: 15_000 });
    const packet = page.getByTestId('red-packet');
    await packet.locator('input[name=packet-total]').fill('8.88');
    await packet.locator('input[name=packet-members]').fill('zhangmin');
    await page.getByTestId('packet-send').click();
    const packetId = (await page.getByTestId('packet-id').textContent({ timeout: 15_000 })) ?? '';
    await shot('5b-red-packet-sent');
    await signIn('wallet-b', 'cus_demo_zhang_at_wallet_b');
    await page.getByTestId('tab-transfer').click();
    await page.getByTestId('claim-packet').locator('input[name=claim-id]').fill(packetId);
    await page.getByTestId('packet-claim').click();
    const claimed = await page.getByTestId('packet-claimed').textContent({ timeout: 15_000 });
    expect(claimed).toContain('8.88');
    await shot('5c-red-packet-claimed');
    await page.getByTestId('tab-history').click();
    await page.locator('[data-testid=history-row]').first().waitFor();
    await shot('5d-history-of-the-payee');
    expect(problems).toEqual([]);
  });

  it('6. switches the language (中文 ⇄ English), amounts formatted per locale', async () => {
    await page.getByTestId('tab-home').click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Hutong Wallet');
    await page.getByTestId('lang-switch').click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('互通钱包');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    await shot('6a-wallet-zh');
    await page.getByTestId('lang-switch').click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Hutong Wallet');
    expect(problems).toEqual([]);
  });

  it('the console: operator sign-in, participants, audit verify, live figures', async () => {
    await page.goto(`${base}/console`);
    await page.locator('input[name=operatorToken]').fill(t.hub.operatorToken);
    await page.getByTestId('console-sign-in').click();
    await page.getByText('Lantern Pay').first().waitFor();
    await shot('7a-console-participants');
    await page.getByTestId('tab-audit').click();
    await page.getByTestId('audit-verify').click();
    await expect.poll(() => page.getByTestId('audit-result').textContent()).toMatch(/verified/);
    await shot('7b-console-audit-verified');
    await page.getByTestId('tab-transactions').click();
    await page.getByTestId('transactions').waitFor();
    await shot('7c-console-transactions');
    await page.getByTestId('tab-figures').click();
    await page.getByTestId('figures').waitFor();
    await page.waitForTimeout(2500);
    await shot('7d-console-figures');
    expect(problems).toEqual([]);
  });

  it('answers /wallet and /console from the hub, with the built page', async () => {
    const res = await fetch(`${base}/wallet`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('/app/assets/');
  });
});

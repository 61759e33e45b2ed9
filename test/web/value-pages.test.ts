import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { cardInTwoWallets, tokenSource } from '../../src/demo/fixtures.ts';
import type { TestHub } from '../support/hub.ts';
import { checkView, openWebHarness, setPageLang, type WebHarness } from './support.ts';

/**
 * The value pages in Chromium against a real listening hub at 390×844, in both languages: the wallet's savings pots
 * (create one, save into it: the hub's ledger holds it), its coupons and membership cards, the coupon and amount to pay
 * shown before a merchant-code payment, the card's rewards, and the issuer desk's insights over the bank's own cards. Every view: axe (no
 * serious or critical violation) and no horizontal overflow. Screenshots: test-results/web/value-*.png.
 */
let h: WebHarness;
let t: TestHub;
let page: Page;

type Lang = 'en' | 'zh-CN';
const PHONE = { width: 390, height: 844 };
const LI = 'cus_demo_li_at_wallet_a';
const MERCHANT = 'mer_demo_merchant_a';
const key = () => ({ 'idempotency-key': crypto.randomUUID() });

const setLang = (p: Page, lang: Lang) => setPageLang(p, lang);

async function check(p: Page, name: string) {
  await checkView(p, `value-${name}`);
}

describe('savings pots, coupons and issuer insights in the pages, at 390×844', () => {
  beforeAll(async () => {
    h = await openWebHarness();
    ({ t, page } = h);
    await page.setViewportSize(PHONE);
  }, 300_000);
  afterAll(async () => h?.close());

  it('the wallet opens a savings pot and saves into it; the pot is a ledger account at the hub', async () => {
    await h.signIn('wallet-a', LI);
    await page.getByTestId('tab-history').click();
    await page.getByTestId('tab-pots').click();
    await page.locator('input[name=pot-name]').fill('Trip');
    await page.locator('input[name=pot-goal]').fill('50.00');
    await page.getByTestId('pot-create').click();
    const pot = page.getByTestId('pot').first();
    await pot.waitFor();
    const potId = (await pot.getAttribute('data-pot-id')) ?? '';
    await pot.locator(`input[name=pot-amount-${potId}]`).fill('20.00');
    await pot.getByTestId('pot-in').click();
    await expect.poll(async () => (await t.api('wallet-a').get(`/v1/pots?customerId=${LI}`)).body.items[0]?.balance.amount).toBe('20.00');
    await expect.poll(() => pot.textContent()).toContain('20.00');
    for (const lang of ['zh-CN', 'en'] as const) {
      await setLang(page, lang);
      await page.getByTestId('tab-history').click();
      await page.getByTestId('tab-pots').click();
      await page.getByTestId('pot').first().waitFor();
      await check(page, `pots-${lang}`);
    }
    expect(h.problems).toEqual([]);
  }, 300_000);

  it('the wallet keeps a merchant’s coupon and sees it applied before paying a merchant code', async () => {
    const coupon = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/coupons`, { name: '10% off', percentOff: 10, perCustomerLimit: 3, expiresAt: new Date(Date.now() + 86_400_000).toISOString() }, key());
    expect(coupon.status).toBe(201);
    const club = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/membership-programs`, { name: 'Transit Club' }, key());
    expect(club.status).toBe(201);
    await page.getByTestId('tab-history').click();
    await page.getByTestId('tab-coupons').click();
    await page.getByTestId('offer').first().waitFor();
    await page.getByTestId('offer').filter({ hasText: '10% off' }).getByRole('button').click();
    await page.getByTestId('kept-coupon').first().waitFor();
    await page.getByTestId('program').filter({ hasText: 'Transit Club' }).getByRole('button').click();
    await page.getByTestId('membership').first().waitFor();
    for (const lang of ['zh-CN', 'en'] as const) {
      await setLang(page, lang);
      await page.getByTestId('tab-history').click();
      await page.getByTestId('tab-coupons').click();
      await page.getByTestId('kept-coupon').first().waitFor();
      await check(page, `coupons-${lang}`);
    }
    // A dynamic code for 40.00: the preview shows 10 % off and 36.00 to pay.
    const qr = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'dynamic', amount: '40.00', expiresInS: 600 }, key());
    expect(qr.status).toBe(201);
    await page.getByTestId('tab-pay').click();
    await page.locator('textarea[name=payload]').fill(qr.body.payload);
    await page.getByTestId('qr-decode').click();
    await page.getByTestId('qr-preview').waitFor();
    await expect.poll(() => page.getByTestId('offer-to-pay').textContent().catch(() => '')).toContain('36.00');
    await check(page, 'pay-coupon-en');
    expect(h.problems).toEqual([]);
  }, 300_000);

  it('the issuer desk shows insights over the bank’s own cards', async () => {
    const card = await cardInTwoWallets(t.hub, (as, method, path, body, headers) => (method === 'GET' ? t.api(as).get(path, headers) : method === 'PATCH' ? t.api(as).patch(path, body, headers) : t.api(as).post(path, body, headers)));
    expect((await t.api('bank-a').post('/v1/card-products/cpr_demo_bank_a_debit/reward-rules', { kind: 'points', pointsPerUnit: 1 }, key())).status).toBe(201);
    const qr = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'static' }, key());
    const paid = await t.api('wallet-b').post('/v1/wallet/payments/qr', { payload: qr.body.payload, amount: { amount: '12.30', currency: 'CNY' }, customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: 1230n, now: new Date() }), applyCoupon: false }, key());
    expect(paid.status).toBe(201);
    const merchantName = (await t.api('merchant-a').get(`/v1/merchants/${MERCHANT}`)).body.name as string;
    const desk = await h.context.newPage();
    await desk.setViewportSize(PHONE);
    await desk.goto(`${h.base}/issuer`);
    for (const lang of ['zh-CN', 'en'] as const) {
      await setLang(desk, lang);
      if (!(await desk.getByTestId('issuer-sign-out').isVisible().catch(() => false))) await desk.getByTestId('issuer-sign-in').click();
      const insights = desk.getByTestId('issuer-insights');
      await insights.waitFor();
      await expect.poll(() => insights.textContent()).toContain(merchantName);
      await check(desk, `issuer-insights-${lang}`);
    }
    await desk.close();
    // The cardholder's wallet shows the card's rewards (12 points for 12.30).
    await h.signIn('wallet-b', card.b.customerId);
    await page.getByTestId('tab-history').click();
    await page.getByTestId('tab-coupons').click();
    await expect.poll(() => page.getByTestId('card-rewards').textContent().catch(() => '')).toContain('12 points');
    await check(page, 'card-rewards-en');
    expect(h.problems).toEqual([]);
  }, 300_000);
});

import AxeBuilder from '@axe-core/playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyOfflinePayment } from '../../packages/sdk/src/index.ts';
import { openWebHarness, type WebHarness } from './support.ts';

/**
 * Offline payments in the reference wallet, in Chromium against a real listening hub: the customer loads an offline
 * balance (the hub reserves it for this browser's device key), the page goes offline (`context.setOffline(true)`) and
 * pays a shop with a token the device signs (no request leaves the page), the shop's terminal uploads the token once
 * the network is back, and the page, online again, shows it paid; the unspent balance is then taken back. Screenshots:
 * test-results/web/offline-*.png.
 */
let h: WebHarness;
const li = 'cus_demo_li_at_wallet_a';
const merchantA = 'mer_demo_merchant_a';

describe('offline payments in the wallet page', () => {
  beforeAll(async () => {
    h = await openWebHarness();
  }, 240_000);
  afterAll(async () => h?.close());

  it('pays while the page is offline, and the payment settles once the shop uploads it', async () => {
    const { page, t } = h;
    await h.signIn('wallet-a', li);
    await page.getByTestId('quick-offline').click();
    await page.locator('input[name=offline-load]').fill('50.00');
    await page.getByTestId('offline-load').click();
    await page.getByTestId('offline-balance').filter({ hasText: '50.00' }).waitFor({ timeout: 15_000 });
    await page.getByTestId('offline-reserved').filter({ hasText: '50.00' }).waitFor();
    const [purse] = await t.hub.db.query<{ id: string; status: string }>('select id, status from offline_purses where customer_id = $1', [li]);
    expect(purse?.status).toBe('active');

    // No network: the payment is made on the device alone.
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await h.context.setOffline(true);
    await page.locator('input[name=offline-merchant]').fill(merchantA);
    await page.locator('input[name=offline-amount]').fill('12.30');
    await page.getByTestId('offline-pay-submit').click();
    const row = page.getByTestId('offline-token').first();
    await row.waitFor();
    expect(await row.getAttribute('data-counter')).toBe('1');
    expect(await row.getAttribute('data-settled')).toBe('false');
    await page.getByTestId('offline-balance').filter({ hasText: '37.70' }).waitFor();
    expect(requests.filter((u) => u.includes('/v1/'))).toEqual([]);
    // Offline, the hub cannot be asked: a refresh fails, and nothing was settled yet.
    const token = await page.getByTestId('offline-token-text').first().inputValue();
    // The terminal, offline too, checks the hub's certificate the device showed and the token under the key it names.
    const certificate = await page.getByTestId('offline-certificate-text').first().inputValue();
    const hubKey = (await t.api('merchant-a').get('/v1/offline/certificate-key')).body.publicKey;
    expect(await verifyOfflinePayment(hubKey, certificate, token, Math.floor(Date.now() / 1000))).toMatchObject({ ok: true, claims: { ctr: 1, amt: '12.30', mer: merchantA } });
    expect((await t.hub.db.query('select id from offline_payments')).length).toBe(0);
    await h.shot('offline-paid-offline');

    // Back online: the shop's terminal uploads the token; the page shows it paid.
    await h.context.setOffline(false);
    const upload = await t.api('merchant-a').post('/v1/offline/payments', { merchantId: merchantA, token });
    expect(upload.status, JSON.stringify(upload.body)).toBe(201);
    expect(upload.body).toMatchObject({ counter: 1, amount: { amount: '12.30', currency: 'CNY' } });
    await page.getByTestId('offline-refresh').click();
    await page.locator('[data-testid=offline-token][data-settled=true]').waitFor({ timeout: 15_000 });
    await page.getByTestId('offline-reserved').filter({ hasText: '37.70' }).waitFor();
    const axe = await new AxeBuilder({ page }).include('main').analyze();
    expect(axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
    await h.shot('offline-settled');

    // The unspent balance goes back to the customer's account; the purse is closed (nothing outstanding).
    await page.getByTestId('offline-unload').click();
    await page.getByTestId('offline-pay').waitFor({ state: 'detached', timeout: 15_000 });
    const [after] = await t.hub.db.query<{ status: string; unloaded_minor: string }>('select status, unloaded_minor::text from offline_purses where id = $1', [purse?.id ?? '']);
    expect(after).toEqual({ status: 'closed', unloaded_minor: '3770' });
    expect(h.problems.filter((p) => !p.includes('ERR_INTERNET_DISCONNECTED'))).toEqual([]);
  });
});

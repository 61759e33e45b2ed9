import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWebHarness, type WebHarness } from './support.ts';
import { newDevice } from '../../src/demo/device.ts';

/**
 * Push provisioning end to end in Chromium: in the issuer desk the bank adds a card to a wallet for its cardholder;
 * the wallet page opened with the receipt adds it with no card data and no code, bound to the page's non-extractable
 * WebCrypto device key; the payment code then pays, and when its limited-use key is used up the page obtains the next
 * one with a request that key signs. A screenshot per step (test-results/web/push-*.png).
 */
let h: WebHarness;
const li = { walletA: 'cus_demo_li_at_wallet_a', bank: 'cus_demo_li_at_bank_a' };

describe('push provisioning from the issuer desk to the wallet page, in Chromium', () => {
  beforeAll(async () => {
    h = await openWebHarness();
  }, 180_000);
  afterAll(async () => h?.close());

  it('the bank pushes a card; the wallet adds it once, bound to the device; its keys are replenished by the device', async () => {
    const { t, base } = h;
    const bankA = t.api('bank-a');
    // One payment per key: the second payment code needs a key the device asks for.
    expect((await bankA.post('/v1/issuer/token-rules', { typed: 'step_up', byReference: 'step_up', newDevice: 'step_up', keyMaxTransactions: 1, keyTtlHours: 24 }, { 'idempotency-key': 'push-web-rules' })).status).toBe(200);
    const accounts = await bankA.get(`/v1/accounts?customerId=${li.bank}`);
    const funding = (accounts.body.items as { id: string; currency: string }[]).find((a) => a.currency === 'CNY');
    const issued = await bankA.post('/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: li.bank, fundingAccountId: funding?.id }, { 'idempotency-key': 'push-web-card' });
    expect(issued.status).toBe(201);
    const cardId: string = issued.body.card.id;
    expect((await bankA.post(`/v1/issuer/cards/${cardId}/activate`)).status).toBe(200);


    // The issuer desk: the card's detail, "add to a wallet".
    const desk = await h.context.newPage();
    desk.on('pageerror', (e) => h.problems.push(`issuer pageerror: ${e.message}`));
    await desk.goto(`${base}/issuer`);
    if (!(await desk.getByTestId('issuer-sign-out').isVisible().catch(() => false))) await desk.getByTestId('issuer-sign-in').click();
    const row = desk.locator(`[data-testid=issuer-card][data-card-id="${cardId}"]`);
    await row.getByTestId('card-tokens').click();
    const pushBox = row.getByTestId('push-to-wallet');
    await pushBox.waitFor();
    await pushBox.locator('select[name=push-wallet]').selectOption({ label: 'Lantern Pay 灯笼钱包' });
    expect(await pushBox.getByTestId('push-submit').isDisabled()).toBe(true);
    await pushBox.locator('input[name=push-consent]').check();
    await pushBox.getByTestId('push-submit').click();
    await pushBox.getByTestId('push-ready').waitFor({ timeout: 15_000 });
    await desk.screenshot({ path: 'test-results/web/push-1-issuer-desk.png', fullPage: true });
    const href = (await pushBox.getByTestId('push-open').getAttribute('href')) ?? '';
    expect(href).toMatch(/^\/wallet#push=ppr_/);
    const receipt = decodeURIComponent(href.split('#push=')[1] ?? '');

    // "Open in the wallet": the bank's app opens the wallet app (a new tab here), with the receipt; no card data, no code.
    const [wallet] = await Promise.all([h.context.waitForEvent('page'), pushBox.getByTestId('push-open').click()]);
    wallet.on('pageerror', (e) => h.problems.push(`wallet pageerror: ${e.message}`));
    wallet.on('console', (m) => {
      if (m.type() === 'error') h.problems.push(`wallet console.error: ${m.text()}`);
    });
    const page = wallet;
    // The receipt leaves the address bar at once, and waits for the customer to sign in (a session is per tab).
    await page.locator('select[name=wallet]').waitFor();
    expect(page.url()).not.toContain('push=');
    await page.locator('select[name=wallet]').selectOption('wallet-a');
    await page.locator('select[name=customer]').selectOption(li.walletA);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('push-offer').waitFor();
    await page.locator('input[name=consent]').check();
    await page.getByTestId('add-submit').click();
    await page.getByTestId('card-added').waitFor({ timeout: 15_000 });
    await page.screenshot({ path: 'test-results/web/push-2-wallet-added.png', fullPage: true });

    const mine = (await t.api('wallet-a').get(`/v1/wallet/tokens?customerId=${li.walletA}`)).body.items as { tokenRef: string; deviceBound: boolean; status: string }[];
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ deviceBound: true, status: 'active' });
    // The device's private key is a non-extractable WebCrypto key kept in IndexedDB.
    const extractable = await page.evaluate(`new Promise((resolve, reject) => {
      const open = indexedDB.open('hutong-device', 1);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const get = open.result.transaction('keys', 'readonly').objectStore('keys').get('device-key-v1');
        get.onsuccess = () => resolve(get.result ? [get.result.privateKey.extractable, get.result.privateKey.algorithm.namedCurve] : null);
        get.onerror = () => reject(get.error);
      };
    })`);
    expect(extractable).toEqual([false, 'P-256']);
    // A receipt is good once.
    const again = await t.api('wallet-a').post('/v1/wallet/tokens', { customerId: li.walletA, consent: true, devicePublicKey: newDevice().publicKey, source: { type: 'push_receipt', receipt } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('push_receipt_used');

    // The payment code pays; the next one needs the next key, which the page obtains with the device's signature.
    const merchantId = (await t.api('merchant-a').get('/v1/merchants')).body.items[0].id as string;
    await page.getByTestId('tab-pay').click();
    const code = page.getByTestId('payment-code');
    await code.getByTestId('cpm-qr').waitFor();
    await code.locator('summary').click();
    const shown = code.getByTestId('cpm-payload');
    await shown.waitFor();
    const first = (await shown.textContent()) ?? '';
    const paid = await t.api('merchant-a').post(`/v1/merchants/${merchantId}/payments/cpm`, { payload: first, amount: { amount: '3.00', currency: 'CNY' } }, { 'idempotency-key': 'push-web-cpm-1' });
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    const firstAtc = Number(await shown.getAttribute('data-atc'));
    await code.getByTestId('cpm-refresh').click();
    await expect.poll(async () => Number(await shown.getAttribute('data-atc')), { timeout: 15_000 }).toBeGreaterThan(firstAtc);
    const second = (await shown.textContent()) ?? '';
    const paidAgain = await t.api('merchant-a').post(`/v1/merchants/${merchantId}/payments/cpm`, { payload: second, amount: { amount: '4.00', currency: 'CNY' } }, { 'idempotency-key': 'push-web-cpm-2' });
    expect(paidAgain.status, JSON.stringify(paidAgain.body)).toBe(201);
    await page.screenshot({ path: 'test-results/web/push-3-wallet-paid.png', fullPage: true });

    // The bank sees the two keys and their use.
    const entries = (await bankA.get(`/v1/issuer/cards/${cardId}/tokens`)).body.items as { id: string }[];
    const keys = (await bankA.get(`/v1/issuer/cards/${cardId}/tokens/${entries[0]?.id ?? ''}/keys`)).body.items as { keyCounter: number; uses: number }[];
    expect(keys.map((k) => [k.keyCounter, k.uses])).toEqual([
      [2, 1],
      [1, 1],
    ]);
    await desk.close();
    expect(h.problems).toEqual([]);
  }, 300_000);
});

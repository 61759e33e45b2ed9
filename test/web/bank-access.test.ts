import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectReferenceBank, CONNECTED_BANK, CONNECTED_CUSTOMERS } from '../../src/demo/bank/connect.ts';
import { createReferenceBank, type ReferenceBank } from '../../src/demo/bank/reference-bank.ts';
import { openWebHarness, type WebHarness } from './support.ts';

/**
 * The wallet page links a bank account by the bank's consent, in Chromium against a real hub and the reference bank
 * (its own books, listening on loopback): the customer starts in "Me", approves on the bank's own page with the
 * account's passcode, comes back to the wallet, reads the balance the bank states, tops up from it and withdraws to it,
 * and revokes; in English and in Chinese. Any page error or console error fails the step; a screenshot per step (test-results/web/bank-access-*.png).
 */
let h: WebHarness;
let bank: ReferenceBank;
const li = 'cus_demo_li_at_wallet_a';
const wang = CONNECTED_CUSTOMERS[0]!;

/** The customer links wang's account at the bank: start in the wallet, approve at the bank, back in the wallet. */
const linkAtBank = async () => {
  const { page } = h;
  await page.getByTestId('tab-me').click();
  const section = page.getByTestId('bank-access');
  const select = section.locator('select[name=bank-access-bank]');
  const value = await select.locator('option', { hasText: CONNECTED_BANK.name }).getAttribute('value');
  await select.selectOption(value ?? '');
  await section.getByTestId('bank-access-start').click();
  // The bank's own page: sign in with the account and its passcode, approve.
  await page.waitForURL((url) => url.toString().startsWith(`${bank.url()}/oauth/authorize`));
  await h.shot('bank-access-2-bank-page');
  await page.locator('input[name=account]').fill(wang.bankAccount);
  await page.locator('input[name=passcode]').fill(wang.passcode);
  await page.getByRole('button', { name: 'Approve' }).click();
  // Back in the wallet, which hands the code to the hub.
  await page.waitForURL((url) => url.toString().startsWith(`${h.base}/wallet`));
  await page.getByTestId('bank-access-linked').waitFor({ timeout: 15_000 });
  expect(new URL(page.url()).search).toBe('');
};

describe('linking a bank account by the bank’s consent in the wallet page (Chromium)', () => {
  beforeEach(() => {
    h.problems.length = 0;
  });
  beforeAll(async () => {
    h = await openWebHarness();
    bank = await createReferenceBank({ hubPublicJwk: await h.t.hub.connectors.publicJwk(), name: CONNECTED_BANK.name });
    await bank.listen(0);
    await connectReferenceBank(h.t.hub, bank, { deadlineMs: 5_000 });
  }, 180_000);
  afterAll(async () => {
    await h?.close();
    await bank?.close();
  });

  it('links at the bank’s page, shows the balance the bank states, tops up and withdraws, and revokes: the bank sees it revoked', async () => {
    const { page } = h;
    await h.signIn('wallet-a', li);
    await h.shot('bank-access-1-me');
    await linkAtBank();
    const consent = h.page.getByTestId('bank-access-consent').first();
    await expect(consent.getAttribute('data-status')).resolves.toBe('active');
    await consent.getByTestId('bank-access-read').click();
    const expected = (Number((await bank.balance(wang.bankAccount))!) / 100).toFixed(2);
    const shown = (await consent.getByTestId('bank-access-balance').textContent({ timeout: 15_000 })) ?? '';
    expect(shown.replace(/[^0-9.·]/g, '').split('·')[0]).toBe(expected);
    await h.shot('bank-access-3-balance');
    // Top up from the bank account, then withdraw part of it back: the bank's books and the wallet account move.
    const liAccount = `acc_${li}_CNY`;
    const hubBalance = async () => {
      const r = await h.t.hub.transfers.ledger.getAccount(liAccount);
      if (!r.ok) throw new Error(r.error.code);
      return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
    };
    const [hub0, bank0] = [await hubBalance(), (await bank.balance(wang.bankAccount))!];
    await consent.locator('input[name=bank-access-amount]').fill('12.00');
    await consent.getByTestId('bank-access-top-up').click();
    await page.getByTestId('bank-access-moved').waitFor({ timeout: 15_000 });
    expect(await hubBalance()).toBe(hub0 + 1200n);
    await consent.locator('input[name=bank-access-amount]').fill('2.00');
    await consent.getByTestId('bank-access-withdraw').click();
    await expect(page.getByTestId('bank-access-moved').textContent({ timeout: 15_000 })).resolves.toBe('Withdrawn to your bank account.');
    expect(await hubBalance()).toBe(hub0 + 1000n);
    for (let i = 0; i < 50 && (await bank.balance(wang.bankAccount)) !== bank0 - 1000n; i++) {
      await h.t.hub.connectors.deliverDue();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await bank.balance(wang.bankAccount)).toBe(bank0 - 1000n);
    await h.shot('bank-access-3b-moved');
    await consent.getByTestId('bank-access-revoke').click();
    await page.locator('[data-testid=bank-access-consent][data-status=revoked]').first().waitFor({ timeout: 15_000 });
    await expect(page.locator('[data-testid=bank-access-consent][data-status=revoked]').first().getByTestId('bank-access-status').textContent()).resolves.toBe('revoked in this wallet');
    // The hub gave the grant back at the bank.
    const [atBank] = await bank.db.query<{ status: string }>('select status from ob_consents order by created_at desc limit 1');
    expect(atBank?.status).toBe('revoked');
    await h.shot('bank-access-4-revoked');
    expect(h.problems).toEqual([]);
  });

  it('in Chinese: a consent revoked at the bank shows as such once the wallet reads the balance', async () => {
    const { page } = h;
    await linkAtBank();
    const [granted] = await bank.db.query<{ id: string }>(`select id from ob_consents where status = 'active' order by created_at desc limit 1`);
    const revoked = await fetch(`${bank.url()}/ob/consents/${granted!.id}/revoke?account=${wang.bankAccount}`, { method: 'POST', headers: { 'x-customer-passcode': wang.passcode } });
    expect(revoked.status).toBe(200);
    await page.getByTestId('lang-switch').first().click();
    await page.getByText('经银行授权的银行账户').waitFor();
    const active = page.locator('[data-testid=bank-access-consent][data-status=active]').first();
    await active.getByTestId('bank-access-read').click();
    // The bank refused the grant: the page says so in Chinese, and the consent shows revoked at the bank.
    const alert = page.getByTestId('bank-access').locator('[data-code=consent_revoked]');
    await expect(alert.textContent({ timeout: 15_000 })).resolves.toContain('撤销');
    await page.getByTestId('bank-access').getByText('已在银行撤销').first().waitFor({ timeout: 15_000 });
    await h.shot('bank-access-5-revoked-at-bank-zh');
    expect(h.problems.filter((p) => !p.includes('403'))).toEqual([]);
  });
});

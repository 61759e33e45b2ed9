import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { openSentCode } from '../../src/platform/sent-codes.ts';
import { checkView, openWebHarness, type WebHarness } from './support.ts';

/**
 * The wallet's top-up and withdrawal, through the UI like a person, in Debian's Chromium against a real hub: 李伟 links
 * his bank account, tops up his wallet from it and withdraws to it (asked first), in English and in Chinese; the hub's
 * books show each movement. axe (no serious or critical violation) on each view; screenshots test-results/web/cash-*.png.
 */
declare const localStorage: { setItem(key: string, value: string): void };

let h: WebHarness;
const li = { walletA: 'cus_demo_li_at_wallet_a', bank: 'cus_demo_li_at_bank_a' };

async function check(p: Page, name: string) {
  await checkView(p, `cash-${name}`, { overflow: false });
}

describe('top-up and withdrawal in the wallet page in Chromium', () => {
  beforeAll(async () => {
    h = await openWebHarness();
  }, 180_000);
  afterAll(async () => h?.close());

  it('tops up from a linked bank account and withdraws to it, asked first; the hub moved the money; in English and Chinese', async () => {
    const { page, t } = h;
    const consent = await t.api('wallet-a').post('/v1/account-links', { customerId: li.walletA, bankParticipantId: 'par_demo_bank_a' }, { 'idempotency-key': 'cash-page-link' });
    expect(consent.status).toBe(201);
    const linked = await t.api('wallet-a').post(`/v1/account-links/consents/${consent.body.id as string}/confirm`, { code: await openSentCode(t.hub, 'account_link.consent_requested', consent.body.id) });
    expect(linked.status).toBe(201);
    const cnyLink = (linked.body.items as { id: string; accountId: string }[]).find((l) => l.accountId.endsWith('_CNY'));
    const balance = async (id: string) => (await t.hub.db.query<{ b: bigint }>('select credits_posted - debits_posted as b from ledger_accounts where id = $1', [id]))[0]?.b ?? 0n;
    const walletAcc = `acc_${li.walletA}_CNY`;
    const before = await balance(walletAcc);

    await h.signIn('wallet-a', li.walletA);
    await page.getByTestId('tab-me').click();
    const cash = page.getByTestId('cash');
    await cash.waitFor();
    await cash.locator('select[name=cash-link]').selectOption(cnyLink!.id);
    await cash.locator('select[name=cash-kind]').selectOption('top_up');
    await cash.locator('input[name=cash-amount]').fill('12.34');
    await cash.getByTestId('cash-submit').click();
    expect(await cash.getByTestId('cash-confirm-text').textContent()).toContain('12.34 CNY');
    await check(page, 'confirm-en');
    await cash.getByTestId('cash-yes').click();
    await cash.getByTestId('cash-done').waitFor({ timeout: 15_000 });
    expect(await cash.getByTestId('cash-done').textContent()).toContain('Topped up');
    expect(await balance(walletAcc)).toBe(before + 12_34n);
    await expect.poll(() => cash.locator('[data-testid=cash-movement][data-kind=top_up]').count()).toBe(1);
    await check(page, 'done-en');

    // In Chinese, a withdrawal.
    await page.evaluate(() => localStorage.setItem('hutong.lang', 'zh-CN'));
    await page.reload();
    await page.getByTestId('tab-me').click();
    await cash.waitFor();
    expect(await cash.locator('h3').textContent()).toBe('充值或提现');
    await cash.locator('select[name=cash-link]').selectOption(cnyLink!.id);
    await cash.locator('select[name=cash-kind]').selectOption('withdrawal');
    await cash.locator('input[name=cash-amount]').fill('2.34');
    await cash.getByTestId('cash-submit').click();
    expect(await cash.getByTestId('cash-confirm-text').textContent()).toContain('提现 2.34 CNY');
    await cash.getByTestId('cash-yes').click();
    await cash.getByTestId('cash-done').waitFor({ timeout: 15_000 });
    expect(await cash.getByTestId('cash-done').textContent()).toContain('已提现');
    expect(await balance(walletAcc)).toBe(before + 10_00n);
    await expect.poll(() => cash.getByTestId('cash-movement').count()).toBe(2);
    await check(page, 'done-zh-CN');

    // More than the wallet account holds: the hub's refusal in the page's language, nothing moved.
    await cash.locator('input[name=cash-amount]').fill('999999.00');
    await cash.getByTestId('cash-submit').click();
    await cash.getByTestId('cash-yes').click();
    await cash.locator('[role=alert]').waitFor({ timeout: 15_000 });
    expect(await balance(walletAcc)).toBe(before + 10_00n);
    expect(h.problems.filter((p) => !p.includes('422'))).toEqual([]);
  });
});

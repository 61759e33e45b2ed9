import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestHub } from '../support/hub.ts';
import { SHOTS, checkView, openWebHarness, setPageLang, type WebHarness } from './support.ts';

/**
 * A customer's golden path on a phone (390×844), in 中文 and in English, clicked through in Chromium against a real
 * listening hub: sign in → see the balance → pay a merchant's QR → pay a friend (P2P) → find both in the history. At
 * every step: axe finds no serious or critical violation, nothing is wider than the screen (scrollWidth), and every
 * control on screen (buttons, links, fields, selects) is at least 44×44 px. Screenshots: test-results/web/golden-*.png,
 * axe counts in test-results/web/golden-axe.json.
 */
let h: WebHarness;
let t: TestHub;
let base = '';
let page: Page;
let problems: string[] = [];
const axeCounts: Record<string, number> = {};

type Lang = 'en' | 'zh-CN';
declare const document: { documentElement: { scrollWidth: number; clientWidth: number }; querySelectorAll(s: string): ArrayLike<Target> };
declare const getComputedStyle: (e: Target) => { visibility: string; display: string };
interface Target {
  getBoundingClientRect(): { width: number; height: number };
  getAttribute(name: string): string | null;
  tagName: string;
  textContent: string | null;
  closest(s: string): unknown;
}

const PHONE = { width: 390, height: 844 };
const MIN_TARGET = 44;

/** Controls smaller than 44×44 px (hidden ones and checkboxes/radios, whose label is the target, aside). */
async function targets(p: Page): Promise<{ measured: number; small: string[] }> {
  return p.evaluate((min) => {
    const found: string[] = [];
    let measured = 0;
    const all = document.querySelectorAll('button, a[href], input:not([type=checkbox]):not([type=radio]):not([type=hidden]), select, textarea, summary, [role=button]');
    for (let i = 0; i < all.length; i++) {
      const e = all[i];
      if (e === undefined) continue;
      const r = e.getBoundingClientRect();
      const style = getComputedStyle(e);
      if (r.width === 0 || r.height === 0 || style.visibility === 'hidden' || style.display === 'none') continue;
      measured++;
      if (r.width < min || r.height < min) found.push(`${e.tagName.toLowerCase()}[${e.getAttribute('data-testid') ?? e.getAttribute('name') ?? (e.textContent ?? '').trim().slice(0, 20)}] ${Math.round(r.width)}×${Math.round(r.height)}`);
    }
    return { measured, small: found };
  }, MIN_TARGET);
}

async function check(p: Page, name: string) {
  axeCounts[name] = await checkView(p, `golden-${name}`);
  const measured = await targets(p);
  expect(measured.small, `tap targets under 44 px on ${name}`).toEqual([]);
  // The sign-in form has its two selects and a button, every other view the top bar and the five tabs at least.
  expect(measured.measured, `controls measured on ${name}`).toBeGreaterThanOrEqual(3);
}

const setLang = (p: Page, lang: Lang) => setPageLang(p, lang);

describe('a customer’s golden path at 390×844, in 中文 and English', () => {
  beforeEach(() => {
    problems.length = 0;
  });
  beforeAll(async () => {
    h = await openWebHarness();
    ({ t, base, page, problems } = h);
    await page.setViewportSize(PHONE);
  }, 180_000);
  afterAll(async () => {
    writeFileSync(join(SHOTS, 'golden-axe.json'), `${JSON.stringify(axeCounts, null, 2)}\n`);
    await h?.close();
  });

  const words = {
    'zh-CN': { available: '可用', paid: '已付款', sent: '已转账' },
    en: { available: 'Available', paid: 'Paid', sent: 'Sent' },
  } as const;

  for (const [i, lang] of (['zh-CN', 'en'] as const).entries()) {
    it(`sign in → balance → pay a QR → pay a friend → history (${lang})`, async () => {
      const amounts = { qr: i === 0 ? '23.40' : '31.70', p2p: i === 0 ? '12.00' : '15.50' };
      await page.goto(`${base}/wallet`);
      await setLang(page, lang);
      if (await page.getByTestId('sign-out').isVisible().catch(() => false)) await page.getByTestId('sign-out').click();
      await page.getByTestId('sign-in').waitFor();
      await page.locator('select[name=customer] option').first().waitFor({ state: 'attached' });
      await check(page, `signin-${lang}`);

      // Sign in, and the balance is the first thing on screen.
      await page.locator('select[name=wallet]').selectOption('wallet-a');
      await page.locator('select[name=customer]').selectOption('cus_demo_li_at_wallet_a');
      await page.getByTestId('sign-in').click();
      const figure = page.getByTestId('balances').locator('.figure[data-currency=CNY]');
      await figure.waitFor();
      const before = Number(((await figure.textContent()) ?? '').replace(/[^0-9.]/g, ''));
      expect(before).toBeGreaterThan(0);
      expect(await page.getByTestId('balances').textContent()).toContain(words[lang].available);
      expect((await figure.boundingBox())?.y ?? 1000).toBeLessThan(PHONE.height / 2);
      await check(page, `home-${lang}`);

      // A merchant's dynamic QR (made at the counter's API), pasted as a scan would read it, paid from the account.
      const merchants = await t.api('merchant-a').get('/v1/merchants');
      const merchantId = merchants.body.items[0].id as string;
      const qr = await t.api('merchant-a').post(`/v1/merchants/${merchantId}/qr-codes`, { kind: 'dynamic', amount: amounts.qr, billNumber: `GOLD-${lang}` }, { 'idempotency-key': `golden-qr-${lang}` });
      expect(qr.status).toBe(201);
      await page.getByTestId('quick-scan').click();
      await page.getByTestId('receive-qr').waitFor();
      await check(page, `pay-${lang}`);
      await page.locator('textarea[name=payload]').fill(qr.body.payload);
      await page.getByTestId('qr-decode').click();
      await page.getByTestId('qr-preview').waitFor();
      const source = page.locator('[data-testid=qr-preview] select[name=source]');
      const account = await source.locator('option').filter({ hasText: /Lantern/ }).first().getAttribute('value');
      await source.selectOption(account ?? '');
      await check(page, `qr-preview-${lang}`);
      await page.getByTestId('qr-pay').click();
      const paid = page.getByTestId('qr-paid');
      await paid.waitFor({ timeout: 15_000 });
      expect(await paid.textContent()).toContain(words[lang].paid);
      expect(await paid.textContent()).toContain(amounts.qr);
      await check(page, `qr-paid-${lang}`);

      // Pay a friend by her handle: the masked name first, then the quote, then the payment.
      await page.getByTestId('tab-transfer').click();
      const send = page.getByTestId('send-money');
      await send.locator('input[name=send-alias]').fill('zhangmin');
      await page.getByTestId('send-lookup').click();
      await page.getByTestId('payee').waitFor();
      await send.locator('input[name=send-amount]').fill(amounts.p2p);
      await page.getByTestId('send-quote').click();
      await page.getByTestId('send-quote-details').waitFor();
      await check(page, `p2p-quote-${lang}`);
      await page.getByTestId('send-confirm').click();
      const sent = page.getByTestId('sent');
      await sent.waitFor({ timeout: 15_000 });
      expect(await sent.textContent()).toContain(words[lang].sent);
      await check(page, `p2p-sent-${lang}`);

      // The history: both payments, newest first, with the amounts and statuses in words.
      await page.getByTestId('tab-history').click();
      const rows = page.locator('[data-testid=history-row]');
      await rows.first().waitFor();
      await expect.poll(async () => (await rows.allTextContents()).join('\n')).toContain(amounts.p2p);
      const text = (await rows.allTextContents()).join('\n');
      expect(text).toContain(amounts.qr);
      expect(await page.locator('[data-testid=history-row][data-kind=merchant]').count()).toBeGreaterThan(0);
      expect(await page.locator('[data-testid=history-row][data-kind=transfer]').count()).toBeGreaterThan(0);
      expect(text).not.toMatch(/\b(completed|captured|posted|authorized)\b/);
      await check(page, `history-${lang}`);

      // And the balance went down by what was paid (QR and P2P; this demo charges no fee between these wallets or less).
      await page.getByTestId('tab-home').click();
      await figure.waitFor();
      const after = Number(((await figure.textContent()) ?? '').replace(/[^0-9.]/g, ''));
      expect(after).toBeLessThanOrEqual(before - Number(amounts.qr) - Number(amounts.p2p) + 0.001);
      expect(problems).toEqual([]);
    }, 300_000);
  }
});

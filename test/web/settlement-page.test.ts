import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import AxeBuilder from '@axe-core/playwright';
import type { Page } from 'playwright-core';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { openWebHarness, type WebHarness } from './support.ts';

/**
 * The console's settlement page in Chromium, clicked like an operator: payments between the demo wallets, the open CNY
 * window closed from the page (with a confirmation), its net positions as a table and a chart (summing to zero, the
 * same values as the API), a participant's camt.053 downloaded, the settlement recorded, and a participant's
 * positions; axe (WCAG 2.x A/AA) finds no serious or critical violation, in English and 中文.
 */
/** The little of the browser's globals used inside page.evaluate (the Node tsconfig has no DOM lib). */
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };
let h: WebHarness;
let page: Page;
let n = 0;
const key = () => ({ 'idempotency-key': `stl-page-${++n}` });

async function axe(p: Page, where: string) {
  await p.waitForTimeout(150);
  const result = await new AxeBuilder({ page: p }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.id}: ${v.nodes.map((x) => x.target.join(' ')).slice(0, 3).join(' | ')}`), `axe on ${where}`).toEqual([]);
}

describe('the console settlement page in Chromium', () => {
  beforeAll(async () => {
    h = await openWebHarness();
    page = h.page;
    const pay = async (as: string, customer: string, handle: string, amount: string) => {
      const q = await h.t.api(as).post('/v1/transfers/quotes', { customerId: demoCustomerId(customer), payee: { type: 'handle', value: handle }, sendAmount: { amount, currency: 'CNY' } }, key());
      expect(q.status).toBe(201);
      expect((await h.t.api(as).post('/v1/transfers/payments', { quoteId: q.body.id }, key())).status).toBe(201);
    };
    await pay('wallet-a', 'li-at-wallet-a', 'zhangmin', '120.00');
    await pay('wallet-b', 'zhang-at-wallet-b', 'liwei', '20.00');
  }, 120_000);
  afterAll(async () => h?.close());

  it('closes the CNY window, shows net positions (table and chart), downloads a camt.053, records the settlement', async () => {
    await h.consoleSignIn();
    await page.getByTestId('tab-settlement').click();
    const open = page.locator('[data-testid=settlement-window-row][data-status=open]', { hasText: 'CNY' });
    await open.first().waitFor();
    await axe(page, 'settlement (en)');
    await h.shot('settlement-1-windows');

    await page.locator('input[name=close-currency]').fill('CNY');
    await page.getByTestId('settlement-close').click();
    await page.getByTestId('settlement-close-yes').click();
    const status = page.getByTestId('settlement-report-status');
    await expect.poll(async () => status.textContent()).toBe('Closed, awaiting settlement');
    const rows = page.getByTestId('settlement-net-row');
    await rows.first().waitFor();
    const nets = await rows.evaluateAll((els) => els.map((e) => ({ id: e.getAttribute('data-participant-id') ?? '', net: e.getAttribute('data-net') ?? '' })));
    const minor = (s: string) => BigInt(s.replace('.', ''));
    expect(nets.reduce((s, x) => s + minor(x.net), 0n)).toBe(0n);
    expect(nets.find((x) => x.id === demoParticipantId('wallet-a'))?.net).toBe('-100.00');
    expect(nets.find((x) => x.id === demoParticipantId('wallet-b'))?.net).toBe('100.00');
    // The page shows what the API answers for the same window.
    const windowId = (await page.getByTestId('settlement-report').getAttribute('aria-label'))?.split(' · ')[1] ?? '';
    const api = await h.t.api('operator').get(`/v1/operator/settlement/windows/${windowId}`);
    expect(api.body.netPositions.map((p: { participantId: string; netPosition: { amount: string } }) => ({ id: p.participantId, net: p.netPosition.amount }))).toEqual(nets);
    const bars = await page.getByTestId('settlement-chart-bar').evaluateAll((els) => els.map((e) => e.getAttribute('data-net')));
    expect(bars).toEqual(nets.map((x) => x.net));
    expect(await page.getByTestId('settlement-instruction-row').count()).toBe(1);
    await axe(page, 'settlement report (en)');
    await h.shot('settlement-2-closed');

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator(`[data-testid=settlement-net-row][data-participant-id=${demoParticipantId('wallet-a')}] [data-testid=download-camt053]`).click()]);
    const path = await download.path();
    const xml = readFileSync(path, 'utf8');
    expect(xml).toContain('camt.053.001.08');
    expect(xml).toContain('<Amt Ccy="CNY">120.00</Amt>');

    await page.locator('input[name=settlement-reference]').fill('SBK-PAGE-1');
    await page.getByTestId('settlement-record').click();
    await expect.poll(async () => status.textContent()).toBe('Settled');
    expect((await h.t.api('operator').get(`/v1/operator/settlement/windows/${windowId}`)).body.window).toMatchObject({ status: 'settled', settlementReference: 'SBK-PAGE-1' });

    // A participant's positions.
    await page.locator('select[name=positions-participant]').selectOption(demoParticipantId('wallet-a'));
    await page.locator('[data-testid=position-row][data-currency=CNY]').waitFor();
    await h.shot('settlement-3-settled');

    await page.getByTestId('lang-switch').click();
    await expect.poll(async () => status.textContent()).toBe('已结算');
    await axe(page, 'settlement (zh)');
    await h.shot('settlement-4-zh');
    // On a phone (360 px): still clean, and nothing wider than the screen.
    await page.setViewportSize({ width: 360, height: 780 });
    await axe(page, 'settlement (zh, 360 px)');
    const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    expect(widths.scroll, 'horizontal overflow at 360 px').toBeLessThanOrEqual(widths.client);
    await h.shot('settlement-5-phone');
    expect(h.problems).toEqual([]);
  }, 180_000);
});

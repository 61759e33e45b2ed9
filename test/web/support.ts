import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect } from 'vitest';
import AxeBuilder from '@axe-core/playwright';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { systemClock } from '../../src/platform/clock.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * The browser harness of the page tests (the same set-up as pages.test.ts): a real listening hub with the demo network,
 * Debian's Chromium through playwright-core with a fresh --user-data-dir, page errors and console errors collected,
 * full-page screenshots under test-results/web/.
 */
export const CHROMIUM = '/usr/bin/chromium';
export const SHOTS = resolve('test-results/web');
const DIST = resolve('web/dist/wallet/index.html');

export interface WebHarness {
  readonly t: TestHub;
  readonly base: string;
  readonly context: BrowserContext;
  readonly page: Page;
  /** Page errors and console errors since the last `problems.length = 0`. */
  readonly problems: string[];
  shot(name: string): Promise<void>;
  signIn(wallet: string, customerId: string): Promise<void>;
  addCard(fill: () => Promise<void>): Promise<void>;
  /** In "Me", links the signed-in customer's record at another bank or wallet (by its name), with the demo code. */
  linkRecordAt(participantName: string): Promise<void>;
  consoleSignIn(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `extraArgs` adds Chromium switches (a fake camera: --use-fake-device-for-media-stream …).
 * `host: 'localhost'` loads the pages from http://localhost:<port> (the hub still listens on 127.0.0.1): the origin
 * WebAuthn passkeys are bound to (the hub's relying-party id defaults to localhost).
 */
export async function openWebHarness(options: { host?: 'localhost' | '127.0.0.1'; extraArgs?: readonly string[] } = {}): Promise<WebHarness> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
  if (!existsSync(DIST)) execFileSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts'], { stdio: 'inherit' });
  mkdirSync(SHOTS, { recursive: true });
  const t = await startTestHub('pglite', { clock: systemClock, config: { port: 0, host: '127.0.0.1' } });
  const listening = (await t.hub.listen()).replace('[::1]', '127.0.0.1');
  const base = options.host === 'localhost' ? listening.replace('127.0.0.1', 'localhost') : listening;
  const userDataDir = mkdtempSync(join(tmpdir(), 'hutong-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...(options.extraArgs ?? [])],
    locale: 'en-US',
    viewport: { width: 1200, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.error: ${m.text()} ${m.location().url}`);
  });

  const shot = async (name: string) => {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const signIn = async (wallet: string, customerId: string) => {
    await page.goto(`${base}/wallet`);
    if (await page.getByTestId('sign-out').isVisible().catch(() => false)) await page.getByTestId('sign-out').click();
    await page.locator('select[name=wallet]').selectOption(wallet);
    await page.locator('select[name=customer]').selectOption(customerId);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('who').waitFor();
  };
  const addCard = async (fill: () => Promise<void>) => {
    await page.getByTestId('tab-add').click();
    await fill();
    await page.locator('input[name=consent]').check();
    await page.getByTestId('add-submit').click();
    const code = (await page.getByTestId('demo-code').textContent({ timeout: 15_000 })) ?? '';
    expect(code).toMatch(/^[0-9]{6}$/);
    await page.locator('input[name=code]').fill(code);
    await page.getByTestId('code-submit').click();
    await page.getByTestId('card-added').waitFor({ timeout: 15_000 });
  };
  const linkRecordAt = async (participantName: string) => {
    await page.getByTestId('tab-me').click();
    const links = page.getByTestId('customer-links');
    const select = links.locator('select[name=link-participant]');
    const value = await select.locator('option', { hasText: participantName }).getAttribute('value');
    await select.selectOption(value ?? '');
    await links.getByTestId('link-request').click();
    const code = (await links.getByTestId('link-demo-code').textContent({ timeout: 15_000 })) ?? '';
    expect(code).toMatch(/^[0-9]{6}$/);
    await links.locator('input[name=link-code]').fill(code);
    await links.getByTestId('link-confirm').click();
    await links.getByTestId('link-made').waitFor({ timeout: 15_000 });
  };
  const consoleSignIn = async () => {
    await page.goto(`${base}/console`);
    if (await page.getByTestId('tab-participants').isVisible().catch(() => false)) return;
    await page.locator('input[name=operatorToken]').fill(t.hub.operatorToken);
    await page.getByTestId('console-sign-in').click();
    await page.getByTestId('tab-participants').waitFor();
  };
  return {
    t,
    base,
    context,
    page,
    problems,
    shot,
    signIn,
    addCard,
    linkRecordAt,
    consoleSignIn,
    async close() {
      await context.close();
      await t.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** The little of the browser's globals these checks use inside page.evaluate (the Node tsconfig has no DOM lib). */
declare const localStorage: { setItem(key: string, value: string): void };
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };

/** The pages' language, as a person picks it (kept in the browser's storage), applied by a reload. */
export async function setPageLang(p: Page, lang: 'en' | 'zh-CN'): Promise<void> {
  await p.evaluate((l) => localStorage.setItem('hutong.lang', l), lang);
  await p.reload();
}

/**
 * What every view is checked for: axe (WCAG 2.x A and AA: no serious or critical violation), no horizontal overflow at
 * the viewport (unless `overflow: false`), and a full-page screenshot `test-results/web/<file>.png`. Answers the number
 * of serious or critical violations (0 when the check passed), for the axe counts a test writes out.
 */
export async function checkView(p: Page, file: string, options: { overflow?: boolean } = {}): Promise<number> {
  await p.waitForTimeout(150);
  const result = await new AxeBuilder({ page: p }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(' | ')}`), `axe on ${file}`).toEqual([]);
  if (options.overflow !== false) {
    const widths = await p.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    expect(widths.scroll, `horizontal overflow on ${file}`).toBeLessThanOrEqual(widths.client);
  }
  await p.screenshot({ path: join(SHOTS, `${file}.png`), fullPage: true });
  return bad.length;
}

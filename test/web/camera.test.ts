import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import QRCode from 'qrcode';
import { SHOTS, openWebHarness, type WebHarness } from './support.ts';

/**
 * Scan-to-pay by camera: Chromium's fake camera (--use-fake-device-for-media-stream, --use-file-for-fake-video-capture)
 * plays a Y4M video of a merchant's dynamic QR; the wallet's scanner (getUserMedia, decoded by jsQR) reads it and shows
 * the payment, which the customer pays. Screenshots: test-results/web/camera-*.png.
 */
const W = 480;
const H = 480;

/** A still Y4M video (4:2:0, a few identical frames) of a QR code, black on white, centred. */
function qrVideo(text: string, file: string): void {
  const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
  const n = qr.modules.size;
  const scale = Math.floor((Math.min(W, H) - 64) / (n + 8));
  const size = scale * (n + 8);
  const x0 = Math.floor((W - size) / 2) + 4 * scale;
  const y0 = Math.floor((H - size) / 2) + 4 * scale;
  const y = Buffer.alloc(W * H, 235);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++)
      if (qr.modules.get(r, c) === 1)
        for (let dy = 0; dy < scale; dy++) y.fill(16, (y0 + r * scale + dy) * W + x0 + c * scale, (y0 + r * scale + dy) * W + x0 + (c + 1) * scale);
  const chroma = Buffer.alloc((W / 2) * (H / 2) * 2, 128);
  const frame = Buffer.concat([Buffer.from('FRAME\n'), y, chroma]);
  writeFileSync(file, Buffer.concat([Buffer.from(`YUV4MPEG2 W${W} H${H} F10:1 Ip A1:1 C420jpeg\n`), frame, frame, frame, frame, frame]));
}

describe('scan-to-pay with the camera', () => {
  let h: WebHarness;
  let payload = '';
  beforeAll(async () => {
    // The fake camera reads its file when Chromium starts, so the code is issued first (on the harness's hub), and the
    // test then starts a second Chromium on the same hub with the video of that code.
    h = await openWebHarness();
    const merchants = await h.t.api('merchant-a').get('/v1/merchants');
    const merchantId = merchants.body.items[0].id as string;
    const qr = await h.t.api('merchant-a').post(`/v1/merchants/${merchantId}/qr-codes`, { kind: 'dynamic', amount: '6.60', billNumber: 'CAM-1' }, { 'idempotency-key': 'camera-qr-1' });
    expect(qr.status).toBe(201);
    payload = qr.body.payload as string;
  }, 180_000);
  afterAll(async () => {
    await h?.close();
  });

  it('reads a merchant QR from the camera and pays it from the account', async () => {
    const video = join(SHOTS, 'camera-qr.y4m');
    qrVideo(payload, video);
    // A second browser on the same hub, with the fake camera playing the code.
    const { chromium } = await import('playwright-core');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'hutong-camera-'));
    const context = await chromium.launchPersistentContext(dir, {
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${video}`],
      locale: 'zh-CN',
      viewport: { width: 390, height: 844 },
    });
    try {
      await context.grantPermissions(['camera'], { origin: h.base });
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${h.base}/wallet`);
      await page.locator('select[name=wallet]').selectOption('wallet-a');
      await page.locator('select[name=customer]').selectOption('cus_demo_li_at_wallet_a');
      await page.getByTestId('sign-in').click();
      await page.getByTestId('who').waitFor();
      await page.getByTestId('tab-pay').click();
      await page.getByTestId('scan-camera').click();
      await page.getByTestId('camera').waitFor();
      await page.getByTestId('qr-preview').waitFor({ timeout: 20_000 });
      // The camera is released once the code is read.
      expect(await page.getByTestId('camera').count()).toBe(0);
      expect(await page.locator('textarea[name=payload]').inputValue()).toBe(payload);
      await page.screenshot({ path: join(SHOTS, 'camera-1-scanned.png'), fullPage: true });
      const source = page.locator('[data-testid=qr-preview] select[name=source]');
      const account = await source.locator('option').last().getAttribute('value');
      await source.selectOption(account ?? '');
      await page.getByTestId('qr-pay').click();
      await page.getByTestId('qr-paid').waitFor({ timeout: 15_000 });
      expect(await page.getByTestId('qr-paid').textContent()).toContain('6.60');
      await page.screenshot({ path: join(SHOTS, 'camera-2-paid.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

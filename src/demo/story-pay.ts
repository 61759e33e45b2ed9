import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DemoScenario } from './run.ts';
import { expectStatus, openDemoHarness } from './harness.ts';
import { newId } from '../platform/ids.ts';
import { crc16Hex } from '../emv/index.ts';
import { cardInTwoWallets, cpmPayload, tapBody, tokenSource, type CardInTwoWallets } from './fixtures.ts';

const MERCHANT = 'mer_demo_merchant_a';

/** The pay story: one card added in wallet A, paid from wallet B through every channel; attacks declined. */
export const payScenario: DemoScenario = {
  name: 'pay',
  summary: 'pay anywhere: merchant QR (static, dynamic), consumer QR, tap, payment links; capture, refund; attacks declined',
  async run(io) {
    const h = await openDemoHarness(io);
    const key = () => ({ 'idempotency-key': newId('demo') });
    const now = () => h.hub.clock.now();
    io.stdout(`Fresh embedded hub at ${h.baseUrl}.\n`);
    let card: CardInTwoWallets | undefined;
    const c = () => {
      if (card === undefined) throw new Error('no card');
      return card;
    };
    try {
      await h.step('bank-a issues a funded debit card to 李伟; wallet A adds it by typing it, wallet B by reference to wallet A’s token', async () => {
        card = await cardInTwoWallets(h.hub, (as, method, path, body, headers) => h.call(as, method, path, body, headers));
        return `card ${card.cardId}; wallet A token ${card.a.tokenRef}; wallet B token ${card.b.tokenRef} (card number never leaves the bank and wallet A)`;
      });
      await h.step('merchant A (最佳运输) prints a static code (PNG and SVG); wallet B scans it and pays 12.30 CNY', async () => {
        const qr = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'static' }, key()), 201, 'static qr');
        const png = await fetch(`${h.baseUrl}${qr.images.png}`, { headers: { authorization: `Bearer ${await tokenOf(h, 'merchant-a')}` } });
        const svg = await fetch(`${h.baseUrl}${qr.images.svg}`, { headers: { authorization: `Bearer ${await tokenOf(h, 'merchant-a')}` } });
        if (png.headers.get('content-type') !== 'image/png' || !String(svg.headers.get('content-type')).startsWith('image/svg+xml')) return false;
        const paid = expectStatus(
          await h.call('wallet-b', 'POST', '/v1/wallet/payments/qr', { payload: qr.payload, amount: { amount: '12.30', currency: 'CNY' }, customerId: c().b.customerId, source: tokenSource(c().b, { amountMinor: 1230n, now: now() }) }, key()),
          201,
          'pay',
        );
        return `${qr.payload}\n PNG ${(await png.arrayBuffer()).byteLength} bytes, SVG ${(await svg.text()).length} chars; payment ${paid.id} ${paid.status}, code ${paid.authorizationCode}`;
      });
      await h.step('a dynamic code for 45.00 CNY: a tampered copy (CRC) and a forged amount are declined, the real one is paid once', async () => {
        const qr = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'dynamic', amount: '45.00', billNumber: 'INV-2024', expiresInS: 300 }, key()), 201, 'dynamic qr');
        const pay = (payload: string) => h.call('wallet-b', 'POST', '/v1/wallet/payments/qr', { payload, customerId: c().b.customerId, source: tokenSource(c().b, { amountMinor: 4500n, now: now() }) }, key());
        const tampered = await pay(`${qr.payload.slice(0, -1)}${qr.payload.endsWith('0') ? '1' : '0'}`);
        const body = qr.payload.slice(0, -8).replace('540545.00', '540501.00');
        const forged = await pay(`${body}6304${crc16Hex(`${body}6304`)}`);
        const paid = await pay(qr.payload);
        const again = await pay(qr.payload);
        return tampered.body.error?.code === 'qr_invalid' && forged.body.error?.code === 'amount_mismatch' && paid.status === 201 && again.body.error?.code === 'qr_already_paid'
          ? `tampered: ${tampered.body.error.code} (${tampered.body.error.details.reason}); forged amount: ${forged.body.error.code}; paid ${paid.body.amount.amount}; second scan: ${again.body.error.code}`
          : false;
      });
      await h.step('an expired dynamic code is declined', async () => {
        const qr = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'dynamic', amount: '9.00', expiresInS: 10 }, key()), 201, 'dynamic qr');
        await h.hub.db.query('update pay_qr_codes set expires_at = created_at where id = $1', [qr.id]);
        const res = await h.call('wallet-b', 'POST', '/v1/wallet/payments/qr', { payload: qr.payload, customerId: c().b.customerId, source: tokenSource(c().b, { amountMinor: 900n, now: now() }) }, key());
        return res.body.error?.code === 'qr_expired' ? `${res.status} ${res.body.error.code}` : false;
      });
      let cpmId = '';
      await h.step('wallet B shows a consumer-presented code (CPV01); merchant A authorizes 80.00, captures 60.00, refunds 20.00 + 30.00', async () => {
        const payload = cpmPayload(c().b, { amountMinor: 8000n, now: now() });
        const auth = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/payments/cpm`, { payload, amount: { amount: '80.00', currency: 'CNY' } }, key()), 201, 'cpm');
        cpmId = auth.id;
        expectStatus(await h.call('merchant-a', 'POST', `/v1/payments/${auth.id}/capture`, { amount: '60.00' }, key()), 200, 'capture');
        expectStatus(await h.call('merchant-a', 'POST', `/v1/payments/${auth.id}/refunds`, { amount: '20.00' }, key()), 201, 'refund 1');
        const r2 = expectStatus(await h.call('merchant-a', 'POST', `/v1/payments/${auth.id}/refunds`, { amount: '30.00' }, key()), 201, 'refund 2');
        return `${payload}\n authorization ${auth.authorizationCode}; captured ${r2.payment.captured.amount}, refunded ${r2.payment.refunded.amount}, fee ${r2.payment.fee.amount}`;
      });
      await h.step('refund above captured, double capture and merchant B acting on merchant A’s payment are refused', async () => {
        const over = await h.call('merchant-a', 'POST', `/v1/payments/${cpmId}/refunds`, { amount: '10.01' }, key());
        const twice = await h.call('merchant-a', 'POST', `/v1/payments/${cpmId}/capture`, {}, key());
        const other = await h.call('merchant-b', 'POST', `/v1/payments/${cpmId}/refunds`, { amount: '1.00' }, key());
        return over.body.error?.code === 'refund_exceeds_captured' && twice.body.error?.code === 'already_captured' && other.status === 404
          ? `${over.body.error.code}; ${twice.body.error.code}; merchant B: ${other.status}`
          : false;
      });
      await h.step('a tap from wallet B’s token authorizes 30.00; capture above authorized is refused; the merchant voids it', async () => {
        const auth = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/payments/tap`, tapBody(c().b, { amount: '30.00', amountMinor: 3000n, now: now() }), key()), 201, 'tap');
        const over = await h.call('merchant-a', 'POST', `/v1/payments/${auth.id}/capture`, { amount: '30.01' }, key());
        const voided = expectStatus(await h.call('merchant-a', 'POST', `/v1/payments/${auth.id}/void`, {}, key()), 200, 'void');
        return over.body.error?.code === 'capture_exceeds_authorized' && voided.status === 'voided' ? `code ${auth.authorizationCode}; ${over.body.error.code}; ${voided.status}` : false;
      });
      await h.step('a replayed tap cryptogram and a wrong counter are declined', async () => {
        const body = tapBody(c().b, { amount: '5.00', amountMinor: 500n, now: now() });
        expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/payments/tap`, body, key()), 201, 'tap');
        const replay = await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/payments/tap`, body, key());
        const lower = await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/payments/tap`, tapBody(c().b, { amount: '5.00', amountMinor: 500n, now: now(), atc: 1 }), key());
        return replay.body.error?.code === 'atc_replayed' && lower.body.error?.code === 'atc_replayed' ? `replay: ${replay.status} ${replay.body.error.code}; counter 1: ${lower.body.error.code}` : false;
      });
      await h.step('a payment link (18.80, single use) opened and paid in wallet A; wallet A presenting wallet B’s token is declined; a second payment is refused', async () => {
        const link = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/payment-links`, { amount: { amount: '18.80', currency: 'CNY' }, description: 'Airport transfer 机场接送', expiresInS: 3600 }, key()), 201, 'link');
        const foreign = await h.call('wallet-a', 'POST', `${link.url}/pay`, { customerId: c().a.customerId, source: tokenSource(c().b, { amountMinor: 1880n, now: now() }) }, key());
        const paid = expectStatus(await h.call('wallet-a', 'POST', `${link.url}/pay`, { customerId: c().a.customerId, source: tokenSource(c().a, { amountMinor: 1880n, now: now() }) }, key()), 201, 'pay link');
        const again = await h.call('wallet-b', 'POST', `${link.url}/pay`, { customerId: c().b.customerId, source: tokenSource(c().b, { amountMinor: 1880n, now: now() }) }, key());
        return foreign.body.error?.code === 'token_not_found' && again.body.error?.code === 'payment_link_used' ? `${link.url}: wallet B's token in wallet A: ${foreign.body.error.code}; paid ${paid.status}; again: ${again.body.error.code}` : false;
      });
      await h.step('risk: a payment from a device in another country is stopped and the issuer sees the alert', async () => {
        const qr = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'static' }, key()), 201, 'qr');
        const res = await h.call('wallet-b', 'POST', '/v1/wallet/payments/qr', { payload: qr.payload, amount: { amount: '10.00', currency: 'CNY' }, customerId: c().b.customerId, deviceCountry: 'RU', source: tokenSource(c().b, { amountMinor: 1000n, now: now() }) }, key());
        const alerts = expectStatus(await h.call('bank-a', 'GET', '/v1/risk/alerts?status=open'), 200, 'alerts');
        return res.body.error?.code === 'risk_declined' && alerts.items.some((a: any) => a.reasons.some((r: any) => r.rule === 'country_mismatch')) ? `${res.body.error.code} (${res.body.error.details.reasons.join(', ')}); bank-a has ${alerts.items.length} open alert(s)` : false;
      });
      await h.step('bank-a switches to a real-time webhook that does not answer in time: stand-in rules approve up to 100.00', async () => {
        const server: Server = createServer((_req, res) => {
          setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"decision":"approve"}'), 800);
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        try {
          const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/authorize`;
          expectStatus(await h.call('bank-a', 'POST', '/v1/issuer/authorization-settings', { mode: 'webhook', authUrl: url, deadlineMs: 300, standIn: { action: 'approve', maxAmountMinor: '10000' } }), 200, 'settings');
          const small = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/payments/tap`, tapBody(c().b, { amount: '50.00', amountMinor: 5000n, now: now() }), key()), 201, 'stand-in tap');
          const big = await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/payments/tap`, tapBody(c().b, { amount: '150.00', amountMinor: 15000n, now: now() }), key());
          return small.decidedBy === 'stand_in' && big.body.error?.code === 'issuer_unavailable' ? `50.00: approved by ${small.decidedBy}; 150.00: ${big.body.error.code} (${big.body.error.details.reason})` : false;
        } finally {
          await h.call('bank-a', 'POST', '/v1/issuer/authorization-settings', { mode: 'hosted' });
          server.closeAllConnections();
          server.close();
        }
      });
      await h.step('the books balance', async () => ((await h.hub.transfers.ledger.checkInvariants()).length === 0 ? 'ledger invariants hold' : false));
    } finally {
      await h.close();
    }
    return h.ok;
  },
};

async function tokenOf(h: Awaited<ReturnType<typeof openDemoHarness>>, key: string): Promise<string> {
  const p = h.demo.participants.find((d) => d.key === key);
  if (p === undefined) throw new Error(`no demo participant ${key}`);
  const res = await fetch(`${h.baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: p.clientId, client_secret: p.clientSecret }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bankQuickstart } from '../../examples/bank-quickstart.ts';
import { merchantQuickstart } from '../../examples/merchant-quickstart.ts';
import { walletQuickstart } from '../../examples/wallet-quickstart.ts';
import type { QuickstartEnv } from '../../examples/support.ts';
import { seedSandboxCards } from '../../src/demo/sandbox.ts';
import { systemClock } from '../../src/platform/clock.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * The quickstarts of docs/guides (examples/*.ts, written with the SDK alone) run against a fresh embedded hub in demo
 * mode, as `npm start` serves it: over HTTP on a port, the demo network and sandbox test cards seeded, the background
 * jobs running (webhooks are delivered by the hub's own dispatcher to the example's receiver). The hub runs on the
 * real clock, because the examples sign webhooks' and cryptograms' times with the machine's.
 */
describe('the quickstarts of docs/guides, against a fresh embedded hub', () => {
  let t: TestHub;
  let env: QuickstartEnv;
  const lines: string[] = [];

  beforeAll(async () => {
    t = await startTestHub('pglite', { clock: systemClock });
    const cards = await seedSandboxCards(t.hub);
    const bankA = cards.find((c) => c.bank === 'bank-a');
    if (bankA === undefined) throw new Error('no bank-a sandbox card');
    t.hub.startBackground();
    await t.hub.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.hub.app.server.address() as AddressInfo;
    env = {
      baseUrl: `http://127.0.0.1:${port}`,
      credentials: Object.fromEntries(t.demo.participants.map((p) => [p.key, { clientId: p.clientId, clientSecret: p.clientSecret }])),
      card: { number: bankA.cardNumber, expiry: bankA.expiry, cvv: bankA.cvv },
      log: (line) => lines.push(line),
    };
  }, 300_000);
  afterAll(async () => {
    // QUICKSTART_LOG=1 prints what each quickstart told (the guides quote it).
    if (process.env.QUICKSTART_LOG === '1') console.log(lines.join('\n'));
    await t?.close();
  });

  it('wallet: token, a card in two wallets, a merchant QR, P2P by alias, list and revoke, a verified webhook', async () => {
    const result = await walletQuickstart(env);
    expect(result.qrPayment).toMatchObject({ status: 'captured', amount: { amount: '12.30', currency: 'CNY' } });
    expect(result.p2p).toMatchObject({ status: 'completed' });
    expect(result.refusedWithRevokedToken).toBeTypeOf('string');
    expect(result.webhook).toMatchObject({ type: 'payment.received', data: { customerId: 'cus_demo_zhang_at_wallet_b', receiveAmount: { amount: '1.00', currency: 'CNY' } } });
  }, 180_000);

  it('bank: a product, a funded account, a card, provisioning rules and webhook, hosted and real-time decisions, suspend', async () => {
    const result = await bankQuickstart(env);
    expect(result.hosted).toBe('captured');
    expect(result.decisions).toEqual({ approved: 'captured', declined: 'issuer_declined' });
    expect(result.whileSuspended).toBe('token_not_active');
    expect(result.resumed).toBe('captured');
    expect(result.cancelled).toBe('cancelled');
    expect(result.provisioned).toMatchObject({ cardId: result.cardId, walletParticipantId: 'par_demo_wallet_a' });
  }, 180_000);

  it('merchant: static and dynamic QR, a payment link, a tap captured and refunded in part, verified webhooks', async () => {
    const result = await merchantQuickstart(env);
    expect(result.payments.static).toMatchObject({ status: 'captured', amount: { amount: '8.80', currency: 'CNY' } });
    expect(result.payments.dynamic).toMatchObject({ status: 'captured', amount: { amount: '23.50', currency: 'CNY' } });
    expect(result.payments.link).toMatchObject({ status: 'captured', amount: { amount: '99.00', currency: 'CNY' } });
    expect(result.tap.authorized).toMatchObject({ status: 'authorized', channel: 'tap' });
    expect(result.tap.after).toMatchObject({ captured: { amount: '40.00', currency: 'CNY' }, refunded: { amount: '15.00', currency: 'CNY' } });
    expect(result.eventTypes).toEqual(expect.arrayContaining(['payment.authorized', 'payment.captured', 'payment.refunded']));
  }, 180_000);
});

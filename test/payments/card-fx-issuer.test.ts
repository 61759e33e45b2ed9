import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardInTwoWallets, tapBody, tokenSource, type CardInTwoWallets } from '../../src/demo/fixtures.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { verifyWebhook } from '../../src/webhooks/signing.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { expectLedgerBalanced } from '../support/checks.ts';

const engines = await availableEngines();

/**
 * Card payments across currencies for an issuer that decides in real time (webhook mode), through the HTTP API on both
 * engines: bank-a's CNY card pays merchant-b's HKD merchant. The rate is bound as for a hosted card (Pearl River Bank,
 * bank-b, posting CNY→HKD at 1.08); bank-a's endpoint is asked for the amount in CNY with the merchant's side and the
 * rate; the hold, the capture and the refunds are on bank-a's CNY position (not the card's account: the issuer keeps
 * its own books), with the FX legs through the provider's positions in both currencies; a scanned code captures at
 * once. A decline moves nothing; a retry asks once; a rate expiring while the issuer is asked reverses the approval in
 * CNY, and one expiring after authorization leaves the capture at the bound rate.
 */
describe.each(engines)('a real-time issuer’s card across currencies on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  let settlementAccountId: string;
  let rateId: string;
  let rateExpiresAt: number;
  let issuer: Server;
  const merchantId = 'mer_demo_merchant_b';
  const bankA = demoParticipantId('bank-a');
  const bankB = demoParticipantId('bank-b');
  const merchantB = demoParticipantId('merchant-b');
  const key = () => ({ 'idempotency-key': randomBytes(8).toString('hex') });

  /** What bank-a's authorization endpoint received (its signature checked), and how it answers. */
  const asked: { signed: boolean; data: Record<string, unknown> }[] = [];
  let decision: 'approve' | 'decline' = 'approve';
  /** Set: the issuer takes this long on the hub's clock to answer (the rate may expire meanwhile). */
  let issuerTakesMs = 0;

  const balance = async (id: string) => {
    const [r] = await t.hub.db.query<{ b: bigint }>('select credits_posted - debits_posted as b from ledger_accounts where id = $1', [id]);
    return r?.b ?? 0n;
  };
  const pending = async (id: string) => {
    const [r] = await t.hub.db.query<{ p: bigint }>('select debits_pending as p from ledger_accounts where id = $1', [id]);
    return r?.p ?? 0n;
  };
  const issuerCny = `fund_${bankA}_CNY`;
  const positions = async () => ({
    issuerCny: await balance(issuerCny),
    issuerCnyHeld: await pending(issuerCny),
    issuerHkd: await balance(`fund_${bankA}_HKD`),
    providerCny: await balance(`fund_${bankB}_CNY`),
    providerHkd: await balance(`fund_${bankB}_HKD`),
    ownerHkd: await balance(`fund_${merchantB}_HKD`),
    merchant: await balance(settlementAccountId),
    cardAccount: await balance(card.fundingAccountId),
    cardHeld: await pending(card.fundingAccountId),
  });
  const counts = async () => {
    const n = async (table: string) => (await t.hub.db.query<{ n: bigint }>(`select count(*) as n from ${table}`))[0]?.n;
    return { transfers: await n('ledger_transfers'), payments: await n('pay_authorizations'), entries: await n('settlement_entries'), refunds: await n('pay_refunds') };
  };
  const conserved = () => expectLedgerBalanced(t);
  const entriesOf = (paymentId: string) =>
    t.hub.db.query<{ payer_participant_id: string; payee_participant_id: string; currency: string; amount_minor: bigint }>(
      'select payer_participant_id, payee_participant_id, currency, amount_minor from settlement_entries where payment_id = $1 order by currency',
      [paymentId],
    );
  const ask = async (authorizationId: string) =>
    (await t.hub.db.query<{ status: string; amount_minor: bigint; currency: string }>('select status, amount_minor, currency from pay_issuer_asks where authorization_id = $1', [authorizationId]))[0];
  const tap = (amount: string, amountMinor: bigint, headers = key(), body = tapBody(card.a, { amount, amountMinor, currency: 'HKD', country: 'HK', now: clock.now() })) =>
    t.api('merchant-b').post(`/v1/merchants/${merchantId}/payments/tap`, body, headers);

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    clock.advance(1_000);
    const posted = await t.api('bank-b').post('/v1/fx/provider-rates', { sendCurrency: 'CNY', receiveCurrency: 'HKD', tiers: [{ min: { amount: '0.01', currency: 'CNY' }, rate: '1.08' }], expiresAt: new Date(clock.nowMs() + 3_600_000).toISOString() }, key());
    expect(posted.status).toBe(201);
    rateId = posted.body.id;
    rateExpiresAt = clock.nowMs() + 3_600_000;
    await t.hub.db.query('update merchants set fee_bps = 100 where id = $1', [merchantId]);
    const m = await t.api('merchant-b').get(`/v1/merchants/${merchantId}`);
    expect(m.body).toMatchObject({ currency: 'HKD', feeBps: 100 });
    settlementAccountId = m.body.settlementAccountId;
    card = await cardInTwoWallets(t.hub, (as, method, path, body, headers) => (method === 'GET' ? t.api(as).get(path, headers) : method === 'PATCH' ? t.api(as).patch(path, body, headers) : t.api(as).post(path, body, headers)));

    const [row] = await t.hub.db.query<{ webhook_secret_sealed: string }>('select webhook_secret_sealed from participants where id = $1', [bankA]);
    const secret = await t.hub.vault.open(row?.webhook_secret_sealed ?? '');
    issuer = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        asked.push({ signed: verifyWebhook(secret, req.headers as Record<string, string>, body, { nowS: Math.floor(clock.nowMs() / 1000) }).ok, data: (JSON.parse(body) as { data: Record<string, unknown> }).data });
        if (issuerTakesMs > 0) clock.advance(issuerTakesMs);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(decision === 'approve' ? { decision } : { decision, reason: 'card_blocked_abroad' }));
      });
    });
    await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
    const set = await t.api('bank-a').post('/v1/issuer/authorization-settings', { mode: 'webhook', authUrl: `http://127.0.0.1:${(issuer.address() as AddressInfo).port}/authorize`, deadlineMs: 2_000, standIn: { action: 'decline', maxAmountMinor: '0' } });
    expect(set.status).toBe(200);
  });
  afterAll(async () => {
    issuer?.closeAllConnections();
    issuer?.close();
    await t?.close();
  });

  it('asks the issuer for the CNY amount with the rate; holds, captures in part and refunds on its CNY position through the provider’s positions; a retry asks once', async () => {
    const p0 = await positions();
    await conserved();

    // 108.00 HKD at 1.08 = 100.00 CNY: the issuer is asked for 100.00 CNY, shown the merchant's 108.00 HKD and the rate.
    const headers = key();
    const body = tapBody(card.a, { amount: '108.00', amountMinor: 108_00n, currency: 'HKD', country: 'HK', now: clock.now() });
    const before = asked.length;
    const auth = await tap('108.00', 108_00n, headers, body);
    expect(auth.status, JSON.stringify(auth.body)).toBe(201);
    const fx0 = { rateId, providerParticipantId: bankB, rate: '1.08000000', charged: { amount: '100.00', currency: 'CNY' }, captured: { amount: '0.00', currency: 'CNY' }, refunded: { amount: '0.00', currency: 'CNY' } };
    expect(auth.body).toMatchObject({ status: 'authorized', decidedBy: 'issuer', amount: { amount: '108.00', currency: 'HKD' }, fx: fx0 });
    const id = auth.body.id as string;
    expect(asked.slice(before)).toEqual([
      {
        signed: true,
        data: expect.objectContaining({
          authorizationId: id,
          cardId: card.cardId,
          amount: { amount: '100.00', currency: 'CNY' },
          merchantAmount: { amount: '108.00', currency: 'HKD' },
          fx: { rateId, providerParticipantId: bankB, rate: '1.08000000' },
        }),
      },
    ]);
    expect(await ask(id)).toEqual({ status: 'used', amount_minor: 100_00n, currency: 'CNY' });
    // Held on the issuer's CNY position (the issuer keeps the card's books); the card's account at the hub is untouched.
    const p1 = await positions();
    expect(p1).toEqual({ ...p0, issuerCnyHeld: p0.issuerCnyHeld + 100_00n });
    // The same request again replays: the issuer is not asked again, nothing is held twice.
    const again = await tap('108.00', 108_00n, headers, body);
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(id);
    expect(asked.length).toBe(before + 1);
    expect(await positions()).toEqual(p1);
    await conserved();

    // Partial capture of 50.00 HKD: 46.30 CNY (rounded up) from the issuer's position to the provider's, 50.00 HKD from
    // the provider's to the merchant's owner's; the rest of the hold released.
    const captured = await t.api('merchant-b').post(`/v1/payments/${id}/capture`, { amount: '50.00' }, key());
    expect(captured.status, JSON.stringify(captured.body)).toBe(200);
    expect(captured.body).toMatchObject({ status: 'captured', captured: { amount: '50.00', currency: 'HKD' }, fee: { amount: '0.50', currency: 'HKD' }, fx: { ...fx0, captured: { amount: '46.30', currency: 'CNY' } } });
    const p2 = await positions();
    expect(p2).toEqual({ ...p0, issuerCny: p0.issuerCny - 46_30n, providerCny: p0.providerCny + 46_30n, providerHkd: p0.providerHkd - 50_00n, merchant: p0.merchant + 50_00n - 50n });
    expect(await entriesOf(id)).toEqual([
      { payer_participant_id: bankA, payee_participant_id: bankB, currency: 'CNY', amount_minor: 46_30n },
      { payer_participant_id: bankB, payee_participant_id: merchantB, currency: 'HKD', amount_minor: 50_00n },
    ]);
    await conserved();

    // A refund of 20.00 HKD: 18.51 CNY (rounded down) back to the issuer's position through the provider's.
    const refund = await t.api('merchant-b').post(`/v1/payments/${id}/refunds`, { amount: '20.00' }, key());
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    expect(refund.body).toMatchObject({ amount: { amount: '20.00', currency: 'HKD' }, payment: { fx: { captured: { amount: '46.30', currency: 'CNY' }, refunded: { amount: '18.51', currency: 'CNY' } } } });
    const p3 = await positions();
    expect(p3).toEqual({ ...p2, issuerCny: p2.issuerCny + 18_51n, providerCny: p2.providerCny - 18_51n, providerHkd: p2.providerHkd + 20_00n, merchant: p2.merchant - 20_00n });
    expect(await entriesOf(refund.body.refundId)).toEqual([
      { payer_participant_id: bankB, payee_participant_id: bankA, currency: 'CNY', amount_minor: 18_51n },
      { payer_participant_id: merchantB, payee_participant_id: bankB, currency: 'HKD', amount_minor: 20_00n },
    ]);
    // The rest: all that is left of what was taken (27.79 CNY) goes back; the provider's positions are where they began.
    const rest = await t.api('merchant-b').post(`/v1/payments/${id}/refunds`, {}, key());
    expect(rest.status, JSON.stringify(rest.body)).toBe(201);
    const p4 = await positions();
    expect(p4).toEqual({ ...p0, merchant: p0.merchant - 50n });
    await conserved();

    // The issuer's webhooks carry the same fx object as the answers, each at its step.
    const fxOf = async (type: string) =>
      (await t.hub.db.query<{ payload: { fx: unknown } }>(`select payload from events where participant_id = $1 and type = $2 and payload->>'authorizationId' = $3 order by id`, [bankA, type, id])).map((e) => e.payload.fx);
    expect(await fxOf('payment.authorized')).toEqual([fx0]);
    expect(await fxOf('payment.captured')).toEqual([{ ...fx0, captured: { amount: '46.30', currency: 'CNY' } }]);
    expect(await fxOf('payment.refunded')).toEqual([
      { ...fx0, captured: { amount: '46.30', currency: 'CNY' }, refunded: { amount: '18.51', currency: 'CNY' } },
      { ...fx0, captured: { amount: '46.30', currency: 'CNY' }, refunded: { amount: '46.30', currency: 'CNY' } },
    ]);
  });

  it('a scanned HKD code paid with the card through the provider the wallet names: the issuer asked in CNY, captured at once through both positions', async () => {
    const qr = await t.api('merchant-b').post(`/v1/merchants/${merchantId}/qr-codes`, { kind: 'dynamic', amount: '21.60' }, key());
    expect(qr.status).toBe(201);
    const p0 = await positions();
    const paid = await t.api('wallet-a').post('/v1/wallet/payments/qr', { payload: qr.body.payload, customerId: card.a.customerId, source: tokenSource(card.a, { amountMinor: 21_60n, currency: 'HKD', country: 'HK', now: clock.now() }), fxProviderId: bankB }, key());
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    // 21.60 HKD at 1.08 = 20.00 CNY, asked of the issuer and taken from its CNY position at once.
    expect(paid.body).toMatchObject({ status: 'captured', amount: { amount: '21.60', currency: 'HKD' }, fx: { rateId, providerParticipantId: bankB, charged: { amount: '20.00', currency: 'CNY' }, captured: { amount: '20.00', currency: 'CNY' } } });
    expect(asked.at(-1)?.data).toMatchObject({ authorizationId: paid.body.id, amount: { amount: '20.00', currency: 'CNY' }, merchantAmount: { amount: '21.60', currency: 'HKD' }, fx: { rateId, providerParticipantId: bankB, rate: '1.08000000' } });
    expect(await positions()).toEqual({ ...p0, issuerCny: p0.issuerCny - 20_00n, providerCny: p0.providerCny + 20_00n, providerHkd: p0.providerHkd - 21_60n, merchant: p0.merchant + 21_60n - 22n });
    expect(await entriesOf(paid.body.id)).toEqual([
      { payer_participant_id: bankA, payee_participant_id: bankB, currency: 'CNY', amount_minor: 20_00n },
      { payer_participant_id: bankB, payee_participant_id: merchantB, currency: 'HKD', amount_minor: 21_60n },
    ]);
    await conserved();
  });

  it('an issuer decline moves nothing', async () => {
    const before = { ...(await counts()), ...(await positions()) };
    decision = 'decline';
    try {
      const declined = await tap('21.60', 21_60n);
      expect(declined.status, JSON.stringify(declined.body)).toBe(402);
      expect(declined.body.error).toMatchObject({ code: 'issuer_declined', details: { reason: 'card_blocked_abroad' } });
      expect(asked.at(-1)?.data).toMatchObject({ amount: { amount: '20.00', currency: 'CNY' }, merchantAmount: { amount: '21.60', currency: 'HKD' } });
      expect(await ask(asked.at(-1)?.data.authorizationId as string)).toEqual({ status: 'declined', amount_minor: 20_00n, currency: 'CNY' });
    } finally {
      decision = 'approve';
    }
    expect({ ...(await counts()), ...(await positions()) }).toEqual(before);
    await conserved();
  });

  it('the rate expiring: during the issuer’s ask, the approval is reversed in CNY; after authorization, capture still converts at the bound rate; after it, a new tap is refused before the issuer is asked', async () => {
    // Authorized while the rate is in force: 54.00 HKD = 50.00 CNY held on the issuer's position.
    const auth = await tap('54.00', 54_00n);
    expect(auth.status, JSON.stringify(auth.body)).toBe(201);
    const id = auth.body.id as string;
    const p0 = await positions();

    // The issuer takes past the rate's expiry (on the hub's clock) to approve: the commit refuses with fx_rate_expired
    // and the approval is reversed to the issuer in the amount it approved, in CNY.
    const before = { ...(await counts()), ...p0 };
    issuerTakesMs = rateExpiresAt - clock.nowMs() + 1_000;
    let lateId: string;
    try {
      const late = await tap('10.80', 10_80n);
      expect(late.status, JSON.stringify(late.body)).toBe(422);
      expect(late.body.error).toMatchObject({ code: 'fx_rate_expired', details: { rateId } });
      lateId = asked.at(-1)?.data.authorizationId as string;
    } finally {
      issuerTakesMs = 0;
    }
    expect(await ask(lateId)).toEqual({ status: 'reversed', amount_minor: 10_00n, currency: 'CNY' });
    const reversals = await t.hub.db.query<{ participant_id: string; payload: unknown }>(`select participant_id, payload from events where type = 'payment.authorization_reversed' and payload->>'authorizationId' = $1`, [lateId]);
    expect(reversals).toEqual([{ participant_id: bankA, payload: { authorizationId: lateId, cardId: card.cardId, amount: { amount: '10.00', currency: 'CNY' }, reason: 'fx_rate_expired' } }]);
    expect({ ...(await counts()), ...(await positions()) }).toEqual(before);

    // The rate has expired: the authorization's capture converts at the rate it bound.
    const captured = await t.api('merchant-b').post(`/v1/payments/${id}/capture`, {}, key());
    expect(captured.status, JSON.stringify(captured.body)).toBe(200);
    expect(captured.body).toMatchObject({ status: 'captured', fx: { rateId, rate: '1.08000000', captured: { amount: '50.00', currency: 'CNY' } } });
    expect(await positions()).toEqual({ ...p0, issuerCny: p0.issuerCny - 50_00n, issuerCnyHeld: p0.issuerCnyHeld - 50_00n, providerCny: p0.providerCny + 50_00n, providerHkd: p0.providerHkd - 54_00n, merchant: p0.merchant + 54_00n - 54n });
    await conserved();

    // A new tap: no rate in force, refused before the issuer is asked; nothing written.
    const n = asked.length;
    const after = { ...(await counts()), ...(await positions()) };
    const expired = await tap('10.80', 10_80n);
    expect(expired.status).toBe(422);
    expect(expired.body.error).toMatchObject({ code: 'fx_rate_expired', details: { rateId } });
    expect(asked.length).toBe(n);
    expect({ ...(await counts()), ...(await positions()) }).toEqual(after);
    await conserved();
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customerAccountId } from '../../src/accounts/index.ts';
import { cardInTwoWallets, tapBody, tokenSource, type CardInTwoWallets } from '../../src/demo/fixtures.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { expectLedgerBalanced } from '../support/checks.ts';

const engines = await availableEngines();

/**
 * Card and QR payments across currencies, through the HTTP API on both engines: a CNY card (bank-a) pays an HKD
 * merchant (merchant-b's); the authorization binds the FX provider's rate (Pearl River Bank, bank-b, the demo's
 * provider, here posting CNY→HKD at 1.08), holds the card's account in CNY, and capture and refunds convert at that
 * rate through the provider's positions in both currencies, each position leg recorded for settlement. A merchant QR
 * code and a payment link take the same pipeline. No rate for the pair, an expired one, or a provider position that
 * cannot deliver is refused with its code and nothing written; a retried request moves no money twice.
 */
describe.each(engines)('card payments across currencies on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  let merchantId: string;
  let settlementAccountId: string;
  let rateId: string;
  const bankA = demoParticipantId('bank-a');
  const bankB = demoParticipantId('bank-b');
  const merchantB = demoParticipantId('merchant-b');
  const walletA = demoParticipantId('wallet-a');
  const key = () => ({ 'idempotency-key': randomBytes(8).toString('hex') });

  const balance = async (id: string) => {
    const [r] = await t.hub.db.query<{ b: bigint }>('select credits_posted - debits_posted as b from ledger_accounts where id = $1', [id]);
    return r?.b ?? 0n;
  };
  const pending = async (id: string) => {
    const [r] = await t.hub.db.query<{ p: bigint }>('select debits_pending as p from ledger_accounts where id = $1', [id]);
    return r?.p ?? 0n;
  };
  const positions = async () => ({
    providerCny: await balance(`fund_${bankB}_CNY`),
    providerHkd: await balance(`fund_${bankB}_HKD`),
    issuerCny: await balance(`fund_${bankA}_CNY`),
    ownerHkd: await balance(`fund_${merchantB}_HKD`),
    walletCny: await balance(`fund_${walletA}_CNY`),
  });
  const counts = async () => {
    const n = async (table: string) => (await t.hub.db.query<{ n: bigint }>(`select count(*) as n from ${table}`))[0]?.n;
    return { transfers: await n('ledger_transfers'), payments: await n('pay_authorizations'), declines: await n('pay_declines'), alerts: await n('risk_alerts'), entries: await n('settlement_entries'), refunds: await n('pay_refunds') };
  };
  const conserved = () => expectLedgerBalanced(t);
  const entriesOf = (paymentId: string) =>
    t.hub.db.query<{ payer_participant_id: string; payee_participant_id: string; currency: string; amount_minor: bigint }>(
      'select payer_participant_id, payee_participant_id, currency, amount_minor from settlement_entries where payment_id = $1 order by currency',
      [paymentId],
    );
  const tapAt = (amount: string, amountMinor: bigint) => tapBody(card.a, { amount, amountMinor, currency: 'HKD', country: 'HK', now: clock.now() });
  const tap = (amount: string, amountMinor: bigint, headers = key(), body = tapAt(amount, amountMinor)) => t.api('merchant-b').post(`/v1/merchants/${merchantId}/payments/tap`, body, headers);

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    // The demo provider posts a round CNY→HKD rate (newer than its demo rate for the pair, which it replaces), one
    // tier, for an hour.
    clock.advance(1_000);
    const posted = await t.api('bank-b').post('/v1/fx/provider-rates', { sendCurrency: 'CNY', receiveCurrency: 'HKD', tiers: [{ min: { amount: '0.01', currency: 'CNY' }, rate: '1.08' }], expiresAt: new Date(clock.nowMs() + 3_600_000).toISOString() }, key());
    expect(posted.status).toBe(201);
    rateId = posted.body.id;
    // merchant-b's HKD merchant (the demo's Harbour Tea House), given a 1% fee here so that the fee leg is in the chain.
    merchantId = 'mer_demo_merchant_b';
    await t.hub.db.query('update merchants set fee_bps = 100 where id = $1', [merchantId]);
    const m = await t.api('merchant-b').get(`/v1/merchants/${merchantId}`);
    expect(m.body).toMatchObject({ currency: 'HKD', feeBps: 100 });
    settlementAccountId = m.body.settlementAccountId;
    card = await cardInTwoWallets(t.hub, (as, method, path, body, headers) => (method === 'GET' ? t.api(as).get(path, headers) : method === 'PATCH' ? t.api(as).patch(path, body, headers) : t.api(as).post(path, body, headers)));
  });
  afterAll(async () => t?.close());

  it('a tap in HKD on a CNY card: held in CNY at the bound rate; partial capture and refunds convert at it through the provider’s positions; settlement legs recorded; retries move nothing twice', async () => {
    const fundBefore = await balance(card.fundingAccountId);
    const heldBefore = await pending(card.fundingAccountId);
    const p0 = await positions();
    const m0 = await balance(settlementAccountId);
    await conserved();

    // Authorization: 108.00 HKD costs 100.00 CNY at 1.08; the card's account is held 100.00 CNY.
    const headers = key();
    const body = tapAt('108.00', 10_800n);
    const auth = await tap('108.00', 10_800n, headers, body);
    expect(auth.status, JSON.stringify(auth.body)).toBe(201);
    expect(auth.body).toMatchObject({
      status: 'authorized',
      amount: { amount: '108.00', currency: 'HKD' },
      fx: { rateId, providerParticipantId: bankB, rate: '1.08000000', charged: { amount: '100.00', currency: 'CNY' }, captured: { amount: '0.00', currency: 'CNY' }, refunded: { amount: '0.00', currency: 'CNY' } },
    });
    const id = auth.body.id as string;
    expect(await pending(card.fundingAccountId)).toBe(heldBefore + 100_00n);
    expect(await balance(card.fundingAccountId)).toBe(fundBefore);
    // The same request again (its Idempotency-Key) replays: the same payment, nothing held twice.
    const again = await tap('108.00', 10_800n, headers, body);
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(id);
    expect(await pending(card.fundingAccountId)).toBe(heldBefore + 100_00n);
    expect((await t.hub.db.query('select id from pay_authorizations where card_id = $1', [card.cardId])).length).toBe(1);

    // Partial capture of 50.00 HKD: 50 / 1.08 = 46.296… CNY, rounded up to 46.30; the rest of the hold is released.
    const captureKey = key();
    const captured = await t.api('merchant-b').post(`/v1/payments/${id}/capture`, { amount: '50.00' }, captureKey);
    expect(captured.status, JSON.stringify(captured.body)).toBe(200);
    expect(captured.body).toMatchObject({ status: 'captured', captured: { amount: '50.00', currency: 'HKD' }, fee: { amount: '0.50', currency: 'HKD' }, fx: { rateId, charged: { amount: '100.00', currency: 'CNY' }, captured: { amount: '46.30', currency: 'CNY' } } });
    const p1 = await positions();
    expect(await pending(card.fundingAccountId)).toBe(heldBefore);
    expect(await balance(card.fundingAccountId)).toBe(fundBefore - 46_30n);
    expect(p1.providerCny - p0.providerCny).toBe(46_30n);
    expect(p1.providerHkd - p0.providerHkd).toBe(-50_00n);
    // The issuer's and the merchant owner's positions pass the money through: down and up by the same amount.
    expect(p1.issuerCny - p0.issuerCny).toBe(0n);
    expect(p1.ownerHkd - p0.ownerHkd).toBe(0n);
    expect(await balance(settlementAccountId)).toBe(m0 + 50_00n - 50n);
    expect(await entriesOf(id)).toEqual([
      { payer_participant_id: bankA, payee_participant_id: bankB, currency: 'CNY', amount_minor: 46_30n },
      { payer_participant_id: bankB, payee_participant_id: merchantB, currency: 'HKD', amount_minor: 50_00n },
    ]);
    // A retried capture replays its answer; a second capture is refused; no money moves.
    expect((await t.api('merchant-b').post(`/v1/payments/${id}/capture`, { amount: '50.00' }, captureKey)).body.fx.captured.amount).toBe('46.30');
    expect((await t.api('merchant-b').post(`/v1/payments/${id}/capture`, {}, key())).body.error.code).toBe('already_captured');
    expect(await positions()).toEqual(p1);
    await conserved();

    // A partial refund of 20.00 HKD: 20 / 1.08 = 18.518… CNY back, rounded down to 18.51.
    const refundKey = key();
    const refund = await t.api('merchant-b').post(`/v1/payments/${id}/refunds`, { amount: '20.00' }, refundKey);
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    expect(refund.body).toMatchObject({ amount: { amount: '20.00', currency: 'HKD' }, payment: { refunded: { amount: '20.00', currency: 'HKD' }, fx: { refunded: { amount: '18.51', currency: 'CNY' } } } });
    const p2 = await positions();
    expect(await balance(card.fundingAccountId)).toBe(fundBefore - 46_30n + 18_51n);
    expect(p2.providerCny - p1.providerCny).toBe(-18_51n);
    expect(p2.providerHkd - p1.providerHkd).toBe(20_00n);
    expect(p2.issuerCny).toBe(p1.issuerCny);
    expect(p2.ownerHkd).toBe(p1.ownerHkd);
    expect(await balance(settlementAccountId)).toBe(m0 + 50_00n - 50n - 20_00n);
    expect(await entriesOf(refund.body.refundId)).toEqual([
      { payer_participant_id: bankB, payee_participant_id: bankA, currency: 'CNY', amount_minor: 18_51n },
      { payer_participant_id: merchantB, payee_participant_id: bankB, currency: 'HKD', amount_minor: 20_00n },
    ]);
    // The retried refund replays: nothing moves twice.
    const replay = await t.api('merchant-b').post(`/v1/payments/${id}/refunds`, { amount: '20.00' }, refundKey);
    expect(replay.body.refundId).toBe(refund.body.refundId);
    expect(await positions()).toEqual(p2);
    expect(await balance(card.fundingAccountId)).toBe(fundBefore - 46_30n + 18_51n);

    // The refund that completes the captured amount gives back all that is left of what was taken: 27.79 CNY.
    const rest = await t.api('merchant-b').post(`/v1/payments/${id}/refunds`, {}, key());
    expect(rest.status, JSON.stringify(rest.body)).toBe(201);
    expect(rest.body.payment.fx).toMatchObject({ captured: { amount: '46.30', currency: 'CNY' }, refunded: { amount: '46.30', currency: 'CNY' } });
    expect(await balance(card.fundingAccountId)).toBe(fundBefore);
    const p3 = await positions();
    expect(p3.providerCny - p0.providerCny).toBe(0n);
    expect(p3.providerHkd - p0.providerHkd).toBe(0n);
    // The merchant keeps its fee's loss: 50.00 − 0.50 fee − 50.00 refunded.
    expect(await balance(settlementAccountId)).toBe(m0 - 50n);
    await conserved();

    // The merchant's read shows both sides and the rate id.
    const read = await t.api('merchant-b').get(`/v1/payments/${id}`);
    expect(read.body.fx).toMatchObject({ rateId, providerParticipantId: bankB, charged: { amount: '100.00', currency: 'CNY' } });

    // The webhooks say the same as the answers, the payer's side included, each at its step.
    const fxOf = async (type: string) =>
      (await t.hub.db.query<{ payload: { fx: unknown } }>(`select payload from events where participant_id = $1 and type = $2 and payload->>'authorizationId' = $3 order by id`, [merchantB, type, id])).map((e) => e.payload.fx);
    expect(await fxOf('payment.authorized')).toEqual([{ rateId, providerParticipantId: bankB, rate: '1.08000000', charged: { amount: '100.00', currency: 'CNY' }, captured: { amount: '0.00', currency: 'CNY' }, refunded: { amount: '0.00', currency: 'CNY' } }]);
    expect(await fxOf('payment.captured')).toEqual([expect.objectContaining({ captured: { amount: '46.30', currency: 'CNY' }, refunded: { amount: '0.00', currency: 'CNY' } })]);
    expect(await fxOf('payment.refunded')).toEqual([
      expect.objectContaining({ captured: { amount: '46.30', currency: 'CNY' }, refunded: { amount: '18.51', currency: 'CNY' } }),
      expect.objectContaining({ captured: { amount: '46.30', currency: 'CNY' }, refunded: { amount: '46.30', currency: 'CNY' } }),
    ]);
  });

  it('a scanned HKD code paid from a CNY account through the provider the wallet names, and an HKD payment link paid with the CNY card: captured at once through both positions', async () => {
    const qr = await t.api('merchant-b').post(`/v1/merchants/${merchantId}/qr-codes`, { kind: 'dynamic', amount: '21.60' }, key());
    expect(qr.status).toBe(201);
    const accountId = customerAccountId(demoCustomerId('li-at-wallet-a'), 'CNY');
    const before = { account: await balance(accountId), merchant: await balance(settlementAccountId), ...(await positions()) };
    const paid = await t.api('wallet-a').post('/v1/wallet/payments/qr', { payload: qr.body.payload, customerId: demoCustomerId('li-at-wallet-a'), source: { type: 'account', accountId }, fxProviderId: bankB }, key());
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    // 21.60 HKD at 1.08 = 20.00 CNY.
    expect(paid.body).toMatchObject({ status: 'captured', amount: { amount: '21.60', currency: 'HKD' }, fx: { rateId, providerParticipantId: bankB, charged: { amount: '20.00', currency: 'CNY' }, captured: { amount: '20.00', currency: 'CNY' } } });
    const after = await positions();
    expect(await balance(accountId)).toBe(before.account - 20_00n);
    expect(after.providerCny - before.providerCny).toBe(20_00n);
    expect(after.providerHkd - before.providerHkd).toBe(-21_60n);
    expect(after.walletCny).toBe(before.walletCny);
    expect(await balance(settlementAccountId)).toBe(before.merchant + 21_60n - 22n);
    expect(await entriesOf(paid.body.id)).toEqual([
      { payer_participant_id: walletA, payee_participant_id: bankB, currency: 'CNY', amount_minor: 20_00n },
      { payer_participant_id: bankB, payee_participant_id: merchantB, currency: 'HKD', amount_minor: 21_60n },
    ]);
    await conserved();

    // A payment link in HKD, paid with the CNY card's token in wallet-a (the provider by default: the best rate in force).
    const link = await t.api('merchant-b').post(`/v1/merchants/${merchantId}/payment-links`, { amount: { amount: '54.00', currency: 'HKD' }, description: 'Dim sum', expiresInS: 600 }, key());
    expect(link.status).toBe(201);
    const cardBefore = await balance(card.fundingAccountId);
    const p1 = await positions();
    const viaLink = await t.api('wallet-a').post(`/v1/payment-links/${link.body.id}/pay`, { customerId: card.a.customerId, source: tokenSource(card.a, { amountMinor: 54_00n, currency: 'HKD', country: 'HK', now: clock.now() }) }, key());
    expect(viaLink.status, JSON.stringify(viaLink.body)).toBe(201);
    expect(viaLink.body).toMatchObject({ status: 'captured', amount: { amount: '54.00', currency: 'HKD' }, fx: { rateId, charged: { amount: '50.00', currency: 'CNY' }, captured: { amount: '50.00', currency: 'CNY' } } });
    expect(await balance(card.fundingAccountId)).toBe(cardBefore - 50_00n);
    const p2 = await positions();
    expect(p2.providerCny - p1.providerCny).toBe(50_00n);
    expect(p2.providerHkd - p1.providerHkd).toBe(-54_00n);
    expect(await entriesOf(viaLink.body.id)).toEqual([
      { payer_participant_id: bankA, payee_participant_id: bankB, currency: 'CNY', amount_minor: 50_00n },
      { payer_participant_id: bankB, payee_participant_id: merchantB, currency: 'HKD', amount_minor: 54_00n },
    ]);
    await conserved();

    // A provider whose HKD position cannot deliver (10.00 of liquidity): fx_liquidity_insufficient, nothing written.
    const op = t.api('operator');
    const created = await op.post('/v1/operator/participants', { kind: 'issuer', name: `Thin FX ${randomBytes(3).toString('hex')}`, country: 'HK', currencies: ['CNY', 'HKD'] });
    expect(created.status).toBe(201);
    const thin = created.body.participant.id as string;
    for (const currency of ['CNY', 'HKD']) expect((await op.post(`/v1/operator/participants/${thin}/liquidity`, { amount: { amount: '10.00', currency } }, key())).status).toBe(201);
    expect((await op.post('/v1/operator/fx/providers', { participantId: thin })).status).toBe(200);
    const token = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const thinRate = await t.api('anonymous').post('/v1/fx/provider-rates', { sendCurrency: 'CNY', receiveCurrency: 'HKD', tiers: [{ min: { amount: '0.01', currency: 'CNY' }, rate: '1.10' }], expiresAt: new Date(clock.nowMs() + 1_800_000).toISOString() }, { authorization: `Bearer ${token.body.access_token}`, ...key() });
    expect(thinRate.status).toBe(201);
    const qr2 = await t.api('merchant-b').post(`/v1/merchants/${merchantId}/qr-codes`, { kind: 'dynamic', amount: '22.00' }, key());
    const before2 = { ...(await counts()), account: await balance(accountId), ...(await positions()) };
    const short = await t.api('wallet-a').post('/v1/wallet/payments/qr', { payload: qr2.body.payload, customerId: demoCustomerId('li-at-wallet-a'), source: { type: 'account', accountId }, fxProviderId: thin }, key());
    expect(short.status, JSON.stringify(short.body)).toBe(503);
    expect(short.body.error.code).toBe('fx_liquidity_insufficient');
    expect({ ...(await counts()), account: await balance(accountId), ...(await positions()) }).toEqual(before2);
    expect(await balance(`fund_${thin}_HKD`)).toBe(10_00n);
    await conserved();
  });

  it('no provider quoting the pair, and an expired rate, are refused with their codes and nothing is written', async () => {
    const accountId = customerAccountId(demoCustomerId('li-at-wallet-a'), 'CNY');
    const qr = await t.api('merchant-b').post(`/v1/merchants/${merchantId}/qr-codes`, { kind: 'dynamic', amount: '10.80' }, key());
    expect(qr.status).toBe(201);
    const before = { ...(await counts()), account: await balance(accountId), card: await balance(card.fundingAccountId), held: await pending(card.fundingAccountId) };

    // The provider named (bank-a) posts no CNY→HKD rate.
    const none = await t.api('wallet-a').post('/v1/wallet/payments/qr', { payload: qr.body.payload, customerId: demoCustomerId('li-at-wallet-a'), source: { type: 'account', accountId }, fxProviderId: bankA }, key());
    expect(none.status).toBe(422);
    expect(none.body.error.code).toBe('fx_rate_unavailable');
    // A provider's rate for the pair is one of its own: a token in another wallet, the same.
    const noneToken = await t.api('wallet-a').post('/v1/wallet/payments/qr', { payload: qr.body.payload, customerId: card.a.customerId, source: tokenSource(card.a, { amountMinor: 10_80n, currency: 'HKD', country: 'HK', now: clock.now() }), fxProviderId: bankA }, key());
    expect(noneToken.body.error.code).toBe('fx_rate_unavailable');

    // Every CNY→HKD rate expires (the round one bank-b posted replaced its demo rate for the pair): a tap is refused.
    clock.advance(3_600_000 + 1_000);
    const expired = await tap('10.80', 10_80n);
    expect(expired.status).toBe(422);
    expect(expired.body.error.code).toBe('fx_rate_expired');
    expect(expired.body.error.details.rateId).toBe(rateId);

    expect({ ...(await counts()), account: await balance(accountId), card: await balance(card.fundingAccountId), held: await pending(card.fundingAccountId) }).toEqual(before);
    expect((await t.hub.db.query<{ paid: string | null }>('select paid_authorization_id as paid from pay_qr_codes where id = $1', [qr.body.id]))[0]?.paid).toBeNull();
    await conserved();

    // A payment in one currency needs no rate: the same card still pays a CNY merchant (no fx on the payment).
    const cny = await t.api('merchant-a').post('/v1/merchants/mer_demo_merchant_a/payments/tap', tapBody(card.a, { amount: '10.00', amountMinor: 10_00n, now: clock.now() }), key());
    expect(cny.status, JSON.stringify(cny.body)).toBe(201);
    expect(cny.body).toMatchObject({ amount: { amount: '10.00', currency: 'CNY' }, fx: null });
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoParticipantId } from '../demo/seed.ts';
import { crc16Hex } from '../emv/crc16.ts';
import { decodeMpm } from '../emv/mpm.ts';
import { createFakeClock, type FakeClock } from '../platform/clock.ts';
import { verifyWebhook } from '../webhooks/signing.ts';
import { availableEngines } from '../../test/support/engines.ts';
import { startTestHub, type TestHub } from '../../test/support/hub.ts';
import { completeOtpStepUp } from '../../test/support/stepup.ts';
import { cardInTwoWallets, cpmPayload, tapBody, tokenSource, type CardInTwoWallets, type Caller } from '../demo/fixtures.ts';

const engines = await availableEngines();
const MERCHANT_A = 'mer_demo_merchant_a';
let keyNo = 0;
const key = () => ({ 'idempotency-key': `k-${++keyNo}` });

describe.each(engines)('payments on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  const call: Caller = async (as, method, path, body, headers) => {
    const api = t.api(as);
    return method === 'GET' ? api.get(path, headers) : method === 'POST' ? api.post(path, body, headers) : api.patch(path, body, headers);
  };
  const balance = async (id: string) => {
    const r = await t.hub.transfers.ledger.getAccount(id);
    if (!r.ok) throw new Error(r.error.code);
    return { posted: r.value.creditsPostedMinor - r.value.debitsPostedMinor, pendingDebits: r.value.debitsPendingMinor };
  };
  const settlementA = `mst_${MERCHANT_A}_CNY`;
  const tap = (amount: string, minor: bigint, from = card.b, atc?: number) =>
    t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/tap`, tapBody(from, { amount, amountMinor: minor, now: clock.now(), ...(atc !== undefined ? { atc } : {}) }), key());

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    card = await cardInTwoWallets(t.hub, call);
    // These tests pay often with one customer: lift bank-a's shared customer-velocity threshold (risk rules are data).
    await t.hub.db.transaction((tx) => t.hub.transfers.risk.setRule(tx, { type: 'system' }, demoParticipantId('bank-a'), 'velocity', { action: 'step_up', score: 40, windowS: 600, maxCount: 100_000 }, true));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('seeds merchant profiles with settlement accounts, idempotently', async () => {
    const m = await t.api('merchant-a').get(`/v1/merchants/${MERCHANT_A}`);
    expect(m.status).toBe(200);
    expect(m.body).toMatchObject({ nameZh: '最佳运输', mcc: '4121', settlementAccountId: settlementA });
    expect((await t.api('merchant-b').get(`/v1/merchants/${MERCHANT_A}`)).status).toBe(404);
    await (await import('../demo/seed-payments.ts')).seedDemoPayments(t.hub);
    const [n] = await t.hub.db.query<{ n: bigint }>('select count(*) as n from merchants');
    expect(n?.n).toBe(2n);
  });

  it('MPM static: a code rendered as PNG and SVG, paid from wallet B with a card added in wallet A', async () => {
    const qr = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'static' }, key());
    expect(qr.status).toBe(201);
    const decoded = decodeMpm(qr.body.payload);
    expect(decoded.ok).toBe(true);
    expect(qr.body.payload).toContain('0211'.replace('0211', '010211'));
    expect(qr.body.payload).toContain('CN.HUTONG');
    expect(qr.body.payload).toContain('最佳运输');
    const png = await t.api('merchant-a').raw({ method: 'GET', url: qr.body.images.png });
    expect(png.status).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    const svg = await t.api('merchant-a').raw({ method: 'GET', url: qr.body.images.svg });
    expect(svg.headers['content-type']).toMatch(/^image\/svg\+xml/);
    expect(String(svg.body)).toContain('<svg');
    expect((await t.api('merchant-b').raw({ method: 'GET', url: qr.body.images.png })).status).toBe(404);

    const before = await balance(card.fundingAccountId);
    const noAmount = await t.api('wallet-b').post('/v1/wallet/payments/qr', { payload: qr.body.payload, customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: 1230n, now: clock.now() }) }, key());
    expect(noAmount.body.error.code).toBe('amount_required');
    const paid = await t.api('wallet-b').post('/v1/wallet/payments/qr', { payload: qr.body.payload, amount: { amount: '12.30', currency: 'CNY' }, customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: 1230n, now: clock.now() }) }, key());
    expect(paid.status).toBe(201);
    expect(paid.body).toMatchObject({ status: 'captured', channel: 'mpm_static', captured: { amount: '12.30' } });
    expect(paid.body.authorizationCode).toMatch(/^[A-Z0-9]{6}$/);
    const after = await balance(card.fundingAccountId);
    expect(before.posted - after.posted).toBe(1230n);
    const merchantView = await t.api('merchant-a').get(`/v1/payments/${paid.body.id}`);
    expect(merchantView.body.fee).toEqual({ amount: '0.08', currency: 'CNY' }); // 60 bps of 12.30, rounded up
    expect((await t.api('wallet-a').get(`/v1/wallet/payments/${paid.body.id}`)).status).toBe(404);
  });

  it('MPM dynamic: amount and expiry kept by the hub; tampered, replayed, mismatched and expired codes are declined', async () => {
    const qr = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'dynamic', amount: '45.00', billNumber: 'INV-1', expiresInS: 120 }, key());
    expect(qr.status).toBe(201);
    const payload: string = qr.body.payload;
    expect(payload).toContain('010212');
    const pay = (p: string, extra: Record<string, unknown> = {}) => t.api('wallet-b').post('/v1/wallet/payments/qr', { payload: p, customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: 4500n, now: clock.now() }), ...extra }, key());
    const before = await balance(card.fundingAccountId);
    const tampered = payload.slice(0, -1) + (payload.endsWith('0') ? '1' : '0');
    const bad = await pay(tampered);
    expect(bad.status).toBe(422);
    expect(bad.body.error).toMatchObject({ code: 'qr_invalid', details: { reason: 'crc_mismatch' } });
    // Amount changed and the CRC recomputed: the CRC is no signature, the hub's own record wins.
    const body = payload.slice(0, -8).replace('540545.00', '540501.00');
    const forged = `${body}6304${crc16Hex(`${body}6304`)}`;
    expect((await pay(forged)).body.error.code).toBe('amount_mismatch');
    expect((await pay(payload, { amount: { amount: '40.00', currency: 'CNY' } })).body.error.code).toBe('amount_mismatch');
    expect(await balance(card.fundingAccountId)).toEqual(before);
    const ok = await pay(payload);
    expect(ok.status).toBe(201);
    expect(ok.body.amount.amount).toBe('45.00');
    expect((await pay(payload)).body.error.code).toBe('qr_already_paid');
    const late = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'dynamic', amount: '5.00', expiresInS: 10 }, key());
    clock.advance(11_000);
    const expired = await t.api('wallet-b').post('/v1/wallet/payments/qr', { payload: late.body.payload, customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: 500n, now: clock.now() }) }, key());
    expect(expired.body.error.code).toBe('qr_expired');
  });

  it('MPM: an amount in another currency than the merchant’s is refused on static and dynamic codes, nothing moved', async () => {
    const pay = (payload: string, amount: { amount: string; currency: string }, minor: bigint) =>
      t.api('wallet-b').post('/v1/wallet/payments/qr', { payload, amount, customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: minor, now: clock.now() }) }, key());
    const fixed = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'static' }, key());
    const dynamic = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'dynamic', amount: '45.00', expiresInS: 120 }, key());
    const payer = await balance(card.fundingAccountId);
    const merchant = await balance(settlementA);
    for (const [payload, amount, minor] of [
      [fixed.body.payload, '1.00', 100n],
      [dynamic.body.payload, '45.00', 4500n], // the code's minor units, in HKD
    ] as const) {
      const refused = await pay(payload, { amount, currency: 'HKD' }, minor);
      expect(refused.status).toBe(422);
      expect(refused.body.error).toMatchObject({ code: 'payment_currency_mismatch', details: { currency: 'CNY' } });
    }
    expect(await balance(card.fundingAccountId)).toEqual(payer);
    expect(await balance(settlementA)).toEqual(merchant);
    // Nothing was recorded against the dynamic code either: its own currency still pays it.
    expect((await pay(dynamic.body.payload, { amount: '45.00', currency: 'CNY' }, 4500n)).status).toBe(201);
  });

  it('CPM: authorize, partial capture, several refunds never above captured; idempotent retries replay', async () => {
    const payload = cpmPayload(card.b, { amountMinor: 8000n, now: clock.now() });
    const headers = key();
    const body = { payload, amount: { amount: '80.00', currency: 'CNY' } };
    const auth = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, body, headers);
    expect(auth.status).toBe(201);
    expect(auth.body).toMatchObject({ status: 'authorized', channel: 'cpm', decidedBy: 'hosted' });
    const again = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, body, headers);
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.id).toBe(auth.body.id);
    expect((await balance(card.fundingAccountId)).pendingDebits).toBe(8000n);
    const noKey = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, body);
    expect(noKey.body.error.code).toBe('idempotency_key_required');
    // The same code presented again (new key): the counter was used.
    expect((await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, body, key())).body.error.code).toBe('atc_replayed');
    const mismatch = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, { payload: cpmPayload(card.b, { amountMinor: 8000n, now: clock.now() }), amount: { amount: '90.00', currency: 'CNY' } }, key());
    expect(mismatch.body.error.code).toBe('amount_mismatch');

    const id = auth.body.id;
    expect((await t.api('merchant-a').post(`/v1/payments/${id}/capture`, { amount: '80.01' }, key())).body.error.code).toBe('capture_exceeds_authorized');
    expect((await t.api('merchant-b').post(`/v1/payments/${id}/capture`, {}, key())).status).toBe(404);
    const capKey = key();
    const cap = await t.api('merchant-a').post(`/v1/payments/${id}/capture`, { amount: '60.00' }, capKey);
    expect(cap.body).toMatchObject({ status: 'captured', captured: { amount: '60.00' } });
    expect((await t.api('merchant-a').post(`/v1/payments/${id}/capture`, { amount: '60.00' }, capKey)).headers['idempotent-replayed']).toBe('true');
    expect((await t.api('merchant-a').post(`/v1/payments/${id}/capture`, {}, key())).body.error.code).toBe('already_captured');
    expect((await balance(card.fundingAccountId)).pendingDebits).toBe(0n);

    const refundKey = key();
    const r1 = await t.api('merchant-a').post(`/v1/payments/${id}/refunds`, { amount: '20.00' }, refundKey);
    expect(r1.status).toBe(201);
    const r1again = await t.api('merchant-a').post(`/v1/payments/${id}/refunds`, { amount: '20.00' }, refundKey);
    expect(r1again.body.refundId).toBe(r1.body.refundId);
    expect((await t.api('merchant-a').post(`/v1/payments/${id}/refunds`, { amount: '30.00' }, key())).status).toBe(201);
    const tooMuch = await t.api('merchant-a').post(`/v1/payments/${id}/refunds`, { amount: '10.01' }, key());
    expect(tooMuch.body.error.code).toBe('refund_exceeds_captured');
    expect((await t.api('merchant-b').post(`/v1/payments/${id}/refunds`, { amount: '1.00' }, key())).status).toBe(404);
    const final = await t.api('merchant-a').get(`/v1/payments/${id}`);
    expect(final.body.refunded.amount).toBe('50.00');
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
  });

  it('tap: authorize and void; replayed cryptogram and wrong counter are declined with no money moved', async () => {
    const auth = await tap('30.00', 3000n);
    expect(auth.status).toBe(201);
    const v = await t.api('merchant-a').post(`/v1/payments/${auth.body.id}/void`, {}, key());
    expect(v.body.status).toBe('voided');
    expect((await t.api('merchant-a').post(`/v1/payments/${auth.body.id}/capture`, {}, key())).body.error.code).toBe('payment_state');
    const before = await balance(card.fundingAccountId);
    const body = tapBody(card.b, { amount: '5.00', amountMinor: 500n, now: clock.now() });
    expect((await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/tap`, body, key())).status).toBe(201);
    const replay = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/tap`, body, key());
    expect(replay.status).toBe(402);
    expect(replay.body.error.code).toBe('atc_replayed');
    const lower = await tap('5.00', 500n, card.b, card.b.atc - 5);
    expect(lower.body.error.code).toBe('atc_replayed');
    const forged = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/tap`, { ...tapBody(card.b, { amount: '5.00', amountMinor: 500n, now: clock.now() }), amount: { amount: '500.00', currency: 'CNY' } }, key());
    expect(forged.body.error.code).toBe('cryptogram_invalid');
    const after = await balance(card.fundingAccountId);
    expect(before.pendingDebits + 500n).toBe(after.pendingDebits);
    expect(after.posted).toBe(before.posted);
    expect((await t.api('merchant-b').post(`/v1/merchants/${MERCHANT_A}/payments/tap`, tapBody(card.b, { amount: '1.00', amountMinor: 100n, now: clock.now() }), key())).status).toBe(404);
  });

  it("payment links: single use, paid from another wallet with a token or an account; a token outside its wallet's domain is declined", async () => {
    const link = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payment-links`, { amount: { amount: '18.80', currency: 'CNY' }, description: 'Airport transfer', expiresInS: 3600 }, key());
    expect(link.status).toBe(201);
    const view = await t.api('wallet-a').get(link.body.url);
    expect(view.body).toMatchObject({ amount: { amount: '18.80' }, merchant: { nameZh: '最佳运输' } });
    // wallet A presents wallet B's token: outside its domain.
    const foreign = await t.api('wallet-a').post(`${link.body.url}/pay`, { customerId: card.a.customerId, source: tokenSource(card.b, { amountMinor: 1880n, now: clock.now() }) }, key());
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('token_not_found');
    const paid = await t.api('wallet-a').post(`${link.body.url}/pay`, { customerId: card.a.customerId, source: tokenSource(card.a, { amountMinor: 1880n, now: clock.now() }) }, key());
    expect(paid.status).toBe(201);
    expect(paid.body.channel).toBe('link');
    expect((await t.api('wallet-b').post(`${link.body.url}/pay`, { customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: 1880n, now: clock.now() }) }, key())).body.error.code).toBe('payment_link_used');

    // An account source: wallet A's customer's own account.
    const created = await t.api('wallet-a').post('/v1/customers', { externalId: 'la-link-payer', name: 'Wang Fang', phone: '13900139011' }, key());
    expect(created.status).toBe(201);
    const walletCustomer: string = created.body.id;
    const accountId = await t.hub.db.transaction(async (tx) => {
      const opened = await t.hub.transfers.accounts.openCustomerAccount(tx, { type: 'system' }, demoParticipantId('wallet-a'), walletCustomer, 'CNY');
      if (!opened.ok) throw new Error(opened.error.code);
      await t.hub.transfers.accounts.deposit(tx, { type: 'system' }, demoParticipantId('wallet-a'), opened.value.id, 10_000n, 'CNY', 'dep-link-test');
      return opened.value.id;
    });
    const multi = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payment-links`, { amount: { amount: '40.00', currency: 'CNY' }, description: 'Monthly pass', expiresInS: 3600, multipleUse: true }, key());
    const one = await t.api('wallet-a').post(`${multi.body.url}/pay`, { customerId: walletCustomer, source: { type: 'account', accountId } }, key());
    expect(one.status).toBe(201);
    const two = await t.api('wallet-a').post(`${multi.body.url}/pay`, { customerId: walletCustomer, source: { type: 'account', accountId } }, key());
    expect(two.status).toBe(201);
    const three = await t.api('wallet-a').post(`${multi.body.url}/pay`, { customerId: walletCustomer, source: { type: 'account', accountId } }, key());
    expect(three.body.error.code).toBe('insufficient_funds');
    expect((await balance(accountId)).posted).toBe(2_000n);
  });

  it('spending controls each decline with their code', async () => {
    const bankA = demoParticipantId('bank-a');
    const setControls = (controls: object) => t.hub.db.transaction((tx) => t.hub.cards.cards.setControls(tx, { type: 'system' }, bankA, card.cardId, controls));
    const cases: [object, string][] = [
      [{ perTransactionMaxMinor: 1000n }, 'exceeds_transaction_limit'],
      [{ dailyLimitMinor: 1000n }, 'exceeds_daily_limit'],
      [{ monthlyLimitMinor: 1000n }, 'exceeds_monthly_limit'],
      [{ blockedMccs: ['4121'] }, 'mcc_blocked'],
      [{ allowedCountries: ['HK'] }, 'country_not_allowed'],
      [{ channels: ['qr'] }, 'channel_not_allowed'],
    ];
    for (const [controls, code] of cases) {
      expect((await setControls(controls)).ok).toBe(true);
      const res = await tap('20.00', 2000n);
      expect({ code: res.body.error?.code, status: res.status }).toEqual({ code, status: 402 });
    }
    await setControls({});
    expect((await tap('20.00', 2000n)).status).toBe(201);
    await t.hub.db.transaction((tx) => t.hub.cards.cards.transition(tx, { type: 'system' }, bankA, card.cardId, 'freeze'));
    const frozen = await tap('20.00', 2000n);
    expect(['token_not_active', 'card_not_active']).toContain(frozen.body.error.code);
    await t.hub.db.transaction((tx) => t.hub.cards.cards.transition(tx, { type: 'system' }, bankA, card.cardId, 'unfreeze'));
  });

  it('risk rules (data, per issuer) each stop the payment and raise an alert the issuer and the operator can see and resolve', async () => {
    const rule = (body: object) => t.api('bank-a').post('/v1/issuer/payment-risk-rules', body);
    const wallet = (extra: Record<string, unknown>, amount = '10.00', minor = 1000n) =>
      t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'static' }, key()).then((qr) =>
        t.api('wallet-b').post('/v1/wallet/payments/qr', { payload: qr.body.payload, amount: { amount, currency: 'CNY' }, customerId: fresh.b.customerId, source: tokenSource(fresh.b, { amountMinor: minor, now: clock.now() }), ...extra }, key()),
      );
    const expectRisk = async (res: Promise<{ status: number; body: any }>, code: string, ruleName: string) => {
      const r = await res;
      expect(r.body.error?.code, JSON.stringify(r.body)).toBe(code);
      expect(r.body.error.details.reasons).toContain(ruleName);
    };
    const fresh = await cardInTwoWallets(t.hub, call); // a card with no history: velocity counts start at zero
    expect((await rule({ rule: 'token_velocity', enabled: true, action: 'decline', score: 50, windowS: 600, maxCount: 1 })).status).toBe(200);
    expect((await tap('1.00', 100n, fresh.b)).status).toBe(201);
    await expectRisk(tap('1.00', 100n, fresh.b), 'risk_declined', 'token_velocity');
    await rule({ rule: 'token_velocity', enabled: false, action: 'decline', score: 50, windowS: 600, maxCount: 1 });
    await rule({ rule: 'card_velocity', enabled: true, action: 'decline', score: 50, windowS: 600, maxCount: 1 });
    await expectRisk(tap('1.00', 100n, fresh.a), 'risk_declined', 'card_velocity');
    await rule({ rule: 'card_velocity', enabled: false, action: 'decline', score: 50, windowS: 600, maxCount: 1 });
    expect((await wallet({ deviceId: 'phone-b' })).status).toBe(201);
    await rule({ rule: 'device_velocity', enabled: true, action: 'decline', score: 40, windowS: 600, maxCount: 1 });
    await expectRisk(wallet({ deviceId: 'phone-b' }), 'risk_declined', 'device_velocity');
    await rule({ rule: 'device_velocity', enabled: false, action: 'decline', score: 40, windowS: 600, maxCount: 1 });
    await rule({ rule: 'new_device', enabled: true, action: 'step_up', score: 30, minAmountMinor: 500 });
    const stepUp = await wallet({ deviceId: 'stolen-phone' });
    await expectRisk(Promise.resolve(stepUp), 'step_up_required', 'new_device');
    // A real step-up: the issuer delivers a one-time code to its cardholder; the wallet completes the challenge and pays
    // again with it (a fresh cryptogram, the same amount and merchant).
    const challengeId = await completeOtpStepUp(t.hub, (method, url, body) => (method === 'GET' ? t.api('wallet-b').get(url) : t.api('wallet-b').post(url, body)), stepUp);
    expect((await wallet({ deviceId: 'stolen-phone', stepUpChallengeId: challengeId })).status).toBe(201);
    // It pays once: another new device asks for a step-up again, and the used challenge does not answer it.
    expect((await wallet({ deviceId: 'stolen-phone-2', stepUpChallengeId: challengeId })).body.error?.code).toBe('step_up_invalid');
    await expectRisk(wallet({ deviceCountry: 'RU' }), 'risk_declined', 'country_mismatch');
    await rule({ rule: 'mcc', enabled: true, action: 'decline', score: 70, mccs: ['4121'] });
    await expectRisk(tap('1.00', 100n, fresh.b), 'risk_declined', 'mcc');
    await rule({ rule: 'mcc', enabled: true, action: 'decline', score: 70, mccs: ['7995'] });
    // The shared rules of src/risk, with bank-a's own thresholds.
    expect((await t.api('bank-a').post('/v1/risk/rules', { rule: 'large_amount', enabled: true, action: 'decline', score: 80, minRefEurCents: 5_000 })).status).toBe(200);
    await expectRisk(tap('900.00', 90_000n, fresh.b), 'risk_declined', 'large_amount');
    await t.api('bank-a').post('/v1/risk/rules', { rule: 'large_amount', enabled: true, action: 'decline', score: 80, minRefEurCents: 2_000_000 });
    await t.api('bank-a').post('/v1/risk/rules', { rule: 'amount_vs_history', enabled: true, action: 'decline', score: 30, multiple: 5, minHistory: 3, minRefEurCents: 100 });
    await expectRisk(tap('2000.00', 200_000n, fresh.b), 'risk_declined', 'amount_vs_history');
    await t.api('bank-a').post('/v1/risk/rules', { rule: 'amount_vs_history', enabled: false, action: 'decline', score: 30, multiple: 5, minHistory: 3, minRefEurCents: 100 });

    const alerts = await t.api('bank-a').get('/v1/risk/alerts?status=open');
    const rules = alerts.body.items.flatMap((a: any) => a.reasons.map((r: any) => r.rule));
    for (const r of ['token_velocity', 'card_velocity', 'device_velocity', 'new_device', 'country_mismatch', 'mcc', 'large_amount', 'amount_vs_history']) expect(rules).toContain(r);
    expect((await t.api('wallet-b').get('/v1/risk/alerts')).body.items.some((a: any) => String(a.channel).startsWith('card_'))).toBe(false);
    const operator = await t.api('operator').get('/v1/operator/risk/alerts?status=open');
    expect(operator.body.items.length).toBeGreaterThanOrEqual(alerts.body.items.length);
    const resolved = await t.api('bank-a').post(`/v1/risk/alerts/${alerts.body.items[0].id}/resolve`, { resolution: 'confirmed with the cardholder' });
    expect(resolved.body.status).toBe('resolved');
  });

  it('real-time issuer webhook: signed request; an answer in time decides, a timeout falls to stand-in rules', async () => {
    let delayMs = 0;
    let decision = 'approve';
    const seen: { ok: boolean }[] = [];
    const [row] = await t.hub.db.query<{ webhook_secret_sealed: string }>('select webhook_secret_sealed from participants where id = $1', [demoParticipantId('bank-a')]);
    const secret = await t.hub.vault.open(row?.webhook_secret_sealed ?? '');
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        seen.push({ ok: verifyWebhook(secret, req.headers as Record<string, string>, body, { nowS: Math.floor(clock.nowMs() / 1000) }).ok });
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ decision })), delayMs);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/authorize`;
      const set = await t.api('bank-a').post('/v1/issuer/authorization-settings', { mode: 'webhook', authUrl: url, deadlineMs: 400, standIn: { action: 'approve', maxAmountMinor: '10000' } });
      expect(set.status).toBe(200);
      const approved = await tap('3.00', 300n);
      expect(approved.body).toMatchObject({ status: 'authorized', decidedBy: 'issuer' });
      decision = 'decline';
      expect((await tap('3.00', 300n)).body.error.code).toBe('issuer_declined');
      delayMs = 1_500;
      const started = Date.now();
      const standIn = await tap('50.00', 5000n);
      expect(Date.now() - started).toBeLessThan(1_400);
      expect(standIn.body).toMatchObject({ status: 'authorized', decidedBy: 'stand_in' });
      const over = await tap('200.00', 20_000n);
      expect(over.body.error).toMatchObject({ code: 'issuer_unavailable', details: { reason: 'timeout' } });
      expect(seen.length).toBeGreaterThanOrEqual(4);
      expect(seen.every((s) => s.ok)).toBe(true);
    } finally {
      await t.api('bank-a').post('/v1/issuer/authorization-settings', { mode: 'hosted' });
      server.closeAllConnections();
      server.close();
    }
  });

  it('a batch of taps (one pipeline: decided together, committed together) and captures decides each one on its own: declined ones write nothing, accepted counters advance once', async () => {
    // Each card funded from its own holder's account (the default holder's is shared by every card of this file).
    const bank = (await t.hub.participants.get(demoParticipantId('bank-a')))!;
    const holder = (name: string) =>
      t.hub.db.transaction(async (tx) => {
        const c = await t.hub.customers.create(tx, { type: 'system' }, bank, { externalId: `batch-${name}-${engine}`, name });
        if (!c.ok) throw new Error(c.error.code);
        return c.value.id;
      });
    const poor = await cardInTwoWallets(t.hub, call, { depositMinor: 500n, holderId: await holder('Poor Holder') });
    const rich = await cardInTwoWallets(t.hub, call, { depositMinor: 1_000_000n, holderId: await holder('Rich Holder') });
    const merchant = demoParticipantId('merchant-a');
    const actor = { type: 'participant' as const, participantId: merchant };
    const item = (body: ReturnType<typeof tapBody>, merchantId = MERCHANT_A) => {
      const { amount, ...rest } = body;
      return { channel: 'tap' as const, actor, owner: merchant, merchantId, tap: { ...rest, amountMinor: BigInt(Math.round(Number(amount.amount) * 100)), currency: amount.currency } };
    };
    const now = clock.now();
    const first = tapBody(rich.a, { amount: '1.00', amountMinor: 100n, now });
    const second = tapBody(rich.a, { amount: '2.00', amountMinor: 200n, now });
    const replay = { ...tapBody(rich.a, { amount: '1.00', amountMinor: 100n, now, atc: first.atc }) };
    const tooBig = tapBody(poor.a, { amount: '9.00', amountMinor: 900n, now });
    const holdsBefore = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from ledger_pending where credit_account_id = $1`, [settlementA]);
    const results = await t.hub.payments.payments.pay([item(first), item(second), item(replay), item(tooBig), item(first, 'mer_nosuchmerchant0')]);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'ok', 'atc_replayed', 'insufficient_funds', 'merchant_not_found']);
    const holdsAfter = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from ledger_pending where credit_account_id = $1`, [settlementA]);
    expect(holdsAfter[0]!.n - holdsBefore[0]!.n).toBe(2n);
    // The accepted counters advanced to the highest one; the refused tap's card kept its counter (nothing written).
    const atcOf = async (tokenRef: string) => (await t.hub.db.query<{ last_atc: number | null }>('select last_atc from card_tokens where token_ref = $1', [tokenRef]))[0]?.last_atc;
    expect(await atcOf(rich.a.tokenRef)).toBe(second.atc);
    expect(await atcOf(poor.a.tokenRef)).toBeNull();
    const ids = results.flatMap((r) => (r.ok ? [r.value.id] : []));
    expect((await t.hub.db.query('select id from pay_authorizations where id = any($1::text[])', [ids])).length).toBe(2);

    const cap = (authorizationId: string, amountMinor?: bigint) => ({ actor, owner: merchant, authorizationId, amountMinor });
    const captured = await t.hub.db.transaction((tx) =>
      t.hub.payments.payments.captureMany(tx, [cap(ids[0]!), cap(ids[0]!), cap(ids[1]!, 999n), cap(ids[1]!, 150n), cap('pay_nosuchpayment000')]),
    );
    expect(captured.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'already_captured', 'capture_exceeds_authorized', 'ok', 'payment_not_found']);
    const rows = await t.hub.db.query<{ id: string; status: string; captured_minor: bigint }>('select id, status, captured_minor from pay_authorizations where id = any($1::text[]) order by created_at, id', [ids]);
    expect(Object.fromEntries(rows.map((r) => [r.id, `${r.status}:${r.captured_minor}`]))).toEqual({ [ids[0]!]: 'captured:100', [ids[1]!]: 'captured:150' });
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('uncaptured holds expire with the ledger pending and cannot be captured', async () => {
    const auth = await tap('7.00', 700n);
    expect(auth.status).toBe(201);
    clock.advance(8 * 24 * 3600_000); // past the 7-day hold (access tokens expire too: services from here on)
    const swept = await t.hub.payments.sweep();
    expect(swept.expired).toBeGreaterThanOrEqual(1);
    const merchantA = demoParticipantId('merchant-a');
    expect((await t.hub.payments.payments.get({ participantId: merchantA, as: 'merchant' }, auth.body.id))?.status).toBe('expired');
    const [capture] = await t.hub.db.transaction((tx) => t.hub.payments.payments.captureMany(tx, [{ actor: { type: 'system' }, owner: merchantA, authorizationId: auth.body.id }]));
    expect(capture?.ok ? 'captured' : capture?.error.code).toBe('payment_state');
    expect((await balance(card.fundingAccountId)).pendingDebits).toBe(0n);
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
  });
});

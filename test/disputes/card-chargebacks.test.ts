import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardInTwoWallets, tapBody, type CardInTwoWallets } from '../../src/demo/fixtures.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { MIGRATIONS_DIR, splitStatements } from '../../src/platform/migrate.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { expectLedgerBalanced, apiCallOf } from '../support/checks.ts';

/**
 * A chargeback of a card payment paid at the hub and the payment's refunds share one amount: what was captured. The
 * chargeback is recorded on the payment in the transaction that moves its money, so the merchant's participant cannot
 * refund the same money again (the customer would get it back twice), refunds made after the dispute was opened are
 * counted when the issuer charges back (refused, nothing moved, when they left less than the dispute claims), a
 * representment makes the money refundable again, and a partial chargeback leaves the rest refundable. Exact balances
 * of the cardholder's and the merchant's accounts after each step, and the ledger conserves, on both engines.
 */
const engines = await availableEngines();
let keyNo = 0;
const key = () => ({ 'idempotency-key': `chb-${Date.now()}-${++keyNo}` });
const MERCHANT = 'mer_demo_merchant_a';

describe.each(engines)('card chargebacks and refunds of the same payment on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  let merchantAccount: string;

  const balance = async (accountId: string) => {
    const a = await t.hub.ledger.getAccount(accountId);
    if (!a.ok) throw new Error(accountId);
    return a.value.creditsPostedMinor - a.value.debitsPostedMinor;
  };
  const balances = async () => ({ customer: await balance(card.fundingAccountId), merchant: await balance(merchantAccount) });
  const conserved = () => expectLedgerBalanced(t);
  /** A captured card payment of 李伟's card at merchant-a; its id, the balances before it, and the merchant's fee. */
  const paid = async (amount: string, amountMinor: bigint) => {
    const before = await balances();
    const res = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/payments/tap`, tapBody(card.a, { amount, amountMinor, now: clock.now() }), key());
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    if (res.body.status !== 'captured') expect((await t.api('merchant-a').post(`/v1/payments/${res.body.id}/capture`, {}, key())).status).toBe(200);
    const id = String(res.body.id);
    const payment = await t.api('merchant-a').get(`/v1/payments/${id}`);
    expect(payment.body).toMatchObject({ status: 'captured', captured: { amount, currency: 'CNY' }, refunded: { amount: '0.00' }, chargedBack: { amount: '0.00', currency: 'CNY' } });
    const fee = BigInt(Math.round(Number(payment.body.fee.amount) * 100));
    expect(await balances()).toEqual({ customer: before.customer - amountMinor, merchant: before.merchant + amountMinor - fee });
    return { id, before, fee };
  };
  const dispute = async (paymentId: string, amount?: string) => {
    const res = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: paymentId, reason: 'goods not received', ...(amount !== undefined ? { amount: { amount, currency: 'CNY' } } : {}) }, key());
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return String(res.body.id);
  };
  const chargeback = (disputeId: string) => t.api('bank-a').post(`/v1/disputes/${disputeId}/chargeback`, { evidence: 'cardholder statement' }, key());
  const refund = (paymentId: string, amount?: string) => t.api('merchant-a').post(`/v1/payments/${paymentId}/refunds`, amount === undefined ? {} : { amount }, key());
  const paymentOf = async (paymentId: string) => (await t.api('merchant-a').get(`/v1/payments/${paymentId}`)).body;

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    const call = apiCallOf(t);
    card = await cardInTwoWallets(t.hub, call);
    merchantAccount = String((await t.api('merchant-a').get(`/v1/merchants/${MERCHANT}`)).body.settlementAccountId);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('charged back in full: the merchant cannot refund any of it again, and a later dispute claims nothing; the customer got the money back once', async () => {
    const { id, before, fee } = await paid('100.00', 10_000n);
    const disputeId = await dispute(id);
    const charged = await chargeback(disputeId);
    expect(charged.status, JSON.stringify(charged.body)).toBe(200);
    expect(charged.body.status).toBe('chargeback');
    expect(await balances()).toEqual({ customer: before.customer, merchant: before.merchant - fee });
    expect(await paymentOf(id)).toMatchObject({ captured: { amount: '100.00' }, refunded: { amount: '0.00' }, chargedBack: { amount: '100.00', currency: 'CNY' } });
    // The payer's wallet sees it too.
    expect((await t.api('wallet-a').get(`/v1/wallet/payments/${id}`)).body.chargedBack).toEqual({ amount: '100.00', currency: 'CNY' });

    // Refunding what was charged back: refused, whatever the amount, nothing moved.
    for (const amount of ['0.01', '100.00', undefined]) {
      const again = await refund(id, amount);
      expect(again.status, JSON.stringify(again.body)).toBe(422);
      expect(again.body.error).toMatchObject({ code: 'refund_exceeds_captured', details: { refundable: '0.00' } });
    }
    expect(await balances()).toEqual({ customer: before.customer, merchant: before.merchant - fee });
    expect(await t.hub.db.query('select id from pay_refunds where authorization_id = $1', [id])).toEqual([]);

    // The chargeback stands (the merchant accepts): a new dispute of the payment has nothing left to claim.
    expect((await t.api('merchant-a').post(`/v1/disputes/${disputeId}/accept`, {}, key())).body.status).toBe('won_by_customer');
    const second = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: id, reason: 'again' }, key());
    expect(second.status).toBe(422);
    expect(second.body.error).toMatchObject({ code: 'dispute_amount_invalid', details: { disputable: { amount: '0.00', currency: 'CNY' } } });
    expect(await balances()).toEqual({ customer: before.customer, merchant: before.merchant - fee });
    await conserved();
  });

  it('refunded after the dispute was opened: the issuer’s chargeback of the full amount is dispute_amount_invalid, nothing moved, the dispute still open', async () => {
    const { id, before, fee } = await paid('100.00', 10_000n);
    const disputeId = await dispute(id);
    const refunded = await refund(id, '60.00');
    expect(refunded.status, JSON.stringify(refunded.body)).toBe(201);
    const afterRefund = { customer: before.customer - 4_000n, merchant: before.merchant + 4_000n - fee };
    expect(await balances()).toEqual(afterRefund);

    const charged = await chargeback(disputeId);
    expect(charged.status).toBe(422);
    expect(charged.body.error).toMatchObject({ code: 'dispute_amount_invalid', details: { disputable: { amount: '40.00', currency: 'CNY' }, paymentId: id } });
    expect(await balances()).toEqual(afterRefund);
    expect(await paymentOf(id)).toMatchObject({ refunded: { amount: '60.00' }, chargedBack: { amount: '0.00' } });
    const still = await t.api('bank-a').get(`/v1/disputes/${disputeId}`);
    expect(still.body.status).toBe('opened');
    expect(still.body.steps.map((s: { action: string }) => s.action)).toEqual(['opened']);
    expect((await t.hub.db.query<{ chargeback_transfer_id: string | null }>('select chargeback_transfer_id from disputes where id = $1', [disputeId]))[0]?.chargeback_transfer_id).toBeNull();
    // The rest is still the merchant's to refund.
    expect((await refund(id)).body.amount).toEqual({ amount: '40.00', currency: 'CNY' });
    expect(await balances()).toEqual({ customer: before.customer, merchant: before.merchant - fee });
    await conserved();
  });

  it('a representment gives the charged-back amount back to the merchant: refundable again, up to what is left and no more', async () => {
    const { id, before, fee } = await paid('100.00', 10_000n);
    const disputeId = await dispute(id);
    expect((await chargeback(disputeId)).status).toBe(200);
    expect(await balances()).toEqual({ customer: before.customer, merchant: before.merchant - fee });
    const represented = await t.api('merchant-a').post(`/v1/disputes/${disputeId}/represent`, { evidence: 'courier record: delivered and signed for' }, key());
    expect(represented.status, JSON.stringify(represented.body)).toBe(200);
    expect(represented.body.status).toBe('won_by_respondent');
    expect(await balances()).toEqual({ customer: before.customer - 10_000n, merchant: before.merchant + 10_000n - fee });
    expect(await paymentOf(id)).toMatchObject({ refunded: { amount: '0.00' }, chargedBack: { amount: '0.00' } });

    expect((await refund(id, '70.00')).status).toBe(201);
    expect((await refund(id, '30.01')).body.error).toMatchObject({ code: 'refund_exceeds_captured', details: { refundable: '30.00' } });
    expect((await refund(id, '30.00')).status).toBe(201);
    expect(await balances()).toEqual({ customer: before.customer, merchant: before.merchant - fee });
    expect(await paymentOf(id)).toMatchObject({ refunded: { amount: '100.00' }, chargedBack: { amount: '0.00' } });
    await conserved();
  });

  it('a partial chargeback of 40.00 of 100.00 leaves 60.00 refundable, and a second dispute claims at most that', async () => {
    const { id, before, fee } = await paid('100.00', 10_000n);
    // What the issuer's insights count as spent at the merchant (net of refunds and chargebacks).
    const spentAtMerchant = async () => {
      const i = await t.api('bank-a').get('/v1/issuer/insights');
      expect(i.status).toBe(200);
      // CNY: two decimals, so the digits are the minor units.
      return BigInt(((i.body.byMerchant as { key: string; spend: { amount: string } }[]).find((m) => m.key === MERCHANT)?.spend.amount ?? '0.00').replace('.', ''));
    };
    const spent0 = await spentAtMerchant();
    const disputeId = await dispute(id, '40.00');
    expect((await chargeback(disputeId)).status).toBe(200);
    expect(await spentAtMerchant()).toBe(spent0 - 4_000n);
    expect(await balances()).toEqual({ customer: before.customer - 6_000n, merchant: before.merchant + 6_000n - fee });
    expect(await paymentOf(id)).toMatchObject({ chargedBack: { amount: '40.00' } });

    // The merchant lets the chargeback stand; the customer disputes again: at most the 60.00 left.
    expect((await t.api('merchant-a').post(`/v1/disputes/${disputeId}/accept`, {}, key())).status).toBe(200);
    const tooMuch = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: id, reason: 'the rest too', amount: { amount: '60.01', currency: 'CNY' } }, key());
    expect(tooMuch.body.error).toMatchObject({ code: 'dispute_amount_invalid', details: { disputable: { amount: '60.00', currency: 'CNY' } } });

    expect((await refund(id, '60.01')).body.error).toMatchObject({ code: 'refund_exceeds_captured', details: { refundable: '60.00' } });
    const rest = await refund(id);
    expect(rest.status, JSON.stringify(rest.body)).toBe(201);
    expect(rest.body.amount).toEqual({ amount: '60.00', currency: 'CNY' });
    expect(rest.body.payment).toMatchObject({ refunded: { amount: '60.00' }, chargedBack: { amount: '40.00' } });
    // The customer got back exactly the 100.00 paid: 40.00 charged back, 60.00 refunded.
    expect(await balances()).toEqual({ customer: before.customer, merchant: before.merchant - fee });
    expect((await refund(id, '0.01')).body.error.code).toBe('refund_exceeds_captured');
    await conserved();
  });

  it('the migration records the chargebacks made before the payment counted them: standing ones only, not a represented one', async () => {
    const standing = await paid('30.00', 3_000n);
    const d1 = await dispute(standing.id, '12.50');
    expect((await chargeback(d1)).status).toBe(200);
    const accepted = await paid('20.00', 2_000n);
    const d2 = await dispute(accepted.id);
    expect((await chargeback(d2)).status).toBe(200);
    expect((await t.api('merchant-a').post(`/v1/disputes/${d2}/accept`, {}, key())).status).toBe(200);
    const represented = await paid('10.00', 1_000n);
    const d3 = await dispute(represented.id);
    expect((await chargeback(d3)).status).toBe(200);
    expect((await t.api('merchant-a').post(`/v1/disputes/${d3}/represent`, { evidence: 'delivered' }, key())).status).toBe(200);
    const ids = [standing.id, accepted.id, represented.id];
    const chargedBack = async () => (await t.hub.db.query<{ id: string; charged_back_minor: bigint }>('select id, charged_back_minor from pay_authorizations where id = any($1::text[])', [ids])).map((r) => [r.id, BigInt(r.charged_back_minor)]).sort();
    const expected = [[standing.id, 1_250n], [accepted.id, 2_000n], [represented.id, 0n]].sort();
    expect(await chargedBack()).toEqual(expected);
    // As before the column: nothing recorded; the migration's backfill (its statements after the column's) restores it.
    await t.hub.db.query('update pay_authorizations set charged_back_minor = 0 where id = any($1::text[])', [ids]);
    const statements = splitStatements(readFileSync(join(MIGRATIONS_DIR, '0041_card_chargebacks.sql'), 'utf8'));
    expect(statements[0]).toMatch(/^alter table pay_authorizations add column charged_back_minor/);
    for (const statement of statements.slice(1)) await t.hub.db.query(statement);
    expect(await chargedBack()).toEqual(expected);
  });

  it('a card payment converted between currencies cannot be disputed at the hub (currency_mismatch), nothing written', async () => {
    const res = await t.api('merchant-b').post('/v1/merchants/mer_demo_merchant_b/payments/tap', tapBody(card.a, { amount: '20.00', amountMinor: 2_000n, currency: 'HKD', country: 'HK', now: clock.now() }), key());
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    if (res.body.status !== 'captured') expect((await t.api('merchant-b').post(`/v1/payments/${res.body.id}/capture`, {}, key())).status).toBe(200);
    expect(res.body.fx).not.toBeNull();
    const opened = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: res.body.id, reason: 'not received' }, key());
    expect(opened.status).toBe(422);
    expect(opened.body.error.code).toBe('currency_mismatch');
    expect(await t.hub.db.query('select id from disputes where payment_id = $1', [res.body.id])).toEqual([]);
  });

  it('a dispute amount in another currency than the payment’s is currency_mismatch whatever its size, nothing written', async () => {
    const { id } = await paid('100.00', 10_000n);
    const after = await balances();
    for (const amount of ['200.00', '50.00']) {
      const res = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: id, reason: 'not received', amount: { amount, currency: 'HKD' } }, key());
      expect(res.status).toBe(422);
      expect(res.body.error).toMatchObject({ code: 'currency_mismatch', details: { currency: 'CNY' } });
    }
    expect(await t.hub.db.query('select id from disputes where payment_id = $1', [id])).toEqual([]);
    expect(await balances()).toEqual(after);
  });
});

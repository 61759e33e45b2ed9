import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTED_CUSTOMERS } from '../../src/demo/bank/connect.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { resetSwitches, startConnectedNetwork, type ConnectedNetwork } from './support.ts';

/**
 * Disputes and fraud recalls of payments whose money moved at a bank that keeps its own books (bank-c, the reference
 * bank). The hub can only return or freeze money in its own accounts: for such a payment that would credit (or
 * freeze) the bank's position, never its customer, with no message to the bank. So the hub refuses to open them with
 * a clear code — `dispute_at_connected_bank` (a merchant payment paid from an account at the bank, a P2P payment with
 * a connected side) and `dispute_internal_payment` (a red packet's own payments) — and nothing moves at the hub or at
 * the bank. The merchant's refund (which the bank accepts) stays the way back, and still works after the refusal.
 */
const engines = await availableEngines();
let n = 0;
const key = () => ({ 'idempotency-key': `cdsp-${Date.now()}-${++n}` });
const MERCHANT_A = 'mer_demo_merchant_a';
const MERCHANT_ACCOUNT = `mst_${MERCHANT_A}_CNY`;

describe.each(engines)('disputes and recalls of payments at a connected bank on %s', (engine) => {
  let net: ConnectedNetwork;
  const wang = CONNECTED_CUSTOMERS[0]!;
  const wangId = demoCustomerId('wang-at-bank-c');
  const wangHubAccount = `acc_${wangId}_CNY`;
  const li = () => net.t.demo.customers.get('li-at-wallet-a')!;
  const liAccount = () => `acc_${li()}_CNY`;
  const wallet = () => net.t.api('wallet-a');
  const merchant = () => net.t.api('merchant-a');
  const snapshot = async () => ({ pos: await net.position(), merchant: await net.balance(MERCHANT_ACCOUNT), li: await net.balance(liAccount()), atBank: (await net.bank.balance(wang.bankAccount))!, address: await net.balance(wangHubAccount) });
  const disputesOf = async (paymentId: string) => net.t.hub.db.query('select id from disputes where payment_id = $1 union all select id from recalls where payment_id = $1', [paymentId]);
  const dispute = (body: object) => wallet().post('/v1/wallet/disputes', { customerId: li(), reason: 'not what I paid for', ...body }, key());
  const recall = (transferId: string) => wallet().post('/v1/wallet/recalls', { customerId: li(), transferId, reason: 'scam' }, key());
  /** Refused with `code`, nothing recorded for the payment, nothing moved at the hub or at the bank. */
  const expectRefused = async (res: { status: number; body: any }, code: string, paymentId: string, before: Awaited<ReturnType<typeof snapshot>>) => {
    expect(res.status).toBe(422);
    expect(res.body.error).toEqual(expect.objectContaining({ code, details: expect.objectContaining({ paymentId }) }));
    expect(await disputesOf(paymentId)).toEqual([]);
    expect(await snapshot()).toEqual(before);
    await net.expectConserved();
  };
  /** li pays `payee` P2P, from li's hub account or (linked) from 王芳's account at the bank. */
  const liPays = async (payee: string, amount: string, sourceAccountId?: string) => {
    const q = await wallet().post('/v1/transfers/quotes', { customerId: li(), payee: { type: 'handle', value: payee }, sendAmount: { amount, currency: 'CNY' }, ...(sourceAccountId !== undefined ? { sourceAccountId } : {}) });
    expect(q.status).toBe(201);
    const pay = await wallet().post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    expect(pay.status).toBe(201);
    expect(pay.body.status).toBe('completed');
    await net.deliverAll(pay.body.id);
    return pay.body.id as string;
  };

  beforeAll(async () => {
    net = await startConnectedNetwork(engine, { deadlineMs: 1_500 });
    await net.link('wallet-a', li());
  }, 240_000);
  afterAll(async () => net?.close());
  beforeEach(() => resetSwitches(net.bank));

  it('a merchant payment paid from the account at the bank: its dispute is refused (dispute_at_connected_bank), nothing moves; the merchant’s refund still credits the customer at the bank', async () => {
    const start = await snapshot();
    const qr = await merchant().post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'dynamic', amount: '12.00' }, key());
    expect(qr.status).toBe(201);
    const paid = await wallet().post('/v1/wallet/payments/qr', { payload: qr.body.payload, customerId: li(), source: { type: 'account', accountId: wangHubAccount } }, key());
    expect(paid.status).toBe(201);
    expect(paid.body.status).toBe('captured');
    const id = paid.body.id as string;
    await net.deliverAll(id);
    const fee = BigInt(Math.round(Number((await merchant().get(`/v1/payments/${id}`)).body.fee.amount) * 100));
    const before = await snapshot();
    expect(before).toEqual({ ...start, pos: start.pos - 1200n, merchant: start.merchant + 1200n - fee, atBank: start.atBank - 1200n });

    // The whole payment, a part of it: refused before anything is written; the bank is not asked.
    await expectRefused(await dispute({ cardPaymentId: id }), 'dispute_at_connected_bank', id, before);
    const part = await dispute({ cardPaymentId: id, amount: { amount: '2.00', currency: 'CNY' } });
    await expectRefused(part, 'dispute_at_connected_bank', id, before);
    expect(part.body.error.details.bankParticipantId).toBe(net.bankC);
    expect(await net.t.hub.connectors.messages(id)).toEqual([expect.objectContaining({ kind: 'commit', acked: true })]);

    // The merchant's refund is the way back: the bank accepts the credit, its customer is credited there.
    const refund = await merchant().post(`/v1/payments/${id}/refunds`, {}, key());
    expect(refund.status).toBe(201);
    await net.deliverAll(refund.body.refundId);
    expect(await snapshot()).toEqual({ ...start, merchant: start.merchant - fee });
    await net.expectConserved();
  });

  it('a P2P payment from the account at the bank (payer connected): dispute and recall refused (dispute_at_connected_bank), nothing frozen or moved', async () => {
    const id = await liPays('zhangmin', '3.00', wangHubAccount);
    const before = await snapshot();
    const disputed = await dispute({ transferId: id });
    await expectRefused(disputed, 'dispute_at_connected_bank', id, before);
    expect(disputed.body.error.details.connected).toEqual(['payer']);
    await expectRefused(await recall(id), 'dispute_at_connected_bank', id, before);
  });

  it('a P2P payment to the bank’s customer (payee connected): dispute and recall refused (dispute_at_connected_bank) — the money is in the bank’s books, the hub cannot freeze it', async () => {
    const id = await liPays('wangfang', '4.00');
    const before = await snapshot();
    const recalled = await recall(id);
    await expectRefused(recalled, 'dispute_at_connected_bank', id, before);
    expect(recalled.body.error.details.connected).toEqual(['payee']);
    await expectRefused(await dispute({ transferId: id }), 'dispute_at_connected_bank', id, before);
    // No hold anywhere: the customer's hub address holds nothing, its position is untouched.
    expect(await net.t.hub.db.query('select recall_id from recall_holds where account_id = $1', [wangHubAccount])).toEqual([]);
  });

  it('a red packet’s own payments (its funding from the bank, its refund to the bank, a connected member’s share) cannot be disputed or recalled (dispute_internal_payment)', async () => {
    const made = await wallet().post(
      '/v1/transfers/red-packets',
      { customerId: li(), sourceAccountId: wangHubAccount, total: { amount: '4.00', currency: 'CNY' }, shares: 2, mode: 'equal', members: [{ type: 'handle', value: 'zhangmin' }, { type: 'handle', value: 'wangfang' }], expiresInS: 60 },
      key(),
    );
    expect(made.status).toBe(201);
    const fundingId = made.body.fundingPaymentId as string;
    expect(fundingId).toMatch(/^pay_rpf_/);
    await net.deliverAll(fundingId);
    const claimed = await net.bankApi('POST', `/v1/transfers/red-packets/${made.body.id}/claim`, { customerId: wangId }, key());
    expect(claimed.status).toBe(201);
    const claimId = claimed.body.paymentId as string;
    expect(claimId).toMatch(/^pay_rpk_/);
    await net.deliverAll(claimId);
    net.clock.advance(61_000);
    await net.t.hub.transfers.sweep();
    const [refund] = await net.t.hub.db.query<{ id: string }>(`select id from payments where id like $1`, [`pay_rpr_${String(made.body.id).slice(4)}%`]);
    expect(refund?.id).toMatch(/^pay_rpr_/);
    await net.deliverAll(refund!.id);
    const before = await snapshot();
    // Each is written with the packet's sender (li at wallet-a) as its payer: li's wallet could name any of them.
    for (const id of [fundingId, claimId, refund!.id]) {
      expect(await net.t.hub.db.query('select payer_participant_id, payer_customer_id from payments where id = $1', [id])).toEqual([{ payer_participant_id: demoParticipantId('wallet-a'), payer_customer_id: li() }]);
      await expectRefused(await dispute({ transferId: id }), 'dispute_internal_payment', id, before);
      await expectRefused(await recall(id), 'dispute_internal_payment', id, before);
    }
  });

  it('a hosted P2P payment is still disputed and recalled as before', async () => {
    const id = await liPays('zhangmin', '1.00');
    const opened = await dispute({ transferId: id });
    expect(opened.status).toBe(201);
    expect(opened.body.status).toBe('opened');
    await net.expectConserved();
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTED_CUSTOMERS } from '../../src/demo/bank/connect.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { resetSwitches, startConnectedNetwork, type ConnectedNetwork } from './support.ts';

/**
 * Disputes and fraud recalls of payments whose money moved at a bank that keeps its own books (bank-c, the reference
 * bank). A chargeback of a merchant payment paid from an account at the bank credits the customer at the bank through
 * the refund's path (the bank accepts, the hub moves, the commit through the outbox; refused or late: nothing moves
 * and the dispute stays open), never the bank's position silently. What the hub cannot do in its own accounts it
 * refuses with a clear code, nothing written or moved: `dispute_at_connected_bank` (a P2P payment with a connected
 * side, a representment of a chargeback credited at the bank) and `dispute_internal_payment` (a red packet's own
 * payments). Exact balances at the hub and the bank, and conservation across both, after each step.
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

  /** A dynamic QR paid by li from 王芳's account at the bank (linked), committed there; its id and the merchant's fee. */
  const paidAtBank = async (amount: string) => {
    const qr = await merchant().post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'dynamic', amount }, key());
    expect(qr.status).toBe(201);
    const paid = await wallet().post('/v1/wallet/payments/qr', { payload: qr.body.payload, customerId: li(), source: { type: 'account', accountId: wangHubAccount } }, key());
    expect(paid.status).toBe(201);
    expect(paid.body.status).toBe('captured');
    await net.deliverAll(paid.body.id);
    const fee = BigInt(Math.round(Number((await merchant().get(`/v1/payments/${paid.body.id}`)).body.fee.amount) * 100));
    return { id: paid.body.id as string, fee };
  };
  const chargebackOf = async (disputeId: string) => (await net.t.hub.db.query<{ status: string; chargeback_transfer_id: string | null }>('select status, chargeback_transfer_id from disputes where id = $1', [disputeId]))[0];
  const chargeback = (disputeId: string, headers = key()) => net.bankApi('POST', `/v1/disputes/${disputeId}/chargeback`, { evidence: 'cardholder statement: never delivered' }, headers);
  const steps = async (disputeId: string) => (await net.t.hub.disputes.get(disputeId))?.steps.map((x) => x.action);

  it('a chargeback of a merchant payment paid from the account at the bank credits the customer AT THE BANK (accept, then commit through the outbox), never the position silently; a replay credits once; no representment through the hub', async () => {
    const start = await snapshot();
    const { id, fee } = await paidAtBank('12.00');
    const before = await snapshot();
    expect(before).toEqual({ ...start, pos: start.pos - 1200n, merchant: start.merchant + 1200n - fee, atBank: start.atBank - 1200n });
    const opened = await dispute({ cardPaymentId: id });
    expect(opened.status).toBe(201);
    expect(opened.body).toEqual(expect.objectContaining({ status: 'opened', amount: { amount: '12.00', currency: 'CNY' } }));
    const disputeId = opened.body.id as string;
    // The bank issued the payment (its customer's account): it decides the chargeback.
    expect((await merchant().post(`/v1/disputes/${disputeId}/chargeback`, { evidence: 'x' }, key())).body.error.code).toBe('dispute_not_party');
    const headers = key();
    const charged = await chargeback(disputeId, headers);
    expect(charged.status).toBe(200);
    expect(charged.body.status).toBe('chargeback');
    const refundId = (await chargebackOf(disputeId))!.chargeback_transfer_id!;
    expect(refundId).toMatch(/^rfd_/);
    expect(await steps(disputeId)).toEqual(['opened', 'chargeback_asked_bank', 'chargeback']);
    // The hub moved merchant → its owner's position → the bank's position; the bank credits once the commit is delivered.
    expect(await net.position()).toBe(before.pos + 1200n);
    expect(await net.balance(MERCHANT_ACCOUNT)).toBe(before.merchant - 1200n);
    await net.deliverAll(refundId);
    expect(await net.t.hub.connectors.messages(refundId)).toEqual([expect.objectContaining({ kind: 'commit', acked: true, participantId: net.bankC })]);
    expect(await net.bank.hold(refundId)).toEqual({ state: 'committed', side: 'credit', amountMinor: 1200n });
    const after = { ...before, pos: before.pos + 1200n, merchant: before.merchant - 1200n, atBank: before.atBank + 1200n };
    expect(await snapshot()).toEqual(after);
    expect(after).toEqual({ ...start, merchant: start.merchant - fee });
    await net.expectConserved();
    // The same Idempotency-Key: the same answer; the bank not asked again.
    const again = await chargeback(disputeId, headers);
    expect(again).toEqual(charged);
    expect((await net.bank.db.query('select key from answers where key like $1', [`accept:${refundId}%`])).length).toBe(1);
    expect(await snapshot()).toEqual(after);
    // The chargeback took what was left to refund; the merchant cannot refund it again.
    expect((await merchant().post(`/v1/payments/${id}/refunds`, {}, key())).body.error.code).toBe('refund_exceeds_captured');
    // A representment would debit the customer at the bank: refused; accepting closes it.
    const represent = await merchant().post(`/v1/disputes/${disputeId}/represent`, { evidence: 'delivered' }, key());
    expect(represent.status).toBe(422);
    expect(represent.body.error.code).toBe('dispute_at_connected_bank');
    expect((await merchant().post(`/v1/disputes/${disputeId}/accept`, {}, key())).body.status).toBe('won_by_customer');
    expect(await snapshot()).toEqual(after);
    await net.expectConserved();
  });

  it('the bank refuses the chargeback’s credit (AC04): refund_rejected, nothing moved at the hub or at the bank, the dispute stays open; charged back once the bank accepts', async () => {
    const { id } = await paidAtBank('7.00');
    const opened = await dispute({ cardPaymentId: id, amount: { amount: '3.00', currency: 'CNY' } });
    expect(opened.status).toBe(201);
    const disputeId = opened.body.id as string;
    const before = await snapshot();
    net.bank.switches.refuse = { op: 'accept', reason: 'AC04' };
    const refusedKey = key();
    const refused = await chargeback(disputeId, refusedKey);
    expect(refused.status).toBe(422);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'refund_rejected', details: expect.objectContaining({ reason: expect.objectContaining({ Rsn: 'AC04' }) }) }));
    const failedRefund = refused.body.error.details.refundId as string;
    expect(await chargebackOf(disputeId)).toEqual({ status: 'opened', chargeback_transfer_id: null });
    expect(await steps(disputeId)).toEqual(['opened', 'chargeback_asked_bank', 'chargeback_failed']);
    await net.deliverAll(failedRefund);
    expect((await net.t.hub.connectors.messages(failedRefund)).map((m) => [m.kind, m.acked])).toEqual([['abort', true]]);
    expect(await snapshot()).toEqual(before);
    expect(await net.bank.openHolds()).toEqual([]);
    await net.expectConserved();
    resetSwitches(net.bank);
    // A retry with the same key answers the same refusal, the bank not asked again.
    expect(await chargeback(disputeId, refusedKey)).toEqual(refused);
    expect((await net.bank.db.query('select key from answers where key like $1', [`accept:${failedRefund}%`])).length).toBe(1);
    expect(await snapshot()).toEqual(before);
    const charged = await chargeback(disputeId);
    expect(charged.status).toBe(200);
    expect(charged.body.status).toBe('chargeback');
    await net.deliverAll((await chargebackOf(disputeId))!.chargeback_transfer_id!);
    expect(await snapshot()).toEqual({ ...before, pos: before.pos + 300n, merchant: before.merchant - 300n, atBank: before.atBank + 300n });
    await net.expectConserved();
  });

  it('the bank hangs past its deadline: refund_rejected (AB05), nothing moved, the dispute stays open; the late accept is released by the abort', async () => {
    const { id } = await paidAtBank('2.00');
    const disputeId = (await dispute({ cardPaymentId: id })).body.id as string;
    const before = await snapshot();
    net.bank.switches.hang = true;
    const timedOut = await chargeback(disputeId);
    expect(timedOut.status).toBe(422);
    expect(timedOut.body.error).toEqual(expect.objectContaining({ code: 'refund_rejected', details: expect.objectContaining({ reason: expect.objectContaining({ Rsn: 'AB05' }) }) }));
    const refundId = timedOut.body.error.details.refundId as string;
    expect(await chargebackOf(disputeId)).toEqual({ status: 'opened', chargeback_transfer_id: null });
    expect(await snapshot()).toEqual(before);
    await net.wakeBank(refundId, 'accepted');
    expect(await net.bank.openHolds()).toEqual([]);
    expect(await snapshot()).toEqual(before);
    await net.expectConserved();
  });

  it('a hub stopped between the chargeback’s COMMIT and asking the bank: the refund fails at its deadline (AB03, aborted at the bank), the dispute sweep records it, the dispute stays open, nothing moved', async () => {
    const { id } = await paidAtBank('5.00');
    const disputeId = (await dispute({ cardPaymentId: id })).body.id as string;
    const before = await snapshot();
    // The chargeback's transaction only (the process dies before its answer step asks the bank).
    const written = await net.t.hub.db.transaction((tx) => net.t.hub.disputes.issuerDecides(tx, { type: 'system' }, net.bankC, disputeId, { decision: 'chargeback', evidence: 'x' }));
    expect(written.ok && written.value.status).toBe('opened');
    const refundId = written.ok ? written.value.chargebackAtBank : null;
    expect(refundId).toMatch(/^rfd_/);
    // Another decision waits for this one.
    expect((await chargeback(disputeId)).body.error.code).toBe('dispute_state');
    net.clock.advance(60_000 + 1_500 + 1_001);
    expect((await net.t.hub.payments.sweep()).reversed).toBe(1);
    await net.t.hub.disputes.sweep();
    expect(await chargebackOf(disputeId)).toEqual({ status: 'opened', chargeback_transfer_id: null });
    expect(await steps(disputeId)).toEqual(['opened', 'chargeback_asked_bank', 'chargeback_failed']);
    await net.deliverAll(refundId!);
    expect((await net.t.hub.connectors.messages(refundId!)).map((m) => [m.kind, m.acked])).toEqual([['abort', true]]);
    expect((await net.bank.db.query('select key from answers where key like $1', [`accept:${refundId}%`])).length).toBe(0);
    expect(await snapshot()).toEqual(before);
    await net.expectConserved();
  });

  it('refunds still asking the bank count against what can be disputed', async () => {
    const { id } = await paidAtBank('10.00');
    const payments = net.t.hub.payments.payments;
    const written = await net.t.hub.db.transaction((tx) => payments.refund(tx, { type: 'system' }, demoParticipantId('merchant-a'), id, 400n));
    const refundId = written.ok ? written.value.refundId : '';
    expect(written.ok && written.value.atBank).toBe(true);
    const tooMuch = await dispute({ cardPaymentId: id, amount: { amount: '6.01', currency: 'CNY' } });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error).toEqual(expect.objectContaining({ code: 'dispute_amount_invalid', details: { disputable: { amount: '6.00', currency: 'CNY' } } }));
    const opened = await dispute({ cardPaymentId: id });
    expect(opened.status).toBe(201);
    expect(opened.body.amount).toEqual({ amount: '6.00', currency: 'CNY' });
    expect((await payments.settleRefundAtBank(refundId))?.status).toBe('completed');
    await net.deliverAll(refundId);
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

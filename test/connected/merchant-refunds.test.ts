import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTED_CUSTOMERS } from '../../src/demo/bank/connect.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { resetSwitches, startConnectedNetwork, type ConnectedNetwork } from './support.ts';

/**
 * Refunds of a merchant payment paid from an account at a bank that keeps its own books: the refund is written asking,
 * the bank is asked to accept the credit to its customer's account (outside any transaction), then the money moves at
 * the hub (merchant → its owner's position → the bank's position) and the commit is delivered through the outbox (the
 * bank credits its customer), or nothing moves anywhere and the refund is failed with the bank's reason. Checked with
 * exact balances at the hub and at the reference bank, and conservation across both books, after every step.
 */
const engines = await availableEngines();
let n = 0;
const key = () => ({ 'idempotency-key': `crfd-${Date.now()}-${++n}` });
const MERCHANT_A = 'mer_demo_merchant_a';
const MERCHANT_ACCOUNT = `mst_${MERCHANT_A}_CNY`;

describe.each(engines)('refunds of merchant payments paid from an account at a connected bank on %s', (engine) => {
  let net: ConnectedNetwork;
  const wang = CONNECTED_CUSTOMERS[0]!;
  const wangHubAccount = `acc_${demoCustomerId('wang-at-bank-c')}_CNY`;
  const li = () => net.t.demo.customers.get('li-at-wallet-a')!;
  const merchant = () => net.t.api('merchant-a');

  const snapshot = async () => ({ pos: await net.position(), merchant: await net.balance(MERCHANT_ACCOUNT), atBank: (await net.bank.balance(wang.bankAccount))!, address: await net.balance(wangHubAccount) });
  const acceptAnswers = async (refundId: string) => (await net.bank.db.query<{ key: string }>('select key from answers where key like $1', [`accept:${refundId}%`])).length;
  const refundOf = async (refundId: string) => (await net.t.hub.db.query<{ status: string; reason: { Rsn: string } | null }>('select status, reason from pay_refunds where id = $1', [refundId]))[0];
  const refund = (paymentId: string, amount?: string, headers = key()) => merchant().post(`/v1/payments/${paymentId}/refunds`, amount === undefined ? {} : { amount }, headers);

  /** A dynamic QR paid from the linked account at the bank and committed there; its id and fee. */
  const paid = async (amount: string) => {
    const qr = await merchant().post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'dynamic', amount }, key());
    expect(qr.status).toBe(201);
    const res = await net.t.api('wallet-a').post('/v1/wallet/payments/qr', { payload: qr.body.payload, customerId: li(), source: { type: 'account', accountId: wangHubAccount } }, key());
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('captured');
    await net.deliverAll(res.body.id);
    expect((await net.bank.hold(res.body.id))?.state).toBe('committed');
    const seen = await merchant().get(`/v1/payments/${res.body.id}`);
    return { id: res.body.id as string, fee: BigInt(Math.round(Number(seen.body.fee.amount) * 100)) };
  };

  beforeAll(async () => {
    net = await startConnectedNetwork(engine, { deadlineMs: 1_500 });
    await net.link('wallet-a', li());
  }, 240_000);
  afterAll(async () => net?.close());
  beforeEach(() => resetSwitches(net.bank));

  it('a partial refund, then the rest: the bank accepts each credit, the hub moves merchant → positions → the bank, the bank credits its customer; a retry with the same key credits once; never above what was captured', async () => {
    const start = await snapshot();
    const { id, fee } = await paid('20.00');
    const afterPay = await snapshot();
    expect(afterPay).toEqual({ pos: start.pos - 2000n, merchant: start.merchant + 2000n - fee, atBank: start.atBank - 2000n, address: 0n });
    await net.expectConserved();

    // A partial refund.
    const headers = key();
    const first = await refund(id, '5.00', headers);
    expect(first.status).toBe(201);
    expect(first.body).toEqual(expect.objectContaining({ amount: { amount: '5.00', currency: 'CNY' }, payment: expect.objectContaining({ status: 'captured', refunded: { amount: '5.00', currency: 'CNY' } }) }));
    expect(first.body.atBank).toBeUndefined();
    const refundId = first.body.refundId as string;
    expect(await refundOf(refundId)).toEqual({ status: 'completed', reason: null });
    // The hub moved at once; the bank credits its customer when the commit is delivered.
    expect(await net.position()).toBe(afterPay.pos + 500n);
    expect(await net.balance(MERCHANT_ACCOUNT)).toBe(afterPay.merchant - 500n);
    await net.deliverAll(refundId);
    expect(await net.t.hub.connectors.messages(refundId)).toEqual([expect.objectContaining({ kind: 'commit', acked: true, participantId: net.bankC })]);
    expect(await net.bank.hold(refundId)).toEqual({ state: 'committed', side: 'credit', amountMinor: 500n });
    expect(await snapshot()).toEqual({ pos: afterPay.pos + 500n, merchant: afterPay.merchant - 500n, atBank: afterPay.atBank + 500n, address: 0n });
    await net.expectConserved();
    // The accept named the customer's account the payment came from and the payment itself (end to end).
    const [asked] = await net.t.hub.db.query<{ connector_request: { Op: string; EndToEndId: string; OrgnlTxId?: string; CdtrAcct?: { Id: { Othr: { Id: string } } }; IntrBkSttlmAmt: unknown } }>(
      'select connector_request from pay_issuer_asks where authorization_id = $1',
      [refundId],
    );
    expect(asked?.connector_request).toEqual(expect.objectContaining({ Op: 'accept', EndToEndId: id, OrgnlTxId: id, IntrBkSttlmAmt: { amount: '5.00', currency: 'CNY' } }));
    expect(asked?.connector_request.CdtrAcct?.Id.Othr.Id).toBe(wang.bankAccount);
    expect((await net.bankApi('GET', `/v1/connector/transfers/${refundId}`)).body).toEqual({ TxId: refundId, TxSts: 'ACSC' });

    // The same Idempotency-Key: the same answer; the bank not asked again, nothing credited again.
    const settledOnce = await snapshot();
    const again = await refund(id, '5.00', headers);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(await acceptAnswers(refundId)).toBe(1);
    await net.deliverAll(refundId);
    expect(await snapshot()).toEqual(settledOnce);
    expect(await net.t.hub.db.query('select id from pay_refunds where authorization_id = $1', [id])).toHaveLength(1);

    // Above what is left: refused before the bank is asked.
    const over = await refund(id, '15.01');
    expect(over.status).toBe(422);
    expect(over.body.error).toEqual(expect.objectContaining({ code: 'refund_exceeds_captured', details: { refundable: '15.00' } }));
    expect(await snapshot()).toEqual(settledOnce);

    // The rest.
    const rest = await refund(id);
    expect(rest.status).toBe(201);
    expect(rest.body).toEqual(expect.objectContaining({ amount: { amount: '15.00', currency: 'CNY' }, payment: expect.objectContaining({ refunded: { amount: '20.00', currency: 'CNY' } }) }));
    await net.deliverAll(rest.body.refundId);
    // Everything back where it was, but the merchant's fee (kept by its acquirer, as for any refund).
    expect(await snapshot()).toEqual({ pos: start.pos, merchant: start.merchant - fee, atBank: start.atBank, address: 0n });
    await net.expectConserved();
    expect((await merchant().get(`/v1/payments/${id}`)).body.refunded).toEqual({ amount: '20.00', currency: 'CNY' });
    const more = await refund(id, '0.01');
    expect(more.body.error.code).toBe('refund_exceeds_captured');

    // payment.refunded as for any refund, to the merchant's owner and the paying wallet, amounts as {amount, currency}.
    const events = await net.t.hub.db.query<{ participant_id: string; payload: Record<string, unknown> }>(
      `select participant_id, payload from events where type = 'payment.refunded' and payload->>'authorizationId' = $1 order by id`,
      [id],
    );
    const merchantOwner = demoParticipantId('merchant-a');
    const toMerchant = events.filter((e) => e.participant_id === merchantOwner).map((e) => e.payload);
    expect(toMerchant).toEqual([
      expect.objectContaining({ refundId, refundAmount: { amount: '5.00', currency: 'CNY' }, refunded: { amount: '5.00', currency: 'CNY' }, captured: { amount: '20.00', currency: 'CNY' } }),
      expect.objectContaining({ refundId: rest.body.refundId, refundAmount: { amount: '15.00', currency: 'CNY' }, refunded: { amount: '20.00', currency: 'CNY' } }),
    ]);
    expect(events.some((e) => e.participant_id === demoParticipantId('wallet-a'))).toBe(true);
  });

  it('two refunds at once for more than is left between them: the one asking counts, the other is refused before the bank is asked', async () => {
    const { id } = await paid('10.00');
    const before = await snapshot();
    net.bank.switches.slowMs = 200;
    const [a, b] = await Promise.all([refund(id, '6.00'), refund(id, '6.00')]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([201, 422]);
    const refused = a.status === 422 ? a : b;
    const done = a.status === 201 ? a : b;
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'refund_exceeds_captured', details: { refundable: '4.00' } }));
    await net.deliverAll(done.body.refundId);
    expect(await snapshot()).toEqual({ ...before, pos: before.pos + 600n, merchant: before.merchant - 600n, atBank: before.atBank + 600n });
    expect(await net.t.hub.db.query('select status from pay_refunds where authorization_id = $1', [id])).toEqual([{ status: 'completed' }]);
    await net.expectConserved();
  });

  it('the bank refuses the credit (AC04, closed account): refund_rejected, the refund failed, nothing moved at the hub or at the bank; the payment stays refundable', async () => {
    const { id } = await paid('8.00');
    const before = await snapshot();
    net.bank.switches.refuse = { op: 'accept', reason: 'AC04' };
    const headers = key();
    const refused = await refund(id, '3.00', headers);
    expect(refused.status).toBe(422);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'refund_rejected', details: expect.objectContaining({ paymentId: id, status: 'failed', reason: expect.objectContaining({ Rsn: 'AC04' }) }) }));
    expect(refused.body.error.message).toContain('closed account');
    const refundId = refused.body.error.details.refundId as string;
    expect(await refundOf(refundId)).toEqual({ status: 'failed', reason: expect.objectContaining({ Rsn: 'AC04', by: 'bank' }) });
    await net.deliverAll(refundId);
    expect((await net.t.hub.connectors.messages(refundId)).map((m) => [m.kind, m.acked])).toEqual([['abort', true]]);
    expect(await snapshot()).toEqual(before);
    expect(await net.bank.openHolds()).toEqual([]);
    expect((await net.bankApi('GET', `/v1/connector/transfers/${refundId}`)).body).toEqual(expect.objectContaining({ TxSts: 'RJCT', StsRsnInf: expect.objectContaining({ Rsn: 'AC04' }) }));
    expect((await merchant().get(`/v1/payments/${id}`)).body.refunded).toEqual({ amount: '0.00', currency: 'CNY' });
    await net.expectConserved();
    // A retry with the same key answers the same refusal, without asking the bank again.
    resetSwitches(net.bank);
    const replay = await refund(id, '3.00', headers);
    expect(replay.status).toBe(422);
    expect(replay.body).toEqual(refused.body);
    expect(await acceptAnswers(refundId)).toBe(1);
    expect(await snapshot()).toEqual(before);
    // With the bank accepting again, a new refund goes through: the failed one took nothing of what is left.
    const ok = await refund(id);
    expect(ok.status).toBe(201);
    expect(ok.body.amount).toEqual({ amount: '8.00', currency: 'CNY' });
    await net.deliverAll(ok.body.refundId);
    expect((await snapshot()).atBank).toBe(before.atBank + 800n);
    await net.expectConserved();
  });

  it('the bank hangs past its deadline: refund_rejected (AB05), nothing moved; the late accept is released when the abort is delivered, nothing credited', async () => {
    const { id } = await paid('4.00');
    const before = await snapshot();
    net.bank.switches.hang = true;
    const timedOut = await refund(id, '4.00');
    expect(timedOut.status).toBe(422);
    expect(timedOut.body.error).toEqual(expect.objectContaining({ code: 'refund_rejected', details: expect.objectContaining({ reason: expect.objectContaining({ Rsn: 'AB05' }) }) }));
    const refundId = timedOut.body.error.details.refundId as string;
    expect(await refundOf(refundId)).toEqual(expect.objectContaining({ status: 'failed' }));
    expect(await snapshot()).toEqual(before);
    // The bank wakes up: the late accept and the abort, in either order; once the abort is delivered nothing is open.
    await net.wakeBank(refundId, 'accepted');
    expect([undefined, 'released']).toContain((await net.bank.hold(refundId))?.state);
    expect(await net.bank.openHolds()).toEqual([]);
    expect(await snapshot()).toEqual(before);
    expect((await net.bankApi('GET', `/v1/connector/transfers/${refundId}`)).body.TxSts).toBe('RJCT');
    await net.expectConserved();
  });

  it('a hub that stops between writing the refund and asking the bank: past the deadline the sweep fails it and aborts at the bank; a late settle asks nothing', async () => {
    const { id } = await paid('6.00');
    const before = await snapshot();
    const payments = net.t.hub.payments.payments;
    // The refund's transaction only (the process dies before its answer step asks the bank).
    const written = await net.t.hub.db.transaction((tx) => payments.refund(tx, { type: 'system' }, demoParticipantId('merchant-a'), id, 200n));
    expect(written.ok && written.value.atBank).toBe(true);
    const refundId = written.ok ? written.value.refundId : '';
    expect(await refundOf(refundId)).toEqual({ status: 'asking', reason: null });
    expect((await net.bankApi('GET', `/v1/connector/transfers/${refundId}`)).body.TxSts).toBe('PDNG');
    // What is left counts the refund still asking.
    expect((await refund(id, '5.00')).body.error).toEqual(expect.objectContaining({ code: 'refund_exceeds_captured', details: { refundable: '4.00' } }));
    expect((await net.t.hub.payments.sweep()).reversed).toBe(0);
    net.clock.advance(1_500 + 1_001);
    expect((await net.t.hub.payments.sweep()).reversed).toBe(1);
    expect(await refundOf(refundId)).toEqual({ status: 'failed', reason: expect.objectContaining({ Rsn: 'AB03' }) });
    await net.deliverAll(refundId);
    expect((await net.t.hub.connectors.messages(refundId)).map((m) => [m.kind, m.acked])).toEqual([['abort', true]]);
    expect((await net.bankApi('GET', `/v1/connector/transfers/${refundId}`)).body).toEqual(expect.objectContaining({ TxSts: 'RJCT', StsRsnInf: expect.objectContaining({ Rsn: 'AB03' }) }));
    // The answer step that comes after all finds it decided: the bank is not asked.
    const late = await payments.settleRefundAtBank(refundId);
    expect(late).toEqual(expect.objectContaining({ status: 'failed', error: expect.objectContaining({ code: 'refund_rejected' }) }));
    expect(await acceptAnswers(refundId)).toBe(0);
    expect(await snapshot()).toEqual(before);
    expect(await net.bank.openHolds()).toEqual([]);
    await net.expectConserved();
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTED_CUSTOMERS } from '../../src/demo/bank/connect.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { resetSwitches, startConnectedNetwork, type ConnectedNetwork } from './support.ts';

/**
 * A merchant paid (scanned QR, payment link) from an account at a bank that keeps its own books, through the one card
 * pipeline: decided without locks, the bank asked to reserve outside any transaction (the connector's signed reserve,
 * naming the wallet's open-banking consent as mandate), committed in the batch's transaction on the bank's position
 * with the connector commit staged in the outbox; a refusal (AM04, MD01), a missed deadline or a reserve a crash left
 * unused stages the abort, and the bank releases its hold when it is delivered. Money is conserved across the hub's
 * ledger and the bank's books.
 */
const engines = await availableEngines();
let n = 0;
const key = () => ({ 'idempotency-key': `cpay-${Date.now()}-${++n}` });
const MERCHANT_A = 'mer_demo_merchant_a';
const MERCHANT_ACCOUNT = `mst_${MERCHANT_A}_CNY`;

describe.each(engines)('merchant payments from an account at a connected bank on %s', (engine) => {
  let net: ConnectedNetwork;
  const wang = CONNECTED_CUSTOMERS[0]!;
  const wangId = demoCustomerId('wang-at-bank-c');
  const wangHubAccount = `acc_${wangId}_CNY`;
  const li = () => net.t.demo.customers.get('li-at-wallet-a')!;
  const wallet = () => net.t.api('wallet-a');
  let consentId = '';

  const dynamicQr = async (amount: string) => {
    const qr = await net.t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'dynamic', amount }, key());
    expect(qr.status).toBe(201);
    return qr.body as { id: string; payload: string };
  };
  const payQr = (payload: string, headers = key()) => wallet().post('/v1/wallet/payments/qr', { payload, customerId: li(), source: { type: 'account', accountId: wangHubAccount } }, headers);
  const reserveAnswers = async (paymentId: string) => (await net.bank.db.query<{ key: string }>('select key from answers where key like $1', [`reserve:${paymentId}%`])).length;
  const snapshot = async () => ({ pos: await net.position(), merchant: await net.balance(MERCHANT_ACCOUNT), atBank: (await net.bank.balance(wang.bankAccount))!, address: await net.balance(wangHubAccount) });

  beforeAll(async () => {
    net = await startConnectedNetwork(engine, { deadlineMs: 1_500 });
    consentId = await net.link('wallet-a', li());
  }, 240_000);
  afterAll(async () => net?.close());
  beforeEach(() => resetSwitches(net.bank));

  it('a wallet pays a merchant’s QR from the linked account: reserved at the bank under the consent, captured on the bank’s position, committed at the bank; a retry asks the bank once', async () => {
    const qr = await dynamicQr('12.34');
    const before = await snapshot();
    const headers = key();
    const paid = await payQr(qr.payload, headers);
    expect(paid.status).toBe(201);
    expect(paid.body).toEqual(expect.objectContaining({ status: 'captured', amount: { amount: '12.34', currency: 'CNY' }, customerId: li() }));
    const id = paid.body.id as string;
    // The hub: the bank's position paid the merchant (less its fee); the account's hub address never holds money.
    const seen = await net.t.api('merchant-a').get(`/v1/payments/${id}`);
    expect(seen.body).toEqual(expect.objectContaining({ decidedBy: 'issuer', source: 'account', payerParticipantId: demoParticipantId('wallet-a') }));
    const fee = BigInt(Math.round(Number(seen.body.fee.amount) * 100));
    expect(await net.position()).toBe(before.pos - 1234n);
    expect(await net.balance(MERCHANT_ACCOUNT)).toBe(before.merchant + 1234n - fee);
    expect(await net.balance(wangHubAccount)).toBe(0n);
    // The bank: held, then committed once the commit is delivered (sent at once after the COMMIT, so it may be
    // already); the reserve named the consent as mandate.
    expect(['held', 'committed']).toContain((await net.bank.hold(id))?.state);
    await net.deliverAll(id);
    expect((await net.bank.hold(id))?.state).toBe('committed');
    expect(await net.bank.balance(wang.bankAccount)).toBe(before.atBank - 1234n);
    const [asked] = await net.t.hub.db.query<{ connector_request: { MndtRltdInf?: { MndtId: string }; DbtrAcct?: { Id: { Othr: { Id: string } } }; InitgPty?: unknown } }>('select connector_request from pay_issuer_asks where authorization_id = $1', [id]);
    const [{ bank_consent_id }] = (await net.t.hub.db.query<{ bank_consent_id: string }>('select bank_consent_id from open_banking_consents where id = $1', [consentId])) as [{ bank_consent_id: string }];
    expect(asked?.connector_request.MndtRltdInf?.MndtId).toBe(bank_consent_id);
    expect(asked?.connector_request.DbtrAcct?.Id.Othr.Id).toBe(wang.bankAccount);
    // The bank's final-state query answers the hub's decision.
    expect((await net.bankApi('GET', `/v1/connector/transfers/${id}`)).body.TxSts).toBe('ACSC');

    // The same Idempotency-Key: the same answer, the bank not asked again, nothing moved again.
    const after = await snapshot();
    const again = await payQr(qr.payload, headers);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(paid.body);
    expect(await reserveAnswers(id)).toBe(1);
    expect(await net.t.hub.db.query('select authorization_id from pay_issuer_asks where issuer_participant_id = $1 and created_at >= $2', [net.bankC, new Date(net.clock.nowMs() - 1)])).toHaveLength(1);
    expect(await snapshot()).toEqual(after);
    // The code is paid: another key cannot pay it twice (refused before the bank is asked).
    const twice = await payQr(qr.payload);
    expect(twice.body.error.code).toBe('qr_already_paid');
    await net.expectConserved();
  });

  it('a payment link paid by the bank’s own customer through the bank (its own account: no consent needed)', async () => {
    const link = await net.t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payment-links`, { amount: { amount: '3.30', currency: 'CNY' }, description: 'Tea', expiresInS: 3600 }, key());
    expect(link.status).toBe(201);
    const before = await snapshot();
    const paid = await net.bankApi('POST', `${link.body.url}/pay`, { customerId: wangId, source: { type: 'account', accountId: wangHubAccount } }, key());
    expect(paid.status).toBe(201);
    expect(paid.body.status).toBe('captured');
    expect(await net.position()).toBe(before.pos - 330n);
    await net.deliverAll(paid.body.id);
    expect(await net.bank.balance(wang.bankAccount)).toBe(before.atBank - 330n);
    const [asked] = await net.t.hub.db.query<{ connector_request: { MndtRltdInf?: unknown } }>('select connector_request from pay_issuer_asks where authorization_id = $1', [paid.body.id]);
    expect(asked?.connector_request.MndtRltdInf).toBeUndefined();
    await net.expectConserved();
  });

  it('the bank refuses for lack of funds (AM04): insufficient_funds, nothing moved anywhere, the code still payable', async () => {
    const atBank = (await net.bank.balance(wang.bankAccount))!;
    const tooMuch = (atBank + 100n).toString();
    const qr = await dynamicQr(`${tooMuch.slice(0, -2)}.${tooMuch.slice(-2)}`);
    const before = await snapshot();
    const refused = await payQr(qr.payload);
    expect(refused.status).toBe(422);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'insufficient_funds', details: expect.objectContaining({ reason: expect.objectContaining({ Rsn: 'AM04' }) }) }));
    expect(await snapshot()).toEqual(before);
    expect(await net.bank.openHolds()).toEqual([]);
    const id = refused.body.error.details.paymentId as string;
    expect(await net.t.hub.db.query('select status from pay_issuer_asks where authorization_id = $1', [id])).toEqual([{ status: 'declined' }]);
    expect(await net.t.hub.db.query('select id from pay_authorizations where id = $1', [id])).toEqual([]);
    await net.deliverAll(id);
    expect((await net.bankApi('GET', `/v1/connector/transfers/${id}`)).body.TxSts).toBe('RJCT');
    expect(await net.t.hub.db.query('select paid_authorization_id from pay_qr_codes where id = $1', [qr.id])).toEqual([{ paid_authorization_id: null }]);
    await net.expectConserved();
  });

  it('the bank hangs past its deadline: issuer_unavailable (AB05), nothing moved; the late reserve’s hold is released when the abort is delivered', async () => {
    const qr = await dynamicQr('4.00');
    const before = await snapshot();
    net.bank.switches.hang = true;
    const timedOut = await payQr(qr.payload);
    expect(timedOut.status).toBe(402);
    expect(timedOut.body.error).toEqual(expect.objectContaining({ code: 'issuer_unavailable', details: expect.objectContaining({ reason: expect.objectContaining({ Rsn: 'AB05' }) }) }));
    const id = timedOut.body.error.details.paymentId as string;
    expect((await net.t.hub.connectors.messages(id)).map((m) => m.kind)).toEqual(['abort']);
    // The bank wakes up and handles what it was sent: the reserve (too late) and the abort, in either order (an abort
    // that comes first wins in the SDK: the reserve is then refused). Once the abort is delivered nothing is held.
    net.bank.switches.hang = false;
    net.bank.release();
    await net.t.hub.connectors.drain();
    await net.deliverAll(id);
    expect((await net.t.hub.connectors.messages(id)).every((m) => m.acked)).toBe(true);
    for (let i = 0; i < 100 && (await net.bank.hold(id))?.state === 'held'; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect([undefined, 'released']).toContain((await net.bank.hold(id))?.state);
    expect(await snapshot()).toEqual(before);
    expect(await net.bank.openHolds()).toEqual([]);
    await net.expectConserved();
  });

  it('revoked at the bank: the debit is refused (MD01) → consent_revoked, the consent ends at the hub, nothing moved', async () => {
    const [{ bank_consent_id }] = (await net.t.hub.db.query<{ bank_consent_id: string }>('select bank_consent_id from open_banking_consents where id = $1', [consentId])) as [{ bank_consent_id: string }];
    const res = await fetch(`${net.bank.url()}/ob/consents/${bank_consent_id}/revoke?account=${wang.bankAccount}`, { method: 'POST', headers: { 'x-customer-passcode': wang.passcode } });
    expect(res.status).toBe(200);
    const qr = await dynamicQr('2.00');
    const before = await snapshot();
    const refused = await payQr(qr.payload);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toEqual(expect.objectContaining({ code: 'consent_revoked', details: expect.objectContaining({ revokedBy: 'bank', reason: expect.objectContaining({ Rsn: 'MD01' }) }) }));
    expect(await snapshot()).toEqual(before);
    expect(await net.bank.openHolds()).toEqual([]);
    expect((await wallet().get(`/v1/open-banking/consents/${consentId}`)).body).toEqual(expect.objectContaining({ status: 'revoked', revokedBy: 'bank' }));
    await net.expectConserved();
  });

  it('a hub that stops between the bank’s reserve and the commit: past the deadline the sweep aborts it and the bank releases its hold', async () => {
    consentId = await net.link('wallet-a', li());
    const qr = await dynamicQr('6.00');
    const before = await snapshot();
    const payments = net.t.hub.payments.payments;
    // Stages 1 and 2 only (the process dies before the commit's transaction).
    const [decided] = await payments.decideMany([{ channel: 'qr', actor: { type: 'system' }, walletId: demoParticipantId('wallet-a'), payload: qr.payload, pay: { customerId: li(), source: { type: 'account', accountId: wangHubAccount } } }]);
    const asked = await payments.askIssuer(decided!);
    expect('kind' in asked && asked.issuerApproved).toBe(true);
    const id = 'kind' in asked ? asked.id : '';
    expect((await net.bank.hold(id))?.state).toBe('held');
    expect((await net.bankApi('GET', `/v1/connector/transfers/${id}`)).body.TxSts).toBe('PDNG');
    // Before the deadline the sweep leaves it (a commit may still come); after it, it is aborted.
    expect((await net.t.hub.payments.sweep()).reversed).toBe(0);
    net.clock.advance(1_500 + 1_001);
    expect((await net.t.hub.payments.sweep()).reversed).toBe(1);
    await net.deliverAll(id);
    expect((await net.bank.hold(id))?.state).toBe('released');
    expect((await net.bankApi('GET', `/v1/connector/transfers/${id}`)).body.TxSts).toBe('RJCT');
    // The commit that comes after all finds the ask reversed: refused, nothing moves.
    const late = await net.t.hub.db.transaction((tx) => payments.commitMany(tx, [asked]));
    expect(late[0]?.ok).toBe(false);
    expect(await snapshot()).toEqual(before);
    await net.expectConserved();
  });
});

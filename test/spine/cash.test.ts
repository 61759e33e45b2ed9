import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { openSentCode } from '../../src/platform/sent-codes.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * Money in and out of the hub's books, on both engines:
 * - a participant's cash-out and top-up of its liquidity (its settlement bank account ↔ its position), completed at
 *   once up to the operator's threshold, otherwise approved or rejected by the operator;
 * - a hosted wallet's customer withdrawing to and topping up from a linked bank account, through both positions.
 */
describe.each(engines)('cash-out, top-up and customer withdrawals on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine);
  });
  afterAll(async () => t?.close());

  const key = () => ({ 'idempotency-key': randomBytes(8).toString('hex') });
  const op = () => t.api('operator');
  const balance = async (id: string) => {
    const [r] = await t.hub.db.query<{ b: bigint }>('select credits_posted - debits_posted as b from ledger_accounts where id = $1', [id]);
    return r?.b ?? 0n;
  };
  const eventsOf = async (participantId: string, type: string) =>
    (await t.hub.db.query<{ payload: any }>('select payload from events where participant_id = $1 and type = $2 order by created_at', [participantId, type])).map((e) => e.payload);

  const newWallet = async (currency: string) => {
    const created = await op().post('/v1/operator/participants', { kind: 'wallet', name: `Cash ${randomBytes(3).toString('hex')}`, country: 'SG', currencies: [currency] });
    expect(created.status).toBe(201);
    const token = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const auth = { authorization: `Bearer ${token.body.access_token}` };
    const as = t.api('anonymous');
    return {
      id: created.body.participant.id as string,
      get: (url: string) => as.get(url, auth),
      post: (url: string, body: unknown, headers: Record<string, string> = {}) => as.post(url, body, { ...auth, ...headers }),
    };
  };

  it('liquidity requests: above the threshold the operator approves or rejects; within it the money moves at once; never past the liquidity left', async () => {
    const w = await newWallet('SGD');
    const other = await newWallet('SGD');
    const liquidity = async () => (await w.get('/v1/positions')).body.items.find((p: { currency: string }) => p.currency === 'SGD')?.liquidity.amount ?? '0.00';
    const ask = (direction: 'top_up' | 'cash_out', amount: string) => w.post('/v1/liquidity/requests', { direction, amount: { amount, currency: 'SGD' }, reference: 'SB-1' }, key());

    // No threshold set for SGD: every request waits for the operator.
    const pending = await ask('top_up', '1000.00');
    expect(pending.status).toBe(201);
    expect(pending.body).toMatchObject({ direction: 'top_up', amount: { amount: '1000.00', currency: 'SGD' }, status: 'pending_approval', transferId: null });
    expect(await balance(`fund_${w.id}_SGD`)).toBe(0n);
    // Another participant cannot see it; the operator lists it among the pending ones.
    expect((await other.get(`/v1/liquidity/requests/${pending.body.id}`)).body.error.code).toBe('liquidity_request_not_found');
    const waiting = await op().get('/v1/operator/liquidity/requests?status=pending_approval');
    expect(waiting.body.items.map((r: { id: string }) => r.id)).toContain(pending.body.id);
    // Approved: recorded as a ledger transfer from the settlement-bank mirror to the position.
    const approved = await op().post(`/v1/operator/liquidity/requests/${pending.body.id}/approve`, {});
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'completed', transferId: `${pending.body.id}:move` });
    const [leg] = await t.hub.db.query<{ debit_account_id: string; credit_account_id: string; amount_minor: bigint; purpose: string }>('select * from ledger_transfers where id = $1', [approved.body.transferId]);
    expect(leg).toMatchObject({ debit_account_id: `sbk_${w.id}_SGD`, credit_account_id: `fund_${w.id}_SGD`, amount_minor: 1000_00n, purpose: 'liquidity_in' });
    expect(await liquidity()).toBe('1000.00');
    // Decided once: approving again moves nothing.
    const again = await op().post(`/v1/operator/liquidity/requests/${pending.body.id}/approve`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('liquidity_request_decided');
    expect(await liquidity()).toBe('1000.00');
    expect((await eventsOf(w.id, 'liquidity.request_approved')).map((e) => e.id)).toEqual([pending.body.id]);

    // Within the threshold the money moves at once; above it, the operator may reject (nothing moves).
    expect((await op().post('/v1/operator/liquidity/thresholds', { threshold: { amount: '50.00', currency: 'SGD' } })).body).toEqual({ threshold: { amount: '50.00', currency: 'SGD' } });
    const small = await ask('cash_out', '30.00');
    expect(small.body).toMatchObject({ status: 'completed', direction: 'cash_out' });
    expect(await liquidity()).toBe('970.00');
    const large = await ask('cash_out', '60.00');
    expect(large.body.status).toBe('pending_approval');
    const rejected = await op().post(`/v1/operator/liquidity/requests/${large.body.id}/reject`, { reason: 'not confirmed by the settlement bank' });
    expect(rejected.body).toMatchObject({ status: 'rejected', reason: 'not confirmed by the settlement bank' });
    expect(await liquidity()).toBe('970.00');
    expect((await op().post(`/v1/operator/liquidity/requests/${large.body.id}/approve`, {})).body.error.code).toBe('liquidity_request_decided');

    // A cash-out never takes more than the prefunded liquidity left: refused, nothing kept.
    expect((await op().post('/v1/operator/liquidity/thresholds', { threshold: { amount: '100000.00', currency: 'SGD' } })).status).toBe(200);
    const count = (await w.get('/v1/liquidity/requests')).body.items.length;
    const tooMuch = await ask('cash_out', '970.01');
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error.code).toBe('liquidity_exceeded');
    expect((await w.get('/v1/liquidity/requests')).body.items).toHaveLength(count);
    expect((await ask('cash_out', '970.00')).body.status).toBe('completed');
    expect(await liquidity()).toBe('0.00');
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('a wallet customer withdraws to and tops up from a linked bank account, through both positions; scoped to the customer', async () => {
    const wa = t.api('wallet-a');
    const wallet = demoParticipantId('wallet-a');
    const bank = demoParticipantId('bank-a');
    const li = demoCustomerId('li-at-wallet-a');
    const consent = await wa.post('/v1/account-links', { customerId: li, bankParticipantId: bank }, key());
    expect(consent.status).toBe(201);
    const linked = await wa.post(`/v1/account-links/consents/${consent.body.id}/confirm`, { code: await openSentCode(t.hub, 'account_link.consent_requested', consent.body.id) });
    expect(linked.status).toBe(201);
    const link = (linked.body.items as { id: string; accountId: string }[]).find((l) => l.accountId.endsWith('_CNY'));
    expect(link).toBeDefined();
    const walletAcc = `acc_${li}_CNY`;
    const bankAcc = link!.accountId;
    const [w0, b0, fw0, fb0] = [await balance(walletAcc), await balance(bankAcc), await balance(`fund_${wallet}_CNY`), await balance(`fund_${bank}_CNY`)];

    const withdrawal = await wa.post(`/v1/customers/${li}/withdrawals`, { linkId: link!.id, amount: { amount: '100.00', currency: 'CNY' } }, key());
    expect(withdrawal.status).toBe(201);
    expect(withdrawal.body).toMatchObject({ kind: 'withdrawal', customerId: li, bankParticipantId: bank, bankAccountId: bankAcc, walletAccountId: walletAcc, amount: { amount: '100.00', currency: 'CNY' }, status: 'completed' });
    expect(await balance(walletAcc)).toBe(w0 - 100_00n);
    expect(await balance(bankAcc)).toBe(b0 + 100_00n);
    // Through both positions: the position leg wallet → bank first, recorded in the open CNY window.
    const [pos] = await t.hub.db.query<{ debit_account_id: string; credit_account_id: string; purpose: string }>('select * from ledger_transfers where id = $1', [withdrawal.body.transferIds[0]]);
    expect(pos).toMatchObject({ debit_account_id: `fund_${wallet}_CNY`, credit_account_id: `fund_${bank}_CNY`, purpose: 'position' });
    const [entry] = await t.hub.db.query<{ payer_participant_id: string; payee_participant_id: string; amount_minor: bigint }>('select * from settlement_entries where payment_id = $1', [withdrawal.body.id]);
    expect(entry).toMatchObject({ payer_participant_id: wallet, payee_participant_id: bank, amount_minor: 100_00n });
    expect(await balance(`fund_${wallet}_CNY`)).toBe(fw0);
    expect(await balance(`fund_${bank}_CNY`)).toBe(fb0);

    const topUp = await wa.post(`/v1/customers/${li}/top-ups`, { linkId: link!.id, amount: { amount: '40.00', currency: 'CNY' } }, key());
    expect(topUp.status).toBe(201);
    expect(await balance(walletAcc)).toBe(w0 - 60_00n);
    expect(await balance(bankAcc)).toBe(b0 + 60_00n);
    const [back] = await t.hub.db.query<{ payer_participant_id: string; payee_participant_id: string }>('select * from settlement_entries where payment_id = $1', [topUp.body.id]);
    expect(back).toMatchObject({ payer_participant_id: bank, payee_participant_id: wallet });

    // Status, list, webhooks to the wallet (its customer) and to the bank (its customer).
    expect((await wa.get(`/v1/customers/${li}/cash-movements/${withdrawal.body.id}`)).body).toEqual(withdrawal.body);
    expect((await wa.get(`/v1/customers/${li}/cash-movements`)).body.items.map((m: { id: string }) => m.id).sort()).toEqual([topUp.body.id, withdrawal.body.id].sort());
    expect((await eventsOf(wallet, 'cash.withdrawal_completed')).at(-1)).toMatchObject({ id: withdrawal.body.id, customerId: li, amount: { amount: '100.00', currency: 'CNY' } });
    expect((await eventsOf(bank, 'cash.withdrawal_completed')).at(-1)).toMatchObject({ id: withdrawal.body.id, customerId: demoCustomerId('li-at-bank-a') });
    expect((await eventsOf(bank, 'cash.top_up_completed')).at(-1)).toMatchObject({ id: topUp.body.id });

    // Refusals move nothing: more than the wallet account holds, another currency than the link's, someone else's link.
    const before = await balance(walletAcc);
    const over = await wa.post(`/v1/customers/${li}/withdrawals`, { linkId: link!.id, amount: { amount: '5000.00', currency: 'CNY' } }, key());
    expect(over.status).toBe(422);
    expect(over.body.error.code).toBe('insufficient_funds');
    // More than the wallet's position can pay out: the position leg, checked first, refuses it.
    const past = await wa.post(`/v1/customers/${li}/withdrawals`, { linkId: link!.id, amount: { amount: '99999999.00', currency: 'CNY' } }, key());
    expect(past.body.error.code).toBe('liquidity_exceeded');
    const usd = await wa.post(`/v1/customers/${li}/withdrawals`, { linkId: link!.id, amount: { amount: '1.00', currency: 'USD' } }, key());
    expect(usd.status).toBe(422);
    expect(usd.body.error.code).toBe('cash_link_invalid');
    const stranger = await wa.post('/v1/customers', { externalId: `cash-${randomBytes(3).toString('hex')}`, name: 'Stranger', kycLevel: 1 });
    const theirs = await wa.post(`/v1/customers/${stranger.body.id}/withdrawals`, { linkId: link!.id, amount: { amount: '1.00', currency: 'CNY' } }, key());
    expect(theirs.status).toBe(404);
    expect(theirs.body.error.code).toBe('link_not_found');
    expect((await wa.get(`/v1/customers/${stranger.body.id}/cash-movements/${withdrawal.body.id}`)).status).toBe(404);
    expect(await balance(walletAcc)).toBe(before);

    // A revoked link withdraws nothing.
    expect((await wa.delete(`/v1/account-links/${link!.id}`)).status).toBe(200);
    const revoked = await wa.post(`/v1/customers/${li}/withdrawals`, { linkId: link!.id, amount: { amount: '1.00', currency: 'CNY' } }, key());
    expect(revoked.body.error.code).toBe('link_not_found');
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });
});

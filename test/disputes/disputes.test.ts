import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customerAccountId } from '../../src/accounts/index.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { cardInTwoWallets, tapBody, type CardInTwoWallets } from '../../src/demo/fixtures.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { apiCallOf } from '../support/checks.ts';

/**
 * Disputes and fraud recalls end to end: a customer disputes a card payment (the issuer charges back, the merchant's
 * participant represents with evidence or lets the deadline pass) and a P2P payment (the payee's participant refunds
 * or contests); a fraud recall follows the money into the account it went to next, freezes it, and is refunded on the
 * payee participant's analysis. Every step is in the trail with who acted, every party gets a webhook, the books
 * balance, and each deadline answers its code.
 */
const engines = await availableEngines();
const DAY = 86_400_000;
let keyNo = 0;
const key = () => ({ 'idempotency-key': `dsp-${Date.now()}-${++keyNo}` });
const me = demoParticipantId;

describe.each(engines)('disputes and recalls on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  const li = demoCustomerId('li-at-wallet-a');
  const liAccount = customerAccountId(li, 'CNY');

  const balance = async (accountId: string) => {
    const a = await t.hub.ledger.getAccount(accountId);
    if (!a.ok) throw new Error(accountId);
    return a.value.creditsPostedMinor - a.value.debitsPostedMinor;
  };
  const held = async (accountId: string) => {
    const a = await t.hub.ledger.getAccount(accountId);
    if (!a.ok) throw new Error(accountId);
    return a.value.debitsPendingMinor;
  };
  /** A captured card payment of 李伟's card at merchant-a (through wallet A's token). */
  const cardPayment = async (amount: string, amountMinor: bigint) => {
    const res = await t.api('merchant-a').post('/v1/merchants/mer_demo_merchant_a/payments/tap', tapBody(card.a, { amount, amountMinor, now: clock.now() }), key());
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    if (res.body.status !== 'captured') expect((await t.api('merchant-a').post(`/v1/payments/${res.body.id}/capture`, {}, key())).status).toBe(200);
    return String(res.body.id);
  };
  /** A P2P payment: the wallet's customer pays a handle (CNY). */
  const p2p = async (wallet: string, customerId: string, handle: string, amount: string) => {
    const q = await t.api(wallet).post('/v1/transfers/quotes', { customerId, payee: { type: 'handle', value: handle }, sendAmount: { amount, currency: 'CNY' } }, key());
    expect(q.status, JSON.stringify(q.body)).toBe(201);
    const p = await t.api(wallet).post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    return String(p.body.id);
  };
  /** A new customer of a wallet with an empty CNY account and a handle. */
  const newCustomer = async (wallet: string, name: string, handle: string) => {
    const c = await t.api(wallet).post('/v1/customers', { externalId: `ext-${handle}`, name }, key());
    expect(c.status).toBe(201);
    expect((await t.api(wallet).post('/v1/accounts', { customerId: c.body.id, currency: 'CNY' }, key())).status).toBe(201);
    const account = customerAccountId(c.body.id, 'CNY');
    expect((await t.api(wallet).post('/v1/aliases', { customerId: c.body.id, type: 'handle', value: handle, accountId: account }, key())).status).toBe(201);
    return { id: String(c.body.id), account };
  };
  const eventsFor = async (type: string, field: string, id: string) =>
    (await t.hub.db.query<{ participant_id: string }>(`select participant_id from events where type = $1 and payload->>'${field}' = $2 order by participant_id`, [type, id])).map((e) => e.participant_id);

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    const call = apiCallOf(t);
    card = await cardInTwoWallets(t.hub, call);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('card: the issuer charges back, the merchant represents with evidence; the money moves both ways, the trail names who acted', async () => {
    const paymentId = await cardPayment('88.00', 8_800n);
    const before = await balance(card.fundingAccountId);
    const opened = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: paymentId, reason: 'goods not received' }, key());
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const id = opened.body.id;
    expect(opened.body).toMatchObject({ kind: 'card', status: 'opened', amount: { amount: '88.00', currency: 'CNY' }, issuerParticipantId: me('bank-a'), respondentParticipantId: me('merchant-a'), customerId: card.a.customerId });
    // The three parties are told and see it (the merchant's participant without the wallet's customer id).
    expect(await eventsFor('dispute.opened', 'disputeId', id)).toEqual([me('bank-a'), me('merchant-a'), me('wallet-a')].sort());
    const seen = await t.api('merchant-a').get(`/v1/disputes/${id}`);
    expect(seen.status).toBe(200);
    expect(seen.body.customerId).toBeNull();
    // Another wallet does not see it at all.
    expect((await t.api('wallet-b').get(`/v1/disputes/${id}`)).status).toBe(404);
    // The wallet lists it under its customer (what the customer's own app shows), not under another customer's.
    const listIds = async (path: string) => ((await t.api('wallet-a').get(path)).body.items as { id: string }[]).map((d) => d.id);
    expect(await listIds(`/v1/disputes?customerId=${card.a.customerId}`)).toContain(id);
    const other = await newCustomer('wallet-a', '王芳', 'dispute.list.other');
    expect(await listIds(`/v1/disputes?customerId=${other.id}`)).toEqual([]);
    expect(await listIds('/v1/disputes')).toContain(id);
    // A second dispute of the same payment while this one is open: dispute_exists.
    expect((await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: paymentId, reason: 'again' }, key())).body.error.code).toBe('dispute_exists');
    // The merchant cannot charge back; it is the issuer's step.
    const notParty = await t.api('merchant-a').post(`/v1/disputes/${id}/chargeback`, { evidence: 'x' }, key());
    expect(notParty.status).toBe(403);
    expect(notParty.body.error.code).toBe('dispute_not_party');
    const chargeback = await t.api('bank-a').post(`/v1/disputes/${id}/chargeback`, { evidence: 'cardholder statement: order never delivered' }, key());
    expect(chargeback.status, JSON.stringify(chargeback.body)).toBe(200);
    expect(chargeback.body.status).toBe('chargeback');
    expect(await balance(card.fundingAccountId)).toBe(before + 8_800n);
    const represent = await t.api('merchant-a').post(`/v1/disputes/${id}/represent`, { evidence: 'courier record: delivered and signed for' }, key());
    expect(represent.status, JSON.stringify(represent.body)).toBe(200);
    expect(represent.body.status).toBe('won_by_respondent');
    expect(await balance(card.fundingAccountId)).toBe(before);
    expect(represent.body.steps.map((s: { action: string; participantId: string }) => [s.action, s.participantId])).toEqual([
      ['opened', me('wallet-a')],
      ['chargeback', me('bank-a')],
      ['represented', me('merchant-a')],
    ]);
    expect(represent.body.steps[2].evidence).toBe('courier record: delivered and signed for');
    const audit = await t.hub.db.query<{ action: string; actor_participant_id: string }>(`select action, actor_participant_id from audit_log where object_id = $1 order by at, id`, [id]);
    expect(audit.map((a) => [a.action, a.actor_participant_id])).toEqual([
      ['dispute.opened', me('wallet-a')],
      ['dispute.charged_back', me('bank-a')],
      ['dispute.represented', me('merchant-a')],
    ]);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('card: a chargeback the merchant does not answer in 10 days stands (the sweep), and answering late is dispute_deadline_passed', async () => {
    const paymentId = await cardPayment('20.00', 2_000n);
    const opened = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: paymentId, reason: 'charged twice', amount: { amount: '15.00', currency: 'CNY' } }, key());
    expect(opened.status).toBe(201);
    const id = opened.body.id;
    expect((await t.api('bank-a').post(`/v1/disputes/${id}/chargeback`, { evidence: 'duplicate' }, key())).status).toBe(200);
    clock.advance(10 * DAY + 60_000);
    const late = await t.api('merchant-a').post(`/v1/disputes/${id}/represent`, { evidence: 'too late' }, key());
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('dispute_deadline_passed');
    expect((await t.hub.disputes.sweep()).disputes).toBe(1);
    const after = await t.api('wallet-a').get(`/v1/disputes/${id}`);
    expect(after.body.status).toBe('won_by_customer');
    expect(after.body.steps.at(-1)).toMatchObject({ action: 'chargeback_stands_unanswered', participantId: null });
    // Too much: more than was paid.
    const paid = await cardPayment('5.00', 500n);
    const tooMuch = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: paid, reason: 'x', amount: { amount: '5.01', currency: 'CNY' } }, key());
    expect(tooMuch.body.error.code).toBe('dispute_amount_invalid');
  });

  it('P2P: the payee’s participant refunds a disputed payment, or contests it', async () => {
    const shop = await newCustomer('wallet-b', 'Online Shop', 'shop.b');
    const paymentId = await p2p('wallet-a', li, 'shop.b', '60.00');
    const liBefore = await balance(liAccount);
    const opened = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: li, transferId: paymentId, reason: 'item not as described' }, key());
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    expect(opened.body).toMatchObject({ kind: 'p2p', issuerParticipantId: me('wallet-a'), respondentParticipantId: me('wallet-b') });
    expect(await eventsFor('dispute.opened', 'disputeId', opened.body.id)).toEqual([me('wallet-a'), me('wallet-b')].sort());
    const refunded = await t.api('wallet-b').post(`/v1/disputes/${opened.body.id}/accept`, { evidence: 'seller agrees' }, key());
    expect(refunded.status, JSON.stringify(refunded.body)).toBe(200);
    expect(refunded.body.status).toBe('refunded');
    expect(await balance(liAccount)).toBe(liBefore + 6_000n);
    expect(await balance(shop.account)).toBe(0n);
    // A second payment, contested with evidence: nothing moves.
    const second = await p2p('wallet-a', li, 'shop.b', '10.00');
    const d2 = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: li, transferId: second, reason: 'changed my mind' }, key());
    const contested = await t.api('wallet-b').post(`/v1/disputes/${d2.body.id}/represent`, { evidence: 'delivered as described, photos attached' }, key());
    expect(contested.body.status).toBe('won_by_respondent');
    expect(await balance(shop.account)).toBe(1_000n);
    // Answering again: dispute_state.
    expect((await t.api('wallet-b').post(`/v1/disputes/${d2.body.id}/accept`, {}, key())).body.error.code).toBe('dispute_state');
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('fraud recall follows the money into the next account, freezes it, and refunds the victim on the analysis', async () => {
    const fraudster = await newCustomer('wallet-b', 'Scammer', 'scam.b');
    const mule = await newCustomer('wallet-c', 'Mule', 'mule.c');
    const liBefore = await balance(liAccount);
    const paymentId = await p2p('wallet-a', li, 'scam.b', '500.00');
    // The scammer moves 300.00 on to a mule at another wallet at once.
    await p2p('wallet-b', fraudster.id, 'mule.c', '300.00');
    expect(await balance(fraudster.account)).toBe(20_000n);
    const recall = await t.api('wallet-a').post('/v1/wallet/recalls', { customerId: li, transferId: paymentId, reason: 'scam call: pretended to be my bank' }, key());
    expect(recall.status, JSON.stringify(recall.body)).toBe(201);
    const id = recall.body.id;
    expect(recall.body).toMatchObject({ status: 'analysing', amount: { amount: '500.00' }, frozen: { amount: '500.00' }, payeeParticipantId: me('wallet-b') });
    expect(recall.body.holds.map((h: { hop: number; amount: { amount: string }; ownerParticipantId: string; accountId: string | null }) => [h.hop, h.amount.amount, h.ownerParticipantId, h.accountId])).toEqual([
      [0, '200.00', me('wallet-b'), null],
      [1, '300.00', me('wallet-c'), null],
    ]);
    expect(new Date(recall.body.analysisDueAt).getTime() - clock.nowMs()).toBe(7 * DAY);
    expect(new Date(recall.body.refundDueAt).getTime() - clock.nowMs()).toBe(11 * DAY);
    // Frozen: the money cannot leave either account.
    expect(await held(fraudster.account)).toBe(20_000n);
    expect(await held(mule.account)).toBe(30_000n);
    const moveOn = await t.api('wallet-c').post('/v1/transfers/quotes', { customerId: mule.id, payee: { type: 'handle', value: 'liwei' }, sendAmount: { amount: '1.00', currency: 'CNY' } }, key());
    const attempt = moveOn.status === 201 ? await t.api('wallet-c').post('/v1/transfers/payments', { quoteId: moveOn.body.id }, key()) : moveOn;
    expect(attempt.status).toBeGreaterThanOrEqual(400);
    // Every participant holding frozen money is told, and sees its own account.
    expect(await eventsFor('recall.opened', 'recallId', id)).toEqual([me('wallet-a'), me('wallet-b'), me('wallet-c')].sort());
    const atMule = await t.api('wallet-c').get(`/v1/recalls/${id}`);
    expect(atMule.body.holds[1].accountId).toBe(mule.account);
    // Only the payee's participant analyses.
    expect((await t.api('wallet-c').post(`/v1/recalls/${id}/analysis`, { decision: 'accept', evidence: 'x' }, key())).body.error.code).toBe('dispute_not_party');
    const decided = await t.api('wallet-b').post(`/v1/recalls/${id}/analysis`, { decision: 'accept', evidence: 'account opened with a stolen identity' }, key());
    expect(decided.status, JSON.stringify(decided.body)).toBe(200);
    expect(decided.body).toMatchObject({ status: 'refunded', refunded: { amount: '500.00' } });
    expect(await balance(liAccount)).toBe(liBefore);
    expect(await balance(fraudster.account)).toBe(0n);
    expect(await balance(mule.account)).toBe(0n);
    expect(decided.body.steps.map((s: { action: string; participantId: string }) => [s.action, s.participantId])).toEqual([
      ['opened', me('wallet-a')],
      ['frozen_hop_0', me('wallet-b')],
      ['frozen_hop_1', me('wallet-c')],
      ['fraud_confirmed_refunded', me('wallet-b')],
    ]);
    expect(await eventsFor('recall.decided', 'recallId', id)).toEqual([me('wallet-a'), me('wallet-b'), me('wallet-c')].sort());
    // Recalled twice: recall_exists.
    expect((await t.api('wallet-a').post('/v1/wallet/recalls', { customerId: li, transferId: paymentId, reason: 'again' }, key())).body.error.code).toBe('recall_exists');
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('recall deadlines: analysis after 7 days is recall_deadline_passed; unanswered, the holds lapse after 11; too old a payment is recall_window_closed', async () => {
    const payee = await newCustomer('wallet-b', 'Quiet', 'quiet.b');
    const paymentId = await p2p('wallet-a', li, 'quiet.b', '40.00');
    const recall = await t.api('wallet-a').post('/v1/wallet/recalls', { customerId: li, transferId: paymentId, reason: 'fraud' }, key());
    expect(recall.status).toBe(201);
    expect(await held(payee.account)).toBe(4_000n);
    clock.advance(7 * DAY + 60_000);
    const late = await t.api('wallet-b').post(`/v1/recalls/${recall.body.id}/analysis`, { decision: 'accept', evidence: 'late' }, key());
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('recall_deadline_passed');
    clock.advance(4 * DAY);
    expect((await t.hub.disputes.sweep()).recalls).toBe(1);
    expect(await held(payee.account)).toBe(0n);
    expect(await balance(payee.account)).toBe(4_000n);
    expect((await t.api('wallet-a').get(`/v1/recalls/${recall.body.id}`)).body.status).toBe('expired');
    // 81 days after a payment: too late to recall or dispute it.
    const old = await p2p('wallet-a', li, 'quiet.b', '1.00');
    clock.advance(81 * DAY);
    const tooOld = await t.api('wallet-a').post('/v1/wallet/recalls', { customerId: li, transferId: old, reason: 'fraud' }, key());
    expect(tooOld.status).toBe(422);
    expect(tooOld.body.error.code).toBe('recall_window_closed');
    const disputeOld = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: li, transferId: old, reason: 'late' }, key());
    expect(disputeOld.status).toBe(422);
    expect(disputeOld.body.error.code).toBe('dispute_window_closed');
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });
});

import { randomBytes } from 'node:crypto';
import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSentCode } from '../../src/platform/sent-codes.ts';
import { createFakeClock } from '../../src/platform/clock.ts';
import { COMPLETED_TTL_MS, STEP_UP_REQUEST_TTL_MS } from '../../src/stepup/service.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * Step-up is proof bound to one payment, not a flag: a P2P payment that risk steps up is paid only with a challenge
 * the paying customer completed for exactly that customer, amount, currency and payee, once, before it expires.
 */
describe.each(engines)('step-up challenges on %s', (engine) => {
  let t: TestHub;
  const clock = createFakeClock(Date.UTC(2026, 6, 1, 10, 0, 0));
  const key = () => ({ 'idempotency-key': randomBytes(9).toString('base64url') });
  const wallet = () => t.api('wallet-b');
  let seq = 0;

  beforeAll(async () => {
    t = await startTestHub(engine, { clock, config: { webhooks: { enabled: false, pollMs: 1000 }, accessTokenTtlS: 86_400 } });
    // Every payment to a new counterparty asks for a step-up.
    expect((await wallet().post('/v1/risk/rules', { rule: 'new_counterparty', enabled: true, action: 'step_up', score: 20, minRefEurCents: 0 })).status).toBe(200);
  });
  afterAll(async () => t?.close());

  /** A fresh payer at wallet B with money, and a fresh payee alias at wallet A. */
  const parties = async () => {
    const i = ++seq;
    const c = await wallet().post('/v1/customers', { externalId: `su-${i}-${randomBytes(2).toString('hex')}`, name: `Payer ${i}`, kycLevel: 3 }, key());
    const a = await wallet().post('/v1/accounts', { customerId: c.body.id, currency: 'CNY' }, key());
    expect((await wallet().post(`/v1/accounts/${a.body.id}/deposits`, { amount: { amount: '500.00', currency: 'CNY' } }, key())).status).toBe(201);
    const p = await t.api('wallet-a').post('/v1/customers', { externalId: `sp-${i}-${randomBytes(2).toString('hex')}`, name: `Payee ${i}` }, key());
    const pa = await t.api('wallet-a').post('/v1/accounts', { customerId: p.body.id, currency: 'CNY' }, key());
    const handle = `stepup_${i}_${randomBytes(2).toString('hex')}`;
    expect((await t.api('wallet-a').post('/v1/aliases', { customerId: p.body.id, type: 'handle', value: handle, accountId: pa.body.id }, key())).status).toBe(201);
    return { payer: c.body.id as string, account: a.body.id as string, payee: handle, payeeAccount: pa.body.id as string };
  };
  const quote = async (payer: string, payee: string, amount: string) => {
    const q = await wallet().post('/v1/transfers/quotes', { customerId: payer, payee: { type: 'handle', value: payee }, sendAmount: { amount, currency: 'CNY' } }, key());
    expect(q.status).toBe(201);
    return q.body.id as string;
  };
  const confirm = (quoteId: string, stepUpChallengeId?: string) => wallet().post('/v1/transfers/payments', { quoteId, ...(stepUpChallengeId !== undefined ? { stepUpChallengeId } : {}) }, key());
  const challenge = (request: string, method = 'otp') => wallet().post('/v1/step-up/challenges', { request, method });
  const complete = async (id: string) => wallet().post(`/v1/step-up/challenges/${id}/complete`, { code: await openSentCode(t.hub, 'step_up.code_requested', id) });
  const balance = async (account: string) => {
    const r = await t.hub.ledger.getAccount(account);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };

  it('a completed challenge for exactly this payment pays it once; the code reached the wallet sealed, never in clear', async () => {
    const { payer, account, payee } = await parties();
    const q = await quote(payer, payee, '12.00');
    const refused = await confirm(q);
    expect(refused.status).toBe(428);
    const offer = refused.body.error.details.stepUp;
    expect(offer.methods).toEqual(['otp']);
    expect(offer.summary).toEqual({ amount: { amount: '12.00', currency: 'CNY' }, payeeName: expect.any(String) });
    const ch = await challenge(offer.request);
    expect(ch.status).toBe(201);
    expect(ch.body).toMatchObject({ method: 'otp', status: 'pending', attemptsRemaining: 5 });
    const [event] = await t.hub.db.query<{ payload: Record<string, unknown> }>(`select payload from events where type = 'step_up.code_requested' and payload->>'challengeId' = $1`, [ch.body.id]);
    expect(typeof event?.payload.codeSealed).toBe('string');
    expect(JSON.stringify(event?.payload)).not.toMatch(/"code"/);
    // Not yet completed: refused, nothing moved.
    const before = await balance(account);
    expect((await confirm(q, ch.body.id)).body.error.code).toBe('step_up_invalid');
    expect((await complete(ch.body.id)).body.status).toBe('completed');
    const paid = await confirm(q, ch.body.id);
    expect(paid.status).toBe(201);
    expect(await balance(account)).toBe(before - 1200n);
    const [row] = await t.hub.db.query<{ status: string; consumed_by: string }>('select status, consumed_by from step_up_challenges where id = $1', [ch.body.id]);
    expect(row).toEqual({ status: 'consumed', consumed_by: paid.body.id });
    // Reused for another payment with the same amount and payee (a new quote): refused.
    const payee2 = (await parties()).payee;
    const q2 = await quote(payer, payee2, '12.00');
    expect((await confirm(q2, ch.body.id)).body.error.code).toBe('step_up_invalid');
  });

  it('a fabricated, another customer’s, another payment’s or an expired challenge is refused, and moves nothing', async () => {
    const a = await parties();
    const b = await parties();
    const qa = await quote(a.payer, a.payee, '20.00');
    const offerA = (await confirm(qa)).body.error.details.stepUp;
    const before = await balance(a.account);
    // Fabricated: no such challenge (the ownership check answers before the payment runs).
    const fabricated = await confirm(qa, `stu_${randomBytes(8).toString('hex')}`);
    expect(fabricated.status).toBe(404);
    expect(fabricated.body.error.code).toBe('challenge_not_found');
    // Another customer's completed challenge (same wallet): not this payer's proof.
    const qb = await quote(b.payer, b.payee, '20.00');
    const offerB = (await confirm(qb)).body.error.details.stepUp;
    const chB = await challenge(offerB.request);
    await complete(chB.body.id);
    expect((await confirm(qa, chB.body.id)).body.error.code).toBe('step_up_invalid');
    // A completed challenge for another amount (same customer, same payee): refused.
    const qSmall = await quote(a.payer, a.payee, '19.99');
    const offerSmall = (await confirm(qSmall)).body.error.details.stepUp;
    const chSmall = await challenge(offerSmall.request);
    await complete(chSmall.body.id);
    expect((await confirm(qa, chSmall.body.id)).body.error.code).toBe('step_up_invalid');
    // Expired: completed, then unused for longer than a completed challenge lives.
    const chA = await challenge(offerA.request);
    await complete(chA.body.id);
    clock.advance(COMPLETED_TTL_MS + 1_000);
    const qa2 = await quote(a.payer, a.payee, '20.00');
    expect((await confirm(qa2, chA.body.id)).body.error.code).toBe('step_up_invalid');
    expect(await balance(a.account)).toBe(before);
  });

  it('a step-up request is the hub’s, for its participant, and short-lived', async () => {
    const { payer, payee } = await parties();
    const offer = (await confirm(await quote(payer, payee, '5.00'))).body.error.details.stepUp;
    const [payload, signature] = offer.request.split('.');
    // Tampered: the amount changed in the claims, the signature kept.
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    const forged = `${Buffer.from(JSON.stringify({ ...claims, s: { ...claims.s, amount: { amount: '0.01', currency: 'CNY' } } })).toString('base64url')}.${signature}`;
    expect((await challenge(forged)).body.error.code).toBe('challenge_request_invalid');
    // Another participant cannot start a challenge with it.
    expect((await t.api('wallet-a').post('/v1/step-up/challenges', { request: offer.request, method: 'otp' })).body.error.code).toBe('challenge_request_invalid');
    // A method the customer has not set up.
    expect((await challenge(offer.request, 'totp')).body.error.code).toBe('challenge_method_unavailable');
    clock.advance(STEP_UP_REQUEST_TTL_MS + 1_000);
    expect((await challenge(offer.request)).body.error.code).toBe('challenge_request_invalid');
  });

  it('five wrong codes lock a challenge; a TOTP code pays once and is not accepted twice', async () => {
    const { payer, payee } = await parties();
    const q = await quote(payer, payee, '7.00');
    const offer = (await confirm(q)).body.error.details.stepUp;
    const ch = await challenge(offer.request);
    const code = await openSentCode(t.hub, 'step_up.code_requested', ch.body.id);
    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 4; i >= 1; i--) {
      const r = await wallet().post(`/v1/step-up/challenges/${ch.body.id}/complete`, { code: wrong });
      expect(r.body.error).toMatchObject({ code: 'challenge_failed', details: { attemptsRemaining: i } });
    }
    expect((await wallet().post(`/v1/step-up/challenges/${ch.body.id}/complete`, { code: wrong })).body.error.code).toBe('challenge_locked');
    expect((await wallet().post(`/v1/step-up/challenges/${ch.body.id}/complete`, { code })).status).not.toBe(200);

    // Guessed all at once: no more tries than one by one (each try is taken before its answer is checked).
    const raced = await challenge((await confirm(await quote(payer, payee, '7.00'))).body.error.details.stepUp.request);
    const raceCode = await openSentCode(t.hub, 'step_up.code_requested', raced.body.id);
    const raceWrong = raceCode === '000000' ? '111111' : '000000';
    const answers = await Promise.all(Array.from({ length: 12 }, () => wallet().post(`/v1/step-up/challenges/${raced.body.id}/complete`, { code: raceWrong })));
    expect(answers.filter((r) => r.body.error?.code === 'challenge_failed').length).toBeLessThanOrEqual(4);
    expect(answers.every((r) => r.status !== 200)).toBe(true);
    expect((await wallet().post(`/v1/step-up/challenges/${raced.body.id}/complete`, { code: raceCode })).status).not.toBe(200);

    // The customer's authenticator app, enrolled by the wallet's back end.
    const enrolled = await wallet().post(`/v1/step-up/customers/${payer}/totp`);
    expect(enrolled.status).toBe(201);
    const q2 = await quote(payer, payee, '7.00');
    const offer2 = (await confirm(q2)).body.error.details.stepUp;
    expect(offer2.methods).toEqual(['otp', 'totp']);
    const totp = generateSync({ secret: enrolled.body.secret, epoch: Math.floor(clock.nowMs() / 1000) });
    const ch2 = await challenge(offer2.request, 'totp');
    expect((await wallet().post(`/v1/step-up/challenges/${ch2.body.id}/complete`, { code: totp })).body.status).toBe('completed');
    expect((await confirm(q2, ch2.body.id)).status).toBe(201);
    // The same time step again, on a new challenge: a replay.
    const q3 = await quote(payer, (await parties()).payee, '7.00');
    const ch3 = await challenge((await confirm(q3)).body.error.details.stepUp.request, 'totp');
    expect((await wallet().post(`/v1/step-up/challenges/${ch3.body.id}/complete`, { code: totp })).body.error.code).toBe('challenge_failed');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeClock } from '../platform/clock.ts';
import { DEFAULT_RULES, type RuleName } from '../risk/service.ts';
import { FLAGGED_WARNING } from '../aliases/service.ts';
import { availableEngines } from '../../test/support/engines.ts';
import { startTestHub, type TestHub } from '../../test/support/hub.ts';
import { completeOtpStepUp } from '../../test/support/stepup.ts';
import { FIRST_TIME_WARNING, MAX_PENDING_REQUESTS_PER_PAYER, REMINDER_INTERVAL_MS, REQUEST_WARNING } from './service.ts';

/*
 * Issue 6, the behaviours around requests, risk, limits, splits and verification of payee. Every test works on
 * customers it creates itself (through the routes), so that the rate limiters, pending-request caps, KYC usage and
 * risk history of one test never leak into another; risk rules a test changes are put back to the hub defaults.
 */
const engines = await availableEngines();
let n = 0;
const key = () => ({ 'idempotency-key': `rr-${Date.now()}-${++n}` });

interface TestCustomer {
  readonly as: string;
  readonly id: string;
  readonly name: string;
  readonly accountId: string;
  readonly currency: string;
  readonly alias: { type: 'handle'; value: string };
}

describe.each(engines)('requests, risk, limits, splits and verification of payee on %s', (engine) => {
  let t: TestHub;
  const clock = createFakeClock(Date.UTC(2026, 2, 10, 9, 0, 0));
  let seq = 0;

  // Tokens live 5 minutes on the hub's (fake) clock and these tests move the clock by hours: a token is asked for
  // again whenever the clock has moved on.
  const tokens = new Map<string, { token: string; atMs: number }>();
  const bearer = async (as: string): Promise<Record<string, string>> => {
    const hit = tokens.get(as);
    if (hit === undefined || clock.nowMs() - hit.atMs > 60_000) {
      const p = t.demo.participants.find((d) => d.key === as);
      if (p === undefined) throw new Error(`no demo participant ${as}`);
      const res = await t.hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: p.clientId, client_secret: p.clientSecret } });
      if (res.statusCode !== 200) throw new Error(`token for ${as}: ${res.statusCode}`);
      tokens.set(as, { token: (res.json() as { access_token: string }).access_token, atMs: clock.nowMs() });
    }
    return { authorization: `Bearer ${tokens.get(as)!.token}` };
  };
  const api = (as: string) => ({
    get: async (url: string) => t.api(as).get(url, await bearer(as)),
    post: async (url: string, body?: unknown, headers: Record<string, string> = {}) => t.api(as).post(url, body, { ...(await bearer(as)), ...headers }),
  });

  /** A new customer of `as` with one account (funded when `deposit` is given) and a handle pointing at it. */
  const customer = async (as: string, o: { currency: string; deposit?: string; kycLevel?: number; name?: string }): Promise<TestCustomer> => {
    const i = ++seq;
    const name = o.name ?? `Testperson Number${i}`;
    const c = await api(as).post('/v1/customers', { externalId: `rr-${i}`, name, kycLevel: o.kycLevel ?? 2 });
    expect(c.status).toBe(201);
    const a = await api(as).post('/v1/accounts', { customerId: c.body.id, currency: o.currency });
    expect(a.status).toBe(201);
    if (o.deposit !== undefined) {
      const d = await api(as).post(`/v1/accounts/${a.body.id}/deposits`, { amount: { amount: o.deposit, currency: o.currency } }, key());
      expect(d.status).toBe(201);
    }
    const handle = `rr_${as.replace(/-/g, '')}_${i}`;
    const al = await api(as).post('/v1/aliases', { customerId: c.body.id, type: 'handle', value: handle, accountId: a.body.id });
    expect(al.status).toBe(201);
    return { as, id: c.body.id, name, accountId: a.body.id, currency: o.currency, alias: { type: 'handle', value: handle } };
  };

  /** Posted balance from the ledger, in minor units. */
  const balance = async (c: TestCustomer) => {
    const r = await t.hub.transfers.ledger.getAccount(c.accountId);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };
  /** The balance the participant's accounts route shows for the customer's account. */
  const routeBalance = async (c: TestCustomer) => {
    const res = await api(c.as).get(`/v1/accounts?customerId=${c.id}`);
    expect(res.status).toBe(200);
    const item = res.body.items.find((x: { id: string }) => x.id === c.accountId);
    return item.balance as { amount: string; currency: string };
  };
  const quote = (from: TestCustomer, to: TestCustomer, amount: string, extra: object = {}) =>
    api(from.as).post('/v1/transfers/quotes', { customerId: from.id, payee: to.alias, sendAmount: { amount, currency: from.currency }, ...extra });
  const confirm = (from: TestCustomer, quoteId: string, extra: object = {}) => api(from.as).post('/v1/transfers/payments', { quoteId, ...extra }, key());
  const request = (requester: TestCustomer, payer: TestCustomer, amount: string) =>
    api(requester.as).post('/v1/transfers/requests', { customerId: requester.id, payer: payer.alias, amount: { amount, currency: requester.currency } });
  const setRule = async (as: string, rule: RuleName, params: object) => {
    const res = await api(as).post('/v1/risk/rules', { rule, enabled: true, ...params });
    expect(res.status).toBe(200);
  };
  const restoreRule = (as: string, rule: RuleName) => setRule(as, rule, { ...DEFAULT_RULES[rule] });
  const paymentsForQuote = async (quoteId: string) => (await t.hub.db.query<{ id: string }>('select id from payments where quote_id = $1', [quoteId])).length;

  beforeAll(async () => {
    t = await startTestHub(engine, { clock });
  }, 60_000);
  afterAll(async () => t?.close());

  // ---- 1. requests ------------------------------------------------------------------------------------------------

  it('rate limits a payee requesting money: 429 request_rate_limited with a retry delay, lifted by time', async () => {
    const requester = await customer('wallet-c', { currency: 'SGD' });
    const payers = [await customer('wallet-b', { currency: 'CNY' }), await customer('wallet-b', { currency: 'CNY' }), await customer('wallet-a', { currency: 'CNY' })];
    const burst = t.hub.transfers.transfers.requestLimits.requestBurst;
    expect(burst).toBe(10);
    // Ten requests spread over two payers (five each, inside the pending cap) use up the burst.
    for (let i = 0; i < burst; i++) expect((await request(requester, payers[i % 2]!, '1.00')).status).toBe(201);
    const limited = await request(requester, payers[2]!, '1.00');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('request_rate_limited');
    // 10 a minute: the next token comes back in 6 s.
    expect(limited.body.error.details.retryAfterMs).toBeGreaterThan(0);
    expect(limited.body.error.details.retryAfterMs).toBeLessThanOrEqual(6_000);
    expect(Number(limited.headers['retry-after'])).toBe(Math.ceil(limited.body.error.details.retryAfterMs / 1000));
    // Nothing was created by the refused request.
    const seen = await api('wallet-a').get(`/v1/transfers/requests?customerId=${payers[2]!.id}&role=payer`);
    expect(seen.body.items).toHaveLength(0);
    clock.advance(limited.body.error.details.retryAfterMs);
    expect((await request(requester, payers[2]!, '1.00')).status).toBe(201);
    expect((await request(requester, payers[2]!, '1.00')).body.error.code).toBe('request_rate_limited');
  });

  it('caps the pending requests a payer can have: the 6th is refused with too_many_pending_requests', async () => {
    const payer = await customer('wallet-a', { currency: 'CNY' });
    const requesters = [await customer('wallet-b', { currency: 'CNY' }), await customer('wallet-c', { currency: 'SGD' })];
    expect(MAX_PENDING_REQUESTS_PER_PAYER).toBe(5);
    const made: string[] = [];
    // The cap is per payer, whoever asks.
    for (let i = 0; i < MAX_PENDING_REQUESTS_PER_PAYER; i++) {
      const r = await request(requesters[i % 2]!, payer, '2.00');
      expect(r.status).toBe(201);
      made.push(r.body.id);
    }
    const sixth = await request(requesters[1]!, payer, '2.00');
    expect(sixth.status).toBe(429);
    expect(sixth.body.error.code).toBe('too_many_pending_requests');
    expect(sixth.body.error.details.max).toBe(5);
    const listed = await api('wallet-a').get(`/v1/transfers/requests?customerId=${payer.id}&role=payer`);
    expect(listed.body.items).toHaveLength(5);
    // Declining one frees a place.
    const declined = await api('wallet-a').post(`/v1/transfers/requests/${made[0]}/decline`, { customerId: payer.id });
    expect(declined.status).toBe(200);
    expect((await request(requesters[1]!, payer, '2.00')).status).toBe(201);
    expect((await request(requesters[0]!, payer, '2.00')).body.error.code).toBe('too_many_pending_requests');
  });

  it('flags a request from a payee the payer never paid in what the payer sees, and stops flagging once paid', async () => {
    const payer = await customer('wallet-b', { currency: 'CNY', deposit: '100.00' });
    const requester = await customer('wallet-a', { currency: 'CNY' });
    const first = await request(requester, payer, '3.00');
    expect(first.status).toBe(201);
    const seen = await api('wallet-b').get(`/v1/transfers/requests?customerId=${payer.id}&role=payer`);
    expect(seen.status).toBe(200);
    const item = seen.body.items.find((r: { id: string }) => r.id === first.body.id);
    expect(item.firstTime).toBe(true);
    expect(item.warning).toContain(REQUEST_WARNING);
    expect(item.warning).toContain(FIRST_TIME_WARNING);
    expect(item.requester.maskedName).not.toBe(requester.name);
    // The quote the payer gets on approving repeats the warnings.
    const q = await api('wallet-b').post(`/v1/transfers/requests/${first.body.id}/approve`, { customerId: payer.id });
    expect(q.status).toBe(201);
    expect(q.body.warnings).toEqual(expect.arrayContaining([REQUEST_WARNING, FIRST_TIME_WARNING]));
    expect((await confirm(payer, q.body.id)).status).toBe(201);
    // Now the payer has paid this requester: the next request is no longer first-time (the approval warning stays).
    const second = await request(requester, payer, '4.00');
    const again = (await api('wallet-b').get(`/v1/transfers/requests/${second.body.id}`)).body;
    expect(again.firstTime).toBe(false);
    expect(again.warning).toContain(REQUEST_WARNING);
    expect(again.warning).not.toContain(FIRST_TIME_WARNING);
  });

  it("refuses to approve someone else's request (404, as for any object the caller may not name) and moves no money", async () => {
    const payer = await customer('wallet-b', { currency: 'CNY', deposit: '100.00' });
    const other = await customer('wallet-b', { currency: 'CNY', deposit: '100.00' });
    const requester = await customer('wallet-a', { currency: 'CNY' });
    const req = await request(requester, payer, '7.00');
    expect(req.status).toBe(201);
    const before = [await balance(payer), await balance(other), await balance(requester)];
    // Another customer of the payer's wallet.
    const wrong = await api('wallet-b').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: other.id });
    expect(wrong.status).toBe(404);
    expect(wrong.body.error.code).toBe('request_not_found');
    const wrongDecline = await api('wallet-b').post(`/v1/transfers/requests/${req.body.id}/decline`, { customerId: other.id });
    expect(wrongDecline.body.error.code).toBe('request_not_found');
    // Another participant, including the requester's own: not found.
    expect((await api('wallet-a').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: requester.id })).status).toBe(404);
    expect((await api('wallet-c').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: payer.id })).status).toBe(404);
    expect(await t.hub.db.query('select id from quotes where request_id = $1', [req.body.id])).toHaveLength(0);
    expect([await balance(payer), await balance(other), await balance(requester)]).toEqual(before);
    expect((await api('wallet-a').get(`/v1/transfers/requests/${req.body.id}`)).body.status).toBe('pending');
  });

  it('decline and block: that payee can no longer request from this payer, by request or by split', async () => {
    const payer = await customer('wallet-c', { currency: 'SGD' });
    const requester = await customer('wallet-b', { currency: 'CNY' });
    const someoneElse = await customer('wallet-a', { currency: 'CNY' });
    const req = await request(requester, payer, '5.00');
    expect(req.status).toBe(201);
    const declined = await api('wallet-c').post(`/v1/transfers/requests/${req.body.id}/decline`, { customerId: payer.id, block: true });
    expect(declined.status).toBe(200);
    expect(declined.body.status).toBe('declined');
    const blocked = await request(requester, payer, '5.00');
    expect(blocked.status).toBe(403);
    expect(blocked.body.error.code).toBe('request_blocked');
    const bySplit = await api('wallet-b').post('/v1/transfers/splits', {
      customerId: requester.id,
      total: { amount: '10.00', currency: 'CNY' },
      method: 'equal',
      members: [{ alias: requester.alias }, { alias: payer.alias }],
    });
    expect(bySplit.body.error.code).toBe('request_blocked');
    // The block is for that requester only, and the declined request cannot be approved afterwards.
    expect((await request(someoneElse, payer, '5.00')).status).toBe(201);
    expect((await request(requester, someoneElse, '5.00')).status).toBe(201);
    expect((await api('wallet-c').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: payer.id })).body.error.code).toBe('request_not_pending');
  });

  it('approving goes through quote and confirm and moves the money exactly once', async () => {
    const payer = await customer('wallet-b', { currency: 'CNY', deposit: '500.00' });
    const requester = await customer('wallet-a', { currency: 'CNY' });
    const req = await request(requester, payer, '12.34');
    expect(req.status).toBe(201);
    const [p0, r0] = [await balance(payer), await balance(requester)];
    const q1 = await api('wallet-b').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: payer.id });
    expect(q1.status).toBe(201);
    expect(q1.body.requestId).toBe(req.body.id);
    expect(q1.body.receiveAmount).toEqual({ amount: '12.34', currency: 'CNY' });
    expect(q1.body.warnings).toContain(REQUEST_WARNING);
    // A second approval before paying gives a second quote for the same request.
    const q2 = await api('wallet-b').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: payer.id });
    expect(q2.status).toBe(201);
    expect([await balance(payer), await balance(requester)]).toEqual([p0, r0]); // approving alone moves nothing
    const k = key();
    const paid = await api('wallet-b').post('/v1/transfers/payments', { quoteId: q1.body.id }, k);
    expect(paid.status).toBe(201);
    expect(paid.body.requestId).toBe(req.body.id);
    // A retry with the same key replays; a new key on the same quote, the other quote, or a new approval are refused.
    const replay = await api('wallet-b').post('/v1/transfers/payments', { quoteId: q1.body.id }, k);
    expect(replay.status).toBe(201);
    expect(replay.body.id).toBe(paid.body.id);
    expect((await confirm(payer, q1.body.id)).body.error.code).toBe('quote_already_used');
    const viaOther = await confirm(payer, q2.body.id);
    expect(viaOther.status).toBe(409);
    expect(viaOther.body.error.code).toBe('request_not_pending');
    expect(await paymentsForQuote(q2.body.id)).toBe(0);
    expect((await api('wallet-b').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: payer.id })).body.error.code).toBe('request_not_pending');
    expect(await balance(payer)).toBe(p0 - 1234n);
    expect(await balance(requester)).toBe(r0 + 1234n);
    const rows = await t.hub.db.query<{ id: string }>('select id from payments where request_id = $1', [req.body.id]);
    expect(rows.map((r) => r.id)).toEqual([paid.body.id]);
    const after = (await api('wallet-a').get(`/v1/transfers/requests/${req.body.id}`)).body;
    expect(after.status).toBe('paid');
    expect(after.paymentId).toBe(paid.body.id);
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
  });

  // ---- 2. risk on P2P ---------------------------------------------------------------------------------------------

  it('a risk rule set through the routes declines a payment: nothing moves, an alert is listed for the participant and the operator and resolved', async () => {
    const payer = await customer('wallet-a', { currency: 'CNY', deposit: '1000.00' });
    const payee = await customer('wallet-b', { currency: 'CNY' });
    try {
      // 1 EUR and above is a "large amount" for wallet-a's customers.
      await setRule('wallet-a', 'large_amount', { action: 'decline', score: 80, minRefEurCents: 100 });
      const rules = await api('wallet-a').get('/v1/risk/rules');
      expect(rules.body.large_amount).toMatchObject({ action: 'decline', minRefEurCents: 100, enabled: true });
      // Another participant's rules are untouched.
      expect((await api('wallet-b').get('/v1/risk/rules')).body.large_amount.minRefEurCents).toBe(DEFAULT_RULES.large_amount.minRefEurCents);
      const [p0, e0] = [await routeBalance(payer), await routeBalance(payee)];
      expect(p0).toEqual({ amount: '1000.00', currency: 'CNY' });
      const q = await quote(payer, payee, '20.00');
      expect(q.status).toBe(201);
      const declined = await confirm(payer, q.body.id);
      expect(declined.status).toBe(403);
      expect(declined.body.error.code).toBe('risk_declined');
      expect(declined.body.error.details.reasons).toContain('large_amount');
      // Listed as soon as the refusal is answered (the alert is raised before the response leaves).
      const mine = await api('wallet-a').get('/v1/risk/alerts?status=open');
      const alert = mine.body.items.find((a: { context: { quoteId?: string } }) => a.context.quoteId === q.body.id);
      expect(alert).toMatchObject({ customerId: payer.id, channel: 'p2p', decision: 'decline', status: 'open' });
      expect(alert.reasons.map((r: { rule: string }) => r.rule)).toContain('large_amount');
      expect(await routeBalance(payer)).toEqual(p0);
      expect(await routeBalance(payee)).toEqual(e0);
      expect(await paymentsForQuote(q.body.id)).toBe(0);
      const ops = await t.api('operator').get('/v1/operator/risk/alerts?status=open');
      expect(ops.body.items.map((a: { id: string }) => a.id)).toContain(alert.id);
      // Not visible to, nor resolvable by, another participant.
      expect((await api('wallet-b').get('/v1/risk/alerts')).body.items.map((a: { id: string }) => a.id)).not.toContain(alert.id);
      expect((await api('wallet-b').post(`/v1/risk/alerts/${alert.id}/resolve`, { resolution: 'not mine' })).status).toBe(404);
      const resolved = await api('wallet-a').post(`/v1/risk/alerts/${alert.id}/resolve`, { resolution: 'customer confirmed by phone' });
      expect(resolved.status).toBe(200);
      expect(resolved.body).toMatchObject({ id: alert.id, status: 'resolved', resolution: 'customer confirmed by phone' });
      expect((await api('wallet-a').get('/v1/risk/alerts?status=open')).body.items.map((a: { id: string }) => a.id)).not.toContain(alert.id);
      expect((await t.api('operator').get('/v1/operator/risk/alerts?status=resolved')).body.items.map((a: { id: string }) => a.id)).toContain(alert.id);
      // Below the threshold the same customer pays.
      const small = await quote(payer, payee, '5.00');
      expect((await confirm(payer, small.body.id)).status).toBe(201);
      expect(await routeBalance(payee)).toEqual({ amount: '5.00', currency: 'CNY' });
    } finally {
      await restoreRule('wallet-a', 'large_amount');
    }
  });

  it('a risk rule that asks for step-up answers 428 step_up_required; confirming after step-up pays once', async () => {
    const payer = await customer('wallet-b', { currency: 'CNY', deposit: '300.00' });
    const payee = await customer('wallet-a', { currency: 'CNY' });
    try {
      await setRule('wallet-b', 'new_counterparty', { action: 'step_up', score: 20, minRefEurCents: 0 });
      const [p0, e0] = [await balance(payer), await balance(payee)];
      const q = await quote(payer, payee, '8.00');
      const stepUp = await confirm(payer, q.body.id);
      expect(stepUp.status).toBe(428);
      expect(stepUp.body.error.code).toBe('step_up_required');
      expect(stepUp.body.error.details.reasons).toEqual(['new_counterparty']);
      expect([await balance(payer), await balance(payee)]).toEqual([p0, e0]);
      const alerts = (await api('wallet-b').get('/v1/risk/alerts?status=open')).body.items.filter((a: { context: { quoteId?: string } }) => a.context.quoteId === q.body.id);
      expect(alerts).toHaveLength(1);
      expect(alerts[0].decision).toBe('step_up');
      // The quote survived the refusal: after a real step-up (a one-time code the wallet delivers to its customer) the
      // same quote is paid, once.
      const challengeId = await completeOtpStepUp(t.hub, (method, url, body) => (method === 'GET' ? api('wallet-b').get(url) : api('wallet-b').post(url, body)), stepUp);
      const paid = await confirm(payer, q.body.id, { stepUpChallengeId: challengeId });
      expect(paid.status).toBe(201);
      expect(await balance(payer)).toBe(p0 - 800n);
      expect(await balance(payee)).toBe(e0 + 800n);
      // The counterparty is known now: the next payment needs no step-up.
      const q2 = await quote(payer, payee, '1.00');
      expect((await confirm(payer, q2.body.id)).status).toBe(201);
    } finally {
      await restoreRule('wallet-b', 'new_counterparty');
    }
  });

  it('a flagged alias shows a warning on lookup, in quotes and requests, and feeds the flagged_counterparty rule', async () => {
    const suspect = await customer('wallet-c', { currency: 'SGD' });
    const payer = await customer('wallet-a', { currency: 'CNY', deposit: '200.00' });
    const lookup = () => api('wallet-a').get(`/v1/aliases/lookup?customerId=${payer.id}&type=handle&value=${suspect.alias.value}`);
    const clean = await lookup();
    expect(clean.body.flagged).toBe(false);
    expect(clean.body.warning).toBeNull();
    const flag = await api('wallet-b').post('/v1/aliases/flags', { ...suspect.alias, reason: 'reported by three customers' });
    expect(flag.status).toBe(201);
    const flagged = await lookup();
    expect(flagged.status).toBe(200);
    expect(flagged.body.flagged).toBe(true);
    expect(flagged.body.warning).toBe(FLAGGED_WARNING);
    // A request from the flagged customer carries the warning to the payer.
    const req = await request(suspect, payer, '3.00');
    expect(req.status).toBe(201);
    const seen = (await api('wallet-a').get(`/v1/transfers/requests/${req.body.id}`)).body;
    expect(seen.flagged).toBe(true);
    expect(seen.warning).toContain(FLAGGED_WARNING);
    const p0 = await balance(payer);
    // Default rule: a flagged counterparty is declined, and nothing moves.
    const q = await quote(payer, suspect, '10.00');
    expect(q.status).toBe(201);
    expect(q.body.warnings).toContain(FLAGGED_WARNING);
    expect(q.body.payee.flagged).toBe(true);
    const declined = await confirm(payer, q.body.id);
    expect(declined.status).toBe(403);
    expect(declined.body.error.code).toBe('risk_declined');
    expect(declined.body.error.details.reasons).toContain('flagged_counterparty');
    // Paying the flagged requester through the request is declined the same way.
    const viaRequest = await api('wallet-a').post(`/v1/transfers/requests/${req.body.id}/approve`, { customerId: payer.id });
    expect(viaRequest.body.warnings).toContain(FLAGGED_WARNING);
    expect((await confirm(payer, viaRequest.body.id)).body.error.code).toBe('risk_declined');
    expect(await balance(payer)).toBe(p0);
    expect(await balance(suspect)).toBe(0n);
    try {
      // The participant can soften the rule to a step-up through the routes.
      await setRule('wallet-a', 'flagged_counterparty', { action: 'step_up', score: 50 });
      const q2 = await quote(payer, suspect, '10.00');
      const stepUp = await confirm(payer, q2.body.id);
      expect(stepUp.status).toBe(428);
      expect(stepUp.body.error.details.reasons).toContain('flagged_counterparty');
    } finally {
      await restoreRule('wallet-a', 'flagged_counterparty');
    }
    // Withdrawn by the participant that raised it: no warning, and the payment goes through.
    const removed = await api('wallet-b').post('/v1/aliases/flags/remove', suspect.alias);
    expect(removed.body.flagged).toBe(false);
    expect((await lookup()).body.flagged).toBe(false);
    const q3 = await quote(payer, suspect, '10.00');
    expect(q3.body.warnings).toEqual([]);
    expect((await confirm(payer, q3.body.id)).status).toBe(201);
    // wallet-a → wallet-c carries the demo fee: the payer is debited the quote's total, the suspect credited in SGD.
    expect(q3.body.totalDebit.amount).toBe('11.03');
    expect(await balance(payer)).toBe(p0 - 1103n);
    expect((await routeBalance(suspect)).amount).toBe(q3.body.receiveAmount.amount);
  });

  // ---- 3. limits per KYC level ------------------------------------------------------------------------------------

  it('refuses a payment over the daily limit of the KYC level with limit_exceeded and moves nothing; the next day it passes', async () => {
    // KYC level 0: 100 EUR a day. 1 EUR = 7.8312 CNY in the demo rates.
    const payer = await customer('wallet-a', { currency: 'CNY', deposit: '5000.00', kycLevel: 0 });
    const payee = await customer('wallet-b', { currency: 'CNY' });
    const p0 = await balance(payer);
    // Over the limit on its own (≈114.92 EUR): refused at quote time.
    const over = await quote(payer, payee, '900.00');
    expect(over.status).toBe(422);
    expect(over.body.error.code).toBe('limit_exceeded');
    expect(over.body.error.details).toMatchObject({ period: 'daily', kycLevel: 0 });
    // Two quotes each under the limit (≈63.85 and ≈51.08 EUR), together over it: the second is refused at confirm.
    const a = await quote(payer, payee, '500.00');
    const b = await quote(payer, payee, '400.00');
    expect([a.status, b.status]).toEqual([201, 201]);
    expect((await confirm(payer, a.body.id)).status).toBe(201);
    const refused = await confirm(payer, b.body.id);
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('limit_exceeded');
    expect(await paymentsForQuote(b.body.id)).toBe(0);
    expect(await balance(payer)).toBe(p0 - 50_000n);
    expect(await balance(payee)).toBe(50_000n);
    // A new UTC day: the daily usage starts again.
    const now = clock.nowMs();
    clock.set(Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate() + 1, 0, 0, 1));
    const c = await quote(payer, payee, '400.00');
    expect(c.status).toBe(201);
    expect((await confirm(payer, c.body.id)).status).toBe(201);
    expect(await balance(payer)).toBe(p0 - 90_000n);
  });

  // ---- 4. splits --------------------------------------------------------------------------------------------------

  it('refuses splits whose amounts do not sum (split_amounts_mismatch, nothing created) and rate limits reminders', async () => {
    const creator = await customer('wallet-b', { currency: 'CNY' });
    const m1 = await customer('wallet-a', { currency: 'CNY' });
    const m2 = await customer('wallet-c', { currency: 'SGD' });
    const split = (amounts: string[]) =>
      api('wallet-b').post('/v1/transfers/splits', {
        customerId: creator.id,
        total: { amount: '100.00', currency: 'CNY' },
        method: 'amounts',
        members: [creator, m1, m2].map((m, i) => ({ alias: m.alias, amount: amounts[i]! })),
      });
    const under = await split(['33.33', '33.33', '33.33']);
    expect(under.status).toBe(422);
    expect(under.body.error.code).toBe('split_amounts_mismatch');
    expect(under.body.error.details).toEqual({ sumMinor: '9999', totalMinor: '10000' });
    const over = await split(['50.00', '30.00', '20.01']);
    expect(over.body.error.code).toBe('split_amounts_mismatch');
    const countFor = async (table: string, column: string) => (await t.hub.db.query(`select 1 as x from ${table} where ${column} = $1`, [creator.id])).length;
    expect(await countFor('bill_splits', 'customer_id')).toBe(0);
    expect(await countFor('money_requests', 'requester_customer_id')).toBe(0);

    const ok = await split(['40.00', '35.00', '25.00']);
    expect(ok.status).toBe(201);
    expect(ok.body.members.map((m: { amount: { amount: string } }) => m.amount.amount)).toEqual(['40.00', '35.00', '25.00']);
    const remind = () => api('wallet-b').post(`/v1/transfers/splits/${ok.body.id}/remind`);
    const reminderEvents = async () => (await t.hub.db.query(`select 1 as x from events where type = 'money_request.reminder' and payload->>'requestId' = any($1::text[])`, [ok.body.members.map((m: { requestId: string | null }) => m.requestId).filter((x: string | null) => x !== null)])).length;
    const first = await remind();
    expect(first.status).toBe(200);
    expect(first.body.reminded).toBe(2);
    expect(await reminderEvents()).toBe(2);
    const second = await remind();
    expect(second.status).toBe(429);
    expect(second.body.error.code).toBe('reminder_rate_limited');
    expect(Number(second.headers['retry-after'])).toBeGreaterThan(3_000);
    expect(second.body.error.details.retryAfterMs).toBe(REMINDER_INTERVAL_MS);
    clock.advance(REMINDER_INTERVAL_MS - 60_000);
    expect((await remind()).body.error.code).toBe('reminder_rate_limited');
    expect(await reminderEvents()).toBe(2);
    clock.advance(60_000);
    const later = await remind();
    expect(later.status).toBe(200);
    expect(later.body.reminded).toBe(2);
    expect(await reminderEvents()).toBe(4);
  });

  // ---- 5. verification of payee -----------------------------------------------------------------------------------

  it('verification of payee: the lookup answer never contains the account id or the full name', async () => {
    const target = await customer('wallet-c', { currency: 'SGD', name: 'Vivian Goh Siew Ling' });
    const asker = await customer('wallet-a', { currency: 'CNY', deposit: '50.00' });
    const res = await api('wallet-a').get(`/v1/aliases/lookup?customerId=${asker.id}&type=handle&value=${target.alias.value}`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['alias', 'currency', 'flagged', 'maskedName', 'participantId', 'participantName', 'type', 'warning']);
    expect(res.body.maskedName).toBe('V** G** S** L**');
    const json = JSON.stringify(res.body);
    for (const secret of [target.accountId, target.id, 'acc_', 'Vivian', 'Goh', 'Siew', 'Ling']) expect(json).not.toContain(secret);
    // A CJK name (demo customer 张敏) and a phone alias: masked too, no account.
    const zhang = await api('wallet-a').get(`/v1/aliases/lookup?customerId=${asker.id}&type=phone&value=${encodeURIComponent('+85291234567')}`);
    expect(zhang.status).toBe(200);
    expect(zhang.body.maskedName).toBe('张*');
    expect(JSON.stringify(zhang.body)).not.toContain('张敏');
    expect(JSON.stringify(zhang.body)).not.toContain('acc_');
    // The quote shows the payer no more than the lookup does.
    const q = await api('wallet-a').post('/v1/transfers/quotes', { customerId: asker.id, payee: target.alias, receiveAmount: { amount: '1.00', currency: 'SGD' } });
    expect(q.status).toBe(201);
    expect(q.body.payee).toMatchObject({ maskedName: 'V** G** S** L**', flagged: false });
    const quoteJson = JSON.stringify(q.body);
    for (const secret of [target.accountId, target.id, 'Vivian', 'Goh']) expect(quoteJson).not.toContain(secret);
  });
});

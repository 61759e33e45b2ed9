import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoParticipantId } from '../demo/seed.ts';
import { createFakeClock, type FakeClock } from '../platform/clock.ts';
import { availableEngines } from '../../test/support/engines.ts';
import { startTestHub, type TestHub } from '../../test/support/hub.ts';
import { cardInTwoWallets, cardInWallet, tapBody, type Caller, type CardInTwoWallets, type WalletToken } from '../demo/fixtures.ts';
import { ISSUER_ASK_GRACE_MS, isDecided } from './pipeline.ts';

/**
 * The card pipeline's promises: an issuer deciding in real time is asked outside any lock (a slow one delays only its
 * own payments), an approval a payment does not use is reversed to the issuer (at once, or by the sweep after a
 * crash), a retry never asks twice, and a cryptogram pays once however many copies race.
 */
const engines = await availableEngines();
const MERCHANT_A = 'mer_demo_merchant_a';
const MERCHANT_B = 'mer_demo_merchant_b';
let keyNo = 0;
const key = () => ({ 'idempotency-key': `pipe-${++keyNo}` });

describe.each(engines)('card pipeline on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let cardA: CardInTwoWallets;
  let cardB: WalletToken;
  let issuer: Server;
  let issuerUrl: string;
  /** What bank-a's authorization endpoint saw: one entry per ask, by authorization id. */
  const asked: string[] = [];
  let issuerDelayMs = 0;
  const call: Caller = async (as, method, path, body, headers) => {
    const api = t.api(as);
    return method === 'GET' ? api.get(path, headers) : method === 'POST' ? api.post(path, body, headers) : api.patch(path, body, headers);
  };
  const tapA = (body: ReturnType<typeof tapBody>, headers = key()) => t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/tap`, body, headers);
  const bodyA = (amount: string, amountMinor: bigint) => tapBody(cardA.a, { amount, amountMinor, now: clock.now() });
  const reversalsOf = async (authorizationId: string) =>
    t.hub.db.query<{ participant_id: string; payload: { authorizationId: string; amount: { amount: string; currency: string }; reason: string } }>(
      `select participant_id, payload from events where type = 'payment.authorization_reversed' and payload->>'authorizationId' = $1`,
      [authorizationId],
    );
  const askStatus = async (authorizationId: string) => (await t.hub.db.query<{ status: string }>('select status from pay_issuer_asks where authorization_id = $1', [authorizationId]))[0]?.status;
  const useIssuerWebhook = (deadlineMs: number) => t.api('bank-a').post('/v1/issuer/authorization-settings', { mode: 'webhook', authUrl: issuerUrl, deadlineMs, standIn: { action: 'decline', maxAmountMinor: '0' } });

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    cardA = await cardInTwoWallets(t.hub, call);
    cardB = (await cardInWallet(t.hub, call, { issuerKey: 'bank-b', productId: 'cpr_demo_bank_b_credit', currency: 'HKD', holderKey: 'zhang-at-bank-b', wallet: 'wallet-b', walletCustomerKey: 'zhang-at-wallet-b' })).token;
    for (const bank of ['bank-a', 'bank-b']) {
      await t.hub.db.transaction((tx) => t.hub.transfers.risk.setRule(tx, { type: 'system' }, demoParticipantId(bank), 'velocity', { action: 'step_up', score: 40, windowS: 600, maxCount: 100_000 }, true));
    }
    issuer = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        asked.push((JSON.parse(body) as { data: { authorizationId: string } }).data.authorizationId);
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ decision: 'approve' })), issuerDelayMs);
      });
    });
    await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
    issuerUrl = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}/authorize`;
  });
  afterAll(async () => {
    issuer?.closeAllConnections();
    issuer?.close();
    await t?.close();
  });

  it("a slow issuer (2 s) delays its own card's payments, not another issuer's", async () => {
    expect((await useIssuerWebhook(5_000)).status).toBe(200);
    issuerDelayMs = 2_000;
    try {
      const started = Date.now();
      const slow = tapA(bodyA('8.00', 800n)).then((r) => ({ r, ms: Date.now() - started }));
      // While bank-a's decision is outstanding, bank-b's card pays at merchant-b, one tap after another.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const others: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        const r = await t.api('merchant-b').post(`/v1/merchants/${MERCHANT_B}/payments/tap`, tapBody(cardB, { amount: '5.00', amountMinor: 500n, currency: 'HKD', country: 'HK', now: clock.now() }), key());
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        others.push(Date.now() - t0);
      }
      const afterOthers = Date.now() - started;
      const { r, ms } = await slow;
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body).toMatchObject({ decidedBy: 'issuer', status: 'authorized' });
      expect(ms).toBeGreaterThanOrEqual(2_000);
      // Every other issuer's tap was answered while bank-a's was still waiting for its issuer.
      expect(afterOthers).toBeLessThan(ms);
      expect(Math.max(...others)).toBeLessThan(1_500);
    } finally {
      issuerDelayMs = 0;
    }
  });

  it('an approval the payment does not use is reversed to the issuer; a retry replays and never asks again', async () => {
    expect((await useIssuerWebhook(2_000)).status).toBe(200);
    const before = asked.length;
    // Two copies of one tap race: both pass the lock-free checks and both are approved by the issuer; under the token's
    // lock only one claims the counter. The other is reversed. The second is sent while the issuer holds the first's
    // question: sent in the same instant they would be decided in one batch, which refuses the copy before asking anyone.
    const body = bodyA('6.00', 600n);
    const [k1, k2] = [key(), key()];
    issuerDelayMs = 300;
    let results: Awaited<ReturnType<typeof tapA>>[];
    try {
      const first = tapA(body, k1);
      for (let i = 0; i < 500 && asked.length === before; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      results = await Promise.all([first, tapA(body, k2)]);
    } finally {
      issuerDelayMs = 0;
    }
    expect(results.map((r) => r.status).sort()).toEqual([201, 402]);
    const won = results.find((r) => r.status === 201)!;
    const lost = results.find((r) => r.status !== 201)!;
    expect(lost.body.error.code).toBe('atc_replayed');
    const askedNow = asked.slice(before);
    expect(askedNow).toHaveLength(2);
    expect(askedNow).toContain(won.body.id);
    const unused = askedNow.find((id) => id !== won.body.id)!;
    expect(await askStatus(won.body.id)).toBe('used');
    expect(await askStatus(unused)).toBe('reversed');
    const reversals = await reversalsOf(unused);
    expect(reversals).toHaveLength(1);
    expect(reversals[0]).toMatchObject({ participant_id: demoParticipantId('bank-a'), payload: { authorizationId: unused, amount: { amount: '6.00', currency: 'CNY' }, reason: 'atc_replayed' } });
    expect(await reversalsOf(won.body.id)).toHaveLength(0);
    // The reversal reaches the issuer as a signed webhook, retried until acknowledged (the outbox's delivery rows).
    const [delivery] = await t.hub.db.query<{ n: bigint }>(
      `select count(*) as n from webhook_deliveries d join events e on e.event_id = d.event_id where e.type = 'payment.authorization_reversed' and e.payload->>'authorizationId' = $1`,
      [unused],
    );
    const subscribed = await t.hub.db.query(`select 1 from participants where id = $1 and webhook_url is not null`, [demoParticipantId('bank-a')]);
    expect(delivery?.n).toBe(BigInt(subscribed.length));

    // Retried with their keys: both answers replay, the issuer is not asked again and no money moves twice.
    const holds = async () => (await t.hub.db.query<{ n: bigint }>('select count(*) as n from pay_authorizations where token_id is not null and card_id = $1', [cardA.cardId]))[0]?.n;
    const holdsBefore = await holds();
    const again = await Promise.all([tapA(body, k1), tapA(body, k2)]);
    expect(again.map((r) => r.headers['idempotent-replayed'])).toEqual(['true', 'true']);
    expect(again.map((r) => r.status)).toEqual(results.map((r) => r.status));
    expect(asked.length).toBe(before + 2);
    expect(await holds()).toBe(holdsBefore);
  });

  it('one key sent five times at once: the issuer is asked once, one payment, four replays of its answer', async () => {
    expect((await useIssuerWebhook(2_000)).status).toBe(200);
    issuerDelayMs = 300;
    try {
      const before = asked.length;
      const body = bodyA('2.00', 200n);
      const k = key();
      const results = await Promise.all(Array.from({ length: 5 }, () => tapA(body, k)));
      expect(results.map((r) => r.status)).toEqual(Array(5).fill(201));
      expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
      expect(results.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(4);
      expect(asked.length).toBe(before + 1);
    } finally {
      issuerDelayMs = 0;
    }
  });

  it("an approval left by a crash is reversed by the sweep after the issuer's deadline, and cannot be used after", async () => {
    expect((await useIssuerWebhook(2_000)).status).toBe(200);
    const payments = t.hub.payments.payments;
    const body = bodyA('4.00', 400n);
    const input = { channel: 'tap' as const, actor: { type: 'participant' as const, participantId: demoParticipantId('merchant-a') }, owner: demoParticipantId('merchant-a'), merchantId: MERCHANT_A, tap: { ...body, amountMinor: 400n, currency: 'CNY' } };
    const [decided] = await payments.decideMany([input]);
    if (decided === undefined || !isDecided(decided)) throw new Error(`not decided: ${JSON.stringify(decided)}`);
    const approved = await payments.askIssuer(decided);
    expect(isDecided(approved) && approved.issuerApproved).toBe(true);
    // The process dies here: nothing commits. The sweep leaves the ask alone until its deadline and grace have passed.
    expect((await payments.sweepIssuerAsks()).reversed).toBe(0);
    expect(await askStatus(decided.id)).toBe('asking');
    clock.advance(2_000 + ISSUER_ASK_GRACE_MS + 1);
    const swept = await payments.sweepIssuerAsks();
    expect(swept.reversed).toBe(1);
    expect(await askStatus(decided.id)).toBe('reversed');
    expect(await reversalsOf(decided.id)).toMatchObject([{ payload: { reason: 'not_completed' } }]);
    expect((await payments.sweepIssuerAsks()).reversed).toBe(0);
    // A commit that comes after the reversal does not use the approval: nothing is held.
    const [late] = await t.hub.db.transaction((tx) => payments.commitMany(tx, [approved]));
    expect(late?.ok ? 'ok' : late?.error.code).toBe('issuer_unavailable');
    expect(await t.hub.db.query('select 1 from pay_authorizations where id = $1', [decided.id])).toHaveLength(0);
    await t.api('bank-a').post('/v1/issuer/authorization-settings', { mode: 'hosted' });
  });

  it('copies of one cryptogram racing pay once; the rest are replays that write nothing', async () => {
    await t.api('bank-a').post('/v1/issuer/authorization-settings', { mode: 'hosted' });
    const body = bodyA('3.00', 300n);
    const holdsOf = async () => (await t.hub.db.query<{ n: bigint }>('select count(*) as n from pay_authorizations where card_id = $1', [cardA.cardId]))[0]?.n ?? 0n;
    const before = await holdsOf();
    const results = await Promise.all(Array.from({ length: 8 }, () => tapA(body)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status !== 201).map((r) => r.body.error.code)).toEqual(Array(7).fill('atc_replayed'));
    expect((await holdsOf()) - before).toBe(1n);
    const [row] = await t.hub.db.query<{ last_atc: number }>('select last_atc from card_tokens where token_ref = $1', [cardA.a.tokenRef]);
    expect(row?.last_atc).toBe(body.atc);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });
});

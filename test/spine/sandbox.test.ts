import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeClock } from '../../src/platform/clock.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { seedSandboxCards, type SandboxCard } from '../../src/demo/sandbox.ts';
import { tapBody, type WalletToken } from '../../src/demo/fixtures.ts';
import { verifyWebhook } from '../../src/webhooks/signing.ts';
import { WEBHOOK_SECRET_ROTATION } from '../../src/webhooks/secrets.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { newDevice } from '../../src/demo/device.ts';

/**
 * The sandbox an integrator starts from (issue 19): the demo hub's test cards — one per demo bank, funded, added to a
 * wallet by the number, expiry and CVV the banner prints, and paid with at once — and every participant's webhook
 * signing secret, readable again by a demo participant in demo mode and rotatable by any participant, with both
 * secrets signing during the rotation (Standard Webhooks).
 */
const engines = await availableEngines();
const SYSTEM = { type: 'system' } as const;
let keyNo = 0;
const key = () => ({ 'idempotency-key': `sandbox-${++keyNo}` });

async function startReceiver(): Promise<{ url: string; received: { headers: IncomingHttpHeaders; body: string }[]; server: Server }> {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks`, received, server };
}

describe.each(engines)('the sandbox on %s', (engine) => {
  let t: TestHub;
  const clock = createFakeClock(Date.now());
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver();
    t = await startTestHub(engine, { clock });
  });
  afterAll(async () => {
    await t?.close();
    receiver?.server.close();
  });

  it('seeds one funded test card per demo bank, idempotently; a wallet adds one by its printed data and pays with it', async () => {
    const cards = await seedSandboxCards(t.hub);
    expect(cards.map((c) => c.bank)).toEqual(['bank-a', 'bank-b']);
    for (const c of cards) {
      expect(c.cardNumber).toMatch(/^\d{16}$/);
      expect(c.expiry).toMatch(/^\d{2}\/\d{2}$/);
      expect(c.cvv).toMatch(/^\d{3}$/);
      const card = await t.hub.cards.cards.get(c.issuerId, c.cardId);
      expect(card).toMatchObject({ status: 'active', fundingAccountId: c.fundingAccountId, customerId: c.holderCustomerId, currency: c.currency });
      const funding = await t.hub.transfers.ledger.getAccount(c.fundingAccountId);
      if (!funding.ok) throw new Error(funding.error.code);
      // Something to spend: a debit card's funded account, a credit card's line (its own credit account, limit unused).
      const available = funding.value.creditsPostedMinor - funding.value.debitsPostedMinor - funding.value.debitsPendingMinor + (funding.value.creditLimitMinor ?? 0n);
      expect(available).toBeGreaterThan(0n);
      expect((await t.hub.cards.cards.matchCardData(c.cardNumber, c.expiry, c.cvv))?.matches).toBe(true);
    }
    // A restart prints the same cards.
    expect(await seedSandboxCards(t.hub)).toEqual(cards);

    // The wallet adds bank-a's card with the printed data (the bank approves typed cards here, to skip its step-up).
    const [cardA] = cards as [SandboxCard, SandboxCard];
    await t.hub.db.transaction((tx) => t.hub.cards.walletTokens.setRules(tx, SYSTEM, demoParticipantId('bank-a'), { typed: 'approve', byReference: 'approve', newDevice: 'approve' }));
    const added = await t.api('wallet-a').post(
      '/v1/wallet/tokens',
      { customerId: 'cus_demo_li_at_wallet_a', consent: true, deviceId: 'sandbox-phone', devicePublicKey: newDevice().publicKey, source: { type: 'typed', cardNumber: cardA.cardNumber, expiry: cardA.expiry, cvv: cardA.cvv } },
      key(),
    );
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    const expiry = String(added.body.token.expiry);
    const token: WalletToken = { wallet: 'wallet-a', customerId: 'cus_demo_li_at_wallet_a', tokenRef: added.body.token.tokenRef, tokenNumber: added.body.tokenNumber, tokenKey: added.body.limitedUseKey.key, expiryYymm: `${expiry.slice(3, 5)}${expiry.slice(0, 2)}`, atc: 0 };
    const paid = await t.api('merchant-a').post('/v1/merchants/mer_demo_merchant_a/payments/tap', tapBody(token, { amount: '12.30', amountMinor: 1230n, now: clock.now() }), key());
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    const held = await t.hub.transfers.ledger.getAccount(cardA.fundingAccountId);
    if (!held.ok) throw new Error(held.error.code);
    expect(held.value.debitsPendingMinor).toBe(1230n);
  });

  it('a demo participant reads its webhook secret; other participants cannot, and none without authentication', async () => {
    const mine = await t.api('wallet-a').get('/v1/webhooks/secret');
    expect(mine.status).toBe(200);
    expect(mine.headers['cache-control']).toBe('no-store');
    const [row] = await t.hub.db.query<{ webhook_secret_sealed: string }>('select webhook_secret_sealed from participants where id = $1', [demoParticipantId('wallet-a')]);
    expect(mine.body).toEqual({ secret: await t.hub.vault.open(row?.webhook_secret_sealed ?? ''), previousSecret: null, previousSecretExpiresAt: null, rotatedAt: null });
    expect(mine.body.secret).toMatch(/^whsec_/);
    expect((await t.api('bank-a').get('/v1/webhooks/secret')).body.secret).not.toBe(mine.body.secret);
    expect((await t.api('anonymous').get('/v1/webhooks/secret')).status).toBe(401);
    // A participant that is not part of the demo network was shown its secret once, at its creation.
    const created = await t.api('operator').post('/v1/operator/participants', { kind: 'wallet', name: 'Outsider', country: 'CN', currencies: ['CNY'] });
    const login = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const outsider = await t.api('anonymous').get('/v1/webhooks/secret', { authorization: `Bearer ${login.body.access_token}` });
    expect(outsider.status).toBe(403);
    expect(outsider.body.error.code).toBe('webhook_secret_not_retrievable');
  });

  it('rotation: both secrets sign until the previous one expires, a retry answers the same secret, at most two are active', async () => {
    const created = await t.api('operator').post('/v1/operator/participants', { kind: 'wallet', name: 'Rotating', country: 'CN', currencies: ['CNY'], webhookUrl: receiver.url });
    const first = created.body.webhookSecret as string;
    const login = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const auth = { authorization: `Bearer ${login.body.access_token}` };
    const deliverOne = async () => {
      receiver.received.length = 0;
      // A credential issued (and revoked again: at most two are active) emits events to the participant.
      const issued = await t.api('anonymous').post('/v1/credentials', {}, auth);
      expect(issued.status).toBe(201);
      expect((await t.api('operator').post(`/v1/operator/participants/${created.body.participant.id}/credentials/${issued.body.clientId}/revoke`)).status).toBe(200);
      while ((await t.hub.webhooks.runOnce()) > 0);
      const last = receiver.received.at(-1);
      if (last === undefined) throw new Error('nothing delivered');
      return last;
    };
    const verifies = (secret: string, r: { headers: IncomingHttpHeaders; body: string }) =>
      verifyWebhook(secret, r.headers as Record<string, string>, r.body, { nowS: Math.floor(clock.nowMs() / 1000) }).ok;

    const rotateKey = key();
    const rotated = await t.api('anonymous').post('/v1/webhooks/secret/rotate', {}, { ...auth, ...rotateKey });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    const second = rotated.body.secret as string;
    expect(second).toMatch(/^whsec_/);
    expect(second).not.toBe(first);
    expect(Date.parse(rotated.body.previousSecretExpiresAt) - clock.nowMs()).toBe(WEBHOOK_SECRET_ROTATION.defaultGraceS * 1000);
    // A retry with the same key answers the same secret (kept sealed under the key, never in clear).
    expect((await t.api('anonymous').post('/v1/webhooks/secret/rotate', {}, { ...auth, ...rotateKey })).body.secret).toBe(second);
    const stored = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from idempotency_keys where response_body::text like $1`, [`%${second.slice('whsec_'.length, 30)}%`]);
    expect(stored[0]?.n).toBe(0n);

    // During the rotation a receiver with either secret verifies: one signature each, space-separated.
    let delivered = await deliverOne();
    expect(String(delivered.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifies(first, delivered)).toBe(true);
    expect(verifies(second, delivered)).toBe(true);
    // After the grace period only the new one signs.
    clock.advance(WEBHOOK_SECRET_ROTATION.defaultGraceS * 1000 + 1000);
    const relogin = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    auth.authorization = `Bearer ${relogin.body.access_token}`;
    delivered = await deliverOne();
    expect(String(delivered.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(verifies(first, delivered)).toBe(false);
    expect(verifies(second, delivered)).toBe(true);

    // Rotating twice: the newest and the one before it sign; the oldest is dropped at once.
    const third = (await t.api('anonymous').post('/v1/webhooks/secret/rotate', { previousSecretExpiresInS: 3600 }, { ...auth, ...key() })).body.secret as string;
    const fourth = (await t.api('anonymous').post('/v1/webhooks/secret/rotate', {}, { ...auth, ...key() })).body.secret as string;
    delivered = await deliverOne();
    expect([first, second, third, fourth].map((s) => verifies(s, delivered))).toEqual([false, false, true, true]);
    // previousSecretExpiresInS 0 retires the current one at once.
    const fifth = await t.api('anonymous').post('/v1/webhooks/secret/rotate', { previousSecretExpiresInS: 0 }, { ...auth, ...key() });
    expect(fifth.body.previousSecretExpiresAt).toBeNull();
    delivered = await deliverOne();
    expect([third, fourth, fifth.body.secret].map((s) => verifies(s, delivered))).toEqual([false, false, true]);
    // Out of range and unknown fields are refused.
    expect((await t.api('anonymous').post('/v1/webhooks/secret/rotate', { previousSecretExpiresInS: WEBHOOK_SECRET_ROTATION.maxGraceS + 1 }, { ...auth, ...key() })).status).toBe(400);
    expect((await t.api('anonymous').post('/v1/webhooks/secret/rotate', { graceS: 1 }, { ...auth, ...key() })).status).toBe(400);
    // The rotations are in the audit trail.
    const audited = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from audit_log where action = 'webhook.secret_rotated' and object_id = $1`, [created.body.participant.id]);
    expect(audited[0]?.n).toBe(4n);
  });

  it('a demo participant reads both secrets during its rotation', async () => {
    const before = (await t.api('wallet-b').get('/v1/webhooks/secret')).body.secret as string;
    const rotated = await t.api('wallet-b').post('/v1/webhooks/secret/rotate', {}, key());
    expect(rotated.status).toBe(201);
    const now = await t.api('wallet-b').get('/v1/webhooks/secret');
    expect(now.body).toMatchObject({ secret: rotated.body.secret, previousSecret: before, previousSecretExpiresAt: rotated.body.previousSecretExpiresAt, rotatedAt: rotated.body.rotatedAt });
  });
});

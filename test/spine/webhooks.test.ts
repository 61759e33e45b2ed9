import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeClock } from '../../src/platform/clock.ts';
import { backoffMs, WEBHOOK_LIMITS } from '../../src/webhooks/dispatcher.ts';
import { signWebhook, verifyWebhook } from '../../src/webhooks/signing.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A participant's webhook receiver: verifies each delivery as a real participant would. */
async function startReceiver(respond: () => number): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = respond();
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received, server };
}

describe('Standard Webhooks signatures', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  it('verifies a genuine delivery and rejects a tampered body, a wrong secret and a stale timestamp', () => {
    const body = '{"type":"payment.captured"}';
    const headers = { 'webhook-id': 'evt_1', 'webhook-timestamp': '1700000000', 'webhook-signature': signWebhook(secret, 'evt_1', 1700000000, body) };
    expect(verifyWebhook(secret, headers, body, { nowS: 1700000010 })).toEqual({ ok: true });
    expect(verifyWebhook(secret, headers, body.replace('captured', 'refunded'), { nowS: 1700000010 })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyWebhook('whsec_' + Buffer.from('other key').toString('base64'), headers, body, { nowS: 1700000010 })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyWebhook(secret, headers, body, { nowS: 1700000000 + 301 })).toEqual({ ok: false, reason: 'stale_timestamp' });
    expect(verifyWebhook(secret, { 'webhook-id': 'evt_1' }, body, { nowS: 1700000000 })).toEqual({ ok: false, reason: 'missing_headers' });
  });

  it('matches the Standard Webhooks reference signature', () => {
    // The example from the Standard Webhooks specification's reference libraries.
    const sig = signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(sig).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('backs off exponentially with bounded jitter', () => {
    expect(backoffMs(1, () => 1)).toBe(1_000);
    expect(backoffMs(4, () => 1)).toBe(8_000);
    expect(backoffMs(30, () => 1)).toBe(WEBHOOK_LIMITS.maxBackoffMs);
    expect(backoffMs(3, () => 0.5)).toBe(2_000);
  });
});

describe.each(engines)('webhook delivery from the outbox on %s', (engine) => {
  let t: TestHub;
  const clock = createFakeClock(Date.now());
  let status = 500;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver(() => status);
    t = await startTestHub(engine, { clock });
  });
  afterAll(async () => {
    await t?.close();
    receiver?.server.close();
  });

  it('delivers signed events, retries failures with backoff, and lists the outcomes to the participant', async () => {
    const created = await t.api('operator').post('/v1/operator/participants', { kind: 'wallet', name: 'Hooked', country: 'CN', currencies: ['CNY'], webhookUrl: receiver.url });
    const secret = created.body.webhookSecret as string;
    const { clientId, clientSecret } = created.body.credential;
    const login = async () => ({
      authorization: `Bearer ${(await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret })).body.access_token}`,
    });
    let auth = await login();
    // Creating the participant issued its first credential (an event); deliver that one first.
    status = 204;
    expect(await t.hub.webhooks.runOnce()).toBe(1);
    receiver.received.length = 0;
    // A state change that emits an event: issuing a second credential.
    expect((await t.api('anonymous').post('/v1/credentials', {}, auth)).status).toBe(201);

    status = 500;
    expect(await t.hub.webhooks.runOnce()).toBe(1);
    expect(receiver.received).toHaveLength(1);
    let deliveries = (await t.api('anonymous').get('/v1/webhooks/deliveries?status=pending', auth)).body.items;
    expect(deliveries).toEqual([expect.objectContaining({ status: 'pending', attempts: 1, lastStatusCode: 500, eventType: 'credential.issued' })]);
    // Not due yet: nothing is sent until the backoff has passed.
    expect(await t.hub.webhooks.runOnce()).toBe(0);
    clock.advance(WEBHOOK_LIMITS.maxBackoffMs);
    status = 204;
    expect(await t.hub.webhooks.runOnce()).toBe(1);
    auth = await login(); // 15 minutes passed: the 5-minute access token has expired
    deliveries = (await t.api('anonymous').get('/v1/webhooks/deliveries?status=delivered', auth)).body.items;
    expect(deliveries).toHaveLength(2);
    expect(deliveries).toContainEqual(expect.objectContaining({ status: 'delivered', attempts: 2, lastStatusCode: 204, eventType: 'credential.issued' }));

    // Both attempts carried the same webhook-id and a valid signature over the exact body.
    const [a, b] = receiver.received;
    expect(a?.headers['webhook-id']).toBe(b?.headers['webhook-id']);
    for (const r of receiver.received) {
      // Each verified at the time it arrived.
      expect(verifyWebhook(secret, r.headers as Record<string, string>, r.body, { nowS: Number(r.headers['webhook-timestamp']) })).toEqual({ ok: true });
      expect(JSON.parse(r.body)).toMatchObject({ type: 'credential.issued', data: { credentialId: expect.any(String) } });
    }
    // Replaying the first attempt now, 15 minutes later, is refused as stale.
    expect(verifyWebhook(secret, a!.headers as Record<string, string>, a!.body, { nowS: Math.floor(clock.nowMs() / 1000) })).toEqual({ ok: false, reason: 'stale_timestamp' });
    // Another participant sees none of these deliveries.
    expect((await t.api('wallet-a').get('/v1/webhooks/deliveries')).body.items.every((d: { participantId: string }) => d.participantId === 'par_demo_wallet_a')).toBe(true);
  });

  it('gives up after the bounded number of attempts', async () => {
    status = 500;
    const created = await t.api('operator').post('/v1/operator/participants', { kind: 'merchant', name: 'Down', country: 'CN', currencies: ['CNY'], webhookUrl: receiver.url });
    await t.api('operator').post(`/v1/operator/participants/${created.body.participant.id}/suspend`);
    for (let i = 0; i < WEBHOOK_LIMITS.maxAttempts + 2; i++) {
      await t.hub.webhooks.runOnce();
      clock.advance(WEBHOOK_LIMITS.maxBackoffMs + 1);
    }
    const rows = await t.hub.db.query<{ status: string; attempts: number }>('select status, attempts from webhook_deliveries where participant_id = $1', [created.body.participant.id]);
    // Two events: the first credential issued at creation, then the suspension.
    expect(rows).toEqual([
      { status: 'failed', attempts: WEBHOOK_LIMITS.maxAttempts },
      { status: 'failed', attempts: WEBHOOK_LIMITS.maxAttempts },
    ]);

    // The receiver is fixed; the operator sends the failed event again: a new delivery that arrives, the old one kept.
    status = 204;
    const [failed] = await t.hub.db.query<{ id: string; event_id: string }>('select id, event_id from webhook_deliveries where participant_id = $1 order by created_at, id limit 1', [created.body.participant.id]);
    const before = receiver.received.length;
    // Another participant cannot name it; the operator can.
    expect((await t.api('wallet-a').post(`/v1/webhooks/deliveries/${failed?.id ?? ''}/redeliver`)).status).toBe(404);
    const again = await t.api('operator').post(`/v1/operator/webhooks/deliveries/${failed?.id ?? ''}/redeliver`);
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ eventId: failed?.event_id, status: 'pending', attempts: 0, url: receiver.url });
    await t.hub.webhooks.runOnce();
    expect(receiver.received.length).toBe(before + 1);
    expect(receiver.received.at(-1)?.headers['webhook-id']).toBe(failed?.event_id);
    const after = await t.hub.db.query<{ id: string; status: string }>('select id, status from webhook_deliveries where event_id = $1 order by created_at, id', [failed?.event_id ?? '']);
    expect(after.map((d) => d.status).sort()).toEqual(['delivered', 'failed']);
    expect((await t.api('operator').get(`/v1/operator/audit?limit=5`)).body.items.some((a: { action: string }) => a.action === 'webhook.redelivered')).toBe(true);
  });
});

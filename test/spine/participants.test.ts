import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

describe.each(engines)('participants and credentials on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine);
  });
  afterAll(async () => {
    await t?.close();
  });

  const token = async (clientId: string, clientSecret: string) =>
    t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });

  it('creates a participant whose secret is shown once and stored hashed', async () => {
    const res = await t.api('operator').post('/v1/operator/participants', { kind: 'merchant', name: 'Noodle Bar', country: 'CN', currencies: ['CNY'] });
    expect(res.status).toBe(201);
    const { credential, participant, webhookSecret } = res.body;
    expect(credential.clientSecret).toMatch(/^sk_/);
    expect(webhookSecret).toMatch(/^whsec_/);
    const rows = await t.hub.db.query<Record<string, unknown>>('select * from credentials where id = $1', [credential.clientId]);
    expect(JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(credential.clientSecret);
    const prow = await t.hub.db.query<Record<string, unknown>>('select * from participants where id = $1', [participant.id]);
    expect(JSON.stringify(prow)).not.toContain(webhookSecret.slice(6));
    const listed = await t.api('operator').get(`/v1/operator/participants/${participant.id}`);
    expect(JSON.stringify(listed.body)).not.toContain(credential.clientSecret);
    expect((await token(credential.clientId, credential.clientSecret)).status).toBe(200);
  });

  it('rejects bad participant input: kind, country, currency, webhook URL', async () => {
    const op = t.api('operator');
    expect((await op.post('/v1/operator/participants', { kind: 'bank', name: 'X', country: 'CN', currencies: ['CNY'] })).status).toBe(400);
    expect((await op.post('/v1/operator/participants', { kind: 'wallet', name: 'X', country: 'cn', currencies: ['CNY'] })).body.error.code).toBe('validation_failed');
    expect((await op.post('/v1/operator/participants', { kind: 'wallet', name: 'X', country: 'CN', currencies: ['ABC'] })).body.error.code).toBe('unknown_currency');
    expect((await op.post('/v1/operator/participants', { kind: 'wallet', name: 'X', country: 'CN', currencies: ['CNY'], webhookUrl: 'ftp://x' })).body.error.code).toBe('invalid_webhook_url');
  });

  it('rotates credentials: two active at once, a third refused, revocation effective at once', async () => {
    const created = (await t.api('operator').post('/v1/operator/participants', { kind: 'wallet', name: 'Rotating Wallet', country: 'CN', currencies: ['CNY'] })).body;
    const first = created.credential;
    const firstToken = (await token(first.clientId, first.clientSecret)).body.access_token as string;
    const asFirst = { authorization: `Bearer ${firstToken}` };
    const second = await t.api('anonymous').post('/v1/credentials', {}, asFirst);
    expect(second.status).toBe(201);
    const third = await t.api('anonymous').post('/v1/credentials', {}, asFirst);
    expect(third.status).toBe(409);
    expect(third.body.error.code).toBe('credential_limit');
    const secondToken = (await token(second.body.clientId, second.body.clientSecret)).body.access_token as string;
    // Revoke the first credential with the second: the first's live token stops working at once.
    const revoked = await t.api('anonymous').post(`/v1/credentials/${first.clientId}/revoke`, {}, { authorization: `Bearer ${secondToken}` });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expect((await t.api('anonymous').get('/v1/me', asFirst)).status).toBe(401);
    expect((await token(first.clientId, first.clientSecret)).status).toBe(401);
    expect((await t.api('anonymous').get('/v1/me', { authorization: `Bearer ${secondToken}` })).status).toBe(200);
    // Another participant cannot revoke this one's credential.
    expect((await t.api('wallet-a').post(`/v1/credentials/${second.body.clientId}/revoke`)).status).toBe(404);
  });

  it("suspends a participant: its tokens stop working at once, and come back on reactivation", async () => {
    const created = (await t.api('operator').post('/v1/operator/participants', { kind: 'issuer', name: 'Suspended Bank', country: 'CN', currencies: ['CNY'] })).body;
    const tok = (await token(created.credential.clientId, created.credential.clientSecret)).body.access_token as string;
    const auth = { authorization: `Bearer ${tok}` };
    expect((await t.api('anonymous').get('/v1/me', auth)).status).toBe(200);
    expect((await t.api('operator').post(`/v1/operator/participants/${created.participant.id}/suspend`)).body.status).toBe('suspended');
    const refused = await t.api('anonymous').get('/v1/me', auth);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('participant_suspended');
    expect((await token(created.credential.clientId, created.credential.clientSecret)).status).toBe(403);
    await t.api('operator').post(`/v1/operator/participants/${created.participant.id}/reactivate`);
    expect((await t.api('anonymous').get('/v1/me', auth)).status).toBe(200);
  });

  it('rate limits each participant with 429 and Retry-After, without touching others', async () => {
    const created = (await t.api('operator').post('/v1/operator/participants', { kind: 'wallet', name: 'Chatty', country: 'CN', currencies: ['CNY'], rateLimitPerS: 2 })).body;
    const tok = (await token(created.credential.clientId, created.credential.clientSecret)).body.access_token as string;
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 8; i++) {
      const res = await t.api('anonymous').get('/v1/me', { authorization: `Bearer ${tok}` });
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers['retry-after'];
        expect(res.body.error.code).toBe('rate_limited');
      }
    }
    // The fake clock does not move: burst = 2 × rate = 4 requests, then 429s.
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await t.api('wallet-a').get('/v1/me')).status).toBe(200);
  });

  it('audits who did what, naming the acting participant', async () => {
    const res = await t.api('wallet-c').post('/v1/customers', { externalId: 'audited', name: 'Audited' });
    const trail = await t.api('operator').get(`/v1/operator/audit?objectId=${res.body.id}`);
    expect(trail.body.items).toEqual([expect.objectContaining({ action: 'customer.created', actor: expect.objectContaining({ type: 'participant', participantId: 'par_demo_wallet_c' }) })]);
    const own = await t.api('wallet-c').get('/v1/audit');
    expect(own.body.items.every((r: { actor: { participantId: string } }) => r.actor.participantId === 'par_demo_wallet_c')).toBe(true);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { created } from '../../src/api/context.ts';
import { createEffectBatcher } from '../../src/platform/effect-batcher.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

describe.each(engines)('Idempotency-Key on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('replays the first response for the same key and body, and writes once', async () => {
    const body = { externalId: 'idem-1', name: 'Wang Fang' };
    const first = await t.api('wallet-a').post('/v1/customers', body, { 'idempotency-key': 'k-1' });
    const second = await t.api('wallet-a').post('/v1/customers', body, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(second.headers['idempotent-replayed']).toBe('true');
    const [row] = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from customers where external_id = 'idem-1'`);
    expect(row?.n).toBe(1n);
  });

  it('replays a refused request as refused, without writing', async () => {
    const body = { externalId: 'idem-bad', name: 'X', phone: '12' };
    const first = await t.api('wallet-a').post('/v1/customers', body, { 'idempotency-key': 'k-bad' });
    const second = await t.api('wallet-a').post('/v1/customers', body, { 'idempotency-key': 'k-bad' });
    expect(first.status).toBe(400);
    expect(second.body).toEqual(first.body);
    const [row] = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from customers where external_id = 'idem-bad'`);
    expect(row?.n).toBe(0n);
  });

  it('answers 422 for the same key with a different body', async () => {
    await t.api('wallet-a').post('/v1/customers', { externalId: 'idem-2', name: 'A' }, { 'idempotency-key': 'k-2' });
    const other = await t.api('wallet-a').post('/v1/customers', { externalId: 'idem-3', name: 'B' }, { 'idempotency-key': 'k-2' });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reused');
    const [row] = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from customers where external_id = 'idem-3'`);
    expect(row?.n).toBe(0n);
  });

  it('scopes keys to the participant', async () => {
    const a = await t.api('wallet-a').post('/v1/customers', { externalId: 'scoped', name: 'A' }, { 'idempotency-key': 'shared-key' });
    const b = await t.api('wallet-b').post('/v1/customers', { externalId: 'scoped', name: 'B' }, { 'idempotency-key': 'shared-key' });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.id).not.toBe(a.body.id);
  });

  it('a request with the key while the first still runs waits for it and gets its answer as a replay (never runs twice)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = t.hub.idempotency.run('par_x', 'k-slow', 'h', async () => {
      await gate;
      return { status: 201, body: { done: true }, commit: true };
    });
    await new Promise((r) => setTimeout(r, 20));
    let secondRan = false;
    const concurrent = t.hub.idempotency.run('par_x', 'k-slow', 'h', async () => {
      secondRan = true;
      return { status: 201, body: { done: 'twice' }, commit: true };
    });
    // A different request under the key waits too, then is refused as a reuse once the key is answered.
    const reused = t.hub.idempotency.run('par_x', 'k-slow', 'other', async () => ({ status: 201, body: { done: 'other' }, commit: true }));
    release();
    const first = await slow;
    expect(first.ok && first.value).toMatchObject({ replayed: false, body: { done: true } });
    expect((await concurrent).ok && (await concurrent)).toMatchObject({ value: { replayed: true, body: { done: true } } });
    const refused = await reused;
    expect(refused.ok === false && refused.error.code).toBe('idempotency_key_reused');
    expect(secondRan).toBe(false);
    const after = await t.hub.idempotency.run('par_x', 'k-slow', 'h', async () => ({ status: 201, body: { done: 'twice' }, commit: true }));
    expect(after.ok && after.value).toMatchObject({ replayed: true, body: { done: true } });
  });

  it('takes over a key whose first attempt crashed, after its lease lapses', async () => {
    // A claim left by a process that died before running its effect.
    const now = new Date(t.hub.clock.nowMs() - 60_000);
    await t.hub.db.query(`insert into idempotency_keys (scope, key, request_hash, state, locked_until, created_at) values ('par_y', 'k-crash', 'h', 'running', $1, $1)`, [now]);
    const retry = await t.hub.idempotency.run('par_y', 'k-crash', 'h', async () => ({ status: 201, body: { ran: 1 }, commit: true }));
    expect(retry.ok && retry.value).toMatchObject({ replayed: false, body: { ran: 1 } });
  });

  /** The stored answer under a key, as the database holds it. */
  const storedAnswer = async (scope: string, key: string) => {
    const [row] = await t.hub.db.query<{ response_body: unknown; response_sealed: string[] | null }>('select response_body, response_sealed from idempotency_keys where scope = $1 and key = $2', [scope, key]);
    if (row === undefined) throw new Error(`no stored answer under ${key}`);
    return { text: JSON.stringify(row.response_body), body: row.response_body as Record<string, any>, sealed: row.response_sealed };
  };
  const tokenWith = (clientId: string, clientSecret: string) =>
    t.hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret } });

  it('stores a new participant’s client and webhook secrets sealed, and a retry gets the same answer with them', async () => {
    const body = { kind: 'wallet', name: 'Sealed Answers Pay', country: 'CN', currencies: ['CNY'] };
    const first = await t.api('operator').post('/v1/operator/participants', body, { 'idempotency-key': 'k-participant' });
    expect(first.status).toBe(201);
    const { clientSecret } = first.body.credential;
    const { webhookSecret } = first.body;
    expect(clientSecret).toMatch(/^sk_/);
    expect(webhookSecret).toMatch(/^whsec_/);
    const stored = await storedAnswer('operator', 'k-participant');
    expect(stored.text).not.toContain(clientSecret);
    expect(stored.text).not.toContain(webhookSecret);
    expect(stored.sealed).toEqual(['credential.clientSecret', 'webhookSecret']);
    expect(stored.body.credential.clientSecret).toMatch(/^v1\./); // sealed by the vault, in place
    expect(stored.body.participant.id).toBe(first.body.participant.id); // the rest stays readable
    const replay = await t.api('operator').post('/v1/operator/participants', body, { 'idempotency-key': 'k-participant' });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual(first.body);
    expect((await tokenWith(first.body.credential.clientId, replay.body.credential.clientSecret)).statusCode).toBe(200);
  });

  it('stores issued credentials sealed on the participant’s and the operator’s routes; replays answer the same secret', async () => {
    const own = await t.api('wallet-c').post('/v1/credentials', {}, { 'idempotency-key': 'k-rotate' });
    expect(own.status).toBe(201);
    const ownStored = await storedAnswer('par_demo_wallet_c', 'k-rotate');
    expect(ownStored.text).not.toContain(own.body.clientSecret);
    expect(ownStored.sealed).toEqual(['clientSecret']);
    const ownReplay = await t.api('wallet-c').post('/v1/credentials', {}, { 'idempotency-key': 'k-rotate' });
    expect(ownReplay.body).toEqual(own.body);
    expect((await tokenWith(own.body.clientId, ownReplay.body.clientSecret)).statusCode).toBe(200);

    const byOperator = await t.api('operator').post('/v1/operator/participants/par_demo_merchant_b/credentials', {}, { 'idempotency-key': 'k-op-cred' });
    expect(byOperator.status).toBe(201);
    const opStored = await storedAnswer('operator', 'k-op-cred');
    expect(opStored.text).not.toContain(byOperator.body.clientSecret);
    const opReplay = await t.api('operator').post('/v1/operator/participants/par_demo_merchant_b/credentials', {}, { 'idempotency-key': 'k-op-cred' });
    expect(opReplay.headers['idempotent-replayed']).toBe('true');
    expect(opReplay.body).toEqual(byOperator.body);
  });

  it('the batched path stores secret fields sealed too, and opens only the fields its answer named', async () => {
    // A value that merely looks sealed (a client's echo) is answered as it is: only named paths are ever opened.
    const lookalike = await t.hub.vault.seal('not for the client');
    const batcher = createEffectBatcher<{ n: number }>({ db: t.hub.db, idempotency: t.hub.idempotency }, async (_tx, inputs) =>
      inputs.map((i) => ({ ...created({ n: i.n, secret: `s3cr3t-${i.n}`, echo: lookalike }, { secrets: ['secret'] }), commit: true })),
    );
    const ref = (key: string) => ({ scope: 'par_batch', key, hash: `h-${key}` });
    const [a, b] = await Promise.all([batcher.submit(ref('kb-1'), { n: 1 }), batcher.submit(ref('kb-2'), { n: 2 })]);
    expect(a?.ok && a.value.body).toEqual({ n: 1, secret: 's3cr3t-1', echo: lookalike });
    expect(b?.ok && b.value.body).toEqual({ n: 2, secret: 's3cr3t-2', echo: lookalike });
    for (const key of ['kb-1', 'kb-2']) {
      const stored = await storedAnswer('par_batch', key);
      expect(stored.text).not.toContain('s3cr3t');
      expect(stored.sealed).toEqual(['secret']);
    }
    const again = await batcher.submit(ref('kb-2'), { n: 2 });
    expect(again.ok && again.value).toEqual({ status: 201, body: { n: 2, secret: 's3cr3t-2', echo: lookalike }, replayed: true });
  });

  it('refuses malformed keys', async () => {
    const res = await t.api('wallet-a').post('/v1/customers', { externalId: 'k', name: 'K' }, { 'idempotency-key': 'x'.repeat(129) });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('idempotency_key_invalid');
  });
});

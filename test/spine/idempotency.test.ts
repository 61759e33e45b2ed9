import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('answers 409 while the first request with the key is still running, and lets a retry through after', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = t.hub.idempotency.run('par_x', 'k-slow', 'h', async () => {
      await gate;
      return { status: 201, body: { done: true }, commit: true };
    });
    await new Promise((r) => setTimeout(r, 20));
    const concurrent = await t.hub.idempotency.run('par_x', 'k-slow', 'h', async () => ({ status: 201, body: { done: 'twice' }, commit: true }));
    expect(concurrent.ok).toBe(false);
    if (!concurrent.ok) expect(concurrent.error.code).toBe('idempotency_in_progress');
    release();
    const first = await slow;
    expect(first.ok && first.value.body).toEqual({ done: true });
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

  it('refuses malformed keys', async () => {
    const res = await t.api('wallet-a').post('/v1/customers', { externalId: 'k', name: 'K' }, { 'idempotency-key': 'x'.repeat(129) });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('idempotency_key_invalid');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type Db } from '../../src/platform/db.ts';
import { availableEngines, TEST_PG_URL } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

describe.each(engines)('HTTP conventions on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine);
  });
  afterAll(async () => {
    await t?.close();
  });

  const countCustomers = async () => {
    const [row] = await t.hub.db.query<{ n: bigint }>('select count(*) as n from customers');
    return row?.n;
  };

  const expectError = (res: { status: number; body: any; headers: Record<string, unknown> }, status: number, code: string) => {
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
    expect(Object.keys(res.body.error).every((k) => ['code', 'message', 'details'].includes(k))).toBe(true);
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    expect(res.headers['x-request-id']).toEqual(expect.any(String));
  };

  it('refuses malformed JSON, unknown fields, wrong types, oversized bodies and other media types with 4xx and writes nothing', async () => {
    const before = await countCustomers();
    const api = t.api('wallet-a');
    expectError(await api.raw({ method: 'POST', url: '/v1/customers', payload: '{"externalId": "x",', headers: { 'content-type': 'application/json' } }), 400, 'malformed_json');
    expectError(await api.post('/v1/customers', { externalId: 'x', name: 'X', extra: 1 }), 400, 'unknown_field');
    expectError(await api.post('/v1/customers', { externalId: 42, name: 'X' }), 400, 'validation_failed');
    expectError(await api.post('/v1/customers', { name: 'X' }), 400, 'validation_failed');
    expectError(await api.post('/v1/customers', { externalId: 'x', name: 'X', kycLevel: '2' }), 400, 'validation_failed');
    expectError(await api.post('/v1/customers', { externalId: 'x', name: 'y'.repeat(70_000) }), 413, 'body_too_large');
    expectError(await api.raw({ method: 'POST', url: '/v1/customers', payload: 'externalId=x', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
    expectError(await api.raw({ method: 'POST', url: '/v1/customers', payload: 'externalId=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    expectError(await api.post('/v1/customers', { externalId: 'x', name: 'X', phone: 'not a phone' }), 400, 'invalid_phone');
    expect(await countCustomers()).toBe(before);
  });

  it('answers unknown routes and missing or bad credentials in the error shape', async () => {
    expectError(await t.api('wallet-a').get('/v1/nope'), 404, 'not_found');
    expectError(await t.api('anonymous').get('/v1/me'), 401, 'unauthorized');
    expectError(await t.api('anonymous').get('/v1/me', { authorization: 'Bearer not-a-jwt' }), 401, 'unauthorized');
    expectError(await t.api('wallet-a').get('/v1/operator/participants'), 401, 'unauthorized');
    const bad = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: 'cli_demo_wallet_a', client_secret: 'sk_wrong' });
    expectError(bad, 401, 'invalid_client');
  });

  it('issues tokens from form bodies and HTTP Basic as well as JSON', async () => {
    const p = t.demo.participants.find((d) => d.key === 'bank-a')!;
    const form = await t.api('anonymous').raw({
      method: 'POST',
      url: '/oauth/token',
      payload: new URLSearchParams({ grant_type: 'client_credentials', client_id: p.clientId, client_secret: p.clientSecret }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(200);
    expect(form.body.token_type).toBe('Bearer');
    const basic = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`${p.clientId}:${p.clientSecret}`).toString('base64')}` });
    expect(basic.status).toBe(200);
    const me = await t.api('anonymous').get('/v1/me', { authorization: `Bearer ${basic.body.access_token}` });
    expect(me.body.id).toBe(p.participantId);
  });

  it("answers 404 for another participant's objects", async () => {
    const created = await t.api('wallet-a').post('/v1/customers', { externalId: 'iso-1', name: 'Isolated' });
    expect(created.status).toBe(201);
    expect((await t.api('wallet-a').get(`/v1/customers/${created.body.id}`)).status).toBe(200);
    expectError(await t.api('wallet-b').get(`/v1/customers/${created.body.id}`), 404, 'customer_not_found');
    expect((await t.api('wallet-b').get('/v1/customers?externalId=iso-1')).body.items).toEqual([]);
  });

  it('pages customers by the cursor it issued and refuses any other cursor (400 invalid_page) instead of answering a page', async () => {
    const api = t.api('wallet-a');
    for (const n of [1, 2, 3]) expect((await api.post('/v1/customers', { externalId: `page-${n}`, name: `Page ${n}` })).status).toBe(201);
    const first = await api.get('/v1/customers?limit=1');
    expect(first.status).toBe(200);
    expect(first.body.nextCursor).toBe(first.body.items[0].id);
    const second = await api.get(`/v1/customers?limit=1&cursor=${first.body.nextCursor}`);
    expect(second.status).toBe(200);
    expect(second.body.items[0].id > first.body.items[0].id).toBe(true);
    expectError(await api.get('/v1/customers?cursor=abc'), 400, 'invalid_page');
    // Another participant's customer is no cursor of this list either (and says nothing about that customer).
    const theirs = await t.api('wallet-b').post('/v1/customers', { externalId: 'page-b', name: 'Page B' });
    expectError(await api.get(`/v1/customers?limit=1&cursor=${theirs.body.id}`), 400, 'invalid_page');
  });

  it('uses a caller-supplied request id or makes one', async () => {
    const res = await t.api('wallet-a').get('/v1/me', { 'x-request-id': 'corr-12345678' });
    expect(res.headers['x-request-id']).toBe('corr-12345678');
    const other = await t.api('wallet-a').get('/v1/me');
    expect(other.headers['x-request-id']).toMatch(/^req_/);
  });

  it('serves /health, /metrics per route and an OpenAPI 3.1 document listing every route and error code', async () => {
    const health = await t.api('anonymous').get('/health');
    expect(health.body).toMatchObject({ status: 'ok', engine });
    // /metrics is the operator's (Prometheus scrapes with the operator credential as a bearer token); /health is public.
    expectError(await t.api('anonymous').get('/metrics'), 401, 'unauthorized');
    expectError(await t.api('wallet-a').get('/metrics'), 401, 'unauthorized');
    const metrics = await t.api('operator').get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(String(metrics.body)).toMatch(/hutong_http_requests_total\{method="GET",route="\/v1\/me",status="200"\} \d+/);
    expect(String(metrics.body)).toMatch(/hutong_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/health"\}/);
    // The ledger's own counters (applyInTx, its one way in), as they are at the scrape: the demo seed moved money.
    for (const name of ['apply_calls', 'transfers_applied']) {
      expect(String(metrics.body)).toMatch(new RegExp(`^# TYPE hutong_ledger_${name}_total counter$`, 'm'));
      expect(String(metrics.body)).toMatch(new RegExp(`^hutong_ledger_${name}_total [1-9]\\d*$`, 'm'));
    }
    const doc = (await t.api('anonymous').get('/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    for (const path of ['/v1/customers', '/v1/operator/participants', '/oauth/token', '/v1/webhooks/deliveries', '/v1/operator/audit/verify', '/health']) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    // Every documented operation declares the error shape per status (shared responses), 400 and 500 at least.
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, { $ref?: string }> }>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(operation.responses['400']?.$ref, `${method} ${path}`).toMatch(/^#\/components\/responses\/Error400_/);
        expect(operation.responses['500']?.$ref, `${method} ${path}`).toMatch(/^#\/components\/responses\/Error500_/);
      }
    }
    expect(doc['x-error-codes']).toMatchObject({ unknown_field: 400, idempotency_key_reused: 422, rate_limited: 429, customer_not_found: 404 });
    expect(doc.components.schemas.ErrorBody.properties.error.properties.code.enum).toContain('body_too_large');
    const customers404 = doc.paths['/v1/customers/{customerId}'].get.responses['404'].$ref.replace('#/components/responses/', '');
    expect(JSON.stringify(doc.components.responses[customers404])).toContain('customer_not_found');
    const docs = await t.api('anonymous').get('/docs/');
    expect(docs.status).toBe(200);
  });
});

describe.runIf(engines.includes('postgres'))('the database becoming unreachable (PostgreSQL)', () => {
  let t: TestHub;
  let admin: Db;
  beforeAll(async () => {
    t = await startTestHub('postgres');
    admin = openPostgres({ url: TEST_PG_URL, maxConnections: 1 });
  });
  afterAll(async () => {
    await admin?.close();
    await t?.close();
  });

  it('answers 503 unavailable with Retry-After, not a 500, while the database refuses connections, and serves again once it is back', async () => {
    const api = t.api('wallet-a');
    const listCustomers = () => api.get('/v1/customers?externalId=nobody');
    expect((await listCustomers()).status).toBe(200);
    const name = new URL(t.database.url!).pathname.slice(1);
    // The database refuses new sessions and ends the hub's: what a restart or failover looks like from the hub.
    await admin.exec(`alter database ${name} allow_connections false`);
    try {
      await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
      const refused = await listCustomers();
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('unavailable');
      expect(refused.headers['retry-after']).toBe('1');
      expect(JSON.stringify(refused.body)).not.toMatch(/at .*\.(ts|js):\d+/);
      const health = await t.api('anonymous').get('/health');
      expect(health.status).toBe(503);
      expect(health.body.error.code).toBe('unavailable');
    } finally {
      await admin.exec(`alter database ${name} allow_connections true`);
    }
    // postgres.js reconnects on demand (after a short backoff): bounded wait for the first answer.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await listCustomers()).status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(200);
  });
});

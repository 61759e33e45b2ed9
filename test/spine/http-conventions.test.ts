import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDevice } from '../../src/demo/device.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
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

  it('pages every keyset list by the cursor it issued and refuses an unknown or another caller’s cursor (400 invalid_page)', async () => {
    const key = () => ({ 'idempotency-key': randomUUID() });
    const created = async (res: Promise<{ status: number; body: any }>) => {
      const r = await res;
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body;
    };
    // Two card products and two cards (then two tokens of them at wallet-a) at bank-a; one of each at bank-b and wallet-b.
    const [bankA, bankB, walletA, walletB] = [t.api('bank-a'), t.api('bank-b'), t.api('wallet-a'), t.api('wallet-b')];
    const product = (api: typeof bankA, binPrefix: string, currency: string) => created(api.post('/v1/issuer/card-products', { name: `Cursor ${binPrefix}`, binPrefix, brand: 'UnionPay', currency, type: 'debit' }, key()));
    await product(bankA, '62299901', 'CNY');
    const theirProduct = await product(bankB, '62299902', 'HKD');
    const card = async (api: typeof bankA, productId: string, customerKey: string) => {
      const issued = await created(api.post('/v1/issuer/cards', { productId, customerId: demoCustomerId(customerKey) }, key()));
      expect((await api.post(`/v1/issuer/cards/${issued.card.id}/activate`, {}, key())).status).toBe(200);
      return issued;
    };
    const mine = [await card(bankA, 'cpr_demo_bank_a_debit', 'li-at-bank-a'), await card(bankA, 'cpr_demo_bank_a_debit', 'li-at-bank-a')];
    const theirCard = await card(bankB, theirProduct.id, 'zhang-at-bank-b');
    const other = await created(bankA.post('/v1/customers', { externalId: 'cursor-other', name: 'Other' }));
    const otherCustomersCard = (await created(bankA.post('/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: other.id }, key()))).card.id;
    for (const issuer of ['bank-a', 'bank-b']) {
      await t.hub.db.transaction((tx) =>
        t.hub.cards.walletTokens.setRules(tx, { type: 'system' }, demoParticipantId(issuer), { typed: 'approve', byReference: 'approve', newDevice: 'approve', keyMaxTransactions: 100, keyTtlHours: 24 }),
      );
    }
    const token = (api: typeof bankA, customerKey: string, issued: any) =>
      created(api.post('/v1/wallet/tokens', { customerId: demoCustomerId(customerKey), consent: true, devicePublicKey: newDevice().publicKey, source: { type: 'typed', cardNumber: issued.cardNumber, expiry: issued.card.expiry, cvv: issued.cvv } }, key()));
    for (const issued of mine) await token(walletA, 'li-at-wallet-a', issued);
    const theirToken = await token(walletB, 'zhang-at-wallet-b', theirCard);
    // Webhook deliveries (delivered already, so the dispatcher leaves them alone): two to wallet-a, one to wallet-b.
    for (const [n, participant] of [[1, 'wallet-a'], [2, 'wallet-a'], [3, 'wallet-b']] as const) {
      await t.hub.db.query(`insert into events (event_id, participant_id, type, payload, created_at) values ($1, $2, 'customer.created', '{}', now())`, [`evt_cursor_${n}`, demoParticipantId(participant)]);
      await t.hub.db.query(
        `insert into webhook_deliveries (id, event_id, participant_id, url, status, attempts, next_attempt_at, created_at) values ($1, $2, $3, 'https://example.test/hook', 'delivered', 1, now(), now() - $4 * interval '1 second')`,
        [`whd_cursor_${n}`, `evt_cursor_${n}`, demoParticipantId(participant), n],
      );
    }
    const theirAudit = (await walletB.get('/v1/audit?limit=1')).body.items[0];
    const theirDelivery = (await walletB.get('/v1/webhooks/deliveries?limit=1')).body.items[0];
    const lists: { as: string; url: string; foreign: string[] }[] = [
      { as: 'bank-a', url: '/v1/issuer/card-products', foreign: [theirProduct.id] },
      { as: 'bank-a', url: '/v1/issuer/cards', foreign: [theirCard.card.id] },
      // Another customer's card of the same issuer is outside a list filtered by customer.
      { as: 'bank-a', url: `/v1/issuer/cards?customerId=${demoCustomerId('li-at-bank-a')}`, foreign: [theirCard.card.id, otherCustomersCard] },
      { as: 'wallet-a', url: '/v1/wallet/tokens', foreign: [theirToken.token.tokenRef] },
      { as: 'wallet-a', url: '/v1/customers', foreign: [demoCustomerId('li-at-wallet-b')] },
      { as: 'operator', url: '/v1/operator/participants', foreign: [] },
      { as: 'wallet-a', url: '/v1/audit', foreign: [String(theirAudit.id)] },
      { as: 'operator', url: '/v1/operator/audit', foreign: [] },
      { as: 'wallet-a', url: '/v1/webhooks/deliveries', foreign: [`${theirDelivery.createdAt}|${theirDelivery.id}`] },
      { as: 'operator', url: '/v1/operator/webhooks/deliveries', foreign: [] },
    ];
    for (const { as, url, foreign } of lists) {
      const api = t.api(as);
      const join = url.includes('?') ? '&' : '?';
      const whole = await api.get(`${url}${join}limit=200`);
      expect(whole.status, url).toBe(200);
      const first = await api.get(`${url}${join}limit=1`);
      expect(first.body.nextCursor, url).toEqual(expect.any(String));
      const second = await api.get(`${url}${join}limit=1&cursor=${encodeURIComponent(first.body.nextCursor)}`);
      expect(second.status, url).toBe(200);
      expect([...first.body.items, ...second.body.items], url).toEqual(whole.body.items.slice(0, 2));
      for (const cursor of ['abc', '12345', `${first.body.nextCursor}x`, ...foreign]) {
        expectError(await api.get(`${url}${join}limit=1&cursor=${encodeURIComponent(cursor)}`), 400, 'invalid_page');
      }
    }
    // A list that answers one page issues no cursor, so none is one of its own.
    expectError(await walletA.get('/v1/ledger/accounts?cursor=acc_anything'), 400, 'invalid_page');
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

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHub, type Hub } from '../../src/main.ts';
import { createFakeClock } from '../../src/platform/clock.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { openPostgres, type Db } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { postgresReachable } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * Two hub instances over one PostgreSQL database, each with its own connection pool (as two processes would have):
 * what one changes, the other honours. Each keeps per-process caches (verified tokens, credential checks); these tests
 * show the caches never outlive a change made through the other hub.
 */
const onPostgres = await postgresReachable();

describe.runIf(onPostgres)('two hubs over one PostgreSQL', () => {
  let a: TestHub;
  let b: Hub;
  let bDb: Db;
  beforeAll(async () => {
    a = await startTestHub('postgres');
    bDb = openPostgres({ url: a.database.url!, maxConnections: 4 });
    // The same data directory: the same key file (key-encrypting key), as processes of one deployment share.
    b = await createHub(loadConfig({ HUTONG_DATA_DIR: a.dataDir, HUTONG_LOG_LEVEL: 'silent' }, { operatorToken: 'op_test_token' }), {
      db: bDb,
      clock: createFakeClock(a.hub.clock.nowMs()),
      logger: createLogger({ level: 'silent' }),
    });
  });
  afterAll(async () => {
    await b?.close();
    await bDb?.close();
    await a?.close();
  });

  const tokenOf = async (hub: Hub, clientId: string, clientSecret: string): Promise<string> => {
    const res = await hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret } });
    expect(res.statusCode).toBe(200);
    return (res.json() as { access_token: string }).access_token;
  };
  /** Polls until the probe answers `wanted`, for at most 3 s (a NOTIFY crosses in milliseconds). */
  const eventually = async (probe: () => Promise<number>, wanted: number): Promise<number> => {
    let last = 0;
    for (let i = 0; i < 60; i++) {
      last = await probe();
      if (last === wanted) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    return last;
  };

  it('a credential revoked through one hub stops working on the other, which had it cached', async () => {
    const created = (await a.api('operator').post('/v1/operator/participants', { kind: 'wallet', name: 'Two Hubs Wallet', country: 'CN', currencies: ['CNY'] })).body;
    const token = await tokenOf(a.hub, created.credential.clientId, created.credential.clientSecret);
    const me = () => b.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } }).then((r) => r.statusCode);
    expect(await me()).toBe(200);
    expect(await me()).toBe(200); // now answered from hub B's caches
    const revoked = await a.api('operator').post(`/v1/operator/participants/${created.participant.id}/credentials/${created.credential.clientId}/revoke`);
    expect(revoked.status).toBe(200);
    expect(await eventually(me, 401)).toBe(401);
  });

  it('a participant suspended through one hub is refused by the other, and readmitted after reactivation', async () => {
    const created = (await a.api('operator').post('/v1/operator/participants', { kind: 'issuer', name: 'Two Hubs Bank', country: 'CN', currencies: ['CNY'] })).body;
    const token = await tokenOf(b, created.credential.clientId, created.credential.clientSecret);
    const me = () => b.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } }).then((r) => r.statusCode);
    expect(await me()).toBe(200);
    await a.api('operator').post(`/v1/operator/participants/${created.participant.id}/suspend`);
    expect(await eventually(me, 403)).toBe(403);
    await a.api('operator').post(`/v1/operator/participants/${created.participant.id}/reactivate`);
    expect(await eventually(me, 200)).toBe(200);
  });

  it('the same Idempotency-Key sent to both hubs at once runs the effect once; both answer the same', async () => {
    const cred = a.demo.participants.find((p) => p.key === 'wallet-a')!;
    const tokenA = await tokenOf(a.hub, cred.clientId, cred.clientSecret);
    const body = { externalId: 'two-hubs-1', name: 'Zhao Lei' };
    const send = (hub: Hub) =>
      hub.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: `Bearer ${tokenA}`, 'idempotency-key': 'two-hubs-k1' }, payload: body });
    const [x, y] = await Promise.all([send(a.hub), send(b)]);
    expect([x.statusCode, y.statusCode], `${x.body} ${y.body}`).toEqual([201, 201]);
    expect(x.json()).toEqual(y.json());
    const [row] = await a.hub.db.query<{ n: bigint }>(`select count(*) as n from customers where external_id = 'two-hubs-1'`);
    expect(row?.n).toBe(1n);
  });
});

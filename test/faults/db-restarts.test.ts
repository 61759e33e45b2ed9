import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoParticipantId, seedDemoNetwork } from '../../src/demo/seed.ts';
import { createHub, type Hub } from '../../src/main.ts';
import { defaultKeyDir, loadConfig } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { clusterAvailable, createPgCluster, type PgCluster } from '../support/pg-cluster.ts';

/**
 * PostgreSQL restarted three times under load, as a Jepsen run would do it, over real HTTP against a hub on a cluster
 * of the test's own: 24 clients pay each other (quote, then confirm under an Idempotency-Key, retried with the same key
 * until the hub gives a definitive answer) and deposit. Afterwards: every request was answered within its deadline,
 * every payment key got a definitive answer (none left "in progress"), no idempotency claim is left running, a new
 * payment went through within 5 s of each restart, /health said 503 while the database was down and 200 after, every
 * acknowledged payment is in the books exactly once and the books balance.
 */
const available = clusterAvailable();

const CLIENTS = 24;
const PAYERS = 240;
const PAYEES = 12;
const RESTARTS = 3;
/** Each request's own deadline, as a client would set it: above the hub's (20 s transaction, 25 s batch). */
const REQUEST_DEADLINE_MS = 30_000;
/**
 * Long enough that /health must see it: a check waits up to 2 s for the database (a shorter blink can end while it
 * waits, and then it rightly succeeds) and a result is kept 1 s.
 */
const DOWN_MS = 3_500;
const LOAD_BETWEEN_MS = 4_000;
const RECOVERY_LIMIT_MS = 5_000;

interface Party {
  readonly participantKey: 'wallet-a' | 'wallet-b';
  readonly customerId: string;
  readonly accountId: string;
  readonly handle: string;
}

async function createParty(hub: Hub, kind: 'payer' | 'payee', i: number): Promise<Party> {
  const participantKey = i % 2 === 0 ? 'wallet-a' : 'wallet-b';
  const participant = (await hub.participants.get(demoParticipantId(participantKey)))!;
  const handle = `fault.${kind}${i}`;
  return hub.db.transaction(async (tx) => {
    const c = await hub.customers.create(tx, { type: 'system' }, participant, { externalId: `fault-${kind}-${i}`, name: `Fault ${kind} ${i}`, kycLevel: 3 });
    if (!c.ok) throw new Error(c.error.code);
    const a = await hub.transfers.accounts.openCustomerAccount(tx, { type: 'system' }, participant.id, c.value.id, 'CNY');
    if (!a.ok) throw new Error(a.error.code);
    if (kind === 'payer') {
      const d = await hub.transfers.accounts.deposit(tx, { type: 'system' }, participant.id, a.value.id, 1_000_000n, 'CNY', `fault_fund_${i}`);
      if (!d.ok) throw new Error(d.error.code);
    }
    const al = await hub.transfers.aliases.register(tx, { type: 'system' }, participant, { customerId: c.value.id, type: 'handle', value: handle, accountId: a.value.id });
    if (!al.ok) throw new Error(al.error.code);
    return { participantKey, customerId: c.value.id, accountId: a.value.id, handle };
  });
}

interface Answer {
  readonly status: number;
  readonly body: any;
}

describe.skipIf(!available)('PostgreSQL restarted under load (a cluster of the test’s own)', () => {
  let cluster: PgCluster;
  let hub: Hub;
  let base: string;
  let dataDir: string;
  const headersOf: Record<string, Record<string, string>> = {};
  const payers: Party[] = [];
  const payees: Party[] = [];

  beforeAll(async () => {
    cluster = await createPgCluster();
    const url = await cluster.createDatabase('hutong_faults');
    dataDir = mkdtempSync(join(tmpdir(), 'hutong-faults-'));
    const config = loadConfig(
      { HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: url, HUTONG_RATE_LIMIT_PER_S: '1000000', HUTONG_WEBHOOKS: '0' },
      { port: 0, host: '127.0.0.1', operatorToken: 'op_faults', demo: true },
    );
    hub = await createHub(config, { logger: createLogger({ level: process.env.LOG ?? 'silent' }) });
    const demo = await seedDemoNetwork(hub);
    Object.assign(hub.transfers.aliases.limits, { customerPerS: 1e6, customerBurst: 1e6, participantPerS: 1e6, participantBurst: 1e6 });
    for (let i = 0; i < PAYERS; i += 8) payers.push(...(await Promise.all(Array.from({ length: Math.min(8, PAYERS - i) }, (_, k) => createParty(hub, 'payer', i + k)))));
    for (let i = 0; i < PAYEES; i++) payees.push(await createParty(hub, 'payee', i));
    hub.startBackground();
    base = await hub.listen();
    for (const key of ['wallet-a', 'wallet-b'] as const) {
      const cred = demo.participants.find((p) => p.key === key)!;
      const res = await fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }),
      });
      headersOf[key] = { authorization: `Bearer ${((await res.json()) as { access_token: string }).access_token}`, 'content-type': 'application/json' };
    }
  }, 180_000);

  afterAll(async () => {
    await hub?.close();
    await cluster?.remove();
    if (dataDir !== undefined) {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    }
  });

  it('answers every request in time, leaves nothing in progress, pays again within 5 s of each restart, and /health follows', async () => {
    const counts = { requests: 0, overDeadline: 0, acknowledged: 0, refused: 0, deposits: 0, retries503: 0, retries409: 0, byStatus: {} as Record<string, number> };
    const acknowledged = new Map<string, bigint>(); // payment id → amount (minor)
    const unresolvedKeys = new Set<string>();
    let stopLoad = false;

    /** One HTTP call with the client's own deadline; a call past it is counted, never waited for. */
    const call = async (method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> => {
      counts.requests++;
      const started = performance.now();
      try {
        const res = await fetch(`${base}${path}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
        });
        const text = await res.text();
        counts.byStatus[res.status] = (counts.byStatus[res.status] ?? 0) + 1;
        return { status: res.status, body: text.length > 0 ? JSON.parse(text) : undefined };
      } catch (error) {
        if (performance.now() - started >= REQUEST_DEADLINE_MS - 50) counts.overDeadline++;
        throw error;
      }
    };
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    /**
     * Confirms a quote under one key until the hub answers definitively: 201 (acknowledged) or a refusal. A 503 (the
     * database is unavailable) or 409 is retried with the same key, as a client must. Bounded by `until`.
     */
    const confirm = async (headers: Record<string, string>, quoteId: string, key: string, until: number): Promise<Answer | undefined> => {
      unresolvedKeys.add(key);
      while (performance.now() < until) {
        const paid = await call('POST', '/v1/transfers/payments', { ...headers, 'idempotency-key': key }, { quoteId }).catch(() => undefined);
        if (paid === undefined || paid.status === 503 || paid.status === 409) {
          if (paid?.status === 503) counts.retries503++;
          if (paid?.status === 409) counts.retries409++;
          await pause(100);
          continue;
        }
        unresolvedKeys.delete(key);
        if (paid.status === 201) {
          counts.acknowledged++;
          acknowledged.set(paid.body.id as string, 100n);
        } else counts.refused++;
        return paid;
      }
      return undefined;
    };

    const client = async (c: number) => {
      for (let n = 0; !stopLoad; n++) {
        const payer = payers[(c + CLIENTS * n) % payers.length]!;
        const payee = payees[(c * 7 + n) % payees.length]!;
        const headers = headersOf[payer.participantKey]!;
        if (n % 4 === 3) {
          // A deposit, retried with its key on 503 like a payment.
          const key = `dep-${c}-${n}`;
          for (let attempt = 0; attempt < 200 && !stopLoad; attempt++) {
            const res = await call('POST', `/v1/accounts/${payer.accountId}/deposits`, { ...headers, 'idempotency-key': key }, { amount: { amount: '1.00', currency: 'CNY' } }).catch(() => undefined);
            if (res !== undefined && res.status !== 503 && res.status !== 409) {
              if (res.status === 201) counts.deposits++;
              break;
            }
            await pause(100);
          }
          continue;
        }
        const quote = await call('POST', '/v1/transfers/quotes', headers, { customerId: payer.customerId, payee: { type: 'handle', value: payee.handle }, sendAmount: { amount: '1.00', currency: 'CNY' } }).catch(() => undefined);
        if (quote === undefined || quote.status !== 201) {
          await pause(100);
          continue;
        }
        // Keep retrying a started payment well past the end of the load: its key must get a definitive answer.
        await confirm(headers, quote.body.id as string, `pay-${c}-${n}`, performance.now() + 60_000);
      }
    };

    /** A fresh payment from a payer the load does not use, retried until it goes through: ms from `from`. */
    const probePayer = payers[payers.length - 1]!;
    const timeToPay = async (from: number): Promise<number> => {
      const headers = headersOf[probePayer.participantKey]!;
      for (let n = 0; performance.now() - from < 30_000; n++) {
        const quote = await call('POST', '/v1/transfers/quotes', headers, { customerId: probePayer.customerId, payee: { type: 'handle', value: payees[0]!.handle }, sendAmount: { amount: '1.00', currency: 'CNY' } }).catch(() => undefined);
        if (quote?.status === 201) {
          const paid = await confirm(headers, quote.body.id as string, `probe-${from.toFixed(0)}-${n}`, performance.now() + 30_000);
          if (paid?.status === 201) return performance.now() - from;
        }
        await pause(50);
      }
      return Number.POSITIVE_INFINITY;
    };
    const health = async () => (await call('GET', '/health', {}).catch(() => ({ status: 0, body: undefined }))).status;

    // A listener as the hub's participants service keeps one (credential-cache invalidation): it must hear again after
    // the restarts, and be told each time it reconnected (notifications sent while it was down are lost).
    const heard: string[] = [];
    let listenerReconnects = 0;
    await hub.db.listen('hutong_fault_probe', (payload) => heard.push(payload), () => listenerReconnects++);

    const load = Array.from({ length: CLIENTS }, (_, c) => client(c));
    await pause(LOAD_BETWEEN_MS);
    const faults: { downMs: number; healthWhileDown: number[]; recoveryMs: number; healthyAfterMs: number }[] = [];
    for (let r = 0; r < RESTARTS; r++) {
      // /health is polled while the database goes down and comes back.
      const healthWhileDown: number[] = [];
      let down = true;
      const poller = (async () => {
        while (down) {
          healthWhileDown.push(await health());
          await pause(150);
        }
      })();
      const { downAt, upAt } = await cluster.restart(DOWN_MS);
      down = false;
      await poller;
      const recoveryMs = await timeToPay(upAt);
      let healthyAfterMs = Number.POSITIVE_INFINITY;
      while (performance.now() - upAt < 30_000) {
        if ((await health()) === 200) {
          healthyAfterMs = performance.now() - upAt;
          break;
        }
        await pause(100);
      }
      faults.push({ downMs: upAt - downAt, healthWhileDown, recoveryMs, healthyAfterMs });
      await pause(LOAD_BETWEEN_MS);
    }
    stopLoad = true;
    await Promise.all(load);

    await hub.db.query(`select pg_notify('hutong_fault_probe', 'after the restarts')`);
    for (let i = 0; i < 100 && !heard.includes('after the restarts'); i++) await pause(50);

    const [running] = await hub.db.query<{ n: bigint }>(`select count(*) as n from idempotency_keys where state = 'running'`);
    const ids = [...acknowledged.keys()];
    const [present] = await hub.db.query<{ n: bigint; distinct_ids: bigint }>('select count(*) as n, count(distinct id) as distinct_ids from payments where id = any($1::text[])', [ids]);
    const violations = await hub.ledger.checkInvariants();
    const report = {
      faultsInjected: faults.length,
      downMs: faults.map((f) => Math.round(f.downMs)),
      recoveryMs: faults.map((f) => Math.round(f.recoveryMs)),
      healthyAfterMs: faults.map((f) => Math.round(f.healthyAfterMs)),
      healthWhileDown: faults.map((f) => f.healthWhileDown.join(',')),
      ...counts,
      unresolvedKeys: unresolvedKeys.size,
      claimsRunning: Number(running?.n ?? -1n),
      listenerReconnects,
    };
    console.log('[faults] PostgreSQL restarts under load:', JSON.stringify(report));

    expect(counts.overDeadline).toBe(0);
    expect(unresolvedKeys.size).toBe(0);
    expect(running?.n).toBe(0n);
    expect(counts.acknowledged).toBeGreaterThan(100);
    expect(present?.n).toBe(BigInt(ids.length));
    expect(present?.distinct_ids).toBe(BigInt(ids.length));
    expect(violations).toEqual([]);
    expect(heard).toContain('after the restarts');
    expect(listenerReconnects).toBeGreaterThanOrEqual(1 + RESTARTS);
    for (const f of faults) {
      expect(f.healthWhileDown).toContain(503);
      expect(f.recoveryMs).toBeLessThan(RECOVERY_LIMIT_MS);
      expect(f.healthyAfterMs).toBeLessThan(RECOVERY_LIMIT_MS);
    }
  }, 240_000);
});

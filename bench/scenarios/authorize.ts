import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHub } from '../../src/main.ts';
import { seedDemoNetwork } from '../../src/demo/seed.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { openPostgres, type Db, type Queryable } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { cardInTwoWallets, tapBody, type WalletToken } from '../../src/payments/fixtures.ts';
import { createScratchPostgres, postgresReachable } from '../../test/support/engines.ts';
import { createLatencyRecorder, runClosedLoop, summarize, type BenchResult } from '../recorder.ts';
import type { Scenario } from './index.ts';

/**
 * authorize: over HTTP against an in-process hub on a scratch PostgreSQL database, each operation is a contactless
 * tap with a fresh cryptogram (POST /v1/merchants/:id/payments/tap: de-tokenize, cryptogram + ATC, controls, risk,
 * hosted hold in the ledger) followed by its capture (POST /v1/payments/:id/capture). One token per client (the ATC
 * must rise). Options: --seconds=N (default 20), --clients=N (default 32), --ops=N (default 200000), --pool=N.
 */
function option(args: readonly string[], name: string, fallback: number): number {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
}

const MERCHANT = 'mer_demo_merchant_a';

/** Counts every statement (top level or in a transaction) and every transaction that goes through a Db. */
function countingDb(inner: Db): { db: Db; counter: { statements: number; transactions: number } } {
  const counter = { statements: 0, transactions: 0 };
  const counted = (q: Queryable): Queryable => ({
    query: (text, params) => {
      counter.statements++;
      return q.query(text, params);
    },
  });
  const top = counted(inner);
  const db: Db = {
    engine: inner.engine,
    query: (text, params) => top.query(text, params),
    transaction: (fn, options) =>
      inner.transaction((tx) => {
        counter.transactions++;
        return fn(counted(tx));
      }, options),
    exec: (script) => inner.exec(script),
    close: () => inner.close(),
  };
  return { db, counter };
}

/** CPU milliseconds used so far by the PostgreSQL backends serving one database (0 when PostgreSQL runs elsewhere). */
function backendCpuMs(database: string): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(database)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks * 10; // USER_HZ = 100
}

export const authorizeScenario: Scenario = {
  name: 'authorize',
  description: 'tap with a fresh cryptogram → authorization → capture over HTTP, PostgreSQL',
  async *run(args) {
    if (!(await postgresReachable())) throw new Error('authorize bench needs PostgreSQL (HUTONG_TEST_PG_URL)');
    const seconds = option(args, 'seconds', 20);
    const clients = option(args, 'clients', 32);
    const maxOps = option(args, 'ops', 200_000);
    const pool = option(args, 'pool', 16);
    const scratch = await createScratchPostgres();
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-bench-'));
    const config = loadConfig({ HUTONG_DATA_DIR: dataDir, DATABASE_URL: scratch.url, HUTONG_LOG_LEVEL: 'silent', HUTONG_DB_MAX_CONNECTIONS: String(pool) }, { port: 0, host: '127.0.0.1', operatorToken: 'op_bench', rateLimitPerS: 1_000_000 });
    const { db, counter } = countingDb(openPostgres({ url: scratch.url, maxConnections: pool }));
    const hub = await createHub(config, { logger: createLogger({ level: 'silent' }), db });
    try {
      const demo = await seedDemoNetwork(hub);
      const base = await hub.listen();
      const tokens = new Map<string, string>();
      const token = async (key: string) => {
        const hit = tokens.get(key);
        if (hit !== undefined) return hit;
        const p = demo.participants.find((d) => d.key === key);
        if (p === undefined) throw new Error(key);
        const res = await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: p.clientId, client_secret: p.clientSecret }) });
        const t = ((await res.json()) as { access_token: string }).access_token;
        tokens.set(key, t);
        return t;
      };
      const call = async (as: string, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers: Record<string, string> = {}) => {
        const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${await token(as)}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
        const text = await res.text();
        return { status: res.status, body: text.length > 0 ? JSON.parse(text) : undefined };
      };
      // Benchmark traffic is one customer paying fast: lift the velocity thresholds (rules are data).
      const bankA = demoParticipantId('bank-a');
      await hub.db.transaction(async (tx) => {
        await hub.transfers.risk.setRule(tx, { type: 'system' }, bankA, 'velocity', { action: 'step_up', score: 40, windowS: 600, maxCount: 100_000_000 }, true);
        for (const rule of ['token_velocity', 'card_velocity', 'device_velocity'] as const) await hub.payments.paymentRules.setRule(tx, { type: 'system' }, bankA, rule, { action: 'decline', score: 50, windowS: 600, maxCount: 100_000_000 }, true);
      });
      const walletTokens: WalletToken[] = [];
      for (let i = 0; i < clients; i += 2) {
        const card = await cardInTwoWallets(hub, call, { depositMinor: 100_000_000_000n });
        walletTokens.push(card.a, card.b);
      }
      let failures = 0;
      let firstFailure = '';
      const recorder = createLatencyRecorder();
      counter.statements = 0;
      counter.transactions = 0;
      const load1Before = loadavg()[0]!;
      const cpu0 = process.cpuUsage();
      const database = new URL(scratch.url).pathname.slice(1);
      const pg0 = backendCpuMs(database);
      const elapsed = await runClosedLoop({
        clients,
        maxOps,
        maxMs: seconds * 1000,
        recorder,
        op: async (c, n) => {
          const t = walletTokens[c % walletTokens.length]!;
          const auth = await call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/payments/tap`, tapBody(t, { amount: '1.00', amountMinor: 100n, now: new Date() }), { 'idempotency-key': `bench-a-${n}` });
          const cap = auth.status === 201 ? await call('merchant-a', 'POST', `/v1/payments/${auth.body.id}/capture`, {}, { 'idempotency-key': `bench-c-${n}` }) : auth;
          if (cap.status !== 200) {
            failures += 1;
            if (firstFailure === '') firstFailure = `${cap.status} ${JSON.stringify(cap.body)}`;
          }
        },
      });
      const ops = recorder.count;
      const cpu = process.cpuUsage(cpu0);
      const pgMs = backendCpuMs(database) - pg0;
      const per = (x: number) => (ops === 0 ? 0 : Math.round((x / ops) * 10) / 10);
      const result: BenchResult = summarize('authorize', 'postgres', recorder, elapsed, {
        clients,
        pool,
        failures,
        op: 'tap+capture',
        // Per tap+capture: statements and transactions through the hub's Db; CPU of this one Node process (hub and
        // HTTP clients) and of the PostgreSQL backends serving the scratch database.
        sql_per_op: per(counter.statements),
        tx_per_op: per(counter.transactions),
        node_ms_per_op: per((cpu.user + cpu.system) / 1000),
        pg_ms_per_op: per(pgMs),
        load1: `${load1Before.toFixed(2)}→${loadavg()[0]!.toFixed(2)}`,
        ...(firstFailure !== '' ? { first_failure: firstFailure.slice(0, 120) } : {}),
      });
      yield result;
    } finally {
      await hub.close();
      await db.close();
      await scratch.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

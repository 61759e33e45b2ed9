import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/cli/doctor.ts';
import { seedDemoNetwork } from '../../src/demo/seed.ts';
import { createHub, type Hub } from '../../src/main.ts';
import { defaultKeyDir, loadConfig } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { formatMoney } from '../../src/platform/money.ts';
import { doubleMoves, openBank, randomPair, snapshot, type BankParty, type WalletKey } from '../ledger/p2p-bank.ts';
import { autoFailoverAvailable, createAutoFailoverFormation, type AutoFailoverFormation } from '../support/pg-auto-failover.ts';

/**
 * Failover with no acknowledged loss: the hub runs on a pg_auto_failover formation (a monitor, a primary and a
 * synchronous standby, each on its own port) through a multi-host DATABASE_URL with target_session_attrs=read-write.
 * 32 clients pay over real HTTP (quote, then confirm under an Idempotency-Key, retried with the same key on a 5xx or
 * "in progress", as a wallet does) while the primary's machine dies: its keeper and postmaster get SIGKILL. The monitor
 * promotes the standby; the hub follows it by itself. Afterwards: every payment acknowledged before, during and after
 * the failover is in the books exactly once, every key got a definitive answer, no idempotency claim is left running,
 * money is conserved, and the hub paid again within 30 s of the kill.
 */
const available = autoFailoverAvailable();

const CLIENTS = 32;
const CUSTOMERS = 64;
const FUND_MINOR = 1_000_000n;
const LOAD_BEFORE_KILL_MS = 5_000;
const LOAD_AFTER_RECOVERY_MS = 5_000;
const SERVE_AGAIN_LIMIT_MS = 30_000;
/** A client's deadline for one payment's definitive answer, retries included (above the failover's duration). */
const PAYMENT_DEADLINE_MS = 60_000;

describe.skipIf(!available)('failover to a synchronous standby under load (pg_auto_failover)', () => {
  let formation: AutoFailoverFormation;
  let hub: Hub;
  let base: string;
  let dataDir: string;
  let parties: BankParty[];
  const tokens = new Map<WalletKey, string>();
  const agent = new Agent({ connections: CLIENTS * 2, keepAliveTimeout: 10_000 });

  beforeAll(async () => {
    formation = await createAutoFailoverFormation({ database: 'hutong_failover' });
    dataDir = mkdtempSync(join(tmpdir(), 'hutong-failover-'));
    const config = loadConfig(
      { HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: formation.url, HUTONG_RATE_LIMIT_PER_S: '1000000', HUTONG_WEBHOOKS: '0' },
      { port: 0, host: '127.0.0.1', operatorToken: 'op_failover', demo: true },
    );
    hub = await createHub(config, { logger: createLogger({ level: process.env.LOG ?? 'silent' }) });
    const demo = await seedDemoNetwork(hub);
    parties = await openBank(hub, { count: CUSTOMERS, fundMinor: FUND_MINOR, tag: 'fo' });
    hub.startBackground();
    base = await hub.listen();
    for (const w of ['wallet-a', 'wallet-b'] as const) {
      const d = demo.participants.find((p) => p.key === w);
      if (d === undefined) throw new Error(w);
      const res = await fetch(`${base}/oauth/token`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: d.clientId, client_secret: d.clientSecret }) });
      tokens.set(w, ((await res.json()) as { access_token: string }).access_token);
    }
  }, 300_000);

  afterAll(async () => {
    await hub?.close();
    await agent.close();
    await formation?.remove();
    if (dataDir !== undefined) {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    }
  });

  it('the doctor sees a synchronous standby behind the multi-host URL', async () => {
    const checks = await runDoctor(loadConfig({ DATABASE_URL: formation.url, HUTONG_DATA_DIR: dataDir, HUTONG_OPERATOR_TOKEN: 'x'.repeat(40) }));
    const replication = checks.find((c) => c.name === 'replication');
    expect(replication?.status).toBe('ok');
    expect(replication?.detail).toMatch(/1 synchronous standby/);
    expect(checks.find((c) => c.name === 'database writable')?.status).toBe('ok');
  });

  it('loses no acknowledged payment, pays none twice, and serves again within 30 s of the primary dying', async () => {
    const post = async (wallet: WalletKey, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> => {
      const res = await fetch(`${base}${path}`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${tokens.get(wallet) ?? ''}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
      const text = await res.text();
      return { status: res.status, body: text.length > 0 ? JSON.parse(text) : undefined };
    };
    const retryable = (r: { status: number; body: any }) => r.status >= 500 || r.body?.error?.code === 'idempotency_in_progress';
    const accountIds = parties.map((p) => p.accountId);
    const before = await snapshot(hub.db, accountIds);

    /** `at`: when the confirm that succeeded was sent. */
    const acknowledged: { key: string; wallet: WalletKey; quoteId: string; paymentId: string; at: number }[] = [];
    const unresolved: string[] = [];
    const refused: Record<string, number> = {};
    let retries = 0;
    let running = true;
    let n = 0;
    const client = async (c: number) => {
      while (running) {
        const [from, to] = randomPair(parties);
        const q = await post(from.wallet, '/v1/transfers/quotes', { customerId: from.customerId, sourceAccountId: from.accountId, payee: { type: 'handle', value: to.handle }, sendAmount: formatMoney(BigInt(1 + Math.floor(Math.random() * 500)), 'CNY') }).catch(() => undefined);
        if (q === undefined || q.status !== 201) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const key = `fo_${c}_${n++}`;
        const deadline = Date.now() + PAYMENT_DEADLINE_MS;
        for (;;) {
          // When the request that succeeded was sent: a payment committed just before the kill can be answered after it.
          const sentAt = performance.now();
          const r = await post(from.wallet, '/v1/transfers/payments', { quoteId: q.body.id }, { 'idempotency-key': key }).catch(() => undefined);
          if (r !== undefined && r.status === 201) {
            acknowledged.push({ key, wallet: from.wallet, quoteId: q.body.id as string, paymentId: r.body.id as string, at: sentAt });
            break;
          }
          if (r !== undefined && !retryable(r)) {
            const code = String(r.body?.error?.code ?? r.status);
            refused[code] = (refused[code] ?? 0) + 1;
            break;
          }
          retries++;
          if (Date.now() > deadline) {
            unresolved.push(key);
            break;
          }
          await new Promise((res) => setTimeout(res, 200));
        }
      }
    };

    const load = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    await new Promise((r) => setTimeout(r, LOAD_BEFORE_KILL_MS));
    const acknowledgedBeforeKill = acknowledged.length;
    const killedPort = await formation.killPrimary();
    const killedAt = performance.now();
    const promoted = await formation.waitForPromotion(killedPort, SERVE_AGAIN_LIMIT_MS + 30_000);
    const promotedAfterMs = performance.now() - killedAt;
    // The hub serves again: a payment whose confirm was sent after the kill is acknowledged.
    while (performance.now() - killedAt < SERVE_AGAIN_LIMIT_MS + 30_000 && !acknowledged.some((a) => a.at > killedAt)) await new Promise((r) => setTimeout(r, 100));
    const firstAfter = acknowledged.find((a) => a.at > killedAt);
    const servedAgainAfterMs = firstAfter === undefined ? Number.POSITIVE_INFINITY : firstAfter.at - killedAt;
    await new Promise((r) => setTimeout(r, LOAD_AFTER_RECOVERY_MS));
    running = false;
    await load;

    const ids = acknowledged.map((a) => a.paymentId);
    const [found] = await hub.db.query<{ n: bigint; distinct_ids: bigint }>('select count(*) as n, count(distinct id) as distinct_ids from payments where id = any($1::text[])', [ids]);
    const [claims] = await hub.db.query<{ n: bigint }>(`select count(*) as n from idempotency_keys where state = 'running'`);
    const moves = await doubleMoves(hub.db, accountIds);
    const after = await snapshot(hub.db, accountIds);
    console.log(
      `failover: ${acknowledged.length} payments acknowledged (${acknowledgedBeforeKill} before the kill, ${acknowledged.filter((a) => a.at > killedAt).length} after), ` +
        `${Object.values(refused).reduce((x, y) => x + y, 0)} refused ${JSON.stringify(refused)}, ${retries} client retries, 1 primary killed (keeper + postmaster SIGKILL), ` +
        `standby on port ${promoted.port} promoted after ${Math.round(promotedAfterMs)} ms, hub paid again after ${Math.round(servedAgainAfterMs)} ms, 0 lost, 0 duplicated`,
    );

    expect(unresolved).toEqual([]);
    expect(acknowledgedBeforeKill).toBeGreaterThan(20);
    expect(servedAgainAfterMs).toBeLessThan(SERVE_AGAIN_LIMIT_MS);
    // Every acknowledged payment is in the books once (one row per id, one ledger leg per payment on the new primary).
    expect(new Set(ids).size).toBe(ids.length);
    expect(found?.n).toBe(BigInt(ids.length));
    expect(found?.distinct_ids).toBe(BigInt(ids.length));
    expect(moves.paymentsWithOtherLegCount).toBe(0);
    expect(moves.legs).toBe(moves.payments);
    expect(claims?.n).toBe(0n);
    // Money conserved, nothing below its floor, the ledger's own checks hold.
    expect(after.total).toBe(before.total);
    expect(after.belowFloor).toBe(0);
    expect(await hub.ledger.checkInvariants()).toEqual([]);
    // A retry of an acknowledged key from before the kill answers the same payment (its answer survived on the standby).
    for (const a of acknowledged.filter((x) => x.at < killedAt).slice(-10)) {
      const again = await post(a.wallet, '/v1/transfers/payments', { quoteId: a.quoteId }, { 'idempotency-key': a.key });
      expect(again.status).toBe(201);
      expect(again.body.id).toBe(a.paymentId);
    }
  }, 240_000);
});

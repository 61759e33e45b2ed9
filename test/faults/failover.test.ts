import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/cli/doctor.ts';
import { seedDemoNetwork } from '../../src/demo/seed.ts';
import { createHub, type Hub } from '../../src/main.ts';
import { defaultKeyDir, loadConfig } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { openBank, randomPair, snapshot, type BankParty, type WalletKey } from '../ledger/p2p-bank.ts';
import { expectBooksHold, payingClients } from '../support/paying-clients.ts';
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
  const credentials = new Map<WalletKey, { clientId: string; clientSecret: string }>();
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
      credentials.set(w, { clientId: d.clientId, clientSecret: d.clientSecret });
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
    const clients = payingClients({ base: () => base, agent, credentials, keyPrefix: 'fo', paymentDeadlineMs: PAYMENT_DEADLINE_MS, retryPauseMs: 200, requestTimeoutMs: 30_000 });
    await clients.signIn();
    const { acknowledged } = clients;
    const accountIds = parties.map((p) => p.accountId);
    const before = await snapshot(hub.db, accountIds);
    let running = true;
    const client = async (c: number) => {
      while (running) {
        const [from, to] = randomPair(parties);
        if (!(await clients.payOnce(c, from, to))) await new Promise((r) => setTimeout(r, 100));
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
    while (performance.now() - killedAt < SERVE_AGAIN_LIMIT_MS + 30_000 && !acknowledged.some((a) => a.sentAt > killedAt)) await new Promise((r) => setTimeout(r, 100));
    const firstAfter = acknowledged.find((a) => a.sentAt > killedAt);
    const servedAgainAfterMs = firstAfter === undefined ? Number.POSITIVE_INFINITY : firstAfter.sentAt - killedAt;
    await new Promise((r) => setTimeout(r, LOAD_AFTER_RECOVERY_MS));
    running = false;
    await load;

    console.log(
      `failover: ${acknowledged.length} payments acknowledged (${acknowledgedBeforeKill} before the kill, ${acknowledged.filter((a) => a.sentAt > killedAt).length} after), ` +
        `${clients.refusedCount()} refused ${JSON.stringify(clients.refused)}, ${clients.stats.retries} client retries, 1 primary killed (keeper + postmaster SIGKILL), ` +
        `standby on port ${promoted.port} promoted after ${Math.round(promotedAfterMs)} ms, hub paid again after ${Math.round(servedAgainAfterMs)} ms, 0 lost, 0 duplicated`,
    );
    expect(acknowledgedBeforeKill).toBeGreaterThan(20);
    expect(servedAgainAfterMs).toBeLessThan(SERVE_AGAIN_LIMIT_MS);
    // Every acknowledged payment in the books once on the new primary; a retry of a key acknowledged before the kill
    // answers the same payment (its answer survived on the standby).
    await expectBooksHold(hub, clients, accountIds, before, acknowledged.filter((x) => x.sentAt < killedAt).slice(-10));
  }, 240_000);
});

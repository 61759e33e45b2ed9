import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoNetwork } from '../../src/demo/seed.ts';
import { createHub, type Hub } from '../../src/main.ts';
import { defaultKeyDir, loadConfig } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { openBank, randomPair, snapshot, type BankParty, type WalletKey } from '../ledger/p2p-bank.ts';
import { HAPROXY, startHaproxy, startHubServer, type Balancer } from '../support/haproxy.ts';
import { expectBooksHold, payingClients } from '../support/paying-clients.ts';
import { clusterAvailable, createPgCluster, freePort, type PgCluster } from '../support/pg-cluster.ts';

/**
 * Bounded chaos, as Jepsen's nemesis does it: three hub processes (each running the background jobs) behind HAProxy,
 * on a PostgreSQL cluster of the test's own, while a seeded random schedule kills hubs (SIGKILL, restarted), pauses
 * hubs (SIGSTOP … SIGCONT), restarts PostgreSQL and freezes PostgreSQL's processes, for 5 minutes in CI
 * (HUTONG_CHAOS_MS elsewhere, 60 s by default; HUTONG_CHAOS_SEED replays a schedule). Clients pay through the balancer
 * (quote, then confirm under an Idempotency-Key, retried with the same key, as a wallet does) and readers take
 * one-statement snapshots of every account throughout. Afterwards, the bank checks: every key got a definitive answer,
 * every acknowledged payment is in the books once, money is conserved and no snapshot ever saw it otherwise, nothing
 * went below its floor, no idempotency claim is left running, the hubs' background audit chainers chained every record and the chain verifies, and the hubs pay again at once.
 */
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const available = clusterAvailable() && (HAPROXY !== undefined || IN_CI);
const CHAOS_MS = Number(process.env.HUTONG_CHAOS_MS ?? (IN_CI ? 300_000 : 60_000));
const SEED = Number(process.env.HUTONG_CHAOS_SEED ?? Date.now() % 1_000_000);
const HUBS = 3;
const CLIENTS = 12;
const CUSTOMERS = 40;
const FUND_MINOR = 1_000_000n;
/** A client's deadline for one payment's definitive answer, retries included (above every fault's length). */
const PAYMENT_DEADLINE_MS = 60_000;

/** mulberry32: a small seeded generator, so that a failing schedule can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!available)('bounded chaos: hubs killed and paused, PostgreSQL restarted and frozen, under load', () => {
  let cluster: PgCluster;
  let url: string;
  let hub: Hub;
  let dataDir: string;
  let parties: BankParty[];
  let balancer: Balancer;
  const hubs: (ChildProcess | undefined)[] = [];
  const ports: number[] = [];
  const agent = new Agent({ connections: CLIENTS * 2, keepAliveTimeout: 10_000 });

  const credentials = new Map<WalletKey, { clientId: string; clientSecret: string }>();
  const startHub = (i: number): Promise<void> => {
    const started = startHubServer({ url, dataDir, port: ports[i] ?? 0, background: true, timeoutMs: 180_000, name: `hub ${i}` });
    hubs[i] = started.child;
    return started.ready;
  };

  /** Starts a hub again, retrying while the database it needs to start is itself down or frozen. */
  const restartHub = async (i: number) => {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        await startHub(i);
        return;
      } catch {
        await pause(1_000);
      }
    }
    throw new Error(`hub ${i} would not start again`);
  };

  beforeAll(async () => {
    cluster = await createPgCluster();
    url = await cluster.createDatabase('hutong_chaos');
    dataDir = mkdtempSync(join(tmpdir(), 'hutong-chaos-'));
    const config = loadConfig(
      { HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: url, HUTONG_RATE_LIMIT_PER_S: '1000000', HUTONG_WEBHOOKS: '0' },
      { port: 0, host: '127.0.0.1', operatorToken: 'op_chaos', demo: true },
    );
    // The test's own hub seeds the network and reads the books; it serves no client.
    hub = await createHub(config, { logger: createLogger({ level: process.env.LOG ?? 'silent' }) });
    const demo = await seedDemoNetwork(hub);
    parties = await openBank(hub, { count: CUSTOMERS, fundMinor: FUND_MINOR, tag: 'chaos' });
    for (let i = 0; i < HUBS; i++) ports.push(await freePort());
    await Promise.all(ports.map((_, i) => startHub(i)));
    balancer = await startHaproxy(ports);
    for (const w of ['wallet-a', 'wallet-b'] as const) {
      const d = demo.participants.find((p) => p.key === w);
      if (d === undefined) throw new Error(w);
      credentials.set(w, { clientId: d.clientId, clientSecret: d.clientSecret });
    }
  }, 300_000);

  afterAll(async () => {
    await balancer?.stop();
    for (const h of hubs) {
      if (h?.pid !== undefined) {
        try {
          process.kill(h.pid, 'SIGCONT');
        } catch {
          /* gone */
        }
      }
      h?.kill('SIGKILL');
    }
    await agent.close();
    await hub?.close();
    await cluster?.remove();
    if (dataDir !== undefined) {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    }
  });

  it('keeps every bank invariant through the faults and pays at once afterwards', async () => {
    const rand = random(SEED);
    const clients = payingClients({ base: () => balancer.base, agent, credentials, keyPrefix: 'chaos', paymentDeadlineMs: PAYMENT_DEADLINE_MS, retryPauseMs: 200, requestTimeoutMs: 30_000 });
    await clients.signIn();
    const { acknowledged } = clients;
    const payOnce = (c: number, from: BankParty, to: BankParty) => clients.payOnce(c, from, to);
    const accountIds = parties.map((p) => p.accountId);
    const before = await snapshot(hub.db, accountIds);
    let running = true;
    const client = async (c: number) => {
      while (running) {
        const [from, to] = randomPair(parties);
        if (!(await payOnce(c, from, to))) await pause(100);
      }
    };

    // Readers: one statement per snapshot, so a payment's two legs are seen together or not at all. A read that fails
    // (the database is down) is no violation; one that sees other money than there is, is.
    const reads = { ok: 0, failed: 0, wrongTotals: 0, belowFloor: 0 };
    const readers = Array.from({ length: 2 }, async () => {
      while (running) {
        try {
          const s = await snapshot(hub.db, accountIds);
          reads.ok++;
          if (s.total !== before.total || s.accounts !== accountIds.length) reads.wrongTotals++;
          reads.belowFloor += s.belowFloor;
        } catch {
          reads.failed++;
        }
        await pause(50);
      }
    });

    const load = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    const faults: Record<string, number> = { 'hub SIGKILL': 0, 'hub SIGSTOP': 0, 'PostgreSQL restart': 0, 'PostgreSQL SIGSTOP': 0 };
    const started = performance.now();
    await pause(2_000);
    // A killed hub starts again in the background (a start takes seconds) while the faults go on; at least one hub
    // stays up, and only a hub that is up is killed or paused.
    const up = new Set(hubs.map((_, i) => i));
    const restarts: Promise<void>[] = [];
    while (performance.now() - started < CHAOS_MS) {
      const roll = rand();
      const candidates = [...up];
      const victim = candidates[Math.floor(rand() * candidates.length)];
      if (roll < 0.35 && victim !== undefined && up.size >= 2) {
        faults['hub SIGKILL']!++;
        up.delete(victim);
        const child = hubs[victim];
        child?.removeAllListeners('exit');
        child?.kill('SIGKILL');
        const downMs = 500 + rand() * 1_500;
        restarts.push(pause(downMs).then(() => restartHub(victim)).then(() => void up.add(victim)));
      } else if (roll < 0.6 && victim !== undefined) {
        faults['hub SIGSTOP']!++;
        const pid = hubs[victim]?.pid;
        if (pid !== undefined) {
          process.kill(pid, 'SIGSTOP');
          await pause(1_000 + rand() * 4_000);
          process.kill(pid, 'SIGCONT');
        }
      } else if (roll < 0.8) {
        faults['PostgreSQL restart']!++;
        await cluster.restart(500 + rand() * 2_500);
      } else {
        faults['PostgreSQL SIGSTOP']!++;
        await cluster.pause(500 + rand() * 2_500);
      }
      await pause(1_500 + rand() * 3_000);
    }
    await Promise.all(restarts);
    const chaosEnded = performance.now();

    // After the faults: a fresh payment goes through promptly.
    let paidAgainMs = Number.POSITIVE_INFINITY;
    const [probeFrom, probeTo] = [parties[0]!, parties[1]!];
    while (performance.now() - chaosEnded < 30_000) {
      if (await payOnce(999, probeFrom, probeTo)) {
        paidAgainMs = performance.now() - chaosEnded;
        break;
      }
      await pause(100);
    }
    running = false;
    await load;
    await Promise.all(readers);

    // The hubs' own audit chainers (background jobs, every second) chained every record the load wrote, faults or not:
    // this hub (which runs no background job) only verifies.
    let audit = await hub.audit.verify();
    for (let i = 0; i < 100 && audit.ok && audit.unchained > 0; i++) {
      await pause(200);
      audit = await hub.audit.verify();
    }
    const injected = Object.values(faults).reduce((x, y) => x + y, 0);
    console.log(
      `chaos (seed ${SEED}, ${Math.round(CHAOS_MS / 1000)} s): ${injected} faults ${JSON.stringify(faults)}; ${acknowledged.length} payments acknowledged, ` +
        `${clients.refusedCount()} refused ${JSON.stringify(clients.refused)}; ${reads.ok} snapshots read (${reads.failed} failed while the database was away), ` +
        `${reads.wrongTotals} wrong totals, ${reads.belowFloor} below floor; paid again ${Math.round(paidAgainMs)} ms after the last fault; 0 lost, 0 duplicated`,
    );

    expect(injected).toBeGreaterThanOrEqual(Math.floor(CHAOS_MS / 10_000));
    expect(acknowledged.length).toBeGreaterThan(50);
    expect(paidAgainMs).toBeLessThan(10_000);
    expect(reads.wrongTotals).toBe(0);
    expect(reads.belowFloor).toBe(0);
    expect(audit.ok).toBe(true);
    expect(audit.ok && audit.unchained).toBe(0);
    await expectBooksHold(hub, clients, accountIds, before, acknowledged.slice(-10));
  }, CHAOS_MS + 300_000);
});

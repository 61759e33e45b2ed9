import type { ChildProcess } from 'node:child_process';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.ts';
import { openBank, randomPair, snapshot, type BankParty, type WalletKey } from '../ledger/p2p-bank.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { HAPROXY, startHaproxy, startHubServer, type Balancer } from '../support/haproxy.ts';
import { expectBooksHold, payingClients } from '../support/paying-clients.ts';
import { freePort } from '../support/pg-cluster.ts';

/**
 * Three hub processes behind HAProxy (Debian's package; `.ci/run` installs it), health-checked on /health, over one
 * PostgreSQL database. Clients pay over real HTTP through the balancer (quote, then confirm under an Idempotency-Key,
 * retried with the same key after a connection error, a 5xx or "in progress", as a wallet does) while the test kills a
 * hub with SIGKILL and starts it again, repeatedly. Afterwards: every acknowledged payment is in the books exactly once
 * (one payment, one ledger leg), a retry of its key from any hub answers the same payment, every key got a definitive
 * answer, and the money is conserved.
 */
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const engines = await availableEngines();
const HUBS = 3;
const CLIENTS = 12;
const CUSTOMERS = 40;
const FUND_MINOR = 100_000n;
const KILLS = 4;
const LOAD_MS_BEFORE_FIRST_KILL = 2_000;
const BETWEEN_KILLS_MS = 2_500;
const DOWN_MS = 1_000;
/** A client's deadline for one payment's definitive answer, retries included (above the hub's own deadlines). */
const PAYMENT_DEADLINE_MS = 40_000;

describe.skipIf(!engines.includes('postgres') || (HAPROXY === undefined && !IN_CI))('three hubs behind HAProxy, one killed repeatedly under load', () => {
  let t: TestHub;
  let parties: BankParty[];
  const hubs: (ChildProcess | undefined)[] = [];
  const ports: number[] = [];
  let balancer: Balancer | undefined;
  let base = '';
  const agent = new Agent({ connections: CLIENTS * 2, keepAliveTimeout: 10_000 });

  const startHub = (i: number): Promise<void> => {
    const url = t.database.url;
    if (url === undefined) throw new Error('the balancer test needs PostgreSQL');
    const started = startHubServer({ url, dataDir: t.dataDir, port: ports[i] ?? 0, name: `hub ${i}` });
    hubs[i] = started.child;
    return started.ready;
  };

  beforeAll(async () => {
    t = await startTestHub('postgres', { clock: systemClock, config: { rateLimitPerS: 1_000_000, webhooks: { enabled: false, pollMs: 500 } } });
    parties = await openBank(t.hub, { count: CUSTOMERS, fundMinor: FUND_MINOR, tag: 'lb' });
    for (let i = 0; i < HUBS; i++) ports.push(await freePort());
    await Promise.all(ports.map((_, i) => startHub(i)));
    balancer = await startHaproxy(ports);
    base = balancer.base;
  }, 180_000);

  afterAll(async () => {
    await balancer?.stop();
    for (const h of hubs) h?.kill('SIGKILL');
    await agent.close();
    await t?.close();
  });

  it('loses no acknowledged payment and pays none twice; a retried key answers the same payment from any hub', async () => {
    const credentials = new Map<WalletKey, { clientId: string; clientSecret: string }>();
    for (const w of ['wallet-a', 'wallet-b'] as const) {
      const d = t.demo.participants.find((p) => p.key === w);
      if (d === undefined) throw new Error(w);
      credentials.set(w, { clientId: d.clientId, clientSecret: d.clientSecret });
    }
    const clients = payingClients({ base: () => base, agent, credentials, keyPrefix: 'lb', paymentDeadlineMs: PAYMENT_DEADLINE_MS, retryPauseMs: 100 });
    await clients.signIn();
    const accountIds = parties.map((p) => p.accountId);
    const before = await snapshot(t.hub.db, accountIds);
    let running = true;
    const client = async (c: number) => {
      while (running) {
        const [from, to] = randomPair(parties);
        if (!(await clients.payOnce(c, from, to))) await new Promise((r) => setTimeout(r, 50));
      }
    };

    const load = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    await new Promise((r) => setTimeout(r, LOAD_MS_BEFORE_FIRST_KILL));
    const killed: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const victim = k % HUBS;
      killed.push(victim);
      const child = hubs[victim];
      child?.removeAllListeners('exit');
      child?.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, DOWN_MS));
      await startHub(victim);
      await new Promise((r) => setTimeout(r, BETWEEN_KILLS_MS));
    }
    running = false;
    await load;

    expect(clients.acknowledged.length).toBeGreaterThan(50);
    // A retry of an acknowledged key, through the balancer (to whichever hub), answers the same payment.
    await expectBooksHold(t.hub, clients, accountIds, before, clients.acknowledged.slice(0, 20));
    console.log(`balancer: ${clients.acknowledged.length} payments acknowledged, ${clients.refusedCount()} refused ${JSON.stringify(clients.refused)}, ${clients.stats.networkErrors} network errors seen by clients, ${killed.length} hub kills (SIGKILL), 0 lost, 0 duplicated`);
  }, 240_000);
});

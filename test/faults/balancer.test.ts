import type { ChildProcess } from 'node:child_process';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.ts';
import { formatMoney } from '../../src/platform/money.ts';
import { doubleMoves, openBank, randomPair, snapshot, type BankParty, type WalletKey } from '../ledger/p2p-bank.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { HAPROXY, startHaproxy, startHubServer, type Balancer } from '../support/haproxy.ts';
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
    const tokens = new Map<WalletKey, string>();
    for (const w of ['wallet-a', 'wallet-b'] as const) {
      const d = t.demo.participants.find((p) => p.key === w);
      if (d === undefined) throw new Error(w);
      const res = await fetch(`${base}/oauth/token`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: d.clientId, client_secret: d.clientSecret }).toString() });
      tokens.set(w, ((await res.json()) as { access_token: string }).access_token);
    }
    const post = async (wallet: WalletKey, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> => {
      const res = await fetch(`${base}${path}`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${tokens.get(wallet) ?? ''}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* a balancer's own error page */
      }
      return { status: res.status, body: parsed };
    };
    const retryable = (r: { status: number; body: any }) => r.status >= 500 || r.body?.error?.code === 'idempotency_in_progress';

    const before = await snapshot(t.hub.db, parties.map((p) => p.accountId));
    const acknowledged: { key: string; wallet: WalletKey; quoteId: string; paymentId: string }[] = [];
    const unresolved: string[] = [];
    const refused: Record<string, number> = {};
    let networkErrors = 0;
    let running = true;
    let n = 0;

    const client = async (c: number) => {
      while (running && n < 100_000) {
        const [from, to] = randomPair(parties);
        const q = await post(from.wallet, '/v1/transfers/quotes', { customerId: from.customerId, sourceAccountId: from.accountId, payee: { type: 'handle', value: to.handle }, sendAmount: formatMoney(BigInt(1 + Math.floor(Math.random() * 500)), 'CNY') }).catch(() => undefined);
        if (q === undefined || q.status !== 201) {
          networkErrors += q === undefined ? 1 : 0;
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        const key = `lb_${c}_${n++}`;
        const deadline = Date.now() + PAYMENT_DEADLINE_MS;
        for (;;) {
          const r = await post(from.wallet, '/v1/transfers/payments', { quoteId: q.body.id }, { 'idempotency-key': key }).catch(() => undefined);
          if (r !== undefined && r.status === 201) {
            acknowledged.push({ key, wallet: from.wallet, quoteId: q.body.id as string, paymentId: r.body.id as string });
            break;
          }
          if (r !== undefined && !retryable(r)) {
            const code = String(r.body?.error?.code ?? r.status);
            refused[code] = (refused[code] ?? 0) + 1;
            break;
          }
          if (r === undefined) networkErrors++;
          if (Date.now() > deadline) {
            unresolved.push(key);
            break;
          }
          await new Promise((res) => setTimeout(res, 100));
        }
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

    const accountIds = parties.map((p) => p.accountId);
    // Every key got a definitive answer within its deadline.
    expect(unresolved).toEqual([]);
    expect(acknowledged.length).toBeGreaterThan(50);
    // Every acknowledged payment is in the books, once: one payment row per id, one ledger leg per payment.
    const ids = acknowledged.map((a) => a.paymentId);
    expect(new Set(ids).size).toBe(ids.length);
    const [found] = await t.hub.db.query<{ n: bigint }>('select count(*) as n from payments where id = any($1::text[])', [ids]);
    expect(Number(found?.n ?? 0n)).toBe(ids.length);
    const moves = await doubleMoves(t.hub.db, accountIds);
    expect(moves.paymentsWithOtherLegCount).toBe(0);
    expect(moves.legs).toBe(moves.payments);
    // Money conserved, nothing below its floor, and the ledger's own checks hold.
    const after = await snapshot(t.hub.db, accountIds);
    expect(after.total).toBe(before.total);
    expect(after.belowFloor).toBe(0);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
    // A retry of an acknowledged key, through the balancer (to whichever hub), answers the same payment.
    for (const a of acknowledged.slice(0, 20)) {
      const again = await post(a.wallet, '/v1/transfers/payments', { quoteId: a.quoteId }, { 'idempotency-key': a.key });
      expect(again.status).toBe(201);
      expect(again.body.id).toBe(a.paymentId);
    }
    console.log(`balancer: ${acknowledged.length} payments acknowledged, ${Object.values(refused).reduce((x, y) => x + y, 0)} refused ${JSON.stringify(refused)}, ${networkErrors} network errors seen by clients, ${killed.length} hub kills (SIGKILL), 0 lost, 0 duplicated`);
  }, 240_000);
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHub } from '../../src/main.ts';
import { demoParticipantId, seedDemoNetwork } from '../../src/demo/seed.ts';
import { defaultKeyDir } from '../../src/platform/config.ts';
import { openPostgres } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { cardInTwoWallets, type WalletToken } from '../../src/demo/fixtures.ts';
import { createScratchPostgres, postgresReachable } from '../../test/support/engines.ts';
import type { AuthorizeData } from '../http-client.ts';
import { benchHubConfig, startHubProcesses, type HubProcesses } from '../hub-process.ts';
import { measureHttpLoad } from '../http-load.ts';
import { countingDb } from '../sql-counter.ts';
import type { Scenario } from './index.ts';

/**
 * authorize: over HTTP against a hub on a scratch PostgreSQL database, each operation is a contactless tap with a
 * fresh cryptogram (POST /v1/merchants/:id/payments/tap: de-tokenize, cryptogram + ATC, controls, risk, hosted hold
 * in the ledger) followed by its capture (POST /v1/payments/:id/capture), at one merchant (its settlement account is
 * the hot row). `--cards` cards (default 1,024), each held by its own bank customer with its own funding account and
 * each in two wallets: the taps spread over many cards, as a merchant's do, rather than piling thousands of
 * authorizations a minute on a few (whose spend and velocity checks would read them all, and whose velocity rules
 * would rightly decline them). Every risk rule is on at its default thresholds; a run long enough for a card to pass
 * them reports those declines as failures. Each token is tapped by one
 * client only (a token's ATC must rise with every tap); a client goes round its tokens. The load comes from a separate
 * process after a warm-up that is not measured (bench/http-load.ts).
 * Options: --seconds=N (measured) --warmup=N --clients=N (even) --cards=N --ops=N --pool=N --sql-detail.
 */
function option(args: readonly string[], name: string, fallback: number): number {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
}

const MERCHANT = 'mer_demo_merchant_a';

export const authorizeScenario: Scenario = {
  name: 'authorize',
  description: 'tap with a fresh cryptogram → authorization → capture over HTTP, PostgreSQL',
  async *run(args) {
    if (!(await postgresReachable())) throw new Error('authorize bench needs PostgreSQL (HUTONG_TEST_PG_URL)');
    const seconds = option(args, 'seconds', 15);
    const warmup = option(args, 'warmup', 4);
    const clients = Math.max(2, option(args, 'clients', 32));
    // At least one token per client (two per card).
    const cardCount = Math.min(10_000, Math.max(Math.ceil(clients / 2), option(args, 'cards', 1_024)));
    const maxOps = option(args, 'ops', 2_000_000);
    const pool = option(args, 'pool', 32);
    const hubCount = Math.min(4, Math.max(1, option(args, 'hubs', 1)));
    // The pool is shared out between the hub processes (PostgreSQL's max_connections is 100 here).
    const hubPool = Math.max(8, Math.floor(pool / hubCount));
    const sqlDetail = args.includes('--sql-detail');
    const scratch = await createScratchPostgres();
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-bench-'));
    const config = benchHubConfig({ databaseUrl: scratch.url, dataDir, pool: hubPool });
    const { db, counter } = countingDb(openPostgres({ url: scratch.url, maxConnections: hubPool }));
    let others: HubProcesses | undefined;
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
      // Every rule stays on at its default thresholds: spread over --cards cards, a card taps a handful of times in a run.
      const bankA = demoParticipantId('bank-a');
      const bank = (await hub.participants.get(bankA))!;
      // Every card's account is funded from bank-a's position at the hub: prefund it for all of them (money enters the
      // hub only through a participant's funded position).
      await hub.db.transaction(async (tx) => {
        const funded = await hub.liquidity.fundsIn(tx, { type: 'system' }, { participantId: bankA, currency: 'CNY', amountMinor: 100_000_000_000n * BigInt(cardCount), transferId: `bench-liquidity-${cardCount}` });
        if (!funded.ok) throw new Error(`bench liquidity: ${funded.error.code}`);
      });
      const walletTokens: WalletToken[] = [];
      // Issued and provisioned a few at a time (each is a transaction and two HTTP calls).
      const SETUP_CONCURRENCY = 8;
      const issued: { a: WalletToken; b: WalletToken }[] = [];
      for (let first = 0; first < cardCount; first += SETUP_CONCURRENCY) {
        const chunk = Array.from({ length: Math.min(SETUP_CONCURRENCY, cardCount - first) }, (_, k) => first + k);
        issued.push(
          ...(await Promise.all(
            chunk.map(async (i) => {
              const holder = await hub.db.transaction(async (tx) => {
                const c = await hub.customers.create(tx, { type: 'system' }, bank, { externalId: `bench-holder-${i}`, name: `Bench Holder ${i}`, kycLevel: 3 });
                if (!c.ok) throw new Error(c.error.code);
                return c.value.id;
              });
              return cardInTwoWallets(hub, call, { depositMinor: 100_000_000_000n, holderId: holder });
            }),
          )),
        );
        if (process.stderr.isTTY) process.stderr.write(`\r[authorize] cards ${issued.length}/${cardCount}`);
      }
      if (process.stderr.isTTY) process.stderr.write('\n');
      for (const card of issued) walletTokens.push(card.a, card.b);
      const merchantToken = await token('merchant-a');
      const data: AuthorizeData = { tag: 'b', merchantId: MERCHANT, headers: { authorization: `Bearer ${merchantToken}` }, tokens: walletTokens, clients };
      others = await startHubProcesses(hubCount - 1, { databaseUrl: scratch.url, dataDir, pool: hubPool });
      yield await measureHttpLoad({
        scenario: 'authorize',
        op: 'authorize',
        bases: [base, ...others.bases],
        hubPids: others.pids,
        clients,
        warmupSeconds: warmup,
        seconds,
        maxOps,
        data,
        database: new URL(scratch.url).pathname.slice(1),
        counter,
        requestsPerOp: 2,
        sqlDetail,
        analyze: () => hub.db.exec('analyze'),
        extra: { op: 'tap+capture', cards: cardCount, pool, hubs: hubCount },
      });
      const violations = await hub.ledger.checkInvariants();
      if (violations.length > 0) throw new Error(`ledger invariants violated after the bench: ${JSON.stringify(violations.slice(0, 3))}`);
    } finally {
      await others?.stop();
      await hub.close();
      await db.close();
      await scratch.drop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    }
  },
};

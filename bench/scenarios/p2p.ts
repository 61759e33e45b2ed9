import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHub, type Hub } from '../../src/main.ts';
import { demoParticipantId, seedDemoNetwork } from '../../src/demo/seed.ts';
import { defaultKeyDir } from '../../src/platform/config.ts';
import { openPostgres } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createScratchPostgres } from '../../test/support/engines.ts';
import type { P2pData } from '../http-client.ts';
import { benchHubConfig, startHubProcesses, type HubProcesses } from '../hub-process.ts';
import { measureHttpLoad } from '../http-load.ts';
import type { BenchResult } from '../recorder.ts';
import { countingDb } from '../sql-counter.ts';
import { benchBankAccount, startBankProcess, type BankProcess } from '../bank-process.ts';
import { backendCpuMs, processCpuMs } from '../proc.ts';
import { startHaproxy, type Balancer } from '../../test/support/haproxy.ts';
import type { Scenario } from './index.ts';

/**
 * p2p: alias lookup → quote → confirm over HTTP against a hub on PostgreSQL (scratch database). One op = one payment =
 * 3 HTTP calls. The load comes from a separate process (bench/http-load.ts) after a warm-up that is not measured.
 *
 * The network is a P2P network: `--payers` customers (default 2,000) at two wallets pay `--payees` customers at two
 * wallets (each payee has its own CNY account and handle alias), payer and payee drawn independently per payment.
 * Every risk rule is on, with its default thresholds: with 2,000 payers, a payer makes a handful of payments in a run,
 * as people do, rather than the dozens a minute that the velocity rule rightly steps up (a run long enough for that
 * reports those step-ups as failures). `--hot-payee`
 * adds a second measurement where every payment goes to ONE payee (its account row is the contention point); it is
 * reported on its own line (scenario `p2p-hot-payee`).
 *
 * Every SQL statement the hub sends through its Db is counted in process (bench/sql-counter.ts): `sql_per_op`
 * (BEGIN/COMMIT and the staged audit/outbox/idempotency writes that go out with the COMMIT are not included; they are
 * one per kind per transaction, see `tx_per_op`). `--sql-detail` prints the top statements by count to stderr.
 * CPU per payment: the hub's process, the PostgreSQL backends, and the load generator's process (all on this machine).
 *
 * `--balancer` (with `--hubs=N`) puts HAProxy (test/support/haproxy.ts, health-checked on /health) in front of the N
 * hub processes and measures twice in the same run: one hub direct (`p2p`) and every hub through the balancer
 * (`p2p-balancer`).
 *
 * `--connected` adds a measurement in the same run with every payer at a connected bank: the reference bank in its
 * own process (bench/bank-process.ts, its own books), asked to reserve over signed HTTP before the hub commits and
 * told to commit after (the connector outbox delivered every 100 ms, as the hub's background job does each second);
 * the payees are the same hosted customers. Reported as `p2p-connected`, with the bank's CPU per payment (its process
 * and the PostgreSQL backends of its own database) and its ratio to the hosted figure measured just before. The bank
 * keeps its books on PostgreSQL, as a bank's core system does; `--bank-pglite` keeps them in PGlite in its process
 * (WebAssembly: about three times the CPU per payment, all of it on the bank's one thread).
 *
 * Options: --seconds=N (measured) --warmup=N --max-ops=N --clients=N --payers=N --payees=N --pool=N --hubs=N
 * --balancer --hot-payee --no-network --sql-detail --bank-pglite.
 */
function option(args: readonly string[], name: string, fallback: number): number {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
}

interface Party {
  /** The demo key of the participant that calls the API for this customer (headersOf's key). */
  readonly participantKey: string;
  readonly customerId: string;
  readonly handle: string;
}

/** Parties made a few at a time (each is one transaction), in index order. */
const SETUP_CONCURRENCY = 8;

async function createParties(hub: Hub, kind: 'payer' | 'payee', count: number, fundMinor: bigint): Promise<Party[]> {
  const out: Party[] = [];
  for (let first = 0; first < count; first += SETUP_CONCURRENCY) {
    const chunk = Array.from({ length: Math.min(SETUP_CONCURRENCY, count - first) }, (_, k) => first + k);
    out.push(...(await Promise.all(chunk.map((i) => createParty(hub, kind, i, fundMinor)))));
    if (process.stderr.isTTY) process.stderr.write(`\r[p2p] ${kind}s ${out.length}/${count}`);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  return out;
}

async function createParty(hub: Hub, kind: 'payer' | 'payee', i: number, fundMinor: bigint): Promise<Party> {
  const m = hub.transfers;
  const participantKey = i % 2 === 0 ? 'wallet-a' : 'wallet-b';
  const participant = (await hub.participants.get(demoParticipantId(participantKey)))!;
  const handle = `bench.${kind}${i}`;
  return hub.db.transaction(async (tx) => {
    const c = await hub.customers.create(tx, { type: 'system' }, participant, { externalId: `bench-${kind}-${i}`, name: `Bench ${kind} ${i}`, kycLevel: 3 });
    if (!c.ok) throw new Error(c.error.code);
    const a = await m.accounts.openCustomerAccount(tx, { type: 'system' }, participant.id, c.value.id, 'CNY');
    if (!a.ok) throw new Error(a.error.code);
    if (fundMinor > 0n) {
      const d = await m.accounts.deposit(tx, { type: 'system' }, participant.id, a.value.id, fundMinor, 'CNY', `bench_fund_${kind}_${i}`);
      if (!d.ok) throw new Error(d.error.code);
    }
    const al = await m.aliases.register(tx, { type: 'system' }, participant, { customerId: c.value.id, type: 'handle', value: handle, accountId: a.value.id });
    if (!al.ok) throw new Error(al.error.code);
    return { participantKey, customerId: c.value.id, handle };
  });
}

export const p2pScenario: Scenario = {
  name: 'p2p',
  description: 'alias lookup → quote → confirm over HTTP, hub on PostgreSQL; many payers → many payees (--hot-payee: also one payee)',
  async *run(args): AsyncIterable<BenchResult> {
    const seconds = option(args, 'seconds', 15);
    const maxOps = Math.min(option(args, 'max-ops', 1_000_000), 2_000_000);
    const clients = option(args, 'clients', 64);
    const payerCount = Math.min(100_000, option(args, 'payers', 2_000));
    const payeeCount = option(args, 'payees', 200);
    const pool = option(args, 'pool', 32);
    const hubCount = Math.min(4, Math.max(1, option(args, 'hubs', 1)));
    // The pool is shared out between the hub processes (PostgreSQL's max_connections is 100 here).
    const hubPool = Math.max(8, Math.floor(pool / hubCount));
    const hotPayee = args.includes('--hot-payee');
    const network = !args.includes('--no-network');
    const sqlDetail = args.includes('--sql-detail');
    const throughBalancer = args.includes('--balancer');
    const connected = args.includes('--connected');
    const warmup = option(args, 'warmup', 4);
    const scratch = await createScratchPostgres();
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-bench-'));
    const { db, counter } = countingDb(openPostgres({ url: scratch.url, maxConnections: hubPool }));
    // --connected: the reference bank listens on plain http on loopback, which the hub accepts in demo mode only (both
    // measurements of the run then have it).
    const config = benchHubConfig({ databaseUrl: scratch.url, dataDir, pool: hubPool, demo: connected });
    let others: HubProcesses | undefined;
    let balancer: Balancer | undefined;
    let bank: BankProcess | undefined;
    let bankBooks: { url: string; drop: () => Promise<void> } | undefined;
    const hub = await createHub(config, { logger: createLogger({ level: 'silent' }), db });
    try {
      const demo = await seedDemoNetwork(hub);
      Object.assign(hub.transfers.aliases.limits, { customerPerS: 1e6, customerBurst: 1e6, participantPerS: 1e6, participantBurst: 1e6 });
      // Money enters customers' accounts only from their participant's funded position: prefund both wallets for
      // every payer's opening balance (payers alternate between wallet-a and wallet-b).
      await hub.db.transaction(async (tx) => {
        for (const key of ['wallet-a', 'wallet-b'] as const) {
          const funded = await hub.liquidity.fundsIn(tx, { type: 'system' }, { participantId: demoParticipantId(key), currency: 'CNY', amountMinor: 10_000_000_00n * BigInt(payerCount), transferId: `bench-liquidity-${key}-${payerCount}` });
          if (!funded.ok) throw new Error(`bench liquidity: ${funded.error.code}`);
        }
      });
      const payers = await createParties(hub, 'payer', payerCount, 10_000_000_00n);
      const payees = await createParties(hub, 'payee', payeeCount, 0n);
      const base = await hub.listen();
      const headersOf: Record<string, Record<string, string>> = {};
      for (const key of ['wallet-a', 'wallet-b'] as const) {
        const cred = demo.participants.find((p) => p.key === key)!;
        const tok = (await (
          await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }) })
        ).json()) as { access_token: string };
        headersOf[key] = { authorization: `Bearer ${tok.access_token}`, 'content-type': 'application/json' };
      }

      const started = await startHubProcesses(hubCount - 1, { databaseUrl: scratch.url, dataDir, pool: hubPool, aliasLimits: { ...hub.transfers.aliases.limits } });
      others = started;
      const bases = [base, ...started.bases];
      if (throughBalancer) balancer = await startHaproxy(bases.map((b) => Number(new URL(b).port)), { maxconn: Math.max(1000, clients * 4) });
      let run = 0;
      const measure = (scenario: string, hot: boolean, via: readonly string[] = bases, from: readonly Party[] = payers, extra: Record<string, number | string> = {}): Promise<BenchResult> =>
        measureHttpLoad({
          scenario,
          op: 'p2p',
          bases: via,
          clients,
          warmupSeconds: warmup,
          seconds,
          maxOps,
          data: { tag: `b${run++}`, headersOf, payers: from, payees, hotPayee: hot } satisfies P2pData,
          database: new URL(scratch.url).pathname.slice(1),
          counter,
          requestsPerOp: 3,
          sqlDetail,
          analyze: () => hub.db.exec('analyze'),
          hubPids: started.pids,
          extra: { payers: payers.length, payees: hot ? 1 : payees.length, pool, hubs: via.length === 1 && via[0] === base ? 1 : hubCount, ...(via[0] === balancer?.base ? { via: 'haproxy' } : {}), ...extra },
        });

      // Every payer has used the app before the measurement (its first request's one-time ownership lookup is not a
      // payment's cost), hosted and connected alike.
      await touchCustomers(base, headersOf, payers);
      let hostedResult: BenchResult | undefined;
      if (network && balancer !== undefined) {
        // The same run: one hub direct, then every hub through the balancer.
        yield await measure('p2p', false, [base]);
        yield await measure('p2p-balancer', false, [balancer.base]);
      } else if (network) {
        hostedResult = await measure('p2p', false);
        yield hostedResult;
      }
      if (hotPayee) yield await measure('p2p-hot-payee', true);
      if (connected) {
        // The hosted figure of the same run: the one just measured, or measured now.
        const measuredNow = hostedResult === undefined;
        const hosted = hostedResult ?? (await measure('p2p', false));
        bankBooks = args.includes('--bank-pglite') ? undefined : await createScratchPostgres();
        bank = await startBankProcess({ hubPublicJwk: await hub.connectors.publicJwk(), accounts: payerCount, balanceMinor: String(10_000_000_00n), databaseUrl: bankBooks?.url });
        const bankDatabase = bankBooks === undefined ? undefined : new URL(bankBooks.url).pathname.slice(1);
        const bankCpu = () => (processCpuMs(bank?.pid ?? 0) ?? 0) + (bankDatabase === undefined ? 0 : backendCpuMs(bankDatabase));
        const connectedPayers = await connectBenchBank(hub, bank, payerCount);
        const tokenRes = await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: connectedPayers.clientId, client_secret: connectedPayers.clientSecret }) });
        headersOf[BENCH_BANK_KEY] = { authorization: `Bearer ${((await tokenRes.json()) as { access_token: string }).access_token}`, 'content-type': 'application/json' };
        await touchCustomers(base, headersOf, connectedPayers.parties);
        // The background job's deliveries (retries, and messages whose lease ended), as main.ts runs it, here more
        // often; fresh commit messages go right after their decision (deliverSoon), as in production.
        let delivering = true;
        const delivery = (async () => {
          while (delivering) {
            await hub.connectors.deliverDue(512).catch(() => 0);
            await new Promise((r) => setTimeout(r, 100));
          }
        })();
        const bankCpu0 = bankCpu();
        const phases0 = await connectedPhases(hub);
        const started = performance.now();
        const result = await measure('p2p-connected', false, bases, connectedPayers.parties);
        const elapsedS = (performance.now() - started) / 1000;
        delivering = false;
        await delivery;
        const bankCpuMs = bankCpu() - bankCpu0;
        const ops = Math.max(1, Math.round(result.ops_per_s * elapsedS));
        if (measuredNow) yield hosted;
        // What each phase adds to a payment (mean over the warm-up and the measurement, from the hub's own histogram).
        const phases1 = await connectedPhases(hub);
        const phaseMs = (phase: string) => {
          const n = (phases1.get(phase)?.count ?? 0) - (phases0.get(phase)?.count ?? 0);
          return n === 0 ? '' : Math.round((((phases1.get(phase)?.sum ?? 0) - (phases0.get(phase)?.sum ?? 0)) / n) * 1e5) / 100;
        };
        yield {
          ...result,
          bank_cpu_ms_per_op: Math.round((bankCpuMs / ops) * 100) / 100,
          bank_books: bankBooks === undefined ? 'pglite' : 'postgres',
          vs_hosted: Math.round((result.ops_per_s / Math.max(1, hosted.ops_per_s)) * 100) / 100,
          reserve_ms: phaseMs('reserve'),
          decide_ms: phaseMs('decide'),
          p50_over_hosted_ms: Math.round((result.p50_ms - hosted.p50_ms) * 100) / 100,
        };
      }
      const violations = await hub.transfers.ledger.checkInvariants();
      if (violations.length > 0) throw new Error(`ledger invariants violated after the bench: ${JSON.stringify(violations.slice(0, 3))}`);
    } finally {
      await bank?.stop();
      await bankBooks?.drop();
      await balancer?.stop();
      await others?.stop();
      await hub.close();
      await db.close();
      await scratch.drop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    }
  },
};

const BENCH_BANK_KEY = 'bench-bank';

/** One read of each party's customer record through its participant (GET /v1/customers/{id}), a few at a time. */
async function touchCustomers(base: string, headersOf: Record<string, Record<string, string>>, parties: readonly Party[]): Promise<void> {
  for (let first = 0; first < parties.length; first += 16) {
    await Promise.all(
      parties.slice(first, first + 16).map(async (p) => {
        const res = await fetch(`${base}/v1/customers/${p.customerId}`, { headers: headersOf[p.participantKey] ?? {} });
        if (res.status !== 200) throw new Error(`bench: customer ${p.customerId} answered ${res.status}`);
        await res.arrayBuffer();
      }),
    );
  }
}

/** The hub's connected-phase histogram (hutong_connected_phase_seconds): sum (s) and count per phase. */
async function connectedPhases(hub: Hub): Promise<Map<string, { sum: number; count: number }>> {
  const out = new Map<string, { sum: number; count: number }>();
  const metric = hub.metrics.registry.getSingleMetric('hutong_connected_phase_seconds');
  if (metric === undefined) return out;
  for (const v of (await metric.get()).values as readonly { labels: Record<string, string | number>; value: number; metricName?: string }[]) {
    const phase = String(v.labels.phase ?? '');
    const entry = out.get(phase) ?? { sum: 0, count: 0 };
    if (v.metricName === 'hutong_connected_phase_seconds_sum') entry.sum = v.value;
    else if (v.metricName === 'hutong_connected_phase_seconds_count') entry.count = v.value;
    out.set(phase, entry);
  }
  return out;
}

/**
 * The bench's connected bank at the hub: a participant connected in CNY (the bank process's URL and key), prefunded
 * liquidity for its position, and `count` customers whose accounts live at the bank (their hub accounts are addresses).
 */
async function connectBenchBank(hub: Hub, bank: BankProcess, count: number): Promise<{ clientId: string; clientSecret: string; parties: Party[] }> {
  const system = { type: 'system' } as const;
  const id = 'pt_bench_connected_bank';
  const made = await hub.db.transaction(async (tx) => {
    const r = await hub.participants.create(tx, system, { id, kind: 'issuer', name: 'Bench connected bank', country: 'CN', currencies: ['CNY'] });
    if (!r.ok) throw new Error(`bench bank: ${r.error.message}`);
    const funded = await hub.liquidity.fundsIn(tx, system, { participantId: id, currency: 'CNY', amountMinor: 10_000_000_00n * BigInt(count), transferId: `bench-liquidity-connected-${count}` });
    if (!funded.ok) throw new Error(`bench bank liquidity: ${funded.error.code}`);
    const c = await hub.connections.set(tx, system, id, { currency: 'CNY', mode: 'connected', endpointUrl: bank.url, publicJwk: bank.publicJwk, deadlineMs: 10_000 });
    if (!c.ok) throw new Error(`bench bank connection: ${c.error.message}`);
    return r.value.credential;
  });
  const participant = await hub.participants.get(id);
  if (participant === undefined) throw new Error('bench bank: participant missing');
  const parties: Party[] = [];
  for (let first = 0; first < count; first += SETUP_CONCURRENCY) {
    const chunk = Array.from({ length: Math.min(SETUP_CONCURRENCY, count - first) }, (_, k) => first + k);
    parties.push(
      ...(await Promise.all(
        chunk.map((i) =>
          hub.db.transaction(async (tx): Promise<Party> => {
            const c = await hub.customers.create(tx, system, participant, { externalId: benchBankAccount(i), name: `Bench connected payer ${i}`, kycLevel: 3 });
            if (!c.ok) throw new Error(c.error.code);
            const a = await hub.transfers.accounts.openCustomerAccount(tx, system, id, c.value.id, 'CNY');
            if (!a.ok) throw new Error(a.error.code);
            const handle = `bench.cpayer${i}`;
            const al = await hub.transfers.aliases.register(tx, system, participant, { customerId: c.value.id, type: 'handle', value: handle, accountId: a.value.id });
            if (!al.ok) throw new Error(al.error.code);
            return { participantKey: BENCH_BANK_KEY, customerId: c.value.id, handle };
          }),
        ),
      )),
    );
  }
  return { clientId: made.id, clientSecret: made.clientSecret, parties };
}

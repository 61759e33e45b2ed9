import { randomBytes } from 'node:crypto';
import { systemClock } from '../../src/platform/clock.ts';
import { openPglite, openPostgres, type Db, type Tx } from '../../src/platform/db.ts';
import { createEffectBatcher, DEFAULT_BATCHER_LIMITS, type EffectBatcher, type EffectBatcherLimits } from '../../src/platform/effect-batcher.ts';
import { createIdempotency, type EffectResponse } from '../../src/platform/idempotency.ts';
import { migrate } from '../../src/platform/migrate.ts';
import { createVault, envKeySource } from '../../src/platform/vault.ts';
import { createLedger, type Ledger, type LedgerStats } from '../../src/ledger/ledger.ts';
import type { TransferInput } from '../../src/ledger/types.ts';
import { createScratchPostgres, postgresReachable } from '../../test/support/engines.ts';
import { createLatencyRecorder, runClosedLoop, summarize, type BenchResult, type LatencyRecorder } from '../recorder.ts';
import { machineCpu, processCpuMs } from '../proc.ts';
import type { Scenario } from './index.ts';

/**
 * ledger: the path every payment's money takes, against one transaction per transfer, on PostgreSQL (when reachable)
 * and PGlite, in the same run.
 *
 * The production path (`ledger_batched`): requests go through the effect batcher the hub's money-moving routes use
 * (src/platform/effect-batcher.ts, with the hub's limits: DEFAULT_BATCHER_LIMITS, as transfers' confirm route), each
 * under a fresh Idempotency-Key claimed and answered in the batch's transaction (the idempotency service), and the
 * batch's transfers are applied by ONE ledger.applyInTx call in that transaction: what transfers.confirmMany does for
 * a batch of P2P confirms, without the P2P business logic (quotes, limits, risk; `npm run bench -- p2p` measures that
 * over HTTP). One op = one transfer = one request.
 *
 * The baselines, same run, same accounts, same load generator:
 *  - `ledger_baseline`: one transaction per transfer running the same code (db.transaction → ledger.applyInTx of one
 *    transfer), no batcher, no idempotency key: what a hub without the batcher would do;
 *  - `ledger_baseline_naive`: the hand-written minimum, one transaction and 4 statements per transfer (lock both rows,
 *    two updates, one insert).
 * The batched line carries `baseline` (ops/s of ledger_baseline), `ratio` (batched ÷ baseline) and `ratio_naive`, and on
 * PostgreSQL here `cpu_ratio` / `cpu_ratio_naive`: CPU per transfer (hub + PostgreSQL) of the baseline ÷ the batched path's.
 * `ledger_hot_account`: the production path with every transfer crediting ONE merchant account (its row is the
 * contention point). `ledger_open_loop`: the production path at a fixed offered rate (--rate, default 60% of the
 * closed-loop throughput), each transfer timed from its scheduled arrival.
 *
 * Options: --seconds=N per measurement (default 5), --clients=N closed-loop clients (default 256; baselines use at
 * most 64), --warmup=N seconds, --engines=postgres,pglite, --batch=N (maxBatch), --inflight=N (maxInFlight),
 * --pool=N (PostgreSQL connections), --rate=N, --no-keys (no Idempotency-Key: the ledger alone).
 * On PostgreSQL on this machine, lines carry pg_cpu_us_per_op / node_cpu_us_per_op (CPU per transfer, which a busy
 * shared machine distorts far less than transfers/s) and avg_batch (transfers per applyInTx call).
 */

const ACCOUNT_COUNT = 10_000;
const FUNDING_MINOR = 1_000_000_000n;
const CURRENCY = 'CNY';

function option(args: readonly string[], name: string, fallback: number): number {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
}

interface Setup {
  readonly db: Db;
  /** The baselines' own connections (PostgreSQL): 64 transactions at once, apart from the batched path's pool. */
  readonly baselineDb: Db;
  readonly ledger: Ledger;
  readonly accountIds: string[];
  readonly hotAccountId: string;
  teardown(): Promise<void>;
}

async function setUp(engine: 'postgres' | 'pglite', pool: number): Promise<Setup> {
  let db: Db;
  let baselineDb: Db;
  let drop: () => Promise<void> = async () => undefined;
  if (engine === 'postgres') {
    const scratch = await createScratchPostgres();
    db = openPostgres({ url: scratch.url, maxConnections: pool });
    baselineDb = openPostgres({ url: scratch.url, maxConnections: 10 });
    drop = scratch.drop;
  } else {
    db = await openPglite(undefined);
    baselineDb = db;
  }
  await migrate(db);
  const now = new Date();
  await db.query(
    `insert into participants (id, kind, name, country, currencies, webhook_secret_sealed, status, created_at, updated_at)
     values ('par_bench', 'wallet', 'Bench', 'CN', '{CNY}', 'sealed', 'active', $1, $1)`,
    [now],
  );
  const ledger = createLedger({ db, clock: systemClock });
  const funding = await ledger.createAccount({ id: 'acc_funding', ownerParticipantId: 'par_bench', currency: CURRENCY, kind: 'funding' });
  const hot = await ledger.createAccount({ id: 'acc_hot', ownerParticipantId: 'par_bench', currency: CURRENCY, kind: 'merchant' });
  if (!funding.ok || !hot.ok) throw new Error('bench: cannot create accounts');
  const accountIds: string[] = [];
  for (let chunk = 0; chunk < ACCOUNT_COUNT / 1000; chunk++) {
    const created = await ledger.createAccounts(
      Array.from({ length: 1000 }, (_, i) => ({
        id: `acc_b${String(chunk * 1000 + i).padStart(5, '0')}`,
        ownerParticipantId: 'par_bench',
        currency: CURRENCY,
        kind: 'customer' as const,
        debitsMustNotExceedCredits: true,
      })),
    );
    if (!created.ok) throw new Error(`bench: ${created.error.code}`);
    accountIds.push(...created.value.map((a) => a.id));
    const funded = await db.transaction((tx) =>
      ledger.applyInTx(
        tx,
        created.value.map((a) => ({ id: `fund_${a.id}`, debitAccountId: 'acc_funding', creditAccountId: a.id, amountMinor: FUNDING_MINOR, currency: CURRENCY, purpose: 'bench_funding' })),
      ),
    );
    if (!funded.every((r) => r.ok)) throw new Error('bench: funding failed');
  }
  // Statistics as autovacuum (off on this machine's PostgreSQL) would have them.
  await db.exec('analyze');
  return {
    db,
    baselineDb,
    ledger,
    accountIds,
    hotAccountId: 'acc_hot',
    async teardown() {
      if (baselineDb !== db) await baselineDb.close();
      await db.close();
      await drop();
    },
  };
}

/**
 * The production path: an effect batcher (as the hub's money-moving routes build one, api/context.ts `batched`) whose
 * batch is ONE applyInTx call in the batch's transaction, every request under its own Idempotency-Key.
 */
async function productionPath(db: Db, ledger: Ledger, limits: EffectBatcherLimits): Promise<EffectBatcher<TransferInput>> {
  const vault = createVault({ db, clock: systemClock, keys: envKeySource(randomBytes(32).toString('base64'), 'kek_bench') });
  await vault.warm();
  const idempotency = createIdempotency({ db, clock: systemClock, vault });
  return createEffectBatcher<TransferInput>(
    { db, idempotency },
    async (tx: Tx, inputs): Promise<EffectResponse[]> =>
      (await ledger.applyInTx(tx, inputs)).map((r) =>
        r.ok ? { status: 201, body: { id: r.value.transfer.id, status: r.value.status }, commit: true } : { status: 422, body: { error: { code: r.error.code, message: r.error.message } }, commit: false },
      ),
    limits,
  );
}

/**
 * CPU per transfer (hub process + PostgreSQL backends) of a baseline ÷ the production path's: what batching saves,
 * which a shared machine's neighbours distort far less than transfers/s (they slow every line, each by its own share).
 */
function cpuRatios(batched: Record<string, number>, baseline: BenchResult, naive: BenchResult): Record<string, number> {
  const total = (r: Record<string, unknown>): number | undefined =>
    typeof r.pg_cpu_us_per_op === 'number' && typeof r.node_cpu_us_per_op === 'number' ? r.pg_cpu_us_per_op + r.node_cpu_us_per_op : undefined;
  const mine = total(batched);
  const base = total(baseline);
  const nv = total(naive);
  if (mine === undefined || mine === 0 || base === undefined || nv === undefined) return {};
  return { cpu_ratio: Math.round((base / mine) * 10) / 10, cpu_ratio_naive: Math.round((nv / mine) * 10) / 10 };
}

/** CPU and the ledger's own counters over a measured window: transfers per applyInTx call. */
function batchFigures(before: LedgerStats, after: LedgerStats): Record<string, number> {
  const calls = after.applyCalls - before.applyCalls;
  return { apply_calls: calls, avg_batch: calls === 0 ? 0 : Math.round((after.transfersApplied - before.transfersApplied) / calls) };
}

/**
 * CPU time spent so far by this database's server backends (PostgreSQL on this machine: /proc), by this process and by
 * the whole machine. Per-transfer CPU is what the design controls; transfers/s on a shared two-core machine also
 * measures the neighbours (other_cpu_pct says how much they took).
 */
interface CpuSample {
  readonly pg: Map<number, number>;
  readonly nodeMs: number;
  /** Busy time of the whole machine (/proc/stat, every CPU), and when it was read. */
  readonly machineMs: number;
  readonly atMs: number;
}

async function sampleCpu(db: Db): Promise<CpuSample | null> {
  if (db.engine !== 'postgres') return null;
  const pids = await db.query<{ pid: number }>(`select pid from pg_stat_activity where datname = current_database()`);
  const pg = new Map<number, number>();
  for (const { pid } of pids) {
    const ms = processCpuMs(pid);
    if (ms === undefined) return null; // not on this machine
    pg.set(pid, ms);
  }
  const usage = process.cpuUsage();
  return { pg, nodeMs: (usage.user + usage.system) / 1000, machineMs: machineCpu().busy * 10, atMs: performance.now() };
}

function cpuPerOp(before: CpuSample | null, after: CpuSample | null, ops: number): Record<string, number> {
  if (before === null || after === null || ops === 0) return {};
  let pgMs = 0;
  for (const [pid, ms] of after.pg) pgMs += ms - (before.pg.get(pid) ?? 0);
  const nodeMs = after.nodeMs - before.nodeMs;
  // What the rest of the machine used meanwhile (other processes, the kernel's own threads, PostgreSQL's background
  // processes), in % of one CPU: a run another job disturbed shows here.
  const otherPct = Math.round(((after.machineMs - before.machineMs - pgMs - nodeMs) * 100) / (after.atMs - before.atMs));
  return { pg_cpu_us_per_op: Math.round((pgMs * 1000) / ops), node_cpu_us_per_op: Math.round((nodeMs * 1000) / ops), other_cpu_pct: otherPct };
}

/**
 * Open loop: transfers arrive at a fixed rate whatever the ledger's latency (as real requests do), each timed from its
 * scheduled arrival, so queueing behind a slow batch counts. A closed loop of N clients instead measures N / throughput.
 */
async function runOpenLoop(options: { ratePerS: number; maxMs: number; recorder: LatencyRecorder; op: (n: number) => Promise<void> }): Promise<{ elapsedMs: number; issued: number }> {
  const started = performance.now();
  const intervalMs = 1000 / options.ratePerS;
  const running = new Set<Promise<void>>();
  let issued = 0;
  // Bounded by maxMs: each round issues what is due, then sleeps about a millisecond.
  while (performance.now() - started < options.maxMs) {
    const due = Math.floor((performance.now() - started) / intervalMs);
    for (; issued < due; issued++) {
      const scheduledAt = started + issued * intervalMs;
      const run: Promise<void> = options.op(issued).then(() => {
        options.recorder.record(scheduledAt);
        running.delete(run);
      });
      running.add(run);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(running);
  return { elapsedMs: performance.now() - started, issued };
}

function pick(ids: readonly string[]): string {
  return ids[Math.floor(Math.random() * ids.length)]!;
}

function randomPair(ids: readonly string[]): [string, string] {
  const debit = pick(ids);
  let credit = pick(ids);
  // Bounded: with 10,000 accounts a collision is rare, and three draws in a row are rarer still.
  for (let i = 0; i < 8 && credit === debit; i++) credit = pick(ids);
  return [debit, credit === debit ? ids[(ids.indexOf(debit) + 1) % ids.length]! : credit];
}

/** The naive design the batcher is measured against: one transaction, 4 round trips, per transfer. */
async function naiveTransfer(db: Db, id: string, debitId: string, creditId: string, amountMinor: bigint): Promise<boolean> {
  return db.transaction(
    async (tx) => {
      const rows = await tx.query(
        `select id, debits_pending, debits_posted, credits_posted, debits_must_not_exceed_credits, history_seq
           from ledger_accounts where id = any($1::text[]) order by id for update`,
        [[debitId, creditId].sort()],
      );
      const debit = rows.find((r) => r.id === debitId);
      if (debit === undefined || rows.length !== 2) return false;
      if (debit.debits_must_not_exceed_credits === true && (debit.debits_pending as bigint) + (debit.debits_posted as bigint) + amountMinor > (debit.credits_posted as bigint)) {
        return false;
      }
      const now = new Date();
      const d = await tx.query(
        `update ledger_accounts set debits_posted = debits_posted + $2, history_seq = history_seq + 1 where id = $1 returning debits_pending, debits_posted, credits_pending, credits_posted, history_seq`,
        [debitId, amountMinor],
      );
      const c = await tx.query(
        `update ledger_accounts set credits_posted = credits_posted + $2, history_seq = history_seq + 1 where id = $1 returning debits_pending, debits_posted, credits_pending, credits_posted, history_seq`,
        [creditId, amountMinor],
      );
      const [dr, cr] = [d[0]!, c[0]!];
      // The transfer row carries both accounts' statement entries (seq and balances after).
      await tx.query(
        `insert into ledger_transfers (id, kind, debit_account_id, credit_account_id, amount_minor, currency, purpose, metadata, linked, fingerprint, created_at,
                debit_seq, debit_debits_pending, debit_debits_posted, debit_credits_pending, debit_credits_posted,
                credit_seq, credit_debits_pending, credit_debits_posted, credit_credits_pending, credit_credits_posted)
         values ($1, 'single_phase', $2, $3, $4, $5, 'bench', '{}', false, $1, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
        [id, debitId, creditId, amountMinor, CURRENCY, now, dr.history_seq, dr.debits_pending, dr.debits_posted, dr.credits_pending, dr.credits_posted,
          cr.history_seq, cr.debits_pending, cr.debits_posted, cr.credits_pending, cr.credits_posted],
      );
      return true;
    },
    { retries: 10 },
  );
}

async function* runLedger(args: readonly string[]): AsyncIterable<BenchResult> {
  const seconds = option(args, 'seconds', 5);
  const engineArg = args.find((a) => a.startsWith('--engines='))?.slice('--engines='.length);
  const wanted = engineArg === undefined ? ['postgres', 'pglite'] : engineArg.split(',');
  const engines: ('postgres' | 'pglite')[] = [];
  if (wanted.includes('postgres') && (await postgresReachable())) engines.push('postgres');
  if (wanted.includes('pglite')) engines.push('pglite');
  const runTag = randomBytes(3).toString('hex');
  const keyed = !args.includes('--no-keys');
  for (const engine of engines) {
    const clients = option(args, 'clients', 256);
    const baselineClients = Math.min(clients, 64);
    const limits: EffectBatcherLimits = {
      ...DEFAULT_BATCHER_LIMITS,
      maxBatch: option(args, 'batch', DEFAULT_BATCHER_LIMITS.maxBatch),
      maxInFlight: option(args, 'inflight', DEFAULT_BATCHER_LIMITS.maxInFlight),
      maxQueue: 100_000,
    };
    const pool = option(args, 'pool', 10);
    const warmupS = option(args, 'warmup', 2);
    const params = { max_batch: limits.maxBatch, max_in_flight: limits.maxInFlight, idempotency_keys: keyed, ...(engine === 'postgres' ? { pool } : {}) };
    const setup = await setUp(engine, pool);
    try {
      const maxMs = seconds * 1000;
      const maxOps = 2_000_000;
      const tag = `${runTag}_${engine}`;
      const batcher = await productionPath(setup.db, setup.ledger, limits);
      let rejected = 0;
      const transfer = (id: string, debit: string, credit: string): TransferInput => ({ id, debitAccountId: debit, creditAccountId: credit, amountMinor: BigInt(1 + Math.floor(Math.random() * 100)), currency: CURRENCY, purpose: 'bench' });
      const viaProduction = async (id: string, debit: string, credit: string): Promise<void> => {
        const answer = await batcher.submit(keyed ? { scope: 'par_bench', key: id, hash: id } : undefined, transfer(id, debit, credit));
        if (!answer.ok || answer.value.status !== 201) rejected++;
      };

      // The baselines first, so that the production line can carry them.
      const baselineRecorder = createLatencyRecorder();
      let baselineFailed = 0;
      const baselineCpu = await sampleCpu(setup.db);
      const baselineMs = await runClosedLoop({
        clients: baselineClients,
        maxOps,
        maxMs: Math.min(maxMs, 4000),
        recorder: baselineRecorder,
        op: async (_c, n) => {
          const [debit, credit] = randomPair(setup.accountIds);
          const [r] = await setup.baselineDb.transaction((tx) => setup.ledger.applyInTx(tx, [transfer(`bl_${tag}_${n}`, debit, credit)]), { retries: 10 });
          if (r?.ok !== true) baselineFailed++;
        },
      });
      const baseline = summarize('ledger_baseline', engine, baselineRecorder, baselineMs, { clients: baselineClients, failed: baselineFailed, ...cpuPerOp(baselineCpu, await sampleCpu(setup.db), baselineRecorder.count) });

      const naiveRecorder = createLatencyRecorder();
      let naiveFailed = 0;
      const naiveCpu = await sampleCpu(setup.db);
      const naiveMs = await runClosedLoop({
        clients: baselineClients,
        maxOps,
        maxMs: Math.min(maxMs, 4000),
        recorder: naiveRecorder,
        op: async (_c, n) => {
          const [debit, credit] = randomPair(setup.accountIds);
          if (!(await naiveTransfer(setup.baselineDb, `nv_${tag}_${n}`, debit, credit, BigInt(1 + Math.floor(Math.random() * 100))))) naiveFailed++;
        },
      });
      const naive = summarize('ledger_baseline_naive', engine, naiveRecorder, naiveMs, { clients: baselineClients, failed: naiveFailed, ...cpuPerOp(naiveCpu, await sampleCpu(setup.db), naiveRecorder.count) });

      // Warm-up of the production path (JIT, the batcher's connection, plans): not recorded.
      await runClosedLoop({
        clients,
        maxOps,
        maxMs: warmupS * 1000,
        recorder: createLatencyRecorder(1),
        op: async (_c, n) => {
          const [debit, credit] = randomPair(setup.accountIds);
          await viaProduction(`wu_${tag}_${n}`, debit, credit);
        },
      });
      rejected = 0;

      const batchedRecorder = createLatencyRecorder();
      const batchedStats = setup.ledger.stats();
      const batchedCpu = await sampleCpu(setup.db);
      const batchedMs = await runClosedLoop({
        clients,
        maxOps,
        maxMs,
        recorder: batchedRecorder,
        op: async (_c, n) => {
          const [debit, credit] = randomPair(setup.accountIds);
          await viaProduction(`bt_${tag}_${n}`, debit, credit);
        },
      });
      const batchedCpuAfter = await sampleCpu(setup.db);
      const batchedRate = batchedRecorder.count / batchedMs;
      const batchedCpuFigures = cpuPerOp(batchedCpu, batchedCpuAfter, batchedRecorder.count);
      yield summarize('ledger_batched', engine, batchedRecorder, batchedMs, {
        baseline: baseline.ops_per_s,
        ratio: Math.round((batchedRate / (baselineRecorder.count / baselineMs)) * 10) / 10,
        ratio_naive: Math.round((batchedRate / (naiveRecorder.count / naiveMs)) * 10) / 10,
        clients,
        warmup_s: warmupS,
        ...params,
        failed: rejected,
        ...batchedCpuFigures,
        ...cpuRatios(batchedCpuFigures, baseline, naive),
        ...batchFigures(batchedStats, setup.ledger.stats()),
      });

      // Latency at a fixed offered load: open loop at --rate.
      rejected = 0;
      const rate = option(args, 'rate', Math.max(100, Math.round(0.6 * batchedRate * 1000)));
      const openRecorder = createLatencyRecorder();
      const openStats = setup.ledger.stats();
      const openCpu = await sampleCpu(setup.db);
      const open = await runOpenLoop({
        ratePerS: rate,
        maxMs,
        recorder: openRecorder,
        op: async (n) => {
          const [debit, credit] = randomPair(setup.accountIds);
          await viaProduction(`ol_${tag}_${n}`, debit, credit);
        },
      });
      yield summarize('ledger_open_loop', engine, openRecorder, open.elapsedMs, { baseline: baseline.ops_per_s, rate_per_s: rate, ...params, failed: rejected, ...cpuPerOp(openCpu, await sampleCpu(setup.db), openRecorder.count), ...batchFigures(openStats, setup.ledger.stats()) });

      rejected = 0;
      const hotRecorder = createLatencyRecorder();
      const hotStats = setup.ledger.stats();
      const hotCpu = await sampleCpu(setup.db);
      const hotMs = await runClosedLoop({
        clients,
        maxOps,
        maxMs,
        recorder: hotRecorder,
        op: async (_c, n) => viaProduction(`ht_${tag}_${n}`, pick(setup.accountIds), setup.hotAccountId),
      });
      yield summarize('ledger_hot_account', engine, hotRecorder, hotMs, {
        baseline: baseline.ops_per_s,
        ratio: Math.round((hotRecorder.count / hotMs / (baselineRecorder.count / baselineMs)) * 10) / 10,
        clients,
        ...params,
        failed: rejected,
        ...cpuPerOp(hotCpu, await sampleCpu(setup.db), hotRecorder.count),
        ...batchFigures(hotStats, setup.ledger.stats()),
      });
      yield baseline;
      yield naive;
      const violations = await setup.ledger.checkInvariants();
      if (violations.length > 0) throw new Error(`bench: invariants violated: ${JSON.stringify(violations)}`);
    } finally {
      await setup.teardown();
    }
  }
}

export const ledgerScenario: Scenario = {
  name: 'ledger',
  description: 'the payment path (effect batcher + idempotency + applyInTx per batch) vs one transaction per transfer, PostgreSQL and PGlite',
  run: runLedger,
};

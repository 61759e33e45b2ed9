import { randomBytes } from 'node:crypto';
import { systemClock } from '../../src/platform/clock.ts';
import { openPglite, openPostgres, type Db } from '../../src/platform/db.ts';
import { migrate } from '../../src/platform/migrate.ts';
import { createLedger, DEFAULT_BATCH_OPTIONS, type BatchOptions, type Ledger, type LedgerEngineStats } from '../../src/ledger/ledger.ts';
import { createScratchPostgres, postgresReachable } from '../../test/support/engines.ts';
import { createLatencyRecorder, runClosedLoop, summarize, type BenchResult, type LatencyRecorder } from '../recorder.ts';
import { machineCpu, processCpuMs } from '../proc.ts';
import type { Scenario } from './index.ts';

/**
 * ledger: the batching engine against a naive one-transaction-per-transfer baseline, on PostgreSQL (when reachable)
 * and PGlite. Options: --seconds=N per measurement, --clients=N concurrent submitters (closed loop), --rate=N transfers/s
 * offered in the open-loop run (default: 20,000 on PostgreSQL, the target of issue 3; 60% of the closed-loop
 * throughput on PGlite), --warmup=N seconds of batched load before (a) is measured, --engines=postgres,pglite,
 * --batch=N (maxBatchSize), --wait=N (maxWaitMs), --inflight=N (maxInFlight), --pool=N (PostgreSQL connections),
 * --cold (rememberRows: false: every batch reads its rows first).
 * The baseline runs first and writes balances behind the back of the ledger that created the accounts: the engine is
 * then measured on a new ledger instance (a hub process started after it, remembering nothing), whose warm-up reads
 * the accounts once (as a hub process that has been running has) and warms up the JIT. Every line says which
 * parameters it ran with.
 * On PostgreSQL on this machine, lines carry pg_cpu_us_per_op / node_cpu_us_per_op: CPU per transfer, which a busy
 * shared machine distorts far less than transfers/s. The engine's lines carry its own counters for the window: batches
 * written, avg_batch (transfers per batch), lost_races (writes refused because a row changed) and sent_behind_pct (batches
 * sent while the one before was still being written: the pipeline kept full).
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
  /**
   * The baseline's own connections (PostgreSQL): it runs 64 transactions at once, and opening every connection of the
   * engine's pool would leave the engine's statements going round all of them (postgres.js takes the idle connection
   * that has been idle longest), each batch on a backend whose caches have gone cold: up to a third more CPU per
   * transfer on this machine. The engine's pool only opens what the engine itself needs.
   */
  readonly baselineDb: Db;
  /** The engine measured; replaced by restartLedger(). */
  readonly ledger: Ledger;
  /**
   * A new ledger instance on the same database, as a hub process started after the baseline: it remembers nothing and
   * reads each account the first time a batch needs it. The instance that created and funded the accounts remembers
   * them as they were before the baseline wrote behind its back; each of its batches touching such an account would
   * fail validation and be computed again (HL001), a cost of the bench's order, not of the workload.
   */
  restartLedger(): Promise<void>;
  readonly accountIds: string[];
  readonly hotAccountId: string;
  teardown(): Promise<void>;
}

async function setUp(engine: 'postgres' | 'pglite', pool: number, batch: BatchOptions): Promise<Setup> {
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
  let ledger = createLedger({ db, clock: systemClock, batch });
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
    const funded = await ledger.submit(
      created.value.map((a) => ({ id: `fund_${a.id}`, debitAccountId: 'acc_funding', creditAccountId: a.id, amountMinor: FUNDING_MINOR, currency: CURRENCY, purpose: 'bench_funding' })),
    );
    if (!funded.every((r) => r.ok)) throw new Error('bench: funding failed');
  }
  // Statistics as autovacuum (off on this machine's PostgreSQL) would have them: the baseline's plain statements are
  // planned on them (the engine's statements are key lookups with sequential scans off, whatever the statistics).
  await db.exec('analyze');
  return {
    db,
    baselineDb,
    get ledger() {
      return ledger;
    },
    async restartLedger() {
      await ledger.close();
      ledger = createLedger({ db, clock: systemClock, batch });
    },
    accountIds,
    hotAccountId: 'acc_hot',
    async teardown() {
      await ledger.close();
      if (baselineDb !== db) await baselineDb.close();
      await db.close();
      await drop();
    },
  };
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

/** The engine's own counters over a measured window: how big its batches were and how many writes lost a race. */
function engineFigures(before: LedgerEngineStats, after: LedgerEngineStats, transfers: number): Record<string, number> {
  const batches = after.batchesWritten - before.batchesWritten;
  return {
    batches,
    avg_batch: batches === 0 ? 0 : Math.round(transfers / batches),
    lost_races: after.lostRaces - before.lostRaces,
    sent_behind_pct: batches === 0 ? 0 : Math.round(((after.sentBehind - before.sentBehind) * 100) / batches),
  };
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
  for (const engine of engines) {
    // 160 closed-loop clients on PostgreSQL: Little's law, 20,000 transfers/s at ~8 ms each (the JSON line says so).
    const clients = option(args, 'clients', engine === 'postgres' ? 160 : 256);
    const batch: BatchOptions = {
      maxBatchSize: option(args, 'batch', DEFAULT_BATCH_OPTIONS.maxBatchSize),
      maxWaitMs: option(args, 'wait', DEFAULT_BATCH_OPTIONS.maxWaitMs),
      maxQueue: 50_000,
      maxInFlight: option(args, 'inflight', DEFAULT_BATCH_OPTIONS.maxInFlight),
      rememberRows: !args.includes('--cold'),
    };
    const pool = option(args, 'pool', 10);
    const warmupS = option(args, 'warmup', 2);
    const params = { max_batch: batch.maxBatchSize, max_wait_ms: batch.maxWaitMs, max_in_flight: engine === 'pglite' ? 1 : batch.maxInFlight, remember_rows: batch.rememberRows === true, ...(engine === 'postgres' ? { pool } : {}) };
    const setup = await setUp(engine, pool, batch);
    try {
      const maxMs = seconds * 1000;
      const maxOps = 2_000_000;
      const tag = `${runTag}_${engine}`;
      let rejected = 0;
      const submitOne = async (id: string, debit: string, credit: string): Promise<void> => {
        const [result] = await setup.ledger.submit([{ id, debitAccountId: debit, creditAccountId: credit, amountMinor: BigInt(1 + Math.floor(Math.random() * 100)), currency: CURRENCY, purpose: 'bench' }]);
        if (result === undefined || !result.ok) rejected++;
      };

      // (c) first, so that (a) can carry the baseline on its line.
      const baselineRecorder = createLatencyRecorder();
      let baselineFailed = 0;
      const baselineCpu = await sampleCpu(setup.db);
      const baselineMs = await runClosedLoop({
        clients: Math.min(clients, 64),
        maxOps,
        maxMs: Math.min(maxMs, 3000),
        recorder: baselineRecorder,
        op: async (_c, n) => {
          const [debit, credit] = randomPair(setup.accountIds);
          if (!(await naiveTransfer(setup.baselineDb, `nv_${tag}_${n}`, debit, credit, BigInt(1 + Math.floor(Math.random() * 100))))) baselineFailed++;
        },
      });
      const baseline = summarize('ledger_baseline', engine, baselineRecorder, baselineMs, {
        clients: Math.min(clients, 64),
        failed: baselineFailed,
        ...cpuPerOp(baselineCpu, await sampleCpu(setup.db), baselineRecorder.count),
      });

      // The engine starts after the baseline, as a process of its own (see restartLedger). Warm-up: not recorded.
      await setup.restartLedger();
      await runClosedLoop({
        clients,
        maxOps,
        maxMs: warmupS * 1000,
        recorder: createLatencyRecorder(1),
        op: async (_c, n) => {
          const [debit, credit] = randomPair(setup.accountIds);
          await submitOne(`wu_${tag}_${n}`, debit, credit);
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
          await submitOne(`bt_${tag}_${n}`, debit, credit);
        },
      });
      const batchedCpuAfter = await sampleCpu(setup.db);
      yield summarize('ledger_batched', engine, batchedRecorder, batchedMs, {
        clients,
        warmup_s: warmupS,
        ...params,
        failed: rejected,
        baseline_ops_per_s: baseline.ops_per_s,
        speedup: Math.round((batchedRecorder.count / batchedMs / (baselineRecorder.count / baselineMs)) * 10) / 10,
        ...cpuPerOp(batchedCpu, batchedCpuAfter, batchedRecorder.count),
        ...engineFigures(batchedStats, setup.ledger.stats(), batchedRecorder.count),
      });

      // Latency at a fixed offered load: open loop at --rate.
      rejected = 0;
      const rate = option(args, 'rate', engine === 'postgres' ? 20_000 : Math.max(100, Math.round((0.6 * batchedRecorder.count * 1000) / batchedMs)));
      const openRecorder = createLatencyRecorder();
      const openStats = setup.ledger.stats();
      const openCpu = await sampleCpu(setup.db);
      const open = await runOpenLoop({
        ratePerS: rate,
        maxMs,
        recorder: openRecorder,
        op: async (n) => {
          const [debit, credit] = randomPair(setup.accountIds);
          await submitOne(`ol_${tag}_${n}`, debit, credit);
        },
      });
      yield summarize('ledger_open_loop', engine, openRecorder, open.elapsedMs, { rate_per_s: rate, ...params, failed: rejected, ...cpuPerOp(openCpu, await sampleCpu(setup.db), openRecorder.count), ...engineFigures(openStats, setup.ledger.stats(), openRecorder.count) });

      rejected = 0;
      const hotRecorder = createLatencyRecorder();
      const hotStats = setup.ledger.stats();
      const hotCpu = await sampleCpu(setup.db);
      const hotMs = await runClosedLoop({
        clients,
        maxOps,
        maxMs,
        recorder: hotRecorder,
        op: async (_c, n) => submitOne(`ht_${tag}_${n}`, pick(setup.accountIds), setup.hotAccountId),
      });
      yield summarize('ledger_hot_account', engine, hotRecorder, hotMs, { clients, ...params, failed: rejected, ...cpuPerOp(hotCpu, await sampleCpu(setup.db), hotRecorder.count), ...engineFigures(hotStats, setup.ledger.stats(), hotRecorder.count) });
      yield baseline;
      const violations = await setup.ledger.checkInvariants();
      if (violations.length > 0) throw new Error(`bench: invariants violated: ${JSON.stringify(violations)}`);
    } finally {
      await setup.teardown();
    }
  }
}

export const ledgerScenario: Scenario = {
  name: 'ledger',
  description: 'double-entry ledger: batched vs hot account vs one transaction per transfer (PostgreSQL and PGlite)',
  run: runLedger,
};

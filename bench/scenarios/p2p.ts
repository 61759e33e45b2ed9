import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createHub, type Hub } from '../../src/main.ts';
import { seedDemoNetwork } from '../../src/demo/seed.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { openPostgres, type Db, type Queryable, type Tx } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createScratchPostgres } from '../../test/support/engines.ts';
import { createLatencyRecorder, runClosedLoop, summarize, type BenchResult } from '../recorder.ts';
import type { Scenario } from './index.ts';

/**
 * p2p: alias lookup → quote → confirm over HTTP against an in-process hub on PostgreSQL (scratch database), driven by
 * concurrent fetch clients. One op = one payment = 3 HTTP calls (req_per_s reports the calls).
 *
 * The network is a P2P network: `--payers` customers at two wallets pay `--payees` customers at two wallets (each
 * payee has its own CNY account and handle alias), payer and payee drawn independently per payment. `--hot-payee`
 * adds a second measurement where every payment goes to ONE payee (its account row is the contention point); it is
 * reported on its own line (scenario `p2p-hot-payee`).
 *
 * Every SQL statement the hub sends is counted in process (a counting wrapper around the Db; pg_stat_statements is
 * not installed): `sql_per_payment` is statements per payment (BEGIN/COMMIT not included; they are `tx_per_payment`).
 * `--sql-detail` prints the top statements by count to stderr.
 *
 * The hub reaches PostgreSQL over TCP (127.0.0.1) by default; `--db-socket=/var/run/postgresql` uses the server's
 * Unix-domain socket instead (same host deployment: on this VM a TCP loopback write costs ~0.45 ms of CPU, a Unix
 * socket write ~0.07 ms). HTTP between the clients and the hub is always TCP loopback.
 *
 * The clients run in `--client-threads` worker threads (default 1; 0 = on the hub's own event loop, as the first
 * version of this bench did): node_* figures are the whole process, workers included.
 *
 * Options: --seconds=N (per measurement) --max-ops=N --clients=N --client-threads=N --payers=N --payees=N --pool=N
 * --hot-payee --no-network --sql-detail --db-socket=DIR.
 */
function option(args: readonly string[], name: string, fallback: number): number {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
}

interface SqlCounter {
  statements: number;
  transactions: number;
  readonly byText: Map<string, { n: number; ms: number }>;
  reset(): void;
}

/** Wraps a Db so that every statement (top level or inside a transaction) is counted and timed. */
function countingDb(inner: Db): { db: Db; counter: SqlCounter } {
  const counter: SqlCounter = {
    statements: 0,
    transactions: 0,
    byText: new Map(),
    reset() {
      this.statements = 0;
      this.transactions = 0;
      this.byText.clear();
    },
  };
  const counted = (q: Queryable): Queryable => ({
    async query<T extends object>(text: string, params?: readonly unknown[]) {
      const t0 = performance.now();
      try {
        return await q.query<T>(text, params);
      } finally {
        counter.statements++;
        const key = text.replace(/\s+/g, ' ').slice(0, 110);
        const e = counter.byText.get(key);
        if (e === undefined) counter.byText.set(key, { n: 1, ms: performance.now() - t0 });
        else {
          e.n++;
          e.ms += performance.now() - t0;
        }
      }
    },
  });
  const top = counted(inner);
  const db: Db = {
    engine: inner.engine,
    query: (text, params) => top.query(text, params),
    transaction: (fn, options) =>
      inner.transaction((tx: Tx) => {
        counter.transactions++;
        return fn(counted(tx));
      }, options),
    exec: (script) => inner.exec(script),
    close: () => inner.close(),
  };
  return { db, counter };
}

/** Busy and total jiffies of the whole machine (every core, every process: PostgreSQL, other users' runs too). */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * The HTTP clients, run in worker threads (plain JS, evaluated): the payer wallets are other systems, so their fetch
 * work should not share the hub's event loop. Each worker runs `clients` closed loops; ops are numbered through one
 * shared counter (bounded by maxOps) and the latencies come back at the end.
 */
const CLIENT_JS = `
const { parentPort, workerData: w } = require('node:worker_threads');
const issued = new Int32Array(w.shared);
const lat = [];
const failures = {};
const fail = (k) => { failures[k] = (failures[k] || 0) + 1; };
const started = performance.now();
async function op(n) {
  const payer = w.payers[(n * 7919) % w.payers.length];
  const payee = w.hot ? w.payees[0] : w.payees[(n * 104729 + 13) % w.payees.length];
  const headers = w.headersOf[payer.participantKey];
  const look = await fetch(w.base + '/v1/aliases/lookup?customerId=' + payer.customerId + '&type=handle&value=' + payee.handle, { headers });
  await look.arrayBuffer();
  if (look.status !== 200) return fail('lookup_' + look.status);
  const q = await fetch(w.base + '/v1/transfers/quotes', { method: 'POST', headers, body: JSON.stringify({ customerId: payer.customerId, payee: { type: 'handle', value: payee.handle }, sendAmount: { amount: '1.00', currency: 'CNY' } }) });
  const quote = await q.json();
  if (q.status !== 201) return fail('quote_' + ((quote.error && quote.error.code) || q.status));
  const p = await fetch(w.base + '/v1/transfers/payments', { method: 'POST', headers: { ...headers, 'idempotency-key': 'b' + w.tag + '-' + n }, body: JSON.stringify({ quoteId: quote.id }) });
  const paid = await p.json();
  if (p.status !== 201) fail('confirm_' + ((paid.error && paid.error.code) || p.status));
}
async function loop() {
  while (performance.now() - started < w.maxMs) {
    const n = Atomics.add(issued, 0, 1);
    if (n >= w.maxOps) return;
    const t0 = performance.now();
    try { await op(n); } catch (e) { fail('error_' + ((e && e.cause && e.cause.code) || (e && e.code) || 'fetch')); }
    lat.push(performance.now() - t0);
  }
}
Promise.all(Array.from({ length: w.clients }, loop)).then(() => parentPort.postMessage({ lat: Float64Array.from(lat), failures }));
`;

/** CPU milliseconds used so far by the PostgreSQL backends serving one database (found by their process titles). */
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

interface Party {
  readonly participantKey: 'wallet-a' | 'wallet-b';
  readonly customerId: string;
  readonly handle: string;
}

async function createParties(hub: Hub, kind: 'payer' | 'payee', count: number, fundMinor: bigint): Promise<Party[]> {
  const m = hub.transfers;
  const out: Party[] = [];
  for (let i = 0; i < count; i++) {
    const participantKey = i % 2 === 0 ? 'wallet-a' : 'wallet-b';
    const participant = (await hub.participants.get(demoParticipantId(participantKey)))!;
    const handle = `bench.${kind}${i}`;
    await hub.db.transaction(async (tx) => {
      const c = await hub.customers.create(tx, { type: 'system' }, participant, { externalId: `bench-${kind}-${i}`, name: `Bench ${kind} ${i}`, kycLevel: 3 });
      if (!c.ok) throw new Error(c.error.code);
      const a = await m.accounts.openCustomerAccount(tx, { type: 'system' }, participant.id, c.value.id, 'CNY');
      if (!a.ok) throw new Error(a.error.code);
      if (fundMinor > 0n) {
        const d = await m.accounts.deposit(tx, { type: 'system' }, participant.id, a.value.id, fundMinor, `bench_fund_${kind}_${i}`);
        if (!d.ok) throw new Error(d.error.code);
      }
      const al = await m.aliases.register(tx, { type: 'system' }, participant, { customerId: c.value.id, type: 'handle', value: handle, accountId: a.value.id });
      if (!al.ok) throw new Error(al.error.code);
      out.push({ participantKey, customerId: c.value.id, handle });
    });
  }
  return out;
}

export const p2pScenario: Scenario = {
  name: 'p2p',
  description: 'alias lookup → quote → confirm over HTTP, hub on PostgreSQL; many payers → many payees (--hot-payee: also one payee)',
  async *run(args): AsyncIterable<BenchResult> {
    const seconds = option(args, 'seconds', 15);
    const maxOps = Math.min(option(args, 'max-ops', 1_000_000), 2_000_000);
    const clients = option(args, 'clients', 64);
    const payerCount = option(args, 'payers', 200);
    const payeeCount = option(args, 'payees', 200);
    const pool = option(args, 'pool', 32);
    const hotPayee = args.includes('--hot-payee');
    const network = !args.includes('--no-network');
    const sqlDetail = args.includes('--sql-detail');
    const clientThreads = Math.min(Math.max(option(args, 'client-threads', 1), 0), 8);
    const scratch = await createScratchPostgres();
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-bench-'));
    const socketArg = args.find((a) => a.startsWith('--db-socket='));
    const socketDir = socketArg === undefined ? undefined : socketArg.slice('--db-socket='.length);
    let dbUrl = scratch.url;
    if (socketDir !== undefined) {
      if (!existsSync(join(socketDir, '.s.PGSQL.5432'))) throw new Error(`no PostgreSQL socket in ${socketDir}`);
      // postgres.js takes a socket directory from PGHOST when the URL names no host.
      const u = new URL(scratch.url);
      process.env.PGHOST = socketDir;
      process.env.PGUSER = decodeURIComponent(u.username);
      dbUrl = `postgres://${u.pathname.startsWith('/') ? '' : '/'}${u.pathname}`;
    }
    const { db, counter } = countingDb(openPostgres({ url: dbUrl, maxConnections: pool }));
    const config = loadConfig(
      { HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: scratch.url, HUTONG_RATE_LIMIT_PER_S: '1000000', HUTONG_DB_MAX_CONNECTIONS: String(pool), HUTONG_WEBHOOKS: '0' },
      { port: 0, host: '127.0.0.1', operatorToken: 'op_bench' },
    );
    const hub = await createHub(config, { logger: createLogger({ level: 'silent' }), db });
    try {
      const demo = await seedDemoNetwork(hub);
      Object.assign(hub.transfers.aliases.limits, { customerPerS: 1e6, customerBurst: 1e6, participantPerS: 1e6, participantBurst: 1e6 });
      const payers = await createParties(hub, 'payer', payerCount, 10_000_000_00n);
      const payees = await createParties(hub, 'payee', payeeCount, 0n);
      // The velocity rule would (rightly) step these payers up after 20 payments in 10 minutes; the bench measures the
      // payment path, so it is switched off for the two payer wallets (every other rule stays on).
      for (const key of ['wallet-a', 'wallet-b']) {
        await hub.db.query(`insert into risk_rules (participant_id, rule, params, enabled, updated_at) values ($1, 'velocity', '{"action":"step_up","score":40,"windowS":600,"maxCount":20}', false, now())`, [
          demoParticipantId(key),
        ]);
      }
      const base = await hub.listen();
      const headersOf: Record<string, Record<string, string>> = {};
      for (const key of ['wallet-a', 'wallet-b'] as const) {
        const cred = demo.participants.find((p) => p.key === key)!;
        const tok = (await (
          await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }) })
        ).json()) as { access_token: string };
        headersOf[key] = { authorization: `Bearer ${tok.access_token}`, 'content-type': 'application/json' };
      }

      let run = 0;
      const measure = async (scenario: string, payeeOf: (n: number) => Party): Promise<BenchResult> => {
        const recorder = createLatencyRecorder();
        const failures = new Map<string, number>();
        const tag = run++;
        counter.reset();
        const load1Before = loadavg()[0]!;
        const cpu0 = process.cpuUsage();
        const machine0 = machineCpu();
        const database = new URL(scratch.url).pathname.slice(1);
        const pg0 = backendCpuMs(database);
        let elapsed: number;
        if (clientThreads === 0) {
          elapsed = await runClosedLoop({
            clients,
            maxOps,
            maxMs: seconds * 1000,
            recorder,
            op: async (_c, n) => {
              // Payer and payee drawn independently (a multiplicative hash spreads consecutive ops over both sets).
              const payer = payers[(n * 7919) % payers.length]!;
              const payee = payeeOf(n);
              const headers = headersOf[payer.participantKey]!;
              const fail = (what: string) => failures.set(what, (failures.get(what) ?? 0) + 1);
              const look = await fetch(`${base}/v1/aliases/lookup?customerId=${payer.customerId}&type=handle&value=${payee.handle}`, { headers });
              await look.arrayBuffer();
              if (look.status !== 200) return void fail(`lookup_${look.status}`);
              const q = await fetch(`${base}/v1/transfers/quotes`, {
                method: 'POST',
                headers,
                body: JSON.stringify({ customerId: payer.customerId, payee: { type: 'handle', value: payee.handle }, sendAmount: { amount: '1.00', currency: 'CNY' } }),
              });
              const quote = (await q.json()) as { id?: string; error?: { code: string } };
              if (q.status !== 201) return void fail(`quote_${quote.error?.code ?? q.status}`);
              const p = await fetch(`${base}/v1/transfers/payments`, { method: 'POST', headers: { ...headers, 'idempotency-key': `b${tag}-${n}` }, body: JSON.stringify({ quoteId: quote.id }) });
              const paid = (await p.json()) as { error?: { code: string } };
              if (p.status !== 201) fail(`confirm_${paid.error?.code ?? p.status}`);
            },
          });
        } else {
          const shared = new SharedArrayBuffer(4);
          const perThread = Math.max(1, Math.ceil(clients / clientThreads));
          const t0 = performance.now();
          const outs = await Promise.all(
            Array.from({ length: clientThreads }, async () => {
              const worker = new Worker(CLIENT_JS, {
                eval: true,
                workerData: { shared, base, headersOf, payers, payees: scenario === 'p2p' ? payees : [payeeOf(0)], hot: scenario !== 'p2p', clients: perThread, maxOps, maxMs: seconds * 1000, tag },
              });
              try {
                return await new Promise<{ lat: Float64Array; failures: Record<string, number> }>((resolve, reject) => {
                  worker.once('message', resolve);
                  worker.once('error', reject);
                });
              } finally {
                await worker.terminate();
              }
            }),
          );
          elapsed = performance.now() - t0;
          for (const out of outs) {
            const now = performance.now();
            for (const ms of out.lat) recorder.record(now - ms);
            for (const [k, v] of Object.entries(out.failures)) failures.set(k, (failures.get(k) ?? 0) + v);
          }
        }
        const ops = recorder.count;
        const cpu = process.cpuUsage(cpu0);
        const machine1 = machineCpu();
        const pgMs = backendCpuMs(database) - pg0;
        const result = summarize(scenario, 'postgres', recorder, elapsed, {
          req_per_s: Math.round(((ops * 3) / elapsed) * 1000),
          sql_per_payment: ops === 0 ? 0 : Math.round((counter.statements / ops) * 10) / 10,
          tx_per_payment: ops === 0 ? 0 : Math.round((counter.transactions / ops) * 10) / 10,
          failures: [...failures.values()].reduce((a, b) => a + b, 0),
          clients,
          client_threads: clientThreads,
          payers: payers.length,
          payees: scenario === 'p2p' ? payees.length : 1,
          pool,
          db_transport: socketDir === undefined ? 'tcp' : 'unix',
          load1: `${load1Before.toFixed(2)}→${loadavg()[0]!.toFixed(2)}`,
          // The hub and its HTTP clients share this one Node process: its CPU per payment (user+system) and how busy
          // the event loop's core was; machine_busy is every core of the machine, every process.
          node_ms_per_payment: ops === 0 ? 0 : Math.round(((cpu.user + cpu.system) / 1000 / ops) * 100) / 100,
          node_sys_pct: Math.round((cpu.system / 1000 / elapsed) * 100),
          node_cpu_pct: Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 100),
          pg_ms_per_payment: ops === 0 ? 0 : Math.round((pgMs / ops) * 100) / 100,
          machine_busy_pct: Math.round(((machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total)) * 100),
        });
        if (failures.size > 0) console.error(`[p2p] ${scenario} failures: ${JSON.stringify(Object.fromEntries(failures))}`);
        if (sqlDetail) {
          const top = [...counter.byText.entries()].sort((a, b) => b[1].n - a[1].n).slice(0, 40);
          console.error(`[p2p] ${scenario}: statements per payment (count, mean ms)`);
          for (const [text, e] of top) console.error(`  ${(e.n / Math.max(1, ops)).toFixed(2).padStart(6)}  ${(e.ms / e.n).toFixed(2).padStart(7)}  ${text}`);
        }
        return result;
      };

      if (network) yield await measure('p2p', (n) => payees[(n * 104729 + 13) % payees.length]!);
      if (hotPayee) yield await measure('p2p-hot-payee', () => payees[0]!);
      const violations = await hub.transfers.ledger.checkInvariants();
      if (violations.length > 0) throw new Error(`ledger invariants violated after the bench: ${JSON.stringify(violations.slice(0, 3))}`);
    } finally {
      await hub.close();
      await db.close();
      await scratch.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

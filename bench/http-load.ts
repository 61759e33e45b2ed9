import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { backendCpuMs, machineCpu, processCpuMs } from './proc.ts';
import { createLatencyRecorder, summarize, type BenchResult } from './recorder.ts';
import { startFloorServer } from './floor.ts';
import type { SqlCounter } from './sql-counter.ts';

/**
 * Closed-loop HTTP load from a separate Node process (bench/http-client.ts), so that the hub's process and the load
 * generator's are measured apart: the wallets and terminals that call a hub are other systems. The client uses undici's
 * connection pool (keep-alive, one connection per virtual client), far cheaper per request than fetch.
 *
 * A warm-up runs first and is not measured (V8 compiles the hot paths in its first seconds; a hub runs for days). The
 * parent is told when the measured window starts, so that CPU counters are read over that window only.
 */
export interface HttpLoadOptions {
  /** Operation name, defined in bench/http-client.ts. */
  readonly op: 'p2p' | 'authorize' | 'floor';
  /** Every hub's base URL: the load generator spreads its calls over them in turn. */
  readonly bases: readonly string[];
  readonly clients: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  readonly maxOps: number;
  /** Whatever the operation needs (tokens, parties); structured-cloned to the client process. */
  readonly data: unknown;
  /** Called when the measured window starts (after the warm-up). */
  onMeasureStart?(): void;
}

export interface HttpLoadResult {
  /** Latency of every operation completed in the measured window, in ms. */
  readonly latenciesMs: Float64Array;
  readonly elapsedMs: number;
  readonly failures: Readonly<Record<string, number>>;
  readonly firstFailure: string | undefined;
  /** CPU (user + system) of the client process over the measured window. */
  readonly clientCpuMs: number;
}

const CLIENT = fileURLToPath(new URL('./http-client.ts', import.meta.url));

export async function runHttpLoad(options: HttpLoadOptions): Promise<HttpLoadResult> {
  const child = fork(CLIENT, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    return await new Promise<HttpLoadResult>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`bench client exited with ${code}`)));
      child.on('message', (raw) => {
        const message = raw as { type: 'measuring' } | ({ type: 'done'; latenciesMs: number[] } & Omit<HttpLoadResult, 'latenciesMs'>);
        if (message.type === 'measuring') options.onMeasureStart?.();
        else resolve({ ...message, latenciesMs: Float64Array.from(message.latenciesMs) });
      });
      child.send({ op: options.op, bases: options.bases, clients: options.clients, warmupSeconds: options.warmupSeconds, seconds: options.seconds, maxOps: options.maxOps, data: options.data });
    });
  } finally {
    child.removeAllListeners('exit');
    child.kill();
  }
}

/**
 * CPU of the hub (this process and any other hub processes), of PostgreSQL's backends for one database and of the
 * whole machine, read at two points.
 */
export function cpuMeter(database: string, hubPids: readonly number[] = []): { start(): void; stop(ops: number): Record<string, number> } {
  const otherHubsMs = () => hubPids.reduce((sum, pid) => sum + (processCpuMs(pid) ?? 0), 0);
  let hub0 = process.cpuUsage();
  let others0 = 0;
  let pg0 = 0;
  let machine0 = machineCpu();
  let t0 = performance.now();
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    start() {
      hub0 = process.cpuUsage();
      others0 = otherHubsMs();
      pg0 = backendCpuMs(database);
      machine0 = machineCpu();
      t0 = performance.now();
    },
    stop(ops) {
      const own = process.cpuUsage(hub0);
      const hubMs = (own.user + own.system) / 1000 + otherHubsMs() - others0;
      const pgMs = backendCpuMs(database) - pg0;
      const machine1 = machineCpu();
      const elapsed = performance.now() - t0;
      const per = (ms: number) => (ops === 0 ? 0 : round(ms / ops));
      return {
        hub_cpu_ms_per_op: per(hubMs),
        // Of one core, all hub processes together.
        hub_cpu_pct: Math.round((hubMs / elapsed) * 100),
        pg_cpu_ms_per_op: per(pgMs),
        machine_busy_pct: Math.round(((machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total)) * 100),
      };
    },
  };
}

/**
 * One measured line of an HTTP scenario: runs the load, and reports throughput and latency with the statements and
 * transactions per op (the hub's Db, counted), CPU per op of the hub, PostgreSQL and the load generator, and failures.
 */
export async function measureHttpLoad(
  options: Omit<HttpLoadOptions, 'onMeasureStart'> & {
    readonly scenario: string;
    /** The scratch database's name, for PostgreSQL's CPU. */
    readonly database: string;
    /** Hub processes other than this one (their CPU counts as the hub's). */
    readonly hubPids?: readonly number[];
    readonly counter: SqlCounter;
    readonly requestsPerOp: number;
    /** Print the statements per op to stderr. */
    readonly sqlDetail: boolean;
    /**
     * Refreshes the planner's statistics (ANALYZE): before the load, and again one second before the measured window,
     * once the warm-up has grown the tables the payments write. A PostgreSQL with autovacuum on (its default) keeps
     * them so; this machine's runs with autovacuum = off, where a table never analyzed is planned as if it had ten
     * pages, and statements prepared in the first seconds would keep sequential scans of tables that have grown.
     */
    readonly analyze: () => Promise<void>;
    readonly extra: Record<string, string | number | boolean>;
  },
): Promise<BenchResult> {
  const meter = cpuMeter(options.database, options.hubPids);
  const load1Before = loadavg()[0]!;
  await options.analyze();
  const reanalyze = setTimeout(() => void options.analyze().catch(() => undefined), Math.max(0, options.warmupSeconds * 1000 - 1000));
  const out = await runHttpLoad({
    ...options,
    onMeasureStart: () => {
      options.counter.reset();
      meter.start();
    },
  });
  clearTimeout(reanalyze);
  const ops = out.latenciesMs.length;
  const cpu = meter.stop(ops);
  const floor = await measureFloor(options.clients, Math.min(options.seconds, 5));
  const recorder = createLatencyRecorder();
  const now = performance.now();
  for (const ms of out.latenciesMs) recorder.record(now - ms);
  const per = (x: number) => (ops === 0 ? 0 : Math.round((x / ops) * 10) / 10);
  const failures = Object.values(out.failures).reduce((a, b) => a + b, 0);
  if (failures > 0) console.error(`[${options.scenario}] failures: ${JSON.stringify(out.failures)}`);
  if (options.sqlDetail) {
    const top = [...options.counter.byText.entries()].sort((x, y) => y[1].n - x[1].n).slice(0, 40);
    console.error(`[${options.scenario}] statements per op (count, mean ms)`);
    for (const [text, e] of top) console.error(`  ${(e.n / Math.max(1, ops)).toFixed(2).padStart(6)}  ${(e.ms / e.n).toFixed(2).padStart(7)}  ${text}`);
  }
  return summarize(options.scenario, 'postgres', recorder, out.elapsedMs, {
    req_per_s: Math.round(((ops * options.requestsPerOp) / out.elapsedMs) * 1000),
    failures,
    clients: options.clients,
    ...options.extra,
    warmup_s: options.warmupSeconds,
    sql_per_op: per(options.counter.statements),
    tx_per_op: per(options.counter.transactions),
    ...cpu,
    client_cpu_ms_per_op: ops === 0 ? 0 : Math.round((out.clientCpuMs / ops) * 100) / 100,
    load1: `${load1Before.toFixed(2)}→${loadavg()[0]!.toFixed(2)}`,
    // The same load generator against an empty Fastify route in this process, right after: what HTTP alone allows
    // here today, and the hub's requests as a fraction of it.
    floor_req_per_s: floor.reqPerS,
    floor_p99_ms: floor.p99Ms,
    vs_floor: floor.reqPerS === 0 ? 0 : Math.round((((ops * options.requestsPerOp) / out.elapsedMs) * 1000 * 1000) / floor.reqPerS) / 1000,
    ...(out.firstFailure !== undefined ? { first_failure: out.firstFailure.slice(0, 160) } : {}),
  });
}

/**
 * The floor of an HTTP scenario: the same load generator, with as many clients, against an empty route of a bare
 * Fastify server in this process (bench/floor.ts), after a one-second warm-up.
 */
export async function measureFloor(clients: number, seconds: number): Promise<{ reqPerS: number; p99Ms: number }> {
  const server = await startFloorServer();
  try {
    const out = await runHttpLoad({ op: 'floor', bases: [server.base], clients, warmupSeconds: 1, seconds, maxOps: 10_000_000, data: {} });
    const recorder = createLatencyRecorder();
    const now = performance.now();
    for (const ms of out.latenciesMs) recorder.record(now - ms);
    return { reqPerS: Math.round((out.latenciesMs.length / out.elapsedMs) * 1000), p99Ms: Math.round(recorder.percentileMs(99) * 100) / 100 };
  } finally {
    await server.close();
  }
}

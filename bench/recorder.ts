/** Per-operation latency samples with a hard cap on memory; percentiles by sorting once at the end. */
export interface LatencyRecorder {
  /** Records one operation that started at `startedAtMs` (performance.now()) and ended now. */
  record(startedAtMs: number): void;
  readonly count: number;
  percentileMs(p: number): number;
}

export function createLatencyRecorder(maxSamples = 2_000_000): LatencyRecorder {
  const samples = new Float64Array(maxSamples);
  let count = 0;
  let sorted: Float64Array | null = null;
  return {
    record(startedAtMs) {
      if (count < maxSamples) samples[count++] = performance.now() - startedAtMs;
      sorted = null;
    },
    get count() {
      return count;
    },
    percentileMs(p) {
      if (count === 0) return Number.NaN;
      sorted ??= samples.slice(0, count).sort();
      return sorted[Math.min(count - 1, Math.max(0, Math.ceil((p / 100) * count) - 1))]!;
    },
  };
}

/** One line of benchmark output. Extra fields are scenario-specific. */
export interface BenchResult {
  readonly scenario: string;
  readonly engine: string;
  readonly ops_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly [extra: string]: string | number | boolean;
}

export function summarize(scenario: string, engine: string, recorder: LatencyRecorder, elapsedMs: number, extra: Record<string, string | number | boolean> = {}): BenchResult {
  return {
    scenario,
    engine,
    ops_per_s: Math.round((recorder.count / elapsedMs) * 1000),
    p50_ms: round2(recorder.percentileMs(50)),
    p99_ms: round2(recorder.percentileMs(99)),
    ops: recorder.count,
    seconds: round2(elapsedMs / 1000),
    ...extra,
  };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Runs `clients` concurrent loops of `op` until `maxOps` operations or `maxMs` elapse, whichever is first. */
export async function runClosedLoop(options: { clients: number; maxOps: number; maxMs: number; recorder: LatencyRecorder; op: (client: number, n: number) => Promise<void> }): Promise<number> {
  const started = performance.now();
  let issued = 0;
  const client = async (c: number): Promise<void> => {
    while (issued < options.maxOps && performance.now() - started < options.maxMs) {
      const n = issued++;
      const t0 = performance.now();
      await options.op(c, n);
      options.recorder.record(t0);
    }
  };
  await Promise.all(Array.from({ length: options.clients }, (_, c) => client(c)));
  return performance.now() - started;
}

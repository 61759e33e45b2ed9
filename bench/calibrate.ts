import { createHash } from 'node:crypto';

/**
 * The time a fixed single-core workload takes on this machine right now, in ms (the median of three runs): JSON, small
 * objects and SHA-256, the kind of work a hub does per request. This shared VM's speed varies from day to day (by 2×
 * between two sessions of this project); a figure measured on a slow day is compared with another day's by this one.
 * Lower is faster.
 */
export function cpuCalibrationMs(): number {
  const runs: number[] = [];
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    let check = 0;
    for (let i = 0; i < 40_000; i++) {
      const text = JSON.stringify({ id: `tr_${i}`, amount: String(i * 7), currency: 'CNY', metadata: { n: i } });
      const parsed = JSON.parse(text) as { amount: string };
      check += createHash('sha256').update(text).digest()[0]! + parsed.amount.length;
    }
    runs.push(performance.now() - started);
    if (check < 0) throw new Error('unreachable');
  }
  runs.sort((a, b) => a - b);
  return Math.round(runs[1]!);
}

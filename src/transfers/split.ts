import { randomInt } from 'node:crypto';

/**
 * Pure money-splitting rules. All amounts are bigint minor units; the smallest share is one minor unit.
 *
 * Bill splits — rounding rule: each member's exact share is rounded DOWN to the minor unit, then the remainder
 * (always < number of members, in minor units) is handed out one unit at a time:
 *   - equal: to the first members in the order they were listed;
 *   - shares: to the members with the largest fractional part, ties broken by the order listed.
 * `amounts` must sum exactly to the total (no rounding at all). The result always sums exactly to the total.
 */
export function splitEqual(totalMinor: bigint, count: number): bigint[] {
  if (count < 1) throw new Error('splitEqual: no members');
  const n = BigInt(count);
  const base = totalMinor / n;
  const remainder = Number(totalMinor % n);
  return Array.from({ length: count }, (_, i) => base + (i < remainder ? 1n : 0n));
}

export function splitByShares(totalMinor: bigint, shares: readonly number[]): bigint[] {
  const weights = shares.map((s) => BigInt(s));
  const sum = weights.reduce((a, b) => a + b, 0n);
  if (sum <= 0n) throw new Error('splitByShares: shares sum to zero');
  const floors = weights.map((w) => (totalMinor * w) / sum);
  const fractions = weights.map((w, i) => ({ i, frac: (totalMinor * w) % sum }));
  let remainder = totalMinor - floors.reduce((a, b) => a + b, 0n);
  fractions.sort((a, b) => (a.frac === b.frac ? a.i - b.i : a.frac > b.frac ? -1 : 1));
  for (const { i } of fractions) {
    if (remainder === 0n) break;
    floors[i] = floors[i]! + 1n;
    remainder -= 1n;
  }
  return floors;
}

/**
 * Red packet (红包) random split: the "double-average" method (二倍均值法), made exact in integers. Each share is
 * drawn uniformly from [1, 2 × remaining / sharesLeft − 1] minor units (at least 1, leaving at least one unit for
 * every later share); the last share takes what remains. Every share's expectation is total / n whatever its
 * position. The draws are then shuffled (Fisher–Yates) so that claim order carries no information.
 * `rand(maxExclusive)` returns an integer in [0, maxExclusive) — crypto randomness by default, injectable in tests.
 */
export function splitRandom(totalMinor: bigint, count: number, rand: (maxExclusive: number) => number = cryptoRand): bigint[] {
  if (count < 1) throw new Error('splitRandom: no shares');
  if (totalMinor < BigInt(count)) throw new Error('splitRandom: total smaller than one minor unit per share');
  const out: bigint[] = [];
  let remaining = totalMinor;
  for (let left = count; left > 1; left--) {
    const n = BigInt(left);
    // Upper bound: twice the average, minus one, and never so much that a later share would get nothing.
    let max = (2n * remaining) / n - 1n;
    const cap = remaining - (n - 1n);
    if (max > cap) max = cap;
    if (max < 1n) max = 1n;
    const share = 1n + randomBigBelow(max, rand);
    out.push(share);
    remaining -= share;
  }
  out.push(remaining);
  for (let i = out.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function cryptoRand(maxExclusive: number): number {
  return randomInt(maxExclusive);
}

/** Uniform in [0, bound) for bigint bounds, built from 2^40 chunks of `rand` (bounded loop for rejection). */
function randomBigBelow(bound: bigint, rand: (maxExclusive: number) => number): bigint {
  if (bound <= 1n) return 0n;
  if (bound <= 2n ** 40n) return BigInt(rand(Number(bound)));
  const chunks = Math.ceil(bound.toString(2).length / 40);
  const space = 2n ** BigInt(40 * chunks);
  const limit = space - (space % bound);
  for (let attempt = 0; attempt < 64; attempt++) {
    let v = 0n;
    for (let c = 0; c < chunks; c++) v = (v << 40n) | BigInt(rand(2 ** 40));
    if (v < limit) return v % bound;
  }
  return 0n;
}

/**
 * Token buckets kept in process memory. With several hub processes each enforces its own share; the limits are
 * there to stop abuse and runaway clients, not to meter billing, so per-process accuracy is enough.
 */
export interface TokenBucketLimiter {
  /**
   * Takes `cost` tokens from the key's bucket; when empty, says how long until enough tokens return. `ratePerS`
   * overrides the limiter's rate for this key (a participant's own limit; its burst is twice the rate).
   */
  take(key: string, cost?: number, ratePerS?: number): { allowed: true } | { allowed: false; retryAfterMs: number };
}

/** Bound on tracked keys: the least recently refilled buckets are dropped past it (they would be full anyway). */
const MAX_BUCKETS = 100_000;

export function createTokenBucketLimiter(options: {
  ratePerS: (key: string) => number;
  burst?: (key: string) => number;
  nowMs: () => number;
}): TokenBucketLimiter {
  const buckets = new Map<string, { tokens: number; atMs: number }>();
  return {
    take(key, cost = 1, ratePerS) {
      const rate = ratePerS ?? options.ratePerS(key);
      const burst = ratePerS !== undefined ? ratePerS * 2 : (options.burst?.(key) ?? rate);
      const now = options.nowMs();
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        if (buckets.size >= MAX_BUCKETS) {
          const oldest = buckets.keys().next().value;
          if (oldest !== undefined) buckets.delete(oldest);
        }
        bucket = { tokens: burst, atMs: now };
      } else {
        buckets.delete(key); // re-insert below keeps Map order = least recently used first
        bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.atMs) / 1000) * rate);
        bucket.atMs = now;
      }
      buckets.set(key, bucket);
      if (bucket.tokens >= cost) {
        bucket.tokens -= cost;
        return { allowed: true };
      }
      return { allowed: false, retryAfterMs: Math.ceil(((cost - bucket.tokens) / rate) * 1000) };
    },
  };
}

/**
 * Counts failures (wrong credentials) per key and locks a key out for a cooling-off period once it has failed
 * `maxFailures` times within `windowMs`: while locked, every attempt is refused, a correct one too, so that guessing
 * cannot go on at the rate the endpoint answers. Only failures count; a success clears nothing (a success of one
 * client must not reset the counters another client, or the same source address, built up). In process memory like
 * the token buckets: with several hub processes each enforces its own share.
 */
export interface FailureLimiter {
  /** Whether any of the keys is locked out now, and for how long at most. */
  check(keys: readonly string[]): { allowed: true } | { allowed: false; retryAfterMs: number };
  /** Counts one failure against each key; a key that reaches the limit is locked from now. */
  fail(keys: readonly string[]): void;
}

export interface FailureLimits {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly lockMs: number;
  /** Bound on tracked keys: the least recently failed are dropped past it. */
  readonly maxKeys: number;
}

export const AUTH_FAILURE_LIMITS: FailureLimits = { maxFailures: 10, windowMs: 60_000, lockMs: 60_000, maxKeys: 50_000 };

export function createFailureLimiter(options: { nowMs: () => number; limits?: Partial<FailureLimits> }): FailureLimiter {
  const limits = { ...AUTH_FAILURE_LIMITS, ...options.limits };
  // Insertion order = least recently failed first (a failing key is re-inserted), so eviction drops the stalest.
  const entries = new Map<string, { windowStartMs: number; failures: number; lockedUntilMs: number }>();
  return {
    check(keys) {
      const now = options.nowMs();
      let retryAfterMs = 0;
      for (const key of keys) {
        const entry = entries.get(key);
        if (entry !== undefined && entry.lockedUntilMs > now) retryAfterMs = Math.max(retryAfterMs, entry.lockedUntilMs - now);
      }
      return retryAfterMs > 0 ? { allowed: false, retryAfterMs } : { allowed: true };
    },
    fail(keys) {
      const now = options.nowMs();
      for (const key of keys) {
        let entry = entries.get(key);
        if (entry !== undefined) entries.delete(key);
        if (entry === undefined || now - entry.windowStartMs >= limits.windowMs || (entry.lockedUntilMs !== 0 && entry.lockedUntilMs <= now)) {
          // A new window: the previous one ended, or its lock has run out (the key starts afresh after cooling off).
          entry = { windowStartMs: now, failures: 0, lockedUntilMs: 0 };
        }
        entry.failures += 1;
        if (entry.failures >= limits.maxFailures && entry.lockedUntilMs <= now) entry.lockedUntilMs = now + limits.lockMs;
        while (entries.size >= limits.maxKeys) {
          const oldest = entries.keys().next().value;
          if (oldest === undefined) break;
          entries.delete(oldest);
        }
        entries.set(key, entry);
      }
    },
  };
}

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

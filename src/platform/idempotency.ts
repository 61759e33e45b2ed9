import { createHash } from 'node:crypto';
import type { Clock } from './clock.ts';
import type { Db, Tx } from './db.ts';
import { err, ok, type DomainError, type Result } from './result.ts';

/**
 * Idempotency-Key handling for every POST that creates something or moves money.
 *
 * 1. Claim the key (scope = participant) with a short lease: a second request with the key while the first runs
 *    answers 409; after a crash the lease lapses and a retry takes over.
 * 2. Run the effect in one transaction that also stores the response under the key: the effect and its key commit
 *    together or not at all. A replay returns the stored status and body; a different body under the key is 422.
 * Effects that go through the batching ledger in their own transaction derive their transfer ids from the key
 * (see deterministicId), so a retry after a crash between the two commits cannot move money twice.
 */
export type IdempotencyErrorCode = 'idempotency_key_reused' | 'idempotency_in_progress' | 'idempotency_key_invalid';

export interface StoredResponse {
  readonly status: number;
  readonly body: unknown;
}

/** An effect's answer; `commit: false` rolls back its writes (a domain error) but still records the answer. */
export interface EffectResponse extends StoredResponse {
  readonly commit: boolean;
}

class Rollback extends Error {
  constructor(readonly response: EffectResponse) {
    super('rollback');
  }
}

/** Runs an effect in a transaction, rolling it back when it answers `commit: false`. */
export async function runEffect(db: Db, effect: (tx: Tx) => Promise<EffectResponse>, after?: (tx: Tx, r: StoredResponse) => Promise<void>): Promise<StoredResponse> {
  try {
    return await db.transaction(async (tx) => {
      const response = await effect(tx);
      if (!response.commit) throw new Rollback(response);
      await after?.(tx, response);
      return { status: response.status, body: response.body };
    });
  } catch (error) {
    if (error instanceof Rollback) {
      const response = { status: error.response.status, body: error.response.body };
      if (after !== undefined) await db.transaction((tx) => after(tx, response));
      return response;
    }
    throw error;
  }
}

export const IDEMPOTENCY_LIMITS = {
  leaseMs: 30_000,
  maxKeyChars: 128,
  /** Keys are kept at least this long (the sweeper deletes older ones). */
  retentionMs: 48 * 3_600_000,
  sweepBatch: 5_000,
} as const;

const KEY_PATTERN = /^[\x21-\x7e]{1,128}$/;

export function requestHash(parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
}

export interface Idempotency {
  run(
    scope: string,
    key: string,
    hash: string,
    effect: (tx: Tx) => Promise<EffectResponse>,
  ): Promise<Result<StoredResponse & { readonly replayed: boolean }, DomainError<IdempotencyErrorCode>>>;
  sweep(): Promise<number>;
}

export function createIdempotency(deps: { db: Db; clock: Clock }): Idempotency {
  const { db, clock } = deps;
  // A fast in-process guard; the lease in the database is what protects across processes.
  const inFlight = new Set<string>();

  const claim = async (scope: string, key: string, hash: string): Promise<Result<'claimed' | StoredResponse, DomainError<IdempotencyErrorCode>>> => {
    const now = clock.now();
    const lease = new Date(now.getTime() + IDEMPOTENCY_LIMITS.leaseMs);
    const inserted = await db.query(
      `insert into idempotency_keys (scope, key, request_hash, state, locked_until, created_at)
       values ($1, $2, $3, 'running', $4, $5) on conflict (scope, key) do nothing returning key`,
      [scope, key, hash, lease, now],
    );
    if (inserted.length === 1) return ok('claimed');
    const [row] = await db.query<{ request_hash: string; state: string; locked_until: Date | null; response_status: number | null; response_body: unknown }>(
      'select request_hash, state, locked_until, response_status, response_body from idempotency_keys where scope = $1 and key = $2',
      [scope, key],
    );
    if (row === undefined) return claim(scope, key, hash); // swept between the two statements
    if (row.request_hash !== hash) {
      return err('idempotency_key_reused', 'this Idempotency-Key was used with a different request', { idempotencyKey: key });
    }
    if (row.state === 'done') return ok({ status: row.response_status ?? 200, body: row.response_body });
    if (row.locked_until !== null && row.locked_until > now) {
      return err('idempotency_in_progress', 'a request with this Idempotency-Key is still being processed; retry later', { idempotencyKey: key });
    }
    const taken = await db.query(
      `update idempotency_keys set locked_until = $3 where scope = $1 and key = $2 and state = 'running' and locked_until <= $4 returning key`,
      [scope, key, lease, now],
    );
    return taken.length === 1
      ? ok('claimed')
      : err('idempotency_in_progress', 'a request with this Idempotency-Key is still being processed; retry later', { idempotencyKey: key });
  };

  return {
    async run(scope, key, hash, effect) {
      if (!KEY_PATTERN.test(key)) {
        return err('idempotency_key_invalid', `Idempotency-Key must be 1–${IDEMPOTENCY_LIMITS.maxKeyChars} printable ASCII characters`);
      }
      const slot = `${scope}\u0000${key}`;
      if (inFlight.has(slot)) {
        return err('idempotency_in_progress', 'a request with this Idempotency-Key is still being processed; retry later', { idempotencyKey: key });
      }
      inFlight.add(slot);
      try {
        const claimed = await claim(scope, key, hash);
        if (!claimed.ok) return claimed;
        if (claimed.value !== 'claimed') return ok({ ...claimed.value, replayed: true });
        try {
          const response = await runEffect(db, effect, async (tx, result) => {
            await tx.query(
              `update idempotency_keys set state = 'done', locked_until = null, response_status = $3, response_body = $4 where scope = $1 and key = $2`,
              [scope, key, result.status, result.body ?? null],
            );
          });
          return ok({ ...response, replayed: false });
        } catch (error) {
          // Nothing was written (the transaction rolled back): free the key so that a retry can run.
          await db.query(`delete from idempotency_keys where scope = $1 and key = $2 and state = 'running'`, [scope, key]).catch(() => undefined);
          throw error;
        }
      } finally {
        inFlight.delete(slot);
      }
    },

    async sweep() {
      const cutoff = new Date(clock.nowMs() - IDEMPOTENCY_LIMITS.retentionMs);
      const rows = await db.query(
        `delete from idempotency_keys where ctid in (select ctid from idempotency_keys where created_at < $1 limit $2) returning key`,
        [cutoff, IDEMPOTENCY_LIMITS.sweepBatch],
      );
      return rows.length;
    },
  };
}

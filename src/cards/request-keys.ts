import type { FastifyRequest } from 'fastify';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { IDEMPOTENCY_LIMITS } from '../platform/idempotency.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';

/** Thrown to roll the transaction back with a domain error; an Error, so that it passes deadlines and wrappers intact. */
class Rollback extends Error {
  constructor(readonly error: DomainError) {
    super(`rollback: ${error.code}`);
    this.name = 'Rollback';
  }
}

/**
 * Idempotency for requests whose answer carries a secret (a new card's number and CVV, a token number and key).
 * The generic runner stores the response body (its secret fields sealed) and an unkeyed hash of the request: a CVV may
 * not be kept even sealed, and an unkeyed hash of card data can be reversed by trying card numbers. Here
 * the hub stores only the created object's id and a keyed hash (vault.indexHash) of the request, and rebuilds the
 * answer from the object on a retry. The effect runs in one transaction; a domain error rolls it back.
 */
export function createRequestKeys(deps: { db: Db; vault: Vault; clock: Clock }) {
  const { db, vault, clock } = deps;
  return async function withRequestKey<T>(
    request: FastifyRequest,
    scope: string,
    create: (tx: Queryable) => Promise<Result<{ objectId: string; value: T }, DomainError>>,
    replay: (tx: Queryable, objectId: string) => Promise<T | undefined>,
  ): Promise<Result<T, DomainError>> {
    const header = request.headers['idempotency-key'];
    const key = typeof header === 'string' ? header : undefined;
    if (key !== undefined && (key.length === 0 || key.length > 128)) return err('idempotency_key_invalid', 'Idempotency-Key must be 1 to 128 characters');
    try {
      return await db.transaction(async (tx) => {
        if (key !== undefined) {
          const hmac = await vault.indexHash(JSON.stringify([request.method, request.routeOptions.url, request.params, request.body]));
          const inserted = await tx.query(
            `insert into card_request_keys (scope, key, request_hmac, object_id, created_at) values ($1, $2, $3, '', $4) on conflict (scope, key) do nothing returning key`,
            [scope, key, hmac, clock.now()],
          );
          if (inserted.length === 0) {
            const [row] = await tx.query<{ request_hmac: string; object_id: string }>('select request_hmac, object_id from card_request_keys where scope = $1 and key = $2', [scope, key]);
            if (row === undefined || row.request_hmac !== hmac) return err('card_request_key_reused', 'this Idempotency-Key was used for a different request');
            const value = await replay(tx, row.object_id);
            if (value === undefined) throw new Error('object behind an idempotency key vanished');
            return ok(value);
          }
        }
        const result = await create(tx);
        if (!result.ok) throw new Rollback(result.error);
        if (key !== undefined) await tx.query('update card_request_keys set object_id = $3 where scope = $1 and key = $2', [scope, key, result.value.objectId]);
        return ok(result.value.value);
      });
    } catch (e) {
      if (e instanceof Rollback) return { ok: false, error: e.error };
      throw e;
    }
  };
}

export type WithRequestKey = ReturnType<typeof createRequestKeys>;

/**
 * Deletes keys older than the idempotency retention (the same promise as every other Idempotency-Key: a retry within
 * it is answered; after it, the key is forgotten), at most one bounded batch per call. Returns how many went.
 */
export async function sweepRequestKeys(deps: { db: Db; clock: Clock }): Promise<number> {
  const cutoff = new Date(deps.clock.nowMs() - IDEMPOTENCY_LIMITS.retentionMs);
  const rows = await deps.db.query(
    `delete from card_request_keys where ctid in (select ctid from card_request_keys where created_at < $1 limit $2) returning key`,
    [cutoff, IDEMPOTENCY_LIMITS.sweepBatch],
  );
  return rows.length;
}

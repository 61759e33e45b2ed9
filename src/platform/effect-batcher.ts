import { sqlState, withDeadline, type Db, type Tx } from './db.ts';
import type { EffectResponse, Idempotency, IdempotencyErrorCode, IdempotencyKeyRef, StoredResponse } from './idempotency.ts';
import { err, ok, type DomainError, type Result } from './result.ts';

/**
 * Runs the effects of concurrent requests of one kind (P2P confirms) together: ONE transaction and set-based
 * statements for a whole batch instead of a transaction and a dozen statements per request, and a contended row (a
 * hot payee's account) updated once per batch instead of once per request, each request waiting for the previous
 * one's commit.
 *
 * Batches form by themselves, without a timer: the first request runs at once, those arriving while batches run form
 * the next one (up to `maxBatch`), up to `maxInFlight` batches at once. Batches of this process and of other processes
 * run concurrently; the effect's row locks keep them correct (taken in one global order; a deadlock, should one
 * happen, retries the whole batch).
 *
 * Idempotency is the batch's own: every request's key is claimed in the batch's transaction and its answer stored
 * there. `run` must therefore write nothing for a request it refuses (`commit: false`): a batch cannot roll back one
 * request's writes and keep its neighbours'. (The flows decide every request before writing.)
 */
export interface EffectBatcherLimits {
  readonly maxBatch: number;
  /**
   * Batches running at once in this process (each on its own connection). 1 by default: measured on the P2P bench, a
   * second batch in flight halves the batch size and costs more CPU per request than the overlap saves.
   */
  readonly maxInFlight: number;
  /** Requests waiting beyond this are refused at once with `unavailable` (503). */
  readonly maxQueue: number;
  /** Retries of a whole batch on a serialization failure or deadlock. */
  readonly retries: number;
  /**
   * Longest a batch (its retries included) keeps its requests waiting: past it they are answered with a
   * DatabaseDeadlineError (503 `unavailable`, Retry-After) and the next batch starts. The database bounds each
   * transaction itself (db.ts); this bounds whatever else a batch could wait on, so that a batch never holds the
   * batcher, and its keys, for good.
   */
  readonly deadlineMs: number;
}

export const DEFAULT_BATCHER_LIMITS: EffectBatcherLimits = { maxBatch: 64, maxInFlight: 1, maxQueue: 5_000, retries: 5, deadlineMs: 25_000 };

export type BatcherErrorCode = IdempotencyErrorCode | 'unavailable';

export interface EffectBatcher<I> {
  /** `key` undefined: a request without an Idempotency-Key (where the route allows it); nothing is claimed or stored. */
  submit(key: IdempotencyKeyRef | undefined, input: I): Promise<Result<StoredResponse & { readonly replayed: boolean }, DomainError<BatcherErrorCode>>>;
}

interface Waiting<I> {
  readonly key: IdempotencyKeyRef | undefined;
  readonly input: I;
  resolve(r: Result<StoredResponse & { readonly replayed: boolean }, DomainError<BatcherErrorCode>>): void;
  reject(error: unknown): void;
}

const RETRYABLE = new Set(['40001', '40P01']);

export function createEffectBatcher<I>(
  deps: { db: Db; idempotency: Idempotency },
  run: (tx: Tx, inputs: readonly I[]) => Promise<EffectResponse[]>,
  limits: EffectBatcherLimits = DEFAULT_BATCHER_LIMITS,
): EffectBatcher<I> {
  const { db, idempotency } = deps;
  const queue: Waiting<I>[] = [];
  /**
   * Keys queued or running in this process, with the outcome their request will get. A second request with the same
   * key never joins a batch beside the first (both would claim it there): it waits for the first's outcome and is
   * answered as its retry would be (see follow).
   */
  const inFlight = new Map<string, { readonly hash: string; readonly outcome: Promise<Answer> }>();

  const runBatch = async (batch: readonly Waiting<I>[]): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const answers = await db.transaction(async (tx) => {
          const keyed = batch.filter((w) => w.key !== undefined);
          const keyClaims = keyed.length === 0 ? [] : await idempotency.claimMany(tx, keyed.map((w) => w.key!));
          const claimOf = new Map(keyed.map((w, i) => [w, keyClaims[i]!]));
          const claims = batch.map((w) => claimOf.get(w) ?? ok('claimed' as const));
          const fresh = batch.filter((_, i) => claims[i]!.ok && claims[i]!.value === 'claimed');
          const responses = fresh.length === 0 ? [] : await run(tx, fresh.map((w) => w.input));
          if (responses.length !== fresh.length) throw new Error('effect batcher: run() must answer every input');
          const byWaiting = new Map<Waiting<I>, EffectResponse>();
          for (const [i, w] of fresh.entries()) {
            const response = responses[i]!;
            byWaiting.set(w, response);
            // The whole response, so that an answer naming secret fields is stored with them sealed.
            if (w.key !== undefined) await idempotency.answer(tx, w.key, response);
          }
          return batch.map((w, i) => {
            const claim = claims[i]!;
            if (!claim.ok) return claim;
            if (claim.value !== 'claimed') return ok({ ...claim.value, replayed: true });
            const response = byWaiting.get(w)!;
            return ok({ status: response.status, body: response.body, replayed: false });
          });
        });
        batch.forEach((w, i) => w.resolve(answers[i]!));
        return;
      } catch (error) {
        const state = sqlState(error);
        if (attempt < limits.retries && state !== undefined && RETRYABLE.has(state)) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** Math.min(attempt, 6)));
          continue;
        }
        for (const w of batch) w.reject(error);
        return;
      }
    }
  };

  let running = 0;
  const pump = (): void => {
    while (running < limits.maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, limits.maxBatch);
      running++;
      // Past the deadline every request of the batch is answered (each settles once: a late outcome is dropped) and
      // the batcher moves on; the batch's transaction ends on its own, bounded by the database's deadlines.
      void withDeadline(runBatch(batch), limits.deadlineMs, 'a batch')
        .catch((error: unknown) => {
          for (const w of batch) w.reject(error);
        })
        .finally(() => {
          running--;
          pump();
        });
    }
  };

  const enqueue = (key: IdempotencyKeyRef | undefined, input: I): Promise<Answer> => {
    const outcome = new Promise<Answer>((resolve, reject) => {
      queue.push({ key, input, resolve, reject });
    });
    if (key !== undefined) {
      const slot = slotOf(key);
      const entry = { hash: key.hash, outcome };
      inFlight.set(slot, entry);
      // Forgotten as soon as it is settled, before anyone waiting on it resumes (reactions run in the order they were
      // added), and only if it is still this request's: a follower may have queued the key again since.
      const forget = () => {
        if (inFlight.get(slot) === entry) inFlight.delete(slot);
      };
      outcome.then(forget, forget);
    }
    pump();
    return outcome;
  };

  /**
   * A request whose key this process is already running. The same request (same body) gets the first one's outcome,
   * as a replay: what is stored under the key once it is decided, or the same failure. A different request under the
   * key waits for the first to end, then goes through the key's claim like any retry (422 once the key is answered).
   * Bounded: each round waits for one request that was queued before this one.
   */
  const follow = async (key: IdempotencyKeyRef, input: I, running: { readonly hash: string; readonly outcome: Promise<Answer> }): Promise<Answer> => {
    if (running.hash === key.hash) {
      const answer = await running.outcome;
      return answer.ok && !answer.value.replayed ? ok({ ...answer.value, replayed: true }) : answer;
    }
    await running.outcome.catch(() => undefined);
    return submit(key, input);
  };

  const submit = (key: IdempotencyKeyRef | undefined, input: I): Promise<Answer> => {
    if (key !== undefined) {
      if (!idempotency.validKey(key.key)) return Promise.resolve(err('idempotency_key_invalid', 'Idempotency-Key must be 1–128 printable ASCII characters'));
      const running = inFlight.get(slotOf(key));
      if (running !== undefined) return follow(key, input, running);
    }
    if (queue.length >= limits.maxQueue) return Promise.resolve(err('unavailable', 'the hub is at capacity for this kind of request; retry shortly'));
    return enqueue(key, input);
  };

  return { submit };
}

type Answer = Result<StoredResponse & { readonly replayed: boolean }, DomainError<BatcherErrorCode>>;

const slotOf = (k: IdempotencyKeyRef) => `${k.scope}\u0000${k.key}`;

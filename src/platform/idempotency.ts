import { createHash } from 'node:crypto';
import type { Clock } from './clock.ts';
import type { Db, Flusher, Tx } from './db.ts';
import { err, ok, type DomainError, type Result } from './result.ts';
import type { Vault } from './vault.ts';

/**
 * Idempotency-Key handling for every POST that creates something or moves money.
 *
 * The key (scope = participant) is claimed, the effect runs and the response is stored under the key in ONE
 * transaction: the effect and its key commit together or not at all. A second request with the key while the first
 * runs waits for the first to end, in the same process (then gets its outcome as a replay; see `inFlight`) and in
 * another (its claim waits on the key's unique index, then replays it). A replay
 * returns the stored status and body; a different body under the key is 422. A refused effect (domain error) rolls
 * back and its answer is stored on its own, so a retry replays the refusal.
 * Effects that go through the batching ledger in their own transaction derive their transfer ids from the key
 * (see deterministicId), so a retry after a crash between the two commits cannot move money twice.
 * An answer that carries a secret shown once (a new client secret, a webhook signing secret) names its secret fields
 * (`secrets`): they are stored sealed by the vault, with their paths beside the body, and opened again on a replay,
 * so the retry gets the same answer and the database never holds the secret in clear.
 */
export type IdempotencyErrorCode = 'idempotency_key_reused' | 'idempotency_in_progress' | 'idempotency_key_invalid';

export interface StoredResponse {
  readonly status: number;
  readonly body: unknown;
  /**
   * Paths (dot-separated keys, e.g. `credential.clientSecret`) of the string fields of `body` that are secrets: stored
   * sealed, opened on replay. Set by the route that builds the answer (see `created` in api/context.ts).
   */
  readonly secrets?: readonly string[];
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
export async function runEffect(db: Db, effect: (tx: Tx) => Promise<EffectResponse>): Promise<StoredResponse> {
  try {
    return await db.transaction(async (tx) => {
      const response = await effect(tx);
      if (!response.commit) throw new Rollback(response);
      return { status: response.status, body: response.body };
    });
  } catch (error) {
    if (error instanceof Rollback) return { status: error.response.status, body: error.response.body };
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
  /**
   * The batch form, for effects that run many requests in one transaction (see effect-batcher.ts): claims every key in
   * the caller's transaction (one statement), one answer per key, in order. A 'claimed' key must get its answer staged
   * with answer() in the same transaction.
   */
  claimMany(tx: Tx, keys: readonly IdempotencyKeyRef[]): Promise<Result<'claimed' | StoredResponse, DomainError<IdempotencyErrorCode>>[]>;
  /** Stages a claimed key's answer (written with the COMMIT), its secret fields sealed first. */
  answer(tx: Tx, key: IdempotencyKeyRef, response: StoredResponse): Promise<void>;
  /**
   * What is stored under a key, without claiming it: its answer (a replay), a refusal (the key names another request),
   * or undefined (a new key, or one still running: the claim decides). For effects with a stage before their
   * transaction (an issuer asked), so that a retry of an answered request does not run that stage again.
   */
  peek(key: IdempotencyKeyRef): Promise<Result<StoredResponse | undefined, DomainError<IdempotencyErrorCode>>>;
  /** Whether a key is well formed (1–128 printable ASCII characters). */
  validKey(key: string): boolean;
  sweep(): Promise<number>;
}

type RunOutcome = Result<StoredResponse & { readonly replayed: boolean }, DomainError<IdempotencyErrorCode>>;

export interface IdempotencyKeyRef {
  readonly scope: string;
  readonly key: string;
  readonly hash: string;
}

/**
 * The answer stored under a key when its effect commits: written with the COMMIT (see Flusher). `sealed` is the
 * comma-joined list of sealed paths ('' when none; paths never hold a comma, see SECRET_PATH).
 */
type StagedAnswer = readonly [scope: string, key: string, status: number, body: string, sealed: string];

const answerFlusher: Flusher<StagedAnswer> = {
  flush: (tx, rows) =>
    tx.query(
      `update idempotency_keys k set state = 'done', locked_until = null, response_status = v.status, response_body = v.body::jsonb,
              response_sealed = string_to_array(nullif(v.sealed, ''), ',')
         from unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[]) as v(scope, key, status, body, sealed)
        where k.scope = v.scope and k.key = v.key`,
      [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3]), rows.map((r) => r[4])],
    ),
};

interface KeyRow {
  request_hash: string;
  state: string;
  locked_until: Date | null;
  response_status: number | null;
  response_body: unknown;
  response_sealed: string[] | null;
}

/** A secret field's path: dot-separated keys. Bounded: a few fields, a few levels. */
const SECRET_PATH = /^[A-Za-z0-9_]{1,64}(\.[A-Za-z0-9_]{1,64}){0,3}$/;
const MAX_SECRET_FIELDS = 8;

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Replaces the string at each path of a JSON value by what `change` makes of it. A path that is not a string is a bug. */
async function mapSecretFields(body: unknown, paths: readonly string[], change: (value: string) => Promise<string>): Promise<unknown> {
  if (paths.length > MAX_SECRET_FIELDS) throw new Error(`idempotency: at most ${MAX_SECRET_FIELDS} secret fields per answer`);
  for (const path of paths) {
    if (!SECRET_PATH.test(path)) throw new Error(`idempotency: not a secret field path: ${path}`);
    const keys = path.split('.');
    const last = keys.pop() ?? '';
    let parent: unknown = body;
    for (const k of keys) parent = isObject(parent) ? parent[k] : undefined;
    const value = isObject(parent) ? parent[last] : undefined;
    if (!isObject(parent) || typeof value !== 'string') throw new Error(`idempotency: the secret field ${path} is not a string of the answer`);
    parent[last] = await change(value);
  }
  return body;
}

export function createIdempotency(deps: { db: Db; clock: Clock; vault: Vault }): Idempotency {
  const { db, clock, vault } = deps;

  /** The answer as stored: JSON text with its secret fields sealed (on a copy: the caller still sends the clear one). */
  const storable = async (response: StoredResponse): Promise<{ body: string; sealed: readonly string[] }> => {
    const secrets = response.secrets ?? [];
    if (secrets.length === 0) return { body: JSON.stringify(response.body ?? null), sealed: [] };
    const copy: unknown = JSON.parse(JSON.stringify(response.body ?? null));
    return { body: JSON.stringify(await mapSecretFields(copy, secrets, (v) => vault.seal(v))), sealed: secrets };
  };
  const replayed = async (row: KeyRow): Promise<StoredResponse> => ({
    status: row.response_status ?? 200,
    body: row.response_sealed === null || row.response_sealed.length === 0 ? row.response_body : await mapSecretFields(row.response_body, row.response_sealed, (v) => vault.open(v)),
  });

  /**
   * Keys this process is running, with the outcome their request will get. A second request with one never runs its
   * effect beside the first: the same request (same body) waits for the first's outcome and gets it as a replay (what
   * is stored under the key by then, or the same failure); a different one waits for the first to end, then claims
   * the key like any retry (422). Every wait is bounded by the first request's own (db.ts deadlines).
   */
  const inFlight = new Map<string, { readonly hash: string; readonly outcome: Promise<RunOutcome> }>();
  const inProgress = (key: string) => err('idempotency_in_progress', 'a request with this Idempotency-Key is still being processed; retry later', { idempotencyKey: key });

  /**
   * Claims the key inside the effect's own transaction (the claim goes out with BEGIN). Another process holding the
   * same new key makes this insert wait on the unique index until that transaction ends: then the key is either
   * answered (replay) or free again (the other effect rolled back). A 'running' row is left only by an older hub
   * version that claimed keys in a transaction of their own and died; it is taken over once its lease lapses.
   */
  const claim = async (tx: Tx, scope: string, key: string, hash: string): Promise<Result<'claimed' | StoredResponse, DomainError<IdempotencyErrorCode>>> => {
    const now = clock.now();
    const lease = new Date(now.getTime() + IDEMPOTENCY_LIMITS.leaseMs);
    const inserted = await tx.query(
      `insert into idempotency_keys (scope, key, request_hash, state, locked_until, created_at)
       values ($1, $2, $3, 'running', $4, $5) on conflict (scope, key) do nothing returning key`,
      [scope, key, hash, lease, now],
    );
    if (inserted.length === 1) return ok('claimed');
    const [row] = await tx.query<KeyRow>(
      'select request_hash, state, locked_until, response_status, response_body, response_sealed from idempotency_keys where scope = $1 and key = $2 for update',
      [scope, key],
    );
    if (row === undefined) return inProgress(key); // swept meanwhile: the client retries
    if (row.request_hash !== hash) return err('idempotency_key_reused', 'this Idempotency-Key was used with a different request', { idempotencyKey: key });
    if (row.state === 'done') return ok(await replayed(row));
    if (row.locked_until !== null && row.locked_until > now) return inProgress(key);
    await tx.query(`update idempotency_keys set locked_until = $3 where scope = $1 and key = $2`, [scope, key, lease]);
    return ok('claimed');
  };

  const run = async (scope: string, key: string, hash: string, effect: (tx: Tx) => Promise<EffectResponse>): Promise<RunOutcome> => {
    if (!KEY_PATTERN.test(key)) {
      return err('idempotency_key_invalid', `Idempotency-Key must be 1–${IDEMPOTENCY_LIMITS.maxKeyChars} printable ASCII characters`);
    }
    const slot = `${scope}\u0000${key}`;
    const running = inFlight.get(slot);
    if (running !== undefined) {
      if (running.hash === hash) {
        const answer = await running.outcome;
        return answer.ok && !answer.value.replayed ? ok({ ...answer.value, replayed: true }) : answer;
      }
      // Bounded: each round waits for a request that started before this one.
      await running.outcome.catch(() => undefined);
      return run(scope, key, hash, effect);
    }
    const entry = { hash, outcome: execute(scope, key, hash, effect) };
    inFlight.set(slot, entry);
    // Forgotten as soon as it is settled, before anyone waiting on it resumes (reactions run in the order they were
    // added), and only if it is still this request's.
    const forget = () => {
      if (inFlight.get(slot) === entry) inFlight.delete(slot);
    };
    entry.outcome.then(forget, forget);
    return entry.outcome;
  };

  const execute = async (scope: string, key: string, hash: string, effect: (tx: Tx) => Promise<EffectResponse>): Promise<RunOutcome> => {
    return db
      .transaction(async (tx) => {
        const claimed = await claim(tx, scope, key, hash);
        if (!claimed.ok) return claimed;
        if (claimed.value !== 'claimed') return ok({ ...claimed.value, replayed: true });
        const response = await effect(tx);
        if (!response.commit) throw new Rollback(response);
        const hooks = tx.hooks;
        if (hooks === undefined) throw new Error('idempotency: a transaction without hooks');
        const stored = await storable(response);
        hooks.stage(answerFlusher, [scope, key, response.status, stored.body, stored.sealed.join(',')]);
        return ok({ status: response.status, body: response.body, replayed: false });
      })
      .catch(async (error: unknown) => {
        if (!(error instanceof Rollback)) throw error;
        // A refused effect rolled back with its claim: store its answer so that a retry replays the refusal. A
        // concurrent request that claimed the key meanwhile keeps it (its own answer will be stored).
        const answer = { status: error.response.status, body: error.response.body };
        const stored = await storable(error.response);
        await db.query(
          `insert into idempotency_keys (scope, key, request_hash, state, locked_until, response_status, response_body, response_sealed, created_at)
           values ($1, $2, $3, 'done', null, $4, $5::jsonb, $6::text[], $7) on conflict (scope, key) do nothing`,
          [scope, key, hash, answer.status, stored.body, stored.sealed.length === 0 ? null : stored.sealed, clock.now()],
        );
        return ok({ ...answer, replayed: false });
      });
  };

  return {
    run,

    async claimMany(tx, keys) {
      const now = clock.now();
      const lease = new Date(now.getTime() + IDEMPOTENCY_LIMITS.leaseMs);
      const inserted = await tx.query<{ scope: string; key: string }>(
        `insert into idempotency_keys (scope, key, request_hash, state, locked_until, created_at)
         select scope, key, hash, 'running', $4, $5 from unnest($1::text[], $2::text[], $3::text[]) as k(scope, key, hash)
         on conflict (scope, key) do nothing returning scope, key`,
        [keys.map((k) => k.scope), keys.map((k) => k.key), keys.map((k) => k.hash), lease, now],
      );
      const slot = (scope: string, key: string) => `${scope}\u0000${key}`;
      const claimed = new Set(inserted.map((r) => slot(r.scope, r.key)));
      // The rest were there already (or a concurrent process inserted them first and committed): decide each as claim()
      // does. Rare (retries), so one statement each is fine.
      const out: Result<'claimed' | StoredResponse, DomainError<IdempotencyErrorCode>>[] = [];
      for (const k of keys) out.push(claimed.has(slot(k.scope, k.key)) ? ok('claimed') : await claim(tx, k.scope, k.key, k.hash));
      return out;
    },

    async answer(tx, key, response) {
      const hooks = tx.hooks;
      if (hooks === undefined) throw new Error('idempotency.answer outside a transaction');
      const stored = await storable(response);
      hooks.stage(answerFlusher, [key.scope, key.key, response.status, stored.body, stored.sealed.join(',')]);
    },

    async peek(key) {
      const [row] = await db.query<KeyRow>(
        'select request_hash, state, locked_until, response_status, response_body, response_sealed from idempotency_keys where scope = $1 and key = $2',
        [key.scope, key.key],
      );
      if (row === undefined) return ok(undefined);
      if (row.request_hash !== key.hash) return err('idempotency_key_reused', 'this Idempotency-Key was used with a different request', { idempotencyKey: key.key });
      return ok(row.state === 'done' ? await replayed(row) : undefined);
    },

    validKey: (key) => KEY_PATTERN.test(key),

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

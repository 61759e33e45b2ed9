import { AsyncLocalStorage } from 'node:async_hooks';
import { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { ensurePrivateDir, restrictUmask, tightenTree } from './file-modes.ts';

/**
 * One SQL dialect (PostgreSQL's) over two engines: PGlite embedded in the process, or a PostgreSQL server.
 * Parameters are positional ($1, $2…); INT8 comes back as bigint; jsonb parameters are passed as plain objects.
 */
export type Row = Record<string, unknown>;

export interface Queryable {
  query<T extends object = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Present on a transaction (see TxHooks); absent on the top-level db. */
  readonly hooks?: TxHooks;
}

export type Tx = Queryable;

/**
 * Writes that only need to exist when the transaction commits (audit records, outbox events) are staged on the
 * transaction and written by one set-based statement per kind just before COMMIT, in the same round trip as the
 * COMMIT: a request that writes one audit record and two events sends one statement instead of five. Nothing inside
 * the transaction may read what it staged (nothing does: audit and outbox rows are read by other requests).
 */
export interface Flusher<I> {
  /** Writes every staged item in one statement (or very few); runs inside the transaction. */
  flush(tx: Queryable, items: readonly I[]): Promise<unknown>;
}

export interface TxHooks {
  stage<I>(flusher: Flusher<I>, item: I): void;
  /** Runs after the transaction committed (not after a rollback); errors are the callback's own to handle. */
  afterCommit(fn: () => void): void;
}

/** Items staged per flusher, in staging order, and the after-commit callbacks of one transaction. */
class TxHookState implements TxHooks {
  private readonly staged = new Map<Flusher<unknown>, unknown[]>();
  private readonly committed: (() => void)[] = [];
  stage<I>(flusher: Flusher<I>, item: I): void {
    const items = this.staged.get(flusher as Flusher<unknown>);
    if (items === undefined) this.staged.set(flusher as Flusher<unknown>, [item]);
    else if (items.length >= MAX_STAGED_PER_FLUSHER) throw new Error('too many staged writes in one transaction');
    else items.push(item);
  }
  afterCommit(fn: () => void): void {
    this.committed.push(fn);
  }
  /**
   * Starts every flush at once (they pipeline on the connection, queued in staging order before anything the caller
   * sends next) and answers one promise: it rejects with the first failure, and every other flush's failure is handled
   * by it (a flush left rejected with no handler would end the process).
   */
  flushPipelined(tx: Queryable): Promise<void> {
    const started = [...this.staged].map(([flusher, items]) => startFlush(flusher, tx, items));
    this.staged.clear();
    return Promise.all(started).then(() => undefined);
  }
  /** Writes the staged items one flusher after the other, stopping at the first failure (PGlite: one connection). */
  async flushInOrder(tx: Queryable): Promise<void> {
    const batches = [...this.staged];
    this.staged.clear();
    for (const [flusher, items] of batches) await flusher.flush(tx, items);
  }
  runAfterCommit(): void {
    for (const fn of this.committed) fn();
  }
}

/** Calls a flusher now (its statement is queued at once); a synchronous throw becomes a rejection like any other. */
function startFlush(flusher: Flusher<unknown>, tx: Queryable, items: readonly unknown[]): Promise<unknown> {
  try {
    return flusher.flush(tx, items);
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** Bound on staged items of one kind in one transaction (a runaway loop fails instead of building a huge statement). */
const MAX_STAGED_PER_FLUSHER = 10_000;

export type Isolation = 'read committed' | 'repeatable read' | 'serializable';

export interface TransactionOptions {
  readonly isolation?: Isolation;
  /** Retries on serialization failure or deadlock; bounded (default 0: fail at once). */
  readonly retries?: number;
  /**
   * Longest the whole transaction may take on PostgreSQL (waiting for a connection, its statements, COMMIT) before the
   * caller is answered with a `DB_DEADLINE` error (503 `unavailable` at the edge). Default: the database's
   * `transactionMs` (see DbTimeouts); migrations ask for more.
   */
  readonly deadlineMs?: number;
  /**
   * Called inside another transaction, a transaction normally joins it (see below). `detached` asks for a separate
   * transaction on its own connection (the ledger's batches, which carry other requests' transfers). PGlite has one
   * connection: there a detached transaction inside another still joins it, so never call such code inside one.
   */
  readonly detached?: boolean;
}

/**
 * Inside `db.transaction(fn)`, code that calls the top-level `db` (a service called from another service) runs on the
 * transaction it is already in, on both engines. On PostgreSQL this is what stops pool starvation: a request holding
 * one pooled connection never waits for a second one, so N concurrent requests never deadlock a pool of N.
 */
export interface Db extends Queryable {
  readonly engine: 'pglite' | 'postgres';
  transaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Runs a multi-statement script (migrations). */
  exec(script: string): Promise<void>;
  /**
   * Calls `onNotify` for every NOTIFY on `channel` (sent with pg_notify inside a transaction: delivered after it
   * commits, to every hub process on the database) and `onReconnect` whenever the listening connection was
   * (re)established, since notifications sent while it was down are lost.
   */
  listen(channel: string, onNotify: (payload: string) => void, onReconnect?: () => void): Promise<void>;
  /**
   * A connection of the caller's own, outside any transaction, until released: for a writer that sends one statement
   * after another and wants them on one warm backend (the ledger's batch writes). Each statement is its own
   * transaction. Takes a connection out of the pool for as long as it is held. On PGlite: the one connection.
   */
  session(): Promise<Session>;
  close(): Promise<void>;
}

export interface Session extends Queryable {
  /** Ends the session; resolves once its connection is closed (queued statements finish first). */
  release(): Promise<void> | void;
}

/**
 * Runs statements that do not depend on each other: all at once on PostgreSQL (they pipeline on the transaction's
 * connection and execute in call order), one after the other on PGlite (one connection, no pipelining).
 */
export function pipeliner(db: { readonly engine: Db['engine'] }): <T extends unknown[]>(statements: [...{ [K in keyof T]: () => Promise<T[K]> }]) => Promise<T> {
  if (db.engine === 'postgres') return async (statements) => (await Promise.all(statements.map((f) => f()))) as never;
  return async (statements) => {
    const out: unknown[] = [];
    for (const f of statements) out.push(await f());
    return out as never;
  };
}

/** SQLSTATE codes that mean "try the whole transaction again". */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);
const MAX_TRANSACTION_RETRIES = 10;

export function sqlState(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

/** A FIFO async mutex: PGlite is one connection, so every use of it is serialized here. */
export function createMutex(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };
}

export async function openPglite(dataDir: string | undefined): Promise<Db> {
  if (dataDir !== undefined) {
    // The database files are private to the hub's user (src/platform/file-modes.ts): files PGlite creates from now on
    // follow the umask, and what its start wrote with explicit modes is tightened once it is open.
    restrictUmask();
    ensurePrivateDir(dataDir);
  }
  const pg = new PGlite(dataDir ?? 'memory://', { parsers: { 20: (value: string) => BigInt(value) } });
  await pg.waitReady;
  if (dataDir !== undefined) tightenTree(dataDir);
  const exclusive = createMutex();
  // Code running inside a transaction that calls the top-level db (a nested service call) would wait forever for the
  // one connection it already holds; such calls join the open transaction instead.
  const inTransaction = new AsyncLocalStorage<Queryable>();
  const direct: Queryable = {
    async query<T extends object>(text: string, params: readonly unknown[] = []) {
      const result = await pg.query<T>(text, params as unknown[]);
      return result.rows;
    },
  };
  let closed = false;
  return {
    engine: 'pglite',
    query: (text, params) => {
      const open = inTransaction.getStore();
      return open !== undefined ? open.query(text, params) : exclusive(() => direct.query(text, params));
    },
    transaction: async (fn) => {
      const open = inTransaction.getStore();
      if (open !== undefined) return fn(open);
      const hooks = new TxHookState();
      const result = await exclusive(() =>
        pg.transaction(async (tx) => {
          const wrapped: Queryable = {
            async query<T extends object>(text: string, params: readonly unknown[] = []) {
              return (await tx.query<T>(text, params as unknown[])).rows;
            },
            hooks,
          };
          return inTransaction.run(wrapped, async () => {
            const value = await fn(wrapped);
            // One connection: the staged writes go one after the other.
            await hooks.flushInOrder(wrapped);
            return value;
          });
        }),
      );
      hooks.runAfterCommit();
      return result;
    },
    exec: (script) =>
      exclusive(async () => {
        await pg.exec(script);
      }),
    async listen(channel, onNotify, onReconnect) {
      await pg.listen(channel, onNotify);
      onReconnect?.();
    },
    async session() {
      // The one connection, as the top-level db uses it (a statement inside an open transaction joins it).
      return {
        query: (text, params) => {
          const open = inTransaction.getStore();
          return open !== undefined ? open.query(text, params) : exclusive(() => direct.query(text, params));
        },
        release: () => undefined,
      };
    },
    close: () =>
      exclusive(async () => {
        if (closed) return;
        closed = true;
        await pg.close();
      }),
  };
}

export interface PostgresOptions {
  readonly url: string;
  readonly maxConnections?: number;
  readonly timeouts?: Partial<DbTimeouts>;
}

/**
 * Every wait on PostgreSQL is bounded, so that a restart, a failover or a hung connection answers the request (503
 * `unavailable` with Retry-After) instead of leaving it, and whatever queues behind it, pending.
 * - Server side, set on every connection: a statement runs at most `statementMs` (statement_timeout, lock waits
 *   included), and a session left idle inside a transaction is ended after `idleInTransactionMs`
 *   (idle_in_transaction_session_timeout: a transaction its client gave up on releases its locks and its connection).
 * - Client side: a transaction (waiting for a connection included), a statement outside one, and a statement of a
 *   session answer within `transactionMs`, whatever their connection does; a connection attempt gives up after
 *   `connectMs`; reconnections back off at most `maxBackoffMs` (postgres.js's default grows to 20 s, which kept a hub
 *   from using a database that was back for that long).
 */
export interface DbTimeouts {
  readonly statementMs: number;
  readonly idleInTransactionMs: number;
  readonly transactionMs: number;
  readonly connectMs: number;
  readonly maxBackoffMs: number;
}

export const DEFAULT_DB_TIMEOUTS: DbTimeouts = { statementMs: 15_000, idleInTransactionMs: 15_000, transactionMs: 20_000, connectMs: 5_000, maxBackoffMs: 500 };

/** What a call gets when the database did not answer within its deadline (its connection may be hung). */
export class DatabaseDeadlineError extends Error {
  readonly code = 'DB_DEADLINE';
  constructor(what: string, ms: number) {
    super(`the database did not answer ${what} within ${ms} ms`);
    this.name = 'DatabaseDeadlineError';
  }
}

/**
 * Settles with `work`, or rejects with a DatabaseDeadlineError after `ms`; `work` goes on (its rejection handled) and
 * `onLate` gets what it resolves to after the deadline passed (to give back a connection, for one).
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new DatabaseDeadlineError(what, ms));
    }, ms);
    work.then(
      (value) => {
        if (settled) {
          onLate?.(value);
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * Errors after which a connection is gone (the server ended the session, or the socket closed). postgres.js has then
 * taken the connection back to reconnect it on demand: a statement sent on a reserved handle to it would crash the
 * process (postgres.js 3.4 writes to the closed socket), and releasing the handle would put a dead connection in the
 * pool. Neither may happen.
 */
const CONNECTION_LOST_CODES = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT', 'ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT']);

export function connectionLost(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  // FATAL and PANIC end the session (57P01 when an administrator terminates it, for one).
  return (typeof code === 'string' && CONNECTION_LOST_CODES.has(code)) || severity === 'FATAL' || severity === 'PANIC';
}

/**
 * SQLSTATEs of a database that is there but cannot serve now: a statement cancelled by statement_timeout (57014), a
 * server starting up or shutting down (57P03), out of connections (53300), a connection exception (class 08), a
 * read-only server, as a standby is (25006).
 */
const UNAVAILABLE_SQLSTATES = new Set(['57014', '57P03', '53300', '25006']);

/**
 * Whether an error means "the database cannot serve this now" rather than a bug: a lost or refused connection, a
 * deadline passed, a server-side timeout or a server that is not ready. Retrying is safe (nothing committed, or the
 * outcome is found again through the request's Idempotency-Key): the edge answers 503 `unavailable` with Retry-After.
 */
export function databaseUnavailable(error: unknown): boolean {
  if (connectionLost(error) || error instanceof DatabaseDeadlineError) return true;
  const state = sqlState(error);
  return state !== undefined && (UNAVAILABLE_SQLSTATES.has(state) || state.startsWith('08'));
}

/** What a transaction's statement gets once its connection is known to be gone: nothing is sent. */
function lostConnectionError(): Error {
  return Object.assign(new Error('the connection was lost during the transaction'), { code: 'CONNECTION_CLOSED' });
}

export function openPostgres(options: PostgresOptions): Db {
  const timeouts: DbTimeouts = { ...DEFAULT_DB_TIMEOUTS, ...options.timeouts };
  const clientOptions = {
    types: { bigint: postgres.BigInt },
    onnotice: () => undefined,
    // Prepared statements are reused per connection: the hot paths repeat the same SQL text.
    prepare: true,
    connect_timeout: Math.max(1, Math.ceil(timeouts.connectMs / 1000)),
    // Seconds; postgres.js counts failed attempts across the pool, so its default backoff (up to 20 s) kept every
    // connection away from a database that had come back.
    backoff: (retries: number) => Math.min(timeouts.maxBackoffMs, 25 * 2 ** Math.min(retries, 10)) / 1000,
    // A dead peer (no FIN: a failover, a cut network) is noticed by TCP keepalive within seconds, not the default minute.
    keep_alive: 5,
    connection: {
      statement_timeout: timeouts.statementMs,
      idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
    },
  } as const;
  const sql = postgres(options.url, { max: options.maxConnections ?? 10, ...clientOptions });
  const wrap = (conn: postgres.Sql | postgres.TransactionSql): Queryable => ({
    async query<T extends object>(text: string, params: readonly unknown[] = []) {
      // Queued on the connection NOW, in call order: `await` alone would queue it a microtask later than a statement
      // created after it and started with execute()/catch() (the transaction's COMMIT), and order is the point.
      const rows = await conn.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true }).execute();
      return rows as unknown as T[];
    },
  });
  const top = wrap(sql);
  const inTransaction = new AsyncLocalStorage<Queryable>();
  const listeners: { unlisten(): Promise<void> }[] = [];

  /**
   * One transaction on a reserved connection. BEGIN is not awaited on its own: it goes out in the same socket write as
   * the transaction's first statement, and the staged writes go out with the COMMIT, so a transaction costs no round
   * trip of its own. (BEGIN with one of the three levels fails only when the connection does, and every later statement
   * with it.)
   */
  const runTransaction = async <T>(fn: (tx: Tx) => Promise<T>, isolation: Isolation, hooks: TxHookState, deadline: { passed: boolean }): Promise<T> => {
    const conn = await sql.reserve();
    // The caller was answered while this waited for a connection: give it back unused.
    if (deadline.passed) {
      conn.release();
      throw new DatabaseDeadlineError('a connection', 0);
    }
    const ignore = () => undefined;
    // Set when a statement fails because the connection is gone: nothing more is sent on it, and it is not released.
    let lost = false;
    const noteLoss = (error: unknown): never => {
      if (connectionLost(error)) lost = true;
      throw error;
    };
    const reserved = wrap(conn);
    try {
      const began = conn.unsafe(`begin isolation level ${isolation}`).execute().catch(noteLoss);
      began.catch(ignore);
      const tx: Queryable = {
        query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
          if (lost) return Promise.reject(lostConnectionError());
          return reserved.query<R>(text, params).catch(noteLoss);
        },
        hooks,
      };
      return await inTransaction.run(tx, async () => {
        const value = await fn(tx);
        // BEGIN, the flushes and COMMIT are all in flight before any is awaited: each is given a handler at once, so
        // that when an earlier one fails and is thrown, a later one's failure is not left unhandled.
        const flushed = hooks.flushPipelined(tx);
        flushed.catch(ignore);
        if (lost) throw lostConnectionError();
        const commit = conn.unsafe('commit').execute().catch(noteLoss);
        commit.catch(ignore);
        await began;
        await flushed;
        const done = await commit;
        // A statement that failed inside fn and was caught there leaves the transaction aborted: COMMIT then rolls back.
        if (done.command !== 'COMMIT') throw new Error(`transaction ended with ${done.command} instead of COMMIT`);
        return value;
      });
    } catch (error) {
      // `lost` only from this connection's own statements: an error from another connection (a query fn ran outside
      // the transaction) says nothing of this one, which must still be rolled back and given back.
      if (!lost) await conn.unsafe('rollback').catch(ignore);
      throw error;
    } finally {
      // A lost connection is postgres.js's again (it reconnects it on demand): giving the handle back would put it in
      // the pool as if it were open.
      if (!lost) conn.release();
    }
  };

  return {
    engine: 'postgres',
    query: (text, params) => {
      const open = inTransaction.getStore();
      // Inside a transaction the transaction's deadline bounds it; outside, its own.
      return open !== undefined ? open.query(text, params) : withDeadline(top.query(text, params), timeouts.transactionMs, 'a statement');
    },
    async transaction<T>(fn: (tx: Tx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
      const open = inTransaction.getStore();
      if (open !== undefined && opts.detached !== true) return fn(open);
      const retries = Math.min(opts.retries ?? 0, MAX_TRANSACTION_RETRIES);
      const deadlineMs = opts.deadlineMs ?? timeouts.transactionMs;
      for (let attempt = 0; ; attempt++) {
        const hooks = new TxHookState();
        const deadline = { passed: false };
        // A transaction past its deadline is answered; its own path goes on in the background and ends as it would
        // have (COMMIT, or ROLLBACK and the connection given back; a connection lost meanwhile is postgres.js's), so
        // the caller's answer never waits on a hung connection and no connection is left reserved. Its outcome, should
        // it still commit, is found again through the request's Idempotency-Key.
        const running = runTransaction(fn, opts.isolation ?? 'read committed', hooks, deadline).then((value) => {
          hooks.runAfterCommit();
          return value;
        });
        try {
          return await withDeadline(running, deadlineMs, 'a transaction');
        } catch (error) {
          if (error instanceof DatabaseDeadlineError) deadline.passed = true;
          const state = sqlState(error);
          if (attempt >= retries || state === undefined || !RETRYABLE_SQLSTATES.has(state)) throw error;
          // Jittered backoff so that colliding transactions do not collide again in lockstep.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** Math.min(attempt, 6)));
        }
      }
    },
    async exec(script) {
      await sql.unsafe(script);
    },
    async listen(channel, onNotify, onReconnect) {
      listeners.push(await sql.listen(channel, onNotify, onReconnect));
    },
    async session() {
      // A client of its own with one connection, not a connection reserved from the pool: postgres.js reconnects it
      // when the server drops it (a reserved connection that dropped can be neither used nor given back safely, see
      // connectionLost), and everything sent on it goes out in call order on that one connection.
      const own = postgres(options.url, { max: 1, ...clientOptions });
      const session = wrap(own);
      return {
        // Each statement is its own transaction: one past its deadline is answered as failed (the writer then drops
        // this connection) and commits or not on its own.
        query: (text, params) => withDeadline(session.query(text, params), timeouts.transactionMs, 'a session statement'),
        release: () => own.end({ timeout: 1 }).catch(() => undefined),
      };
    },
    async close() {
      // Bounded: UNLISTEN on a connection that is gone would wait for it; end() gives running statements a second,
      // then closes every connection (the listener's too).
      await withDeadline(Promise.all(listeners.splice(0).map((l) => l.unlisten().catch(() => undefined))), 1_000, 'UNLISTEN').catch(() => undefined);
      await sql.end({ timeout: 1 });
    },
  };
}

export async function openDb(config: { databaseUrl?: string | undefined; dataDir?: string | undefined; maxConnections?: number; timeouts?: Partial<DbTimeouts> }): Promise<Db> {
  if (config.databaseUrl !== undefined && config.databaseUrl !== '') {
    return openPostgres({
      url: config.databaseUrl,
      ...(config.maxConnections !== undefined ? { maxConnections: config.maxConnections } : {}),
      ...(config.timeouts !== undefined ? { timeouts: config.timeouts } : {}),
    });
  }
  return openPglite(config.dataDir);
}

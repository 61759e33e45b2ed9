import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';

/**
 * One SQL dialect (PostgreSQL's) over two engines: PGlite embedded in the process, or a PostgreSQL server.
 * Parameters are positional ($1, $2…); INT8 comes back as bigint; jsonb parameters are passed as plain objects.
 */
export type Row = Record<string, unknown>;

export interface Queryable {
  query<T extends object = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

export type Tx = Queryable;

export type Isolation = 'read committed' | 'repeatable read' | 'serializable';

export interface TransactionOptions {
  readonly isolation?: Isolation;
  /** Retries on serialization failure or deadlock; bounded (default 0: fail at once). */
  readonly retries?: number;
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
  close(): Promise<void>;
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
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
  const pg = new PGlite(dataDir ?? 'memory://', { parsers: { 20: (value: string) => BigInt(value) } });
  await pg.waitReady;
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
    transaction: (fn) => {
      const open = inTransaction.getStore();
      if (open !== undefined) return fn(open);
      return exclusive(() =>
        pg.transaction(async (tx) => {
          const wrapped: Queryable = {
            async query<T extends object>(text: string, params: readonly unknown[] = []) {
              return (await tx.query<T>(text, params as unknown[])).rows;
            },
          };
          return inTransaction.run(wrapped, () => fn(wrapped));
        }),
      );
    },
    exec: (script) =>
      exclusive(async () => {
        await pg.exec(script);
      }),
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
}

export function openPostgres(options: PostgresOptions): Db {
  const sql = postgres(options.url, {
    max: options.maxConnections ?? 10,
    types: { bigint: postgres.BigInt },
    onnotice: () => undefined,
    // Prepared statements are reused per connection: the hot paths repeat the same SQL text.
    prepare: true,
  });
  const wrap = (conn: postgres.Sql | postgres.TransactionSql): Queryable => ({
    async query<T extends object>(text: string, params: readonly unknown[] = []) {
      const rows = await conn.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
      return rows as unknown as T[];
    },
  });
  const top = wrap(sql);
  const inTransaction = new AsyncLocalStorage<Queryable>();
  return {
    engine: 'postgres',
    query: (text, params) => (inTransaction.getStore() ?? top).query(text, params),
    async transaction<T>(fn: (tx: Tx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
      const open = inTransaction.getStore();
      if (open !== undefined && opts.detached !== true) return fn(open);
      const retries = Math.min(opts.retries ?? 0, MAX_TRANSACTION_RETRIES);
      const begin = `isolation level ${opts.isolation ?? 'read committed'}`;
      for (let attempt = 0; ; attempt++) {
        try {
          return (await sql.begin(begin, (tx) => {
            const wrapped = wrap(tx);
            return inTransaction.run(wrapped, () => fn(wrapped));
          })) as T;
        } catch (error) {
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
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}

export async function openDb(config: { databaseUrl?: string | undefined; dataDir?: string | undefined; maxConnections?: number }): Promise<Db> {
  if (config.databaseUrl !== undefined && config.databaseUrl !== '') {
    return openPostgres({ url: config.databaseUrl, ...(config.maxConnections !== undefined ? { maxConnections: config.maxConnections } : {}) });
  }
  return openPglite(config.dataDir);
}

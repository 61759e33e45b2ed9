import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openPglite, openPostgres, type Db } from '../../src/platform/db.ts';
import { migrate } from '../../src/platform/migrate.ts';

export type Engine = 'pglite' | 'postgres';
export const ENGINES: readonly Engine[] = ['pglite', 'postgres'];

/** The server the tests create their throwaway databases on. */
export const TEST_PG_URL = process.env.HUTONG_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

let reachable: Promise<boolean> | undefined;

/** Whether PostgreSQL answers. In CI an unreachable server is an error, never a silent skip. */
export function postgresReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const sql = postgres(TEST_PG_URL, { max: 1, connect_timeout: 3, onnotice: () => undefined });
    try {
      await sql`select 1`;
      return true;
    } catch (error) {
      if (IN_CI) throw new Error(`PostgreSQL at ${TEST_PG_URL} is unreachable in CI: ${String(error)}`);
      console.warn(`[tests] PostgreSQL at ${TEST_PG_URL} unreachable: PostgreSQL variants are skipped (they fail in CI)`);
      return false;
    } finally {
      await sql.end({ timeout: 1 }).catch(() => undefined);
    }
  })();
  return reachable;
}

export interface TestDatabase {
  readonly engine: Engine;
  readonly db: Db;
  /** Connection string of the throwaway PostgreSQL database (postgres engine only). */
  readonly url: string | undefined;
  /** Closes the connection and drops the throwaway database. */
  drop(): Promise<void>;
}

/** Creates a fresh PostgreSQL database and returns its URL, and a function that drops it. */
export async function createScratchPostgres(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `hutong_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(TEST_PG_URL, { max: 1, onnotice: () => undefined });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const admin2 = postgres(TEST_PG_URL, { max: 1, onnotice: () => undefined });
      await admin2.unsafe(`drop database if exists ${name} with (force)`);
      await admin2.end();
    },
  };
}

/** A migrated, empty database on the given engine: PGlite in memory, or a fresh database on the PostgreSQL server. */
export async function openTestDb(engine: Engine, options: { migrate?: boolean; maxConnections?: number } = {}): Promise<TestDatabase> {
  if (engine === 'pglite') {
    const db = await openPglite(undefined);
    if (options.migrate !== false) await migrate(db);
    return { engine, db, url: undefined, drop: () => db.close() };
  }
  const scratch = await createScratchPostgres();
  const db = openPostgres({ url: scratch.url, maxConnections: options.maxConnections ?? 10 });
  if (options.migrate !== false) await migrate(db);
  return {
    engine,
    db,
    url: scratch.url,
    drop: async () => {
      await db.close();
      await scratch.drop();
    },
  };
}

/** The engines a storage test runs on: both, with PostgreSQL skipped only outside CI when it is unreachable. */
export async function availableEngines(): Promise<Engine[]> {
  return (await postgresReachable()) ? ['pglite', 'postgres'] : ['pglite'];
}

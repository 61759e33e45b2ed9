import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from './db.ts';
import { PACKAGE_ROOT } from './paths.ts';

export const MIGRATIONS_DIR = join(PACKAGE_ROOT, 'migrations');

/** An arbitrary constant: the advisory lock that makes concurrent hub starts apply migrations one at a time. */
const MIGRATION_LOCK_ID = 727_001;
/** Longest the migrations of one start may take (statement timeout and client deadline). */
const MIGRATION_DEADLINE_MS = 10 * 60_000;

export interface Migration {
  readonly version: string;
  readonly sql: string;
}

export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((name) => /^\d{4}_[a-z0-9_]+\.sql$/.test(name))
    .sort()
    .map((name) => ({ version: name.replace(/\.sql$/, ''), sql: readFileSync(join(dir, name), 'utf8') }));
}

/** Applies every migration not yet applied, in order, each in its own transaction. Returns the versions applied. */
export async function migrate(db: Db, onApplied: (version: string) => void = () => undefined): Promise<string[]> {
  const migrations = loadMigrations();
  await db.exec(`create table if not exists schema_migrations (version text primary key, applied_at timestamptz not null default now())`);
  const applied: string[] = [];
  await db.transaction(async (tx) => {
    // A migration may rewrite a large table, and a second process waits here for the first one's migrations: longer
    // than the deadlines of ordinary statements (db.ts), still bounded.
    await tx.query(`select set_config('statement_timeout', $1, true)`, [String(MIGRATION_DEADLINE_MS)]);
    // Held to the end of this transaction: a second hub process starting now waits, then finds nothing to do.
    await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
    const done = new Set((await tx.query<{ version: string }>('select version from schema_migrations')).map((r) => r.version));
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      for (const statement of splitStatements(migration.sql)) await tx.query(statement);
      await tx.query('insert into schema_migrations (version) values ($1)', [migration.version]);
      applied.push(migration.version);
      onApplied(migration.version);
    }
  }, { deadlineMs: MIGRATION_DEADLINE_MS + 5_000 });
  return applied;
}

/**
 * Splits a migration into statements so that each runs through the same parameterised query path on both engines.
 * Statements end with a semicolon at the end of a line; dollar-quoted bodies ($$ … $$) are kept whole.
 */
export function splitStatements(script: string): string[] {
  const statements: string[] = [];
  let current = '';
  let inDollar = false;
  for (const line of script.split('\n')) {
    const trimmed = line.trim();
    if (!inDollar && (trimmed.startsWith('--') || trimmed === '')) continue;
    current += line + '\n';
    if ((line.match(/\$\$/g)?.length ?? 0) % 2 === 1) inDollar = !inDollar;
    if (!inDollar && trimmed.endsWith(';')) {
      statements.push(current.trim());
      current = '';
    }
  }
  if (current.trim() !== '') statements.push(current.trim());
  return statements;
}

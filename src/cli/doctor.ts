import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { HubConfig } from '../platform/config.ts';
import { systemClock } from '../platform/clock.ts';
import { referenceRatesIn } from '../fx/index.ts';
import { openDb, type Db } from '../platform/db.ts';
import { privateFileWarnings } from '../platform/file-modes.ts';
import { loadMigrations } from '../platform/migrate.ts';
import { StartupError } from '../platform/startup-error.ts';
import { createVault, defaultKeySource, keyFilePath } from '../platform/vault.ts';

/**
 * `hutong doctor`: checks a deployment the way an operator would before trusting it with payments, and prints what to
 * fix. Run it on each hub host with that hub's environment. A failed check exits 1; a warning says what production
 * needs that this deployment lacks.
 */
export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to do, for a warning or a failure. */
  readonly fix?: string;
}

/** Clocks further apart than this make expiries (quotes, holds, step-up codes) and audit times disagree between hubs. */
export const MAX_CLOCK_SKEW_MS = 500;

/** Each check's database work is bounded: a doctor must answer even when the database does not. */
const CHECK_DEADLINE_MS = 5_000;

function deadline<T>(work: Promise<T>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${CHECK_DEADLINE_MS} ms`)), CHECK_DEADLINE_MS);
    work.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error instanceof Error ? error : new Error(String(error)))),
    );
  });
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? 'unknown error';

async function setting(db: Db, name: string): Promise<string | undefined> {
  const [row] = await db.query<{ setting: string }>('select setting from pg_settings where name = $1', [name]);
  return row?.setting;
}

/** The checks that need the database; `db` is open. */
async function databaseChecks(db: Db): Promise<Check[]> {
  const checks: Check[] = [];
  // Writable: a transaction that writes and rolls back (a standby, a read-only or a full database refuses).
  try {
    await deadline(
      db.transaction(async (tx) => {
        await tx.query('create temporary table hutong_doctor_probe (x int) on commit drop');
        await tx.query('insert into hutong_doctor_probe values (1)');
      }),
      'a write',
    );
    checks.push({ name: 'database writable', status: 'ok', detail: `${db.engine}: a transaction wrote and committed` });
  } catch (error) {
    checks.push({ name: 'database writable', status: 'fail', detail: message(error), fix: 'point DATABASE_URL at the primary (target_session_attrs=read-write) and check its disk and permissions' });
  }

  // Migrations: every file applied, none unknown to this build (a newer hub ran here, or an older build is deployed).
  try {
    const known = loadMigrations().map((m) => m.version);
    const [table] = await deadline(db.query<{ t: string | null }>(`select to_regclass('schema_migrations')::text as t`), 'migrations');
    const applied = new Set(table?.t == null ? [] : (await deadline(db.query<{ version: string }>('select version from schema_migrations'), 'migrations')).map((r) => r.version));
    const missing = known.filter((v) => !applied.has(v));
    const unknown = [...applied].filter((v) => !known.includes(v));
    if (missing.length > 0) checks.push({ name: 'migrations', status: 'fail', detail: `${missing.length} not applied (first: ${missing[0] ?? ''})`, fix: 'run `hutong migrate` (hubs also apply them at start)' });
    else if (unknown.length > 0) checks.push({ name: 'migrations', status: 'warn', detail: `the database has ${unknown.length} migration(s) this build does not know (${unknown[0] ?? ''})`, fix: 'deploy the same hub version on every host' });
    else checks.push({ name: 'migrations', status: 'ok', detail: `all ${known.length} applied` });
  } catch (error) {
    checks.push({ name: 'migrations', status: 'fail', detail: message(error), fix: 'run `hutong migrate`' });
  }

  if (db.engine === 'pglite') {
    checks.push({ name: 'engine', status: 'warn', detail: 'embedded PGlite: one process, no standby', fix: 'for production set DATABASE_URL=postgres://… (PostgreSQL with a synchronous standby)' });
    return checks;
  }

  try {
    // Autovacuum keeps the planner's statistics and reclaims the rows that every payment's updates leave behind.
    const autovacuum = await deadline(setting(db, 'autovacuum'), 'autovacuum');
    checks.push(
      autovacuum === 'on'
        ? { name: 'autovacuum', status: 'ok', detail: 'on' }
        : { name: 'autovacuum', status: 'fail', detail: `autovacuum = ${autovacuum ?? 'unknown'}: tables bloat and plans go stale under load`, fix: "ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();" },
    );

    // An acknowledged payment survives the loss of one node only if its COMMIT waited for a synchronous standby.
    const [standbys, synchronousCommit, inRecovery] = await Promise.all([
      deadline(db.query<{ n: bigint }>(`select count(*) as n from pg_stat_replication where sync_state in ('sync', 'quorum')`), 'replication'),
      deadline(setting(db, 'synchronous_commit'), 'synchronous_commit'),
      deadline(db.query<{ r: boolean }>('select pg_is_in_recovery() as r'), 'recovery'),
    ]);
    const sync = standbys[0]?.n ?? 0n;
    if (inRecovery[0]?.r === true) checks.push({ name: 'replication', status: 'fail', detail: 'connected to a standby (in recovery)', fix: 'connect to the primary: a multi-host DATABASE_URL with target_session_attrs=read-write' });
    else if (sync === 0n) checks.push({ name: 'replication', status: 'warn', detail: 'no synchronous standby: an acknowledged payment lives on one node only', fix: "add a standby and set synchronous_standby_names (pg_auto_failover does both); keep synchronous_commit = on" });
    else if (synchronousCommit === 'off' || synchronousCommit === 'local') checks.push({ name: 'replication', status: 'fail', detail: `synchronous_commit = ${synchronousCommit}: commits do not wait for the standby`, fix: 'ALTER SYSTEM SET synchronous_commit = on' });
    else checks.push({ name: 'replication', status: 'ok', detail: `${sync} synchronous standby(s), synchronous_commit = ${synchronousCommit ?? 'on'}` });
  } catch (error) {
    checks.push({ name: 'postgresql settings', status: 'fail', detail: message(error), fix: 'check that the hub may read pg_settings and pg_stat_replication' });
  }

  // This host's clock against the database's (every hub host runs the doctor: hubs agree when each agrees with it).
  try {
    const before = Date.now();
    const [row] = await deadline(db.query<{ now: Date }>('select clock_timestamp() as now'), 'clock');
    const after = Date.now();
    const skewMs = row === undefined ? 0 : Math.round(row.now.getTime() - (before + after) / 2);
    const uncertaintyMs = Math.ceil((after - before) / 2);
    checks.push(
      Math.abs(skewMs) - uncertaintyMs > MAX_CLOCK_SKEW_MS
        ? { name: 'clock', status: 'fail', detail: `this host is ${-skewMs} ms off the database's clock (±${uncertaintyMs} ms)`, fix: 'run NTP (chrony or systemd-timesyncd) on every hub host and the database host' }
        : { name: 'clock', status: 'ok', detail: `within ${Math.abs(skewMs)} ms of the database's clock (±${uncertaintyMs} ms)` },
    );
  } catch (error) {
    checks.push({ name: 'clock', status: 'fail', detail: message(error) });
  }
  try {
    // The operator's reference rates: without them limits and risk cannot weigh other currencies than EUR.
    const rates = await deadline(referenceRatesIn(db), 'fx rates');
    if (rates === undefined || rates.currencies === 0) {
      checks.push({ name: 'fx reference rates', status: 'warn', detail: 'none loaded: payments in currencies other than EUR are refused (fx_rate_unavailable)', fix: 'POST /v1/operator/fx/rates with the ECB daily document (eurofxref-daily.xml)' });
    } else checks.push({ name: 'fx reference rates', status: 'ok', detail: `${rates.currencies} currencies as of ${rates.asOf ?? '?'}` });
  } catch (error) {
    checks.push({ name: 'fx reference rates', status: 'fail', detail: message(error) });
  }
  return checks;
}

/** The key-encrypting key: where it lives, who can read it, and whether it opens this database's data keys. */
async function keyChecks(db: Db | undefined, config: HubConfig): Promise<Check[]> {
  const checks: Check[] = [];
  if (config.kek !== undefined && config.kek !== '') {
    checks.push({ name: 'key location', status: 'ok', detail: 'key-encrypting key from HUTONG_KEK (not on disk)' });
  } else {
    const keyFile = keyFilePath(config.keyDir);
    const warnings = privateFileWarnings({ dataDir: config.dataDir, keyFile: existsSync(keyFile) ? keyFile : undefined });
    if (!existsSync(keyFile)) checks.push({ name: 'key location', status: 'warn', detail: `no key file at ${keyFile} yet (the first start creates it)`, fix: 'start the hub once, or set HUTONG_KEK from your secret store' });
    else if (warnings.length > 0) for (const w of warnings) checks.push({ name: 'key location', status: 'fail', detail: w });
    else checks.push({ name: 'key location', status: 'ok', detail: `${keyFile}: outside the data directory, mode 0600` });
  }
  if (db !== undefined) {
    try {
      // Only keys already there are tried: the doctor writes nothing (the vault would create a first data key).
      const [table] = await deadline(db.query<{ t: string | null }>(`select to_regclass('data_keys')::text as t`), 'data keys');
      const [count] = table?.t == null ? [] : await deadline(db.query<{ n: bigint }>('select count(*) as n from data_keys'), 'data keys');
      if ((count?.n ?? 0n) === 0n) {
        checks.push({ name: 'key opens the data', status: 'ok', detail: 'no data keys yet (the first start creates them under this key)' });
        return checks;
      }
      const vault = createVault({ db, clock: systemClock, keys: defaultKeySource(config) });
      await deadline(vault.warm(), 'the data keys');
      checks.push({ name: 'key opens the data', status: 'ok', detail: "the key-encrypting key unwraps this database's data keys" });
    } catch (error) {
      checks.push({ name: 'key opens the data', status: 'fail', detail: message(error), fix: error instanceof StartupError ? 'use the key this database was created with (HUTONG_KEK or HUTONG_KEY_DIR)' : 'see the hub log' });
    }
  }
  return checks;
}

function configChecks(config: HubConfig): Check[] {
  const checks: Check[] = [];
  if (config.demo) checks.push({ name: 'demo mode', status: 'fail', detail: 'HUTONG_DEMO is on: demo helpers and test data are for a sandbox only', fix: 'unset HUTONG_DEMO' });
  else checks.push({ name: 'demo mode', status: 'ok', detail: 'off' });
  const token = config.operatorToken;
  if (token === undefined || token === '') checks.push({ name: 'operator credential', status: 'warn', detail: 'HUTONG_OPERATOR_TOKEN unset: one is generated into the data directory', fix: 'set HUTONG_OPERATOR_TOKEN from your secret store (at least 32 random characters)' });
  else if (token.length < 32) checks.push({ name: 'operator credential', status: 'fail', detail: `HUTONG_OPERATOR_TOKEN has ${token.length} characters`, fix: 'use at least 32 random characters' });
  else checks.push({ name: 'operator credential', status: 'ok', detail: 'set' });
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  checks.push(major > 20 || (major === 20 && minor >= 19) ? { name: 'node', status: 'ok', detail: process.version } : { name: 'node', status: 'fail', detail: `${process.version} is older than 20.19`, fix: 'install Node.js 20.19 or newer' });
  return checks;
}

export async function runDoctor(config: HubConfig): Promise<Check[]> {
  const checks = configChecks(config);
  let db: Db | undefined;
  try {
    // postgres.js connects on the first statement, which the deadline bounds; PGlite starts a whole database in this
    // process and takes the time it takes.
    db = await openDb({ databaseUrl: config.databaseUrl, dataDir: join(config.dataDir, 'pglite'), maxConnections: 2, timeouts: { connectMs: CHECK_DEADLINE_MS } });
    await deadline(db.query('select 1'), 'select 1');
    checks.push({ name: 'database reachable', status: 'ok', detail: db.engine === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL answered' });
  } catch (error) {
    checks.push({ name: 'database reachable', status: 'fail', detail: message(error), fix: 'check DATABASE_URL, the network and the server' });
    await db?.close().catch(() => undefined);
    db = undefined;
  }
  try {
    if (db !== undefined) checks.push(...(await databaseChecks(db)));
    checks.push(...(await keyChecks(db, config)));
  } finally {
    await db?.close().catch(() => undefined);
  }
  return checks;
}

const MARK: Record<CheckStatus, string> = { ok: '✓', warn: '!', fail: '✗' };

export function formatChecks(checks: readonly Check[]): string {
  const lines = checks.map((c) => `${MARK[c.status]} ${c.name}: ${c.detail}${c.fix !== undefined && c.status !== 'ok' ? `\n    fix: ${c.fix}` : ''}`);
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  lines.push(failed > 0 ? `${failed} check(s) failed, ${warned} warning(s)` : warned > 0 ? `no failures, ${warned} warning(s)` : 'every check passed');
  return lines.join('\n');
}

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatChecks, runDoctor, type Check } from '../../src/cli/doctor.ts';
import { systemClock } from '../../src/platform/clock.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { openPostgres } from '../../src/platform/db.ts';
import { migrate } from '../../src/platform/migrate.ts';
import { createVault, defaultKeySource } from '../../src/platform/vault.ts';
import { createScratchPostgres, postgresReachable } from '../support/engines.ts';

const byName = (checks: readonly Check[], name: string) => {
  const found = checks.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no check named ${name} in ${JSON.stringify(checks)}`);
  return found;
};

describe('hutong doctor on PostgreSQL', async () => {
  const reachable = await postgresReachable();
  let scratch: { url: string; drop: () => Promise<void> };
  let root: string;
  const config = (env: Record<string, string> = {}) =>
    loadConfig({ DATABASE_URL: scratch.url, HUTONG_DATA_DIR: join(root, 'data'), HUTONG_OPERATOR_TOKEN: 'x'.repeat(40), ...env });

  beforeAll(async () => {
    if (!reachable) return;
    root = mkdtempSync(join(tmpdir(), 'hutong-doctor-'));
    scratch = await createScratchPostgres();
    // A deployment as a first start leaves it: migrated, data keys wrapped under the key file's key.
    const db = openPostgres({ url: scratch.url, maxConnections: 2 });
    await migrate(db);
    await createVault({ db, clock: systemClock, keys: defaultKeySource(config()) }).warm();
    await db.close();
  });
  afterAll(async () => {
    if (!reachable) return;
    await scratch.drop();
    rmSync(root, { recursive: true, force: true });
  });

  it.runIf(reachable)('reports each property of the deployment as it is', async () => {
    const checks = await runDoctor(config());
    expect(byName(checks, 'database reachable').status).toBe('ok');
    expect(byName(checks, 'database writable').status).toBe('ok');
    expect(byName(checks, 'migrations').status).toBe('ok');
    expect(byName(checks, 'key location').status).toBe('ok');
    expect(byName(checks, 'key opens the data').status).toBe('ok');
    expect(byName(checks, 'clock').status).toBe('ok');
    expect(byName(checks, 'demo mode').status).toBe('ok');
    expect(byName(checks, 'operator credential').status).toBe('ok');
    // A first start loads no reference FX rates (outside demo mode): the operator's to load.
    expect(byName(checks, 'fx reference rates')).toMatchObject({ status: 'warn', fix: expect.stringContaining('/v1/operator/fx/rates') });
    // What the server really has: this machine's cluster runs without autovacuum and without a standby.
    const probe = openPostgres({ url: scratch.url, maxConnections: 1 });
    const [row] = await probe.query<{ setting: string }>(`select setting from pg_settings where name = 'autovacuum'`);
    const [standbys] = await probe.query<{ n: bigint }>(`select count(*) as n from pg_stat_replication where sync_state in ('sync', 'quorum')`);
    await probe.close();
    expect(byName(checks, 'autovacuum').status).toBe(row?.setting === 'on' ? 'ok' : 'fail');
    expect(byName(checks, 'replication').status).toBe((standbys?.n ?? 0n) > 0n ? 'ok' : 'warn');
    const text = formatChecks(checks);
    expect(text).toMatch(/check\(s\) failed|no failures|every check passed/);
    if (row?.setting !== 'on') expect(text).toContain('fix: ALTER SYSTEM SET autovacuum = on');
  });

  it.runIf(reachable)('a key-encrypting key that does not open the data, a key file inside the data directory, demo mode and a short operator credential fail', async () => {
    const wrongKey = await runDoctor(config({ HUTONG_KEK: randomBytes(32).toString('base64') }));
    expect(byName(wrongKey, 'key opens the data').status).toBe('fail');
    // The key itself never appears in what the doctor prints.
    const inside = await runDoctor(config({ HUTONG_KEY_DIR: join(root, 'data', 'keys'), HUTONG_DEMO: '1', HUTONG_OPERATOR_TOKEN: 'short' }));
    expect(byName(inside, 'demo mode').status).toBe('fail');
    expect(byName(inside, 'operator credential').status).toBe('fail');
    // No key file there yet: the doctor says so and creates nothing.
    expect(byName(inside, 'key location').status).toBe('warn');
  });

  it.runIf(reachable)('an unreachable database is one failed check with what to fix, within its deadline', async () => {
    const started = Date.now();
    const checks = await runDoctor(loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere', HUTONG_DATA_DIR: join(root, 'data') }));
    expect(byName(checks, 'database reachable').status).toBe('fail');
    expect(byName(checks, 'database reachable').fix).toContain('DATABASE_URL');
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

describe('hutong doctor on the embedded engine', () => {
  it('finds an unmigrated data directory and says the engine is not for production', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hutong-doctor-'));
    try {
      const checks = await runDoctor(loadConfig({ HUTONG_DATA_DIR: join(root, 'data'), DATABASE_URL: '' }));
      expect(byName(checks, 'database reachable').status).toBe('ok');
      expect(byName(checks, 'migrations').status).toBe('fail');
      expect(byName(checks, 'engine').status).toBe('warn');
      expect(checks.some((c) => c.name === 'autovacuum')).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);
});

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createHub } from '../../src/main.ts';
import { seedDemoNetwork } from '../../src/demo/seed.ts';
import { defaultKeyDir, loadConfig } from '../../src/platform/config.ts';
import { createLogger, maskPans } from '../../src/platform/logger.ts';
import { loadMigrations, migrate } from '../../src/platform/migrate.ts';
import { openPglite, openPostgres } from '../../src/platform/db.ts';
import { availableEngines, createScratchPostgres, openTestDb } from '../support/engines.ts';

const run = promisify(execFile);
const engines = await availableEngines();
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'hutong.js');

/** A data directory and, on PostgreSQL, a scratch database: what a real deployment of the hub would have. */
async function deployment(engine: 'pglite' | 'postgres') {
  const dataDir = mkdtempSync(join(tmpdir(), 'hutong-cli-'));
  const scratch = engine === 'postgres' ? await createScratchPostgres() : undefined;
  const env = { ...process.env, HUTONG_DATA_DIR: dataDir, HUTONG_KEY_DIR: '', DATABASE_URL: scratch?.url ?? '', HUTONG_LOG_LEVEL: 'silent' };
  return {
    dataDir,
    env,
    config: () => loadConfig(env),
    cli: async (...args: string[]) => {
      try {
        const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env, timeout: 60_000 });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    },
    openDb: async () => (engine === 'postgres' ? openPostgres({ url: scratch!.url }) : openPglite(join(dataDir, 'pglite'))),
    cleanup: async () => {
      await scratch?.drop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    },
  };
}

describe.each(engines)('storage, migrations and the CLI on %s', (engine) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it('migrates an empty database to the latest version, and a second run applies nothing', async () => {
    const t = await openTestDb(engine, { migrate: false });
    cleanups.push(() => t.drop());
    const applied = await migrate(t.db);
    expect(applied).toEqual(loadMigrations().map((m) => m.version));
    expect(await migrate(t.db)).toEqual([]);
    const tables = await t.db.query<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = 'public'`);
    expect(tables.map((r) => r.table_name)).toEqual(expect.arrayContaining(['participants', 'credentials', 'audit_log', 'idempotency_keys', 'webhook_deliveries']));
    const [big] = await t.db.query<{ v: bigint }>('select 9223372036854775807::int8 as v');
    expect(big?.v).toBe(9223372036854775807n);
  });

  it('seeds the demo network once: a restart creates nothing new and the same demo credentials work', async () => {
    const d = await deployment(engine);
    cleanups.push(d.cleanup);
    const logger = createLogger({ level: 'silent' });
    const first = await createHub(d.config(), { logger });
    const seeded = await seedDemoNetwork(first);
    expect(seeded.created).toBe(true);
    const [count1] = await first.db.query<{ p: bigint; c: bigint; cr: bigint }>('select (select count(*) from participants) as p, (select count(*) from customers) as c, (select count(*) from credentials) as cr');
    await first.close();

    const second = await createHub(d.config(), { logger });
    const again = await seedDemoNetwork(second);
    expect(again.created).toBe(false);
    expect(again.participants.map((p) => p.clientSecret)).toEqual(seeded.participants.map((p) => p.clientSecret));
    const [count2] = await second.db.query<{ p: bigint; c: bigint; cr: bigint }>('select (select count(*) from participants) as p, (select count(*) from customers) as c, (select count(*) from credentials) as cr');
    expect(count2).toEqual(count1);
    const wallet = again.participants.find((p) => p.kind === 'wallet')!;
    const res = await second.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: wallet.clientId, client_secret: wallet.clientSecret } });
    expect(res.statusCode).toBe(200);
    await second.close();
    if (engine === 'pglite') {
      // The generated secrets are private to the hub's user.
      expect(statSync(join(d.dataDir, 'operator-token')).mode & 0o777).toBe(0o600);
      expect(statSync(join(defaultKeyDir(d.dataDir), 'kek.json')).mode & 0o777).toBe(0o600);
    }
  });

  it('`hutong audit verify` passes on an intact chain, then fails naming the first altered record', async () => {
    const d = await deployment(engine);
    cleanups.push(d.cleanup);
    const hub = await createHub(d.config(), { logger: createLogger({ level: 'silent' }) });
    await seedDemoNetwork(hub);
    await hub.close();

    const good = await d.cli('audit', 'verify');
    expect(good.code).toBe(0);
    const report = JSON.parse(good.stdout);
    expect(report.ok).toBe(true);
    expect(report.checked).toBeGreaterThan(10);

    const db = await d.openDb();
    await db.query(`update audit_log set details = '{"kycLevel": 3}'::jsonb where chain_seq = 5`);
    await db.close();
    const bad = await d.cli('audit', 'verify');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, brokenAt: { chainSeq: '5', reason: expect.stringContaining('altered') } });
    expect(bad.stderr).toContain('BROKEN at record 5');
  });

  it('`hutong migrate` applies migrations and reports the engine', async () => {
    const d = await deployment(engine);
    cleanups.push(d.cleanup);
    const res = await d.cli('migrate');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ engine, applied: loadMigrations().map((m) => m.version) });
  });
});

describe('logs', () => {
  it('never contain credentials, and mask card numbers', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = createLogger({ level: 'debug', destination });
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-logs-'));
    const hub = await createHub(loadConfig({ HUTONG_DATA_DIR: dataDir }), { logger, db: await openPglite(undefined) });
    const demo = await seedDemoNetwork(hub);
    const wallet = demo.participants.find((p) => p.key === 'wallet-a')!;
    const token = (await hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: wallet.clientId, client_secret: wallet.clientSecret } })).json().access_token as string;
    await hub.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
    await hub.app.inject({ method: 'GET', url: '/v1/operator/participants', headers: { authorization: `Bearer ${hub.operatorToken}` } });
    logger.info({ note: 'card 4242424242424242 seen' }, 'a careless line with 4242 4242 4242 4242');
    await hub.close();
    await hub.db.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    const all = lines.join('');
    expect(all).toContain('/v1/me'); // request lines are logged…
    expect(all).toContain('"reqId"');
    for (const secret of [wallet.clientSecret, token, hub.operatorToken]) expect(all).not.toContain(secret); // …secrets are not
    expect(all).not.toContain('4242424242424242');
    expect(all).not.toContain('4242 4242 4242 4242');
    expect(all).toContain('424242******4242');
    expect(maskPans('order 12345678901234 ref')).toBe('order 12345678901234 ref'); // not Luhn-valid: left alone
  });
});

describe('`hutong <command> --help`', () => {
  it('prints the command\'s usage and does nothing else: no hub started or asked, no database opened', async () => {
    const { runCli } = await import('../../src/cli/cli.ts');
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-help-'));
    const saved = { ...process.env };
    // A port nothing listens on: a command that reached for a hub instead of printing its usage would fail.
    Object.assign(process.env, { HUTONG_DATA_DIR: dataDir, PORT: '9', DATABASE_URL: '' });
    try {
      for (const argv of [['start', '--help'], ['token', '--help'], ['migrate', '--help'], ['audit', 'verify', '--help'], ['keys', 'rotate', '-h'], ['demo', '--help'], ['doctor', '--help'], ['simulate', 'bank', '--help'], ['qr', '--help']]) {
        const out: string[] = [];
        const err: string[] = [];
        const code = await runCli(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
        expect({ argv, code, err }).toEqual({ argv, code: 0, err: [] });
        expect(out.join('\n'), argv.join(' ')).toContain(argv[0] === 'qr' ? 'hutong qr' : `hutong ${argv[0]}`);
      }
      expect(readdirSync(dataDir)).toEqual([]);
    } finally {
      process.env = saved;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('`hutong token` and `hutong simulate bank` look for the hub at PORT and, when none answers there, say how to point them at it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-port-'));
    try {
      writeFileSync(join(dataDir, 'demo-credentials.json'), JSON.stringify({ 'wallet-a': { clientId: 'cli_x', clientSecret: 'sk_x' } }));
      const env = { ...process.env, HUTONG_DATA_DIR: dataDir, PORT: '9', DATABASE_URL: '', HUTONG_LOG_LEVEL: 'silent' };
      const cli = async (...args: string[]) => run(process.execPath, [BIN, ...args], { env, timeout: 60_000 }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
      const token = await cli('token', 'wallet-a');
      expect(token.code).toBe(1);
      expect(token.stderr).toContain('no hub answers at http://127.0.0.1:9');
      expect(token.stderr).toContain('PORT=<its port> hutong token wallet-a');
      const bank = await cli('simulate', 'bank');
      expect(bank.code).toBe(1);
      expect(bank.stderr).toContain('no hub answers at http://localhost:9');
      expect(bank.stderr).toContain('PORT=<its port> hutong simulate bank');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

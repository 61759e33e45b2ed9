import { execFile } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createHub, type Hub } from '../../src/main.ts';
import { seedDemoNetwork } from '../../src/demo/seed.ts';
import { loadConfig, type HubConfig } from '../../src/platform/config.ts';
import { openPostgres } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { keyFilePath, legacyKeyFilePath } from '../../src/platform/vault.ts';
import { availableEngines, createScratchPostgres } from '../support/engines.ts';

const run = promisify(execFile);
const engines = await availableEngines();
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'hutong.js');

const mode = (path: string) => statSync(path).mode & 0o777;

/** Every entry under a directory (not following links), with its permission bits. */
function walk(root: string): { path: string; mode: number; dir: boolean }[] {
  const out: { path: string; mode: number; dir: boolean }[] = [];
  const visit = (path: string) => {
    const s = lstatSync(path);
    if (s.isSymbolicLink()) return;
    out.push({ path, mode: s.mode & 0o777, dir: s.isDirectory() });
    if (s.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(root);
  return out;
}

/** A fresh deployment: a parent directory in which the hub creates its data directory and key directory itself. */
async function deployment(engine: 'pglite' | 'postgres', env: (dataDir: string) => Record<string, string> = () => ({})) {
  const root = mkdtempSync(join(tmpdir(), 'hutong-keys-'));
  const dataDir = join(root, 'data');
  const scratch = engine === 'postgres' ? await createScratchPostgres() : undefined;
  // No HUTONG_OPERATOR_TOKEN: the hub generates one into the data directory, as on a default deployment.
  const cliEnv = { ...process.env, HUTONG_DATA_DIR: dataDir, HUTONG_KEY_DIR: '', HUTONG_KEK: '', HUTONG_OPERATOR_TOKEN: '', DATABASE_URL: scratch?.url ?? '', HUTONG_LOG_LEVEL: 'silent', ...env(dataDir) };
  const config = (): HubConfig => loadConfig(cliEnv, { webhooks: { enabled: false, pollMs: 1000 } });
  return {
    root,
    dataDir,
    config,
    /** Starts a hub on this deployment (the engine's own storage, as `hutong start` opens it), logging into `lines`. */
    async start(lines: string[] = []): Promise<Hub> {
      const destination = new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString('utf8'));
          done();
        },
      });
      return createHub(config(), {
        logger: createLogger({ level: 'info', destination }),
        ...(scratch !== undefined ? { db: openPostgres({ url: scratch.url, maxConnections: 4 }) } : {}),
      });
    },
    async cli(...args: string[]) {
      try {
        const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: cliEnv, timeout: 60_000 });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    },
    async cleanup() {
      await scratch?.drop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Closes a hub and, when the test handed it its own PostgreSQL connection, that connection. */
async function stop(hub: Hub, engine: 'pglite' | 'postgres') {
  await hub.close();
  if (engine === 'postgres') await hub.db.close();
}

/** The warnings logged about this deployment's files (not, say, the PostgreSQL autovacuum warning). */
const warnings = (lines: string[], root: string) =>
  lines
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === 40 && l.msg.includes(root))
    .map((l) => l.msg);

describe.each(engines)('the key file and the data directory on %s', (engine) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it('creates the data and key directories 0700 and their files private, the key file outside the data directory', async () => {
    const d = await deployment(engine);
    cleanups.push(() => d.cleanup());
    const lines: string[] = [];
    const hub = await d.start(lines);
    await seedDemoNetwork(hub);
    const keyDir = hub.config.keyDir;
    expect(keyDir).toBe(`${d.dataDir}-keys`);
    await stop(hub, engine);

    expect(mode(d.dataDir)).toBe(0o700);
    expect(mode(keyDir)).toBe(0o700);
    expect(mode(keyFilePath(keyDir))).toBe(0o600);
    expect(existsSync(legacyKeyFilePath(d.dataDir))).toBe(false);
    expect(walk(d.dataDir).some((e) => e.path.endsWith('kek.json'))).toBe(false);
    expect(mode(join(d.dataDir, 'operator-token'))).toBe(0o600);
    if (engine === 'pglite') {
      // Every file PGlite wrote (WAL included), and every directory, is private to the hub's user.
      const entries = walk(join(d.dataDir, 'pglite'));
      expect(entries.length).toBeGreaterThan(100);
      expect(entries.some((e) => e.path.includes('pg_wal'))).toBe(true);
      expect(entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.path} ${e.mode.toString(8)}`)).toEqual([]);
      expect(entries.filter((e) => e.dir).every((e) => e.mode === 0o700)).toBe(true);
    }
    // A private layout: nothing to warn about.
    expect(warnings(lines, d.root)).toEqual([]);
  });

  it('warns, one line each, about a data directory, key directory or key file other users can read', async () => {
    const d = await deployment(engine);
    cleanups.push(() => d.cleanup());
    await stop(await d.start(), engine);
    const keyDir = d.config().keyDir;
    chmodSync(d.dataDir, 0o755);
    chmodSync(keyDir, 0o750);
    chmodSync(keyFilePath(keyDir), 0o644);
    const lines: string[] = [];
    await stop(await d.start(lines), engine);
    const warned = warnings(lines, d.root);
    expect(warned).toHaveLength(3);
    expect(warned).toEqual(
      expect.arrayContaining([
        `the data directory ${d.dataDir} is accessible to other users (mode 0755): chmod 700 ${d.dataDir}`,
        `the key directory ${keyDir} is accessible to other users (mode 0750): chmod 700 ${keyDir}`,
        `the key file ${keyFilePath(keyDir)} is accessible to other users (mode 0644): chmod 600 ${keyFilePath(keyDir)}`,
      ]),
    );
    // Warned, not changed: the operator decides.
    expect(mode(d.dataDir)).toBe(0o755);
  });

  it('warns when HUTONG_KEY_DIR puts the key file inside the data directory', async () => {
    const d = await deployment(engine, (dataDir) => ({ HUTONG_KEY_DIR: join(dataDir, 'secrets') }));
    cleanups.push(() => d.cleanup());
    const inside = join(d.dataDir, 'secrets');
    expect(d.config().keyDir).toBe(inside);
    const lines: string[] = [];
    await stop(await d.start(lines), engine);
    expect(existsSync(keyFilePath(inside))).toBe(true);
    expect(mode(inside)).toBe(0o700);
    expect(warnings(lines, d.root)).toEqual([
      `the key file ${keyFilePath(inside)} is inside the data directory ${d.dataDir}: a copy of the data would carry the key that decrypts it; set HUTONG_KEY_DIR to a directory outside it`,
    ]);
  });

  it('moves a key file found at the old location inside the data directory, and the data written under it still opens; `hutong keys rotate` works after', async () => {
    const d = await deployment(engine);
    cleanups.push(() => d.cleanup());
    const first = await d.start();
    const demo = await seedDemoNetwork(first);
    const wallet = demo.participants.find((p) => p.key === 'wallet-a');
    if (wallet === undefined) throw new Error('no demo wallet');
    const [sealed] = await first.db.query<{ webhook_secret_sealed: string }>('select webhook_secret_sealed from participants where id = $1', [wallet.participantId]);
    const secret = await first.vault.open(sealed?.webhook_secret_sealed ?? '');
    await stop(first, engine);

    // The layout of a hub from before the move: the key file in <data dir>/keys/, no key directory.
    const keyDir = d.config().keyDir;
    const ring = readFileSync(keyFilePath(keyDir), 'utf8');
    mkdirSync(join(d.dataDir, 'keys'), { mode: 0o700 });
    renameSync(keyFilePath(keyDir), legacyKeyFilePath(d.dataDir));
    rmSync(keyDir, { recursive: true });

    const lines: string[] = [];
    const second = await d.start(lines);
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain(
      `moved the key file from ${legacyKeyFilePath(d.dataDir)} to ${keyFilePath(keyDir)}: it no longer sits in the data directory beside the data it protects`,
    );
    expect(existsSync(legacyKeyFilePath(d.dataDir))).toBe(false);
    expect(existsSync(join(d.dataDir, 'keys'))).toBe(false);
    expect(readFileSync(keyFilePath(keyDir), 'utf8')).toBe(ring);
    expect(mode(keyFilePath(keyDir))).toBe(0o600);
    expect(mode(keyDir)).toBe(0o700);
    // The data written under the moved key still opens: a sealed secret, and the demo credentials (derived from a
    // vault key) still authenticate.
    const [again] = await second.db.query<{ webhook_secret_sealed: string }>('select webhook_secret_sealed from participants where id = $1', [wallet.participantId]);
    expect(await second.vault.open(again?.webhook_secret_sealed ?? '')).toBe(secret);
    const token = await second.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: wallet.clientId, client_secret: wallet.clientSecret } });
    expect(token.statusCode).toBe(200);
    expect(warnings(lines, d.root)).toEqual([]);
    await stop(second, engine);

    // Rotation re-wraps the data keys under a new KEK in the moved key file; a hub started after it reads the data.
    const rotated = await d.cli('keys', 'rotate');
    expect(rotated.code, rotated.stderr).toBe(0);
    const { kekId } = JSON.parse(rotated.stdout) as { kekId: string };
    expect(JSON.parse(readFileSync(keyFilePath(keyDir), 'utf8'))).toMatchObject({ activeId: kekId });
    expect(existsSync(legacyKeyFilePath(d.dataDir))).toBe(false);
    const third = await d.start();
    const [after] = await third.db.query<{ webhook_secret_sealed: string; kek_id: string }>(
      'select p.webhook_secret_sealed, k.kek_id from participants p, data_keys k where p.id = $1 order by k.id limit 1',
      [wallet.participantId],
    );
    expect(after?.kek_id).toBe(kekId);
    expect(await third.vault.open(after?.webhook_secret_sealed ?? '')).toBe(secret);
    await stop(third, engine);
  }, 240_000);
});

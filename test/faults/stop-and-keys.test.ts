import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHub } from '../../src/main.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { clusterAvailable, createPgCluster, freePort, type PgCluster } from '../support/pg-cluster.ts';

/**
 * The real CLI in child processes: `hutong start` on a PostgreSQL that was restarted (and one that is down) stops within
 * 10 s of SIGTERM; `hutong start` with a key-encrypting key that does not open the database's data keys says so in one
 * line and exits non-zero, without a stack trace.
 */
const BIN = resolve('bin/hutong.js');
const STOP_LIMIT_MS = 10_000;

const dirs: string[] = [];
const children: ChildProcess[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir, `${dir}-keys`);
  return dir;
};

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Running {
  readonly child: ChildProcess;
  readonly base: string;
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startHub(env: NodeJS.ProcessEnv): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'start'], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  const started = performance.now();
  while (!out.includes('Ctrl-C stops the hub')) {
    if (child.exitCode !== null) throw new Error(`the hub exited (${child.exitCode}): ${out}`);
    if (performance.now() - started > 120_000) throw new Error(`the hub did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, base: `http://127.0.0.1:${port}`, output: () => out, exited };
}

/** SIGTERM, then how long the process took to exit (Infinity past the limit, when it is killed). */
async function stopTime(running: Running): Promise<number> {
  const sent = performance.now();
  running.child.kill('SIGTERM');
  const limit = new Promise<'late'>((ok) => setTimeout(() => ok('late'), STOP_LIMIT_MS + 5_000));
  const outcome = await Promise.race([running.exited, limit]);
  if (outcome === 'late') {
    running.child.kill('SIGKILL');
    return Number.POSITIVE_INFINITY;
  }
  return performance.now() - sent;
}

const available = clusterAvailable();

describe.skipIf(!available)('SIGTERM after PostgreSQL restarts (a real hub process)', () => {
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await createPgCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.remove();
  });

  const hubEnv = async (name: string): Promise<NodeJS.ProcessEnv> => ({
    DATABASE_URL: await cluster.createDatabase(name),
    HUTONG_DATA_DIR: tempDir('hutong-stop-'),
    HUTONG_KEK: randomBytes(32).toString('base64'),
    HUTONG_OPERATOR_TOKEN: 'op_stop_test',
    HUTONG_WEBHOOKS: '0',
    HUTONG_LOG_LEVEL: 'warn',
    HUTONG_DEMO: '1',
  });

  it('stops within 10 s of SIGTERM after a restart, and within 10 s with its database down', async () => {
    const afterRestart = await startHub(await hubEnv('hutong_stop_a'));
    const down = await startHub(await hubEnv('hutong_stop_b'));
    for (const h of [afterRestart, down]) expect((await fetch(`${h.base}/health`)).status).toBe(200);
    await cluster.restart(500);
    // The hubs meet the restart (their pooled connections were ended under them) before they are told to stop.
    for (const h of [afterRestart, down]) await fetch(`${h.base}/health`).catch(() => undefined);
    const restartedMs = await stopTime(afterRestart);
    await cluster.stop();
    try {
      await fetch(`${down.base}/health`).catch(() => undefined);
      const downMs = await stopTime(down);
      console.log(`[faults] SIGTERM to exit: ${Math.round(restartedMs)} ms after a restart, ${Math.round(downMs)} ms with the database down`);
      expect(restartedMs).toBeLessThan(STOP_LIMIT_MS);
      expect(downMs).toBeLessThan(STOP_LIMIT_MS);
      expect(afterRestart.output()).toContain('stopped cleanly');
    } finally {
      await cluster.start();
    }
  }, 240_000);
});

describe('a key-encrypting key that does not open the database', () => {
  const run = (env: NodeJS.ProcessEnv) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((ok) => {
      const child = spawn(process.execPath, [BIN, 'start'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      // Bounded: a start that neither runs nor fails is killed (and the test fails on its exit code).
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        ok({ code, stdout, stderr });
      });
    });

  it('gives one clear line on stderr and a non-zero exit, no stack trace (HUTONG_KEK, and a key file)', async () => {
    // A database whose data keys are wrapped under KEK A (embedded engine: no server needed).
    const dataDir = tempDir('hutong-kek-');
    const kekA = randomBytes(32).toString('base64');
    const hub = await createHub(loadConfig({ HUTONG_DATA_DIR: dataDir, HUTONG_KEK: kekA, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: '' }, { operatorToken: 'op_kek' }), {
      logger: createLogger({ level: 'silent' }),
    });
    await hub.close();
    const base = { HUTONG_DATA_DIR: dataDir, DATABASE_URL: '', HUTONG_OPERATOR_TOKEN: 'op_kek', HUTONG_WEBHOOKS: '0', HUTONG_LOG_LEVEL: 'silent', PORT: String(await freePort()) };
    const otherKek = await run({ ...base, HUTONG_KEK: randomBytes(32).toString('base64') });
    const keyFile = await run({ ...base, HUTONG_KEK: '', HUTONG_KEY_DIR: tempDir('hutong-kek-other-') });
    for (const outcome of [otherKek, keyFile]) {
      expect(outcome.code).not.toBe(0);
      expect(outcome.code).not.toBeNull();
      const lines = outcome.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^the key-encrypting key does not open this database's data keys: data key dk_\S+ is wrapped under kek_\S+/);
      expect(outcome.stderr).not.toMatch(/\n\s+at /);
      expect(outcome.stderr).not.toContain(kekA);
    }
    // The right key still opens it.
    const right = await createHub(loadConfig({ HUTONG_DATA_DIR: dataDir, HUTONG_KEK: kekA, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: '' }, { operatorToken: 'op_kek' }), {
      logger: createLogger({ level: 'silent' }),
    });
    await right.close();
  }, 240_000);
});

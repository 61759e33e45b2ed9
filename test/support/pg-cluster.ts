import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';

/**
 * A PostgreSQL cluster of a test's own (initdb in a temporary directory, its own port), so that the test can restart,
 * stop and start it without touching the machine's server that every other test uses. The PostgreSQL 15 binaries
 * come from PG_BIN or /usr/lib/postgresql/15/bin. PostgreSQL refuses to run as root: as root the binaries run as the
 * `postgres` user (runuser), and the directory is given to it.
 */
const run = promisify(execFile);
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const BIN_DIR = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PgCluster {
  readonly port: number;
  /** A connection string to a database of this cluster. */
  url(database?: string): string;
  createDatabase(name: string): Promise<string>;
  /** Stops the server (fast shutdown: sessions are ended, as in a restart or a failover). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop, stay down `downMs`, start: resolves with when it went down and came back (performance.now()). */
  restart(downMs: number): Promise<{ readonly downAt: number; readonly upAt: number }>;
  /** Freezes every process of the server (SIGSTOP), as a stalled disk or VM pause does, for `ms`; then SIGCONT. */
  pause(ms: number): Promise<void>;
  /** Stops the server (immediately) and deletes its directory. */
  remove(): Promise<void>;
}

/**
 * Whether a cluster can be made here. Outside CI, missing binaries skip the tests that need one (with a message); in
 * CI they are an error, never a silent skip.
 */
export function clusterAvailable(): boolean {
  const present = existsSync(join(BIN_DIR, 'initdb')) && existsSync(join(BIN_DIR, 'pg_ctl'));
  if (present) return true;
  if (IN_CI) throw new Error(`PostgreSQL binaries (initdb, pg_ctl) not found in ${BIN_DIR}: the fault tests need them in CI`);
  console.warn(`[tests] PostgreSQL binaries not found in ${BIN_DIR} (set PG_BIN): the fault tests that restart a database are skipped (they run in CI)`);
  return false;
}

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL binary, as the postgres user when this process is root. Bounded. */
async function pgBin(name: string, args: readonly string[]): Promise<string> {
  const binary = join(BIN_DIR, name);
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, [...args]];
  const { stdout } = await run(file, argv, { timeout: 60_000 });
  return stdout;
}

async function ownerIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (!asRoot) return undefined;
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

export async function createPgCluster(): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'hutong-pgcluster-'));
  const owner = await ownerIds();
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  await pgBin('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  // Its own port and socket directory; no fsync (a restart here is a clean shutdown, not a crash).
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
  let running = false;
  const cluster: PgCluster = {
    port,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      const admin = postgres(cluster.url(), { max: 1, onnotice: () => undefined });
      try {
        await admin.unsafe(`create database ${name}`);
      } finally {
        await admin.end({ timeout: 1 });
      }
      return cluster.url(name);
    },
    async start() {
      await pgBin('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', serverOptions, '-w', '-t', '30', 'start']);
      running = true;
    },
    async stop() {
      await pgBin('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
      running = false;
    },
    async restart(downMs) {
      await cluster.stop();
      const downAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await cluster.start();
      return { downAt, upAt: performance.now() };
    },
    async pause(ms) {
      const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (!Number.isInteger(postmaster) || postmaster <= 0) throw new Error('no postmaster.pid');
      const { stdout } = await run('pgrep', ['-P', String(postmaster)]).catch(() => ({ stdout: '' }));
      const pids = [postmaster, ...stdout.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0)];
      const signal = (sig: NodeJS.Signals) => {
        for (const pid of pids) {
          try {
            process.kill(pid, sig);
          } catch {
            /* a backend that ended meanwhile */
          }
        }
      };
      signal('SIGSTOP');
      try {
        await new Promise((resolve) => setTimeout(resolve, ms));
      } finally {
        signal('SIGCONT');
      }
    },
    async remove() {
      if (running) await pgBin('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => undefined);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await cluster.start();
  return cluster;
}

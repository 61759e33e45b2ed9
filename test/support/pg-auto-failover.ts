import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { freePort } from './pg-cluster.ts';

/**
 * A pg_auto_failover formation of a test's own on one machine: a monitor, a primary and a synchronous standby, each on
 * its own port, each node run by its `pg_autoctl` keeper (Debian's `postgresql-15-auto-failover` and
 * `pg-auto-failover-cli`; `.ci/run` installs them). The keepers and servers run as the `postgres` user when this
 * process is root (PostgreSQL refuses root).
 *
 * The monitor's health checks are tightened from their production defaults so that a failover takes seconds, not a
 * minute; the production layout and settings are in docs/ARCHITECTURE.md ("Failover to a synchronous standby").
 */
const run = promisify(execFile);
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const PG_AUTOCTL = ['/usr/bin/pg_autoctl', '/usr/local/bin/pg_autoctl'].find((p) => existsSync(p));
const BIN_DIR = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export function autoFailoverAvailable(): boolean {
  if (PG_AUTOCTL !== undefined && existsSync(join(BIN_DIR, 'pg_ctl'))) return true;
  if (IN_CI) throw new Error('pg_autoctl not found: the failover test needs postgresql-15-auto-failover and pg-auto-failover-cli in CI');
  console.warn('[tests] pg_autoctl not found (apt-get install postgresql-15-auto-failover pg-auto-failover-cli): the failover test is skipped (it runs in CI)');
  return false;
}

export interface FormationNode {
  readonly name: string;
  readonly port: number;
  readonly reported: string;
  readonly assigned: string;
}

export interface AutoFailoverFormation {
  /** The hub's connection string: both nodes, the writable one chosen (`target_session_attrs=read-write`). */
  readonly url: string;
  /** The nodes as the monitor sees them. */
  nodes(): Promise<FormationNode[]>;
  /** The node the monitor has as primary (reported and assigned), if one is. */
  primary(): Promise<FormationNode | undefined>;
  /**
   * The primary's machine dies: its keeper and its postmaster get SIGKILL (the keeper first, or it would restart the
   * server at once). Resolves with the port of the node that was killed.
   */
  killPrimary(): Promise<number>;
  /** Resolves once another node than `oldPort` is the writable primary; rejects after `timeoutMs`. */
  waitForPromotion(oldPort: number, timeoutMs: number): Promise<FormationNode>;
  remove(): Promise<void>;
}

async function postgresOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await pause(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
}

export async function createAutoFailoverFormation(options: { database: string }): Promise<AutoFailoverFormation> {
  if (PG_AUTOCTL === undefined) throw new Error('pg_autoctl is not installed');
  const autoctl = PG_AUTOCTL;
  const dir = mkdtempSync(join(tmpdir(), 'hutong-autofailover-'));
  const owner = await postgresOwner();
  for (const sub of ['config', 'share', 'run']) mkdirSync(join(dir, sub));
  if (owner !== undefined) for (const sub of ['', 'config', 'share', 'run']) chownSync(join(dir, sub), owner.uid, owner.gid);
  const [monitorPort, port1, port2] = [await freePort(), await freePort(), await freePort()];
  // pg_autoctl keeps its state under the XDG directories: the formation's own, so that nothing leaks between runs.
  const env = {
    PATH: `${BIN_DIR}:/usr/bin:/bin`,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_DATA_HOME: join(dir, 'share'),
    XDG_RUNTIME_DIR: join(dir, 'run'),
    PG_REGRESS_SOCK_DIR: dir,
    PGHOST: dir,
  };
  const children: ChildProcess[] = [];
  const logs = new Map<string, string>();
  const start = (name: string, args: readonly string[]): ChildProcess => {
    // Its own process group: killing the group is killing the machine (keeper, its services, the server).
    const child = spawn(autoctl, [...args, '--run'], { env, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(owner ?? {}) });
    const keep = (d: Buffer) => logs.set(name, ((logs.get(name) ?? '') + d.toString()).slice(-4_000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    children.push(child);
    return child;
  };
  const monitorUrl = `postgres://postgres@127.0.0.1:${monitorPort}/pg_auto_failover`;
  const monitor = postgres(monitorUrl, { max: 1, onnotice: () => undefined, connect_timeout: 2, idle_timeout: 5 });
  const nodes = async (): Promise<FormationNode[]> =>
    (await monitor<{ nodename: string; nodeport: number; reportedstate: string; goalstate: string }[]>`select nodename, nodeport, reportedstate::text, goalstate::text from pgautofailover.node order by nodeid`).map((n) => ({
      name: n.nodename,
      port: n.nodeport,
      reported: n.reportedstate,
      assigned: n.goalstate,
    }));
  const writable = (n: FormationNode) => ['single', 'wait_primary', 'primary'].includes(n.reported) && n.reported === n.assigned;
  const processes = new Map<number, ChildProcess>();

  const formation: AutoFailoverFormation = {
    url: `postgres://postgres@127.0.0.1:${port1},127.0.0.1:${port2}/${options.database}?target_session_attrs=read-write`,
    nodes,
    async primary() {
      return (await nodes()).find(writable);
    },
    async killPrimary() {
      const primary = await formation.primary();
      if (primary === undefined) throw new Error('no primary to kill');
      const keeper = processes.get(primary.port);
      const pgdata = join(dir, `node${primary.port === port1 ? 1 : 2}`);
      const postmasterPid = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (keeper?.pid !== undefined) process.kill(-keeper.pid, 'SIGKILL');
      if (Number.isInteger(postmasterPid) && postmasterPid > 0) {
        try {
          process.kill(postmasterPid, 'SIGKILL');
        } catch {
          /* gone with its process group */
        }
      }
      return primary.port;
    },
    waitForPromotion(oldPort, timeoutMs) {
      return until('a standby promoted', timeoutMs, async () => (await nodes()).find((n) => n.port !== oldPort && writable(n)));
    },
    async remove() {
      for (const child of children) {
        if (child.pid !== undefined && child.exitCode === null) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      }
      // Servers whose keeper died first are in the same groups; any left over (a restarted postmaster) go by pid file.
      for (const sub of ['monitor', 'node1', 'node2']) {
        try {
          const pid = Number(readFileSync(join(dir, sub, 'postmaster.pid'), 'utf8').split('\n')[0]);
          if (pid > 0) process.kill(pid, 'SIGKILL');
        } catch {
          /* no server */
        }
      }
      await monitor.end({ timeout: 1 }).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    const common = ['--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl'];
    start('monitor', ['create', 'monitor', '--pgdata', join(dir, 'monitor'), '--pgport', String(monitorPort), ...common]);
    await until('the monitor', 60_000, async () => ((await monitor`select count(*)::int as n from pgautofailover.formation`)[0] === undefined ? undefined : true));
    // Seconds instead of the production defaults (5 s checks, 20 s unhealthy, 30 s demote timeout): the test's
    // primary dies with its keeper, so no old primary can keep writing while the standby is promoted.
    for (const [name, value] of [
      ['pgautofailover.health_check_period', '1000'],
      ['pgautofailover.health_check_timeout', '1000'],
      ['pgautofailover.health_check_max_retries', '1'],
      ['pgautofailover.health_check_retry_delay', '500'],
      ['pgautofailover.node_considered_unhealthy_timeout', '3000'],
      ['pgautofailover.primary_demote_timeout', '5000'],
    ] as const) {
      await monitor.unsafe(`alter system set ${name} = ${value}`);
    }
    await monitor`select pg_reload_conf()`;

    const monitorArg = ['--monitor', `postgres://autoctl_node@127.0.0.1:${monitorPort}/pg_auto_failover?sslmode=disable`];
    const node = (n: 1 | 2, port: number) => {
      const child = start(`node${n}`, ['create', 'postgres', '--pgdata', join(dir, `node${n}`), '--pgport', String(port), '--dbname', options.database, ...common, ...monitorArg]);
      processes.set(port, child);
    };
    node(1, port1);
    await until('the first node to serve', 90_000, async () => ((await nodes()).some((n) => n.port === port1 && writable(n)) ? true : undefined), 500);
    node(2, port2);
    // The standby's base backup waits for a checkpoint, which is spread over minutes by default: ask for one at once.
    const primaryAdmin = postgres(`postgres://postgres@127.0.0.1:${port1}/postgres`, { max: 1, onnotice: () => undefined, connect_timeout: 2 });
    try {
      await until(
        'the standby to catch up',
        120_000,
        async () => {
          await primaryAdmin`checkpoint`;
          const all = await nodes();
          return all.some((n) => n.port === port1 && n.reported === 'primary' && n.assigned === 'primary') && all.some((n) => n.port === port2 && n.reported === 'secondary')
            ? true
            : undefined;
        },
        1_000,
      );
    } finally {
      await primaryAdmin.end({ timeout: 1 });
    }
  } catch (error) {
    const tail = [...logs].map(([name, text]) => `--- ${name}\n${text.slice(-1_500)}`).join('\n');
    await formation.remove();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${tail}`);
  }
  return formation;
}

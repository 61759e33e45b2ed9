import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createHub } from '../src/main.ts';
import { loadConfig, type HubConfig } from '../src/platform/config.ts';
import { openPostgres } from '../src/platform/db.ts';
import { createLogger } from '../src/platform/logger.ts';

/**
 * More hub processes for the HTTP benches (`--hubs=N`): the scale-out of docs/ARCHITECTURE.md, several hub processes
 * over one PostgreSQL database, here on the same machine. Each is a process of its own started from this file, on the
 * bench's database and data directory (the same key file, hence the same vault: tokens issued by one hub verify on
 * every hub), listening on a port of its own. The load generator spreads its calls over every hub in turn, so that a
 * payment's quote and its confirmation go to different processes.
 */
export interface HubProcessOptions {
  readonly databaseUrl: string;
  readonly dataDir: string;
  readonly pool: number;
  /** Anti-enumeration limits of alias lookups, lifted as the bench lifts them in its own hub. */
  readonly aliasLimits?: Record<string, number>;
}

export interface HubProcesses {
  readonly bases: readonly string[];
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

const ENTRY = fileURLToPath(import.meta.url);

/**
 * The configuration of a bench hub, the bench's own and every other process's: the scratch database, the shared data
 * directory (key file), its share of connections, request rate limits out of the way, no webhook delivery, silent.
 */
export function benchHubConfig(options: Pick<HubProcessOptions, 'databaseUrl' | 'dataDir' | 'pool'> & { demo?: boolean }): HubConfig {
  return loadConfig(
    { HUTONG_DATA_DIR: options.dataDir, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: options.databaseUrl, HUTONG_RATE_LIMIT_PER_S: '1000000', HUTONG_DB_MAX_CONNECTIONS: String(options.pool), HUTONG_WEBHOOKS: '0' },
    // Demo mode only where a bench needs what only it allows (a connected bank's connector on plain http, loopback).
    { port: 0, host: '127.0.0.1', operatorToken: 'op_bench', demo: options.demo === true },
  );
}
/** Bounded: each is a whole hub. */
const MAX_EXTRA_HUBS = 3;

export async function startHubProcesses(count: number, options: HubProcessOptions): Promise<HubProcesses> {
  const n = Math.min(MAX_EXTRA_HUBS, Math.max(0, count));
  const children: ChildProcess[] = [];
  const bases: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const child = fork(ENTRY, [], { execArgv: ['--max-semi-space-size=32', '--import', 'tsx'], env: { ...process.env, HUTONG_HUB_PROCESS: '1' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      bases.push(
        await new Promise<string>((resolve, reject) => {
          child.once('error', reject);
          child.once('exit', (code) => reject(new Error(`bench hub process exited with ${code}`)));
          child.once('message', (m) => resolve((m as { base: string }).base));
          child.send(options);
        }),
      );
      child.removeAllListeners('exit');
    }
  } catch (error) {
    for (const c of children) c.kill();
    throw error;
  }
  return {
    bases,
    pids: children.map((c) => c.pid!),
    async stop() {
      await Promise.all(children.map((c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : (c.once('exit', () => resolve()), c.kill())))));
    },
  };
}

// The child: one hub on the bench's database until the parent goes.
if (process.env.HUTONG_HUB_PROCESS === '1' && process.send !== undefined) {
  process.once('message', (raw) => {
    void (async () => {
      const o = raw as HubProcessOptions;
      const config = benchHubConfig(o);
      const db = openPostgres({ url: o.databaseUrl, maxConnections: o.pool });
      const hub = await createHub(config, { logger: createLogger({ level: 'silent' }), db });
      if (o.aliasLimits !== undefined) Object.assign(hub.transfers.aliases.limits, o.aliasLimits);
      const base = await hub.listen();
      process.send!({ base });
      process.once('disconnect', () => void hub.close().finally(() => process.exit(0)));
      process.once('SIGTERM', () => void hub.close().finally(() => process.exit(0)));
    })();
  });
}

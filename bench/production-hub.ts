import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The hub as production runs it, in a process of its own: `hutong start` (bin/hutong.js) on the compiled build in dist/,
 * with the flags `npm start` gives node. A bench that measures the hub's memory measures this process, not its own
 * (which also holds the load generator and the TypeScript loader: about 120 MB more resident on this machine).
 */
export interface ProductionHub {
  readonly base: string;
  readonly pid: number;
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dirname, '..');
/** The node flags of `npm start` (package.json's start script, the Dockerfile's entry point): one source of truth. */
function startFlags(): string[] {
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
  const start = scripts.start ?? '';
  const flags = start.split(/\s+/).filter((word) => word.startsWith('--max-'));
  if (flags.length === 0) throw new Error('package.json start script gives node no heap flags: the bench would not run the hub as production does');
  return flags;
}

/** Builds dist/ when a source file changed after its build began (what bin/hutong.js would otherwise run through tsx). */
export function ensureBuilt(log: (line: string) => void): void {
  let startedAt: number | undefined;
  try {
    const stamp = JSON.parse(readFileSync(join(ROOT, 'dist', 'build.json'), 'utf8')) as { startedAt?: unknown };
    if (typeof stamp.startedAt === 'number' && existsSync(join(ROOT, 'dist', 'cli', 'cli.js'))) startedAt = stamp.startedAt;
  } catch {
    startedAt = undefined;
  }
  const src = join(ROOT, 'src');
  const stale = startedAt === undefined || readdirSync(src, { recursive: true, withFileTypes: true }).some((e) => e.isFile() && statSync(join(e.parentPath, e.name)).mtimeMs > (startedAt ?? 0));
  if (!stale) return;
  log('… building dist/ (the sources changed after the last build): the production hub runs the build');
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-server.js'), '--no-check'], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('npm run build:server failed');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function startProductionHub(options: { databaseUrl: string; dataDir: string; operatorToken: string; log: (line: string) => void }): Promise<ProductionHub> {
  ensureBuilt(options.log);
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...startFlags(), join(ROOT, 'bin', 'hutong.js'), 'start'], {
    env: {
      ...process.env,
      HUTONG_RUN: 'dist',
      DATABASE_URL: options.databaseUrl,
      HUTONG_DATA_DIR: options.dataDir,
      HUTONG_PORT: String(port),
      HUTONG_HOST: '127.0.0.1',
      HUTONG_OPERATOR_TOKEN: options.operatorToken,
      HUTONG_LOG_LEVEL: 'silent',
      HUTONG_WEBHOOKS: '0',
      HUTONG_DEMO: '',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the hub process did not start');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the hub process exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('the hub process did not become healthy within 60 s');
    }
    await sleep(200);
  }
  return {
    base,
    pid,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000).then(() => child.kill('SIGKILL'))]);
    },
  };
}

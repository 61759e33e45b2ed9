import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './pg-cluster.ts';

/**
 * HAProxy (Debian's package; `.ci/run` installs it) in front of hub processes, health-checked on /health: the
 * balancer of the fault tests and of `npm run bench -- p2p --hubs=N --balancer`.
 */
export const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy', '/usr/local/sbin/haproxy'].find((p) => existsSync(p));

export interface Balancer {
  readonly base: string;
  stop(): Promise<void>;
}

export async function startHaproxy(backendPorts: readonly number[], options: { maxconn?: number } = {}): Promise<Balancer> {
  if (HAPROXY === undefined) throw new Error('HAProxy is not installed (apt-get install haproxy; .ci/run does)');
  const dir = mkdtempSync(join(tmpdir(), 'hutong-haproxy-'));
  const front = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      `  maxconn ${options.maxconn ?? 1000}`,
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 60s',
      '  timeout server 60s',
      // A request whose hub died before answering goes to another hub: safe, every money-moving POST carries an
      // Idempotency-Key (the other hub replays the committed answer, or does the work once).
      '  retries 3',
      '  option redispatch',
      '  option http-buffer-request',
      '  retry-on conn-failure empty-response',
      'frontend hub',
      `  bind 127.0.0.1:${front}`,
      '  default_backend hubs',
      'backend hubs',
      '  balance roundrobin',
      '  option httpchk GET /health',
      '  http-check expect status 200',
      '  default-server inter 300ms fall 2 rise 2',
      ...backendPorts.map((p, i) => `  server h${i} 127.0.0.1:${p} check`),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(HAPROXY, ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const base = `http://127.0.0.1:${front}`;
  // Up once the balancer answers and has seen a hub healthy.
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${base}/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    async stop() {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts one hub process (test/faults/hub-server.ts) on a database and data directory, listening on `port`; resolves
 * with the child once it serves. `background` also runs the hub's background jobs. Bounded by `timeoutMs`.
 */
export function startHubServer(options: { url: string; dataDir: string; port: number; background?: boolean; timeoutMs?: number; name?: string }): { child: ChildProcess; ready: Promise<void> } {
  const args = ['--import', 'tsx', 'test/faults/hub-server.ts', options.url, options.dataDir, String(options.port), ...(options.background === true ? ['background'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const name = options.name ?? `hub on ${options.port}`;
  const ready = new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${err}`)), options.timeoutMs ?? 60_000);
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2_000)));
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited ${code}: ${err}`));
    });
  });
  return { child, ready };
}

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createReferenceBank } from '../src/demo/bank/reference-bank.ts';

/**
 * The reference bank (a connected participant keeping its own books) in a process of its own, for
 * `npm run bench -- p2p --connected`: its own books (a PostgreSQL database of its own when `databaseUrl` is given, as a
 * bank's core system would keep them; PGlite otherwise), `accounts` customer accounts `BB-0`… funded with
 * `balanceMinor` each, its connector listening on loopback. The bench's hub asks it to reserve, accept, commit and
 * abort over HTTP, signed, as it would a bank's core system.
 */
export interface BankProcessOptions {
  readonly hubPublicJwk: { kty: string; crv: string; x: string };
  readonly accounts: number;
  readonly balanceMinor: string;
  readonly databaseUrl?: string | undefined;
}

export interface BankProcess {
  readonly url: string;
  readonly publicJwk: { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string };
  readonly pid: number;
  stop(): Promise<void>;
}

/** The bank's own id of the bench's connected customer `i` (the hub knows it as the customer's external id). */
export const benchBankAccount = (i: number) => `BB-${i}`;

const ENTRY = fileURLToPath(import.meta.url);

export async function startBankProcess(options: BankProcessOptions): Promise<BankProcess> {
  // BENCH_CPU_PROF_DIR=dir: the bank process writes a V8 CPU profile there when it stops (NODE_OPTIONS refuses --cpu-prof).
  const profile = process.env.BENCH_CPU_PROF_DIR !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  const child: ChildProcess = fork(ENTRY, [], { execArgv: [...profile, '--import', 'tsx'], env: { ...process.env, HUTONG_BENCH_BANK: '1' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise<{ url: string; publicJwk: BankProcess['publicJwk'] }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench bank process exited with ${code}`)));
    child.once('message', (m) => resolve(m as { url: string; publicJwk: BankProcess['publicJwk'] }));
    child.send(options);
  });
  child.removeAllListeners('exit');
  const pid = child.pid;
  if (pid === undefined) throw new Error('bench bank process has no pid');
  return {
    ...ready,
    pid,
    stop: () => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill()))),
  };
}

// The child: the bank until the parent goes.
if (process.env.HUTONG_BENCH_BANK === '1' && process.send !== undefined) {
  process.once('message', (raw) => {
    void (async () => {
      const o = raw as BankProcessOptions;
      const bank = await createReferenceBank({ hubPublicJwk: o.hubPublicJwk, databaseUrl: o.databaseUrl });
      // Bounded: the bench's payer count.
      for (let i = 0; i < Math.min(o.accounts, 100_000); i++) await bank.openAccount({ id: benchBankAccount(i), name: `Bench payer ${i}`, currency: 'CNY', balanceMinor: BigInt(o.balanceMinor) });
      const url = await bank.listen(0, '127.0.0.1');
      process.send?.({ url, publicJwk: bank.publicJwk });
      const stop = () => void bank.close().finally(() => process.exit(0));
      process.once('disconnect', stop);
      // A clean exit on stop() (SIGTERM), so that a CPU profile asked for is written.
      process.once('SIGTERM', stop);
    })();
  });
}

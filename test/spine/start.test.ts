import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { CONNECTED_CUSTOMERS } from '../../src/demo/bank/connect.ts';
import { createScratchPostgres, postgresReachable } from '../support/engines.ts';

/**
 * The two ways to start the hub, as a user runs them (the real CLI in a child process, embedded PGlite): `hutong start
 * --demo` (what `npm start` runs) seeds the demo network, serves the demo helpers on loopback only and says so in its
 * banner, which prints no secret; `hutong start` alone seeds nothing and serves no demo helper.
 */
const BIN = resolve('bin/hutong.js');

const freePort = () =>
  new Promise<number>((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address !== null ? ok(address.port) : fail(new Error('no port'))));
    });
  });

interface Started {
  readonly child: ChildProcess;
  readonly base: string;
  readonly banner: string;
  readonly dataDir: string;
  readonly env: NodeJS.ProcessEnv;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];

async function start(args: string[]): Promise<Started> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hutong-start-'));
  dirs.push(dataDir, `${dataDir}-keys`);
  const port = await freePort();
  const env = { ...process.env, HUTONG_DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: '', HUTONG_OPERATOR_TOKEN: '', HUTONG_DEMO: '', HUTONG_WEBHOOKS: '0' };
  const child = spawn(process.execPath, [BIN, 'start', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the hub did not start: ${out}`)), 150_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('Ctrl-C stops the hub')) {
        clearTimeout(timer);
        ok();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.once('exit', (code) => fail(new Error(`the hub exited (${code}): ${out}`)));
  });
  return { child, base: `http://127.0.0.1:${port}`, banner: out, dataDir, env };
}

const run = (env: NodeJS.ProcessEnv, args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((ok) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('exit', (code) => ok({ code, stdout, stderr }));
  });

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('starting the hub', () => {
  it('demo mode: the banner says what to try and where the credentials are, prints no secret; demo helpers answer on loopback', async () => {
    const s = await start(['--demo']);
    expect(s.banner).toContain('DEMO MODE');
    expect(s.banner).toContain(`${s.base}/wallet`);
    expect(s.banner).toMatch(/\/console/);
    expect(s.banner).toMatch(/only callers on this\s+machine \(loopback\)/);
    // Both modes in the demo network: the reference bank, in this process with its own books, is connected.
    expect(s.banner).toMatch(/bank-c \(.*\) is CONNECTED: it keeps its own books/);
    // Its second process is bank-c itself served apart (with a failure switch), on the hub's PORT: not another bank.
    expect(s.banner).toContain(`PORT=${new URL(s.base).port} npx hutong simulate bank --port 9100 --refuse accept:AC04`);
    expect(s.banner).toContain('It is not a second bank');
    // No secret in the banner: not the operator credential, no client secret.
    const operatorToken = readFileSync(join(s.dataDir, 'operator-token'), 'utf8').trim();
    const credentialsFile = join(s.dataDir, 'demo-credentials.json');
    expect(statSync(credentialsFile).mode & 0o777).toBe(0o600);
    const credentials = JSON.parse(readFileSync(credentialsFile, 'utf8')) as Record<string, { clientSecret: string }>;
    expect(Object.keys(credentials)).toContain('wallet-a');
    expect(s.banner).not.toContain(operatorToken);
    for (const c of Object.values(credentials)) expect(s.banner).not.toContain(c.clientSecret);
    expect(s.banner).not.toMatch(/\b(?:sk|op)_[A-Za-z0-9_-]{10,}|whsec_/);
    // The sandbox's test cards are printed (demo mode only): one per demo bank, with the data a wallet adds them by.
    const testCards = [...s.banner.matchAll(/^ {2}(bank-[ab]) .* number (\d{16}) {2}expiry (\d{2}\/\d{2}) {2}CVV (\d{3}) /gm)].map((m) => m[1]);
    expect(testCards).toEqual(['bank-a', 'bank-b']);
    // `hutong token` gets a token from the running hub with the file's credential; the token works.
    const token = await run(s.env, ['token', 'wallet-a']);
    expect(token.code, token.stderr).toBe(0);
    const customers = await fetch(`${s.base}/v1/customers`, { headers: { authorization: `Bearer ${token.stdout.trim()}` } });
    expect(customers.status).toBe(200);
    // The demo sign-in answers this machine with a session bound to one customer, which cannot act as the wallet.
    const session = await fetch(`${s.base}/demo/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ wallet: 'wallet-a', customerId: 'cus_demo_li_at_wallet_a' }) });
    expect(session.status).toBe(200);
    const { accessToken } = (await session.json()) as { accessToken: string };
    const asCustomer = await fetch(`${s.base}/v1/customers`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(asCustomer.status).toBe(403);
    const minted = await fetch(`${s.base}/v1/credentials`, { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } });
    expect(minted.status).toBe(403);

    // `hutong simulate bank` serves bank-c from its own process with its own books, never the directory the hub's own
    // bank holds (two openers of one PGlite directory lose each other's books), and hands bank-c back when stopped.
    const operator = { authorization: `Bearer ${operatorToken}` };
    const connection = async () =>
      ((await (await fetch(`${s.base}/v1/operator/participants/par_demo_bank_c/connections`, { headers: operator })).json()) as { items: { currency: string; endpointUrl: string }[] }).items.find((c) => c.currency === 'CNY')?.endpointUrl;
    const inProcess = await connection();
    expect(inProcess).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const sharing = await run(s.env, ['simulate', 'bank', '--port', String(await freePort()), '--data-dir', join(s.dataDir, 'reference-bank')]);
    expect(sharing.code).toBe(1);
    expect(sharing.stderr).toMatch(/reference-bank is in use by process \d+/);
    const port = await freePort();
    const simulated = spawn(process.execPath, [BIN, 'simulate', 'bank', '--port', String(port)], { env: s.env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(simulated);
    let out = '';
    simulated.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    simulated.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    await expect.poll(() => out, { timeout: 60_000 }).toContain('switches:');
    expect(out).toContain(`its own books, in ${join(s.dataDir, `simulated-bank-${port}`)}`);
    expect(await connection()).toBe(`http://127.0.0.1:${port}`);
    const exited = new Promise((ok) => simulated.once('exit', ok));
    simulated.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain(`handed par_demo_bank_c back to ${inProcess}`);
    expect(await connection()).toBe(inProcess);

    // The same with its books in a PostgreSQL database of its own (--database-url): its customers' accounts are there.
    if (await postgresReachable()) {
      const books = await createScratchPostgres();
      try {
        const pgPort = await freePort();
        const onPg = spawn(process.execPath, [BIN, 'simulate', 'bank', '--port', String(pgPort), '--database-url', books.url], { env: s.env, stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(onPg);
        let pgOut = '';
        onPg.stdout.on('data', (c: Buffer) => (pgOut += c.toString('utf8')));
        onPg.stderr.on('data', (c: Buffer) => (pgOut += c.toString('utf8')));
        await expect.poll(() => pgOut, { timeout: 60_000 }).toContain('switches:');
        expect(pgOut).toContain(`its own books, in PostgreSQL at ${new URL(books.url).host}${new URL(books.url).pathname}`);
        expect(await connection()).toBe(`http://127.0.0.1:${pgPort}`);
        const sql = postgres(books.url, { max: 1, onnotice: () => undefined });
        const accounts = await sql<{ id: string }[]>`select id from accounts order by id`;
        await sql.end();
        expect(accounts.map((a) => a.id)).toEqual(CONNECTED_CUSTOMERS.map((c) => c.bankAccount).sort());
        const pgExited = new Promise((ok) => onPg.once('exit', ok));
        onPg.kill('SIGTERM');
        expect(await pgExited).toBe(0);
        expect(await connection()).toBe(inProcess);
      } finally {
        await books.drop();
      }
    }
    const refused = await run(s.env, ['simulate', 'bank', '--database-url', 'mysql://elsewhere/books']);
    expect(refused.code).toBe(64);
    expect(refused.stderr).toContain('--database-url: a postgres:// URL');
    s.child.kill('SIGTERM');
  }, 240_000);

  it('without --demo: nothing seeded, no demo helper, no credentials file', async () => {
    const s = await start([]);
    expect(s.banner).not.toContain('DEMO MODE');
    expect(s.banner).toContain('No demo network and no demo helpers');
    expect(s.banner).not.toMatch(/Sandbox test cards|CVV/);
    expect((await fetch(`${s.base}/demo/v1/directory`)).status).toBe(404);
    const session = await fetch(`${s.base}/demo/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ wallet: 'wallet-a', customerId: 'cus_demo_li_at_wallet_a' }) });
    expect(session.status).toBe(404);
    const operatorToken = readFileSync(join(s.dataDir, 'operator-token'), 'utf8').trim();
    const participants = await fetch(`${s.base}/v1/operator/participants`, { headers: { authorization: `Bearer ${operatorToken}` } });
    expect(((await participants.json()) as { items: unknown[] }).items).toEqual([]);
    expect(() => statSync(join(s.dataDir, 'demo-credentials.json'))).toThrow();
    s.child.kill('SIGTERM');
  }, 240_000);
});

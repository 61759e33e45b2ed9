import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { confirm, doubleMoves, openBank, pay, snapshot, walletClient, type BankParty, type BankSpec, type WalletKey } from './p2p-bank.ts';

/**
 * kill -9 a hub process while its clients pay through the P2P API (quote, then confirm under an Idempotency-Key:
 * effect batcher, transfers.confirmMany, ledger.applyInTx): every payment it acknowledged survives with its money,
 * totals are conserved, and every confirm retried afterwards under the same key (acknowledged or cut off by the kill)
 * answers the same payment or completes it once: never a second movement of money.
 */
const engines = await availableEngines();
const CUSTOMERS = 10;
const FUND_MINOR = 10_000n;
const TOTAL_MINOR = FUND_MINOR * BigInt(CUSTOMERS);

describe.skipIf(!engines.includes('postgres'))('crash (kill -9) of a hub process under payment load on PostgreSQL', () => {
  let t: TestHub;
  let parties: BankParty[];
  let spec: BankSpec;
  let specFile: string;
  beforeAll(async () => {
    t = await startTestHub('postgres', { clock: systemClock, config: { rateLimitPerS: 1_000_000, webhooks: { enabled: false, pollMs: 500 } } });
    parties = await openBank(t.hub, { count: CUSTOMERS, fundMinor: FUND_MINOR, tag: 'crash' });
    const credentials = Object.fromEntries(
      (['wallet-a', 'wallet-b'] as const).map((w) => {
        const d = t.demo.participants.find((p) => p.key === w)!;
        return [w, { clientId: d.clientId, clientSecret: d.clientSecret }];
      }),
    ) as BankSpec['credentials'];
    spec = { parties, credentials };
    specFile = join(t.dataDir, 'crash-spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('every acknowledged payment survives, totals are conserved, retries never pay twice', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/ledger/worker.ts', 'crash', t.database.url!, t.dataDir, specFile, '60000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not enough acks within 60 s: ${stderr}`)), 60_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // Kill mid-run, once the hub is clearly under load.
        if ((out.match(/\nack /g)?.length ?? 0) >= 300) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // Only complete lines count: the kill may cut the last one in half.
    const lines = out.split('\n').slice(0, -1);
    const acked = new Map(lines.filter((l) => l.startsWith('ack ')).map((l) => l.split(' ').slice(1) as [string, string]));
    const sent = lines.filter((l) => l.startsWith('send ')).map((l) => l.split(' ').slice(1) as [WalletKey, string, string]);
    expect(acked.size).toBeGreaterThanOrEqual(300);

    // Every acknowledged payment is there, with its money (the leg that debits the payer's account: a payment between
    // the two wallets' customers also has its position and payee legs), and the books balance.
    const accountIds = parties.map((p) => p.accountId);
    const paymentIds = [...acked.values()];
    const [found] = await t.hub.db.query<{ payments: bigint; legs: bigint }>(
      `select (select count(*) from payments where id = any($1::text[])) as payments,
              (select count(*) from ledger_transfers where purpose = 'p2p' and debit_account_id = any($2::text[]) and metadata->>'paymentId' = any($1::text[])) as legs`,
      [paymentIds, accountIds],
    );
    expect(found).toEqual({ payments: BigInt(paymentIds.length), legs: BigInt(paymentIds.length) });
    expect(await snapshot(t.hub.db, accountIds)).toEqual({ total: TOTAL_MINOR, accounts: CUSTOMERS, belowFloor: 0 });
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);

    // The wallets retry every confirm they sent (the answer may have been lost) on the hub still running, same key:
    // an acknowledged one answers its payment again; one the kill cut off completes now, or had committed already.
    const post = walletClient(t.hub, spec.credentials);
    let replayed = 0;
    for (let i = 0; i < sent.length; i += 32) {
      const answers = await Promise.all(sent.slice(i, i + 32).map(async ([wallet, quoteId, key]) => ({ key, r: await confirm(post, wallet, quoteId, key) })));
      for (const { key, r } of answers) {
        const first = acked.get(key);
        if (first !== undefined) {
          expect(r, key).toMatchObject({ code: 'ok', paymentId: first });
          replayed++;
        } else {
          expect(['ok', 'insufficient_funds'], `${key}: ${r.code}`).toContain(r.code);
        }
      }
    }
    expect(replayed).toBe(acked.size);
    const moves = await doubleMoves(t.hub.db, accountIds);
    expect(moves.paymentsWithOtherLegCount).toBe(0);
    expect(moves.legs).toBe(moves.payments);
    expect(await snapshot(t.hub.db, accountIds)).toEqual({ total: TOTAL_MINOR, accounts: CUSTOMERS, belowFloor: 0 });
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
    // Payments go on: a fresh one goes through.
    expect((await pay(post, parties[0]!, parties[1]!, 1n, 'after-crash')).code).toBe('ok');
  }, 180_000);
});

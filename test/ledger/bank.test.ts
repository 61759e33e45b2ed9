import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { confirm, doubleMoves, openBank, quote, randomPair, snapshot, startReaders, walletClient, type BankParty, type BankSpec, type Post, type WalletKey } from './p2p-bank.ts';

/**
 * Jepsen's bank workload on real PostgreSQL, on the path payments take: 100 customers of two wallets, each with a
 * no-overdraft account, pay each other over the P2P API (quote, then confirm under an Idempotency-Key: the route's
 * effect batcher, transfers.confirmMany, ledger.applyInTx in one transaction per batch). Money only moves between
 * these accounts, so every consistent read of all balances sums to the same total and none is below its floor. A read
 * is consistent only if it is ONE statement (one snapshot). Retried confirms (same key) never move money twice.
 */
const engines = await availableEngines();
const CUSTOMERS = 100;
const FUND_MINOR = 1000n;
const TOTAL_MINOR = FUND_MINOR * BigInt(CUSTOMERS);

function runWorker(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/ledger/worker.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (errText += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`worker exited ${code}: ${errText}`));
    });
  });
}

describe.skipIf(!engines.includes('postgres'))('bank workload through the P2P payment path on PostgreSQL', () => {
  let t: TestHub;
  let parties: BankParty[];
  let accountIds: string[];
  let post: Post;
  let specFile: string;

  beforeAll(async () => {
    t = await startTestHub('postgres', { clock: systemClock, config: { rateLimitPerS: 1_000_000, webhooks: { enabled: false, pollMs: 500 } } });
    parties = await openBank(t.hub, { count: CUSTOMERS, fundMinor: FUND_MINOR, tag: 'bank' });
    accountIds = parties.map((p) => p.accountId);
    const credentials = Object.fromEntries(
      (['wallet-a', 'wallet-b'] as const).map((w) => {
        const d = t.demo.participants.find((p) => p.key === w)!;
        return [w, { clientId: d.clientId, clientSecret: d.clientSecret }];
      }),
    ) as BankSpec['credentials'];
    post = walletClient(t.hub, credentials);
    specFile = join(t.dataDir, 'bank-spec.json');
    writeFileSync(specFile, JSON.stringify({ parties, credentials } satisfies BankSpec));
    expect(await snapshot(t.hub.db, accountIds)).toEqual({ total: TOTAL_MINOR, accounts: CUSTOMERS, belowFloor: 0 });
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('64 concurrent clients in one hub: totals conserved, nothing below its floor, retries pay once', async () => {
    const readers = startReaders(t.hub.db, accountIds, TOTAL_MINOR, 2);
    const started = Date.now();
    let ops = 0;
    const codes: Record<string, number> = {};
    const retried: { key: string; wallet: WalletKey; answers: (string | undefined)[] }[] = [];
    await Promise.all(
      Array.from({ length: 64 }, async (_, c) => {
        while (Date.now() - started < 4000 && ops < 500_000) {
          const n = ops++;
          const [from, to] = randomPair(parties);
          const key = `b1_${c}_${n}`;
          const q = await quote(post, from, to, BigInt(1 + Math.floor(Math.random() * 1500)));
          if (q.quoteId === undefined) {
            codes[q.code] = (codes[q.code] ?? 0) + 1;
            continue;
          }
          // Every fifth payment is confirmed twice at once (a wallet retrying on a timeout), then once more.
          const r = n % 5 === 0 ? await Promise.all([confirm(post, from.wallet, q.quoteId, key), confirm(post, from.wallet, q.quoteId, key)]) : [await confirm(post, from.wallet, q.quoteId, key)];
          if (r.length > 1) {
            const again = await confirm(post, from.wallet, q.quoteId, key);
            retried.push({ key, wallet: from.wallet, answers: [...r, again].map((x) => `${x.code}:${x.paymentId ?? ''}`) });
          }
          codes[r[0]!.code] = (codes[r[0]!.code] ?? 0) + 1;
        }
      }),
    );
    const reads = await readers.stop();
    // The workload must really have moved money and really have hit the overdraft check. Thresholds are low on purpose:
    // CI shares two cores with other suites; 0 would mean the workload never ran.
    expect(codes.ok ?? 0).toBeGreaterThan(100);
    expect(codes.insufficient_funds ?? 0).toBeGreaterThan(5);
    expect(Object.keys(codes).sort()).toEqual(['insufficient_funds', 'ok']);
    // A retry answers what the first answered (the same payment, or the same refusal).
    expect(retried.length).toBeGreaterThan(10);
    for (const r of retried) expect(new Set(r.answers).size, r.key).toBe(1);
    expect(reads.reads).toBeGreaterThan(10);
    expect(reads).toMatchObject({ wrongTotals: 0, belowFloor: 0 });
    expect(await snapshot(t.hub.db, accountIds)).toEqual({ total: TOTAL_MINOR, accounts: CUSTOMERS, belowFloor: 0 });
    const moves = await doubleMoves(t.hub.db, accountIds);
    expect(moves.paymentsWithOtherLegCount).toBe(0);
    expect(moves.legs).toBe(moves.payments);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  }, 60_000);

  it('two more hub processes paying between the same customers: totals conserved, nothing below its floor', async () => {
    const readers = startReaders(t.hub.db, accountIds, TOTAL_MINOR, 2);
    const args = ['bank', t.database.url!, t.dataDir, specFile, '8000', '64'];
    const outs = await Promise.all([runWorker(args, 150_000), runWorker(args, 150_000)]);
    const reads = await readers.stop();
    for (const out of outs) {
      const summary = JSON.parse(out.trim().split('\n').pop()!) as { ops: number; codes: Record<string, number> };
      // Low on purpose (CI shares two cores with other suites): 0 would mean the process never paid.
      expect(summary.codes.ok ?? 0).toBeGreaterThan(10);
      expect(Object.keys(summary.codes).sort()).toEqual(['insufficient_funds', 'ok']);
    }
    expect(reads.reads).toBeGreaterThan(10);
    expect(reads).toMatchObject({ wrongTotals: 0, belowFloor: 0 });
    expect(await snapshot(t.hub.db, accountIds)).toEqual({ total: TOTAL_MINOR, accounts: CUSTOMERS, belowFloor: 0 });
    const moves = await doubleMoves(t.hub.db, accountIds);
    expect(moves.paymentsWithOtherLegCount).toBe(0);
    expect(moves.legs).toBe(moves.payments);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  }, 200_000);
});

import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.ts';
import { createLedger, type Ledger } from '../../src/ledger/ledger.ts';
import { availableEngines, openTestDb, type TestDatabase } from '../support/engines.ts';
import { insertParticipant, PARTICIPANT_ID } from './helpers.ts';

/**
 * Jepsen's bank workload on real PostgreSQL: money only moves between 100 no-overdraft accounts, so every consistent
 * read of all balances sums to the same total and none is negative. A read is consistent only if it is ONE statement
 * (one snapshot): reading accounts one by one could see a transfer's debit but not its credit.
 */
const engines = await availableEngines();
const ACCOUNTS = 100;
const PER_ACCOUNT_MINOR = 1000n;
const TOTAL_MINOR = PER_ACCOUNT_MINOR * BigInt(ACCOUNTS);
const accountId = (i: number): string => `acc_bank_${String(i).padStart(3, '0')}`;
const ids = Array.from({ length: ACCOUNTS }, (_, i) => accountId(i));

interface Reads {
  reads: number;
  wrongTotals: number;
  negatives: number;
}

/** Readers that loop until `stop()` resolves; each read is one statement over all 100 balances. */
function startReaders(ledger: Ledger, readers: number, maxReads: number): { stop: () => Promise<Reads> } {
  const result: Reads = { reads: 0, wrongTotals: 0, negatives: 0 };
  let running = true;
  const loops = Array.from({ length: readers }, async () => {
    while (running && result.reads < maxReads) {
      const accounts = await ledger.getAccounts(ids);
      result.reads++;
      let total = 0n;
      for (const a of accounts) {
        const balance = a.creditsPostedMinor - a.debitsPostedMinor - a.debitsPendingMinor;
        if (balance < 0n) result.negatives++;
        total += a.creditsPostedMinor - a.debitsPostedMinor;
      }
      if (accounts.length !== ACCOUNTS || total !== TOTAL_MINOR) result.wrongTotals++;
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}

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

describe.skipIf(!engines.includes('postgres'))('bank workload on PostgreSQL', () => {
  let t: TestDatabase;
  let ledger: Ledger;

  beforeAll(async () => {
    t = await openTestDb('postgres', { maxConnections: 12 });
    await insertParticipant(t.db);
    ledger = createLedger({ db: t.db, clock: systemClock });
    const funding = await ledger.createAccount({ id: 'acc_bank_funding', ownerParticipantId: PARTICIPANT_ID, currency: 'CNY', kind: 'funding' });
    expect(funding.ok).toBe(true);
    const created = await ledger.createAccounts(ids.map((id) => ({ id, ownerParticipantId: PARTICIPANT_ID, currency: 'CNY', kind: 'customer' as const, debitsMustNotExceedCredits: true })));
    expect(created.ok).toBe(true);
    const funded = await ledger.submit(ids.map((id) => ({ id: `bank_fund_${id}`, debitAccountId: 'acc_bank_funding', creditAccountId: id, amountMinor: PER_ACCOUNT_MINOR, currency: 'CNY', purpose: 'funding' })));
    expect(funded.every((r) => r.ok)).toBe(true);
  });
  afterAll(async () => {
    await ledger.close();
    await t.drop();
  });

  it('64 concurrent clients in one process: totals conserved, nothing negative', async () => {
    const readers = startReaders(ledger, 4, 100_000);
    const started = Date.now();
    let ops = 0;
    const codes: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: 64 }, async (_, c) => {
        while (Date.now() - started < 4000 && ops < 500_000) {
          const n = ops++;
          const from = Math.floor(Math.random() * ACCOUNTS);
          const to = (from + 1 + Math.floor(Math.random() * (ACCOUNTS - 1))) % ACCOUNTS;
          const [r] = await ledger.submit([{ id: `b1_${c}_${n}`, debitAccountId: accountId(from), creditAccountId: accountId(to), amountMinor: BigInt(1 + Math.floor(Math.random() * 1500)), currency: 'CNY', purpose: 'bank' }]);
          const code = r === undefined ? 'missing' : r.ok ? 'ok' : r.error.code;
          codes[code] = (codes[code] ?? 0) + 1;
        }
      }),
    );
    const reads = await readers.stop();
    // The workload must really have moved money and really have hit the overdraft check.
    // Thresholds are low on purpose: CI shares two cores with other suites; 0 would mean the workload never ran.
    expect(codes.ok ?? 0).toBeGreaterThan(200);
    expect(codes.insufficient_funds ?? 0).toBeGreaterThan(10);
    expect(Object.keys(codes).sort()).toEqual(['insufficient_funds', 'ok']);
    expect(reads.reads).toBeGreaterThan(20);
    expect(reads).toMatchObject({ wrongTotals: 0, negatives: 0 });
    expect(await ledger.checkInvariants()).toEqual([]);
  });

  it('two separate processes hammering the same accounts: totals conserved, nothing negative', async () => {
    const readers = startReaders(ledger, 2, 100_000);
    const outs = await Promise.all([runWorker(['bank', t.url!, String(ACCOUNTS), '4000', '64'], 40_000), runWorker(['bank', t.url!, String(ACCOUNTS), '4000', '64'], 40_000)]);
    const reads = await readers.stop();
    for (const out of outs) {
      const summary = JSON.parse(out.trim().split('\n').pop()!) as { ops: number; codes: Record<string, number> };
      expect(summary.codes.ok ?? 0).toBeGreaterThan(100);
      expect(Object.keys(summary.codes).sort()).toEqual(['insufficient_funds', 'ok']);
    }
    expect(reads.reads).toBeGreaterThan(10);
    expect(reads).toMatchObject({ wrongTotals: 0, negatives: 0 });
    expect(await ledger.checkInvariants()).toEqual([]);
    const [row] = await t.db.query(`select sum(credits_posted - debits_posted)::text as total from ledger_accounts where id <> 'acc_bank_funding'`);
    expect(row?.total).toBe(TOTAL_MINOR.toString());
  });
});

import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.ts';
import { createLedger } from '../../src/ledger/ledger.ts';
import { availableEngines, openTestDb, type TestDatabase } from '../support/engines.ts';
import { insertParticipant, PARTICIPANT_ID } from './helpers.ts';

/** kill -9 a ledger process under load: nothing it acknowledged may be lost, and the books must still balance. */
const engines = await availableEngines();
const accountId = (i: number): string => `acc_bank_${String(i).padStart(3, '0')}`;

describe.skipIf(!engines.includes('postgres'))('crash (kill -9) under load on PostgreSQL', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDb('postgres');
    await insertParticipant(t.db);
    const ledger = createLedger({ db: t.db, clock: systemClock });
    await ledger.createAccount({ id: 'acc_crash_funding', ownerParticipantId: PARTICIPANT_ID, currency: 'CNY', kind: 'funding' });
    const ids = Array.from({ length: 10 }, (_, i) => accountId(i));
    expect((await ledger.createAccounts(ids.map((id) => ({ id, ownerParticipantId: PARTICIPANT_ID, currency: 'CNY', kind: 'customer' as const, debitsMustNotExceedCredits: true })))).ok).toBe(true);
    const funded = await ledger.submit(ids.map((id) => ({ id: `crash_fund_${id}`, debitAccountId: 'acc_crash_funding', creditAccountId: id, amountMinor: 10_000n, currency: 'CNY', purpose: 'funding' })));
    expect(funded.every((r) => r.ok)).toBe(true);
    await ledger.close();
  });
  afterAll(async () => {
    await t.drop();
  });

  it('every acknowledged transfer survives and totals are conserved', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/ledger/worker.ts', 'crash', t.url!, '30000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no acks within 20 s: ${stderr}`)), 20_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // Kill mid-run, once the worker is clearly under load.
        if ((out.match(/\n/g)?.length ?? 0) >= 2000) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // Only complete lines count: the kill may cut the last one in half.
    const acked = out
      .split('\n')
      .slice(0, -1)
      .filter((l) => l.startsWith('ack '))
      .map((l) => l.slice(4));
    expect(acked.length).toBeGreaterThanOrEqual(2000);

    const ledger = createLedger({ db: t.db, clock: systemClock });
    const found = await t.db.query<{ n: bigint }>(`select count(*) as n from ledger_transfers where id = any($1::text[])`, [acked]);
    expect(found[0]?.n).toBe(BigInt(acked.length));
    expect(await ledger.checkInvariants()).toEqual([]);
    const [row] = await t.db.query(`select sum(credits_posted - debits_posted)::text as total from ledger_accounts where id like 'acc_bank_%'`);
    expect(row?.total).toBe('100000');
    // The restarted ledger works: a fresh transfer goes through.
    const [r] = await ledger.submit([{ id: 'after-crash', debitAccountId: accountId(0), creditAccountId: accountId(1), amountMinor: 1n, currency: 'CNY', purpose: 'x' }]);
    expect(r?.ok).toBe(true);
    await ledger.close();
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_AMOUNT_MINOR } from '../../src/platform/money.ts';
import { createLedger, type Ledger } from '../../src/ledger/ledger.ts';
import type { HistoryEntry, TransferInput, TransferResult } from '../../src/ledger/types.ts';
import { availableEngines } from '../support/engines.ts';
import { creditBalance, ledgerFixture, type LedgerFixture } from './helpers.ts';

/**
 * The batching engine computes a batch from rows it read without locks or remembers from earlier batches, and
 * ledger_apply_batch validates them under lock (migration 0006). These tests make what a ledger remembers go stale
 * behind its back (another ledger instance, applyInTx, a closed account) and check that outcomes are still the ones
 * the database's current state gives; and that accounts shared by concurrent batches (credits only) keep a gapless
 * statement with the right balances.
 */
const engines = await availableEngines();

function code(result: TransferResult | undefined): string {
  if (result === undefined) return 'missing';
  return result.ok ? result.value.status : result.error.code;
}

async function wholeHistory(ledger: Ledger, accountId: string): Promise<HistoryEntry[]> {
  const entries: HistoryEntry[] = [];
  let cursor: string | undefined;
  // Bounded: at most 100 pages of 200.
  for (let page = 0; page < 100; page++) {
    const h = await ledger.history(accountId, { limit: 200, ...(cursor !== undefined ? { cursor } : {}) });
    if (!h.ok) throw new Error(h.error.code);
    entries.push(...h.value.entries);
    if (h.value.nextCursor === null) break;
    cursor = h.value.nextCursor;
  }
  return entries;
}

describe.each(engines)('batching engine on %s', (engine) => {
  let f: LedgerFixture;
  let other: Ledger;
  beforeAll(async () => {
    f = await ledgerFixture(engine);
    // A second engine on the same database: its own batcher and its own remembered rows.
    other = createLedger({ db: f.db, clock: f.clock, batch: { maxWaitMs: 0 } });
  });
  afterAll(async () => {
    await other.close();
    await f.drop();
  });

  const move = (id: string, debitAccountId: string, creditAccountId: string, amountMinor: bigint): TransferInput => ({
    id,
    debitAccountId,
    creditAccountId,
    amountMinor,
    currency: 'CNY',
    purpose: 'x',
  });

  /** The account is spent to exactly zero, its statement is gapless (seqs 1…entries) and the books balance. */
  async function expectSpentWithStatement(accountId: string, entries: number): Promise<void> {
    const [acc] = await f.ledger.getAccounts([accountId]);
    expect(creditBalance(acc!)).toBe(0n);
    expect((await wholeHistory(f.ledger, accountId)).map((e) => e.seq)).toEqual(Array.from({ length: entries }, (_, i) => BigInt(i + 1)));
    expect(await f.ledger.checkInvariants()).toEqual([]);
  }

  it('a balance changed by another ledger is not overdrawn on the strength of what this one remembers', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 100n);
    // f.ledger now remembers a with 100.
    expect(code((await f.ledger.submit([move('st-1', a.id, b.id, 10n)]))[0])).toBe('created');
    // Behind its back: the other ledger spends 80 of the 90 left.
    expect(code((await other.submit([move('st-2', a.id, b.id, 80n)]))[0])).toBe('created');
    // 10 left: 50 must fail, 10 must pass, whatever f.ledger remembered.
    expect((await f.ledger.submit([move('st-3', a.id, b.id, 50n), move('st-4', a.id, b.id, 10n)])).map(code)).toEqual(['insufficient_funds', 'created']);
    // The statement is gapless across both ledgers.
    await expectSpentWithStatement(a.id, 4);
  });

  // PostgreSQL only: pipelined writes (PGlite runs one batch at a time) and connections the server can end.
  if (engine === 'postgres') {
    it('a batch sent behind one that loses its race is refused too, and computed again on what the database holds', async () => {
      const a = await f.account({ debitsMustNotExceedCredits: true });
      const b = await f.account();
      await f.fund(a.id, 100n);
      expect(code((await f.ledger.submit([move('pl-1', a.id, b.id, 10n)]))[0])).toBe('created');
      // f.ledger remembers a with 90. Behind its back a transaction spends 80 and keeps a's row locked until released,
      // so that f.ledger's next batch waits in the database while the one after it is sent behind it.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let markLocked!: () => void;
      const locked = new Promise<void>((resolve) => (markLocked = resolve));
      const behind = f.db.transaction(async (tx) => {
        expect(code((await other.applyInTx(tx, [move('pl-2', a.id, b.id, 80n)]))[0])).toBe('created');
        markLocked();
        await released;
      });
      await locked;
      const before = f.ledger.stats();
      // Computed on the 90 remembered: 50 fits. Sent, then waits for a's lock.
      const first = f.ledger.submit([move('pl-3', a.id, b.id, 50n)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      // Computed on top of the first (40 left): both fit. Sent behind the first, on the same connection.
      const second = f.ledger.submit([move('pl-4', a.id, b.id, 30n), move('pl-5', a.id, b.id, 10n)]);
      // Bounded wait (2 s) for the second batch to be on its way.
      for (let i = 0; i < 200 && f.ledger.stats().sentBehind === before.sentBehind; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(f.ledger.stats().sentBehind).toBeGreaterThan(before.sentBehind);
      release();
      await behind;
      // 10 left in the database: the first fails, and of the second only the 10 fits.
      expect(code((await first)[0])).toBe('insufficient_funds');
      expect((await second).map(code)).toEqual(['insufficient_funds', 'created']);
      expect(f.ledger.stats().lostRaces - before.lostRaces).toBeGreaterThanOrEqual(2);
      await expectSpentWithStatement(a.id, 4);
    });

    it('the server ending the writer connection under load fails those batches only: no crash, no hang, nothing acknowledged lost', async () => {
      const accounts = await Promise.all(Array.from({ length: 100 }, () => f.account({ debitsMustNotExceedCredits: true })));
      for (const a of accounts) await f.fund(a.id, 1_000_000n);
      const created: string[] = [];
      let threw = 0;
      let n = 0;
      const startedMs = performance.now();
      const terminations = (async () => {
        // Five times, every 300 ms: end whichever backend is running a batch right now.
        for (let k = 0; k < 5; k++) {
          await new Promise((resolve) => setTimeout(resolve, 300));
          await f.db.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query like 'select ledger_apply_batch%' and pid <> pg_backend_pid()`);
        }
      })();
      // 100 submitters for about two seconds (bounded by time).
      await Promise.all(
        Array.from({ length: 100 }, async (_, c) => {
          while (performance.now() - startedMs < 2000) {
            const id = `term-${c}-${n++}`;
            try {
              const [r] = await f.ledger.submit([move(id, accounts[c]!.id, accounts[(c + 1) % 100]!.id, 1n)]);
              if (r?.ok === true) created.push(id);
            } catch {
              threw++;
            }
          }
        }),
      );
      await terminations;
      // The ledger writes again (a fresh connection; bounded: 3 tries).
      let after = 'missing';
      for (let i = 0; i < 3 && after !== 'created'; i++) after = await f.ledger.submit([move(`term-after-${i}`, accounts[0]!.id, accounts[1]!.id, 1n)]).then((r) => code(r[0]), () => 'threw');
      expect(after).toBe('created');
      // Every transfer acknowledged as created is in the database; the books balance.
      const stored = await f.db.query<{ id: string }>(`select id from ledger_transfers where id like 'term-%' and id not like 'term-after-%'`);
      const storedIds = new Set(stored.map((r) => r.id));
      expect(created.filter((id) => !storedIds.has(id))).toEqual([]);
      expect(created.length).toBeGreaterThan(0);
      // The terminations did hit batches (their submits threw), and the rest went on.
      expect(threw).toBeGreaterThan(0);
      expect(await f.ledger.checkInvariants()).toEqual([]);
    });
  }

  it('applyInTx and closeAccount elsewhere: the batcher sees the current state', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 100n);
    expect(code((await f.ledger.submit([move('ai-1', a.id, b.id, 1n)]))[0])).toBe('created');
    // The other ledger's applyInTx (a caller's transaction) moves 99 away.
    const [moved] = await f.db.transaction((tx) => other.applyInTx(tx, [move('ai-2', a.id, b.id, 99n)]));
    expect(code(moved)).toBe('created');
    expect(code((await f.ledger.submit([move('ai-3', a.id, b.id, 1n)]))[0])).toBe('insufficient_funds');
    // Closed by the other ledger: a credit through this one fails as on a closed account.
    const c = await f.account();
    expect(code((await f.ledger.submit([move('ai-4', b.id, c.id, 1n)]))[0])).toBe('created');
    expect((await other.closeAccount(c.id)).ok).toBe(true);
    expect(code((await f.ledger.submit([move('ai-5', b.id, c.id, 1n)]))[0])).toBe('account_closed');
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });

  it('an id applied by another ledger meanwhile is found, not applied twice', async () => {
    const a = await f.account();
    const b = await f.account();
    expect(code((await f.ledger.submit([move('dup-1', a.id, b.id, 3n)]))[0])).toBe('created');
    // Same id through the other ledger: exists (it reads it), and back through the first: exists.
    expect(code((await other.submit([move('dup-2', a.id, b.id, 4n)]))[0])).toBe('created');
    expect((await f.ledger.submit([move('dup-2', a.id, b.id, 4n), move('dup-3', a.id, b.id, 5n)])).map(code)).toEqual(['exists', 'created']);
    const [acc] = await f.ledger.getAccounts([b.id]);
    expect(creditBalance(acc!)).toBe(12n);
  });

  it('a hot account credited by many concurrent submits through two ledgers: gapless statement, right balances', async () => {
    const hot = await f.account({ kind: 'merchant' });
    const payers = await Promise.all(Array.from({ length: 20 }, () => f.account({ debitsMustNotExceedCredits: true })));
    for (const p of payers) await f.fund(p.id, 1000n);
    // Known to both ledgers (a shared account must be known, open and without a credit limit).
    expect(code((await f.ledger.submit([move('hot-0a', payers[0]!.id, hot.id, 1n)]))[0])).toBe('created');
    expect(code((await other.submit([move('hot-0b', payers[1]!.id, hot.id, 1n)]))[0])).toBe('created');
    const rounds = 5;
    const submits: Promise<TransferResult[]>[] = [];
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < payers.length; i++) {
        const ledger = i % 2 === 0 ? f.ledger : other;
        // Overdraft attempts too: a payer funded with 1000 pays 300 five times.
        submits.push(ledger.submit([move(`hot-${r}-${i}`, payers[i]!.id, hot.id, 300n)]));
      }
    }
    const results = (await Promise.all(submits)).flat();
    const created = results.filter((r) => r.ok).length;
    expect(created).toBeGreaterThan(0);
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.error.code === 'insufficient_funds')).toBe(true);
    const entries = await wholeHistory(f.ledger, hot.id);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => BigInt(i + 1)));
    let running = 0n;
    for (const e of entries) {
      running += e.amountMinor;
      expect(e.creditsPostedMinor).toBe(running);
    }
    const [acc] = await f.ledger.getAccounts([hot.id]);
    expect(acc!.creditsPostedMinor).toBe(running);
    expect(acc!.creditsPostedMinor).toBe(2n + 300n * BigInt(created));
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });

  it('a shared account whose credits would overflow with another ledger’s: the overflow is a result, nothing is written', async () => {
    const hot = await f.account({ kind: 'merchant' });
    const [src, src2, src3] = [await f.account({ kind: 'funding' }), await f.account({ kind: 'funding' }), await f.account({ kind: 'funding' })];
    expect((await f.ledger.submit([move('of-0', src.id, hot.id, 1n), move('of-0b', src2.id, src3.id, 1n)])).map(code)).toEqual(['created', 'created']);
    // The other ledger takes hot's credits to the maximum; f.ledger still remembers 1.
    expect(code((await other.submit([move('of-1', src.id, hot.id, MAX_AMOUNT_MINOR - 1n)]))[0])).toBe('created');
    // Two calls crediting hot in one batch (hot is shared in it): the database's sum overflows, the retry computes it.
    const r = await Promise.all([f.ledger.submit([move('of-2', src2.id, hot.id, 1n)]), f.ledger.submit([move('of-3', src3.id, hot.id, 2n)])]);
    expect(r.flat().map(code)).toEqual(['overflow', 'overflow']);
    const [acc] = await f.ledger.getAccounts([hot.id]);
    expect(acc!.creditsPostedMinor).toBe(MAX_AMOUNT_MINOR);
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });

  it('without remembered rows every batch reads first, with the same outcomes', async () => {
    const cold = createLedger({ db: f.db, clock: f.clock, batch: { maxWaitMs: 0, rememberRows: false } });
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 10n);
    expect((await cold.submit([move('cold-1', a.id, b.id, 6n), move('cold-2', a.id, b.id, 6n), move('cold-1', a.id, b.id, 6n)])).map(code)).toEqual([
      'created',
      'insufficient_funds',
      'exists',
    ]);
    expect(code((await cold.submit([move('cold-2', a.id, b.id, 6n)]))[0])).toBe('insufficient_funds');
    await cold.close();
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });

  it('waits maxWaitMs for companions only when idle: what queues behind a running batch goes as soon as a slot is free', async () => {
    // A wait far longer than the test's timeout: a transfer made to sit it out would fail the test.
    const patient = createLedger({ db: f.db, clock: f.clock, batch: { maxWaitMs: 600_000, maxBatchSize: 2 } });
    const [a, b, c, d] = [await f.account(), await f.account(), await f.account(), await f.account()];
    await f.fund(c.id, 10n);
    // Another transaction holds account a (PostgreSQL: its row lock; PGlite: the one connection), so that the first
    // batch stays in flight until it lets go.
    let locked!: () => void;
    let release!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    const holding = f.db.transaction(async (tx) => {
      await tx.query(`select id from ledger_accounts where id = $1 for update`, [a.id]);
      locked();
      await gate;
    });
    try {
      await isLocked;
      // A full batch starts at once and waits for the lock; the call after it arrives while it is in flight.
      const full = patient.submit([move('idle-1', a.id, b.id, 1n), move('idle-2', a.id, b.id, 1n)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const behind = patient.submit([move('idle-3', c.id, d.id, 1n)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      release();
      await holding;
      expect([...(await full), ...(await behind)].map(code)).toEqual(['created', 'created', 'created']);
      // Idle again: a lone transfer waits for companions (maxWaitMs), until close() applies what is queued.
      let settled = false;
      const lone = patient.submit([move('idle-4', c.id, d.id, 1n)]).then((r) => {
        settled = true;
        return r;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(settled).toBe(false);
      await patient.close();
      expect((await lone).map(code)).toEqual(['created']);
    } finally {
      release();
      await holding;
      await patient.close();
    }
  }, 20_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_AMOUNT_MINOR } from '../../src/platform/money.ts';
import type { TransferInput, TransferResult } from '../../src/ledger/types.ts';
import { errorStatus } from '../../src/api/errors.ts';
import { availableEngines } from '../support/engines.ts';
import { creditBalance, ledgerFixture, type LedgerFixture } from './helpers.ts';

const engines = await availableEngines();

function code(result: TransferResult | undefined): string {
  if (result === undefined) return 'missing';
  return result.ok ? result.value.status : result.error.code;
}

describe.each(engines)('ledger on %s', (engine) => {
  let f: LedgerFixture;
  beforeAll(async () => {
    f = await ledgerFixture(engine);
  });
  afterAll(async () => {
    await f.drop();
  });

  async function rowCounts(): Promise<string> {
    const [r] = await f.db.query(
      `select (select count(*) from ledger_transfers) as t, (select count(*) from ledger_history) as h,
              (select sum(debits_posted + debits_pending + credits_posted + credits_pending) from ledger_accounts) as b`,
    );
    return JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }

  async function applyOne(t: TransferInput): Promise<TransferResult> {
    const [r] = await f.apply([t]);
    return r!;
  }

  it('moves money and keeps history with the balance after each change', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 1000n);
    const r = await applyOne({ id: 'mv-1', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 300n, currency: 'CNY', purpose: 'p2p', metadata: { note: 'lunch' } });
    expect(code(r)).toBe('created');
    const got = new Map((await f.ledger.getAccounts([a.id, b.id])).map((x) => [x.id, creditBalance(x)]));
    expect([got.get(a.id), got.get(b.id)]).toEqual([700n, 300n]);
    const page = await f.ledger.history(a.id, { limit: 1 });
    expect(page.ok && page.value.entries.map((e) => [e.transferId, e.creditsPostedMinor - e.debitsPostedMinor])).toEqual([[expect.stringMatching(/^fund_/), 1000n]]);
    const next = page.ok && page.value.nextCursor !== null ? await f.ledger.history(a.id, { cursor: page.value.nextCursor, limit: 200 }) : undefined;
    expect(next?.ok && next.value.entries.map((e) => [e.transferId, e.side, e.creditsPostedMinor - e.debitsPostedMinor])).toEqual([['mv-1', 'debit', 700n]]);
    expect(next?.ok && next.value.nextCursor).toBe(null);
    const t = await f.ledger.getTransfer('mv-1');
    expect(t.ok && t.value.metadata).toEqual({ note: 'lunch' });
    expect(await f.ledger.history(a.id, { limit: 201 })).toMatchObject({ ok: false, error: { code: 'invalid_page' } });
    expect(await f.ledger.getTransfer('nope')).toMatchObject({ ok: false, error: { code: 'transfer_not_found' } });
  });

  it('rejects bad transfers with their codes and writes nothing', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    const usd = await f.account({ currency: 'USD' });
    const closed = await f.account();
    expect((await f.ledger.closeAccount(closed.id)).ok).toBe(true);
    await f.fund(a.id, 100n);
    // Overflow: an unlimited funding account pushes b's credits to the maximum, then one more unit cannot fit.
    const src = await f.account({ kind: 'funding' });
    const big = await f.account();
    expect(code(await applyOne({ id: 'max-1', debitAccountId: src.id, creditAccountId: big.id, amountMinor: MAX_AMOUNT_MINOR, currency: 'CNY', purpose: 'x' }))).toBe('created');
    const before = await rowCounts();
    const base = { debitAccountId: a.id, creditAccountId: b.id, currency: 'CNY', purpose: 'x' } as const;
    const cases: [TransferInput, string][] = [
      [{ ...base, id: 'bad-0', amountMinor: 0n }, 'amount_not_positive'],
      [{ ...base, id: 'bad-neg', amountMinor: -5n }, 'amount_not_positive'],
      [{ ...base, id: 'bad-big', amountMinor: MAX_AMOUNT_MINOR + 1n }, 'amount_too_large'],
      [{ ...base, id: 'bad-cur', amountMinor: 1n, creditAccountId: usd.id }, 'currency_mismatch'],
      [{ ...base, id: 'bad-cur2', amountMinor: 1n, currency: 'USD' }, 'currency_mismatch'],
      [{ ...base, id: 'bad-same', amountMinor: 1n, creditAccountId: a.id }, 'same_account'],
      [{ ...base, id: 'bad-closed', amountMinor: 1n, creditAccountId: closed.id }, 'account_closed'],
      [{ ...base, id: 'bad-unknown', amountMinor: 1n, creditAccountId: 'acc_nope' }, 'account_not_found'],
      [{ ...base, id: 'bad-funds', amountMinor: 101n }, 'insufficient_funds'],
      [{ ...base, id: 'bad-overflow', amountMinor: 1n, debitAccountId: src.id, creditAccountId: big.id }, 'overflow'],
      [{ ...base, id: 'x'.repeat(65), amountMinor: 1n }, 'invalid_transfer'],
      [{ ...base, id: 'bad-meta', amountMinor: 1n, metadata: { blob: 'x'.repeat(5000) } }, 'metadata_too_large'],
      [{ kind: 'post_pending', id: 'bad-post', pendingId: 'no-such', purpose: 'x' }, 'pending_not_found'],
    ];
    const results = await f.apply(cases.map(([t]) => t));
    expect(results.map(code)).toEqual(cases.map(([, c]) => c));
    for (const r of results) if (!r.ok) expect(errorStatus[r.error.code]).toBeGreaterThanOrEqual(400);
    expect(await rowCounts()).toBe(before);
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });

  it('credit limit: a no-overdraft account may go down to −limit and not further', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true, creditLimitMinor: 50n });
    const b = await f.account();
    await f.fund(a.id, 10n);
    expect(code(await applyOne({ id: 'cl-1', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 60n, currency: 'CNY', purpose: 'x' }))).toBe('created');
    expect(code(await applyOne({ id: 'cl-2', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 1n, currency: 'CNY', purpose: 'x' }))).toBe('exceeds_credit_limit');
    const c = await f.account({ creditsMustNotExceedDebits: true });
    expect(code(await applyOne({ id: 'cl-3', debitAccountId: b.id, creditAccountId: c.id, amountMinor: 1n, currency: 'CNY', purpose: 'x' }))).toBe('exceeds_debits');
    expect((await f.ledger.createAccount({ ownerParticipantId: 'par_ledger_test', currency: 'CNY', kind: 'credit', creditLimitMinor: 5n })).ok).toBe(false);
    expect(await f.ledger.createAccount({ ownerParticipantId: 'par_nobody', currency: 'CNY', kind: 'credit' })).toMatchObject({ ok: false, error: { code: 'participant_not_found' } });
  });

  it('idempotency: same fields → exists, different fields → error, failed id replays its failure forever', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 100n);
    const t: TransferInput = { id: 'idem-1', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 40n, currency: 'CNY', purpose: 'x', metadata: { a: 1, b: 2 } };
    expect(code(await applyOne(t))).toBe('created');
    // Key order of metadata does not matter; a second copy in the same batch is also just "exists".
    const again = await f.apply([{ ...t, metadata: { b: 2, a: 1 } }, t]);
    expect(again.map(code)).toEqual(['exists', 'exists']);
    expect(again[0]?.ok && again[0].value.transfer.amountMinor).toBe(40n);
    expect(code(await applyOne({ ...t, amountMinor: 41n }))).toBe('transfer_exists_with_different_fields');
    expect(creditBalance((await f.ledger.getAccounts([a.id]))[0]!)).toBe(60n);
    const failing: TransferInput = { id: 'idem-2', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 100n, currency: 'CNY', purpose: 'x' };
    expect(code(await applyOne(failing))).toBe('insufficient_funds');
    await f.fund(a.id, 1000n);
    // Funds are there now, but the id already failed: the failure is replayed, not re-tried.
    expect(code(await applyOne(failing))).toBe('insufficient_funds');
    expect(code(await applyOne({ ...failing, amountMinor: 1n }))).toBe('transfer_exists_with_different_fields');
    expect(creditBalance((await f.ledger.getAccounts([a.id]))[0]!)).toBe(1060n);
  });

  it('linked chains commit or fail together', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account({ debitsMustNotExceedCredits: true });
    const c = await f.account();
    await f.fund(a.id, 100n);
    const mv = (id: string, from: string, to: string, amountMinor: bigint, linked: boolean): TransferInput => ({ id, debitAccountId: from, creditAccountId: to, amountMinor, currency: 'CNY', purpose: 'x', linked });
    // a → b 100 then b → c 150: the second fails, so the first is rolled back too; the third (own chain) succeeds.
    const r = await f.apply([mv('ln-1', a.id, b.id, 100n, true), mv('ln-2', b.id, c.id, 150n, false), mv('ln-3', a.id, c.id, 10n, false)]);
    expect(r.map(code)).toEqual(['linked_transfer_failed', 'insufficient_funds', 'created']);
    const ok = await f.apply([mv('ln-4', a.id, b.id, 90n, true), mv('ln-5', b.id, c.id, 90n, false)]);
    expect(ok.map(code)).toEqual(['created', 'created']);
    const open = await f.apply([mv('ln-6', c.id, a.id, 1n, true), mv('ln-7', c.id, a.id, 1n, true)]);
    expect(open.map(code)).toEqual(['linked_transfer_failed', 'linked_chain_open']);
    const balances = new Map((await f.ledger.getAccounts([a.id, b.id, c.id])).map((x) => [x.id, creditBalance(x)]));
    expect([balances.get(a.id), balances.get(b.id), balances.get(c.id)]).toEqual([0n, 0n, 100n]);
    expect(await f.ledger.getTransfer('ln-1')).toMatchObject({ ok: false });
  });

  it('two-phase: partial post releases the rest, void releases all, resolution happens once', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 100n);
    const pend = (id: string, amountMinor: bigint): TransferInput => ({ kind: 'pending', id, debitAccountId: a.id, creditAccountId: b.id, amountMinor, currency: 'CNY', purpose: 'hold' });
    expect((await f.apply([pend('tp-1', 60n), pend('tp-2', 30n), pend('tp-3', 20n)])).map(code)).toEqual(['created', 'created', 'insufficient_funds']);
    let [acc] = await f.ledger.getAccounts([a.id]);
    expect(acc?.debitsPendingMinor).toBe(90n);
    expect(code(await applyOne({ kind: 'post_pending', id: 'tp-1-post', pendingId: 'tp-1', amountMinor: 61n, purpose: 'x' }))).toBe('post_amount_exceeds_pending');
    const posted = await applyOne({ kind: 'post_pending', id: 'tp-1-post2', pendingId: 'tp-1', amountMinor: 45n, purpose: 'x' });
    expect(posted.ok && posted.value.transfer.amountMinor).toBe(45n);
    expect(code(await applyOne({ kind: 'void_pending', id: 'tp-1-void', pendingId: 'tp-1', purpose: 'x' }))).toBe('pending_already_resolved');
    expect(code(await applyOne({ kind: 'void_pending', id: 'tp-2-void', pendingId: 'tp-2', purpose: 'x' }))).toBe('created');
    [acc] = await f.ledger.getAccounts([a.id]);
    expect([acc?.debitsPendingMinor, acc?.debitsPostedMinor, acc?.creditsPostedMinor]).toEqual([0n, 45n, 100n]);
    expect(await f.ledger.getTransfer('tp-1')).toMatchObject({ ok: true, value: { pendingState: 'posted' } });
    expect(await f.ledger.getTransfer('tp-2')).toMatchObject({ ok: true, value: { pendingState: 'voided' } });
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });

  it('statement: every event of both sides (single, pending, post, void, expiry) in seq order with the balances after it', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 1000n);
    const r = await f.apply([
      { id: 'st-1', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 100n, currency: 'CNY', purpose: 'p' },
      { id: 'st-2', debitAccountId: b.id, creditAccountId: a.id, amountMinor: 30n, currency: 'CNY', purpose: 'p' },
      { kind: 'pending', id: 'st-p1', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 50n, currency: 'CNY', purpose: 'hold' },
      { kind: 'post_pending', id: 'st-p1-post', pendingId: 'st-p1', amountMinor: 20n, purpose: 'capture' },
      { kind: 'pending', id: 'st-p2', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 40n, currency: 'CNY', purpose: 'hold' },
      { kind: 'void_pending', id: 'st-p2-void', pendingId: 'st-p2', purpose: 'release' },
      { kind: 'pending', id: 'st-p3', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 7n, currency: 'CNY', purpose: 'hold', timeoutMs: 10 },
    ]);
    expect(r.map(code)).toEqual(['created', 'created', 'created', 'created', 'created', 'created', 'created']);
    f.clock.advance(10);
    expect((await f.ledger.expirePending()).expiredCount).toBeGreaterThanOrEqual(1);
    // One entry per page: the cursor walks the merged debit / credit / expiry sequence.
    const entries = [];
    let cursor: string | undefined;
    for (let i = 0; i < 20; i++) {
      const page = await f.ledger.history(a.id, { limit: 1, ...(cursor !== undefined ? { cursor } : {}) });
      if (!page.ok) throw new Error(page.error.code);
      entries.push(...page.value.entries);
      if (page.value.nextCursor === null) break;
      cursor = page.value.nextCursor;
    }
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => BigInt(i + 1)));
    expect(entries.map((e) => [e.transferId, e.event, e.side, e.amountMinor])).toEqual([
      [expect.stringMatching(/^fund_/), 'single_phase', 'credit', 1000n],
      ['st-1', 'single_phase', 'debit', 100n],
      ['st-2', 'single_phase', 'credit', 30n],
      ['st-p1', 'pending', 'debit', 50n],
      ['st-p1-post', 'post_pending', 'debit', 20n],
      ['st-p2', 'pending', 'debit', 40n],
      ['st-p2-void', 'void_pending', 'debit', 40n],
      ['st-p3', 'pending', 'debit', 7n],
      ['st-p3', 'expired', 'debit', 7n],
    ]);
    expect(entries.map((e) => [e.creditsPostedMinor - e.debitsPostedMinor, e.debitsPendingMinor])).toEqual([
      [1000n, 0n],
      [900n, 0n],
      [930n, 0n],
      [930n, 50n],
      [910n, 0n],
      [910n, 40n],
      [910n, 0n],
      [910n, 7n],
      [910n, 0n],
    ]);
    const whole = await f.ledger.history(b.id, { limit: 200 });
    expect(whole.ok && whole.value.entries.map((e) => [e.transferId, e.side, e.creditsPostedMinor - e.debitsPostedMinor, e.creditsPendingMinor])).toEqual([
      ['st-1', 'credit', 100n, 0n],
      ['st-2', 'debit', 70n, 0n],
      ['st-p1', 'credit', 70n, 50n],
      ['st-p1-post', 'credit', 90n, 0n],
      ['st-p2', 'credit', 90n, 40n],
      ['st-p2-void', 'credit', 90n, 0n],
      ['st-p3', 'credit', 90n, 7n],
      ['st-p3', 'credit', 90n, 0n],
    ]);
    const [acc] = await f.ledger.getAccounts([a.id]);
    const last = entries[entries.length - 1]!;
    expect([last.debitsPostedMinor, last.creditsPostedMinor, last.debitsPendingMinor, last.creditsPendingMinor]).toEqual([
      acc!.debitsPostedMinor,
      acc!.creditsPostedMinor,
      acc!.debitsPendingMinor,
      acc!.creditsPendingMinor,
    ]);
  });

  it('expiry with a fake clock voids only what is due, exactly once', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 100n);
    const r = await f.apply([
      { kind: 'pending', id: 'ex-1', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 10n, currency: 'CNY', purpose: 'hold', timeoutMs: 1000 },
      { kind: 'pending', id: 'ex-2', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 20n, currency: 'CNY', purpose: 'hold', timeoutMs: 60_000 },
    ]);
    expect(r.map(code)).toEqual(['created', 'created']);
    f.clock.advance(999);
    expect((await f.ledger.expirePending()).expiredCount).toBe(0);
    f.clock.advance(1);
    expect(code(await applyOne({ kind: 'post_pending', id: 'ex-1-post', pendingId: 'ex-1', purpose: 'x' }))).toBe('pending_expired');
    expect((await f.ledger.expirePending()).expiredCount).toBe(1);
    expect((await f.ledger.expirePending()).expiredCount).toBe(0);
    const [acc] = await f.ledger.getAccounts([a.id]);
    expect(acc?.debitsPendingMinor).toBe(20n);
    expect(await f.ledger.getTransfer('ex-1')).toMatchObject({ ok: true, value: { pendingState: 'expired' } });
    // The failed post replays its failure even though the pending is now resolved differently.
    expect(code(await applyOne({ kind: 'post_pending', id: 'ex-1-post', pendingId: 'ex-1', purpose: 'x' }))).toBe('pending_expired');
    const h = await f.ledger.history(a.id, { limit: 200 });
    expect(h.ok && h.value.entries.filter((e) => e.event === 'expired').map((e) => e.transferId)).toEqual(['ex-1']);
    f.clock.advance(60_000);
    expect((await f.ledger.expirePending({ maxCount: 10 })).expiredCount).toBe(1);
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });

  it('post, void and expiry racing on one pending: exactly one wins', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 1000n);
    // A second ledger on the same database races the first (separate transactions).
    const { createLedger } = await import('../../src/ledger/ledger.ts');
    const other = createLedger({ db: f.db, clock: f.clock });
    for (let round = 0; round < 10; round++) {
      const id = `race-${round}`;
      expect(code(await applyOne({ kind: 'pending', id, debitAccountId: a.id, creditAccountId: b.id, amountMinor: 10n, currency: 'CNY', purpose: 'hold', timeoutMs: 5 }))).toBe('created');
      f.clock.advance(round % 2 === 0 ? 0 : 5);
      const [post, voided, expired] = await Promise.all([
        f.apply([{ kind: 'post_pending', id: `${id}-post`, pendingId: id, purpose: 'x' }]),
        f.apply([{ kind: 'void_pending', id: `${id}-void`, pendingId: id, purpose: 'x' }], other),
        other.expirePending(),
      ]);
      const winners = [post[0]?.ok === true, voided[0]?.ok === true, expired.expiredCount === 1].filter(Boolean).length;
      expect(winners).toBe(1);
    }
    const [acc] = await f.ledger.getAccounts([a.id]);
    expect(acc?.debitsPendingMinor).toBe(0n);
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });

  it('two transactions inserting the same new id on disjoint accounts: one wins, the caller retrying the other sees it', async () => {
    const { sqlState } = await import('../../src/platform/db.ts');
    const [a, b, c, d] = [await f.account(), await f.account(), await f.account(), await f.account()];
    const mv = (id: string, from: string, to: string): TransferInput => ({ id, debitAccountId: from, creditAccountId: to, amountMinor: 7n, currency: 'CNY', purpose: 'x' });
    // The loser's insert meets the winner's primary key (23505) and its transaction rolls back; the caller's retry
    // (an idempotent request retried) then reads the winner's row under lock and answers without moving money.
    const applyRetrying = async (transfers: TransferInput[]): Promise<TransferResult[]> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await f.apply(transfers);
        } catch (error) {
          if (sqlState(error) !== '23505' || attempt >= 3) throw error;
        }
      }
    };
    for (let round = 0; round < 5; round++) {
      const ids = Array.from({ length: 20 }, (_, i) => `dup-${round}-${i}`);
      const [left, right] = await Promise.all([applyRetrying(ids.map((id) => mv(id, a.id, b.id))), applyRetrying(ids.map((id) => mv(id, c.id, d.id)))]);
      // All or nothing per transaction: one side created all 20, the other found them all with different fields.
      expect([code(left[0]), code(right[0])].sort()).toEqual(['created', 'transfer_exists_with_different_fields']);
      for (let i = 0; i < ids.length; i++) expect(code(left[i])).toBe(code(left[0]));
      for (let i = 0; i < ids.length; i++) expect(code(right[i])).toBe(code(right[0]));
    }
    const moved = (await f.ledger.getAccounts([b.id, d.id])).reduce((sum, x) => sum + creditBalance(x), 0n);
    expect(moved).toBe(5n * 20n * 7n);
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });

  it('applyInTx moves money atomically with the caller’s transaction', async () => {
    const a = await f.account({ debitsMustNotExceedCredits: true });
    const b = await f.account();
    await f.fund(a.id, 50n);
    await expect(
      f.db.transaction(async (tx) => {
        const r = await f.ledger.applyInTx(tx, [{ id: 'tx-1', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 50n, currency: 'CNY', purpose: 'x' }]);
        expect(code(r[0])).toBe('created');
        throw new Error('caller rolls back');
      }),
    ).rejects.toThrow('caller rolls back');
    expect(await f.ledger.getTransfer('tx-1')).toMatchObject({ ok: false, error: { code: 'transfer_not_found' } });
    const r = await f.db.transaction((tx) => f.ledger.applyInTx(tx, [{ id: 'tx-1', debitAccountId: a.id, creditAccountId: b.id, amountMinor: 50n, currency: 'CNY', purpose: 'x' }]));
    expect(code(r[0])).toBe('created');
    expect(creditBalance((await f.ledger.getAccounts([b.id]))[0]!)).toBe(50n);
  });

  it('lists accounts by owner and currency', async () => {
    await f.account({ currency: 'USD' });
    const listed = await f.ledger.listAccounts({ ownerParticipantId: 'par_ledger_test', currency: 'USD' });
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((x) => x.currency === 'USD')).toBe(true);
  });
});

describe('wire helpers', () => {
  it('format amounts as decimal strings with the currency', async () => {
    const { accountToWire, transferToWire } = await import('../../src/ledger/wire.ts');
    const at = new Date(0);
    const wire = accountToWire({
      id: 'acc_1', ownerParticipantId: 'par_1', customerId: null, currency: 'CNY', kind: 'customer', debitsMustNotExceedCredits: true, creditsMustNotExceedDebits: false,
      creditLimitMinor: 500n, closed: false, debitsPendingMinor: 100n, debitsPostedMinor: 1000n, creditsPendingMinor: 0n, creditsPostedMinor: 250n, createdAt: at, updatedAt: at,
    });
    expect([wire.balance, wire.available, wire.creditLimit]).toEqual([{ amount: '-7.50', currency: 'CNY' }, { amount: '-3.50', currency: 'CNY' }, { amount: '5.00', currency: 'CNY' }]);
    const t = transferToWire({ id: 't', kind: 'single_phase', debitAccountId: 'a', creditAccountId: 'b', amountMinor: 12345n, currency: 'JPY', purpose: 'x', metadata: {}, linked: false, pendingId: null, timeoutMs: null, expiresAt: null, createdAt: at });
    expect(t.amount).toEqual({ amount: '12345', currency: 'JPY' });
  });
});

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/ledger.ts';
import type { TransferInput } from '../../src/ledger/types.ts';
import type { FakeClock } from '../../src/platform/clock.ts';
import { ledgerFixture, type LedgerFixture } from './helpers.ts';

/**
 * The ledger's own rules (pending, post, void, expiry) against an in-memory model, one applyInTx call per command in a
 * transaction of its own. The payment path's model test (money moved through the services payments use) is
 * test/ledger/payments-model.test.ts.
 *
 * The in-memory model: the ledger's rules written as plainly as possible, independently of src/ledger/compute.ts.
 */
interface ModelAccount {
  noOverdraft: boolean;
  dp: bigint;
  dpo: bigint;
  cp: bigint;
  cpo: bigint;
}
interface ModelPending {
  id: string;
  debit: number;
  credit: number;
  amount: bigint;
  expiresAtMs: number | null;
  state: 'pending' | 'posted' | 'voided' | 'expired';
}
interface Model {
  accounts: ModelAccount[];
  pendings: ModelPending[];
}
interface Real {
  ledger: Ledger;
  apply: LedgerFixture['apply'];
  clock: FakeClock;
  accountIds: string[];
  run: string;
  seq: number;
}

async function submitOne(real: Real, t: TransferInput): Promise<string> {
  const [r] = await real.apply([t]);
  return r === undefined ? 'missing' : r.ok ? 'ok' : r.error.code;
}

async function compareBalances(m: Model, real: Real): Promise<void> {
  const got = new Map((await real.ledger.getAccounts(real.accountIds)).map((a) => [a.id, a]));
  real.accountIds.forEach((id, i) => {
    const a = got.get(id)!;
    const e = m.accounts[i]!;
    expect([a.debitsPendingMinor, a.debitsPostedMinor, a.creditsPendingMinor, a.creditsPostedMinor]).toEqual([e.dp, e.dpo, e.cp, e.cpo]);
  });
}

function expectedMoveCode(m: Model, debit: number, amount: bigint): string {
  const d = m.accounts[debit]!;
  return d.noOverdraft && d.dp + d.dpo + amount > d.cpo ? 'insufficient_funds' : 'ok';
}

class Move implements fc.AsyncCommand<Model, Real> {
  constructor(readonly debit: number, readonly credit: number, readonly amount: bigint, readonly pending: boolean, readonly timeoutMs: number) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const id = `${real.run}-${real.seq++}`;
    const credit = this.credit === this.debit ? (this.credit + 1) % m.accounts.length : this.credit;
    const base = { id, debitAccountId: real.accountIds[this.debit]!, creditAccountId: real.accountIds[credit]!, amountMinor: this.amount, currency: 'CNY', purpose: 'model' };
    const got = await submitOne(real, this.pending ? { ...base, kind: 'pending', timeoutMs: this.timeoutMs } : base);
    const expected = expectedMoveCode(m, this.debit, this.amount);
    expect(got).toBe(expected);
    if (expected === 'ok') {
      if (this.pending) {
        m.accounts[this.debit]!.dp += this.amount;
        m.accounts[credit]!.cp += this.amount;
        m.pendings.push({ id, debit: this.debit, credit, amount: this.amount, expiresAtMs: this.timeoutMs > 0 ? real.clock.nowMs() + this.timeoutMs : null, state: 'pending' });
      } else {
        m.accounts[this.debit]!.dpo += this.amount;
        m.accounts[credit]!.cpo += this.amount;
      }
    }
    await compareBalances(m, real);
  }
  toString = () => `Move(${this.debit}→${this.credit}, ${this.amount}, pending=${this.pending}, timeout=${this.timeoutMs})`;
}

class Resolve implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number, readonly action: 'post' | 'void', readonly postAmount: bigint | null) {}
  check = (m: Readonly<Model>) => m.pendings.length > 0;
  async run(m: Model, real: Real): Promise<void> {
    const p = m.pendings[this.pick % m.pendings.length]!;
    const id = `${real.run}-${real.seq++}`;
    const input: TransferInput =
      this.action === 'post'
        ? { kind: 'post_pending', id, pendingId: p.id, purpose: 'model', ...(this.postAmount !== null ? { amountMinor: this.postAmount } : {}) }
        : { kind: 'void_pending', id, pendingId: p.id, purpose: 'model' };
    const got = await submitOne(real, input);
    let expected = 'ok';
    const posted = this.postAmount ?? p.amount;
    if (p.state !== 'pending') expected = 'pending_already_resolved';
    else if (p.expiresAtMs !== null && p.expiresAtMs <= real.clock.nowMs()) expected = 'pending_expired';
    else if (this.action === 'post' && posted > p.amount) expected = 'post_amount_exceeds_pending';
    expect(got).toBe(expected);
    if (expected === 'ok') {
      m.accounts[p.debit]!.dp -= p.amount;
      m.accounts[p.credit]!.cp -= p.amount;
      if (this.action === 'post') {
        m.accounts[p.debit]!.dpo += posted;
        m.accounts[p.credit]!.cpo += posted;
      }
      p.state = this.action === 'post' ? 'posted' : 'voided';
    }
    await compareBalances(m, real);
  }
  toString = () => `Resolve(#${this.pick}, ${this.action}, ${this.postAmount})`;
}

class AdvanceAndExpire implements fc.AsyncCommand<Model, Real> {
  constructor(readonly advanceMs: number) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    real.clock.advance(this.advanceMs);
    const now = real.clock.nowMs();
    let expected = 0;
    for (const p of m.pendings) {
      if (p.state === 'pending' && p.expiresAtMs !== null && p.expiresAtMs <= now) {
        p.state = 'expired';
        m.accounts[p.debit]!.dp -= p.amount;
        m.accounts[p.credit]!.cp -= p.amount;
        expected++;
      }
    }
    expect((await real.ledger.expirePending()).expiredCount).toBe(expected);
    await compareBalances(m, real);
  }
  toString = () => `AdvanceAndExpire(${this.advanceMs})`;
}

const ACCOUNTS = 4;
const account = fc.integer({ min: 0, max: ACCOUNTS - 1 });
const amount = fc.bigInt({ min: 1n, max: 150n });
const commands = [
  fc.tuple(account, account, amount).map(([d, c, a]) => new Move(d, c, a, false, 0)),
  fc.tuple(account, account, amount, fc.constantFrom(0, 100, 1000)).map(([d, c, a, t]) => new Move(d, c, a, true, t)),
  fc.tuple(fc.nat(20), fc.option(fc.bigInt({ min: 1n, max: 160n }), { nil: null })).map(([p, a]) => new Resolve(p, 'post', a)),
  fc.nat(20).map((p) => new Resolve(p, 'void', null)),
  fc.constantFrom(50, 100, 1000).map((ms) => new AdvanceAndExpire(ms)),
];

describe('ledger rules (applyInTx) against an in-memory model (PGlite)', () => {
  let f: LedgerFixture;
  beforeAll(async () => {
    f = await ledgerFixture('pglite');
  });
  afterAll(async () => {
    await f.drop();
  });

  it('agrees with the model on every command', async () => {
    let runNo = 0;
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25 }), async (cmds) => {
        const run = `m${runNo++}`;
        // Accounts 0 and 1 cannot be overdrawn (funded with 200); 2 and 3 are unlimited.
        const accountIds: string[] = [];
        const model: Model = { accounts: [], pendings: [] };
        for (let i = 0; i < ACCOUNTS; i++) {
          const noOverdraft = i < 2;
          const acc = await f.account({ id: `${run}-acc${i}`, debitsMustNotExceedCredits: noOverdraft });
          accountIds.push(acc.id);
          model.accounts.push({ noOverdraft, dp: 0n, dpo: 0n, cp: 0n, cpo: 0n });
        }
        for (let i = 0; i < 2; i++) {
          await f.fund(accountIds[i]!, 200n);
          model.accounts[i]!.cpo += 200n;
        }
        // Pendings left from earlier runs must not count: expire them all before this run starts.
        f.clock.advance(10_000);
        await f.ledger.expirePending();
        await fc.asyncModelRun(() => ({ model, real: { ledger: f.ledger, apply: f.apply, clock: f.clock, accountIds, run, seq: 0 } }), cmds);
      }),
      { numRuns: 40 },
    );
    expect(await f.ledger.checkInvariants()).toEqual([]);
  });
});

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { confirm, doubleMoves, openBank, quote, snapshot, walletClient, type BankParty, type BankSpec, type Payment, type Post } from './p2p-bank.ts';

/**
 * The payment path against an in-memory model (fast-check): money moves only through the services payments use (P2P
 * quote and confirm over the API: effect batcher, transfers.confirmMany, ledger.applyInTx; deposits through the
 * accounts service), and after every command each account holds what the model says. The model knows nothing of the
 * ledger: a payment succeeds when the payer holds the amount, a retried confirm (same key) answers what it answered
 * the first time and moves nothing, a used quote cannot pay again, confirms arriving together decide as if one after
 * the other. The ledger's own rules (pending, post, void, expiry) have their model test in model.test.ts.
 */
const engines = await availableEngines();
const CUSTOMERS = 4;

interface Sent {
  readonly from: number;
  readonly quoteId: string;
  readonly key: string;
  readonly answer: Payment;
}
interface Model {
  balances: bigint[];
  sent: Sent[];
}
interface Real {
  readonly t: TestHub;
  readonly post: Post;
  readonly parties: readonly BankParty[];
  readonly run: string;
  seq: number;
}

const answerOf = (p: Payment): string => `${p.code}:${p.paymentId ?? ''}`;

async function compare(m: Model, real: Real): Promise<void> {
  const rows = await real.t.hub.db.query<{ id: string; b: bigint }>(`select id, credits_posted - debits_posted as b from ledger_accounts where id = any($1::text[])`, [real.parties.map((p) => p.accountId)]);
  const got = new Map(rows.map((r) => [r.id, BigInt(r.b)]));
  expect(real.parties.map((p) => got.get(p.accountId))).toEqual(m.balances);
}

/** A payment: quote, then confirm under a new key. */
class Pay implements fc.AsyncCommand<Model, Real> {
  constructor(readonly from: number, readonly to: number, readonly amount: bigint) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const to = this.to === this.from ? (this.to + 1) % CUSTOMERS : this.to;
    const payer = real.parties[this.from]!;
    const q = await quote(real.post, payer, real.parties[to]!, this.amount);
    expect(q.code).toBe('ok');
    const key = `${real.run}-${real.seq++}`;
    const answer = await confirm(real.post, payer.wallet, q.quoteId!, key);
    const expected = m.balances[this.from]! >= this.amount ? 'ok' : 'insufficient_funds';
    expect(answer.code).toBe(expected);
    if (expected === 'ok') {
      m.balances[this.from]! -= this.amount;
      m.balances[to]! += this.amount;
    }
    m.sent.push({ from: this.from, quoteId: q.quoteId!, key, answer });
    await compare(m, real);
  }
  toString = () => `Pay(${this.from}→${this.to}, ${this.amount})`;
}

/** Confirms arriving together (one batch, or a few): distinct payers, none of them paid in the group. */
class PayTogether implements fc.AsyncCommand<Model, Real> {
  constructor(readonly amounts: readonly bigint[]) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    // Payers 0..k-1 pay the last customer, which pays nobody here: each outcome depends on its payer alone.
    const payee = CUSTOMERS - 1;
    const group = this.amounts.slice(0, CUSTOMERS - 1).map((amount, from) => ({ from, amount }));
    const quoted = await Promise.all(group.map(async (g) => ({ ...g, q: await quote(real.post, real.parties[g.from]!, real.parties[payee]!, g.amount), key: `${real.run}-${real.seq++}` })));
    const answers = await Promise.all(quoted.map((g) => confirm(real.post, real.parties[g.from]!.wallet, g.q.quoteId!, g.key)));
    quoted.forEach((g, i) => {
      const expected = m.balances[g.from]! >= g.amount ? 'ok' : 'insufficient_funds';
      expect(answers[i]!.code).toBe(expected);
      if (expected === 'ok') {
        m.balances[g.from]! -= g.amount;
        m.balances[payee]! += g.amount;
      }
      m.sent.push({ from: g.from, quoteId: g.q.quoteId!, key: g.key, answer: answers[i]! });
    });
    await compare(m, real);
  }
  toString = () => `PayTogether(${this.amounts.join(', ')})`;
}

/** A wallet retrying a confirm it sent (its answer was lost): the same answer, no money moves. */
class Retry implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.sent.length > 0;
  async run(m: Model, real: Real): Promise<void> {
    const s = m.sent[this.pick % m.sent.length]!;
    const again = await confirm(real.post, real.parties[s.from]!.wallet, s.quoteId, s.key);
    expect(answerOf(again)).toBe(answerOf(s.answer));
    await compare(m, real);
  }
  toString = () => `Retry(#${this.pick})`;
}

/** The same quote confirmed again under a NEW key: a paid quote never pays twice; a refused one may pay now. */
class ReuseQuote implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.sent.length > 0;
  async run(m: Model, real: Real): Promise<void> {
    const s = m.sent[this.pick % m.sent.length]!;
    const key = `${real.run}-${real.seq++}`;
    const answer = await confirm(real.post, real.parties[s.from]!.wallet, s.quoteId, key);
    const paidBefore = m.sent.some((x) => x.quoteId === s.quoteId && x.answer.code === 'ok');
    if (paidBefore) expect(answer.code).toBe('quote_already_used');
    else {
      const [row] = await real.t.hub.db.query<{ send_minor: bigint; payee_account_id: string }>('select send_minor, payee_account_id from quotes where id = $1', [s.quoteId]);
      const amount = BigInt(row!.send_minor);
      const expected = m.balances[s.from]! >= amount ? 'ok' : 'insufficient_funds';
      expect(answer.code).toBe(expected);
      if (expected === 'ok') {
        const to = real.parties.findIndex((p) => p.accountId === row!.payee_account_id);
        m.balances[s.from]! -= amount;
        m.balances[to]! += amount;
      }
    }
    m.sent.push({ from: s.from, quoteId: s.quoteId, key, answer });
    await compare(m, real);
  }
  toString = () => `ReuseQuote(#${this.pick})`;
}

/** A deposit through the accounts service (its own ledger leg from the wallet's funding position). */
class Deposit implements fc.AsyncCommand<Model, Real> {
  constructor(readonly to: number, readonly amount: bigint) {}
  check = () => true;
  async run(m: Model, real: Real): Promise<void> {
    const p = real.parties[this.to]!;
    const r = await real.t.hub.db.transaction((tx) => real.t.hub.transfers.accounts.deposit(tx, { type: 'system' }, demoParticipantId(p.wallet), p.accountId, this.amount, 'CNY', `${real.run}-dep-${real.seq++}`));
    expect(r.ok).toBe(true);
    m.balances[this.to]! += this.amount;
    await compare(m, real);
  }
  toString = () => `Deposit(${this.to}, ${this.amount})`;
}

const who = fc.integer({ min: 0, max: CUSTOMERS - 1 });
const amount = fc.bigInt({ min: 1n, max: 600n });
const commands = [
  fc.tuple(who, who, amount).map(([f, t, a]) => new Pay(f, t, a)),
  fc.array(amount, { minLength: CUSTOMERS - 1, maxLength: CUSTOMERS - 1 }).map((a) => new PayTogether(a)),
  fc.nat(40).map((p) => new Retry(p)),
  fc.nat(40).map((p) => new ReuseQuote(p)),
  fc.tuple(who, fc.bigInt({ min: 1n, max: 300n })).map(([t, a]) => new Deposit(t, a)),
];

describe.each(engines)('the payment path against an in-memory model (%s)', (engine) => {
  let t: TestHub;
  let parties: BankParty[];
  let post: Post;
  beforeAll(async () => {
    t = await startTestHub(engine, { config: { rateLimitPerS: 1_000_000, webhooks: { enabled: false, pollMs: 500 } } });
    parties = await openBank(t.hub, { count: CUSTOMERS, fundMinor: 500n, tag: 'model' });
    const credentials = Object.fromEntries(
      (['wallet-a', 'wallet-b'] as const).map((w) => {
        const d = t.demo.participants.find((p) => p.key === w)!;
        return [w, { clientId: d.clientId, clientSecret: d.clientSecret }];
      }),
    ) as BankSpec['credentials'];
    post = walletClient(t.hub, credentials);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('agrees with the model on every command', async () => {
    let runNo = 0;
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 15 }), async (cmds) => {
        const run = `m${engine}${runNo++}`;
        // Each run starts from the balances the previous runs left.
        const rows = await t.hub.db.query<{ id: string; b: bigint }>(`select id, credits_posted - debits_posted as b from ledger_accounts where id = any($1::text[])`, [parties.map((p) => p.accountId)]);
        const balances = parties.map((p) => BigInt(rows.find((r) => r.id === p.accountId)!.b));
        await fc.asyncModelRun(() => ({ model: { balances, sent: [] }, real: { t, post, parties, run, seq: 0 } }), cmds);
      }),
      { numRuns: 30 },
    );
    const moves = await doubleMoves(t.hub.db, parties.map((p) => p.accountId));
    expect(moves.paymentsWithOtherLegCount).toBe(0);
    expect(moves.legs).toBe(moves.payments);
    expect((await snapshot(t.hub.db, parties.map((p) => p.accountId))).belowFloor).toBe(0);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  }, 240_000);
});

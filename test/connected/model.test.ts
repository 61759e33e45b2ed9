import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectReferenceBank, CONNECTED_CUSTOMERS, type ConnectedBankCredential } from '../../src/demo/bank/connect.ts';
import { createReferenceBank, type ReferenceBank } from '../../src/demo/bank/reference-bank.ts';
import { DEFAULT_RULES, RULE_NAMES } from '../../src/risk/service.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * Model-based test with fault injection (fast-check commands): random payments between a hosted wallet's customer and
 * a connected bank's customer, both ways, while the bank answers late (after the deadline), is down, refuses, answers
 * twice, or crashes between reserve and commit (then restarts and asks the hub), and while the hub is killed and
 * restarted with work in flight. The model predicts each payment's outcome from the faults and the balances; after each
 * run the outbox is delivered and the bank restarted, and then: every payment has the same final state at the hub and
 * at the bank (committed ↔ ACSC, released or never held ↔ RJCT), no hold is left at the bank and no pending transfer at
 * the hub, and money is conserved across both ledgers (the bank's Σ customers + clearing never changes, its clearing
 * mirrors its position at the hub, the hub's invariants hold).
 *
 * The hub kill (CrashHub): one to three payments are sent at once and the hub is killed at a chosen point — when a
 * bank's reserve/accept answer reaches it (the bank holds, the hub never learns), when it sends its first commit/abort
 * message (decided, nothing delivered), or at its n-th database statement (anywhere: the confirm batch, the ask, the
 * decide batch half-way) — then a new hub starts on the same database, keys and clock, and its own recovery settles
 * everything: the bank restarts and asks the hub each open hold's state (transferStatus), time passes the payments'
 * deadline, `recoverConnected` aborts what was never decided (AB03), `deliverDue` delivers the outbox. The outcome of
 * a payment caught by the kill is the hub's decision, read back; a replay of its Idempotency-Key at the new hub must
 * answer that decision. The kill is in-process, not SIGKILL of a child process: PGlite is an in-process database that
 * a second process cannot open, so a real kill would test PostgreSQL only, and booting a hub process (tsx + createHub,
 * seconds) hundreds of times does not fit the CI budget. The killed hub is fenced instead (test/support/hub.ts
 * `HubFaults`): every statement it sends after the kill fails, a transaction whose body ends after it rolls back
 * instead of committing, and no call of its reaches the bank nor any answer reaches it — its timers and in-flight
 * requests run on but cannot write or send anything, as a dead process.
 *
 * Runs: HUTONG_CONNECTED_MODEL_RUNS per engine (500 in CI — 1,000 over both engines — and 12 elsewhere; the hub is
 * shared, so each run starts where the last ended), bounded in time by HUTONG_CONNECTED_MODEL_MS per engine (160 s in
 * CI: the last CI runs did about 4.4 runs a second); then HUTONG_CONNECTED_MODEL_KILL_RUNS runs that each kill the hub once (40 in CI, 4 elsewhere), bounded by
 * HUTONG_CONNECTED_MODEL_KILL_MS (95 s in CI): a hub restart costs seconds (its HTTP layer compiles every route's
 * schemas), so these runs are fewer. The runs done by a bound count (the one under way finishes), and the test prints
 * how many ran, how many hub kills and how many diverged. About 5 minutes per engine in CI.
 */
const engines = await availableEngines();
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const RUNS = Number(process.env.HUTONG_CONNECTED_MODEL_RUNS ?? (IN_CI ? '500' : '12'));
const TIME_LIMIT_MS = Number(process.env.HUTONG_CONNECTED_MODEL_MS ?? (IN_CI ? '160000' : '600000'));
const KILL_RUNS = Number(process.env.HUTONG_CONNECTED_MODEL_KILL_RUNS ?? (IN_CI ? '40' : '4'));
const KILL_TIME_LIMIT_MS = Number(process.env.HUTONG_CONNECTED_MODEL_KILL_MS ?? (IN_CI ? '95000' : '600000'));
const DEADLINE_MS = 1_000;

type Fault = 'none' | 'late' | 'down' | 'refuse' | 'duplicate' | 'crash';
interface Model {
  li: bigint;
  wang: bigint;
  /** The bank crashed (after a reserve) and answers nothing until it restarts. */
  crashed: boolean;
  payments: { id: string | undefined; expect: 'completed' | 'rejected' | 'refused_by_hub'; key: string; body: unknown; status: number; payer: 'li' | 'wang' }[];
}
interface Real {
  readonly t: TestHub;
  readonly bank: ReferenceBank;
  readonly pay: (payer: 'li' | 'wang', amountMinor: bigint, key: string) => Promise<{ status: number; body: any }>;
  readonly retry: (payer: 'li' | 'wang', key: string, body: unknown) => Promise<{ status: number; body: any }>;
  /** Brings every payment to its final state: the bank restarts, time passes the deadlines, recovery and outbox run. */
  readonly settle: () => Promise<void>;
  readonly quoteOf: (key: string) => string | undefined;
  /** Quotes a payment under `key` (confirmed later by `retry`). */
  readonly quote: (payer: 'li' | 'wang', amountMinor: bigint, key: string) => Promise<void>;
  /** Hub kills; kills that hit their point; payments left pending, decided but not delivered, and holds at the bank. */
  readonly stats: { kills: number; caught: number; pending: number; undelivered: number; held: number };
}
let seq = 0;

class Pay implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly payer: 'li' | 'wang',
    readonly amountMinor: bigint,
    readonly fault: Fault,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const s = r.bank.switches;
    Object.assign(s, { hang: false, down: false, refuse: undefined, duplicate: false, crashAfterReserve: false });
    if (this.fault === 'late') s.hang = true;
    if (this.fault === 'down') s.down = true;
    if (this.fault === 'refuse') s.refuse = { op: this.payer === 'li' ? 'accept' : 'reserve', reason: 'AG01' };
    if (this.fault === 'duplicate') s.duplicate = true;
    if (this.fault === 'crash' && this.payer === 'wang') s.crashAfterReserve = true;
    const key = `model-${++seq}-${Date.now()}`;
    const res = await r.pay(this.payer, this.amountMinor, key);
    // The late answer arrives after the hub gave up.
    s.hang = false;
    r.bank.release();
    s.down = false;
    const funds = this.payer === 'li' ? m.li : m.wang;
    let expected: Model['payments'][number]['expect'];
    // A refusal's code: the payer's bank refusing for lack of funds (AM04) says so; any other refusal is payment_rejected.
    let code = 'payment_rejected';
    if (this.payer === 'li' && funds < this.amountMinor) expected = 'refused_by_hub';
    else if (m.crashed || this.fault === 'late' || this.fault === 'down' || this.fault === 'refuse' || (this.fault === 'crash' && this.payer === 'wang')) expected = 'rejected';
    else if (funds < this.amountMinor) {
      expected = 'rejected'; // AM04 at wang's bank
      code = 'insufficient_funds';
    } else expected = 'completed';
    if (expected === 'completed') {
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      if (this.payer === 'li') {
        m.li -= this.amountMinor;
        m.wang += this.amountMinor;
      } else {
        m.wang -= this.amountMinor;
        m.li += this.amountMinor;
      }
    } else if (expected === 'rejected') {
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.details.status).toBe('RJCT');
    } else {
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('insufficient_funds');
    }
    if (this.fault === 'crash' && this.payer === 'wang' && expected !== 'refused_by_hub') m.crashed = true;
    const id = res.status === 201 ? (res.body.id as string) : (res.body.error?.details?.paymentId as string | undefined);
    m.payments.push({ id, expect: expected, key, body: res.body, status: res.status, payer: this.payer });
  }
  toString = () => `Pay(${this.payer}, ${this.amountMinor}, ${this.fault})`;
}

class Retry implements fc.AsyncCommand<Model, Real> {
  constructor(readonly back: number) {}
  check = (m: Readonly<Model>) => m.payments.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const p = m.payments[Math.max(0, m.payments.length - 1 - (this.back % m.payments.length))]!;
    const res = await r.retry(p.payer, p.key, p.body);
    // The same key answers the same decision, whatever happened since.
    expect(res.status).toBe(p.status);
    expect(res.body).toEqual(p.body);
  }
  toString = () => `Retry(${this.back})`;
}

type KillPoint = 'answer-lost' | 'before-message' | 'statement';

/** Payments sent at once; the hub is killed at `at` (see the header) and a new one recovers. */
class CrashHub implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly payments: readonly { payer: 'li' | 'wang'; amountMinor: bigint }[],
    readonly at: KillPoint,
    readonly n: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const { t, bank } = r;
    Object.assign(bank.switches, { hang: false, down: false, refuse: undefined, duplicate: false, crashAfterReserve: false });
    // The operations a call carries: its own, or its items' when it is a batch.
    const ops = (url: string, body: string | undefined): string[] => {
      const op = url.slice(url.lastIndexOf('/') + 1);
      if (op !== 'batch') return [op];
      return ((JSON.parse(body ?? '{}') as { TxInf?: { Op: string }[] }).TxInf ?? []).map((i) => i.Op);
    };
    const carries = (url: string, body: string | undefined, wanted: readonly string[]) => ops(url, body).some((o) => wanted.includes(o));
    if (this.at === 'answer-lost') t.faults.onFetch = (url, body, phase) => (phase === 'answered' && carries(url, body, ['reserve', 'accept']) ? t.faults.kill() : undefined);
    if (this.at === 'before-message') t.faults.onFetch = (url, body, phase) => (phase === 'sending' && carries(url, body, ['commit', 'abort']) ? t.faults.kill() : undefined);
    const keys = this.payments.map(() => `model-crash-${++seq}-${Date.now()}`);
    // Quoted first, so that the statement a kill lands on is one of the confirm batch, the asks or the decide batch.
    for (const [i, p] of this.payments.entries()) await r.quote(p.payer, p.amountMinor, keys[i]!);
    let statements = 0;
    if (this.at === 'statement') t.faults.onQuery = () => (++statements > this.n ? t.faults.kill() : undefined);
    // A dead hub answers nothing: what its requests end with (500s, or nothing) is not an answer the client relies on.
    await Promise.allSettled(this.payments.map((p, i) => Promise.race([r.retry(p.payer, keys[i]!, undefined), new Promise((resolve) => setTimeout(resolve, 15_000))])));
    if (t.faults.killed) r.stats.caught += 1;
    // What the dead hub left in flight (read on the database itself, not through the dead hub).
    const quotes = keys.flatMap((k) => r.quoteOf(k) ?? []);
    const [left] = await t.database.db.query<{ pending: bigint; undelivered: bigint }>(
      `select count(*) filter (where p.status = 'pending')::int8 as pending,
              count(*) filter (where p.status <> 'pending' and exists (select 1 from connector_messages m where m.payment_id = p.id and m.acked_at is null))::int8 as undelivered
         from payments p where p.quote_id = any($1::text[])`,
      [quotes],
    );
    r.stats.pending += Number(left?.pending ?? 0n);
    r.stats.undelivered += Number(left?.undelivered ?? 0n);
    r.stats.held += (await r.bank.openHolds()).length;
    await t.crash();
    r.stats.kills += 1;
    await r.settle();
    m.crashed = false;
    for (const [i, p] of this.payments.entries()) {
      const quoteId = r.quoteOf(keys[i]!);
      if (quoteId === undefined) continue;
      const [row] = await t.hub.db.query<{ id: string; status: string }>('select id, status from payments where quote_id = $1', [quoteId]);
      // Killed before the confirm batch committed: no payment, nothing reserved (the final check finds no hold).
      if (row === undefined) continue;
      expect(['completed', 'rejected'], `payment ${row.id} after recovery`).toContain(row.status);
      // The new hub answers the key by the decision, whatever the dead hub managed to answer.
      const res = await r.retry(p.payer, keys[i]!, undefined);
      if (row.status === 'completed') {
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        expect(res.body.id).toBe(row.id);
        if (p.payer === 'li') {
          m.li -= p.amountMinor;
          m.wang += p.amountMinor;
        } else {
          m.wang -= p.amountMinor;
          m.li += p.amountMinor;
        }
      } else {
        expect(res.status, JSON.stringify(res.body)).toBe(422);
        // Wang's bank refusing the debit for lack of funds answers insufficient_funds; every other refusal payment_rejected.
        const am04 = p.payer === 'wang' && res.body.error.details.reason.Rsn === 'AM04';
        expect(res.body.error.code).toBe(am04 ? 'insufficient_funds' : 'payment_rejected');
        expect(res.body.error.details.paymentId).toBe(row.id);
      }
      m.payments.push({ id: row.id, expect: row.status as 'completed' | 'rejected', key: keys[i]!, body: res.body, status: res.status, payer: p.payer });
    }
  }
  toString = () => `CrashHub([${this.payments.map((p) => `${p.payer} ${p.amountMinor}`).join(', ')}], ${this.at}${this.at === 'statement' ? ` ${this.n}` : ''})`;
}

class RestartBank implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.bank.restart();
    m.crashed = false;
  }
  toString = () => 'RestartBank';
}

describe.each(engines)('connected payments under faults, model-based, on %s', (engine) => {
  let t: TestHub;
  let bank: ReferenceBank;
  let cred: ConnectedBankCredential;
  const clock = createFakeClock(Date.now());
  const bankC = demoParticipantId('bank-c');
  const wang = demoCustomerId('wang-at-bank-c');
  const wangAccount = CONNECTED_CUSTOMERS[0]!.bankAccount;
  const hubFetch: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const res = await t.hub.app.inject({ method: (init?.method ?? 'GET') as 'GET' | 'POST', url: url.pathname + url.search, headers: (init?.headers ?? {}) as Record<string, string>, ...(typeof init?.body === 'string' ? { payload: init.body } : {}) });
    return new Response(res.body, { status: res.statusCode, headers: { 'content-type': 'application/json' } });
  };
  const bankToken = async () => {
    const res = await t.hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret } });
    return `Bearer ${(res.json() as { access_token: string }).access_token}`;
  };
  const asBank = async (method: 'POST', url: string, payload: object, headers: Record<string, string> = {}) => {
    const res = await t.hub.app.inject({ method, url, headers: { authorization: await bankToken(), ...headers }, payload });
    return { status: res.statusCode, body: res.json() as any };
  };
  const position = async () => {
    const r = await t.hub.transfers.ledger.getAccount(`fund_${bankC}_CNY`);
    if (!r.ok) throw new Error(r.error.code);
    return r.value.creditsPostedMinor - r.value.debitsPostedMinor;
  };
  const hubBalance = async (id: string) => {
    const r = await t.hub.transfers.ledger.getAccount(id);
    if (!r.ok) throw new Error(r.error.code);
    return { posted: r.value.creditsPostedMinor - r.value.debitsPostedMinor, pending: r.value.debitsPendingMinor + r.value.creditsPendingMinor };
  };

  beforeAll(async () => {
    t = await startTestHub(engine, { clock, crashable: true });
    bank = await createReferenceBank({ hubPublicJwk: await t.hub.connectors.publicJwk() });
    await bank.listen(0);
    cred = await connectReferenceBank(t.hub, bank, { hubFetch, deadlineMs: DEADLINE_MS });
    // Li's KYC level raised to the highest: about 1,300 payments of up to 400 CNY run between li and wang in one test
    // day, and at level 2 li's daily limit (5,000 EUR) would refuse some of them at random (limit_exceeded) — the model
    // is about the two-phase path, not KYC limits (tested in src/transfers/transfers.test.ts).
    await t.hub.db.query('update customers set kyc_level = 3 where id = $1', [t.demo.customers.get('li-at-wallet-a')]);
    // Risk rules off for these two participants: the model is about the two-phase path, not risk decisions.
    // (A rule is switched off with its thresholds, which must stay valid: velocity's window and count, for one.)
    for (const rule of RULE_NAMES) {
      const body = { rule, ...DEFAULT_RULES[rule], enabled: false };
      expect((await t.api('wallet-a').post('/v1/risk/rules', body)).status).toBe(200);
      expect((await asBank('POST', '/v1/risk/rules', body)).status).toBe(200);
    }
  }, 240_000);
  afterAll(async () => {
    await bank?.close();
    await t?.close();
  });

  const stats = { kills: 0, caught: 0, pending: 0, undelivered: 0, held: 0 };
  /**
   * Runs the model: `runs` runs bounded by `ms`; with `kills`, each run kills the hub once, between two random command
   * sequences (a hub restart costs seconds: its HTTP layer compiles every route's schemas), so those runs are fewer.
   */
  const runModel = async (phase: { runs: number; ms: number; kills: boolean }) => {
    const li = t.demo.customers.get('li-at-wallet-a')!;
    const liAccount = `acc_${li}_CNY`;
    const quote: Real['quote'] = async (payer, amountMinor, key) => {
      const amount = { amount: (Number(amountMinor) / 100).toFixed(2), currency: 'CNY' };
      const q =
        payer === 'li'
          ? await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: li, payee: { type: 'handle', value: 'wangfang' }, sendAmount: amount })
          : await asBank('POST', '/v1/transfers/quotes', { customerId: wang, sourceAccountId: `acc_${wang}_CNY`, payee: { type: 'handle', value: 'liwei' }, sendAmount: amount });
      // A quote that fails says why here (a payment without one would fail as a request without quoteId).
      expect(q.status, JSON.stringify(q.body)).toBe(201);
      lastQuote.set(key, q.body.id);
    };
    const pay: Real['pay'] = async (payer, amountMinor, key) => {
      await quote(payer, amountMinor, key);
      return retry(payer, key, undefined);
    };
    const lastQuote = new Map<string, string>();
    const retry: Real['retry'] = async (payer, key) => {
      const quoteId = lastQuote.get(key);
      if (payer === 'li') return t.api('wallet-a').post('/v1/transfers/payments', { quoteId }, { 'idempotency-key': key });
      return asBank('POST', '/v1/transfers/payments', { quoteId: quoteId ?? '' }, { 'idempotency-key': key });
    };
    const settle: Real['settle'] = async () => {
      Object.assign(bank.switches, { hang: false, down: false, refuse: undefined, duplicate: false, crashAfterReserve: false });
      // The bank asks the hub the state of each hold it still has (a pending one stays held).
      await bank.restart();
      // Time passes every pending payment's deadline (at most a few seconds ahead of real time: the bank checks the
      // hub's signatures by its own clock).
      const [late] = await t.hub.db.query<{ at: Date | null }>(`select max(deadline_at) as at from payments where status = 'pending'`);
      if (late?.at != null) clock.set(Math.max(clock.nowMs(), late.at.getTime() + 1));
      for (let i = 0; i < 20; i++) {
        await t.hub.transfers.transfers.recoverConnected();
        await t.hub.connectors.deliverDue(256);
        const [left] = await t.hub.db.query<{ n: bigint }>('select count(*)::int8 as n from connector_messages where acked_at is null');
        if ((left?.n ?? 0n) === 0n) break;
        await t.hub.db.query('update connector_messages set next_at = $1 where acked_at is null', [clock.now()]);
      }
      await bank.restart();
    };
    const faults = fc.constantFrom<Fault>('none', 'none', 'none', 'late', 'down', 'refuse', 'duplicate', 'crash');
    const commands = [
      fc.tuple(fc.constantFrom<'li' | 'wang'>('li', 'wang'), fc.bigInt({ min: 1n, max: 40_000n }), faults).map(([payer, amount, fault]) => new Pay(payer, amount, fault)),
      fc.nat(5).map((b) => new Retry(b)),
      fc.constant(new RestartBank()),
    ];
    const crash = fc
        .tuple(
          fc.array(fc.record({ payer: fc.constantFrom<'li' | 'wang'>('li', 'wang'), amountMinor: fc.bigInt({ min: 1n, max: 40_000n }) }), { minLength: 1, maxLength: 3 }),
          fc.constantFrom<KillPoint>('answer-lost', 'before-message', 'statement'),
          fc.nat(40),
        )
        .map(([payments, at, n]) => new CrashHub(payments, at, n));
    const runsOf = phase.kills
      ? fc.tuple(fc.commands(commands, { maxCommands: 4 }), crash, fc.commands(commands, { maxCommands: 4 })).map(([before, kill, after]) => [...before, kill, ...after])
      : fc.commands(commands, { maxCommands: 8 });
    const kills0 = stats.kills;
    const endAt = Date.now() + phase.ms;
    let divergences = 0;
    let runs = 0;
    let payments = 0;
    await fc.assert(
      fc.asyncProperty(runsOf, async (cmds) => {
        // The time bound: past it the remaining runs do nothing (and are not counted); the one under way finished.
        // Not fast-check's interruptAfterTimeLimit, which abandons the run under way mid-way (still sending requests and
        // restarting hubs while the next test runs or the database is dropped), nor skipAllAfterTimeLimit, whose
        // skipped runs count as precondition failures until fast-check gives up with an error.
        if (Date.now() >= endAt) return;
        runs += 1;
        // The hub's clock follows real time between runs: the bank checks the age of the hub's signatures by its own
        // clock, and a long bounded run would otherwise make them look stale (401).
        clock.set(Math.max(clock.nowMs(), Date.now()));
        const start = { li: (await hubBalance(liAccount)).posted, wang: (await bank.balance(wangAccount)) ?? 0n };
        const books0 = await bank.books('CNY');
        const pos0 = await position();
        const model: Model = { li: start.li, wang: start.wang, crashed: false, payments: [] };
        await fc.asyncModelRun(() => ({ model, real: { t, bank, pay, quote, retry, settle, quoteOf: (key) => lastQuote.get(key), stats } }), cmds);
        // Quiesce: the bank comes back, the outbox is delivered (time moves past every backoff), recovery runs.
        await settle();
        // Same final state everywhere.
        payments += model.payments.length;
        for (const p of model.payments) {
          if (p.id === undefined) continue;
          const [row] = await t.hub.db.query<{ status: string }>('select status from payments where id = $1', [p.id]);
          const hold = await bank.hold(p.id);
          const same = row?.status === 'completed' ? hold?.state === 'committed' : row?.status === 'rejected' ? hold === undefined || hold.state === 'released' : false;
          if (!same || row?.status !== p.expect) divergences += 1;
          expect({ id: p.id, hub: row?.status, bank: hold?.state ?? 'none', expected: p.expect }).toEqual(expect.objectContaining({ hub: p.expect }));
          expect(same).toBe(true);
        }
        expect(await bank.openHolds()).toEqual([]);
        expect((await hubBalance(liAccount)).pending).toBe(0n);
        // Money conserved across the ledgers.
        const books = await bank.books('CNY');
        expect(books.customers + books.clearing).toBe(books0.customers + books0.clearing);
        expect(books.clearing - books0.clearing + ((await position()) - pos0)).toBe(0n);
        expect((await hubBalance(liAccount)).posted).toBe(model.li);
        expect(await bank.balance(wangAccount)).toBe(model.wang);
        expect(await t.hub.ledger.checkInvariants()).toEqual([]);
      }),
      { numRuns: phase.runs },
    );
    const killed = stats.kills - kills0;
    console.log(`connected model on ${engine}${phase.kills ? ', hub killed once a run' : ''}: ${runs} runs (of ${phase.runs} asked, ${Math.round(phase.ms / 1000)} s bound), ${payments} payments, ${killed} hub kills${phase.kills ? ` (${stats.caught} at their point; left in flight: ${stats.pending} payments pending, ${stats.undelivered} decided but not delivered, ${stats.held} holds at the bank)` : ''}, ${divergences} divergences`);
    expect(runs).toBeGreaterThanOrEqual(Math.min(phase.runs, phase.kills ? 3 : 10));
    expect(divergences).toBe(0);
  };

  it('every transfer ends in the same state at the hub and the bank, nothing stays reserved, money is conserved', async () => {
    await runModel({ runs: RUNS, ms: TIME_LIMIT_MS, kills: false });
  }, TIME_LIMIT_MS + 120_000);

  it('the same when the hub is killed with work in flight and a new one recovers', async () => {
    await runModel({ runs: KILL_RUNS, ms: KILL_TIME_LIMIT_MS, kills: true });
    // Most kills must land with work in flight (a kill point reached), or the command tests nothing. A kill point can
    // lie past the work of its payments (a statement number beyond their last, no ask when the hub refuses at once):
    // about one kill in four misses, so with the handful of runs outside CI (4) one landing is asked, and half with
    // CI's (16–22 within its bound).
    expect(stats.caught).toBeGreaterThanOrEqual(stats.kills >= 10 ? Math.ceil(stats.kills / 2) : 1);
  }, KILL_TIME_LIMIT_MS + 120_000);
});

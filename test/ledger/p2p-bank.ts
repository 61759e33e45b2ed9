/**
 * The invariant tests' workload on the path payments take: customers of the two demo wallets pay each other over the
 * hub's P2P API (POST /v1/transfers/quotes, then POST /v1/transfers/payments with an Idempotency-Key), which runs the
 * confirm through the route's effect batcher, transfers.confirmMany and ledger.applyInTx, in one transaction per batch.
 * Used in-process (bank and model tests) and by the hub processes of test/ledger/worker.ts (bank and crash tests).
 */
import type { Hub } from '../../src/main.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import type { Db } from '../../src/platform/db.ts';
import { formatMoney } from '../../src/platform/money.ts';
import { DEFAULT_RULES } from '../../src/risk/service.ts';

export type WalletKey = 'wallet-a' | 'wallet-b';
export const WALLETS: readonly WalletKey[] = ['wallet-a', 'wallet-b'];
const SYSTEM = { type: 'system' } as const;

export interface BankParty {
  readonly index: number;
  readonly wallet: WalletKey;
  readonly customerId: string;
  readonly accountId: string;
  readonly handle: string;
}

export interface Credentials {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** What every process of a test needs to pay: the parties and the wallets' client credentials. */
export interface BankSpec {
  readonly parties: readonly BankParty[];
  readonly credentials: Readonly<Record<WalletKey, Credentials>>;
}

/**
 * Lifts what would make a long random workload refuse payments for reasons that are not the ledger's: the velocity
 * risk rule (a bank customer pays dozens of times a minute here) and the alias lookup limits (anti-enumeration).
 * Every other rule stays on with its default thresholds; the amounts here never reach them.
 */
export async function liftWorkloadLimits(hub: Hub): Promise<void> {
  liftAliasLimits(hub);
  await hub.db.transaction(async (tx) => {
    for (const w of WALLETS) {
      const r = await hub.transfers.risk.setRule(tx, SYSTEM, demoParticipantId(w), 'velocity', DEFAULT_RULES.velocity, false);
      if (!r.ok) throw new Error(r.error.code);
    }
  });
}

/** The alias lookup limits are each process's own (in memory): every hub process of a test lifts them. */
export function liftAliasLimits(hub: Hub): void {
  Object.assign(hub.transfers.aliases.limits, { customerPerS: 1e6, customerBurst: 1e6, participantPerS: 1e6, participantBurst: 1e6 });
}

/** `count` customers alternating between the two wallets, each with a no-overdraft CNY account funded with `fundMinor`. */
export async function openBank(hub: Hub, options: { count: number; fundMinor: bigint; tag: string }): Promise<BankParty[]> {
  await liftWorkloadLimits(hub);
  const parties: BankParty[] = [];
  // A few at a time (each is one transaction); bounded by count.
  for (let first = 0; first < options.count; first += 8) {
    const chunk = Array.from({ length: Math.min(8, options.count - first) }, (_, k) => first + k);
    parties.push(
      ...(await Promise.all(
        chunk.map(async (index): Promise<BankParty> => {
          const wallet = WALLETS[index % 2]!;
          const participant = await hub.participants.get(demoParticipantId(wallet));
          if (participant === undefined) throw new Error(`no participant ${wallet}`);
          const handle = `${options.tag}.c${index}`;
          return hub.db.transaction(async (tx) => {
            const c = await hub.customers.create(tx, SYSTEM, participant, { externalId: `${options.tag}-${index}`, name: `Bank customer ${index}`, kycLevel: 3 });
            if (!c.ok) throw new Error(c.error.code);
            const a = await hub.transfers.accounts.openCustomerAccount(tx, SYSTEM, participant.id, c.value.id, 'CNY');
            if (!a.ok) throw new Error(a.error.code);
            const d = await hub.transfers.accounts.deposit(tx, SYSTEM, participant.id, a.value.id, options.fundMinor, 'CNY', `${options.tag}_fund_${index}`);
            if (!d.ok) throw new Error(d.error.code);
            const al = await hub.transfers.aliases.register(tx, SYSTEM, participant, { customerId: c.value.id, type: 'handle', value: handle, accountId: a.value.id });
            if (!al.ok) throw new Error(al.error.code);
            return { index, wallet, customerId: c.value.id, accountId: a.value.id, handle };
          });
        }),
      )),
    );
  }
  return parties;
}

export interface Answer {
  readonly status: number;
  readonly body: any;
}

/** Calls a hub's API in-process (app.inject) as one of the wallets, with tokens it asks the hub for once. */
export function walletClient(hub: Hub, credentials: Readonly<Record<WalletKey, Credentials>>): (wallet: WalletKey, url: string, body: unknown, headers?: Record<string, string>) => Promise<Answer> {
  const tokens = new Map<WalletKey, Promise<string>>();
  const tokenOf = (wallet: WalletKey): Promise<string> => {
    let token = tokens.get(wallet);
    if (token === undefined) {
      const c = credentials[wallet];
      token = hub.app
        .inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret } })
        .then((res) => {
          if (res.statusCode !== 200) throw new Error(`token for ${wallet}: ${res.statusCode} ${res.body}`);
          return (res.json() as { access_token: string }).access_token;
        });
      tokens.set(wallet, token);
    }
    return token;
  };
  return async (wallet, url, body, headers = {}) => {
    const res = await hub.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${await tokenOf(wallet)}`, ...headers }, payload: body as object });
    let parsed: unknown = res.body;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      /* not JSON */
    }
    return { status: res.statusCode, body: parsed };
  };
}

export type Post = ReturnType<typeof walletClient>;

export interface Payment {
  /** 'ok' or the error code the hub answered. */
  readonly code: string;
  readonly paymentId?: string;
  readonly quoteId?: string;
  /** The confirm's answer was a replay of an earlier one (idempotent-replayed). */
  readonly status?: number;
}

const codeOf = (a: Answer): string => (a.status === 201 ? 'ok' : typeof a.body?.error?.code === 'string' ? (a.body.error.code as string) : `http_${a.status}`);

/** Quotes a payment from `from` to `to`'s handle. */
export async function quote(post: Post, from: BankParty, to: BankParty, amountMinor: bigint): Promise<Payment> {
  const q = await post(from.wallet, '/v1/transfers/quotes', { customerId: from.customerId, sourceAccountId: from.accountId, payee: { type: 'handle', value: to.handle }, sendAmount: formatMoney(amountMinor, 'CNY') });
  return q.status === 201 ? { code: 'ok', quoteId: q.body.id as string } : { code: `quote:${codeOf(q)}` };
}

/** Confirms a quote under an Idempotency-Key (what a wallet retries with after a timeout). */
export async function confirm(post: Post, wallet: WalletKey, quoteId: string, key: string): Promise<Payment> {
  const c = await post(wallet, '/v1/transfers/payments', { quoteId }, { 'idempotency-key': key });
  return c.status === 201 ? { code: 'ok', paymentId: c.body.id as string, quoteId, status: c.status } : { code: codeOf(c), quoteId, status: c.status };
}

/** A whole payment: quote, then confirm. */
export async function pay(post: Post, from: BankParty, to: BankParty, amountMinor: bigint, key: string): Promise<Payment> {
  const q = await quote(post, from, to, amountMinor);
  if (q.quoteId === undefined) return q;
  return confirm(post, from.wallet, q.quoteId, key);
}

/** Two distinct random parties. */
export function randomPair(parties: readonly BankParty[]): [BankParty, BankParty] {
  const from = Math.floor(Math.random() * parties.length);
  const to = (from + 1 + Math.floor(Math.random() * (parties.length - 1))) % parties.length;
  return [parties[from]!, parties[to]!];
}

export interface Snapshot {
  /** Σ (credits_posted − debits_posted) over the bank's accounts. */
  readonly total: bigint;
  readonly accounts: number;
  /** Accounts below their floor (available balance under −credit limit). */
  readonly belowFloor: number;
}

/** ONE statement, hence one snapshot: reading accounts one by one could see a payment's debit but not its credit. */
export async function snapshot(db: Db, accountIds: readonly string[]): Promise<Snapshot> {
  const [row] = await db.query<{ total: string | null; n: bigint; below: bigint }>(
    `select sum(credits_posted - debits_posted)::text as total, count(*) as n,
            count(*) filter (where debits_must_not_exceed_credits and debits_pending + debits_posted > credits_posted + coalesce(credit_limit_minor, 0)) as below
       from ledger_accounts where id = any($1::text[])`,
    [[...accountIds]],
  );
  return { total: BigInt(row?.total ?? '0'), accounts: Number(row?.n ?? 0n), belowFloor: Number(row?.below ?? 0n) };
}

/** Readers looping until stop(): each read is one snapshot of every bank account; counts reads that break an invariant. */
export function startReaders(db: Db, accountIds: readonly string[], expectedTotal: bigint, readers: number): { stop: () => Promise<{ reads: number; wrongTotals: number; belowFloor: number }> } {
  const result = { reads: 0, wrongTotals: 0, belowFloor: 0 };
  let running = true;
  const loops = Array.from({ length: readers }, async () => {
    // Bounded by stop() and by a count.
    while (running && result.reads < 1_000_000) {
      const s = await snapshot(db, accountIds);
      result.reads++;
      if (s.total !== expectedTotal || s.accounts !== accountIds.length) result.wrongTotals++;
      result.belowFloor += s.belowFloor;
      await new Promise((resolve) => setTimeout(resolve, 5));
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

/**
 * Money moved more than once for one quote (a retry that paid twice) shows as more P2P ledger legs than payments:
 * every completed payment has exactly one `p2p` leg (same currency, no fee here), and each quote one payment at most.
 */
export async function doubleMoves(db: Db, accountIds: readonly string[]): Promise<{ legs: number; payments: number; paymentsWithOtherLegCount: number }> {
  const [row] = await db.query<{ legs: bigint; payments: bigint; odd: bigint }>(
    `with legs as (
       select metadata->>'paymentId' as payment_id, count(*) as n from ledger_transfers
        where purpose = 'p2p' and debit_account_id = any($1::text[]) group by 1)
     select (select coalesce(sum(n), 0) from legs)::int8 as legs,
            (select count(*) from payments p where exists (select 1 from legs l where l.payment_id = p.id))::int8 as payments,
            (select count(*) from legs where n <> 1)::int8 as odd`,
    [[...accountIds]],
  );
  return { legs: Number(row?.legs ?? 0n), payments: Number(row?.payments ?? 0n), paymentsWithOtherLegCount: Number(row?.odd ?? 0n) };
}

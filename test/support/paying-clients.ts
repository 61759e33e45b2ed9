import { fetch, type Agent } from 'undici';
import { expect } from 'vitest';
import type { Hub } from '../../src/main.ts';
import { formatMoney } from '../../src/platform/money.ts';
import { doubleMoves, snapshot, type BankParty, type Snapshot, type WalletKey } from '../ledger/p2p-bank.ts';

/**
 * The wallets of the fault tests (balancer, failover, chaos): clients paying over real HTTP as a wallet does — a
 * quote, then the confirm under an Idempotency-Key, retried with the same key after a connection error, a 5xx or
 * "in progress" until a definitive answer or the payment's deadline — and the bank checks that follow every such run.
 */
export interface Answer {
  readonly status: number;
  readonly body: any;
}

export interface Acknowledged {
  readonly key: string;
  readonly wallet: WalletKey;
  readonly quoteId: string;
  readonly paymentId: string;
  /** When the confirm that succeeded was sent (performance.now()): a payment committed just before a fault can be answered after it. */
  readonly sentAt: number;
}

export interface PayingClientsOptions {
  /** Where the wallets' requests go: a hub or a balancer in front of hubs. */
  readonly base: () => string;
  readonly agent: Agent;
  readonly credentials: ReadonlyMap<WalletKey, { readonly clientId: string; readonly clientSecret: string }>;
  readonly keyPrefix: string;
  /** A client's deadline for one payment's definitive answer, retries included. */
  readonly paymentDeadlineMs: number;
  /** The pause between two tries of one key. */
  readonly retryPauseMs: number;
  /** A bound on every request, so that a hub that froze does not hold a client forever. */
  readonly requestTimeoutMs?: number;
}

export interface PayingClients {
  readonly acknowledged: Acknowledged[];
  /** Keys that got no definitive answer within their deadline. */
  readonly unresolved: string[];
  /** Definitive refusals by error code (or status). */
  readonly refused: Record<string, number>;
  readonly stats: { retries: number; networkErrors: number };
  /** Asks each wallet's access token (again: the runs outlast a token's lifetime, and a 401 asks for a new one). */
  signIn(): Promise<void>;
  post(wallet: WalletKey, path: string, body: unknown, headers?: Record<string, string>): Promise<Answer>;
  /** One payment, quote then confirm until definitive: true when acknowledged. */
  payOnce(client: number, from: BankParty, to: BankParty): Promise<boolean>;
  refusedCount(): number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function payingClients(options: PayingClientsOptions): PayingClients {
  const tokens = new Map<WalletKey, string>();
  const acknowledged: Acknowledged[] = [];
  const unresolved: string[] = [];
  const refused: Record<string, number> = {};
  const stats = { retries: 0, networkErrors: 0 };
  let n = 0;
  const timeout = () => (options.requestTimeoutMs === undefined ? undefined : AbortSignal.timeout(options.requestTimeoutMs));

  const refreshToken = async (wallet: WalletKey): Promise<void> => {
    const c = options.credentials.get(wallet);
    if (c === undefined) throw new Error(`no credentials for ${wallet}`);
    const res = await fetch(`${options.base()}/oauth/token`, { method: 'POST', dispatcher: options.agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret }), signal: timeout() ?? null });
    if (res.status === 200) tokens.set(wallet, ((await res.json()) as { access_token: string }).access_token);
  };
  const postOnce = async (wallet: WalletKey, path: string, body: unknown, headers: Record<string, string>): Promise<Answer> => {
    const res = await fetch(`${options.base()}${path}`, { method: 'POST', dispatcher: options.agent, headers: { authorization: `Bearer ${tokens.get(wallet) ?? ''}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: timeout() ?? null });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* a balancer's own error page */
    }
    return { status: res.status, body: parsed };
  };
  const post = async (wallet: WalletKey, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
    const first = await postOnce(wallet, path, body, headers);
    if (first.status !== 401) return first;
    await refreshToken(wallet).catch(() => undefined);
    return postOnce(wallet, path, body, headers);
  };
  const retryable = (r: Answer) => r.status >= 500 || r.body?.error?.code === 'idempotency_in_progress';

  return {
    acknowledged,
    unresolved,
    refused,
    stats,
    post,
    async signIn() {
      for (const wallet of options.credentials.keys()) await refreshToken(wallet);
    },
    async payOnce(client, from, to) {
      const q = await post(from.wallet, '/v1/transfers/quotes', { customerId: from.customerId, sourceAccountId: from.accountId, payee: { type: 'handle', value: to.handle }, sendAmount: formatMoney(BigInt(1 + Math.floor(Math.random() * 500)), 'CNY') }).catch(() => undefined);
      if (q === undefined || q.status !== 201) {
        if (q === undefined) stats.networkErrors++;
        return false;
      }
      const key = `${options.keyPrefix}_${client}_${n++}`;
      const deadline = Date.now() + options.paymentDeadlineMs;
      for (;;) {
        const sentAt = performance.now();
        const r = await post(from.wallet, '/v1/transfers/payments', { quoteId: q.body.id }, { 'idempotency-key': key }).catch(() => undefined);
        if (r !== undefined && r.status === 201) {
          acknowledged.push({ key, wallet: from.wallet, quoteId: q.body.id as string, paymentId: r.body.id as string, sentAt });
          return true;
        }
        if (r !== undefined && !retryable(r)) {
          const code = String(r.body?.error?.code ?? r.status);
          refused[code] = (refused[code] ?? 0) + 1;
          return false;
        }
        stats.retries++;
        if (r === undefined) stats.networkErrors++;
        if (Date.now() > deadline) {
          unresolved.push(key);
          return false;
        }
        await pause(options.retryPauseMs);
      }
    },
    refusedCount: () => Object.values(refused).reduce((x, y) => x + y, 0),
  };
}

/**
 * The bank checks after a faulty run: every key got a definitive answer; every acknowledged payment is in the books
 * once (one row per id, one ledger leg per payment, nothing else moved those accounts); no idempotency claim is left
 * running; money conserved and nothing below its floor; the ledger's own checks hold; and a retry of acknowledged keys
 * answers the same payment.
 */
export async function expectBooksHold(hub: Hub, clients: PayingClients, accountIds: readonly string[], before: Snapshot, retried: readonly Acknowledged[]): Promise<void> {
  expect(clients.unresolved).toEqual([]);
  const ids = clients.acknowledged.map((a) => a.paymentId);
  expect(new Set(ids).size).toBe(ids.length);
  const [found] = await hub.db.query<{ n: bigint; distinct_ids: bigint }>('select count(*) as n, count(distinct id) as distinct_ids from payments where id = any($1::text[])', [ids]);
  expect(found?.n).toBe(BigInt(ids.length));
  expect(found?.distinct_ids).toBe(BigInt(ids.length));
  const moves = await doubleMoves(hub.db, accountIds);
  expect(moves.paymentsWithOtherLegCount).toBe(0);
  expect(moves.legs).toBe(moves.payments);
  const [claims] = await hub.db.query<{ n: bigint }>(`select count(*) as n from idempotency_keys where state = 'running'`);
  expect(claims?.n).toBe(0n);
  const after = await snapshot(hub.db, accountIds);
  expect(after.total).toBe(before.total);
  expect(after.belowFloor).toBe(0);
  expect(await hub.ledger.checkInvariants()).toEqual([]);
  for (const a of retried) {
    const again = await clients.post(a.wallet, '/v1/transfers/payments', { quoteId: a.quoteId }, { 'idempotency-key': a.key });
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(a.paymentId);
  }
}

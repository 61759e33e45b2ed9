import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Server } from 'node:http';
import { BATCH_OPERATION, CONNECTOR_OPERATIONS, createConnector, nodeListener, parseBatch, serveConnector, type AnswerStore, type Connector, type ConnectorReply, type Decision, type HubClient } from '../../participant-sdk/index.ts';
import type { ConnectorRequest, StatusReason } from '../../participant-sdk/index.ts';
import { openPglite, openPostgres, type Db } from '../../platform/db.ts';
import { lockDataDir } from './dir-lock.ts';
import { createBankOpenBanking, OPEN_BANKING_SCHEMA, withOpenBanking, type BankOpenBanking } from './open-banking.ts';

/**
 * The reference bank: a connected participant's core system in miniature, built on the participant SDK
 * (src/participant-sdk). It keeps its own books in its own database (a PGlite data directory or memory, or a PostgreSQL
 * database of its own — never the hub's: its tables have plain names such as `accounts`): its
 * customers' accounts, the holds of transfers in flight, and a clearing account per currency that mirrors its
 * position at the hub (a payment out debits the customer and credits clearing: what the bank owes through the hub).
 * So, per currency, Σ customers + clearing never changes, and clearing = −(the bank's position movements at the hub).
 *
 * Switches make it misbehave on purpose, for tests and demos: answer slowly or never (`hang`), be down (503), refuse
 * with a given ISO reason, answer twice (report its answer again to the hub), or crash right after a reserve (it answers
 * the reserve, then nothing until `restart()`, which asks the hub for the final state of every hold it still has).
 */
export interface BankSwitches {
  /** Delay before each answer. */
  slowMs: number;
  /** Never answer (until `release()`): the hub's deadline passes. */
  hang: boolean;
  /** Answer 503 to everything. */
  down: boolean;
  /** Refuse reserve or accept with this reason. */
  refuse: { readonly op: 'reserve' | 'accept'; readonly reason: string } | undefined;
  /** After each reserve/accept answer, report it again to the hub (a duplicate, late reply). */
  duplicate: boolean;
  /** Crash right after the next reserve is held: no answers until restart(). */
  crashAfterReserve: boolean;
  /** Answer 503 to these operations only (e.g. ['commit', 'batch']: the hub's deliveries fail, its asks do not). */
  downFor: readonly string[];
  /** Answer 404 to batches, as a participant that serves only single messages. */
  noBatch: boolean;
}

export interface ReferenceBank {
  readonly db: Db;
  readonly connector: Connector;
  readonly publicJwk: { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string };
  readonly switches: BankSwitches;
  /** Requests that reached the connector, by operation (reserve, accept, commit, abort, batch), and batches by the operations they carry (`batch:reserve`, …). */
  readonly served: Map<string, number>;
  /** Its open-banking side: OAuth 2.0 with PKCE for the hub, balances, consents (./open-banking.ts). */
  readonly openBanking: BankOpenBanking;
  /** Base URL of the connector (after listen). */
  url(): string;
  listen(port?: number, host?: string): Promise<string>;
  openAccount(input: { id: string; name: string; currency: string; balanceMinor: bigint; maxCreditMinor?: bigint | undefined; passcode?: string | undefined }): Promise<void>;
  closeAccount(id: string): Promise<void>;
  balance(id: string): Promise<bigint | undefined>;
  /** Σ customers' balances and the clearing balance, per currency. */
  books(currency: string): Promise<{ customers: bigint; clearing: bigint; held: bigint }>;
  /** Holds by transfer id: state and side. */
  hold(txId: string): Promise<{ state: string; side: string; amountMinor: bigint } | undefined>;
  /** Transfers still held or accepted (not yet committed or released). */
  openHolds(): Promise<string[]>;
  /** Lets hung requests answer (they then answer as the books say). */
  release(): void;
  /** Comes back after a crash: asks the hub for the final state of every open hold and applies it. */
  restart(): Promise<{ committed: number; released: number; pending: number }>;
  /** Lets the bank ask the hub (restart, duplicate replies). */
  setHub(hub: HubClient): void;
  close(): Promise<void>;
}

const SCHEMA = `
create table if not exists accounts (
  id text primary key, name text not null, currency text not null, balance_minor bigint not null, closed boolean not null default false,
  max_credit_minor bigint
);
alter table accounts add column if not exists held_minor bigint not null default 0;
create table if not exists clearing (currency text primary key, balance_minor bigint not null);
create table if not exists holds (
  tx_id text primary key, side text not null check (side in ('debit', 'credit')), account_id text not null, currency text not null,
  amount_minor bigint not null, state text not null check (state in ('held', 'accepted', 'committed', 'released'))
);
create index if not exists holds_account_held on holds (account_id) where state = 'held';
create table if not exists answers (key text primary key, body text not null);
`;
/** Books kept before accounts had a held amount: it is what their open debit holds take. */
const BACKFILL_HELD = `update accounts a set held_minor = coalesce((select sum(h.amount_minor) from holds h where h.account_id = a.id and h.side = 'debit' and h.state = 'held'), 0)`;

/** Minor units of an ISO 4217 currency (what the hub's decimal strings carry). */
const exponents = new Map<string, number>();
const exponent = (currency: string) => {
  // Remembered per currency (at most the ISO 4217 list): building an Intl.NumberFormat per amount was a visible part of
  // the bank's CPU per payment.
  let e = exponents.get(currency);
  if (e === undefined) {
    e = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    exponents.set(currency, e);
  }
  return e;
};
export function toMinor(amount: string, currency: string): bigint {
  const e = exponent(currency);
  const [whole = '0', frac = ''] = amount.split('.');
  return BigInt(whole) * 10n ** BigInt(e) + BigInt((frac + '0'.repeat(e)).slice(0, e) || '0');
}

export async function createReferenceBank(options: {
  dataDir?: string | undefined;
  /** Its books on PostgreSQL instead of PGlite: a database of its own (the schema is created at start). */
  databaseUrl?: string | undefined;
  hubPublicJwk: { kty: string; crv: string; x: string };
  kid?: string;
  name?: string;
  /** The clock its signatures are made and checked by (a test hub's fake clock: both sides agree on signing times). */
  nowMs?: () => number;
}): Promise<ReferenceBank> {
  // Two openers of one PostgreSQL database share one set of books; two of one PGlite directory each keep their own.
  const lock = options.databaseUrl !== undefined || options.dataDir === undefined ? undefined : lockDataDir(options.dataDir);
  const db =
    options.databaseUrl !== undefined
      ? openPostgres({ url: options.databaseUrl, maxConnections: 8 })
      : await openPglite(options.dataDir).catch((error: unknown) => {
          lock?.release();
          throw error;
        });
  // Only once, when the column is added: run again beside another opener of the same PostgreSQL books, it could miss a
  // hold being taken meanwhile.
  const [column] = await db.query<{ present: boolean }>(`select exists (select 1 from information_schema.columns where table_name = 'accounts' and column_name = 'held_minor') as present`);
  for (const statement of `${SCHEMA};${OPEN_BANKING_SCHEMA}`.split(';').map((s) => s.trim()).filter((s) => s !== '')) await db.query(statement);
  if (column?.present !== true) await db.query(BACKFILL_HELD);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519') as { privateKey: KeyObject; publicKey: KeyObject };
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = options.kid ?? 'reference-bank-1';
  const switches: BankSwitches = { slowMs: 0, hang: false, down: false, refuse: undefined, duplicate: false, crashAfterReserve: false, downFor: [], noBatch: false };
  const served = new Map<string, number>();
  let crashed = false;
  let waiters: (() => void)[] = [];
  let hub: HubClient | undefined;
  let server: { server: Server; url: string } | undefined;

  const store: AnswerStore = {
    get: async (key) => (await db.query<{ body: string }>('select body from answers where key = $1', [key]))[0]?.body,
    put: async (key, body) => {
      await db.query('insert into answers (key, body) values ($1, $2) on conflict (key) do nothing', [key, body]);
    },
    getMany: async (keys) => new Map((await db.query<{ key: string; body: string }>('select key, body from answers where key = any($1::text[])', [keys])).map((r) => [r.key, r.body])),
    putMany: async (entries) => {
      await db.query('insert into answers (key, body) select * from unnest($1::text[], $2::text[]) on conflict (key) do nothing', [entries.map((e) => e[0]), entries.map((e) => e[1])]);
    },
  };

  const refuse = (Rsn: string, AddtlInf?: string): Decision => ({ ok: false, reason: AddtlInf === undefined ? { Rsn } : { Rsn, AddtlInf } });
  const accountOf = async (id: string | undefined) =>
    id === undefined ? undefined : (await db.query<{ id: string; currency: string; balance_minor: bigint; closed: boolean; max_credit_minor: bigint | null }>('select * from accounts where id = $1', [id]))[0];

  const openBanking = createBankOpenBanking({ db, signingKey: privateKey, kid, hubPublicJwk: options.hubPublicJwk, bankName: options.name ?? 'Reference bank' });

  const handlers = {
    async reserve(r: ConnectorRequest): Promise<Decision> {
      if (switches.refuse?.op === 'reserve') return refuse(switches.refuse.reason);
      // A debit a wallet initiates under the customer's consent: the bank authorizes it only while the consent is active
      // and covers this account and payments (MD01: no mandate).
      const mandate = r.MndtRltdInf?.MndtId;
      if (mandate !== undefined && !(await openBanking.mandateAllows(mandate, r.DbtrAcct?.Id.Othr.Id ?? ''))) return refuse('MD01', 'the customer’s consent is revoked or does not cover this debit');
      const amount = toMinor(r.IntrBkSttlmAmt.amount, r.IntrBkSttlmAmt.currency);
      // One statement: the amount held on the account row only when it fits (the row's lock makes the check and the
      // hold one step, also with concurrent reserves on several connections), then the hold itself. The SDK runs one
      // request per transfer at a time, so a transfer is never held twice. When nothing was held, the account as it
      // stood says why.
      const [acc] = await db.query<{ currency: string; closed: boolean; available: bigint; held: boolean }>(
        `with up as (update accounts set held_minor = held_minor + $3
                      where id = $1 and currency = $4 and not closed and balance_minor - held_minor >= $3
                        and not exists (select 1 from holds where tx_id = $2)
                     returning id, currency),
              ins as (insert into holds (tx_id, side, account_id, currency, amount_minor, state)
                      select $2, 'debit', up.id, up.currency, $3, 'held' from up returning tx_id)
         select a.currency, a.closed, (a.balance_minor - a.held_minor)::int8 as available, exists (select 1 from ins) as held from accounts a where a.id = $1`,
        [r.DbtrAcct?.Id.Othr.Id ?? '', r.TxId, amount, r.IntrBkSttlmAmt.currency],
      );
      if (acc === undefined || acc.currency !== r.IntrBkSttlmAmt.currency) return refuse('AC01', 'no such account in this currency');
      if (acc.held) return { ok: true } as const;
      if (acc.closed) return refuse('AC04');
      if (acc.available < amount) return refuse('AM04');
      // Already held for this transfer (its answer was lost before it was stored): held it stays.
      return (await bank.hold(r.TxId))?.state === 'held' ? ({ ok: true } as const) : refuse('AM04');
    },
    async accept(r: ConnectorRequest): Promise<Decision> {
      if (switches.refuse?.op === 'accept') return refuse(switches.refuse.reason);
      const amount = toMinor(r.IntrBkSttlmAmt.amount, r.IntrBkSttlmAmt.currency);
      const acc = await accountOf(r.CdtrAcct?.Id.Othr.Id);
      if (acc === undefined || acc.currency !== r.IntrBkSttlmAmt.currency) return refuse('AC01', 'no such account in this currency');
      if (acc.closed) return refuse('AC04');
      if (acc.max_credit_minor !== null && amount > acc.max_credit_minor) return refuse('AM02');
      await db.query(`insert into holds (tx_id, side, account_id, currency, amount_minor, state) values ($1, 'credit', $2, $3, $4, 'accepted') on conflict do nothing`, [r.TxId, acc.id, acc.currency, amount]);
      return { ok: true } as const;
    },
    async commit(r: ConnectorRequest): Promise<void> {
      await settle(r.TxId, true);
    },
    async abort(r: ConnectorRequest): Promise<void> {
      await settle(r.TxId, false);
    },
    async settleMany(items: readonly { readonly request: ConnectorRequest; readonly commit: boolean }[]): Promise<void> {
      await settleAll(items.map((i) => i.request.TxId), items.map((i) => i.commit));
    },
  };

  /**
   * Applies the hub's decisions to holds in one statement, each once (a hold's state moves only from held/accepted);
   * on commit the customers' accounts and the clearing account move by the sum of the committed holds on each (a
   * debit: customer down, clearing up; a credit the other way; several holds of one account may be in a batch), and a
   * debit hold, committed or released, no longer counts in the account's held amount.
   * Returns how many holds moved.
   */
  const settleAll = async (txIds: readonly string[], commits: readonly boolean[]): Promise<number> => {
    const [done] = await db.query<{ n: number }>(
      `with u as (select tx_id, c::boolean as commit from unnest($1::text[], $2::text[]) as u(tx_id, c)),
            h as (update holds set state = case when u.commit then 'committed' else 'released' end
                    from u where holds.tx_id = u.tx_id and holds.state in ('held', 'accepted')
                  returning u.commit, holds.side, holds.account_id, holds.currency, holds.amount_minor),
            moves as (select account_id, currency,
                             sum(case when not commit then 0 when side = 'debit' then -amount_minor else amount_minor end)::int8 as delta,
                             sum(case when side = 'debit' then amount_minor else 0 end)::int8 as unheld
                        from h group by account_id, currency),
            a as (update accounts set balance_minor = balance_minor + moves.delta, held_minor = held_minor - moves.unheld from moves where accounts.id = moves.account_id returning 1),
            c as (insert into clearing (currency, balance_minor)
                  select currency, -sum(delta)::int8 from moves where delta <> 0 group by currency
                  on conflict (currency) do update set balance_minor = clearing.balance_minor + excluded.balance_minor returning 1)
       select (select count(*) from h)::int as n, (select count(*) from a)::int as a, (select count(*) from c)::int as c`,
      // As text: the PostgreSQL driver sends a JavaScript boolean array as one boolean.
      [txIds, commits.map(String)],
    );
    return done?.n ?? 0;
  };
  /** Applies the hub's decision to one hold. */
  const settle = async (txId: string, commit: boolean): Promise<'committed' | 'released' | 'none'> => ((await settleAll([txId], [commit])) === 0 ? 'none' : commit ? 'committed' : 'released');

  const sdk = createConnector({ hubPublicJwk: options.hubPublicJwk, signingKey: privateKey, kid, handlers, store, ...(options.nowMs !== undefined ? { nowMs: options.nowMs } : {}) });
  const unavailable: ConnectorReply = { status: 503, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'the bank is down' }) };

  // The switches sit in front of the SDK, as a bank's network or process failures would.
  const connector: Connector = {
    async handle(op, body, signature) {
      if (switches.down || crashed || switches.downFor.includes(op)) return unavailable;
      if (switches.noBatch && op === 'batch') return { status: 404, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'unknown operation' }) };
      // Counted for known operations only (the path is the caller's: anything else would grow the map).
      if (op === BATCH_OPERATION || (CONNECTOR_OPERATIONS as readonly string[]).includes(op)) served.set(op, (served.get(op) ?? 0) + 1);
      if (op === BATCH_OPERATION) {
        for (const carried of new Set((parseBatch(body)?.TxInf ?? []).map((i) => i.Op))) served.set(`batch:${carried}`, (served.get(`batch:${carried}`) ?? 0) + 1);
      }
      if (switches.hang) await new Promise<void>((resolve) => waiters.push(resolve));
      if (switches.slowMs > 0) await new Promise((resolve) => setTimeout(resolve, switches.slowMs));
      if (crashed) return unavailable;
      const reply = await sdk.handle(op, body, signature);
      if (reply.status !== 200) return reply;
      // What the reply answers to reserves and accepts, alone or in a batch (the switches below act on those).
      const asked = (): { TxId: string; TxSts: 'ACSP' | 'RJCT'; StsRsnInf?: StatusReason; op: string }[] => {
        if (op === 'reserve' || op === 'accept') return [{ ...(JSON.parse(reply.body) as { TxId: string; TxSts: 'ACSP' | 'RJCT'; StsRsnInf?: StatusReason }), op }];
        if (op !== 'batch') return [];
        const request = parseBatch(body);
        const answers = (JSON.parse(reply.body) as { TxInfAndSts: { TxId: string; TxSts: 'ACSP' | 'RJCT'; StsRsnInf?: StatusReason }[] }).TxInfAndSts;
        return (request?.TxInf ?? []).flatMap((r, i) => {
          const a = answers[i];
          return a !== undefined && (r.Op === 'reserve' || r.Op === 'accept') ? [{ ...a, op: r.Op }] : [];
        });
      };
      if (switches.crashAfterReserve && asked().some((a) => a.op === 'reserve')) {
        switches.crashAfterReserve = false;
        crashed = true; // the holds are in the books; the answer is lost with the process
        return unavailable;
      }
      if (switches.duplicate && hub !== undefined) {
        const report = (txId: string, st: { TxSts: 'ACSP' | 'RJCT'; StsRsnInf?: StatusReason }) => (hub === undefined ? Promise.resolve(undefined) : hub.reportStatus(txId, st));
        for (const answer of asked()) {
          setImmediate(() => {
            report(answer.TxId, { TxSts: answer.TxSts, ...(answer.StsRsnInf !== undefined ? { StsRsnInf: answer.StsRsnInf } : {}) }).catch(() => undefined);
          });
        }
      }
      return reply;
    },
    listener: () => nodeListener((op, body, signature) => connector.handle(op, body, signature)),
  };

  const bank: ReferenceBank = {
    db,
    connector,
    publicJwk: { kty: 'OKP', crv: 'Ed25519', x: String(jwk.x), kid },
    switches,
    served,
    openBanking,
    url: () => {
      if (server === undefined) throw new Error('the reference bank is not listening');
      return server.url;
    },
    async listen(port = 0, host = '127.0.0.1') {
      server = await serveConnector({ ...connector, listener: () => withOpenBanking(openBanking, connector.listener()) }, { port, host });
      return server.url;
    },
    async openAccount(input) {
      await db.query('insert into accounts (id, name, currency, balance_minor, max_credit_minor, passcode) values ($1, $2, $3, $4, $5, $6) on conflict (id) do update set passcode = coalesce(accounts.passcode, excluded.passcode)', [
        input.id,
        input.name,
        input.currency,
        input.balanceMinor,
        input.maxCreditMinor ?? null,
        input.passcode ?? null,
      ]);
    },
    async closeAccount(id) {
      await db.query('update accounts set closed = true where id = $1', [id]);
    },
    async balance(id) {
      return (await accountOf(id))?.balance_minor;
    },
    async books(currency) {
      const [c] = await db.query<{ s: bigint | null }>('select sum(balance_minor)::int8 as s from accounts where currency = $1', [currency]);
      const [k] = await db.query<{ balance_minor: bigint }>('select balance_minor from clearing where currency = $1', [currency]);
      const [h] = await db.query<{ s: bigint | null }>(`select sum(amount_minor)::int8 as s from holds where currency = $1 and state = 'held'`, [currency]);
      return { customers: c?.s ?? 0n, clearing: k?.balance_minor ?? 0n, held: h?.s ?? 0n };
    },
    async hold(txId) {
      const [h] = await db.query<{ state: string; side: string; amount_minor: bigint }>('select state, side, amount_minor from holds where tx_id = $1', [txId]);
      return h === undefined ? undefined : { state: h.state, side: h.side, amountMinor: h.amount_minor };
    },
    async openHolds() {
      return (await db.query<{ tx_id: string }>(`select tx_id from holds where state in ('held', 'accepted') order by tx_id`)).map((r) => r.tx_id);
    },
    release() {
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve();
    },
    async restart() {
      crashed = false;
      let committed = 0;
      let released = 0;
      let pending = 0;
      for (const txId of await bank.openHolds()) {
        const status = hub === undefined ? undefined : await hub.transferStatus(txId);
        if (status?.TxSts === 'ACSC') committed += (await settle(txId, true)) === 'committed' ? 1 : 0;
        else if (status?.TxSts === 'RJCT' || (status === undefined && hub !== undefined)) released += (await settle(txId, false)) === 'released' ? 1 : 0;
        else pending += 1;
      }
      return { committed, released, pending };
    },
    setHub(client) {
      hub = client;
    },
    async close() {
      bank.release();
      if (server !== undefined) {
        const s = server.server;
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
      await db.close();
      lock?.release();
    },
  };
  return bank;
}

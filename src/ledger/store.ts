import type { Queryable, Row } from '../platform/db.ts';
import type { AccountState, BatchState, BatchWrites, Existing, HistoryRow, PendingRow } from './compute.ts';
import type { Account, AccountKind, HistoryEntry, LedgerErrorCode, PendingState, Transfer, TransferKind } from './types.ts';

/**
 * SQL of the ledger. Every multi-row statement takes one array per column and unnests it: one round trip and one
 * prepared statement whatever the batch size. Text columns go as text[]; int8 and bool columns as one array literal
 * string each (see int8Array), typed by the statement, which both engines accept.
 */

/** Runs independent statements: pipelined on a PostgreSQL connection, one after the other on PGlite. */
export async function runAll(pipelined: boolean, statements: readonly (() => Promise<unknown>)[]): Promise<void> {
  if (pipelined) {
    await Promise.all(statements.map((s) => s()));
    return;
  }
  for (const s of statements) await s();
}

const ACCOUNT_COLUMNS = `id, owner_participant_id, customer_id, currency, kind, debits_must_not_exceed_credits, credits_must_not_exceed_debits,
  credit_limit_minor, closed, debits_pending, debits_posted, credits_pending, credits_posted, created_at, updated_at`;

export { ACCOUNT_COLUMNS };

export function toAccount(r: Row): Account {
  return {
    id: r.id as string,
    ownerParticipantId: r.owner_participant_id as string,
    customerId: (r.customer_id as string | null) ?? null,
    currency: r.currency as string,
    kind: r.kind as AccountKind,
    debitsMustNotExceedCredits: r.debits_must_not_exceed_credits as boolean,
    creditsMustNotExceedDebits: r.credits_must_not_exceed_debits as boolean,
    creditLimitMinor: (r.credit_limit_minor as bigint | null) ?? null,
    closed: r.closed as boolean,
    debitsPendingMinor: r.debits_pending as bigint,
    debitsPostedMinor: r.debits_posted as bigint,
    creditsPendingMinor: r.credits_pending as bigint,
    creditsPostedMinor: r.credits_posted as bigint,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  };
}

export const TRANSFER_COLUMNS = `id, kind, debit_account_id, credit_account_id, amount_minor, currency, purpose, metadata, linked, pending_id, timeout_ms,
  expires_at, fingerprint, created_at`;

/** Each side's statement entry, stored on the transfer row (see the migration). */
export const STATEMENT_COLUMNS = `debit_seq, debit_debits_pending, debit_debits_posted, debit_credits_pending, debit_credits_posted,
  credit_seq, credit_debits_pending, credit_debits_posted, credit_credits_pending, credit_credits_posted`;

export function toTransfer(r: Row): Transfer {
  return {
    id: r.id as string,
    kind: r.kind as TransferKind,
    debitAccountId: r.debit_account_id as string,
    creditAccountId: r.credit_account_id as string,
    amountMinor: r.amount_minor as bigint,
    currency: r.currency as string,
    purpose: r.purpose as string,
    metadata: r.metadata as Record<string, unknown>,
    linked: r.linked as boolean,
    pendingId: (r.pending_id as string | null) ?? null,
    timeoutMs: r.timeout_ms === null || r.timeout_ms === undefined ? null : Number(r.timeout_ms as bigint),
    expiresAt: (r.expires_at as Date | null) ?? null,
    createdAt: r.created_at as Date,
  };
}

export function toHistoryEntry(r: Row): HistoryEntry {
  return {
    accountId: r.account_id as string,
    seq: r.seq as bigint,
    transferId: r.transfer_id as string,
    event: r.event as HistoryEntry['event'],
    side: r.side as 'debit' | 'credit',
    amountMinor: r.amount_minor as bigint,
    debitsPendingMinor: r.debits_pending as bigint,
    debitsPostedMinor: r.debits_posted as bigint,
    creditsPendingMinor: r.credits_pending as bigint,
    creditsPostedMinor: r.credits_posted as bigint,
    at: r.at as Date,
  };
}

function toPendingRow(r: Row): PendingRow {
  return {
    transferId: r.transfer_id as string,
    debitAccountId: r.debit_account_id as string,
    creditAccountId: r.credit_account_id as string,
    amountMinor: r.amount_minor as bigint,
    currency: r.currency as string,
    expiresAtMs: r.expires_at === null ? null : (r.expires_at as Date).getTime(),
    state: r.state as PendingState,
    readState: r.state as PendingState,
    resolvedBy: null,
    isNew: false,
    changed: false,
  };
}

/** An account as a batch computes with it: its values as read (or as a conflict reported them), nothing changed yet. */
export function accountStateOf(v: {
  id: string;
  currency: string;
  closed: boolean;
  debitsMustNotExceedCredits: boolean;
  creditsMustNotExceedDebits: boolean;
  creditLimitMinor: bigint | null;
  debitsPendingMinor: bigint;
  debitsPostedMinor: bigint;
  creditsPendingMinor: bigint;
  creditsPostedMinor: bigint;
  historySeq: bigint;
}): AccountState {
  // Field by field, one object shape for every account state (the engine copies these on every batch).
  return {
    id: v.id,
    currency: v.currency,
    closed: v.closed,
    debitsMustNotExceedCredits: v.debitsMustNotExceedCredits,
    creditsMustNotExceedDebits: v.creditsMustNotExceedDebits,
    creditLimitMinor: v.creditLimitMinor,
    debitsPendingMinor: v.debitsPendingMinor,
    debitsPostedMinor: v.debitsPostedMinor,
    creditsPendingMinor: v.creditsPendingMinor,
    creditsPostedMinor: v.creditsPostedMinor,
    historySeq: v.historySeq,
    readSeq: v.historySeq,
    readDebitsPendingMinor: v.debitsPendingMinor,
    readDebitsPostedMinor: v.debitsPostedMinor,
    readCreditsPendingMinor: v.creditsPendingMinor,
    readCreditsPostedMinor: v.creditsPostedMinor,
    changed: false,
  };
}

/** The columns a batch reads of an account, under the names toAccountState reads. */
const ACCOUNT_STATE_COLUMNS = `id, currency, closed, debits_must_not_exceed_credits as dm, credits_must_not_exceed_debits as cm, credit_limit_minor as cl,
  debits_pending as dp, debits_posted as dpo, credits_pending as cp, credits_posted as cpo, history_seq as seq`;

function toAccountState(r: Row): AccountState {
  return accountStateOf({
    id: r.id as string,
    currency: r.currency as string,
    closed: r.closed as boolean,
    debitsMustNotExceedCredits: r.dm as boolean,
    creditsMustNotExceedDebits: r.cm as boolean,
    creditLimitMinor: (r.cl as bigint | null) ?? null,
    debitsPendingMinor: r.dp as bigint,
    debitsPostedMinor: r.dpo as bigint,
    creditsPendingMinor: r.cp as bigint,
    creditsPostedMinor: r.cpo as bigint,
    historySeq: r.seq as bigint,
  });
}

/**
 * The pending transfers a batch names (locked, in id order, when `lock`), with their accounts added to `ids.accountIds`
 * (a post or void touches them).
 */
async function readPendings(q: Queryable, ids: { accountIds: Set<string>; pendingIds: Set<string> }, lock: boolean): Promise<Map<string, PendingRow>> {
  const pendings = new Map<string, PendingRow>();
  if (ids.pendingIds.size === 0) return pendings;
  const rows = await q.query(
    `select transfer_id, debit_account_id, credit_account_id, amount_minor, currency, expires_at, state
       from ledger_pending where transfer_id = any($1::text[])${lock ? ' order by transfer_id for update' : ''}`,
    [[...ids.pendingIds]],
  );
  for (const r of rows) {
    const row = toPendingRow(r);
    pendings.set(row.transferId, row);
    ids.accountIds.add(row.debitAccountId);
    ids.accountIds.add(row.creditAccountId);
  }
  return pendings;
}

/**
 * Locks and loads what a batch needs (applyInTx, expiry, the engine's fallback), in a fixed order shared by every
 * writer: pending rows first (sorted), then accounts (sorted). Every process takes locks in the same global order, so
 * batches never deadlock each other. Existing ids are read after the locks: under read committed that statement sees
 * every batch that committed before we got our locks, so an id applied by another process is found rather than
 * applied twice.
 */
export async function loadBatchState(
  tx: Queryable,
  pipelined: boolean,
  ids: { accountIds: Set<string>; pendingIds: Set<string>; transferIds: Set<string> },
): Promise<BatchState> {
  const pendings = await readPendings(tx, ids, true);
  const accounts = new Map<string, AccountState>();
  const existing = new Map<string, Existing>();
  const sortedAccountIds = [...ids.accountIds].sort();
  const transferIds = [...ids.transferIds];
  await runAll(pipelined, [
    async () => {
      if (sortedAccountIds.length === 0) return;
      const rows = await tx.query(`select ${ACCOUNT_STATE_COLUMNS} from ledger_accounts where id = any($1::text[]) order by id for update`, [sortedAccountIds]);
      for (const r of rows) accounts.set(r.id as string, toAccountState(r));
    },
    async () => {
      if (transferIds.length === 0) return;
      const rows = await tx.query(`select ${TRANSFER_COLUMNS} from ledger_transfers where id = any($1::text[])`, [transferIds]);
      for (const r of rows) existing.set(r.id as string, { type: 'transfer', fingerprint: r.fingerprint as string, transfer: toTransfer(r) });
    },
    async () => {
      if (transferIds.length === 0) return;
      const rows = await tx.query(`select id, code, fingerprint from ledger_transfer_failures where id = any($1::text[])`, [transferIds]);
      for (const r of rows) {
        if (!existing.has(r.id as string)) existing.set(r.id as string, { type: 'failure', fingerprint: r.fingerprint as string, code: r.code as LedgerErrorCode });
      }
    },
  ]);
  return { accounts, pendings, existing };
}

/**
 * What a batch of the engine's optimistic path needs, read without locks in one statement after the pending rows (so
 * one connection, one round trip): accounts, and which transfer ids exist as transfers or recorded failures. A transfer
 * found (a retried id: rare) is then read whole. ledger_apply_batch validates all of it under lock.
 */
export async function readBatchState(q: Queryable, ids: { accountIds: Set<string>; pendingIds: Set<string>; transferIds: Set<string> }): Promise<BatchState> {
  const pendings = await readPendings(q, ids, false);
  const accounts = new Map<string, AccountState>();
  const existing = new Map<string, Existing>();
  if (ids.accountIds.size === 0 && ids.transferIds.size === 0) return { accounts, pendings, existing };
  const transferIds = [...ids.transferIds];
  const rows = await q.query(
    `select 0 as k, id, currency, closed, debits_must_not_exceed_credits as dm, credits_must_not_exceed_debits as cm, credit_limit_minor as cl,
            debits_pending as dp, debits_posted as dpo, credits_pending as cp, credits_posted as cpo, history_seq as seq, null::text as code,
            null::text as fingerprint
       from ledger_accounts where id = any($1::text[])
     union all
     select 1, id, null, null, null, null, null, null, null, null, null, null, null, fingerprint from ledger_transfers where id = any($2::text[])
     union all
     select 2, id, null, null, null, null, null, null, null, null, null, null, code, fingerprint from ledger_transfer_failures where id = any($2::text[])`,
    [[...ids.accountIds], transferIds],
  );
  const found: string[] = [];
  for (const r of rows) {
    const id = r.id as string;
    if (r.k === 0) {
      accounts.set(id, toAccountState(r));
    } else if (r.k === 1) {
      found.push(id);
    } else if (!existing.has(id)) {
      existing.set(id, { type: 'failure', fingerprint: r.fingerprint as string, code: r.code as LedgerErrorCode });
    }
  }
  if (found.length > 0) {
    // A transfer id and a recorded failure both existing (a race between processes) reads as the transfer.
    for (const r of await q.query(`select ${TRANSFER_COLUMNS} from ledger_transfers where id = any($1::text[])`, [found])) {
      existing.set(r.id as string, { type: 'transfer', fingerprint: r.fingerprint as string, transfer: toTransfer(r) });
    }
  }
  return { accounts, pendings, existing };
}

/**
 * A bigint[] parameter as one array literal ('{1,2,NULL}'): the server parses it straight into int8 values, instead of
 * building a text[] and casting every element per row; and the client sends one string instead of escaping each element.
 * Both engines accept it.
 */
function int8Array(values: readonly (bigint | number | null)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out += (i === 0 ? '' : ',') + (v === null || v === undefined ? 'NULL' : v.toString());
  }
  return out + '}';
}

/** Seq and balances after of one side of each transfer, as five int8[] literals. */
function sideColumns(sides: readonly HistoryRow[]): string[] {
  return [
    int8Array(sides.map((h) => h.seq)),
    int8Array(sides.map((h) => h.debitsPendingMinor)),
    int8Array(sides.map((h) => h.debitsPostedMinor)),
    int8Array(sides.map((h) => h.creditsPendingMinor)),
    int8Array(sides.map((h) => h.creditsPostedMinor)),
  ];
}

/** Writes a computed batch with at most six statements, whatever its size. */
export async function writeBatch(tx: Queryable, pipelined: boolean, state: BatchState, writes: BatchWrites, now: Date): Promise<void> {
  const statements: (() => Promise<unknown>)[] = [];
  const transfers = writes.transfers.map((w) => w.transfer);
  if (transfers.length > 0) {
    const fingerprints = writes.transfers.map((w) => w.fingerprint);
    statements.push(() =>
      tx.query(
        `insert into ledger_transfers (${TRANSFER_COLUMNS}, ${STATEMENT_COLUMNS})
         select u.id, u.kind, u.d, u.c, u.a, u.cur, u.p, u.m::jsonb, u.l, u.pid, u.t, u.e::timestamptz, u.f, $13::timestamptz,
                u.ds, u.ddp, u.ddpo, u.dcp, u.dcpo, u.cs, u.cdp, u.cdpo, u.ccp, u.ccpo
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::bool[],
                       $10::text[], $11::int8[], $12::text[], $14::text[], $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::int8[],
                       $20::int8[], $21::int8[], $22::int8[], $23::int8[], $24::int8[])
             as u(id, kind, d, c, a, cur, p, m, l, pid, t, e, f, ds, ddp, ddpo, dcp, dcpo, cs, cdp, cdpo, ccp, ccpo)`,
        [
          transfers.map((t) => t.id),
          transfers.map((t) => t.kind),
          transfers.map((t) => t.debitAccountId),
          transfers.map((t) => t.creditAccountId),
          int8Array(transfers.map((t) => t.amountMinor)),
          transfers.map((t) => t.currency),
          transfers.map((t) => t.purpose),
          writes.transfers.map((w) => w.metadataJson),
          `{${transfers.map((t) => (t.linked ? 't' : 'f')).join(',')}}`,
          transfers.map((t) => t.pendingId),
          int8Array(transfers.map((t) => t.timeoutMs)),
          transfers.map((t) => t.expiresAt?.toISOString() ?? null),
          now,
          fingerprints,
          ...sideColumns(writes.transfers.map((w) => w.debitSide)),
          ...sideColumns(writes.transfers.map((w) => w.creditSide)),
        ],
      ),
    );
  }
  const newPendings: PendingRow[] = [];
  const resolved: PendingRow[] = [];
  for (const row of state.pendings.values()) {
    if (!row.changed) continue;
    if (row.isNew) newPendings.push(row);
    else resolved.push(row);
  }
  if (newPendings.length > 0) {
    statements.push(() =>
      tx.query(
        `insert into ledger_pending (transfer_id, debit_account_id, credit_account_id, amount_minor, currency, expires_at, state, resolved_by, resolved_at)
         select u.id, u.d, u.c, u.a, u.cur, u.e::timestamptz, u.st, u.rb, case when u.st = 'pending' then null else $9::timestamptz end
           from unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[]) as u(id, d, c, a, cur, e, st, rb)`,
        [
          newPendings.map((p) => p.transferId),
          newPendings.map((p) => p.debitAccountId),
          newPendings.map((p) => p.creditAccountId),
          int8Array(newPendings.map((p) => p.amountMinor)),
          newPendings.map((p) => p.currency),
          newPendings.map((p) => (p.expiresAtMs === null ? null : new Date(p.expiresAtMs).toISOString())),
          newPendings.map((p) => p.state),
          newPendings.map((p) => p.resolvedBy),
          now,
        ],
      ),
    );
  }
  if (resolved.length > 0) {
    statements.push(() =>
      tx.query(
        `update ledger_pending p set state = u.st, resolved_by = u.rb, resolved_at = $4::timestamptz
           from unnest($1::text[], $2::text[], $3::text[]) as u(id, st, rb) where p.transfer_id = u.id`,
        [resolved.map((p) => p.transferId), resolved.map((p) => p.state), resolved.map((p) => p.resolvedBy), now],
      ),
    );
  }
  const changed: AccountState[] = [];
  for (const acc of state.accounts.values()) if (acc.changed) changed.push(acc);
  if (changed.length > 0) {
    // Absolute values, not deltas: we hold every row's lock, so the in-memory running balance is the truth.
    // One row update per account per batch, however many transfers touched it.
    statements.push(() =>
      tx.query(
        `update ledger_accounts a set debits_pending = u.dp, debits_posted = u.dpo, credits_pending = u.cp,
                credits_posted = u.cpo, history_seq = u.hs, updated_at = $7::timestamptz
           from unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[]) as u(id, dp, dpo, cp, cpo, hs) where a.id = u.id`,
        [
          changed.map((a) => a.id),
          int8Array(changed.map((a) => a.debitsPendingMinor)),
          int8Array(changed.map((a) => a.debitsPostedMinor)),
          int8Array(changed.map((a) => a.creditsPendingMinor)),
          int8Array(changed.map((a) => a.creditsPostedMinor)),
          int8Array(changed.map((a) => a.historySeq)),
          now,
        ],
      ),
    );
  }
  const h = writes.history;
  if (h.length > 0) {
    statements.push(() =>
      tx.query(
        `insert into ledger_history (account_id, seq, transfer_id, event, side, amount_minor, debits_pending, debits_posted, credits_pending, credits_posted, at)
         select u.acc, u.seq::int8, u.tid, u.ev, u.side, u.a::int8, u.dp::int8, u.dpo::int8, u.cp::int8, u.cpo::int8, $11::timestamptz
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
             as u(acc, seq, tid, ev, side, a, dp, dpo, cp, cpo)`,
        [
          h.map((r) => r.accountId),
          h.map((r) => r.seq.toString()),
          h.map((r) => r.transferId),
          h.map((r) => r.event),
          h.map((r) => r.side),
          h.map((r) => r.amountMinor.toString()),
          h.map((r) => r.debitsPendingMinor.toString()),
          h.map((r) => r.debitsPostedMinor.toString()),
          h.map((r) => r.creditsPendingMinor.toString()),
          h.map((r) => r.creditsPostedMinor.toString()),
          now,
        ],
      ),
    );
  }
  const f = writes.failures;
  if (f.length > 0) {
    statements.push(() =>
      tx.query(
        `insert into ledger_transfer_failures (id, code, fingerprint, created_at)
         select u.id, u.code, u.f, $4::timestamptz from unnest($1::text[], $2::text[], $3::text[]) as u(id, code, f)`,
        [f.map((x) => x.id), f.map((x) => x.code), f.map((x) => x.fingerprint), now],
      ),
    );
  }
  await runAll(pipelined, statements);
}

/** Parameter types of ledger_apply_batch, in order (migrations 0006 and 0008); then the timestamp. */
const APPLY_BATCH_TYPES = [
  ...['text', 'int8', 'bool', 'int8', 'int8', 'int8', 'int8', 'int8', 'bool', 'int8', 'int8', 'int8', 'int8'],
  ...['text', 'text', 'text', 'text'],
  ...['text', 'text', 'text', 'int8', 'text', 'text', 'text', 'text'],
  ...['text', 'text', 'text', 'text', 'int8', 'text', 'text', 'text', 'bool', 'text', 'int8', 'text', 'text'],
  ...['int8', 'int8', 'int8', 'int8', 'int8', 'int8', 'int8', 'int8', 'int8', 'int8'],
  ...['text', 'text', 'text'],
  'text',
];
const APPLY_BATCH_SQL = `select ledger_apply_batch(${APPLY_BATCH_TYPES.map((type, i) => `$${i + 1}::${type}[]`).join(', ')}, $${APPLY_BATCH_TYPES.length + 1}::timestamptz) as shared`;

/** A shared account's values when the batch read it: its writes go as changes from these (see the migration). */
export interface SharedBase {
  readonly seq: bigint;
  readonly debitsPendingMinor: bigint;
  readonly debitsPostedMinor: bigint;
  readonly creditsPendingMinor: bigint;
  readonly creditsPostedMinor: bigint;
}

/**
 * The byte order of ids (collate "C" on UTF-8), the order every ledger writer locks rows in. JavaScript's `<` compares
 * UTF-16 code units, which agrees except between surrogate pairs (code points above U+FFFF) and U+E000–U+FFFF.
 */
export function compareIds(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800–0xDFFF) encode code points above every BMP character: move them above 0xFFFF.
    if (x >= 0xd800 && x <= 0xdfff) x += 0x10000;
    if (y >= 0xd800 && y <= 0xdfff) y += 0x10000;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * One array parameter, built as a single array literal in one pass ('{"a","b",NULL}', '{1,2}', '{t,f}'): the driver
 * sends one string instead of escaping every element of a JavaScript array, and the server parses it straight into
 * the column type. Parts are joined once at the end (a flat string: no rope to flatten when the driver measures it).
 */
class ArrayLiteral {
  private readonly parts: string[] = [];

  text(value: string | null): void {
    // Quoted always (an empty string, NULL, braces, commas and spaces need it); only " and \ are escaped inside.
    this.parts.push(value === null ? 'NULL' : NEEDS_ESCAPE.test(value) ? `"${value.replace(/[\\"]/g, '\\$&')}"` : `"${value}"`);
  }

  /** A value known to need no quoting (codes, kinds, currencies, base64url fingerprints) or already quoted. */
  plain(value: string): void {
    this.parts.push(value);
  }

  int(value: bigint | number | null): void {
    this.parts.push(value === null ? 'NULL' : value.toString());
  }

  bool(value: boolean): void {
    this.parts.push(value ? 't' : 'f');
  }

  done(): string {
    return `{${this.parts.join(',')}}`;
  }
}

const NEEDS_ESCAPE = /[\\"]/;

/**
 * The parameters of ledger_apply_batch (migration 0006) for a batch computed from unlocked reads: ONE statement that
 * validates and writes it, outside a transaction one round trip with its commit. It throws SQLSTATE HL001 when
 * something the batch read changed meanwhile (nothing is written then), 23505 when another batch inserted one of its
 * new ids first. `unwrittenIds`: ids of the batch whose outcome writes nothing but assumed the id is new. `shared`:
 * accounts the batch only credits, written as changes (with their values when read).
 */
export function batchParams(state: BatchState, writes: BatchWrites, unwrittenIds: readonly string[], shared: ReadonlyMap<string, SharedBase>, now: Date): unknown[] {
  if (writes.history.length > 0) throw new Error('ledger: applyBatch does not write history rows (expiry runs under locks)');
  // Sorted as the database orders ids: ledger_apply_batch locks them in this order (see the migration).
  const accounts = [...state.accounts.values()].sort((a, b) => compareIds(a.id, b.id));
  const a = Array.from({ length: 13 }, () => new ArrayLiteral());
  for (const acc of accounts) {
    const base = shared.size === 0 ? undefined : shared.get(acc.id);
    a[0]!.text(acc.id);
    if (base === undefined) {
      a[1]!.int(acc.readSeq);
      // closed never changes in memory: as read.
      a[2]!.bool(acc.closed);
      a[3]!.int(acc.debitsPendingMinor);
      a[4]!.int(acc.debitsPostedMinor);
      a[5]!.int(acc.creditsPendingMinor);
      a[6]!.int(acc.creditsPostedMinor);
      a[7]!.int(acc.historySeq);
      a[8]!.bool(false);
      a[9]!.int(acc.readDebitsPendingMinor);
      a[10]!.int(acc.readDebitsPostedMinor);
      a[11]!.int(acc.readCreditsPendingMinor);
      a[12]!.int(acc.readCreditsPostedMinor);
    } else {
      a[1]!.int(base.seq);
      a[2]!.bool(false);
      a[3]!.int(acc.debitsPendingMinor - base.debitsPendingMinor);
      a[4]!.int(acc.debitsPostedMinor - base.debitsPostedMinor);
      a[5]!.int(acc.creditsPendingMinor - base.creditsPendingMinor);
      a[6]!.int(acc.creditsPostedMinor - base.creditsPostedMinor);
      a[7]!.int(acc.historySeq - base.seq);
      a[8]!.bool(true);
      // Not compared for a shared account.
      for (let i = 9; i < 13; i++) a[i]!.int(0n);
    }
  }
  const p = Array.from({ length: 4 }, () => new ArrayLiteral());
  const n = Array.from({ length: 8 }, () => new ArrayLiteral());
  for (const row of state.pendings.values()) {
    if (row.isNew) {
      n[0]!.text(row.transferId);
      n[1]!.text(row.debitAccountId);
      n[2]!.text(row.creditAccountId);
      n[3]!.int(row.amountMinor);
      n[4]!.text(row.currency);
      n[5]!.text(row.expiresAtMs === null ? null : new Date(row.expiresAtMs).toISOString());
      n[6]!.text(row.state);
      n[7]!.text(row.resolvedBy);
    } else {
      p[0]!.text(row.transferId);
      p[1]!.text(row.readState);
      p[2]!.text(row.changed ? row.state : null);
      p[3]!.text(row.changed ? row.resolvedBy : null);
    }
  }
  const t = Array.from({ length: 23 }, () => new ArrayLiteral());
  for (const w of writes.transfers) {
    const x = w.transfer;
    t[0]!.text(x.id);
    t[1]!.plain(x.kind);
    t[2]!.text(x.debitAccountId);
    t[3]!.text(x.creditAccountId);
    t[4]!.int(x.amountMinor);
    t[5]!.plain(x.currency);
    t[6]!.text(x.purpose);
    // '{}' (the usual metadata) needs quotes in an array literal: written as such, not escaped for every transfer.
    if (w.metadataJson === '{}') t[7]!.plain('"{}"');
    else t[7]!.text(w.metadataJson);
    t[8]!.bool(x.linked);
    t[9]!.text(x.pendingId);
    t[10]!.int(x.timeoutMs);
    t[11]!.text(x.expiresAt?.toISOString() ?? null);
    t[12]!.plain(w.fingerprint);
    const d = w.debitSide;
    const c = w.creditSide;
    t[13]!.int(d.seq);
    t[14]!.int(d.debitsPendingMinor);
    t[15]!.int(d.debitsPostedMinor);
    t[16]!.int(d.creditsPendingMinor);
    t[17]!.int(d.creditsPostedMinor);
    // On a shared account (only ever the credit side), offsets from its values when read.
    const base = shared.size === 0 ? undefined : shared.get(x.creditAccountId);
    t[18]!.int(base === undefined ? c.seq : c.seq - base.seq);
    t[19]!.int(base === undefined ? c.debitsPendingMinor : c.debitsPendingMinor - base.debitsPendingMinor);
    t[20]!.int(base === undefined ? c.debitsPostedMinor : c.debitsPostedMinor - base.debitsPostedMinor);
    t[21]!.int(base === undefined ? c.creditsPendingMinor : c.creditsPendingMinor - base.creditsPendingMinor);
    t[22]!.int(base === undefined ? c.creditsPostedMinor : c.creditsPostedMinor - base.creditsPostedMinor);
  }
  const f = Array.from({ length: 3 }, () => new ArrayLiteral());
  for (const x of writes.failures) {
    f[0]!.text(x.id);
    f[1]!.plain(x.code);
    f[2]!.plain(x.fingerprint);
  }
  const u = new ArrayLiteral();
  for (const id of unwrittenIds) u.text(id);
  const done = (cols: ArrayLiteral[]): string[] => cols.map((col) => col.done());
  return [...done(a), ...done(p), ...done(n), ...done(t), ...done(f), u.done(), now];
}

/** Sends a batch built by batchParams; resolves with its shared accounts' values just before it. */
export async function applyBatch(q: Queryable, params: readonly unknown[]): Promise<Map<string, SharedBase>> {
  const [row] = await q.query<{ shared: string | null }>(APPLY_BATCH_SQL, params);
  const before = new Map<string, SharedBase>();
  if (row?.shared !== null && row?.shared !== undefined) {
    for (const [id, seq, dp, dpo, cp, cpo] of JSON.parse(row.shared) as [string, string, string, string, string, string][]) {
      before.set(id, { seq: BigInt(seq), debitsPendingMinor: BigInt(dp), debitsPostedMinor: BigInt(dpo), creditsPendingMinor: BigInt(cp), creditsPostedMinor: BigInt(cpo) });
    }
  }
  return before;
}

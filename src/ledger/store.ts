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
    resolvedBy: null,
    isNew: false,
    changed: false,
  };
}

/** An account as a batch computes with it: its values as read under lock, nothing changed yet. */
function accountStateOf(v: {
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
 * Locks and loads what a batch needs (applyInTx, expiry), in a fixed order shared by every
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

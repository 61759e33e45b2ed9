import type { Clock } from '../platform/clock.ts';
import { sqlState, type Db, type Queryable, type Tx } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { isCurrency, MAX_AMOUNT_MINOR } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import { computeBatch, computeExpiry, referencedIds, toOps, type BatchState, type BatchWrites, type Op } from './compute.ts';
import { ACCOUNT_COLUMNS, loadBatchState, toAccount, toHistoryEntry, toTransfer, TRANSFER_COLUMNS, writeBatch } from './store.ts';
import {
  ACCOUNT_KINDS,
  MAX_HISTORY_PAGE,
  type Account,
  type HistoryPage,
  type InvariantViolation,
  type LedgerError,
  type NewAccount,
  type PendingState,
  type TransferInput,
  type TransferResult,
  type TransferView,
} from './types.ts';

export interface LedgerOptions {
  readonly db: Db;
  readonly clock: Clock;
}

export interface ListAccountsFilter {
  readonly ownerParticipantId: string;
  readonly customerId?: string;
  readonly currency?: string;
  /** At most 1000; default 200. */
  readonly limit?: number;
}

export interface Ledger {
  createAccount(input: NewAccount): Promise<Result<Account, LedgerError>>;
  /** All or nothing, in one transaction. */
  createAccounts(inputs: readonly NewAccount[]): Promise<Result<Account[], LedgerError>>;
  /** Closes an account with no pending amounts; later transfers touching it fail with account_closed. */
  closeAccount(id: string): Promise<Result<Account, LedgerError>>;
  /**
   * Sets how far a no-overdraft account may go below zero (a participant position's net debit cap), in the caller's
   * transaction, under the account's row lock: transfers applied after it commits see the new limit.
   */
  setCreditLimit(tx: Tx, id: string, limitMinor: bigint): Promise<Result<Account, LedgerError>>;
  getAccount(id: string): Promise<Result<Account, LedgerError>>;
  /** One statement, hence one snapshot: the balances returned are mutually consistent. Unknown ids are left out. */
  getAccounts(ids: readonly string[]): Promise<Account[]>;
  listAccounts(filter: ListAccountsFilter): Promise<Account[]>;
  /**
   * THE way money moves: applies transfers inside the caller's transaction, one result per transfer, in order, so
   * that money moves atomically with the caller's own records (payment, audit, outbox, idempotency answer). Callers
   * batch by putting many payments in one transaction (the effect batcher, e.g. transfers' confirmMany): one call
   * locks every account the batch touches once, in id order, and writes with set-based statements. Throws only on
   * infrastructure failure.
   */
  applyInTx(tx: Tx, transfers: readonly TransferInput[]): Promise<TransferResult[]>;
  getTransfer(id: string): Promise<Result<TransferView, LedgerError>>;
  history(accountId: string, page?: { cursor?: string; limit?: number }): Promise<Result<HistoryPage, LedgerError>>;
  /** Voids pending transfers past their deadline (by the clock), at most maxCount per call, in bounded batches. */
  expirePending(options?: { maxCount?: number }): Promise<{ expiredCount: number }>;
  /** Empty when the books balance. */
  checkInvariants(): Promise<InvariantViolation[]>;
  /** What applyInTx has done so far in this process (counters only grow; a caller's transaction may still roll back). */
  stats(): LedgerStats;
}

export interface LedgerStats {
  /** applyInTx calls (each one caller transaction's batch of transfers). */
  readonly applyCalls: number;
  /** Transfers handed to applyInTx (created, replayed or refused). */
  readonly transfersApplied: number;
}

const EXPIRY_BATCH = 500;

export function createLedger(options: LedgerOptions): Ledger {
  const { db, clock } = options;
  // PostgreSQL: the statements of one batch are pipelined on the transaction's connection (no round trip between them).
  const pipelined = db.engine === 'postgres';
  const counters = { applyCalls: 0, transfersApplied: 0 };

  /**
   * The locking path, shared by applyInTx and expiry: in the caller's (read-committed) transaction, lock pending rows
   * then accounts `for update` in id order, read which ids exist, compute in memory (compute.ts), then write with at
   * most six set-based statements.
   */
  async function applyOps(tx: Queryable, groups: Op[][], expiring: readonly string[] = []): Promise<{ results: TransferResult[][]; expiredCount: number; state: BatchState }> {
    const ids = referencedIds(groups.flat());
    for (const id of expiring) ids.pendingIds.add(id);
    const state = await loadBatchState(tx, pipelined, ids);
    const nowMs = clock.nowMs();
    const writes: BatchWrites = { transfers: [], history: [], failures: [] };
    const expiredCount = computeExpiry(expiring, state, nowMs, writes);
    const computed = computeBatch(groups, state, nowMs);
    writes.transfers.push(...computed.writes.transfers);
    writes.history.push(...computed.writes.history);
    writes.failures.push(...computed.writes.failures);
    await writeBatch(tx, pipelined, state, writes, new Date(nowMs));
    return { results: computed.results, expiredCount, state };
  }

  /** Expiry's own transaction (the ledger's background job; no caller records go with it). */
  async function expiryTx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    // Every statement is a key lookup: an index plan is always right. jit off: the disabled-seqscan cost penalty would
    // otherwise push plan costs over jit_above_cost. Local to this transaction.
    const withSettings = async (tx: Tx): Promise<T> => {
      await tx.query(`select set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)`);
      return fn(tx);
    };
    for (let attempt = 0; ; attempt++) {
      try {
        return await db.transaction(withSettings, { isolation: 'read committed', retries: 5, detached: true });
      } catch (error) {
        // 23505: a concurrent writer inserted a row this transaction meant to insert; the retry reads it under lock.
        if (sqlState(error) !== '23505' || attempt >= 5) throw error;
      }
    }
  }

  async function applyInTx(tx: Tx, transfers: readonly TransferInput[]): Promise<TransferResult[]> {
    if (transfers.length === 0) return [];
    counters.applyCalls++;
    counters.transfersApplied += transfers.length;
    const { results } = await applyOps(tx, [toOps(transfers)]);
    return results[0]!;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Accounts

  function validateAccount(input: NewAccount): LedgerError | null {
    const bad = (message: string, field: string): LedgerError => err('invalid_account', message, { field }).error;
    if (input.id !== undefined && (input.id.length < 1 || input.id.length > 64)) return bad('id must be 1–64 characters', 'id');
    if (!ACCOUNT_KINDS.includes(input.kind)) return bad(`kind must be one of ${ACCOUNT_KINDS.join(', ')}`, 'kind');
    if (!isCurrency(input.currency)) return bad('currency must be an ISO 4217 code the hub supports', 'currency');
    if (input.debitsMustNotExceedCredits === true && input.creditsMustNotExceedDebits === true) {
      return bad('debitsMustNotExceedCredits and creditsMustNotExceedDebits are mutually exclusive', 'flags');
    }
    if (input.creditLimitMinor !== undefined) {
      if (input.debitsMustNotExceedCredits !== true) return bad('creditLimitMinor needs debitsMustNotExceedCredits', 'creditLimitMinor');
      if (input.creditLimitMinor < 0n || input.creditLimitMinor > MAX_AMOUNT_MINOR) return bad('creditLimitMinor must be in 0…2^63−1', 'creditLimitMinor');
    }
    return null;
  }

  async function createAccounts(inputs: readonly NewAccount[]): Promise<Result<Account[], LedgerError>> {
    for (const input of inputs) {
      const invalid = validateAccount(input);
      if (invalid !== null) return { ok: false, error: invalid };
    }
    if (inputs.length === 0) return ok([]);
    const now = clock.now();
    const ids = inputs.map((i) => i.id ?? newId('acc'));
    try {
      const rows = await db.query(
        `insert into ledger_accounts (id, owner_participant_id, customer_id, currency, kind, debits_must_not_exceed_credits,
                credits_must_not_exceed_debits, credit_limit_minor, created_at, updated_at)
         select u.id, u.o, u.cu, u.cur, u.k, u.dm::bool, u.cm::bool, u.cl::int8, $9::timestamptz, $9::timestamptz
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) with ordinality
             as u(id, o, cu, cur, k, dm, cm, cl, ord)
          order by u.ord
         returning ${ACCOUNT_COLUMNS}`,
        [
          ids,
          inputs.map((i) => i.ownerParticipantId),
          inputs.map((i) => i.customerId ?? null),
          inputs.map((i) => i.currency),
          inputs.map((i) => i.kind),
          inputs.map((i) => (i.debitsMustNotExceedCredits === true ? 't' : 'f')),
          inputs.map((i) => (i.creditsMustNotExceedDebits === true ? 't' : 'f')),
          inputs.map((i) => i.creditLimitMinor?.toString() ?? null),
          now,
        ],
      );
      const byId = new Map(rows.map((r) => [r.id as string, toAccount(r)]));
      return ok(ids.map((id) => byId.get(id)!));
    } catch (error) {
      const state = sqlState(error);
      if (state === '23505') return err('account_exists', 'an account with this id already exists');
      if (state === '23503') return err('participant_not_found', 'the owner participant does not exist');
      throw error;
    }
  }

  async function getAccount(id: string): Promise<Result<Account, LedgerError>> {
    const rows = await db.query(`select ${ACCOUNT_COLUMNS} from ledger_accounts where id = $1`, [id]);
    const row = rows[0];
    return row === undefined ? err('account_not_found', 'no account has this id', { accountId: id }) : ok(toAccount(row));
  }

  async function closeAccount(id: string): Promise<Result<Account, LedgerError>> {
    return db.transaction(async (tx) => {
      const rows = await tx.query(`select ${ACCOUNT_COLUMNS} from ledger_accounts where id = $1 for update`, [id]);
      const row = rows[0];
      if (row === undefined) return err('account_not_found', 'no account has this id', { accountId: id });
      const account = toAccount(row);
      if (account.closed) return ok(account);
      // A pending amount on a closed account could never be posted or voided cleanly.
      if (account.debitsPendingMinor !== 0n || account.creditsPendingMinor !== 0n) return err('account_has_pending', 'the account has pending transfers');
      const updated = await tx.query(`update ledger_accounts set closed = true, updated_at = $2 where id = $1 returning ${ACCOUNT_COLUMNS}`, [id, clock.now()]);
      return ok(toAccount(updated[0]!));
    });
  }

  async function setCreditLimit(tx: Tx, id: string, limitMinor: bigint): Promise<Result<Account, LedgerError>> {
    if (limitMinor < 0n || limitMinor > MAX_AMOUNT_MINOR) return err('invalid_account', 'the limit must be in 0…2^63−1', { field: 'creditLimitMinor' });
    const rows = await tx.query(
      `update ledger_accounts set credit_limit_minor = $2, updated_at = $3 where id = $1 and debits_must_not_exceed_credits returning ${ACCOUNT_COLUMNS}`,
      [id, limitMinor, clock.now()],
    );
    const row = rows[0];
    if (row === undefined) return err('account_not_found', 'no no-overdraft account has this id', { accountId: id });
    return ok(toAccount(row));
  }

  async function getAccounts(ids: readonly string[]): Promise<Account[]> {
    if (ids.length === 0) return [];
    const rows = await db.query(`select ${ACCOUNT_COLUMNS} from ledger_accounts where id = any($1::text[]) order by id`, [[...ids]]);
    return rows.map(toAccount);
  }

  async function listAccounts(filter: ListAccountsFilter): Promise<Account[]> {
    const limit = Math.min(Math.max(filter.limit ?? 200, 1), 1000);
    const rows = await db.query(
      `select ${ACCOUNT_COLUMNS} from ledger_accounts
        where owner_participant_id = $1 and ($2::text is null or customer_id = $2) and ($3::text is null or currency = $3)
        order by id limit $4`,
      [filter.ownerParticipantId, filter.customerId ?? null, filter.currency ?? null, limit],
    );
    return rows.map(toAccount);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reads

  async function getTransfer(id: string): Promise<Result<TransferView, LedgerError>> {
    const rows = await db.query(
      `select ${TRANSFER_COLUMNS.split(',').map((c) => `t.${c.trim()}`).join(', ')}, p.state as pending_state
         from ledger_transfers t left join ledger_pending p on p.transfer_id = t.id where t.id = $1`,
      [id],
    );
    const row = rows[0];
    if (row === undefined) return err('transfer_not_found', 'no transfer has this id', { id });
    return ok({ ...toTransfer(row), pendingState: (row.pending_state as PendingState | null) ?? null });
  }

  async function history(accountId: string, page: { cursor?: string; limit?: number } = {}): Promise<Result<HistoryPage, LedgerError>> {
    const limit = page.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_PAGE) return err('invalid_page', `limit must be 1–${MAX_HISTORY_PAGE}`);
    let afterSeq = 0n;
    if (page.cursor !== undefined) {
      if (!/^[0-9]{1,19}$/.test(page.cursor)) return err('invalid_page', 'cursor is not one this ledger issued');
      afterSeq = BigInt(page.cursor);
    }
    const account = await getAccount(accountId);
    if (!account.ok) return account;
    // One more than the page: tells whether there is a next page without a count query.
    // An account's entries: its transfers on the debit side, on the credit side, and events without a transfer row
    // (expiry), merged by seq. Each branch is an index range scan that stops after limit + 1 rows.
    const rows = await db.query(
      `select * from (
         (select debit_account_id as account_id, debit_seq as seq, id as transfer_id, kind as event, 'debit' as side, amount_minor,
                 debit_debits_pending as debits_pending, debit_debits_posted as debits_posted, debit_credits_pending as credits_pending,
                 debit_credits_posted as credits_posted, created_at as at
            from ledger_transfers where debit_account_id = $1 and debit_seq > $2 order by debit_seq limit $3)
         union all
         (select credit_account_id, credit_seq, id, kind, 'credit', amount_minor, credit_debits_pending, credit_debits_posted, credit_credits_pending,
                 credit_credits_posted, created_at
            from ledger_transfers where credit_account_id = $1 and credit_seq > $2 order by credit_seq limit $3)
         union all
         (select account_id, seq, transfer_id, event, side, amount_minor, debits_pending, debits_posted, credits_pending, credits_posted, at
            from ledger_history where account_id = $1 and seq > $2 order by seq limit $3)
       ) h order by seq limit $3`,
      [accountId, afterSeq.toString(), limit + 1],
    );
    const entries = rows.slice(0, limit).map(toHistoryEntry);
    const last = entries[entries.length - 1];
    return ok({ entries, nextCursor: rows.length > limit && last !== undefined ? last.seq.toString() : null });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Expiry and invariants

  async function expirePending(expiryOptions: { maxCount?: number } = {}): Promise<{ expiredCount: number }> {
    const maxCount = Math.max(0, expiryOptions.maxCount ?? 10_000);
    let expiredCount = 0;
    // Bounded: at most maxCount / EXPIRY_BATCH + 1 rounds.
    for (let round = 0; expiredCount < maxCount && round <= maxCount / EXPIRY_BATCH; round++) {
      const due = await db.query<{ transfer_id: string }>(
        `select transfer_id from ledger_pending where state = 'pending' and expires_at <= $1 order by expires_at limit $2`,
        [clock.now(), Math.min(EXPIRY_BATCH, maxCount - expiredCount)],
      );
      if (due.length === 0) break;
      // The rows are re-read under lock: one resolved meanwhile (posted, voided, expired by another process) is skipped.
      const done = await expiryTx((tx) =>
        applyOps(
          tx,
          [],
          due.map((d) => d.transfer_id),
        ),
      );
      expiredCount += done.expiredCount;
      if (due.length < EXPIRY_BATCH) break;
    }
    return { expiredCount };
  }

  async function checkInvariants(): Promise<InvariantViolation[]> {
    // One transaction at repeatable read: every query below sees the same snapshot.
    return db.transaction(
      async (tx) => {
        const violations: InvariantViolation[] = [];
        const sums = await tx.query(
          `select currency, sum(debits_posted)::text as dpo, sum(credits_posted)::text as cpo, sum(debits_pending)::text as dp,
                  sum(credits_pending)::text as cp from ledger_accounts group by currency order by currency`,
        );
        const pendingSums = new Map(
          (await tx.query(`select currency, sum(amount_minor)::text as s from ledger_pending where state = 'pending' group by currency`)).map((r) => [
            r.currency as string,
            r.s as string,
          ]),
        );
        for (const r of sums) {
          const currency = r.currency as string;
          if (r.dpo !== r.cpo) violations.push({ kind: 'debits_credits_posted_unbalanced', currency, details: { debitsPosted: r.dpo as string, creditsPosted: r.cpo as string } });
          if (r.dp !== r.cp) violations.push({ kind: 'debits_credits_pending_unbalanced', currency, details: { debitsPending: r.dp as string, creditsPending: r.cp as string } });
          const pendingTotal = pendingSums.get(currency) ?? '0';
          if (pendingTotal !== r.dp) violations.push({ kind: 'pending_table_mismatch', currency, details: { pendingTransfers: pendingTotal, debitsPending: r.dp as string } });
        }
        const bad = await tx.query(
          `select id, currency, debits_must_not_exceed_credits as dm, (debits_pending + debits_posted)::text as d, (credits_pending + credits_posted)::text as c,
                  credits_posted::text as cpo, debits_posted::text as dpo, coalesce(credit_limit_minor, 0)::text as lim
             from ledger_accounts
            where (debits_must_not_exceed_credits and debits_pending::numeric + debits_posted > credits_posted::numeric + coalesce(credit_limit_minor, 0))
               or (credits_must_not_exceed_debits and credits_pending::numeric + credits_posted > debits_posted)
            order by id limit 1000`,
        );
        for (const r of bad) {
          violations.push(
            r.dm === true
              ? { kind: 'overdrawn', currency: r.currency as string, accountId: r.id as string, details: { debits: r.d as string, creditsPosted: r.cpo as string, creditLimit: r.lim as string } }
              : { kind: 'credits_exceed_debits', currency: r.currency as string, accountId: r.id as string, details: { credits: r.c as string, debitsPosted: r.dpo as string } },
          );
        }
        return violations;
      },
      { isolation: 'repeatable read' },
    );
  }

  return {
    createAccount: async (input) => {
      const created = await createAccounts([input]);
      return created.ok ? ok(created.value[0]!) : created;
    },
    createAccounts,
    closeAccount,
    setCreditLimit,
    getAccount,
    getAccounts,
    listAccounts,
    applyInTx,
    getTransfer,
    history,
    expirePending,
    checkInvariants,
    stats: () => ({ ...counters }),
  };
}

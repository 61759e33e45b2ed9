import { AsyncResource } from 'node:async_hooks';
import type { Clock } from '../platform/clock.ts';
import { DatabaseDeadlineError, sqlState, type Db, type Queryable, type Session, type Tx } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { isCurrency, MAX_AMOUNT_MINOR } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import { computeBatch, computeExpiry, referencedIds, toOps, type AccountState, type BatchState, type BatchWrites, type Op, type PendingRow } from './compute.ts';
import { ACCOUNT_COLUMNS, accountStateOf, applyBatch, batchParams, loadBatchState, readBatchState, toAccount, toHistoryEntry, toTransfer, TRANSFER_COLUMNS, writeBatch, type SharedBase } from './store.ts';
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

export interface BatchOptions {
  /** Most transfers applied in one batch (one statement, its own transaction). */
  readonly maxBatchSize: number;
  /** Longest a transfer waits for companions when the ledger is idle (0: those submitted in the same event-loop turn). */
  readonly maxWaitMs: number;
  /** Most transfers waiting; beyond it submit() answers ledger_busy at once (back-pressure, bounded memory). */
  readonly maxQueue: number;
  /**
   * Batches alive at once: one being written (one statement on one connection) while the next ones are computed on
   * top of it. PGlite has one connection: 1 there whatever is asked.
   */
  readonly maxInFlight: number;
  /**
   * Remember the accounts and pending transfers of committed batches (default true), so that a batch touching only
   * known rows goes to the database once. false: every batch reads its rows first (two round trips).
   */
  readonly rememberRows?: boolean;
}

export const DEFAULT_BATCH_OPTIONS: BatchOptions = { maxBatchSize: 2000, maxWaitMs: 1, maxQueue: 50_000, maxInFlight: 2 };

export interface LedgerOptions {
  readonly db: Db;
  readonly clock: Clock;
  readonly batch?: Partial<BatchOptions>;
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
   * Queues transfers for the batcher and resolves with one result per transfer, in order. A submit call's transfers
   * stay together in one batch, so a linked chain is always inside one call. Throws only on infrastructure failure.
   */
  submit(transfers: readonly TransferInput[]): Promise<TransferResult[]>;
  /** The same rules inside the caller's transaction (no batching): money moves atomically with the caller's changes. */
  applyInTx(tx: Tx, transfers: readonly TransferInput[]): Promise<TransferResult[]>;
  getTransfer(id: string): Promise<Result<TransferView, LedgerError>>;
  history(accountId: string, page?: { cursor?: string; limit?: number }): Promise<Result<HistoryPage, LedgerError>>;
  /** Voids pending transfers past their deadline (by the clock), at most maxCount per call, in bounded batches. */
  expirePending(options?: { maxCount?: number }): Promise<{ expiredCount: number }>;
  /** Empty when the books balance. */
  checkInvariants(): Promise<InvariantViolation[]>;
  /** What the batching engine has done so far in this process (counters only grow). */
  stats(): LedgerEngineStats;
  /**
   * Applies everything already queued, then refuses new submits. Bounded by `deadlineMs` (default 5 s): what is still
   * queued then is refused (its callers answered with a DatabaseDeadlineError, 503 at the edge) and a batch still being
   * written is left to end on its own (bounded by the database's deadlines).
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
}

export interface LedgerEngineStats {
  /** Batch writes that committed. */
  readonly batchesWritten: number;
  /** Batch writes the database refused because a row changed since the batch read it (each then retried). */
  readonly lostRaces: number;
  /** Batch writes sent while the batch before them was still being written (pipelined on the writer connection). */
  readonly sentBehind: number;
}

interface Pending {
  readonly ops: Op[];
  /** Accounts this submit call touches other than by crediting them (debits, a post's or void's accounts). */
  readonly accounts: string[];
  /** Accounts it only credits (single-phase or pending): candidates for a shared account (see startBatch). */
  readonly credited: string[];
  /** Its transfer ids and the pending transfers it posts or voids. */
  readonly transfers: string[];
  /** performance.now() when submitted: the batcher waits at most maxWaitMs for companions. */
  readonly queuedAt: number;
  readonly resolve: (results: TransferResult[]) => void;
  readonly reject: (error: unknown) => void;
}

/** Retries of a whole batch after another process inserted the same new transfer id first. */
const UNIQUE_VIOLATION_RETRIES = 5;
const EXPIRY_BATCH = 500;
/** Longest close() waits for queued and running batches (a hub stopping must stop even with its database down). */
const CLOSE_DEADLINE_MS = 5_000;
/** Smallest batch worth splitting the queue for (see startBatch): below it, a batch's fixed cost dominates. */
const MIN_SPLIT = 32;
/**
 * Tries of the optimistic path (unlocked read or remembered rows, one validated write) before a batch falls back to
 * locking first. A retry means another writer changed what the batch read: another process, applyInTx, another ledger
 * instance. A retry uses the changed rows named by the error; the last one reads everything afresh; locking first
 * always makes progress.
 */
const OPTIMISTIC_ATTEMPTS = 3;
/** Recomputations of one batch because one before it failed (each such failure is bounded by its own attempts). */
const MAX_RECOMPUTES = 16;
/**
 * Accounts (and pending transfers) whose last committed state this process knows, so that a batch needs no read round
 * trip. Only a guess: ledger_apply_batch checks every row's version under lock, so a stale entry costs a retry, never a
 * wrong balance. Bounded: the oldest entries go first.
 */
const MAX_REMEMBERED_ACCOUNTS = 100_000;
const MAX_REMEMBERED_PENDINGS = 50_000;
/**
 * SQLSTATEs of a batch that lost a race: ledger_apply_batch's validation (HL001), a new id inserted first (23505), a
 * shared account's credits overflowing with another batch's (22003; the retry computes the overflow as a result).
 */
const LOST_RACE_STATES = new Set(['HL001', '23505', '22003']);

function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.set(key, value);
  // Eviction takes the oldest first insertion (Map order); a busy entry evicted is read again once, nothing worse.
  if (map.size > max) map.delete(map.keys().next().value!);
}

/** A copy as of its current values: read at its history_seq now, nothing changed since. */
function copyAccount(a: AccountState): AccountState {
  return accountStateOf(a);
}

function copyPending(p: PendingRow): PendingRow {
  return { ...p, readState: p.state, isNew: false, changed: false };
}

export function createLedger(options: LedgerOptions): Ledger {
  const { db, clock } = options;
  const requested: BatchOptions = { ...DEFAULT_BATCH_OPTIONS, ...options.batch };
  const batch: BatchOptions = { ...requested, maxInFlight: db.engine === 'pglite' ? 1 : Math.max(1, requested.maxInFlight) };
  // Pipelining needs a real connection; PGlite runs statements one at a time anyway.
  const pipelined = db.engine === 'postgres';
  const rememberRows = requested.rememberRows !== false;
  // Batches carry many callers' transfers: they must never run inside one caller's transaction. Whatever async context
  // schedules a batch (a timer set by some submit), it runs in the context the ledger was created in.
  const detached = AsyncResource.bind(<T>(fn: () => Promise<T>): Promise<T> => fn());

  const accountsKnown = new Map<string, AccountState>();
  const pendingsKnown = new Map<string, PendingRow>();

  /** Remembers a batch's rows as committed: the batch is done with them. */
  function rememberState(state: BatchState): void {
    if (!rememberRows) return;
    for (const a of state.accounts.values()) {
      a.readSeq = a.historySeq;
      a.readDebitsPendingMinor = a.debitsPendingMinor;
      a.readDebitsPostedMinor = a.debitsPostedMinor;
      a.readCreditsPendingMinor = a.creditsPendingMinor;
      a.readCreditsPostedMinor = a.creditsPostedMinor;
      a.changed = false;
      remember(accountsKnown, a.id, a, MAX_REMEMBERED_ACCOUNTS);
    }
    for (const p of state.pendings.values()) remember(pendingsKnown, p.transferId, copyPending(p), MAX_REMEMBERED_PENDINGS);
  }

  /**
   * Remembers a computed batch's rows before its write commits, for the next batch to build on (see runBatch). Copies:
   * the batch still needs its own rows' read versions. Returns the copies remembered.
   */
  function rememberComputed(state: BatchState): Map<string, AccountState> {
    const copies = new Map<string, AccountState>();
    if (!rememberRows) return copies;
    for (const a of state.accounts.values()) {
      const copy = copyAccount(a);
      copies.set(a.id, copy);
      remember(accountsKnown, a.id, copy, MAX_REMEMBERED_ACCOUNTS);
    }
    for (const p of state.pendings.values()) remember(pendingsKnown, p.transferId, copyPending(p), MAX_REMEMBERED_PENDINGS);
    return copies;
  }

  /** Forgets rows another writer may have changed (or that a failed batch had changed in memory only). */
  function forgetState(state: BatchState): void {
    for (const id of state.accounts.keys()) accountsKnown.delete(id);
    for (const id of state.pendings.keys()) pendingsKnown.delete(id);
  }

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

  async function runBatchTx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    // Every statement of a batch is a key lookup (ids, unnest joins on primary keys): an index plan is always right at
    // scale. Without this, a freshly grown table (ledger_transfers between autoanalyze runs) or a bench-sized accounts
    // table gets sequential scans whose cost grows with the table, on every batch. jit off: the disabled-seqscan cost
    // penalty would otherwise push plan costs over jit_above_cost. Local to the batch's own transaction (applyInTx, in
    // a caller's transaction, leaves the caller's settings alone).
    const withSettings = async (tx: Tx): Promise<T> => {
      const settings = tx.query(`select set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)`);
      if (!pipelined) await settings;
      // Pipelined ahead of the batch's first statement on PostgreSQL: no extra round trip.
      const [, result] = await Promise.all([settings, fn(tx)]);
      return result;
    };
    for (let attempt = 0; ; attempt++) {
      try {
        return await db.transaction(withSettings, { isolation: 'read committed', retries: 5, detached: true });
      } catch (error) {
        // 23505: a concurrent batch committed one of our new transfer ids first; the retry finds it and replays it.
        if (sqlState(error) !== '23505' || attempt >= UNIQUE_VIOLATION_RETRIES) throw error;
      }
    }
  }

  /**
   * The rows a batch is computed from, without locks. `fresh`: everything read now, transfer ids included. Otherwise
   * remembered rows where known, the rest read now, and transfer ids assumed new (ledger_apply_batch checks).
   */
  async function gatherState(ids: ReturnType<typeof referencedIds>, fresh: boolean): Promise<BatchState> {
    if (fresh || !rememberRows) {
      const state = await readBatchState(db, ids);
      for (const a of state.accounts.values()) remember(accountsKnown, a.id, copyAccount(a), MAX_REMEMBERED_ACCOUNTS);
      for (const p of state.pendings.values()) remember(pendingsKnown, p.transferId, copyPending(p), MAX_REMEMBERED_PENDINGS);
      return state;
    }
    const accounts = new Map<string, AccountState>();
    const pendings = new Map<string, PendingRow>();
    const missing = { accountIds: new Set<string>(), pendingIds: new Set<string>(), transferIds: new Set<string>() };
    for (const id of ids.pendingIds) {
      const known = pendingsKnown.get(id);
      if (known === undefined) {
        missing.pendingIds.add(id);
        continue;
      }
      pendings.set(id, copyPending(known));
      ids.accountIds.add(known.debitAccountId);
      ids.accountIds.add(known.creditAccountId);
    }
    for (const id of ids.accountIds) {
      const known = accountsKnown.get(id);
      if (known === undefined) missing.accountIds.add(id);
      else accounts.set(id, copyAccount(known));
    }
    if (missing.accountIds.size > 0 || missing.pendingIds.size > 0) {
      const loaded = await readBatchState(db, missing);
      for (const a of loaded.accounts.values()) {
        remember(accountsKnown, a.id, copyAccount(a), MAX_REMEMBERED_ACCOUNTS);
        accounts.set(a.id, a);
      }
      for (const p of loaded.pendings.values()) {
        remember(pendingsKnown, p.transferId, copyPending(p), MAX_REMEMBERED_PENDINGS);
        pendings.set(p.transferId, p);
      }
    }
    return { accounts, pendings, existing: new Map() };
  }

  /**
   * Refreshes remembered accounts from ledger_apply_batch's error detail: the accounts that had changed, as they were
   * then. false when the detail is missing (a pending or an id changed): the retry must read everything afresh.
   */
  function refreshFromConflict(error: unknown): boolean {
    const detail = (error as { detail?: unknown }).detail;
    if (typeof detail !== 'string' || !rememberRows) return false;
    let rows: unknown;
    try {
      rows = JSON.parse(detail);
    } catch {
      return false;
    }
    if (!Array.isArray(rows)) return false;
    for (const r of rows as [string, string, boolean, boolean, boolean, string | null, string, string, string, string, string][]) {
      const state = accountStateOf({
        id: r[0],
        currency: r[1],
        closed: r[2],
        debitsMustNotExceedCredits: r[3],
        creditsMustNotExceedDebits: r[4],
        creditLimitMinor: r[5] === null ? null : BigInt(r[5]),
        debitsPendingMinor: BigInt(r[6]),
        debitsPostedMinor: BigInt(r[7]),
        creditsPendingMinor: BigInt(r[8]),
        creditsPostedMinor: BigInt(r[9]),
        historySeq: BigInt(r[10]),
      });
      remember(accountsKnown, state.id, state, MAX_REMEMBERED_ACCOUNTS);
    }
    return true;
  }

  /**
   * Batches are computed in the order they start and written one after the other (a chain of turns): a batch is
   * computed while the one before it is being written, on top of that one's result (remembered as soon as it is
   * computed), and sent behind it on the writer connection (PostgreSQL; on PGlite when that one is done). So a hot
   * account does not stop the next batch from being prepared, the database executes this process's batches in order
   * (no lock waits between them, no validation lost to a batch that overtook another), and one backend at a time
   * leaves the other core to this process. If a batch loses a race, `epoch` moves: a batch after it not yet sent is
   * computed again once it is written; one already sent is refused by ledger_apply_batch wherever it built on it (every
   * value it read is compared, migration 0008) and computed again.
   */
  let computedTail: Promise<void> = Promise.resolve();
  const counters = { batchesWritten: 0, lostRaces: 0, sentBehind: 0 };
  let sentTail: Promise<void> = Promise.resolve();
  let writtenTail: Promise<void> = Promise.resolve();
  let epoch = 0;

  /** Applies a shared account's committed values (its values just before the batch, plus the batch's changes). */
  function settleShared(state: BatchState, bases: ReadonlyMap<string, SharedBase>, before: ReadonlyMap<string, SharedBase>): void {
    for (const [id, base] of bases) {
      const a = state.accounts.get(id)!;
      const was = before.get(id);
      if (was === undefined) {
        state.accounts.delete(id);
        accountsKnown.delete(id);
        continue;
      }
      a.historySeq = was.seq + a.historySeq - base.seq;
      a.debitsPendingMinor = was.debitsPendingMinor + a.debitsPendingMinor - base.debitsPendingMinor;
      a.debitsPostedMinor = was.debitsPostedMinor + a.debitsPostedMinor - base.debitsPostedMinor;
      a.creditsPendingMinor = was.creditsPendingMinor + a.creditsPendingMinor - base.creditsPendingMinor;
      a.creditsPostedMinor = was.creditsPostedMinor + a.creditsPostedMinor - base.creditsPostedMinor;
    }
  }

  async function runBatch(groups: Op[][], shared: ReadonlySet<string>): Promise<TransferResult[][]> {
    const computeTurn = computedTail;
    const sendTurn = sentTail;
    const writeTurn = writtenTail;
    let signalComputed!: () => void;
    let signalSent!: () => void;
    let signalWritten!: () => void;
    computedTail = new Promise((resolve) => (signalComputed = resolve));
    sentTail = new Promise((resolve) => (signalSent = resolve));
    writtenTail = new Promise((resolve) => (signalWritten = resolve));
    let myTurn = false;
    // Whether the batch before this one has been written (for the sentBehind counter only).
    let previousWritten = false;
    void writeTurn.then(() => (previousWritten = true));
    try {
      await computeTurn;
      if (!rememberRows) {
        // Nothing remembered to build on: read only once the batch before is written.
        await writeTurn;
        myTurn = true;
      }
      const ops = groups.flat();
      let fresh = false;
      let previous: BatchState | null = null;
      // Bounded: OPTIMISTIC_ATTEMPTS tries, each computed at most twice (once more when the batch before it failed).
      for (let attempt = 0, recomputed = 0; attempt < OPTIMISTIC_ATTEMPTS; ) {
        // What this batch remembered from a previous try is void: read it again rather than build on it.
        if (previous !== null) forgetState(previous);
        const ids = referencedIds(ops);
        const state = await gatherState(ids, fresh);
        previous = state;
        // Shared accounts' values as read: the batch writes its changes to them relative to these.
        const bases = new Map<string, SharedBase>();
        for (const id of shared) {
          const a = state.accounts.get(id);
          if (a !== undefined) bases.set(id, { seq: a.historySeq, debitsPendingMinor: a.debitsPendingMinor, debitsPostedMinor: a.debitsPostedMinor, creditsPendingMinor: a.creditsPendingMinor, creditsPostedMinor: a.creditsPostedMinor });
        }
        const nowMs = clock.nowMs();
        const computedEpoch = epoch;
        const { results, writes } = computeBatch(groups, state, nowMs);
        // Ids that write nothing but whose outcome assumed them new: state.existing now holds the ids known from the
        // database, created by the batch and recorded as failures by it.
        const unwritten: string[] = [];
        for (const id of ids.transferIds) if (!state.existing.has(id)) unwritten.push(id);
        // Only shape errors: nothing read, nothing to check or write.
        if (state.accounts.size === 0 && state.pendings.size === 0 && ids.transferIds.size === 0) return results;
        // Built now, while the batch before it is being written: off the critical path.
        const params = batchParams(state, writes, unwritten, bases, new Date(nowMs));
        const remembered = rememberComputed(state);
        signalComputed();
        let sending: Promise<Map<string, SharedBase>>;
        let sessionUsed: Promise<Session>;
        if (pipelined) {
          // Sent as soon as the batch before it has been sent, on the same connection: the database runs them in order,
          // this one the moment the one before commits, with no round trip between them. A batch computed on one that
          // then fails is never sent after that one's retry (see above): a failure moves `epoch`, and a batch that sees
          // it moved waits for the one before it to be written and is computed again.
          if (!myTurn) await sendTurn;
          sessionUsed = writer();
          const session = await sessionUsed;
          if (epoch !== computedEpoch) {
            if (recomputed++ >= MAX_RECOMPUTES) throw new Error('ledger: a batch was recomputed too many times');
            if (!myTurn) {
              await writeTurn;
              myTurn = true;
            }
            epoch++;
            continue;
          }
          sending = applyBatch(session, params);
          if (!previousWritten) counters.sentBehind++;
          // Its failure is handled below, once the batch before it is written (not an unhandled rejection meanwhile).
          sending.catch(() => undefined);
          signalSent();
          if (!myTurn) {
            await writeTurn;
            myTurn = true;
          }
        } else {
          if (!myTurn) {
            await writeTurn;
            myTurn = true;
          }
          if (epoch !== computedEpoch && recomputed++ === 0) {
            // Whatever was computed on top of this batch's first result is void too.
            epoch++;
            continue;
          }
          sessionUsed = writer();
          sending = applyBatch(await sessionUsed, params);
        }
        let before: Map<string, SharedBase>;
        try {
          before = await sending;
        } catch (error) {
          epoch++;
          forgetState(state);
          previous = null;
          if (!LOST_RACE_STATES.has(sqlState(error) ?? '')) {
            void dropWriter(sessionUsed);
            throw error;
          }
          counters.lostRaces++;
          attempt++;
          // The last optimistic try reads everything afresh; so does one after a conflict the error could not name.
          fresh = !refreshFromConflict(error) || attempt === OPTIMISTIC_ATTEMPTS - 1;
          continue;
        }
        counters.batchesWritten++;
        if (bases.size > 0) {
          settleShared(state, bases, before);
          // Unless a later batch has built on it already (it then knows better once it commits).
          for (const id of bases.keys()) {
            const a = state.accounts.get(id);
            if (a !== undefined && rememberRows && accountsKnown.get(id) === remembered.get(id)) remember(accountsKnown, id, copyAccount(a), MAX_REMEMBERED_ACCOUNTS);
          }
        }
        return results;
      }
      const { results, state } = await runBatchTx((tx) => applyOps(tx, groups));
      rememberState(state);
      return results;
    } finally {
      signalComputed();
      signalSent();
      // A batch that never got its turn (it threw before) must still wait for it before passing it on.
      if (myTurn) signalWritten();
      else void writeTurn.then(signalWritten);
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // The batcher. Up to maxInFlight batches are alive at once (one being written, the next computed on top of it);
  // what is queued when slots are free is split between them so that they move through the pipeline one behind the
  // other. A call touching a transfer id of a running batch (the same id again, a pending being posted) waits for
  // the next batch, and everything behind it that touches the same keys waits too (per-account arrival order). The
  // database remains the guarantee (other processes, remembered rows gone stale).
  const queue: Pending[] = [];
  let queuedCount = 0;
  let inFlightCount = 0;
  // Transfer ids of running batches (a new transfer, a pending being posted or voided): a call touching one waits
  // until that batch is done. Accounts do not make calls wait: batches are computed one on top of the other.
  const busyTransfers = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | null = null;
  /** A start is due at the end of this turn of the event loop. */
  let starting = false;
  // The batch writes go to one connection of their own (db.session()), in order: each call is sent behind the one
  // before it (see runBatch), to a backend that just ran the same function (warm caches, generic plans already made),
  // instead of to whichever pooled connection has idled longest.
  let writerSession: Promise<Session> | null = null;
  const writer = (): Promise<Session> => {
    writerSession ??= db.session().catch((error: unknown) => {
      writerSession = null;
      throw error;
    });
    return writerSession;
  };
  /**
   * Gives the connection a batch used back after an error (it may be broken; the next write takes a fresh one). Only
   * if it is still the writer's: batches sent behind the one that failed fail with it, and must not drop the fresh
   * connection a later batch already took.
   */
  const dropWriter = async (used: Promise<Session>): Promise<void> => {
    if (writerSession !== used) return;
    writerSession = null;
    await used.then((s) => s.release()).catch(() => undefined);
  };
  let closed = false;
  /** performance.now() when the last batch finished: what was queued before then waited behind it (see schedule). */
  let lastBatchDoneAt = -Infinity;

  /**
   * Starts batches while a slot is free and a full batch is queued, or the ledger is busy (a batch in flight, or the
   * oldest queued transfer arrived before the last batch finished), or the oldest queued transfer has waited maxWaitMs;
   * otherwise arms a timer for that moment. Waiting for companions only pays when the ledger is idle (a burst arriving
   * over a few turns goes in one batch). Behind a running batch it only delays the next: on PostgreSQL that one would
   * be sent behind the running one anyway, and waiting left the writer idle between them (a 1 ms wait on every batch
   * of a closed loop: the writer connection idle about a tenth of the time, measured by its wait events). The start
   * itself comes at the end of the current turn of the event loop (setImmediate): the callers a finished batch resumes
   * submit again one after the other in that turn, and starting at the first of them would send a batch of one and
   * make the rest wait a whole round.
   */
  function schedule(): void {
    if (inFlightCount >= batch.maxInFlight || queue.length === 0 || starting) return;
    const oldestAt = queue[0]!.queuedAt;
    const waitedMs = performance.now() - oldestAt;
    if (queuedCount >= batch.maxBatchSize || waitedMs >= batch.maxWaitMs || inFlightCount > 0 || oldestAt <= lastBatchDoneAt) {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      starting = true;
      setImmediate(() => {
        starting = false;
        startBatches();
      });
      return;
    }
    timer ??= setTimeout(() => {
      timer = null;
      schedule();
    }, batch.maxWaitMs - waitedMs);
  }

  function startBatches(): void {
    // Bounded: each round either starts a batch (at most maxInFlight) or stops.
    while (inFlightCount < batch.maxInFlight && queue.length > 0 && startBatch()) {
      /* keep starting */
    }
  }

  /**
   * An account that batches only crediting it may share with other writers (other processes): known to this process,
   * open, no limit on its credits. Then no transfer's outcome depends on its balances (see ledger_apply_batch).
   */
  function shareable(accountId: string): boolean {
    const known = accountsKnown.get(accountId);
    return known !== undefined && !known.closed && !known.creditsMustNotExceedDebits;
  }

  function conflicts(p: Pending, blockedAccounts: Set<string>, blockedTransfers: Set<string>): boolean {
    if (blockedAccounts.size > 0) {
      for (const k of p.accounts) if (blockedAccounts.has(k)) return true;
      for (const k of p.credited) if (blockedAccounts.has(k)) return true;
    }
    for (const k of p.transfers) if (busyTransfers.has(k) || blockedTransfers.has(k)) return true;
    return false;
  }

  /** Takes the next conflict-free batch off the queue and runs it; false when nothing could be taken. */
  function startBatch(): boolean {
    const taken: Pending[] = [];
    const kept: Pending[] = [];
    const blockedAccounts = new Set<string>();
    const blockedTransfers = new Set<string>();
    let count = 0;
    let skipped = 0;
    let scanned = 0;
    // With several slots free, what is queued is split between them (not below MIN_SPLIT transfers): the batches then
    // move through the pipeline one behind the other, one computed while the other is written, instead of all the
    // callers waiting for one batch at a time.
    const free = Math.max(1, batch.maxInFlight - inFlightCount);
    const limit = Math.min(batch.maxBatchSize, Math.max(MIN_SPLIT, Math.ceil(queuedCount / free)));
    // Bounded scan: a batch's worth of skipped (conflicting) transfers at most. Behind a backlog, scanning the whole
    // queue for every batch would cost more the longer the queue, and the ledger would never catch up.
    for (; scanned < queue.length && count < limit && skipped < batch.maxBatchSize; scanned++) {
      const p = queue[scanned]!;
      // A call larger than the limit goes alone (its transfers stay together).
      if ((count > 0 && count + p.ops.length > limit) || conflicts(p, blockedAccounts, blockedTransfers)) {
        // Whatever touches the same keys later in the queue must wait too: per-account arrival order.
        for (const k of p.accounts) blockedAccounts.add(k);
        for (const k of p.credited) blockedAccounts.add(k);
        for (const k of p.transfers) blockedTransfers.add(k);
        kept.push(p);
        skipped += p.ops.length;
        continue;
      }
      taken.push(p);
      count += p.ops.length;
    }
    if (taken.length === 0) return false;
    queue.splice(0, scanned, ...kept);
    queuedCount -= count;
    // An account several of the batch's calls only credit (a hot merchant or settlement account) is shared: written as
    // changes, so that other processes crediting it too do not make the batch fail validation.
    const debited = new Set<string>();
    const credits = new Map<string, number>();
    const heldTransfers: string[] = [];
    for (const p of taken) {
      for (const k of p.accounts) debited.add(k);
      for (const k of p.credited) credits.set(k, (credits.get(k) ?? 0) + 1);
      for (const k of p.transfers) {
        if (busyTransfers.has(k)) continue;
        busyTransfers.add(k);
        heldTransfers.push(k);
      }
    }
    const shared = new Set<string>();
    for (const [k, n] of credits) if (n >= 2 && !debited.has(k) && shareable(k)) shared.add(k);
    inFlightCount++;
    const run: Promise<void> = detached(() => runBatch(taken.map((p) => p.ops), shared))
      .then(
        (results) => taken.forEach((p, i) => p.resolve(results[i]!)),
        (error: unknown) => taken.forEach((p) => p.reject(error)),
      )
      .finally(() => {
        lastBatchDoneAt = performance.now();
        for (const k of heldTransfers) busyTransfers.delete(k);
        inFlightCount--;
        inFlight.delete(run);
        schedule();
      });
    inFlight.add(run);
    return true;
  }

  function busy(n: number): TransferResult[] {
    return Array.from({ length: n }, () => err('ledger_busy', 'the ledger queue is full; retry later', { maxQueue: batch.maxQueue }));
  }

  async function submit(transfers: readonly TransferInput[]): Promise<TransferResult[]> {
    if (closed) throw new Error('ledger: submit after close()');
    if (transfers.length === 0) return [];
    if (queuedCount + transfers.length > batch.maxQueue) return busy(transfers.length);
    const ops = toOps(transfers);
    const accounts: string[] = [];
    let credited: string[] = [];
    const transferIds: string[] = [];
    for (const op of ops) {
      transferIds.push(op.id);
      if (op.debitAccountId !== null) accounts.push(op.debitAccountId);
      if (op.creditAccountId !== null) credited.push(op.creditAccountId);
      if (op.pendingId !== null) {
        transferIds.push(op.pendingId);
        // A post or void touches the pending's accounts: known here when the pending is remembered.
        const known = pendingsKnown.get(op.pendingId);
        if (known !== undefined) accounts.push(known.debitAccountId, known.creditAccountId);
      }
    }
    // An account this call also debits is not only credited.
    if (accounts.length > 0 && credited.length > 0 && (ops.length > 1 || accounts.includes(credited[0]!))) credited = credited.filter((k) => !accounts.includes(k));
    return new Promise<TransferResult[]>((resolve, reject) => {
      queue.push({ ops, accounts, credited, transfers: transferIds, queuedAt: performance.now(), resolve, reject });
      queuedCount += ops.length;
      schedule();
    });
  }

  async function applyInTx(tx: Tx, transfers: readonly TransferInput[]): Promise<TransferResult[]> {
    if (transfers.length === 0) return [];
    const { results, state } = await applyOps(tx, [toOps(transfers)]);
    // The caller's transaction may still commit or roll back: what this process remembers of these rows is now a guess
    // that would fail validation (and cost a retry) either way.
    forgetState(state);
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
      accountsKnown.delete(id);
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
    // The batching engine checks limits against the account state it remembers: forget it, so its next batch reads it.
    accountsKnown.delete(id);
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
      const done = await runBatchTx((tx) =>
        applyOps(
          tx,
          [],
          due.map((d) => d.transfer_id),
        ),
      );
      rememberState(done.state);
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

  async function close(closeOptions: { deadlineMs?: number } = {}): Promise<void> {
    closed = true;
    const deadlineMs = closeOptions.deadlineMs ?? CLOSE_DEADLINE_MS;
    const deadline = performance.now() + deadlineMs;
    // Bounded: each round applies at least one queued batch, and the whole is bounded by the deadline.
    if (timer !== null) clearTimeout(timer);
    timer = null;
    while (queue.length > 0 || inFlight.size > 0) {
      startBatches();
      // Nothing running means nothing could start: cannot happen (a conflict needs a running batch), but never hang.
      if (inFlight.size === 0) break;
      const left = deadline - performance.now();
      if (left <= 0) break;
      let wait: NodeJS.Timeout | undefined;
      await Promise.race([...inFlight, new Promise<void>((resolve) => (wait = setTimeout(resolve, left)))]);
      clearTimeout(wait);
    }
    // Past the deadline (the database is down or hung): what never started is answered rather than left waiting.
    for (const p of queue.splice(0)) p.reject(new DatabaseDeadlineError('the ledger before it closed', deadlineMs));
    queuedCount = 0;
    if (writerSession !== null) await dropWriter(writerSession);
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
    submit,
    applyInTx,
    getTransfer,
    history,
    expirePending,
    checkInvariants,
    stats: () => ({ ...counters }),
    close,
  };
}

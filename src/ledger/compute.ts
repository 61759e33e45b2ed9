import { hash } from 'node:crypto';
import { MAX_AMOUNT_MINOR } from '../platform/money.ts';
import { err, ok } from '../platform/result.ts';
import {
  MAX_METADATA_BYTES,
  MAX_PURPOSE_LENGTH,
  MAX_TIMEOUT_MS,
  MAX_TRANSFER_ID_LENGTH,
  RECORDED_FAILURE_CODES,
  type LedgerError,
  type LedgerErrorCode,
  type PendingState,
  type Transfer,
  type TransferInput,
  type TransferKind,
  type TransferResult,
} from './types.ts';

/**
 * The pure heart of the ledger: given the rows a batch locked, decide every transfer's outcome in arrival order and
 * produce the rows to write. No I/O here, so the same code serves applyInTx and expiry.
 */

/** A transfer after shape validation, or the shape error it failed with. */
export interface Op {
  readonly id: string;
  readonly kind: TransferKind;
  readonly debitAccountId: string | null;
  readonly creditAccountId: string | null;
  readonly amountMinor: bigint | null;
  readonly currency: string | null;
  readonly purpose: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly metadataJson: string;
  readonly linked: boolean;
  readonly pendingId: string | null;
  readonly timeoutMs: number | null;
  readonly fingerprint: string;
  readonly shapeError: LedgerError | null;
  /** Set on the last member of an applyInTx call's chain when it is still linked: TigerBeetle's "chain open". */
  readonly chainOpen: boolean;
}

export interface AccountState {
  readonly id: string;
  readonly currency: string;
  readonly closed: boolean;
  readonly debitsMustNotExceedCredits: boolean;
  readonly creditsMustNotExceedDebits: boolean;
  readonly creditLimitMinor: bigint | null;
  debitsPendingMinor: bigint;
  debitsPostedMinor: bigint;
  creditsPendingMinor: bigint;
  creditsPostedMinor: bigint;
  historySeq: bigint;
  changed: boolean;
}

export interface PendingRow {
  readonly transferId: string;
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly expiresAtMs: number | null;
  state: PendingState;
  resolvedBy: string | null;
  /** true when inserted by this batch (insert, not update). */
  readonly isNew: boolean;
  changed: boolean;
}

export type Existing =
  | { readonly type: 'transfer'; readonly fingerprint: string; readonly transfer: Transfer }
  | { readonly type: 'failure'; readonly fingerprint: string; readonly code: LedgerErrorCode };

export interface HistoryRow {
  readonly accountId: string;
  readonly seq: bigint;
  readonly transferId: string;
  readonly event: TransferKind | 'expired';
  readonly side: 'debit' | 'credit';
  readonly amountMinor: bigint;
  readonly debitsPendingMinor: bigint;
  readonly debitsPostedMinor: bigint;
  readonly creditsPendingMinor: bigint;
  readonly creditsPostedMinor: bigint;
}

export interface NewTransferRow {
  readonly transfer: Transfer;
  readonly fingerprint: string;
  /** The metadata as stored (JSON). */
  readonly metadataJson: string;
  /** Each side's statement entry (seq and balances after): stored on the transfer row itself, not as history rows. */
  readonly debitSide: HistoryRow;
  readonly creditSide: HistoryRow;
}

export interface BatchState {
  readonly accounts: Map<string, AccountState>;
  readonly pendings: Map<string, PendingRow>;
  readonly existing: Map<string, Existing>;
}

export interface BatchWrites {
  readonly transfers: NewTransferRow[];
  /** Statement entries of events without a transfer row of their own (expiry). */
  readonly history: HistoryRow[];
  readonly failures: { id: string; code: LedgerErrorCode; fingerprint: string }[];
}

// ---------------------------------------------------------------------------------------------------------------
// Shape validation

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

const EMPTY_METADATA: Readonly<Record<string, unknown>> = Object.freeze({});

function shapeFail(id: string, code: LedgerErrorCode, message: string, details?: Record<string, unknown>): Op {
  const failed = err(code, message, details).error;
  return {
    id,
    kind: 'single_phase',
    debitAccountId: null,
    creditAccountId: null,
    amountMinor: null,
    currency: null,
    purpose: '',
    metadata: EMPTY_METADATA,
    metadataJson: '{}',
    linked: false,
    pendingId: null,
    timeoutMs: null,
    fingerprint: '',
    shapeError: failed,
    chainOpen: false,
  };
}

function checkAmount(id: string, value: unknown): Op | bigint {
  if (typeof value !== 'bigint') return shapeFail(id, 'invalid_transfer', 'amountMinor must be a bigint', { field: 'amountMinor' });
  if (value <= 0n) return shapeFail(id, 'amount_not_positive', 'amountMinor must be greater than zero');
  if (value > MAX_AMOUNT_MINOR) return shapeFail(id, 'amount_too_large', 'amountMinor must be at most 2^63−1');
  return value;
}

/**
 * A shape failure with the call's link flags. A module-level function, not a closure in toOp: a function declared in
 * toOp would be created (and named, under tsx) on every call, though only the failure paths use it.
 */
function withLink(op: Op, linked: boolean, chainOpen: boolean): Op {
  return { ...op, linked, chainOpen };
}

/** Validates one input's shape (no ledger state needed) and computes its fingerprint. */
export function toOp(input: TransferInput, chainOpen: boolean): Op {
  const raw = input as unknown as Record<string, unknown>;
  const id = typeof raw.id === 'string' ? raw.id : '';
  const linked = raw.linked === true;
  if (id.length < 1 || id.length > MAX_TRANSFER_ID_LENGTH) {
    return withLink(shapeFail(id, 'invalid_transfer', `id must be 1–${MAX_TRANSFER_ID_LENGTH} characters`, { field: 'id' }), linked, chainOpen);
  }
  const kind = (raw.kind ?? 'single_phase') as TransferKind;
  if (kind !== 'single_phase' && kind !== 'pending' && kind !== 'post_pending' && kind !== 'void_pending') {
    return withLink(shapeFail(id, 'invalid_transfer', 'kind must be single_phase, pending, post_pending or void_pending', { field: 'kind' }), linked, chainOpen);
  }
  if (typeof raw.purpose !== 'string' || raw.purpose.length < 1 || raw.purpose.length > MAX_PURPOSE_LENGTH) {
    return withLink(shapeFail(id, 'invalid_transfer', `purpose must be 1–${MAX_PURPOSE_LENGTH} characters`, { field: 'purpose' }), linked, chainOpen);
  }
  const purpose = raw.purpose;
  let metadata: Readonly<Record<string, unknown>> = EMPTY_METADATA;
  let metadataJson = '{}';
  if (raw.metadata !== undefined) {
    if (!isPlainObject(raw.metadata)) return withLink(shapeFail(id, 'invalid_transfer', 'metadata must be a JSON object', { field: 'metadata' }), linked, chainOpen);
    metadata = raw.metadata;
    metadataJson = canonicalJson(metadata);
    if (Buffer.byteLength(metadataJson) > MAX_METADATA_BYTES) {
      return withLink(shapeFail(id, 'metadata_too_large', `metadata must be at most ${MAX_METADATA_BYTES} bytes`, { maxBytes: MAX_METADATA_BYTES }), linked, chainOpen);
    }
  }
  let debitAccountId: string | null = null;
  let creditAccountId: string | null = null;
  let amountMinor: bigint | null = null;
  let currency: string | null = null;
  let pendingId: string | null = null;
  let timeoutMs: number | null = null;
  if (kind === 'single_phase' || kind === 'pending') {
    if (typeof raw.debitAccountId !== 'string' || typeof raw.creditAccountId !== 'string') {
      return withLink(shapeFail(id, 'invalid_transfer', 'debitAccountId and creditAccountId are required', { field: 'debitAccountId' }), linked, chainOpen);
    }
    debitAccountId = raw.debitAccountId;
    creditAccountId = raw.creditAccountId;
    const amount = checkAmount(id, raw.amountMinor);
    if (typeof amount !== 'bigint') return withLink(amount, linked, chainOpen);
    amountMinor = amount;
    if (typeof raw.currency !== 'string' || !/^[A-Z]{3}$/.test(raw.currency)) {
      return withLink(shapeFail(id, 'invalid_transfer', 'currency must be an ISO 4217 code', { field: 'currency' }), linked, chainOpen);
    }
    currency = raw.currency;
    if (debitAccountId === creditAccountId) return withLink(shapeFail(id, 'same_account', 'debit and credit accounts must differ'), linked, chainOpen);
    if (kind === 'pending') {
      const timeout = raw.timeoutMs ?? 0;
      if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout < 0 || timeout > MAX_TIMEOUT_MS) {
        return withLink(shapeFail(id, 'invalid_transfer', `timeoutMs must be an integer in 0…${MAX_TIMEOUT_MS}`, { field: 'timeoutMs' }), linked, chainOpen);
      }
      timeoutMs = timeout;
    }
  } else {
    if (typeof raw.pendingId !== 'string' || raw.pendingId.length < 1 || raw.pendingId.length > MAX_TRANSFER_ID_LENGTH) {
      return withLink(shapeFail(id, 'invalid_transfer', 'pendingId is required', { field: 'pendingId' }), linked, chainOpen);
    }
    pendingId = raw.pendingId;
    if (kind === 'post_pending' && raw.amountMinor !== undefined) {
      const amount = checkAmount(id, raw.amountMinor);
      if (typeof amount !== 'bigint') return withLink(amount, linked, chainOpen);
      amountMinor = amount;
    }
    if (kind === 'void_pending' && raw.amountMinor !== undefined) {
      return withLink(shapeFail(id, 'invalid_transfer', 'void_pending takes no amountMinor', { field: 'amountMinor' }), linked, chainOpen);
    }
  }
  // One-shot hash (same digest as createHash().update().digest()): no Hash object per transfer.
  const fingerprint = hash(
    'sha256',
    `${kind}\u0000${debitAccountId ?? ''}\u0000${creditAccountId ?? ''}\u0000${amountMinor?.toString() ?? ''}\u0000${currency ?? ''}\u0000${purpose}\u0000${metadataJson}\u0000${linked ? '1' : '0'}\u0000${pendingId ?? ''}\u0000${timeoutMs?.toString() ?? ''}`,
    'base64url',
  ).slice(0, 32);
  return { id, kind, debitAccountId, creditAccountId, amountMinor, currency, purpose, metadata, metadataJson, linked, pendingId, timeoutMs, fingerprint, shapeError: null, chainOpen };
}

/** Turns one applyInTx call into ops, marking a chain left open by its last transfer. */
export function toOps(inputs: readonly TransferInput[]): Op[] {
  return inputs.map((input, i) => toOp(input, i === inputs.length - 1 && (input as { linked?: unknown }).linked === true));
}

/** Accounts and pending transfers a list of ops needs locked (pendings' own accounts are added once loaded). */
export function referencedIds(ops: readonly Op[]): { accountIds: Set<string>; pendingIds: Set<string>; transferIds: Set<string> } {
  const accountIds = new Set<string>();
  const pendingIds = new Set<string>();
  const transferIds = new Set<string>();
  for (const op of ops) {
    if (op.shapeError !== null) continue;
    transferIds.add(op.id);
    if (op.debitAccountId !== null) accountIds.add(op.debitAccountId);
    if (op.creditAccountId !== null) accountIds.add(op.creditAccountId);
    if (op.pendingId !== null) pendingIds.add(op.pendingId);
  }
  return { accountIds, pendingIds, transferIds };
}

// ---------------------------------------------------------------------------------------------------------------
// Applying ops to the in-memory state

type Undo = () => void;

interface Undoable {
  account(acc: AccountState): void;
  pending(row: PendingRow): void;
  push(undo: Undo): void;
}

/** For a chain of one transfer: nothing ever needs undoing (see computeBatch). */
const NO_JOURNAL: Undoable = { account: () => undefined, pending: () => undefined, push: () => undefined };

class Journal implements Undoable {
  private undos: Undo[] = [];
  private touchedAccounts = new Set<AccountState>();
  private touchedPendings = new Set<PendingRow>();

  account(acc: AccountState): void {
    if (this.touchedAccounts.has(acc)) return;
    this.touchedAccounts.add(acc);
    const saved = { dp: acc.debitsPendingMinor, dpo: acc.debitsPostedMinor, cp: acc.creditsPendingMinor, cpo: acc.creditsPostedMinor, seq: acc.historySeq, changed: acc.changed };
    this.undos.push(() => {
      acc.debitsPendingMinor = saved.dp;
      acc.debitsPostedMinor = saved.dpo;
      acc.creditsPendingMinor = saved.cp;
      acc.creditsPostedMinor = saved.cpo;
      acc.historySeq = saved.seq;
      acc.changed = saved.changed;
    });
  }

  pending(row: PendingRow): void {
    if (this.touchedPendings.has(row)) return;
    this.touchedPendings.add(row);
    const saved = { state: row.state, resolvedBy: row.resolvedBy, changed: row.changed };
    this.undos.push(() => {
      row.state = saved.state;
      row.resolvedBy = saved.resolvedBy;
      row.changed = saved.changed;
    });
  }

  push(undo: Undo): void {
    this.undos.push(undo);
  }

  rollback(): void {
    for (let i = this.undos.length - 1; i >= 0; i--) this.undos[i]!();
  }
}

function fail(code: LedgerErrorCode, message: string, details?: Record<string, unknown>): LedgerError {
  return err(code, message, details).error;
}

/** Where a successful op's writes go until its chain is known to commit. */
interface Staged {
  transfers: NewTransferRow[];
}

function historyRow(acc: AccountState, transferId: string, event: HistoryRow['event'], side: 'debit' | 'credit', amountMinor: bigint): HistoryRow {
  acc.historySeq += 1n;
  acc.changed = true;
  return {
    accountId: acc.id,
    seq: acc.historySeq,
    transferId,
    event,
    side,
    amountMinor,
    debitsPendingMinor: acc.debitsPendingMinor,
    debitsPostedMinor: acc.debitsPostedMinor,
    creditsPendingMinor: acc.creditsPendingMinor,
    creditsPostedMinor: acc.creditsPostedMinor,
  };
}

function limitError(debit: AccountState, credit: AccountState, debitIncreaseMinor: bigint, creditIncreaseMinor: bigint): LedgerError | null {
  if (debit.debitsMustNotExceedCredits) {
    const limitMinor = debit.creditLimitMinor ?? 0n;
    if (debit.debitsPendingMinor + debit.debitsPostedMinor + debitIncreaseMinor > debit.creditsPostedMinor + limitMinor) {
      return debit.creditLimitMinor === null
        ? fail('insufficient_funds', 'the debit account has insufficient funds', { accountId: debit.id })
        : fail('exceeds_credit_limit', 'the debit account would exceed its credit limit', { accountId: debit.id });
    }
  }
  if (credit.creditsMustNotExceedDebits && credit.creditsPendingMinor + credit.creditsPostedMinor + creditIncreaseMinor > credit.debitsPostedMinor) {
    return fail('exceeds_debits', 'the credit account would have credits exceeding its debits', { accountId: credit.id });
  }
  return null;
}

function applyOne(op: Op, state: BatchState, nowMs: number, createdAt: Date, journal: Undoable, staged: Staged): { transfer: Transfer; status: 'created' | 'exists' } | LedgerError {
  if (op.shapeError !== null) return op.shapeError;
  const seen = state.existing.get(op.id);
  if (seen !== undefined) {
    if (seen.fingerprint !== op.fingerprint) {
      return fail('transfer_exists_with_different_fields', 'a transfer with this id exists with different fields', { id: op.id });
    }
    if (seen.type === 'failure') return fail(seen.code, `transfer ${op.id} already failed with ${seen.code}`, { id: op.id, replayed: true });
    return { transfer: seen.transfer, status: 'exists' };
  }
  let transfer: Transfer;
  let sides: [HistoryRow, HistoryRow];
  if (op.kind === 'single_phase' || op.kind === 'pending') {
    const debit = state.accounts.get(op.debitAccountId!);
    const credit = state.accounts.get(op.creditAccountId!);
    if (debit === undefined) return fail('account_not_found', 'the debit account does not exist', { accountId: op.debitAccountId });
    if (credit === undefined) return fail('account_not_found', 'the credit account does not exist', { accountId: op.creditAccountId });
    if (debit.currency !== op.currency || credit.currency !== op.currency) {
      return fail('currency_mismatch', 'the transfer currency must equal both accounts’ currency', { debitCurrency: debit.currency, creditCurrency: credit.currency });
    }
    if (debit.closed || credit.closed) return fail('account_closed', 'an account of this transfer is closed', { accountId: debit.closed ? debit.id : credit.id });
    const amount = op.amountMinor!;
    const pending = op.kind === 'pending';
    const debitColumn = pending ? debit.debitsPendingMinor : debit.debitsPostedMinor;
    const creditColumn = pending ? credit.creditsPendingMinor : credit.creditsPostedMinor;
    if (debitColumn + amount > MAX_AMOUNT_MINOR || creditColumn + amount > MAX_AMOUNT_MINOR) {
      return fail('overflow', 'an account balance would overflow', { accountId: debitColumn + amount > MAX_AMOUNT_MINOR ? debit.id : credit.id });
    }
    const limit = limitError(debit, credit, amount, amount);
    if (limit !== null) return limit;
    journal.account(debit);
    journal.account(credit);
    if (pending) {
      debit.debitsPendingMinor += amount;
      credit.creditsPendingMinor += amount;
    } else {
      debit.debitsPostedMinor += amount;
      credit.creditsPostedMinor += amount;
    }
    const expiresAt = pending && op.timeoutMs !== null && op.timeoutMs > 0 ? new Date(nowMs + op.timeoutMs) : null;
    transfer = {
      id: op.id,
      kind: op.kind,
      debitAccountId: debit.id,
      creditAccountId: credit.id,
      amountMinor: amount,
      currency: debit.currency,
      purpose: op.purpose,
      metadata: op.metadata,
      linked: op.linked,
      pendingId: null,
      timeoutMs: pending ? op.timeoutMs : null,
      expiresAt,
      createdAt,
    };
    sides = [historyRow(debit, op.id, op.kind, 'debit', amount), historyRow(credit, op.id, op.kind, 'credit', amount)];
    if (pending) {
      const row: PendingRow = {
        transferId: op.id,
        debitAccountId: debit.id,
        creditAccountId: credit.id,
        amountMinor: amount,
        currency: debit.currency,
        expiresAtMs: expiresAt?.getTime() ?? null,
        state: 'pending',
        resolvedBy: null,
        isNew: true,
        changed: true,
      };
      state.pendings.set(op.id, row);
      if (journal !== NO_JOURNAL) journal.push(() => state.pendings.delete(op.id));
    }
  } else {
    const row = state.pendings.get(op.pendingId!);
    if (row === undefined) return fail('pending_not_found', 'no pending transfer has this id', { pendingId: op.pendingId });
    if (row.state !== 'pending') return fail('pending_already_resolved', `the pending transfer is already ${row.state}`, { pendingId: row.transferId, state: row.state });
    if (row.expiresAtMs !== null && row.expiresAtMs <= nowMs) return fail('pending_expired', 'the pending transfer has expired', { pendingId: row.transferId });
    const debit = state.accounts.get(row.debitAccountId);
    const credit = state.accounts.get(row.creditAccountId);
    // The loader locks every pending's accounts; a miss here is a bug, not a caller error.
    if (debit === undefined || credit === undefined) throw new Error(`ledger: accounts of pending ${row.transferId} not loaded`);
    const pendingMinor = row.amountMinor;
    let movedMinor = pendingMinor;
    if (op.kind === 'post_pending') {
      movedMinor = op.amountMinor ?? pendingMinor;
      if (movedMinor > pendingMinor) {
        return fail('post_amount_exceeds_pending', 'the posted amount exceeds the pending amount', { pendingAmountMinor: pendingMinor.toString() });
      }
      if (debit.debitsPostedMinor + movedMinor > MAX_AMOUNT_MINOR || credit.creditsPostedMinor + movedMinor > MAX_AMOUNT_MINOR) {
        return fail('overflow', 'an account balance would overflow', {});
      }
    }
    journal.account(debit);
    journal.account(credit);
    journal.pending(row);
    debit.debitsPendingMinor -= pendingMinor;
    credit.creditsPendingMinor -= pendingMinor;
    if (op.kind === 'post_pending') {
      debit.debitsPostedMinor += movedMinor;
      credit.creditsPostedMinor += movedMinor;
    }
    row.state = op.kind === 'post_pending' ? 'posted' : 'voided';
    row.resolvedBy = op.id;
    row.changed = true;
    transfer = {
      id: op.id,
      kind: op.kind,
      debitAccountId: debit.id,
      creditAccountId: credit.id,
      amountMinor: movedMinor,
      currency: row.currency,
      purpose: op.purpose,
      metadata: op.metadata,
      linked: op.linked,
      pendingId: row.transferId,
      timeoutMs: null,
      expiresAt: null,
      createdAt,
    };
    sides = [historyRow(debit, op.id, op.kind, 'debit', movedMinor), historyRow(credit, op.id, op.kind, 'credit', movedMinor)];
  }
  // Stored as given (JSON.stringify), as before; most transfers carry none: no serialization at all then.
  const metadataJson = op.metadataJson === '{}' ? '{}' : JSON.stringify(op.metadata);
  staged.transfers.push({ transfer, fingerprint: op.fingerprint, metadataJson, debitSide: sides[0], creditSide: sides[1] });
  state.existing.set(op.id, { type: 'transfer', fingerprint: op.fingerprint, transfer });
  // No closure per transfer when nothing can be rolled back (a chain of one).
  if (journal !== NO_JOURNAL) journal.push(() => state.existing.delete(op.id));
  return { transfer, status: 'created' };
}

/** A state-dependent failure is recorded under the op's id, so that a retry replays it (unless it is a replay). */
function recordFailure(op: Op, cause: LedgerError, state: BatchState, writes: BatchWrites): void {
  const replayed = (cause.details as Record<string, unknown> | undefined)?.['replayed'] === true;
  if (RECORDED_FAILURE_CODES.has(cause.code) && !replayed && op.shapeError === null && !state.existing.has(op.id)) {
    writes.failures.push({ id: op.id, code: cause.code, fingerprint: op.fingerprint });
    state.existing.set(op.id, { type: 'failure', fingerprint: op.fingerprint, code: cause.code });
  }
}

/**
 * Applies ops in order. `groups` are the applyInTx calls: chains never cross a group boundary.
 * Mutates `state` (the running balances) and returns one result per op plus the rows to write.
 */
export function computeBatch(groups: readonly (readonly Op[])[], state: BatchState, nowMs: number): { results: TransferResult[][]; writes: BatchWrites } {
  const writes: BatchWrites = { transfers: [], history: [], failures: [] };
  const results: TransferResult[][] = [];
  // One instant for the whole batch (it commits as one): one Date shared by its transfers.
  const createdAt = new Date(nowMs);
  for (const ops of groups) {
    const groupResults: TransferResult[] = [];
    let start = 0;
    while (start < ops.length) {
      // A chain: consecutive ops with linked = true, ended by the first one without it (or the group's end).
      let end = start;
      while (end < ops.length - 1 && ops[end]!.linked) end++;
      if (end === start) {
        // A chain of one (most transfers): applyOne changes nothing until every check has passed, so a failure leaves
        // nothing to roll back and no journal is needed.
        const op = ops[start]!;
        const outcome = op.chainOpen ? fail('linked_chain_open', 'the last transfer of a call must not be linked') : applyOne(op, state, nowMs, createdAt, NO_JOURNAL, writes);
        if ('code' in outcome) {
          groupResults.push({ ok: false, error: outcome });
          recordFailure(op, outcome, state, writes);
        } else {
          groupResults.push(ok(outcome));
        }
        start = end + 1;
        continue;
      }
      const chain = ops.slice(start, end + 1);
      const journal = new Journal();
      const staged: Staged = { transfers: [] };
      const outcomes: ({ transfer: Transfer; status: 'created' | 'exists' } | LedgerError)[] = [];
      let failedAt = -1;
      for (let i = 0; i < chain.length; i++) {
        const op = chain[i]!;
        const outcome = op.chainOpen ? fail('linked_chain_open', 'the last transfer of a call must not be linked') : applyOne(op, state, nowMs, createdAt, journal, staged);
        outcomes.push(outcome);
        if ('code' in outcome) {
          failedAt = i;
          break;
        }
      }
      if (failedAt < 0) {
        writes.transfers.push(...staged.transfers);
        for (const outcome of outcomes) groupResults.push(ok(outcome as { transfer: Transfer; status: 'created' | 'exists' }));
      } else {
        journal.rollback();
        const cause = outcomes[failedAt] as LedgerError;
        for (let i = 0; i < chain.length; i++) {
          if (i === failedAt) {
            groupResults.push({ ok: false, error: cause });
            recordFailure(chain[i]!, cause, state, writes);
          } else {
            groupResults.push(err('linked_transfer_failed', 'a transfer linked with this one failed', { failedId: chain[failedAt]!.id, failedCode: cause.code }));
          }
        }
      }
      start = end + 1;
    }
    results.push(groupResults);
  }
  return { results, writes };
}

/** Voids pending transfers whose deadline has passed; a pending already resolved (by anyone) is skipped. */
export function computeExpiry(pendingIds: readonly string[], state: BatchState, nowMs: number, writes: BatchWrites): number {
  let expired = 0;
  for (const pendingId of pendingIds) {
    const row = state.pendings.get(pendingId);
    if (row === undefined || row.state !== 'pending' || row.expiresAtMs === null || row.expiresAtMs > nowMs) continue;
    const debit = state.accounts.get(row.debitAccountId);
    const credit = state.accounts.get(row.creditAccountId);
    if (debit === undefined || credit === undefined) throw new Error(`ledger: accounts of pending ${row.transferId} not loaded`);
    debit.debitsPendingMinor -= row.amountMinor;
    credit.creditsPendingMinor -= row.amountMinor;
    row.state = 'expired';
    row.changed = true;
    writes.history.push(historyRow(debit, row.transferId, 'expired', 'debit', row.amountMinor), historyRow(credit, row.transferId, 'expired', 'credit', row.amountMinor));
    expired++;
  }
  return expired;
}

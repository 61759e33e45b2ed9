import type { DomainError, Result } from '../platform/result.ts';

/**
 * Balance convention (TigerBeetle's): every transfer adds its amount to the debit account's debits and to the credit
 * account's credits; nothing is ever subtracted except when a pending amount is resolved (posted, voided, expired).
 * A credit-normal account (a customer wallet: money the hub owes) has balance = credits_posted − debits_posted.
 * A debit-normal account (funding, settlement receivable) has balance = debits_posted − credits_posted.
 *
 * Limits, checked against the running balances at the moment the transfer is applied:
 * - debitsMustNotExceedCredits (no overdraft): debits_pending + debits_posted ≤ credits_posted + creditLimitMinor
 *   (creditLimitMinor defaults to 0). Available to spend = credits_posted − debits_posted − debits_pending + creditLimit.
 *   Failing it gives `insufficient_funds`, or `exceeds_credit_limit` when the account has a credit limit.
 * - creditsMustNotExceedDebits: credits_pending + credits_posted ≤ debits_posted, failing gives `exceeds_debits`.
 * Pending amounts count against limits (they are reserved) but only posted amounts count as available credit.
 */
export type AccountKind = 'customer' | 'settlement' | 'fees' | 'fx_liquidity' | 'suspense' | 'funding' | 'merchant' | 'credit' | 'savings';
export const ACCOUNT_KINDS: readonly AccountKind[] = ['customer', 'settlement', 'fees', 'fx_liquidity', 'suspense', 'funding', 'merchant', 'credit', 'savings'];

export interface NewAccount {
  /** Defaults to a fresh `acc_…` id. */
  readonly id?: string;
  readonly ownerParticipantId: string;
  readonly customerId?: string;
  readonly currency: string;
  readonly kind: AccountKind;
  readonly debitsMustNotExceedCredits?: boolean;
  readonly creditsMustNotExceedDebits?: boolean;
  /** Only with debitsMustNotExceedCredits: how far the account may be overdrawn. */
  readonly creditLimitMinor?: bigint;
}

export interface Account {
  readonly id: string;
  readonly ownerParticipantId: string;
  readonly customerId: string | null;
  readonly currency: string;
  readonly kind: AccountKind;
  readonly debitsMustNotExceedCredits: boolean;
  readonly creditsMustNotExceedDebits: boolean;
  readonly creditLimitMinor: bigint | null;
  readonly closed: boolean;
  readonly debitsPendingMinor: bigint;
  readonly debitsPostedMinor: bigint;
  readonly creditsPendingMinor: bigint;
  readonly creditsPostedMinor: bigint;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export type TransferKind = 'single_phase' | 'pending' | 'post_pending' | 'void_pending';
export type PendingState = 'pending' | 'posted' | 'voided' | 'expired';

interface TransferInputCommon {
  /** Caller-chosen, 1–64 characters: the idempotency key. */
  readonly id: string;
  readonly purpose: string;
  /** A plain JSON object, at most MAX_METADATA_BYTES when serialized. */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Links this transfer to the next one in the same applyInTx call: the chain commits or fails as a whole. */
  readonly linked?: boolean;
}

export interface MoveInput extends TransferInputCommon {
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
}

export type TransferInput =
  | (MoveInput & { readonly kind?: 'single_phase' })
  /** Reserves the amount; `timeoutMs` > 0 makes expirePending() void it once the clock passes created + timeout. */
  | (MoveInput & { readonly kind: 'pending'; readonly timeoutMs?: number })
  /** Posts a pending transfer: amountMinor ≤ the pending amount (default: all of it); the rest is released. */
  | (TransferInputCommon & { readonly kind: 'post_pending'; readonly pendingId: string; readonly amountMinor?: bigint })
  | (TransferInputCommon & { readonly kind: 'void_pending'; readonly pendingId: string });

export interface Transfer {
  readonly id: string;
  readonly kind: TransferKind;
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  /** Posted amount for post_pending, released amount for void_pending. */
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly purpose: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly linked: boolean;
  readonly pendingId: string | null;
  readonly timeoutMs: number | null;
  readonly expiresAt: Date | null;
  readonly createdAt: Date;
}

export interface TransferView extends Transfer {
  /** For kind 'pending' only: whether it is still reserved or how it was resolved. */
  readonly pendingState: PendingState | null;
}

export type LedgerErrorCode =
  | 'invalid_transfer'
  | 'metadata_too_large'
  | 'amount_not_positive'
  | 'amount_too_large'
  | 'same_account'
  | 'account_not_found'
  | 'currency_mismatch'
  | 'account_closed'
  | 'insufficient_funds'
  | 'exceeds_credit_limit'
  | 'exceeds_debits'
  | 'overflow'
  | 'pending_not_found'
  | 'pending_already_resolved'
  | 'pending_expired'
  | 'post_amount_exceeds_pending'
  | 'linked_transfer_failed'
  | 'linked_chain_open'
  | 'transfer_exists_with_different_fields'
  | 'transfer_not_found'
  | 'invalid_account'
  | 'account_exists'
  | 'participant_not_found'
  | 'account_has_pending'
  | 'invalid_page';

/**
 * Failures that depend on ledger state at the time (balances, pending resolution, closure). The id is recorded with
 * its code so that a retry replays the failure instead of succeeding later against different balances.
 * Shape errors (amounts, ids, same account), unknown accounts/pendings and currency mismatches are not recorded:
 * nothing about them can change by retrying the same fields, except creating the missing account first.
 */
export const RECORDED_FAILURE_CODES: ReadonlySet<LedgerErrorCode> = new Set<LedgerErrorCode>([
  'insufficient_funds',
  'exceeds_credit_limit',
  'exceeds_debits',
  'overflow',
  'account_closed',
  'pending_already_resolved',
  'pending_expired',
]);

export type LedgerError = DomainError<LedgerErrorCode>;

export interface TransferOutcome {
  /** 'exists': the id was already applied with the same fields; nothing new happened. */
  readonly status: 'created' | 'exists';
  readonly transfer: Transfer;
}

export type TransferResult = Result<TransferOutcome, LedgerError>;

export interface HistoryEntry {
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
  readonly at: Date;
}

export interface HistoryPage {
  readonly entries: HistoryEntry[];
  /** Pass back as `cursor` for the next page; null when this page is the last. */
  readonly nextCursor: string | null;
}

export interface InvariantViolation {
  readonly kind: 'debits_credits_posted_unbalanced' | 'debits_credits_pending_unbalanced' | 'pending_table_mismatch' | 'overdrawn' | 'credits_exceed_debits';
  readonly currency: string;
  readonly accountId?: string;
  readonly details: Readonly<Record<string, string>>;
}

export const MAX_TRANSFER_ID_LENGTH = 64;
export const MAX_METADATA_BYTES = 4096;
export const MAX_PURPOSE_LENGTH = 64;
export const MAX_HISTORY_PAGE = 200;
/** Bounded so that expires_at stays a sane timestamp: one year. */
export const MAX_TIMEOUT_MS = 366 * 24 * 3600 * 1000;

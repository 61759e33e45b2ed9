import { formatAmount } from '../platform/money.ts';
import type { Account, HistoryEntry, TransferView, Transfer } from './types.ts';

/**
 * Wire shapes of ledger objects: amounts are decimal strings in the currency's minor unit (never floats, never bigint
 * JSON), timestamps are ISO 8601. Routes present ledger objects only through these helpers.
 */
export interface WireMoney {
  readonly amount: string;
  readonly currency: string;
}

export interface WireAccount {
  readonly id: string;
  readonly owner_participant_id: string;
  readonly customer_id: string | null;
  readonly currency: string;
  readonly kind: string;
  readonly flags: { readonly debits_must_not_exceed_credits: boolean; readonly credits_must_not_exceed_debits: boolean; readonly closed: boolean };
  readonly credit_limit: WireMoney | null;
  /** Credit-normal view: credits_posted − debits_posted. */
  readonly balance: WireMoney;
  /** What can be spent now: balance − debits_pending + credit limit. */
  readonly available: WireMoney;
  readonly debits_pending: WireMoney;
  readonly debits_posted: WireMoney;
  readonly credits_pending: WireMoney;
  readonly credits_posted: WireMoney;
  readonly created_at: string;
  readonly updated_at: string;
}

function money(amountMinor: bigint, currency: string): WireMoney {
  return { amount: formatAmount(amountMinor, currency), currency };
}

export function accountToWire(a: Account): WireAccount {
  const balanceMinor = a.creditsPostedMinor - a.debitsPostedMinor;
  return {
    id: a.id,
    owner_participant_id: a.ownerParticipantId,
    customer_id: a.customerId,
    currency: a.currency,
    kind: a.kind,
    flags: { debits_must_not_exceed_credits: a.debitsMustNotExceedCredits, credits_must_not_exceed_debits: a.creditsMustNotExceedDebits, closed: a.closed },
    credit_limit: a.creditLimitMinor === null ? null : money(a.creditLimitMinor, a.currency),
    balance: money(balanceMinor, a.currency),
    available: money(balanceMinor - a.debitsPendingMinor + (a.creditLimitMinor ?? 0n), a.currency),
    debits_pending: money(a.debitsPendingMinor, a.currency),
    debits_posted: money(a.debitsPostedMinor, a.currency),
    credits_pending: money(a.creditsPendingMinor, a.currency),
    credits_posted: money(a.creditsPostedMinor, a.currency),
    created_at: a.createdAt.toISOString(),
    updated_at: a.updatedAt.toISOString(),
  };
}

export interface WireTransfer {
  readonly id: string;
  readonly kind: string;
  readonly debit_account_id: string;
  readonly credit_account_id: string;
  readonly amount: WireMoney;
  readonly purpose: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly linked: boolean;
  readonly pending_id: string | null;
  readonly pending_state: string | null;
  readonly timeout_ms: number | null;
  readonly expires_at: string | null;
  readonly created_at: string;
}

export function transferToWire(t: Transfer | TransferView): WireTransfer {
  return {
    id: t.id,
    kind: t.kind,
    debit_account_id: t.debitAccountId,
    credit_account_id: t.creditAccountId,
    amount: money(t.amountMinor, t.currency),
    purpose: t.purpose,
    metadata: t.metadata,
    linked: t.linked,
    pending_id: t.pendingId,
    pending_state: 'pendingState' in t ? t.pendingState : null,
    timeout_ms: t.timeoutMs,
    expires_at: t.expiresAt?.toISOString() ?? null,
    created_at: t.createdAt.toISOString(),
  };
}

export interface WireHistoryEntry {
  readonly seq: string;
  readonly transfer_id: string;
  readonly event: string;
  readonly side: 'debit' | 'credit';
  readonly amount: WireMoney;
  /** Credit-normal balance after this change. */
  readonly balance_after: WireMoney;
  readonly debits_pending_after: WireMoney;
  readonly credits_pending_after: WireMoney;
  readonly at: string;
}

export function historyEntryToWire(e: HistoryEntry, currency: string): WireHistoryEntry {
  return {
    seq: e.seq.toString(),
    transfer_id: e.transferId,
    event: e.event,
    side: e.side,
    amount: money(e.amountMinor, currency),
    balance_after: money(e.creditsPostedMinor - e.debitsPostedMinor, currency),
    debits_pending_after: money(e.debitsPendingMinor, currency),
    credits_pending_after: money(e.creditsPendingMinor, currency),
    at: e.at.toISOString(),
  };
}

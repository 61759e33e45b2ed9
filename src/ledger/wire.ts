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
  readonly ownerParticipantId: string;
  readonly customerId: string | null;
  readonly currency: string;
  readonly kind: string;
  readonly flags: { readonly debitsMustNotExceedCredits: boolean; readonly creditsMustNotExceedDebits: boolean; readonly closed: boolean };
  readonly creditLimit: WireMoney | null;
  /** Credit-normal view: credits_posted − debits_posted. */
  readonly balance: WireMoney;
  /** What can be spent now: balance − debits_pending + credit limit. */
  readonly available: WireMoney;
  readonly debitsPending: WireMoney;
  readonly debitsPosted: WireMoney;
  readonly creditsPending: WireMoney;
  readonly creditsPosted: WireMoney;
  readonly createdAt: string;
  readonly updatedAt: string;
}

function money(amountMinor: bigint, currency: string): WireMoney {
  return { amount: formatAmount(amountMinor, currency), currency };
}

export function accountToWire(a: Account): WireAccount {
  const balanceMinor = a.creditsPostedMinor - a.debitsPostedMinor;
  return {
    id: a.id,
    ownerParticipantId: a.ownerParticipantId,
    customerId: a.customerId,
    currency: a.currency,
    kind: a.kind,
    flags: { debitsMustNotExceedCredits: a.debitsMustNotExceedCredits, creditsMustNotExceedDebits: a.creditsMustNotExceedDebits, closed: a.closed },
    creditLimit: a.creditLimitMinor === null ? null : money(a.creditLimitMinor, a.currency),
    balance: money(balanceMinor, a.currency),
    available: money(balanceMinor - a.debitsPendingMinor + (a.creditLimitMinor ?? 0n), a.currency),
    debitsPending: money(a.debitsPendingMinor, a.currency),
    debitsPosted: money(a.debitsPostedMinor, a.currency),
    creditsPending: money(a.creditsPendingMinor, a.currency),
    creditsPosted: money(a.creditsPostedMinor, a.currency),
    createdAt: a.createdAt.toISOString(),
    updatedAt: a.updatedAt.toISOString(),
  };
}

export interface WireTransfer {
  readonly id: string;
  readonly kind: string;
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amount: WireMoney;
  readonly purpose: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly linked: boolean;
  readonly pendingId: string | null;
  readonly pendingState: string | null;
  readonly timeoutMs: number | null;
  readonly expiresAt: string | null;
  readonly createdAt: string;
}

export function transferToWire(t: Transfer | TransferView): WireTransfer {
  return {
    id: t.id,
    kind: t.kind,
    debitAccountId: t.debitAccountId,
    creditAccountId: t.creditAccountId,
    amount: money(t.amountMinor, t.currency),
    purpose: t.purpose,
    metadata: t.metadata,
    linked: t.linked,
    pendingId: t.pendingId,
    pendingState: 'pendingState' in t ? t.pendingState : null,
    timeoutMs: t.timeoutMs,
    expiresAt: t.expiresAt?.toISOString() ?? null,
    createdAt: t.createdAt.toISOString(),
  };
}

export interface WireHistoryEntry {
  readonly seq: string;
  readonly transferId: string;
  readonly event: string;
  readonly side: 'debit' | 'credit';
  readonly amount: WireMoney;
  /** Credit-normal balance after this change. */
  readonly balanceAfter: WireMoney;
  readonly debitsPendingAfter: WireMoney;
  readonly creditsPendingAfter: WireMoney;
  readonly at: string;
}

export function historyEntryToWire(e: HistoryEntry, currency: string): WireHistoryEntry {
  return {
    seq: e.seq.toString(),
    transferId: e.transferId,
    event: e.event,
    side: e.side,
    amount: money(e.amountMinor, currency),
    balanceAfter: money(e.creditsPostedMinor - e.debitsPostedMinor, currency),
    debitsPendingAfter: money(e.debitsPendingMinor, currency),
    creditsPendingAfter: money(e.creditsPendingMinor, currency),
    at: e.at.toISOString(),
  };
}

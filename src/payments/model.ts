import { randomInt } from 'node:crypto';
import { positionLimit } from '../accounts/index.ts';
import type { AccountService } from '../accounts/index.ts';
import type { TransferInput } from '../ledger/index.ts';
import type { Flusher } from '../platform/db.ts';
import { interparticipantLegs, type PositionMove } from '../settlement/index.ts';
import type { RiskDecision } from '../risk/index.ts';
import type { PErr } from './errors.ts';

/** The card payment's records and the pieces its pipeline (pipeline.ts) and its after-life (service.ts) share. */
/** The hub's globally unique id in merchant account templates (26–51) of the codes it issues. */
export const HUB_GUID = 'CN.HUTONG';
export const MERCHANT_ACCOUNT_TAG = 26;
export const DEFAULT_HOLD_TTL_MS = 7 * 24 * 3600_000;
export const DEFAULT_DYNAMIC_QR_TTL_S = 600;
/** Bound on expired holds and unresolved issuer asks handled per sweep. */
export const MAX_SWEEP = 500;

export type PaymentChannel = 'mpm_static' | 'mpm_dynamic' | 'cpm' | 'tap' | 'link';
export type AuthorizationStatus = 'authorized' | 'captured' | 'voided' | 'expired';

export interface Authorization {
  readonly id: string;
  readonly ownerParticipantId: string;
  readonly merchantId: string;
  readonly channel: PaymentChannel;
  readonly status: AuthorizationStatus;
  readonly sourceKind: 'token' | 'account';
  readonly issuerParticipantId: string;
  readonly cardId: string | null;
  readonly tokenId: string | null;
  readonly payerParticipantId: string | null;
  readonly payerCustomerId: string | null;
  readonly sourceAccountId: string;
  readonly deviceId: string | null;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly capturedMinor: bigint;
  readonly refundedMinor: bigint;
  readonly feeMinor: bigint;
  readonly authCode: string;
  readonly decidedBy: 'hosted' | 'issuer' | 'stand_in' | 'account';
  readonly holdTransferId: string;
  readonly holdExpiresAt: Date | null;
  readonly qrId: string | null;
  readonly linkId: string | null;
  readonly riskScore: number;
  readonly country: string;
  readonly mcc: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface AuthRow {
  id: string;
  owner_participant_id: string;
  merchant_id: string;
  channel: PaymentChannel;
  status: AuthorizationStatus;
  source_kind: 'token' | 'account';
  issuer_participant_id: string;
  card_id: string | null;
  token_id: string | null;
  payer_participant_id: string | null;
  payer_customer_id: string | null;
  source_account_id: string;
  device_id: string | null;
  amount_minor: bigint;
  currency: string;
  captured_minor: bigint;
  refunded_minor: bigint;
  fee_minor: bigint;
  auth_code: string;
  decided_by: Authorization['decidedBy'];
  hold_transfer_id: string;
  hold_expires_at: Date | null;
  qr_id: string | null;
  link_id: string | null;
  risk_score: number;
  country: string;
  mcc: string;
  created_at: Date;
  updated_at: Date;
}

export const toAuth = (r: AuthRow): Authorization => ({
  id: r.id,
  ownerParticipantId: r.owner_participant_id,
  merchantId: r.merchant_id,
  channel: r.channel,
  status: r.status,
  sourceKind: r.source_kind,
  issuerParticipantId: r.issuer_participant_id,
  cardId: r.card_id,
  tokenId: r.token_id,
  payerParticipantId: r.payer_participant_id,
  payerCustomerId: r.payer_customer_id,
  sourceAccountId: r.source_account_id,
  deviceId: r.device_id,
  amountMinor: BigInt(r.amount_minor),
  currency: r.currency,
  capturedMinor: BigInt(r.captured_minor),
  refundedMinor: BigInt(r.refunded_minor),
  feeMinor: BigInt(r.fee_minor),
  authCode: r.auth_code,
  decidedBy: r.decided_by,
  holdTransferId: r.hold_transfer_id,
  holdExpiresAt: r.hold_expires_at,
  qrId: r.qr_id,
  linkId: r.link_id,
  riskScore: r.risk_score,
  country: r.country,
  mcc: r.mcc,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const SEVERITY: Record<RiskDecision, number> = { approve: 0, step_up: 1, decline: 2 };
const AUTH_CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
export const authCode = () => Array.from({ length: 6 }, () => AUTH_CODE_ALPHABET[randomInt(AUTH_CODE_ALPHABET.length)]).join('');

export const yymmdd = (d: Date) => d.toISOString().slice(2, 10).replace(/-/g, '');

/** Authorizations of a batch, inserted with the COMMIT (one statement). */
export const authorizationFlusher: Flusher<Authorization> = {
  flush: (tx, rows) => {
    const col = <T>(f: (a: Authorization) => T) => rows.map(f);
    return tx.query(
      `insert into pay_authorizations (id, owner_participant_id, merchant_id, channel, status, source_kind, issuer_participant_id, card_id, token_id, payer_participant_id,
                                       payer_customer_id, source_account_id, device_id, amount_minor, currency, auth_code, decided_by, hold_transfer_id, hold_expires_at,
                                       qr_id, link_id, risk_score, country, mcc, created_at, updated_at, captured_minor, fee_minor)
       select id, owner, merchant, channel, status, source_kind, issuer, card, token, payer, payer_customer, source_account, device, amount::int8, currency, code, decided_by, hold,
              hold_expires::timestamptz, qr, link, score, country, mcc, at::timestamptz, at::timestamptz, captured::int8, fee::int8
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                     $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::int4[], $23::text[], $24::text[], $25::text[],
                     $26::text[], $27::text[])
              as v(id, owner, merchant, channel, status, source_kind, issuer, card, token, payer, payer_customer, source_account, device, amount, currency, code, decided_by, hold,
                   hold_expires, qr, link, score, country, mcc, at, captured, fee)`,
      [
        col((a) => a.id),
        col((a) => a.ownerParticipantId),
        col((a) => a.merchantId),
        col((a) => a.channel),
        col((a) => a.status),
        col((a) => a.sourceKind),
        col((a) => a.issuerParticipantId),
        col((a) => a.cardId),
        col((a) => a.tokenId),
        col((a) => a.payerParticipantId),
        col((a) => a.payerCustomerId),
        col((a) => a.sourceAccountId),
        col((a) => a.deviceId),
        col((a) => a.amountMinor.toString()),
        col((a) => a.currency),
        col((a) => a.authCode),
        col((a) => a.decidedBy),
        col((a) => a.holdTransferId),
        col((a) => a.holdExpiresAt?.toISOString() ?? null),
        col((a) => a.qrId),
        col((a) => a.linkId),
        col((a) => a.riskScore),
        col((a) => a.country),
        col((a) => a.mcc),
        col((a) => a.createdAt.toISOString()),
        col((a) => a.capturedMinor.toString()),
        col((a) => a.feeMinor.toString()),
      ],
    );
  },
};

/** Captured authorizations of a batch (id, captured amount, fee, at), updated with the COMMIT; their rows are locked. */
export const captureFlusher: Flusher<readonly [string, string, string, string]> = {
  flush: (tx, rows) =>
    tx.query(
      `update pay_authorizations a set status = 'captured', captured_minor = v.amount::int8, fee_minor = v.fee::int8, updated_at = v.at::timestamptz
         from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as v(id, amount, fee, at) where a.id = v.id`,
      [0, 1, 2, 3].map((i) => rows.map((r) => r[i])),
    ),
};

/** What a ledger refusal means for a card payment. */
export function ledgerCode(error: { code: string; details?: unknown } | undefined): PErr {
  const code = error?.code ?? 'unknown';
  if (error !== undefined && positionLimit(error)) return { code: 'liquidity_exceeded', message: "the paying participant's position at the hub cannot cover the amount (prefunded liquidity and net debit cap)" };
  if (code === 'exceeds_credit_limit') return { code: 'exceeds_credit_limit', message: "the card's credit line cannot cover the amount (its limit less what is owed and held)" };
  if (code === 'insufficient_funds') return { code: 'insufficient_funds', message: 'the funding account cannot cover the amount' };
  if (code === 'pending_expired') return { code: 'payment_state', message: 'the authorization hold has expired', details: { status: 'expired' } };
  if (code === 'pending_already_resolved') return { code: 'payment_state', message: 'the authorization hold was already resolved' };
  return { code: 'payment_ledger_rejected', message: `the ledger refused the transfer: ${code}`, details: { ledgerCode: code } };
}

/** The merchant's fee on a captured amount, rounded up to the minor unit. */
export const merchantFee = (amountMinor: bigint, feeBps: number): bigint => (feeBps > 0 ? (amountMinor * BigInt(feeBps) + 9_999n) / 10_000n : 0n);

/**
 * The ledger legs that capture `amountMinor` of a card payment's hold, and the position move they make.
 *
 * Inside one participant (the issuer also owns the merchant) the hold is posted. Between two participants the hold is
 * released into the payment's chain, which runs through both positions like every payment between participants
 * (src/settlement): the issuer's position pays the merchant owner's (checked first against the issuer's liquidity and
 * net debit cap: `liquidity_exceeded`), the customer's money goes to the issuer's position, and the merchant owner's
 * position credits the merchant. A connected issuer's payment is held on its position itself, so that side has no
 * customer leg. The caller links the legs (with any fee) into one chain and records the move in the open window.
 */
export async function captureLegs(
  accounts: Pick<AccountService, 'ensureSystemAccount'>,
  input: {
    readonly authorizationId: string;
    /** Part of the leg ids of a chain between participants (a refused attempt's ids stay failed in the ledger). */
    readonly attempt?: string;
    readonly holdId: string;
    readonly amountMinor: bigint;
    readonly currency: string;
    readonly issuerParticipantId: string;
    readonly merchantOwnerId: string;
    readonly sourceAccountId: string;
    readonly merchantAccountId: string;
  },
): Promise<{ legs: TransferInput[]; move: PositionMove | undefined }> {
  const metadata = { authorizationId: input.authorizationId };
  if (input.issuerParticipantId === input.merchantOwnerId) {
    return { legs: [{ id: `${input.authorizationId}_capture`, kind: 'post_pending', pendingId: input.holdId, amountMinor: input.amountMinor, purpose: 'card_capture', metadata }], move: undefined };
  }
  const prefix = input.attempt === undefined ? input.authorizationId : `${input.authorizationId}_${input.attempt}`;
  const chain = interparticipantLegs({
    legId: (leg) => `${prefix}_${leg === 'card_capture' ? 'capture' : leg === 'card_capture_in' ? 'capture_in' : leg}`,
    sourceAccountId: input.sourceAccountId,
    payeeAccountId: input.merchantAccountId,
    payerParticipantId: input.issuerParticipantId,
    payeeParticipantId: input.merchantOwnerId,
    payerPositionAccountId: await accounts.ensureSystemAccount('funding', input.issuerParticipantId, input.currency),
    payeePositionAccountId: await accounts.ensureSystemAccount('funding', input.merchantOwnerId, input.currency),
    amountMinor: input.amountMinor,
    currency: input.currency,
    purpose: 'card_capture',
    paymentId: input.authorizationId,
    metadata,
  });
  return { legs: [{ id: `${prefix}_release`, kind: 'void_pending', pendingId: input.holdId, purpose: 'card_release', metadata }, ...chain.legs], move: chain.move };
}

/**
 * A refund of `amountMinor` from the merchant back to the payment's source. Between two participants it is a payment
 * the other way: the merchant owner's position pays the issuer's (checked against the merchant owner's cover), with the
 * customer legs through both positions. The first leg's id is `refundId` (the refund's transfer of record).
 */
export async function refundLegs(
  accounts: Pick<AccountService, 'ensureSystemAccount'>,
  input: { readonly refundId: string; readonly amountMinor: bigint; readonly currency: string; readonly issuerParticipantId: string; readonly merchantOwnerId: string; readonly sourceAccountId: string; readonly merchantAccountId: string; readonly authorizationId: string },
): Promise<{ legs: TransferInput[]; move: PositionMove | undefined }> {
  const metadata = { authorizationId: input.authorizationId };
  const between = input.issuerParticipantId !== input.merchantOwnerId;
  const chain = interparticipantLegs({
    legId: (leg) => (leg === 'card_refund' ? input.refundId : `${input.refundId}_${leg}`),
    sourceAccountId: input.merchantAccountId,
    payeeAccountId: input.sourceAccountId,
    payerParticipantId: input.merchantOwnerId,
    payeeParticipantId: input.issuerParticipantId,
    payerPositionAccountId: between ? await accounts.ensureSystemAccount('funding', input.merchantOwnerId, input.currency) : '',
    payeePositionAccountId: between ? await accounts.ensureSystemAccount('funding', input.issuerParticipantId, input.currency) : '',
    amountMinor: input.amountMinor,
    currency: input.currency,
    purpose: 'card_refund',
    paymentId: input.refundId,
    metadata,
  });
  return { legs: chain.legs.map((l, k) => ({ ...l, linked: k < chain.legs.length - 1 })), move: chain.move };
}

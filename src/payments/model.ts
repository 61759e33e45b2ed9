import { randomInt } from 'node:crypto';
import { positionLimit } from '../accounts/index.ts';
import type { AccountService } from '../accounts/index.ts';
import type { TransferInput } from '../ledger/index.ts';
import type { Flusher } from '../platform/db.ts';
import { interparticipantLegs, positionAccounts, type PositionMove } from '../settlement/index.ts';
import { formatScaled, parseScaledDecimal, RATE_SCALE_DIGITS, sendFor } from '../fx/index.ts';
import { currencyMinorUnit, formatMoney } from '../platform/money.ts';
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
  /** Charged back by the card issuer at the hub (a dispute; a representment gives it back): no longer refundable. */
  readonly chargedBackMinor: bigint;
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
  /** Across currencies: the FX provider's rate the authorization bound and the payer's side in its account's currency. */
  readonly fx: CardFx | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Across currencies, on the wire (answers and webhooks alike): the rate bound and the payer's side, in its account's currency. */
export const wireCardFx = (fx: CardFx | null) =>
  fx === null
    ? null
    : {
        rateId: fx.rateId,
        providerParticipantId: fx.providerParticipantId,
        rate: formatScaled(fx.rate, 8),
        charged: formatMoney(fx.sourceAmountMinor, fx.sourceCurrency),
        captured: formatMoney(fx.sourceCapturedMinor, fx.sourceCurrency),
        refunded: formatMoney(fx.sourceRefundedMinor, fx.sourceCurrency),
      };

/**
 * A card payment across currencies: the source account holds `sourceCurrency`, the merchant takes the payment's
 * currency. The authorization bound one FX provider's posted rate (receive units per send unit, scaled by 10^12, the
 * tier that priced the amount); the hold, every capture and every refund convert at it.
 */
export interface CardFx {
  readonly rateId: string;
  readonly providerParticipantId: string;
  readonly rate: bigint;
  readonly sourceCurrency: string;
  /** Held on the payer's account: what the merchant's amount costs at the rate, rounded up. */
  readonly sourceAmountMinor: bigint;
  readonly sourceCapturedMinor: bigint;
  readonly sourceRefundedMinor: bigint;
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
  charged_back_minor: bigint;
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
  fx_rate_id: string | null;
  fx_provider_participant_id: string | null;
  fx_rate: string | null;
  source_currency: string | null;
  source_amount_minor: bigint | null;
  source_captured_minor: bigint | null;
  source_refunded_minor: bigint | null;
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
  chargedBackMinor: BigInt(r.charged_back_minor),
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
  fx:
    r.fx_rate_id !== null && r.fx_provider_participant_id !== null && r.fx_rate !== null && r.source_currency !== null && r.source_amount_minor !== null
      ? {
          rateId: r.fx_rate_id,
          providerParticipantId: r.fx_provider_participant_id,
          rate: parseScaledDecimal(r.fx_rate) ?? 0n,
          sourceCurrency: r.source_currency,
          sourceAmountMinor: BigInt(r.source_amount_minor),
          sourceCapturedMinor: BigInt(r.source_captured_minor ?? 0n),
          sourceRefundedMinor: BigInt(r.source_refunded_minor ?? 0n),
        }
      : null,
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
                                       qr_id, link_id, risk_score, country, mcc, created_at, updated_at, captured_minor, fee_minor,
                                       fx_rate_id, fx_provider_participant_id, fx_rate, source_currency, source_amount_minor, source_captured_minor, source_refunded_minor)
       select id, owner, merchant, channel, status, source_kind, issuer, card, token, payer, payer_customer, source_account, device, amount::int8, currency, code, decided_by, hold,
              hold_expires::timestamptz, qr, link, score, country, mcc, at::timestamptz, at::timestamptz, captured::int8, fee::int8,
              fxr, fxp, fx_rate, src_cur, src_amount::int8, src_captured::int8, case when fxr is null then null else 0 end
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                     $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::int4[], $23::text[], $24::text[], $25::text[],
                     $26::text[], $27::text[], $28::text[], $29::text[], $30::text[], $31::text[], $32::text[], $33::text[])
              as v(id, owner, merchant, channel, status, source_kind, issuer, card, token, payer, payer_customer, source_account, device, amount, currency, code, decided_by, hold,
                   hold_expires, qr, link, score, country, mcc, at, captured, fee, fxr, fxp, fx_rate, src_cur, src_amount, src_captured)`,
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
        col((a) => a.fx?.rateId ?? null),
        col((a) => a.fx?.providerParticipantId ?? null),
        col((a) => (a.fx === null ? null : formatScaled(a.fx.rate, RATE_SCALE_DIGITS))),
        col((a) => a.fx?.sourceCurrency ?? null),
        col((a) => a.fx?.sourceAmountMinor.toString() ?? null),
        col((a) => a.fx?.sourceCapturedMinor.toString() ?? null),
      ],
    );
  },
};

/**
 * Captured authorizations of a batch (id, captured amount, fee, at, and across currencies the amount taken from the
 * payer's account, else null), updated with the COMMIT; their rows are locked.
 */
export const captureFlusher: Flusher<readonly [string, string, string, string, string | null]> = {
  flush: (tx, rows) =>
    tx.query(
      `update pay_authorizations a set status = 'captured', captured_minor = v.amount::int8, fee_minor = v.fee::int8, updated_at = v.at::timestamptz,
              source_captured_minor = coalesce(v.src::int8, a.source_captured_minor)
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) as v(id, amount, fee, at, src) where a.id = v.id`,
      [0, 1, 2, 3, 4].map((i) => rows.map((r) => r[i] ?? null)),
    ),
};

/** What a ledger refusal means for a card payment. */
export function ledgerCode(error: { code: string; details?: unknown } | undefined, fxProviderPosition?: string): PErr {
  const code = error?.code ?? 'unknown';
  // Across currencies the FX provider's position pays out: its liquidity and cap refuse as in a P2P payment.
  if (error !== undefined && fxProviderPosition !== undefined && positionLimit(error, fxProviderPosition)) return { code: 'fx_liquidity_insufficient', message: "the FX provider's position cannot deliver this amount right now (its liquidity and net debit cap)" };
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
 * The merchant's fee on a capture, from its settlement account to the issuer's fees account. The capture's position leg
 * carried the whole amount to the merchant's owner, so between two participants the fee is a payment back the other
 * way, through both positions (recorded for settlement); inside one participant it is one leg. Linked after the capture.
 */
export async function feeLegs(
  accounts: Pick<AccountService, 'ensureSystemAccount'>,
  input: {
    readonly authorizationId: string;
    /** As the capture's: part of the leg ids between participants (a refused attempt's ids stay failed in the ledger). */
    readonly attempt?: string;
    readonly feeMinor: bigint;
    readonly feeBps: number;
    readonly currency: string;
    readonly issuerParticipantId: string;
    readonly merchantOwnerId: string;
    readonly merchantAccountId: string;
  },
): Promise<{ legs: TransferInput[]; move: PositionMove | undefined }> {
  const between = input.issuerParticipantId !== input.merchantOwnerId;
  const prefix = !between || input.attempt === undefined ? input.authorizationId : `${input.authorizationId}_${input.attempt}`;
  const chain = interparticipantLegs({
    legId: (leg) => `${prefix}_${leg === 'merchant_fee' ? 'fee' : leg === 'merchant_fee_in' ? 'fee_in' : `fee_${leg}`}`,
    sourceAccountId: input.merchantAccountId,
    payeeAccountId: await accounts.ensureSystemAccount('fees', input.issuerParticipantId, input.currency),
    payerParticipantId: input.merchantOwnerId,
    payeeParticipantId: input.issuerParticipantId,
    ...(await positionAccounts(accounts, input.merchantOwnerId, input.issuerParticipantId, input.currency)),
    amountMinor: input.feeMinor,
    currency: input.currency,
    purpose: 'merchant_fee',
    paymentId: `${input.authorizationId}_fee`,
    metadata: { authorizationId: input.authorizationId, feeBps: input.feeBps },
  });
  // The fee comes out of what the capture just paid the merchant owner, so its position leg goes after the merchant's
  // leg into that position: the owner's liquidity or cap is never asked to cover it (a merchant owner may have none).
  const [position, ...rest] = chain.legs;
  return { legs: chain.move === undefined || position === undefined ? chain.legs : [...rest.slice(0, 1), position, ...rest.slice(1)], move: chain.move };
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
  const chain = interparticipantLegs({
    legId: (leg) => (leg === 'card_refund' ? input.refundId : `${input.refundId}_${leg}`),
    sourceAccountId: input.merchantAccountId,
    payeeAccountId: input.sourceAccountId,
    payerParticipantId: input.merchantOwnerId,
    payeeParticipantId: input.issuerParticipantId,
    ...(await positionAccounts(accounts, input.merchantOwnerId, input.issuerParticipantId, input.currency)),
    amountMinor: input.amountMinor,
    currency: input.currency,
    purpose: 'card_refund',
    paymentId: input.refundId,
    metadata,
  });
  return { legs: chain.legs.map((l, k) => ({ ...l, linked: k < chain.legs.length - 1 })), move: chain.move };
}

/**
 * What a card payment across currencies takes from the payer's account for `amountMinor` of the merchant's currency,
 * at the authorization's bound rate: rounded up (the customer pays), never more than what is held; the whole amount
 * authorized takes exactly the hold.
 */
export function fxSourceForCapture(a: Pick<Authorization, 'amountMinor' | 'currency'> & { fx: CardFx }, amountMinor: bigint): bigint {
  if (amountMinor === a.amountMinor) return a.fx.sourceAmountMinor;
  const s = sendFor(a.fx.rate, a.fx.sourceCurrency, a.currency, amountMinor);
  return s > a.fx.sourceAmountMinor ? a.fx.sourceAmountMinor : s;
}

/**
 * What a refund of `amountMinor` (merchant's currency) gives back to the payer's account at the bound rate: rounded
 * down (the customer receives), never more than is left of what was taken; the refund that completes the captured
 * amount gives back exactly what is left, so a payment refunded in full returns every minor unit taken.
 */
export function fxSourceForRefund(a: Pick<Authorization, 'currency' | 'capturedMinor' | 'refundedMinor'> & { fx: CardFx }, amountMinor: bigint): bigint {
  const left = a.fx.sourceCapturedMinor - a.fx.sourceRefundedMinor;
  if (a.refundedMinor + amountMinor === a.capturedMinor) return left;
  // The inverse direction of the bound rate (send units per receive unit), rounded down: the customer receives.
  const scale = (c: string) => 10n ** BigInt(currencyMinorUnit(c) ?? 2);
  const back = (amountMinor * 10n ** BigInt(RATE_SCALE_DIGITS) * scale(a.fx.sourceCurrency)) / (a.fx.rate * scale(a.currency));
  return back > left ? left : back;
}

/** What both FX leg builders take: the payment in the merchant's currency, its converted side, and who is on each side. */
interface FxLegInput {
  readonly authorizationId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly sourceMinor: bigint;
  readonly sourceCurrency: string;
  readonly providerParticipantId: string;
  readonly rateId: string;
  readonly issuerParticipantId: string;
  readonly merchantOwnerId: string;
  readonly sourceAccountId: string;
  readonly merchantAccountId: string;
}

/**
 * The legs that capture `amountMinor` of a card payment across currencies, and the two position moves they make: the
 * hold on the payer's account released, then two payments between participants through the FX provider the
 * authorization bound (as a P2P payment across currencies): the issuer pays the provider `sourceMinor` in the source
 * currency (the provider's position rises there), the provider pays the merchant's owner `amountMinor` in the
 * merchant's currency (its position falls there, within its liquidity and cap). A side that is the provider itself
 * moves no position.
 */
export async function fxCaptureLegs(
  accounts: Pick<AccountService, 'ensureSystemAccount'>,
  input: FxLegInput & { readonly attempt?: string; readonly holdId: string },
): Promise<{ legs: TransferInput[]; moves: PositionMove[]; providerPosition: string }> {
  const metadata = { authorizationId: input.authorizationId, fxRateId: input.rateId };
  const prefix = input.attempt === undefined ? input.authorizationId : `${input.authorizationId}_${input.attempt}`;
  const provider = input.providerParticipantId;
  const providerIn = await accounts.ensureSystemAccount('funding', provider, input.sourceCurrency);
  const providerOut = await accounts.ensureSystemAccount('funding', provider, input.currency);
  const sendSide = interparticipantLegs({
    legId: (leg) => `${prefix}_fx_in_${leg}`,
    sourceAccountId: input.sourceAccountId,
    payeeAccountId: providerIn,
    payerParticipantId: input.issuerParticipantId,
    payeeParticipantId: provider,
    payerPositionAccountId: await accounts.ensureSystemAccount('funding', input.issuerParticipantId, input.sourceCurrency),
    payeePositionAccountId: providerIn,
    amountMinor: input.sourceMinor,
    currency: input.sourceCurrency,
    purpose: 'card_fx_in',
    paymentId: input.authorizationId,
    metadata,
  });
  const receiveSide = interparticipantLegs({
    legId: (leg) => `${prefix}_fx_out_${leg}`,
    sourceAccountId: providerOut,
    payeeAccountId: input.merchantAccountId,
    payerParticipantId: provider,
    payeeParticipantId: input.merchantOwnerId,
    payerPositionAccountId: providerOut,
    payeePositionAccountId: await accounts.ensureSystemAccount('funding', input.merchantOwnerId, input.currency),
    amountMinor: input.amountMinor,
    currency: input.currency,
    purpose: 'card_fx_out',
    paymentId: input.authorizationId,
    metadata,
  });
  return {
    legs: [{ id: `${prefix}_release`, kind: 'void_pending', pendingId: input.holdId, purpose: 'card_release', metadata }, ...sendSide.legs, ...receiveSide.legs],
    moves: [sendSide.move, receiveSide.move].filter((m): m is PositionMove => m !== undefined),
    providerPosition: providerOut,
  };
}

/**
 * A refund across currencies, linked: the merchant's owner pays the provider `amountMinor` in the merchant's currency,
 * the provider pays the issuer `sourceMinor` back in the source currency, onto the payer's account. The merchant's
 * leg's id is `refundId` (the refund's transfer of record).
 */
export async function fxRefundLegs(
  accounts: Pick<AccountService, 'ensureSystemAccount'>,
  input: FxLegInput & { readonly refundId: string },
): Promise<{ legs: TransferInput[]; moves: PositionMove[]; providerPosition: string }> {
  const metadata = { authorizationId: input.authorizationId, fxRateId: input.rateId };
  const provider = input.providerParticipantId;
  const providerIn = await accounts.ensureSystemAccount('funding', provider, input.currency);
  const providerOut = await accounts.ensureSystemAccount('funding', provider, input.sourceCurrency);
  const merchantSide = interparticipantLegs({
    // The merchant's leg is the refund's transfer of record: its id is the refund's.
    legId: (leg) => (leg === 'card_refund' ? input.refundId : `${input.refundId}_fx_in_${leg}`),
    sourceAccountId: input.merchantAccountId,
    payeeAccountId: providerIn,
    payerParticipantId: input.merchantOwnerId,
    payeeParticipantId: provider,
    payerPositionAccountId: await accounts.ensureSystemAccount('funding', input.merchantOwnerId, input.currency),
    payeePositionAccountId: providerIn,
    amountMinor: input.amountMinor,
    currency: input.currency,
    purpose: 'card_refund',
    paymentId: input.refundId,
    metadata,
  });
  const payerSide = interparticipantLegs({
    legId: (leg) => `${input.refundId}_fx_out_${leg}`,
    sourceAccountId: providerOut,
    payeeAccountId: input.sourceAccountId,
    payerParticipantId: provider,
    payeeParticipantId: input.issuerParticipantId,
    payerPositionAccountId: providerOut,
    payeePositionAccountId: await accounts.ensureSystemAccount('funding', input.issuerParticipantId, input.sourceCurrency),
    amountMinor: input.sourceMinor,
    currency: input.sourceCurrency,
    purpose: 'card_refund_fx',
    paymentId: input.refundId,
    metadata,
  });
  const legs = [...merchantSide.legs, ...payerSide.legs];
  return { legs: legs.map((l, k) => ({ ...l, linked: k < legs.length - 1 })), moves: [merchantSide.move, payerSide.move].filter((m): m is PositionMove => m !== undefined), providerPosition: providerOut };
}

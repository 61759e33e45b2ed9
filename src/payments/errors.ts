import type { FxErrorCode } from '../fx/rates.ts';
import type { StepUpErrorCode } from '../stepup/service.ts';
import type { LiquidityErrorCode } from '../liquidity/service.ts';
import type { CardDeclineCode, TokenPaymentDeclineCode } from '../cards/errors.ts';
import type { DomainError } from '../platform/result.ts';

/**
 * Error codes of issue 5 (merchants, QR, links, authorizations), one union so that src/api/errors.ts takes one line.
 * Declines by the card, the token, the issuer or risk answer 402 (payment declined); bad or tampered input 422.
 */
export type PaymentsErrorCode =
  | CardDeclineCode
  | TokenPaymentDeclineCode
  | 'merchant_not_found'
  | 'merchant_invalid'
  | 'not_merchant'
  | 'not_issuer_participant'
  | 'qr_invalid'
  | 'cpm_invalid'
  | 'qr_not_found'
  | 'qr_expired'
  | 'qr_already_paid'
  | 'qr_unknown_merchant'
  | 'amount_mismatch'
  | 'amount_required'
  | 'payment_currency_mismatch'
  | 'payment_link_not_found'
  | 'payment_link_expired'
  | 'payment_link_used'
  | 'payment_source_invalid'
  | 'no_funding_account'
  | 'insufficient_funds'
  | 'risk_declined'
  | 'step_up_required'
  | 'issuer_declined'
  | 'issuer_unavailable'
  | 'payment_not_found'
  | 'payment_state'
  | 'already_captured'
  | 'capture_exceeds_authorized'
  | 'refund_exceeds_captured'
  | 'issuer_settings_invalid'
  | 'invalid_authorization_url'
  | 'payment_risk_rule_invalid'
  | 'payment_ledger_rejected';

const DECLINED = 402;

export const paymentsErrorStatus: Record<PaymentsErrorCode, number> = {
  card_not_active: DECLINED,
  card_expired: DECLINED,
  currency_not_allowed: DECLINED,
  exceeds_transaction_limit: DECLINED,
  exceeds_daily_limit: DECLINED,
  exceeds_monthly_limit: DECLINED,
  mcc_blocked: DECLINED,
  country_not_allowed: DECLINED,
  channel_not_allowed: DECLINED,
  token_unknown: DECLINED,
  token_not_active: DECLINED,
  token_expired: DECLINED,
  cryptogram_invalid: DECLINED,
  atc_replayed: DECLINED,
  merchant_not_found: 404,
  merchant_invalid: 400,
  not_merchant: 403,
  not_issuer_participant: 403,
  qr_invalid: 422,
  cpm_invalid: 422,
  qr_not_found: 404,
  qr_expired: 422,
  qr_already_paid: 409,
  qr_unknown_merchant: 422,
  amount_mismatch: 422,
  amount_required: 400,
  payment_currency_mismatch: 422,
  payment_link_not_found: 404,
  payment_link_expired: 410,
  payment_link_used: 409,
  payment_source_invalid: 422,
  no_funding_account: DECLINED,
  insufficient_funds: 422,
  risk_declined: 403,
  step_up_required: 428,
  issuer_declined: DECLINED,
  issuer_unavailable: DECLINED,
  payment_not_found: 404,
  payment_state: 409,
  already_captured: 409,
  capture_exceeds_authorized: 422,
  refund_exceeds_captured: 422,
  issuer_settings_invalid: 400,
  invalid_authorization_url: 400,
  payment_risk_rule_invalid: 400,
  payment_ledger_rejected: 422,
};

/** What payment services answer: their own codes, and a step-up proof refused (the step-up module's code). */
export type PErr = DomainError<PaymentsErrorCode | Extract<StepUpErrorCode, 'step_up_invalid'> | Extract<LiquidityErrorCode, 'liquidity_exceeded'> | Extract<FxErrorCode, 'fx_rate_unavailable'>>;

import type { FxErrorCode } from '../fx/index.ts';
import type { StepUpErrorCode } from '../stepup/index.ts';
import type { LiquidityErrorCode } from '../liquidity/index.ts';
import type { CardDeclineCode, TokenPaymentDeclineCode } from '../cards/index.ts';
import type { DomainError } from '../platform/result.ts';

/**
 * The codes acceptance answers (merchants, QR, links, card payments); their statuses and default messages are in the
 * error catalogue (src/api/errors.ts): declines by the card, the token, the issuer or risk answer 402, bad or tampered
 * input 422.
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
  | 'exceeds_credit_limit'
  | 'risk_declined'
  | 'step_up_required'
  | 'issuer_declined'
  | 'issuer_unavailable'
  /** A bank that keeps its own books refused a debit under the customer's open-banking consent (MD01). */
  | 'consent_revoked'
  | 'payment_not_found'
  | 'payment_state'
  | 'already_captured'
  | 'capture_exceeds_authorized'
  | 'refund_exceeds_captured'
  /** The payer's bank (it keeps its own books) refused the refund's credit or did not answer in time (ISO 20022 reason in details). */
  | 'refund_rejected'
  | 'issuer_settings_invalid'
  | 'invalid_authorization_url'
  | 'payment_risk_rule_invalid'
  | 'payment_ledger_rejected'
  | 'fx_liquidity_insufficient'
  | CouponUseErrorCode;

/** A coupon the payer's wallet named (or the one chosen) that cannot be applied to this payment. */
export type CouponUseErrorCode = 'coupon_not_found' | 'coupon_expired' | 'coupon_limit_reached' | 'coupon_not_applicable';

/** What payment services answer: their own codes, and a step-up proof refused (the step-up module's code). */
export type PErr = DomainError<PaymentsErrorCode | Extract<StepUpErrorCode, 'step_up_invalid'> | Extract<LiquidityErrorCode, 'liquidity_exceeded'> | Extract<FxErrorCode, 'fx_rate_unavailable' | 'fx_rate_expired' | 'fx_tier_not_covered'>>;

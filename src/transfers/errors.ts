import type { FxErrorCode } from '../fx/index.ts';
import type { RiskErrorCode } from '../risk/index.ts';
import type { StepUpErrorCode } from '../stepup/index.ts';
import type { LiquidityErrorCode } from '../liquidity/index.ts';

/** Every error code of accounts/linking, aliases, FX, risk and transfers (their statuses are in src/api/errors.ts). */
export type TransfersErrorCode =
  | FxErrorCode
  | RiskErrorCode
  | 'customer_not_found'
  | 'customer_account_exists'
  | 'account_unavailable'
  | 'bank_customer_not_found'
  | 'consent_not_found'
  | 'consent_expired'
  | 'consent_code_invalid'
  | 'consent_locked'
  | 'link_not_found'
  | 'consent_revoked'
  | 'consent_not_active'
  | 'consent_state_invalid'
  | 'bank_authorization_failed'
  | 'bank_unavailable'
  | 'open_banking_unavailable'
  | 'invalid_alias'
  | 'alias_taken'
  | 'alias_not_found'
  | 'alias_move_not_found'
  | 'alias_move_expired'
  | 'alias_code_invalid'
  | 'alias_move_locked'
  | 'alias_lookup_limited'
  | 'quote_amount_required'
  | 'quote_amount_conflict'
  | 'quote_not_found'
  | 'quote_expired'
  | 'quote_already_used'
  | 'cannot_pay_self'
  | 'currency_not_receivable'
  | 'source_currency_mismatch'
  | 'limit_exceeded'
  | 'risk_declined'
  | 'step_up_required'
  | 'insufficient_funds'
  | 'fx_liquidity_insufficient'
  | 'ledger_rejected'
  | 'payment_not_found'
  | 'payment_rejected'
  | 'fee_schedule_invalid'
  | 'request_not_found'
  | 'request_not_pending'
  | 'not_request_payer'
  | 'request_blocked'
  | 'too_many_pending_requests'
  | 'request_rate_limited'
  | 'split_invalid'
  | 'split_amounts_mismatch'
  | 'split_not_found'
  | 'reminder_rate_limited'
  | 'red_packet_invalid'
  | 'red_packet_not_found'
  | 'red_packet_not_member'
  | 'red_packet_already_claimed'
  | 'red_packet_empty'
  | 'red_packet_expired';

/** What transfer services answer: their own codes, a step-up proof refused, a participant's position at its cap. */
export type TErr = { readonly code: TransfersErrorCode | Extract<StepUpErrorCode, 'step_up_invalid'> | Extract<LiquidityErrorCode, 'liquidity_exceeded'>; readonly message: string; readonly details?: object };

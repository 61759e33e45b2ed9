import type { FxErrorCode } from '../fx/rates.ts';
import type { RiskErrorCode } from '../risk/service.ts';
import type { StepUpErrorCode } from '../stepup/service.ts';
import type { LiquidityErrorCode } from '../liquidity/service.ts';

/** Every error code of accounts/linking, aliases, FX, risk and transfers (issue 6), with its HTTP status. */
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

export const transfersErrorStatus: Record<TransfersErrorCode, number> = {
  fx_rates_invalid: 400,
  fx_rate_unavailable: 422,
  risk_alert_not_found: 404,
  risk_rule_invalid: 400,
  customer_not_found: 404,
  customer_account_exists: 409,
  account_unavailable: 404,
  bank_customer_not_found: 404,
  consent_not_found: 404,
  consent_expired: 410,
  consent_code_invalid: 422,
  consent_locked: 403,
  link_not_found: 404,
  invalid_alias: 400,
  alias_taken: 409,
  alias_not_found: 404,
  alias_move_not_found: 404,
  alias_move_expired: 410,
  alias_code_invalid: 422,
  alias_move_locked: 403,
  alias_lookup_limited: 429,
  quote_amount_required: 400,
  quote_amount_conflict: 400,
  quote_not_found: 404,
  quote_expired: 410,
  quote_already_used: 409,
  cannot_pay_self: 422,
  currency_not_receivable: 422,
  source_currency_mismatch: 422,
  limit_exceeded: 422,
  risk_declined: 403,
  step_up_required: 428,
  insufficient_funds: 422,
  fx_liquidity_insufficient: 503,
  ledger_rejected: 422,
  payment_not_found: 404,
  fee_schedule_invalid: 400,
  request_not_found: 404,
  request_not_pending: 409,
  not_request_payer: 403,
  request_blocked: 403,
  too_many_pending_requests: 429,
  request_rate_limited: 429,
  split_invalid: 400,
  split_amounts_mismatch: 422,
  split_not_found: 404,
  reminder_rate_limited: 429,
  red_packet_invalid: 400,
  red_packet_not_found: 404,
  red_packet_not_member: 403,
  red_packet_already_claimed: 409,
  red_packet_empty: 409,
  red_packet_expired: 410,
};

/** What transfer services answer: their own codes, a step-up proof refused, a participant's position at its cap. */
export type TErr = { readonly code: TransfersErrorCode | Extract<StepUpErrorCode, 'step_up_invalid'> | Extract<LiquidityErrorCode, 'liquidity_exceeded'>; readonly message: string; readonly details?: object };

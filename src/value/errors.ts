import type { DomainError } from '../platform/result.ts';
import type { MoneyErrorCode } from '../platform/money.ts';

/**
 * The codes the value capability answers (rewards, coupons and membership cards, savings pots); statuses and default
 * messages are in the error catalogue (src/api/errors.ts). A code may also be answered elsewhere with the same meaning.
 */
export type ValueErrorCode =
  | 'pot_not_found'
  | 'pot_locked'
  | 'pot_limit_reached'
  | 'coupon_not_found'
  | 'coupon_expired'
  | 'coupon_limit_reached'
  | 'coupon_not_applicable'
  | 'coupon_invalid'
  | 'coupon_already_held'
  | 'offer_consent_required'
  | 'targeted_offer_not_found'
  | 'targeted_offer_invalid'
  | 'targeted_offer_not_eligible'
  | 'targeted_offer_accepted'
  | 'membership_program_not_found'
  | 'membership_card_not_found'
  | 'membership_exists'
  | 'reward_rule_invalid'
  | 'rewards_insufficient'
  | 'card_not_found'
  | 'token_not_found'
  | 'card_product_not_found'
  | 'merchant_not_found'
  | 'customer_not_found'
  | 'account_unavailable'
  | 'insufficient_funds'
  | 'liquidity_exceeded'
  | 'ledger_rejected';

export type VErr = DomainError<ValueErrorCode | MoneyErrorCode>;

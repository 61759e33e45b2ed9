/**
 * Error codes of the cards and tokens capabilities, one union so that src/api/errors.ts takes one line.
 */
export type CardsErrorCode =
  | 'not_issuer'
  | 'not_wallet'
  | 'card_product_not_found'
  | 'bin_in_token_range'
  | 'bin_taken'
  | 'card_not_found'
  | 'card_state'
  | 'invalid_controls'
  | 'invalid_credit_limit'
  | 'card_request_key_reused'
  | 'token_not_found'
  | 'token_state'
  | 'token_exists'
  | 'provisioning_not_found'
  | 'provisioning_state'
  | 'reference_not_found'
  | 'card_data_invalid'
  | 'consent_required'
  | 'step_up_failed'
  | 'step_up_expired'
  | 'step_up_locked'
  | 'device_key_invalid'
  | 'device_not_bound'
  | 'device_signature_invalid'
  | 'push_receipt_invalid'
  | 'push_receipt_used'
  | 'push_receipt_expired'
  | 'push_wallet_invalid';

/** Why a card payment is declined by the card's own state or controls (checkControls), for the card pipeline. */
export type CardDeclineCode =
  | 'card_not_active'
  | 'card_expired'
  | 'currency_not_allowed'
  | 'exceeds_transaction_limit'
  | 'exceeds_daily_limit'
  | 'exceeds_monthly_limit'
  | 'mcc_blocked'
  | 'country_not_allowed'
  | 'channel_not_allowed';

/** Why a token payment is refused by verifyTokenPayment. */
export type TokenPaymentDeclineCode =
  | 'token_unknown'
  | 'token_not_active'
  | 'token_expired'
  | 'card_not_active'
  | 'channel_not_allowed'
  | 'cryptogram_invalid'
  | 'key_exhausted'
  | 'atc_replayed';

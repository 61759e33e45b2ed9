import type { ParticipantErrorCode } from '../participants/index.ts';
import type { CustomerErrorCode } from '../customers/index.ts';
import type { CardsErrorCode } from '../cards/index.ts';
import type { PaymentsErrorCode } from '../payments/index.ts';
import type { TransfersErrorCode } from '../transfers/index.ts';
import type { LedgerErrorCode } from '../ledger/index.ts';
import type { IdempotencyErrorCode } from '../platform/idempotency.ts';
import type { MoneyErrorCode } from '../platform/money.ts';
import type { StepUpErrorCode } from '../stepup/index.ts';
import type { CustomerLinkErrorCode } from '../customers/index.ts';
import type { LiquidityErrorCode } from '../liquidity/index.ts';
import type { SettlementErrorCode } from '../settlement/index.ts';
import type { CashErrorCode } from '../cash/index.ts';
import type { WebhookSecretErrorCode } from '../webhooks/index.ts';
import type { ValueErrorCode } from '../value/index.ts';
import type { OfflineErrorCode } from '../offline/index.ts';
import type { CreditErrorCode } from '../credit/index.ts';
import type { DisputesErrorCode } from '../disputes/index.ts';

/**
 * THE error catalogue: every code the API can answer, with its HTTP status and default message — defined once, here.
 * Capabilities export only the unions of the codes they answer (a code may appear in several unions: the same
 * meaning); this object is one literal, so a code defined twice does not compile, a code missing from it does not
 * compile (`satisfies`), and neither does a code no union declares. A call site may give a more specific message; the
 * default is what the documentation, the pages' translations and an answer without one show.
 */
type PlatformErrorCode =
  | 'validation_failed'
  | 'unknown_field'
  | 'malformed_json'
  | 'malformed_request'
  | 'body_too_large'
  | 'headers_too_large'
  | 'request_timeout'
  | 'unsupported_media_type'
  | 'not_found'
  | 'rate_limited'
  | 'idempotency_key_required'
  | 'internal'
  | 'unavailable';

export type ErrorCode =
  | PlatformErrorCode
  | IdempotencyErrorCode
  | MoneyErrorCode
  | ParticipantErrorCode
  | CustomerErrorCode
  // @modules:error-code-types (each capability adds its code union here)
  | LedgerErrorCode
  | CardsErrorCode
  | TransfersErrorCode
  | PaymentsErrorCode
  | StepUpErrorCode
  | CustomerLinkErrorCode
  | LiquidityErrorCode
  | SettlementErrorCode
  | CashErrorCode
  | WebhookSecretErrorCode
  | ValueErrorCode
  | OfflineErrorCode
  | CreditErrorCode
  | DisputesErrorCode
  ;

export interface ErrorEntry {
  readonly status: number;
  readonly message: string;
}

export const errorCatalogue = {
  // Platform: HTTP, validation, idempotency, money
  validation_failed: { status: 400, message: "the request does not match the operation’s schema" },
  unknown_field: { status: 400, message: "the request has a field the operation does not know" },
  malformed_json: { status: 400, message: "the body is not valid JSON" },
  malformed_request: { status: 400, message: "the request is not valid HTTP/1.1" },
  body_too_large: { status: 413, message: "request body is larger than the limit" },
  headers_too_large: { status: 431, message: "the request headers are larger than the limit" },
  request_timeout: { status: 408, message: "the request was not received in time" },
  unsupported_media_type: { status: 415, message: "send application/json" },
  not_found: { status: 404, message: "no such resource" },
  rate_limited: { status: 429, message: "too many requests for this participant" },
  idempotency_key_required: { status: 400, message: "this request moves money: send an Idempotency-Key header" },
  internal: { status: 500, message: "internal error" },
  unavailable: { status: 503, message: "the hub cannot take this request right now; retry shortly" },
  idempotency_key_invalid: { status: 400, message: "Idempotency-Key must be 1–128 printable ASCII characters" },
  idempotency_key_reused: { status: 422, message: "this Idempotency-Key was used with a different request" },
  idempotency_in_progress: { status: 409, message: "a request with this Idempotency-Key is still being processed; retry later" },
  invalid_amount: { status: 400, message: "an amount must be a decimal string such as \"12.30\"" },
  amount_not_positive: { status: 400, message: "the amount must be greater than zero" },
  amount_precision: { status: 400, message: "the amount has more decimal places than its currency allows" },
  amount_too_large: { status: 400, message: "the amount is larger than the hub can hold" },
  unknown_currency: { status: 400, message: "not an ISO 4217 currency the hub supports" },
  // Participants and access
  participant_not_found: { status: 404, message: "no such participant" },
  participant_suspended: { status: 403, message: "the participant is suspended" },
  credential_not_found: { status: 404, message: "no such credential" },
  credential_limit: { status: 409, message: "too many active credentials; revoke one first" },
  invalid_client: { status: 401, message: "unknown client or wrong secret" },
  unauthorized: { status: 401, message: "missing, expired or revoked credentials" },
  forbidden: { status: 403, message: "a customer session cannot call this operation; call it with the participant credential" },
  invalid_webhook_url: { status: 400, message: "the webhook URL is not an allowed https URL" },
  webhook_secret_not_retrievable: { status: 403, message: "a webhook signing secret is shown once; only demo participants read theirs again, in demo mode: rotate it to get a new one" },
  invalid_country: { status: 400, message: "country must be an ISO 3166-1 alpha-2 code" },
  // Customers and consent
  customer_not_found: { status: 404, message: "no such customer" },
  customer_exists: { status: 409, message: "a customer with this externalId exists" },
  invalid_phone: { status: 400, message: "phone is not a valid phone number" },
  customer_has_balance: { status: 409, message: "the customer still holds money, a pending hold or an open red packet; pay out or settle it first" },
  link_customer_not_found: { status: 404, message: "no such customer at the other participant" },
  customer_link_exists: { status: 409, message: "these records are linked already" },
  customer_link_not_found: { status: 404, message: "no such link" },
  customer_link_consent_not_found: { status: 404, message: "no such consent" },
  customer_link_consent_expired: { status: 410, message: "the code expired; ask for a new one" },
  customer_link_consent_locked: { status: 423, message: "too many wrong codes; ask for a new one" },
  customer_link_code_invalid: { status: 422, message: "wrong code" },
  // Step-up
  challenge_not_found: { status: 404, message: "no such challenge" },
  challenge_request_invalid: { status: 400, message: "not a step-up request from this hub, or it expired: retry the payment for a fresh one" },
  challenge_method_unavailable: { status: 409, message: "the customer has not enrolled this step-up method" },
  challenge_state: { status: 409, message: "the challenge cannot take this action in its current state" },
  challenge_failed: { status: 422, message: "the answer was not accepted" },
  challenge_expired: { status: 410, message: "the challenge expired; retry the payment for a new one" },
  challenge_locked: { status: 423, message: "too many wrong answers; retry the payment for a new challenge" },
  step_up_invalid: { status: 422, message: "the step-up challenge is not a completed, unused, unexpired challenge for this payment" },
  authenticator_exists: { status: 409, message: "this customer already has an authenticator" },
  passkey_registration_invalid: { status: 422, message: "the passkey registration was not accepted" },
  passkey_registration_not_found: { status: 404, message: "no passkey registration with this id: ask for new options" },
  // Ledger
  invalid_transfer: { status: 400, message: "the transfer is not valid" },
  metadata_too_large: { status: 400, message: "the transfer metadata is larger than the limit" },
  same_account: { status: 422, message: "a transfer needs two different accounts" },
  account_not_found: { status: 404, message: "no such account" },
  currency_mismatch: { status: 422, message: "the transfer currency must equal both accounts’ currency" },
  account_closed: { status: 422, message: "an account of this transfer is closed" },
  insufficient_funds: { status: 422, message: "the source does not hold enough money" },
  exceeds_credit_limit: { status: 422, message: "the debit account would exceed its credit limit" },
  exceeds_debits: { status: 422, message: "the credit account would have credits exceeding its debits" },
  overflow: { status: 422, message: "an account balance would overflow" },
  pending_not_found: { status: 404, message: "no pending transfer has this id" },
  pending_already_resolved: { status: 409, message: "the pending transfer was already posted or voided" },
  pending_expired: { status: 409, message: "the pending transfer has expired" },
  post_amount_exceeds_pending: { status: 422, message: "the posted amount exceeds the pending amount" },
  linked_transfer_failed: { status: 422, message: "a transfer linked with this one failed" },
  linked_chain_open: { status: 400, message: "the last transfer of a batch must not be linked" },
  transfer_exists_with_different_fields: { status: 409, message: "a transfer with this id exists with different fields" },
  transfer_not_found: { status: 404, message: "no transfer has this id" },
  invalid_account: { status: 400, message: "the account definition is not valid" },
  account_exists: { status: 409, message: "an account with this id already exists" },
  account_has_pending: { status: 409, message: "the account has pending transfers" },
  invalid_page: { status: 400, message: "the cursor is not one this endpoint issued" },
  // Connected participants
  invalid_connection: { status: 400, message: "the participant's connection (mode, connector endpoint, public key, deadline) is not valid" },
  payment_rejected: { status: 422, message: "the payment was refused by a participant that keeps its own books, or timed out: nothing moved (details.reason: ISO 20022 status reason)" },
  // Positions and liquidity
  liquidity_exceeded: { status: 422, message: "the payer participant's position cannot cover the amount (prefunded liquidity and net debit cap)" },
  liquidity_invalid: { status: 400, message: "the liquidity movement or cap is not valid" },
  // Settlement
  settlement_window_not_found: { status: 404, message: "no such settlement window" },
  settlement_window_open: { status: 409, message: "the settlement window is still open: close it first" },
  settlement_invalid: { status: 400, message: "the settlement request is not valid" },
  settlement_csv_invalid: { status: 422, message: "the uploaded CSV is not a settlement view the hub can read" },
  // FX
  fx_rates_invalid: { status: 400, message: "the rates document is not valid" },
  fx_rate_expired: { status: 422, message: "the FX rate expired: the provider must post a new one" },
  fx_tier_not_covered: { status: 422, message: "no tier of the FX rates in force prices this amount" },
  fx_provider_not_registered: { status: 403, message: "this participant is not registered as an FX provider" },
  fx_rate_invalid: { status: 400, message: "the FX rate is not valid" },
  liquidity_request_not_found: { status: 404, message: "no such liquidity request" },
  liquidity_request_decided: { status: 409, message: "the liquidity request was already approved or rejected" },
  cash_movement_not_found: { status: 404, message: "no such withdrawal or top-up" },
  cash_link_invalid: { status: 422, message: "the linked bank account cannot be used for this (revoked, another currency, or kept in the bank's own books)" },
  fx_rate_unavailable: { status: 422, message: "no reference rate for this currency or pair" },
  // Risk
  risk_alert_not_found: { status: 404, message: "no such alert" },
  risk_rule_invalid: { status: 400, message: "the risk rule is not valid" },
  risk_declined: { status: 403, message: "the payment was stopped by a risk rule" },
  step_up_required: { status: 428, message: "the customer must approve this payment: see details.stepUp" },
  // Accounts and account links
  customer_account_exists: { status: 409, message: "the customer already has an account in this currency" },
  account_unavailable: { status: 404, message: "the account is not available to this caller" },
  bank_customer_not_found: { status: 404, message: "no such customer at the account's bank" },
  consent_not_found: { status: 404, message: "no such consent" },
  consent_expired: { status: 410, message: "the code expired; ask for a new one" },
  consent_code_invalid: { status: 422, message: "wrong code" },
  consent_locked: { status: 403, message: "too many wrong codes; ask for a new one" },
  link_not_found: { status: 404, message: "no such link" },
  consent_revoked: { status: 403, message: "the customer revoked this consent (in the wallet or at the bank): link the account again to use it" },
  consent_not_active: { status: 409, message: "the consent is not active: the customer has not approved it at the bank yet, or it failed" },
  consent_state_invalid: { status: 422, message: "the state does not match the authorization request of this consent" },
  bank_authorization_failed: { status: 422, message: "the bank refused to grant access (the code is wrong, used or expired, or PKCE did not match): start again" },
  bank_unavailable: { status: 502, message: "the bank did not answer, or its answer was not signed by its registered key: try again" },
  open_banking_unavailable: { status: 422, message: "this participant does not keep its own books in this currency: there is no account at the bank to link by consent" },
  // Aliases
  invalid_alias: { status: 400, message: "not a valid alias of its type" },
  alias_taken: { status: 409, message: "the alias is already registered" },
  alias_not_found: { status: 404, message: "no such alias" },
  alias_move_not_found: { status: 404, message: "no such alias move" },
  alias_move_expired: { status: 410, message: "the code expired; ask for a new move" },
  alias_code_invalid: { status: 422, message: "wrong code" },
  webhook_delivery_not_found: { status: 404, message: "no such webhook delivery" },
  webhook_url_missing: { status: 409, message: "the participant has no webhook URL to deliver to" },
  alias_verification_not_found: { status: 404, message: "no such alias verification" },
  alias_verification_expired: { status: 410, message: "the code expired; ask for a new one" },
  alias_verification_locked: { status: 403, message: "too many wrong codes for this verification; ask for a new code" },
  alias_verification_required: { status: 403, message: "a customer adds a phone number or e-mail address by confirming a code sent there: POST /v1/aliases/verifications" },
  alias_move_locked: { status: 403, message: "too many wrong codes for this alias move; start a new move" },
  alias_lookup_limited: { status: 429, message: "too many alias lookups; slow down" },
  // Transfers: P2P, requests, splits, red packets
  quote_amount_required: { status: 400, message: "give the amount: sendAmount (what the payer pays) or receiveAmount (what the payee gets)" },
  quote_amount_conflict: { status: 400, message: "give one of sendAmount and receiveAmount, not both: the hub computes the other" },
  quote_not_found: { status: 404, message: "no such quote" },
  quote_expired: { status: 410, message: "the quote expired; ask for a new one" },
  quote_already_used: { status: 409, message: "this quote was used already" },
  cannot_pay_self: { status: 422, message: "the payee is the payer" },
  currency_not_receivable: { status: 422, message: "the payee cannot receive this currency" },
  source_currency_mismatch: { status: 422, message: "the source account holds another currency" },
  limit_exceeded: { status: 422, message: "the daily limit for this customer’s KYC level would be exceeded" },
  fx_liquidity_insufficient: { status: 503, message: "not enough FX liquidity for this conversion right now" },
  ledger_rejected: { status: 422, message: "the ledger refused the transfer" },
  payment_not_found: { status: 404, message: "no such payment" },
  fee_schedule_invalid: { status: 400, message: "the fee schedule is not valid" },
  request_not_found: { status: 404, message: "no such request" },
  request_not_pending: { status: 409, message: "the request is no longer pending" },
  not_request_payer: { status: 403, message: "this request was sent to another customer" },
  request_blocked: { status: 403, message: "this payer does not accept requests from you" },
  too_many_pending_requests: { status: 429, message: "this payer has too many requests waiting; try later" },
  request_rate_limited: { status: 429, message: "too many requests sent; try later" },
  split_invalid: { status: 400, message: "the split is not valid" },
  split_amounts_mismatch: { status: 422, message: "the members’ amounts do not add up to the total" },
  split_not_found: { status: 404, message: "no such split" },
  reminder_rate_limited: { status: 429, message: "members were reminded recently" },
  red_packet_invalid: { status: 400, message: "the red packet is not valid" },
  red_packet_not_found: { status: 404, message: "no such red packet" },
  red_packet_not_member: { status: 403, message: "this customer is not in the packet’s group" },
  red_packet_already_claimed: { status: 409, message: "this customer claimed this packet already" },
  red_packet_empty: { status: 409, message: "every share was claimed" },
  red_packet_expired: { status: 410, message: "the red packet has expired" },
  red_packet_not_open: { status: 409, message: "the red packet is not open: its sender’s bank has not funded it (yet, or refused)" },
  // Cards and tokens
  not_issuer: { status: 403, message: "only issuers (banks) manage cards" },
  not_wallet: { status: 403, message: "only wallets (token requestors) hold tokens" },
  card_product_not_found: { status: 404, message: "no such card product" },
  bin_in_token_range: { status: 400, message: "the BIN range overlaps the hub's token range" },
  bin_taken: { status: 409, message: "this BIN range overlaps an existing card product" },
  card_not_found: { status: 404, message: "no such card" },
  card_state: { status: 409, message: "the card cannot take this action in its current state" },
  invalid_controls: { status: 400, message: "the card controls are not valid" },
  invalid_credit_limit: { status: 400, message: "a debit card has no credit limit" },
  card_request_key_reused: { status: 422, message: "this Idempotency-Key was used for a different request" },
  token_not_found: { status: 404, message: "no such token" },
  token_state: { status: 409, message: "the token cannot take this action in its current state" },
  token_exists: { status: 409, message: "this wallet already holds a token for this card on this device" },
  provisioning_not_found: { status: 404, message: "no such provisioning" },
  provisioning_state: { status: 409, message: "the provisioning cannot take this action in its current state" },
  reference_not_found: { status: 404, message: "no card behind this reference" },
  card_data_invalid: { status: 422, message: "the card details were not accepted" },
  consent_required: { status: 400, message: "the customer's consent is required" },
  step_up_failed: { status: 422, message: "the code was not accepted" },
  step_up_expired: { status: 410, message: "the one-time code has expired; start again" },
  step_up_locked: { status: 423, message: "too many wrong codes; start the provisioning again" },
  device_key_invalid: { status: 400, message: "the device public key is not an ECDSA P-256 public key" },
  device_not_bound: { status: 409, message: "the token is bound to no device" },
  device_signature_invalid: { status: 403, message: "the request is not signed by the token's device" },
  push_receipt_invalid: { status: 404, message: "no such push receipt for this wallet" },
  push_receipt_used: { status: 409, message: "the push receipt was redeemed already" },
  push_receipt_expired: { status: 410, message: "the push receipt has expired" },
  push_wallet_invalid: { status: 422, message: "the named participant is not an active wallet" },
  card_not_active: { status: 402, message: "the card is not active (frozen, not yet activated or cancelled)" },
  card_expired: { status: 402, message: "the card has expired" },
  currency_not_allowed: { status: 402, message: "the card's controls do not allow this currency" },
  exceeds_transaction_limit: { status: 402, message: "the payment is above the card's per-transaction limit" },
  exceeds_daily_limit: { status: 402, message: "the payment would pass the card's daily spend limit" },
  exceeds_monthly_limit: { status: 402, message: "the payment would pass the card's monthly spend limit" },
  mcc_blocked: { status: 402, message: "the card's controls block this merchant category" },
  country_not_allowed: { status: 402, message: "the card's controls do not allow payments in this country" },
  channel_not_allowed: { status: 402, message: "the card's controls do not allow this channel" },
  token_unknown: { status: 402, message: "unknown token" },
  token_not_active: { status: 402, message: "the token is not active" },
  token_expired: { status: 402, message: "the token has expired or its expiry does not match" },
  cryptogram_invalid: { status: 402, message: "the cryptogram does not verify" },
  key_exhausted: { status: 402, message: "the limited-use key is used up or expired; replenish it" },
  atc_replayed: { status: 402, message: "the transaction counter was already used" },
  // Acceptance: merchants, QR, links, card payments
  merchant_not_found: { status: 404, message: "no such merchant" },
  merchant_invalid: { status: 400, message: "the merchant profile is not valid" },
  not_merchant: { status: 403, message: "only merchants and acquirers have merchant profiles" },
  not_issuer_participant: { status: 403, message: "only issuers configure card authorization" },
  qr_invalid: { status: 422, message: "the code is not a valid merchant-presented QR of this hub" },
  cpm_invalid: { status: 422, message: "the consumer-presented code is not valid EMV CPM data" },
  qr_not_found: { status: 404, message: "no such QR code" },
  qr_expired: { status: 422, message: "the dynamic code has expired" },
  qr_already_paid: { status: 409, message: "this dynamic code was already paid" },
  qr_unknown_merchant: { status: 422, message: "the code does not name a merchant of this hub" },
  amount_mismatch: { status: 422, message: "the amount differs from the amount in the code" },
  amount_required: { status: 400, message: "an amount is required here" },
  payment_currency_mismatch: { status: 422, message: "the payment's currency is not the merchant's (a payer's account in another currency converts through an FX provider)" },
  payment_link_not_found: { status: 404, message: "no such payment link" },
  payment_link_expired: { status: 410, message: "the payment link has expired" },
  payment_link_used: { status: 409, message: "the payment link was already paid" },
  payment_source_invalid: { status: 422, message: "the payment source is not the customer's token or account" },
  no_funding_account: { status: 402, message: "the card has no funding account at the hub" },
  issuer_declined: { status: 402, message: "the issuer declined the payment" },
  issuer_unavailable: { status: 402, message: "the issuer did not answer in time and its stand-in rules decline" },
  payment_state: { status: 409, message: "the payment cannot take this action in its current state" },
  already_captured: { status: 409, message: "the payment was already captured" },
  capture_exceeds_authorized: { status: 422, message: "a capture must be positive and at most the authorized amount" },
  refund_exceeds_captured: { status: 422, message: "refunds cannot exceed what was captured, less what was refunded or charged back" },
  refund_rejected: { status: 422, message: "the bank that keeps the payer's account refused the refund's credit, or did not answer in time: nothing moved (details.reason: ISO 20022 status reason)" },
  issuer_settings_invalid: { status: 400, message: "the authorization settings are not valid" },
  invalid_authorization_url: { status: 400, message: "the authorization URL is missing or not allowed" },
  payment_risk_rule_invalid: { status: 400, message: "the card-payment risk rule is not valid" },
  payment_ledger_rejected: { status: 422, message: "the ledger refused the payment" },
  // Value: savings pots, coupons and membership cards, rewards
  pot_not_found: { status: 404, message: "no such savings pot" },
  pot_locked: { status: 409, message: "the savings pot is locked until its date" },
  pot_limit_reached: { status: 409, message: "the customer has as many savings pots as allowed" },
  coupon_not_found: { status: 404, message: "no such coupon" },
  coupon_expired: { status: 410, message: "the coupon has expired" },
  coupon_limit_reached: { status: 409, message: "the coupon was used as many times as allowed per customer" },
  coupon_not_applicable: { status: 422, message: "the coupon does not apply to this payment" },
  coupon_invalid: { status: 400, message: "the coupon is not valid" },
  coupon_already_held: { status: 409, message: "the customer already keeps this coupon" },
  offer_consent_required: { status: 403, message: "the customer has not consented to offers targeted by their spending" },
  targeted_offer_not_found: { status: 404, message: "no such targeted offer" },
  targeted_offer_invalid: { status: 400, message: "the targeted offer is not valid" },
  targeted_offer_not_eligible: { status: 409, message: "the customer is not eligible for this offer" },
  targeted_offer_accepted: { status: 409, message: "the customer already accepted this offer" },
  membership_program_not_found: { status: 404, message: "no such membership programme" },
  membership_card_not_found: { status: 404, message: "no such membership card" },
  membership_exists: { status: 409, message: "the customer already holds this membership card" },
  reward_rule_invalid: { status: 400, message: "the rewards rule is not valid" },
  rewards_insufficient: { status: 422, message: "the card's rewards balance does not cover the redemption" },
  // Offline small payments
  offline_purse_not_found: { status: 404, message: "no such offline purse" },
  offline_purse_exists: { status: 409, message: "this device already has an open offline purse in this currency" },
  offline_purse_closed: { status: 409, message: "the offline purse was unloaded or closed: it takes no more loads or later tokens" },
  offline_purse_blocked: { status: 409, message: "the offline purse is blocked: a payment counter was signed twice" },
  offline_limit_exceeded: { status: 422, message: "an offline purse holds at most its per-device limit" },
  offline_reserve_exhausted: { status: 402, message: "the offline purse's reserve does not cover this token" },
  offline_token_invalid: { status: 422, message: "not a valid offline payment token" },
  offline_signature_invalid: { status: 422, message: "not signed by the offline purse's device key" },
  offline_token_replayed: { status: 409, message: "this offline token was already presented and settled" },
  offline_counter_reused: { status: 409, message: "another payment was already settled under this counter: a double spend" },
  offline_token_expired: { status: 422, message: "the offline token was signed too long ago to be uploaded" },
  offline_wrong_merchant: { status: 422, message: "the offline token pays another merchant" },
  offline_unload_invalid: { status: 422, message: "the unload contradicts what the hub holds or has settled" },
  // Credit lines: credit cards' lines, banks' lines, statements, repayments
  card_not_credit: { status: 409, message: "this is not a credit card" },
  credit_line_not_found: { status: 404, message: "no credit line of yours has this account" },
  repayment_exceeds_balance: { status: 422, message: "the repayment is more than is owed on the credit line" },
  repayment_account_invalid: { status: 422, message: "repayments come from a customer account the payer may debit, in the line's currency" },
  // Disputes and fraud recalls
  dispute_not_found: { status: 404, message: "no such dispute" },
  dispute_window_closed: { status: 422, message: "the payment is too old to dispute (card: 120 days, P2P: 80 days)" },
  dispute_deadline_passed: { status: 409, message: "the answer to this dispute was due earlier" },
  dispute_state: { status: 409, message: "the dispute cannot take this step in its current state" },
  dispute_exists: { status: 409, message: "this payment already has an open dispute" },
  dispute_amount_invalid: { status: 422, message: "a dispute is for a positive amount, at most what was paid less refunds and chargebacks" },
  dispute_at_connected_bank: { status: 422, message: "the money is kept at a bank that keeps its own books: the hub cannot return, freeze or take it back there; it is taken up with that bank" },
  dispute_internal_payment: { status: 422, message: "a red packet's own payment is not a customer's payment and cannot be disputed or recalled" },
  dispute_not_party: { status: 403, message: "only the party whose turn it is may take this step" },
  recall_not_found: { status: 404, message: "no such recall" },
  recall_window_closed: { status: 422, message: "fraud is reported within 80 days of the payment" },
  recall_deadline_passed: { status: 409, message: "the recall's deadline passed (analysis within 7 days, refund within 11)" },
  recall_state: { status: 409, message: "the recall cannot take this step in its current state" },
  recall_exists: { status: 409, message: "this payment was already recalled" },
} as const satisfies Record<ErrorCode, ErrorEntry>;

export const errorStatus: Readonly<Record<ErrorCode, number>> = Object.fromEntries(Object.entries(errorCatalogue).map(([code, e]) => [code, e.status])) as Record<ErrorCode, number>;

export const ERROR_CODES = Object.keys(errorCatalogue).sort() as ErrorCode[];

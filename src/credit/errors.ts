/** Codes the credit capability answers (statuses and messages in src/api/errors.ts). */
export type CreditErrorCode =
  | 'card_not_found'
  | 'customer_not_found'
  | 'account_not_found'
  | 'card_not_credit'
  | 'credit_line_not_found'
  | 'repayment_exceeds_balance'
  | 'repayment_account_invalid'
  | 'insufficient_funds'
  | 'liquidity_exceeded'
  | 'currency_not_receivable'
  | 'not_issuer'
  | 'not_wallet'
  | 'token_not_found'
  | 'currency_mismatch';

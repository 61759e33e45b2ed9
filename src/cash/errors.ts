/** What customers' withdrawals to and top-ups from a linked bank account answer beyond the transfers' codes. */
export type CashErrorCode = 'cash_movement_not_found' | 'cash_link_invalid';

import type { ParticipantErrorCode } from '../participants/model.ts';
import { participantErrorStatus } from '../participants/model.ts';
import type { CustomerErrorCode } from '../customers/service.ts';
import { customerErrorStatus } from '../customers/service.ts';
import { cardsErrorStatus, type CardsErrorCode } from '../cards/errors.ts';
import { paymentsErrorStatus, type PaymentsErrorCode } from '../payments/errors.ts';
import { transfersErrorStatus, type TransfersErrorCode } from '../transfers/errors.ts';
import { ledgerErrorStatus, type LedgerErrorCode } from '../ledger/types.ts';
import type { IdempotencyErrorCode } from '../platform/idempotency.ts';
import type { MoneyErrorCode } from '../platform/money.ts';
import { stepUpErrorStatus, type StepUpErrorCode } from '../stepup/service.ts';
import { customerLinkErrorStatus, type CustomerLinkErrorCode } from '../customers/links.ts';
import { liquidityErrorStatus, type LiquidityErrorCode } from '../liquidity/service.ts';

/**
 * Every error code the API can answer, and its HTTP status: the one place where domain errors become HTTP.
 * Adding a code to a module's union without adding it here fails to compile.
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
  ;

const platformErrorStatus: Record<PlatformErrorCode | IdempotencyErrorCode | MoneyErrorCode, number> = {
  validation_failed: 400,
  unknown_field: 400,
  malformed_json: 400,
  malformed_request: 400,
  body_too_large: 413,
  headers_too_large: 431,
  request_timeout: 408,
  unsupported_media_type: 415,
  not_found: 404,
  rate_limited: 429,
  idempotency_key_required: 400,
  idempotency_key_invalid: 400,
  idempotency_key_reused: 422,
  idempotency_in_progress: 409,
  internal: 500,
  unavailable: 503,
  invalid_amount: 400,
  amount_not_positive: 400,
  amount_precision: 400,
  amount_too_large: 400,
  unknown_currency: 400,
};

export const errorStatus: Readonly<Record<ErrorCode, number>> = {
  ...platformErrorStatus,
  ...participantErrorStatus,
  ...customerErrorStatus,
  // @modules:error-statuses (each capability spreads its Record<Code, status> here)
  ...ledgerErrorStatus,
  ...cardsErrorStatus,
  ...transfersErrorStatus,
  ...paymentsErrorStatus,
  ...stepUpErrorStatus,
  ...customerLinkErrorStatus,
  ...liquidityErrorStatus,
};

export const ERROR_CODES = Object.keys(errorStatus).sort() as ErrorCode[];

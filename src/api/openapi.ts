import { createHash } from 'node:crypto';
import type { RouteOptions } from 'fastify';
import { errorCatalogue, type ErrorCode } from './errors.ts';

/**
 * What the API document says about every operation, derived in one place from each route's own declaration (method,
 * path, schema, config), so that it cannot drift from what the route does:
 * - `operationId`: stable camelCase from method and path (`GET /v1/transfers/payments/:paymentId` →
 *   `getTransfersPaymentsByPaymentId`), unless the route sets its own;
 * - `description`: the route's own, else its summary, followed by who may call it, whether a customer session may,
 *   and how it takes an Idempotency-Key;
 * - the `Idempotency-Key` header, from `config.idempotency` (which the idempotent runner checks at run time);
 * - one response per error status, listing the codes the operation can answer (platform codes from its shape and
 *   auth, domain codes from its tag's capability), from the error catalogue (src/api/errors.ts);
 * - image responses as their media types.
 */

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS';

const pascal = (segment: string) =>
  segment
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part.length > 0)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/** `POST /v1/issuer/cards/:cardId/freeze` → `postIssuerCardsByCardIdFreeze` (the leading `v1` is dropped). */
export function operationIdOf(method: string, url: string): string {
  const segments = url.split('/').filter((s) => s.length > 0);
  if (segments[0] === 'v1') segments.shift();
  const name = segments.map((s) => (s.startsWith(':') ? `By${pascal(s.slice(1))}` : s.startsWith('{') ? `By${pascal(s.slice(1, -1))}` : pascal(s))).join('');
  return `${method.toLowerCase()}${name === '' ? 'Root' : name}`;
}

// ---- the codes each capability answers (every catalogue code is in one group: test/spine/openapi.test.ts) ----------

const codes = <const T extends readonly ErrorCode[]>(...list: T): T => list;

export const errorGroups = {
  money: codes('invalid_amount', 'amount_not_positive', 'amount_precision', 'amount_too_large', 'unknown_currency'),
  participants: codes('participant_not_found', 'participant_suspended', 'credential_not_found', 'credential_limit', 'invalid_client', 'invalid_webhook_url', 'invalid_country', 'invalid_connection'),
  customers: codes('customer_not_found', 'customer_exists', 'invalid_phone', 'customer_has_balance'),
  customerLinks: codes(
    'link_customer_not_found',
    'customer_link_exists',
    'customer_link_not_found',
    'customer_link_consent_not_found',
    'customer_link_consent_expired',
    'customer_link_consent_locked',
    'customer_link_code_invalid',
  ),
  stepUp: codes(
    'challenge_not_found',
    'challenge_request_invalid',
    'challenge_method_unavailable',
    'challenge_state',
    'challenge_failed',
    'challenge_expired',
    'challenge_locked',
    'step_up_invalid',
    'authenticator_exists',
    'passkey_registration_invalid',
    'passkey_registration_not_found',
  ),
  ledger: codes(
    'invalid_transfer',
    'metadata_too_large',
    'same_account',
    'account_not_found',
    'currency_mismatch',
    'account_closed',
    'insufficient_funds',
    'exceeds_credit_limit',
    'exceeds_debits',
    'overflow',
    'pending_not_found',
    'pending_already_resolved',
    'pending_expired',
    'post_amount_exceeds_pending',
    'linked_transfer_failed',
    'linked_chain_open',
    'transfer_exists_with_different_fields',
    'transfer_not_found',
    'invalid_account',
    'account_exists',
    'account_has_pending',
  ),
  paging: codes('invalid_page'),
  liquidity: codes('liquidity_exceeded', 'liquidity_invalid', 'liquidity_request_not_found', 'liquidity_request_decided'),
  fx: codes('fx_rates_invalid', 'fx_rate_unavailable', 'fee_schedule_invalid', 'fx_rate_expired', 'fx_tier_not_covered', 'fx_provider_not_registered', 'fx_rate_invalid'),
  cash: codes('cash_movement_not_found', 'cash_link_invalid'),
  risk: codes('risk_alert_not_found', 'risk_rule_invalid', 'risk_declined', 'step_up_required'),
  aliases: codes('invalid_alias', 'alias_taken', 'alias_not_found', 'alias_move_not_found', 'alias_move_expired', 'alias_code_invalid', 'alias_move_locked', 'alias_lookup_limited', 'alias_verification_not_found', 'alias_verification_expired', 'alias_verification_locked', 'alias_verification_required'),
  accounts: codes('customer_account_exists', 'account_unavailable', 'currency_mismatch', 'bank_customer_not_found', 'consent_not_found', 'consent_expired', 'consent_code_invalid', 'consent_locked', 'link_not_found', 'consent_revoked', 'consent_not_active', 'consent_state_invalid', 'bank_authorization_failed', 'bank_unavailable', 'open_banking_unavailable'),
  transfers: codes(
    'quote_amount_required',
    'quote_amount_conflict',
    'quote_not_found',
    'quote_expired',
    'quote_already_used',
    'cannot_pay_self',
    'currency_not_receivable',
    'source_currency_mismatch',
    'limit_exceeded',
    'fx_liquidity_insufficient',
    'ledger_rejected',
    'payment_not_found',
    'payment_rejected',
    'request_not_found',
    'request_not_pending',
    'not_request_payer',
    'request_blocked',
    'too_many_pending_requests',
    'request_rate_limited',
    'split_invalid',
    'split_amounts_mismatch',
    'split_not_found',
    'reminder_rate_limited',
    'red_packet_invalid',
    'red_packet_not_found',
    'red_packet_not_member',
    'red_packet_already_claimed',
    'red_packet_empty',
    'red_packet_expired',
    'red_packet_not_open',
    'consent_revoked',
    'insufficient_funds',
  ),
  cards: codes(
    'not_issuer',
    'not_wallet',
    'card_product_not_found',
    'bin_in_token_range',
    'bin_taken',
    'card_not_found',
    'card_state',
    'invalid_controls',
    'invalid_credit_limit',
    'card_request_key_reused',
    'token_not_found',
    'token_state',
    'token_exists',
    'provisioning_not_found',
    'provisioning_state',
    'reference_not_found',
    'card_data_invalid',
    'consent_required',
    'step_up_failed',
    'step_up_expired',
    'step_up_locked',
    'device_key_invalid',
    'device_not_bound',
    'device_signature_invalid',
    'push_receipt_invalid',
    'push_receipt_used',
    'push_receipt_expired',
    'push_wallet_invalid',
  ),
  declines: codes(
    'card_not_active',
    'card_expired',
    'currency_not_allowed',
    'exceeds_transaction_limit',
    'exceeds_daily_limit',
    'exceeds_monthly_limit',
    'mcc_blocked',
    'country_not_allowed',
    'channel_not_allowed',
    'token_unknown',
    'token_not_active',
    'token_expired',
    'cryptogram_invalid',
    'key_exhausted',
    'atc_replayed',
    'insufficient_funds',
    'exceeds_credit_limit',
    'issuer_declined',
    'issuer_unavailable',
    // A bank that keeps its own books refused the debit under the customer's open-banking consent (MD01).
    'consent_revoked',
    'risk_declined',
    'step_up_required',
  ),
  merchants: codes('merchant_not_found', 'merchant_invalid', 'not_merchant'),
  qr: codes('merchant_not_found', 'qr_invalid', 'qr_not_found', 'qr_expired'),
  acceptance: codes(
    'merchant_not_found',
    'not_merchant',
    'qr_invalid',
    'cpm_invalid',
    'qr_not_found',
    'qr_expired',
    'qr_already_paid',
    'qr_unknown_merchant',
    'amount_mismatch',
    'amount_required',
    'payment_currency_mismatch',
    'payment_link_not_found',
    'payment_link_expired',
    'payment_link_used',
    'payment_source_invalid',
    'no_funding_account',
    'payment_not_found',
    'payment_state',
    'already_captured',
    'capture_exceeds_authorized',
    'refund_exceeds_captured',
    'refund_rejected',
    'payment_ledger_rejected',
    'card_not_found',
    'token_not_found',
    'fx_liquidity_insufficient',
  ),
  settlement: codes('settlement_window_not_found', 'settlement_window_open', 'settlement_invalid', 'settlement_csv_invalid'),
  webhooks: codes('webhook_secret_not_retrievable', 'webhook_delivery_not_found', 'webhook_url_missing'),
  issuer: codes('not_issuer_participant', 'issuer_settings_invalid', 'invalid_authorization_url', 'payment_risk_rule_invalid'),
  couponUse: codes('coupon_not_found', 'coupon_expired', 'coupon_limit_reached', 'coupon_not_applicable'),
  pots: codes('pot_not_found', 'pot_locked', 'pot_limit_reached', 'account_unavailable', 'insufficient_funds', 'ledger_rejected'),
  offers: codes(
    'coupon_not_found',
    'coupon_expired',
    'coupon_limit_reached',
    'coupon_not_applicable',
    'coupon_invalid',
    'coupon_already_held',
    'membership_program_not_found',
    'membership_card_not_found',
    'membership_exists',
    'merchant_not_found',
    'payment_link_not_found',
    'amount_required',
    'payment_currency_mismatch',
    'qr_invalid',
    'qr_not_found',
    'qr_expired',
    'qr_unknown_merchant',
    'offer_consent_required',
    'targeted_offer_not_found',
    'targeted_offer_invalid',
    'targeted_offer_not_eligible',
    'targeted_offer_accepted',
  ),
  rewards: codes('reward_rule_invalid', 'rewards_insufficient', 'card_product_not_found', 'card_not_found', 'token_not_found', 'coupon_not_found', 'coupon_expired', 'coupon_not_applicable', 'coupon_already_held', 'account_unavailable', 'liquidity_exceeded', 'ledger_rejected'),
  offline: codes(
    'offline_purse_not_found',
    'offline_purse_exists',
    'offline_purse_closed',
    'offline_purse_blocked',
    'offline_limit_exceeded',
    'offline_reserve_exhausted',
    'offline_token_invalid',
    'offline_signature_invalid',
    'offline_token_replayed',
    'offline_counter_reused',
    'offline_token_expired',
    'offline_wrong_merchant',
    'offline_unload_invalid',
    'device_key_invalid',
    'account_unavailable',
    'insufficient_funds',
    'merchant_not_found',
    'ledger_rejected',
    'not_wallet',
  ),
  credit: codes('not_issuer', 'not_wallet', 'card_not_credit', 'credit_line_not_found', 'repayment_exceeds_balance', 'repayment_account_invalid', 'insufficient_funds', 'currency_mismatch', 'token_not_found', 'account_not_found', 'currency_not_receivable'),
  disputes: codes(
    'not_wallet',
    'dispute_not_found',
    'dispute_window_closed',
    'dispute_deadline_passed',
    'dispute_state',
    'dispute_exists',
    'dispute_amount_invalid',
    'dispute_not_party',
    'dispute_at_connected_bank',
    'dispute_internal_payment',
    'recall_not_found',
    'recall_window_closed',
    'recall_deadline_passed',
    'recall_state',
    'recall_exists',
    'payment_not_found',
    'payment_state',
    'currency_mismatch',
    'insufficient_funds',
    'liquidity_exceeded',
    'refund_rejected',
  ),
} as const;

export type ErrorGroup = keyof typeof errorGroups;

/** The capabilities whose codes the operations of each tag can answer. A tag missing here answers platform codes only. */
export const tagErrorGroups: Readonly<Record<string, readonly ErrorGroup[]>> = {
  system: [],
  auth: ['participants', 'customers'],
  operator: ['participants', 'ledger', 'paging', 'liquidity', 'money', 'customers', 'settlement', 'webhooks'],
  participants: ['participants'],
  customers: ['customers', 'customerLinks', 'paging'],
  audit: ['paging'],
  webhooks: ['webhooks', 'paging'],
  settlement: ['settlement', 'liquidity', 'money', 'paging'],
  'step-up': ['stepUp', 'customers'],
  ledger: ['ledger', 'paging'],
  liquidity: ['liquidity', 'money'],
  history: ['customers'],
  demo: ['participants', 'customers', 'stepUp'],
  cards: ['cards', 'customers', 'stepUp', 'money', 'ledger', 'paging'],
  tokens: ['cards', 'stepUp', 'customers', 'paging'],
  accounts: ['accounts', 'customers', 'money', 'ledger', 'paging'],
  cash: ['cash', 'accounts', 'customers', 'money', 'liquidity', 'transfers'],
  aliases: ['aliases', 'customers'],
  fx: ['fx', 'money'],
  transfers: ['transfers', 'accounts', 'aliases', 'fx', 'risk', 'stepUp', 'customers', 'money', 'liquidity'],
  risk: ['risk', 'customers'],
  merchants: ['merchants', 'money'],
  qr: ['qr', 'money'],
  payments: ['acceptance', 'declines', 'cards', 'money', 'stepUp', 'liquidity', 'fx', 'customers', 'couponUse'],
  'payment-links': ['acceptance', 'declines', 'cards', 'money', 'stepUp', 'liquidity', 'fx', 'customers', 'couponUse'],
  issuer: ['issuer'],
  pots: ['pots', 'customers', 'money'],
  offers: ['offers', 'customers', 'money'],
  rewards: ['rewards', 'customers', 'money'],
  connector: ['participants', 'transfers'],
  offline: ['offline', 'money', 'customers'],
  credit: ['credit', 'customers', 'money', 'liquidity'],
  disputes: ['disputes', 'customers', 'money', 'liquidity'],
};

interface OperationShape {
  readonly method: string;
  readonly tags: readonly string[];
  readonly auth: 'participant' | 'operator' | 'none';
  readonly customer: boolean;
  readonly idempotency: 'required' | 'optional' | undefined;
  readonly hasBody: boolean;
  readonly hasQuery: boolean;
  readonly hasParams: boolean;
}

/** Every code an operation of this shape can answer, sorted. */
export function operationErrorCodes(op: OperationShape): ErrorCode[] {
  const found = new Set<ErrorCode>(['internal', 'unavailable', 'validation_failed', 'malformed_request']);
  if (op.hasParams || op.hasBody || op.hasQuery) found.add('not_found');
  if (op.hasQuery) found.add('unknown_field');
  if (op.hasBody) for (const c of ['unknown_field', 'malformed_json', 'body_too_large', 'unsupported_media_type'] as const) found.add(c);
  if (op.auth === 'operator') found.add('unauthorized');
  if (op.auth === 'participant') for (const c of ['unauthorized', 'forbidden', 'participant_suspended', 'rate_limited'] as const) found.add(c);
  if (op.idempotency !== undefined) for (const c of ['idempotency_key_invalid', 'idempotency_key_reused', 'idempotency_in_progress'] as const) found.add(c);
  if (op.idempotency === 'required') found.add('idempotency_key_required');
  for (const tag of op.tags) for (const group of tagErrorGroups[tag] ?? []) for (const c of errorGroups[group]) found.add(c);
  return [...found].sort();
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad request',
  401: 'Unauthorized',
  402: 'Declined',
  403: 'Forbidden',
  404: 'Not found',
  408: 'Request timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'Unprocessable',
  423: 'Locked',
  429: 'Too many requests',
  431: 'Headers too large',
  500: 'Internal error',
  502: 'Bad gateway',
  503: 'Unavailable',
  504: 'Gateway timeout',
};

/** The documented error responses of an operation: one per status, its codes listed and enumerated in the schema. */
export function errorResponses(errorCodes: readonly ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorCodes) {
    const status: number = errorCatalogue[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, unknown> = {};
  for (const [status, list] of [...byStatus.entries()].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `${STATUS_TEXT[status] ?? 'Error'}: ${list.join(', ')}`,
      // The one error shape (ErrorBody), its code narrowed to those this operation answers with this status.
      allOf: [{ $ref: 'ErrorBody#' }, { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string', enum: list } } } } }],
    };
  }
  return out;
}

const IDEMPOTENCY_KEY = {
  type: 'string',
  minLength: 1,
  maxLength: 128,
  pattern: '^[\\x21-\\x7e]+$',
  description:
    'A key you choose (e.g. a UUID), unique per intended effect. A retry with the same key and the same request replays the first answer ' +
    '(header `idempotent-replayed: true`) and never repeats the effect; the same key with a different request answers `idempotency_key_reused`.',
};

const MEDIA_TYPES: Readonly<Record<string, string>> = { 'image/png': 'A PNG image', 'image/svg+xml': 'An SVG image', 'text/csv': 'CSV text', 'text/plain': 'Plain text', 'text/html': 'An HTML page' };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A response schema for a non-JSON body (`{ type: 'string', format: 'binary', description: '<media type>' }`) in its media type. */
function mediaResponse(schema: unknown): Record<string, unknown> | undefined {
  if (!isObject(schema) || schema.type !== 'string' || typeof schema.description !== 'string') return undefined;
  const media = schema.description;
  const description = MEDIA_TYPES[media];
  if (description === undefined) return undefined;
  const binary = media.startsWith('image/') && media !== 'image/svg+xml';
  return { description, content: { [media]: { schema: binary ? { type: 'string', contentMediaType: media, contentEncoding: 'binary' } : { type: 'string', contentMediaType: media } } } };
}

/** The route's own description, else its summary, followed by who may call it and how it takes an Idempotency-Key. */
function describe(text: string, op: OperationShape): string {
  const who =
    op.auth === 'none'
      ? 'No authentication.'
      : op.auth === 'operator'
        ? 'Authentication: the operator credential (`Authorization: Bearer <operator token>`).'
        : 'Authentication: a participant access token from `POST /oauth/token` (`Authorization: Bearer <token>`).';
  const customer = op.auth === 'participant' ? (op.customer ? ' A customer session token (`POST /v1/customer-sessions`) may call it too.' : ' A customer session token may not.') : '';
  const key =
    op.idempotency === 'required'
      ? ' Moves money: send an `Idempotency-Key` (required); a retry with the same key replays the first answer.'
      : op.idempotency === 'optional'
        ? ' Accepts an `Idempotency-Key`: a retry with the same key replays the first answer instead of acting twice.'
        : '';
  const base = text.trim();
  return `${base}${/[.!?)]$/.test(base) ? '' : '.'}\n\n${who}${customer}${key}`;
}

/**
 * The route's schema as the API document shows it (@fastify/swagger's `transform`): the route's own schema is not
 * changed, so validation and serialization are as declared.
 */
export function documentRoute(route: RouteOptions): Record<string, unknown> {
  const schema = (route.schema ?? {}) as Record<string, unknown>;
  if (schema.hide === true) return { hide: true };
  const config = (route.config ?? {}) as { auth?: 'participant' | 'operator' | 'none'; customer?: boolean; idempotency?: 'required' | 'optional'; bodyless?: boolean };
  const methods = (Array.isArray(route.method) ? route.method : [route.method]) as HttpMethod[];
  const method = methods[0] ?? 'GET';
  const tags = Array.isArray(schema.tags) ? schema.tags.filter((t): t is string => typeof t === 'string') : [];
  const shape: OperationShape = {
    method,
    tags,
    auth: config.auth ?? 'participant',
    customer: config.customer === true,
    idempotency: config.idempotency,
    hasBody: schema.body !== undefined,
    hasQuery: schema.querystring !== undefined,
    hasParams: schema.params !== undefined || route.url.includes(':'),
  };
  const summary = typeof schema.summary === 'string' ? schema.summary : `${method} ${route.url}`;
  const out: Record<string, unknown> = {
    ...schema,
    operationId: typeof schema.operationId === 'string' ? schema.operationId : operationIdOf(method, route.url),
    summary,
    description: describe(typeof schema.description === 'string' ? schema.description : summary, shape),
  };
  delete out.produces;
  if (!Array.isArray(schema.security)) out.security = shape.auth === 'none' ? [] : [{ [shape.auth]: [] }];

  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(isObject(schema.response) ? schema.response : {})) {
    if (status === '4xx' || status === '5xx') continue;
    responses[status] = mediaResponse(response) ?? response;
  }
  if (Object.keys(responses).length === 0) {
    const produces = Array.isArray(schema.produces) ? schema.produces.filter((p): p is string => typeof p === 'string') : [];
    const media = produces[0];
    responses['200'] =
      media !== undefined && media !== 'application/json'
        ? { description: MEDIA_TYPES[media] ?? media, content: { [media]: { schema: { type: 'string', contentMediaType: media } } } }
        : { description: 'Done', type: 'object', additionalProperties: false, properties: {} };
  }
  Object.assign(responses, errorResponses(operationErrorCodes(shape)));
  out.response = responses;

  if (config.idempotency !== undefined) {
    const headers = isObject(schema.headers) ? schema.headers : { type: 'object', properties: {} };
    const properties = isObject(headers.properties) ? headers.properties : {};
    const required = Array.isArray(headers.required) ? headers.required.filter((r): r is string => typeof r === 'string' && r.toLowerCase() !== 'idempotency-key') : [];
    const rest = Object.fromEntries(Object.entries(properties).filter(([name]) => name.toLowerCase() !== 'idempotency-key'));
    out.headers = {
      ...headers,
      properties: { ...rest, 'Idempotency-Key': IDEMPOTENCY_KEY },
      required: config.idempotency === 'required' ? [...required, 'Idempotency-Key'] : required,
    };
  }
  return out;
}

/**
 * Callbacks (requests the hub makes to a URL a participant registered: the connector's reserve/accept/commit/abort)
 * keep only their bodies through @fastify/swagger: each gets its summary (its request's description) and the note that
 * the hub authenticates it by signature, not by a security scheme the participant defines.
 */
export function finishCallbacks(document: { paths?: Record<string, unknown> }): void {
  for (const pathItem of Object.values(document.paths ?? {})) {
    if (!isObject(pathItem)) continue;
    for (const operation of Object.values(pathItem)) {
      if (!isObject(operation) || !isObject(operation.callbacks)) continue;
      for (const [name, callback] of Object.entries(operation.callbacks)) {
        if (!isObject(callback)) continue;
        for (const item of Object.values(callback)) {
          if (!isObject(item)) continue;
          for (const op of Object.values(item)) {
            if (!isObject(op)) continue;
            const body = isObject(op.requestBody) ? op.requestBody : {};
            op.operationId ??= `connector${pascal(name)}`;
            op.summary ??= typeof body.description === 'string' ? body.description : name;
            op.description ??= 'Signed by the hub: a detached JWS over the body in the x-jws-signature header (GET /v1/connector/jwks); no bearer token.';
            op.security ??= [];
          }
        }
      }
    }
  }
}

/**
 * Error responses are shared: each distinct one (status, codes) is written once under `components.responses` and
 * referenced by the operations that answer it (the document would otherwise repeat the same lists thousands of times).
 */
export function shareErrorResponses(document: { paths?: Record<string, unknown>; components?: Record<string, unknown> }): void {
  const shared: Record<string, unknown> = {};
  for (const pathItem of Object.values(document.paths ?? {})) {
    if (!isObject(pathItem)) continue;
    for (const operation of Object.values(pathItem)) {
      if (!isObject(operation) || !isObject(operation.responses)) continue;
      for (const [status, response] of Object.entries(operation.responses)) {
        if (!/^[45][0-9][0-9]$/.test(status) || !isObject(response)) continue;
        const text = JSON.stringify(response);
        const name = `Error${status}_${createHash('sha256').update(text).digest('hex').slice(0, 8)}`;
        shared[name] ??= response;
        operation.responses[status] = { $ref: `#/components/responses/${name}` };
      }
    }
  }
  document.components = { ...document.components, responses: Object.fromEntries(Object.entries(shared).sort(([a], [b]) => a.localeCompare(b))) };
}

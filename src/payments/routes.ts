import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import QRCode from 'qrcode';
import { actorOf, created, errorAnswer, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { AmountString, CountryCode, CurrencyCode, Exactly, Money, Strict } from '../api/index.ts';
import { Opaque, Ref } from '../api/index.ts';
import { MPM_MAX_PAYLOAD_CHARS } from '../emv/index.ts';
import type { Merchant, MerchantService } from '../merchants/index.ts';
import { createCoalescer } from '../platform/coalescer.ts';
import { DEFAULT_BATCHER_LIMITS } from '../platform/effect-batcher.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { formatMoney, parseAmount, parseMoney } from '../platform/money.ts';
import type { PErr } from './errors.ts';
import type { IssuerGateway } from './issuer.ts';
import { PAYMENT_RULE_NAMES, type PaymentRuleName, type PaymentRuleStore } from './risk-rules.ts';
import { MAX_CARD_BATCH, type CardPaymentInput, type Staged } from './pipeline.ts';
import { wireCardFx } from './model.ts';
import type { Authorization, CaptureItem, PaymentLink, PaymentService, QrCode, WalletPayInput } from './service.ts';

export interface PaymentRouteDeps {
  readonly db: Db;
  readonly idempotent: Idempotent;
  readonly merchants: MerchantService;
  readonly payments: PaymentService;
  readonly issuers: IssuerGateway;
  readonly paymentRules: PaymentRuleStore;
}

const Obj = (description: string) => Type.Object({}, { additionalProperties: true, description });
type SchemaParts = { body?: TSchema; params?: TSchema; querystring?: TSchema; headers?: TSchema; response?: Record<number, TSchema>; operator?: boolean; description?: string };
function schema<P extends SchemaParts>(tag: string, summary: string, parts: P) {
  const { operator, response, ...rest } = parts;
  return { tags: [tag], summary, security: [operator === true ? { operator: [] } : { participant: [] }], ...rest, response: response ?? { 200: Obj(summary) } };
}

const money = formatMoney;

export const wireMerchant = (m: Merchant) => ({
  id: m.id,
  ownerParticipantId: m.ownerParticipantId,
  merchantParticipantId: m.merchantParticipantId,
  name: m.name,
  nameZh: m.nameZh,
  mcc: m.mcc,
  country: m.country,
  city: m.city,
  currency: m.currency,
  settlementAccountId: m.settlementAccountId,
  feeBps: m.feeBps,
  createdAt: m.createdAt.toISOString(),
});

/** Across currencies: the rate the authorization bound and the payer's side, in its account's currency. */
const wireFx = (a: Authorization) => wireCardFx(a.fx);

export const wireAuthorization = (a: Authorization) => ({
  id: a.id,
  merchantId: a.merchantId,
  channel: a.channel,
  status: a.status,
  authorizationCode: a.authCode,
  decidedBy: a.decidedBy,
  amount: money(a.amountMinor, a.currency),
  captured: money(a.capturedMinor, a.currency),
  refunded: money(a.refundedMinor, a.currency),
  chargedBack: money(a.chargedBackMinor, a.currency),
  fee: money(a.feeMinor, a.currency),
  source: a.sourceKind,
  cardId: a.cardId,
  tokenId: a.tokenId,
  payerParticipantId: a.payerParticipantId,
  holdExpiresAt: a.holdExpiresAt?.toISOString() ?? null,
  riskScore: a.riskScore,
  qrId: a.qrId,
  linkId: a.linkId,
  fx: wireFx(a),
  createdAt: a.createdAt.toISOString(),
  updatedAt: a.updatedAt.toISOString(),
});

const wirePayerView = (a: Authorization) => ({
  id: a.id,
  merchantId: a.merchantId,
  channel: a.channel,
  status: a.status,
  authorizationCode: a.authCode,
  amount: money(a.amountMinor, a.currency),
  captured: money(a.capturedMinor, a.currency),
  refunded: money(a.refundedMinor, a.currency),
  chargedBack: money(a.chargedBackMinor, a.currency),
  customerId: a.payerCustomerId,
  tokenId: a.tokenId,
  fx: wireFx(a),
  createdAt: a.createdAt.toISOString(),
});

const wireQr = (q: QrCode) => ({
  id: q.id,
  merchantId: q.merchantId,
  kind: q.kind,
  amount: q.amountMinor === null ? null : money(q.amountMinor, q.currency),
  currency: q.currency,
  billNumber: q.billNumber,
  reference: q.reference,
  payload: q.payload,
  expiresAt: q.expiresAt?.toISOString() ?? null,
  paidAuthorizationId: q.paidAuthorizationId,
  images: { png: `/v1/merchants/${q.merchantId}/qr-codes/${q.id}/png`, svg: `/v1/merchants/${q.merchantId}/qr-codes/${q.id}/svg` },
  createdAt: q.createdAt.toISOString(),
});

const FX_NOTE =
  'The amount is in the merchant’s currency. When the paying account (the card’s, or the account named) holds another currency, the authorization binds an FX provider’s rate in force ' +
  '(fxRateId in `fx`) and the payer’s account is held what the amount costs at it; capture and refunds convert at that rate through the provider’s positions in both currencies. ' +
  'No provider quotes the pair: fx_rate_unavailable; its rates expired: fx_rate_expired; no tier prices the amount: fx_tier_not_covered (nothing is written).';
const NullableString = (description: string) => Type.Union([Type.String(), Type.Null()], { description });
/** wireFx: a card payment across currencies, its payer's side. */
const PaymentFxSchema = Type.Union(
  [
    Type.Object(
      {
        rateId: Type.String({ description: 'The FX provider’s posted rate the authorization bound (GET /v1/fx/provider-rates)' }),
        providerParticipantId: Type.String({ description: 'The FX provider participant whose positions convert it' }),
        rate: Type.String({ description: 'Merchant-currency units per unit of the payer’s currency (the provider’s customer rate, its margin included), 8 decimals' }),
        charged: Money,
        captured: Money,
        refunded: Money,
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ],
  {
    description:
      'A payment across currencies (the payer’s account holds another currency than the merchant’s): the rate bound and the payer’s side — charged: held on the payer’s account at authorization (the amount at the rate, rounded up); captured: taken (a partial capture converts its share at the same rate, rounded up); refunded: given back (at the same rate, rounded down; the refund that completes the captured amount returns all that is left). null in one currency',
  },
);
/** A card payment as the paying wallet sees it (wirePayerView). */
const PayerPaymentSchema = Type.Object(
  {
    id: Type.String({ description: 'The payment (authorization) id' }),
    merchantId: Type.String(),
    channel: Type.String({ description: 'mpm_static, mpm_dynamic, cpm, tap or link' }),
    status: Type.String({ description: 'authorized, captured, voided, refunded, expired…' }),
    authorizationCode: Type.String(),
    amount: Money,
    captured: Money,
    refunded: Money,
    chargedBack: Money,
    customerId: NullableString('Your paying customer'),
    tokenId: NullableString('The token that paid, when a token paid'),
    fx: PaymentFxSchema,
    createdAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false, description: 'Payment' },
);
/** A merchant-presented QR code (wireQr). */
const QrCodeSchema = Type.Object(
  {
    id: Type.String(),
    merchantId: Type.String(),
    kind: Type.Union([Type.Literal('static'), Type.Literal('dynamic')]),
    amount: Type.Union([Money, Type.Null()], { description: 'Fixed amount (dynamic codes), null when the payer enters it' }),
    currency: Type.String(),
    billNumber: NullableString('Bill number (62.01)'),
    reference: NullableString('Your reference (62.05)'),
    payload: Type.String({ description: 'The EMV merchant-presented payload to print or show' }),
    expiresAt: NullableString('When a dynamic code expires'),
    paidAuthorizationId: NullableString('The payment that paid a dynamic code'),
    images: Type.Object({ png: Type.String(), svg: Type.String() }, { additionalProperties: false, description: 'Paths of the code as PNG and SVG images' }),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false, description: 'QR code' },
);
const DateTime = (description?: string) => Type.String({ format: 'date-time', ...(description !== undefined ? { description } : {}) });
const NullableDateTime = (description: string) => Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description });
/** A merchant profile (wireMerchant). */
const MerchantSchema = Type.Object(
  {
    id: Type.String({ description: 'Merchant id: the code’s merchant account (tag 26) names it' }),
    ownerParticipantId: Type.String({ description: 'The merchant or acquirer participant that manages it' }),
    merchantParticipantId: NullableString('The merchant participant itself, when the merchant is one (null for an acquirer’s merchant)'),
    name: Type.String({ description: 'Latin script (EMV tag 59)' }),
    nameZh: Type.String({ description: 'Chinese script (EMV template 64)' }),
    mcc: Type.String({ description: 'Merchant category code (ISO 18245)' }),
    country: Type.String({ description: 'ISO 3166-1 alpha-2 (EMV tag 58)' }),
    city: Type.String(),
    currency: Type.String({ description: 'ISO 4217: the currency its codes and payments are in' }),
    settlementAccountId: Type.String({ description: 'The ledger account its captured payments are credited to' }),
    feeBps: Type.Integer({ description: 'Merchant fee in basis points, taken at capture' }),
    createdAt: DateTime(),
  },
  { additionalProperties: false, description: 'Merchant' },
);
/** A card payment as the merchant (or its acquirer) sees it (wireAuthorization). */
const AuthorizationSchema = Type.Object(
  {
    id: Type.String({ description: 'The payment (authorization) id' }),
    merchantId: Type.String(),
    channel: Type.Union(['mpm_static', 'mpm_dynamic', 'cpm', 'tap', 'link'].map((c) => Type.Literal(c)), { description: 'How it was paid' }),
    status: Type.Union(['authorized', 'captured', 'voided', 'expired'].map((c) => Type.Literal(c)), { description: 'authorized: held, capture or void it; captured (refunds keep it captured); voided; expired (the hold lapsed)' }),
    authorizationCode: Type.String(),
    decidedBy: Type.Union(['hosted', 'issuer', 'stand_in', 'account'].map((c) => Type.Literal(c)), { description: 'Who approved: the hub for the issuer (hosted), the issuer in real time (or the bank that keeps the paying account, by its connector reserve), its stand-in rules, or an account payment' }),
    amount: Money,
    captured: Money,
    refunded: Money,
    chargedBack: Money,
    fee: Money,
    source: Type.Union([Type.Literal('token'), Type.Literal('account')]),
    cardId: NullableString('The card behind the token (for the merchant: an opaque id)'),
    tokenId: NullableString('The token that paid'),
    payerParticipantId: NullableString('The payer’s wallet'),
    holdExpiresAt: NullableDateTime('When an uncaptured authorization lapses'),
    riskScore: Type.Integer({ description: '0–100' }),
    qrId: NullableString('The merchant QR code it paid'),
    linkId: NullableString('The payment link it paid'),
    fx: PaymentFxSchema,
    createdAt: DateTime(),
    updatedAt: DateTime(),
  },
  { additionalProperties: false, description: 'Authorization' },
);
const MerchantSummarySchema = Type.Object(
  { id: Type.String(), name: Type.String(), nameZh: Type.String(), city: Type.String(), country: Type.String(), mcc: Type.String() },
  { additionalProperties: false, description: 'The merchant, as a payer sees it' },
);
/** A payment link (wireLink). */
const PaymentLinkSchema = Type.Object(
  {
    id: Type.String(),
    url: Type.String({ description: 'Its path on the hub: the payer’s wallet opens it with GET and pays it with POST …/pay' }),
    merchant: MerchantSummarySchema,
    amount: Money,
    description: Type.String(),
    multipleUse: Type.Boolean({ description: 'false: paid once, then closed' }),
    expiresAt: DateTime(),
    payCount: Type.Integer({ description: 'How many times it was paid' }),
    createdAt: DateTime(),
  },
  { additionalProperties: false, description: 'Payment link' },
);
const RefundSchema = Type.Object(
  { refundId: Type.String(), amount: Money, payment: AuthorizationSchema },
  { additionalProperties: false, description: 'A refund and the payment after it' },
);
const QrPreviewSchema = Type.Object(
  {
    merchant: MerchantSummarySchema,
    kind: Type.Union([Type.Literal('static'), Type.Literal('dynamic')]),
    amount: Type.Union([Money, Type.Null()], { description: 'The amount due (a dynamic code); null when the payer enters it' }),
    currency: Type.String(),
    expiresAt: NullableDateTime('When a dynamic code expires'),
    warnings: Type.Array(
      Type.Object({ code: Type.Union([Type.Literal('payload_longer_than_emvco_limit'), Type.Literal('lowercase_crc')]), message: Type.String() }, { additionalProperties: false }),
      { description: 'Departures from EMVCo the hub accepted in this code' },
    ),
  },
  { additionalProperties: false, description: 'A scanned code, decoded' },
);
const IssuerSettingsSchema = Type.Object(
  {
    mode: Type.Union([Type.Literal('hosted'), Type.Literal('webhook')]),
    authUrl: NullableString('Your authorization endpoint (webhook mode)'),
    deadlineMs: Type.Integer({ description: 'How long the hub waits for your answer' }),
    standIn: Type.Object(
      { action: Type.Union([Type.Literal('approve'), Type.Literal('decline')]), maxAmountMinor: Type.String({ description: 'Up to this amount in minor units of the card’s currency (the authorization request’s amount), stand-in approves' }) },
      { additionalProperties: false, description: 'What the hub decides when you do not answer in time' },
    ),
  },
  { additionalProperties: false, description: 'How the hub decides on your card payments' },
);
// The wire functions write what the schemas say (checked by the compiler).
export const payerViewMatchesSchema = (a: Authorization) => Exactly<Static<typeof PayerPaymentSchema>>()(wirePayerView(a));
export const qrMatchesSchema = (q: QrCode) => Exactly<Static<typeof QrCodeSchema>>()(wireQr(q));
export const merchantMatchesSchema = (m: Merchant) => Exactly<Static<typeof MerchantSchema>>()(wireMerchant(m));
export const authorizationMatchesSchema = (a: Authorization) => Exactly<Static<typeof AuthorizationSchema>>()(wireAuthorization(a));

const wireLink = (l: PaymentLink, m: Merchant) => ({
  id: l.id,
  url: `/v1/payment-links/${l.id}`,
  merchant: { id: m.id, name: m.name, nameZh: m.nameZh, city: m.city, country: m.country, mcc: m.mcc },
  amount: money(l.amountMinor, l.currency),
  description: l.description,
  multipleUse: l.multipleUse,
  expiresAt: l.expiresAt.toISOString(),
  payCount: l.payCount,
  createdAt: l.createdAt.toISOString(),
});
export const linkMatchesSchema = (l: PaymentLink, m: Merchant) => Exactly<Static<typeof PaymentLinkSchema>>()(wireLink(l, m));

const Hex = (bytes: number, description: string) => Type.String({ pattern: `^[0-9A-Fa-f]{${bytes * 2}}$`, description });
const WalletSourceSchema = Type.Union([
  Strict({ type: Type.Literal('token'), tokenRef: Ref('token', 'Your token reference'), atc: Type.Integer({ minimum: 0, maximum: 65535 }), cryptogram: Hex(8, 'Token cryptogram over amount, currency, the merchant’s country, today (UTC), type 00, UN, ATC'), unpredictableNumber: Hex(4, 'Unpredictable number') }),
  Strict({
    type: Type.Literal('account'),
    accountId: Ref(
      'account',
      'An account your customer may debit (own, or linked with the bank’s consent). At a bank that keeps its own books (connected), the bank is asked to reserve the debit within its deadline — under the open-banking consent when you linked it — and the payment completes only if it does: its refusals answer insufficient_funds (AM04), consent_revoked (MD01: the consent ends here too) or issuer_declined, no valid answer in time issuer_unavailable (AB05), each with details.reason (ISO 20022) and details.paymentId; nothing is debited, and the bank releases its hold when the hub’s abort reaches it.',
    ),
  }),
]);
/** A scanned merchant-presented code: national codes run past EMVCo's 512 characters (see src/emv/mpm.ts). */
const ScannedMpmPayload = Type.String({ minLength: 1, maxLength: MPM_MAX_PAYLOAD_CHARS, description: 'The scanned EMV merchant-presented payload' });

const WalletPayFields = {
  customerId: Ref('customer', 'Your customer'),
  source: WalletSourceSchema,
  deviceId: Type.Optional(Opaque('Your id of the customer’s device')),
  deviceCountry: Type.Optional(CountryCode),
  stepUpChallengeId: Type.Optional(Ref('step_up_challenge', 'After step_up_required: the challenge the customer completed for this payment')),
  walletCouponId: Type.Optional(Ref('wallet_coupon', 'A coupon your customer keeps for this merchant, to apply (it must apply: coupon_expired, coupon_limit_reached, coupon_not_applicable otherwise). Without it the best eligible one is applied (POST /v1/wallet/offers/preview shows which)')),
  applyCoupon: Type.Optional(Type.Boolean({ description: 'false: apply no coupon (default true)' })),
  fxProviderId: Type.Optional(
    Ref('participant', 'When the source account holds another currency than the merchant’s: the FX provider to convert through (by default the one whose rate in force is best). No rate for the pair: fx_rate_unavailable; expired: fx_rate_expired; no tier prices the amount: fx_tier_not_covered'),
  ),
};
const PaymentParams = Strict({ paymentId: Ref('card_payment', 'Payment (authorization) id') });
const MerchantParams = Strict({ merchantId: Ref('merchant', 'Merchant id') });
const QrParams = Strict({ merchantId: Ref('merchant', 'Merchant id'), qrId: Ref('qr_code', 'QR code id') });
const LinkParams = Strict({ linkId: Ref('payment_link', 'Payment link id (published by its merchant: payable from any wallet)') });
const OptionalAmount = Strict({ amount: Type.Optional(AmountString) });
/** Routes a customer session (the customer's own app) may call. */
const CUSTOMER = { customer: true } as const;

const walletInput = (body: { customerId: string; source: WalletPayInput['source']; deviceId?: string; deviceCountry?: string; stepUpChallengeId?: string; walletCouponId?: string; applyCoupon?: boolean; fxProviderId?: string }): WalletPayInput => ({
  customerId: body.customerId,
  source: body.source,
  ...(body.deviceId !== undefined ? { deviceId: body.deviceId } : {}),
  ...(body.deviceCountry !== undefined ? { deviceCountry: body.deviceCountry } : {}),
  ...(body.stepUpChallengeId !== undefined ? { stepUpChallengeId: body.stepUpChallengeId } : {}),
  ...(body.walletCouponId !== undefined ? { walletCouponId: body.walletCouponId } : {}),
  ...(body.applyCoupon !== undefined ? { applyCoupon: body.applyCoupon } : {}),
  ...(body.fxProviderId !== undefined ? { fxProviderId: body.fxProviderId } : {}),
});

export function registerPaymentRoutes(app: HttpServer, deps: PaymentRouteDeps): void {
  const { db, idempotent, merchants, payments, issuers, paymentRules } = deps;
  const me = (request: FastifyRequest) => principalOf(request).participantId;

  /**
   * Every card payment — tap, CPM, a scanned merchant code, a payment link — takes the card pipeline (pipeline.ts):
   * decided without locks (concurrent requests' decisions read together), its issuer asked on its own if it decides in
   * real time, then committed with concurrent payments in one transaction (the effect batcher). The Idempotency-Key is
   * required and checked before anything runs: a retry replays and never asks the issuer again.
   */
  const decider = createCoalescer<CardPaymentInput, Staged>((inputs) => payments.decideMany(inputs), { maxBatch: MAX_CARD_BATCH, maxInFlight: 2 });
  type Prepared = { readonly staged: Staged; readonly view: 'merchant' | 'payer' };
  const cardPayment = idempotent.prepared<CardPaymentInput, Prepared>(
    async (input) => ({ staged: await payments.askIssuer(await decider.load(input)), view: input.channel === 'tap' || input.channel === 'cpm' ? 'merchant' : 'payer' }),
    async (tx, prepared) =>
      (await payments.commitMany(tx, prepared.map((p) => p.staged))).map((r, i) => (r.ok ? created(prepared[i]?.view === 'payer' ? wirePayerView(r.value) : wireAuthorization(r.value)) : r.error)),
    { limits: { ...DEFAULT_BATCHER_LIMITS, maxBatch: MAX_CARD_BATCH } },
  );
  const capture = idempotent.batched<CaptureItem>(async (tx, items) => (await payments.captureMany(tx, items)).map((r) => (r.ok ? okResponse(wireAuthorization(r.value)) : r.error)));

  // ---- merchants ---------------------------------------------------------------------------------------------------
  app.post(
    '/v1/merchants',
    { config: { idempotency: 'optional' },
      schema: schema('merchants', 'Create a merchant profile (a merchant participant: its own; an acquirer: any number)', {
        body: Strict({
          name: Type.String({ minLength: 1, maxLength: 25, description: 'Latin script, as in EMV tag 59' }),
          nameZh: Type.String({ minLength: 1, maxLength: 25, description: 'Chinese script, EMV template 64' }),
          mcc: Type.String({ pattern: '^[0-9]{4}$' }),
          country: CountryCode,
          city: Type.String({ minLength: 1, maxLength: 15 }),
          currency: CurrencyCode,
          feeBps: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'Merchant fee in basis points, taken at capture' })),
        }),
        response: { 201: MerchantSchema },
      }),
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await merchants.create(tx, actorOf(request), principalOf(request), request.body);
        return r.ok ? created(wireMerchant(r.value)) : r.error;
      }),
  );
  app.get('/v1/merchants', { schema: schema('merchants', 'Your merchants', { response: { 200: Type.Object({ items: Type.Array(MerchantSchema) }, { additionalProperties: false }) } }) }, async (request) => ({
    items: (await merchants.list(me(request), { limit: 200 })).map(wireMerchant),
  }));
  app.get('/v1/merchants/:merchantId', { schema: schema('merchants', 'One of your merchants', { params: MerchantParams, response: { 200: MerchantSchema } }) }, async (request, reply) => {
    const m = await merchants.get(me(request), request.params.merchantId);
    return m === undefined ? reply.fail({ code: 'merchant_not_found', message: 'no such merchant' }) : wireMerchant(m);
  });

  // ---- merchant-presented QR --------------------------------------------------------------------------------------
  app.post(
    '/v1/merchants/:merchantId/qr-codes',
    { config: { idempotency: 'optional' },
      schema: schema('qr', 'Issue a merchant-presented QR code: static (payer enters the amount) or dynamic (amount, reference, expiry)', {
        params: MerchantParams,
        body: Strict({
          kind: Type.Union([Type.Literal('static'), Type.Literal('dynamic')]),
          amount: Type.Optional(AmountString),
          billNumber: Type.Optional(Type.String({ minLength: 1, maxLength: 25, pattern: '^[\\x20-\\x7E]+$' })),
          reference: Type.Optional(
            Type.String({ minLength: 1, maxLength: 25, pattern: '^[\\x20-\\x7E]+$', description: 'Your reference (order, invoice): the code’s reference label (62.05), kept as given on static and dynamic codes' }),
          ),
          expiresInS: Type.Optional(Type.Integer({ minimum: 10, maximum: 86_400 })),
        }),
        response: { 201: QrCodeSchema },
      }),
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const merchant = await merchants.get(me(request), request.params.merchantId, tx);
        if (merchant === undefined) return { code: 'merchant_not_found', message: 'no such merchant' } satisfies PErr;
        let amountMinor: bigint | undefined;
        if (request.body.amount !== undefined) {
          const parsed = parseAmount(request.body.amount, merchant.currency);
          if (!parsed.ok) return parsed.error;
          amountMinor = parsed.value;
        }
        const { amount: _amount, ...rest } = request.body;
        const r = await payments.createQr(tx, actorOf(request), me(request), merchant.id, { ...rest, ...(amountMinor !== undefined ? { amountMinor } : {}) });
        return r.ok ? created(wireQr(r.value)) : r.error;
      }),
  );
  for (const format of ['png', 'svg'] as const) {
    app.get(
      `/v1/merchants/:merchantId/qr-codes/:qrId/${format}`,
      {
        schema: schema('qr', `The QR code as ${format === 'png' ? 'a PNG image' : 'an SVG image'}`, {
          params: QrParams,
          response: { 200: Type.Unsafe<string>({ type: 'string', format: 'binary', description: format === 'png' ? 'image/png' : 'image/svg+xml' }) },
        }),
      },
      async (request, reply) => {
        const qr = await payments.getQr(me(request), request.params.merchantId, request.params.qrId);
        if (qr === undefined) return reply.fail({ code: 'qr_not_found', message: 'no such QR code' });
        reply.header('cache-control', 'private, max-age=60');
        if (format === 'png') return reply.type('image/png').send(await QRCode.toBuffer(qr.payload, { type: 'png', errorCorrectionLevel: 'M', margin: 2, scale: 6 }));
        return reply.type('image/svg+xml').send(await QRCode.toString(qr.payload, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }));
      },
    );
  }
  app.post(
    '/v1/wallet/qr/preview',
    { config: CUSTOMER, schema: schema('qr', 'Decode a scanned merchant code: the merchant and the amount due (nothing is paid), and any departure from EMVCo the hub accepted (warnings)', { body: Strict({ payload: ScannedMpmPayload }), response: { 200: QrPreviewSchema } }) },
    async (request, reply) => {
      const r = await payments.previewQr(request.body.payload);
      if (!r.ok) return reply.fail(r.error);
      const { merchant, qr, amountMinor, currency, warnings } = r.value;
      return { merchant: { id: merchant.id, name: merchant.name, nameZh: merchant.nameZh, city: merchant.city, country: merchant.country, mcc: merchant.mcc }, kind: qr === undefined ? 'static' : 'dynamic', amount: amountMinor === null ? null : money(amountMinor, currency), currency, expiresAt: qr?.expiresAt?.toISOString() ?? null, warnings };
    },
  );
  app.post(
    '/v1/wallet/payments/qr',
    { config: { ...CUSTOMER, idempotency: 'required' },
      schema: schema('payments', 'Pay a scanned merchant-presented code with one of your tokens or accounts (captured at once)', {
        description: FX_NOTE,
        body: Strict({ payload: ScannedMpmPayload, amount: Type.Optional(Money), ...WalletPayFields }),
        response: { 201: PayerPaymentSchema },
      }),
    },
    async (request, reply) => {
      const amount = request.body.amount === undefined ? undefined : parseMoney(request.body.amount);
      if (amount !== undefined && !amount.ok) return reply.fail(amount.error);
      return cardPayment(request, reply, {
        channel: 'qr',
        actor: actorOf(request, request.body.customerId),
        walletId: me(request),
        payload: request.body.payload,
        amount: amount?.value,
        pay: walletInput(request.body),
      });
    },
  );
  app.get('/v1/wallet/payments/:paymentId', { config: CUSTOMER, schema: schema('payments', 'A payment your customer made', { params: PaymentParams, response: { 200: PayerPaymentSchema } }) }, async (request, reply) => {
    const a = await payments.get({ participantId: me(request), as: 'payer' }, request.params.paymentId);
    return a === undefined ? reply.fail({ code: 'payment_not_found', message: 'no such payment' }) : wirePayerView(a);
  });

  // ---- consumer-presented QR and tap -------------------------------------------------------------------------------
  app.post(
    '/v1/merchants/:merchantId/payments/cpm',
    { config: { idempotency: 'required' },
      schema: schema('payments', 'Authorize a consumer-presented QR code (base64 BER-TLV, CPV01) shown by any wallet', {
        description: `${FX_NOTE} A terminal cannot choose the provider: the best rate in force is bound.`,
        params: MerchantParams,
        body: Strict({ payload: Type.String({ minLength: 1, maxLength: 1400 }), amount: Money }),
        response: { 201: AuthorizationSchema },
      }),
    },
    async (request, reply) => {
      const amount = parseMoney(request.body.amount);
      if (!amount.ok) return reply.fail(amount.error);
      return cardPayment(request, reply, { channel: 'cpm', actor: actorOf(request), owner: me(request), merchantId: request.params.merchantId, payload: request.body.payload, ...amount.value });
    },
  );
  app.post(
    '/v1/merchants/:merchantId/payments/tap',
    { config: { idempotency: 'required' },
      schema: schema('payments', 'Authorize a contactless tap: token, expiry, ATC, unpredictable number, amount and cryptogram from the terminal', {
        description: `${FX_NOTE} A terminal cannot choose the provider: the best rate in force is bound.`,
        params: MerchantParams,
        body: Strict({
          token: Type.String({ pattern: '^[0-9]{13,19}$' }),
          expiry: Type.String({ pattern: '^[0-9]{2}(0[1-9]|1[0-2])$', description: 'YYMM' }),
          atc: Type.Integer({ minimum: 0, maximum: 65535 }),
          unpredictableNumber: Hex(4, 'Unpredictable number'),
          amount: Money,
          cryptogram: Hex(8, 'Token cryptogram'),
        }),
        response: { 201: AuthorizationSchema },
      }),
    },
    async (request, reply) => {
      const amount = parseMoney(request.body.amount);
      if (!amount.ok) return reply.fail(amount.error);
      const { token, expiry, atc, unpredictableNumber, cryptogram } = request.body;
      return cardPayment(request, reply, { channel: 'tap', actor: actorOf(request), owner: me(request), merchantId: request.params.merchantId, tap: { token, expiry, atc, unpredictableNumber, cryptogram, ...amount.value } });
    },
  );

  // ---- payment links -----------------------------------------------------------------------------------------------
  app.post(
    '/v1/merchants/:merchantId/payment-links',
    { config: { idempotency: 'optional' },
      schema: schema('payment-links', 'Create a payment link (amount, description, expiry, single or multiple use)', {
        params: MerchantParams,
        body: Strict({ amount: Money, description: Type.String({ minLength: 1, maxLength: 200 }), expiresInS: Type.Integer({ minimum: 60, maximum: 30 * 86_400 }), multipleUse: Type.Optional(Type.Boolean()) }),
        response: { 201: PaymentLinkSchema },
      }),
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const parsed = parseMoney(request.body.amount);
        if (!parsed.ok) return parsed.error;
        const r = await payments.createLink(tx, actorOf(request), me(request), request.params.merchantId, { amountMinor: parsed.value.amountMinor, currency: parsed.value.currency, description: request.body.description, expiresInS: request.body.expiresInS, multipleUse: request.body.multipleUse ?? false });
        if (!r.ok) return r.error;
        const merchant = await merchants.getById(r.value.merchantId, tx);
        if (merchant === undefined) throw new Error('merchant vanished');
        return created(wireLink(r.value, merchant));
      }),
  );
  app.get('/v1/payment-links/:linkId', { config: CUSTOMER, schema: schema('payment-links', 'Open a payment link (any participant: the payer’s wallet shows it)', { params: LinkParams, response: { 200: PaymentLinkSchema } }) }, async (request, reply) => {
    const found = await payments.getLink(request.params.linkId);
    return found === undefined ? reply.fail({ code: 'payment_link_not_found', message: 'no such payment link' }) : wireLink(found.link, found.merchant);
  });
  app.post(
    '/v1/payment-links/:linkId/pay',
    { config: { ...CUSTOMER, idempotency: 'required' }, schema: schema('payment-links', 'Pay a payment link with one of your customer’s tokens or accounts (captured at once)', { description: FX_NOTE, params: LinkParams, body: Strict({ ...WalletPayFields }), response: { 201: PayerPaymentSchema } }) },
    async (request, reply) =>
      cardPayment(request, reply, { channel: 'link', actor: actorOf(request, request.body.customerId), walletId: me(request), linkId: request.params.linkId, pay: walletInput(request.body) }),
  );

  // ---- after authorization -----------------------------------------------------------------------------------------
  app.get(
    '/v1/payments',
    { schema: schema('payments', 'Your merchants’ payments, newest first', { querystring: Strict({ merchantId: Type.Optional(Ref('merchant', 'Only this merchant’s payments')) }), response: { 200: Type.Object({ items: Type.Array(AuthorizationSchema) }, { additionalProperties: false }) } }) },
    async (request) => ({ items: (await payments.list(me(request), { ...(request.query.merchantId !== undefined ? { merchantId: request.query.merchantId } : {}), limit: 200 })).map(wireAuthorization) }),
  );
  app.get('/v1/payments/:paymentId', { schema: schema('payments', 'One of your merchants’ payments', { params: PaymentParams, response: { 200: AuthorizationSchema } }) }, async (request, reply) => {
    const a = await payments.get({ participantId: me(request), as: 'merchant' }, request.params.paymentId);
    return a === undefined ? reply.fail({ code: 'payment_not_found', message: 'no such payment' }) : wireAuthorization(a);
  });
  const amountFor = async (request: FastifyRequest, paymentId: string, amount: string | undefined): Promise<{ ok: true; value: bigint | undefined } | { ok: false; error: PErr | { code: string; message: string } }> => {
    if (amount === undefined) return { ok: true, value: undefined };
    const a = await payments.get({ participantId: me(request), as: 'merchant' }, paymentId);
    if (a === undefined) return { ok: false, error: { code: 'payment_not_found', message: 'no such payment' } };
    const parsed = parseAmount(amount, a.currency);
    return parsed.ok ? { ok: true, value: parsed.value } : { ok: false, error: parsed.error };
  };
  app.post(
    '/v1/payments/:paymentId/capture',
    { config: { idempotency: 'required' }, schema: schema('payments', 'Capture an authorization, fully or partly (once); the rest of the hold is released', { params: PaymentParams, body: OptionalAmount, response: { 200: AuthorizationSchema } }) },
    async (request, reply) => {
      // A partial capture's amount is parsed in the payment's currency (one read); a full capture needs none.
      const amount = request.body.amount === undefined ? { ok: true as const, value: undefined } : await amountFor(request, request.params.paymentId, request.body.amount);
      if (!amount.ok) return reply.fail(amount.error);
      return capture(request, reply, { actor: actorOf(request), owner: me(request), authorizationId: request.params.paymentId, amountMinor: amount.value });
    },
  );
  app.post('/v1/payments/:paymentId/void', { config: { idempotency: 'required' }, schema: schema('payments', 'Void an uncaptured authorization: the hold is released', { params: PaymentParams, response: { 200: AuthorizationSchema } }) }, async (request, reply) =>
    idempotent(
      request,
      reply,
      async (tx) => {
        const r = await payments.void(tx, actorOf(request), me(request), request.params.paymentId);
        return r.ok ? okResponse(wireAuthorization(r.value)) : r.error;
      },
      { required: true },
    ),
  );
  app.post(
    '/v1/payments/:paymentId/refunds',
    { config: { idempotency: 'required' }, schema: schema('payments', 'Refund a captured payment, fully or partly, several times, never above what was captured less what was refunded or charged back', { params: PaymentParams, body: OptionalAmount, response: { 201: RefundSchema } }) },
    async (request, reply) =>
      idempotent(
        request,
        reply,
        async (tx) => {
          const amount = await amountFor(request, request.params.paymentId, request.body.amount);
          if (!amount.ok) return amount.error;
          const r = await payments.refund(tx, actorOf(request), me(request), request.params.paymentId, amount.value);
          if (!r.ok) return r.error;
          const body = { refundId: r.value.refundId, amount: money(r.value.amountMinor, r.value.authorization.currency), payment: wireAuthorization(r.value.authorization) };
          // Paid from an account at a bank that keeps its own books: stored as asking; the answer step settles it.
          return created(r.value.atBank ? { ...body, atBank: true } : body);
        },
        {
          required: true,
          // The bank asked to accept the credit after the refund's COMMIT (no lock held while it answers), then the
          // refund decided; the answer, first or replayed, is the decision (a decided refund is not asked again).
          after: async (answer) => {
            const body = answer.body as { refundId?: unknown; atBank?: unknown } | undefined;
            if (answer.status !== 201 || body?.atBank !== true || typeof body.refundId !== 'string') return answer;
            const shown = Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'atBank'));
            const settled = await payments.settleRefundAtBank(body.refundId);
            if (settled === undefined || settled.status === 'completed') return { status: 201, body: shown };
            const error: PErr =
              settled.status === 'asking'
                ? { code: 'payment_state', message: 'the refund is still being decided with the customer’s bank: ask again', details: { refundId: settled.refundId } }
                : (settled.error ?? { code: 'refund_rejected', message: 'the refund failed: nothing was refunded' });
            return errorAnswer(error);
          },
        },
      ),
  );

  // ---- issuers: decision mode and card-payment risk rules ----------------------------------------------------------
  const requireIssuer = (request: FastifyRequest): PErr | undefined => (principalOf(request).kind === 'issuer' ? undefined : { code: 'not_issuer_participant', message: 'only issuers configure card authorization' });
  const wireSettings = (s: Awaited<ReturnType<IssuerGateway['get']>>) => ({ mode: s.mode, authUrl: s.authUrl, deadlineMs: s.deadlineMs, standIn: { action: s.standIn.action, maxAmountMinor: s.standIn.maxAmountMinor.toString() } });
  app.get('/v1/issuer/authorization-settings', { schema: schema('issuer', 'How the hub decides on your card payments', { response: { 200: IssuerSettingsSchema } }) }, async (request, reply) => {
    const bad = requireIssuer(request);
    return bad !== undefined ? reply.fail(bad) : wireSettings(await issuers.get(me(request)));
  });
  app.post(
    '/v1/issuer/authorization-settings',
    {
      schema: schema('issuer', 'Choose hosted holds or a real-time authorization webhook (signed like webhooks, with a deadline and stand-in rules; the request: authorization.request under webhooks)', {
        body: Strict({
          mode: Type.Union([Type.Literal('hosted'), Type.Literal('webhook')]),
          authUrl: Type.Optional(Type.String({ maxLength: 2048 })),
          deadlineMs: Type.Optional(Type.Integer({ minimum: 50, maximum: 10_000, description: 'Default 2000' })),
          standIn: Type.Optional(Strict({ action: Type.Union([Type.Literal('approve'), Type.Literal('decline')]), maxAmountMinor: Type.String({ pattern: '^[0-9]{1,18}$', description: 'Minor units of the card’s currency, the authorization request’s amount (the setting covers every currency of your cards)' }) })),
        }),
        response: { 200: IssuerSettingsSchema },
      }),
    },
    async (request, reply) => {
      const bad = requireIssuer(request);
      if (bad !== undefined) return reply.fail(bad);
      const b = request.body;
      // The host is resolved before the transaction, so that a slow DNS answer holds no connection or lock.
      if (b.authUrl !== undefined) {
        const checked = await issuers.checkAuthUrl(b.authUrl);
        if (!checked.ok) return reply.fail(checked.error);
      }
      const r = await db.transaction((tx) =>
        issuers.set(tx, actorOf(request), { issuerParticipantId: me(request), mode: b.mode, authUrl: b.authUrl ?? null, deadlineMs: b.deadlineMs ?? 2_000, standIn: { action: b.standIn?.action ?? 'decline', maxAmountMinor: BigInt(b.standIn?.maxAmountMinor ?? '0') } }),
      );
      return r.ok ? wireSettings(r.value) : reply.fail(r.error);
    },
  );
  const RuleBody = Strict({
    rule: Type.Union(PAYMENT_RULE_NAMES.map((r) => Type.Literal(r))),
    enabled: Type.Boolean(),
    action: Type.Union([Type.Literal('step_up'), Type.Literal('decline')]),
    score: Type.Integer({ minimum: 0, maximum: 100 }),
    windowS: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_592_000 })),
    maxCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    minAmountMinor: Type.Optional(Type.Integer({ minimum: 0 })),
    mccs: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9]{4}$' }), { maxItems: 100 })),
  });
  const RuleInForce = Type.Object(
    {
      enabled: Type.Boolean(),
      action: Type.Union([Type.Literal('step_up'), Type.Literal('decline')]),
      score: Type.Integer(),
      windowS: Type.Optional(Type.Integer({ description: 'velocity rules: the window, in seconds' })),
      maxCount: Type.Optional(Type.Integer({ description: 'velocity rules: payments allowed in the window' })),
      minAmountMinor: Type.Optional(Type.Integer({ description: 'the amount from which it applies, in minor units of the payment’s currency' })),
      mccs: Type.Optional(Type.Array(Type.String(), { description: 'mcc: the merchant category codes it applies to' })),
    },
    { additionalProperties: false, description: 'A card-payment risk rule in force' },
  );
  const RulesInForce = Type.Object(Object.fromEntries(PAYMENT_RULE_NAMES.map((n) => [n, RuleInForce])), { additionalProperties: false, description: 'The rules in force: hub defaults with your overrides' });
  app.get('/v1/issuer/payment-risk-rules', { schema: schema('issuer', 'The card-payment risk rules in force for your cards (hub defaults with your overrides)', { response: { 200: RulesInForce } }) }, async (request) => paymentRules.rules(me(request)));
  app.post('/v1/issuer/payment-risk-rules', { schema: schema('issuer', 'Override one card-payment risk rule for your cards', { body: RuleBody, response: { 200: RuleBody } }) }, async (request, reply) => {
    const { rule, enabled, ...params } = request.body;
    const r = await db.transaction((tx) => paymentRules.setRule(tx, actorOf(request), me(request), rule as PaymentRuleName, params, enabled));
    return r.ok ? { rule, enabled, ...params } : reply.fail(r.error);
  });
  app.post('/v1/operator/payment-risk-rules', { config: { auth: 'operator' }, schema: schema('issuer', 'Set a hub-wide default card-payment risk rule', { operator: true, body: RuleBody, response: { 200: RuleBody } }) }, async (request, reply) => {
    const { rule, enabled, ...params } = request.body;
    const r = await db.transaction((tx) => paymentRules.setRule(tx, actorOf(request), '*', rule as PaymentRuleName, params, enabled));
    return r.ok ? { rule, enabled, ...params } : reply.fail(r.error);
  });
}

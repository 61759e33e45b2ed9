import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { actorOf, okResponse, created, principalOf, type Idempotent } from '../api/index.ts';
import { AmountString, CurrencyCode, Page, PageQuery, Strict, Timestamp, pageLimit, refuseUnknownCursor } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { formatAmount, parseAmount } from '../platform/money.ts';
import type { WalletTokenService } from './token-service.ts';
import { ConsentEntrySchema, KeyInfoSchema, wireConsentEntry, wireKeyInfo } from './token-routes.ts';
import { CHANNELS, type Card, type CardControls, type CardProduct, type IssuedCard } from './model.ts';
import type { WithRequestKey } from './request-keys.ts';
import type { CardService } from './service.ts';
import type { StepUpService } from '../stepup/index.ts';
import { TOKEN_CRYPTOGRAM_SCHEMES } from '../emv/index.ts';

const Channel = Type.Union(CHANNELS.map((c) => Type.Literal(c)));
const Mcc = Type.String({ pattern: '^[0-9]{4}$' });

export const ControlsSchema = Type.Object(
  {
    perTransactionMax: Type.Optional(AmountString),
    dailyLimit: Type.Optional(AmountString),
    monthlyLimit: Type.Optional(AmountString),
    allowedMccs: Type.Optional(Type.Array(Mcc, { maxItems: 100 })),
    blockedMccs: Type.Optional(Type.Array(Mcc, { maxItems: 100 })),
    allowedCountries: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]{2}$' }), { maxItems: 100 })),
    channels: Type.Optional(Type.Array(Channel, { maxItems: 3 })),
  },
  { additionalProperties: false, description: 'Spending controls; amounts in the card currency; an absent field means no limit' },
);

const TokenCryptogram = Type.Union(
  TOKEN_CRYPTOGRAM_SCHEMES.map((s) => Type.Literal(s)),
  { description: "The cryptogram this product's tokens make: visa_cvn18 (default), mchip_cvn16 or mchip_cvn17 (src/emv/token-cryptogram.ts)" },
);

const ProductSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    binPrefix: Type.String(),
    panLength: Type.Integer(),
    brand: Type.String(),
    currency: Type.String(),
    type: Type.Union([Type.Literal('debit'), Type.Literal('credit')]),
    defaultCreditLimit: Type.Union([AmountString, Type.Null()]),
    validityYears: Type.Integer(),
    tokenCryptogram: TokenCryptogram,
    createdAt: Timestamp,
  },
  { $id: 'CardProduct', additionalProperties: false },
);

export const CardSchema = Type.Object(
  {
    id: Type.String(),
    productId: Type.String(),
    customerId: Type.String(),
    maskedNumber: Type.String({ description: 'First 6 and last 4 digits at most' }),
    last4: Type.String(),
    expiry: Type.String({ description: 'MM/YY' }),
    status: Type.String(),
    brand: Type.String(),
    currency: Type.String(),
    type: Type.String(),
    par: Type.String({ description: 'Payment account reference (29 characters), shared by every token of the card' }),
    fundingAccountId: Type.Union([Type.String(), Type.Null()], { description: "The ledger account the card spends from: a credit card's own credit account (its limit enforced by the ledger), a debit card's customer account" }),
    creditLimit: Type.Union([AmountString, Type.Null()]),
    repaymentAccountId: Type.Union([Type.String(), Type.Null()], { description: 'A credit card: the account repayments come from by default (the fundingAccountId given at issuance)' }),
    controls: ControlsSchema,
    replacesCardId: Type.Union([Type.String(), Type.Null()]),
    replacedByCardId: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Card', additionalProperties: false },
);

const IssuedCardSchema = Type.Object(
  {
    card: Type.Ref(CardSchema),
    cardNumber: Type.String({ description: 'Shown once (stored only sealed); give it to the cardholder' }),
    cvv: Type.String({ description: 'Derived, never stored; shown once' }),
  },
  { additionalProperties: false },
);

const wireProduct = (p: CardProduct) => ({
  id: p.id,
  name: p.name,
  binPrefix: p.binPrefix,
  panLength: p.panLength,
  brand: p.brand,
  currency: p.currency,
  type: p.cardType,
  defaultCreditLimit: p.defaultCreditLimitMinor === null ? null : formatAmount(p.defaultCreditLimitMinor, p.currency),
  validityYears: p.validityYears,
  tokenCryptogram: p.tokenCryptogram,
  createdAt: p.createdAt.toISOString(),
});

export function wireControls(c: CardControls, currency: string) {
  return {
    ...(c.perTransactionMaxMinor !== undefined ? { perTransactionMax: formatAmount(c.perTransactionMaxMinor, currency) } : {}),
    ...(c.dailyLimitMinor !== undefined ? { dailyLimit: formatAmount(c.dailyLimitMinor, currency) } : {}),
    ...(c.monthlyLimitMinor !== undefined ? { monthlyLimit: formatAmount(c.monthlyLimitMinor, currency) } : {}),
    ...(c.allowedMccs !== undefined ? { allowedMccs: [...c.allowedMccs] } : {}),
    ...(c.blockedMccs !== undefined ? { blockedMccs: [...c.blockedMccs] } : {}),
    ...(c.allowedCountries !== undefined ? { allowedCountries: [...c.allowedCountries] } : {}),
    ...(c.channels !== undefined ? { channels: [...c.channels] } : {}),
  };
}

export const wireCard = (c: Card) => ({
  id: c.id,
  productId: c.productId,
  customerId: c.customerId,
  maskedNumber: c.maskedNumber,
  last4: c.last4,
  expiry: c.expiry,
  status: c.status,
  brand: c.brand,
  currency: c.currency,
  type: c.cardType,
  par: c.par,
  fundingAccountId: c.fundingAccountId,
  creditLimit: c.creditLimitMinor === null ? null : formatAmount(c.creditLimitMinor, c.currency),
  repaymentAccountId: c.repaymentAccountId,
  controls: wireControls(c.controls, c.currency),
  replacesCardId: c.replacesCardId,
  replacedByCardId: c.replacedByCardId,
  createdAt: c.createdAt.toISOString(),
  updatedAt: c.updatedAt.toISOString(),
});

const wireIssued = (i: IssuedCard) => ({ card: wireCard(i.card), cardNumber: i.cardNumber, cvv: i.cvv });

type WireControls = { perTransactionMax?: string; dailyLimit?: string; monthlyLimit?: string; allowedMccs?: string[]; blockedMccs?: string[]; allowedCountries?: string[]; channels?: CardControls['channels'] };

function parseControls(w: WireControls, currency: string): { ok: true; value: CardControls } | { ok: false; error: { code: 'invalid_amount' | 'amount_precision' | 'amount_too_large' | 'unknown_currency' | 'amount_not_positive'; message: string; details?: object } } {
  const out: { -readonly [K in keyof CardControls]: CardControls[K] } = {};
  for (const [field, target] of [
    ['perTransactionMax', 'perTransactionMaxMinor'],
    ['dailyLimit', 'dailyLimitMinor'],
    ['monthlyLimit', 'monthlyLimitMinor'],
  ] as const) {
    const v = w[field];
    if (v === undefined) continue;
    const parsed = parseAmount(v, currency, { allowZero: true, field });
    if (!parsed.ok) return parsed;
    out[target] = parsed.value;
  }
  if (w.allowedMccs !== undefined) out.allowedMccs = w.allowedMccs;
  if (w.blockedMccs !== undefined) out.blockedMccs = w.blockedMccs;
  if (w.allowedCountries !== undefined) out.allowedCountries = w.allowedCountries;
  if (w.channels !== undefined) out.channels = w.channels;
  return { ok: true, value: out };
}

export interface CardRouteDeps {
  readonly cards: CardService;
  readonly walletTokens: WalletTokenService;
  readonly idempotent: Idempotent;
  readonly withRequestKey: WithRequestKey;
  readonly db: Db;
  readonly stepUp: Pick<StepUpService, 'enrollTotp'>;
}

const CardParams = Strict({ cardId: Ref('card', 'Card id') });
const sec = [{ participant: [] }];

/** The issuer calling, or undefined (answered 403 not_issuer). */
function issuerOf(request: FastifyRequest): string | undefined {
  const p = principalOf(request);
  return p.kind === 'issuer' ? p.participantId : undefined;
}
const notIssuer = (reply: FastifyReply) => reply.fail({ code: 'not_issuer', message: 'only issuers (banks) manage cards' });

export function registerCardRoutes(app: HttpServer, deps: CardRouteDeps): void {
  const { cards, walletTokens, idempotent, withRequestKey } = deps;
  app.addSchema(ProductSchema);
  app.addSchema(CardSchema);

  app.post(
    '/v1/issuer/card-products',
    { config: { idempotency: 'optional' },
      schema: {
        tags: ['cards'],
        summary: 'Create a card product (a BIN range of 6–8 digits)',
        security: sec,
        body: Strict({
          name: Type.String({ minLength: 1, maxLength: 120 }),
          binPrefix: Type.String({ pattern: '^[0-9]{6,8}$' }),
          panLength: Type.Optional(Type.Integer({ minimum: 16, maximum: 19 })),
          brand: Type.String({ minLength: 1, maxLength: 40 }),
          currency: CurrencyCode,
          type: Type.Union([Type.Literal('debit'), Type.Literal('credit')]),
          defaultCreditLimit: Type.Optional(AmountString),
          validityYears: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })),
          tokenCryptogram: Type.Optional(TokenCryptogram),
        }),
        response: { 201: Type.Ref(ProductSchema) },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      return idempotent(request, reply, async (tx) => {
        const b = request.body;
        let limit: bigint | undefined;
        if (b.defaultCreditLimit !== undefined) {
          const parsed = parseAmount(b.defaultCreditLimit, b.currency, { allowZero: true, field: 'defaultCreditLimit' });
          if (!parsed.ok) return parsed.error;
          limit = parsed.value;
        }
        const result = await cards.createProduct(tx, actorOf(request), issuerId, {
          name: b.name,
          binPrefix: b.binPrefix,
          brand: b.brand,
          currency: b.currency,
          cardType: b.type,
          ...(b.panLength !== undefined ? { panLength: b.panLength } : {}),
          ...(limit !== undefined ? { defaultCreditLimitMinor: limit } : {}),
          ...(b.validityYears !== undefined ? { validityYears: b.validityYears } : {}),
          ...(b.tokenCryptogram !== undefined ? { tokenCryptogram: b.tokenCryptogram } : {}),
        });
        return result.ok ? created(wireProduct(result.value)) : result.error;
      });
    },
  );

  app.get(
    '/v1/issuer/card-products',
    { schema: { tags: ['cards'], summary: 'List your card products', security: sec, querystring: PageQuery, response: { 200: Page(Type.Ref(ProductSchema)) } } },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      const limit = pageLimit(request.query.limit);
      const refused = await refuseUnknownCursor(request.query.cursor, (id) => cards.getProduct(issuerId, id));
      if (refused !== undefined) return reply.fail(refused);
      const items = await cards.listProducts(issuerId, { limit, ...(request.query.cursor !== undefined ? { afterId: request.query.cursor } : {}) });
      return { items: items.map(wireProduct), nextCursor: items.length === limit ? (items.at(-1)?.id ?? null) : null };
    },
  );

  app.post(
    '/v1/issuer/cards',
    {
      // withRequestKey honours an Idempotency-Key (declared here for the OpenAPI document).
      config: { idempotency: 'optional' },
      schema: {
        tags: ['cards'],
        summary: 'Issue a card to one of your customers',
        description:
          'Answers the card number and CVV once: the hub stores the number sealed and derives the CVV, never storing it. With an Idempotency-Key a retry ' +
          'answers the same card (the hub keeps only a keyed hash of the request, never the answer). The card starts inactive: activate it.',
        security: sec,
        body: Strict({
          productId: Ref('card_product', 'Card product id'),
          customerId: Ref('customer', 'Your customer (the cardholder)'),
          fundingAccountId: Type.Optional(Ref('account', "Ledger account funding the card: the cardholder's own account with you, or one they linked to you with the holding bank's consent")),
          creditLimit: Type.Optional(AmountString),
          controls: Type.Optional(ControlsSchema),
        }),
        response: { 201: IssuedCardSchema },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      const b = request.body;
      const result = await withRequestKey(
        request,
        `cards:${issuerId}`,
        async (tx) => {
          const product = await cards.getProduct(issuerId, b.productId, tx);
          if (product === undefined) return { ok: false, error: { code: 'card_product_not_found', message: 'no such card product' } };
          let creditLimitMinor: bigint | undefined;
          if (b.creditLimit !== undefined) {
            const parsed = parseAmount(b.creditLimit, product.currency, { allowZero: true, field: 'creditLimit' });
            if (!parsed.ok) return parsed;
            creditLimitMinor = parsed.value;
          }
          let controls: CardControls | undefined;
          if (b.controls !== undefined) {
            const parsed = parseControls(b.controls, product.currency);
            if (!parsed.ok) return parsed;
            controls = parsed.value;
          }
          const issued = await cards.issue(tx, actorOf(request), issuerId, {
            productId: b.productId,
            customerId: b.customerId,
            ...(b.fundingAccountId !== undefined ? { fundingAccountId: b.fundingAccountId } : {}),
            ...(creditLimitMinor !== undefined ? { creditLimitMinor } : {}),
            ...(controls !== undefined ? { controls } : {}),
          });
          return issued.ok ? { ok: true, value: { objectId: issued.value.card.id, value: issued.value } } : issued;
        },
        (tx, cardId) => cards.reveal(issuerId, cardId, tx),
      );
      if (!result.ok) return reply.fail(result.error);
      return reply.code(201).send(wireIssued(result.value));
    },
  );

  app.get(
    '/v1/issuer/cards',
    {
      schema: {
        tags: ['cards'],
        summary: 'List your cards (masked)',
        security: sec,
        querystring: Type.Composite([PageQuery, Type.Object({ customerId: Type.Optional(Ref('customer', 'Only this customer’s cards')) })], { additionalProperties: false }),
        response: { 200: Page(Type.Ref(CardSchema)) },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      const limit = pageLimit(request.query.limit);
      const { customerId } = request.query;
      const refused = await refuseUnknownCursor(request.query.cursor, async (id) => {
        const card = await cards.get(issuerId, id);
        return customerId === undefined || card?.customerId === customerId ? card : undefined;
      });
      if (refused !== undefined) return reply.fail(refused);
      const items = await cards.list(issuerId, {
        limit,
        ...(request.query.customerId !== undefined ? { customerId: request.query.customerId } : {}),
        ...(request.query.cursor !== undefined ? { afterId: request.query.cursor } : {}),
      });
      return { items: items.map(wireCard), nextCursor: items.length === limit ? (items.at(-1)?.id ?? null) : null };
    },
  );

  app.get(
    '/v1/issuer/cards/:cardId',
    { schema: { tags: ['cards'], summary: 'Get one of your cards (masked)', security: sec, params: CardParams, response: { 200: Type.Ref(CardSchema) } } },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      const card = await cards.get(issuerId, request.params.cardId);
      if (card === undefined) return reply.fail({ code: 'card_not_found', message: 'no such card' });
      return wireCard(card);
    },
  );

  for (const [path, action, summary] of [
    ['activate', 'activate', 'Activate a card'],
    ['freeze', 'freeze', 'Freeze a card (its tokens are suspended)'],
    ['unfreeze', 'unfreeze', 'Unfreeze a card (tokens the freeze suspended work again)'],
    ['cancel', 'cancel', 'Cancel a card (its tokens are deleted)'],
  ] as const) {
    app.post(
      `/v1/issuer/cards/:cardId/${path}`,
      { config: { idempotency: 'optional' }, schema: { tags: ['cards'], summary, security: sec, params: CardParams, response: { 200: Type.Ref(CardSchema) } } },
      async (request, reply) => {
        const issuerId = issuerOf(request);
        if (issuerId === undefined) return notIssuer(reply);
        return idempotent(request, reply, async (tx) => {
          const result = await cards.transition(tx, actorOf(request), issuerId, request.params.cardId, action);
          return result.ok ? okResponse(wireCard(result.value)) : result.error;
        });
      },
    );
  }

  app.post(
    '/v1/issuer/cards/:cardId/report-lost',
    { config: { idempotency: 'optional' },
      schema: {
        tags: ['cards'],
        summary: 'Report a card lost or stolen (its tokens are suspended until the card is replaced)',
        security: sec,
        params: CardParams,
        body: Strict({ reason: Type.Union([Type.Literal('lost'), Type.Literal('stolen')]) }),
        response: { 200: Type.Ref(CardSchema) },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      return idempotent(request, reply, async (tx) => {
        const result = await cards.transition(tx, actorOf(request), issuerId, request.params.cardId, 'report_lost', request.body.reason);
        return result.ok ? okResponse(wireCard(result.value)) : result.error;
      });
    },
  );

  app.post(
    '/v1/issuer/cards/:cardId/replace',
    {
      config: { idempotency: 'optional' },
      schema: {
        tags: ['cards'],
        summary: 'Replace a card with a new number (same account and PAR); every token follows the new card',
        description: 'Answers the new number and CVV once. Each wallet holding a token gets a token.card_replaced webhook.',
        security: sec,
        params: CardParams,
        response: { 201: IssuedCardSchema },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      const result = await withRequestKey(
        request,
        `cards:${issuerId}`,
        async (tx) => {
          const replaced = await cards.replace(tx, actorOf(request), issuerId, request.params.cardId);
          return replaced.ok ? { ok: true, value: { objectId: replaced.value.card.id, value: replaced.value } } : replaced;
        },
        (tx, cardId) => cards.reveal(issuerId, cardId, tx),
      );
      if (!result.ok) return reply.fail(result.error);
      return reply.code(201).send(wireIssued(result.value));
    },
  );

  app.post(
    '/v1/issuer/cards/:cardId/controls',
    { config: { idempotency: 'optional' }, schema: { tags: ['cards'], summary: "Set a card's spending controls (replaces them all)", security: sec, params: CardParams, body: ControlsSchema, response: { 200: Type.Ref(CardSchema) } } },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      return idempotent(request, reply, async (tx) => {
        const card = await cards.get(issuerId, request.params.cardId, tx);
        if (card === undefined) return { code: 'card_not_found', message: 'no such card' };
        const parsed = parseControls(request.body, card.currency);
        if (!parsed.ok) return parsed.error;
        const result = await cards.setControls(tx, actorOf(request), issuerId, card.id, parsed.value);
        return result.ok ? okResponse(wireCard(result.value)) : result.error;
      });
    },
  );

  app.get(
    '/v1/issuer/cards/:cardId/tokens',
    { schema: { tags: ['cards'], summary: 'Every wallet holding a token for the card', security: sec, params: CardParams, response: { 200: Type.Object({ items: Type.Array(ConsentEntrySchema) }, { additionalProperties: false }) } } },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      const result = await walletTokens.listForCard(issuerId, request.params.cardId);
      if (!result.ok) return reply.fail(result.error);
      return { items: result.value.map(wireConsentEntry) };
    },
  );

  for (const action of ['suspend', 'resume', 'delete'] as const) {
    app.post(
      `/v1/issuer/cards/:cardId/tokens/:tokenId/${action}`,
      { config: { idempotency: 'optional' },
        schema: {
          tags: ['cards'],
          summary: `${action[0]?.toUpperCase()}${action.slice(1)} a token of your card`,
          security: sec,
          params: Strict({ cardId: Ref('card', 'Card id'), tokenId: Ref('issuer_token', 'Token id') }),
          response: { 200: ConsentEntrySchema },
        },
      },
      async (request, reply) => {
        const issuerId = issuerOf(request);
        if (issuerId === undefined) return notIssuer(reply);
        return idempotent(request, reply, async (tx) => {
          const token = await walletTokens.getForIssuer(issuerId, request.params.cardId, request.params.tokenId, tx);
          if (token === undefined) return { code: 'token_not_found', message: 'no such token' };
          const result = await walletTokens.act(tx, actorOf(request), { kind: 'issuer', participantId: issuerId }, token, action);
          if (!result.ok) return result.error;
          const entry = (await walletTokens.listForCard(issuerId, request.params.cardId));
          const found = entry.ok ? entry.value.find((e) => e.id === token.id) : undefined;
          return okResponse(found !== undefined ? wireConsentEntry(found) : { id: token.id, walletParticipantId: token.requestorParticipantId, walletName: '', status: result.value.status, suspendedBy: result.value.suspendedBy, tokenLast4: token.tokenLast4, deviceId: token.deviceId, addedAt: token.createdAt.toISOString(), lastUsedAt: token.lastUsedAt?.toISOString() ?? null });
        });
      },
    );
  }

  app.post(
    '/v1/issuer/cards/:cardId/push-provisionings',
    {
      schema: {
        tags: ['cards'],
        summary: 'Push provisioning: offer the card to a wallet ("add to wallet X" in your app)',
        description:
          'The cardholder asked for it in your app (cardholderConsent: true, recorded). Answers a one-time receipt, valid 10 minutes, that your app ' +
          'hands to the wallet app (a deep link); the wallet redeems it for its customer as the source of POST /v1/wallet/tokens, once, with no ' +
          'card data and no step-up. Not replayable: the receipt is shown once and never stored; a retry makes another one.',
        security: sec,
        params: CardParams,
        body: Strict({ walletParticipantId: Ref('participant', 'The wallet to add the card to'), cardholderConsent: Type.Boolean({ description: 'The cardholder asked for it in your app (must be true)' }) }),
        response: {
          201: Type.Object(
            { id: Type.String(), receipt: Type.String({ description: 'One-time, for the wallet: hand it over, do not keep it' }), cardId: Type.String(), walletParticipantId: Type.String(), expiresAt: Timestamp },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      const result = await deps.db.transaction((tx) => walletTokens.createPushReceipt(tx, actorOf(request), issuerId, request.params.cardId, request.body));
      if (!result.ok) return reply.fail(result.error);
      const p = result.value;
      return reply.code(201).header('cache-control', 'no-store').send({ id: p.id, receipt: p.receipt, cardId: p.cardId, walletParticipantId: p.walletParticipantId, expiresAt: p.expiresAt.toISOString() });
    },
  );

  app.get(
    '/v1/issuer/cards/:cardId/tokens/:tokenId/keys',
    {
      schema: {
        tags: ['cards'],
        summary: "A token's limited-use keys and their use (never the keys themselves), newest first",
        security: sec,
        params: Strict({ cardId: Ref('card', 'Card id'), tokenId: Ref('issuer_token', 'Token id') }),
        response: { 200: Type.Object({ items: Type.Array(KeyInfoSchema) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      const result = await walletTokens.listKeys(issuerId, request.params.cardId, request.params.tokenId);
      if (!result.ok) return reply.fail(result.error);
      return { items: result.value.map(wireKeyInfo) };
    },
  );

  app.get(
    '/v1/issuer/token-rules',
    { schema: { tags: ['cards'], summary: 'Your hosted provisioning rules', security: sec, response: { 200: RulesSchema } } },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      return walletTokens.getRules(issuerId);
    },
  );

  app.post(
    '/v1/issuer/token-rules',
    { config: { idempotency: 'optional' }, schema: { tags: ['cards'], summary: 'Set your hosted provisioning rules (approve, step_up or decline)', security: sec, body: RulesSchema, response: { 200: RulesSchema } } },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      return idempotent(request, reply, async (tx) => okResponse(await walletTokens.setRules(tx, actorOf(request), issuerId, request.body)));
    },
  );

  app.post(
    '/v1/issuer/customers/:customerId/authenticator',
    {
      schema: {
        tags: ['cards'],
        summary: 'Enroll a cardholder with an authenticator app (TOTP); step-ups then ask for its code',
        description: 'Answers the TOTP secret once (stored sealed). Not replayable: a retry answers authenticator_exists.',
        security: sec,
        params: Strict({ customerId: Ref('customer', 'Your customer (the cardholder)') }),
        response: { 201: Type.Object({ secret: Type.String(), otpauthUri: Type.String() }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const issuerId = issuerOf(request);
      if (issuerId === undefined) return notIssuer(reply);
      // Not under an idempotency key: the secret is answered once, and a retry answers authenticator_exists.
      const [customer] = await deps.db.query<{ external_id: string }>('select external_id from customers where id = $1 and participant_id = $2', [request.params.customerId, issuerId]);
      if (customer === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const result = await deps.db.transaction((tx) => deps.stepUp.enrollTotp(tx, actorOf(request, request.params.customerId), issuerId, request.params.customerId, customer.external_id));
      if (!result.ok) return reply.fail(result.error);
      return reply.code(201).header('cache-control', 'no-store').send(result.value);
    },
  );
}

const Decision = Type.Union([Type.Literal('approve'), Type.Literal('step_up'), Type.Literal('decline')]);
const RulesSchema = Strict({
  typed: Decision,
  byReference: Decision,
  newDevice: Decision,
  keyMaxTransactions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'Payments one limited-use key of your tokens may sign (default 20)' })),
  keyTtlHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 26280, description: 'Hours one limited-use key lives (default 72)' })),
});

import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { actorOf, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { Page, PageQuery, Strict, Timestamp, pageLimit, refuseUnknownCursor } from '../api/index.ts';
import { Opaque, Ref } from '../api/index.ts';
import { CHANNELS, type CreditOf, type CreditView } from './model.ts';
import { formatMoney } from '../platform/money.ts';
import { Money } from '../api/index.ts';
import type { WithRequestKey } from './request-keys.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { ConsentEntry, KeyInfo, LimitedUseKey, ProvisionOutcome, ProvisionSource, WalletToken, WalletTokenService } from './token-service.ts';

const Channel = Type.Union(CHANNELS.map((c) => Type.Literal(c)));

const Base64UrlCoordinate = Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'base64url, 32 bytes' });
/** A device's ECDSA P-256 public key in JWK form (what WebCrypto's exportKey("jwk") gives, less ext and key_ops). */
export const DevicePublicKeySchema = Strict({ kty: Type.Literal('EC'), crv: Type.Literal('P-256'), x: Base64UrlCoordinate, y: Base64UrlCoordinate });
const DeviceSignature = (what: string) => Type.String({ maxLength: 1024, pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$', description: `Compact JWS (ES256) by the device key over ${what}` });

const keyInfoFields = {
  keyCounter: Type.Integer({ description: 'The key’s number (1 for the key given at provisioning)' }),
  firstAtc: Type.Integer({ description: 'The first transaction counter (ATC) it signs' }),
  lastAtc: Type.Integer({ description: 'The last transaction counter it signs: past it, key_exhausted' }),
  expiresAt: Timestamp,
  status: Type.Union([Type.Literal('active'), Type.Literal('superseded')]),
  uses: Type.Integer({ description: 'Payments made under it' }),
  lastUsedAt: Type.Union([Timestamp, Type.Null()]),
  createdAt: Timestamp,
};
export const KeyInfoSchema = Type.Object(keyInfoFields, { additionalProperties: false });
const LimitedUseKeySchema = Type.Object(
  { ...keyInfoFields, key: Type.String({ description: 'The limited-use key (32 hex) for src/emv/token-cryptogram.ts; shown when it is made' }) },
  { additionalProperties: false },
);
export const wireKeyInfo = (k: KeyInfo) => ({
  keyCounter: k.keyCounter,
  firstAtc: k.firstAtc,
  lastAtc: k.lastAtc,
  expiresAt: k.expiresAt.toISOString(),
  status: k.status,
  uses: k.uses,
  lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
  createdAt: k.createdAt.toISOString(),
});
const wireLimitedUseKey = (k: LimitedUseKey) => ({ ...wireKeyInfo(k), key: k.key });

export const ConsentEntrySchema = Type.Object(
  {
    id: Type.String({ description: 'Entry id: pass it to revoke this wallet' }),
    walletParticipantId: Type.String(),
    walletName: Type.String(),
    status: Type.String(),
    suspendedBy: Type.Union([Type.String(), Type.Null()]),
    tokenLast4: Type.String(),
    deviceId: Type.Union([Type.String(), Type.Null()]),
    addedAt: Timestamp,
    lastUsedAt: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);

export const wireConsentEntry = (e: ConsentEntry) => ({
  id: e.id,
  walletParticipantId: e.walletParticipantId,
  walletName: e.walletName,
  status: e.status,
  suspendedBy: e.suspendedBy,
  tokenLast4: e.tokenLast4,
  deviceId: e.deviceId,
  addedAt: e.addedAt.toISOString(),
  lastUsedAt: e.lastUsedAt?.toISOString() ?? null,
});

/** A credit card's line as every wallet holding the card shows it. */
export const CreditLineSchema = Type.Object(
  {
    limit: Money,
    available: Type.Object(Money.properties, { additionalProperties: false, description: 'What can still be spent: the limit less what is owed and held' }),
    owed: Money,
    statement: Type.Union([
      Type.Object(
        {
          id: Type.String(),
          balance: Money,
          minimumPayment: Money,
          paid: Money,
          dueAt: Timestamp,
          status: Type.Union([Type.Literal('due'), Type.Literal('minimum_paid'), Type.Literal('paid'), Type.Literal('overdue')]),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ], { description: 'The latest statement, or null before the first' }),
  },
  { $id: 'CreditLine', additionalProperties: false, description: "A credit card's credit line (present on credit cards' tokens in list and get answers)" },
);

type StatementStatus = 'due' | 'minimum_paid' | 'paid' | 'overdue';

export const wireCreditLine = (c: CreditView) => ({
  limit: formatMoney(c.limitMinor, c.currency),
  available: formatMoney(c.availableMinor, c.currency),
  owed: formatMoney(c.owedMinor, c.currency),
  statement:
    c.statement === null
      ? null
      : {
          id: c.statement.id,
          balance: formatMoney(c.statement.balanceMinor, c.currency),
          minimumPayment: formatMoney(c.statement.minimumMinor, c.currency),
          paid: formatMoney(c.statement.paidMinor, c.currency),
          dueAt: c.statement.dueAt.toISOString(),
          status: c.statement.status as StatementStatus,
        },
});

const TokenSchema = Type.Object(
  {
    tokenRef: Type.String({ description: 'Token reference id: how you (and, by reference, the customer) name this token' }),
    customerId: Type.String(),
    status: Type.String(),
    suspendedBy: Type.Union([Type.String(), Type.Null()]),
    tokenLast4: Type.String(),
    expiry: Type.String({ description: "The token's own expiry, MM/YY" }),
    cardLast4: Type.String({ description: 'For display; the card number itself is never given to a wallet' }),
    brand: Type.String(),
    par: Type.String(),
    channels: Type.Array(Type.String()),
    deviceId: Type.Union([Type.String(), Type.Null()]),
    cryptogramScheme: Type.String({ description: 'The cryptogram to compute (src/emv/token-cryptogram.ts): visa_cvn18, mchip_cvn16 or mchip_cvn17' }),
    deviceBound: Type.Boolean({ description: 'Bound to a device key: new keys need that device’s signature' }),
    key: Type.Union([KeyInfoSchema, Type.Null()], { description: 'The current limited-use key (not the key itself)' }),
    lastUsedAt: Type.Union([Timestamp, Type.Null()]),
    createdAt: Timestamp,
    credit: Type.Optional(Type.Ref(CreditLineSchema)),
  },
  { $id: 'WalletToken', additionalProperties: false },
);

const wireToken = (t: WalletToken) => ({
  tokenRef: t.tokenRef,
  customerId: t.customerId,
  status: t.status,
  suspendedBy: t.suspendedBy,
  tokenLast4: t.tokenLast4,
  expiry: t.expiry,
  cardLast4: t.cardLast4,
  brand: t.brand,
  par: t.par,
  channels: [...t.channels],
  deviceId: t.deviceId,
  cryptogramScheme: t.cryptogramScheme,
  deviceBound: t.deviceBound,
  key: t.key === null ? null : wireKeyInfo(t.key),
  lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
  createdAt: t.createdAt.toISOString(),
});

const ProvisioningSchema = Type.Object(
  {
    id: Type.String(),
    status: Type.Union([Type.Literal('pending_step_up'), Type.Literal('approved'), Type.Literal('declined'), Type.Literal('failed'), Type.Literal('expired')]),
    method: Type.String(),
    stepUp: Type.Union([
      Type.Object(
        {
          method: Type.Union([Type.Literal('otp'), Type.Literal('totp')]),
          channel: Type.String({ description: "otp: a code the issuer sends through its own channel; totp: the cardholder's authenticator app" }),
          expiresAt: Type.Union([Timestamp, Type.Null()]),
          attemptsRemaining: Type.Integer(),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    cardLast4: Type.String(),
    brand: Type.String(),
    token: Type.Union([Type.Ref(TokenSchema), Type.Null()]),
    tokenNumber: Type.Optional(Type.String({ description: 'The token (never a card number); shown when the token is created' })),
    limitedUseKey: Type.Optional(LimitedUseKeySchema),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);

const wireOutcome = (o: ProvisionOutcome) => ({
  id: o.provisioning.id,
  status: o.provisioning.status,
  method: o.provisioning.method,
  stepUp:
    o.provisioning.stepUpMethod === null || o.provisioning.status !== 'pending_step_up'
      ? null
      : {
          method: o.provisioning.stepUpMethod,
          channel: o.provisioning.stepUpMethod === 'otp' ? 'issuer' : 'authenticator',
          expiresAt: o.provisioning.expiresAt?.toISOString() ?? null,
          attemptsRemaining: o.provisioning.attemptsRemaining,
        },
  cardLast4: o.provisioning.cardLast4,
  brand: o.provisioning.brand,
  token: o.provisioned === undefined ? null : wireToken(o.provisioned.token),
  ...(o.provisioned !== undefined ? { tokenNumber: o.provisioned.tokenNumber, limitedUseKey: wireLimitedUseKey(o.provisioned.limitedUseKey) } : {}),
  createdAt: o.provisioning.createdAt.toISOString(),
});

export interface WalletRouteDeps {
  readonly walletTokens: WalletTokenService;
  readonly idempotent: Idempotent;
  readonly withRequestKey: WithRequestKey;
  readonly db: Db;
  /** Credit cards' lines (the credit capability), shown on their tokens. */
  readonly creditOf?: CreditOf | undefined;
}

const sec = [{ participant: [] }];
/** Routes a customer session (the customer's own app) may call. */
const CUSTOMER = { customer: true } as const;
const TokenParams = Strict({ tokenRef: Ref('token', 'Token reference id') });

function walletOf(request: FastifyRequest): string | undefined {
  const p = principalOf(request);
  return p.kind === 'wallet' ? p.participantId : undefined;
}
const notWallet = (reply: FastifyReply) => reply.fail({ code: 'not_wallet', message: 'only wallets (token requestors) hold tokens' });

export function registerWalletTokenRoutes(app: HttpServer, deps: WalletRouteDeps): void {
  const { walletTokens, idempotent, withRequestKey, db } = deps;
  app.addSchema(CreditLineSchema);
  app.addSchema(TokenSchema);
  /** Tokens of credit cards carry their line (limit, available, owed, latest statement), read in one call. */
  const withCredit = async (tokens: readonly WalletToken[]) => {
    const ids = tokens.flatMap((t) => (t.creditAccountId === null ? [] : [t.creditAccountId]));
    const lines = ids.length === 0 || deps.creditOf === undefined ? new Map<string, CreditView>() : await deps.creditOf(ids);
    return tokens.map((t) => {
      const line = t.creditAccountId === null ? undefined : lines.get(t.creditAccountId);
      return { ...wireToken(t), ...(line !== undefined ? { credit: wireCreditLine(line) } : {}) };
    });
  };

  app.post(
    '/v1/wallet/tokens',
    { config: { ...CUSTOMER, idempotency: 'optional' },
      schema: {
        tags: ['tokens'],
        summary: "Add a card to the customer's wallet (provision a token)",
        description:
          'Either the card details typed once (source.type "typed"), or BY REFERENCE to a card the customer already holds: a token reference id ' +
          "from the customer's other wallet (\"token_ref\") or the issuer's card id (\"card_ref\"), with no card data; or a push receipt the issuer's app " +
          'handed to yours ("push_receipt": approved at once, redeemable once). Otherwise the issuer\'s rules decide: ' +
          'approve, decline or step-up (a one-time code the issuer sends to the cardholder, or their authenticator app). Every token is bound to the ' +
          "device's public key (`devicePublicKey`, required): only that device obtains new limited-use keys and answers a step-up, and the card on " +
          "another device of the customer's in this wallet needs the issuer's ID&V again. Idempotency-Key honoured; the hub keeps only a keyed hash of the request.",
        security: sec,
        body: Strict({
          customerId: Ref('customer', 'Your customer'),
          consent: Type.Boolean({ description: "The customer's consent to add the card (must be true)" }),
          deviceId: Type.Optional(Opaque('Your id of the customer’s device')),
          devicePublicKey: DevicePublicKeySchema,
          channels: Type.Optional(Type.Array(Channel, { minItems: 1, maxItems: 3 })),
          source: Type.Union([
            Strict({ type: Type.Literal('typed'), cardNumber: Type.String({ pattern: '^[0-9 -]{12,23}$' }), expiry: Type.String({ pattern: '^(0[1-9]|1[0-2])/[0-9]{2}$' }), cvv: Type.String({ pattern: '^[0-9]{3,4}$' }) }),
            Strict({ type: Type.Literal('token_ref'), tokenRef: Ref('shared_token_ref', "A token reference id the customer's other wallet holds (that wallet's record of the customer must be linked to yours with consent)") }),
            Strict({ type: Type.Literal('card_ref'), cardRef: Ref('card_ref', "The issuer's card id (the cardholder's record at the issuer must be linked to your customer with consent)") }),
            Strict({ type: Type.Literal('push_receipt'), receipt: Opaque("A push receipt the card's issuer made for your wallet (its app hands it to yours): one use, 10 minutes", { maxLength: 128, pattern: '^[A-Za-z0-9_.-]+$' }) }),
          ]),
        }),
        response: { 201: ProvisioningSchema },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      const b = request.body;
      const result = await withRequestKey(
        request,
        `tokens:${walletId}`,
        async (tx) => {
          const r = await walletTokens.provision(tx, actorOf(request, b.customerId), walletId, {
            customerId: b.customerId,
            consent: b.consent,
            source: b.source as ProvisionSource,
            ...(b.deviceId !== undefined ? { deviceId: b.deviceId } : {}),
            devicePublicKey: b.devicePublicKey,
            ...(b.channels !== undefined ? { channels: b.channels } : {}),
          });
          return r.ok ? { ok: true, value: { objectId: r.value.provisioning.id, value: r.value } } : r;
        },
        async (tx, provisioningId) => {
          const provisioning = await walletTokens.getProvisioning(walletId, provisioningId, tx);
          if (provisioning === undefined) return undefined;
          const provisioned = provisioning.tokenId !== null && provisioning.status === 'approved' ? await walletTokens.reissue(walletId, provisioning.tokenId, tx) : undefined;
          return provisioned === undefined ? { provisioning } : { provisioning, provisioned };
        },
      );
      if (!result.ok) {
        // Wrong typed card data counts against the card even though the request was refused (and rolled back):
        // guessing a CVV takes at most MAX_CARD_DATA_FAILURES tries per lock period.
        if (result.error.code === 'card_data_invalid' && b.source.type === 'typed') {
          const typed = b.source;
          await db.transaction((tx) => walletTokens.recordTypedFailure(tx, typed));
        }
        return reply.fail(result.error);
      }
      return reply.code(201).send(wireOutcome(result.value));
    },
  );

  app.get(
    '/v1/wallet/provisionings/:provisioningId',
    { config: CUSTOMER, schema: { tags: ['tokens'], summary: 'A provisioning request', security: sec, params: Strict({ provisioningId: Ref('provisioning', 'Provisioning id') }), response: { 200: ProvisioningSchema } } },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      const provisioning = await walletTokens.getProvisioning(walletId, request.params.provisioningId);
      if (provisioning === undefined) return reply.fail({ code: 'provisioning_not_found', message: 'no such provisioning' });
      return wireOutcome({ provisioning });
    },
  );

  app.post(
    '/v1/wallet/provisionings/:provisioningId/step-up',
    { config: CUSTOMER,
      schema: {
        tags: ['tokens'],
        summary: 'Complete a step-up with the code the cardholder received (or their authenticator code)',
        description: `A wrong code says only that it was wrong and how many attempts remain (5 in all); codes expire after 5 minutes.`,
        security: sec,
        params: Strict({ provisioningId: Ref('provisioning', 'Provisioning id') }),
        body: Strict({ code: Type.String({ minLength: 1, maxLength: 12 }), deviceSignature: Type.Optional(DeviceSignature('{"purpose":"step_up","provisioningId":…}: required when the card is being added with a devicePublicKey')) }),
        response: { 200: ProvisioningSchema },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      // Not through the idempotency runner: a wrong code must count even though it answers an error, and the answer
      // (token number and key) must not be stored. A repeat after success answers provisioning_state.
      const result = await db.transaction((tx) => walletTokens.completeStepUp(tx, actorOf(request), walletId, request.params.provisioningId, request.body.code, request.body.deviceSignature));
      if (!result.ok) return reply.fail(result.error);
      return reply.code(200).send(wireOutcome(result.value));
    },
  );

  app.get(
    '/v1/wallet/tokens',
    { config: CUSTOMER,
      schema: {
        tags: ['tokens'],
        summary: 'List your tokens',
        security: sec,
        querystring: Type.Composite([PageQuery, Type.Object({ customerId: Type.Optional(Ref('customer', 'Only this customer’s tokens')) })], { additionalProperties: false }),
        response: { 200: Page(Type.Ref(TokenSchema)) },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      const limit = pageLimit(request.query.limit);
      // Within the customer filter (a customer session always has one): another customer's token is no cursor of this list.
      const { customerId } = request.query;
      const refused = await refuseUnknownCursor(request.query.cursor, async (tokenRef) => {
        const token = await walletTokens.getForWallet(walletId, tokenRef);
        return customerId === undefined || token?.customerId === customerId ? token : undefined;
      });
      if (refused !== undefined) return reply.fail(refused);
      const items = await walletTokens.listForWallet(walletId, {
        limit,
        ...(request.query.customerId !== undefined ? { customerId: request.query.customerId } : {}),
        ...(request.query.cursor !== undefined ? { afterId: request.query.cursor } : {}),
      });
      return { items: await withCredit(items), nextCursor: items.length === limit ? (items.at(-1)?.tokenRef ?? null) : null };
    },
  );

  app.get(
    '/v1/wallet/tokens/:tokenRef',
    { config: CUSTOMER, schema: { tags: ['tokens'], summary: 'Get one of your tokens', security: sec, params: TokenParams, response: { 200: Type.Ref(TokenSchema) } } },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      const token = await walletTokens.getForWallet(walletId, request.params.tokenRef);
      if (token === undefined) return reply.fail({ code: 'token_not_found', message: 'no such token' });
      return (await withCredit([token]))[0]!;
    },
  );

  for (const action of ['suspend', 'resume', 'delete'] as const) {
    app.post(
      `/v1/wallet/tokens/:tokenRef/${action}`,
      { config: { ...CUSTOMER, idempotency: 'optional' }, schema: { tags: ['tokens'], summary: `${action[0]?.toUpperCase()}${action.slice(1)} one of your tokens`, security: sec, params: TokenParams, response: { 200: Type.Ref(TokenSchema) } } },
      async (request, reply) => {
        const walletId = walletOf(request);
        if (walletId === undefined) return notWallet(reply);
        return idempotent(request, reply, async (tx) => {
          const token = await walletTokens.getForWallet(walletId, request.params.tokenRef, tx);
          if (token === undefined) return { code: 'token_not_found', message: 'no such token' };
          const result = await walletTokens.act(tx, actorOf(request, token.customerId), { kind: 'wallet', participantId: walletId }, token, action);
          return result.ok ? okResponse(wireToken(result.value)) : result.error;
        });
      },
    );
  }

  app.post(
    '/v1/wallet/tokens/:tokenRef/keys',
    { config: CUSTOMER,
      schema: {
        tags: ['tokens'],
        summary: 'Replenish: a new limited-use key for a device-bound token, on a request its device signed',
        description:
          'The device signs {"purpose":"replenish","tokenRef":…,"keyCounter":<the current key’s number>} with the key the token was bound to ' +
          '(ES256 compact JWS). The current key is superseded; the new one signs the counters after the highest one used, for at most the ' +
          "issuer's number of payments and hours. A signature over an older key's number is refused (device_signature_invalid): a retry " +
          'after success signs the new number. The answer carries the key and is never stored.',
        security: sec,
        params: TokenParams,
        body: Strict({ deviceSignature: DeviceSignature('{"purpose":"replenish","tokenRef":…,"keyCounter":…}') }),
        response: { 201: LimitedUseKeySchema },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      // Not through the idempotency runner: the answer is a key, never stored; the signed counter makes a replay useless.
      const result = await db.transaction(async (tx) => {
        const token = await walletTokens.getForWallet(walletId, request.params.tokenRef, tx);
        return walletTokens.replenish(tx, actorOf(request, token?.customerId), walletId, request.params.tokenRef, request.body.deviceSignature);
      });
      if (!result.ok) return reply.fail(result.error);
      return reply.code(201).header('cache-control', 'no-store').send(wireLimitedUseKey(result.value));
    },
  );

  app.get(
    '/v1/wallet/tokens/:tokenRef/card-wallets',
    { config: CUSTOMER,
      schema: {
        tags: ['tokens'],
        summary: "The customer's consent view: every wallet holding a token for the card behind this token",
        security: sec,
        params: TokenParams,
        response: { 200: Type.Object({ items: Type.Array(ConsentEntrySchema) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      const result = await walletTokens.consentList(walletId, request.params.tokenRef);
      if (!result.ok) return reply.fail(result.error);
      return { items: result.value.map(wireConsentEntry) };
    },
  );

  app.post(
    '/v1/wallet/tokens/:tokenRef/card-wallets/:entryId/revoke',
    { config: { ...CUSTOMER, idempotency: 'optional' },
      schema: {
        tags: ['tokens'],
        summary: "On the customer's behalf, revoke (delete) any wallet's token for the same card",
        security: sec,
        params: Strict({ tokenRef: Ref('token', 'Token reference id'), entryId: Ref('card_wallet_entry', 'An entry of the consent view: any wallet’s token for the same card') }),
        response: { 200: Type.Object({ id: Type.String(), status: Type.String() }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      return idempotent(request, reply, async (tx) => {
        const mine = await walletTokens.getForWallet(walletId, request.params.tokenRef, tx);
        const result = await walletTokens.revokeByConsent(tx, actorOf(request, mine?.customerId), walletId, request.params.tokenRef, request.params.entryId);
        return result.ok ? okResponse({ id: result.value.id, status: result.value.status }) : result.error;
      });
    },
  );
}

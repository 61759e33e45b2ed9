import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { actorOf, created, principalOf, type Idempotent } from '../api/index.ts';
import { Opaque, Ref } from '../api/index.ts';
import { AmountString, Exactly, Money, Strict, Timestamp } from '../api/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { deterministicId } from '../platform/ids.ts';
import { formatMoney } from '../platform/money.ts';
import type { Static } from '@sinclair/typebox';
import { CERTIFICATE_TTL_S, type OfflineIssuer } from './certificate.ts';
import { OFFLINE_DEVICE_LIMIT_MAJOR, OFFLINE_UPLOAD_WINDOW_MS, type OfflinePayment, type OfflinePurse, type OfflineService } from './service.ts';

const Coordinate = Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'Base64url P-256 coordinate (32 bytes)' });
const DeviceKey = Strict({ kty: Type.Literal('EC'), crv: Type.Literal('P-256'), x: Coordinate, y: Coordinate });
const Jws = (what: string, maxLength = 1024) => Type.String({ maxLength, pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$', description: what });

const OfflinePaymentSchema = Type.Object(
  {
    id: Type.String({ description: 'The offline payment' }),
    purseId: Type.String(),
    counter: Type.Integer({ description: "The device's payment counter the token was signed with" }),
    merchantId: Type.String(),
    amount: Money,
    signedAt: Timestamp,
    settledAt: Timestamp,
  },
  { $id: 'OfflinePayment', additionalProperties: false, description: 'An offline payment token a merchant uploaded and the hub settled from the purse’s reserve' },
);
const OfflinePurseSchema = Type.Object(
  {
    id: Type.String({ description: 'The offline purse' }),
    customerId: Type.String(),
    currency: Type.String(),
    accountId: Type.String({ description: 'The account it is loaded from and unloads to' }),
    deviceId: Type.Union([Type.String(), Type.Null()]),
    deviceKeyThumbprint: Type.String({ description: 'RFC 7638 thumbprint of the device key its tokens are signed with' }),
    limit: Money,
    balance: Money,
    loaded: Money,
    settled: Money,
    unloaded: Money,
    status: Type.Union([Type.Literal('active'), Type.Literal('unloaded'), Type.Literal('blocked'), Type.Literal('closed')], {
      description: 'active: spendable offline; unloaded: merchants may still upload tokens up to lastCounter until uploadDeadline; blocked: a counter was signed twice; closed',
    }),
    lastCounter: Type.Union([Type.Integer(), Type.Null()], { description: 'The last counter the device declared when it unloaded' }),
    lastSettledCounter: Type.Union([Type.Integer(), Type.Null()], { description: 'The highest counter settled so far: the device signs its next payment above it' }),
    uploadDeadline: Type.Union([Timestamp, Type.Null()]),
    createdAt: Timestamp,
    certificate: Type.Union([Type.String(), Type.Null()], {
      description:
        'The hub’s certificate for the device to show a terminal with each token (compact JWS, EdDSA, under GET /v1/offline/certificate-key): the purse, ' +
        'its currency, the device key and what the hub holds for it now; null once the purse takes no new payments',
    }),
  },
  {
    $id: 'OfflinePurse',
    additionalProperties: false,
    description: `A customer's offline balance on one device, reserved at the hub (at most ${OFFLINE_DEVICE_LIMIT_MAJOR.toString()}.00 in the currency per device)`,
  },
);
type PurseWire = Static<typeof OfflinePurseSchema>;
type PaymentWire = Static<typeof OfflinePaymentSchema>;

/** The purse on the wire, with a fresh certificate while it takes payments. */
const wirePurse = (p: OfflinePurse, issuer: OfflineIssuer, nowS: number): PurseWire =>
  Exactly<PurseWire>()({
    id: p.id,
    customerId: p.customerId,
    currency: p.currency,
    accountId: p.sourceAccountId,
    deviceId: p.deviceId,
    deviceKeyThumbprint: p.deviceKeyThumbprint,
    limit: formatMoney(p.limitMinor, p.currency),
    balance: formatMoney(p.balanceMinor, p.currency),
    loaded: formatMoney(p.loadedMinor, p.currency),
    settled: formatMoney(p.settledMinor, p.currency),
    unloaded: formatMoney(p.unloadedMinor, p.currency),
    status: p.status,
    lastCounter: p.lastCounter,
    lastSettledCounter: p.lastSettledCounter,
    uploadDeadline: p.uploadDeadline === null ? null : p.uploadDeadline.toISOString(),
    createdAt: p.createdAt.toISOString(),
    certificate:
      p.status === 'active'
        ? issuer.certify({ purse: p.id, cur: p.currency, reserved: formatMoney(p.balanceMinor, p.currency).amount, key: p.deviceKey, iat: nowS, exp: nowS + CERTIFICATE_TTL_S })
        : null,
  });
const wirePayment = (p: OfflinePayment): PaymentWire =>
  Exactly<PaymentWire>()({
    id: p.id,
    purseId: p.purseId,
    counter: p.counter,
    merchantId: p.merchantId,
    amount: formatMoney(p.amountMinor, p.currency),
    signedAt: p.signedAt.toISOString(),
    settledAt: p.settledAt.toISOString(),
  });

const CUSTOMER = { customer: true } as const;
const sec = [{ participant: [] }];
const PurseParams = Strict({ purseId: Ref('offline_purse', 'Offline purse id') });

function walletOf(request: FastifyRequest): string | undefined {
  const p = principalOf(request);
  return p.kind === 'wallet' ? p.participantId : undefined;
}
const notWallet = (reply: FastifyReply) => reply.fail({ code: 'not_wallet', message: 'only wallets hold offline purses' });
const keyOf = (request: FastifyRequest) => String(request.headers['idempotency-key']);

export function registerOfflineRoutes(app: HttpServer, deps: { db: Db; idempotent: Idempotent; offline: OfflineService; issuer: () => Promise<OfflineIssuer>; nowS: () => number }): void {
  const { db, idempotent, offline, issuer, nowS } = deps;
  app.addSchema(OfflinePurseSchema);
  app.addSchema(OfflinePaymentSchema);

  app.post(
    '/v1/offline/purses',
    {
      config: { ...CUSTOMER, idempotency: 'required' },
      schema: {
        tags: ['offline'],
        summary: "Open an offline purse for your customer's device and load it",
        description:
          `Moves \`amount\` from the customer's own account at your wallet into a reserve the hub keeps for the device (at most ${OFFLINE_DEVICE_LIMIT_MAJOR.toString()}.00 in the currency: ` +
          'offline_limit_exceeded). The device then pays merchants with no network by signing offline payment tokens with the private key of `devicePublicKey` ' +
          '(ECDSA P-256; the SDK: signOfflinePayment). One open purse per device key and currency (offline_purse_exists). Idempotency-Key required.',
        security: sec,
        body: Strict({
          customerId: Ref('customer', 'Your customer'),
          accountId: Ref('account', "The customer's account at your wallet the purse is loaded from (and unloads to)"),
          devicePublicKey: DeviceKey,
          deviceId: Type.Optional(Opaque('Your id of the device', { maxLength: 64 })),
          amount: AmountString,
        }),
        response: { 201: Type.Ref(OfflinePurseSchema) },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      // Outside the effect's transaction: the signing secret may be created on first use.
      const signer = await issuer();
      const b = request.body;
      return idempotent(
        request,
        reply,
        async (tx) => {
          const r = await offline.open(tx, actorOf(request, b.customerId), walletId, {
            customerId: b.customerId,
            accountId: b.accountId,
            devicePublicKey: b.devicePublicKey,
            deviceId: b.deviceId,
            amount: b.amount,
            transferKey: deterministicId('offl', walletId, keyOf(request)),
          });
          return r.ok ? created(wirePurse(r.value, signer, nowS())) : r.error;
        },
        { required: true },
      );
    },
  );

  app.get(
    '/v1/offline/purses',
    {
      config: CUSTOMER,
      schema: {
        tags: ['offline'],
        summary: "Your customer's offline purses",
        security: sec,
        querystring: Strict({ customerId: Ref('customer', 'Your customer') }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(OfflinePurseSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      // Outside the effect's transaction: the signing secret may be created on first use.
      const signer = await issuer();
      return { items: (await offline.list(db, walletId, request.query.customerId)).map((p) => wirePurse(p, signer, nowS())) };
    },
  );

  app.get(
    '/v1/offline/purses/:purseId',
    {
      config: CUSTOMER,
      schema: {
        tags: ['offline'],
        summary: 'An offline purse and the payments settled from it',
        security: sec,
        params: PurseParams,
        response: { 200: Type.Object({ purse: Type.Ref(OfflinePurseSchema), payments: Type.Array(Type.Ref(OfflinePaymentSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      // Outside the effect's transaction: the signing secret may be created on first use.
      const signer = await issuer();
      const purse = await offline.get(db, walletId, request.params.purseId);
      if (purse === undefined) return reply.fail({ code: 'offline_purse_not_found', message: 'no such offline purse' });
      return { purse: wirePurse(purse, signer, nowS()), payments: (await offline.payments(db, purse.id)).map(wirePayment) };
    },
  );

  app.post(
    '/v1/offline/purses/:purseId/load',
    {
      config: { ...CUSTOMER, idempotency: 'required' },
      schema: {
        tags: ['offline'],
        summary: 'Load more into an active offline purse, up to its limit',
        description: 'From the account the purse was opened with. A blocked purse (offline_purse_blocked) or an unloaded one (offline_purse_closed) takes nothing. Idempotency-Key required.',
        security: sec,
        params: PurseParams,
        body: Strict({ amount: AmountString }),
        response: { 201: Type.Ref(OfflinePurseSchema) },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      // Outside the effect's transaction: the signing secret may be created on first use.
      const signer = await issuer();
      return idempotent(
        request,
        reply,
        async (tx) => {
          const r = await offline.load(tx, actorOf(request), walletId, request.params.purseId, { amount: request.body.amount, transferKey: deterministicId('offl', walletId, keyOf(request)) });
          return r.ok ? created(wirePurse(r.value, signer, nowS())) : r.error;
        },
        { required: true },
      );
    },
  );

  app.post(
    '/v1/offline/purses/:purseId/unload',
    {
      config: { ...CUSTOMER, idempotency: 'required' },
      schema: {
        tags: ['offline'],
        summary: 'Unload: the balance the device has not spent goes back to the customer’s account',
        description:
          'The device signs {"purpose":"offline_unload","purseId":…,"lastCounter":<the last counter it signed a payment with>,"remaining":"<its unspent balance>"} ' +
          '(SDK: signOfflineUnload). `remaining` goes back at once; what the device spent but merchants have not uploaded yet stays reserved for their tokens with ' +
          `counters up to lastCounter, for ${String(OFFLINE_UPLOAD_WINDOW_MS / 86_400_000)} days, then goes back too. Idempotency-Key required.`,
        security: sec,
        params: PurseParams,
        body: Strict({
          lastCounter: Type.Integer({ minimum: 0, maximum: 2_147_483_647 }),
          remaining: AmountString,
          deviceSignature: Jws('Compact JWS (ES256) by the purse’s device key over the unload statement'),
        }),
        response: { 200: Type.Ref(OfflinePurseSchema) },
      },
    },
    async (request, reply) => {
      const walletId = walletOf(request);
      if (walletId === undefined) return notWallet(reply);
      // Outside the effect's transaction: the signing secret may be created on first use.
      const signer = await issuer();
      return idempotent(
        request,
        reply,
        async (tx) => {
          const r = await offline.unload(tx, actorOf(request), walletId, request.params.purseId, request.body);
          return r.ok ? { status: 200, body: wirePurse(r.value, signer, nowS()) } : r.error;
        },
        { required: true },
      );
    },
  );

  app.get(
    '/v1/offline/payments',
    {
      schema: {
        tags: ['offline'],
        summary: 'The offline payments settled to your merchant, newest first',
        security: sec,
        querystring: Strict({
          merchantId: Ref('merchant', 'Your merchant'),
          limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: 'At most 200; default 50' })),
          before: Type.Optional(Type.String({ format: 'date-time', description: 'Only those settled before this time (the last settledAt of the previous page)' })),
        }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(OfflinePaymentSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const { merchantId, limit, before } = request.query;
      const n = Math.min(Math.max(Number(limit ?? 50), 1), 200);
      const beforeAt = before === undefined ? undefined : new Date(before);
      if (beforeAt !== undefined && Number.isNaN(beforeAt.getTime())) return reply.fail({ code: 'validation_failed', message: 'before must be a date-time', details: { field: 'before' } });
      return { items: (await offline.merchantPayments(db, merchantId, n, beforeAt)).map(wirePayment) };
    },
  );

  app.get(
    '/v1/offline/certificate-key',
    {
      schema: {
        tags: ['offline'],
        summary: 'The hub’s key for offline purse certificates: configure it in your terminals',
        description:
          'A terminal checks, with no network, that the purse certificate the payer’s device shows was signed by this key (Ed25519), then that the payment ' +
          'token is signed by the device key the certificate names (SDK: verifyOfflinePayment).',
        security: sec,
        response: {
          200: Type.Object(
            {
              keyId: Type.String(),
              publicKey: Type.Object({ kty: Type.Literal('OKP'), crv: Type.Literal('Ed25519'), x: Type.String(), kid: Type.String(), alg: Type.Literal('EdDSA'), use: Type.Literal('sig') }, { additionalProperties: false }),
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async () => {
      const { publicKey } = await issuer();
      return { keyId: publicKey.keyId, publicKey: publicKey.jwk };
    },
  );

  app.post(
    '/v1/offline/payments',
    {
      schema: {
        tags: ['offline'],
        summary: 'Upload an offline payment token your terminal took: the hub settles it from the payer’s reserve',
        description:
          "The token is what the payer's device signed with no network (purse, counter, amount, merchant). Settled once: the same token again answers " +
          'offline_token_replayed (with the payment id); another token under a counter already settled is a double spend (offline_counter_reused: refused, ' +
          "the payer's purse is blocked and its wallet told). The hub pays at most what the purse reserved (offline_reserve_exhausted). The token itself makes " +
          'the upload idempotent: no Idempotency-Key.',
        security: sec,
        body: Strict({ merchantId: Ref('merchant', 'Your merchant (the one the token pays)'), token: Jws('The offline payment token (compact JWS, ES256)', 2048) }),
        response: { 201: Type.Ref(OfflinePaymentSchema) },
      },
    },
    async (request, reply) => {
      const callerId = principalOf(request).participantId;
      const { merchantId, token } = request.body;
      const r = await db.transaction((tx) => offline.settle(tx, actorOf(request), callerId, merchantId, token));
      if (!r.ok) {
        // The refused request rolled back; the double spend is recorded (and the purse blocked) on its own.
        if (r.error.code === 'offline_counter_reused') await db.transaction((tx) => offline.recordDoubleSpend(tx, merchantId, token));
        return reply.fail(r.error);
      }
      return reply.code(201).send(wirePayment(r.value));
    },
  );
}

import { Type } from '@sinclair/typebox';
import type { Idempotent } from '../api/index.ts';
import { actorOf, created, okResponse, principalOf } from '../api/index.ts';
import { CountryCode, CurrencyCode, PageQuery, Page, Strict, Timestamp, pageLimit, refuseUnknownCursor } from '../api/index.ts';
import { Opaque, Ref } from '../api/index.ts';
import type { HttpServer } from '../platform/http.ts';
import type { FailureLimiter } from '../platform/rate-limit.ts';
import { PARTICIPANT_KINDS, type Credential, type IssuedCredential, type Participant } from './model.ts';
import type { ParticipantService } from './service.ts';
import type { TokenService } from './tokens.ts';

const ParticipantKind = Type.Union(PARTICIPANT_KINDS.map((k) => Type.Literal(k)));

export const ParticipantSchema = Type.Object(
  {
    id: Type.String(),
    kind: ParticipantKind,
    name: Type.String(),
    country: Type.String(),
    currencies: Type.Array(Type.String()),
    webhookUrl: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union([Type.Literal('active'), Type.Literal('suspended')]),
    createdAt: Timestamp,
  },
  { $id: 'Participant', additionalProperties: false },
);

const CredentialSchema = Type.Object(
  { clientId: Type.String(), createdAt: Timestamp, revokedAt: Type.Union([Timestamp, Type.Null()]) },
  { $id: 'Credential', additionalProperties: false },
);

const IssuedCredentialSchema = Type.Object(
  {
    clientId: Type.String(),
    clientSecret: Type.String({ description: 'Shown once; the hub stores only its hash' }),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);

export const wireParticipant = (p: Participant) => ({
  id: p.id,
  kind: p.kind,
  name: p.name,
  country: p.country,
  currencies: [...p.currencies],
  webhookUrl: p.webhookUrl,
  status: p.status,
  createdAt: p.createdAt.toISOString(),
});

/** A new credential, its secret shown once (stored sealed under an Idempotency-Key: see `created`). */
const wireIssuedCredential = (c: IssuedCredential) => ({ clientId: c.id, clientSecret: c.clientSecret, createdAt: c.createdAt.toISOString() });

const wireCredential = (c: Credential) => ({ clientId: c.id, createdAt: c.createdAt.toISOString(), revokedAt: c.revokedAt?.toISOString() ?? null });

export interface ParticipantRouteDeps {
  readonly participants: ParticipantService;
  readonly tokens: TokenService;
  readonly idempotent: Idempotent;
  /** Failed client authentication, counted per client id and per source address (429 while locked out). */
  readonly authFailures: FailureLimiter;
}

const ParticipantParams = Strict({ participantId: Ref('participant', 'Participant id') });
const CredentialParams = Strict({ credentialId: Ref('credential', 'Credential (client) id') });

export function registerParticipantRoutes(app: HttpServer, deps: ParticipantRouteDeps): void {
  const { participants, tokens, idempotent, authFailures } = deps;

  app.post(
    '/oauth/token',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['auth'],
        summary: 'Get an access token (OAuth 2.0 client credentials)',
        description:
          'Form or JSON body; the client id and secret may also come as HTTP Basic credentials. Tokens live 5 minutes by default. ' +
          'After 10 failed attempts within a minute for one client id, or from one source address, every attempt (a correct one too) ' +
          'answers 429 `rate_limited` with `Retry-After` for a minute.',
        body: Strict({
          grant_type: Type.Literal('client_credentials'),
          client_id: Type.Optional(Opaque('Your client id (OAuth client credentials)', { pattern: '^[\\x21-\\x7e]+$' })),
          client_secret: Type.Optional(Type.String({ maxLength: 128 })),
          scope: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: {
          200: Type.Object(
            { access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer(), participant_id: Type.String() },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request, reply) => {
      let clientId = request.body.client_id;
      let clientSecret = request.body.client_secret;
      const basic = request.headers.authorization;
      if (typeof basic === 'string' && basic.startsWith('Basic ')) {
        const [id, ...rest] = Buffer.from(basic.slice(6), 'base64').toString('utf8').split(':');
        // RFC 6749 §2.3.1: both parts are form-urlencoded; a malformed escape is a client error, not ours.
        const decode = (part: string): string | undefined => {
          try {
            return decodeURIComponent(part.replace(/\+/g, ' '));
          } catch {
            return undefined;
          }
        };
        clientId = id !== undefined ? decode(id) : undefined;
        clientSecret = decode(rest.join(':'));
        if (clientId === undefined || clientSecret === undefined) return reply.fail({ code: 'invalid_client', message: 'the Basic credentials are not form-urlencoded' });
      }
      // Failures are counted per source address and, when one is named, per client id; a locked-out key refuses every
      // attempt until it cools off, so a secret cannot be guessed at the rate this endpoint answers.
      // (A Basic header's id is not length-checked by the schema: the key keeps at most the 64 characters an id can have.)
      const failureKeys = clientId === undefined ? [`ip:${request.ip}`] : [`ip:${request.ip}`, `client:${clientId.slice(0, 64)}`];
      const limit = authFailures.check(failureKeys);
      if (!limit.allowed) {
        reply.header('retry-after', String(Math.max(1, Math.ceil(limit.retryAfterMs / 1000))));
        return reply.fail({ code: 'rate_limited', message: 'too many failed authentication attempts: wait before trying again', details: { retryAfterMs: limit.retryAfterMs } });
      }
      if (clientId === undefined || clientSecret === undefined) {
        authFailures.fail(failureKeys);
        return reply.fail({ code: 'invalid_client', message: 'client_id and client_secret are required' });
      }
      const checked = await participants.checkClient(clientId, clientSecret);
      if (!checked.ok) {
        if (checked.error.code === 'invalid_client') authFailures.fail(failureKeys);
        return reply.fail(checked.error);
      }
      const { accessToken, expiresInS } = await tokens.issue({ participantId: checked.value.participant.id, credentialId: clientId, kind: checked.value.participant.kind });
      reply.header('cache-control', 'no-store');
      return { access_token: accessToken, token_type: 'Bearer' as const, expires_in: expiresInS, participant_id: checked.value.participant.id };
    },
  );

  app.post(
    '/v1/customer-sessions',
    {
      schema: {
        tags: ['auth'],
        summary: "A short-lived access token for one of your customers' own app",
        description:
          'Your back end (holding your client credential) asks for a token bound to one customer and hands it to that customer’s app. ' +
          'The token reaches only the operations a customer app needs (marked for customer sessions), and every id it names resolves only inside ' +
          'that customer’s cards, tokens, accounts and history; anything else answers 404, and operations for your back end answer 403. ' +
          'It expires with your own token’s lifetime and stops working at once if your credential is revoked.',
        security: [{ participant: [] }],
        body: Strict({ customerId: Ref('customer', 'Your customer') }),
        response: {
          201: Type.Object({ accessToken: Type.String(), tokenType: Type.Literal('Bearer'), expiresInS: Type.Integer(), customerId: Type.String() }, { additionalProperties: false }),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { accessToken, expiresInS } = await tokens.issue({ participantId: principal.participantId, credentialId: principal.credentialId, kind: principal.kind, customerId: request.body.customerId });
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({ accessToken, tokenType: 'Bearer' as const, expiresInS, customerId: request.body.customerId });
    },
  );

  // ---- operator -------------------------------------------------------------------------------------------------
  app.post(
    '/v1/operator/participants',
    { config: { idempotency: 'optional', auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Create a participant (bank, wallet, merchant or acquirer)',
        description: 'Answers the participant, its first API credential and its webhook signing secret, each secret shown once.',
        security: [{ operator: [] }],
        body: Strict({
          kind: ParticipantKind,
          name: Type.String({ minLength: 1, maxLength: 120 }),
          country: CountryCode,
          currencies: Type.Array(CurrencyCode, { minItems: 1, maxItems: 20 }),
          webhookUrl: Type.Optional(Type.String({ maxLength: 2048 })),
          rateLimitPerS: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
        }),
        response: {
          201: Type.Object(
            { participant: Type.Ref(ParticipantSchema), credential: IssuedCredentialSchema, webhookSecret: Type.String({ description: 'Standard Webhooks secret (whsec_…), shown once' }) },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request, reply) => {
      // The host is resolved before the transaction, so that a slow DNS answer holds no connection or lock.
      if (request.body.webhookUrl !== undefined) {
        const checked = await participants.checkWebhookUrl(request.body.webhookUrl);
        if (!checked.ok) return reply.fail(checked.error);
      }
      return idempotent(request, reply, async (tx) => {
        const result = await participants.create(tx, actorOf(request), request.body);
        if (!result.ok) return result.error;
        const { participant, credential, webhookSecret } = result.value;
        return created(
          {
            participant: wireParticipant(participant),
            credential: { clientId: credential.id, clientSecret: credential.clientSecret, createdAt: credential.createdAt.toISOString() },
            webhookSecret,
          },
          { secrets: ['credential.clientSecret', 'webhookSecret'] },
        );
      });
    },
  );

  app.get(
    '/v1/operator/participants',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'List participants',
        security: [{ operator: [] }],
        querystring: Type.Composite([PageQuery, Type.Object({ kind: Type.Optional(ParticipantKind) })], { additionalProperties: false }),
        response: { 200: Page(Type.Ref(ParticipantSchema)) },
      },
    },
    async (request, reply) => {
      const limit = pageLimit(request.query.limit);
      const refused = await refuseUnknownCursor(request.query.cursor, (id) => participants.get(id));
      if (refused !== undefined) return reply.fail(refused);
      const items = await participants.list({ limit, ...(request.query.kind !== undefined ? { kind: request.query.kind } : {}), ...(request.query.cursor !== undefined ? { afterId: request.query.cursor } : {}) });
      return { items: items.map(wireParticipant), nextCursor: items.length === limit ? (items.at(-1)?.id ?? null) : null };
    },
  );

  app.get(
    '/v1/operator/participants/:participantId',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Get a participant with its credentials',
        security: [{ operator: [] }],
        params: ParticipantParams,
        response: { 200: Type.Object({ participant: Type.Ref(ParticipantSchema), credentials: Type.Array(Type.Ref(CredentialSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const participant = await participants.get(request.params.participantId);
      if (participant === undefined) return reply.fail({ code: 'participant_not_found', message: 'no such participant' });
      return { participant: wireParticipant(participant), credentials: (await participants.listCredentials(participant.id)).map(wireCredential) };
    },
  );

  for (const [action, status] of [
    ['suspend', 'suspended'],
    ['reactivate', 'active'],
  ] as const) {
    app.post(
      `/v1/operator/participants/:participantId/${action}`,
      { config: { idempotency: 'optional', auth: 'operator' },
        schema: {
          tags: ['operator'],
          summary: action === 'suspend' ? 'Suspend a participant (its tokens stop working at once)' : 'Reactivate a suspended participant',
          security: [{ operator: [] }],
          params: ParticipantParams,
          response: { 200: Type.Ref(ParticipantSchema) },
        },
      },
      async (request, reply) =>
        idempotent(request, reply, async (tx) => {
          const result = await participants.setStatus(tx, actorOf(request), request.params.participantId, status);
          return result.ok ? okResponse(wireParticipant(result.value)) : result.error;
        }),
    );
  }

  app.post(
    '/v1/operator/participants/:participantId/credentials',
    { config: { idempotency: 'optional', auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Issue a credential to a participant (at most two active)',
        security: [{ operator: [] }],
        params: ParticipantParams,
        response: { 201: IssuedCredentialSchema },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const result = await participants.issueCredential(tx, actorOf(request), request.params.participantId);
        return result.ok ? created(wireIssuedCredential(result.value), { secrets: ['clientSecret'] }) : result.error;
      }),
  );

  app.post(
    '/v1/operator/participants/:participantId/credentials/:credentialId/revoke',
    { config: { idempotency: 'optional', auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: "Revoke a participant's credential (takes effect at once)",
        security: [{ operator: [] }],
        params: Strict({ participantId: Ref('participant', 'Participant id'), credentialId: Ref('credential', 'Credential (client) id') }),
        response: { 200: Type.Ref(CredentialSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const result = await participants.revokeCredential(tx, actorOf(request), request.params.participantId, request.params.credentialId);
        return result.ok ? okResponse(wireCredential(result.value)) : result.error;
      }),
  );

  // ---- participant (self) ----------------------------------------------------------------------------------------
  app.get(
    '/v1/me',
    { schema: { tags: ['participants'], summary: 'The calling participant', security: [{ participant: [] }], response: { 200: Type.Ref(ParticipantSchema) } } },
    async (request, reply) => {
      const participant = await participants.get(principalOf(request).participantId);
      if (participant === undefined) return reply.fail({ code: 'participant_not_found', message: 'no such participant' });
      return wireParticipant(participant);
    },
  );

  app.patch(
    '/v1/me',
    { config: { idempotency: 'optional' },
      schema: {
        tags: ['participants'],
        summary: 'Update the webhook URL',
        security: [{ participant: [] }],
        body: Strict({ webhookUrl: Type.Union([Type.String({ maxLength: 2048 }), Type.Null()]) }),
        response: { 200: Type.Ref(ParticipantSchema) },
      },
    },
    async (request, reply) => {
      const { webhookUrl } = request.body;
      if (webhookUrl !== null) {
        const checked = await participants.checkWebhookUrl(webhookUrl);
        if (!checked.ok) return reply.fail(checked.error);
      }
      return idempotent(request, reply, async (tx) => {
        const result = await participants.updateWebhook(tx, actorOf(request), principalOf(request).participantId, webhookUrl);
        return result.ok ? okResponse(wireParticipant(result.value)) : result.error;
      });
    },
  );

  app.get(
    '/v1/credentials',
    { schema: { tags: ['participants'], summary: 'List own credentials', security: [{ participant: [] }], response: { 200: Type.Object({ items: Type.Array(Type.Ref(CredentialSchema)) }, { additionalProperties: false }) } } },
    async (request) => ({ items: (await participants.listCredentials(principalOf(request).participantId)).map(wireCredential) }),
  );

  app.post(
    '/v1/credentials',
    { config: { idempotency: 'optional' },
      schema: {
        tags: ['participants'],
        summary: 'Issue a second credential for rotation (at most two active)',
        security: [{ participant: [] }],
        response: { 201: IssuedCredentialSchema },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const result = await participants.issueCredential(tx, actorOf(request), principalOf(request).participantId);
        return result.ok ? created(wireIssuedCredential(result.value), { secrets: ['clientSecret'] }) : result.error;
      }),
  );

  app.post(
    '/v1/credentials/:credentialId/revoke',
    { config: { idempotency: 'optional' },
      schema: {
        tags: ['participants'],
        summary: 'Revoke one of own credentials (takes effect at once)',
        security: [{ participant: [] }],
        params: CredentialParams,
        response: { 200: Type.Ref(CredentialSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const result = await participants.revokeCredential(tx, actorOf(request), principalOf(request).participantId, request.params.credentialId);
        return result.ok ? okResponse(wireCredential(result.value)) : result.error;
      }),
  );
}

export const participantSchemas = [ParticipantSchema, CredentialSchema];

import { Type } from '@sinclair/typebox';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { actorOf, principalOf } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import { Strict, Timestamp } from '../api/index.ts';
import type { CustomerService } from '../customers/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { STEP_UP_METHODS, type Challenge, type StepUpService } from './service.ts';

const CUSTOMER = { customer: true } as const;
const sec = [{ participant: [] }];
const Method = Type.Union(STEP_UP_METHODS.map((m) => Type.Literal(m)));
/** WebAuthn JSON as the browser produces it (@simplewebauthn/browser); its content is checked by @simplewebauthn/server. */
const WebAuthnJson = (description: string) => Type.Object({}, { additionalProperties: true, description, maxProperties: 16 });

const ChallengeSchema = Type.Object(
  {
    id: Type.String(),
    customerId: Type.String(),
    purpose: Type.String(),
    method: Method,
    status: Type.Union(['pending', 'completed', 'consumed', 'failed', 'expired'].map((s) => Type.Literal(s))),
    summary: Type.Object({ amount: Type.Object({ amount: Type.String(), currency: Type.String() }), payeeName: Type.String() }),
    attemptsRemaining: Type.Integer(),
    expiresAt: Timestamp,
    webauthn: Type.Optional(WebAuthnJson('For a passkey challenge: PublicKeyCredentialRequestOptionsJSON')),
  },
  { $id: 'StepUpChallenge', additionalProperties: false },
);

const wireChallenge = (c: Challenge) => ({
  id: c.id,
  customerId: c.customerId,
  purpose: c.purpose,
  method: c.method,
  status: c.status,
  summary: c.summary,
  attemptsRemaining: c.attemptsRemaining,
  expiresAt: c.expiresAt.toISOString(),
  ...(c.webauthn !== undefined ? { webauthn: c.webauthn } : {}),
});

export function registerStepUpRoutes(app: HttpServer, deps: { db: Db; stepUp: StepUpService; customers: CustomerService }): void {
  const { db, stepUp, customers } = deps;
  app.addSchema(ChallengeSchema);

  app.post(
    '/v1/step-up/challenges',
    {
      config: CUSTOMER,
      schema: {
        tags: ['step-up'],
        summary: 'Start a step-up challenge for a payment that answered step_up_required',
        description:
          'Send the `details.stepUp.request` of the `step_up_required` answer and one of its `methods`. ' +
          '`otp`: a 6-digit code is delivered to the customer by the participant that knows them (the card’s issuer, or the account holder), ' +
          'sealed to it in the `step_up.code_requested` webhook. `totp`: the customer’s authenticator app. `passkey`: the answer carries ' +
          '`webauthn` request options for navigator.credentials.get. Then POST the proof to /v1/step-up/challenges/{id}/complete and retry the ' +
          'payment with `stepUpChallengeId` (a new Idempotency-Key): the challenge is bound to that payment’s customer, amount, currency and payee, ' +
          'and pays once.',
        security: sec,
        body: Strict({ request: Type.String({ minLength: 10, maxLength: 4096 }), method: Method }),
        response: { 201: Type.Ref(ChallengeSchema) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const result = await db.transaction((tx) => stepUp.createChallenge(tx, actorOf(request), { participantId: principal.participantId, customerId: principal.customerId }, request.body.request, request.body.method));
      return result.ok ? reply.code(201).send(wireChallenge(result.value)) : reply.fail(result.error);
    },
  );

  app.get(
    '/v1/step-up/challenges/:challengeId',
    { config: CUSTOMER, schema: { tags: ['step-up'], summary: 'A step-up challenge', security: sec, params: Strict({ challengeId: Ref('step_up_challenge', 'Challenge id') }), response: { 200: Type.Ref(ChallengeSchema) } } },
    async (request, reply) => {
      const c = await stepUp.getChallenge(principalOf(request).participantId, request.params.challengeId);
      return c === undefined ? reply.fail({ code: 'challenge_not_found', message: 'no such challenge' }) : wireChallenge(c);
    },
  );

  app.post(
    '/v1/step-up/challenges/:challengeId/complete',
    {
      config: CUSTOMER,
      schema: {
        tags: ['step-up'],
        summary: 'Answer a step-up challenge: the one-time or authenticator code, or the passkey assertion',
        description: 'Five wrong answers lock the challenge. A completed challenge must be used by the payment within 10 minutes.',
        security: sec,
        params: Strict({ challengeId: Ref('step_up_challenge', 'Challenge id') }),
        body: Type.Union([Strict({ code: Type.String({ pattern: '^[0-9]{6}$' }) }), Strict({ webauthn: WebAuthnJson('AuthenticationResponseJSON from navigator.credentials.get') })]),
        response: { 200: Type.Ref(ChallengeSchema) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const body = request.body;
      const proof = 'code' in body ? { code: body.code } : { webauthn: body.webauthn as unknown as AuthenticationResponseJSON };
      // Not through the idempotency runner: the try is taken before the answer is checked, and stays taken although a
      // wrong answer is refused and rolled back.
      await stepUp.takeTry(request.params.challengeId);
      const result = await db.transaction((tx) => stepUp.completeChallenge(tx, actorOf(request), principal.participantId, request.params.challengeId, proof));
      if (!result.ok) {
        if (result.error.code === 'challenge_locked') await stepUp.markExhausted(request.params.challengeId);
        return reply.fail(result.error);
      }
      return wireChallenge(result.value);
    },
  );

  const CustomerParams = Strict({ customerId: Ref('customer', 'Your customer') });

  app.post(
    '/v1/step-up/customers/:customerId/totp',
    {
      schema: {
        tags: ['step-up'],
        summary: "Enrol a customer's authenticator app (TOTP) for step-up",
        description: 'Answers the secret and an otpauth:// URI once (show it as a QR code in your app); the hub keeps it sealed.',
        security: sec,
        params: CustomerParams,
        response: { 201: Type.Object({ secret: Type.String(), otpauthUri: Type.String() }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const participantId = principalOf(request).participantId;
      const customer = await customers.get(participantId, request.params.customerId);
      if (customer === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const result = await db.transaction((tx) => stepUp.enrollTotp(tx, actorOf(request, customer.id), participantId, customer.id, customer.externalId));
      return result.ok ? reply.code(201).header('cache-control', 'no-store').send(result.value) : reply.fail(result.error);
    },
  );

  app.post(
    '/v1/step-up/customers/:customerId/passkeys/options',
    {
      config: CUSTOMER,
      schema: {
        tags: ['step-up'],
        summary: 'Start registering a passkey for the customer (WebAuthn registration options)',
        description: 'Pass `options` to navigator.credentials.create (or @simplewebauthn/browser startRegistration), then POST the result with `registrationId`.',
        security: sec,
        params: CustomerParams,
        response: { 201: Type.Object({ registrationId: Type.String(), options: WebAuthnJson('PublicKeyCredentialCreationOptionsJSON') }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const participantId = principalOf(request).participantId;
      const customer = await customers.get(participantId, request.params.customerId);
      if (customer === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const result = await db.transaction((tx) => stepUp.passkeyRegistrationOptions(tx, participantId, customer.id, customer.name));
      return result.ok ? reply.code(201).send(result.value) : reply.fail(result.error);
    },
  );

  app.post(
    '/v1/step-up/customers/:customerId/passkeys',
    {
      config: CUSTOMER,
      schema: {
        tags: ['step-up'],
        summary: 'Finish registering a passkey (the WebAuthn registration response)',
        security: sec,
        params: CustomerParams,
        body: Strict({ registrationId: Ref('passkey', 'From the options call'), response: WebAuthnJson('RegistrationResponseJSON from navigator.credentials.create') }),
        response: { 201: Type.Object({ credentialId: Type.String(), createdAt: Timestamp }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const participantId = principalOf(request).participantId;
      const result = await db.transaction((tx) =>
        stepUp.registerPasskey(tx, actorOf(request, request.params.customerId), participantId, request.params.customerId, request.body.registrationId, request.body.response as unknown as RegistrationResponseJSON),
      );
      return result.ok ? reply.code(201).send({ credentialId: result.value.credentialId, createdAt: result.value.createdAt.toISOString() }) : reply.fail(result.error);
    },
  );

  app.get(
    '/v1/step-up/customers/:customerId/passkeys',
    {
      config: CUSTOMER,
      schema: {
        tags: ['step-up'],
        summary: "The customer's passkeys",
        security: sec,
        params: CustomerParams,
        response: { 200: Type.Object({ items: Type.Array(Type.Object({ credentialId: Type.String(), createdAt: Timestamp, lastUsedAt: Type.Union([Timestamp, Type.Null()]) }, { additionalProperties: false })) }, { additionalProperties: false }) },
      },
    },
    async (request) => ({
      items: (await stepUp.listPasskeys(principalOf(request).participantId, request.params.customerId)).map((k) => ({ credentialId: k.credentialId, createdAt: k.createdAt.toISOString(), lastUsedAt: k.lastUsedAt?.toISOString() ?? null })),
    }),
  );
}

import { Type } from '@sinclair/typebox';
import { actorOf, created, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { Page, PageQuery, Strict, Timestamp, pageLimit, refuseUnknownCursor } from '../api/index.ts';
import { Opaque, Ref } from '../api/index.ts';
import type { HttpServer } from '../platform/http.ts';
import type { ParticipantService } from '../participants/index.ts';
import { ERASED_NAME, type CustomerDataRights } from './data-rights.ts';
import { CustomerExportSchema } from './export-schema.ts';
import type { Customer, CustomerService } from './service.ts';

export const CustomerSchema = Type.Object(
  {
    id: Type.String(),
    externalId: Type.String(),
    name: Type.String(),
    phone: Type.Union([Type.String({ description: 'E.164' }), Type.Null()]),
    kycLevel: Type.Integer(),
    createdAt: Timestamp,
  },
  { $id: 'Customer', additionalProperties: false },
);

export const wireCustomer = (c: Customer) => ({ id: c.id, externalId: c.externalId, name: c.name, phone: c.phone, kycLevel: c.kycLevel, createdAt: c.createdAt.toISOString() });
/** Routes a customer session (the customer's own app) may call. */
const CUSTOMER = { customer: true } as const;

const ErasureSchema = Type.Object(
  {
    customer: Type.Ref(CustomerSchema),
    erasedAt: Timestamp,
    alreadyErased: Type.Boolean({ description: 'true when the customer had been erased before (nothing changed now)' }),
    removed: Type.Object(
      {
        aliases: Type.Integer(),
        authenticators: Type.Integer(),
        customerLinks: Type.Integer(),
        passkeys: Type.Integer(),
        pendingConsents: Type.Integer(),
        accountLinksRevoked: Type.Integer(),
        tokensDeleted: Type.Integer(),
        cardsCancelled: Type.Integer(),
        provisioningsExpired: Type.Integer(),
        storedResponsesScrubbed: Type.Integer({ description: 'Stored idempotent answers from which the personal data was removed' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export function registerCustomerRoutes(
  app: HttpServer,
  deps: { customers: CustomerService; participants: ParticipantService; idempotent: Idempotent; dataRights: CustomerDataRights },
): void {
  const { customers, participants, idempotent, dataRights } = deps;
  app.addSchema(CustomerSchema);
  app.addSchema(CustomerExportSchema);

  app.post(
    '/v1/customers',
    { config: { idempotency: 'optional' },
      schema: {
        tags: ['customers'],
        summary: 'Register one of your customers',
        description: 'You know the customer by your own id (externalId). Phone numbers are stored in E.164.',
        security: [{ participant: [] }],
        body: Strict({
          externalId: Opaque('Your own id of the customer', { pattern: '^[^\\x00-\\x1f\\x7f]+$' }),
          name: Type.String({ minLength: 1, maxLength: 120 }),
          phone: Type.Optional(Type.String({ maxLength: 32 })),
          kycLevel: Type.Optional(Type.Integer({ minimum: 0, maximum: 3 })),
        }),
        response: { 201: Type.Ref(CustomerSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const participant = await participants.get(principalOf(request).participantId, tx);
        if (participant === undefined) return { code: 'participant_not_found', message: 'no such participant' };
        const result = await customers.create(tx, actorOf(request), participant, request.body);
        return result.ok ? created(wireCustomer(result.value)) : result.error;
      }),
  );

  app.get(
    '/v1/customers',
    {
      schema: {
        tags: ['customers'],
        summary: 'List your customers',
        security: [{ participant: [] }],
        querystring: Type.Composite([PageQuery, Type.Object({ externalId: Type.Optional(Opaque('Your own id of the customer', { pattern: '^[^\\x00-\\x1f\\x7f]+$' })) })], { additionalProperties: false }),
        response: { 200: Page(Type.Ref(CustomerSchema)) },
      },
    },
    async (request, reply) => {
      const participantId = principalOf(request).participantId;
      if (request.query.externalId !== undefined) {
        const found = await customers.findByExternalId(participantId, request.query.externalId);
        return { items: found === undefined ? [] : [wireCustomer(found)], nextCursor: null };
      }
      const limit = pageLimit(request.query.limit);
      const refused = await refuseUnknownCursor(request.query.cursor, (id) => customers.get(participantId, id));
      if (refused !== undefined) return reply.fail(refused);
      const items = await customers.list(participantId, { limit, ...(request.query.cursor !== undefined ? { afterId: request.query.cursor } : {}) });
      return { items: items.map(wireCustomer), nextCursor: items.length === limit ? (items.at(-1)?.id ?? null) : null };
    },
  );

  app.get(
    '/v1/customers/:customerId',
    { config: CUSTOMER,
      schema: {
        tags: ['customers'],
        summary: 'Get one of your customers',
        security: [{ participant: [] }],
        params: Strict({ customerId: Ref('customer', 'Customer id') }),
        response: { 200: Type.Ref(CustomerSchema) },
      },
    },
    async (request, reply) => {
      const customer = await customers.get(principalOf(request).participantId, request.params.customerId);
      if (customer === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      return wireCustomer(customer);
    },
  );

  // ---- data protection: access (export) and erasure of one customer's personal data --------------------------------
  app.get(
    '/v1/customers/:customerId/export',
    {
      schema: {
        tags: ['customers'],
        summary: "Export everything the hub holds about one of your customers (the person's data access and portability)",
        description:
          'JSON: the customer record, accounts and balances, ledger transfers of their accounts, cards (masked), wallet tokens and provisionings ' +
          '(no token number, key or code), aliases, account links and consents, person links, P2P payments, money requests, split bills, red packets, ' +
          'card payments, risk alerts, whether an authenticator is enrolled, and the audit records naming the customer. Each list is capped ' +
          '(`truncated` names the lists that were cut; `notes` says where to read the rest). The export itself is recorded in the audit trail.',
        security: [{ participant: [] }],
        params: Strict({ customerId: Ref('customer', 'Customer id') }),
        response: { 200: Type.Ref(CustomerExportSchema) },
      },
    },
    async (request, reply) => {
      const { participantId } = principalOf(request);
      const result = await dataRights.exportCustomer(participantId, request.params.customerId, actorOf(request, request.params.customerId));
      if (!result.ok) return reply.fail(result.error);
      reply.header('cache-control', 'no-store');
      return result.value;
    },
  );

  app.post(
    '/v1/customers/:customerId/erase',
    { config: { idempotency: 'optional' },
      schema: {
        tags: ['customers'],
        summary: "Erase one of your customers' personal data (pseudonymise)",
        description:
          `The name becomes "${ERASED_NAME}", the phone is removed and the external id becomes a pseudonym. Aliases, authenticators, person links and ` +
          'pending account-link consents are deleted; active account links are revoked, wallet tokens deleted, cards cancelled (with their tokens at ' +
          'every wallet). Ledger accounts and transfers, payment records and audit records are kept as they are (they name the customer by id only), ' +
          'so the books and the audit chain still verify. Refused with 409 `customer_has_balance` while the customer holds money, a pending card hold ' +
          'or an open red packet. Emits `customer.erased`. Send an Idempotency-Key to retry safely; erasing an erased customer changes nothing.',
        security: [{ participant: [] }],
        params: Strict({ customerId: Ref('customer', 'Customer id') }),
        response: { 200: ErasureSchema },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const { participantId } = principalOf(request);
        const result = await dataRights.erase(tx, actorOf(request, request.params.customerId), participantId, request.params.customerId);
        if (!result.ok) return result.error;
        const { customer, erasedAt, alreadyErased, removed } = result.value;
        return okResponse({ customer: wireCustomer(customer), erasedAt: erasedAt.toISOString(), alreadyErased, removed });
      }),
  );
}

import { Type } from '@sinclair/typebox';
import { actorOf, created, principalOf, type Idempotent } from '../api/context.ts';
import { Page, PageQuery, Strict, Timestamp, pageLimit } from '../api/schemas.ts';
import { Opaque, Ref } from '../api/refs.ts';
import type { HttpServer } from '../platform/http.ts';
import type { ParticipantService } from '../participants/service.ts';
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

export function registerCustomerRoutes(app: HttpServer, deps: { customers: CustomerService; participants: ParticipantService; idempotent: Idempotent }): void {
  const { customers, participants, idempotent } = deps;
  app.addSchema(CustomerSchema);

  app.post(
    '/v1/customers',
    {
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
    async (request) => {
      const participantId = principalOf(request).participantId;
      if (request.query.externalId !== undefined) {
        const found = await customers.findByExternalId(participantId, request.query.externalId);
        return { items: found === undefined ? [] : [wireCustomer(found)], nextCursor: null };
      }
      const limit = pageLimit(request.query.limit);
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
}

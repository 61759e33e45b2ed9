import { Type } from '@sinclair/typebox';
import { actorOf, created, principalOf, type Idempotent } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import { Strict, Timestamp } from '../api/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { CustomerLink, CustomerLinkService } from './links.ts';

const CUSTOMER = { customer: true } as const;
const sec = [{ participant: [] }];

const LinkSchema = Type.Object(
  {
    id: Type.String(),
    customerId: Type.String(),
    other: Type.Object({ participantId: Type.String(), participantName: Type.String(), customerId: Type.String({ description: 'The other participant’s id of the same person' }) }, { additionalProperties: false }),
    status: Type.Union([Type.Literal('active'), Type.Literal('revoked')]),
    createdAt: Timestamp,
    revokedAt: Type.Union([Timestamp, Type.Null()]),
  },
  { $id: 'CustomerLink', additionalProperties: false },
);

const wireLink = (l: CustomerLink) => ({ id: l.id, customerId: l.customerId, other: l.other, status: l.status, createdAt: l.createdAt.toISOString(), revokedAt: l.revokedAt?.toISOString() ?? null });

export function registerCustomerLinkRoutes(app: HttpServer, deps: { db: Db; links: CustomerLinkService; idempotent: Idempotent }): void {
  const { db, links, idempotent } = deps;
  app.addSchema(LinkSchema);

  app.post(
    '/v1/customer-links',
    { config: { ...CUSTOMER, idempotency: 'optional' },
      schema: {
        tags: ['customers'],
        summary: "Link the customer's record at another participant (their consent on both sides)",
        description:
          'The other participant (a bank or wallet that holds the same person, found by their verified phone number) receives a one-time code in the ' +
          '`customer_link.consent_requested` webhook (`codeSealed`, sealed to it) and shows it only to that customer after authenticating them; the ' +
          'customer types it into your app (POST /v1/customer-links/consents/{consentId}/confirm). A link lets you name that person’s card or token ' +
          'at the other participant (adding a card by reference) and merges their history; either side can revoke it.',
        security: sec,
        body: Strict({ customerId: Ref('customer', 'Your customer'), participantId: Ref('participant', 'The participant holding their other record') }),
        response: { 201: Type.Object({ id: Type.String(), status: Type.String(), otherParticipantId: Type.String(), expiresAt: Timestamp }, { additionalProperties: false }) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await links.request(tx, actorOf(request, request.body.customerId), { participantId: principalOf(request).participantId, customerId: request.body.customerId, otherParticipantId: request.body.participantId });
        return r.ok ? created({ id: r.value.id, status: r.value.status, otherParticipantId: r.value.otherParticipantId, expiresAt: r.value.expiresAt.toISOString() }) : r.error;
      }),
  );

  app.post(
    '/v1/customer-links/consents/:consentId/confirm',
    {
      config: CUSTOMER,
      schema: {
        tags: ['customers'],
        summary: 'Confirm a customer link with the code the other participant gave its customer',
        description: 'Five wrong codes lock the consent; codes expire after 10 minutes.',
        security: sec,
        params: Strict({ consentId: Ref('customer_link_consent', 'Consent id') }),
        body: Strict({ code: Type.String({ pattern: '^[0-9]{6}$' }) }),
        response: { 201: Type.Ref(LinkSchema) },
      },
    },
    async (request, reply) => {
      // Not under an Idempotency-Key: the try is taken before the code is checked and stays taken although a wrong code
      // is refused and rolled back.
      await links.takeTry(request.params.consentId);
      const r = await db.transaction((tx) => links.confirm(tx, actorOf(request), principalOf(request).participantId, request.params.consentId, request.body.code));
      if (!r.ok) return reply.fail(r.error);
      return reply.code(201).send(wireLink(r.value));
    },
  );

  app.get(
    '/v1/customer-links',
    {
      config: CUSTOMER,
      schema: {
        tags: ['customers'],
        summary: "The customer's links to their records at other participants (active and revoked)",
        security: sec,
        querystring: Strict({ customerId: Ref('customer', 'Your customer') }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(LinkSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request) => ({ items: (await links.list(principalOf(request).participantId, request.query.customerId)).map(wireLink) }),
  );

  app.post(
    '/v1/customer-links/:linkId/revoke',
    { config: { ...CUSTOMER, idempotency: 'optional' },
      schema: { tags: ['customers'], summary: 'Revoke a customer link (either side; takes effect at once)', security: sec, params: Strict({ linkId: Ref('customer_link', 'Link id') }), response: { 200: Type.Ref(LinkSchema) } },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await links.revoke(tx, actorOf(request), principalOf(request).participantId, request.params.linkId);
        return r.ok ? { status: 200, body: wireLink(r.value) } : r.error;
      }),
  );
}

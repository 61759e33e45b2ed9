import { Type } from '@sinclair/typebox';
import { principalOf } from '../api/context.ts';
import { Page, PageQuery, Strict, Timestamp, pageLimit } from '../api/schemas.ts';
import type { HttpServer } from '../platform/http.ts';
import type { AuditRecord, AuditService } from './service.ts';

const AuditRecordSchema = Type.Object(
  {
    id: Type.String(),
    chainSeq: Type.Union([Type.String(), Type.Null()]),
    at: Timestamp,
    actor: Type.Object({ type: Type.String(), participantId: Type.Union([Type.String(), Type.Null()]), customerId: Type.Union([Type.String(), Type.Null()]) }),
    action: Type.String(),
    object: Type.Object({ type: Type.String(), id: Type.String() }),
    details: Type.Object({}, { additionalProperties: true }),
    hash: Type.Union([Type.String(), Type.Null()]),
    prevHash: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'AuditRecord', additionalProperties: false },
);

const wire = (r: AuditRecord) => ({
  id: r.id.toString(),
  chainSeq: r.chainSeq?.toString() ?? null,
  at: r.at.toISOString(),
  actor: { type: r.actorType, participantId: r.actorParticipantId, customerId: r.actorCustomerId },
  action: r.action,
  object: { type: r.objectType, id: r.objectId },
  details: r.details,
  hash: r.hash,
  prevHash: r.prevHash,
});

const AuditQuery = Type.Composite([PageQuery, Type.Object({ objectType: Type.Optional(Type.String({ maxLength: 40 })), objectId: Type.Optional(Type.String({ maxLength: 64 })) })], {
  additionalProperties: false,
});

export function registerAuditRoutes(app: HttpServer, deps: { audit: AuditService }): void {
  const { audit } = deps;
  app.addSchema(AuditRecordSchema);

  const page = async (query: { limit?: string; cursor?: string; objectType?: string; objectId?: string }, participantId?: string) => {
    const limit = pageLimit(query.limit);
    const cursor = query.cursor !== undefined && /^[0-9]{1,19}$/.test(query.cursor) ? BigInt(query.cursor) : undefined;
    const items = await audit.list({
      limit,
      ...(participantId !== undefined ? { participantId } : {}),
      ...(query.objectType !== undefined ? { objectType: query.objectType } : {}),
      ...(query.objectId !== undefined ? { objectId: query.objectId } : {}),
      ...(cursor !== undefined ? { afterId: cursor } : {}),
    });
    return { items: items.map(wire), nextCursor: items.length === limit ? (items.at(-1)?.id.toString() ?? null) : null };
  };

  app.get(
    '/v1/operator/audit',
    { config: { auth: 'operator' }, schema: { tags: ['operator'], summary: 'The audit trail, newest first', security: [{ operator: [] }], querystring: AuditQuery, response: { 200: Page(Type.Ref(AuditRecordSchema)) } } },
    async (request) => page(request.query),
  );

  app.post(
    '/v1/operator/audit/verify',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Chain pending records, then recompute the whole hash chain',
        security: [{ operator: [] }],
        response: {
          200: Type.Object(
            {
              ok: Type.Boolean(),
              checked: Type.Integer(),
              headHash: Type.Optional(Type.Union([Type.String(), Type.Null()])),
              unchained: Type.Optional(Type.Integer()),
              brokenAt: Type.Optional(Strict({ chainSeq: Type.String(), id: Type.String(), reason: Type.String() })),
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async () => {
      await audit.chain();
      return audit.verify();
    },
  );

  app.get(
    '/v1/audit',
    { schema: { tags: ['audit'], summary: 'Audit records of actions you took, newest first', security: [{ participant: [] }], querystring: AuditQuery, response: { 200: Page(Type.Ref(AuditRecordSchema)) } } },
    async (request) => page(request.query, principalOf(request).participantId),
  );
}

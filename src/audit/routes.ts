import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { principalOf } from '../api/index.ts';
import { Page, PageQuery, Strict, Timestamp, pageLimit, refuseUnknownCursor } from '../api/index.ts';
import { Opaque } from '../api/index.ts';
import type { HttpServer } from '../platform/http.ts';
import type { AuditRecord, AuditService } from './service.ts';
import { AuditCheckpointSchema, checkpointToWire } from './checkpoints.ts';
import { AUDIT_PROBLEM_CODES } from './verify.ts';

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

const AuditQuery = Type.Composite([PageQuery, Type.Object({ objectType: Type.Optional(Type.String({ maxLength: 40 })), objectId: Type.Optional(Opaque('Only records about this object (among those you may see)', { pattern: '^[^\\x00-\\x1f\\x7f]+$' })) })], {
  additionalProperties: false,
});

export function registerAuditRoutes(app: HttpServer, deps: { audit: AuditService }): void {
  const { audit } = deps;
  app.addSchema(AuditRecordSchema);
  app.addSchema(AuditCheckpointSchema);

  const page = async (reply: FastifyReply, query: { limit?: string; cursor?: string; objectType?: string; objectId?: string }, participantId?: string) => {
    const limit = pageLimit(query.limit);
    // The cursor is the id of the previous page's last record, which was one of the records this query lists.
    const refused = await refuseUnknownCursor(query.cursor, async (cursor) => {
      const record = /^[0-9]{1,18}$/.test(cursor) ? await audit.get(BigInt(cursor)) : undefined;
      const listed =
        record !== undefined &&
        (participantId === undefined || record.actorParticipantId === participantId) &&
        (query.objectType === undefined || record.objectType === query.objectType) &&
        (query.objectId === undefined || record.objectId === query.objectId);
      return listed ? record : undefined;
    });
    if (refused !== undefined) return reply.fail(refused);
    const cursor = query.cursor !== undefined ? BigInt(query.cursor) : undefined;
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
    async (request, reply) => page(reply, request.query),
  );

  app.post(
    '/v1/operator/audit/verify',
    {
      config: { auth: 'operator' },
      // Before checkpoints this route took no body, and a POST without one still means "verify the database alone".
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ['operator'],
        summary: 'Chain pending records, then recompute the whole hash chain and check every signed checkpoint',
        description:
          'Reports the first problem: a record altered, deleted from the middle or moved; the chain recomputed after a change ' +
          '(it no longer matches a signed checkpoint); the newest records deleted (a checkpoint covers more than the chain holds); ' +
          'checkpoints deleted, altered or forged. With `against` (a checkpoint exported earlier and kept outside the database, ' +
          'as `GET /v1/operator/audit/checkpoints/latest` or `hutong audit checkpoint` print it), also checks that the database ' +
          'still holds the state it signed: deleting both the newest records and the newest checkpoints shows only that way.',
        security: [{ operator: [] }],
        body: Strict({ against: Type.Optional(Type.Ref(AuditCheckpointSchema)) }),
        response: {
          200: Type.Object(
            {
              ok: Type.Boolean(),
              checked: Type.Integer({ description: 'Chained records verified' }),
              headHash: Type.Optional(Type.Union([Type.String(), Type.Null()])),
              unchained: Type.Optional(Type.Integer()),
              checkpoints: Type.Integer({ description: 'Checkpoints verified' }),
              latestCheckpoint: Type.Optional(Type.Union([Strict({ seq: Type.String(), chainSeq: Type.String(), at: Timestamp }), Type.Null()])),
              against: Type.Optional(Strict({ seq: Type.String(), chainSeq: Type.String() })),
              problem: Type.Optional(
                Strict({
                  code: Type.Union(AUDIT_PROBLEM_CODES.map((code) => Type.Literal(code))),
                  reason: Type.String(),
                  chainSeq: Type.Optional(Type.String({ description: 'The first affected chain position' })),
                  recordId: Type.Optional(Type.String()),
                  checkpointSeq: Type.Optional(Type.String({ description: 'The first affected checkpoint' })),
                }),
              ),
              brokenAt: Type.Optional(Strict({ chainSeq: Type.String(), id: Type.String(), reason: Type.String() })),
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request) => {
      await audit.chain();
      const against = request.body.against;
      return audit.verify(against !== undefined ? { against } : {});
    },
  );

  const CheckpointQuery = Strict({
    limit: PageQuery.properties.limit,
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'The `nextCursor` of the previous page (any other cursor: 400 invalid_page)' })),
  });
  app.get(
    '/v1/operator/audit/checkpoints',
    {
      config: { auth: 'operator' },
      schema: { tags: ['operator'], summary: 'Signed checkpoints of the audit chain, newest first', security: [{ operator: [] }], querystring: CheckpointQuery, response: { 200: Page(Type.Ref(AuditCheckpointSchema)) } },
    },
    async (request, reply) => {
      const limit = pageLimit(request.query.limit);
      const refused = await refuseUnknownCursor(request.query.cursor, (seq) => audit.getCheckpoint(BigInt(seq)));
      if (refused !== undefined) return reply.fail(refused);
      const items = await audit.listCheckpoints({ limit, ...(request.query.cursor !== undefined ? { beforeSeq: BigInt(request.query.cursor) } : {}) });
      return { items: items.map((c) => checkpointToWire(c)), nextCursor: items.length === limit ? (items.at(-1)?.seq.toString() ?? null) : null };
    },
  );

  app.get(
    '/v1/operator/audit/checkpoints/latest',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'The newest signed checkpoint, with the public key: keep it outside the database and verify against it later',
        security: [{ operator: [] }],
        response: { 200: Type.Ref(AuditCheckpointSchema) },
      },
    },
    async (_request, reply) => {
      const latest = await audit.latestCheckpoint();
      if (latest === undefined) return reply.fail({ code: 'not_found', message: 'no checkpoint has been signed yet' });
      return checkpointToWire(latest, await audit.publicKey());
    },
  );

  app.get(
    '/v1/operator/audit/public-key',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'The Ed25519 public key that signs audit checkpoints (SPKI PEM and JWK)',
        security: [{ operator: [] }],
        response: {
          200: Strict({
            algorithm: Type.Literal('Ed25519'),
            keyId: Type.String(),
            pem: Type.String(),
            jwk: Strict({ kty: Type.Literal('OKP'), crv: Type.Literal('Ed25519'), x: Type.String(), kid: Type.String(), alg: Type.Literal('EdDSA'), use: Type.Literal('sig') }),
          }),
        },
      },
    },
    async () => audit.publicKey(),
  );

  app.get(
    '/v1/audit',
    { schema: { tags: ['audit'], summary: 'Audit records of actions you took, newest first', security: [{ participant: [] }], querystring: AuditQuery, response: { 200: Page(Type.Ref(AuditRecordSchema)) } } },
    async (request, reply) => page(reply, request.query, principalOf(request).participantId),
  );
}

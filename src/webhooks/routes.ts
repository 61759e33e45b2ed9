import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { actorOf, created, principalOf, type Idempotent } from '../api/index.ts';
import { Page, PageQuery, Ref, Strict, Timestamp, pageLimit, refuseUnknownCursor } from '../api/index.ts';
import type { AuditService } from '../audit/index.ts';
import type { Db } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import type { HttpServer } from '../platform/http.ts';
import { WEBHOOK_SECRET_ROTATION, type WebhookSecretService } from './secrets.ts';

const DeliverySchema = Type.Object(
  {
    id: Type.String(),
    eventId: Type.String(),
    eventType: Type.String(),
    participantId: Type.String(),
    url: Type.String(),
    status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
    attempts: Type.Integer(),
    nextAttemptAt: Type.Union([Timestamp, Type.Null()]),
    lastAttemptAt: Type.Union([Timestamp, Type.Null()]),
    lastStatusCode: Type.Union([Type.Integer(), Type.Null()]),
    lastError: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp,
  },
  { $id: 'WebhookDelivery', additionalProperties: false },
);

interface DeliveryRow {
  id: string;
  event_id: string;
  type: string;
  participant_id: string;
  url: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Date;
}

const wire = (r: DeliveryRow) => ({
  id: r.id,
  eventId: r.event_id,
  eventType: r.type,
  participantId: r.participant_id,
  url: r.url,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
  lastAttemptAt: r.last_attempt_at?.toISOString() ?? null,
  lastStatusCode: r.last_status_code,
  lastError: r.last_error,
  createdAt: r.created_at.toISOString(),
});

const DeliveryQuery = Type.Composite(
  [PageQuery, Type.Object({ status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')])) })],
  { additionalProperties: false },
);

const WebhookSecretSchema = Type.Object(
  {
    secret: Type.String({ description: 'The current Standard Webhooks signing secret (whsec_…)' }),
    previousSecret: Type.Union([Type.String(), Type.Null()], { description: 'The previous secret while it is still active after a rotation, else null' }),
    previousSecretExpiresAt: Type.Union([Timestamp, Type.Null()], { description: 'When the previous secret stops signing' }),
    rotatedAt: Type.Union([Timestamp, Type.Null()], { description: 'When the secret was last rotated (null: never)' }),
  },
  { $id: 'WebhookSecret', additionalProperties: false },
);

const RotatedSecretSchema = Type.Object(
  {
    secret: Type.String({ description: 'The new signing secret (whsec_…), shown once' }),
    previousSecretExpiresAt: Type.Union([Timestamp, Type.Null()], { description: 'Until when the previous secret also signs (null: retired at once)' }),
    rotatedAt: Timestamp,
  },
  { $id: 'RotatedWebhookSecret', additionalProperties: false },
);

export interface WebhookRouteDeps {
  readonly db: Db;
  readonly secrets: WebhookSecretService;
  readonly idempotent: Idempotent;
  readonly audit: AuditService;
  /** Demo mode: the demo participants may read their secret again. */
  readonly demoEnabled: boolean;
}

export function registerWebhookRoutes(app: HttpServer, deps: WebhookRouteDeps): void {
  app.addSchema(DeliverySchema);
  app.addSchema(WebhookSecretSchema);
  app.addSchema(RotatedSecretSchema);
  const { secrets, idempotent } = deps;

  app.get(
    '/v1/webhooks/secret',
    {
      schema: {
        tags: ['webhooks'],
        summary: "Your webhook signing secret (demo participants, in demo mode)",
        description:
          'The Standard Webhooks secret that signs your webhooks and issuer authorization requests, and the previous one while it ' +
          'is still active after a rotation. A secret is shown once, when it is made; only the demo participants of a hub in ' +
          'demo mode can read theirs again (others answer webhook_secret_not_retrievable: rotate to get a new one).',
        security: [{ participant: [] }],
        response: { 200: Type.Ref(WebhookSecretSchema) },
      },
    },
    async (request, reply) => {
      const found = await secrets.read(principalOf(request).participantId);
      if (found === undefined) return reply.fail({ code: 'participant_not_found', message: 'no such participant' });
      if (!deps.demoEnabled || !found.demo) {
        return reply.fail({ code: 'webhook_secret_not_retrievable', message: 'a webhook signing secret is shown once; only demo participants read theirs again, in demo mode: rotate it to get a new one' });
      }
      reply.header('cache-control', 'no-store');
      return {
        secret: found.current,
        previousSecret: found.previous?.secret ?? null,
        previousSecretExpiresAt: found.previous?.expiresAt.toISOString() ?? null,
        rotatedAt: found.rotatedAt?.toISOString() ?? null,
      };
    },
  );

  app.post(
    '/v1/webhooks/secret/rotate',
    {
      config: { bodyless: true, idempotency: 'optional' },
      schema: {
        tags: ['webhooks'],
        summary: 'Rotate your webhook signing secret (the previous one stays active for a while)',
        description:
          'Makes a new signing secret, shown once in the answer. The previous one keeps signing for `previousSecretExpiresInS` ' +
          `seconds (default ${WEBHOOK_SECRET_ROTATION.defaultGraceS}, at most ${WEBHOOK_SECRET_ROTATION.maxGraceS}; 0 retires it at once): meanwhile ` +
          '`webhook-signature` carries one signature per active secret, space-separated, and a receiver holding either verifies. ' +
          'Rotating again drops the older one. Send an Idempotency-Key: a retry answers the same secret.',
        security: [{ participant: [] }],
        body: Strict({
          previousSecretExpiresInS: Type.Optional(Type.Integer({ minimum: 0, maximum: WEBHOOK_SECRET_ROTATION.maxGraceS, description: 'How long the previous secret keeps signing' })),
        }),
        response: { 201: Type.Ref(RotatedSecretSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const graceS = request.body.previousSecretExpiresInS ?? WEBHOOK_SECRET_ROTATION.defaultGraceS;
        const rotated = await secrets.rotate(tx, actorOf(request), principalOf(request).participantId, graceS);
        if (!rotated.ok) return rotated.error;
        const { secret, previousExpiresAt, rotatedAt } = rotated.value;
        return created({ secret, previousSecretExpiresAt: previousExpiresAt?.toISOString() ?? null, rotatedAt: rotatedAt.toISOString() }, { secrets: ['secret'] });
      }),
  );

  const list = async (reply: FastifyReply, query: { limit?: string; cursor?: string; status?: string }, participantId: string | null) => {
    const limit = pageLimit(query.limit);
    // Cursor: "<created_at ISO>|<id>" of the last item (newest first). Not matched against `status`, which changes
    // while a client pages (a pending delivery that was the last of a page may be delivered by the next).
    const refused = await refuseUnknownCursor(query.cursor, async (cursor) => {
      const [at, id] = cursor.split('|');
      const [row] = await deps.db.query<{ created_at: Date }>('select created_at from webhook_deliveries where id = $1 and ($2::text is null or participant_id = $2)', [id ?? '', participantId]);
      return row !== undefined && row.created_at.toISOString() === at ? row : undefined;
    });
    if (refused !== undefined) return reply.fail(refused);
    const [cursorAt, cursorId] = (query.cursor ?? '').split('|');
    const rows = await deps.db.query<DeliveryRow>(
      `select d.*, e.type from webhook_deliveries d join events e on e.event_id = d.event_id
        where ($1::text is null or d.participant_id = $1) and ($2::text is null or d.status = $2)
          and ($3::timestamptz is null or (d.created_at, d.id) < ($3::timestamptz, $4::text))
        order by d.created_at desc, d.id desc limit $5`,
      [participantId, query.status ?? null, cursorAt !== undefined && cursorAt !== '' && !Number.isNaN(Date.parse(cursorAt)) ? cursorAt : null, cursorId ?? '', limit],
    );
    const last = rows.at(-1);
    return { items: rows.map(wire), nextCursor: rows.length === limit && last !== undefined ? `${last.created_at.toISOString()}|${last.id}` : null };
  };

  app.get(
    '/v1/webhooks/deliveries',
    { schema: { tags: ['webhooks'], summary: 'Your webhook deliveries and their outcomes, newest first', security: [{ participant: [] }], querystring: DeliveryQuery, response: { 200: Page(Type.Ref(DeliverySchema)) } } },
    async (request, reply) => list(reply, request.query, principalOf(request).participantId),
  );

  app.get(
    '/v1/operator/webhooks/deliveries',
    { config: { auth: 'operator' }, schema: { tags: ['operator'], summary: 'All webhook deliveries, newest first', security: [{ operator: [] }], querystring: DeliveryQuery, response: { 200: Page(Type.Ref(DeliverySchema)) } } },
    async (request, reply) => list(reply, request.query, null),
  );

  /**
   * Sends a delivery's event again, as a new delivery to the participant's webhook URL as it is now (fixed since the
   * failure, perhaps), with a fresh round of attempts; the old delivery stays as it was. Receivers dedupe by
   * `webhook-id` (the event's id), so a redelivered event that had arrived is harmless.
   */
  const redeliver = async (actor: Parameters<AuditService['record']>[1]['actor'], deliveryId: string, participantId: string | null) => {
    return deps.db.transaction(async (tx) => {
      const [old] = await tx.query<{ event_id: string; participant_id: string; webhook_url: string | null }>(
        `select d.event_id, d.participant_id, p.webhook_url from webhook_deliveries d join participants p on p.id = d.participant_id where d.id = $1 and ($2::text is null or d.participant_id = $2)`,
        [deliveryId, participantId],
      );
      if (old === undefined) return { code: 'webhook_delivery_not_found', message: 'no such webhook delivery', details: { deliveryId } } as const;
      if (old.webhook_url === null || old.webhook_url === '') return { code: 'webhook_url_missing', message: 'the participant has no webhook URL to deliver to', details: { participantId: old.participant_id } } as const;
      const id = newId('whd');
      const [row] = await tx.query<DeliveryRow>(
        `with made as (insert into webhook_deliveries (id, event_id, participant_id, url, status, attempts, next_attempt_at, created_at) values ($1, $2, $3, $4, 'pending', 0, now(), now()) returning *)
         select made.*, e.type from made join events e on e.event_id = made.event_id`,
        [id, old.event_id, old.participant_id, old.webhook_url],
      );
      if (row === undefined) throw new Error('a redelivery row vanished inside its transaction');
      await deps.audit.record(tx, { actor, action: 'webhook.redelivered', objectType: 'webhook_delivery', objectId: deliveryId, details: { newDeliveryId: id, eventId: old.event_id } });
      return wire(row);
    });
  };
  const redeliverSchema = (operator: boolean) => ({
    tags: [operator ? 'operator' : 'webhooks'],
    summary: operator ? "Send a delivery's event again to its participant (a new delivery, fresh attempts)" : "Send one of your deliveries' event again (a new delivery to your webhook URL as it is now, fresh attempts)",
    security: [operator ? { operator: [] } : { participant: [] }],
    params: Strict({ deliveryId: Ref('webhook_delivery', 'The delivery whose event to send again') }),
    response: { 201: Type.Ref(DeliverySchema) },
  });
  app.post('/v1/webhooks/deliveries/:deliveryId/redeliver', { config: { bodyless: true }, schema: redeliverSchema(false) }, async (request, reply) => {
    const r = await redeliver(actorOf(request), request.params.deliveryId, principalOf(request).participantId);
    return 'code' in r ? reply.fail(r) : reply.code(201).send(r);
  });
  app.post('/v1/operator/webhooks/deliveries/:deliveryId/redeliver', { config: { bodyless: true, auth: 'operator' }, schema: redeliverSchema(true) }, async (request, reply) => {
    const r = await redeliver(actorOf(request), request.params.deliveryId, null);
    return 'code' in r ? reply.fail(r) : reply.code(201).send(r);
  });
}

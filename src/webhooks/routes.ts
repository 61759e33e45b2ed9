import { Type } from '@sinclair/typebox';
import { principalOf } from '../api/context.ts';
import { Page, PageQuery, Timestamp, pageLimit } from '../api/schemas.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';

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

export function registerWebhookRoutes(app: HttpServer, deps: { db: Db }): void {
  app.addSchema(DeliverySchema);

  const list = async (query: { limit?: string; cursor?: string; status?: string }, participantId: string | null) => {
    const limit = pageLimit(query.limit);
    // Cursor: "<created_at ISO>|<id>" of the last item (newest first).
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
    async (request) => list(request.query, principalOf(request).participantId),
  );

  app.get(
    '/v1/operator/webhooks/deliveries',
    { config: { auth: 'operator' }, schema: { tags: ['operator'], summary: 'All webhook deliveries, newest first', security: [{ operator: [] }], querystring: DeliveryQuery, response: { 200: Page(Type.Ref(DeliverySchema)) } } },
    async (request) => list(request.query, null),
  );
}

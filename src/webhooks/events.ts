import type { Clock } from '../platform/clock.ts';
import type { Flusher, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import type { EventType } from './catalogue.ts';

export interface OutboxEvent {
  readonly participantId: string;
  /** One of the catalogue's types (src/webhooks/catalogue.ts): an event is documented before it can be emitted. */
  readonly type: EventType;
  readonly data: Readonly<Record<string, unknown>>;
}

export interface EventOutbox {
  /**
   * Writes the event, and its webhook delivery when the participant has a URL, inside the caller's transaction:
   * an event exists exactly when the change it reports does.
   */
  emit(tx: Queryable, event: OutboxEvent): Promise<string>;
}

/** One staged event: event id, participant, type, payload (JSON), created at (ISO). */
type StagedEvent = readonly [string, string, string, string, string];

/**
 * Writes a transaction's events, and a webhook delivery for each whose participant has a URL, in one statement. A
 * delivery's id is its event's id with the `whd_` prefix (one delivery per event).
 */
const eventFlusher: Flusher<StagedEvent> = {
  flush: (tx, rows) =>
    tx.query(
      `with e as (
         insert into events (event_id, participant_id, type, payload, created_at)
         select event_id, participant_id, type, payload::jsonb, created_at::timestamptz
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) with ordinality as r(event_id, participant_id, type, payload, created_at, n)
          order by n
         returning event_id, participant_id, created_at)
       insert into webhook_deliveries (id, event_id, participant_id, url, status, next_attempt_at, created_at)
       select 'whd_' || substr(e.event_id, 5), e.event_id, p.id, p.webhook_url, 'pending', e.created_at, e.created_at
         from e join participants p on p.id = e.participant_id
        where p.webhook_url is not null`,
      [0, 1, 2, 3, 4].map((i) => rows.map((r) => r[i])),
    ),
};

export function createEventOutbox(deps: { clock: Clock }): EventOutbox {
  return {
    async emit(tx, event) {
      const eventId = newId('evt');
      const row: StagedEvent = [eventId, event.participantId, event.type, JSON.stringify(event.data), deps.clock.now().toISOString()];
      // Inside a transaction the event goes out with the COMMIT (one statement for all of the transaction's events).
      if (tx.hooks !== undefined) tx.hooks.stage(eventFlusher, row);
      else await eventFlusher.flush(tx, [row]);
      return eventId;
    },
  };
}

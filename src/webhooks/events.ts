import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';

export interface OutboxEvent {
  readonly participantId: string;
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export interface EventOutbox {
  /**
   * Writes the event, and its webhook delivery when the participant has a URL, inside the caller's transaction:
   * an event exists exactly when the change it reports does.
   */
  emit(tx: Queryable, event: OutboxEvent): Promise<string>;
}

export function createEventOutbox(deps: { clock: Clock }): EventOutbox {
  return {
    async emit(tx, event) {
      const eventId = newId('evt');
      const now = deps.clock.now();
      await tx.query('insert into events (event_id, participant_id, type, payload, created_at) values ($1, $2, $3, $4, $5)', [
        eventId,
        event.participantId,
        event.type,
        event.data,
        now,
      ]);
      await tx.query(
        `insert into webhook_deliveries (id, event_id, participant_id, url, status, next_attempt_at, created_at)
         select $1, $2, id, webhook_url, 'pending', $3, $3 from participants where id = $4 and webhook_url is not null`,
        [newId('whd'), eventId, now, event.participantId],
      );
      return eventId;
    },
  };
}

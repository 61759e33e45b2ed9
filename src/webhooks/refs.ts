import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/** A webhook delivery is its recipient participant's (the operator sees all of them). */
export function defineWebhookRefs(refs: RefRegistry): void {
  refs.define('webhook_delivery', sqlRefKind({ code: 'webhook_delivery_not_found', message: 'no such webhook delivery' }, `select id, participant_id, null::text as customer_id from webhook_deliveries where id = any($1::text[])`, { immutable: true }));
}

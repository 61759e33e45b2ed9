import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/** A customer is its participant's, and a customer session names only itself. */
export function defineCustomerRefs(refs: RefRegistry): void {
  refs.define('customer', sqlRefKind({ code: 'customer_not_found', message: 'no such customer' }, `select id, participant_id, id as customer_id from customers where id = any($1::text[])`, { immutable: true }));
}

/** A customer link is held by both sides (each side's row); a link consent by the side that asked. */
export function defineCustomerLinkRefs(refs: RefRegistry): void {
  refs.define('customer_link', sqlRefKind({ code: 'customer_link_not_found', message: 'no such link' }, `select id, participant_id, customer_id from customer_links where id = any($1::text[])`, { immutable: true }));
  refs.define(
    'customer_link_consent',
    sqlRefKind({ code: 'customer_link_consent_not_found', message: 'no such consent' }, `select id, participant_id, customer_id from customer_link_consents where id = any($1::text[])`, { immutable: true }),
  );
}

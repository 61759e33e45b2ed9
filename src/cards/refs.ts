import { sqlGrant, sqlRefKind, type RefRegistry } from '../api/index.ts';

/**
 * Card products are their issuer's; cards their issuer's and cardholder's. A wallet names a card by reference
 * (`card_ref`) only for a customer whose record is linked, with consent on both sides, to the cardholder's record at
 * the issuer (customer links): a card id alone is never enough.
 */
export function defineCardRefs(refs: RefRegistry): void {
  refs.define('card_product', sqlRefKind({ code: 'card_product_not_found', message: 'no such card product' }, `select id, issuer_participant_id as participant_id, null::text as customer_id from card_products where id = any($1::text[])`, { immutable: true }));
  const cardHolders = `select id, issuer_participant_id as participant_id, customer_id from cards where id = any($1::text[])`;
  refs.define('card', sqlRefKind({ code: 'card_not_found', message: 'no such card' }, cardHolders, { immutable: true }));
  refs.define(
    'card_ref',
    sqlRefKind({ code: 'reference_not_found', message: 'no card behind this reference' }, cardHolders, {
      immutable: true,
      granted: sqlGrant(
        `select c.id from cards c where c.id = any($1::text[]) and exists (
           select 1 from customer_links l where l.participant_id = $2 and l.customer_id = $3 and l.status = 'active'
              and l.other_participant_id = c.issuer_participant_id and l.other_customer_id = c.customer_id)`,
        { needsCustomer: true },
      ),
    }),
  );
}

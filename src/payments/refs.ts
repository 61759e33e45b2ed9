import { holdersFromSql, sqlRefKind, type RefRegistry } from '../api/index.ts';
import type { Queryable } from '../platform/db.ts';

/**
 * Merchants, their QR codes and their card payments are the merchant owner's (a card payment is also its payer's
 * side: the wallet and customer that paid). A payment link is published by its merchant to be paid from any wallet:
 * public.
 */
export function definePaymentRefs(refs: RefRegistry): void {
  refs.define('merchant', sqlRefKind({ code: 'merchant_not_found', message: 'no such merchant' }, `select id, owner_participant_id as participant_id, null::text as customer_id from merchants where id = any($1::text[])`, { immutable: true }));
  refs.define('qr_code', sqlRefKind({ code: 'qr_not_found', message: 'no such QR code' }, `select id, owner_participant_id as participant_id, null::text as customer_id from pay_qr_codes where id = any($1::text[])`, { immutable: true }));
  refs.define('payment_link', sqlRefKind({ code: 'payment_link_not_found', message: 'no such payment link' }, `select id, owner_participant_id as participant_id, null::text as customer_id from pay_links where id = any($1::text[])`, { immutable: true, public: true }));
  refs.define(
    'card_payment',
    sqlRefKind(
      { code: 'payment_not_found', message: 'no such payment' },
      `select id, owner_participant_id as participant_id, null::text as customer_id from pay_authorizations where id = any($1::text[])
       union all select id, payer_participant_id, payer_customer_id from pay_authorizations where id = any($1::text[]) and payer_participant_id is not null`,
      { immutable: true },
    ),
  );
}

/**
 * A card payment the hub asked a connected bank to reserve (pipeline.ts) is also a connector transfer of that bank: it
 * names it where a transfer id is expected (GET /v1/connector/transfers/{id}, the final state after a crash). The ask
 * is recorded before the reserve is sent, and its bank never changes.
 */
export const connectorTransferHolders = (q: Queryable, ids: readonly string[]) =>
  holdersFromSql(q, `select authorization_id as id, issuer_participant_id as participant_id, null::text as customer_id from pay_issuer_asks where authorization_id = any($1::text[]) and connector_request is not null`, ids);

import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/**
 * P2P objects and their holders: a quote is its payer's; a payment and a money request have two sides (payer and
 * payee, requester and payer); a split is its creator's; a red packet its sender's and every member's. A connector
 * transfer (the TxId a connected bank asks the final state of) is also a card payment the hub asked a bank to reserve
 * (payments/pipeline.ts): that bank's, so that it learns the decision after a crash as for a P2P payment.
 */
export function defineTransferRefs(refs: RefRegistry): void {
  refs.define('quote', sqlRefKind({ code: 'quote_not_found', message: 'no such quote' }, `select id, payer_participant_id as participant_id, payer_customer_id as customer_id from quotes where id = any($1::text[])`, { immutable: true }));
  refs.define(
    'transfer',
    sqlRefKind(
      { code: 'payment_not_found', message: 'no such payment' },
      `select id, payer_participant_id as participant_id, payer_customer_id as customer_id from payments where id = any($1::text[])
       union all select id, payee_participant_id, payee_customer_id from payments where id = any($1::text[])
       union all select authorization_id, issuer_participant_id, null::text from pay_issuer_asks where authorization_id = any($1::text[]) and connector_request is not null`,
      { immutable: true },
    ),
  );
  refs.define(
    'money_request',
    sqlRefKind(
      { code: 'request_not_found', message: 'no such request' },
      `select id, requester_participant_id as participant_id, requester_customer_id as customer_id from money_requests where id = any($1::text[])
       union all select id, payer_participant_id, payer_customer_id from money_requests where id = any($1::text[])`,
      { immutable: true },
    ),
  );
  refs.define('split', sqlRefKind({ code: 'split_not_found', message: 'no such split' }, `select id, participant_id, customer_id from bill_splits where id = any($1::text[])`, { immutable: true }));
  refs.define(
    'red_packet',
    sqlRefKind(
      { code: 'red_packet_not_found', message: 'no such red packet' },
      `select id, participant_id, customer_id from red_packets where id = any($1::text[])
       union all select packet_id, participant_id, customer_id from red_packet_members where packet_id = any($1::text[])`,
      { immutable: true },
    ),
  );
}

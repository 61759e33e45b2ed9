import { sqlRefKind, type RefKindSpec, type RefRegistry } from '../api/index.ts';

/**
 * P2P objects and their holders: a quote is its payer's; a payment and a money request have two sides (payer and
 * payee, requester and payer); a split is its creator's; a red packet its sender's and every member's.
 */
export function defineTransferRefs(refs: RefRegistry, options: { connectorTransfers?: RefKindSpec['holders'] } = {}): void {
  const payments = sqlRefKind(
    { code: 'payment_not_found', message: 'no such payment' },
    `select id, payer_participant_id as participant_id, payer_customer_id as customer_id from payments where id = any($1::text[])
     union all select id, payee_participant_id, payee_customer_id from payments where id = any($1::text[])`,
    { immutable: true },
  );
  // A connector transfer (the TxId a connected bank asks the final state of) may also be a card payment the hub asked
  // that bank to reserve: its holders come from the payments capability (connectorTransferHolders, wired by main.ts).
  const more = options.connectorTransfers;
  refs.define(
    'transfer',
    more === undefined
      ? payments
      : {
          ...payments,
          async holders(q, ids) {
            const found = new Map(await payments.holders(q, ids));
            const rest = ids.filter((id) => !found.has(id));
            if (rest.length > 0) for (const [id, h] of await more(q, rest)) found.set(id, h);
            return found;
          },
        },
  );
  refs.define('quote', sqlRefKind({ code: 'quote_not_found', message: 'no such quote' }, `select id, payer_participant_id as participant_id, payer_customer_id as customer_id from quotes where id = any($1::text[])`, { immutable: true }));
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

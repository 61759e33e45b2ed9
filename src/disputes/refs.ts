import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/**
 * A dispute is held by its three parties: the wallet (and its customer), the card issuer or payer's participant, and
 * the merchant's owner or payee's participant. A recall by the payer's wallet (and customer), the payee's participant
 * and every participant one of whose accounts it froze.
 */
export function defineDisputeRefs(refs: RefRegistry): void {
  refs.define(
    'dispute',
    sqlRefKind(
      { code: 'dispute_not_found', message: 'no such dispute' },
      `select id, wallet_participant_id as participant_id, customer_id from disputes where id = any($1::text[])
       union all select id, issuer_participant_id, null::text from disputes where id = any($1::text[])
       union all select id, respondent_participant_id, null::text from disputes where id = any($1::text[])`,
    ),
  );
  refs.define(
    'recall',
    sqlRefKind(
      { code: 'recall_not_found', message: 'no such recall' },
      `select id, wallet_participant_id as participant_id, customer_id from recalls where id = any($1::text[])
       union all select id, payee_participant_id, null::text from recalls where id = any($1::text[])
       union all select recall_id, owner_participant_id, null::text from recall_holds where recall_id = any($1::text[])`,
    ),
  );
}

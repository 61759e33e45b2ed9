import { sqlGrant, sqlRefKind, type RefRegistry } from '../api/index.ts';

/**
 * Tokens are the wallet's that requested them (by token reference) and, on issuer routes, the card issuer's (by token
 * id). Two cross-participant relations are granted:
 * - a token reference of the customer's OTHER wallet (provisioning by reference) when the two customer records — or
 *   this record and the cardholder's at the issuer — are linked with consent on both sides;
 * - the consent view's entries: any wallet's token for a card this wallet also holds a token for.
 */
export function defineTokenRefs(refs: RefRegistry): void {
  const byRef = `select token_ref as id, requestor_participant_id as participant_id, customer_id from card_tokens where token_ref = any($1::text[])`;
  refs.define('token', sqlRefKind({ code: 'token_not_found', message: 'no such token' }, byRef, { immutable: true }));
  refs.define(
    'shared_token_ref',
    sqlRefKind({ code: 'reference_not_found', message: 'no card behind this reference' }, byRef, {
      immutable: true,
      granted: sqlGrant(
        `select t.token_ref as id from card_tokens t join cards c on c.id = t.card_id
          where t.token_ref = any($1::text[]) and t.status <> 'deleted' and exists (
            select 1 from customer_links l where l.participant_id = $2 and l.customer_id = $3 and l.status = 'active'
               and ((l.other_participant_id = t.requestor_participant_id and l.other_customer_id = t.customer_id)
                 or (l.other_participant_id = c.issuer_participant_id and l.other_customer_id = c.customer_id)))`,
        { needsCustomer: true },
      ),
    }),
  );
  refs.define('issuer_token', sqlRefKind({ code: 'token_not_found', message: 'no such token' }, `select id, issuer_participant_id as participant_id, null::text as customer_id from card_tokens where id = any($1::text[])`, { immutable: true }));
  refs.define(
    'card_wallet_entry',
    sqlRefKind({ code: 'token_not_found', message: 'no such wallet entry for this card' }, `select id, requestor_participant_id as participant_id, customer_id from card_tokens where id = any($1::text[])`, {
      immutable: true,
      granted: sqlGrant(
        `select e.id from card_tokens e where e.id = any($1::text[]) and exists (
           select 1 from card_tokens mine where mine.card_id = e.card_id and mine.requestor_participant_id = $2
              and ($3::text is null or mine.customer_id = $3) and mine.status <> 'deleted')`,
        { needsCustomer: false },
      ),
    }),
  );
  refs.define('provisioning', sqlRefKind({ code: 'provisioning_not_found', message: 'no such provisioning' }, `select id, requestor_participant_id as participant_id, customer_id from token_provisionings where id = any($1::text[])`, { immutable: true }));
}

import { sqlGrant, sqlRefKind, type RefRegistry } from '../api/index.ts';

/**
 * Accounts are their owner's (and their customer's); another participant may name one only through an active account
 * link its customer confirmed with the holding bank's one-time code (the grant), acting for that customer.
 */
export function defineAccountRefs(refs: RefRegistry): void {
  refs.define(
    'account',
    sqlRefKind({ code: 'account_not_found', message: 'no such account' }, `select id, owner_participant_id as participant_id, customer_id from ledger_accounts where id = any($1::text[])`, {
      immutable: true,
      granted: sqlGrant(
        `select account_id as id from account_links where account_id = any($1::text[]) and wallet_participant_id = $2 and wallet_customer_id = $3 and status = 'active'`,
        { needsCustomer: true },
      ),
    }),
  );
  refs.define(
    'account_link',
    sqlRefKind(
      { code: 'link_not_found', message: 'no such link' },
      `select id, wallet_participant_id as participant_id, wallet_customer_id as customer_id from account_links where id = any($1::text[])
       union all select id, bank_participant_id, bank_customer_id from account_links where id = any($1::text[])`,
      { immutable: true },
    ),
  );
  refs.define(
    'open_banking_consent',
    sqlRefKind({ code: 'consent_not_found', message: 'no such consent' }, `select id, wallet_participant_id as participant_id, wallet_customer_id as customer_id from open_banking_consents where id = any($1::text[])`, { immutable: true }),
  );
  refs.define(
    'account_link_consent',
    sqlRefKind({ code: 'consent_not_found', message: 'no such consent' }, `select id, wallet_participant_id as participant_id, wallet_customer_id as customer_id from account_link_consents where id = any($1::text[])`, { immutable: true }),
  );
}

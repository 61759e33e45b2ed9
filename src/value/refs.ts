import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/**
 * A merchant's coupons and membership programmes are published to be kept by any wallet's customer: public (the
 * merchant's owner alone changes them, checked by the service). A coupon kept in a wallet, and a savings pot, are
 * their participant's customer's.
 */
export function defineValueRefs(refs: RefRegistry): void {
  refs.define('coupon', sqlRefKind({ code: 'coupon_not_found', message: 'no such coupon' }, `select id, owner_participant_id as participant_id, null::text as customer_id from coupons where id = any($1::text[])`, { immutable: true, public: true }));
  refs.define('wallet_coupon', sqlRefKind({ code: 'coupon_not_found', message: 'no such coupon in the customer’s wallet' }, `select id, participant_id, customer_id from wallet_coupons where id = any($1::text[])`, { immutable: true }));
  refs.define(
    'membership_program',
    sqlRefKind({ code: 'membership_program_not_found', message: 'no such membership programme' }, `select id, owner_participant_id as participant_id, null::text as customer_id from membership_programs where id = any($1::text[])`, { immutable: true, public: true }),
  );
  // A targeted offer is named by wallets (to accept it, checked against their customer's eligibility) and its issuer.
  refs.define('targeted_offer', sqlRefKind({ code: 'targeted_offer_not_found', message: 'no such targeted offer' }, `select id, issuer_participant_id as participant_id, null::text as customer_id from targeted_offers where id = any($1::text[])`, { immutable: true, public: true }));
  refs.define('savings_pot', sqlRefKind({ code: 'pot_not_found', message: 'no such savings pot' }, `select id, participant_id, customer_id from savings_pots where id = any($1::text[])`, { immutable: true }));
}

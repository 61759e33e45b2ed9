import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/** An alias is its current holder's (it can move, so it is read every time); a move is the receiving side's. */
export function defineAliasRefs(refs: RefRegistry): void {
  refs.define('alias', sqlRefKind({ code: 'alias_not_found', message: 'no such alias' }, `select id, participant_id, customer_id from aliases where id = any($1::text[])`));
  refs.define('alias_verification', sqlRefKind({ code: 'alias_verification_not_found', message: 'no such alias verification' }, `select id, participant_id, customer_id from alias_verifications where id = any($1::text[])`, { immutable: true }));
  refs.define('alias_move', sqlRefKind({ code: 'alias_move_not_found', message: 'no such alias move' }, `select id, to_participant_id as participant_id, to_customer_id as customer_id from alias_moves where id = any($1::text[])`, { immutable: true }));
}

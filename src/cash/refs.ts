import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/** A withdrawal or top-up is the wallet's and its customer's. */
export function defineCashRefs(refs: RefRegistry): void {
  refs.define(
    'cash_movement',
    sqlRefKind({ code: 'cash_movement_not_found', message: 'no such withdrawal or top-up' }, `select id, participant_id, customer_id from cash_movements where id = any($1::text[])`, { immutable: true }),
  );
}

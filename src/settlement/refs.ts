import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/**
 * A settlement window is the hub's, one per currency at a time, and every participant may name it: what a participant
 * then reads of it (its own net position, its own transfers, the instructions it is a party to) is scoped by the routes.
 */
export function defineSettlementRefs(refs: RefRegistry): void {
  refs.define(
    'settlement_window',
    sqlRefKind({ code: 'settlement_window_not_found', message: 'no such settlement window' }, `select id, null::text as participant_id, null::text as customer_id from settlement_windows where id = any($1::text[])`, { immutable: true, public: true }),
  );
}

import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/** An offline purse is its wallet's and its customer's. */
export function defineOfflineRefs(refs: RefRegistry): void {
  refs.define(
    'offline_purse',
    sqlRefKind({ code: 'offline_purse_not_found', message: 'no such offline purse' }, `select id, participant_id, customer_id from offline_purses where id = any($1::text[])`, { immutable: true }),
  );
}

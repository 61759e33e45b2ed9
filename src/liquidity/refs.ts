import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/** A liquidity request is its participant's (the operator may name any). */
export function defineLiquidityRefs(refs: RefRegistry): void {
  refs.define(
    'liquidity_request',
    sqlRefKind({ code: 'liquidity_request_not_found', message: 'no such liquidity request' }, `select id, participant_id, null::text as customer_id from liquidity_requests where id = any($1::text[])`, { immutable: true }),
  );
}

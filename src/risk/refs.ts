import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/** A risk alert is the participant's whose customer it concerns. */
export function defineRiskRefs(refs: RefRegistry): void {
  refs.define('risk_alert', sqlRefKind({ code: 'risk_alert_not_found', message: 'no such alert' }, `select id, participant_id, null::text as customer_id from risk_alerts where id = any($1::text[])`, { immutable: true }));
}

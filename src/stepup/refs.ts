import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/** A step-up challenge and a passkey registration are the participant's and its customer's. */
export function defineStepUpRefs(refs: RefRegistry): void {
  refs.define('step_up_challenge', sqlRefKind({ code: 'challenge_not_found', message: 'no such challenge' }, `select id, participant_id, customer_id from step_up_challenges where id = any($1::text[])`, { immutable: true }));
  refs.define('passkey', sqlRefKind({ code: 'passkey_registration_not_found', message: 'no passkey registration with this id: ask for new options' }, `select id, participant_id, customer_id from passkey_registrations where id = any($1::text[])`, { immutable: true }));
}

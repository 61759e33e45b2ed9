import { sqlRefKind, type RefRegistry } from '../api/index.ts';

/** Participants are a public directory (a wallet names the bank it links accounts at); credentials are their owner's. */
export function defineParticipantRefs(refs: RefRegistry): void {
  refs.define('participant', sqlRefKind({ code: 'participant_not_found', message: 'no such participant' }, `select id, id as participant_id, null::text as customer_id from participants where id = any($1::text[])`, { immutable: true, public: true }));
  refs.define('credential', sqlRefKind({ code: 'credential_not_found', message: 'no such credential' }, `select id, participant_id, null::text as customer_id from credentials where id = any($1::text[])`, { immutable: true }));
}

import type { Hub } from '../main.ts';
import { openSealed } from './recipient-seal.ts';

/** The events that carry a one-time code sealed to their participant, and the payload field naming the object. */
export const SEALED_CODE_EVENTS = {
  'token.step_up_requested': 'provisioningId',
  'account_link.consent_requested': 'consentId',
  'alias.move_requested': 'moveId',
  'alias.verification_requested': 'verificationId',
  'step_up.code_requested': 'challengeId',
  'customer_link.consent_requested': 'consentId',
} as const;
export type SealedCodeEvent = keyof typeof SEALED_CODE_EVENTS;

/**
 * Demo and test only: plays the participant a one-time code was sent to. The hub holds the code only sealed to that
 * participant (`codeSealed` in the event's payload, see platform/recipient-seal.ts); this opens it with the
 * participant's webhook secret, as the participant's own webhook receiver would. Reads the newest such event about the
 * object (a provisioning, a consent, an alias move, a step-up challenge). Undefined when no code was sent.
 */
export async function sentCode(hub: Pick<Hub, 'db' | 'vault'>, type: SealedCodeEvent, objectId: string): Promise<{ code: string; participantId: string; demoParticipant: boolean } | undefined> {
  const [event] = await hub.db.query<{ participant_id: string; payload: { codeSealed?: unknown }; webhook_secret_sealed: string; webhook_secret_previous_sealed: string | null; demo_key: string | null }>(
    `select e.participant_id, e.payload, p.webhook_secret_sealed, p.webhook_secret_previous_sealed, p.demo_key from events e join participants p on p.id = e.participant_id
      where e.type = $1 and e.payload->>$2 = $3 order by e.id desc limit 1`,
    [type, SEALED_CODE_EVENTS[type], objectId],
  );
  if (event === undefined || typeof event.payload.codeSealed !== 'string') return undefined;
  const sealed = event.payload.codeSealed;
  // Sealed under the secret that was current when the code was sent: after a rotation, that is the previous one.
  const open = async (secretSealed: string) => openSealed(await hub.vault.open(secretSealed), sealed, objectId);
  const code = event.webhook_secret_previous_sealed === null ? await open(event.webhook_secret_sealed) : await open(event.webhook_secret_sealed).catch(() => open(event.webhook_secret_previous_sealed ?? ''));
  return { code, participantId: event.participant_id, demoParticipant: event.demo_key !== null };
}

/** sentCode, for tests and demo stories that expect a code: throws when none was sent. */
export async function openSentCode(hub: Pick<Hub, 'db' | 'vault'>, type: SealedCodeEvent, objectId: string): Promise<string> {
  const sent = await sentCode(hub, type, objectId);
  if (sent === undefined) throw new Error(`no sealed code in a ${type} event for ${objectId}`);
  return sent.code;
}

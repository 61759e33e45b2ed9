import type { Hub } from '../main.ts';
import { openSealed } from '../platform/recipient-seal.ts';

/** The events that carry a one-time code sealed to their participant, and the payload field naming the object. */
export const SEALED_CODE_EVENTS = {
  'token.step_up_requested': 'provisioningId',
  'account_link.consent_requested': 'consentId',
  'alias.move_requested': 'moveId',
} as const;
export type SealedCodeEvent = keyof typeof SEALED_CODE_EVENTS;

/**
 * Demo and test only: plays the participant a one-time code was sent to. The hub holds the code only sealed to that
 * participant (`codeSealed` in the event's payload, see platform/recipient-seal.ts); this opens it with the
 * participant's webhook secret, as the participant's own webhook receiver would. Reads the newest such event about the
 * object (a provisioning, a consent, an alias move).
 */
export async function openSentCode(hub: Pick<Hub, 'db' | 'vault'>, type: SealedCodeEvent, objectId: string): Promise<string> {
  const [event] = await hub.db.query<{ participant_id: string; payload: { codeSealed?: unknown } }>(
    `select participant_id, payload from events where type = $1 and payload->>$2 = $3 order by id desc limit 1`,
    [type, SEALED_CODE_EVENTS[type], objectId],
  );
  if (event === undefined || typeof event.payload.codeSealed !== 'string') throw new Error(`no sealed code in a ${type} event for ${objectId}`);
  const [recipient] = await hub.db.query<{ webhook_secret_sealed: string }>('select webhook_secret_sealed from participants where id = $1', [event.participant_id]);
  if (recipient === undefined) throw new Error(`no participant ${event.participant_id}`);
  return openSealed(await hub.vault.open(recipient.webhook_secret_sealed), event.payload.codeSealed, objectId);
}

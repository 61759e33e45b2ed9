import type { Db } from '../platform/db.ts';
import type { Vault } from '../platform/vault.ts';
import { openStepUpCode } from '../tokens/stepup.ts';

/**
 * The one-time codes the hub sends participants to give their customers travel sealed to the receiving participant in
 * a webhook (`codeSealed`). A real participant opens them with its webhook secret; the demo plays the participant (a
 * demo bank or wallet) and opens them the same way, for the demo helpers, demo stories and tests.
 */
export const SEALED_CODES = {
  provisioning: { event: 'token.step_up_requested', idField: 'provisioningId' },
  step_up_challenge: { event: 'step_up.code_requested', idField: 'challengeId' },
  customer_link_consent: { event: 'customer_link.consent_requested', idField: 'consentId' },
} as const;
export type SealedCodeKind = keyof typeof SEALED_CODES;

/** The code sealed to a participant for one object, opened with that participant's webhook secret; undefined if none. */
export async function openSealedCode(hub: { db: Db; vault: Vault }, kind: SealedCodeKind, objectId: string, options: { demoOnly?: boolean } = {}): Promise<{ code: string; participantId: string } | undefined> {
  const { event, idField } = SEALED_CODES[kind];
  const [row] = await hub.db.query<{ participant_id: string; payload: { codeSealed?: unknown }; webhook_secret_sealed: string; demo_key: string | null }>(
    `select e.participant_id, e.payload, p.webhook_secret_sealed, p.demo_key from events e join participants p on p.id = e.participant_id
      where e.type = $1 and e.payload->>$2 = $3 order by e.id desc limit 1`,
    [event, idField, objectId],
  );
  if (row === undefined || typeof row.payload.codeSealed !== 'string') return undefined;
  if (options.demoOnly === true && row.demo_key === null) return undefined;
  return { code: openStepUpCode(await hub.vault.open(row.webhook_secret_sealed), row.payload.codeSealed, objectId), participantId: row.participant_id };
}

import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomInt } from 'node:crypto';
import type { Queryable } from './db.ts';
import type { Vault } from './vault.ts';

/**
 * Secrets the hub hands to one participant through a webhook (the one-time codes of a card step-up, an account-link
 * consent or an alias move, which the participant shows its customer through its own channel). The outbox keeps
 * event payloads in the database (and so in its write-ahead log), so such a value is sealed to the recipient before
 * it is emitted: AES-256-GCM under a key derived from the recipient's webhook signing secret, which only the
 * recipient and the vault hold, with the object the value belongs to (the provisioning, consent or move id) as
 * additional data, so a sealed value cannot be replayed as another object's. The hub itself keeps only a keyed hash
 * of the code to check what the customer types.
 *
 * Wire format (what a recipient implements; unchanged since the step-up codes of v1, the first to use it):
 *   key       = HMAC-SHA256(key: webhook secret as given (`whsec_…`), message: "hutong:step-up-code:v1")
 *   sealed    = base64url(iv (12 bytes) | ciphertext | GCM tag (16 bytes)), additional data = the object's id (UTF-8)
 */
const RECIPIENT_KEY_LABEL = 'hutong:step-up-code:v1'; // the label of the first user; changing it would break receivers
const IV_BYTES = 12;
const TAG_BYTES = 16;

const recipientKey = (webhookSecret: string) => createHmac('sha256', webhookSecret).update(RECIPIENT_KEY_LABEL).digest();

export function sealForRecipient(webhookSecret: string, plaintext: string, context: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', recipientKey(webhookSecret), iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, ciphertext, cipher.getAuthTag()]).toString('base64url');
}

/** What a recipient runs on the webhook it receives; throws when the value was not sealed to it for this context. */
export function openSealed(webhookSecret: string, sealed: string, context: string): string {
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new Error('not a sealed value');
  const decipher = createDecipheriv('aes-256-gcm', recipientKey(webhookSecret), raw.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
  return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
}

/**
 * Seals a value to a participant: reads its webhook secret (kept sealed by the vault) in the caller's transaction.
 * Every participant has a webhook secret from its creation, whether or not it has set a webhook URL yet.
 */
export async function sealForParticipant(q: Queryable, vault: Vault, participantId: string, plaintext: string, context: string): Promise<string> {
  const [row] = await q.query<{ webhook_secret_sealed: string }>('select webhook_secret_sealed from participants where id = $1', [participantId]);
  if (row === undefined) throw new Error(`sealForParticipant: no participant ${participantId}`);
  return sealForRecipient(await vault.open(row.webhook_secret_sealed), plaintext, context);
}

/** A 6-digit one-time code, zero-padded, from the crypto RNG. */
export function newOneTimeCode(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, '0');
}

import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomInt } from 'node:crypto';

/**
 * The one-time code of a step-up travels only inside the webhook to the issuer, who sends it to the cardholder
 * through its own channel. The outbox keeps event payloads in the database, so the code is encrypted to the issuer:
 * AES-256-GCM under a key derived from the issuer's webhook signing secret (which only the issuer and the vault
 * hold). The hub itself keeps only an HMAC of the code.
 */
const CODE_KEY_LABEL = 'hutong:step-up-code:v1';

const codeKey = (webhookSecret: string) => createHmac('sha256', webhookSecret).update(CODE_KEY_LABEL).digest();

export function sealCodeForIssuer(webhookSecret: string, code: string, provisioningId: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', codeKey(webhookSecret), iv);
  cipher.setAAD(Buffer.from(provisioningId));
  const ct = Buffer.concat([cipher.update(code, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, ct, cipher.getAuthTag()]).toString('base64url');
}

/** What an issuer runs on the webhook it receives (`data.codeSealed`, `data.provisioningId`). */
export function openStepUpCode(webhookSecret: string, codeSealed: string, provisioningId: string): string {
  const raw = Buffer.from(codeSealed, 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', codeKey(webhookSecret), raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(provisioningId));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
}

export function newOtpCode(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, '0');
}

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` (Unix seconds) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the secret `whsec_<base64 key>`.
 */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

export function signWebhook(secret: string, id: string, timestampS: number, body: string): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

export type WebhookVerifyError = 'missing_headers' | 'stale_timestamp' | 'bad_signature';

/** What a participant's receiver runs: checks the signature over the exact body and refuses stale timestamps. */
export function verifyWebhook(
  secret: string,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  body: string,
  options: { nowS: number; toleranceS?: number },
): { ok: true } | { ok: false; reason: WebhookVerifyError } {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return { ok: false, reason: 'missing_headers' };
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(options.nowS - ts) > (options.toleranceS ?? 300)) return { ok: false, reason: 'stale_timestamp' };
  const expected = Buffer.from(signWebhook(secret, id, ts, body));
  // The header may carry several space-separated signatures (during secret rotation).
  for (const candidate of signatures.split(' ')) {
    const given = Buffer.from(candidate);
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true };
  }
  return { ok: false, reason: 'bad_signature' };
}

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { webhooks } from './schema.ts';

/**
 * Standard Webhooks (https://www.standardwebhooks.com), as the hub signs: `webhook-id`, `webhook-timestamp` (Unix
 * seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under `whsec_<base64 key>`; during a
 * secret rotation the header carries several signatures and any may match.
 */
/** Every event type delivered to your webhook URL (the issuer authorization request is not an event: `AuthorizationRequest`). */
export type WebhookEventType = Exclude<keyof webhooks, 'authorization.request'>;
/** What a real-time issuer's `authUrl` receives (signed the same way: check it with `verifyWebhook`), `{ type, data }`. */
export type AuthorizationRequest = NonNullable<webhooks['authorization.request']['post']['requestBody']>['content']['application/json'];
/** The body of one event type's delivery: `{ id, type, createdAt, data }` with that event's payload. */
export type WebhookEvent<T extends WebhookEventType = WebhookEventType> = T extends WebhookEventType
  ? NonNullable<webhooks[T]['post']['requestBody']>['content']['application/json']
  : never;

export type WebhookVerifyFailure = 'missing_headers' | 'stale_timestamp' | 'bad_signature' | 'malformed_body';

type Headers = Readonly<Record<string, string | readonly string[] | undefined>> | globalThis.Headers;

function header(headers: Headers, name: string): string | undefined {
  if (typeof (headers as globalThis.Headers).get === 'function') return (headers as globalThis.Headers).get(name) ?? undefined;
  const value = (headers as Readonly<Record<string, string | readonly string[] | undefined>>)[name];
  return typeof value === 'string' ? value : undefined;
}

const keyOf = (secret: string) => Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');

/** The signature a sender puts in `webhook-signature` (also handy to test your receiver). */
export function signWebhook(secret: string, id: string, timestampS: number, body: string): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

/**
 * Checks a delivery over its exact raw body (verify before parsing; re-serialized JSON does not match) and refuses a
 * timestamp more than `toleranceS` (default 300) from now. `secret` may be several (yours during a rotation).
 */
export function verifyWebhook(
  secret: string | readonly string[],
  headers: Headers,
  rawBody: string,
  options: { nowS?: number; toleranceS?: number } = {},
): { ok: true; event: WebhookEvent } | { ok: false; reason: WebhookVerifyFailure } {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (id === undefined || timestamp === undefined || signatures === undefined) return { ok: false, reason: 'missing_headers' };
  const ts = Number(timestamp);
  const nowS = options.nowS ?? Math.floor(Date.now() / 1000);
  if (!/^[0-9]+$/.test(timestamp) || Math.abs(nowS - ts) > (options.toleranceS ?? 300)) return { ok: false, reason: 'stale_timestamp' };
  const given = signatures.split(' ').map((s) => Buffer.from(s));
  const matches = (Array.isArray(secret) ? secret : [secret as string]).some((s) => {
    const expected = Buffer.from(signWebhook(s, id, ts, rawBody));
    return given.some((g) => g.length === expected.length && timingSafeEqual(g, expected));
  });
  if (!matches) return { ok: false, reason: 'bad_signature' };
  try {
    return { ok: true, event: JSON.parse(rawBody) as WebhookEvent };
  } catch {
    return { ok: false, reason: 'malformed_body' };
  }
}

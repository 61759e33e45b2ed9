import type { Actor } from '../audit/index.ts';
import type { Queryable } from '../platform/db.ts';
import type { DomainError, Result } from '../platform/result.ts';
import { signWebhook } from './signing.ts';

/**
 * A participant's webhook signing secrets. Each participant has one from its creation (shown once, in the answer that
 * created it). Rotating it (POST /v1/webhooks/secret/rotate) makes a new one current and keeps the previous one active
 * for a grace period (a day by default), so that the receiver can switch whenever it is ready: meanwhile every webhook
 * and issuer authorization request carries one signature per active secret, space-separated in `webhook-signature`
 * (Standard Webhooks), and a receiver holding either secret verifies it. At most two are active: rotating again
 * during a grace period drops the older one at once. Values sealed to the participant (one-time codes) are sealed
 * under the current secret.
 *
 * The secrets are columns of the participant (the participants capability keeps them: participants/webhook-secrets.ts);
 * this module holds what signs with them and the service's shape.
 *
 * A secret is shown once (in the answer to its creation or rotation, stored sealed under the Idempotency-Key); the
 * demo participants' can also be read again (GET /v1/webhooks/secret), by the participant itself, in demo mode only.
 */
export type WebhookSecretErrorCode = 'webhook_secret_not_retrievable' | 'participant_not_found' | 'webhook_delivery_not_found' | 'webhook_url_missing';

export const WEBHOOK_SECRET_ROTATION = {
  /** How long the previous secret stays active after a rotation unless the request says otherwise. */
  defaultGraceS: 24 * 3600,
  maxGraceS: 7 * 24 * 3600,
} as const;

export interface WebhookSecrets {
  readonly current: string;
  /** The previous secret while it is still active (after a rotation, until its expiry). */
  readonly previous: { readonly secret: string; readonly expiresAt: Date } | null;
  readonly rotatedAt: Date | null;
  readonly demo: boolean;
}

/** The sealed secrets of a participant that sign now: the current one, then the previous one while it is active. */
export function activeSealedSecrets(row: { webhook_secret_sealed: string; webhook_secret_previous_sealed: string | null; webhook_secret_previous_expires_at: Date | null }, now: Date): string[] {
  const previousActive = row.webhook_secret_previous_sealed !== null && row.webhook_secret_previous_expires_at !== null && row.webhook_secret_previous_expires_at.getTime() > now.getTime();
  return previousActive && row.webhook_secret_previous_sealed !== null ? [row.webhook_secret_sealed, row.webhook_secret_previous_sealed] : [row.webhook_secret_sealed];
}

/** `webhook-signature` under every active secret: `v1,<sig> v1,<sig>` (Standard Webhooks). */
export function signWithEach(secrets: readonly string[], id: string, timestampS: number, body: string): string {
  return secrets.map((secret) => signWebhook(secret, id, timestampS, body)).join(' ');
}

export interface WebhookSecretService {
  /** The participant's secrets (opened); undefined for an unknown participant. */
  read(participantId: string, q?: Queryable): Promise<WebhookSecrets | undefined>;
  /** The secrets that sign a request to the participant now, opened (current first). */
  signingSecrets(participantId: string, q?: Queryable): Promise<string[]>;
  /** A new current secret; the current one stays active for `graceS` seconds (0: retired at once). */
  rotate(tx: Queryable, actor: Actor, participantId: string, graceS: number): Promise<Result<{ secret: string; previousExpiresAt: Date | null; rotatedAt: Date }, DomainError<WebhookSecretErrorCode>>>;
}


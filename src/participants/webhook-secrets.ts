import type { AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { err, ok } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import { activeSealedSecrets, type WebhookSecretService } from '../webhooks/index.ts';
import { newWebhookSecret } from '../webhooks/index.ts';

/** A participant's webhook signing secrets, kept sealed in its row: read, used to sign, rotated (webhooks/secrets.ts). */
interface SecretRow {
  webhook_secret_sealed: string;
  webhook_secret_previous_sealed: string | null;
  webhook_secret_previous_expires_at: Date | null;
  webhook_secret_rotated_at: Date | null;
  demo_key: string | null;
}

export function createWebhookSecretService(deps: { db: Queryable; clock: Clock; vault: Vault; audit: Pick<AuditService, 'record'> }): WebhookSecretService {
  const { db, clock, vault, audit } = deps;
  const select = (q: Queryable, participantId: string, lock: boolean) =>
    q.query<SecretRow>(
      `select webhook_secret_sealed, webhook_secret_previous_sealed, webhook_secret_previous_expires_at, webhook_secret_rotated_at, demo_key
         from participants where id = $1${lock ? ' for update' : ''}`,
      [participantId],
    );
  return {
    async read(participantId, q = db) {
      const [row] = await select(q, participantId, false);
      if (row === undefined) return undefined;
      const now = clock.now();
      const [, previousSealed] = activeSealedSecrets(row, now);
      return {
        current: await vault.open(row.webhook_secret_sealed),
        previous: previousSealed !== undefined && row.webhook_secret_previous_expires_at !== null ? { secret: await vault.open(previousSealed), expiresAt: row.webhook_secret_previous_expires_at } : null,
        rotatedAt: row.webhook_secret_rotated_at,
        demo: row.demo_key !== null,
      };
    },
    async signingSecrets(participantId, q = db) {
      const [row] = await select(q, participantId, false);
      if (row === undefined) return [];
      return Promise.all(activeSealedSecrets(row, clock.now()).map((sealed) => vault.open(sealed)));
    },
    async rotate(tx, actor, participantId, graceS) {
      const [row] = await select(tx, participantId, true);
      if (row === undefined) return err('participant_not_found', 'no such participant', { participantId });
      const now = clock.now();
      const secret = newWebhookSecret();
      const previousExpiresAt = graceS > 0 ? new Date(now.getTime() + graceS * 1000) : null;
      await tx.query(
        `update participants set webhook_secret_sealed = $2, webhook_secret_previous_sealed = $3, webhook_secret_previous_expires_at = $4,
                webhook_secret_rotated_at = $5, updated_at = $5 where id = $1`,
        [participantId, await vault.seal(secret), previousExpiresAt === null ? null : row.webhook_secret_sealed, previousExpiresAt, now],
      );
      await audit.record(tx, { actor, action: 'webhook.secret_rotated', objectType: 'participant', objectId: participantId, details: { previousExpiresAt: previousExpiresAt?.toISOString() ?? null } });
      return ok({ secret, previousExpiresAt, rotatedAt: now });
    },
  };
}

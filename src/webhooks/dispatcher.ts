import type { Logger } from '../platform/logger.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db } from '../platform/db.ts';
import type { Vault } from '../platform/vault.ts';
import { describeOutboundFailure, type OutboundFetch } from '../platform/outbound.ts';
import { activeSealedSecrets, signWithEach } from './secrets.ts';

export const WEBHOOK_LIMITS = {
  /** Deliveries claimed per poll. */
  batch: 32,
  /** A claimed delivery is leased for this long; a crashed process's leases lapse and another process retries. */
  leaseMs: 30_000,
  requestTimeoutMs: 5_000,
  maxAttempts: 8,
  baseBackoffMs: 1_000,
  maxBackoffMs: 15 * 60_000,
  /** Response bodies are not stored; error texts are cut to this. */
  maxErrorChars: 200,
} as const;

/** Exponential backoff with full jitter, bounded: attempt 1 → up to 1 s, 2 → up to 2 s, … capped at 15 min. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(WEBHOOK_LIMITS.maxBackoffMs, WEBHOOK_LIMITS.baseBackoffMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(250, Math.round(ceiling * random()));
}

interface ClaimedDelivery {
  id: string;
  event_id: string;
  participant_id: string;
  url: string;
  attempts: number;
  type: string;
  payload: Record<string, unknown>;
  created_at: Date;
  webhook_secret_sealed: string;
  webhook_secret_previous_sealed: string | null;
  webhook_secret_previous_expires_at: Date | null;
}

export interface WebhookDispatcher {
  /** Claims and sends the deliveries due now; returns how many were attempted. */
  runOnce(): Promise<number>;
  start(pollMs: number): void;
  stop(): Promise<void>;
}

/**
 * `fetch` is the outbound policy's guarded fetch in the hub (src/main.ts): it refuses disallowed addresses after
 * resolving the host and never follows redirects. A refusal, a redirect and any other failure are all failed attempts.
 */
export function createWebhookDispatcher(deps: { db: Db; clock: Clock; vault: Vault; logger: Logger; fetch: OutboundFetch }): WebhookDispatcher {
  const { db, clock, vault, logger } = deps;
  const doFetch = deps.fetch;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;

  const claim = () =>
    db.transaction(async (tx) => {
      const now = clock.now();
      const rows = await tx.query<ClaimedDelivery>(
        `select d.id, d.event_id, d.participant_id, d.url, d.attempts, e.type, e.payload, e.created_at, p.webhook_secret_sealed,
                p.webhook_secret_previous_sealed, p.webhook_secret_previous_expires_at
           from webhook_deliveries d
           join events e on e.event_id = d.event_id
           join participants p on p.id = d.participant_id
          where d.status = 'pending' and d.next_attempt_at <= $1
          order by d.next_attempt_at
          limit $2
          for update of d skip locked`,
        [now, WEBHOOK_LIMITS.batch],
      );
      if (rows.length > 0) {
        await tx.query('update webhook_deliveries set next_attempt_at = $2 where id = any($1::text[])', [
          rows.map((r) => r.id),
          new Date(now.getTime() + WEBHOOK_LIMITS.leaseMs),
        ]);
      }
      return rows;
    });

  const deliver = async (d: ClaimedDelivery): Promise<void> => {
    const body = JSON.stringify({ id: d.event_id, type: d.type, createdAt: d.created_at.toISOString(), data: d.payload });
    const timestampS = Math.floor(clock.nowMs() / 1000);
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      // One signature per active secret: the previous one stays active for a while after a rotation (secrets.ts).
      const secrets = await Promise.all(activeSealedSecrets(d, clock.now()).map((sealed) => vault.open(sealed)));
      const response = await doFetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'hutong-webhooks/1',
          'webhook-id': d.event_id,
          'webhook-timestamp': String(timestampS),
          'webhook-signature': signWithEach(secrets, d.event_id, timestampS, body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(WEBHOOK_LIMITS.requestTimeoutMs),
      });
      statusCode = response.status;
      await response.body?.cancel();
      // A redirect is not followed (it could lead anywhere, a private address included): the receiver must answer itself.
      if (response.status >= 300 && response.status < 400) error = `HTTP ${response.status}: redirect not followed; register the final URL`;
      else if (response.status < 200 || response.status >= 300) error = `HTTP ${response.status}`;
    } catch (e) {
      error = describeOutboundFailure(e).slice(0, WEBHOOK_LIMITS.maxErrorChars);
    }
    const attempts = d.attempts + 1;
    const now = clock.now();
    const status = error === null ? 'delivered' : attempts >= WEBHOOK_LIMITS.maxAttempts ? 'failed' : 'pending';
    const next = status === 'pending' ? new Date(now.getTime() + backoffMs(attempts)) : now;
    await db.query(
      `update webhook_deliveries set status = $2, attempts = $3, next_attempt_at = $4, last_attempt_at = $5, last_status_code = $6, last_error = $7 where id = $1`,
      [d.id, status, attempts, next, now, statusCode, error],
    );
    if (error !== null) logger.warn({ deliveryId: d.id, participantId: d.participant_id, attempts, status, error }, 'webhook delivery failed');
  };

  const runOnce = async (): Promise<number> => {
    const claimed = await claim();
    await Promise.all(claimed.map(deliver));
    return claimed.length;
  };

  return {
    runOnce,
    start(pollMs) {
      const tick = () => {
        if (stopped) return;
        running = runOnce()
          .catch((error: unknown) => {
            logger.error({ err: error }, 'webhook dispatcher run failed');
            return 0;
          })
          .finally(() => {
            if (!stopped) timer = setTimeout(tick, pollMs);
          });
      };
      timer = setTimeout(tick, pollMs);
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}

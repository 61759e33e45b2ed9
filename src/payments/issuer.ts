import type { Actor, AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { outboundRefusalOf, type OutboundFetch, type OutboundPolicy } from '../platform/outbound.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import { activeSealedSecrets, signWithEach, AUTHORIZATION_REQUEST_TYPE, type IssuerAuthorizationRequest } from '../webhooks/index.ts';
import type { PErr } from './errors.ts';

/**
 * How each issuer decides on its card payments:
 * - hosted: the hub decides on the issuer's behalf and holds the amount on the card's funding account (a pending
 *   ledger transfer), so insufficient funds decline at once;
 * - webhook: the hub POSTs the authorization request, signed like webhooks (Standard Webhooks, the issuer's webhook
 *   secret), to the issuer's endpoint and waits at most `deadlineMs`; when the issuer does not answer in time (or
 *   answers garbage) the issuer's stand-in rules decide: approve up to `standInMaxMinor` (in the card's currency, the
 *   currency of the request's `amount`), else decline.
 *   The call goes through the outbound policy (src/platform/outbound.ts): `authUrl` is checked when it is set and again,
 *   after DNS, at each call; a refused call, like a redirect, falls to the stand-in rules as a timeout does.
 */
export type IssuerMode = 'hosted' | 'webhook';

export interface IssuerSettings {
  readonly issuerParticipantId: string;
  readonly mode: IssuerMode;
  readonly authUrl: string | null;
  readonly deadlineMs: number;
  readonly standIn: { readonly action: 'approve' | 'decline'; readonly maxAmountMinor: bigint };
}

export const DEFAULT_DEADLINE_MS = 2_000;

export const defaultSettings = (issuerParticipantId: string): IssuerSettings => ({
  issuerParticipantId,
  mode: 'hosted',
  authUrl: null,
  deadlineMs: DEFAULT_DEADLINE_MS,
  standIn: { action: 'decline', maxAmountMinor: 0n },
});

export type IssuerDecision =
  | { readonly by: 'issuer'; readonly approved: true }
  | { readonly by: 'issuer'; readonly approved: false; readonly reason: string }
  | { readonly by: 'stand_in'; readonly approved: boolean; readonly reason: string };

export interface IssuerGateway {
  get(issuerId: string, q?: Queryable): Promise<IssuerSettings>;
  /** Checks an `authUrl` against the outbound policy, resolving its host: call it before the transaction of `set`. */
  checkAuthUrl(authUrl: string): Promise<Result<string, PErr>>;
  /** Checks the settings (the `authUrl` without DNS, which `checkAuthUrl` did) and stores them. */
  set(tx: Queryable, actor: Actor, settings: IssuerSettings): Promise<Result<IssuerSettings, PErr>>;
  /** Asks a webhook-mode issuer; never throws for the issuer's failures (they fall to stand-in). */
  /** `amountMinor` is the request's `amount` (the card's currency), which the stand-in rule weighs. */
  ask(settings: IssuerSettings, request: IssuerAuthorizationRequest, amountMinor: bigint, q: Queryable): Promise<IssuerDecision>;
}

interface Row {
  issuer_participant_id: string;
  mode: IssuerMode;
  auth_url: string | null;
  deadline_ms: number;
  stand_in_action: 'approve' | 'decline';
  stand_in_max_minor: bigint;
}

const refusedAuthUrl = (message: string, reason: string) => err('invalid_authorization_url', `authUrl ${message}`, { reason });

export function createIssuerGateway(deps: { db: Db; clock: Clock; vault: Vault; audit: AuditService; outbound: OutboundPolicy; fetch: OutboundFetch; maxDeadlineMs?: number }): IssuerGateway {
  const { db, clock, vault, audit, outbound } = deps;
  const doFetch = deps.fetch;
  return {
    async checkAuthUrl(authUrl) {
      const verdict = await outbound.checkUrl(authUrl);
      return verdict.allowed ? ok(authUrl) : refusedAuthUrl(verdict.message, verdict.reason);
    },
    async get(issuerId, q = db) {
      const [row] = await q.query<Row>('select * from pay_issuer_settings where issuer_participant_id = $1', [issuerId]);
      if (row === undefined) return defaultSettings(issuerId);
      return {
        issuerParticipantId: row.issuer_participant_id,
        mode: row.mode,
        authUrl: row.auth_url,
        deadlineMs: row.deadline_ms,
        standIn: { action: row.stand_in_action, maxAmountMinor: BigInt(row.stand_in_max_minor) },
      };
    },
    async set(tx, actor, s) {
      if (s.mode === 'webhook' && s.authUrl === null) return err('invalid_authorization_url', 'webhook mode needs an authUrl');
      if (s.authUrl !== null) {
        const verdict = outbound.checkUrlForm(s.authUrl);
        if (!verdict.allowed) return refusedAuthUrl(verdict.message, verdict.reason);
      }
      if (!Number.isInteger(s.deadlineMs) || s.deadlineMs < 50 || s.deadlineMs > 10_000) return err('issuer_settings_invalid', 'deadlineMs must be 50–10000');
      await tx.query(
        `insert into pay_issuer_settings (issuer_participant_id, mode, auth_url, deadline_ms, stand_in_action, stand_in_max_minor, updated_at) values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (issuer_participant_id) do update set mode = excluded.mode, auth_url = excluded.auth_url, deadline_ms = excluded.deadline_ms,
           stand_in_action = excluded.stand_in_action, stand_in_max_minor = excluded.stand_in_max_minor, updated_at = excluded.updated_at`,
        [s.issuerParticipantId, s.mode, s.authUrl, s.deadlineMs, s.standIn.action, s.standIn.maxAmountMinor, clock.now()],
      );
      await audit.record(tx, { actor, action: 'payments.issuer_settings_set', objectType: 'issuer', objectId: s.issuerParticipantId, details: { mode: s.mode, authUrl: s.authUrl, deadlineMs: s.deadlineMs, standIn: { action: s.standIn.action, maxAmountMinor: s.standIn.maxAmountMinor.toString() } } });
      return ok(s);
    },
    async ask(s, request, amountMinor, q) {
      const standIn = (reason: string): IssuerDecision => ({ by: 'stand_in', approved: s.standIn.action === 'approve' && amountMinor <= s.standIn.maxAmountMinor, reason });
      if (s.authUrl === null) return standIn('no_endpoint');
      const [p] = await q.query<{ webhook_secret_sealed: string; webhook_secret_previous_sealed: string | null; webhook_secret_previous_expires_at: Date | null }>(
        'select webhook_secret_sealed, webhook_secret_previous_sealed, webhook_secret_previous_expires_at from participants where id = $1',
        [s.issuerParticipantId],
      );
      if (p === undefined) return standIn('no_issuer');
      // Signed like a webhook: once per active secret (both during a rotation: webhooks/secrets.ts).
      const secrets = await Promise.all(activeSealedSecrets(p, clock.now()).map((sealed) => vault.open(sealed)));
      const id = newId('areq');
      const ts = Math.floor(clock.nowMs() / 1000);
      const body = JSON.stringify({ type: AUTHORIZATION_REQUEST_TYPE, data: request });
      try {
        const res = await doFetch(s.authUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signWithEach(secrets, id, ts, body) },
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(Math.min(s.deadlineMs, deps.maxDeadlineMs ?? 10_000)),
        });
        if (res.status >= 300 && res.status < 400) {
          await res.body?.cancel();
          return standIn('redirect_not_followed');
        }
        if (!res.ok) {
          await res.body?.cancel();
          return standIn(`http_${res.status}`);
        }
        const text = await res.text();
        if (text.length > 8192) return standIn('malformed_answer');
        const answer = JSON.parse(text) as { decision?: unknown; reason?: unknown };
        if (answer.decision === 'approve') return { by: 'issuer', approved: true };
        if (answer.decision === 'decline') return { by: 'issuer', approved: false, reason: typeof answer.reason === 'string' ? answer.reason.slice(0, 64) : 'declined' };
        return standIn('malformed_answer');
      } catch (error) {
        const refusal = outboundRefusalOf(error);
        if (refusal !== undefined) return standIn(refusal.reason);
        const name = error instanceof Error ? error.name : '';
        return standIn(name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unreachable');
      }
    },
  };
}

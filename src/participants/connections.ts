import type { Actor, AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { isCurrency } from '../platform/money.ts';
import type { OutboundPolicy } from '../platform/outbound.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';

/**
 * A participant's mode per currency (docs/ARCHITECTURE.md, "Connected participants"): `hosted` (the hub keeps its
 * customers' accounts in its ledger) or `connected` (its own core system keeps them; the hub keeps only its position
 * and asks its connector endpoint to reserve, accept, commit and abort). A connected participant registers the public
 * half of the key it signs its connector answers with (an Ed25519 JWK: the hub never holds its private key) and the
 * deadline the hub gives each call. No row means hosted.
 */
export type ConnectionErrorCode = 'invalid_connection' | 'participant_not_found' | 'unknown_currency';
type CErr = DomainError<ConnectionErrorCode>;

export type ParticipantMode = 'hosted' | 'connected';

export interface PublicJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid?: string | undefined;
}

export interface Connection {
  readonly participantId: string;
  readonly currency: string;
  readonly mode: ParticipantMode;
  readonly endpointUrl: string | null;
  readonly publicJwk: PublicJwk | null;
  readonly deadlineMs: number;
  readonly updatedAt: Date;
}

export interface SetConnectionInput {
  readonly currency: string;
  readonly mode: ParticipantMode;
  readonly endpointUrl?: string | undefined;
  readonly publicJwk?: Readonly<Record<string, unknown>> | undefined;
  readonly deadlineMs?: number | undefined;
}

export const DEFAULT_CONNECTOR_DEADLINE_MS = 2_000;
const MAX_URL_CHARS = 2048;
/** How long a process trusts its cached modes: changes by another hub process reach this one within this time. */
const CACHE_TTL_MS = 2_000;

interface ConnectionRow {
  participant_id: string;
  currency: string;
  mode: ParticipantMode;
  endpoint_url: string | null;
  public_jwk: PublicJwk | null;
  deadline_ms: number;
  updated_at: Date;
}
const toConnection = (r: ConnectionRow): Connection => ({
  participantId: r.participant_id,
  currency: r.currency,
  mode: r.mode,
  endpointUrl: r.endpoint_url,
  publicJwk: r.public_jwk,
  deadlineMs: r.deadline_ms,
  updatedAt: r.updated_at,
});

/** An Ed25519 public key as a JWK: 32 bytes of base64url `x`, no private part. */
export function checkPublicJwk(jwk: Readonly<Record<string, unknown>>): Result<PublicJwk, CErr> {
  const { kty, crv, x, kid } = jwk;
  if (kty !== 'OKP' || crv !== 'Ed25519') return err('invalid_connection', 'publicJwk must be an Ed25519 key (kty OKP, crv Ed25519)');
  if ('d' in jwk) return err('invalid_connection', 'publicJwk carries a private key (d): send only the public half');
  if (typeof x !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(x)) return err('invalid_connection', 'publicJwk.x must be 32 bytes, base64url');
  if (kid !== undefined && (typeof kid !== 'string' || kid.length > 128)) return err('invalid_connection', 'publicJwk.kid must be a string of at most 128 characters');
  return ok({ kty: 'OKP', crv: 'Ed25519', x, ...(typeof kid === 'string' ? { kid } : {}) });
}

export interface ConnectionService {
  /** Checks the endpoint URL against the outbound policy (with DNS): before the transaction, as webhook URLs are. */
  checkEndpoint(url: string): Promise<Result<string, CErr>>;
  set(tx: Queryable, actor: Actor, participantId: string, input: SetConnectionInput): Promise<Result<Connection, CErr>>;
  list(participantId: string, q?: Queryable): Promise<Connection[]>;
  /**
   * The participant's connection in a currency when it is connected (cached briefly; a miss reads through `q`, the
   * caller's transaction when it has one, so that it never waits for a second pool connection); undefined when hosted.
   */
  connected(participantId: string, currency: string, q?: Queryable): Promise<Connection | undefined>;
}

export function createConnectionService(deps: { db: Db; clock: Clock; audit: AuditService; outbound: Pick<OutboundPolicy, 'checkUrl' | 'checkUrlForm'> }): ConnectionService {
  const { db, clock, audit, outbound } = deps;
  const cache = new Map<string, { at: number; value: Connection | undefined }>();
  const reading = new Map<string, Promise<Connection | undefined>>();
  // Bumped by every change (at its write and after its COMMIT): a read that began before a change and ends after it
  // does not cache what it read (it may be the old row), so a change is never undone by a stale entry.
  let generation = 0;

  const checkedUrl = (url: string, verdict: { allowed: true } | { allowed: false; message: string; reason: string }): Result<string, CErr> => {
    if (url.length > MAX_URL_CHARS) return err('invalid_connection', `endpointUrl must be at most ${MAX_URL_CHARS} characters`);
    return verdict.allowed ? ok(url) : err('invalid_connection', `endpointUrl ${verdict.message}`, { reason: verdict.reason });
  };

  return {
    async checkEndpoint(url) {
      return checkedUrl(url, url.length > MAX_URL_CHARS ? outbound.checkUrlForm(url) : await outbound.checkUrl(url));
    },
    async set(tx, actor, participantId, input) {
      if (!isCurrency(input.currency)) return err('unknown_currency', `${input.currency} is not a supported ISO 4217 currency`, { currency: input.currency });
      const [participant] = await tx.query<{ id: string }>('select id from participants where id = $1', [participantId]);
      if (participant === undefined) return err('participant_not_found', 'no such participant');
      const deadlineMs = input.deadlineMs ?? DEFAULT_CONNECTOR_DEADLINE_MS;
      let endpointUrl: string | null = null;
      let publicJwk: PublicJwk | null = null;
      if (input.mode === 'connected') {
        if (input.endpointUrl === undefined || input.publicJwk === undefined) return err('invalid_connection', 'a connected participant needs endpointUrl and publicJwk');
        const url = checkedUrl(input.endpointUrl, outbound.checkUrlForm(input.endpointUrl));
        if (!url.ok) return url;
        const jwk = checkPublicJwk(input.publicJwk);
        if (!jwk.ok) return jwk;
        endpointUrl = url.value;
        publicJwk = jwk.value;
      } else if (input.endpointUrl !== undefined || input.publicJwk !== undefined) {
        return err('invalid_connection', 'a hosted participant has no connector: leave out endpointUrl and publicJwk');
      }
      const now = clock.now();
      const [row] = await tx.query<ConnectionRow>(
        `insert into participant_connections (participant_id, currency, mode, endpoint_url, public_jwk, deadline_ms, updated_at)
         values ($1, $2, $3, $4, $5::jsonb, $6, $7)
         on conflict (participant_id, currency) do update set mode = excluded.mode, endpoint_url = excluded.endpoint_url, public_jwk = excluded.public_jwk,
           deadline_ms = excluded.deadline_ms, updated_at = excluded.updated_at
         returning *`,
        [participantId, input.currency, input.mode, endpointUrl, publicJwk, deadlineMs, now],
      );
      await audit.record(tx, { actor, action: 'participant.connection_set', objectType: 'participant', objectId: participantId, details: { currency: input.currency, mode: input.mode, deadlineMs } });
      const key = `${participantId}/${input.currency}`;
      generation += 1;
      cache.delete(key);
      reading.delete(key);
      tx.hooks?.afterCommit(() => {
        generation += 1;
        cache.delete(key);
        reading.delete(key);
      });
      return ok(toConnection(row!));
    },
    async list(participantId, q = db) {
      return (await q.query<ConnectionRow>('select * from participant_connections where participant_id = $1 order by currency', [participantId])).map(toConnection);
    },
    async connected(participantId, currency, q = db) {
      const key = `${participantId}/${currency}`;
      const hit = cache.get(key);
      if (hit !== undefined && clock.nowMs() - hit.at < CACHE_TTL_MS) return hit.value;
      // Outside a transaction, callers that miss together share one read (every payment of a busy bank missed at once
      // each time the entry expired, and each read waited for a pooled connection).
      const shared = q === db ? reading.get(key) : undefined;
      if (shared !== undefined) return shared;
      const started = generation;
      const read = (async () => {
        const [row] = await q.query<ConnectionRow>(`select * from participant_connections where participant_id = $1 and currency = $2 and mode = 'connected'`, [participantId, currency]);
        const value = row === undefined ? undefined : toConnection(row);
        if (cache.size > 10_000) cache.clear();
        if (started === generation) cache.set(key, { at: clock.nowMs(), value });
        return value;
      })();
      if (q !== db) return read;
      reading.set(key, read);
      try {
        return await read;
      } finally {
        if (reading.get(key) === read) reading.delete(key);
      }
    },
  };
}

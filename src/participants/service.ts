import { createHash, timingSafeEqual } from 'node:crypto';
import type { Actor, AuditService } from '../audit/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import { newWebhookSecret } from '../webhooks/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId, randomSecret } from '../platform/ids.ts';
import { isCurrency } from '../platform/money.ts';
import type { OutboundPolicy, OutboundVerdict } from '../platform/outbound.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import {
  MAX_ACTIVE_CREDENTIALS,
  type Credential,
  type IssuedCredential,
  type Participant,
  type ParticipantErrorCode,
  type ParticipantKind,
  type ParticipantStatus,
} from './model.ts';

type PErr = DomainError<ParticipantErrorCode | 'unknown_currency'>;

export interface CreateParticipantInput {
  readonly kind: ParticipantKind;
  readonly name: string;
  readonly country: string;
  readonly currencies: readonly string[];
  readonly webhookUrl?: string | undefined;
  readonly rateLimitPerS?: number | undefined;
  /** Seeds use a stable key so that seeding twice creates nothing new. */
  readonly demoKey?: string | undefined;
  /** Seeds choose their id; everyone else gets a random one. */
  readonly id?: string | undefined;
}

interface ParticipantRow {
  id: string;
  kind: ParticipantKind;
  name: string;
  country: string;
  currencies: string[];
  webhook_url: string | null;
  status: ParticipantStatus;
  rate_limit_per_s: number | null;
  created_at: Date;
}

const toParticipant = (r: ParticipantRow): Participant => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  country: r.country,
  currencies: r.currencies,
  webhookUrl: r.webhook_url,
  status: r.status,
  rateLimitPerS: r.rate_limit_per_s,
  createdAt: r.created_at,
});

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

const MAX_WEBHOOK_URL_CHARS = 2048;

/** A webhook URL refused by the outbound policy (src/platform/outbound.ts) answers `invalid_webhook_url`, saying why. */
function checkedWebhookUrl(url: string, verdict: OutboundVerdict): Result<string, PErr> {
  if (url.length > MAX_WEBHOOK_URL_CHARS) return err('invalid_webhook_url', `webhookUrl must be at most ${MAX_WEBHOOK_URL_CHARS} characters`, { reason: 'too_long' });
  return verdict.allowed ? ok(url) : err('invalid_webhook_url', `webhookUrl ${verdict.message}`, { reason: verdict.reason });
}

export interface ParticipantService {
  /**
   * Checks a webhook URL against the outbound policy, resolving its host: routes call it before their transaction (a
   * DNS answer can be slow); `create` and `updateWebhook` repeat the checks that need no DNS.
   */
  checkWebhookUrl(url: string): Promise<Result<string, PErr>>;
  create(tx: Queryable, actor: Actor, input: CreateParticipantInput): Promise<Result<{ participant: Participant; credential: IssuedCredential; webhookSecret: string }, PErr>>;
  get(id: string, q?: Queryable): Promise<Participant | undefined>;
  list(options: { kind?: ParticipantKind; afterId?: string; limit: number }): Promise<Participant[]>;
  setStatus(tx: Queryable, actor: Actor, id: string, status: ParticipantStatus): Promise<Result<Participant, PErr>>;
  updateWebhook(tx: Queryable, actor: Actor, id: string, webhookUrl: string | null): Promise<Result<Participant, PErr>>;
  issueCredential(tx: Queryable, actor: Actor, participantId: string, fixed?: { id: string; secret: string }): Promise<Result<IssuedCredential, PErr>>;
  revokeCredential(tx: Queryable, actor: Actor, participantId: string, credentialId: string): Promise<Result<Credential, PErr>>;
  listCredentials(participantId: string): Promise<Credential[]>;
  /** Checks a client id and secret (token endpoint). */
  checkClient(clientId: string, clientSecret: string): Promise<Result<{ participant: Participant; credentialId: string }, PErr>>;
  /** The per-request check behind every access token: credential not revoked, participant active. */
  checkAccess(credentialId: string): Promise<Result<{ participant: Participant }, PErr>>;
  /** Listens for access changes made by any hub process (see ACCESS_CHANNEL). */
  start(): Promise<void>;
}

/**
 * checkAccess answers from a per-process cache. Every change to a participant or credential row notifies this channel
 * inside its transaction; PostgreSQL delivers it after COMMIT to every hub process, and each drops its whole cache
 * (changes are rare: suspensions, revocations, webhook URLs). The process that made the change also drops it right
 * after its own COMMIT, so its next request already sees the change. The TTL only bounds staleness should a
 * notification ever be lost without the listening connection noticing.
 */
export const ACCESS_CHANNEL = 'hutong_access';
const ACCESS_CACHE_MAX = 10_000;
const ACCESS_CACHE_TTL_MS = 5_000;

export function createParticipantService(deps: { db: Db; clock: Clock; vault: Vault; audit: AuditService; events: EventOutbox; outbound: OutboundPolicy }): ParticipantService {
  const { db, clock, vault, audit, events, outbound } = deps;

  const get = async (id: string, q: Queryable = db) => {
    const [row] = await q.query<ParticipantRow>('select * from participants where id = $1', [id]);
    return row === undefined ? undefined : toParticipant(row);
  };

  const issueCredential: ParticipantService['issueCredential'] = async (tx, actor, participantId, fixed) => {
    // Lock the participant row so that two concurrent issues cannot both pass the two-credential limit.
    const [p] = await tx.query<{ id: string }>('select id from participants where id = $1 for update', [participantId]);
    if (p === undefined) return err('participant_not_found', 'no such participant', { participantId });
    const [active] = await tx.query<{ n: bigint }>('select count(*) as n from credentials where participant_id = $1 and revoked_at is null', [participantId]);
    if ((active?.n ?? 0n) >= BigInt(MAX_ACTIVE_CREDENTIALS)) {
      return err('credential_limit', `at most ${MAX_ACTIVE_CREDENTIALS} credentials can be active; revoke one first`, { participantId });
    }
    const id = fixed?.id ?? newId('cli');
    const secret = fixed?.secret ?? randomSecret('sk');
    const now = clock.now();
    await tx.query('insert into credentials (id, participant_id, secret_hash, created_at) values ($1, $2, $3, $4)', [id, participantId, hashSecret(secret), now]);
    await audit.record(tx, { actor, action: 'credential.issued', objectType: 'credential', objectId: id, details: { participantId } });
    await events.emit(tx, { participantId, type: 'credential.issued', data: { credentialId: id } });
    return ok({ id, participantId, createdAt: now, revokedAt: null, clientSecret: secret });
  };

  type Access = Result<{ participant: Participant }, PErr>;
  const accessCache = new Map<string, { access: Access; atMs: number }>();
  // Bumped on every invalidation: a lookup that started before one must not store what it read.
  let accessGeneration = 0;
  /**
   * Requests that miss the cache together (its expiry, a burst at start) share one query per credential. A change
   * forgets these too: a request after a revocation never joins a load that began before it.
   */
  const loading = new Map<string, Promise<Access>>();
  const forgetAccess = () => {
    accessGeneration++;
    accessCache.clear();
    loading.clear();
  };
  /** Called inside every transaction that changes a participant or credential row. */
  const accessChanged = async (tx: Queryable) => {
    tx.hooks?.afterCommit(forgetAccess);
    await tx.query('select pg_notify($1, $2)', [ACCESS_CHANNEL, '']);
  };

  const loadAccess = async (credentialId: string, nowMs: number): Promise<Access> => {
    const generation = accessGeneration;
    const [row] = await db.query<ParticipantRow & { revoked_at: Date | null }>(
      `select p.*, c.revoked_at from credentials c join participants p on p.id = c.participant_id where c.id = $1`,
      [credentialId],
    );
    if (row === undefined) return err('unauthorized', 'the credential behind this token was revoked');
    const access: Access =
      row.revoked_at !== null
        ? err('unauthorized', 'the credential behind this token was revoked')
        : row.status !== 'active'
          ? err('participant_suspended', 'this participant is suspended')
          : ok({ participant: toParticipant(row) });
    if (generation === accessGeneration) {
      if (accessCache.size >= ACCESS_CACHE_MAX) accessCache.delete(accessCache.keys().next().value!);
      accessCache.set(credentialId, { access, atMs: nowMs });
    }
    return access;
  };
  const checkAccess: ParticipantService['checkAccess'] = async (credentialId) => {
    const nowMs = performance.now();
    const cached = accessCache.get(credentialId);
    if (cached !== undefined && nowMs - cached.atMs < ACCESS_CACHE_TTL_MS) return cached.access;
    const inFlight = loading.get(credentialId);
    if (inFlight !== undefined) return inFlight;
    const load: Promise<Access> = loadAccess(credentialId, nowMs).finally(() => {
      if (loading.get(credentialId) === load) loading.delete(credentialId);
    });
    loading.set(credentialId, load);
    return load;
  };

  return {
    get,
    async checkWebhookUrl(url) {
      return checkedWebhookUrl(url, url.length > MAX_WEBHOOK_URL_CHARS ? outbound.checkUrlForm(url) : await outbound.checkUrl(url));
    },
    async create(tx, actor, input) {
      if (!/^[A-Z]{2}$/.test(input.country)) return err('invalid_country', 'country must be an ISO 3166-1 alpha-2 code', { country: input.country });
      const badCurrency = input.currencies.find((c) => !isCurrency(c));
      if (badCurrency !== undefined) return err('unknown_currency', `${badCurrency} is not a supported ISO 4217 currency`, { currency: badCurrency });
      if (input.webhookUrl !== undefined) {
        const checked = checkedWebhookUrl(input.webhookUrl, outbound.checkUrlForm(input.webhookUrl));
        if (!checked.ok) return checked;
      }
      const id = input.id ?? newId('par');
      const webhookSecret = newWebhookSecret();
      const now = clock.now();
      await tx.query(
        `insert into participants (id, kind, name, country, currencies, webhook_url, webhook_secret_sealed, status, rate_limit_per_s, demo_key, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $10)`,
        [id, input.kind, input.name, input.country, [...new Set(input.currencies)], input.webhookUrl ?? null, await vault.seal(webhookSecret), input.rateLimitPerS ?? null, input.demoKey ?? null, now],
      );
      await audit.record(tx, { actor, action: 'participant.created', objectType: 'participant', objectId: id, details: { kind: input.kind, name: input.name } });
      const credential = await issueCredential(tx, actor, id);
      if (!credential.ok) return credential;
      const participant = await get(id, tx);
      if (participant === undefined) throw new Error('participant vanished inside its own transaction');
      return ok({ participant, credential: credential.value, webhookSecret });
    },
    async list(options) {
      const rows = await db.query<ParticipantRow>(
        `select * from participants where ($1::text is null or kind = $1) and ($2::text is null or id > $2) order by id limit $3`,
        [options.kind ?? null, options.afterId ?? null, options.limit],
      );
      return rows.map(toParticipant);
    },
    async setStatus(tx, actor, id, status) {
      const rows = await tx.query<ParticipantRow>('update participants set status = $2, updated_at = $3 where id = $1 returning *', [id, status, clock.now()]);
      const row = rows[0];
      if (row === undefined) return err('participant_not_found', 'no such participant', { participantId: id });
      await accessChanged(tx);
      await audit.record(tx, { actor, action: status === 'suspended' ? 'participant.suspended' : 'participant.reactivated', objectType: 'participant', objectId: id });
      await events.emit(tx, { participantId: id, type: `participant.${status}`, data: { participantId: id } });
      return ok(toParticipant(row));
    },
    async updateWebhook(tx, actor, id, webhookUrl) {
      if (webhookUrl !== null) {
        const checked = checkedWebhookUrl(webhookUrl, outbound.checkUrlForm(webhookUrl));
        if (!checked.ok) return checked;
      }
      const rows = await tx.query<ParticipantRow>('update participants set webhook_url = $2, updated_at = $3 where id = $1 returning *', [id, webhookUrl, clock.now()]);
      const row = rows[0];
      if (row === undefined) return err('participant_not_found', 'no such participant', { participantId: id });
      await accessChanged(tx);
      await audit.record(tx, { actor, action: 'participant.webhook_updated', objectType: 'participant', objectId: id, details: { webhookUrl } });
      return ok(toParticipant(row));
    },
    issueCredential,
    async revokeCredential(tx, actor, participantId, credentialId) {
      const rows = await tx.query<{ id: string; participant_id: string; created_at: Date; revoked_at: Date }>(
        `update credentials set revoked_at = coalesce(revoked_at, $3) where id = $1 and participant_id = $2 returning *`,
        [credentialId, participantId, clock.now()],
      );
      const row = rows[0];
      if (row === undefined) return err('credential_not_found', 'no such credential', { credentialId });
      await accessChanged(tx);
      await audit.record(tx, { actor, action: 'credential.revoked', objectType: 'credential', objectId: credentialId, details: { participantId } });
      await events.emit(tx, { participantId, type: 'credential.revoked', data: { credentialId } });
      return ok({ id: row.id, participantId: row.participant_id, createdAt: row.created_at, revokedAt: row.revoked_at });
    },
    async listCredentials(participantId) {
      const rows = await db.query<{ id: string; participant_id: string; created_at: Date; revoked_at: Date | null }>(
        'select id, participant_id, created_at, revoked_at from credentials where participant_id = $1 order by created_at desc, id limit 50',
        [participantId],
      );
      return rows.map((r) => ({ id: r.id, participantId: r.participant_id, createdAt: r.created_at, revokedAt: r.revoked_at }));
    },
    async checkClient(clientId, clientSecret) {
      const [row] = await db.query<{ secret_hash: string; revoked_at: Date | null; participant_id: string }>(
        'select secret_hash, revoked_at, participant_id from credentials where id = $1',
        [clientId],
      );
      const given = Buffer.from(hashSecret(clientSecret), 'hex');
      const expected = Buffer.from(row?.secret_hash ?? '0'.repeat(64), 'hex');
      const matches = timingSafeEqual(given, expected);
      if (row === undefined || !matches || row.revoked_at !== null) return err('invalid_client', 'unknown client or wrong secret');
      const access = await checkAccess(clientId);
      if (!access.ok) return access;
      return ok({ participant: access.value.participant, credentialId: clientId });
    },
    checkAccess,
    async start() {
      await db.listen(ACCESS_CHANNEL, forgetAccess, forgetAccess);
    },
  };
}

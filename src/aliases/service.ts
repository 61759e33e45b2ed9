import { timingSafeEqual } from 'node:crypto';
import type { Actor, AuditService } from '../audit/index.ts';
import type { AccountService } from '../accounts/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { createTokenBucketLimiter } from '../platform/rate-limit.ts';
import { newOneTimeCode, sealForParticipant } from '../platform/recipient-seal.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { TErr } from '../transfers/index.ts';
import { HANDLE_PATTERN, HANDLE_RULE, maskName, normalizeAlias, type AliasType } from './normalize.ts';

/** A value its type cannot read; for a handle, the rule it breaks (a phone or e-mail address's form is well known). */
const invalidAlias = (type: AliasType) =>
  type === 'handle'
    ? err('invalid_alias', `not a valid handle: ${HANDLE_RULE}`, { type, pattern: HANDLE_PATTERN.source })
    : err('invalid_alias', `not a valid ${type}`, { type });
import { createCoalescer } from '../platform/coalescer.ts';

/**
 * The alias directory: phone (E.164), email or handle → one account at one participant. Lookups answer a masked
 * name and the participant's name (verification of payee), never account details, under two token buckets — one per
 * participant and one per customer — where a miss costs MISS_COST tokens and a hit one, so enumerating the
 * directory runs dry fast. Participants can flag an alias for fraud; payers see a warning and risk rules use it.
 */
export const ALIAS_MOVE_TTL_MS = 10 * 60_000;
export const ALIAS_MOVE_MAX_ATTEMPTS = 5;
export const ALIAS_VERIFICATION_TTL_MS = 10 * 60_000;

export interface AliasLimits {
  participantPerS: number;
  participantBurst: number;
  customerPerS: number;
  customerBurst: number;
  missCost: number;
}
export const DEFAULT_ALIAS_LIMITS: AliasLimits = { participantPerS: 200, participantBurst: 400, customerPerS: 0.5, customerBurst: 20, missCost: 5 };

export interface AliasRecord {
  readonly id: string;
  readonly type: AliasType;
  readonly value: string;
  readonly participantId: string;
  readonly participantName: string;
  readonly customerId: string;
  readonly customerName: string;
  readonly accountId: string;
  readonly currency: string;
  readonly flagged: boolean;
  readonly createdAt: Date;
}

export interface AliasLookup {
  readonly alias: string;
  readonly type: AliasType;
  readonly maskedName: string;
  readonly participantId: string;
  readonly participantName: string;
  readonly currency: string;
  readonly flagged: boolean;
  readonly warning: string | null;
}

export const FLAGGED_WARNING = 'Warning: a participant has reported this payee for suspected fraud. Do not pay unless you are certain who they are.';

export interface AliasService {
  readonly limits: AliasLimits;
  resolve(q: Queryable, type: AliasType, value: string, defaultCountry: string): Promise<AliasRecord | undefined>;
  /** resolve() for many aliases in one statement, one answer per item, in order. */
  resolveMany(q: Queryable, items: readonly { type: AliasType; value: string; defaultCountry: string }[]): Promise<(AliasRecord | undefined)[]>;
  byId(q: Queryable, id: string): Promise<AliasRecord | undefined>;
  /** Any flagged alias pointing at this customer (requests come from customers, not aliases). */
  customerFlagged(q: Queryable, participantId: string, customerId: string): Promise<boolean>;
  lookup(participant: { id: string; country: string }, customerId: string, type: AliasType, value: string): Promise<Result<AliasLookup, TErr>>;
  register(tx: Queryable, actor: Actor, participant: { id: string; country: string }, input: { customerId: string; type: AliasType; value: string; accountId: string }): Promise<Result<AliasRecord, TErr>>;
  list(participantId: string, customerId: string): Promise<AliasRecord[]>;
  remove(tx: Queryable, actor: Actor, participantId: string, aliasId: string): Promise<Result<AliasRecord, TErr>>;
  requestMove(tx: Queryable, actor: Actor, participant: { id: string; country: string }, input: { customerId: string; type: AliasType; value: string; accountId: string }): Promise<Result<{ id: string; expiresAt: Date }, TErr>>;
  confirmMove(tx: Queryable, actor: Actor, participantId: string, moveId: string, code: string): Promise<Result<AliasRecord, TErr>>;
  /**
   * A customer adding a phone or e-mail alias themselves proves they control it: a one-time code goes, sealed, to
   * their participant (alias.verification_requested), which delivers it to that number or address.
   */
  requestVerification(tx: Queryable, actor: Actor, participant: { id: string; country: string }, input: { customerId: string; type: 'phone' | 'email'; value: string; accountId: string }): Promise<Result<{ id: string; expiresAt: Date }, TErr>>;
  confirmVerification(tx: Queryable, actor: Actor, participant: { id: string; country: string }, verificationId: string, code: string): Promise<Result<AliasRecord, TErr>>;
  flag(tx: Queryable, actor: Actor, participant: { id: string; country: string }, type: AliasType, value: string, reason: string): Promise<Result<AliasRecord, TErr>>;
  unflag(tx: Queryable, actor: Actor, participant: { id: string; country: string }, type: AliasType, value: string): Promise<Result<AliasRecord, TErr>>;
}

/** Bound on directory lookups answered by one statement. */
const LOOKUP_BATCH = 128;

interface AliasRow {
  id: string;
  type: AliasType;
  value: string;
  participant_id: string;
  participant_name: string;
  customer_id: string;
  customer_name: string;
  account_id: string;
  currency: string;
  flagged: boolean;
  created_at: Date;
}
const toAlias = (r: AliasRow): AliasRecord => ({
  id: r.id,
  type: r.type,
  value: r.value,
  participantId: r.participant_id,
  participantName: r.participant_name,
  customerId: r.customer_id,
  customerName: r.customer_name,
  accountId: r.account_id,
  currency: r.currency,
  flagged: r.flagged,
  createdAt: r.created_at,
});

const SELECT = `select a.id, a.type, a.value, a.participant_id, p.name as participant_name, a.customer_id, c.name as customer_name, a.account_id,
  la.currency, exists (select 1 from alias_flags f where f.alias_id = a.id) as flagged, a.created_at
  from aliases a join participants p on p.id = a.participant_id join customers c on c.id = a.customer_id join ledger_accounts la on la.id = a.account_id`;

export function createAliasService(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox; vault: Vault; accounts: AccountService; limits?: Partial<AliasLimits> }): AliasService {
  const { db, clock, audit, events, vault, accounts } = deps;
  const limits: AliasLimits = { ...DEFAULT_ALIAS_LIMITS, ...deps.limits };
  const byParticipant = createTokenBucketLimiter({ ratePerS: () => limits.participantPerS, burst: () => limits.participantBurst, nowMs: () => clock.nowMs() });
  const byCustomer = createTokenBucketLimiter({ ratePerS: () => limits.customerPerS, burst: () => limits.customerBurst, nowMs: () => clock.nowMs() });
  const codeHash = (moveId: string, code: string) => vault.indexHash(`alias-move:${moveId}:${code}`);
  const verificationHash = (verificationId: string, code: string) => vault.indexHash(`alias-verification:${verificationId}:${code}`);

  const resolve: AliasService['resolve'] = async (q, type, value, defaultCountry) => {
    const normalized = normalizeAlias(type, value, defaultCountry);
    if (normalized === undefined) return undefined;
    const [row] = await q.query<AliasRow>(`${SELECT} where a.type = $1 and a.value = $2`, [type, normalized]);
    return row === undefined ? undefined : toAlias(row);
  };
  const resolveMany: AliasService['resolveMany'] = async (q, items) => {
    const normalized = items.map((i) => normalizeAlias(i.type, i.value, i.defaultCountry));
    const wanted = items.map((i, k) => ({ type: i.type, value: normalized[k] })).filter((w): w is { type: AliasType; value: string } => w.value !== undefined);
    if (wanted.length === 0) return items.map(() => undefined);
    const rows = await q.query<AliasRow>(`${SELECT} join unnest($1::text[], $2::text[]) as w(type, value) on a.type = w.type and a.value = w.value`, [
      wanted.map((w) => w.type),
      wanted.map((w) => w.value),
    ]);
    const found = new Map(rows.map((r) => [`${r.type}\u0000${r.value}`, toAlias(r)]));
    return items.map((i, k) => (normalized[k] === undefined ? undefined : found.get(`${i.type}\u0000${normalized[k]}`)));
  };
  // Directory lookups (verification of payee) are the hottest read of a payment: concurrent ones share a statement.
  const lookups = createCoalescer((items: readonly { type: AliasType; value: string; defaultCountry: string }[]) => resolveMany(db, items), { maxBatch: LOOKUP_BATCH });
  const byId: AliasService['byId'] = async (q, id) => {
    const [row] = await q.query<AliasRow>(`${SELECT} where a.id = $1`, [id]);
    return row === undefined ? undefined : toAlias(row);
  };

  const checkTarget = async (q: Queryable, participantId: string, customerId: string, accountId: string): Promise<TErr | undefined> => {
    const acc = await accounts.ref(q, accountId);
    if (acc === undefined || acc.ownerParticipantId !== participantId || acc.customerId !== customerId || acc.kind !== 'customer' || acc.closed) {
      return { code: 'account_unavailable', message: "the alias must point to one of this customer's accounts", details: { accountId } };
    }
    return undefined;
  };

  /** Registers a normalized alias for a checked target: taken aliases are refused, never overwritten. */
  const insertAlias = async (tx: Queryable, actor: Actor, participantId: string, input: { customerId: string; type: AliasType; value: string; accountId: string }): Promise<Result<AliasRecord, TErr>> => {
    const now = clock.now();
    const id = newId('ali');
    const rows = await tx.query<{ id: string }>(
      `insert into aliases (id, type, value, participant_id, customer_id, account_id, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $7)
       on conflict (type, value) do nothing returning id`,
      [id, input.type, input.value, participantId, input.customerId, input.accountId, now],
    );
    if (rows.length === 0) return err('alias_taken', 'this alias is registered already; to move it here, ask for a move with the customer’s confirmation', { type: input.type });
    await audit.record(tx, { actor, action: 'alias.registered', objectType: 'alias', objectId: id, details: { type: input.type, customerId: input.customerId } });
    await events.emit(tx, { participantId, type: 'alias.registered', data: { aliasId: id, type: input.type, customerId: input.customerId } });
    const registered = await byId(tx, id);
    if (registered === undefined) throw new Error(`alias ${id} vanished inside its own transaction`);
    return ok(registered);
  };

  return {
    limits,
    resolve,
    resolveMany,
    byId,
    async customerFlagged(q, participantId, customerId) {
      const [r] = await q.query<{ x: boolean }>(
        'select exists (select 1 from alias_flags f join aliases a on a.id = f.alias_id where a.participant_id = $1 and a.customer_id = $2) as x',
        [participantId, customerId],
      );
      return r?.x === true;
    },
    async lookup(participant, customerId, type, value) {
      const retry = (ms: number) => err('alias_lookup_limited', 'too many alias lookups; slow down', { retryAfterMs: ms });
      const p = byParticipant.take(participant.id, 1);
      if (!p.allowed) return retry(p.retryAfterMs);
      const c = byCustomer.take(`${participant.id}:${customerId}`, 1);
      if (!c.allowed) return retry(c.retryAfterMs);
      const found = await lookups.load({ type, value, defaultCountry: participant.country });
      if (found === undefined) {
        // A miss costs more: enumeration mostly misses. The extra is taken best-effort (never below zero).
        byParticipant.take(participant.id, limits.missCost - 1);
        byCustomer.take(`${participant.id}:${customerId}`, limits.missCost - 1);
        return err('alias_not_found', 'no account is registered under this alias');
      }
      return ok({
        alias: found.value,
        type: found.type,
        maskedName: maskName(found.customerName),
        participantId: found.participantId,
        participantName: found.participantName,
        currency: found.currency,
        flagged: found.flagged,
        warning: found.flagged ? FLAGGED_WARNING : null,
      });
    },
    async register(tx, actor, participant, input) {
      const value = normalizeAlias(input.type, input.value, participant.country);
      if (value === undefined) return invalidAlias(input.type);
      const bad = await checkTarget(tx, participant.id, input.customerId, input.accountId);
      if (bad !== undefined) return { ok: false, error: bad };
      return insertAlias(tx, actor, participant.id, { ...input, value });
    },
    async list(participantId, customerId) {
      return (await db.query<AliasRow>(`${SELECT} where a.participant_id = $1 and a.customer_id = $2 order by a.created_at, a.id limit 50`, [participantId, customerId])).map(toAlias);
    },
    async remove(tx, actor, participantId, aliasId) {
      const found = await byId(tx, aliasId);
      if (found === undefined || found.participantId !== participantId) return err('alias_not_found', 'no such alias', { aliasId });
      await tx.query('delete from alias_flags where alias_id = $1', [aliasId]);
      await tx.query('delete from aliases where id = $1', [aliasId]);
      await audit.record(tx, { actor, action: 'alias.deleted', objectType: 'alias', objectId: aliasId, details: { type: found.type } });
      await events.emit(tx, { participantId, type: 'alias.deleted', data: { aliasId } });
      return ok(found);
    },
    async requestMove(tx, actor, participant, input) {
      const current = await resolve(tx, input.type, input.value, participant.country);
      if (current === undefined) return err('alias_not_found', 'no such alias: register it instead');
      if (current.participantId === participant.id) return err('alias_taken', 'the alias is already held by this participant');
      const bad = await checkTarget(tx, participant.id, input.customerId, input.accountId);
      if (bad !== undefined) return { ok: false, error: bad };
      const id = newId('amv');
      const code = newOneTimeCode();
      const expiresAt = new Date(clock.nowMs() + ALIAS_MOVE_TTL_MS);
      await tx.query(
        `insert into alias_moves (id, alias_id, to_participant_id, to_customer_id, to_account_id, code_hash, status, expires_at, created_at) values ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)`,
        [id, current.id, participant.id, input.customerId, input.accountId, await codeHash(id, code), expiresAt, clock.now()],
      );
      const [to] = await tx.query<{ name: string }>('select name from participants where id = $1', [participant.id]);
      await audit.record(tx, { actor, action: 'alias.move_requested', objectType: 'alias', objectId: current.id, details: { moveId: id } });
      // The current holder shows the code to its customer: only the person who controls the alias can confirm. The code
      // travels sealed to the holder (platform/recipient-seal.ts), so the outbox never holds it.
      await events.emit(tx, {
        participantId: current.participantId,
        type: 'alias.move_requested',
        data: {
          moveId: id,
          aliasId: current.id,
          customerId: current.customerId,
          toParticipantName: to?.name ?? participant.id,
          codeSealed: await sealForParticipant(tx, vault, current.participantId, code, id),
          expiresAt: expiresAt.toISOString(),
        },
      });
      return ok({ id, expiresAt });
    },
    async confirmMove(tx, actor, participantId, moveId, code) {
      const [m] = await tx.query<{ alias_id: string; to_customer_id: string; to_account_id: string; code_hash: string; attempts: number; status: string; expires_at: Date }>(
        'select * from alias_moves where id = $1 and to_participant_id = $2 for update',
        [moveId, participantId],
      );
      if (m === undefined) return err('alias_move_not_found', 'no such alias move', { moveId });
      // This request's try was taken already (takeMoveTry): the limit is passed only beyond the last allowed try.
      if (m.status !== 'pending' || m.attempts > ALIAS_MOVE_MAX_ATTEMPTS) return err('alias_move_locked', `the move is ${m.status}`);
      if (m.expires_at.getTime() <= clock.nowMs()) return err('alias_move_expired', 'the code expired; ask for a new move');
      const given = Buffer.from(await codeHash(moveId, code));
      const expected = Buffer.from(m.code_hash);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return err('alias_code_invalid', 'wrong code', { moveId });
      const before = await byId(tx, m.alias_id);
      if (before === undefined) return err('alias_not_found', 'the alias was deleted meanwhile');
      await tx.query(`update alias_moves set status = 'confirmed' where id = $1`, [moveId]);
      await tx.query('update aliases set participant_id = $2, customer_id = $3, account_id = $4, updated_at = $5 where id = $1', [m.alias_id, participantId, m.to_customer_id, m.to_account_id, clock.now()]);
      await audit.record(tx, { actor, action: 'alias.moved', objectType: 'alias', objectId: m.alias_id, details: { from: before.participantId, to: participantId } });
      await events.emit(tx, { participantId: before.participantId, type: 'alias.moved_away', data: { aliasId: m.alias_id, customerId: before.customerId } });
      await events.emit(tx, { participantId, type: 'alias.moved_in', data: { aliasId: m.alias_id, customerId: m.to_customer_id } });
      return ok((await byId(tx, m.alias_id))!);
    },
    async requestVerification(tx, actor, participant, input) {
      const value = normalizeAlias(input.type, input.value, participant.country);
      if (value === undefined) return invalidAlias(input.type);
      const bad = await checkTarget(tx, participant.id, input.customerId, input.accountId);
      if (bad !== undefined) return { ok: false, error: bad };
      // Checked now so the customer is not sent a code for an alias they could not get; checked again at confirmation.
      if ((await resolve(tx, input.type, value, participant.country)) !== undefined) {
        return err('alias_taken', 'this alias is registered already; to move it here, ask for a move with the customer’s confirmation', { type: input.type });
      }
      const id = newId('avf');
      const code = newOneTimeCode();
      const expiresAt = new Date(clock.nowMs() + ALIAS_VERIFICATION_TTL_MS);
      await tx.query(
        `insert into alias_verifications (id, participant_id, customer_id, account_id, type, value, code_hash, status, expires_at, created_at) values ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)`,
        [id, participant.id, input.customerId, input.accountId, input.type, value, await verificationHash(id, code), expiresAt, clock.now()],
      );
      await audit.record(tx, { actor, action: 'alias.verification_requested', objectType: 'alias_verification', objectId: id, details: { type: input.type, customerId: input.customerId } });
      // The participant sends the code to the number or address being added (it is its own customer's), so only the
      // person who controls it can confirm.
      await events.emit(tx, {
        participantId: participant.id,
        type: 'alias.verification_requested',
        data: { verificationId: id, customerId: input.customerId, type: input.type, value, codeSealed: await sealForParticipant(tx, vault, participant.id, code, id), expiresAt: expiresAt.toISOString() },
      });
      return ok({ id, expiresAt });
    },
    async confirmVerification(tx, actor, participant, verificationId, code) {
      const [v] = await tx.query<{ customer_id: string; account_id: string; type: 'phone' | 'email'; value: string; code_hash: string; attempts: number; status: string; expires_at: Date }>(
        'select * from alias_verifications where id = $1 and participant_id = $2 for update',
        [verificationId, participant.id],
      );
      if (v === undefined) return err('alias_verification_not_found', 'no such alias verification', { verificationId });
      // This request's try was taken already (takeVerificationTry).
      if (v.status !== 'pending' || v.attempts > ALIAS_MOVE_MAX_ATTEMPTS) return err('alias_verification_locked', `the verification is ${v.status}`);
      if (v.expires_at.getTime() <= clock.nowMs()) return err('alias_verification_expired', 'the code expired; ask for a new one');
      const given = Buffer.from(await verificationHash(verificationId, code));
      const expected = Buffer.from(v.code_hash);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return err('alias_code_invalid', 'wrong code', { verificationId });
      const bad = await checkTarget(tx, participant.id, v.customer_id, v.account_id);
      if (bad !== undefined) return { ok: false, error: bad };
      const registered = await insertAlias(tx, actor, participant.id, { customerId: v.customer_id, type: v.type, value: v.value, accountId: v.account_id });
      if (registered.ok) await tx.query(`update alias_verifications set status = 'confirmed' where id = $1`, [verificationId]);
      return registered;
    },
    async flag(tx, actor, participant, type, value, reason) {
      const found = await resolve(tx, type, value, participant.country);
      if (found === undefined) return err('alias_not_found', 'no such alias');
      await tx.query('insert into alias_flags (alias_id, participant_id, reason, created_at) values ($1, $2, $3, $4) on conflict do nothing', [found.id, participant.id, reason, clock.now()]);
      await audit.record(tx, { actor, action: 'alias.flagged', objectType: 'alias', objectId: found.id, details: { reason } });
      await events.emit(tx, { participantId: found.participantId, type: 'alias.flagged', data: { aliasId: found.id, customerId: found.customerId } });
      return ok({ ...found, flagged: true });
    },
    async unflag(tx, actor, participant, type, value) {
      const found = await resolve(tx, type, value, participant.country);
      if (found === undefined) return err('alias_not_found', 'no such alias');
      await tx.query('delete from alias_flags where alias_id = $1 and participant_id = $2', [found.id, participant.id]);
      await audit.record(tx, { actor, action: 'alias.unflagged', objectType: 'alias', objectId: found.id });
      return ok((await byId(tx, found.id))!);
    },
  };
}

/**
 * Takes one of a code's tries before the code is checked, outside the request's transaction (a refused request rolls
 * back, its try must stay counted) and before its answer is sent, so that neither concurrent guesses nor a fast next
 * request get past the limit: every try counts, the right one too, and the (MAX+1)th fails the move or verification.
 */
async function takeTry(db: Db, table: 'alias_moves' | 'alias_verifications', id: string): Promise<void> {
  await db.query(`update ${table} set attempts = attempts + 1, status = case when attempts + 1 > $2 then 'failed' else status end where id = $1 and status = 'pending'`, [id, ALIAS_MOVE_MAX_ATTEMPTS]);
}
export const takeMoveTry = (db: Db, moveId: string): Promise<void> => takeTry(db, 'alias_moves', moveId);
export const takeVerificationTry = (db: Db, verificationId: string): Promise<void> => takeTry(db, 'alias_verifications', verificationId);

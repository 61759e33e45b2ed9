import { createHash } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Db, Flusher, Queryable } from '../platform/db.ts';

/** Who did something. Every audit record names the acting participant (and customer, where there is one). */
export type Actor =
  | { readonly type: 'operator' }
  | { readonly type: 'system' }
  | { readonly type: 'participant'; readonly participantId: string; readonly customerId?: string }
  | { readonly type: 'customer'; readonly participantId: string; readonly customerId: string };

export interface AuditEntry {
  readonly actor: Actor;
  readonly action: string;
  readonly objectType: string;
  readonly objectId: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AuditRecord {
  readonly id: bigint;
  readonly chainSeq: bigint | null;
  readonly at: Date;
  readonly actorType: string;
  readonly actorParticipantId: string | null;
  readonly actorCustomerId: string | null;
  readonly action: string;
  readonly objectType: string;
  readonly objectId: string;
  readonly details: Record<string, unknown>;
  readonly prevHash: string | null;
  readonly hash: string | null;
}

export type VerifyResult =
  | { readonly ok: true; readonly checked: number; readonly headHash: string | null; readonly unchained: number }
  | { readonly ok: false; readonly checked: number; readonly brokenAt: { readonly chainSeq: string; readonly id: string; readonly reason: string } };

/** One chainer at a time, across every hub process sharing the database. */
const AUDIT_CHAIN_LOCK_ID = 727_002;
const CHAIN_BATCH = 1_000;
const MAX_CHAIN_BATCHES_PER_RUN = 50;
const VERIFY_PAGE = 2_000;
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every depth, so that both engines (and jsonb's own key order) hash the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

interface AuditRow {
  id: bigint;
  chain_seq: bigint | null;
  at: Date;
  actor_type: string;
  actor_participant_id: string | null;
  actor_customer_id: string | null;
  action: string;
  object_type: string;
  object_id: string;
  details: Record<string, unknown>;
  prev_hash: string | null;
  hash: string | null;
}

/** SHA-256 over the record's content and the previous record's hash. */
export function recordHash(row: Omit<AuditRow, 'hash' | 'prev_hash' | 'chain_seq'>, chainSeq: bigint, prevHash: string): string {
  const content = canonicalJson({
    seq: chainSeq.toString(),
    id: row.id.toString(),
    at: row.at.toISOString(),
    actorType: row.actor_type,
    actorParticipantId: row.actor_participant_id,
    actorCustomerId: row.actor_customer_id,
    action: row.action,
    objectType: row.object_type,
    objectId: row.object_id,
    details: row.details,
    prevHash,
  });
  return createHash('sha256').update(content).digest('hex');
}

function toRecord(r: AuditRow): AuditRecord {
  return {
    id: r.id,
    chainSeq: r.chain_seq,
    at: r.at,
    actorType: r.actor_type,
    actorParticipantId: r.actor_participant_id,
    actorCustomerId: r.actor_customer_id,
    action: r.action,
    objectType: r.object_type,
    objectId: r.object_id,
    details: r.details,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface AuditService {
  /** Writes a record inside the caller's transaction: the record exists exactly when the change does. */
  record(tx: Queryable, entry: AuditEntry): Promise<void>;
  /** Chains records written since the last run, in commit order. Returns how many it chained. */
  chain(): Promise<number>;
  verify(onProgress?: (checked: number) => void): Promise<VerifyResult>;
  list(filter: { participantId?: string; objectType?: string; objectId?: string; afterId?: bigint; limit: number }): Promise<AuditRecord[]>;
}

/** One audit record as staged: at (ISO), actor type, actor participant, actor customer, action, object type, object id, details (JSON). */
type StagedAudit = readonly [string, string, string | null, string | null, string, string, string, string];

/** Writes a transaction's audit records in one statement, in the order they were recorded (ids follow that order). */
const auditFlusher: Flusher<StagedAudit> = {
  flush: (tx, rows) =>
    tx.query(
      `insert into audit_log (at, actor_type, actor_participant_id, actor_customer_id, action, object_type, object_id, details)
       select at::timestamptz, actor_type, actor_participant_id, actor_customer_id, action, object_type, object_id, details::jsonb
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
              with ordinality as r(at, actor_type, actor_participant_id, actor_customer_id, action, object_type, object_id, details, n)
        order by n`,
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => rows.map((r) => r[i])),
    ),
};

export function createAuditService(deps: { db: Db; clock: Clock }): AuditService {
  const { db, clock } = deps;

  const chainBatch = async (): Promise<number> =>
    db.transaction(async (tx) => {
      const [lock] = await tx.query<{ locked: boolean }>('select pg_try_advisory_xact_lock($1) as locked', [AUDIT_CHAIN_LOCK_ID]);
      if (lock?.locked !== true) return 0;
      const [head] = await tx.query<{ chain_seq: bigint; hash: string }>(
        'select chain_seq, hash from audit_log where chain_seq is not null order by chain_seq desc limit 1',
      );
      const pending = await tx.query<AuditRow>('select * from audit_log where chain_seq is null order by id limit $1', [CHAIN_BATCH]);
      if (pending.length === 0) return 0;
      let seq = head?.chain_seq ?? 0n;
      let prev = head?.hash ?? GENESIS_HASH;
      const ids: string[] = [];
      const seqs: string[] = [];
      const prevs: string[] = [];
      const hashes: string[] = [];
      for (const row of pending) {
        seq += 1n;
        const hash = recordHash(row, seq, prev);
        ids.push(row.id.toString());
        seqs.push(seq.toString());
        prevs.push(prev);
        hashes.push(hash);
        prev = hash;
      }
      await tx.query(
        `update audit_log a set chain_seq = v.seq, prev_hash = v.prev, hash = v.hash
           from unnest($1::int8[], $2::int8[], $3::text[], $4::text[]) as v(id, seq, prev, hash)
          where a.id = v.id`,
        [ids, seqs, prevs, hashes],
      );
      return pending.length;
    });

  return {
    async record(tx, entry) {
      const actor = entry.actor;
      const row: StagedAudit = [
        clock.now().toISOString(),
        actor.type,
        'participantId' in actor ? actor.participantId : null,
        'customerId' in actor ? (actor.customerId ?? null) : null,
        entry.action,
        entry.objectType,
        entry.objectId,
        JSON.stringify(entry.details ?? {}),
      ];
      // Inside a transaction the record goes out with the COMMIT (one statement for all of the transaction's records).
      if (tx.hooks !== undefined) tx.hooks.stage(auditFlusher, row);
      else await auditFlusher.flush(tx, [row]);
    },

    async chain() {
      let total = 0;
      for (let i = 0; i < MAX_CHAIN_BATCHES_PER_RUN; i++) {
        const n = await chainBatch();
        total += n;
        if (n < CHAIN_BATCH) break;
      }
      return total;
    },

    async verify(onProgress) {
      let prev = GENESIS_HASH;
      let expectedSeq = 1n;
      let checked = 0;
      for (;;) {
        const rows = await db.query<AuditRow>('select * from audit_log where chain_seq >= $1 order by chain_seq limit $2', [expectedSeq.toString(), VERIFY_PAGE]);
        for (const row of rows) {
          const where = { chainSeq: String(row.chain_seq), id: row.id.toString() };
          if (row.chain_seq !== expectedSeq) return { ok: false, checked, brokenAt: { ...where, reason: `expected record ${expectedSeq}: a record is missing` } };
          if (row.prev_hash !== prev) return { ok: false, checked, brokenAt: { ...where, reason: 'previous-hash link does not match the previous record' } };
          if (recordHash(row, expectedSeq, prev) !== row.hash) return { ok: false, checked, brokenAt: { ...where, reason: 'content does not match its hash (record altered)' } };
          prev = row.hash;
          expectedSeq += 1n;
          checked += 1;
        }
        onProgress?.(checked);
        if (rows.length < VERIFY_PAGE) break;
      }
      const [unchained] = await db.query<{ n: bigint }>('select count(*) as n from audit_log where chain_seq is null');
      return { ok: true, checked, headHash: checked === 0 ? null : prev, unchained: Number(unchained?.n ?? 0n) };
    },

    async list(filter) {
      const conditions: string[] = [];
      const params: unknown[] = [];
      const add = (sql: string, value: unknown) => {
        params.push(value);
        conditions.push(sql.replace('?', `$${params.length}`));
      };
      if (filter.participantId !== undefined) add('actor_participant_id = ?', filter.participantId);
      if (filter.objectType !== undefined) add('object_type = ?', filter.objectType);
      if (filter.objectId !== undefined) add('object_id = ?', filter.objectId);
      if (filter.afterId !== undefined) add('id < ?', filter.afterId.toString());
      params.push(Math.min(Math.max(filter.limit, 1), 200));
      const where = conditions.length === 0 ? '' : `where ${conditions.join(' and ')}`;
      const rows = await db.query<AuditRow>(`select * from audit_log ${where} order by id desc limit $${params.length}`, params);
      return rows.map(toRecord);
    },
  };
}

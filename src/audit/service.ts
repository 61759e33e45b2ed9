import type { Clock } from '../platform/clock.ts';
import type { Db, Flusher, Queryable } from '../platform/db.ts';
import type { Logger } from '../platform/logger.ts';
import type { Vault } from '../platform/vault.ts';
import { GENESIS_HASH, recordHash, type AuditRow } from './chain.ts';
import { vaultCheckpointSigner, type AuditCheckpoint, type AuditCheckpointWire, type AuditPublicKey, type CheckpointSigner } from './checkpoints.ts';
import { checkpointFromRow, tipContradiction, verifyAuditTrail, type CheckpointRow, type VerifyResult } from './verify.ts';

export { GENESIS_HASH, canonicalJson, recordHash } from './chain.ts';
export type { AuditProblem, AuditProblemCode, VerifyResult } from './verify.ts';

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

/** One chainer at a time, across every hub process sharing the database. */
const AUDIT_CHAIN_LOCK_ID = 727_002;
const CHAIN_BATCH = 1_000;
const MAX_CHAIN_BATCHES_PER_RUN = 50;
/**
 * A checkpoint is written by every chainer run that chained something, and at least this often when nothing was:
 * an idle hub still signs, now and then, that its chain has not changed (so a gap in checkpoint times means the
 * chainer was stopped, and truncation soon after a quiet period is still caught).
 */
export const CHECKPOINT_IDLE_INTERVAL_MS = 5 * 60_000;
const CHECKPOINT_PAGE_MAX = 200;

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
  /**
   * Chains records written since the last run, in commit order, then writes a signed checkpoint when it chained
   * something (or the last checkpoint is older than CHECKPOINT_IDLE_INTERVAL_MS). Returns how many it chained.
   * It chains and signs nothing while the chain contradicts its newest checkpoint (records deleted from the end, the
   * chain recomputed, a checkpoint forged): signing then would vouch for the tampered chain.
   */
  chain(): Promise<number>;
  /**
   * Recomputes the whole chain and checks every checkpoint (signature, links, the records it covers); with `against`,
   * also that the database still holds the state an exported checkpoint signed. Reports the first problem.
   */
  verify(options?: { readonly against?: AuditCheckpointWire; readonly onProgress?: (checked: number) => void }): Promise<VerifyResult>;
  list(filter: { participantId?: string; objectType?: string; objectId?: string; afterId?: bigint; limit: number }): Promise<AuditRecord[]>;
  get(id: bigint): Promise<AuditRecord | undefined>;
  /** Checkpoints, newest first; `beforeSeq` is the cursor. */
  listCheckpoints(filter: { beforeSeq?: bigint; limit: number }): Promise<AuditCheckpoint[]>;
  getCheckpoint(seq: bigint): Promise<AuditCheckpoint | undefined>;
  latestCheckpoint(): Promise<AuditCheckpoint | undefined>;
  /** The public half of the checkpoint signing key, to check exported checkpoints with. */
  publicKey(): Promise<AuditPublicKey>;
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

/** What one locked step of the chainer did: chained or checkpointed, skipped (another process holds the lock), or refused. */
type ChainStep = { readonly done: number } | { readonly refused: string };

export function createAuditService(deps: { db: Db; clock: Clock; vault: Vault; logger?: Logger }): AuditService {
  const { db, clock, vault, logger } = deps;
  const signer = vaultCheckpointSigner(vault);
  let lastRefusalLoggedMs = Number.NEGATIVE_INFINITY;

  const lockChain = async (tx: Queryable): Promise<boolean> => {
    const [lock] = await tx.query<{ locked: boolean }>('select pg_try_advisory_xact_lock($1) as locked', [AUDIT_CHAIN_LOCK_ID]);
    return lock?.locked === true;
  };
  const chainHead = async (tx: Queryable) =>
    (await tx.query<{ chain_seq: bigint; hash: string }>('select chain_seq, hash from audit_log where chain_seq is not null order by chain_seq desc limit 1'))[0];
  const newestCheckpoint = async (q: Queryable): Promise<AuditCheckpoint | undefined> => {
    const [row] = await q.query<CheckpointRow>('select * from audit_checkpoints order by seq desc limit 1');
    return row === undefined ? undefined : checkpointFromRow(row);
  };

  const chainBatch = async (key: CheckpointSigner): Promise<ChainStep> =>
    db.transaction(async (tx) => {
      if (!(await lockChain(tx))) return { done: 0 };
      const head = await chainHead(tx);
      const pending = await tx.query<AuditRow>('select * from audit_log where chain_seq is null order by id limit $1', [CHAIN_BATCH]);
      if (pending.length === 0) return { done: 0 };
      const contradiction = await tipContradiction(tx, key, await newestCheckpoint(tx), head?.chain_seq ?? 0n);
      if (contradiction !== undefined) return { refused: contradiction };
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
      return { done: pending.length };
    });

  /** Signs the chain's head when it moved since the newest checkpoint, or when that checkpoint is getting old. */
  const checkpoint = async (key: CheckpointSigner): Promise<ChainStep> =>
    db.transaction(async (tx) => {
      if (!(await lockChain(tx))) return { done: 0 };
      const head = await chainHead(tx);
      const last = await newestCheckpoint(tx);
      const headSeq = head?.chain_seq ?? 0n;
      if (last !== undefined && last.chainSeq === headSeq && clock.nowMs() - last.at.getTime() < CHECKPOINT_IDLE_INTERVAL_MS) return { done: 0 };
      const contradiction = await tipContradiction(tx, key, last, headSeq);
      if (contradiction !== undefined) return { refused: contradiction };
      const signed = key.sign({
        seq: (last?.seq ?? 0n) + 1n,
        chainSeq: headSeq,
        headHash: head?.hash ?? GENESIS_HASH,
        at: clock.now(),
        prevHash: last?.hash ?? GENESIS_HASH,
        keyId: key.publicKey.keyId,
      });
      await tx.query(
        `insert into audit_checkpoints (seq, chain_seq, head_hash, at, prev_hash, hash, key_id, signature)
         values ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [signed.seq.toString(), signed.chainSeq.toString(), signed.headHash, signed.at, signed.prevHash, signed.hash, signed.keyId, signed.signature],
      );
      return { done: 1 };
    });

  /** Logged at most once per idle interval: the chainer runs every second and would repeat it as often. */
  const reportRefusal = (reason: string) => {
    if (clock.nowMs() - lastRefusalLoggedMs < CHECKPOINT_IDLE_INTERVAL_MS) return;
    lastRefusalLoggedMs = clock.nowMs();
    logger?.error({ reason }, 'audit chain contradicts its newest signed checkpoint: nothing is chained or signed until it is investigated (hutong audit verify)');
  };

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
      // Outside any transaction: the signing key may be created now (see vaultCheckpointSigner).
      const key = await signer();
      let total = 0;
      for (let i = 0; i < MAX_CHAIN_BATCHES_PER_RUN; i++) {
        const step = await chainBatch(key);
        if ('refused' in step) {
          reportRefusal(step.refused);
          return total;
        }
        total += step.done;
        if (step.done < CHAIN_BATCH) break;
      }
      const signed = await checkpoint(key);
      if ('refused' in signed) reportRefusal(signed.refused);
      return total;
    },

    async verify(options = {}) {
      return verifyAuditTrail({ db, key: await signer(), ...options });
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

    async get(id) {
      const [row] = await db.query<AuditRow>('select * from audit_log where id = $1', [id.toString()]);
      return row === undefined ? undefined : toRecord(row);
    },

    async listCheckpoints(filter) {
      const limit = Math.min(Math.max(filter.limit, 1), CHECKPOINT_PAGE_MAX);
      const rows =
        filter.beforeSeq === undefined
          ? await db.query<CheckpointRow>('select * from audit_checkpoints order by seq desc limit $1', [limit])
          : await db.query<CheckpointRow>('select * from audit_checkpoints where seq < $1 order by seq desc limit $2', [filter.beforeSeq.toString(), limit]);
      return rows.map(checkpointFromRow);
    },

    async getCheckpoint(seq) {
      const [row] = await db.query<CheckpointRow>('select * from audit_checkpoints where seq = $1', [seq.toString()]);
      return row === undefined ? undefined : checkpointFromRow(row);
    },

    latestCheckpoint: () => newestCheckpoint(db),

    async publicKey() {
      return (await signer()).publicKey;
    },
  };
}

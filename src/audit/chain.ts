import { createHash } from 'node:crypto';

/** The hash of "no record before": the first record's prev_hash, and the head of an empty chain. */
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

/** An audit_log row as the database returns it. */
export interface AuditRow {
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

/** SHA-256 over the record's content, its position in the chain and the previous record's hash. */
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

import type { Db, Queryable } from '../platform/db.ts';
import { GENESIS_HASH, recordHash, type AuditRow } from './chain.ts';
import { checkpointFromWire, type AuditCheckpoint, type AuditCheckpointWire, type CheckpointSigner } from './checkpoints.ts';

/**
 * Verification of the audit trail: the records' hash chain, the signed checkpoints' own chain, and the one against
 * the other. What each check catches:
 * - a record's content changed: its hash no longer matches (`record_altered`);
 * - a record deleted from the middle: a gap in chain_seq (`record_missing`);
 * - records moved to other positions: a record links to a predecessor that sits elsewhere (`records_reordered`);
 * - a record altered and every hash after it recomputed: the chain agrees with itself but no longer with the head
 *   hash a checkpoint signed (`chain_rewritten`) — the signing key is outside the database, so no new checkpoint
 *   can vouch for the recomputed chain;
 * - the newest records deleted: a checkpoint covers more records than the chain holds (`records_truncated`);
 * - checkpoints deleted, altered, forged or replaced: a gap in their numbers, a content/hash mismatch, a signature
 *   that does not verify, a broken link to the previous checkpoint (`checkpoint_*`);
 * - the newest records AND the newest checkpoints deleted: only an exported checkpoint kept outside the database
 *   shows it (`against`: `records_truncated`, `checkpoint_missing`, `external_checkpoint_mismatch`).
 */
export const AUDIT_PROBLEM_CODES = [
  'record_altered',
  'record_missing',
  'records_reordered',
  'record_link_broken',
  'chain_rewritten',
  'records_truncated',
  'checkpoint_missing',
  'checkpoint_altered',
  'checkpoint_signature_invalid',
  'checkpoint_link_broken',
  'checkpoint_regressed',
  'external_checkpoint_invalid',
  'external_checkpoint_mismatch',
] as const;
export type AuditProblemCode = (typeof AUDIT_PROBLEM_CODES)[number];

/** The first problem found, with the first affected record (chain position, id) and/or checkpoint. */
export interface AuditProblem {
  readonly code: AuditProblemCode;
  readonly reason: string;
  readonly chainSeq?: string;
  readonly recordId?: string;
  readonly checkpointSeq?: string;
}

export type VerifyResult =
  | {
      readonly ok: true;
      /** Chained records verified. */
      readonly checked: number;
      readonly headHash: string | null;
      readonly unchained: number;
      /** Checkpoints verified (each one's signature, link, and the record it covers). */
      readonly checkpoints: number;
      readonly latestCheckpoint: { readonly seq: string; readonly chainSeq: string; readonly at: string } | null;
      /** The exported checkpoint the database was checked against, when one was given. */
      readonly against?: { readonly seq: string; readonly chainSeq: string };
    }
  | {
      readonly ok: false;
      readonly checked: number;
      readonly checkpoints: number;
      readonly problem: AuditProblem;
      /** The record where the chain breaks, when the problem is at a record that exists (as before checkpoints). */
      readonly brokenAt?: { readonly chainSeq: string; readonly id: string; readonly reason: string };
    };

export interface CheckpointRow {
  seq: bigint;
  chain_seq: bigint;
  head_hash: string;
  at: Date;
  prev_hash: string;
  hash: string;
  key_id: string;
  signature: string;
}

export function checkpointFromRow(r: CheckpointRow): AuditCheckpoint {
  return { seq: r.seq, chainSeq: r.chain_seq, headHash: r.head_hash, at: r.at, prevHash: r.prev_hash, hash: r.hash, keyId: r.key_id, signature: r.signature };
}

const VERIFY_PAGE = 2_000;

/** "record 7 is missing" / "records 7–9 are missing", "checkpoint 3 was deleted" / "checkpoints 3–4 were deleted". */
function span(noun: string, from: bigint, to: bigint, state: 'missing' | 'deleted'): string {
  const one = state === 'missing' ? 'is missing' : 'was deleted';
  const many = state === 'missing' ? 'are missing' : 'were deleted';
  return from === to ? `${noun} ${from} ${one}` : `${noun}s ${from}–${to} ${many}`;
}

/** The checks on a checkpoint alone and on its link to the one before: what does not depend on the records. */
function checkpointProblem(key: CheckpointSigner, cp: AuditCheckpoint, prev: AuditCheckpoint | undefined): AuditProblem | undefined {
  const expectedSeq = (prev?.seq ?? 0n) + 1n;
  if (cp.seq !== expectedSeq) {
    const missing = span('checkpoint', expectedSeq, cp.seq - 1n, 'missing');
    return { code: 'checkpoint_missing', checkpointSeq: expectedSeq.toString(), reason: `${missing} (deleted): the checkpoints jump from ${prev?.seq ?? 0n} to ${cp.seq}` };
  }
  const at = `checkpoint ${cp.seq}`;
  if (!key.hashMatches(cp)) return { code: 'checkpoint_altered', checkpointSeq: cp.seq.toString(), reason: `${at}'s content does not match its hash (checkpoint altered)` };
  if (!key.signatureValid(cp)) {
    const reason =
      cp.keyId !== key.publicKey.keyId
        ? `${at} names signing key ${cp.keyId}, not this hub's audit key ${key.publicKey.keyId} (forged, or signed by another hub)`
        : `${at}'s signature does not verify under this hub's audit key (forged checkpoint)`;
    return { code: 'checkpoint_signature_invalid', checkpointSeq: cp.seq.toString(), reason };
  }
  if (cp.prevHash !== (prev?.hash ?? GENESIS_HASH)) {
    return { code: 'checkpoint_link_broken', checkpointSeq: cp.seq.toString(), reason: `${at} does not link to checkpoint ${prev?.seq ?? 0n}: a checkpoint was replaced` };
  }
  if (prev !== undefined && cp.chainSeq < prev.chainSeq) {
    return { code: 'checkpoint_regressed', checkpointSeq: cp.seq.toString(), reason: `${at} covers ${cp.chainSeq} records, fewer than checkpoint ${prev.seq} (${prev.chainSeq}): it was signed after records were deleted` };
  }
  return undefined;
}

/**
 * Why the chain's tip contradicts its newest checkpoint, or undefined when it extends it. The chainer asks before
 * chaining or signing anything (two key lookups and one signature check), so that it never vouches for a tampered
 * chain; `verify` finds the full story.
 */
export async function tipContradiction(q: Queryable, key: CheckpointSigner, last: AuditCheckpoint | undefined, headSeq: bigint): Promise<string | undefined> {
  if (last === undefined) return undefined;
  if (!key.hashMatches(last) || !key.signatureValid(last)) return `checkpoint ${last.seq} does not verify (altered or forged)`;
  if (headSeq < last.chainSeq) return `checkpoint ${last.seq} covers ${last.chainSeq} records but the chain holds ${headSeq} (the newest records were deleted)`;
  const hashThere =
    last.chainSeq === 0n ? GENESIS_HASH : (await q.query<{ hash: string | null }>('select hash from audit_log where chain_seq = $1', [last.chainSeq.toString()]))[0]?.hash;
  if (hashThere !== last.headHash) return `record ${last.chainSeq} no longer has the head hash checkpoint ${last.seq} signed (the chain was changed)`;
  return undefined;
}

export async function verifyAuditTrail(input: {
  readonly db: Db;
  readonly key: CheckpointSigner;
  readonly against?: AuditCheckpointWire;
  readonly onProgress?: (checked: number) => void;
}): Promise<VerifyResult> {
  const { db, key, onProgress } = input;
  let checked = 0;
  let checkpointsChecked = 0;
  const fail = (problem: AuditProblem, at?: { chainSeq: bigint; id: bigint }): VerifyResult => ({
    ok: false,
    checked,
    checkpoints: checkpointsChecked,
    problem,
    ...(at !== undefined ? { brokenAt: { chainSeq: at.chainSeq.toString(), id: at.id.toString(), reason: problem.reason } } : {}),
  });

  // The exported checkpoint must be one this hub signed, unchanged, before anything is compared with it.
  let external: AuditCheckpoint | undefined;
  if (input.against !== undefined) {
    const parsed = checkpointFromWire(input.against);
    const invalid = (reason: string) => fail({ code: 'external_checkpoint_invalid', checkpointSeq: input.against?.seq ?? '', reason: `the exported checkpoint ${reason}` });
    if (parsed === undefined) return invalid(`has a time the hub never writes (${input.against.at})`);
    if (parsed.publicKeyPem !== undefined && parsed.publicKeyPem.trim() !== key.publicKey.pem.trim()) return invalid(`was signed by another key than this hub's audit key ${key.publicKey.keyId}`);
    if (!key.hashMatches(parsed.checkpoint)) return invalid('does not match its hash (the file was altered)');
    if (!key.signatureValid(parsed.checkpoint)) return invalid(`does not verify under this hub's audit key ${key.publicKey.keyId}`);
    external = parsed.checkpoint;
  }

  // Only checkpoints that existed when verification began: a checkpoint written meanwhile may cover records chained
  // after the walk below read the end of the chain. Every record an earlier checkpoint covers existed before it.
  const [bound] = await db.query<{ seq: bigint | null }>('select max(seq) as seq from audit_checkpoints');
  const maxCheckpointSeq = bound?.seq ?? 0n;
  if (external !== undefined) {
    // Fewer records than the exported checkpoint signed: the newest were deleted, whatever else happened to the
    // checkpoints (deleted too, or signed again over the shorter chain). Said first, since it is the root cause.
    const [top] = await db.query<{ n: bigint | null }>('select max(chain_seq) as n from audit_log');
    const held = top?.n ?? 0n;
    if (held < external.chainSeq) {
      let checkpoints = '';
      if (external.seq > maxCheckpointSeq) checkpoints = `, and ${span('checkpoint', maxCheckpointSeq + 1n, external.seq, 'deleted')} too`;
      else {
        const [same] = await db.query<{ hash: string }>('select hash from audit_checkpoints where seq = $1', [external.seq.toString()]);
        if (same?.hash !== external.hash) checkpoints = `, and checkpoint ${external.seq} was deleted and signed again over the shorter chain`;
      }
      return fail({
        code: 'records_truncated',
        chainSeq: (held + 1n).toString(),
        checkpointSeq: external.seq.toString(),
        reason: `the exported checkpoint ${external.seq} (signed at ${external.at.toISOString()}) covers ${external.chainSeq} records but the chain holds ${held}: ${span('record', held + 1n, external.chainSeq, 'deleted')}${checkpoints}`,
      });
    }
  }

  let page: AuditCheckpoint[] = [];
  let readUpTo = 0n;
  const peekCheckpoint = async (): Promise<AuditCheckpoint | undefined> => {
    if (page.length === 0 && readUpTo < maxCheckpointSeq) {
      const rows = await db.query<CheckpointRow>('select * from audit_checkpoints where seq > $1 and seq <= $2 order by seq limit $3', [
        readUpTo.toString(),
        maxCheckpointSeq.toString(),
        VERIFY_PAGE,
      ]);
      page = rows.map(checkpointFromRow);
      readUpTo = page.at(-1)?.seq ?? maxCheckpointSeq;
    }
    return page[0];
  };

  let previousCheckpoint: AuditCheckpoint | undefined;
  /** The first record a recomputation could have started at, for a checkpoint that no longer matches. */
  const firstUncovered = () => (previousCheckpoint?.chainSeq ?? 0n) + 1n;

  /** Checks every checkpoint that covers exactly `position` records (the walk has verified them; `headHash` is the last one's). */
  const checkpointsAt = async (position: bigint, headHash: string, recordId: bigint | undefined): Promise<VerifyResult | undefined> => {
    const at = recordId === undefined ? undefined : { chainSeq: position, id: recordId };
    for (;;) {
      const cp = await peekCheckpoint();
      if (cp === undefined || cp.chainSeq > position) break;
      page.shift();
      const problem = checkpointProblem(key, cp, previousCheckpoint);
      if (problem !== undefined) return fail(problem);
      if (cp.headHash !== headHash) {
        return fail(
          {
            code: 'chain_rewritten',
            chainSeq: position.toString(),
            ...(recordId !== undefined ? { recordId: recordId.toString() } : {}),
            checkpointSeq: cp.seq.toString(),
            reason: `record ${position}'s hash does not match the head hash signed by checkpoint ${cp.seq} at ${cp.at.toISOString()}: a record among ${firstUncovered()}–${position} was changed and the chain recomputed`,
          },
          at,
        );
      }
      if (external !== undefined && cp.seq === external.seq && cp.hash !== external.hash) {
        return fail({ code: 'external_checkpoint_mismatch', checkpointSeq: cp.seq.toString(), reason: `checkpoint ${cp.seq} in the database is not the exported one: it was deleted and signed again over another chain` });
      }
      previousCheckpoint = cp;
      checkpointsChecked += 1;
    }
    if (external !== undefined && external.chainSeq === position && external.headHash !== headHash) {
      return fail(
        {
          code: 'chain_rewritten',
          chainSeq: position.toString(),
          ...(recordId !== undefined ? { recordId: recordId.toString() } : {}),
          checkpointSeq: external.seq.toString(),
          reason: `record ${position}'s hash does not match the head hash the exported checkpoint ${external.seq} signed at ${external.at.toISOString()}: the chain was changed and recomputed`,
        },
        at,
      );
    }
    return undefined;
  };

  /** A record that does not link to its predecessor: moved from another position, or a predecessor replaced/removed. */
  const brokenLink = async (row: AuditRow, position: bigint, prevHash: string): Promise<VerifyResult> => {
    const here = { chainSeq: position, id: row.id };
    // The record that was chained after the previous one, wherever it sits now (one scan, only on failure).
    const [moved] = await db.query<AuditRow>('select * from audit_log where prev_hash = $1 and id <> $2 order by chain_seq limit 1', [prevHash, row.id.toString()]);
    if (moved !== undefined && moved.chain_seq !== null && recordHash(moved, position, prevHash) === moved.hash) {
      return fail(
        {
          code: 'records_reordered',
          chainSeq: position.toString(),
          recordId: row.id.toString(),
          reason: `record id ${moved.id} was chained at position ${position} but now sits at ${moved.chain_seq}, and record id ${row.id} took its place: records reordered`,
        },
        here,
      );
    }
    return fail(
      {
        code: 'record_link_broken',
        chainSeq: position.toString(),
        recordId: row.id.toString(),
        reason: `record ${position} does not link to record ${position - 1n} (previous-hash link does not match): the record before it was replaced, or records were deleted and renumbered`,
      },
      here,
    );
  };

  let prevHash = GENESIS_HASH;
  let expectedSeq = 1n;
  const genesis = await checkpointsAt(0n, GENESIS_HASH, undefined);
  if (genesis !== undefined) return genesis;
  for (;;) {
    const rows = await db.query<AuditRow>('select * from audit_log where chain_seq >= $1 order by chain_seq limit $2', [expectedSeq.toString(), VERIFY_PAGE]);
    for (const row of rows) {
      const here = { chainSeq: row.chain_seq ?? expectedSeq, id: row.id };
      if (row.chain_seq !== expectedSeq) {
        const gap = span('record', expectedSeq, row.chain_seq === null ? expectedSeq : row.chain_seq - 1n, 'missing');
        return fail({ code: 'record_missing', chainSeq: expectedSeq.toString(), reason: `expected record ${expectedSeq}: ${gap} (deleted from the chain), which continues at ${String(row.chain_seq)}` }, here);
      }
      if (row.prev_hash !== prevHash) return brokenLink(row, expectedSeq, prevHash);
      if (row.hash === null || recordHash(row, expectedSeq, prevHash) !== row.hash) {
        return fail({ code: 'record_altered', chainSeq: expectedSeq.toString(), recordId: row.id.toString(), reason: 'content does not match its hash (record altered)' }, here);
      }
      prevHash = row.hash;
      checked += 1;
      const atCheckpoint = await checkpointsAt(expectedSeq, prevHash, row.id);
      if (atCheckpoint !== undefined) return atCheckpoint;
      expectedSeq += 1n;
    }
    onProgress?.(checked);
    if (rows.length < VERIFY_PAGE) break;
  }

  // The walk reached the end of the chain: any checkpoint left covers records that are no longer there.
  const held = expectedSeq - 1n;
  const beyond = await peekCheckpoint();
  if (beyond !== undefined) {
    const problem = checkpointProblem(key, beyond, previousCheckpoint);
    if (problem !== undefined) return fail(problem);
    return fail({
      code: 'records_truncated',
      chainSeq: (held + 1n).toString(),
      checkpointSeq: beyond.seq.toString(),
      reason: `checkpoint ${beyond.seq} (signed at ${beyond.at.toISOString()}) covers ${beyond.chainSeq} records but the chain holds ${held}: ${span('record', held + 1n, beyond.chainSeq, 'deleted')}`,
    });
  }
  if (external !== undefined && external.seq > maxCheckpointSeq) {
    return fail({
      code: 'checkpoint_missing',
      checkpointSeq: (maxCheckpointSeq + 1n).toString(),
      reason: `the database no longer holds the exported checkpoint ${external.seq}: ${span('checkpoint', maxCheckpointSeq + 1n, external.seq, 'deleted')}`,
    });
  }

  const [unchained] = await db.query<{ n: bigint }>('select count(*) as n from audit_log where chain_seq is null');
  return {
    ok: true,
    checked,
    headHash: checked === 0 ? null : prevHash,
    unchained: Number(unchained?.n ?? 0n),
    checkpoints: checkpointsChecked,
    latestCheckpoint:
      previousCheckpoint === undefined
        ? null
        : { seq: previousCheckpoint.seq.toString(), chainSeq: previousCheckpoint.chainSeq.toString(), at: previousCheckpoint.at.toISOString() },
    ...(external !== undefined ? { against: { seq: external.seq.toString(), chainSeq: external.chainSeq.toString() } } : {}),
  };
}

import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHub } from '../../src/main.ts';
import { seedDemoNetwork } from '../../src/demo/seed.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { createFakeClock } from '../../src/platform/clock.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { openPglite, openPostgres, type Db } from '../../src/platform/db.ts';
import { createVault, fileKeySource, keyFilePath } from '../../src/platform/vault.ts';
import { availableEngines, createScratchPostgres, openTestDb } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * The audit trail's tamper evidence. A hub with the demo network and a few rounds of activity, chained and
 * checkpointed by the chainer, is snapshotted; each case tampers with the database directly in SQL (as someone who can
 * write the database but not read the key-encrypting key would), asserts what verification reports, and the snapshot
 * is restored for the next case.
 */
const engines = await availableEngines();
const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'hutong.js');
const GENESIS = '0'.repeat(64);
const IDLE_MS = 5 * 60_000;

// ---- what an attacker with write access to the database can compute: the SHA-256 chain, written from its definition ----

function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

interface Row {
  id: bigint;
  chain_seq: bigint;
  at: Date;
  actor_type: string;
  actor_participant_id: string | null;
  actor_customer_id: string | null;
  action: string;
  object_type: string;
  object_id: string;
  details: Record<string, unknown>;
}

/** Recomputes every record's prev_hash and hash from the first, exactly as the chainer links them. */
async function rehashWholeChain(db: Db): Promise<void> {
  const rows = await db.query<Row>('select * from audit_log where chain_seq is not null order by chain_seq');
  let prev = GENESIS;
  for (const r of rows) {
    const hash = createHash('sha256')
      .update(
        canonical({
          seq: r.chain_seq.toString(),
          id: r.id.toString(),
          at: r.at.toISOString(),
          actorType: r.actor_type,
          actorParticipantId: r.actor_participant_id,
          actorCustomerId: r.actor_customer_id,
          action: r.action,
          objectType: r.object_type,
          objectId: r.object_id,
          details: r.details,
          prevHash: prev,
        }),
      )
      .digest('hex');
    await db.query('update audit_log set prev_hash = $2, hash = $3 where id = $1', [r.id.toString(), prev, hash]);
    prev = hash;
  }
}

/** The documented signed payload of a checkpoint (canonical JSON of its fields). */
function checkpointPayload(cp: { seq: string; chainSeq: string; headHash: string; at: string; prevHash: string; keyId: string }): string {
  return canonical({ format: 'hutong.audit.checkpoint.v1', seq: cp.seq, chainSeq: cp.chainSeq, headHash: cp.headHash, at: cp.at, prevHash: cp.prevHash, keyId: cp.keyId });
}

interface CheckpointRow {
  seq: bigint;
  chain_seq: bigint;
  head_hash: string;
  at: Date;
  prev_hash: string;
  hash: string;
  key_id: string;
  signature: string;
}

describe.each(engines)('the signed audit trail on %s', (engine) => {
  const clock = createFakeClock();
  let t: TestHub;
  let db: Db;
  const operator = () => t.api('operator');
  const verifyTrail = async (body: object = {}) => {
    const res = await operator().post('/v1/operator/audit/verify', body);
    expect(res.status).toBe(200);
    return res.body;
  };
  const count = async (sql: string) => Number((await db.query<{ n: bigint }>(sql))[0]?.n ?? -1n);
  const checkpoints = () => db.query<CheckpointRow>('select * from audit_checkpoints order by seq');
  const headSeq = async () => BigInt((await db.query<{ n: bigint | null }>('select max(chain_seq) as n from audit_log'))[0]?.n ?? 0n);
  let customerNo = 0;
  /** A few audited actions: customers created at a wallet. */
  const activity = async (n: number) => {
    for (let i = 0; i < n; i++) {
      customerNo += 1;
      const res = await t.api('wallet-a').post('/v1/customers', { externalId: `audit-${customerNo}`, name: `Audit ${customerNo}` });
      expect(res.status).toBe(201);
    }
  };
  const restore = async () => {
    await db.query('delete from audit_log');
    await db.query('insert into audit_log select * from audit_log_pristine');
    await db.query('delete from audit_checkpoints');
    await db.query('insert into audit_checkpoints select * from audit_checkpoints_pristine');
  };

  beforeAll(async () => {
    t = await startTestHub(engine, { clock });
    db = t.hub.db;
    // Three chainer runs with activity between them: checkpoints 1–3, each covering more records.
    for (const n of [0, 4, 5]) {
      await activity(n);
      clock.advance(1_000);
      await t.hub.audit.chain();
    }
    await db.query('create table audit_log_pristine as select * from audit_log');
    await db.query('create table audit_checkpoints_pristine as select * from audit_checkpoints');
  });
  afterEach(restore);
  afterAll(async () => {
    await t?.close();
  });

  it('an untampered trail verifies: every record, and every checkpoint signed, linked and matching the chain', async () => {
    const cps = await checkpoints();
    expect(cps.map((c) => c.seq)).toEqual([1n, 2n, 3n]);
    expect(cps[1]!.chain_seq - cps[0]!.chain_seq).toBe(4n);
    expect(cps[2]!.chain_seq).toBe(await headSeq());
    const report = await verifyTrail();
    expect(report).toMatchObject({ ok: true, checked: Number(await headSeq()), checkpoints: 3, unchained: 0, latestCheckpoint: { seq: '3', chainSeq: String(await headSeq()) } });
    const [head] = await db.query<{ hash: string }>('select hash from audit_log where chain_seq = $1', [String(await headSeq())]);
    expect(report.headHash).toBe(head!.hash);
    expect(report.problem).toBeUndefined();
    // As before checkpoints: a POST with no body at all is a plain verification.
    const bare = await operator().raw({ method: 'POST', url: '/v1/operator/audit/verify' });
    expect(bare.status).toBe(200);
    expect(bare.body).toMatchObject({ ok: true, checkpoints: 3 });
  });

  it('checkpoints can be checked by anyone with the exported public key (PEM and JWK), from their documented payload', async () => {
    const key = await operator().get('/v1/operator/audit/public-key');
    expect(key.status).toBe(200);
    expect(key.body).toMatchObject({ algorithm: 'Ed25519', jwk: { kty: 'OKP', crv: 'Ed25519', kid: key.body.keyId } });
    const fromPem = createPublicKey(key.body.pem);
    const fromJwk = createPublicKey({ key: key.body.jwk, format: 'jwk' });
    const page = await operator().get('/v1/operator/audit/checkpoints?limit=2');
    expect(page.status).toBe(200);
    expect(page.body.items.map((c: { seq: string }) => c.seq)).toEqual(['3', '2']);
    const rest = await operator().get(`/v1/operator/audit/checkpoints?limit=2&cursor=${page.body.nextCursor}`);
    expect(rest.body.items.map((c: { seq: string }) => c.seq)).toEqual(['1']);
    expect(rest.body.nextCursor).toBeNull();
    for (const cp of [...page.body.items, ...rest.body.items]) {
      const payload = Buffer.from(checkpointPayload(cp));
      expect(createHash('sha256').update(payload).digest('hex')).toBe(cp.hash);
      expect(verify(null, payload, fromPem, Buffer.from(cp.signature, 'base64url'))).toBe(true);
      expect(verify(null, payload, fromJwk, Buffer.from(cp.signature, 'base64url'))).toBe(true);
      // A changed field no longer verifies.
      expect(verify(null, Buffer.from(checkpointPayload({ ...cp, chainSeq: String(BigInt(cp.chainSeq) + 1n) })), fromPem, Buffer.from(cp.signature, 'base64url'))).toBe(false);
    }
    const latest = await operator().get('/v1/operator/audit/checkpoints/latest');
    expect(latest.status).toBe(200);
    expect(latest.body).toMatchObject({ seq: '3', hash: page.body.items[0].hash, publicKey: key.body.pem });
    expect((await operator().get('/v1/operator/audit/checkpoints?cursor=x')).status).toBe(400);
    // A number that is no checkpoint's is no cursor of this list either (it would answer the checkpoints below it).
    const unknown = await operator().get('/v1/operator/audit/checkpoints?cursor=99');
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('invalid_page');
    // Operator routes: a participant's token is refused.
    for (const url of ['/v1/operator/audit/checkpoints', '/v1/operator/audit/checkpoints/latest', '/v1/operator/audit/public-key']) {
      expect((await t.api('wallet-a').get(url)).status).toBe(401);
    }
  });

  it('the signing key is a vault secret wrapped by the KEK, and every hub process on the database uses the same one', async () => {
    const keys = await db.query<{ purpose: string; kek_id: string; wrapped: string }>(`select purpose, kek_id, wrapped from data_keys where purpose = 'audit_signing'`);
    expect(keys).toHaveLength(1);
    const second = await createHub(t.hub.config, { db, clock, logger: createLogger({ level: 'silent' }), keys: fileKeySource(keyFilePath(t.hub.config.keyDir)) });
    try {
      expect(await second.audit.publicKey()).toEqual(await t.hub.audit.publicKey());
      expect(await second.audit.verify()).toMatchObject({ ok: true, checkpoints: 3 });
      // The second process signs the next checkpoint; the first verifies it.
      await activity(1);
      await second.audit.chain();
      expect(await t.hub.audit.verify()).toMatchObject({ ok: true, checkpoints: 4 });
    } finally {
      await second.close();
    }
  });

  it('with the signing key row deleted, a new process makes a key of its own: the checkpoints no longer verify, and it signs none', async () => {
    const [saved] = await db.query<Record<string, unknown>>(`select * from data_keys where purpose = 'audit_signing'`);
    await db.query(`delete from data_keys where purpose = 'audit_signing'`);
    const other = await createHub(t.hub.config, { db, clock, logger: createLogger({ level: 'silent' }), keys: fileKeySource(keyFilePath(t.hub.config.keyDir)) });
    try {
      expect((await other.audit.publicKey()).keyId).not.toBe((await t.hub.audit.publicKey()).keyId);
      expect(await other.audit.verify()).toMatchObject({ ok: false, checkpoints: 0, problem: { code: 'checkpoint_signature_invalid', checkpointSeq: '1', reason: expect.stringContaining('not this hub') } });
      await activity(1);
      clock.advance(IDLE_MS);
      expect(await other.audit.chain()).toBe(0);
      expect(await checkpoints()).toHaveLength(3);
    } finally {
      await other.close();
      await db.query(`delete from data_keys where purpose = 'audit_signing'`);
      await db.query('insert into data_keys (id, purpose, kek_id, wrapped, created_at, retired_at) values ($1, $2, $3, $4, $5, $6)', [saved!.id, saved!.purpose, saved!.kek_id, saved!.wrapped, saved!.created_at, saved!.retired_at]);
    }
  });

  it('two processes creating the signing key at once on a fresh database end up with the same key', async () => {
    const fresh = await openTestDb(engine);
    try {
      const keys = fileKeySource(keyFilePath(t.hub.config.keyDir));
      const vaults = [0, 1, 2].map(() => createVault({ db: fresh.db, clock, keys }));
      const seeds = await Promise.all(vaults.map((v) => v.secret('audit_signing')));
      expect(new Set(seeds.map((s) => s.toString('hex'))).size).toBe(1);
      expect(await fresh.db.query(`select id from data_keys where purpose = 'audit_signing'`)).toHaveLength(1);
    } finally {
      await fresh.drop();
    }
  });

  it('the chainer signs after every run that chained something, and at least every 5 minutes when idle', async () => {
    // Start from a checkpoint signed now (earlier cases moved the clock).
    clock.advance(IDLE_MS);
    await t.hub.audit.chain();
    const before = await checkpoints();
    expect(before.at(-1)!.at.getTime()).toBe(clock.nowMs());
    await t.hub.audit.chain();
    clock.advance(IDLE_MS - 1_000);
    await t.hub.audit.chain();
    expect(await checkpoints()).toHaveLength(before.length);
    clock.advance(1_000);
    await t.hub.audit.chain();
    const idle = await checkpoints();
    expect(idle).toHaveLength(before.length + 1);
    const [last, previous] = [idle.at(-1)!, idle.at(-2)!];
    expect(last).toMatchObject({ seq: previous.seq + 1n, chain_seq: previous.chain_seq, head_hash: previous.head_hash, prev_hash: previous.hash });
    expect(last.at.getTime()).toBe(clock.nowMs());
    await activity(2);
    await t.hub.audit.chain();
    const after = await checkpoints();
    expect(after).toHaveLength(idle.length + 1);
    expect(after.at(-1)!.chain_seq).toBe(last.chain_seq + 2n);
    expect(await verifyTrail()).toMatchObject({ ok: true, checkpoints: after.length });
  });

  it('a record altered: its hash no longer matches, at that record', async () => {
    await db.query(`update audit_log set details = '{"kycLevel": 3}'::jsonb where chain_seq = 5`);
    const report = await verifyTrail();
    expect(report).toMatchObject({ ok: false, checked: 4, problem: { code: 'record_altered', chainSeq: '5' }, brokenAt: { chainSeq: '5', reason: expect.stringContaining('altered') } });
  });

  it('a record deleted from the middle: the gap in chain_seq, naming the missing record', async () => {
    await db.query('delete from audit_log where chain_seq = 7');
    const report = await verifyTrail();
    expect(report).toMatchObject({ ok: false, checked: 6, problem: { code: 'record_missing', chainSeq: '7', reason: expect.stringContaining('record 7 is missing') }, brokenAt: { chainSeq: '8' } });
  });

  it('two records reordered (chain_seq swapped): the record chained at 5 is found at 6', async () => {
    const [fifth] = await db.query<{ id: bigint }>('select id from audit_log where chain_seq = 5');
    await db.query('update audit_log set chain_seq = -5 where chain_seq = 5');
    await db.query('update audit_log set chain_seq = 5 where chain_seq = 6');
    await db.query('update audit_log set chain_seq = 6 where chain_seq = -5');
    const report = await verifyTrail();
    expect(report).toMatchObject({ ok: false, checked: 4, problem: { code: 'records_reordered', chainSeq: '5' }, brokenAt: { chainSeq: '5' } });
    expect(report.problem.reason).toContain(`record id ${fifth!.id} was chained at position 5 but now sits at 6`);
  });

  it('the newest records deleted: the newest checkpoint covers more records than the chain holds; the chainer then signs nothing', async () => {
    const head = await headSeq();
    await db.query('delete from audit_log where chain_seq > $1', [String(head - 3n)]);
    const expected = { ok: false, checked: Number(head - 3n), problem: { code: 'records_truncated', chainSeq: String(head - 2n), checkpointSeq: '3' } };
    expect(await verifyTrail()).toMatchObject(expected);
    // New activity is recorded but not chained over the truncated end, and no checkpoint vouches for it.
    await activity(2);
    clock.advance(IDLE_MS);
    expect(await t.hub.audit.chain()).toBe(0);
    expect(await checkpoints()).toHaveLength(3);
    expect(await count('select count(*) as n from audit_log where chain_seq is null')).toBe(2);
    const again = await verifyTrail();
    expect(again).toMatchObject(expected);
    expect(again.problem.reason).toContain(`records ${head - 2n}–${head} were deleted`);
  });

  it('a record altered and the whole chain recomputed: the chain agrees with itself but not with the signed checkpoints', async () => {
    const cps = await checkpoints();
    await db.query(`update audit_log set details = '{"name": "Someone Else"}'::jsonb where chain_seq = $1`, [String(cps[0]!.chain_seq + 2n)]);
    await rehashWholeChain(db);
    const report = await verifyTrail();
    // Every record matches its recomputed hash; checkpoint 2, the first covering the altered record, does not match.
    expect(report).toMatchObject({ ok: false, checked: Number(cps[1]!.chain_seq), checkpoints: 1, problem: { code: 'chain_rewritten', chainSeq: String(cps[1]!.chain_seq), checkpointSeq: '2' } });
    expect(report.problem.reason).toContain(`a record among ${cps[0]!.chain_seq + 1n}–${cps[1]!.chain_seq} was changed and the chain recomputed`);
    // The chainer does not sign the recomputed chain, even when it moves on or time passes.
    await activity(1);
    clock.advance(IDLE_MS);
    expect(await t.hub.audit.chain()).toBe(0);
    expect(await checkpoints()).toHaveLength(3);
  });

  it('a forged checkpoint: a signature that does not verify under the hub key, on a new row or on an existing one', async () => {
    const attacker = generateKeyPairSync('ed25519');
    const [last] = await db.query<CheckpointRow>('select * from audit_checkpoints order by seq desc limit 1');
    const forged = { seq: String(last!.seq + 1n), chainSeq: String(last!.chain_seq), headHash: last!.head_hash, at: new Date(clock.nowMs() + 1_000).toISOString(), prevHash: last!.hash, keyId: last!.key_id };
    const payload = checkpointPayload(forged);
    await db.query('insert into audit_checkpoints (seq, chain_seq, head_hash, at, prev_hash, hash, key_id, signature) values ($1, $2, $3, $4, $5, $6, $7, $8)', [
      forged.seq,
      forged.chainSeq,
      forged.headHash,
      forged.at,
      forged.prevHash,
      createHash('sha256').update(payload).digest('hex'),
      forged.keyId,
      sign(null, Buffer.from(payload), attacker.privateKey).toString('base64url'),
    ]);
    expect(await verifyTrail()).toMatchObject({ ok: false, checkpoints: 3, problem: { code: 'checkpoint_signature_invalid', checkpointSeq: '4', reason: expect.stringContaining('forged') } });

    await restore();
    const resigned = checkpointPayload({ seq: '2', chainSeq: '0', headHash: GENESIS, at: '2020-01-01T00:00:00.000Z', prevHash: GENESIS, keyId: last!.key_id });
    await db.query('update audit_checkpoints set signature = $1 where seq = 2', [sign(null, Buffer.from(resigned), attacker.privateKey).toString('base64url')]);
    expect(await verifyTrail()).toMatchObject({ ok: false, checkpoints: 1, problem: { code: 'checkpoint_signature_invalid', checkpointSeq: '2' } });
  });

  it('a checkpoint deleted or altered: the gap or the hash mismatch in the checkpoints own chain', async () => {
    await db.query('delete from audit_checkpoints where seq = 2');
    expect(await verifyTrail()).toMatchObject({ ok: false, checkpoints: 1, problem: { code: 'checkpoint_missing', checkpointSeq: '2', reason: expect.stringContaining('checkpoint 2 is missing') } });
    await restore();
    await db.query('delete from audit_checkpoints where seq = 1');
    expect(await verifyTrail()).toMatchObject({ ok: false, checkpoints: 0, problem: { code: 'checkpoint_missing', checkpointSeq: '1' } });
    await restore();
    await db.query('update audit_checkpoints set chain_seq = chain_seq - 1 where seq = 3');
    expect(await verifyTrail()).toMatchObject({ ok: false, checkpoints: 2, problem: { code: 'checkpoint_altered', checkpointSeq: '3' } });
  });

  it('the newest records and checkpoints deleted together: the database agrees with itself, only an exported checkpoint shows it', async () => {
    const exported = (await operator().get('/v1/operator/audit/checkpoints/latest')).body;
    expect(exported).toMatchObject({ format: 'hutong.audit.checkpoint.v1', seq: '3' });
    expect(await verifyTrail({ against: exported })).toMatchObject({ ok: true, against: { seq: '3', chainSeq: exported.chainSeq } });
    const cps = await checkpoints();
    await db.query('delete from audit_log where chain_seq > $1', [String(cps[1]!.chain_seq)]);
    // The newest checkpoints: 3, and any the chainer signed since (the verify above runs it).
    await db.query('delete from audit_checkpoints where seq >= 3');
    expect(await t.hub.audit.verify()).toMatchObject({ ok: true, checkpoints: 2 });
    const truncated = { ok: false, problem: { code: 'records_truncated', checkpointSeq: '3', chainSeq: String(cps[1]!.chain_seq + 1n) } };
    const report = await t.hub.audit.verify({ against: exported });
    expect(report).toMatchObject(truncated);
    expect(report.ok === false && report.problem.reason).toBe(
      `the exported checkpoint 3 (signed at ${exported.at}) covers ${exported.chainSeq} records but the chain holds ${cps[1]!.chain_seq}: ` +
        `records ${cps[1]!.chain_seq + 1n}–${exported.chainSeq} were deleted, and checkpoint 3 was deleted too`,
    );
    // Through the API (which runs the chainer first: it may sign the shorter chain as checkpoint 3 meanwhile).
    expect(await verifyTrail()).toMatchObject({ ok: true });
    expect(await verifyTrail({ against: exported })).toMatchObject(truncated);
  });

  it('every checkpoint deleted and the chain recomputed after an alteration: the chainer signs it anew, only an exported checkpoint shows it', async () => {
    const exported = (await operator().get('/v1/operator/audit/checkpoints/latest')).body;
    await db.query(`update audit_log set details = '{"name": "Someone Else"}'::jsonb where chain_seq = 3`);
    await rehashWholeChain(db);
    await db.query('delete from audit_checkpoints');
    clock.advance(1_000);
    await t.hub.audit.chain();
    // Nothing in the database contradicts the new history: the limit of what a database can prove about itself.
    expect(await verifyTrail()).toMatchObject({ ok: true, checkpoints: 1 });
    expect(await verifyTrail({ against: exported })).toMatchObject({
      ok: false,
      problem: { code: 'chain_rewritten', chainSeq: exported.chainSeq, checkpointSeq: exported.seq, reason: expect.stringContaining('the exported checkpoint 3') },
    });
  });

  it('the newest checkpoint deleted and signed again over the same records: the exported one is no longer in the database', async () => {
    const exported = (await operator().get('/v1/operator/audit/checkpoints/latest')).body;
    await db.query('delete from audit_checkpoints where seq = 3');
    expect(await t.hub.audit.verify({ against: exported })).toMatchObject({ ok: false, problem: { code: 'checkpoint_missing', checkpointSeq: '3' } });
    clock.advance(1_000);
    await t.hub.audit.chain();
    expect(await t.hub.audit.verify()).toMatchObject({ ok: true, checkpoints: 3 });
    expect(await verifyTrail({ against: exported })).toMatchObject({ ok: false, problem: { code: 'external_checkpoint_mismatch', checkpointSeq: '3' } });
  });

  it('an exported checkpoint that was altered, or signed by another key, is refused as evidence', async () => {
    const exported = (await operator().get('/v1/operator/audit/checkpoints/latest')).body;
    const altered = { ...exported, chainSeq: String(BigInt(exported.chainSeq) + 10n) };
    expect(await verifyTrail({ against: altered })).toMatchObject({ ok: false, problem: { code: 'external_checkpoint_invalid', reason: expect.stringContaining('altered') } });
    const other = generateKeyPairSync('ed25519');
    const foreign = { ...exported, publicKey: other.publicKey.export({ format: 'pem', type: 'spki' }).toString() };
    expect(await verifyTrail({ against: foreign })).toMatchObject({ ok: false, problem: { code: 'external_checkpoint_invalid', reason: expect.stringContaining('another key') } });
    const payload = checkpointPayload(exported);
    const resigned = { ...exported, publicKey: undefined, signature: sign(null, Buffer.from(payload), other.privateKey).toString('base64url') };
    expect(await verifyTrail({ against: resigned })).toMatchObject({ ok: false, problem: { code: 'external_checkpoint_invalid' } });
    // Not a checkpoint at all: a 400, like any request that does not match its schema.
    expect((await operator().post('/v1/operator/audit/verify', { against: { ...exported, extra: 1 } })).status).toBe(400);
    expect((await operator().post('/v1/operator/audit/verify', { against: { ...exported, headHash: 'x' } })).status).toBe(400);
  });
});

describe.each(engines)('hutong audit checkpoint / verify --against on %s', (engine) => {
  it('exports the newest checkpoint; after the newest records and checkpoints are deleted, plain verify passes but --against fails naming the truncation', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-audit-cli-'));
    const scratch = engine === 'postgres' ? await createScratchPostgres() : undefined;
    const env = { ...process.env, HUTONG_DATA_DIR: dataDir, DATABASE_URL: scratch?.url ?? '', HUTONG_LOG_LEVEL: 'silent' };
    const cli = async (...args: string[]) => {
      try {
        const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env, timeout: 60_000 });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    const openDb = async () => (engine === 'postgres' ? openPostgres({ url: scratch!.url }) : openPglite(join(dataDir, 'pglite')));
    try {
      // First hub run: the demo network (checkpoint 1 when the hub closes); second run: more records (checkpoint 2).
      const first = await createHub(loadConfig(env), { logger: createLogger({ level: 'silent' }) });
      await seedDemoNetwork(first);
      await first.close();
      const second = await createHub(loadConfig(env), { logger: createLogger({ level: 'silent' }) });
      for (let i = 0; i < 3; i++) await second.audit.record(second.db, { actor: { type: 'operator' }, action: 'test.note', objectType: 'note', objectId: `n${i}`, details: { i } });
      await second.close();

      const exported = await cli('audit', 'checkpoint');
      expect(exported.code).toBe(0);
      const checkpoint = JSON.parse(exported.stdout);
      expect(checkpoint).toMatchObject({ format: 'hutong.audit.checkpoint.v1', seq: '2', publicKey: expect.stringContaining('BEGIN PUBLIC KEY') });
      const file = join(dataDir, 'kept-elsewhere.json');
      writeFileSync(file, exported.stdout);

      const db = await openDb();
      const [cp1] = await db.query<{ chain_seq: bigint }>('select chain_seq from audit_checkpoints where seq = 1');
      await db.query('delete from audit_log where chain_seq > $1', [String(cp1!.chain_seq)]);
      await db.query('delete from audit_checkpoints where seq > 1');
      await db.close();

      const plain = await cli('audit', 'verify');
      expect(plain.code).toBe(0);
      expect(JSON.parse(plain.stdout)).toMatchObject({ ok: true });
      const caught = await cli('audit', 'verify', `--against=${file}`);
      expect(caught.code).toBe(1);
      expect(JSON.parse(caught.stdout)).toMatchObject({ ok: false, problem: { code: 'records_truncated', checkpointSeq: '2', chainSeq: String(cp1!.chain_seq + 1n) } });
      expect(caught.stderr).toContain('BROKEN at checkpoint 2');

      const notACheckpoint = join(dataDir, 'other.json');
      writeFileSync(notACheckpoint, JSON.stringify({ hello: 'world' }));
      const refused = await cli('audit', 'verify', '--against', notACheckpoint);
      expect(refused.code).toBe(64);
      expect(refused.stderr).toContain('is not an exported audit checkpoint');
      expect((await cli('audit', 'verify', '--against')).code).toBe(64);
    } finally {
      await scratch?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
    // Each CLI run starts a process that compiles the sources and opens the database: slow on a loaded machine.
  }, 300_000);
});

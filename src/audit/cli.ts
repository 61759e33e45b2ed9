import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import type { CliIo, WithDb } from '../cli/index.ts';
import { systemClock } from '../platform/clock.ts';
import type { Db } from '../platform/db.ts';
import type { HubConfig } from '../platform/config.ts';
import { migrate } from '../platform/migrate.ts';
import { createVault, defaultKeySource } from '../platform/vault.ts';
import { AuditCheckpointSchema, checkpointToWire, type AuditCheckpointWire } from './checkpoints.ts';
import { createAuditService, type AuditService, type VerifyResult } from './service.ts';

/** An exported checkpoint is a few hundred bytes: anything much larger is not one. */
const MAX_CHECKPOINT_FILE_BYTES = 16 * 1024;
const PROGRESS_EVERY_RECORDS = 10_000;

/** The audit service as the hub builds it: the checkpoint key comes from the vault, so the KEK must be at hand. */
async function openAudit(db: Db, config: HubConfig): Promise<AuditService> {
  await migrate(db);
  const vault = createVault({ db, clock: systemClock, keys: defaultKeySource(config) });
  return createAuditService({ db, clock: systemClock, vault });
}

function readCheckpointFile(path: string): { ok: true; checkpoint: AuditCheckpointWire } | { ok: false; message: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { ok: false, message: `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (text.length > MAX_CHECKPOINT_FILE_BYTES) return { ok: false, message: `${path} is not an exported audit checkpoint (too large)` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, message: `${path} is not JSON` };
  }
  if (!Value.Check(AuditCheckpointSchema, parsed)) {
    const first = Value.Errors(AuditCheckpointSchema, parsed).First();
    return { ok: false, message: `${path} is not an exported audit checkpoint${first === undefined ? '' : ` (${first.path || '/'}: ${first.message})`}` };
  }
  return { ok: true, checkpoint: parsed };
}

function describeProblem(result: Extract<VerifyResult, { ok: false }>): string {
  const { problem, brokenAt } = result;
  if (brokenAt !== undefined) return `audit chain BROKEN at record ${brokenAt.chainSeq} (id ${brokenAt.id}): ${problem.reason} [${problem.code}]`;
  if (problem.checkpointSeq !== undefined) return `audit chain BROKEN at checkpoint ${problem.checkpointSeq}: ${problem.reason} [${problem.code}]`;
  return `audit chain BROKEN: ${problem.reason} [${problem.code}]`;
}

/** `hutong audit verify [--against <file>]` and `hutong audit checkpoint`; undefined for an unknown subcommand. */
export async function runAuditCommand(args: readonly string[], io: CliIo, withDb: WithDb): Promise<number | undefined> {
  const [subcommand, ...options] = args;
  if (subcommand === 'verify') {
    let againstPath: string | undefined;
    for (let i = 0; i < options.length; i++) {
      const option = options[i] ?? '';
      if (option === '--against' && options[i + 1] !== undefined) againstPath = options[++i];
      else if (option.startsWith('--against=') && option.length > '--against='.length) againstPath = option.slice('--against='.length);
      else {
        io.stderr(`unknown or incomplete option for hutong audit verify: ${option} (usage: hutong audit verify [--against <file>])`);
        return 64;
      }
    }
    let against: AuditCheckpointWire | undefined;
    if (againstPath !== undefined) {
      const file = readCheckpointFile(againstPath);
      if (!file.ok) {
        io.stderr(file.message);
        return 64;
      }
      against = file.checkpoint;
    }
    return withDb(async (db, config) => {
      const audit = await openAudit(db, config);
      const chained = await audit.chain();
      if (chained > 0) io.stderr(`chained ${chained} pending records`);
      let lastReport = 0;
      const result = await audit.verify({
        ...(against !== undefined ? { against } : {}),
        onProgress: (checked) => {
          if (checked - lastReport >= PROGRESS_EVERY_RECORDS) {
            lastReport = checked;
            io.stderr(`verified ${checked} records…`);
          }
        },
      });
      io.stdout(JSON.stringify(result, null, 2));
      if (!result.ok) {
        io.stderr(describeProblem(result));
        return 1;
      }
      const signed = result.latestCheckpoint === null ? 'no signed checkpoint yet' : `latest signed checkpoint ${result.latestCheckpoint.seq} covers ${result.latestCheckpoint.chainSeq}`;
      const external = result.against === undefined ? '' : `; the database still holds what exported checkpoint ${result.against.seq} signed`;
      io.stderr(`audit chain intact: ${result.checked} records, ${result.checkpoints} checkpoints (${signed})${external}`);
      return 0;
    });
  }
  if (subcommand === 'checkpoint') {
    if (options.length > 0) {
      io.stderr('usage: hutong audit checkpoint (prints the newest signed checkpoint as JSON)');
      return 64;
    }
    return withDb(async (db, config) => {
      const audit = await openAudit(db, config);
      // Chain and sign what is pending first, so that the checkpoint printed covers every committed record.
      await audit.chain();
      const latest = await audit.latestCheckpoint();
      if (latest === undefined) {
        io.stderr('no audit checkpoint has been signed yet');
        return 1;
      }
      io.stdout(JSON.stringify(checkpointToWire(latest, await audit.publicKey()), null, 2));
      io.stderr(`checkpoint ${latest.seq} covers ${latest.chainSeq} records; keep it outside the database and check later with hutong audit verify --against <file>`);
      return 0;
    });
  }
  return undefined;
}

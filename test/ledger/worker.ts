/**
 * A separate hub process for the bank and crash tests (node --import tsx test/ledger/worker.ts <mode> <db-url> <data-dir>
 * <spec.json> …): a whole hub (createHub) on the test's database and data directory, whose own clients pay through its
 * API in-process (quote, then confirm under an Idempotency-Key: the effect batcher, transfers.confirmMany, applyInTx).
 *   bank … <durationMs> <clients>: random payments between the bank's customers; prints a JSON summary of the codes.
 *   crash … <durationMs>: payments under load, printing "send <wallet> <quoteId> <key>" before each confirm and
 *     "ack <key> <paymentId>" once the hub answered 201 (the payment is committed by then).
 * Every loop is bounded by time and count.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createHub } from '../../src/main.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { openPostgres } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { confirm, liftAliasLimits, pay, quote, randomPair, walletClient, type BankSpec } from './p2p-bank.ts';

const [mode, url, dataDir, specFile, ...rest] = process.argv.slice(2);
if (url === undefined || dataDir === undefined || specFile === undefined) throw new Error('usage: worker.ts <bank|crash> <db-url> <data-dir> <spec.json> …');
const spec = JSON.parse(readFileSync(specFile, 'utf8')) as BankSpec;
const db = openPostgres({ url, maxConnections: 8 });
const config = loadConfig(
  { HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: url, HUTONG_RATE_LIMIT_PER_S: '1000000', HUTONG_WEBHOOKS: '0' },
  { port: 0, host: '127.0.0.1', operatorToken: 'op_worker' },
);
const hub = await createHub(config, { logger: createLogger({ level: 'silent' }), db });
liftAliasLimits(hub);
const post = walletClient(hub, spec.credentials);
const tag = randomBytes(4).toString('hex');
const MAX_OPS = 1_000_000;
// Up to 15.00 from accounts holding 10.00 on average: many of these are overdraft attempts.
const amount = (): bigint => BigInt(1 + Math.floor(Math.random() * 1500));

if (mode === 'bank') {
  const durationMs = Number(rest[0]);
  const clients = Number(rest[1]);
  const started = Date.now();
  let ops = 0;
  const codes: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() - started < durationMs && ops < MAX_OPS) {
        const n = ops++;
        const [from, to] = randomPair(spec.parties);
        const r = await pay(post, from, to, amount(), `w_${tag}_${n}`);
        codes[r.code] = (codes[r.code] ?? 0) + 1;
      }
    }),
  );
  await hub.close();
  await db.close();
  process.stdout.write(JSON.stringify({ ops, codes }) + '\n');
} else if (mode === 'crash') {
  const durationMs = Number(rest[0]);
  const started = Date.now();
  let ops = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (Date.now() - started < durationMs && ops < MAX_OPS) {
        const key = `c_${tag}_${ops++}`;
        const [from, to] = randomPair(spec.parties);
        const q = await quote(post, from, to, BigInt(1 + Math.floor(Math.random() * 50)));
        if (q.quoteId === undefined) continue;
        process.stdout.write(`send ${from.wallet} ${q.quoteId} ${key}\n`);
        const r = await confirm(post, from.wallet, q.quoteId, key);
        // Written only after the hub answered 201: the payment is committed by then.
        if (r.paymentId !== undefined) process.stdout.write(`ack ${key} ${r.paymentId}\n`);
      }
    }),
  );
  await hub.close();
  await db.close();
} else {
  throw new Error(`worker: unknown mode ${mode}`);
}

/**
 * A separate ledger process for the bank and crash tests (node --import tsx test/ledger/worker.ts <mode> <db-url> …).
 *   bank <url> <accountCount> <durationMs> <clients>: random transfers between bank accounts; prints a JSON summary.
 *   crash <url> <durationMs>: transfers under load, printing "ack <id>" for each one the ledger acknowledged.
 * Every loop is bounded by time and count.
 */
import { systemClock } from '../../src/platform/clock.ts';
import { openPostgres } from '../../src/platform/db.ts';
import { createLedger } from '../../src/ledger/ledger.ts';
import { randomBytes } from 'node:crypto';

const [mode, url, ...rest] = process.argv.slice(2);
if (url === undefined) throw new Error('usage: worker.ts <bank|crash> <db-url> …');
const db = openPostgres({ url, maxConnections: 4 });
const ledger = createLedger({ db, clock: systemClock });
const tag = randomBytes(4).toString('hex');
const MAX_OPS = 1_000_000;

function bankAccountId(i: number): string {
  return `acc_bank_${String(i).padStart(3, '0')}`;
}

if (mode === 'bank') {
  const accountCount = Number(rest[0]);
  const durationMs = Number(rest[1]);
  const clients = Number(rest[2]);
  const started = Date.now();
  let ops = 0;
  const codes: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() - started < durationMs && ops < MAX_OPS) {
        const n = ops++;
        const from = Math.floor(Math.random() * accountCount);
        const to = (from + 1 + Math.floor(Math.random() * (accountCount - 1))) % accountCount;
        // Up to 1,500 from accounts holding 1,000 on average: many of these are overdraft attempts.
        const [r] = await ledger.submit([{ id: `w_${tag}_${n}`, debitAccountId: bankAccountId(from), creditAccountId: bankAccountId(to), amountMinor: BigInt(1 + Math.floor(Math.random() * 1500)), currency: 'CNY', purpose: 'bank' }]);
        const code = r === undefined ? 'missing' : r.ok ? 'ok' : r.error.code;
        codes[code] = (codes[code] ?? 0) + 1;
      }
    }),
  );
  await ledger.close();
  await db.close();
  process.stdout.write(JSON.stringify({ ops, codes }) + '\n');
} else if (mode === 'crash') {
  const durationMs = Number(rest[0]);
  const started = Date.now();
  let ops = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (Date.now() - started < durationMs && ops < MAX_OPS) {
        const n = ops++;
        const id = `c_${tag}_${n}`;
        const from = Math.floor(Math.random() * 10);
        const to = (from + 1 + Math.floor(Math.random() * 9)) % 10;
        const [r] = await ledger.submit([{ id, debitAccountId: bankAccountId(from), creditAccountId: bankAccountId(to), amountMinor: BigInt(1 + Math.floor(Math.random() * 50)), currency: 'CNY', purpose: 'crash' }]);
        // Written only after the ledger acknowledged: the commit is durable by then.
        if (r?.ok === true) process.stdout.write(`ack ${id}\n`);
      }
    }),
  );
  await ledger.close();
  await db.close();
} else {
  throw new Error(`worker: unknown mode ${mode}`);
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHub } from '../../src/main.ts';
import { defaultKeyDir } from '../../src/platform/config.ts';
import { openPostgres } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createScratchPostgres } from '../../test/support/engines.ts';
import { request } from 'undici';
import { benchHubConfig } from '../hub-process.ts';
import { processMemory } from '../proc.ts';
import { startProductionHub, type ProductionHub } from '../production-hub.ts';
import type { BenchResult } from '../recorder.ts';
import type { Scenario } from './index.ts';

/**
 * settlement: close a window holding N transfers (100,000 then 1,000,000 by default; `--sizes=100000,1000000`) between
 * `--participants=N` (20) participants, and write every participant's camt.053 for it (streamed: each statement is
 * counted, not kept). The window's transfers are seeded with one set-based INSERT (generate_series) into
 * settlement_entries — the rows a payment's commit writes beside its ledger transfer — and ANALYZEd. The window is closed
 * through the settlement service in this process; every participant's camt.053 is then downloaded over HTTP from a hub
 * started as production starts it (`hutong start` on dist/, its own process). Each line gives the close time, the
 * statements' time and bytes, and that hub's resident memory: before any window (`rss_floor_mb`), the most while this
 * size's statements streamed (`rss_mb`), and its peak so far (`peak_rss_mb`): memory must not grow with the window.
 * PostgreSQL only (a scratch database on 127.0.0.1:5432).
 */
function option(args: readonly string[], name: string, fallback: string): string {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : found.slice(name.length + 3);
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
const OPERATOR_TOKEN = 'op_bench_settlement_statements_0123456789';

export const settlementScenario: Scenario = {
  name: 'settlement',
  description: 'close a settlement window of 100k and 1M transfers and stream every participant’s camt.053 (time, resident memory)',
  async *run(args) {
    const sizes = option(args, 'sizes', '100000,1000000').split(',').map(Number);
    const participants = Number(option(args, 'participants', '20'));
    const scratch = await createScratchPostgres();
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-bench-'));
    const db = openPostgres({ url: scratch.url, maxConnections: 4 });
    const hub = await createHub(benchHubConfig({ databaseUrl: scratch.url, dataDir, pool: 4 }), { logger: createLogger({ level: 'silent' }), db });
    let production: ProductionHub | undefined;
    try {
      const now = new Date();
      await db.query(
        `insert into participants (id, kind, name, country, currencies, webhook_secret_sealed, status, created_at, updated_at)
         select 'par_bench_' || g, 'wallet', 'Bench Wallet ' || g, 'CN', '{CNY}', 'sealed', 'active', $1, $1 from generate_series(0, $2 - 1) g`,
        [now, participants],
      );
      // The statements are downloaded from the hub as production runs it (its own process, the compiled build): its
      // resident memory is what is measured, from before the first window (the floor) to each size's peak.
      const statements = await startProductionHub({ databaseUrl: scratch.url, dataDir, operatorToken: OPERATOR_TOKEN, log: (line) => process.stderr.write(`${line}\n`) });
      production = statements;
      const floorRss = processMemory(statements.pid)?.rss ?? Number.NaN;
      for (const size of sizes) {
        const open = await hub.settlement.openWindow(db, 'CNY');
        const seedStart = performance.now();
        // Payer g mod P pays payee (g·7 + 1 + g mod (P−1)) … never itself: payee = (payer + 1 + g mod (P − 1)) mod P.
        // In chunks of 100,000 (each statement within the connection's statement timeout on a busy machine).
        for (let from = 1; from <= size; from += 100_000) await db.query(
          `insert into settlement_entries (transfer_id, window_id, currency, payer_participant_id, payee_participant_id, amount_minor, payment_id, created_at)
           select 'pay_' || $1 || '_' || lpad(g::text, 12, '0') || ':pos', $1, 'CNY', 'par_bench_' || (g % $3), 'par_bench_' || (((g % $3) + 1 + (g / $3) % ($3 - 1)) % $3),
                  1 + (g::int8 * 7919) % 100000, 'pay_' || $1 || '_' || lpad(g::text, 12, '0'), $4::timestamptz + (g || ' milliseconds')::interval
             from generate_series($5::int8, $2::int8) g`,
          [open.id, Math.min(size, from + 99_999), participants, now, from],
        );
        await db.query('analyze settlement_entries');
        const seedMs = performance.now() - seedStart;

        const closeStart = performance.now();
        const closed = await db.transaction((tx) => hub.settlement.close(tx, { type: 'operator' }, 'CNY'));
        const closeMs = performance.now() - closeStart;
        if (!closed.ok) throw new Error(`close: ${closed.error.code}`);
        const sum = closed.value.netPositions.reduce((s, n) => s + n.netMinor, 0n);
        if (sum !== 0n) throw new Error(`nets sum to ${sum}`);

        const camtStart = performance.now();
        let bytes = 0;
        let entries = 0;
        let rssMax = 0;
        const sample = () => {
          const m = processMemory(statements.pid);
          if (m !== undefined && m.rss > rssMax) rssMax = m.rss;
        };
        const sampler = setInterval(sample, 50);
        try {
          for (const n of closed.value.netPositions) {
            const answer = await request(`${statements.base}/v1/operator/settlement/windows/${closed.value.window.id}/participants/${n.participantId}/camt053`, {
              headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
            });
            if (answer.statusCode !== 200) throw new Error(`camt.053 download: ${answer.statusCode} ${await answer.body.text()}`);
            // Entries counted across chunk boundaries (an element may be cut between two chunks).
            let carry = '';
            for await (const chunk of answer.body) {
              const buffer = chunk as Buffer;
              bytes += buffer.length;
              const text = carry + buffer.toString('latin1');
              for (let at = text.indexOf('<Ntry>'); at >= 0; at = text.indexOf('<Ntry>', at + 6)) entries += 1;
              carry = text.slice(-5);
            }
          }
        } finally {
          clearInterval(sampler);
        }
        sample();
        const camtMs = performance.now() - camtStart;
        if (entries !== size * 2) throw new Error(`statements hold ${entries} entries, expected ${size * 2} (each transfer on both sides)`);
        const result: BenchResult = {
          scenario: 'settlement',
          engine: 'postgres',
          ops_per_s: Math.round(size / ((closeMs + camtMs) / 1000)),
          p50_ms: Number.NaN,
          p99_ms: Number.NaN,
          transfers: size,
          participants,
          seed_s: Number((seedMs / 1000).toFixed(1)),
          close_s: Number((closeMs / 1000).toFixed(2)),
          camt053_s: Number((camtMs / 1000).toFixed(1)),
          camt053_mb: mb(bytes),
          total_s: Number(((closeMs + camtMs) / 1000).toFixed(1)),
          rss_floor_mb: mb(floorRss),
          rss_mb: mb(rssMax),
          peak_rss_mb: mb(processMemory(statements.pid)?.peak ?? Number.NaN),
        };
        yield result;
      }
    } finally {
      await production?.stop();
      await hub.close();
      await db.close();
      await scratch.drop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    }
  },
};

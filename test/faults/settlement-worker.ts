/**
 * A hub process for the settlement crash test (node --import tsx test/faults/settlement-worker.ts <db-url> <data-dir>
 * <currency> <stage>): a whole hub (createHub) on the test's database closes the currency's open window (COMMIT) and
 * prints "closed <window id>"; with stage "posting" it then records the settlement bank's confirmation inside a
 * transaction, prints "posted <window id>" with the ledger work done but not committed, and waits there. The test kills
 * it with SIGKILL on either line: between the close and the posting, or in the middle of the posting.
 */
import { createHub } from '../../src/main.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { openPostgres } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';

const [url, dataDir, currency, stage] = process.argv.slice(2);
if (url === undefined || dataDir === undefined || currency === undefined || (stage !== 'closed' && stage !== 'posting')) throw new Error('usage: settlement-worker.ts <db-url> <data-dir> <currency> closed|posting');
const db = openPostgres({ url, maxConnections: 4 });
const config = loadConfig({ HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: url, HUTONG_WEBHOOKS: '0' }, { operatorToken: 'op_settlement_worker' });
const hub = await createHub(config, { logger: createLogger({ level: 'silent' }), db });
const actor = { type: 'operator' } as const;
const closed = await db.transaction((tx) => hub.settlement.close(tx, actor, currency));
if (!closed.ok) throw new Error(`close: ${closed.error.code}`);
const windowId = closed.value.window.id;
process.stdout.write(`closed ${windowId}\n`);
if (stage === 'posting') {
  await db.transaction(async (tx) => {
    const r = await hub.settlement.recordSettlement(tx, actor, { windowId, reference: 'SBK-CRASH' });
    if (!r.ok) throw new Error(`record: ${r.error.code}`);
    process.stdout.write(`posted ${windowId}\n`);
    // Held open until the kill: the posting's ledger work is done, its COMMIT never comes.
    await new Promise(() => undefined);
  });
}
await new Promise(() => undefined);

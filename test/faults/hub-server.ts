/**
 * One hub process behind the balancer test's HAProxy (node --import tsx test/faults/hub-server.ts <db-url> <data-dir>
 * <port>): a whole hub (createHub) on the test's database and data directory (hence the same key file and vault:
 * tokens issued by one hub verify on every hub), listening on its port. Prints "listening <base>" once it serves.
 * The test kills it with SIGKILL and starts it again on the same port. A fourth argument `background` also runs the
 * hub's background jobs (audit chaining, expiries, sweeps), as every production hub does.
 */
import { createHub } from '../../src/main.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { openPostgres } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { liftAliasLimits } from '../ledger/p2p-bank.ts';

const [url, dataDir, portText, mode] = process.argv.slice(2);
if (url === undefined || dataDir === undefined || portText === undefined) throw new Error('usage: hub-server.ts <db-url> <data-dir> <port>');
const db = openPostgres({ url, maxConnections: 6 });
const config = loadConfig(
  { HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: url, HUTONG_RATE_LIMIT_PER_S: '1000000', HUTONG_WEBHOOKS: '0' },
  { port: Number(portText), host: '127.0.0.1', operatorToken: 'op_balancer' },
);
const hub = await createHub(config, { logger: createLogger({ level: 'silent' }), db });
liftAliasLimits(hub);
if (mode === 'background') hub.startBackground();
const base = await hub.listen();
process.stdout.write(`listening ${base}\n`);
process.once('SIGTERM', () => void hub.close().finally(() => process.exit(0)));

import { loadConfig } from './platform/config.ts';
import { openDb } from './platform/db.ts';
import { migrate } from './platform/migrate.ts';
import { createAuditService } from './audit/service.ts';
import { createVault, defaultKeySource } from './platform/vault.ts';
import { systemClock } from './platform/clock.ts';
import { join } from 'node:path';

const USAGE = `hutong — the Hutong (互通) interoperability hub

Usage:
  hutong start [--demo]        run the hub (PGlite in ./data, or DATABASE_URL=postgres://…); --demo (what npm start
                               runs) seeds the demo network and enables the demo helpers on loopback
  hutong migrate               apply database migrations and exit
  hutong audit verify          recompute the audit hash chain; exit 1 and name the first broken record if altered
  hutong keys rotate           re-wrap every data key under a new key-encrypting key
  hutong qr decode <payload>   decode an EMV QR payload (merchant- or consumer-presented) to JSON
  hutong qr encode [options]   encode a merchant-presented EMV QR payload (hutong qr encode --help)
  hutong demo <scenario>       run a demo story on a fresh embedded hub (hutong demo --list)

Environment: PORT (8080), HUTONG_DATA_DIR (./data), HUTONG_KEY_DIR (<data dir>-keys), DATABASE_URL,
             HUTONG_OPERATOR_TOKEN, HUTONG_KEK, HUTONG_LOG_LEVEL.`;

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  stderr: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

async function withDb<T>(fn: (db: Awaited<ReturnType<typeof openDb>>, config: ReturnType<typeof loadConfig>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: join(config.dataDir, 'pglite'), maxConnections: 4 });
  try {
    return await fn(db, config);
  } finally {
    await db.close();
  }
}

export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const { startCommand } = await import('./start.ts');
      return startCommand(io, rest);
    }
    case 'migrate':
      return withDb(async (db) => {
        const applied = await migrate(db, (version) => io.stderr(`applied ${version}`));
        io.stdout(JSON.stringify({ engine: db.engine, applied }));
        return 0;
      });
    case 'audit': {
      if (rest[0] !== 'verify') break;
      return withDb(async (db) => {
        await migrate(db);
        const audit = createAuditService({ db, clock: systemClock });
        const chained = await audit.chain();
        if (chained > 0) io.stderr(`chained ${chained} pending records`);
        let lastReport = 0;
        const result = await audit.verify((checked) => {
          if (checked - lastReport >= 10_000) {
            lastReport = checked;
            io.stderr(`verified ${checked} records…`);
          }
        });
        io.stdout(JSON.stringify(result, null, 2));
        if (!result.ok) io.stderr(`audit chain BROKEN at record ${result.brokenAt.chainSeq} (id ${result.brokenAt.id}): ${result.brokenAt.reason}`);
        else io.stderr(`audit chain intact: ${result.checked} records`);
        return result.ok ? 0 : 1;
      });
    }
    case 'keys': {
      if (rest[0] !== 'rotate') break;
      return withDb(async (db, config) => {
        await migrate(db);
        const vault = createVault({ db, clock: systemClock, keys: defaultKeySource(config, (_level, message) => io.stderr(message)) });
        const result = await vault.rotate((done, total) => io.stderr(`re-wrapped ${done}/${total} data keys`));
        io.stdout(JSON.stringify(result));
        return 0;
      });
    }
    case 'qr': {
      const { runQrCommand } = await import('./emv/qr-cli.ts');
      return runQrCommand([...rest], io);
    }
    case 'demo': {
      const { runDemo } = await import('./demo/run.ts');
      return runDemo([...rest], io);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout(USAGE);
      return command === undefined ? 64 : 0;
    default:
      break;
  }
  io.stderr(`unknown command: ${argv.join(' ')}\n\n${USAGE}`);
  return 64;
}


import { loadConfig } from '../platform/config.ts';
import { openDb } from '../platform/db.ts';
import { migrate } from '../platform/migrate.ts';
import { createVault, defaultKeySource } from '../platform/vault.ts';
import { StartupError } from '../platform/startup-error.ts';
import { systemClock } from '../platform/clock.ts';
import { join } from 'node:path';

/** Each command's lines in the usage text, by command name (what `hutong <command> --help` prints). */
const COMMAND_USAGE: Readonly<Record<string, string>> = {
  start: `  hutong start [--demo]        run the hub (PGlite in ./data, or DATABASE_URL=postgres://…); --demo (what npm start
                               runs) seeds the demo network and enables the demo helpers on loopback`,
  token: `  hutong token <participant>   an access token for a demo participant (wallet-a, bank-a…) from the demo hub on this
                               machine (at PORT, 8080 unless set: PORT=8090 hutong token wallet-a for a hub on 8090)`,
  migrate: '  hutong migrate               apply database migrations and exit',
  audit: `  hutong audit verify [--against <file>]
                               recompute the audit hash chain and check its signed checkpoints; exit 1 naming the
                               first problem; --against also checks a checkpoint exported earlier
  hutong audit checkpoint      print the newest signed audit checkpoint as JSON, to keep outside the database`,
  keys: '  hutong keys rotate           re-wrap every data key under a new key-encrypting key',
  qr: `  hutong qr decode <payload>   decode an EMV QR payload (merchant- or consumer-presented) to JSON
  hutong qr encode [options]   encode a merchant-presented EMV QR payload (hutong qr encode --help)`,
  demo: '  hutong demo <scenario>       run a demo story on a fresh embedded hub (hutong demo --list)',
  simulate: `  hutong simulate bank [--port 9100] [--hub URL] [--slow MS|--hang|--down|--refuse reserve:AM04|--duplicate|--crash-after-reserve]
                               serve the demo's connected bank (bank-c) from its own process, with its own books, to
                               try its failure switches (hutong simulate bank --help)`,
  doctor: `  hutong doctor [--json]       check this deployment (database writable, migrations, autovacuum, synchronous standby,
                               clock, key location and key, demo mode, operator credential); exit 1 if a check fails`,
};

const ENVIRONMENT = `Environment: PORT (8080), HUTONG_DATA_DIR (./data), HUTONG_KEY_DIR (<data dir>-keys), DATABASE_URL,
             HUTONG_OPERATOR_TOKEN, HUTONG_KEK, HUTONG_LOG_LEVEL.`;

const USAGE = `hutong — the Hutong (互通) interoperability hub

Usage:
${Object.values(COMMAND_USAGE).join('\n')}

${ENVIRONMENT}`;

const wantsHelp = (args: readonly string[]) => args.includes('--help') || args.includes('-h');

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  stderr: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

export type WithDb = <T>(fn: (db: Awaited<ReturnType<typeof openDb>>, config: ReturnType<typeof loadConfig>) => Promise<T>) => Promise<T>;

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
  try {
    return await runCommand(argv, io);
  } catch (error) {
    // A reason the operator must fix (src/platform/startup-error.ts): one line, no stack trace, a non-zero exit.
    if (!(error instanceof StartupError)) throw error;
    io.stderr(error.message);
    return 1;
  }
}

async function runCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  // Usage, not the command: `hutong start --help` must not start a hub, nor `hutong migrate --help` migrate. qr and
  // simulate have their own, longer help.
  if (command !== undefined && command !== 'qr' && command !== 'simulate' && Object.hasOwn(COMMAND_USAGE, command) && wantsHelp(rest)) {
    io.stdout(`Usage:\n${COMMAND_USAGE[command]}\n\n${ENVIRONMENT}`);
    return 0;
  }
  switch (command) {
    case 'start': {
      const { startCommand } = await import('./start.ts');
      return startCommand(io, rest);
    }
    case 'token': {
      const { tokenCommand } = await import('./start.ts');
      return tokenCommand(io, rest);
    }
    case 'migrate':
      return withDb(async (db) => {
        const applied = await migrate(db, (version) => io.stderr(`applied ${version}`));
        io.stdout(JSON.stringify({ engine: db.engine, applied }));
        return 0;
      });
    case 'audit': {
      const { runAuditCommand } = await import('../audit/index.ts');
      const code = await runAuditCommand(rest, io, withDb);
      if (code !== undefined) return code;
      break;
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
      const { runQrCommand } = await import('../emv/index.ts');
      return runQrCommand([...rest], io);
    }
    case 'doctor': {
      const { runDoctor, formatChecks } = await import('./doctor.ts');
      const checks = await runDoctor(loadConfig());
      io.stdout(rest.includes('--json') ? JSON.stringify({ checks }) : formatChecks(checks));
      return checks.some((c) => c.status === 'fail') ? 1 : 0;
    }
    case 'demo': {
      const { runDemo } = await import('../demo/index.ts');
      return runDemo([...rest], io);
    }
    case 'simulate': {
      const { simulateBankCommand } = await import('../demo/index.ts');
      return simulateBankCommand(io, rest);
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


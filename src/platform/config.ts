import { join, resolve } from 'node:path';

export interface HubConfig {
  readonly port: number;
  readonly host: string;
  /** PostgreSQL connection string; absent means the embedded PGlite engine. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  /** Operator bearer credential; absent means generate one into the data directory (embedded default). */
  readonly operatorToken: string | undefined;
  /** Base64 key-encrypting key; absent means the key file `kek.json` in `keyDir`. */
  readonly kek: string | undefined;
  /**
   * Directory of the key file (HUTONG_KEY_DIR). Default: `<data dir>-keys`, beside the data directory and never in
   * it (a copy of the data must not carry its key), and one per data directory (hubs with data directories side by
   * side, as tests make them, never share or rotate each other's key file).
   */
  readonly keyDir: string;
  readonly logLevel: string;
  readonly bodyLimitBytes: number;
  readonly rateLimitPerS: number;
  readonly accessTokenTtlS: number;
  /**
   * Explicit demo mode (`hutong start --demo`, which `npm start` runs, or HUTONG_DEMO=1): the demo network is seeded,
   * the /demo/v1 helpers answer (on loopback only), and outbound calls may go to http and loopback addresses (demo
   * banks and webhook receivers on this machine). Off, the hub seeds nothing and exposes no shortcut.
   */
  readonly demo: boolean;
  readonly dbMaxConnections: number;
  /**
   * PostgreSQL deadlines (src/platform/db.ts, DbTimeouts): a statement, and a session idle inside a transaction, at
   * most `statementMs` on the server (HUTONG_DB_STATEMENT_TIMEOUT_MS, 15 s); a transaction or statement answers the
   * hub within `transactionMs` whatever its connection does (HUTONG_DB_TRANSACTION_TIMEOUT_MS, 20 s).
   */
  readonly dbTimeouts: { readonly statementMs: number; readonly transactionMs: number };
  readonly webhooks: { readonly enabled: boolean; readonly pollMs: number };
  /**
   * Passkeys (WebAuthn) for step-up: the relying-party id (the reference wallet's host name) and the page origins that
   * may use them. No origins configured: http(s)://<rpId>:<the port the hub listens on>.
   */
  readonly webauthn: { readonly rpId: string; readonly origins: readonly string[] };
}

function int(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`expected a non-negative integer, got ${value}`);
  return parsed;
}

/** The port the hub listens on, and the CLI's commands look for it on, unless PORT says otherwise. */
export const DEFAULT_PORT = 8080;

/** The key directory when HUTONG_KEY_DIR is not set: a sibling of the data directory named after it. */
export const defaultKeyDir = (dataDir: string) => `${resolve(dataDir)}-keys`;

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<HubConfig> = {}): HubConfig {
  const dataDir = overrides.dataDir ?? resolve(env.HUTONG_DATA_DIR ?? join(process.cwd(), 'data'));
  const keyDir = env.HUTONG_KEY_DIR !== undefined && env.HUTONG_KEY_DIR !== '' ? resolve(env.HUTONG_KEY_DIR) : defaultKeyDir(dataDir);
  return {
    port: int(env.PORT ?? env.HUTONG_PORT, DEFAULT_PORT),
    host: env.HUTONG_HOST ?? '127.0.0.1',
    databaseUrl: env.DATABASE_URL === '' ? undefined : env.DATABASE_URL,
    dataDir,
    operatorToken: env.HUTONG_OPERATOR_TOKEN,
    kek: env.HUTONG_KEK,
    keyDir,
    logLevel: env.HUTONG_LOG_LEVEL ?? env.LOG_LEVEL ?? 'info',
    bodyLimitBytes: int(env.HUTONG_BODY_LIMIT_BYTES, 64 * 1024),
    rateLimitPerS: int(env.HUTONG_RATE_LIMIT_PER_S, 2_000),
    accessTokenTtlS: int(env.HUTONG_ACCESS_TOKEN_TTL_S, 300),
    demo: env.HUTONG_DEMO === '1' || env.HUTONG_DEMO === 'true',
    dbMaxConnections: int(env.HUTONG_DB_MAX_CONNECTIONS, 16),
    dbTimeouts: { statementMs: int(env.HUTONG_DB_STATEMENT_TIMEOUT_MS, 15_000), transactionMs: int(env.HUTONG_DB_TRANSACTION_TIMEOUT_MS, 20_000) },
    webhooks: { enabled: env.HUTONG_WEBHOOKS !== '0', pollMs: int(env.HUTONG_WEBHOOK_POLL_MS, 500) },
    webauthn: {
      rpId: env.HUTONG_WEBAUTHN_RP_ID ?? 'localhost',
      origins: (env.HUTONG_WEBAUTHN_ORIGINS ?? '').split(',').map((o) => o.trim()).filter((o) => o !== ''),
    },
    ...overrides,
  };
}

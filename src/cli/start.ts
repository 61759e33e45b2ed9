import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PORT, loadConfig, type HubConfig } from '../platform/config.ts';
import { createHub } from '../main.ts';
import { seedDemoNetwork, type DemoNetwork } from '../demo/index.ts';
import { sandboxBannerLines, seedSandboxCards } from '../demo/index.ts';
import type { CliIo } from './cli.ts';
import { startConnectedBank } from '../demo/index.ts';

/**
 * Where demo mode keeps the demo participants' client credentials: a 0600 file in the data directory, beside the
 * operator credential, so that the banner (and any log that captures it) never prints a secret.
 */
export const demoCredentialsPath = (config: Pick<HubConfig, 'dataDir'>) => join(config.dataDir, 'demo-credentials.json');
const operatorTokenPath = (config: Pick<HubConfig, 'dataDir'>) => join(config.dataDir, 'operator-token');

function writeDemoCredentials(config: HubConfig, demo: DemoNetwork, connected?: { key: string; participantId: string; clientId: string; clientSecret: string }): string {
  const path = demoCredentialsPath(config);
  const body = Object.fromEntries([
    ...demo.participants.map((p) => [p.key, { participantId: p.participantId, kind: p.kind, name: p.name, clientId: p.clientId, clientSecret: p.clientSecret }]),
    ...(connected !== undefined ? [[connected.key, { participantId: connected.participantId, kind: 'issuer', name: 'connected bank', clientId: connected.clientId, clientSecret: connected.clientSecret }]] : []),
  ]);
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/**
 * `hutong start [--demo]`: the hub on its configured engine and a banner that says what to try. In demo mode the demo
 * network is seeded and the demo helpers answer callers on this machine; without it, nothing is seeded or exposed.
 */
export async function startCommand(io: CliIo, args: readonly string[] = []): Promise<number> {
  const startedMs = Date.now();
  const config = loadConfig(process.env, args.includes('--demo') ? { demo: true } : {});
  const hub = await createHub(config);
  const demo = config.demo ? await seedDemoNetwork(hub) : undefined;
  const testCards = demo !== undefined ? await seedSandboxCards(hub) : [];
  hub.startBackground();
  await hub.listen();
  const base = `http://${config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host}:${config.port}`;
  // The demo network's connected bank (its own books, its own PGlite data directory), in this process.
  const connectedBank = demo !== undefined ? await startConnectedBank(hub, { dataDir: join(config.dataDir, 'reference-bank'), hubUrl: `http://127.0.0.1:${config.port}` }) : undefined;
  // The CLI's commands find the hub by PORT: on another port than the default, the commands printed here say so.
  const portPrefix = config.port === DEFAULT_PORT ? '' : `PORT=${config.port} `;
  const operatorCredential =
    config.operatorToken !== undefined && config.operatorToken !== '' ? 'HUTONG_OPERATOR_TOKEN (as you set it)' : `the file ${operatorTokenPath(config)} (0600)`;
  const lines = [
    '',
    `Hutong hub ready at ${base} in ${Date.now() - startedMs} ms (${hub.db.engine === 'pglite' ? `embedded PGlite, data in ${config.dataDir}` : 'PostgreSQL'})${demo !== undefined ? ' — DEMO MODE' : ''}`,
    `  Guides:            ${base}/docs/guides   (quickstarts for a wallet, a bank, a merchant; the concepts)`,
    `  API docs:          ${base}/docs   (OpenAPI: ${base}/openapi.json)`,
    `  Health:            ${base}/health   Metrics: ${base}/metrics (operator credential)`,
    `  Operator console:  ${base}/console   (sign in with the operator credential: ${operatorCredential})`,
  ];
  if (demo !== undefined) {
    const credentials = writeDemoCredentials(config, demo, connectedBank?.credential);
    lines.push(
      `  Reference wallet:  ${base}/wallet    (pick a demo wallet and customer: no password, demo mode only)`,
      '',
      `Demo network (${demo.created ? 'seeded now' : 'already seeded'}): ${demo.participants.map((p) => p.key).join(', ')}${connectedBank !== undefined ? `, ${connectedBank.credential.key}` : ''}`,
      ...(connectedBank !== undefined
        ? [
            `  Hosted participants keep their customers' accounts at the hub; ${connectedBank.credential.key} (${connectedBank.name}) is CONNECTED: it keeps its own books`,
            `  (the reference bank at ${connectedBank.url}) and answers the hub's reserve/accept/commit/abort. Pay its customer 王芳`,
            '  (handle wangfang) from the reference wallet. To see a bank misbehave, serve the same participant from its own process,',
            `  with fresh books and a failure switch: ${portPrefix}npx hutong simulate bank --port 9100 --refuse accept:AC04 (payments to her are`,
            `  refused; Ctrl-C hands ${connectedBank.credential.key} back to this process). It is not a second bank: \`npx hutong simulate bank --help\`.`,
            `  Link her account into a wallet by the bank's consent (wallet → Me → ${connectedBank.name}): approve at the bank with account`,
            `  ${connectedBank.signIn.account} and passcode ${connectedBank.signIn.passcode} (a simulation of the bank's own sign-in).`,
          ]
        : []),
      `  Their client credentials are in ${credentials} (0600); secrets are never printed.`,
      '  Each reads its webhook signing secret with GET /v1/webhooks/secret (rotate: POST /v1/webhooks/secret/rotate).',
      '  The demo helpers (/demo/v1/*: wallet sign-in, the one-time codes demo banks "text") answer only callers on this',
      '  machine (loopback), and only in demo mode: `hutong start` without --demo seeds nothing and serves none of them.',
      '',
      ...sandboxBannerLines(testCards),
      '',
      'Try it (from this machine):',
      `  TOKEN=$(${portPrefix}npx hutong token wallet-a)`,
      `  curl -s ${base}/v1/customers -H "Authorization: Bearer $TOKEN"`,
      '  npx hutong demo --list      (stories that drive the API step by step)',
    );
  } else {
    lines.push('', 'No demo network and no demo helpers (run with --demo, or `npm start`, for the demo).');
    // Limits and risk weigh amounts in EUR by the operator's reference rates; the hub ships none for production.
    if ((await hub.transfers.fx.table()).asOf === null) {
      lines.push(
        'No FX reference rates loaded: payments in currencies other than EUR are refused (fx_rate_unavailable) until the',
        `operator loads them: POST ${base}/v1/operator/fx/rates with the ECB daily document (eurofxref-daily.xml).`,
      );
    }
  }
  lines.push('', 'Ctrl-C stops the hub (in-flight requests finish first).', '');
  io.stdout(lines.join('\n'));

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      io.stderr(`\n${signal}: shutting down…`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  // A stopping hub stops within STOP_DEADLINE_MS whatever its database does (orchestrators kill at 10 s): close() bounds
  // each of its steps, this bounds the whole, and a second signal ends the process at once.
  const force = (why: string) => {
    io.stderr(why);
    process.exit(1);
  };
  process.once('SIGINT', () => force('second signal: stopping now'));
  process.once('SIGTERM', () => force('second signal: stopping now'));
  const overrun = setTimeout(() => force(`the hub did not stop within ${STOP_DEADLINE_MS / 1000} s; exiting`), STOP_DEADLINE_MS);
  await connectedBank?.close().catch(() => undefined);
  await hub.close();
  clearTimeout(overrun);
  io.stderr('stopped cleanly');
  // Whatever a library still holds open (a reconnect timer, a socket being torn down) must not keep a stopped hub's
  // process alive: it ends shortly after, with the exit code the CLI sets (an unref'd timer fires only if something
  // else still holds the process).
  setTimeout(() => process.exit(), LINGER_MS).unref();
  return 0;
}

/** Longest a signalled hub takes to stop (its close() steps take at most 8 s). */
const STOP_DEADLINE_MS = 9_000;
/** Grace for handles left open after a clean close. */
const LINGER_MS = 500;

/**
 * `hutong token <demo participant>`: an access token for a demo participant from the hub running in demo mode on this
 * machine, with the client credential from the data directory's demo-credentials.json (so no secret is typed or
 * printed, only the short-lived token).
 */
export async function tokenCommand(io: CliIo, args: readonly string[]): Promise<number> {
  const config = loadConfig();
  const key = args[0];
  const path = demoCredentialsPath(config);
  if (!existsSync(path)) {
    io.stderr(`${path} does not exist: start the hub in demo mode first (npm start, or hutong start --demo)`);
    return 1;
  }
  const all = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { clientId: string; clientSecret: string }>;
  const entry = key === undefined ? undefined : all[key];
  if (entry === undefined) {
    io.stderr(`usage: hutong token <${Object.keys(all).join('|')}>`);
    return 64;
  }
  const base = `http://${config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host}:${config.port}`;
  try {
    const res = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: entry.clientId, client_secret: entry.clientSecret }),
    });
    const body = (await res.json()) as { access_token?: string; error?: { code: string; message: string } };
    if (!res.ok || body.access_token === undefined) {
      io.stderr(`the hub at ${base} refused: ${body.error?.code ?? res.status} ${body.error?.message ?? ''}`);
      return 1;
    }
    io.stdout(body.access_token);
    return 0;
  } catch (error) {
    io.stderr(
      `no hub answers at ${base} (${error instanceof Error ? error.message : String(error)}): is it running? ` +
        `A hub on another port: PORT=<its port> hutong token ${key} (PORT is ${process.env.PORT ?? process.env.HUTONG_PORT ?? 'not set: 8080'})`,
    );
    return 1;
  }
}

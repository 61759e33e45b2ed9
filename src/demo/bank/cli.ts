import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../platform/config.ts';
import { CONNECTED_BANK, CONNECTED_CUSTOMERS } from './connect.ts';
import { createReferenceBank } from './reference-bank.ts';
import { demoParticipantId } from '../seed.ts';

export const SIMULATE_USAGE = `hutong simulate bank [--port 9100] [--hub URL] [--data-dir DIR | --database-url URL] [--participant ID]
                     [--slow MS] [--hang] [--down] [--refuse reserve:AM04|accept:AC04] [--duplicate] [--crash-after-reserve]
  Serves the demo's connected bank (${CONNECTED_BANK.key}, ${CONNECTED_BANK.name}) from its own process instead of the hub's, to try its
  failure switches: its connector answers the hub's reserve/accept/commit/abort, signed, slowly or never or refusing
  as the switches say. It is the same participant (its customers ${CONNECTED_CUSTOMERS.map((c) => `${c.name} ${c.bankAccount}`).join(', ')}) with its
  own books, opened fresh in --data-dir (default <data dir>/simulated-bank-<port>; never the directory of the bank the
  hub runs itself, which the hub holds while it runs), or in a PostgreSQL database of its own (--database-url
  postgres://…; never the hub's). With the operator credential (HUTONG_OPERATOR_TOKEN, or the
  hub's data directory) it takes over --participant's ${CONNECTED_BANK.currency} connection at the hub, and on Ctrl-C hands it back.
  --hub: the hub's URL (default http://localhost:$PORT, PORT 8080 unless set).`;

interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const valueOf = (args: readonly string[], name: string): string | undefined => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};

/** `hutong simulate bank`: the reference bank in its own process, until SIGINT/SIGTERM. */
export async function simulateBankCommand(io: CliIo, args: readonly string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout(SIMULATE_USAGE);
    return 0;
  }
  if (args[0] !== 'bank') {
    io.stderr(SIMULATE_USAGE);
    return 64;
  }
  const config = loadConfig();
  const port = Number(valueOf(args, '--port') ?? '9100');
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    io.stderr(`--port: not a port number (1–65535)\n${SIMULATE_USAGE}`);
    return 64;
  }
  const databaseUrl = valueOf(args, '--database-url');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    io.stderr(`--database-url: a postgres:// URL of a database of the bank's own\n${SIMULATE_USAGE}`);
    return 64;
  }
  const hubUrl = (valueOf(args, '--hub') ?? `http://localhost:${config.port}`).replace(/\/+$/, '');
  // Its own directory by default: the hub's in-process bank holds <data dir>/reference-bank while it runs.
  const dataDir = valueOf(args, '--data-dir') ?? join(config.dataDir, `simulated-bank-${port}`);
  const participantId = valueOf(args, '--participant') ?? demoParticipantId(CONNECTED_BANK.key);
  const jwks = await fetch(`${hubUrl}/v1/connector/jwks`).catch(() => undefined);
  if (jwks === undefined || !jwks.ok) {
    io.stderr(
      `no hub answers at ${hubUrl} (${jwks === undefined ? 'no answer' : `${jwks.status} for /v1/connector/jwks`}): start it first (npm start); ` +
        `a hub on another port: PORT=<its port> hutong simulate bank …, or --hub <its URL>`,
    );
    return 1;
  }
  const [hubKey] = ((await jwks.json()) as { keys: { kty: string; crv: string; x: string }[] }).keys;
  if (hubKey === undefined) return 1;
  const bank = await createReferenceBank({ ...(databaseUrl !== undefined ? { databaseUrl } : { dataDir }), hubPublicJwk: hubKey, name: CONNECTED_BANK.name });
  const books = databaseUrl !== undefined ? `PostgreSQL at ${new URL(databaseUrl).host}${new URL(databaseUrl).pathname}` : dataDir;
  const refuse = valueOf(args, '--refuse');
  const [op, reason] = refuse?.split(':') ?? [];
  Object.assign(bank.switches, {
    slowMs: Number(valueOf(args, '--slow') ?? '0'),
    hang: args.includes('--hang'),
    down: args.includes('--down'),
    refuse: (op === 'reserve' || op === 'accept') && reason !== undefined ? { op, reason } : undefined,
    duplicate: args.includes('--duplicate'),
    crashAfterReserve: args.includes('--crash-after-reserve'),
  });
  let url: string;
  try {
    for (const c of CONNECTED_CUSTOMERS) await bank.openAccount({ id: c.bankAccount, name: c.name, currency: CONNECTED_BANK.currency, balanceMinor: c.openingMinor, passcode: c.passcode });
    url = await bank.listen(port, '127.0.0.1');
  } catch (error) {
    await bank.close();
    io.stderr(`the bank cannot listen on 127.0.0.1:${port} (${error instanceof Error ? error.message : String(error)}): pass another --port`);
    return 1;
  }
  const tokenFile = join(config.dataDir, 'operator-token');
  const operator = config.operatorToken !== undefined && config.operatorToken !== '' ? config.operatorToken : existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined;
  const connectionsUrl = `${hubUrl}/v1/operator/participants/${participantId}/connections`;
  const connection = { currency: CONNECTED_BANK.currency, mode: 'connected', endpointUrl: url, publicJwk: bank.publicJwk };
  const asOperator = (init: RequestInit = {}) => fetch(connectionsUrl, { ...init, headers: { authorization: `Bearer ${operator ?? ''}`, 'content-type': 'application/json' } }).catch(() => undefined);
  // What it takes over (the hub's own bank, for the demo's bank-c), to hand back on Ctrl-C: otherwise the hub keeps
  // calling a bank that is gone and the participant's payments fail until the hub restarts.
  let previous: { mode: string; endpointUrl?: string | null; publicJwk?: unknown; deadlineMs?: number } | undefined;
  let connected = false;
  if (operator !== undefined && operator !== '') {
    const current = await asOperator();
    if (current?.ok === true) {
      const { items } = (await current.json()) as { items: { currency: string; mode: string; endpointUrl?: string | null; publicJwk?: unknown; deadlineMs?: number }[] };
      previous = items.find((c) => c.currency === CONNECTED_BANK.currency);
    }
    const res = await asOperator({ method: 'POST', body: JSON.stringify(connection) });
    connected = res?.ok === true;
    if (!connected) io.stderr(`could not connect ${participantId} at the hub (${res?.status ?? 'no answer'}): connect it yourself (below)`);
  }
  io.stdout(
    [
      `Reference bank listening at ${url} (its own books, in ${books})`,
      `  switches: ${JSON.stringify(bank.switches)}`,
      connected
        ? `  serving ${participantId} at ${hubUrl} in ${CONNECTED_BANK.currency} instead of ${previous?.endpointUrl ?? 'nothing'} until Ctrl-C, which hands it back`
        : `  connect it: POST ${connectionsUrl} ${JSON.stringify(connection)}`,
      `  customers: ${CONNECTED_CUSTOMERS.map((c) => `${c.name} ${c.bankAccount} (handle ${c.handle}, passcode ${c.passcode} to approve a wallet at ${url}/oauth/authorize)`).join(', ')}`,
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  if (connected && previous !== undefined) {
    const back = {
      currency: CONNECTED_BANK.currency,
      mode: previous.mode,
      ...(previous.endpointUrl !== undefined && previous.endpointUrl !== null ? { endpointUrl: previous.endpointUrl } : {}),
      ...(previous.publicJwk !== undefined && previous.publicJwk !== null ? { publicJwk: previous.publicJwk } : {}),
      ...(previous.deadlineMs !== undefined ? { deadlineMs: previous.deadlineMs } : {}),
    };
    const res = await asOperator({ method: 'POST', body: JSON.stringify(back) });
    io.stderr(res?.ok === true ? `handed ${participantId} back to ${previous.endpointUrl ?? previous.mode}` : `could not hand ${participantId} back (${res?.status ?? 'no answer'}): restart the hub to reconnect its own bank`);
  }
  await bank.close();
  return 0;
}

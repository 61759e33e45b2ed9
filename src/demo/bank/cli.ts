import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../platform/config.ts';
import { CONNECTED_BANK, CONNECTED_CUSTOMERS } from './connect.ts';
import { createReferenceBank } from './reference-bank.ts';
import { demoParticipantId } from '../seed.ts';

export const SIMULATE_USAGE = `hutong simulate bank [--port 9100] [--hub http://localhost:8080] [--data-dir DIR] [--participant ID]
                     [--slow MS] [--hang] [--down] [--refuse reserve:AM04|accept:AC04] [--duplicate] [--crash-after-reserve]
  Runs the reference bank (a connected participant that keeps its own books) on its own: its connector answers the
  hub's reserve/accept/commit/abort, signed. With the operator credential (HUTONG_OPERATOR_TOKEN, or the hub's data
  directory) it connects itself to the hub as --participant (default: the demo's ${CONNECTED_BANK.key}) in ${CONNECTED_BANK.currency}.`;

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
  if (args[0] !== 'bank') {
    io.stderr(SIMULATE_USAGE);
    return 64;
  }
  const config = loadConfig();
  const port = Number(valueOf(args, '--port') ?? '9100');
  const hubUrl = (valueOf(args, '--hub') ?? `http://localhost:${config.port}`).replace(/\/+$/, '');
  const dataDir = valueOf(args, '--data-dir') ?? join(config.dataDir, 'reference-bank');
  const participantId = valueOf(args, '--participant') ?? demoParticipantId(CONNECTED_BANK.key);
  const jwks = await fetch(`${hubUrl}/v1/connector/jwks`).catch(() => undefined);
  if (jwks === undefined || !jwks.ok) {
    io.stderr(`cannot read the hub's signing key at ${hubUrl}/v1/connector/jwks: start the hub first (npm start), or pass --hub`);
    return 1;
  }
  const [hubKey] = ((await jwks.json()) as { keys: { kty: string; crv: string; x: string }[] }).keys;
  if (hubKey === undefined) return 1;
  const bank = await createReferenceBank({ dataDir, hubPublicJwk: hubKey, name: CONNECTED_BANK.name });
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
  for (const c of CONNECTED_CUSTOMERS) await bank.openAccount({ id: c.bankAccount, name: c.name, currency: CONNECTED_BANK.currency, balanceMinor: c.openingMinor, passcode: c.passcode });
  const url = await bank.listen(port, '127.0.0.1');
  const tokenFile = join(config.dataDir, 'operator-token');
  const operator = config.operatorToken ?? (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined);
  const connection = { currency: CONNECTED_BANK.currency, mode: 'connected', endpointUrl: url, publicJwk: bank.publicJwk };
  let connected = false;
  if (operator !== undefined && operator !== '') {
    const res = await fetch(`${hubUrl}/v1/operator/participants/${participantId}/connections`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify(connection),
    }).catch(() => undefined);
    connected = res?.ok === true;
    if (!connected) io.stderr(`could not connect ${participantId} at the hub (${res?.status ?? 'no answer'}): connect it yourself (below)`);
  }
  io.stdout(
    [
      `Reference bank listening at ${url} (books in ${dataDir})`,
      `  switches: ${JSON.stringify(bank.switches)}`,
      connected
        ? `  connected at ${hubUrl} as ${participantId} in ${CONNECTED_BANK.currency}`
        : `  connect it: POST ${hubUrl}/v1/operator/participants/${participantId}/connections ${JSON.stringify(connection)}`,
      `  customers: ${CONNECTED_CUSTOMERS.map((c) => `${c.name} ${c.bankAccount} (handle ${c.handle}, passcode ${c.passcode} to approve a wallet at ${url}/oauth/authorize)`).join(', ')}`,
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await bank.close();
  return 0;
}

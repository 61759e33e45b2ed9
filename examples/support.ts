/**
 * What the three quickstarts share, written as an integrator would write it: the SDK (packages/sdk) and Node's own
 * modules, nothing from the hub's sources. `npx tsx examples/<name>.ts` runs a quickstart against the demo hub of this
 * checkout (`npm start`); test/examples/quickstarts.test.ts runs each against a fresh hub, so they stay true.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHutongClient, verifyWebhook, type HutongClient, type WebhookEvent } from '../packages/sdk/src/index.ts';

export interface ClientCredential {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** A card as its bank gave it to the cardholder (the sandbox's test cards are printed in the demo hub's banner). */
export interface CardData {
  readonly number: string;
  /** MM/YY */
  readonly expiry: string;
  readonly cvv: string;
}

export interface QuickstartEnv {
  /** The hub's origin, e.g. http://localhost:8080 */
  readonly baseUrl: string;
  /** Client credentials by demo participant key (wallet-a, bank-a, merchant-a…): data/demo-credentials.json. */
  readonly credentials: Readonly<Record<string, ClientCredential>>;
  /** bank-a's sandbox test card (the wallet and merchant quickstarts add it to wallets). */
  readonly card?: CardData;
  /** Where each step is told (console.log when run from the command line). */
  readonly log?: (line: string) => void;
}

/** The environment of a quickstart run from the command line against `npm start`'s demo hub. */
export function commandLineEnv(): QuickstartEnv {
  const dataDir = process.env.HUTONG_DATA_DIR ?? 'data';
  const file = join(dataDir, 'demo-credentials.json');
  let credentials: Record<string, ClientCredential>;
  try {
    credentials = JSON.parse(readFileSync(file, 'utf8')) as Record<string, ClientCredential>;
  } catch {
    throw new Error(`cannot read ${file}: start the demo hub first (npm start), from this directory`);
  }
  const { CARD_NUMBER, CARD_EXPIRY, CARD_CVV } = process.env;
  const card = CARD_NUMBER !== undefined && CARD_EXPIRY !== undefined && CARD_CVV !== undefined ? { number: CARD_NUMBER, expiry: CARD_EXPIRY, cvv: CARD_CVV } : undefined;
  return { baseUrl: process.env.HUTONG_URL ?? 'http://localhost:8080', credentials, ...(card !== undefined ? { card } : {}), log: (line) => console.log(line) };
}

/** Runs `main` when this module is the script node was started with. */
export function runIfMain(moduleUrl: string, main: (env: QuickstartEnv) => Promise<unknown>): void {
  const script = process.argv[1];
  if (script === undefined || pathToFileURL(script).href !== moduleUrl) return;
  main(commandLineEnv()).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}

/** An SDK client signed in as one participant with its client credential (tokens are fetched and renewed for you). */
export function clientFor(env: QuickstartEnv, key: string): HutongClient {
  const credential = env.credentials[key];
  if (credential === undefined) throw new Error(`no client credential for ${key}`);
  return createHutongClient({ baseUrl: env.baseUrl, clientId: credential.clientId, clientSecret: credential.clientSecret });
}

/** The answer of an SDK call, or an error naming the hub's error code (every error body is `{ error: { code, message } }`). */
export async function must<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>, what: string): Promise<T> {
  const { data, error, response } = await call;
  if (data === undefined || error !== undefined) throw new Error(`${what}: HTTP ${response.status} ${JSON.stringify(error)}`);
  return data;
}

/** The error code of a call expected to fail (undefined when it succeeded). */
export async function errorCode(call: Promise<{ error?: unknown; response: Response }>): Promise<string | undefined> {
  const { error } = await call;
  if (error === undefined) return undefined;
  const code = (error as { error?: { code?: unknown } }).error?.code;
  return typeof code === 'string' ? code : 'unknown';
}

/**
 * A webhook receiver on this machine: verifies each delivery (Standard Webhooks, over the raw body, with every secret
 * given: two during a rotation), answers 204, and keeps the verified events. A delivery that fails verification is
 * answered 400 and kept out: the hub retries it, and a forger gets nothing.
 */
export interface WebhookReceiver {
  readonly url: string;
  readonly events: WebhookEvent[];
  readonly refused: number;
  /** Resolves with the first verified event `match` accepts, waiting up to `timeoutMs`. */
  waitFor(match: (event: WebhookEvent) => boolean, what: string, timeoutMs?: number): Promise<WebhookEvent>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(secrets: readonly string[]): Promise<WebhookReceiver> {
  const events: WebhookEvent[] = [];
  const waiters = new Set<() => void>();
  let refused = 0;
  const headersOf = (h: IncomingHttpHeaders): Record<string, string> => Object.fromEntries(Object.entries(h).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v]] : [])));
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const verified = verifyWebhook(secrets, headersOf(req.headers), Buffer.concat(chunks).toString('utf8'));
      if (!verified.ok) {
        refused += 1;
        res.statusCode = 400;
        res.end();
        return;
      }
      // Deliveries are at least once: the same event id may come again.
      if (!events.some((e) => e.id === verified.event.id)) events.push(verified.event);
      res.statusCode = 204;
      res.end();
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    events,
    get refused() {
      return refused;
    },
    waitFor(match, what, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (found === undefined) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no webhook ${what} within ${timeoutMs / 1000} s (GET /v1/webhooks/deliveries shows each attempt)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Points a participant's webhooks at a receiver for the length of `work`, then back where they were (the demo
 * participants have none by default). The secrets come from GET /v1/webhooks/secret: a demo participant can read its
 * own in demo mode; a real one keeps the secret it was shown once (or rotates to get a new one).
 */
export async function withWebhooks<T>(client: HutongClient, work: (receiver: WebhookReceiver) => Promise<T>): Promise<T> {
  const secret = await must(client.GET('/v1/webhooks/secret'), 'read the webhook secret');
  const me = await must(client.GET('/v1/me'), 'read my participant');
  const receiver = await startWebhookReceiver([secret.secret, ...(secret.previousSecret !== null ? [secret.previousSecret] : [])]);
  await must(client.PATCH('/v1/me', { body: { webhookUrl: receiver.url } }), 'set the webhook URL');
  try {
    return await work(receiver);
  } finally {
    await client.PATCH('/v1/me', { body: { webhookUrl: me.webhookUrl } });
    await receiver.close();
  }
}

/** Narrows a verified event to one type (the SDK types each event's payload). */
export function isEvent<T extends WebhookEvent['type']>(event: WebhookEvent, type: T): event is Extract<WebhookEvent, { type: T }> {
  return event.type === type;
}

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { story } from '../../src/demo/card-story.ts';
import { openSentCode, type SealedCodeEvent } from '../../src/platform/sent-codes.ts';
import { demoParticipantId, seedDemoNetwork } from '../../src/demo/seed.ts';
import { seedSandboxCards } from '../../src/demo/sandbox.ts';
import { createHub, type Hub } from '../../src/main.ts';
import { cardInTwoWallets, tapBody, type Caller } from '../../src/demo/fixtures.ts';
import { createFakeClock } from '../../src/platform/clock.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { openPglite, openPostgres, type Db } from '../../src/platform/db.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { openSealed } from '../../src/platform/recipient-seal.ts';
import { verifyWebhook } from '../../src/webhooks/signing.ts';
import { availableEngines, createScratchPostgres, type Engine } from '../support/engines.ts';

/**
 * The proof of "no secret at rest in clear, none in logs". A hub on disk (PGlite in a data directory, or a scratch
 * PostgreSQL database) runs, through its real HTTP API, every flow that makes a secret: participant creation (client
 * and webhook secrets), credential issue and rotation, OAuth token requests (access tokens), card issuance (number and
 * CVV), token provisioning with a step-up code (token number and key), an account-link consent code, an alias move
 * code and a tap (cryptogram); the flows that take an Idempotency-Key are retried, so stored answers are read back too.
 * Every secret value is collected from the API's answers and from the webhooks the participants receive (codes opened
 * with the recipient's webhook secret, as the participant does). Then, with the hub closed, the scan: every file of
 * the PGlite data directory as bytes (WAL segments included) and a text dump of every table, or a `pg_dump` of the
 * PostgreSQL database, and every log line the hub wrote (a debug logger, more than production's info). Each secret
 * must appear 0 times; planted values (written through the same paths) must be found, so the scan cannot pass
 * vacuously.
 *
 * How each kind is searched (and why):
 * - long secrets (client/webhook secrets, access tokens, the operator token, card and token numbers, token keys,
 *   cryptograms, canaries): as their exact bytes, anywhere. Text is stored as UTF-8 by both engines (PGlite and the
 *   server are UTF8 databases), so a UTF-16 form cannot occur; the hub base64-encodes no plaintext secret (sealed
 *   values are ciphertexts), the one base64 form being HTTP Basic credentials in a request header, which is never
 *   logged, so base64 forms are not searched.
 * - 6-digit one-time codes: a given 6-digit string turns up by chance in megabytes of pages and WAL — inside longer
 *   numbers (timestamps, phone numbers), ids, hashes and base64 ciphertexts (a run makes ~60 distinct such 6-digit
 *   numbers). So a code is searched only where a leaked code would sit:
 *   · in text (logs, dumps, where jsonb is rendered as JSON) as a token of its own: no letter or digit just before or
 *     after — the forms `"123456"`, `Code 123456:`, `code=123456`. A run of the flows leaves only ~8 such numbers in
 *     the text, the same every time (the demo amounts like "100000" in audit details, a card BIN), so a real code
 *     collides with one about once in 10^5 codes;
 *   · in the raw files (PGlite pages and WAL segments) with no DIGIT just before or after: jsonb keeps a string as bare
 *     bytes between its neighbours (`…value123456planted…` for {"code": "123456", "value": "planted…"}), so letters
 *     next to it are allowed. An occurrence inside a longer token of letters and digits that the table dump shows as it
 *     is (an id, a hash, a ciphertext of a live row) is a chance match and is left out; a leaked code's neighbours are
 *     jsonb keys and other values, which the dump never shows glued together.
 *   The planted code is written as a bare jsonb value and must be found by these searches in the raw files and in the
 *   dumps. A failure names the place and its surroundings, so a chance match is told from a leak at a glance.
 * - CVVs (3 digits) cannot be searched as bytes at all; they are searched as a JSON or form field (`"cvv":"123"`,
 *   `cvv=123`) in the text haystacks: the logs and the table dumps (where jsonb is rendered as JSON text).
 */
const engines = await availableEngines();
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const run = promisify(execFile);

type SecretKind = 'long' | 'code' | 'cvv';
interface Secret {
  readonly label: string;
  readonly value: string;
  readonly kind: SecretKind;
}

/** One place searched: its name, and its content as text (latin1 for raw bytes: one character per byte). */
interface Haystack {
  readonly name: string;
  readonly text: string;
  /** Whether it is text (logs, dumps): the CVV's field forms are searched only there. */
  readonly textual: boolean;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const TOKEN_CHAR = /[A-Za-z0-9_-]/;

/** The longest run of letters, digits, `_` and `-` around [from, to) of a text. */
function tokenAround(text: string, from: number, to: number): string {
  let start = from;
  let end = to;
  while (start > 0 && TOKEN_CHAR.test(text.charAt(start - 1))) start--;
  while (end < text.length && TOKEN_CHAR.test(text.charAt(end))) end++;
  return text.slice(start, end);
}

/**
 * Where a secret appears: `name@offset: …context…`, the first place in each haystack that holds it. `tableText` is
 * the text dump of the live rows, which tells a code's chance match inside an id, hash or ciphertext (see above).
 */
function findingsOf(secret: Secret, haystacks: readonly Haystack[], tableText: string): string[] {
  const v = escapeRegExp(secret.value);
  const out: string[] = [];
  for (const h of haystacks) {
    let pattern: RegExp;
    let chance: (at: number) => boolean = () => false;
    if (secret.kind === 'long') pattern = new RegExp(v, 'g');
    else if (secret.kind === 'cvv') {
      if (!h.textual) continue;
      pattern = new RegExp(`cvv2?"?\\s*[:=]\\s*"?${v}(?![0-9])`, 'gi');
    } else if (h.textual) pattern = new RegExp(`(?<![0-9A-Za-z])${v}(?![0-9A-Za-z])`, 'g');
    else {
      pattern = new RegExp(`(?<![0-9])${v}(?![0-9])`, 'g');
      chance = (at) => {
        const token = tokenAround(h.text, at, at + secret.value.length);
        return token.length > secret.value.length && tableText.includes(token);
      };
    }
    for (const match of h.text.matchAll(pattern)) {
      if (chance(match.index)) continue;
      out.push(`${h.name}@${match.index}: ${JSON.stringify(h.text.slice(Math.max(0, match.index - 60), match.index + match[0].length + 60))}`);
      break;
    }
  }
  return out;
}

/** Every file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Every row of every table as text (jsonb rendered as JSON), as one haystack. */
async function tableDump(db: Db): Promise<string> {
  const tables = await db.query<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`);
  let dump = '';
  for (const { table_name } of tables) {
    const rows = await db.query<{ r: string }>(`select t::text as r from "${table_name}" t`);
    dump += `-- ${table_name}\n${rows.map((r) => r.r).join('\n')}\n`;
  }
  return dump;
}

/** pg_dump's plain-text dump of a database, or undefined when the binary is absent (allowed outside CI only). */
async function pgDump(url: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('pg_dump', ['--no-owner', '--no-privileges', url], { maxBuffer: 512 * 1024 * 1024, timeout: 120_000 });
    return stdout;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
    if (IN_CI) throw new Error('pg_dump is not installed: the secrets scan of PostgreSQL must run in CI');
    console.warn('[secrets-scan] pg_dump is not installed: the PostgreSQL database is scanned through a table dump only (this fails in CI)');
    return undefined;
  }
}

interface Received {
  readonly participant: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly raw: string;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

/** A webhook receiver for several participants: POST /<participant key>. */
async function startReceiver(): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const body = JSON.parse(raw) as { type: string; data: Record<string, unknown> };
      received.push({ participant: (req.url ?? '/').slice(1), headers: req.headers, raw, type: body.type, data: body.data });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(engines)('secrets scan (%s)', (engine: Engine) => {
  it('no secret a flow made is in the database files, the dump or the logs; planted ones are found', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-secrets-scan-'));
    const scratch = engine === 'postgres' ? await createScratchPostgres() : undefined;
    const receiver = await startReceiver();
    const logLines: string[] = [];
    const logSink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString('utf8'));
        done();
      },
    });
    const secrets: Secret[] = [];
    const keep = (label: string, value: unknown, kind: SecretKind = 'long'): string => {
      if (typeof value !== 'string' || value.length === 0) throw new Error(`${label}: no value in the answer`);
      secrets.push({ label, value, kind });
      return value;
    };
    const operatorToken = keep('operator token', `op_${randomBytes(24).toString('base64url')}`);
    // A data directory on disk: the hub opens PGlite in it itself (no DATABASE_URL), as `hutong start` does. Webhook
    // deliveries are run by the test (hub.webhooks.runOnce) when a flow waits for one, instead of by a timer.
    const config = loadConfig(
      { HUTONG_DATA_DIR: dataDir, DATABASE_URL: scratch?.url ?? '', HUTONG_LOG_LEVEL: 'debug' },
      { operatorToken, demo: true, port: 0, host: '127.0.0.1', webhooks: { enabled: false, pollMs: 1_000 } },
    );
    const clock = createFakeClock(Date.now());
    const hub: Hub = await createHub(config, { clock, logger: createLogger({ level: 'debug', destination: logSink }) });
    const planted = { long: `planted_${randomBytes(16).toString('hex')}`, code: '', logValue: `planted_log_${randomBytes(8).toString('hex')}` };
    try {
      const demo = await seedDemoNetwork(hub);
      const baseUrl = await hub.listen();
      let keyNo = 0;
      const key = () => ({ 'idempotency-key': `scan-${++keyNo}` });

      // ---- OAuth, the three ways a client may send its credentials -------------------------------------------------
      type ClientAuth = 'form' | 'basic' | 'json';
      const oauth = async (clientId: string, clientSecret: string, as: ClientAuth): Promise<{ status: number; token?: string }> => {
        const init: RequestInit =
          as === 'form'
            ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }) }
            : as === 'basic'
              ? {
                  headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` },
                  body: new URLSearchParams({ grant_type: 'client_credentials' }),
                }
              : { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }) };
        const res = await fetch(`${baseUrl}/oauth/token`, { method: 'POST', ...init });
        const body = (await res.json()) as { access_token?: string };
        return { status: res.status, ...(body.access_token !== undefined ? { token: keep(`access token of ${clientId}`, body.access_token) } : {}) };
      };
      const bearerOf = new Map<string, string>();
      const bearer = async (as: string): Promise<string> => {
        if (as === 'operator') return operatorToken;
        const cached = bearerOf.get(as);
        if (cached !== undefined) return cached;
        const p = demo.participants.find((d) => d.key === as);
        if (p === undefined) throw new Error(`no demo participant ${as}`);
        const { token } = await oauth(p.clientId, p.clientSecret, 'form');
        if (token === undefined) throw new Error(`no token for ${as}`);
        bearerOf.set(as, token);
        return token;
      };
      const send = async (token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
        const res = await fetch(`${baseUrl}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        return { status: res.status, body: parsed as any, headers: res.headers };
      };
      const call: Caller = async (as, method, path, body, headers) => send(await bearer(as), method, path, body, headers);
      const deliverWebhooks = async () => {
        for (let round = 0; round < 20 && (await hub.webhooks.runOnce()) > 0; round++);
      };
      const webhookSecretOf = async (participantId: string) => {
        const [row] = await hub.db.query<{ webhook_secret_sealed: string }>('select webhook_secret_sealed from participants where id = $1', [participantId]);
        return hub.vault.open(row?.webhook_secret_sealed ?? '');
      };
      /** The code in the newest webhook of a type about an object, opened as its recipient opens it (signature checked). */
      const codeFromWebhook = async (participantKey: string, type: SealedCodeEvent, idField: string, objectId: string, recipientSecret: string): Promise<string> => {
        await deliverWebhooks();
        const hook = receiver.received.filter((r) => r.participant === participantKey && r.type === type && r.data[idField] === objectId).at(-1);
        if (hook === undefined) throw new Error(`no ${type} webhook to ${participantKey} for ${objectId}`);
        expect(verifyWebhook(recipientSecret, hook.headers, hook.raw, { nowS: Math.floor(clock.nowMs() / 1000) }).ok).toBe(true);
        expect(hook.data).not.toHaveProperty('code');
        const code = openSealed(recipientSecret, String(hook.data.codeSealed), objectId);
        expect(hook.raw).not.toContain(code);
        expect(await openSentCode(hub, type, objectId)).toBe(code); // the demo helper opens the same code
        return keep(`${type} code`, code, 'code');
      };

      // Every demo participant's credential and webhook signing secret (the demo's own secrets).
      for (const p of demo.participants) {
        keep(`demo client secret of ${p.key}`, p.clientSecret);
        keep(`webhook secret of ${p.key}`, await webhookSecretOf(p.participantId));
      }
      for (const as of ['bank-a', 'wallet-a']) expect((await call(as, 'PATCH', '/v1/me', { webhookUrl: `${receiver.url}/${as}` })).status).toBe(200);

      // ---- a participant created by the operator (client secret, webhook secret), retried with its key ------------
      const newParticipant = { kind: 'wallet', name: 'Scan Wallet', country: 'CN', currencies: ['CNY'], webhookUrl: `${receiver.url}/scan-wallet` };
      const created = await call('operator', 'POST', '/v1/operator/participants', newParticipant, { 'idempotency-key': 'scan-participant' });
      expect(created.status).toBe(201);
      const firstSecret = keep('new participant client secret', created.body.credential.clientSecret);
      const newWebhookSecret = keep('new participant webhook secret', created.body.webhookSecret);
      const replayed = await call('operator', 'POST', '/v1/operator/participants', newParticipant, { 'idempotency-key': 'scan-participant' });
      expect(replayed.body).toEqual(created.body);
      const participantId = String(created.body.participant.id);
      const firstClient = String(created.body.credential.clientId);

      // ---- credentials: issued by the participant and by the operator, rotated, each used at /oauth/token ---------
      const token1 = (await oauth(firstClient, firstSecret, 'form')).token ?? '';
      const second = await send(token1, 'POST', '/v1/credentials', undefined, { 'idempotency-key': 'scan-rotate' });
      expect(second.status).toBe(201);
      keep('rotated client secret', second.body.clientSecret);
      expect((await send(token1, 'POST', '/v1/credentials', undefined, { 'idempotency-key': 'scan-rotate' })).body).toEqual(second.body);

      // ---- webhook signing secrets: rotated (retried with its key), and read again by a demo participant ------------
      const rotatedHook = await send(token1, 'POST', '/v1/webhooks/secret/rotate', {}, { 'idempotency-key': 'scan-hook-rotate' });
      expect(rotatedHook.status).toBe(201);
      keep('rotated webhook secret', rotatedHook.body.secret);
      expect((await send(token1, 'POST', '/v1/webhooks/secret/rotate', {}, { 'idempotency-key': 'scan-hook-rotate' })).body).toEqual(rotatedHook.body);
      const demoHook = await call('wallet-b', 'GET', '/v1/webhooks/secret');
      expect(demoHook.body.secret).toBe(await webhookSecretOf(demoParticipantId('wallet-b')));

      // ---- the sandbox's test cards (what a demo hub's banner prints) -----------------------------------------------
      for (const testCard of await seedSandboxCards(hub)) {
        keep(`sandbox card number at ${testCard.bank}`, testCard.cardNumber);
        keep(`sandbox card CVV at ${testCard.bank}`, testCard.cvv, 'cvv');
      }
      const token2 = (await oauth(second.body.clientId, second.body.clientSecret, 'basic')).token ?? '';
      expect((await send(token2, 'POST', `/v1/credentials/${firstClient}/revoke`)).status).toBe(200);
      const third = await call('operator', 'POST', `/v1/operator/participants/${participantId}/credentials`, undefined, { 'idempotency-key': 'scan-op-cred' });
      expect(third.status).toBe(201);
      keep('operator-issued client secret', third.body.clientSecret);
      expect((await call('operator', 'POST', `/v1/operator/participants/${participantId}/credentials`, undefined, { 'idempotency-key': 'scan-op-cred' })).body).toEqual(third.body);
      expect((await oauth(third.body.clientId, third.body.clientSecret, 'json')).status).toBe(200);
      // Secrets that must not reach a log when they arrive where they should not: a query string, a wrong client
      // secret, a body that is not JSON.
      const canaryQuery = keep('secret in a query string', `canary_q_${randomBytes(12).toString('hex')}`);
      await send(token2, 'GET', `/v1/me?access_token=${canaryQuery}`);
      const canarySecret = keep('wrong client secret', `sk_canary_${randomBytes(16).toString('base64url')}`);
      expect((await oauth(third.body.clientId, canarySecret, 'form')).status).toBe(401);
      const canaryBody = keep('secret in a malformed body', `canary_b_${randomBytes(12).toString('hex')}`);
      const malformed = await fetch(`${baseUrl}/v1/customers`, { method: 'POST', headers: { authorization: `Bearer ${token2}`, 'content-type': 'application/json' }, body: `{"name":"${canaryBody}"` });
      expect(malformed.status).toBe(400);
      await deliverWebhooks();
      expect(receiver.received.some((r) => r.participant === 'scan-wallet' && verifyWebhook(newWebhookSecret, r.headers, r.raw, { nowS: Math.floor(clock.nowMs() / 1000) }).ok)).toBe(true);

      // ---- cards: issuance (number and CVV shown once), retried with a key ---------------------------------------
      const cards = story(hub, call, demo);
      const card = await cards.issue();
      keep('card number', card.cardNumber);
      keep('card CVV', card.cvv, 'cvv');
      const cardBody = { productId: 'cpr_demo_bank_a_debit', customerId: demo.customers.get('li-at-bank-a') };
      const keyedCard = await call('bank-a', 'POST', '/v1/issuer/cards', cardBody, { 'idempotency-key': 'scan-card' });
      expect(keyedCard.status).toBe(201);
      expect((await call('bank-a', 'POST', '/v1/issuer/cards', cardBody, { 'idempotency-key': 'scan-card' })).body).toEqual(keyedCard.body);
      keep('keyed card number', keyedCard.body.cardNumber);
      keep('keyed card CVV', keyedCard.body.cvv, 'cvv');

      // ---- token provisioning by typing the card, with a step-up code sent to the bank ----------------------------
      const provisioning = await call('wallet-a', 'POST', '/v1/wallet/tokens', { customerId: demo.customers.get('li-at-wallet-a'), consent: true, deviceId: 'scan-phone', source: { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv: card.cvv } }, key());
      expect(provisioning.status).toBe(201);
      expect(provisioning.body.status).toBe('pending_step_up');
      const stepUpCode = await codeFromWebhook('bank-a', 'token.step_up_requested', 'provisioningId', provisioning.body.id, await webhookSecretOf(demoParticipantId('bank-a')));
      expect((await call('wallet-a', 'GET', `/demo/v1/step-up-codes/${provisioning.body.id}`)).body.code).toBe(stepUpCode); // the wallet page's demo helper
      const done = await call('wallet-a', 'POST', `/v1/wallet/provisionings/${provisioning.body.id}/step-up`, { code: stepUpCode }, key());
      expect(done.status).toBe(200);
      keep('token number (step-up)', done.body.tokenNumber);
      keep('token key (step-up)', done.body.limitedUseKey.key);

      // ---- a token payment: a card in two wallets (token numbers and keys), a tap with a cryptogram ---------------
      const inWallets = await cardInTwoWallets(hub, call);
      const revealed = await hub.cards.cards.reveal(demoParticipantId('bank-a'), inWallets.cardId);
      keep('card number (payments fixture)', revealed?.cardNumber);
      for (const t of [inWallets.a, inWallets.b]) {
        keep(`token number in ${t.wallet}`, t.tokenNumber);
        keep(`token key in ${t.wallet}`, t.tokenKey);
      }
      const tap = tapBody(inWallets.b, { amount: '5.00', amountMinor: 500n, now: clock.now() });
      keep('tap cryptogram', tap.cryptogram);
      const paid = await call('merchant-a', 'POST', '/v1/merchants/mer_demo_merchant_a/payments/tap', tap, key());
      expect(paid.status).toBe(201);
      expect(paid.body.status).toBe('authorized');

      // ---- an account-link consent: the code reaches the bank sealed ----------------------------------------------
      const li = demo.customers.get('li-at-wallet-a');
      const consent = await call('wallet-a', 'POST', '/v1/account-links', { customerId: li, bankParticipantId: demoParticipantId('bank-a') }, key());
      expect(consent.status).toBe(201);
      const consentCode = await codeFromWebhook('bank-a', 'account_link.consent_requested', 'consentId', consent.body.id, await webhookSecretOf(demoParticipantId('bank-a')));
      expect((await call('wallet-a', 'POST', `/v1/account-links/consents/${consent.body.id}/confirm`, { code: consentCode }, key())).status).toBe(201);

      // ---- an alias move: the code reaches the alias's current holder sealed ---------------------------------------
      const handle = `scan_${randomBytes(4).toString('hex')}`;
      expect((await call('wallet-a', 'POST', '/v1/aliases', { customerId: li, type: 'handle', value: handle, accountId: `acc_${li}_CNY` }, key())).status).toBe(201);
      const liAtB = demo.customers.get('li-at-wallet-b');
      const move = await call('wallet-b', 'POST', '/v1/aliases/moves', { customerId: liAtB, type: 'handle', value: handle, accountId: `acc_${liAtB}_CNY` }, key());
      expect(move.status).toBe(201);
      const moveCode = await codeFromWebhook('wallet-a', 'alias.move_requested', 'moveId', move.body.id, await webhookSecretOf(demoParticipantId('wallet-a')));
      expect((await call('wallet-b', 'POST', `/v1/aliases/moves/${move.body.id}/confirm`, { code: moveCode }, key())).status).toBe(200);

      // ---- a new e-mail alias: the code reaches the customer's own wallet sealed ------------------------------------
      const verification = await call('wallet-a', 'POST', '/v1/aliases/verifications', { customerId: li, type: 'email', value: `scan.${randomBytes(4).toString('hex')}@example.com`, accountId: `acc_${li}_CNY` }, key());
      expect(verification.status).toBe(201);
      const verificationCode = await codeFromWebhook('wallet-a', 'alias.verification_requested', 'verificationId', verification.body.id, await webhookSecretOf(demoParticipantId('wallet-a')));
      expect((await call('wallet-a', 'POST', `/v1/aliases/verifications/${verification.body.id}/confirm`, { code: verificationCode }, key())).status).toBe(201);

      // ---- a customer link: the code reaches the other participant sealed --------------------------------------------
      const linkConsent = await call('wallet-a', 'POST', '/v1/customer-links', { customerId: li, participantId: demoParticipantId('bank-a') }, key());
      expect(linkConsent.status).toBe(201);
      const linkCode = await codeFromWebhook('bank-a', 'customer_link.consent_requested', 'consentId', linkConsent.body.id, await webhookSecretOf(demoParticipantId('bank-a')));
      expect((await call('wallet-a', 'POST', `/v1/customer-links/consents/${linkConsent.body.id}/confirm`, { code: linkCode }, key())).status).toBe(201);

      // ---- a payment's step-up: the one-time code reaches the wallet sealed, and a customer session token --------------
      expect((await call('wallet-a', 'POST', '/v1/risk/rules', { rule: 'new_counterparty', enabled: true, action: 'step_up', score: 20, minRefEurCents: 0 })).status).toBe(200);
      const q = await call('wallet-a', 'POST', '/v1/transfers/quotes', { customerId: li, payee: { type: 'handle', value: 'maria.tan' }, sendAmount: { amount: '3.00', currency: 'CNY' } }, key());
      const stepUp = await call('wallet-a', 'POST', '/v1/transfers/payments', { quoteId: q.body.id }, key());
      expect(stepUp.status).toBe(428);
      const challenge = await call('wallet-a', 'POST', '/v1/step-up/challenges', { request: stepUp.body.error.details.stepUp.request, method: 'otp' });
      expect(challenge.status).toBe(201);
      const stepUpChallengeCode = await codeFromWebhook('wallet-a', 'step_up.code_requested', 'challengeId', challenge.body.id, await webhookSecretOf(demoParticipantId('wallet-a')));
      expect((await call('wallet-a', 'POST', `/v1/step-up/challenges/${challenge.body.id}/complete`, { code: stepUpChallengeCode })).status).toBe(200);
      expect((await call('wallet-a', 'POST', '/v1/transfers/payments', { quoteId: q.body.id, stepUpChallengeId: challenge.body.id }, key())).status).toBe(201);
      const session = await call('wallet-a', 'POST', '/v1/customer-sessions', { customerId: li });
      keep('customer session token', session.body.accessToken);

      // ---- the controls: a code and a long secret written the way the old leak wrote a code (a bare value in an event
      // payload), and a value and a code logged through the hub's logger.
      const realCodes = new Set(secrets.filter((s) => s.kind === 'code').map((s) => s.value));
      do planted.code = String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0');
      while (realCodes.has(planted.code));
      await hub.db.transaction((tx) => hub.events.emit(tx, { participantId: demoParticipantId('bank-b'), type: 'credential.issued', data: { code: planted.code, value: planted.long } }));
      hub.logger.info({ note: `control ${planted.logValue} ref ${planted.code}` }, 'secrets scan control');
    } finally {
      await hub.close();
      await receiver.close();
    }

    // ---- the scan ----------------------------------------------------------------------------------------------------
    const haystacks: Haystack[] = [{ name: 'logs', text: logLines.join(''), textual: true }];
    if (engine === 'pglite') {
      const files = filesUnder(dataDir);
      expect(files.some((f) => f.includes(`${join('pglite', 'pg_wal')}`))).toBe(true);
      for (const file of files) haystacks.push({ name: file.slice(dataDir.length + 1), text: readFileSync(file).toString('latin1'), textual: false });
      // Reopened only after the raw files were read: the table dump renders jsonb as text (for the CVV's field forms).
      const reopened = await openPglite(join(dataDir, 'pglite'));
      haystacks.push({ name: 'table dump', text: await tableDump(reopened), textual: true });
      await reopened.close();
    } else {
      const url = scratch?.url ?? '';
      const dumped = await pgDump(url);
      if (dumped !== undefined) haystacks.push({ name: 'pg_dump', text: dumped, textual: true });
      const db = openPostgres({ url, maxConnections: 2 });
      haystacks.push({ name: 'table dump', text: await tableDump(db), textual: true });
      await db.close();
    }
    try {
      const tableText = haystacks.find((h) => h.name === 'table dump')?.text ?? '';
      const found = (label: string, value: string, kind: SecretKind, where: (h: Haystack) => boolean) => findingsOf({ label, value, kind }, haystacks.filter(where), tableText).length;
      // Not vacuous: the planted values are found by the same searches, in every kind of store and in the logs.
      expect(found('planted', planted.long, 'long', (h) => h.name === 'table dump')).toBe(1);
      expect(found('planted code', planted.code, 'code', (h) => h.name === 'table dump')).toBe(1);
      if (engine === 'pglite') {
        expect(found('planted', planted.long, 'long', (h) => !h.textual)).toBeGreaterThan(0);
        expect(found('planted code', planted.code, 'code', (h) => !h.textual)).toBeGreaterThan(0); // a bare jsonb value in the raw pages or WAL
        expect(found('planted', planted.long, 'long', (h) => h.name.includes('pg_wal'))).toBeGreaterThan(0);
      } else if (haystacks.some((h) => h.name === 'pg_dump')) {
        expect(found('planted', planted.long, 'long', (h) => h.name === 'pg_dump')).toBe(1);
        expect(found('planted code', planted.code, 'code', (h) => h.name === 'pg_dump')).toBe(1);
      }
      expect(found('planted log value', planted.logValue, 'long', (h) => h.name === 'logs')).toBe(1);
      expect(found('planted log code', planted.code, 'code', (h) => h.name === 'logs')).toBe(1);
      expect(haystacks[0]?.text).toContain('"url":"/v1/me"'); // request lines are logged (with the path only)

      expect(secrets.filter((s) => s.kind === 'code')).toHaveLength(6);
      expect(secrets.filter((s) => s.kind === 'cvv')).toHaveLength(4); // two issued cards, two sandbox test cards
      expect(secrets.length).toBeGreaterThan(30);
      const hits = secrets.flatMap((s) => findingsOf(s, haystacks, tableText).map((where) => `${s.label} (${s.kind}) in ${where}`));
      expect(hits).toEqual([]);
    } finally {
      await scratch?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 300_000);
});

import { createHash, createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import type { Connection, ConnectionService } from '../participants/index.ts';
import {
  BATCH_OPERATION,
  MAX_BATCH_ITEMS,
  parseAnswer,
  parseBatchAnswer,
  publicKeyOf,
  SIGNATURE_HEADER,
  signDetached,
  verifyDetached,
  type ConnectorBatch,
  type ConnectorOperation,
  type ConnectorRequest,
  type StatusReason,
} from '../participant-sdk/index.ts';
import type { Clock } from '../platform/clock.ts';
import { createCoalescer, type Coalescer } from '../platform/coalescer.ts';
import type { Db, Flusher, Queryable } from '../platform/db.ts';
import type { Logger } from '../platform/logger.ts';
import { describeOutboundFailure, type OutboundFetch } from '../platform/outbound.ts';
import type { Vault } from '../platform/vault.ts';

/**
 * Outbound calls to connected participants (docs/ARCHITECTURE.md, "Connected participants"). Each request is signed
 * with the hub's Ed25519 key (a detached JWS over the body, src/participant-sdk/protocol.ts) and sent through the
 * outbound policy's guarded fetch with the participant's deadline; the answer must carry the participant's signature
 * by the key the operator registered for it, for this operation and transfer. Anything else is no answer:
 *   - no answer before the deadline, a refused or failed connection, a non-2xx status → AB05;
 *   - an answer whose signature does not verify → DS0B; an answer that is not a valid message → FF01.
 * Commit and abort messages go through an outbox (connector_messages), written in the transaction that decides the
 * payment and delivered after its COMMIT, retried with exponential backoff until the participant acknowledges them,
 * at most MAX_ATTEMPTS times (then left for the operator, with the last error). The messages of one delivery round for
 * one participant go as one signed batch (POST {base}/batch, src/participant-sdk/protocol.ts); a participant that
 * does not serve it (404) gets them one by one until BATCH_RETRY_MS have passed or its connection is registered again.
 * Reserves and accepts asked of one participant while its earlier ones are out go together the same way.
 */
export type AskOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: StatusReason; readonly hubReason: boolean };

export interface OutboxMessage {
  readonly paymentId: string;
  readonly participantId: string;
  readonly kind: 'commit' | 'abort';
  readonly request: ConnectorRequest;
}

export interface ConnectorService extends OpenBankingClient {
  /** The hub's public signing key, as connected participants verify its requests with (GET /v1/connector/jwks). */
  publicJwk(): Promise<{ kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string; use: 'sig'; alg: 'EdDSA' }>;
  /** Asks a connected participant to reserve or accept; never throws for what the participant does. */
  ask(connection: Connection, op: 'reserve' | 'accept', request: ConnectorRequest): Promise<AskOutcome>;
  /** Stages commit/abort messages in the deciding transaction (written with its COMMIT, sent by deliverSoon after it). */
  enqueue(tx: Queryable, messages: readonly OutboxMessage[]): void;
  /** Sends the messages that are due (at most `limit`); returns how many were acknowledged. */
  deliverDue(limit?: number): Promise<number>;
  /**
   * Sends the messages this process committed, without waiting (they were written leased to it: no claim statement):
   * one round at a time per process (a round running takes what was committed meanwhile in its next round), so that
   * many decisions in a burst cost a few rounds, not one each. Failures, and messages of a process that died before sending them,
   * wait for the background job (deliverDue).
   */
  deliverSoon(): void;
  /** Resolves once no round started by deliverSoon is running (for shutdown, and for tests that race one). */
  drain(): Promise<void>;
  /** Every message of a payment, for the operator and tests. */
  messages(paymentId: string): Promise<{ id: string; participantId: string; kind: string; attempts: number; acked: boolean; lastError: string | null }[]>;
}

/** What the bank's token endpoint granted (OAuth 2.0 authorization code with PKCE): a bearer token and the accounts it covers. */
export interface BankGrant {
  readonly accessToken: string;
  readonly expiresInS: number;
  readonly scope: string;
  readonly bankConsentId: string;
  readonly accounts: readonly { readonly id: string; readonly currency: string }[];
}
export type BankCallFailure = { readonly ok: false; readonly kind: 'refused' | 'revoked' | 'unavailable'; readonly detail: string };
export interface BankBalance {
  readonly balance: { readonly amount: string; readonly currency: string };
  readonly available: { readonly amount: string; readonly currency: string };
  readonly asOf: string;
}

/**
 * The hub as a connected bank's OAuth 2.0 client (open-banking account access, src/accounts/open-banking.ts). The bank's
 * endpoints sit under its connector URL: `/oauth/authorize` (the customer's approval, in their browser), `/oauth/token`
 * and `/oauth/revoke` (RFC 7009), signed by the hub's connector key (the client's authentication), and
 * `/ob/balances` with the bearer token (signed as well). Token and balance answers must carry the bank's connector
 * signature.
 */
export interface OpenBankingClient {
  authorizeUrl(connection: Connection, params: { redirectUri: string; state: string; codeChallenge: string; scope: string }): string;
  exchangeCode(connection: Connection, params: { code: string; codeVerifier: string; redirectUri: string }): Promise<({ ok: true } & BankGrant) | BankCallFailure>;
  readBalance(connection: Connection, accessToken: string, accountId: string): Promise<({ ok: true } & BankBalance) | BankCallFailure>;
  revokeGrant(connection: Connection, accessToken: string, bankConsentId: string): Promise<{ ok: boolean }>;
}
export const OPEN_BANKING_CLIENT_ID = 'hutong';

export const MAX_ATTEMPTS = 12;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 5 * 60_000;
/** While one process sends a message, others leave it alone for this long. */
const LEASE_MS = 30_000;
/** Messages one round of deliverSoon sends. */
const DELIVER_SOON_BATCH = 128;
/** Batches of asks one participant may have out at once (the next forms meanwhile). */
const ASK_BATCHES_IN_FLIGHT = 2;
/** After a participant answered 404 to a batch, its messages go one by one for this long. */
const BATCH_RETRY_MS = 10 * 60_000;
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

interface Signer {
  readonly key: KeyObject;
  readonly kid: string;
  readonly x: string;
}

/** A message on its way: claimed from the outbox, or fresh from this process's commit. */
interface Outgoing {
  readonly id: string;
  readonly participant_id: string;
  readonly kind: 'commit' | 'abort';
  readonly body: ConnectorRequest;
  readonly attempts: number;
}
/** Fresh messages a process keeps to send at once (beyond it they wait for the background job when their lease ends). */
const MAX_FRESH = 10_000;

/**
 * A staged outbox row: id, payment id, participant id, kind, body (JSON), created at (ISO), next at (ISO). A row is
 * written as claimed by its own process (first attempt, leased): that process sends it right after the COMMIT without
 * claiming it again; the background job takes it only if the lease ends unacknowledged (the process died meanwhile).
 */
type StagedMessage = readonly [string, string, string, string, string, string, string];
const messageFlusher: Flusher<StagedMessage> = {
  flush: (tx, rows) =>
    tx.query(
      `insert into connector_messages (id, payment_id, participant_id, kind, body, created_at, next_at, attempts)
       select id, pid, par, kind, body::jsonb, at::timestamptz, nxt::timestamptz, 1
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) as v(id, pid, par, kind, body, at, nxt)
       on conflict (id) do nothing`,
      [0, 1, 2, 3, 4, 5, 6].map((i) => rows.map((r) => r[i])),
    ),
};

export function createConnectorService(deps: { db: Db; clock: Clock; vault: Vault; logger: Logger; fetch: OutboundFetch; connections: Pick<ConnectionService, 'connected'> }): ConnectorService {
  const { db, clock, vault, logger, fetch: doFetch, connections } = deps;
  let signer: Promise<Signer> | undefined;
  const signerOf = () => {
    signer ??= vault
      .secret('connector_signing')
      .then((seed) => {
        const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
        const jwk = createPublicKey(key).export({ format: 'jwk' });
        const x = String(jwk.x);
        return { key, x, kid: `hub-${createHash('sha256').update(x).digest('hex').slice(0, 16)}` };
      })
      .catch((error: unknown) => {
        signer = undefined;
        throw error;
      });
    return signer;
  };

  /** One signed call; the verified answer or the reason there is none. */
  const call = async (connection: Connection, op: ConnectorOperation, request: ConnectorRequest, timeoutMs: number): Promise<AskOutcome & { status?: string }> => {
    const s = await signerOf();
    const body = JSON.stringify(request);
    const signature = await signDetached(body, s.key, { kid: s.kid, op, txid: request.TxId, iat: Math.floor(clock.nowMs() / 1000) });
    const url = `${(connection.endpointUrl ?? '').replace(/\/+$/, '')}/${op}`;
    let text: string;
    let answerSignature: string | undefined;
    try {
      const res = await doFetch(url, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature }, body, redirect: 'manual', signal: AbortSignal.timeout(Math.max(1, timeoutMs)) });
      text = await res.text();
      if (res.status < 200 || res.status > 299) return { ok: false, reason: { Rsn: 'AB05', AddtlInf: `the participant answered HTTP ${res.status}` }, hubReason: true };
      answerSignature = res.headers.get(SIGNATURE_HEADER) ?? undefined;
    } catch (error) {
      return { ok: false, reason: { Rsn: 'AB05', AddtlInf: `no answer before the deadline (${describeOutboundFailure(error)})` }, hubReason: true };
    }
    const answer = parseAnswer(text);
    if (answer === undefined || answer.TxId !== request.TxId) return { ok: false, reason: { Rsn: 'FF01', AddtlInf: 'the answer is not a valid connector message for this transfer' }, hubReason: true };
    if (connection.publicJwk === null) return { ok: false, reason: { Rsn: 'DS0B', AddtlInf: 'no key registered' }, hubReason: true };
    const verified = await verifyDetached(text, answerSignature, await publicKeyOf(connection.publicJwk), { op, txid: request.TxId, nowS: Math.floor(clock.nowMs() / 1000) });
    if (!verified.ok) return { ok: false, reason: { Rsn: 'DS0B', AddtlInf: `the answer's signature does not verify (${verified.reason})` }, hubReason: true };
    if (answer.TxSts === 'RJCT') return { ok: false, reason: answer.StsRsnInf ?? { Rsn: 'NARR' }, hubReason: false, status: answer.TxSts };
    return { ok: true, status: answer.TxSts };
  };

  /**
   * Participants that answered 404 to a batch: their messages go one by one until BATCH_RETRY_MS have passed or their
   * connection is registered again (it may have been upgraded). Bounded: one entry per participant.
   */
  const batchRefused = new Map<string, { readonly untilMs: number; readonly registeredAtMs: number }>();
  const refuseBatches = (connection: Connection) => batchRefused.set(connection.participantId, { untilMs: clock.nowMs() + BATCH_RETRY_MS, registeredAtMs: connection.updatedAt.getTime() });
  const batchesRefused = (connection: Connection) => {
    const r = batchRefused.get(connection.participantId);
    return r !== undefined && r.untilMs > clock.nowMs() && r.registeredAtMs === connection.updatedAt.getTime();
  };
  /**
   * One signed batch to a participant (reserves and accepts, or commits and aborts): the outcome of each item (by its
   * id), or `unsupported` when the participant does not serve batches. A failure of the whole exchange is every item's
   * outcome.
   */
  const callBatch = async (connection: Connection, items: readonly { readonly id: string; readonly body: ConnectorRequest }[], timeoutMs: number): Promise<Map<string, AskOutcome> | 'unsupported'> => {
    const s = await signerOf();
    const msgId = `batch-${randomUUID()}`;
    const batch: ConnectorBatch = { MsgId: msgId, CreDtTm: clock.now().toISOString(), Op: BATCH_OPERATION, NbOfTxs: items.length, TxInf: items.map((i) => i.body) };
    const body = JSON.stringify(batch);
    const signature = await signDetached(body, s.key, { kid: s.kid, op: BATCH_OPERATION, txid: msgId, iat: Math.floor(clock.nowMs() / 1000) });
    const all = (outcome: AskOutcome) => new Map(items.map((i) => [i.id, outcome]));
    let text: string;
    let answerSignature: string | undefined;
    try {
      const res = await doFetch(`${base(connection)}/${BATCH_OPERATION}`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature }, body, redirect: 'manual', signal: AbortSignal.timeout(Math.max(1, timeoutMs)) });
      text = await res.text();
      if (res.status === 404) return 'unsupported';
      if (res.status < 200 || res.status > 299) return all({ ok: false, reason: { Rsn: 'AB05', AddtlInf: `the participant answered HTTP ${res.status}` }, hubReason: true });
      answerSignature = res.headers.get(SIGNATURE_HEADER) ?? undefined;
    } catch (error) {
      return all({ ok: false, reason: { Rsn: 'AB05', AddtlInf: `no answer before the deadline (${describeOutboundFailure(error)})` }, hubReason: true });
    }
    if (connection.publicJwk === null) return all({ ok: false, reason: { Rsn: 'DS0B', AddtlInf: 'no key registered' }, hubReason: true });
    const verified = await verifyDetached(text, answerSignature, await publicKeyOf(connection.publicJwk), { op: BATCH_OPERATION, txid: msgId, nowS: Math.floor(clock.nowMs() / 1000) });
    if (!verified.ok) return all({ ok: false, reason: { Rsn: 'DS0B', AddtlInf: `the answer's signature does not verify (${verified.reason})` }, hubReason: true });
    const answer = parseBatchAnswer(text);
    if (answer === undefined || answer.OrgnlMsgId !== msgId) return all({ ok: false, reason: { Rsn: 'FF01', AddtlInf: 'the answer is not a valid connector batch answer for this batch' }, hubReason: true });
    const byTx = new Map(answer.TxInfAndSts.map((a) => [a.TxId, a]));
    return new Map(
      items.map((i): [string, AskOutcome] => {
        const a = byTx.get(i.body.TxId);
        if (a === undefined || a.OrgnlMsgId !== i.body.MsgId) return [i.id, { ok: false, reason: { Rsn: 'FF01', AddtlInf: 'the batch answer has no status for this message' }, hubReason: true }];
        if (a.TxSts === 'RJCT') return [i.id, { ok: false, reason: a.StsRsnInf ?? { Rsn: 'NARR' }, hubReason: false }];
        return [i.id, { ok: true }];
      }),
    );
  };

  /** One reserve or accept, answered only if before the payment's deadline (a late answer is the hub's decision's). */
  type Ask = { readonly connection: Connection; readonly op: 'reserve' | 'accept'; readonly request: ConnectorRequest };
  const leftMs = (request: ConnectorRequest) => Date.parse(request.SttlmDdln) - clock.nowMs();
  const inTime = (request: ConnectorRequest, outcome: AskOutcome): AskOutcome => {
    if (outcome.ok && clock.nowMs() > Date.parse(request.SttlmDdln)) return { ok: false, reason: { Rsn: 'AB05', AddtlInf: 'the answer came after the deadline' }, hubReason: true };
    return outcome.ok ? { ok: true } : { ok: false, reason: outcome.reason, hubReason: outcome.hubReason };
  };
  const askAlone = async (a: Ask): Promise<AskOutcome> => inTime(a.request, await call(a.connection, a.op, a.request, Math.min(a.connection.deadlineMs, Math.max(1, leftMs(a.request)))));
  /**
   * Asks of one participant that arrive while one of its batches is out go together in the next (as the coalescer
   * batches reads): under load one signed exchange carries many payments' reserves, alone the first goes at once. A
   * transfer asked twice in one batch (it should not be) has its second ask sent alone.
   */
  const sendAsks = async (asks: readonly Ask[]): Promise<AskOutcome[]> => {
    const first = asks[0];
    if (first === undefined) return [];
    if (asks.length === 1 || batchesRefused(first.connection)) return Promise.all(asks.map(askAlone));
    const seen = new Set<string>();
    const together: { id: string; body: ConnectorRequest }[] = [];
    asks.forEach((a, i) => {
      if (seen.has(a.request.TxId)) return;
      seen.add(a.request.TxId);
      together.push({ id: String(i), body: a.request });
    });
    const timeoutMs = Math.min(first.connection.deadlineMs, ...asks.map((a) => Math.max(1, leftMs(a.request))));
    const outcomes = await callBatch(first.connection, together, timeoutMs);
    if (outcomes === 'unsupported') {
      refuseBatches(first.connection);
      return Promise.all(asks.map(askAlone));
    }
    return Promise.all(asks.map(async (a, i) => {
      const outcome = outcomes.get(String(i));
      return outcome === undefined ? askAlone(a) : inTime(a.request, outcome);
    }));
  };
  /** A coalescer per participant and currency (bounded by the connections there are). */
  const askers = new Map<string, Coalescer<Ask, AskOutcome>>();
  const askerOf = (connection: Connection) => {
    const key = `${connection.participantId}\u0000${connection.currency}`;
    let asker = askers.get(key);
    if (asker === undefined) {
      asker = createCoalescer(sendAsks, { maxBatch: MAX_BATCH_ITEMS, maxInFlight: ASK_BATCHES_IN_FLIGHT });
      askers.set(key, asker);
    }
    return asker;
  };

  const base = (connection: Connection) => (connection.endpointUrl ?? '').replace(/\/+$/, '');
  /** A signed POST to the bank's OAuth side; the answer, verified when `verifyAs` is given. */
  const oauthPost = async (connection: Connection, path: string, op: string, txid: string, payload: object, verifyAs?: string) => {
    const s = await signerOf();
    const body = JSON.stringify(payload);
    const signature = await signDetached(body, s.key, { kid: s.kid, op, txid, iat: Math.floor(clock.nowMs() / 1000) });
    const res = await doFetch(`${base(connection)}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature }, body, redirect: 'manual', signal: AbortSignal.timeout(connection.deadlineMs) });
    const text = await res.text();
    let verified = true;
    if (verifyAs !== undefined && res.status === 200) {
      verified = connection.publicJwk !== null && (await verifyDetached(text, res.headers.get(SIGNATURE_HEADER) ?? undefined, await publicKeyOf(connection.publicJwk), { op: verifyAs, txid, nowS: Math.floor(clock.nowMs() / 1000) })).ok;
    }
    return { status: res.status, text, verified };
  };
  const parsed = (text: string): Record<string, unknown> => {
    try {
      const v: unknown = JSON.parse(text);
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  };
  const isWireMoney = (v: unknown): v is { amount: string; currency: string } =>
    typeof v === 'object' && v !== null && typeof (v as { amount?: unknown }).amount === 'string' && /^-?[0-9]{1,18}(\.[0-9]{1,4})?$/.test((v as { amount: string }).amount) && typeof (v as { currency?: unknown }).currency === 'string';

  /** Sends messages (claimed, or fresh from this process's commits) and writes every outcome in two statements; returns how many were acknowledged. */
  const sendRound = async (messages: readonly Outgoing[]): Promise<number> => {
    const acks: { id: string }[] = [];
    const retries: { id: string; nextAt: Date; error: string }[] = [];
    const record = (m: Outgoing, outcome: AskOutcome) => {
      // An abort acknowledged is RJCT by design; anything verified and signed for this message is its acknowledgement.
      const acknowledged = outcome.ok || (m.kind === 'abort' && !outcome.hubReason);
      if (acknowledged) {
        acks.push({ id: m.id });
      } else {
        const backoff = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(20, m.attempts - 1));
        retries.push({ id: m.id, nextAt: new Date(clock.nowMs() + backoff), error: `${outcome.reason.Rsn}: ${outcome.reason.AddtlInf ?? ''}`.slice(0, 500) });
        if (m.attempts >= MAX_ATTEMPTS) logger.warn({ messageId: m.id, participantId: m.participant_id }, 'connector message not acknowledged after the last attempt');
      }
    };
    // The round's messages by participant and currency (one connection each): one batch per group of more than one.
    const groups = new Map<string, Outgoing[]>();
    for (const m of messages) {
      const key = `${m.participant_id}\u0000${m.body.IntrBkSttlmAmt.currency}`;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [m]);
      else group.push(m);
    }
    await Promise.all(
      [...groups.values()].map(async (group) => {
        const first = group[0];
        if (first === undefined) return;
        const connection = await connections.connected(first.participant_id, first.body.IntrBkSttlmAmt.currency);
        if (connection === undefined) {
          for (const m of group) record(m, { ok: false, reason: { Rsn: 'NARR', AddtlInf: 'the participant is no longer connected in this currency' }, hubReason: true });
          return;
        }
        const alone: typeof group = [];
        if (group.length > 1 && !batchesRefused(connection)) {
          for (let i = 0; i < group.length; i += MAX_BATCH_ITEMS) {
            const chunk = group.slice(i, i + MAX_BATCH_ITEMS);
            const outcomes = await callBatch(connection, chunk, connection.deadlineMs);
            if (outcomes === 'unsupported') {
              refuseBatches(connection);
              alone.push(...group.slice(i));
              break;
            }
            batchRefused.delete(first.participant_id);
            for (const m of chunk) record(m, outcomes.get(m.id) ?? { ok: false, reason: { Rsn: 'FF01', AddtlInf: 'no outcome' }, hubReason: true });
          }
        } else {
          alone.push(...group);
        }
        await Promise.all(alone.map(async (m) => record(m, await call(connection, m.kind, m.body, connection.deadlineMs))));
      }),
    );
    // Every outcome of the round in two statements (not one per message).
    if (acks.length > 0) await db.query('update connector_messages set acked_at = $2, last_error = null where id = any($1::text[])', [acks.map((a) => a.id), clock.now()]);
    if (retries.length > 0) {
      await db.query(
        `update connector_messages m set next_at = u.next_at::timestamptz, last_error = u.error from unnest($1::text[], $2::text[], $3::text[]) as u(id, next_at, error) where m.id = u.id`,
        [retries.map((r) => r.id), retries.map((r) => r.nextAt.toISOString()), retries.map((r) => r.error)],
      );
    }
    return acks.length;
  };

  const rounds: { running: Promise<void> | undefined } = { running: undefined };
  /** Messages committed by this process, not sent yet (deliverSoon sends them). */
  const fresh: Outgoing[] = [];
  const service: ConnectorService = {
    deliverSoon() {
      // A round running takes what was committed meanwhile in its next round.
      if (rounds.running !== undefined) return;
      rounds.running = (async () => {
        try {
          // Bounded: at most 64 rounds of DELIVER_SOON_BATCH per call; what is left is taken by a call right after.
          for (let round = 0; round < 64 && fresh.length > 0; round++) await sendRound(fresh.splice(0, DELIVER_SOON_BATCH));
        } catch (error) {
          logger.warn({ err: error }, 'connector messages: delivery failed (retried by the background job)');
        } finally {
          rounds.running = undefined;
          if (fresh.length > 0) setImmediate(() => service.deliverSoon());
        }
      })();
    },
    async drain() {
      while (rounds.running !== undefined) await rounds.running;
    },
    authorizeUrl(connection, params) {
      const q = new URLSearchParams({ response_type: 'code', client_id: OPEN_BANKING_CLIENT_ID, redirect_uri: params.redirectUri, scope: params.scope, state: params.state, code_challenge: params.codeChallenge, code_challenge_method: 'S256' });
      return `${base(connection)}/oauth/authorize?${q.toString()}`;
    },
    async exchangeCode(connection, params) {
      try {
        const r = await oauthPost(connection, '/oauth/token', 'token', params.code, { grant_type: 'authorization_code', code: params.code, code_verifier: params.codeVerifier, redirect_uri: params.redirectUri, client_id: OPEN_BANKING_CLIENT_ID }, 'token');
        const body = parsed(r.text);
        if (r.status === 400 || r.status === 401) return { ok: false, kind: 'refused', detail: `${String(body.error ?? r.status)}: ${String(body.error_description ?? '')}`.slice(0, 300) };
        if (r.status !== 200) return { ok: false, kind: 'unavailable', detail: `the bank answered HTTP ${r.status}` };
        if (!r.verified) return { ok: false, kind: 'unavailable', detail: 'the token answer is not signed by the bank’s registered key' };
        const accounts = Array.isArray(body.accounts) ? body.accounts.filter((a): a is { id: string; currency: string } => typeof a === 'object' && a !== null && typeof a.id === 'string' && typeof a.currency === 'string') : [];
        if (typeof body.access_token !== 'string' || typeof body.consent_id !== 'string' || accounts.length === 0) return { ok: false, kind: 'unavailable', detail: 'the token answer is not a grant' };
        return { ok: true, accessToken: body.access_token, expiresInS: typeof body.expires_in === 'number' ? body.expires_in : 0, scope: typeof body.scope === 'string' ? body.scope : '', bankConsentId: body.consent_id, accounts: accounts.map((a) => ({ id: a.id, currency: a.currency })) };
      } catch (error) {
        return { ok: false, kind: 'unavailable', detail: describeOutboundFailure(error) };
      }
    },
    async readBalance(connection, accessToken, accountId) {
      try {
        const s = await signerOf();
        const payload = JSON.stringify({ account_id: accountId });
        const signature = await signDetached(payload, s.key, { kid: s.kid, op: 'balance', txid: accountId, iat: Math.floor(clock.nowMs() / 1000) });
        const res = await doFetch(`${base(connection)}/ob/balances`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}`, [SIGNATURE_HEADER]: signature },
          body: payload,
          redirect: 'manual',
          signal: AbortSignal.timeout(connection.deadlineMs),
        });
        const text = await res.text();
        const body = parsed(text);
        if ((res.status === 401 || res.status === 403) && (body.error === 'consent_revoked' || body.error === 'invalid_token' || body.error === 'insufficient_scope')) return { ok: false, kind: 'revoked', detail: String(body.error) };
        if (res.status !== 200) return { ok: false, kind: 'unavailable', detail: `the bank answered HTTP ${res.status}` };
        const signed = connection.publicJwk !== null && (await verifyDetached(text, res.headers.get(SIGNATURE_HEADER) ?? undefined, await publicKeyOf(connection.publicJwk), { op: 'balance', txid: accountId, nowS: Math.floor(clock.nowMs() / 1000) })).ok;
        if (!signed || !isWireMoney(body.balance) || !isWireMoney(body.available)) return { ok: false, kind: 'unavailable', detail: 'the balance answer is not signed by the bank or not a balance' };
        return { ok: true, balance: body.balance, available: body.available, asOf: typeof body.asOf === 'string' ? body.asOf : clock.now().toISOString() };
      } catch (error) {
        return { ok: false, kind: 'unavailable', detail: describeOutboundFailure(error) };
      }
    },
    async revokeGrant(connection, accessToken, bankConsentId) {
      try {
        const r = await oauthPost(connection, '/oauth/revoke', 'revoke', bankConsentId, { token: accessToken, token_type_hint: 'access_token', consent_id: bankConsentId });
        return { ok: r.status === 200 };
      } catch {
        return { ok: false };
      }
    },
    async publicJwk() {
      const s = await signerOf();
      return { kty: 'OKP', crv: 'Ed25519', x: s.x, kid: s.kid, use: 'sig', alg: 'EdDSA' };
    },
    ask(connection, op, request) {
      return askerOf(connection).load({ connection, op, request });
    },
    enqueue(tx, messages) {
      const hooks = tx.hooks;
      if (hooks === undefined) throw new Error('connector messages are staged in a transaction');
      const now = clock.nowMs();
      const at = new Date(now).toISOString();
      const leaseEnd = new Date(now + LEASE_MS).toISOString();
      const outgoing: Outgoing[] = [];
      for (const m of messages) {
        const id = `${m.paymentId}:${m.kind}:${m.participantId}`;
        hooks.stage(messageFlusher, [id, m.paymentId, m.participantId, m.kind, JSON.stringify(m.request), at, leaseEnd]);
        outgoing.push({ id, participant_id: m.participantId, kind: m.kind, body: m.request, attempts: 1 });
      }
      hooks.afterCommit(() => {
        for (const o of outgoing) if (fresh.length < MAX_FRESH) fresh.push(o);
      });
    },
    async deliverDue(limit = 32) {
      const now = clock.now();
      // Claim (a lease), outside the calls: no row lock is held while the participant answers.
      const claimed = await db.transaction(async (tx) =>
        tx.query<Outgoing>(
          `update connector_messages m set next_at = $2, attempts = m.attempts + 1
            where m.id in (select id from connector_messages where acked_at is null and next_at <= $1 and attempts < $4 order by next_at limit $3 for update skip locked)
           returning m.id, m.participant_id, m.kind, m.body, m.attempts`,
          [now, new Date(now.getTime() + LEASE_MS), limit, MAX_ATTEMPTS],
        ),
      );
      return sendRound(claimed);
    },
    async messages(paymentId) {
      const rows = await db.query<{ id: string; participant_id: string; kind: string; attempts: number; acked_at: Date | null; last_error: string | null }>(
        'select id, participant_id, kind, attempts, acked_at, last_error from connector_messages where payment_id = $1 order by id',
        [paymentId],
      );
      return rows.map((r) => ({ id: r.id, participantId: r.participant_id, kind: r.kind, attempts: r.attempts, acked: r.acked_at !== null, lastError: r.last_error }));
    },
  };
  return service;
}

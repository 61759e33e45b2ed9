import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  BATCH_OPERATION,
  CONNECTOR_OPERATIONS,
  parseBatch,
  parseRequest,
  publicKeyOf,
  REASON_CODE,
  SIGNATURE_HEADER,
  signDetached,
  verifyDetached,
  type ConnectorAnswer,
  type ConnectorOperation,
  type ConnectorRequest,
  type SigningKey,
  type StatusReason,
  type TransferStatus,
} from './protocol.ts';

/**
 * The participant side of the connector protocol: a bank's core system plugs its own handlers in and the SDK does the
 * rest — verifies the hub's signature on every request (and that it was made for this operation and transfer),
 * answers each operation once per transfer (a repeated request gets the stored answer, never a second effect), signs
 * every answer, and asks the hub for a transfer's final state (after a crash, or when a commit or abort is late).
 */
export type Decision = { readonly ok: true } | { readonly ok: false; readonly reason: StatusReason };

export interface ConnectorHandlers {
  /** Hold the amount on `DbtrAcct` (the payer's account): refuse with AC01/AC04/AM04/AM02… */
  reserve(request: ConnectorRequest): Promise<Decision>;
  /** Will `CdtrAcct` (the payee's account) take this credit? Refuse with AC01/AC04/AM02/RR04… */
  accept(request: ConnectorRequest): Promise<Decision>;
  /** The hub committed: turn the hold into a debit (payer side) or credit the customer (payee side). */
  commit(request: ConnectorRequest): Promise<void>;
  /** The hub aborted: release the hold (payer side) or forget the acceptance (payee side). */
  abort(request: ConnectorRequest): Promise<void>;
  /**
   * Optional: commits and aborts of several transfers at once (a batch from the hub), e.g. in one statement of the
   * bank's own database. Without it a batch's items are committed or aborted one by one.
   */
  settleMany?(items: readonly { readonly request: ConnectorRequest; readonly commit: boolean }[]): Promise<void>;
}

/** Where answers are kept by operation and transfer id, so that a repeated request is answered the same. */
export interface AnswerStore {
  get(key: string): Promise<string | undefined>;
  put(key: string, answer: string): Promise<void>;
  /** Optional: several answers in one read (a reserve and its abort, a batch's items); absent keys are left out. */
  getMany?(keys: readonly string[]): Promise<Map<string, string>>;
  /** Optional: several answers written at once (a batch's). */
  putMany?(entries: readonly (readonly [string, string])[]): Promise<void>;
}

export function memoryAnswerStore(): AnswerStore {
  const answers = new Map<string, string>();
  return {
    get: async (key) => answers.get(key),
    put: async (key, answer) => {
      answers.set(key, answer);
    },
  };
}

export interface ConnectorOptions {
  /** The hub's public key (GET /v1/connector/jwks on the hub). */
  readonly hubPublicJwk: { readonly kty: string; readonly crv: string; readonly x: string };
  /** This participant's signing key (its public half registered at the hub) and its key id. */
  readonly signingKey: SigningKey;
  readonly kid: string;
  readonly handlers: ConnectorHandlers;
  readonly store?: AnswerStore;
  readonly nowMs?: () => number;
}

export interface ConnectorReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface Connector {
  /** Handles one request: `op` from the path (…/reserve), the raw body and the signature header. */
  handle(op: string, body: string, signature: string | undefined): Promise<ConnectorReply>;
  /** A Node HTTP listener serving POST {base}/reserve|accept|commit|abort|batch. */
  listener(): (req: IncomingMessage, res: ServerResponse) => void;
}

const plain = (status: number, message: string): ConnectorReply => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: message }) });

export function createConnector(options: ConnectorOptions): Connector {
  const store = options.store ?? memoryAnswerStore();
  const nowMs = options.nowMs ?? (() => Date.now());
  const hubKey = publicKeyOf(options.hubPublicJwk);
  // Requests for one transfer are handled one at a time, so that a duplicate arriving while the first runs waits for
  // its answer instead of running the handler again.
  const running = new Map<string, Promise<unknown>>();

  const signed = async (op: string, txid: string, answer: object): Promise<ConnectorReply> => {
    const body = JSON.stringify(answer);
    const signature = await signDetached(body, options.signingKey, { kid: options.kid, op, txid, iat: Math.floor(nowMs() / 1000) });
    return { status: 200, headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature }, body };
  };
  const getMany = async (keys: readonly string[]): Promise<Map<string, string>> => {
    if (store.getMany !== undefined) return store.getMany(keys);
    const found = new Map<string, string>();
    for (const key of keys) {
      const body = await store.get(key);
      if (body !== undefined) found.set(key, body);
    }
    return found;
  };
  const putMany = async (entries: readonly (readonly [string, string])[]): Promise<void> => {
    if (store.putMany !== undefined) return store.putMany(entries);
    for (const [key, body] of entries) await store.put(key, body);
  };
  const keyOf = (request: ConnectorRequest) => `${request.Op}:${request.TxId}`;
  /** The answer to a commit or abort once the handler has applied it. */
  const settledAnswer = (request: ConnectorRequest): ConnectorAnswer => {
    const base = { OrgnlMsgId: request.MsgId, TxId: request.TxId };
    if (request.Op === 'commit') return { ...base, TxSts: request.DbtrAcct !== undefined ? 'ACSC' : 'ACCC' };
    return { ...base, TxSts: 'RJCT', ...(request.StsRsnInf !== undefined ? { StsRsnInf: request.StsRsnInf } : {}) };
  };

  /** `aborted`: the stored answer to this transfer's abort, if one came first. */
  const answerFor = async (op: ConnectorOperation, request: ConnectorRequest, aborted: string | undefined): Promise<ConnectorAnswer> => {
    const base = { OrgnlMsgId: request.MsgId, TxId: request.TxId };
    switch (op) {
      case 'reserve':
      case 'accept': {
        // An abort that came first (the hub gave up before this request reached the bank) wins: never hold after it.
        if (aborted !== undefined) {
          const reason = (JSON.parse(aborted) as ConnectorAnswer).StsRsnInf ?? { Rsn: 'AB05' };
          return { ...base, TxSts: 'RJCT', StsRsnInf: reason };
        }
        const decision = await (op === 'reserve' ? options.handlers.reserve(request) : options.handlers.accept(request));
        if (decision.ok) return { ...base, TxSts: 'ACSP' };
        const reason = REASON_CODE.test(decision.reason.Rsn) ? decision.reason : { Rsn: 'NARR', AddtlInf: decision.reason.Rsn };
        return { ...base, TxSts: 'RJCT', StsRsnInf: reason };
      }
      case 'commit':
        await options.handlers.commit(request);
        return settledAnswer(request);
      case 'abort':
        await options.handlers.abort(request);
        return settledAnswer(request);
    }
  };

  /** Runs `work` for a transfer after whatever runs for it already (a duplicate waits for the first's answer). */
  const serialized = <T>(txId: string, work: () => Promise<T>): Promise<T> => {
    const before = running.get(txId);
    const result = (before ?? Promise.resolve()).catch(() => undefined).then(work);
    running.set(txId, result);
    const forget = () => {
      if (running.get(txId) === result) running.delete(txId);
    };
    result.then(forget, forget);
    return result;
  };

  /** One operation on one transfer, answered once: a stored answer is read, never made again. */
  const once = (operation: ConnectorOperation, request: ConnectorRequest): Promise<ConnectorAnswer> =>
    serialized(request.TxId, async () => {
      const key = `${operation}:${request.TxId}`;
      const abortKey = `abort:${request.TxId}`;
      // A reserve or accept reads its own stored answer and the transfer's abort in one go.
      const stored = await getMany(operation === 'reserve' || operation === 'accept' ? [key, abortKey] : [key]);
      const existing = stored.get(key);
      if (existing !== undefined) return JSON.parse(existing) as ConnectorAnswer;
      const answer = await answerFor(operation, request, stored.get(abortKey));
      await store.put(key, JSON.stringify(answer));
      return answer;
    });

  /**
   * A batch. Its commits and aborts of transfers with nothing running share one read of stored answers, one settle
   * (`settleMany` when the bank has it) and one write; a reserve or accept, or an item whose transfer has a request
   * running, is answered as the request alone would be.
   */
  const batchOf = async (items: readonly ConnectorRequest[]): Promise<ConnectorAnswer[]> => {
    const settles = (r: ConnectorRequest) => r.Op === 'commit' || r.Op === 'abort';
    const together = items.filter((r) => settles(r) && !running.has(r.TxId));
    // Only when some item waits for it (a rejection nobody awaits would be unhandled).
    const shared = together.length === 0 ? Promise.resolve(new Map<string, ConnectorAnswer>()) : (async () => {
      const stored = await getMany(together.map(keyOf));
      const answers = new Map<string, ConnectorAnswer>();
      const fresh: ConnectorRequest[] = [];
      for (const r of together) {
        const s = stored.get(keyOf(r));
        if (s !== undefined) answers.set(r.TxId, JSON.parse(s) as ConnectorAnswer);
        else fresh.push(r);
      }
      if (fresh.length > 0) {
        if (options.handlers.settleMany !== undefined) await options.handlers.settleMany(fresh.map((request) => ({ request, commit: request.Op === 'commit' })));
        else for (const r of fresh) await (r.Op === 'commit' ? options.handlers.commit(r) : options.handlers.abort(r));
        for (const r of fresh) answers.set(r.TxId, settledAnswer(r));
        await putMany(fresh.map((r) => [keyOf(r), JSON.stringify(answers.get(r.TxId))] as const));
      }
      return answers;
    })();
    const pick = (r: ConnectorRequest) => async () => {
      const answer = (await shared).get(r.TxId);
      if (answer === undefined) throw new Error(`batch: no answer made for ${r.TxId}`);
      return answer;
    };
    // Registered before any await, so that a request for one of these transfers arriving meanwhile waits for it.
    return Promise.all(items.map((r) => (together.includes(r) ? serialized(r.TxId, pick(r)) : once(r.Op, r))));
  };

  const connector: Connector = {
    async handle(op, body, signature) {
      if (op === BATCH_OPERATION) {
        const batch = parseBatch(body);
        if (batch === undefined) return plain(400, 'not a connector batch');
        const verified = await verifyDetached(body, signature, await hubKey, { op: BATCH_OPERATION, txid: batch.MsgId, nowS: Math.floor(nowMs() / 1000) });
        if (!verified.ok) return plain(401, `signature: ${verified.reason}`);
        return signed(BATCH_OPERATION, batch.MsgId, { OrgnlMsgId: batch.MsgId, TxInfAndSts: await batchOf(batch.TxInf) });
      }
      if (!(CONNECTOR_OPERATIONS as readonly string[]).includes(op)) return plain(404, 'unknown operation');
      const operation = op as ConnectorOperation;
      const request = parseRequest(body);
      if (request === undefined || request.Op !== operation) return plain(400, 'not a connector request');
      const verified = await verifyDetached(body, signature, await hubKey, { op: operation, txid: request.TxId, nowS: Math.floor(nowMs() / 1000) });
      if (!verified.ok) return plain(401, `signature: ${verified.reason}`);
      return signed(operation, request.TxId, await once(operation, request));
    },
    listener() {
      return nodeListener((op, body, signature) => connector.handle(op, body, signature));
    },
  };
  return connector;
}

/** A Node HTTP listener serving POST {base}/reserve|accept|commit|abort|batch through `handle`. */
export function nodeListener(handle: Connector['handle']): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 65_536) chunks.push(c);
    });
    req.on('end', () => {
      const op = (req.url ?? '').split('?')[0]?.split('/').filter((s) => s !== '').pop() ?? '';
      const sig = req.headers[SIGNATURE_HEADER];
      const reply =
        req.method !== 'POST'
          ? Promise.resolve(plain(405, 'POST only'))
          : size > 65_536
            ? Promise.resolve(plain(413, 'too large'))
            : handle(op, Buffer.concat(chunks).toString('utf8'), typeof sig === 'string' ? sig : undefined);
      reply.then(
        (r) => {
          res.writeHead(r.status, r.headers);
          res.end(r.body);
        },
        () => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'handler failed' }));
        },
      );
    });
  };
}

/** Serves a connector on a port (0: any free port); resolves with the server and its base URL. */
export async function serveConnector(connector: Connector, options: { port: number; host?: string }): Promise<{ server: Server; url: string }> {
  const server = createServer(connector.listener());
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = address !== null && typeof address === 'object' ? address.port : options.port;
  return { server, url: `http://${host}:${port}` };
}

/**
 * The participant's client for the hub's connector API: the final state of a transfer (GET
 * /v1/connector/transfers/{id}) with OAuth 2.0 client credentials, as every participant API call.
 */
export interface HubClient {
  transferStatus(txId: string): Promise<TransferStatus | undefined>;
  /** Reports an answer again (late or repeated): the hub answers what it decided. */
  reportStatus(txId: string, status: { TxSts: 'ACSP' | 'RJCT'; StsRsnInf?: StatusReason }): Promise<TransferStatus | undefined>;
}

export function createHubClient(options: { hubUrl: string; clientId: string; clientSecret: string; fetch?: typeof fetch }): HubClient {
  const doFetch = options.fetch ?? fetch;
  let token: { value: string; until: number } | undefined;
  const bearer = async () => {
    if (token !== undefined && token.until > Date.now()) return token.value;
    const res = await doFetch(`${options.hubUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: options.clientId, client_secret: options.clientSecret }),
    });
    if (!res.ok) throw new Error(`hub token: ${res.status}`);
    const body = (await res.json()) as { access_token: string; expires_in: number };
    token = { value: body.access_token, until: Date.now() + (body.expires_in - 30) * 1000 };
    return token.value;
  };
  return {
    async transferStatus(txId) {
      const res = await doFetch(`${options.hubUrl}/v1/connector/transfers/${encodeURIComponent(txId)}`, { headers: { authorization: `Bearer ${await bearer()}` } });
      if (res.status === 404) return undefined;
      if (!res.ok) throw new Error(`hub transfer status: ${res.status}`);
      return (await res.json()) as TransferStatus;
    },
    async reportStatus(txId, status) {
      const res = await doFetch(`${options.hubUrl}/v1/connector/transfers/${encodeURIComponent(txId)}/status`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await bearer()}`, 'content-type': 'application/json' },
        body: JSON.stringify(status),
      });
      if (res.status === 404) return undefined;
      if (!res.ok) throw new Error(`hub status report: ${res.status}`);
      return (await res.json()) as TransferStatus;
    },
  };
}

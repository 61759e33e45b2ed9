import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { paths } from './schema.ts';

/**
 * The Hutong API client: openapi-fetch over the generated `paths` types (every path, parameter, body and answer typed,
 * error bodies included), with OAuth 2.0 client-credentials tokens fetched and renewed for you, and safe retries.
 *
 *   const hub = createHutongClient({ baseUrl, clientId, clientSecret });
 *   const { data, error } = await hub.POST('/v1/transfers/quotes', { body: {...} });
 *   await hub.POST('/v1/transfers/payments', { body: { quoteId }, params: { header: { 'Idempotency-Key': idempotencyKey() } } });
 */
export type HutongClient = Client<paths>;

export interface RetryOptions {
  /** Attempts in all, the first included (default 4; 1 turns retries off). */
  readonly attempts?: number;
  /** First backoff in ms, doubled each attempt, with full jitter (default 200). */
  readonly baseDelayMs?: number;
  /** Longest wait between attempts in ms (default 5000); a Retry-After header is honoured up to this. */
  readonly maxDelayMs?: number;
}

export interface HutongClientOptions {
  /** The hub's origin, e.g. `http://localhost:8080`. */
  readonly baseUrl: string;
  /** Client credentials (POST /oauth/token); or give `accessToken` to manage tokens yourself. */
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** A fixed bearer token (a customer session token, the operator credential). */
  readonly accessToken?: string | (() => Promise<string>);
  readonly fetch?: typeof fetch;
  readonly retry?: RetryOptions;
}

/**
 * A fresh Idempotency-Key: send one per intended effect, and the same one again when retrying that effect (a network
 * error, a timeout, 409 idempotency_in_progress, 503): the hub replays the first answer instead of acting twice.
 */
export function idempotencyKey(prefix = 'idk'): string {
  return `${prefix}_${crypto.randomUUID()}`;
}

const RETRY_STATUSES = new Set([408, 409, 425, 429, 502, 503, 504]);

/**
 * Whether a request may be sent again: reads (GET, HEAD) always; a write only with an Idempotency-Key, which makes a
 * retry replay rather than repeat (409 then means "the first is still running").
 */
function retryable(request: Request): boolean {
  return request.method === 'GET' || request.method === 'HEAD' || request.headers.has('idempotency-key');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The `error.code` of an error answer, read from a copy (the caller still reads the body). */
async function errorCodeOf(response: Response): Promise<string | undefined> {
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return typeof body.error?.code === 'string' ? body.error.code : undefined;
  } catch {
    return undefined;
  }
}

/** fetch that retries network errors and 408/409/425/429/5xx-unavailable answers, with backoff, when that is safe. */
export function retryingFetch(base: typeof fetch, options: RetryOptions = {}): typeof fetch {
  const attempts = Math.max(1, options.attempts ?? 4);
  const baseDelay = options.baseDelayMs ?? 200;
  const maxDelay = options.maxDelayMs ?? 5000;
  return async (input, init) => {
    const request = new Request(input, init);
    const canRetry = retryable(request);
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= attempts || !canRetry;
      try {
        const response = await base(request.clone());
        if (last || !RETRY_STATUSES.has(response.status)) return response;
        // A 409 is worth retrying only while the first request with this key is still running; any other conflict
        // (payment_state, customer_account_exists…) is the answer, and a retry would only replay it.
        if (response.status === 409 && (await errorCodeOf(response)) !== 'idempotency_in_progress') return response;
        const after = Number(response.headers.get('retry-after'));
        const backoff = Number.isFinite(after) && after > 0 ? after * 1000 : Math.random() * baseDelay * 2 ** (attempt - 1);
        await response.body?.cancel();
        await sleep(Math.min(maxDelay, backoff));
      } catch (error) {
        if (last) throw error;
        await sleep(Math.min(maxDelay, Math.random() * baseDelay * 2 ** (attempt - 1)));
      }
    }
  };
}

/** Client-credentials tokens, fetched on first use and renewed a little before they expire. */
function clientCredentials(baseUrl: string, clientId: string, clientSecret: string, fetcher: typeof fetch): () => Promise<string> {
  let cached: { token: string; expiresAtMs: number } | undefined;
  let pending: Promise<string> | undefined;
  return async () => {
    if (cached !== undefined && Date.now() < cached.expiresAtMs) return cached.token;
    pending ??= (async () => {
      try {
        const res = await fetcher(new URL('/oauth/token', baseUrl), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
        });
        const body = (await res.json()) as { access_token?: string; expires_in?: number; error?: { code: string; message: string } };
        if (!res.ok || body.access_token === undefined) throw new Error(`POST /oauth/token: ${res.status} ${body.error?.code ?? ''} ${body.error?.message ?? ''}`.trim());
        cached = { token: body.access_token, expiresAtMs: Date.now() + Math.max(0, (body.expires_in ?? 300) - 30) * 1000 };
        return body.access_token;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };
}

export function createHutongClient(options: HutongClientOptions): HutongClient {
  const base = options.fetch ?? globalThis.fetch;
  const fetcher = retryingFetch(base, options.retry);
  const token =
    typeof options.accessToken === 'function'
      ? options.accessToken
      : options.accessToken !== undefined
        ? ((fixed: string) => async () => fixed)(options.accessToken)
        : options.clientId !== undefined && options.clientSecret !== undefined
          ? clientCredentials(options.baseUrl, options.clientId, options.clientSecret, base)
          : undefined;
  const client = createClient<paths>({ baseUrl: options.baseUrl, fetch: fetcher });
  if (token !== undefined) {
    const auth: Middleware = {
      async onRequest({ request }) {
        if (!request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${await token()}`);
        return request;
      },
    };
    client.use(auth);
  }
  return client;
}

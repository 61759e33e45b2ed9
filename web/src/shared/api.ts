/** The public API, called from the browser exactly as a bank or wallet would call it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** A failure the page itself finds (no network call), named by its dictionary key: shown translated. */
export class PageError extends Error {
  constructor(readonly key: string) {
    super(key);
  }
}

export type TokenSource = () => Promise<string | undefined>;

export interface Api {
  get<T = any>(path: string): Promise<T>;
  post<T = any>(path: string, body?: unknown, options?: { idempotencyKey?: string }): Promise<T>;
  del<T = any>(path: string): Promise<T>;
  text(path: string): Promise<string>;
}

const newKey = () => (typeof crypto.randomUUID === 'function' ? crypto.randomUUID() : `k-${Date.now()}-${Math.random().toString(36).slice(2)}`);

export function createApi(token: TokenSource, onUnauthorized?: () => void): Api {
  const call = async <T>(method: string, path: string, body?: unknown, options: { idempotencyKey?: string } = {}): Promise<T> => {
    const headers: Record<string, string> = {};
    const bearer = await token();
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    // Every POST carries an Idempotency-Key: a retry of the same click never pays twice.
    if (method === 'POST') headers['idempotency-key'] = options.idempotencyKey ?? newKey();
    const res = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    let parsed: any = undefined;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      if (res.status === 401) onUnauthorized?.();
      const e = parsed?.error;
      throw new ApiError(res.status, e?.code ?? 'http_error', e?.message ?? `HTTP ${res.status}`, e?.details);
    }
    return parsed as T;
  };
  return {
    get: (path) => call('GET', path),
    post: (path, body, options) => call('POST', path, body ?? {}, options),
    del: (path) => call('DELETE', path),
    async text(path) {
      // Plain-text answers (Prometheus metrics) take the same bearer credential as the JSON calls.
      const bearer = await token();
      const res = await fetch(path, bearer !== undefined ? { headers: { authorization: `Bearer ${bearer}` } } : {});
      if (!res.ok) {
        if (res.status === 401) onUnauthorized?.();
        throw new ApiError(res.status, 'http_error', `HTTP ${res.status}`);
      }
      return res.text();
    },
  };
}

export const errorText = (e: unknown): string => (e instanceof ApiError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));

/**
 * The code of a failure as the pages translate it: the API's code, `network_error` when the request never reached the
 * hub (fetch rejects with a TypeError), `http_error` otherwise.
 */
export const errorCode = (e: unknown): string => (e instanceof ApiError ? e.code : e instanceof TypeError ? 'network_error' : 'http_error');

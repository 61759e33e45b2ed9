import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFakeClock, type Clock } from '../../src/platform/clock.ts';
import { defaultKeyDir, loadConfig, type HubConfig } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createHub, type Hub } from '../../src/main.ts';
import type { HostResolver } from '../../src/platform/outbound.ts';
import { seedDemoNetwork, type DemoNetwork } from '../../src/demo/seed.ts';
import { openTestDb, type Engine, type TestDatabase } from './engines.ts';

export interface TestHub {
  readonly hub: Hub;
  readonly engine: Engine;
  readonly demo: DemoNetwork;
  readonly dataDir: string;
  readonly database: TestDatabase;
  /** Calls the API in-process as a demo participant (by demo key), the operator, or anonymously. */
  api(as: string | 'operator' | 'anonymous'): ApiClient;
  close(): Promise<void>;
}

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly body: T;
  readonly headers: Record<string, string | string[] | number | undefined>;
}

export interface ApiClient {
  get<T = any>(url: string, headers?: Record<string, string>): Promise<ApiResponse<T>>;
  post<T = any>(url: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>;
  patch<T = any>(url: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>;
  delete<T = any>(url: string, headers?: Record<string, string>): Promise<ApiResponse<T>>;
  raw(options: { method: 'GET' | 'POST' | 'PATCH' | 'DELETE'; url: string; payload?: string; headers?: Record<string, string> }): Promise<ApiResponse>;
}

export async function startTestHub(
  engine: Engine,
  options: { clock?: Clock; config?: Partial<HubConfig>; fetch?: typeof fetch; resolveHost?: HostResolver; seed?: boolean } = {},
): Promise<TestHub> {
  const database = await openTestDb(engine, { migrate: false });
  const dataDir = mkdtempSync(join(tmpdir(), 'hutong-test-'));
  const config = loadConfig({ HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent' }, { operatorToken: 'op_test_token', demo: true, ...options.config });
  const hub = await createHub(config, {
    db: database.db,
    clock: options.clock ?? createFakeClock(Date.now()),
    logger: createLogger({ level: process.env.LOG ?? 'silent' }),
    ...(options.fetch !== undefined ? { fetch: options.fetch } : {}),
    ...(options.resolveHost !== undefined ? { resolveHost: options.resolveHost } : {}),
  });
  const demo = options.seed === false ? { participants: [], customers: new Map<string, string>(), created: false } : await seedDemoNetwork(hub);
  // Tokens are cached per participant until they near expiry on the hub's clock (tests move fake clocks).
  const tokens = new Map<string, { token: string; issuedAtMs: number }>();
  const tokenLifetimeMs = (hub.config.accessTokenTtlS - 30) * 1000;

  const tokenFor = async (key: string): Promise<string> => {
    const cached = tokens.get(key);
    if (cached !== undefined && hub.clock.nowMs() - cached.issuedAtMs < tokenLifetimeMs) return cached.token;
    const p = demo.participants.find((d) => d.key === key);
    if (p === undefined) throw new Error(`no demo participant ${key}`);
    const res = await hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: p.clientId, client_secret: p.clientSecret } });
    if (res.statusCode !== 200) throw new Error(`token for ${key}: ${res.statusCode} ${res.body}`);
    const token = (res.json() as { access_token: string }).access_token;
    tokens.set(key, { token, issuedAtMs: hub.clock.nowMs() });
    return token;
  };

  const api = (as: string): ApiClient => {
    const auth = async (): Promise<Record<string, string>> =>
      as === 'anonymous' ? {} : { authorization: `Bearer ${as === 'operator' ? hub.operatorToken : await tokenFor(as)}` };
    const call = async <T = any>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = {}) => {
      const res = await hub.app.inject({ method, url, headers: { ...(await auth()), ...headers }, ...(body !== undefined ? { payload: body as object } : {}) });
      let parsed: unknown = res.body;
      try {
        parsed = JSON.parse(res.body);
      } catch {
        /* not JSON */
      }
      return { status: res.statusCode, body: parsed as T, headers: res.headers } as ApiResponse<T>;
    };
    return {
      get: (url, headers) => call<any>('GET', url, undefined, headers),
      post: (url, body, headers) => call('POST', url, body ?? {}, headers),
      patch: (url, body, headers) => call('PATCH', url, body ?? {}, headers),
      delete: (url, headers) => call('DELETE', url, undefined, headers),
      async raw({ method, url, payload, headers }) {
        const res = await hub.app.inject({ method, url, headers: { ...(await auth()), ...headers }, ...(payload !== undefined ? { payload } : {}) });
        let parsed: unknown = res.body;
        try {
          parsed = JSON.parse(res.body);
        } catch {
          /* not JSON */
        }
        return { status: res.statusCode, body: parsed, headers: res.headers };
      },
    };
  };

  return {
    hub,
    engine,
    demo,
    dataDir,
    database,
    api,
    async close() {
      await hub.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    },
  };
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFakeClock, type Clock } from '../../src/platform/clock.ts';
import { defaultKeyDir, loadConfig, type HubConfig } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createHub, type Hub } from '../../src/main.ts';
import type { Db, Queryable, Session } from '../../src/platform/db.ts';
import type { HostResolver } from '../../src/platform/outbound.ts';
import { seedDemoNetwork, type DemoNetwork } from '../../src/demo/seed.ts';
import { openTestDb, type Engine, type TestDatabase } from './engines.ts';

export interface TestHub {
  /** The hub now running (after `crash()`, the one started in place of the killed one). */
  readonly hub: Hub;
  readonly engine: Engine;
  readonly demo: DemoNetwork;
  readonly dataDir: string;
  readonly database: TestDatabase;
  /** Calls the API in-process as a demo participant (by demo key), the operator, or anonymously. */
  api(as: string | 'operator' | 'anonymous'): ApiClient;
  /**
   * Kills the running hub and starts a new one on the same database, data directory (key file, vault) and clock, as a
   * process manager restarts a hub after SIGKILL. Only with `crashable: true`; see `HubFaults` for what "killed" means.
   */
  crash(): Promise<void>;
  /** Hooks into the running hub's database and network calls, to kill it at a chosen point (crashable hubs only). */
  readonly faults: HubFaults;
  close(): Promise<void>;
}

/**
 * In-process stand-in for SIGKILL (PGlite is an in-process database: a second process cannot open it, so a real kill
 * cannot be had on both engines). Each hub started by a crashable test hub reaches the database and the network only
 * through a fence; `kill()` shuts the fence: from then on every statement it sends fails (a transaction under way
 * rolls back, and one whose body finished is rolled back instead of committed, as the server does when the client's
 * connection drops), every outbound call it starts fails, and an answer that comes back to it is dropped. Its timers
 * and in-flight requests may run on, but nothing they do reaches the database or a participant: the hub is dead.
 */
export interface HubFaults {
  /** Called before each statement of the running hub (inside transactions too): a test may call `kill()` from it. */
  onQuery: ((text: string) => void) | undefined;
  /** Called before each outbound call of the running hub and when its answer arrives (`answered`). */
  onFetch: ((url: string, body: string | undefined, phase: 'sending' | 'answered') => void) | undefined;
  /** Kills the running hub now (see above); `crash()` then starts the next. */
  kill(): void;
  /** Whether the running hub was killed. */
  readonly killed: boolean;
}

class HubKilled extends Error {
  constructor() {
    super('the hub process was killed');
  }
}

/** The database and fetch one hub incarnation sees, both cut by `kill()` (see HubFaults). */
function fencedIo(db: Db, faults: { onQuery: HubFaults['onQuery']; onFetch: HubFaults['onFetch'] }, inner: typeof fetch) {
  let dead = false;
  const check = () => {
    if (dead) throw new HubKilled();
  };
  const fencedQueryable = <Q extends Queryable>(q: Q): Q =>
    new Proxy(q, {
      get(target, prop, receiver) {
        if (prop === 'query') {
          return (text: string, params?: readonly unknown[]) => {
            check();
            faults.onQuery?.(text);
            check();
            return target.query(text, params);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const topLevel = fencedQueryable(db);
  const fencedDb = new Proxy(db, {
    get(target, prop, receiver) {
      if (prop === 'query') return topLevel.query;
      if (prop === 'transaction') {
        return async <T>(fn: (tx: Queryable) => Promise<T>, options?: Parameters<Db['transaction']>[1]) => {
          check();
          return target.transaction(async (tx) => {
            const out = await fn(fencedQueryable(tx));
            // The body finished after the kill: its COMMIT is never sent.
            check();
            return out;
          }, options);
        };
      }
      if (prop === 'session') {
        return async (): Promise<Session> => {
          check();
          return fencedQueryable(await target.session());
        };
      }
      if (prop === 'exec') {
        return async (script: string) => {
          check();
          return target.exec(script);
        };
      }
      // The database outlives the hub: the next one uses it.
      if (prop === 'close') return async () => undefined;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const fencedFetch: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const body = typeof init?.body === 'string' ? init.body : undefined;
    check();
    faults.onFetch?.(url, body, 'sending');
    check();
    const res = await inner(input, init);
    faults.onFetch?.(url, body, 'answered');
    check();
    return res;
  };
  return { db: fencedDb, fetch: fencedFetch, kill: () => (dead = true), killed: () => dead };
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
  options: { clock?: Clock; config?: Partial<HubConfig>; fetch?: typeof fetch; resolveHost?: HostResolver; seed?: boolean; crashable?: boolean } = {},
): Promise<TestHub> {
  const database = await openTestDb(engine, { migrate: false });
  const dataDir = mkdtempSync(join(tmpdir(), 'hutong-test-'));
  const config = loadConfig({ HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent' }, { operatorToken: 'op_test_token', demo: true, ...options.config });
  const clock = options.clock ?? createFakeClock(Date.now());
  const hooks: Pick<HubFaults, 'onQuery' | 'onFetch'> = { onQuery: undefined, onFetch: undefined };
  let fence: ReturnType<typeof fencedIo> | undefined;
  const start = async () => {
    // A crashable hub calls participants with plain fetch (loopback allowed, as the demo-mode policy does).
    fence = options.crashable === true ? fencedIo(database.db, hooks, options.fetch ?? ((input, init) => fetch(input, init))) : undefined;
    return createHub(config, {
      db: fence?.db ?? database.db,
      clock,
      logger: createLogger({ level: process.env.LOG ?? 'silent' }),
      ...(fence !== undefined ? { fetch: fence.fetch } : options.fetch !== undefined ? { fetch: options.fetch } : {}),
      ...(options.resolveHost !== undefined ? { resolveHost: options.resolveHost } : {}),
    });
  };
  let hub = await start();
  const faults: HubFaults = {
    get onQuery() {
      return hooks.onQuery;
    },
    set onQuery(f) {
      hooks.onQuery = f;
    },
    get onFetch() {
      return hooks.onFetch;
    },
    set onFetch(f) {
      hooks.onFetch = f;
    },
    kill() {
      if (fence === undefined) throw new Error('startTestHub: kill() needs crashable: true');
      fence.kill();
    },
    get killed() {
      return fence?.killed() ?? false;
    },
  };
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
    get hub() {
      return hub;
    },
    engine,
    demo,
    dataDir,
    database,
    api,
    faults,
    async crash() {
      if (fence === undefined) throw new Error('startTestHub: crash() needs crashable: true');
      fence.kill();
      const dead = hub;
      hooks.onQuery = undefined;
      hooks.onFetch = undefined;
      hub = await start();
      // The dead hub's objects are let go (its HTTP server, caches): everything it could still try fails at the fence,
      // so closing it only frees memory for a test that kills hundreds of hubs.
      void dead.close().catch(() => undefined);
    },
    async close() {
      await hub.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    },
  };
}

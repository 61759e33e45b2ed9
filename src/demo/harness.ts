import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CliIo } from '../cli/index.ts';
import { createHub, type Hub } from '../main.ts';
import { defaultKeyDir, loadConfig } from '../platform/config.ts';
import { createLogger } from '../platform/logger.ts';
import { seedDemoNetwork, type DemoNetwork } from './seed.ts';

/**
 * A fresh embedded hub for a demo story: PGlite in a temporary directory, the demo network seeded, listening on a
 * free local port. Steps call the real HTTP API, print what they did, and record whether it behaved as expected.
 */
export interface DemoResponse {
  readonly status: number;
  readonly body: any;
}

export interface DemoHarness {
  readonly hub: Hub;
  readonly demo: DemoNetwork;
  readonly baseUrl: string;
  call(as: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, headers?: Record<string, string>): Promise<DemoResponse>;
  /** Runs a step; a thrown error or a false result marks the demo failed. */
  step(title: string, fn: () => Promise<string | boolean | void>): Promise<void>;
  readonly ok: boolean;
  close(): Promise<void>;
}

export async function openDemoHarness(io: CliIo): Promise<DemoHarness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hutong-demo-'));
  const config = loadConfig({ ...process.env, HUTONG_DATA_DIR: dataDir, HUTONG_KEY_DIR: '', DATABASE_URL: '', HUTONG_LOG_LEVEL: 'warn' }, { port: 0, host: '127.0.0.1', demo: true });
  const hub = await createHub(config, { logger: createLogger({ level: 'warn' }) });
  const demo = await seedDemoNetwork(hub);
  hub.startBackground();
  const address = await hub.listen();
  const tokens = new Map<string, string>();
  let ok = true;
  let stepNo = 0;

  const token = async (key: string): Promise<string> => {
    if (key === 'operator') return hub.operatorToken;
    const cached = tokens.get(key);
    if (cached !== undefined) return cached;
    const p = demo.participants.find((d) => d.key === key);
    if (p === undefined) throw new Error(`no demo participant ${key}`);
    const res = await fetch(`${address}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: p.clientId, client_secret: p.clientSecret }),
    });
    const json = (await res.json()) as { access_token: string };
    tokens.set(key, json.access_token);
    return json.access_token;
  };

  return {
    hub,
    demo,
    baseUrl: address,
    async call(as, method, path, body, headers = {}) {
      const res = await fetch(`${address}${path}`, {
        method,
        headers: { authorization: `Bearer ${await token(as)}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed };
    },
    async step(title, fn) {
      stepNo += 1;
      try {
        const result = await fn();
        if (result === false) {
          ok = false;
          io.stdout(`✘ ${stepNo}. ${title}`);
        } else {
          io.stdout(`✔ ${stepNo}. ${title}${typeof result === 'string' ? `\n     ${result.replace(/\n/g, '\n     ')}` : ''}`);
        }
      } catch (error) {
        ok = false;
        io.stdout(`✘ ${stepNo}. ${title}\n     ${error instanceof Error ? error.message : String(error)}`);
      }
    },
    get ok() {
      return ok;
    },
    async close() {
      await hub.close();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
    },
  };
}

/** Throws unless the response has the expected status; returns the body. */
export function expectStatus(res: DemoResponse, status: number, what: string): any {
  if (res.status !== status) throw new Error(`${what}: expected HTTP ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCatalogue } from '../../src/api/errors.ts';
import { registeredRoutes } from '../../src/platform/http.ts';
import { AUTHORIZATION_REQUEST_TYPE, EVENT_TYPES, eventCatalogue } from '../../src/webhooks/catalogue.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * The API document (/openapi.json) is complete: every route the hub registers is in it with an operationId, a summary,
 * a description, its success body and its error codes; every event type is under `webhooks`; and a maintained linter
 * (Redocly CLI, recommended rules) finds no error. The document does not depend on the storage engine: one hub.
 */

type Operation = {
  operationId?: string;
  summary?: string;
  description?: string;
  parameters?: { name: string; in: string; required?: boolean }[];
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Record<string, unknown> }> }>;
  security?: unknown[];
};
type Document = {
  servers?: unknown[];
  paths: Record<string, Record<string, Operation>>;
  webhooks?: Record<string, { post?: Operation & { requestBody?: unknown } }>;
  components: { schemas: Record<string, unknown>; responses?: Record<string, unknown> };
};

/** Routes left out of the document on purpose: the document itself, the browsable docs, the web pages' files. */
const HIDDEN = [/^\/openapi\.json$/, /^\/docs(\/|$)/, /^\/(app|wallet|console|merchant|issuer|pay)(\/|$)/, /^\/$/, /^\/\*$/];

/**
 * Success bodies still documented as open objects (`{}` with any fields) — debt to pay down, never to grow: a new route
 * must document its body. Each entry is "METHOD path status".
 */
const OPEN_SUCCESS_BODIES_KNOWN = new Set<string>([
]);

let t: TestHub;
let doc: Document;
/** The document as served (before the test reads shared responses in place). */
let served: string;

beforeAll(async () => {
  const [engine] = await availableEngines();
  if (engine === undefined) throw new Error('no storage engine');
  t = await startTestHub(engine, { seed: false });
  const res = await t.api('anonymous').get('/openapi.json');
  expect(res.status).toBe(200);
  served = JSON.stringify(res.body);
  doc = res.body as Document;
  // Error responses are shared under components.responses: read them in place.
  for (const item of Object.values(doc.paths)) {
    for (const op of Object.values(item)) {
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        const ref = (response as { $ref?: string }).$ref;
        if (ref !== undefined) (op.responses ?? {})[status] = doc.components.responses?.[ref.replace('#/components/responses/', '')] as never;
      }
    }
  }
}, 120_000);
afterAll(async () => {
  await t?.close();
});

const docPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

function isOpenObject(schema: Record<string, unknown> | undefined): boolean {
  if (schema === undefined) return true;
  if (typeof schema.$ref === 'string') return false;
  const properties = schema.properties as Record<string, unknown> | undefined;
  return schema.type === 'object' && (properties === undefined || Object.keys(properties).length === 0) && schema.additionalProperties !== false;
}

describe('the API document', () => {
  it('shows every registered route, each with operationId, summary, description, security and a documented success body', () => {
    const routes = registeredRoutes(t.hub.app);
    expect(routes.length).toBeGreaterThan(100);
    const hiddenUnexpectedly = routes.filter((r) => r.hidden && !HIDDEN.some((h) => h.test(r.url)));
    expect(hiddenUnexpectedly, 'routes hidden from the API document').toEqual([]);
    const ids = new Set<string>();
    const openBodies: string[] = [];
    for (const route of routes.filter((r) => !r.hidden)) {
      const op = doc.paths[docPath(route.url)]?.[route.method.toLowerCase()];
      expect(op, `${route.method} ${route.url} is not in /openapi.json`).toBeDefined();
      if (op === undefined) continue;
      const where = `${route.method} ${route.url}`;
      expect(op.operationId, where).toMatch(/^[a-z][A-Za-z0-9]*$/);
      expect(ids.has(op.operationId ?? ''), `${where}: operationId ${op.operationId} is taken`).toBe(false);
      ids.add(op.operationId ?? '');
      expect(op.summary?.length ?? 0, where).toBeGreaterThan(5);
      expect(op.description?.trim().length ?? 0, where).toBeGreaterThan(10);
      expect(op.security, where).toBeDefined();
      const success = Object.entries(op.responses ?? {}).filter(([status]) => /^2/.test(status));
      expect(success.length, `${where}: no success response`).toBeGreaterThan(0);
      for (const [status, response] of success) {
        expect(response.content, `${where} ${status}: no content`).toBeDefined();
        for (const [media, { schema }] of Object.entries(response.content ?? {})) {
          if (media === 'application/json' && isOpenObject(schema)) openBodies.push(`${route.method} ${route.url} ${status}`);
        }
      }
      // Errors are listed per status, each with its codes (never one catch-all 4XX).
      const errors = Object.keys(op.responses ?? {}).filter((s) => /^[45]/.test(s));
      expect(errors, where).not.toContain('4XX');
      expect(errors, where).toContain('500');
    }
    expect(openBodies.filter((b) => !OPEN_SUCCESS_BODIES_KNOWN.has(b)), 'success bodies documented as open objects').toEqual([]);
    // An entry whose body is now documented leaves the list (it only shrinks).
    expect([...OPEN_SUCCESS_BODIES_KNOWN].filter((b) => !openBodies.includes(b)), 'documented now: remove from OPEN_SUCCESS_BODIES_KNOWN').toEqual([]);
  });

  it('declares the Idempotency-Key header where the hub takes one, required where it refuses a request without', () => {
    let required = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const key = op.parameters?.find((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key');
        const codes = JSON.stringify(op.responses?.['400'] ?? {});
        if (key?.required === true) {
          required++;
          expect(codes, `${method} ${path}`).toContain('idempotency_key_required');
        } else {
          expect(codes, `${method} ${path}`).not.toContain('idempotency_key_required');
        }
        if (key !== undefined) expect(JSON.stringify(op.responses?.['422'] ?? {}), `${method} ${path}`).toContain('idempotency_key_reused');
      }
    }
    expect(required).toBeGreaterThan(10);
    // The money-moving calls a wallet makes first.
    expect(doc.paths['/v1/transfers/payments']?.post?.parameters?.find((p) => p.name === 'Idempotency-Key')?.required).toBe(true);
    expect(doc.paths['/v1/wallet/payments/qr']?.post?.parameters?.find((p) => p.name === 'Idempotency-Key')?.required).toBe(true);
  });

  it('lists every code of the error catalogue under some operation, and only catalogue codes', () => {
    const listed = new Set<string>();
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item)) {
        const errors = Object.entries(op.responses ?? {}).filter(([status]) => /^[45]/.test(status));
        for (const match of JSON.stringify(errors).matchAll(/"enum":\[([^\]]*)\]/g)) {
          for (const code of JSON.parse(`[${match[1] ?? ''}]`) as string[]) listed.add(code);
        }
      }
    }
    const catalogue = Object.keys(errorCatalogue);
    // Answered only before a route is known (Node's parser: the connection), never by an operation.
    const edgeOnly = new Set(['headers_too_large', 'request_timeout']);
    expect(catalogue.filter((c) => !listed.has(c) && !edgeOnly.has(c))).toEqual([]);
    expect([...listed].filter((c) => !(c in errorCatalogue))).toEqual([]);
  });

  it('shows image routes in their media types and names its servers', () => {
    expect(Object.keys(doc.paths['/v1/merchants/{merchantId}/qr-codes/{qrId}/png']?.get?.responses?.['200']?.content ?? {})).toEqual(['image/png']);
    expect(Object.keys(doc.paths['/v1/merchants/{merchantId}/qr-codes/{qrId}/svg']?.get?.responses?.['200']?.content ?? {})).toEqual(['image/svg+xml']);
    expect(Object.keys(doc.paths['/metrics']?.get?.responses?.['200']?.content ?? {})).toEqual(['text/plain']);
    expect(doc.servers?.length).toBeGreaterThan(0);
  });

  it('describes every event type under webhooks, and every event type the source emits is in the catalogue', () => {
    // Every event type, and the authorization request a real-time issuer's endpoint receives (not an event).
    expect(Object.keys(doc.webhooks ?? {}).sort()).toEqual([...EVENT_TYPES, AUTHORIZATION_REQUEST_TYPE].sort());
    for (const type of [...EVENT_TYPES, AUTHORIZATION_REQUEST_TYPE]) {
      const op = doc.webhooks?.[type]?.post;
      expect(op?.operationId, type).toMatch(/^on[A-Z]/);
      expect(JSON.stringify(op?.requestBody), type).toContain(`"const":"${type}"`);
      expect(op?.parameters?.map((p) => p.name)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
    }
    // Belt and braces (the outbox's type is the catalogue's union, so the compiler already refuses an unknown type):
    // every literal event type at an emit site of the source.
    const sources: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) sources.push(readFileSync(path, 'utf8'));
      }
    };
    walk(join(import.meta.dirname, '../../src'));
    const emitted = new Set<string>();
    for (const text of sources) {
      for (const call of text.matchAll(/\.emit\(tx, \{[\s\S]{0,200}?type: ([^,\n]+)/g)) {
        for (const literal of (call[1] ?? '').matchAll(/'([a-z_]+\.[a-z_]+)'/g)) emitted.add(literal[1] ?? '');
      }
      for (const call of text.matchAll(/(?:notify|tell)\(tx, [^']*'([a-z_]+\.[a-z_]+)'/g)) emitted.add(call[1] ?? '');
    }
    expect(emitted.size).toBeGreaterThan(30);
    expect([...emitted].filter((type) => !(type in eventCatalogue))).toEqual([]);
  });

  it('passes Redocly’s recommended rules with no error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hutong-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, served);
      const cli = join(import.meta.dirname, '../../node_modules/@redocly/cli/bin/cli.js');
      // The CLI exits non-zero when it finds errors; its JSON report says which.
      const run = await promisify(execFile)(process.execPath, [cli, 'lint', file, '--extends', 'recommended', '--format', 'json'], { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } }).catch(
        (error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }),
      );
      const report = JSON.parse(run.stdout) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; severity: string; message: string }[] };
      expect(report.problems.filter((p) => p.severity === 'error')).toEqual([]);
      expect(report.totals.errors).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

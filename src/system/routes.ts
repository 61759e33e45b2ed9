import { Type } from '@sinclair/typebox';
import { withDeadline, type Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { HttpMetrics } from '../platform/metrics.ts';
import { registerGuideRoutes } from './guides.ts';

/** What /health found: the hub committed a write to its database, or why it could not. */
export type WriteCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export const HEALTH_CHECK_LIMITS = {
  /** A result is reused this long, so that /health is cheap however often a balancer asks. */
  cacheMs: 1_000,
  /** Longest /health waits for the database to confirm the write. */
  deadlineMs: 2_000,
} as const;

/** Why a write failed, in a few words and without a secret: the error's code and the first line of its message. */
function describeFailure(error: unknown): string {
  const { code, message } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? (message.split('\n')[0] ?? '').slice(0, 200) : String(error).slice(0, 200);
  return typeof code === 'string' ? `${text} (${code})` : text;
}

/**
 * The hub is healthy when it can COMMIT: a hub whose database answers SELECT but cannot commit (restarting, read-only,
 * out of disk, waiting for a synchronous standby) takes money requests it cannot finish. The check commits one row
 * (`hub_heartbeat`), bounded by a short deadline; its result is kept about a second; at most one check is in flight
 * (one that outlives its deadline is not started again until it ends, so a hung database never fills the pool with
 * health checks).
 */
export function createWriteCheck(db: Db, limits: { readonly cacheMs: number; readonly deadlineMs: number } = HEALTH_CHECK_LIMITS): () => Promise<WriteCheck> {
  let last: { readonly atMs: number; readonly result: WriteCheck } | undefined;
  let inFlight: Promise<WriteCheck> | undefined;
  const probe = async (): Promise<WriteCheck> => {
    try {
      await db.transaction((tx) =>
        tx.query(`insert into hub_heartbeat (id, beat_at) values (1, now()) on conflict (id) do update set beat_at = excluded.beat_at`),
      );
      return { ok: true };
    } catch (error) {
      return { ok: false, reason: describeFailure(error) };
    }
  };
  // Monotonic time, not the hub's clock: a cache of a technical check (tests move the hub's clock).
  const remember = (result: WriteCheck): WriteCheck => {
    last = { atMs: performance.now(), result };
    return result;
  };
  return async () => {
    if (last !== undefined && performance.now() - last.atMs < limits.cacheMs) return last.result;
    inFlight ??= probe().then(remember).finally(() => {
      inFlight = undefined;
    });
    try {
      return await withDeadline(inFlight, limits.deadlineMs, 'the health check');
    } catch {
      return remember({ ok: false, reason: `the database did not confirm a write within ${limits.deadlineMs} ms` });
    }
  };
}

export function registerSystemRoutes(
  app: HttpServer,
  deps: { db: Db; metrics: HttpMetrics; errorStatus: Readonly<Record<string, number>>; version: string },
): void {
  const writeCheck = createWriteCheck(deps.db);
  app.get(
    '/health',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['system'],
        summary: 'Health: the hub can commit to its database',
        description:
          'Healthy (200) when the hub committed a write to its database within 2 s (checked at most about once a second); ' +
          'otherwise 503 `unavailable` with Retry-After and the reason, while the database is restarting, unreachable, ' +
          'read-only or unable to commit. For load balancers and orchestrators.',
        response: {
          200: Type.Object({ status: Type.Literal('ok'), engine: Type.String(), version: Type.String() }, { additionalProperties: false }),
        },
      },
    },
    async (_request, reply) => {
      const checked = await writeCheck();
      if (!checked.ok) {
        return reply
          .header('retry-after', '1')
          .fail({ code: 'unavailable', message: `the hub cannot commit to its database: ${checked.reason}`, details: { check: 'database_write', reason: checked.reason } });
      }
      return { status: 'ok' as const, engine: deps.db.engine, version: deps.version };
    },
  );

  // Metrics name routes, volumes and error rates: operator only. Prometheus scrapes with the operator credential as a
  // bearer token (scrape_config `authorization: { credentials_file: … }`).
  app.get(
    '/metrics',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['system'],
        summary: 'Prometheus metrics (operator credential)',
        description: 'Prometheus text format. Send the operator credential as `Authorization: Bearer <token>` (Prometheus: `authorization.credentials_file` in the scrape config).',
        security: [{ operator: [] }],
        produces: ['text/plain'],
      },
    },
    async (_request, reply) => {
      reply.header('content-type', deps.metrics.registry.contentType);
      return deps.metrics.registry.metrics();
    },
  );

  registerGuideRoutes(app);

  app.get('/openapi.json', { config: { auth: 'none' }, schema: { hide: true } }, async () => {
    const document = structuredClone(app.swagger()) as Record<string, unknown> & { components?: { schemas?: Record<string, { properties?: Record<string, { properties?: Record<string, Record<string, unknown>> }> }> } };
    // The stable error codes, with their statuses, are part of the contract.
    const codes = Object.keys(deps.errorStatus).sort();
    const code = document.components?.schemas?.ErrorBody?.properties?.error?.properties?.code;
    if (code !== undefined) code.enum = codes;
    document['x-error-codes'] = Object.fromEntries(codes.map((c) => [c, deps.errorStatus[c]]));
    return document;
  });
}

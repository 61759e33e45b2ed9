import { Type } from '@sinclair/typebox';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { HttpMetrics } from '../platform/metrics.ts';

export function registerSystemRoutes(
  app: HttpServer,
  deps: { db: Db; metrics: HttpMetrics; errorStatus: Readonly<Record<string, number>>; version: string },
): void {
  app.get(
    '/health',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['system'],
        summary: 'Liveness and database check',
        response: {
          200: Type.Object({ status: Type.Literal('ok'), engine: Type.String(), version: Type.String() }, { additionalProperties: false }),
        },
      },
    },
    async (_request, reply) => {
      try {
        await deps.db.query('select 1');
      } catch {
        return reply.fail({ code: 'unavailable', message: 'the database does not answer' });
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

import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Logger } from './logger.ts';
import type { HttpMetrics } from './metrics.ts';
import type { DomainError } from './result.ts';
import { idRandomBytes } from './ids.ts';
import { connectionLost } from './db.ts';

/**
 * The HTTP conventions every route of the hub follows, kept in one place:
 * schema-first routes (TypeBox → JSON Schema → OpenAPI 3.1), unknown fields rejected, a body size limit, one error
 * shape `{ error: { code, message, details? } }` with the stable codes of src/api/errors.ts, a request id on every
 * response and log line, Prometheus metrics per route.
 */
export type HttpServer = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  Logger,
  TypeBoxTypeProvider
>;

export type AuthKind = 'participant' | 'operator' | 'none';

declare module 'fastify' {
  interface FastifyReply {
    /** Sends a domain error with the HTTP status its code maps to. */
    fail(error: DomainError): FastifyReply;
  }
  interface FastifyContextConfig {
    auth?: AuthKind;
    /** A customer session token (bound to one customer) may call this route: the customer's own app needs it. */
    customer?: boolean;
  }
}

export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.String({ description: 'Stable machine-readable code; see the `x-error-codes` list of this document.' }),
        message: Type.String(),
        details: Type.Optional(Type.Object({}, { additionalProperties: true })),
      },
      { additionalProperties: false },
    ),
  },
  { $id: 'ErrorBody', additionalProperties: false },
);

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{8,64}$/;

export interface HttpServerOptions {
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  readonly metrics: HttpMetrics;
  readonly errorStatus: Readonly<Record<string, number>>;
  readonly title: string;
  readonly version: string;
  readonly description: string;
}

interface AjvErrorLike {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function validationError(error: FastifyError & { validation?: AjvErrorLike[]; validationContext?: string }): DomainError {
  const context = error.validationContext ?? 'body';
  const issues = (error.validation ?? []).slice(0, 10).map((v) => {
    const base = `${context}${v.instancePath ?? ''}`;
    if (v.keyword === 'additionalProperties') return { field: `${base}/${String(v.params?.additionalProperty)}`, reason: 'unknown field' };
    if (v.keyword === 'required') return { field: `${base}/${String(v.params?.missingProperty)}`, reason: 'required' };
    return { field: base, reason: v.message ?? 'invalid' };
  });
  const unknown = issues.find((i) => i.reason === 'unknown field');
  if (unknown !== undefined) return { code: 'unknown_field', message: `${unknown.field} is not a known field`, details: { issues } };
  const first = issues[0];
  return {
    code: 'validation_failed',
    message: first === undefined ? `invalid ${context}` : `${first.field}: ${first.reason}`,
    details: { issues },
  };
}

/** Maps Fastify's own errors (parsing, limits, validation) to the hub's codes. */
function frameworkError(error: FastifyError & { validation?: AjvErrorLike[] }): DomainError | undefined {
  if (error.validation !== undefined) return validationError(error);
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'body_too_large', message: 'request body is larger than the limit' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 'unsupported_media_type', message: 'send application/json' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'malformed_json', message: 'the JSON body is empty' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: 'malformed_request', message: 'content-length does not match the body' };
    default:
      break;
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return { code: 'malformed_json', message: 'the body is not valid JSON' };
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return { code: 'malformed_request', message: error.message };
  }
  return undefined;
}

/** A lost or refused database connection, as thrown or as the cause of what was thrown (bounded depth). */
function databaseUnreachable(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    if (connectionLost(e)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export async function createHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimitBytes,
    // Callers may pass their own request id for correlation; otherwise the hub makes one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : `req_${Buffer.from(idRandomBytes(9)).toString('base64url')}`;
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: {
      customOptions: {
        // Unknown fields are an error, never silently dropped; types are never coerced ("12" is not 12).
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: true,
        allErrors: false,
        // `x-ref` declares the kind of object an id names (src/api/refs.ts): an annotation for the ownership check and
        // the API document, not a validation rule.
        keywords: ['x-ref'],
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as HttpServer;

  app.decorateReply('fail', function fail(this: FastifyReply, error: DomainError) {
    const status = options.errorStatus[error.code];
    if (status === undefined) {
      this.log.error({ code: error.code }, 'domain error code has no HTTP status (add it to src/api/errors.ts)');
      return this.code(500).send({ error: { code: 'internal', message: 'internal error' } });
    }
    const body = error.details === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, details: error.details };
    return this.code(status).send({ error: body });
  });

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-request-id', request.id);
    // Every 429 says when to retry: domain errors carry `details.retryAfterMs`, whichever route answered them.
    if (reply.statusCode === 429 && !reply.hasHeader('retry-after') && typeof payload === 'string') {
      let retryAfterMs: unknown;
      try {
        retryAfterMs = (JSON.parse(payload) as { error?: { details?: { retryAfterMs?: unknown } } }).error?.details?.retryAfterMs;
      } catch {
        retryAfterMs = undefined; // not our JSON error body: nothing to add
      }
      if (typeof retryAfterMs === 'number') reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    }
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    options.metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    options.metrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  // JSON only, except OAuth's token endpoint, which takes form bodies (RFC 6749 §4.4).
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (req, body, done) => {
    if (req.routeOptions.url !== '/oauth/token') {
      done(Object.assign(new Error('send application/json'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }), undefined);
      return;
    }
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.addSchema(ErrorBody);

  // Every route answers errors in the one shape: add it to each route's documented responses.
  app.addHook('onRoute', (route) => {
    // The browsable docs are public, like /openapi.json.
    if (route.url.startsWith('/docs')) route.config = { ...route.config, auth: 'none' };
    if (route.schema === undefined || route.schema.hide === true) return;
    const response = (route.schema.response ?? {}) as Record<string, unknown>;
    response['4xx'] ??= Type.Ref(ErrorBody);
    response['5xx'] ??= Type.Ref(ErrorBody);
    route.schema.response = response;
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = frameworkError(error);
    if (known !== undefined) return reply.fail(known);
    if (databaseUnreachable(error)) {
      // Not a bug: the database restarted, refused the connection or ended the session. Safe to retry: a transaction cut
      // off this way did not commit, or (its COMMIT lost in flight) is found by the same Idempotency-Key.
      request.log.warn({ err: error }, 'database unreachable');
      return reply.header('retry-after', '1').fail({ code: 'unavailable', message: 'the database is unreachable; retry shortly (a write with the same Idempotency-Key)' });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ error: { code: 'internal', message: 'internal error; quote the request id to the operator', details: { requestId: request.id } } });
  });

  app.setNotFoundHandler((request, reply) => reply.fail({ code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: options.title, version: options.version, description: options.description },
      components: {
        securitySchemes: {
          participant: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from POST /oauth/token (client credentials)' },
          operator: { type: 'http', scheme: 'bearer', description: 'The operator credential from config' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });

  return app;
}

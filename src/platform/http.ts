import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Logger } from './logger.ts';
import type { HttpMetrics } from './metrics.ts';
import type { DomainError } from './result.ts';
import { idRandomBytes } from './ids.ts';
import { databaseUnavailable } from './db.ts';

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
    /** Set by the hub on a POST/PUT/PATCH/DELETE route that declares no body: it takes no body or `{}`, nothing else. */
    bodyless?: boolean;
    /**
     * Whether the route takes an `Idempotency-Key` header ('optional') or refuses a request without one ('required').
     * Documents the header in /openapi.json; the idempotent runner (src/api/context.ts) refuses to run on a route whose
     * declaration does not match how it runs, so the two cannot drift.
     */
    idempotency?: 'required' | 'optional';
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
const newRequestId = () => `req_${Buffer.from(idRandomBytes(9)).toString('base64url')}`;

/**
 * The deepest nesting of arrays and objects a JSON body may have. The hub's deepest request schema nests a few levels;
 * the bound is checked on the text before anything (parser, validator, request hash) walks the value recursively.
 */
export const MAX_JSON_DEPTH = 32;

/** The body of a POST/PUT/PATCH/DELETE route that declares none: no body, or `{}`. */
const NoBody = Type.Object({}, { $id: 'NoBody', additionalProperties: false, description: 'This action takes no body: send none, or {}' });
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A documented request body that is NoBody (the OpenAPI form of a body-less action's). */
function isBodylessRequestBody(requestBody: unknown): requestBody is { required?: boolean } {
  const member = (value: unknown, key: string): unknown => (typeof value === 'object' && value !== null && key in value ? (value as Record<string, unknown>)[key] : undefined);
  return member(member(member(member(requestBody, 'content'), 'application/json'), 'schema'), '$ref') === `#/components/schemas/${NoBody.$id}`;
}

/** Whether valid JSON text nests arrays and objects deeper than `max` (one pass; brackets inside strings do not count). */
export function jsonNestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character (\" does not end the string)
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * A lone UTF-16 surrogate (JSON's "\ud800" without its pair): not Unicode text. PostgreSQL's jsonb refuses it and a text
 * column would silently store U+FFFD. With the u flag a proper surrogate pair is one code point (an emoji, CJK
 * extension B) and does not match.
 */
const LONE_SURROGATE = /\p{Cs}/u;

/** Why a string cannot be stored as text, if it cannot: PostgreSQL refuses NUL in text and jsonb. */
function unstorableText(value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain NUL (\\u0000)';
  if (LONE_SURROGATE.test(value)) return 'must be valid Unicode (it contains a lone UTF-16 surrogate)';
  return undefined;
}

/** A key as it may be shown in a field path (a key that is itself unstorable is shown with U+FFFD in its place). */
const printableKey = (key: string) => key.replaceAll('\u0000', '\ufffd').replace(/\p{Cs}/gu, '\ufffd');

/**
 * The first string (value or object key) in a request part that cannot be stored as text, with its path in the
 * validator's notation (`body/items/0/name`). Bounded: parsed JSON is at most MAX_JSON_DEPTH deep, and anything deeper
 * (another parser's output) is refused as such.
 */
function findUnstorableText(value: unknown, path: string, depth = 0): { field: string; reason: string } | undefined {
  if (typeof value === 'string') {
    const reason = unstorableText(value);
    return reason === undefined ? undefined : { field: path, reason };
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth > MAX_JSON_DEPTH) return { field: path, reason: `nests deeper than ${MAX_JSON_DEPTH} levels` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorableText(value[i], `${path}/${i}`, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    const keyReason = unstorableText(key);
    if (keyReason !== undefined) return { field: `${path}/${printableKey(key)}`, reason: `field name ${keyReason}` };
    const found = findUnstorableText(item, `${path}/${key}`, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * An answer decided at the edge (body parser, hooks) in the hub's own terms: the error handler sends it as it is.
 * Fastify passes parser errors to the error handler; this is how a parser says which domain error it means.
 */
class EdgeRefusal extends Error {
  readonly refusal: DomainError;
  constructor(refusal: DomainError) {
    super(refusal.message);
    this.refusal = refusal;
  }
}

/**
 * What the HTTP server answers, in the hub's error shape, to a request Node's parser refused before Fastify saw it
 * (Node's own answer is a bare status line). Status and code as Node would choose them.
 */
function clientErrorAnswer(code: string | undefined): DomainError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'headers_too_large', message: 'the request headers are larger than the limit' };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { code: 'body_too_large', message: 'the chunk extensions of the request body are larger than the limit' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { code: 'request_timeout', message: 'the request was not received in time' };
    default:
      return { code: 'malformed_request', message: 'the request is not valid HTTP/1.1' };
  }
}

/**
 * Whether a response to an earlier request on the socket (pipelining) is already being written: an answer written now
 * would land inside it. Node's own answer to a client error makes the same check.
 */
function responseUnderway(socket: object): boolean {
  const message: unknown = '_httpMessage' in socket ? socket._httpMessage : undefined;
  return typeof message === 'object' && message !== null && 'headersSent' in message && message.headersSent === true;
}

export interface HttpServerOptions {
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  readonly metrics: HttpMetrics;
  readonly errorStatus: Readonly<Record<string, number>>;
  readonly title: string;
  readonly version: string;
  readonly description: string;
  /** Where the API is served (OpenAPI `servers`). */
  readonly servers?: readonly { readonly url: string; readonly description: string }[];
  /** The webhook events the hub sends (OpenAPI 3.1 `webhooks`). */
  readonly webhooks?: Readonly<Record<string, unknown>>;
  /** How a route is shown in the API document (src/api/openapi.ts); the route itself is not changed. */
  readonly documentRoute?: (route: RouteOptions) => Record<string, unknown>;
  /** A last pass over the whole document (src/api/openapi.ts shares error responses). */
  readonly finishDocument?: (document: { paths?: Record<string, unknown>; components?: Record<string, unknown> }) => void;
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
  if (error instanceof EdgeRefusal) return error.refusal;
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

/**
 * A lost or refused database connection, a database deadline passed or a server not ready (db.ts, databaseUnavailable),
 * as thrown or as the cause of what was thrown (bounded depth).
 */
function databaseUnreachable(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    if (databaseUnavailable(e)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** A route as registered (what the API document must show, unless hidden). */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly hidden: boolean;
}
const registered = new WeakMap<object, { method: string; route: { url: string; schema?: { hide?: boolean } } }[]>();

/**
 * Every route registered on a server made by createHttpServer, in order (HEAD routes Fastify adds by itself excluded).
 * Whether it is hidden is read now: a plugin's own onRoute hook (after this one) may hide its routes.
 */
export function registeredRoutes(app: HttpServer): readonly RegisteredRoute[] {
  return (registered.get(app) ?? []).map(({ method, route }) => ({ method, url: route.url, hidden: route.schema?.hide === true }));
}

export async function createHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  /** The error shape, for the few answers sent outside a route's reply (where `reply.fail` is not decorated). */
  const errorPayload = (error: DomainError): { status: number; body: string } => {
    const status = options.errorStatus[error.code] ?? 500;
    return { status, body: JSON.stringify({ error: { code: error.code, message: error.message, ...(error.details !== undefined ? { details: error.details } : {}) } }) };
  };
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimitBytes,
    // Callers may pass their own request id for correlation; otherwise the hub makes one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : newRequestId();
    },
    // Requests Node's HTTP parser refuses (headers too large, malformed, timed out) never reach a route: answered here in
    // the hub's error shape instead of Fastify's and Node's own. The connection is closed, as Node does.
    clientErrorHandler(error, socket) {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const refusal = clientErrorAnswer(error.code);
      options.logger.debug({ code: error.code }, 'client error');
      if (socket.writable && !responseUnderway(socket)) {
        const { status, body } = errorPayload(refusal);
        socket.write(
          `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
            `x-request-id: ${newRequestId()}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy(error);
    },
    // A path Fastify's router cannot decode, or with a parameter longer than the router takes: in the error shape.
    frameworkErrors(error, request, reply) {
      const refusal: DomainError =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? { code: 'validation_failed', message: 'a path parameter is longer than any id', details: { issues: [{ field: 'params', reason: 'too long' }] } }
          : { code: 'malformed_request', message: 'the URL path is not valid percent-encoded UTF-8' };
      const { status, body } = errorPayload(refusal);
      reply.raw.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-request-id': request.id }).end(body);
    },
    // A request that arrives while the server closes is answered by the hook below, in the error shape (Fastify's own
    // 503 is a bare body of its own).
    return503OnClosing: false,
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

  const routes: { method: string; route: { url: string; schema?: { hide?: boolean } } }[] = [];
  registered.set(app, routes);

  app.decorateReply('fail', function fail(this: FastifyReply, error: DomainError) {
    const status = options.errorStatus[error.code];
    if (status === undefined) {
      this.log.error({ code: error.code }, 'domain error code has no HTTP status (add it to src/api/errors.ts)');
      return this.code(500).send({ error: { code: 'internal', message: 'internal error' } });
    }
    const body = error.details === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, details: error.details };
    return this.code(status).send({ error: body });
  });

  // Draining: a request that still arrives (on a connection that was busy when close began) is sent elsewhere. Registered
  // before every other onRequest hook (authentication), so nothing else runs for it.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return undefined;
    reply.header('connection', 'close').header('retry-after', '1');
    return reply.fail({ code: 'unavailable', message: 'this hub process is shutting down; retry (another process, or this one once restarted, will answer)' });
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
  // JSON: Fastify's own parser (prototype poisoning refused), behind a bound on nesting, so that nothing recursive (the
  // validator, the request hash of idempotent routes) ever meets a 10,000-deep array.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (jsonNestsDeeperThan(text, MAX_JSON_DEPTH)) {
      done(new EdgeRefusal({ code: 'malformed_json', message: `the JSON body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels` }), undefined);
      return;
    }
    parseJson(req, text, done);
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (req, body, done) => {
    if (req.routeOptions.url !== '/oauth/token') {
      done(Object.assign(new Error('send application/json'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }), undefined);
      return;
    }
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.addSchema(ErrorBody);
  app.addSchema(NoBody);

  // Text the database cannot store is refused at the edge, for every route, in the validator's terms (before the schema,
  // so that a NUL in a known field is named as such). A body-less action with no body at all is validated as `{}`.
  app.addHook('preValidation', async (request, reply) => {
    if (request.routeOptions.config.bodyless === true && request.body === undefined) request.body = {};
    for (const [part, value] of [['body', request.body], ['querystring', request.query], ['params', request.params]] as const) {
      const found = findUnstorableText(value, part);
      if (found !== undefined) return reply.fail({ code: 'validation_failed', message: `${found.field}: ${found.reason}`, details: { issues: [found] } });
    }
    return undefined;
  });

  // Every route answers errors in the one shape: add it to each route's documented responses.
  app.addHook('onRoute', (route) => {
    // The browsable docs are public, like /openapi.json.
    if (route.url.startsWith('/docs')) route.config = { ...route.config, auth: 'none' };
    // An action that declares no body takes none (or `{}`): anything else is refused like an unknown field, not ignored.
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.some((m) => WRITE_METHODS.has(m)) && route.schema?.body === undefined) {
      route.schema = { ...route.schema, body: Type.Ref(NoBody) };
      route.config = { ...route.config, bodyless: true };
    }
    for (const method of methods) if (method !== 'HEAD') routes.push({ method, route });
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
      // Not a bug: the database restarted, refused the connection, ended the session or did not answer in time. Safe to
      // retry: a transaction cut off this way did not commit, or (its COMMIT lost in flight, or still running past its
      // deadline) is found by the same Idempotency-Key.
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
      info: { title: options.title, version: options.version, description: options.description, license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } },
      ...(options.servers !== undefined ? { servers: options.servers.map((s) => ({ ...s })) } : {}),
      components: {
        securitySchemes: {
          participant: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from POST /oauth/token (client credentials)' },
          operator: { type: 'http', scheme: 'bearer', description: 'The operator credential from config' },
        },
      },
    },
    ...(options.documentRoute !== undefined ? { transform: ({ route, url }: { route: RouteOptions; url: string }) => ({ schema: options.documentRoute?.(route) ?? route.schema ?? {}, url }) } : {}),
    // @fastify/swagger marks every declared body required; a body-less action's is not (no body at all is the norm).
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject;
      if (options.webhooks !== undefined) Object.assign(document.openapiObject, { webhooks: options.webhooks });
      options.finishDocument?.(document.openapiObject as { paths?: Record<string, unknown>; components?: Record<string, unknown> });
      for (const pathItem of Object.values(document.openapiObject.paths ?? {})) {
        for (const operation of Object.values(pathItem ?? {})) {
          const requestBody: unknown = typeof operation === 'object' && operation !== null && 'requestBody' in operation ? operation.requestBody : undefined;
          if (isBodylessRequestBody(requestBody)) requestBody.required = false;
        }
      }
      return document.openapiObject;
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });

  return app;
}

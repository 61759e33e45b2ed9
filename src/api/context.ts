import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Participant, ParticipantPrincipal } from '../participants/index.ts';
import type { ParticipantService } from '../participants/index.ts';
import type { TokenService } from '../participants/index.ts';
import type { Actor } from '../audit/index.ts';
import type { Db, Tx } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { requestHash, runEffect, type EffectResponse, type Idempotency, type StoredResponse } from '../platform/idempotency.ts';
import type { TokenBucketLimiter } from '../platform/rate-limit.ts';
import { ok, type DomainError, type Result } from '../platform/result.ts';
import { createEffectBatcher, type EffectBatcherLimits } from '../platform/effect-batcher.ts';
import type { Caller } from './refs.ts';
import { errorStatus } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: ParticipantPrincipal;
    /** The caller's participant row as the auth check read it for this request (fresh: read per request, never cached). */
    participant?: Participant;
    isOperator?: boolean;
  }
}

export interface AuthDeps {
  readonly tokens: TokenService;
  readonly participants: ParticipantService;
  readonly operatorToken: string;
  readonly limiter: TokenBucketLimiter;
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return undefined;
  return header.slice('Bearer '.length).trim();
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * Authentication for every route, declared per route with `config: { auth }` (default: participant):
 * participant routes take an access token from POST /oauth/token; operator routes take the operator credential.
 * After authentication, each participant has its own rate limit (429 with Retry-After).
 */
export function registerAuth(app: HttpServer, deps: AuthDeps): void {
  const operatorDigest = sha256(deps.operatorToken);
  app.addHook('onRequest', async (request, reply) => {
    const auth = request.routeOptions.config.auth ?? 'participant';
    if (auth === 'none' || request.routeOptions.url === undefined) return;
    const token = bearer(request);
    if (token === undefined) return reply.fail({ code: 'unauthorized', message: 'send Authorization: Bearer <token>' });
    if (auth === 'operator') {
      if (!timingSafeEqual(sha256(token), operatorDigest)) return reply.fail({ code: 'unauthorized', message: 'not the operator credential' });
      request.isOperator = true;
      return;
    }
    const claims = await deps.tokens.verify(token);
    if (claims === undefined) return reply.fail({ code: 'unauthorized', message: 'the access token is invalid or expired; get a new one from POST /oauth/token' });
    const access = await deps.participants.checkAccess(claims.credentialId);
    if (!access.ok) return reply.fail(access.error);
    const limit = deps.limiter.take(claims.participantId, 1, access.value.participant.rateLimitPerS ?? undefined);
    if (!limit.allowed) {
      reply.header('retry-after', String(Math.max(1, Math.ceil(limit.retryAfterMs / 1000))));
      return reply.fail({ code: 'rate_limited', message: 'too many requests for this participant', details: { retryAfterMs: limit.retryAfterMs } });
    }
    // A customer session reaches only what a customer's own app needs; everything else is the participant's back end.
    if (claims.customerId !== undefined && request.routeOptions.config.customer !== true) {
      return reply.fail({ code: 'forbidden', message: 'a customer session cannot call this operation; call it with the participant credential' });
    }
    request.principal = claims;
    request.participant = access.value.participant;
  });
}

/** The caller as the ownership check sees it (src/api/refs.ts); undefined on routes without authentication. */
export function callerOf(request: FastifyRequest): Caller | undefined {
  if (request.isOperator === true) return { operator: true, participantId: undefined, sessionCustomerId: undefined };
  const p = request.principal;
  return p === undefined ? undefined : { operator: false, participantId: p.participantId, sessionCustomerId: p.customerId };
}

/**
 * The caller's participant row (country, name, currencies…) as read by this request's auth check, so that handlers
 * need not read it again; undefined on routes without participant auth.
 */
export function participantOf(request: FastifyRequest): Participant | undefined {
  return request.participant;
}

/** The authenticated participant; routes with `auth: 'participant'` always have one. */
export function principalOf(request: FastifyRequest): ParticipantPrincipal {
  if (request.principal === undefined) throw new Error('principalOf on a route without participant auth');
  return request.principal;
}

export function actorOf(request: FastifyRequest, customerId?: string): Actor {
  if (request.isOperator === true) return { type: 'operator' };
  const p = principalOf(request);
  // A customer session is the customer acting in their own app (the audit trail says so), not the participant's back end.
  if (p.customerId !== undefined) return { type: 'customer', participantId: p.participantId, customerId: p.customerId };
  return customerId === undefined ? { type: 'participant', participantId: p.participantId } : { type: 'participant', participantId: p.participantId, customerId };
}

/** What a handler's effect answers: a response to send, or a domain error (its writes are rolled back). */
export type Outcome = StoredResponse | DomainError;

/** Dot paths to the string fields of a response body, a few levels deep (arrays are not entered). */
export type StringFieldPath<T, Depth extends unknown[] = []> = Depth['length'] extends 3
  ? never
  : {
      [K in keyof T & string]: T[K] extends string ? K : T[K] extends readonly unknown[] ? never : T[K] extends object ? `${K}.${StringFieldPath<T[K], [...Depth, unknown]>}` : never;
    }[keyof T & string];

/**
 * What an answer may declare: `secrets`, the paths of its fields that are secrets shown once (a client secret, a
 * webhook signing secret). Under an Idempotency-Key they are stored sealed by the vault and opened again for a replay
 * (platform/idempotency.ts), so the database never holds them in clear.
 */
export interface ResponseOptions<B> {
  readonly secrets?: readonly StringFieldPath<B>[];
}

export function created<B>(body: B, options: ResponseOptions<B> = {}): StoredResponse {
  return options.secrets === undefined ? { status: 201, body } : { status: 201, body, secrets: options.secrets };
}

export function okResponse<B>(body: B, options: ResponseOptions<B> = {}): StoredResponse {
  return options.secrets === undefined ? { status: 200, body } : { status: 200, body, secrets: options.secrets };
}

/**
 * A domain error as an answer to store or send: its catalogue status and `{ error: { code, message, details? } }`.
 * For the steps that answer after a transaction (`after`), as the runner answers a domain error inside one.
 */
export function errorAnswer(error: DomainError, status: Readonly<Record<string, number>> = errorStatus): StoredResponse {
  return { status: status[error.code] ?? 500, body: { error: error.details === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, details: error.details } } };
}

function isDomainError(o: Outcome): o is DomainError {
  return 'code' in o && 'message' in o && !('status' in o);
}

export type Idempotent = ((
  request: FastifyRequest,
  reply: FastifyReply,
  effect: (tx: Tx) => Promise<Outcome>,
  /** `after`: work on the stored answer (first or replayed) before it is sent, as for `batched` (AfterAnswer). */
  options?: { required?: boolean; after?: AfterAnswer },
) => Promise<FastifyReply>) & {
  /**
   * For a route whose effects run batched (src/platform/effect-batcher.ts): `run` answers every input of a batch in
   * one transaction, writing nothing for an input it refuses. Returns the route's runner; the Idempotency-Key is
   * required unless `keyRequired` is false.
   */
  batched<I>(run: (tx: Tx, inputs: readonly I[]) => Promise<Outcome[]>, options?: { keyRequired?: boolean; limits?: EffectBatcherLimits; after?: AfterAnswer }): (request: FastifyRequest, reply: FastifyReply, input: I) => Promise<FastifyReply>;
  /**
   * batched, for an effect with a stage before its transaction (`prepare`: lock-free reads, an outside call such as an
   * issuer's decision). The key is required; a key already answered is replayed before `prepare` runs (so a retry
   * never repeats the outside call), and a second request with a key this process is preparing or running answers 409.
   */
  prepared<I, P>(prepare: (input: I) => Promise<P>, run: (tx: Tx, prepared: readonly P[]) => Promise<Outcome[]>, options?: { limits?: EffectBatcherLimits }): (request: FastifyRequest, reply: FastifyReply, input: I) => Promise<FastifyReply>;
};

/**
 * Work after the effect's transaction, on its stored answer (first or replayed) before it is sent: a payment with a
 * connected side is answered reserved by its transaction and decided after it (src/transfers: settleConnected), so the
 * answer, and every replay of it, says what was decided, not the reservation.
 */
export type AfterAnswer = (answer: StoredResponse) => Promise<StoredResponse>;

/**
 * A route that runs an effect under an Idempotency-Key declares so in its config (`idempotency`), which is how the API
 * document shows the header: a route that runs one way and declares the other is a bug, refused loudly (500, logged)
 * on its first request, which its tests make.
 */
function checkDeclared(request: FastifyRequest, required: boolean): void {
  const declared = request.routeOptions.config.idempotency;
  const runs = required ? 'required' : 'optional';
  if (declared !== runs) {
    throw new Error(`${request.method} ${String(request.routeOptions.url)} runs with the Idempotency-Key ${runs} but declares ${String(declared)}: set config.idempotency to '${runs}'`);
  }
}

/**
 * Runs a creating or money-moving handler in one transaction, under the request's Idempotency-Key when given (or
 * always, when `required`). A domain error rolls the effect back and is answered (and, under a key, replayed) like a
 * success, so a retry sees the same answer and nothing is half-written.
 */
export function createIdempotentRunner(deps: { db: Db; idempotency: Idempotency; errorStatus: Readonly<Record<string, number>> }): Idempotent {
  const toEffect = (o: Outcome): EffectResponse =>
    isDomainError(o)
      ? { ...errorAnswer(o, deps.errorStatus), commit: false }
      : { ...o, commit: true };
  const keyOf = (request: FastifyRequest) => ({
    scope: request.principal?.participantId ?? 'operator',
    hash: requestHash([request.method, request.routeOptions.url, request.params, request.body]),
  });
  const answer = (reply: FastifyReply, result: Result<StoredResponse & { readonly replayed: boolean }, DomainError>) => {
    if (!result.ok) return reply.fail(result.error);
    if (result.value.replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(result.value.status).send(result.value.body);
  };
  const runner = async (request: FastifyRequest, reply: FastifyReply, effect: (tx: Tx) => Promise<Outcome>, options: { required?: boolean; after?: AfterAnswer } = {}) => {
    checkDeclared(request, options.required === true);
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string') {
      if (options.required === true) return reply.fail({ code: 'idempotency_key_required', message: 'this request moves money: send an Idempotency-Key header' });
      const ran = await runEffect(deps.db, async (tx) => toEffect(await effect(tx)));
      const stored = options.after === undefined ? ran : await options.after(ran);
      return reply.code(stored.status).send(stored.body);
    }
    const { scope, hash } = keyOf(request);
    const result = await deps.idempotency.run(scope, key, hash, async (tx) => toEffect(await effect(tx)));
    const after = options.after;
    return answer(reply, after === undefined || !result.ok ? result : ok({ ...(await after(result.value)), replayed: result.value.replayed }));
  };
  return Object.assign(runner, {
    batched<I>(run: (tx: Tx, inputs: readonly I[]) => Promise<Outcome[]>, options: { keyRequired?: boolean; limits?: EffectBatcherLimits; after?: AfterAnswer } = {}) {
      const batcher = createEffectBatcher<I>({ db: deps.db, idempotency: deps.idempotency }, async (tx, inputs) => (await run(tx, inputs)).map(toEffect), options.limits);
      const after = options.after;
      const finish = async (result: Result<StoredResponse & { readonly replayed: boolean }, DomainError>) =>
        after === undefined || !result.ok ? result : ok({ ...(await after(result.value)), replayed: result.value.replayed });
      return async (request: FastifyRequest, reply: FastifyReply, input: I) => {
        checkDeclared(request, options.keyRequired !== false);
        const key = request.headers['idempotency-key'];
        if (typeof key !== 'string') {
          if (options.keyRequired !== false) return reply.fail({ code: 'idempotency_key_required', message: 'this request moves money: send an Idempotency-Key header' });
          return answer(reply, await finish(await batcher.submit(undefined, input)));
        }
        return answer(reply, await finish(await batcher.submit({ ...keyOf(request), key }, input)));
      };
    },
    prepared<I, P>(prepare: (input: I) => Promise<P>, run: (tx: Tx, prepared: readonly P[]) => Promise<Outcome[]>, options: { limits?: EffectBatcherLimits } = {}) {
      const batcher = createEffectBatcher<P>({ db: deps.db, idempotency: deps.idempotency }, async (tx, inputs) => (await run(tx, inputs)).map(toEffect), options.limits);
      // Keys this process is preparing or running, with the outcome their request will get: a second request with one
      // waits for it (the same body gets it as a replay; a different one then meets the key's answer: 422), as the
      // batcher does for keys it holds.
      const preparing = new Map<string, { readonly hash: string; readonly outcome: Promise<Result<StoredResponse & { readonly replayed: boolean }, DomainError>> }>();
      return async (request: FastifyRequest, reply: FastifyReply, input: I) => {
        checkDeclared(request, true);
        const key = request.headers['idempotency-key'];
        if (typeof key !== 'string') return reply.fail({ code: 'idempotency_key_required', message: 'this request moves money: send an Idempotency-Key header' });
        if (!deps.idempotency.validKey(key)) return reply.fail({ code: 'idempotency_key_invalid', message: 'Idempotency-Key must be 1–128 printable ASCII characters' });
        const ref = { ...keyOf(request), key };
        const slot = `${ref.scope}\u0000${key}`;
        const running = preparing.get(slot);
        if (running !== undefined) {
          if (running.hash === ref.hash) {
            const first = await running.outcome;
            return answer(reply, first.ok && !first.value.replayed ? ok({ ...first.value, replayed: true }) : first);
          }
          await running.outcome.catch(() => undefined);
        }
        const outcome = (async () => {
          const stored = await deps.idempotency.peek(ref);
          if (!stored.ok) return stored;
          if (stored.value !== undefined) return ok({ ...stored.value, replayed: true });
          return batcher.submit(ref, await prepare(input));
        })();
        const entry = { hash: ref.hash, outcome };
        preparing.set(slot, entry);
        const forget = () => {
          if (preparing.get(slot) === entry) preparing.delete(slot);
        };
        outcome.then(forget, forget);
        return answer(reply, await outcome);
      };
    },
  });
}

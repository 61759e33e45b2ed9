import { Type, type TSchema, type TString } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { Queryable } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import type { DomainError } from '../platform/result.ts';

/**
 * Ownership by construction: every id a request names — in its path, its query or its body, at any depth — is declared
 * in the route's schema with the kind of object it names (`Ref('card', …)`, the `x-ref` keyword), and ONE hook
 * (`registerOwnership`) resolves every declared id before the handler runs. An id the caller may not name answers 404
 * with the kind's own code, exactly as an id that does not exist, and nothing is written.
 *
 * Who may name an object is said once per kind, by the capability that owns its table (`RefKindSpec`):
 * - its holders: the participant that owns it and, when it is a customer's, that customer (a money request has two:
 *   the requester's side and the payer's side; a red packet its sender and every member);
 * - grants: relations that let another participant name it (an account linked into a wallet with the bank's consent;
 *   a card the customer holds at a bank their wallet record is linked to with consent on both sides);
 * - public: objects published to be named by anyone authenticated (a merchant's payment link, a participant in the
 *   directory).
 * The caller is the participant behind the access token and, when the request acts for a customer, that customer: a
 * customer session token is bound to one customer, and a request naming a customer (`customerId`) acts for it. A
 * customer's objects resolve only for that customer; a participant's own objects (merchants, card products) for the
 * participant. The operator may name any object that exists.
 *
 * Services keep their own scoped queries as a second line (this check runs before the handler's transaction, and a
 * grant can be revoked in between); what this adds is that no route can forget the check: an id field without a
 * declared kind fails the schema sweep test, and every declared id is checked here.
 */
export const REF_KINDS = [
  'participant',
  'credential',
  'customer',
  'account',
  'account_link',
  'account_link_consent',
  'open_banking_consent',
  'alias',
  'alias_move',
  'alias_verification',
  'webhook_delivery',
  'card_product',
  'card',
  'card_ref',
  'issuer_token',
  'token',
  'shared_token_ref',
  'card_wallet_entry',
  'provisioning',
  'quote',
  'transfer',
  'money_request',
  'split',
  'red_packet',
  'risk_alert',
  'merchant',
  'qr_code',
  'payment_link',
  'card_payment',
  'step_up_challenge',
  'customer_link',
  'customer_link_consent',
  'passkey',
  'settlement_window',
  'dispute',
  'recall',
  'liquidity_request',
  'cash_movement',
  'coupon',
  'wallet_coupon',
  'membership_program',
  'savings_pot',
  'targeted_offer',
  'offline_purse',
] as const;
export type RefKind = (typeof REF_KINDS)[number];

/** A field that looks like an id but names no hub object (the participant's own ids, device ids, references). */
export const OPAQUE = 'opaque';

const ID_PATTERN = '^[A-Za-z0-9_.:-]+$';

/** An id naming a hub object of this kind: resolved (404 unless the caller may name it) before the handler runs. */
export const Ref = (kind: RefKind, description: string): TString =>
  Type.String({ minLength: 1, maxLength: 64, pattern: ID_PATTERN, description, 'x-ref': kind });

/** An id-shaped field that names nothing in the hub (declared so, so that the sweep knows it was considered). */
export const Opaque = (description: string, options: { maxLength?: number; pattern?: string } = {}): TString =>
  Type.String({ minLength: 1, maxLength: options.maxLength ?? 64, pattern: options.pattern ?? ID_PATTERN, description, 'x-ref': OPAQUE });

/** One side that holds an object: a participant, and the customer on that side when the object is a customer's. */
export interface Holder {
  readonly participantId: string;
  readonly customerId: string | null;
}

/** Who is asking: the operator, or a participant (and the customer it acts for, if any). */
export interface RefScope {
  readonly operator: boolean;
  readonly participantId: string | undefined;
  readonly customerId: string | undefined;
}

export interface ParticipantRefScope {
  readonly participantId: string;
  readonly customerId: string | undefined;
}

export interface RefKindSpec {
  /** The answer for an id that does not resolve (the kind's own not-found code). */
  readonly notFound: DomainError;
  /** The holders of each existing id (absent: no such object). One statement for all ids. */
  holders(q: Queryable, ids: readonly string[]): Promise<ReadonlyMap<string, readonly Holder[]>>;
  /** Holders never change once the object exists: remembered by this process (bounded), no query on a second use. */
  readonly immutable?: boolean;
  /** For ids the scope does not hold: the ones a grant lets it name anyway. */
  granted?(q: Queryable, scope: ParticipantRefScope, ids: readonly string[]): Promise<ReadonlySet<string>>;
  /** Anyone authenticated may name it (published on purpose). */
  readonly public?: boolean;
}

export interface RefRegistry {
  define(kind: RefKind, spec: RefKindSpec): void;
  has(kind: RefKind): boolean;
  /** Whether a kind is public (the ownership sweep replaces only ids of non-public kinds). */
  isPublic(kind: RefKind): boolean;
  /** The first id (in request order) the scope may not name, as its not-found error; undefined when all resolve. */
  check(q: Queryable, scope: RefScope, refs: readonly NamedRef[]): Promise<DomainError | undefined>;
  /**
   * Tells the registry the holders of an immutable object this process has just committed (call it after the COMMIT),
   * so that the next request naming it — a capture after its authorization, a confirm after its quote — costs no
   * query. Only for immutable kinds: the holders given must be exactly what the kind's query would answer.
   */
  learn(kind: RefKind, id: string, holders: readonly Holder[]): void;
}

/** What a capability that creates objects needs of the registry. */
export type RefLearner = Pick<RefRegistry, 'learn'>;

export interface NamedRef {
  readonly kind: RefKind;
  readonly id: string;
}

/** Bound on remembered holders of immutable objects. */
const MAX_REMEMBERED = 50_000;

export function visibleTo(holders: readonly Holder[], scope: ParticipantRefScope): boolean {
  return holders.some((h) => h.participantId === scope.participantId && (scope.customerId === undefined || h.customerId === null || h.customerId === scope.customerId));
}

export function createRefRegistry(): RefRegistry {
  const specs = new Map<RefKind, RefKindSpec>();
  const remembered = new Map<string, readonly Holder[]>();
  const remember = (key: string, holders: readonly Holder[]) => {
    remembered.set(key, holders);
    if (remembered.size > MAX_REMEMBERED) {
      const oldest = remembered.keys().next();
      if (oldest.done !== true) remembered.delete(oldest.value);
    }
  };

  const holdersOf = async (q: Queryable, kind: RefKind, spec: RefKindSpec, ids: readonly string[]): Promise<Map<string, readonly Holder[]>> => {
    const out = new Map<string, readonly Holder[]>();
    const missing: string[] = [];
    for (const id of ids) {
      const known = spec.immutable === true ? remembered.get(`${kind}\u0000${id}`) : undefined;
      if (known !== undefined) out.set(id, known);
      else missing.push(id);
    }
    if (missing.length > 0) {
      const loaded = await spec.holders(q, missing);
      for (const [id, holders] of loaded) {
        out.set(id, holders);
        if (spec.immutable === true) remember(`${kind}\u0000${id}`, holders);
      }
    }
    return out;
  };

  return {
    define(kind, spec) {
      if (specs.has(kind)) throw new Error(`ref kind ${kind} defined twice`);
      specs.set(kind, spec);
    },
    has: (kind) => specs.has(kind),
    learn(kind, id, holders) {
      const spec = specs.get(kind);
      // Before the kinds are defined (the hub is still being built) there is nothing to remember for.
      if (spec === undefined) return;
      if (spec.immutable !== true) throw new Error(`learn: ref kind ${kind} is not an immutable kind`);
      remember(`${kind}\u0000${id}`, holders);
    },
    isPublic: (kind) => specs.get(kind)?.public === true,
    async check(q, scope, refs) {
      const byKind = new Map<RefKind, Set<string>>();
      for (const r of refs) {
        const ids = byKind.get(r.kind);
        if (ids === undefined) byKind.set(r.kind, new Set([r.id]));
        else ids.add(r.id);
      }
      const refused = new Set<string>();
      for (const [kind, idSet] of byKind) {
        const spec = specs.get(kind);
        if (spec === undefined) throw new Error(`ref kind ${kind} has no spec (define it where its table is owned)`);
        const ids = [...idSet];
        const holders = await holdersOf(q, kind, spec, ids);
        const hidden: string[] = [];
        for (const id of ids) {
          const h = holders.get(id);
          if (h === undefined) refused.add(`${kind}\u0000${id}`);
          else if (!scope.operator && spec.public !== true && (scope.participantId === undefined || !visibleTo(h, { participantId: scope.participantId, customerId: scope.customerId }))) hidden.push(id);
        }
        if (hidden.length > 0) {
          const participantId = scope.participantId;
          const granted = participantId !== undefined && spec.granted !== undefined ? await spec.granted(q, { participantId, customerId: scope.customerId }, hidden) : new Set<string>();
          for (const id of hidden) if (!granted.has(id)) refused.add(`${kind}\u0000${id}`);
        }
      }
      if (refused.size === 0) return undefined;
      const first = refs.find((r) => refused.has(`${r.kind}\u0000${r.id}`));
      if (first === undefined) return undefined;
      const spec = specs.get(first.kind);
      return spec === undefined ? undefined : spec.notFound;
    },
  };
}

// ---- the hook ---------------------------------------------------------------------------------------------------------

type Part = 'params' | 'query' | 'body';

/** Where a route's declared ids are: per request part, the schema walked against the value. */
interface RefPlan {
  readonly parts: readonly { readonly part: Part; readonly schema: TSchema }[];
  /** Top-level fields of kind `customer` that a customer session fills in when absent (lists, optional filters). */
  readonly customerFields: readonly { readonly part: 'query' | 'body'; readonly field: string }[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function containsRef(schema: unknown, depth = 0): boolean {
  if (!isRecord(schema) || depth > 16) return false;
  const kind = schema['x-ref'];
  if (typeof kind === 'string' && kind !== OPAQUE) return true;
  for (const key of ['properties', 'patternProperties'] as const) {
    const props = schema[key];
    if (isRecord(props) && Object.values(props).some((p) => containsRef(p, depth + 1))) return true;
  }
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const variants = schema[key];
    if (Array.isArray(variants) && variants.some((v) => containsRef(v, depth + 1))) return true;
  }
  return containsRef(schema.items, depth + 1);
}

/** Every declared id in a value, walked along its schema (bounded: schemas are small and values validated already). */
export function collectRefs(schema: unknown, value: unknown, out: NamedRef[], depth = 0): void {
  if (!isRecord(schema) || depth > 16 || value === undefined || value === null) return;
  const kind = schema['x-ref'];
  if (typeof kind === 'string') {
    if (kind !== OPAQUE && typeof value === 'string') out.push({ kind: kind as RefKind, id: value });
    return;
  }
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const variants = schema[key];
    // A value matched one variant; the others' fields are absent from it, so walking all of them finds nothing more.
    if (Array.isArray(variants)) for (const v of variants) collectRefs(v, value, out, depth + 1);
  }
  const props = schema.properties;
  if (isRecord(props) && isRecord(value)) {
    for (const [name, propSchema] of Object.entries(props)) if (name in value) collectRefs(propSchema, value[name], out, depth + 1);
  }
  if (Array.isArray(value) && schema.items !== undefined) for (const item of value) collectRefs(schema.items, item, out, depth + 1);
}

function planOf(schema: Record<string, unknown> | undefined): RefPlan {
  const parts: { part: Part; schema: TSchema }[] = [];
  const customerFields: { part: 'query' | 'body'; field: string }[] = [];
  if (schema === undefined) return { parts, customerFields };
  for (const [part, key] of [['params', 'params'], ['query', 'querystring'], ['body', 'body']] as const) {
    const s = schema[key];
    if (!containsRef(s)) continue;
    parts.push({ part, schema: s as TSchema });
    if (part === 'params' || !isRecord(s) || !isRecord(s.properties)) continue;
    const required = Array.isArray(s.required) ? s.required : [];
    for (const [field, prop] of Object.entries(s.properties)) {
      if (isRecord(prop) && prop['x-ref'] === 'customer' && !required.includes(field)) customerFields.push({ part, field });
    }
  }
  return { parts, customerFields };
}

export interface OwnershipDeps {
  readonly registry: RefRegistry;
  readonly db: Queryable;
}

/** The caller, as the auth hook established it (operator, participant, customer session). */
export interface Caller {
  readonly operator: boolean;
  readonly participantId: string | undefined;
  readonly sessionCustomerId: string | undefined;
}

/**
 * Registers the one ownership check (see the top of this file). Runs after validation (preHandler), so every value is
 * well-formed; the check reads with the top-level db, outside any transaction.
 */
export function registerOwnership(app: HttpServer, deps: OwnershipDeps, callerOf: (request: FastifyRequest) => Caller | undefined): void {
  const plans = new WeakMap<object, RefPlan>();
  const planFor = (request: FastifyRequest): RefPlan => {
    const schema = request.routeOptions.schema as Record<string, unknown> | undefined;
    if (schema === undefined) return { parts: [], customerFields: [] };
    let plan = plans.get(schema);
    if (plan === undefined) {
      plan = planOf(schema);
      plans.set(schema, plan);
    }
    return plan;
  };

  // Every kind a route declares must have its spec by the time the server is ready (a typo or a missing definition is
  // a bug found at start, not a 500 on the first request).
  const declared = new Set<string>();
  const kindsIn = (schema: unknown, depth = 0): void => {
    if (!isRecord(schema) || depth > 16) return;
    const kind = schema['x-ref'];
    if (typeof kind === 'string' && kind !== OPAQUE) declared.add(kind);
    for (const key of ['properties', 'patternProperties'] as const) {
      const props = schema[key];
      if (isRecord(props)) for (const p of Object.values(props)) kindsIn(p, depth + 1);
    }
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
      const variants = schema[key];
      if (Array.isArray(variants)) for (const v of variants) kindsIn(v, depth + 1);
    }
    kindsIn(schema.items, depth + 1);
  };
  app.addHook('onRoute', (route) => {
    const schema = route.schema as Record<string, unknown> | undefined;
    if (schema === undefined) return;
    for (const key of ['params', 'querystring', 'body']) kindsIn(schema[key]);
    // The API document says which operations a customer session may call (an OpenAPI extension on the operation).
    if (route.config?.customer === true) schema['x-customer-session'] = true;
  });
  app.addHook('onReady', async () => {
    const unknown = [...declared].filter((k) => !(REF_KINDS as readonly string[]).includes(k) || !deps.registry.has(k as RefKind));
    if (unknown.length > 0) throw new Error(`routes name ids of kinds with no ownership spec: ${unknown.join(', ')}`);
  });

  app.addHook('preHandler', async (request, reply) => {
    const caller = callerOf(request);
    if (caller === undefined) return; // routes without authentication (the token endpoint, demo sign-in) check their own input
    const plan = planFor(request);
    // A customer session acts for its customer: an optional customer filter it leaves out is its own customer.
    if (caller.sessionCustomerId !== undefined) {
      for (const { part, field } of plan.customerFields) {
        const container = part === 'query' ? request.query : request.body;
        if (isRecord(container) && container[field] === undefined) container[field] = caller.sessionCustomerId;
      }
    }
    if (plan.parts.length === 0) return;
    const refs: NamedRef[] = [];
    for (const { part, schema } of plan.parts) collectRefs(schema, request[part], refs);
    if (refs.length === 0) return;
    const named = refs.find((r) => r.kind === 'customer')?.id;
    const scope: RefScope = { operator: caller.operator, participantId: caller.participantId, customerId: caller.sessionCustomerId ?? named };
    const refused = await deps.registry.check(deps.db, scope, refs);
    if (refused !== undefined) return reply.fail(refused);
  });
}

// ---- helpers for specs ------------------------------------------------------------------------------------------------

interface HolderRow {
  id: string;
  participant_id: string;
  customer_id: string | null;
}

/**
 * Holders from one statement returning `(id, participant_id, customer_id)` rows (several per id where an object has
 * several holders: `union all` the sides), with the ids as `$1::text[]`.
 */
export async function holdersFromSql(q: Queryable, sql: string, ids: readonly string[]): Promise<Map<string, Holder[]>> {
  const rows = await q.query<HolderRow>(sql, [ids]);
  const out = new Map<string, Holder[]>();
  for (const r of rows) {
    const holder = { participantId: r.participant_id, customerId: r.customer_id };
    const list = out.get(r.id);
    if (list === undefined) out.set(r.id, [holder]);
    else list.push(holder);
  }
  return out;
}

/** A spec whose holders come from one SQL statement (see holdersFromSql). */
export function sqlRefKind(notFound: DomainError, sql: string, options: { immutable?: boolean; public?: boolean; granted?: RefKindSpec['granted'] } = {}): RefKindSpec {
  return {
    notFound,
    holders: (q, ids) => holdersFromSql(q, sql, ids),
    ...(options.immutable !== undefined ? { immutable: options.immutable } : {}),
    ...(options.public !== undefined ? { public: options.public } : {}),
    ...(options.granted !== undefined ? { granted: options.granted } : {}),
  };
}

/** Grants from one statement returning the granted ids, with `$1::text[]` the ids, `$2` the participant, `$3` the customer. */
export function sqlGrant(sql: string, options: { needsCustomer: boolean }): NonNullable<RefKindSpec['granted']> {
  return async (q, scope, ids) => {
    if (options.needsCustomer && scope.customerId === undefined) return new Set();
    const rows = await q.query<{ id: string }>(sql, [ids, scope.participantId, scope.customerId ?? null]);
    return new Set(rows.map((r) => r.id));
  };
}

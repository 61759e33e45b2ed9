import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/platform/http.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * A fuzz pass over every write operation (POST/PUT/PATCH/DELETE) of the OpenAPI document the hub serves: for each one,
 * one request per kind of bad input below, built from the operation's own schema (a valid-looking body, then mutated),
 * sent as the kind of participant the route is for, to paths holding ids of the demo network (so that requests reach
 * handlers) or random and broken ids. Whatever comes in: no answer is a 5xx, every error is `{ error: { code, message } }`
 * with a registered code and its status, and afterwards the hub still reads and writes.
 *
 * Seeded: HUTONG_FUZZ_SEED=<n> replays a run (the seed is printed).
 */
const SEED = Number(process.env.HUTONG_FUZZ_SEED ?? 20_261_206);
const engines = await availableEngines();

const MUTATIONS = [
  'valid',
  'nul',
  'lone-surrogate',
  'deep-json',
  'huge-string-within-limit',
  'huge-string-beyond-limit',
  'wrong-type',
  'odd-amount',
  'extra-field',
  'missing-field',
  'non-json',
  'wrong-content-type',
  'no-body',
  'json-not-object',
] as const;
type Mutation = (typeof MUTATIONS)[number];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = Record<string, any>;
type Path = readonly (string | number)[];

const WRITE_METHODS = ['post', 'put', 'patch', 'delete'] as const;
const ODD_AMOUNTS: readonly Json[] = ['1e3', '-0', '0.001', 'NaN', 'Infinity', '1'.repeat(40), '-12.30', '0', '00012.30', '12.', '.5', '1,000.00', ' 12.30', '１２', '9'.repeat(19), '92233720368547758.08', 1e3, -0, 0.001, 1e308, -1];
const BROKEN_IDS = ['a\u0000b', '\ud800', 'x\udc00y', 'x'.repeat(65), 'x'.repeat(300), '..', '%', ' ', '😀', 'a/b', "'; drop table cards; --", '$1'];
const NOT_JSON = ['', '{', '{"a":', 'undefined', "{'a':1}", '[1,]', '\ufeff{}', 'true false', '{"a":1}{"b":2}', '\u0000', 'NaN'];
const OTHER_CONTENT_TYPES = ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/jsonx', 'application/vnd.api+json', 'text/html'];
const ODD_KEYS = ['extra', '__proto__', 'constructor', 'k'.repeat(300), '', '$where', 'amount', 'id'];
const ODD_VALUES: readonly Json[] = [0, -1, 1.5, true, false, null, [], {}, 'str', [1, 2], { a: 'b' }, ''];

/** The participant a route is called as: operator routes as the operator, others by who the route is for. */
function callerFor(path: string, operation: Schema): string {
  const security: Schema[] | undefined = operation.security;
  if (security === undefined || security.length === 0) return 'anonymous';
  if (security.some((s) => 'operator' in s)) return 'operator';
  // Self-service routes (profile, credentials) as a participant nothing else here calls as: the pass may change its
  // webhook URL or rate limit, or revoke its credentials.
  if (/^\/v1\/(me|credentials)(\/|$)/.test(path)) return 'wallet-b';
  if (path.startsWith('/v1/issuer/')) return 'bank-a';
  if (path === '/v1/merchants' || path.startsWith('/v1/merchants/') || path.startsWith('/v1/payments/')) return 'merchant-a';
  return 'wallet-a';
}

/** Where the demo network's ids for a path parameter (or a body field of the same name) are found. */
const ID_SOURCES: Record<string, string> = {
  cardId: 'select id as v from cards',
  customerId: 'select id as v from customers',
  merchantId: 'select id as v from merchants',
  productId: 'select id as v from card_products',
  paymentId: 'select id as v from pay_authorizations',
  linkId: 'select id as v from pay_links union all select id from account_links',
  accountId: 'select id as v from ledger_accounts',
  alertId: 'select id as v from risk_alerts',
  aliasId: 'select id as v from aliases',
  moveId: 'select id as v from alias_moves',
  verificationId: 'select id as v from alias_verifications',
  consentId: 'select id as v from account_link_consents',
  provisioningId: 'select id as v from token_provisionings',
  requestId: 'select id as v from money_requests',
  splitId: 'select id as v from bill_splits',
  packetId: 'select id as v from red_packets',
  tokenId: 'select id as v from card_tokens',
  tokenRef: 'select token_ref as v from card_tokens',
  quoteId: 'select id as v from quotes',
};

function resolveRef(doc: Schema, schema: Schema): Schema {
  let s = schema;
  for (let i = 0; i < 10 && typeof s.$ref === 'string'; i++) {
    const target = (s.$ref as string)
      .replace(/^#\//, '')
      .split('/')
      .reduce<any>((node, key) => node?.[key], doc);
    if (target === undefined) throw new Error(`unresolved ${s.$ref}`);
    s = target;
  }
  return s;
}

/** A valid-looking value for a JSON schema (the subset the hub's TypeBox schemas produce). */
function arbitraryFor(doc: Schema, input: Schema, ids: ReadonlyMap<string, readonly string[]>, name = '', depth = 0): fc.Arbitrary<Json> {
  const schema = resolveRef(doc, input);
  const known = ids.get(name);
  const generated = ((): fc.Arbitrary<Json> => {
    if ('const' in schema) return fc.constant(schema.const);
    if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as Json[]));
    const union: Schema[] | undefined = schema.anyOf ?? schema.oneOf;
    if (union !== undefined) return fc.oneof(...union.map((s) => arbitraryFor(doc, s, ids, name, depth)));
    if (Array.isArray(schema.type)) return fc.oneof(...(schema.type as string[]).map((type) => arbitraryFor(doc, { ...schema, type }, ids, name, depth)));
    switch (schema.type) {
      case 'object': {
        const properties: Record<string, Schema> = schema.properties ?? {};
        if (depth > 6) return fc.constant({});
        const model = Object.fromEntries(Object.entries(properties).map(([key, s]) => [key, arbitraryFor(doc, s, ids, key, depth + 1)]));
        return fc.record(model, { requiredKeys: (schema.required ?? []) as string[] }) as fc.Arbitrary<Json>;
      }
      case 'array': {
        const minLength = Math.min(schema.minItems ?? 0, 4);
        return fc.array(schema.items === undefined ? fc.string() : arbitraryFor(doc, schema.items, ids, name, depth + 1), { minLength, maxLength: Math.max(minLength, Math.min(schema.maxItems ?? 3, 3)) });
      }
      case 'string': {
        const maxLength: number = schema.maxLength ?? 40;
        if (typeof schema.pattern === 'string') {
          try {
            // Cut to the length instead of filtering: a filter that rarely passes (a long pattern, a short maxLength) can
            // keep the generator busy for minutes. A cut string may no longer match: that is one more bad input.
            return fc.stringMatching(new RegExp(schema.pattern), { size: 'small' }).map((s) => (s.length > maxLength ? s.slice(0, maxLength) : s));
          } catch {
            // a pattern fast-check cannot generate from: any string then
          }
        }
        if (schema.format === 'date-time') return fc.date({ min: new Date('2020-01-01'), max: new Date('2035-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
        if (schema.format === 'uri' || /url/i.test(name)) return fc.constantFrom('https://example.com/hook', 'http://127.0.0.1:1/x', 'not a url');
        const lengths = { minLength: schema.minLength ?? 0, maxLength: Math.min(maxLength, 24) };
        return fc.oneof(fc.string({ ...lengths, unit: 'grapheme-ascii' }), fc.string({ ...lengths, unit: 'grapheme' }));
      }
      case 'integer':
        return fc.integer({ min: schema.minimum ?? -1_000, max: schema.maximum ?? 1_000_000 });
      case 'number':
        return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true });
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      default:
        return fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>;
    }
  })();
  return known !== undefined && known.length > 0 ? fc.oneof(fc.constantFrom(...known), generated) : generated;
}

/** Every node of a JSON value with its path (the root too), depth first. */
function nodes(value: Json, path: Path = []): { path: Path; value: Json }[] {
  const out = [{ path, value }];
  if (Array.isArray(value)) value.forEach((item, i) => out.push(...nodes(item, [...path, i])));
  else if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) out.push(...nodes(item, [...path, key]));
  return out;
}

/** The value with the node at `path` replaced (or removed, with `remove`); keys are set as own data properties (`__proto__` too). */
function withNode(root: Json, path: Path, replacement: Json | typeof REMOVE): Json {
  if (path.length === 0) return replacement === REMOVE ? {} : replacement;
  const [head, ...rest] = path;
  if (Array.isArray(root)) {
    const copy = [...root];
    if (rest.length === 0 && replacement === REMOVE) copy.splice(Number(head), 1);
    else copy[Number(head)] = withNode(root[Number(head)] ?? null, rest, replacement);
    return copy;
  }
  if (root === null || typeof root !== 'object') return root;
  const copy: { [key: string]: Json } = {};
  for (const [key, item] of Object.entries(root)) {
    if (key !== head) Object.defineProperty(copy, key, { value: item, enumerable: true, writable: true, configurable: true });
    else if (rest.length > 0 || replacement !== REMOVE) Object.defineProperty(copy, key, { value: rest.length === 0 ? replacement : withNode(item, rest, replacement as Json), enumerable: true, writable: true, configurable: true });
  }
  return copy;
}
const REMOVE = Symbol('remove');

/** Adds `key: value` to the object at `path` (as an own data property, so `__proto__` is sent as a key). */
function withKey(root: Json, path: Path, key: string, value: Json): Json {
  const target = nodes(root).find((n) => n.path.length === path.length && n.path.every((p, i) => p === path[i]))?.value;
  if (target === null || typeof target !== 'object' || Array.isArray(target)) return root;
  const copy: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(target)) Object.defineProperty(copy, k, { value: v, enumerable: true, writable: true, configurable: true });
  Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
  return withNode(root, path, copy);
}

/** Percent-encodes a path segment; a lone surrogate as the three bytes a careless encoder writes (not UTF-8). */
function encodeSegment(value: string): string {
  let out = '';
  for (const ch of value) {
    const unit = ch.charCodeAt(0);
    if (ch.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
      out += [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(ch);
    }
  }
  return out;
}

interface Operation {
  readonly method: (typeof WRITE_METHODS)[number];
  readonly path: string;
  readonly caller: string;
  readonly bodySchema: Schema | undefined;
  readonly pathParams: readonly { name: string; schema: Schema }[];
  readonly queryParams: readonly { name: string; schema: Schema }[];
}

interface FuzzRequest {
  readonly url: string;
  readonly payload: string | undefined;
  readonly headers: Record<string, string>;
}

/** One request for an operation and a kind of bad input. */
function requestFor(doc: Schema, op: Operation, mutation: Mutation, ids: ReadonlyMap<string, readonly string[]>): fc.Arbitrary<FuzzRequest> {
  const body = op.bodySchema === undefined ? fc.constant<Json>({}) : arbitraryFor(doc, op.bodySchema, ids);
  const segment = (name: string, schema: Schema) =>
    fc.oneof(
      { weight: 3, arbitrary: ids.get(name)?.length ? fc.constantFrom(...ids.get(name)!) : arbitraryFor(doc, schema, ids) },
      { weight: 1, arbitrary: arbitraryFor(doc, schema, new Map()) },
      { weight: 1, arbitrary: fc.constantFrom(...BROKEN_IDS) },
    ) as fc.Arbitrary<string>;
  const params = fc.tuple(...op.pathParams.map((p) => segment(p.name, p.schema)));
  const query = fc.tuple(
    fc.tuple(...op.queryParams.map((q) => fc.option(arbitraryFor(doc, q.schema, ids, q.name).map((v) => `${q.name}=${encodeSegment(String(v))}`), { nil: undefined }))),
    fc.option(fc.constantFrom('x=1', 'limit=%00', 'a=%ED%A0%80', 'a[b]=1', 'q='.repeat(500)), { nil: undefined, freq: 4 }),
  );
  const idempotencyKey = fc.option(fc.oneof(fc.uuid(), fc.constantFrom('', ' ', 'k'.repeat(200), 'key with spaces')), { nil: undefined, freq: 3 });
  const selector = fc.nat();
  const pick = <T>(items: readonly T[], n: number): T | undefined => (items.length === 0 ? undefined : items[n % items.length]);

  const mutated: fc.Arbitrary<{ payload: string | undefined; contentType: string | undefined }> = fc
    .tuple(body, selector, selector, fc.constantFrom(...ODD_VALUES), fc.constantFrom(...ODD_AMOUNTS), fc.integer({ min: MAX_JSON_DEPTH + 1, max: 20_000 }), fc.constantFrom(...NOT_JSON), fc.constantFrom(...OTHER_CONTENT_TYPES))
    .map(([base, n, m, oddValue, oddAmount, depth, notJson, otherType]) => {
      const json = (value: Json) => ({ payload: JSON.stringify(value), contentType: 'application/json' });
      const all = nodes(base);
      const strings = all.filter((node) => typeof node.value === 'string');
      const objects = all.filter((node) => node.value !== null && typeof node.value === 'object' && !Array.isArray(node.value));
      const keyed = all.filter((node) => node.path.length > 0);
      const intoString = (insert: string): Json => {
        const target = pick(strings, n);
        if (target === undefined) return withKey(base, [], 'note', `a${insert}b`);
        const text = target.value as string;
        const at = m % (text.length + 1);
        return withNode(base, target.path, text.slice(0, at) + insert + text.slice(at));
      };
      const stringOfLength = (length: number): Json => {
        const target = pick(strings, n);
        return target === undefined ? withKey(base, [], 'note', 'x'.repeat(length)) : withNode(base, target.path, 'x'.repeat(length));
      };
      switch (mutation) {
        case 'valid':
          return json(base);
        case 'nul':
          return json(intoString('\u0000'));
        case 'lone-surrogate': {
          const lone = pick(['\ud800', '\udfff', '\udc00\ud800'], m)!;
          // Now and then in a field name instead of a value.
          const object = pick(objects, n);
          return n % 4 === 0 && object !== undefined ? json(withKey(base, object.path, `k${lone}`, 1)) : json(intoString(lone));
        }
        case 'deep-json':
          return { payload: n % 2 === 0 ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(Math.min(depth, 10_000)) + '1' + '}'.repeat(Math.min(depth, 10_000)), contentType: 'application/json' };
        case 'huge-string-within-limit':
          return json(stringOfLength(1_000 + (m % 58_000)));
        case 'huge-string-beyond-limit':
          return json(stringOfLength(70_000 + (m % 200_000)));
        case 'wrong-type': {
          const target = pick(all, n)!;
          const replacement = typeof oddValue === typeof target.value && Array.isArray(oddValue) === Array.isArray(target.value) ? 'not the right type' : oddValue;
          return json(withNode(base, target.path, replacement));
        }
        case 'odd-amount': {
          const amounts = strings.filter((node) => /amount|total|limit|max|min|fee|rate|price|value/i.test(String(node.path.at(-1) ?? '')));
          const target = pick(amounts.length > 0 ? amounts : strings, n);
          return json(target === undefined ? withKey(base, [], 'amount', oddAmount) : withNode(base, target.path, oddAmount));
        }
        case 'extra-field': {
          const target = pick(objects, n);
          return json(target === undefined ? base : withKey(base, target.path, pick(ODD_KEYS, m)!, oddValue));
        }
        case 'missing-field': {
          const target = pick(keyed, n);
          return json(target === undefined ? base : withNode(base, target.path, REMOVE));
        }
        case 'non-json':
          return { payload: notJson, contentType: 'application/json' };
        case 'wrong-content-type':
          return { payload: otherType.startsWith('application/x-www-form') ? 'a=1&b=%00' : JSON.stringify(base), contentType: otherType };
        case 'no-body':
          return { payload: undefined, contentType: undefined };
        case 'json-not-object':
          return { payload: pick(['null', '1', '"s"', '[]', '[{}]', 'true', '-0', '1e400'], n), contentType: 'application/json' };
      }
    });

  return fc.tuple(params, query, idempotencyKey, mutated).map(([segments, [queryParts, extraQuery], key, { payload, contentType }]) => {
    let i = 0;
    const path = op.path.replace(/\{[^}]+\}/g, () => encodeSegment(segments[i++] ?? 'x'));
    const queryString = [...queryParts.filter((q) => q !== undefined), ...(extraQuery === undefined ? [] : [extraQuery])].join('&');
    return {
      url: queryString === '' ? path : `${path}?${queryString}`,
      payload,
      headers: { ...(contentType === undefined ? {} : { 'content-type': contentType }), ...(key === undefined ? {} : { 'idempotency-key': key }) },
    };
  });
}

/** What is wrong with an answer, if anything: a 5xx, or an error not in the one shape with a registered code and status. */
function problemWith(res: { status: number; body: unknown; headers: Record<string, unknown> }, errorCodes: Record<string, number>): string | undefined {
  if (res.status >= 500) return `status ${res.status}`;
  if (typeof res.headers['x-request-id'] !== 'string') return 'no x-request-id';
  if (res.status < 400) return undefined;
  const body = res.body as any;
  if (body === null || typeof body !== 'object' || Object.keys(body).join() !== 'error') return 'error body is not { error }';
  const error = body.error;
  if (typeof error?.code !== 'string' || typeof error.message !== 'string' || error.message === '') return 'error without code and message';
  if (Object.keys(error).some((k) => !['code', 'message', 'details'].includes(k))) return `error has other fields: ${Object.keys(error).join()}`;
  if (errorCodes[error.code] !== res.status) return `code ${error.code} is registered as ${errorCodes[error.code]}, answered ${res.status}`;
  return undefined;
}

const show = (text: string | undefined) => (text === undefined ? '(none)' : JSON.stringify(text.length > 160 ? `${text.slice(0, 160)}… (${text.length} chars)` : text));

describe.each(engines)('fuzzing every write operation on %s', (engine) => {
  let t: TestHub;
  const unhandled: unknown[] = [];
  const collect = (reason: unknown) => {
    unhandled.push(reason);
  };
  beforeAll(async () => {
    process.on('unhandledRejection', collect);
    // A limit no participant reaches here: the pass is about input, not rate limits.
    t = await startTestHub(engine, { config: { rateLimitPerS: 100_000 } });
  });
  afterAll(async () => {
    process.off('unhandledRejection', collect);
    await t?.close();
  });

  it('answers no 5xx and every error in the shape, and the hub serves afterwards', async () => {
    console.log(`[fuzz] seed ${SEED} on ${engine} (HUTONG_FUZZ_SEED=${SEED} replays this run)`);
    const doc = (await t.api('anonymous').get('/openapi.json')).body as Schema;
    const errorCodes = doc['x-error-codes'] as Record<string, number>;

    // Ids of the demo network, and a participant of its own for the operator's routes that take one (suspend, revoke
    // credentials): the participants the pass calls as must stay usable.
    const ids = new Map<string, string[]>();
    for (const [name, sql] of Object.entries(ID_SOURCES)) ids.set(name, (await t.hub.db.query<{ v: string }>(`${sql} order by 1 limit 4`)).map((r) => r.v));
    const target = await t.api('operator').post('/v1/operator/participants', { kind: 'wallet', name: 'Fuzz target', country: 'CN', currencies: ['CNY'] });
    expect(target.status).toBe(201);
    ids.set('participantId', [target.body.participant.id]);
    ids.set('credentialId', [target.body.credential.clientId]);

    const operations: Operation[] = [];
    for (const [path, item] of Object.entries(doc.paths as Record<string, Schema>)) {
      for (const method of WRITE_METHODS) {
        const operation = item[method];
        if (operation === undefined) continue;
        const parameters: Schema[] = [...(item.parameters ?? []), ...(operation.parameters ?? [])];
        operations.push({
          method,
          path,
          caller: callerFor(path, operation),
          bodySchema: operation.requestBody?.content?.['application/json']?.schema,
          pathParams: parameters.filter((p) => p.in === 'path').map((p) => ({ name: p.name, schema: p.schema ?? { type: 'string' } })),
          queryParams: parameters.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema ?? { type: 'string' } })),
        });
      }
    }

    const failures: string[] = [];
    const covered = new Set<string>();
    const statuses = new Map<number, number>();
    const started = Date.now();
    for (const [opIndex, op] of operations.entries()) {
      const api = t.api(op.caller);
      for (const [mutationIndex, mutation] of MUTATIONS.entries()) {
        const [request] = fc.sample(requestFor(doc, op, mutation, ids), { seed: SEED + opIndex * 1_000 + mutationIndex, numRuns: 1 });
        const method = op.method.toUpperCase() as 'POST' | 'PATCH' | 'DELETE';
        const res = await api.raw({ method, url: request!.url, ...(request!.payload === undefined ? {} : { payload: request!.payload }), headers: request!.headers });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const problem = problemWith(res, errorCodes);
        if (problem !== undefined) {
          failures.push(`${method} ${op.path} as ${op.caller} [${mutation}]: ${problem}\n  url ${show(request!.url)} headers ${JSON.stringify(request!.headers)}\n  payload ${show(request!.payload)}\n  answer ${show(JSON.stringify(res.body))}`);
        }
      }
      covered.add(`${op.method} ${op.path}`);
    }
    console.log(`[fuzz] ${engine}: ${operations.length} write operations × ${MUTATIONS.length} requests in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);

    expect(failures, failures.join('\n')).toEqual([]);
    expect(unhandled).toEqual([]);
    // Every write operation the document lists was covered: a route added tomorrow is fuzzed without editing this file.
    const documented = Object.values(doc.paths as Record<string, Schema>).reduce((n, item) => n + WRITE_METHODS.filter((m) => item[m] !== undefined).length, 0);
    expect(covered.size).toBe(documented);
    expect(documented).toBeGreaterThan(50);

    // The hub still serves: a normal read and a normal write, by participants the pass called as.
    expect((await t.api('wallet-a').get('/v1/me')).status).toBe(200);
    const created = await t.api('wallet-a').post('/v1/customers', { externalId: `after-fuzz-${SEED}`, name: 'After the fuzz 😀' });
    expect(created.status).toBe(201);
    expect((await t.api('wallet-a').get(`/v1/customers/${created.body.id}`)).body.name).toBe('After the fuzz 😀');
    expect((await t.api('bank-a').get('/v1/issuer/cards')).status).toBe(200);
  }, 300_000);
});

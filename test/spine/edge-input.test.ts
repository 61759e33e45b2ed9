import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/platform/http.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type ApiResponse, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();
const JSON_HEADERS = { 'content-type': 'application/json' };

const expectError = (res: ApiResponse, status: number, code: string) => {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
};

/** `[[[…]]]` nested `depth` levels (the outermost array counts as one). */
const nestedArrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** Bad input is refused at the edge, in one place for every route, before anything stores or walks it. */
describe.each(engines)('input the hub refuses at the edge (%s)', (engine) => {
  let t: TestHub;
  let cardId: string;
  beforeAll(async () => {
    t = await startTestHub(engine);
    cardId = (await t.api('bank-a').get('/v1/issuer/cards')).body.items[0].id;
  });
  afterAll(async () => {
    await t?.close();
  });

  const countCustomers = async () => (await t.hub.db.query<{ n: bigint }>('select count(*) as n from customers'))[0]?.n;

  it('refuses NUL and lone surrogates in any text of the body, naming the field, and writes nothing', async () => {
    const api = t.api('wallet-a');
    const before = await countCustomers();
    for (const [body, field, reason] of [
      [{ externalId: 'nul-1', name: 'a\u0000b' }, 'body/name', /NUL/],
      [{ externalId: 'sur-1', name: 'lone \ud800 high' }, 'body/name', /surrogate/],
      [{ externalId: 'sur-2', name: 'lone \udc00 low' }, 'body/name', /surrogate/],
      [{ externalId: 'sur-3', name: 'reversed \udc00\ud800 pair' }, 'body/name', /surrogate/],
      // Checked before the schema, whatever the field: a nested array element, and a field name.
      [{ externalId: 'nest-1', name: 'ok', extra: [{ a: 'fine' }, { a: 'x\u0000' }] }, 'body/extra/1/a', /NUL/],
      [{ externalId: 'key-1', ['na\u0000me']: 'x' }, 'body/na\ufffdme', /field name must not contain NUL/],
    ] as const) {
      const res = await api.post('/v1/customers', body);
      expectError(res, 400, 'validation_failed');
      expect(res.body.error.message).toContain(field);
      expect(res.body.error.details.issues).toEqual([{ field, reason: expect.stringMatching(reason) }]);
    }
    // Sent as JSON text too (a client that writes the escape itself).
    const raw = await api.raw({ method: 'POST', url: '/v1/customers', payload: '{"externalId":"raw-1","name":"\\ud800"}', headers: JSON_HEADERS });
    expectError(raw, 400, 'validation_failed');
    expect(raw.body.error.details.issues[0].field).toBe('body/name');
    expect(await countCustomers()).toBe(before);
  });

  it('refuses NUL in the query string and in path parameters, and on operator routes too', async () => {
    const query = await t.api('wallet-a').get('/v1/customers?externalId=a%00b');
    expectError(query, 400, 'validation_failed');
    expect(query.body.error.details.issues[0].field).toBe('querystring/externalId');
    const params = await t.api('wallet-a').get('/v1/customers/cus%00x');
    expectError(params, 400, 'validation_failed');
    expect(params.body.error.details.issues[0].field).toBe('params/customerId');
    const operator = await t.api('operator').post('/v1/operator/participants', { kind: 'wallet', name: 'W\ud800', country: 'CN', currencies: ['CNY'] });
    expectError(operator, 400, 'validation_failed');
    expect(operator.body.error.details.issues[0].field).toBe('body/name');
    // A path that is not percent-encoded UTF-8 (an encoded lone surrogate) never reaches a route: refused in the shape.
    expectError(await t.api('wallet-a').get('/v1/customers/a%ED%A0%80b'), 400, 'malformed_request');
    expectError(await t.api('wallet-a').get('/v1/customers/a%zzb'), 400, 'malformed_request');
    expectError(await t.api('wallet-a').get(`/v1/customers/${'a'.repeat(500)}`), 400, 'validation_failed');
  });

  it('stores and answers characters outside the BMP (surrogate pairs) unchanged', async () => {
    const name = '李 😀 𠀀𪚥 ok';
    const created = await t.api('wallet-a').post('/v1/customers', { externalId: 'astral-1', name });
    expect(created.status).toBe(201);
    expect(created.body.name).toBe(name);
    expect((await t.api('wallet-a').get(`/v1/customers/${created.body.id}`)).body.name).toBe(name);
  });

  it(`refuses JSON nested deeper than ${MAX_JSON_DEPTH} levels before parsing it, and takes ${MAX_JSON_DEPTH}`, async () => {
    const bank = t.api('bank-a');
    const deep = await bank.raw({ method: 'POST', url: `/v1/issuer/cards/${cardId}/freeze`, payload: nestedArrays(10_000), headers: { ...JSON_HEADERS, 'idempotency-key': 'deep-1' } });
    expectError(deep, 400, 'malformed_json');
    expect(deep.body.error.message).toContain(`deeper than ${MAX_JSON_DEPTH}`);
    const deepObject = '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000);
    expectError(await t.api('wallet-a').raw({ method: 'POST', url: '/v1/customers', payload: deepObject, headers: JSON_HEADERS }), 400, 'malformed_json');
    // At the bound the body is parsed and reaches the schema (an unknown field); one more level is refused.
    const atBound = await t.api('wallet-a').raw({ method: 'POST', url: '/v1/customers', payload: `{"externalId":"d","name":"d","x":${nestedArrays(MAX_JSON_DEPTH - 1)}}`, headers: JSON_HEADERS });
    expectError(atBound, 400, 'unknown_field');
    const overBound = await t.api('wallet-a').raw({ method: 'POST', url: '/v1/customers', payload: `{"externalId":"d","name":"d","x":${nestedArrays(MAX_JSON_DEPTH)}}`, headers: JSON_HEADERS });
    expectError(overBound, 400, 'malformed_json');
    // Brackets inside strings (and escaped quotes before them) are text, not nesting.
    const bracketsInText = await t.api('wallet-a').post('/v1/customers', { externalId: 'brackets-1', name: `"\\[${'['.repeat(100)}` });
    expect(bracketsInText.status).toBe(201);
  });

  it('refuses a body on an action that takes none (anything but no body or {}), and documents it as optional', async () => {
    const bank = t.api('bank-a');
    const freeze = `/v1/issuer/cards/${cardId}/freeze`;
    const unknown = await bank.post(freeze, { x: 1 });
    expectError(unknown, 400, 'unknown_field');
    expect(unknown.body.error.details.issues[0].field).toBe('body/x');
    for (const payload of ['[]', '"freeze"', '1', 'null', '[{}]']) {
      expectError(await bank.raw({ method: 'POST', url: freeze, payload, headers: JSON_HEADERS }), 400, 'validation_failed');
    }
    expectError(await bank.raw({ method: 'POST', url: freeze, payload: 'x=1', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
    expect((await t.hub.db.query<{ status: string }>('select status from cards where id = $1', [cardId]))[0]?.status).toBe('active');
    // No body at all (no content-type), and {}: both go through.
    expect((await bank.raw({ method: 'POST', url: freeze })).status).toBe(200);
    expect((await bank.post(`/v1/issuer/cards/${cardId}/unfreeze`, {})).status).toBe(200);
    // DELETE likewise.
    const wallet = t.api('wallet-a');
    expectError(await wallet.raw({ method: 'DELETE', url: '/v1/aliases/ali_none', payload: '{"x":1}', headers: JSON_HEADERS }), 400, 'unknown_field');
    expectError(await wallet.delete('/v1/aliases/ali_none'), 404, 'alias_not_found');
    expectError(await wallet.raw({ method: 'DELETE', url: '/v1/aliases/ali_none', payload: '{}', headers: JSON_HEADERS }), 404, 'alias_not_found');
    const doc = (await t.api('anonymous').get('/openapi.json')).body;
    expect(doc.paths['/v1/issuer/cards/{cardId}/freeze'].post.requestBody).toMatchObject({ required: false, content: { 'application/json': { schema: { $ref: '#/components/schemas/NoBody' } } } });
    expect(doc.components.schemas.NoBody).toMatchObject({ type: 'object', additionalProperties: false });
    expect(doc.paths['/v1/customers'].post.requestBody.required).toBe(true);
  });

  it('keeps the body size limit', async () => {
    expectError(await t.api('wallet-a').post('/v1/customers', { externalId: 'big-1', name: 'y'.repeat(70_000) }), 413, 'body_too_large');
  });
});

/** Raw HTTP/1.1 on a socket: what Node's parser refuses never reaches Fastify, and is still answered in the error shape. */
function rawExchange(port: number, send: (socket: import('node:net').Socket) => Promise<void> | void): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('utf8')));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.once('connect', () => {
      Promise.resolve(send(socket)).catch(reject);
    });
  });
}

function parseRawResponse(text: string): { status: number; headers: Record<string, string>; body: any } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) };
}

describe('answers outside any route keep the error shape', () => {
  let t: TestHub;
  let port: number;
  beforeAll(async () => {
    t = await startTestHub('pglite', { config: { port: 0, host: '127.0.0.1' } });
    port = Number(new URL(await t.hub.listen()).port);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('431 for headers larger than the limit, 400 for a malformed request, with registered codes and a request id', async () => {
    const doc = (await t.api('anonymous').get('/openapi.json')).body;
    const cases = [
      [`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
      ['GET /health HTTP/1.1\r\nHost x\r\n\r\n', 400, 'malformed_request'],
      ['NOT A REQUEST\r\n\r\n', 400, 'malformed_request'],
      ['POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}', 400, 'malformed_request'],
    ] as const;
    for (const [request, status, code] of cases) {
      const res = parseRawResponse(await rawExchange(port, (socket) => void socket.write(request)));
      expect(res.status, request.slice(0, 40)).toBe(status);
      expect(res.body).toEqual({ error: { code, message: expect.any(String) } });
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['x-request-id']).toMatch(/^req_/);
      expect(doc['x-error-codes'][code]).toBe(status);
    }
    // The hub still serves.
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  });

  it('a path the router cannot decode answers in the shape over HTTP too', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/customers/%E0%A4%A`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: 'malformed_request', message: expect.any(String) } });
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('a request that arrives while the server closes gets 503 unavailable in the shape, with Retry-After', async () => {
    let closing: Promise<void> | undefined;
    const text = await rawExchange(port, async (socket) => {
      // The request is under way (so its connection is not idle and survives the close), then completed once closing.
      socket.write('GET /health HTTP/1.1\r\nHost: x\r\n');
      await new Promise((resolve) => setTimeout(resolve, 50));
      closing = t.hub.app.close();
      await new Promise((resolve) => setTimeout(resolve, 50));
      socket.write('\r\n');
    });
    await closing;
    const res = parseRawResponse(text);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: { code: 'unavailable', message: expect.any(String) } });
    expect(res.headers['retry-after']).toBe('1');
  });
});

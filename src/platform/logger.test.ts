import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { createLogger, maskPans, scrubText } from './logger.ts';

/** A debug logger writing into an array of parsed lines (each line must be valid JSON). */
function capture() {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  return { logger, text: () => raw.join(''), lines: () => raw.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>) };
}

describe('logger', () => {
  it('logs a request as method and path: no query string, no header, no body', async () => {
    const { logger, text, lines } = capture();
    const app = Fastify({ loggerInstance: logger });
    app.post('/v1/things/:id', async () => ({ ok: true }));
    await app.ready();
    await app.inject({
      method: 'POST',
      url: '/v1/things/thg_1?customerId=cus_secretive&value=%2B8613800138001',
      headers: { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX2hlcmU', cookie: 'session=abc123cookie' },
      payload: { cvv: '123', code: '654321' },
    });
    await app.close();
    const incoming = lines().find((l) => l.msg === 'incoming request');
    expect(incoming?.req).toEqual({ method: 'POST', url: '/v1/things/thg_1', remoteAddress: '127.0.0.1' });
    expect(lines().some((l) => l.msg === 'request completed' && l.res.statusCode === 200)).toBe(true);
    for (const leaked of ['cus_secretive', '8613800138001', 'eyJhbGciOiJIUzI1NiJ9', 'abc123cookie', '654321', 'customerId']) expect(text()).not.toContain(leaked);
  });

  it('censors secret-named fields at any depth, and errors keep only type, message, code, stack and cause', () => {
    const { logger, text, lines } = capture();
    const dbError = Object.assign(new Error('duplicate key value violates unique constraint'), {
      code: '23505',
      detail: 'Key (secret_index)=(VALUE_FROM_DETAIL) already exists.',
      params: ['VALUE_FROM_PARAMS'],
      query: 'insert into t values ($1) -- VALUE_FROM_QUERY',
    });
    const wrapped = new Error('effect failed', { cause: dbError });
    logger.error({ err: wrapped, job: 'sweep' }, 'background job failed');
    logger.info({ data: { clientSecret: 'cs-1', webhook_secret: 'ws-1', nested: { code: '111222', tokenKey: 'tk-1', cvv: '987', accessToken: 'at-1' } }, list: [{ password: 'pw-1' }] }, 'fields');
    logger.warn(dbError); // an error as the first argument: its message becomes the line's message
    for (const leaked of ['VALUE_FROM_DETAIL', 'VALUE_FROM_PARAMS', 'VALUE_FROM_QUERY', 'cs-1', 'ws-1', '111222', 'tk-1', '987', 'at-1', 'pw-1']) expect(text()).not.toContain(leaked);
    const [failed, fields, warned] = lines();
    expect(failed?.err).toMatchObject({ type: 'Error', message: 'effect failed', cause: { message: 'duplicate key value violates unique constraint', code: '23505' } });
    expect(failed?.err.stack).toContain('effect failed');
    expect(failed?.job).toBe('sweep');
    expect(fields?.data.nested).toEqual({ code: '[redacted]', tokenKey: '[redacted]', cvv: '[redacted]', accessToken: '[redacted]' });
    expect(warned?.msg).toBe('duplicate key value violates unique constraint');
  });

  it('scrubs every string of the line: card numbers, query strings, JWTs and the hub’s secret formats, even next to an escape', () => {
    const { logger, text, lines } = capture();
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYXJfMSJ9.Zm9vYmFyYmF6cXV4';
    logger.info({ note: `line one\n4242424242424242 "quoted"` }, `GET /v1/aliases/lookup?value=%2B6581234567 with ${jwt} and sk_demo_abcdefghijklmnopqrstuv\nand whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY`);
    logger.child({ binding: 'op_Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6' }).info('from a child');
    const all = text();
    for (const leaked of ['4242424242424242', '6581234567', jwt, 'abcdefghijklmnopqrstuv', 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldY', 'Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6']) expect(all).not.toContain(leaked);
    const [first, second] = lines();
    expect(first?.note).toBe('line one\n424242******4242 "quoted"');
    expect(first?.msg).toBe('GET /v1/aliases/lookup with [redacted-jwt] and sk_[redacted]\nand whsec_[redacted]');
    expect(second?.binding).toBe('op_[redacted]');
  });

  it('leaves ordinary text alone', () => {
    expect(scrubText('payment pay_8cz3 of 12.30 CNY approved; is it done?')).toBe('payment pay_8cz3 of 12.30 CNY approved; is it done?');
    expect(maskPans('order 12345678901234 ref')).toBe('order 12345678901234 ref'); // not Luhn-valid
    expect(maskPans('id4242424242424242')).toBe('id424242******4242');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeClock } from '../../src/platform/clock.ts';
import { AUTH_FAILURE_LIMITS, createFailureLimiter } from '../../src/platform/rate-limit.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

// The limiter is process memory (no storage involved): one engine is enough.
describe('POST /oauth/token: failed client authentication is throttled', () => {
  const clock = createFakeClock(Date.UTC(2026, 2, 1, 9, 0, 0));
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub('pglite', { clock });
  });
  afterAll(async () => t?.close());

  const credentials = (key: string) => {
    const p = t.demo.participants.find((d) => d.key === key);
    if (p === undefined) throw new Error(`no demo participant ${key}`);
    return p;
  };
  const token = (clientId: string, clientSecret: string, remoteAddress: string) =>
    t.hub.app.inject({ method: 'POST', url: '/oauth/token', remoteAddress, payload: { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret } });

  it('locks a client id out after 10 wrong secrets: 429 with Retry-After, the right secret too, until the cooling-off period ends', async () => {
    const wallet = credentials('wallet-a');
    // Each wrong secret from a different address: the client id's own counter is what locks.
    for (let i = 0; i < AUTH_FAILURE_LIMITS.maxFailures; i++) {
      const res = await token(wallet.clientId, `sk_wrong_${i}`, `10.0.1.${i + 1}`);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('invalid_client');
    }
    const locked = await token(wallet.clientId, 'sk_wrong_again', '10.0.1.200');
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('rate_limited');
    expect(Number(locked.headers['retry-after'])).toBe(AUTH_FAILURE_LIMITS.lockMs / 1000);
    const rightDuringLock = await token(wallet.clientId, wallet.clientSecret, '10.0.1.201');
    expect(rightDuringLock.statusCode).toBe(429);
    expect(rightDuringLock.body).not.toContain('access_token');

    // Another client, from another address, is not affected.
    const other = credentials('wallet-b');
    expect((await token(other.clientId, other.clientSecret, '10.0.1.202')).statusCode).toBe(200);

    clock.advance(AUTH_FAILURE_LIMITS.lockMs - 1_000);
    const stillLocked = await token(wallet.clientId, wallet.clientSecret, '10.0.1.203');
    expect(stillLocked.statusCode).toBe(429);
    expect(Number(stillLocked.headers['retry-after'])).toBe(1);
    clock.advance(1_000);
    const after = await token(wallet.clientId, wallet.clientSecret, '10.0.1.204');
    expect(after.statusCode).toBe(200);
    expect(after.json().access_token).toEqual(expect.any(String));
  });

  it('locks a source address out after 10 failures across client ids (unknown ones too), without locking those clients elsewhere', async () => {
    const address = '10.0.2.1';
    const bank = credentials('bank-a');
    for (let i = 0; i < AUTH_FAILURE_LIMITS.maxFailures; i++) {
      expect((await token(i % 2 === 0 ? bank.clientId : `cli_guess_${i}`, 'sk_wrong', address)).statusCode).toBe(401);
    }
    expect((await token(bank.clientId, bank.clientSecret, address)).statusCode).toBe(429);
    // Missing credentials from the locked address are refused by the lock before anything else.
    const missing = await t.hub.app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: address, payload: { grant_type: 'client_credentials' } });
    expect(missing.statusCode).toBe(429);
    // bank-a's own counter holds 5 failures only: from another address its right secret works.
    expect((await token(bank.clientId, bank.clientSecret, '10.0.2.2')).statusCode).toBe(200);
    clock.advance(AUTH_FAILURE_LIMITS.lockMs);
    expect((await token(bank.clientId, bank.clientSecret, address)).statusCode).toBe(200);
  });

  it("a success does not reset another client's counter (nor the address's)", async () => {
    const wallet = credentials('wallet-c');
    const other = credentials('merchant-a');
    const address = '10.0.3.1';
    for (let i = 0; i < AUTH_FAILURE_LIMITS.maxFailures - 1; i++) expect((await token(wallet.clientId, 'sk_wrong', address)).statusCode).toBe(401);
    // Another client authenticates from the same address in between…
    expect((await token(other.clientId, other.clientSecret, address)).statusCode).toBe(200);
    // …and the tenth failure still locks both the client id and the address.
    expect((await token(wallet.clientId, 'sk_wrong', address)).statusCode).toBe(401);
    expect((await token(wallet.clientId, wallet.clientSecret, '10.0.3.2')).statusCode).toBe(429);
    expect((await token(other.clientId, other.clientSecret, address)).statusCode).toBe(429);
    clock.advance(AUTH_FAILURE_LIMITS.lockMs);
  });

  it('counts failures within a window: failures spread over more than a minute never lock', async () => {
    const wallet = credentials('merchant-b');
    for (let i = 0; i < AUTH_FAILURE_LIMITS.maxFailures * 2; i++) {
      expect((await token(wallet.clientId, 'sk_wrong', `10.0.4.${i + 1}`)).statusCode).toBe(401);
      clock.advance(AUTH_FAILURE_LIMITS.windowMs / (AUTH_FAILURE_LIMITS.maxFailures - 1));
    }
    expect((await token(wallet.clientId, wallet.clientSecret, '10.0.4.250')).statusCode).toBe(200);
  });
});

describe('the failure limiter', () => {
  it('keeps at most maxKeys keys, dropping the least recently failed', () => {
    const clock = createFakeClock();
    const limiter = createFailureLimiter({ nowMs: clock.nowMs, limits: { maxFailures: 2, maxKeys: 3 } });
    limiter.fail(['a']);
    limiter.fail(['a']);
    expect(limiter.check(['a']).allowed).toBe(false);
    // Three newer keys push 'a' (the stalest) out: memory stays bounded, at the price of forgetting the oldest lock.
    limiter.fail(['b']);
    limiter.fail(['c']);
    limiter.fail(['d']);
    expect(limiter.check(['a'])).toEqual({ allowed: true });
    limiter.fail(['d']);
    expect(limiter.check(['b', 'd'])).toMatchObject({ allowed: false, retryAfterMs: AUTH_FAILURE_LIMITS.lockMs });
  });
});

import { describe, expect, it } from 'vitest';
import { newOneTimeCode, openSealed, sealForRecipient } from './recipient-seal.ts';

const SECRET = 'whsec_MfKQ9r0GdW8QdV3wRvYk4FqL2bYk5sQq';

describe('values sealed to a webhook recipient', () => {
  it('opens with the recipient secret and the same context, and only so', () => {
    const sealed = sealForRecipient(SECRET, '123456', 'lnc_1');
    expect(openSealed(SECRET, sealed, 'lnc_1')).toBe('123456');
    expect(sealed).not.toContain('123456');
    expect(sealForRecipient(SECRET, '123456', 'lnc_1')).not.toBe(sealed); // a fresh IV every time
    expect(() => openSealed(SECRET, sealed, 'lnc_2')).toThrow(); // bound to its object: not replayable as another's
    expect(() => openSealed('whsec_someone_else', sealed, 'lnc_1')).toThrow();
    const raw = Buffer.from(sealed, 'base64url');
    raw[13] = (raw[13] ?? 0) ^ 1;
    expect(() => openSealed(SECRET, raw.toString('base64url'), 'lnc_1')).toThrow();
    expect(() => openSealed(SECRET, 'c2hvcnQ', 'lnc_1')).toThrow('not a sealed value');
  });

  it('keeps the wire format of the step-up codes issuers already open (a value sealed by the v1 step-up module)', () => {
    expect(openSealed(SECRET, 'abyIWnXr3QGPwQiP9kKb_5h1OB8OF7upoIBrGRebmByd9Q', 'prv_knownanswer')).toBe('042917');
  });

  it('makes 6-digit codes, zero-padded', () => {
    const codes = Array.from({ length: 200 }, () => newOneTimeCode());
    for (const code of codes) expect(code).toMatch(/^[0-9]{6}$/);
    expect(new Set(codes).size).toBeGreaterThan(190);
  });
});

import { describe, expect, it } from 'vitest';
import { ERROR_CODES, errorCatalogue } from '../../src/api/errors.ts';
import { errorMessagesEn, errorMessagesZh } from '../../web/src/shared/error-messages.ts';

/**
 * Every code the API can answer has a message in both languages of the pages: the test walks the one error catalogue
 * (src/api/errors.ts), so a code added there without its 中文 and English sentences fails here.
 */
describe('the pages’ error messages', () => {
  const pageCodes = ['network_error', 'http_error'];

  it('translate every code of the error catalogue into English and 中文', () => {
    expect(ERROR_CODES.length).toBe(Object.keys(errorCatalogue).length);
    expect(ERROR_CODES.length).toBeGreaterThan(150);
    expect(ERROR_CODES.filter((code) => !(code in errorMessagesEn))).toEqual([]);
    expect(ERROR_CODES.filter((code) => !(code in errorMessagesZh))).toEqual([]);
    for (const code of pageCodes) {
      expect(errorMessagesEn[code]).toBeDefined();
      expect(errorMessagesZh[code]).toBeDefined();
    }
  });

  it('hold no stale codes, no empty messages, and 中文 that is Chinese', () => {
    const known = new Set<string>([...ERROR_CODES, ...pageCodes]);
    expect(Object.keys(errorMessagesEn).filter((c) => !known.has(c))).toEqual([]);
    expect(Object.keys(errorMessagesZh).filter((c) => !known.has(c))).toEqual([]);
    expect(Object.entries({ ...errorMessagesEn }).filter(([, v]) => v.trim() === '')).toEqual([]);
    // A 中文 message copied from English (no Han character) would show English in the Chinese page.
    expect(Object.entries(errorMessagesZh).filter(([, v]) => !/\p{Script=Han}/u.test(v))).toEqual([]);
    // The English never leaks the API's developer wording (field names, header names).
    expect(Object.entries(errorMessagesEn).filter(([, v]) => /details\.|Idempotency-Key|sendAmount|_/.test(v))).toEqual([]);
  });
});

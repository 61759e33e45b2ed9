import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeTokenCryptogram, deriveLimitedUseKey, deriveTokenKey, verifyTokenCryptogram, type TokenCryptogramInput } from './token-cryptogram.ts';

/**
 * A token cryptogram binds what it covers: it verifies for its own amount, counter and unpredictable number, under
 * its own limited-use key, and for nothing else.
 */
const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex').toUpperCase());
const input = fc.record({
  tokenKeyHex: hex(16),
  atc: fc.integer({ min: 0, max: 0xffff }),
  amountMinor: fc.bigInt({ min: 0n, max: 999_999_999_999n }),
  currencyNumeric: fc.constantFrom('156', '344', '840', '978'),
  countryNumeric: fc.constantFrom('156', '344', '840'),
  transactionDate: fc.constantFrom('260115', '261231', '270229'),
  transactionType: fc.constantFrom('00', '01'),
  unpredictableNumber: hex(4),
});

describe('token cryptogram properties', () => {
  it('verifies for its own input, and not when the amount, the counter or the unpredictable number differ', () => {
    fc.assert(
      fc.property(input, fc.bigInt({ min: 0n, max: 999_999_999_999n }), fc.integer({ min: 0, max: 0xffff }), hex(4), (i: TokenCryptogramInput, amount, atc, un) => {
        const cryptogramHex = computeTokenCryptogram(i);
        expect(verifyTokenCryptogram({ ...i, cryptogramHex })).toBe(true);
        expect(verifyTokenCryptogram({ ...i, cryptogramHex: cryptogramHex.toLowerCase() })).toBe(true);
        if (amount !== i.amountMinor) expect(verifyTokenCryptogram({ ...i, amountMinor: amount, cryptogramHex })).toBe(false);
        if (atc !== i.atc) expect(verifyTokenCryptogram({ ...i, atc, cryptogramHex })).toBe(false);
        if (un !== i.unpredictableNumber) expect(verifyTokenCryptogram({ ...i, unpredictableNumber: un, cryptogramHex })).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("a limited-use key's cryptogram does not verify under the token's other keys or its master key", () => {
    fc.assert(
      fc.property(hex(16), fc.integer({ min: 1, max: 0xfffe }), input, (master, keyCounter, i) => {
        const tokenMasterKey = deriveTokenKey(master, '4895370012345678');
        const luk = deriveLimitedUseKey(tokenMasterKey, keyCounter);
        const cryptogramHex = computeTokenCryptogram({ ...i, tokenKeyHex: luk });
        expect(verifyTokenCryptogram({ ...i, tokenKeyHex: luk, cryptogramHex })).toBe(true);
        expect(verifyTokenCryptogram({ ...i, tokenKeyHex: deriveLimitedUseKey(tokenMasterKey, keyCounter + 1), cryptogramHex })).toBe(false);
        expect(verifyTokenCryptogram({ ...i, tokenKeyHex: tokenMasterKey, cryptogramHex })).toBe(false);
      }),
      { numRuns: 100 },
    );
  });
});

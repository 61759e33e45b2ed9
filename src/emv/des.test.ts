import { createCipheriv, createDecipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { adjustKeyParity, desDecryptBlock, desEncryptBlock, desEncryptCbc, desEncryptEcb, keyCheckValue, tdesDecryptCbc, tdesDecryptEcb, tdesEncryptCbc, tdesEncryptEcb } from './des.ts';
import { bytesToHex, mustHexToBytes } from './hex.ts';

// OpenSSL 3 (Node 20) only offers single DES through the legacy provider, which is not loaded; Triple DES with
// K1 = K2 = K3 is single DES, so 'des-ede' with K||K stands in for it. 'des-ede'/'des-ede-cbc' take 2-key 16-byte
// keys (K1K2K1) and 'des-ede3'/'des-ede3-cbc' 3-key 24-byte keys.
function openssl(cipher: string, key: Uint8Array, data: Uint8Array, iv: Uint8Array | null, decrypt = false): Uint8Array {
  const c = decrypt ? createDecipheriv(cipher, key, iv) : createCipheriv(cipher, key, iv);
  c.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
}

const key8 = fc.uint8Array({ minLength: 8, maxLength: 8 });
const key16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const key24 = fc.uint8Array({ minLength: 24, maxLength: 24 });
const blocksOf = (max: number): fc.Arbitrary<Uint8Array> => fc.integer({ min: 1, max }).chain((n) => fc.uint8Array({ minLength: n * 8, maxLength: n * 8 }));
const ZERO_IV = new Uint8Array(8);

describe('DES', () => {
  it('matches the classic FIPS example (key 133457799BBCDFF1)', () => {
    const cipher = desEncryptBlock(mustHexToBytes('133457799BBCDFF1'), mustHexToBytes('0123456789ABCDEF'));
    expect(bytesToHex(cipher)).toBe('85E813540F0AB405');
  });

  it('single DES agrees with OpenSSL (as des-ede with K||K) and decrypts back', () => {
    fc.assert(
      fc.property(key8, blocksOf(4), (key, data) => {
        const doubled = new Uint8Array([...key, ...key]);
        expect(desEncryptEcb(key, data)).toEqual(openssl('des-ede', doubled, data, null));
        expect(desEncryptCbc(key, data)).toEqual(openssl('des-ede-cbc', doubled, data, ZERO_IV));
        const first = data.subarray(0, 8);
        expect(desDecryptBlock(key, desEncryptBlock(key, first))).toEqual(first);
      }),
      { numRuns: 100 },
    );
  });

  it('2-key Triple DES ECB and CBC (zero IV) agree with OpenSSL des-ede / des-ede-cbc', () => {
    fc.assert(
      fc.property(key16, blocksOf(4), (key, data) => {
        expect(tdesEncryptEcb(key, data)).toEqual(openssl('des-ede', key, data, null));
        expect(tdesEncryptCbc(key, data)).toEqual(openssl('des-ede-cbc', key, data, ZERO_IV));
        expect(tdesDecryptEcb(key, data)).toEqual(openssl('des-ede', key, data, null, true));
        expect(tdesDecryptCbc(key, data)).toEqual(openssl('des-ede-cbc', key, data, ZERO_IV, true));
        // The 2-key form is the 3-key form with K3 = K1.
        const extended = new Uint8Array([...key, ...key.subarray(0, 8)]);
        expect(tdesEncryptCbc(key, data)).toEqual(openssl('des-ede3-cbc', extended, data, ZERO_IV));
      }),
      { numRuns: 100 },
    );
  });

  it('3-key Triple DES agrees with OpenSSL des-ede3 / des-ede3-cbc, with random IVs', () => {
    fc.assert(
      fc.property(key24, blocksOf(3), key8, (key, data, iv) => {
        expect(tdesEncryptEcb(key, data)).toEqual(openssl('des-ede3', key, data, null));
        expect(tdesEncryptCbc(key, data, iv)).toEqual(openssl('des-ede3-cbc', key, data, iv));
        expect(tdesDecryptCbc(key, tdesEncryptCbc(key, data, iv), iv)).toEqual(data);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses partial blocks and bad key sizes', () => {
    expect(() => tdesEncryptEcb(new Uint8Array(16), new Uint8Array(7))).toThrow(RangeError);
    expect(() => tdesEncryptEcb(new Uint8Array(15), new Uint8Array(8))).toThrow(RangeError);
    expect(() => desEncryptBlock(new Uint8Array(16), new Uint8Array(8))).toThrow(RangeError);
  });

  it('adjusts every byte to odd parity, changing only the low bit', () => {
    fc.assert(
      fc.property(key16, (key) => {
        const adjusted = adjustKeyParity(key);
        adjusted.forEach((byte, i) => {
          expect(byte.toString(2).split('').filter((b) => b === '1').length % 2).toBe(1);
          expect(byte & 0xfe).toBe((key[i] ?? 0) & 0xfe);
        });
      }),
    );
  });

  it('computes key check values as the encryption of a zero block', () => {
    fc.assert(
      fc.property(key16, (key) => {
        expect(keyCheckValue(key, 3)).toEqual(openssl('des-ede', key, ZERO_IV, null).subarray(0, 3));
      }),
      { numRuns: 20 },
    );
  });
});

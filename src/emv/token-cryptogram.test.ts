import { createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { deriveIccMasterKey } from './cryptogram.ts';
import { bytesToHex, mustHexToBytes } from './hex.ts';
import { computeTokenCryptogram, deriveTokenKey, verifyTokenCryptogram, type TokenCryptogramInput } from './token-cryptogram.ts';

const IMK = '0123456789ABCDEFFEDCBA9876543210';
const TOKEN = '4895370012345678';

const base: TokenCryptogramInput = {
  tokenKeyHex: deriveTokenKey(IMK, TOKEN),
  atc: 0x001c,
  amountMinor: 2372n,
  currencyNumeric: '156',
  countryNumeric: '0156',
  transactionDate: '250314',
  transactionType: '00',
  unpredictableNumber: '52BF4585',
};

// Independent reference built on OpenSSL: single DES as des-ede with K||K, session key and retail MAC spelled out.
function des(key8: Buffer, block: Buffer): Buffer {
  const c = createCipheriv('des-ede', Buffer.concat([key8, key8]), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
}

function referenceCryptogram(input: TokenCryptogramInput): string {
  const desDecrypt = (key8: Buffer, block: Buffer): Buffer => {
    const d = createDecipheriv('des-ede', Buffer.concat([key8, key8]), null);
    d.setAutoPadding(false);
    return Buffer.concat([d.update(block), d.final()]);
  };
  const tdes = (key16: Buffer, block: Buffer): Buffer => {
    const c = createCipheriv('des-ede', key16, null);
    c.setAutoPadding(false);
    return Buffer.concat([c.update(block), c.final()]);
  };
  const parity = (b: Buffer): Buffer => Buffer.from(b.map((x) => (x & 0xfe) | ((x >> 1).toString(2).split('1').length % 2 === 1 ? 1 : 0)));
  const mk = Buffer.from(input.tokenKeyHex, 'hex');
  const atc = Buffer.from(input.atc.toString(16).padStart(4, '0'), 'hex');
  const r = (mid: number): Buffer => Buffer.concat([atc, Buffer.from([mid]), Buffer.alloc(5)]);
  const sk = parity(Buffer.concat([tdes(mk, r(0xf0)), tdes(mk, r(0x0f))]));
  const data = Buffer.from(
    input.amountMinor.toString().padStart(12, '0') +
      input.currencyNumeric.padStart(4, '0') +
      input.countryNumeric.padStart(4, '0') +
      input.transactionDate +
      input.transactionType +
      input.unpredictableNumber +
      atc.toString('hex'),
    'hex',
  );
  const padded = Buffer.concat([data, Buffer.from([0x80]), Buffer.alloc(7 - (data.length % 8))]);
  let chain: Buffer = Buffer.alloc(8);
  for (let i = 0; i < padded.length; i += 8) chain = des(sk.subarray(0, 8), Buffer.from(chain.map((x, j) => x ^ (padded[i + j] ?? 0))));
  const mac = des(sk.subarray(0, 8), desDecrypt(sk.subarray(8, 16), chain));
  return mac.toString('hex').toUpperCase();
}

describe('token cryptogram', () => {
  it('derives the token key with EMV Option A', () => {
    expect(deriveTokenKey(IMK, TOKEN)).toBe(bytesToHex(deriveIccMasterKey(mustHexToBytes(IMK), TOKEN, '00')));
    expect(deriveTokenKey(IMK, TOKEN, '01')).not.toBe(deriveTokenKey(IMK, TOKEN));
    expect(deriveTokenKey(IMK, TOKEN)).toMatch(/^[0-9A-F]{32}$/);
  });

  it('matches an independent OpenSSL-based computation of the documented layout', () => {
    const samples = fc.sample(
      fc.record({
        atc: fc.integer({ min: 0, max: 0xffff }),
        amountMinor: fc.bigInt({ min: 0n, max: 999_999_999_999n }),
        unpredictableNumber: fc.uint8Array({ minLength: 4, maxLength: 4 }).map(bytesToHex),
        tokenKeyHex: fc.uint8Array({ minLength: 16, maxLength: 16 }).map(bytesToHex),
      }),
      25,
    );
    for (const s of samples) {
      const input = { ...base, ...s };
      expect(computeTokenCryptogram(input)).toBe(referenceCryptogram(input));
    }
  });

  it('round-trips through verify and rejects tampering', () => {
    const cryptogram = computeTokenCryptogram(base);
    expect(cryptogram).toMatch(/^[0-9A-F]{16}$/);
    expect(verifyTokenCryptogram({ ...base, cryptogramHex: cryptogram })).toBe(true);
    expect(verifyTokenCryptogram({ ...base, cryptogramHex: cryptogram.toLowerCase() })).toBe(true);
    const flipped = (cryptogram[0] === '0' ? '1' : '0') + cryptogram.slice(1);
    expect(verifyTokenCryptogram({ ...base, cryptogramHex: flipped })).toBe(false);
    expect(verifyTokenCryptogram({ ...base, cryptogramHex: cryptogram.slice(0, 14) })).toBe(false);
    expect(verifyTokenCryptogram({ ...base, cryptogramHex: 'not hex at all!!' })).toBe(false);
    expect(verifyTokenCryptogram({ ...base, tokenKeyHex: deriveTokenKey(IMK, '4895370012345679'), cryptogramHex: cryptogram })).toBe(false);
  });

  it.each<[string, Partial<TokenCryptogramInput>]>([
    ['atc', { atc: 0x001d }],
    ['amountMinor', { amountMinor: 2373n }],
    ['currencyNumeric', { currencyNumeric: '344' }],
    ['countryNumeric', { countryNumeric: '0344' }],
    ['transactionDate', { transactionDate: '250315' }],
    ['transactionType', { transactionType: '01' }],
    ['unpredictableNumber', { unpredictableNumber: '52BF4586' }],
    ['tokenKeyHex', { tokenKeyHex: deriveTokenKey(IMK, '4895370012345679') }],
  ])('changing %s changes the cryptogram', (_field, change) => {
    const original = computeTokenCryptogram(base);
    const changed = computeTokenCryptogram({ ...base, ...change });
    expect(changed).not.toBe(original);
    expect(verifyTokenCryptogram({ ...base, ...change, cryptogramHex: original })).toBe(false);
  });

  it('throws on malformed inputs', () => {
    expect(() => computeTokenCryptogram({ ...base, atc: 70000 })).toThrow(RangeError);
    expect(() => computeTokenCryptogram({ ...base, amountMinor: -1n })).toThrow(RangeError);
    expect(() => computeTokenCryptogram({ ...base, amountMinor: 10n ** 12n })).toThrow(RangeError);
    expect(() => computeTokenCryptogram({ ...base, transactionDate: '251399' })).toThrow(RangeError);
    expect(() => computeTokenCryptogram({ ...base, unpredictableNumber: '52BF45' })).toThrow(RangeError);
    expect(() => computeTokenCryptogram({ ...base, tokenKeyHex: 'ABCD' })).toThrow(RangeError);
    expect(() => deriveTokenKey('ABCD', TOKEN)).toThrow(RangeError);
  });

  it('imports nothing Node-only, directly or through its local imports', () => {
    const visit = (file: string, seen: Set<string>): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(new URL(file, import.meta.url), 'utf8');
      expect(source, file).not.toMatch(/from\s+['"](node:|fs|crypto|buffer|path)/);
      expect(source, file).not.toMatch(/\bBuffer\./);
      for (const [, local] of source.matchAll(/from\s+'(\.\/[^']+\.ts)'/g)) visit(local ?? '', seen);
    };
    visit('./token-cryptogram.ts', new Set());
  });
});

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc16, crc16Bytes, crc16Hex } from './crc16.ts';

// Bit-by-bit reference, written independently of the table-driven implementation.
function crc16Reference(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit -= 1) {
      const inBit = (byte >> bit) & 1;
      const topBit = (crc >> 15) & 1;
      crc = (crc << 1) & 0xffff;
      if ((inBit ^ topBit) === 1) crc ^= 0x1021;
    }
  }
  return crc;
}

describe('crc16 (CCITT-FALSE)', () => {
  it('matches the catalogue check value for "123456789"', () => {
    expect(crc16('123456789')).toBe(0x29b1);
    expect(crc16Hex('123456789')).toBe('29B1');
  });

  it('returns the init value for empty input', () => {
    expect(crc16('')).toBe(0xffff);
  });

  it('hashes UTF-8 bytes, not UTF-16 code units', () => {
    const bytes = new TextEncoder().encode('最佳运输');
    expect(bytes.length).toBe(12);
    expect(crc16('最佳运输')).toBe(crc16Reference(bytes));
  });

  it('pads to four hex digits', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(crc16Hex(s)).toMatch(/^[0-9A-F]{4}$/);
      }),
    );
  });

  it('agrees with a bitwise reference on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(crc16Bytes(bytes)).toBe(crc16Reference(bytes));
      }),
    );
  });
});

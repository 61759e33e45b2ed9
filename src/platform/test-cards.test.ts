import { describe, expect, it } from 'vitest';
import { dataLines, readTestDataFile } from '../emv/vector-files.ts';
import { luhnValid, maskPans } from './logger.ts';

/** Card numbers processors publish for testing (test/data/cards/test-cards.txt): "<number> <label>". */
const cards = dataLines(readTestDataFile('cards/test-cards.txt')).map((line) => {
  const [number = '', ...label] = line.split(' ');
  return { number, label: label.join(' ') };
});
/** The two the file marks as not Luhn-valid: Stripe's deliberate `incorrect_number` card and the EMVCo CPM sample's PAN. */
const NOT_LUHN = new Set(['4242424242424241', '1234567890123458']);

describe('published test card numbers', () => {
  it('covers 15-, 16- and 19-digit numbers of several schemes', () => {
    expect(cards.length).toBeGreaterThanOrEqual(15);
    expect(new Set(cards.map((c) => c.number.length))).toEqual(new Set([15, 16, 19]));
    for (const c of cards) expect(c.number).toMatch(/^[0-9]{13,19}$/);
  });

  it('pass or fail the Luhn check as published', () => {
    for (const c of cards) expect(luhnValid(c.number), `${c.number} (${c.label})`).toBe(!NOT_LUHN.has(c.number));
  });

  it('are masked in log lines (first 6, last 4) when Luhn-valid, alone or grouped in fours, and left alone otherwise', () => {
    for (const c of cards) {
      const line = maskPans(`card ${c.number} declined`);
      if (NOT_LUHN.has(c.number)) {
        expect(line).toBe(`card ${c.number} declined`);
        continue;
      }
      expect(line, c.label).toBe(`card ${c.number.slice(0, 6)}${'*'.repeat(c.number.length - 10)}${c.number.slice(-4)} declined`);
      const grouped = c.number.replace(/(\d{4})(?=\d)/g, '$1 ');
      expect(maskPans(`card ${grouped} declined`), c.label).not.toContain(grouped);
    }
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatAmount, parseAmount, MAX_AMOUNT_MINOR, currencyMinorUnit } from './money.ts';

describe('money on the wire', () => {
  it('parses decimal strings by the currency minor unit', () => {
    expect(parseAmount('12.30', 'CNY')).toEqual({ ok: true, value: 1230n });
    expect(parseAmount('12.3', 'CNY')).toEqual({ ok: true, value: 1230n });
    expect(parseAmount('12', 'JPY')).toEqual({ ok: true, value: 12n });
    expect(parseAmount('1.234', 'KWD')).toEqual({ ok: true, value: 1234n });
  });

  it('refuses over-precise, zero, negative, malformed amounts and unknown currencies with their codes', () => {
    const code = (a: string, c: string) => {
      const r = parseAmount(a, c);
      return r.ok ? 'ok' : r.error.code;
    };
    expect(code('12.305', 'CNY')).toBe('amount_precision');
    expect(code('1.5', 'JPY')).toBe('amount_precision');
    expect(code('0', 'CNY')).toBe('amount_not_positive');
    expect(code('0.00', 'CNY')).toBe('amount_not_positive');
    expect(code('-1.00', 'CNY')).toBe('amount_not_positive');
    expect(code('1e3', 'CNY')).toBe('invalid_amount');
    expect(code('01.00', 'CNY')).toBe('invalid_amount');
    expect(code('1.', 'CNY')).toBe('invalid_amount');
    expect(code(' 1', 'CNY')).toBe('invalid_amount');
    expect(code('1.00', 'ABC')).toBe('unknown_currency');
    expect(code('1.00', 'XXX')).toBe('unknown_currency');
    expect(code('92233720368547758.08', 'CNY')).toBe('amount_too_large');
    expect(code('92233720368547758.07', 'CNY')).toBe('ok');
  });

  it('round-trips every representable amount exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: MAX_AMOUNT_MINOR }), fc.constantFrom('CNY', 'JPY', 'KWD', 'USD', 'EUR'), (minor, currency) => {
        const text = formatAmount(minor, currency);
        expect(text.split('.')[1]?.length ?? 0).toBe(currencyMinorUnit(currency));
        expect(parseAmount(text, currency)).toEqual({ ok: true, value: minor });
      }),
    );
  });
});

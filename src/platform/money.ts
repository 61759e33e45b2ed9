import currencyCodes from 'currency-codes';
import { err, ok, type Result, type DomainError } from './result.ts';

/** Largest amount a ledger column holds: PostgreSQL BIGINT. */
export const MAX_AMOUNT_MINOR = 2n ** 63n - 1n;

/** ISO 4217 codes that are not money a customer holds (metals, SDR, testing, "no currency"). */
const NON_MONEY = new Set(['XAG', 'XAU', 'XBA', 'XBB', 'XBC', 'XBD', 'XDR', 'XPD', 'XPT', 'XSU', 'XTS', 'XUA', 'XXX', 'BOV', 'CHE', 'CHW', 'CLF', 'COU', 'MXV', 'USN', 'UYI', 'UYW']);

const MINOR_UNITS: ReadonlyMap<string, number> = new Map(
  currencyCodes.data.filter((c) => !NON_MONEY.has(c.code) && typeof c.digits === 'number').map((c) => [c.code, c.digits]),
);

export function currencyMinorUnit(currency: string): number | undefined {
  return MINOR_UNITS.get(currency);
}

export function isCurrency(currency: string): boolean {
  return MINOR_UNITS.has(currency);
}

export function supportedCurrencies(): string[] {
  return [...MINOR_UNITS.keys()].sort();
}

export type MoneyErrorCode = 'invalid_amount' | 'amount_not_positive' | 'amount_precision' | 'amount_too_large' | 'unknown_currency';
export type MoneyError = DomainError<MoneyErrorCode>;

export interface Money {
  readonly amountMinor: bigint;
  readonly currency: string;
}

const AMOUNT_PATTERN = /^(0|[1-9][0-9]{0,30})(?:\.([0-9]{1,30}))?$/;

/**
 * Parses a decimal string in a currency into minor units, exactly. "12.30" CNY → 1230n; "12.305" CNY is refused.
 * Positive amounts only unless `allowZero`.
 */
export function parseAmount(amount: string, currency: string, options: { allowZero?: boolean; field?: string } = {}): Result<bigint, MoneyError> {
  const field = options.field ?? 'amount';
  const digits = MINOR_UNITS.get(currency);
  if (digits === undefined) return err('unknown_currency', `${currency} is not an ISO 4217 currency the hub supports`, { currency });
  if (amount.startsWith('-')) return err('amount_not_positive', `${field} must be greater than zero`, { field });
  const match = AMOUNT_PATTERN.exec(amount);
  if (match === null) return err('invalid_amount', `${field} must be a decimal string such as "12.30"`, { field });
  const whole = match[1] ?? '0';
  const fraction = match[2] ?? '';
  if (fraction.length > digits) {
    return err('amount_precision', `${currency} has ${digits} decimal places; ${field} has ${fraction.length}`, { field, currency, minorUnit: digits });
  }
  const minor = BigInt(whole) * 10n ** BigInt(digits) + BigInt(fraction.padEnd(digits, '0') || '0');
  if (minor > MAX_AMOUNT_MINOR) return err('amount_too_large', `${field} is larger than the hub can hold`, { field });
  if (minor === 0n && options.allowZero !== true) return err('amount_not_positive', `${field} must be greater than zero`, { field });
  return ok(minor);
}

export function parseMoney(money: { amount: string; currency: string }, field = 'amount'): Result<Money, MoneyError> {
  const parsed = parseAmount(money.amount, money.currency, { field });
  return parsed.ok ? ok({ amountMinor: parsed.value, currency: money.currency }) : parsed;
}

/** Formats minor units as the wire's decimal string: 1230n CNY → "12.30"; negative balances keep their sign. */
export function formatAmount(amountMinor: bigint, currency: string): string {
  const digits = MINOR_UNITS.get(currency);
  if (digits === undefined) throw new Error(`formatAmount: unsupported currency ${currency}`);
  const negative = amountMinor < 0n;
  const abs = negative ? -amountMinor : amountMinor;
  if (digits === 0) return `${negative ? '-' : ''}${abs}`;
  const scale = 10n ** BigInt(digits);
  return `${negative ? '-' : ''}${abs / scale}.${(abs % scale).toString().padStart(digits, '0')}`;
}

export function formatMoney(amountMinor: bigint, currency: string): { amount: string; currency: string } {
  return { amount: formatAmount(amountMinor, currency), currency };
}

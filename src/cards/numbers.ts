import { createHmac, randomInt } from 'node:crypto';
import currencyCodes from 'currency-codes';
import { luhnValid } from '../platform/logger.ts';

export { luhnValid };

/**
 * The hub's token BIN range: every token number starts with one of these, and no card product may overlap them, so a
 * token can never be mistaken for (or collide with) a card number.
 */
export const TOKEN_BIN_PREFIXES: readonly string[] = ['489537', '5590990'];
export const TOKEN_LENGTH = 16;

/** True when a product BIN prefix and the token range share numbers (one is a prefix of the other). */
export function overlapsTokenRange(binPrefix: string): boolean {
  return TOKEN_BIN_PREFIXES.some((t) => t.startsWith(binPrefix) || binPrefix.startsWith(t));
}

export function isTokenNumber(number: string): boolean {
  return TOKEN_BIN_PREFIXES.some((t) => number.startsWith(t));
}

export function luhnCheckDigit(partial: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(`${partial}${d}`)) return String(d);
  throw new Error('unreachable: some check digit always fits');
}

/** A random Luhn-valid number of `length` digits starting with `prefix`. */
export function randomCardNumber(prefix: string, length: number): string {
  let body = prefix;
  while (body.length < length - 1) body += String(randomInt(10));
  return `${body}${luhnCheckDigit(body)}`;
}

/** First 6 and last 4 at most. */
export function maskNumber(number: string): string {
  return `${number.slice(0, 6)}${'*'.repeat(Math.max(0, number.length - 10))}${number.slice(-4)}`;
}

/** MM/YY, `years` after `from`, in UTC. */
export function expiryAfter(from: Date, years: number): string {
  const month = String(from.getUTCMonth() + 1).padStart(2, '0');
  const year = String((from.getUTCFullYear() + years) % 100).padStart(2, '0');
  return `${month}/${year}`;
}

/** A card is valid through the last day of its expiry month. */
export function isExpired(expiry: string, now: Date): boolean {
  const m = /^(\d{2})\/(\d{2})$/.exec(expiry);
  if (m === null) return true;
  const month = Number(m[1]);
  const year = 2000 + Number(m[2]);
  return now.getTime() >= Date.UTC(year, month, 1);
}

export const SERVICE_CODE = '201';

/**
 * The CVV is derived, never stored: a keyed hash (HMAC-SHA256 under a key derived from a vault secret) of the number,
 * expiry and service code, reduced to three decimal digits. Anyone holding the key can check a CVV; nobody can read
 * one from the database.
 */
export function deriveCvv(cvvKey: Buffer, pan: string, expiry: string, serviceCode = SERVICE_CODE): string {
  const mac = createHmac('sha256', cvvKey).update(`cvv|${pan}|${expiry}|${serviceCode}`).digest();
  return String(mac.readUInt32BE(0) % 1000).padStart(3, '0');
}

const PAR_ALPHABET = '0123456789ABCDEFGHJKLMNPQRSTUVWXYZ';

/** A payment account reference: 29 characters, a 4-character BIN-controller prefix and 25 random characters. */
export function newPar(controller = 'H001'): string {
  let out = controller;
  while (out.length < 29) out += PAR_ALPHABET[randomInt(PAR_ALPHABET.length)];
  return out;
}

/** ISO 3166-1 numeric for the countries the hub serves (the cryptogram carries the numeric code). */
const COUNTRY_NUMERIC: Readonly<Record<string, string>> = {
  CN: '156', HK: '344', MO: '446', TW: '158', SG: '702', MY: '458', TH: '764', ID: '360', PH: '608', VN: '704',
  JP: '392', KR: '410', IN: '356', AU: '036', NZ: '554', US: '840', CA: '124', GB: '826', DE: '276', FR: '250',
  AE: '784', BR: '076', MX: '484',
};

export function countryNumeric(country: string): string | undefined {
  if (/^[0-9]{3}$/.test(country)) return country;
  return COUNTRY_NUMERIC[country];
}

export function currencyNumeric(currency: string): string | undefined {
  if (/^[0-9]{3}$/.test(currency)) return currency;
  return currencyCodes.code(currency)?.number;
}

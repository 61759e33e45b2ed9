/**
 * Paying with a token: the wallet computes the token cryptogram (modelled on Visa CVN 18, the layout in
 * src/emv/token-cryptogram.ts) under its current LIMITED-USE key (`limitedUseKey.key` of POST /v1/wallet/tokens, then
 * of each replenishment, POST /v1/wallet/tokens/{tokenRef}/keys signed by the device: see device.ts), over the amount,
 * the currency, the merchant's country, today's date (UTC), type 00 (purchase), a fresh unpredictable number and the
 * transaction counter (ATC).
 *
 * The ATC: per token, starts at 0 when the token is provisioned; the wallet adds 1 before every payment (the first
 * payment sends 1) and keeps it across restarts. The hub refuses a counter not above the highest it has accepted for the
 * token (`atc_replayed`), so a counter that went back (a restored phone) must jump ahead, never repeat. A key signs the
 * counters `firstAtc`..`lastAtc` until `expiresAt`; past either the hub answers `key_exhausted`: replenish, and start
 * the counter at the new key's `firstAtc` (`new AtcCounter(firstAtc - 1)` when it is above the counter's last).
 */
import { computeTokenCryptogram, deriveLimitedUseKey, deriveTokenKey, tokenCryptogramData, verifyTokenCryptogram, type TokenCryptogramInput, type TokenCryptogramScheme } from '../../../src/emv/token-cryptogram.ts';

export { computeTokenCryptogram, deriveLimitedUseKey, deriveTokenKey, tokenCryptogramData, verifyTokenCryptogram, type TokenCryptogramInput, type TokenCryptogramScheme };

/** ISO 3166 numeric codes of the countries the hub accepts (as src/cards/numbers.ts). */
export const COUNTRY_NUMERIC: Readonly<Record<string, string>> = {
  CN: '156', HK: '344', MO: '446', TW: '158', SG: '702', MY: '458', TH: '764', ID: '360', PH: '608', VN: '704',
  JP: '392', KR: '410', IN: '356', AU: '036', NZ: '554', US: '840', CA: '124', GB: '826', DE: '276', FR: '250',
  AE: '784', BR: '076', MX: '484',
};

/** ISO 4217 numeric code and minor-unit digits of the currencies the hub's demo network uses (and the common ones). */
export const CURRENCIES: Readonly<Record<string, { readonly numeric: string; readonly digits: number }>> = {
  CNY: { numeric: '156', digits: 2 }, HKD: { numeric: '344', digits: 2 }, MOP: { numeric: '446', digits: 2 }, TWD: { numeric: '901', digits: 2 },
  SGD: { numeric: '702', digits: 2 }, MYR: { numeric: '458', digits: 2 }, THB: { numeric: '764', digits: 2 }, IDR: { numeric: '360', digits: 2 },
  PHP: { numeric: '608', digits: 2 }, VND: { numeric: '704', digits: 0 }, JPY: { numeric: '392', digits: 0 }, KRW: { numeric: '410', digits: 0 },
  INR: { numeric: '356', digits: 2 }, AUD: { numeric: '036', digits: 2 }, NZD: { numeric: '554', digits: 2 }, USD: { numeric: '840', digits: 2 },
  CAD: { numeric: '124', digits: 2 }, GBP: { numeric: '826', digits: 2 }, EUR: { numeric: '978', digits: 2 }, AED: { numeric: '784', digits: 2 },
  BRL: { numeric: '986', digits: 2 }, MXN: { numeric: '484', digits: 2 },
};

/** `{ amount: "12.30", currency: "CNY" }` → 1230n (refuses more decimals than the currency has). */
export function toMinorUnits(money: { readonly amount: string; readonly currency: string }): bigint {
  const currency = CURRENCIES[money.currency];
  if (currency === undefined) throw new RangeError(`unknown currency ${money.currency}`);
  const match = /^([0-9]+)(?:\.([0-9]+))?$/.exec(money.amount);
  if (match === null) throw new RangeError(`not a decimal amount: ${money.amount}`);
  const fraction = match[2] ?? '';
  if (fraction.length > currency.digits) throw new RangeError(`${money.currency} has ${currency.digits} decimal places: ${money.amount}`);
  return BigInt(`${match[1] ?? '0'}${fraction.padEnd(currency.digits, '0')}`);
}

/** A token's transaction counter; persist `last` with the token (see the top of this file). */
export class AtcCounter {
  #last: number;
  constructor(last = 0) {
    if (!Number.isInteger(last) || last < 0 || last > 0xffff) throw new RangeError('an ATC is an integer 0–65535');
    this.#last = last;
  }
  /** The highest counter used so far (0: none yet). */
  get last(): number {
    return this.#last;
  }
  /** The counter for the next payment. */
  next(): number {
    if (this.#last >= 0xffff) throw new RangeError('this token’s counter is exhausted: provision a new token');
    this.#last += 1;
    return this.#last;
  }
}

/** The top-level fields of an EMV merchant-presented QR payload (ID, length, value), by ID. */
export function merchantQrFields(payload: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (let i = 0; i + 4 <= payload.length; ) {
    const id = payload.slice(i, i + 2);
    const length = Number(payload.slice(i + 2, i + 4));
    if (!/^[0-9]{2}$/.test(id) || !Number.isInteger(length)) break;
    fields.set(id, payload.slice(i + 4, i + 4 + length));
    i += 4 + length;
  }
  return fields;
}

const randomHex = (bytes: number) => [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();

interface CryptogramFor {
  readonly tokenKey: string;
  /** The token's `cryptogramScheme` (its card product's): visa_cvn18 (default), mchip_cvn16 or mchip_cvn17. */
  readonly scheme?: TokenCryptogramScheme;
  readonly counter: AtcCounter;
  readonly amount: { readonly amount: string; readonly currency: string };
  /** The merchant's country: alpha-2 (a QR's tag 58) or ISO 3166 numeric. */
  readonly merchantCountry: string;
  readonly now?: Date;
}

/** The next counter, a fresh unpredictable number and the cryptogram over them and the payment. */
function cryptogramFor(input: CryptogramFor): { atc: number; cryptogram: string; unpredictableNumber: string } {
  const currency = CURRENCIES[input.amount.currency];
  if (currency === undefined) throw new RangeError(`unknown currency ${input.amount.currency}`);
  const countryNumeric = /^[0-9]{3}$/.test(input.merchantCountry) ? input.merchantCountry : COUNTRY_NUMERIC[input.merchantCountry];
  if (countryNumeric === undefined) throw new RangeError(`unknown country ${input.merchantCountry}`);
  const amountMinor = toMinorUnits(input.amount);
  const atc = input.counter.next();
  const unpredictableNumber = randomHex(4);
  const cryptogram = computeTokenCryptogram({
    ...(input.scheme !== undefined ? { scheme: input.scheme } : {}),
    tokenKeyHex: input.tokenKey,
    atc,
    amountMinor,
    currencyNumeric: currency.numeric,
    countryNumeric,
    transactionDate: (input.now ?? new Date()).toISOString().slice(2, 10).replace(/-/g, ''),
    transactionType: '00',
    unpredictableNumber,
  });
  return { atc, cryptogram, unpredictableNumber };
}

/**
 * The `source` of POST /v1/wallet/payments/qr (and payment links) for a token: the next ATC, a fresh unpredictable
 * number, and the cryptogram over the payment. `merchantCountry` is the QR's tag 58 (alpha-2) or numeric.
 */
export function tokenPaymentSource(input: CryptogramFor & { readonly tokenRef: string }): { type: 'token'; tokenRef: string; atc: number; cryptogram: string; unpredictableNumber: string } {
  return { type: 'token', tokenRef: input.tokenRef, ...cryptogramFor(input) };
}

/**
 * What a phone hands a merchant's terminal on a contactless tap, as the body of
 * POST /v1/merchants/{merchantId}/payments/tap: the token's number and expiry (YYMM, as a card's track data carries it),
 * the next ATC, a fresh unpredictable number, the amount and the cryptogram over them (the merchant's country included).
 * `tokenNumber` and `tokenExpiry` (MM/YY) are what provisioning answered (`tokenNumber`, `token.expiry`).
 */
export function tokenTapData(input: CryptogramFor & { readonly tokenNumber: string; readonly tokenExpiry: string }): {
  token: string;
  expiry: string;
  atc: number;
  unpredictableNumber: string;
  cryptogram: string;
  amount: { amount: string; currency: string };
} {
  const expiry = /^(0[1-9]|1[0-2])\/([0-9]{2})$/.exec(input.tokenExpiry);
  if (expiry === null) throw new RangeError(`a token expiry is MM/YY: ${input.tokenExpiry}`);
  return { token: input.tokenNumber, expiry: `${expiry[2] ?? ''}${expiry[1] ?? ''}`, ...cryptogramFor(input), amount: { amount: input.amount.amount, currency: input.amount.currency } };
}

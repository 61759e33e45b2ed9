import { computeTokenCryptogram, type TokenCryptogramScheme } from '../../../src/emv/token-cryptogram.ts';
import { encodeCpm } from '../../../src/emv/cpm.ts';

/** Wallet-side EMV: token cryptograms (src/emv/token-cryptogram.ts, no Node-only imports) and the CPM payment code. */
const CURRENCY_NUMERIC: Record<string, string> = { CNY: '156', HKD: '344', USD: '840', SGD: '702', EUR: '978', MYR: '458', JPY: '392', GBP: '826' };
const COUNTRY_NUMERIC: Record<string, string> = { CN: '156', HK: '344', US: '840', SG: '702', MY: '458', JP: '392', GB: '826', DE: '276', FR: '250' };

export const currencyNumeric = (c: string) => CURRENCY_NUMERIC[c] ?? '156';
export const countryNumeric = (c: string) => COUNTRY_NUMERIC[c] ?? '156';

const yymmdd = (d: Date) => d.toISOString().slice(2, 10).replace(/-/g, '');

export function unpredictableNumber(): string {
  const b = new Uint8Array(4);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('').toUpperCase();
}

export function tokenCryptogram(input: { scheme?: TokenCryptogramScheme | undefined; tokenKey: string; atc: number; amountMinor: bigint; currency: string; country: string; un: string; date?: Date }): string {
  return computeTokenCryptogram({
    // The card product's own cryptogram (Visa model, Mastercard M/Chip CVN 16/17), as the hub told the wallet.
    ...(input.scheme !== undefined ? { scheme: input.scheme } : {}),
    tokenKeyHex: input.tokenKey,
    atc: input.atc,
    amountMinor: input.amountMinor,
    currencyNumeric: currencyNumeric(input.currency),
    countryNumeric: countryNumeric(input.country),
    transactionDate: yymmdd(input.date ?? new Date()),
    transactionType: '00',
    unpredictableNumber: input.un,
  });
}

/** Minor units of a decimal string, by the currency's digits. */
export function toMinor(amount: string, currency: string): bigint {
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  const [whole = '0', frac = ''] = amount.split('.');
  return BigInt(whole) * 10n ** BigInt(digits) + BigInt((frac + '0'.repeat(digits)).slice(0, digits) || '0');
}

/** The consumer-presented code (EMV QRCPS, base64): token, ATC, cryptogram over amount 0 (the cashier sets it). */
export function cpmPayload(input: { scheme?: TokenCryptogramScheme | undefined; tokenNumber: string; tokenKey: string; expiry: string; atc: number; brand: string; currency: string; country: string }): string {
  const un = unpredictableNumber();
  const cryptogram = tokenCryptogram({ scheme: input.scheme, tokenKey: input.tokenKey, atc: input.atc, amountMinor: 0n, currency: input.currency, country: input.country, un });
  const [mm = '01', yy = '30'] = input.expiry.split('/');
  const r = encodeCpm({
    aid: input.brand === 'UnionPay' ? 'A000000333010101' : input.brand === 'Mastercard' ? 'A0000000041010' : 'A0000000031010',
    label: input.brand.slice(0, 16),
    token: input.tokenNumber,
    expiry: `${yy}${mm}${String(new Date(2000 + Number(yy), Number(mm), 0).getDate()).padStart(2, '0')}`,
    atc: input.atc.toString(16).padStart(4, '0').toUpperCase(),
    cryptogram,
    unpredictableNumber: un,
  });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

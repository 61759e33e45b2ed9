/**
 * The hub's token cryptogram, modelled on Visa CVN 18 so that issuer HSMs can compute it with standard commands.
 * Pure TypeScript with no Node-only imports: wallets and browsers run it as well.
 *
 * Keys: token master key = EMV Option A ICC master key derived from the issuer master key, the token number and PSN;
 *       it never leaves the hub.
 *       limited-use key (LUK, what the wallet holds) = EMV common session key derivation from the token master key
 *       with R = key counter (2 bytes, big-endian) || 00 || FF FF FF FF FF (R[2] becomes F0 / 0F for the two halves,
 *       and the FF tail keeps it apart from every ATC session key, whose R ends in zeros).
 *       session key = EMV common session key from the LUK with R = ATC || 00 00 00 00 00 00.
 * `tokenKeyHex` below is the key the wallet holds: its current limited-use key.
 * MAC:  ISO/IEC 9797-1 algorithm 3 (retail MAC), padding method 2, full 8 bytes, over 20 bytes of data:
 *
 *   offset  bytes  tag   content
 *        0      6  9F02  amount, minor units, n12 BCD
 *        6      2  5F2A  transaction currency, ISO 4217 numeric, n4 BCD ("156" → 01 56)
 *        8      2  9F1A  terminal country, ISO 3166 numeric, n4 BCD ("0156" → 01 56)
 *       10      3  9A    transaction date, YYMMDD BCD
 *       13      1  9C    transaction type, n2 BCD ("00" purchase)
 *       14      4  9F37  unpredictable number
 *       18      2  9F36  ATC, big-endian
 *
 * Malformed inputs throw RangeError: the hub builds these values itself, so a bad one is a bug, not a decline.
 */
import { deriveAcSessionKey, deriveCommonSessionKey, deriveIccMasterKey, mastercardCvn16Arqc, mastercardCvn17Arqc, retailMac } from './cryptogram.ts';
import { bytesToHex, concatBytes, constantTimeEqual, hexToBytes, mustHexToBytes } from './hex.ts';

/**
 * The cryptogram a card product's tokens make:
 * - visa_cvn18 (the default): the layout above (modelled on Visa CVN 18);
 * - mchip_cvn16 / mchip_cvn17: a Mastercard M/Chip ARQC (src/emv/cryptogram.ts, checked against published known answers)
 *   under the limited-use key, with the Mastercard session key from ATC and unpredictable number, over 9F02 (amount),
 *   9F03 = 0, 9F1A, 95 = 00 00 00 00 00, 5F2A, 9A, 9C, 9F37, 82 = TOKEN_AIP, 9F36 and the CVR TOKEN_CVR (CVN 17: then
 *   the counters TOKEN_COUNTERS). A token has no terminal verification results or card risk counters of its own, so
 *   these are fixed, and an issuer's HSM verifies the cryptogram with its standard M/Chip command.
 */
export type TokenCryptogramScheme = 'visa_cvn18' | 'mchip_cvn16' | 'mchip_cvn17';
export const TOKEN_CRYPTOGRAM_SCHEMES: readonly TokenCryptogramScheme[] = ['visa_cvn18', 'mchip_cvn16', 'mchip_cvn17'];
/** AIP of a token: offline data authentication not supported, cardholder verification supported (18 00 as M/Chip cards). */
export const TOKEN_AIP = '1800';
export const TOKEN_CVR = 'A00000000000';
export const TOKEN_COUNTERS = '0000000000000000';

export interface TokenCryptogramInput {
  /** Default visa_cvn18. */
  readonly scheme?: TokenCryptogramScheme;
  readonly tokenKeyHex: string;
  readonly atc: number;
  readonly amountMinor: bigint;
  readonly currencyNumeric: string;
  readonly countryNumeric: string;
  /** YYMMDD. */
  readonly transactionDate: string;
  readonly transactionType: string;
  /** 8 hex characters. */
  readonly unpredictableNumber: string;
}

const MAX_AMOUNT_MINOR = 999_999_999_999n;

export function deriveTokenKey(issuerMasterKeyHex: string, tokenNumber: string, psn = '00'): string {
  const issuerMasterKey = hexToBytes(issuerMasterKeyHex);
  if (issuerMasterKey?.length !== 16) throw new RangeError('issuer master key must be 32 hex characters');
  return bytesToHex(deriveIccMasterKey(issuerMasterKey, tokenNumber, psn));
}

/** The limited-use key number `keyCounter` (1–65535) of a token, from the token master key (see the top of this file). */
export function deriveLimitedUseKey(tokenMasterKeyHex: string, keyCounter: number): string {
  if (!Number.isInteger(keyCounter) || keyCounter < 1 || keyCounter > 0xffff) throw new RangeError(`key counter must be an integer 1–65535, got ${keyCounter}`);
  const r = Uint8Array.of(keyCounter >> 8, keyCounter & 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0xff);
  return bytesToHex(deriveCommonSessionKey(tokenKey(tokenMasterKeyHex), r));
}

function digits(name: string, value: string, pattern: RegExp, widthDigits: number): Uint8Array {
  if (!pattern.test(value)) throw new RangeError(`${name}: "${value}" does not match ${pattern.source}`);
  return mustHexToBytes(value.padStart(widthDigits, '0'));
}

function atcBytes(atc: number): Uint8Array {
  if (!Number.isInteger(atc) || atc < 0 || atc > 0xffff) throw new RangeError(`ATC must be an integer 0–65535, got ${atc}`);
  return Uint8Array.of(atc >> 8, atc & 0xff);
}

function amountBytes(amountMinor: bigint): Uint8Array {
  if (amountMinor < 0n || amountMinor > MAX_AMOUNT_MINOR) throw new RangeError('amountMinor must be 0 to 999999999999');
  return mustHexToBytes(amountMinor.toString().padStart(12, '0'));
}

/** The 20 data bytes described at the top of this file. */
export function tokenCryptogramData(input: TokenCryptogramInput): Uint8Array {
  const un = hexToBytes(input.unpredictableNumber);
  if (un?.length !== 4) throw new RangeError('unpredictableNumber must be 8 hex characters');
  return concatBytes(
    amountBytes(input.amountMinor),
    digits('currencyNumeric', input.currencyNumeric, /^[0-9]{3}$/, 4),
    digits('countryNumeric', input.countryNumeric, /^[0-9]{3,4}$/, 4),
    digits('transactionDate', input.transactionDate, /^[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$/, 6),
    digits('transactionType', input.transactionType, /^[0-9]{2}$/, 2),
    un,
    atcBytes(input.atc),
  );
}

function tokenKey(tokenKeyHex: string): Uint8Array {
  const key = hexToBytes(tokenKeyHex);
  if (key?.length !== 16) throw new RangeError('tokenKeyHex must be 32 hex characters');
  return key;
}

/** 16 uppercase hex characters. */
export function computeTokenCryptogram(input: TokenCryptogramInput): string {
  if (input.scheme === 'mchip_cvn16' || input.scheme === 'mchip_cvn17') {
    const data = tokenCryptogramData(input);
    const hex = (from: number, to: number) => bytesToHex(data.subarray(from, to));
    const transaction = {
      amountAuthorised: hex(0, 6),
      amountOther: '000000000000',
      terminalCountry: hex(8, 10),
      tvr: '0000000000',
      transactionCurrency: hex(6, 8),
      transactionDate: hex(10, 13),
      transactionType: hex(13, 14),
      unpredictableNumber: hex(14, 18),
      aip: TOKEN_AIP,
      atc: hex(18, 20),
      cvr: TOKEN_CVR,
    };
    const key = tokenKey(input.tokenKeyHex);
    return bytesToHex(input.scheme === 'mchip_cvn16' ? mastercardCvn16Arqc(key, transaction) : mastercardCvn17Arqc(key, { ...transaction, counters: TOKEN_COUNTERS }));
  }
  const sessionKey = deriveAcSessionKey(tokenKey(input.tokenKeyHex), atcBytes(input.atc));
  return bytesToHex(retailMac(sessionKey, tokenCryptogramData(input), 2));
}

/** True when `cryptogramHex` (either case) is the cryptogram for `input`; compared in constant time. */
export function verifyTokenCryptogram(input: TokenCryptogramInput & { readonly cryptogramHex: string }): boolean {
  const received = hexToBytes(input.cryptogramHex);
  if (received?.length !== 8) return false;
  const expected = mustHexToBytes(computeTokenCryptogram(input));
  return constantTimeEqual(expected, received);
}

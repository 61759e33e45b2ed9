/**
 * EMV application cryptograms (EMV Book 2 Annex A1, ISO/IEC 9797-1) on 2-key Triple DES. No Node-only imports:
 * wallets compute these too.
 *
 * Keys flow: issuer master key (IMK) → ICC master key (Option A, per card/token) → session key (per ATC) → MAC.
 */
import { adjustKeyParity, desDecryptBlock, desEncryptBlock, desEncryptCbc, tdesEncryptEcb } from './des.ts';
import { concatBytes, mustHexToBytes, xorBytes } from './hex.ts';

const BLOCK_BYTES = 8;

function requireLength(name: string, bytes: Uint8Array, lengthBytes: number): Uint8Array {
  if (bytes.length !== lengthBytes) throw new RangeError(`${name} must be ${lengthBytes} bytes, got ${bytes.length}`);
  return bytes;
}

/**
 * ICC master key derivation, EMV Book 2 A1.4.1 Option A. Y = rightmost 16 digits of PAN || PSN (left-padded with
 * zeros if shorter); left half = 3DES(IMK)[Y], right half = 3DES(IMK)[Y xor FF..FF]; then odd parity per byte.
 */
export function deriveIccMasterKey(issuerMasterKey: Uint8Array, pan: string, psn = '00'): Uint8Array {
  requireLength('issuer master key', issuerMasterKey, 16);
  if (!/^[0-9]{1,19}$/.test(pan)) throw new RangeError('PAN must be 1–19 digits');
  if (!/^[0-9]{2}$/.test(psn)) throw new RangeError('PSN must be 2 digits');
  const y = mustHexToBytes(`${pan}${psn}`.slice(-16).padStart(16, '0'));
  const yInverted = xorBytes(y, new Uint8Array(BLOCK_BYTES).fill(0xff));
  return adjustKeyParity(tdesEncryptEcb(issuerMasterKey, concatBytes(y, yInverted)));
}

/**
 * EMV common session key derivation (Book 2 A1.3.1): with R of 8 bytes, left = 3DES(MK)[R0 R1 F0 R3..R7],
 * right = 3DES(MK)[R0 R1 0F R3..R7]. For the AC key R = ATC || 00 00 00 00 00 00 (EMV also allows R = ARQC for SM keys).
 */
export function deriveCommonSessionKey(masterKey: Uint8Array, r: Uint8Array): Uint8Array {
  requireLength('master key', masterKey, 16);
  requireLength('R', r, BLOCK_BYTES);
  const left = r.slice();
  const right = r.slice();
  left[2] = 0xf0;
  right[2] = 0x0f;
  return adjustKeyParity(tdesEncryptEcb(masterKey, concatBytes(left, right)));
}

/** Session key for application cryptograms: R = ATC || six zero bytes. */
export function deriveAcSessionKey(masterKey: Uint8Array, atc: Uint8Array): Uint8Array {
  requireLength('ATC', atc, 2);
  return deriveCommonSessionKey(masterKey, concatBytes(atc, new Uint8Array(6)));
}

/**
 * Visa secure-messaging session key (Visa CVN 10/18 issuer scripts): the last two bytes of the left half are XORed
 * with the ATC, those of the right half with the inverted ATC.
 */
export function deriveVisaSmSessionKey(masterKey: Uint8Array, atc: Uint8Array): Uint8Array {
  requireLength('master key', masterKey, 16);
  requireLength('ATC', atc, 2);
  const inverted = xorBytes(atc, Uint8Array.of(0xff, 0xff));
  const mask = concatBytes(new Uint8Array(6), atc, new Uint8Array(6), inverted);
  return adjustKeyParity(xorBytes(masterKey, mask));
}

export type PaddingMethod = 1 | 2;

/**
 * ISO/IEC 9797-1 padding. Method 1: zeros up to a block boundary (nothing added when already aligned, one zero block
 * for empty data). Method 2: a mandatory 80 byte, then zeros.
 */
export function padIso9797(data: Uint8Array, method: PaddingMethod): Uint8Array {
  const withMarker = method === 2 ? concatBytes(data, Uint8Array.of(0x80)) : data;
  const targetBytes = Math.max(BLOCK_BYTES, Math.ceil(withMarker.length / BLOCK_BYTES) * BLOCK_BYTES);
  const out = new Uint8Array(targetBytes);
  out.set(withMarker);
  return out;
}

/**
 * ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC") with a 16-byte key K1K2: single-DES CBC under K1 with zero IV over
 * the padded data, then the last result is decrypted under K2 and encrypted under K1. Returns all 8 bytes.
 */
export function retailMac(key: Uint8Array, data: Uint8Array, padding: PaddingMethod): Uint8Array {
  requireLength('MAC key', key, 16);
  const k1 = key.subarray(0, 8);
  const k2 = key.subarray(8, 16);
  const padded = padIso9797(data, padding);
  // The CBC chain's last block (one key schedule for the whole chain).
  const chain = desEncryptCbc(k1, padded).subarray(padded.length - BLOCK_BYTES);
  return desEncryptBlock(k1, desDecryptBlock(k2, chain));
}

/** Terminal and card data that Visa CVN 10 and 18 cryptograms cover, as hex in EMV tag formats. */
export interface TransactionData {
  /** 9F02, n12, 6 bytes. */
  readonly amountAuthorised: string;
  /** 9F03, n12, 6 bytes. */
  readonly amountOther: string;
  /** 9F1A, n3 in 2 bytes. */
  readonly terminalCountry: string;
  /** 95, 5 bytes. */
  readonly tvr: string;
  /** 5F2A, n3 in 2 bytes. */
  readonly transactionCurrency: string;
  /** 9A, YYMMDD. */
  readonly transactionDate: string;
  /** 9C, 1 byte. */
  readonly transactionType: string;
  /** 9F37, 4 bytes. */
  readonly unpredictableNumber: string;
  /** 82, 2 bytes. */
  readonly aip: string;
  /** 9F36, 2 bytes. */
  readonly atc: string;
}

const TRANSACTION_FIELDS: ReadonlyArray<readonly [keyof TransactionData, string, number]> = [
  ['amountAuthorised', '9F02', 6],
  ['amountOther', '9F03', 6],
  ['terminalCountry', '9F1A', 2],
  ['tvr', '95', 5],
  ['transactionCurrency', '5F2A', 2],
  ['transactionDate', '9A', 3],
  ['transactionType', '9C', 1],
  ['unpredictableNumber', '9F37', 4],
  ['aip', '82', 2],
  ['atc', '9F36', 2],
];

/** 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36, the order EMV Book 2 recommends and Visa uses. */
export function transactionDataBytes(data: TransactionData): Uint8Array {
  return concatBytes(...TRANSACTION_FIELDS.map(([field, tag, lengthBytes]) => requireLength(`${tag} (${field})`, mustHexToBytes(data[field]), lengthBytes)));
}

function atcBytes(data: TransactionData): Uint8Array {
  return requireLength('ATC', mustHexToBytes(data.atc), 2);
}

/** Visa CVN 10: MAC under the ICC master key itself (no session key), padding method 1, data ends with the CVR. */
export function visaCvn10Arqc(iccMasterKeyAc: Uint8Array, data: TransactionData & { readonly cvr: string }): Uint8Array {
  const cvr = requireLength('CVR', mustHexToBytes(data.cvr), 4);
  return retailMac(iccMasterKeyAc, concatBytes(transactionDataBytes(data), cvr), 1);
}

/** Visa CVN 18: common session key from the ATC, padding method 2, data ends with the whole issuer application data. */
export function visaCvn18Arqc(iccMasterKeyAc: Uint8Array, data: TransactionData & { readonly issuerApplicationData: string }): Uint8Array {
  const sessionKey = deriveAcSessionKey(iccMasterKeyAc, atcBytes(data));
  return retailMac(sessionKey, concatBytes(transactionDataBytes(data), mustHexToBytes(data.issuerApplicationData)), 2);
}

/** ARPC method 1 (Book 2 A1.2.1): 3DES(key)[ARQC xor (ARC || 00..00)], 8 bytes. */
export function arpcMethod1(key: Uint8Array, arqc: Uint8Array, arc: Uint8Array): Uint8Array {
  requireLength('ARQC', arqc, BLOCK_BYTES);
  requireLength('ARC', arc, 2);
  return tdesEncryptEcb(key, xorBytes(arqc, concatBytes(arc, new Uint8Array(6))));
}

/** ARPC method 2 (Book 2 A1.2.2): MAC(key)[ARQC || CSU || proprietary data], padding method 2, leftmost 4 bytes. */
export function arpcMethod2(key: Uint8Array, arqc: Uint8Array, csu: Uint8Array, proprietaryAuthenticationData: Uint8Array = new Uint8Array()): Uint8Array {
  requireLength('ARQC', arqc, BLOCK_BYTES);
  requireLength('CSU', csu, 4);
  if (proprietaryAuthenticationData.length > 8) throw new RangeError('proprietary authentication data is at most 8 bytes');
  return retailMac(key, concatBytes(arqc, csu, proprietaryAuthenticationData), 2).slice(0, 4);
}

/** Visa CVN 10 ARPC: method 1 under the ICC master key. */
export function visaCvn10Arpc(iccMasterKeyAc: Uint8Array, arqc: Uint8Array, arc: Uint8Array): Uint8Array {
  return arpcMethod1(iccMasterKeyAc, arqc, arc);
}

/** Visa CVN 18 ARPC: method 2 under the AC session key for `atc`. */
export function visaCvn18Arpc(iccMasterKeyAc: Uint8Array, atc: Uint8Array, arqc: Uint8Array, csu: Uint8Array): Uint8Array {
  return arpcMethod2(deriveAcSessionKey(iccMasterKeyAc, atc), arqc, csu);
}

/** Issuer-script command MAC input: command header || ATC || ARQC || command data, padding method 2. */
function commandMacData(commandHeader: Uint8Array, atc: Uint8Array, arqc: Uint8Array, commandData: Uint8Array): Uint8Array {
  return concatBytes(commandHeader, requireLength('ATC', atc, 2), requireLength('ARQC', arqc, BLOCK_BYTES), commandData);
}

/**
 * Visa issuer-script command MAC (CVN 10 and CVN 18 alike): Visa SM session key from the ICC MK SMI and the ATC,
 * retail MAC with padding method 2. The HSM-checked pyemv vectors confirm CVN 18 uses this key too, not the EMV
 * common session key with R = ARQC.
 */
export function visaCommandMac(iccMasterKeySmi: Uint8Array, commandHeader: Uint8Array, atc: Uint8Array, arqc: Uint8Array, commandData: Uint8Array = new Uint8Array()): Uint8Array {
  return retailMac(deriveVisaSmSessionKey(iccMasterKeySmi, atc), commandMacData(commandHeader, atc, arqc, commandData), 2);
}

/**
 * Mastercard proprietary session key derivation (SKD, M/Chip CVN 16/17): the EMV common derivation with
 * R = ATC || 00 00 || unpredictable number, so that every transaction has its own key even for one ATC.
 */
export function deriveMastercardSessionKey(iccMasterKeyAc: Uint8Array, atc: Uint8Array, unpredictableNumber: Uint8Array): Uint8Array {
  requireLength('ATC', atc, 2);
  requireLength('unpredictable number', unpredictableNumber, 4);
  return deriveCommonSessionKey(iccMasterKeyAc, concatBytes(atc, new Uint8Array(2), unpredictableNumber));
}

/**
 * Mastercard M/Chip CVN 16: Mastercard SKD session key, retail MAC with padding method 2 over the transaction data
 * and the 6-byte CVR (from 9F10).
 */
export function mastercardCvn16Arqc(iccMasterKeyAc: Uint8Array, data: TransactionData & { readonly cvr: string }): Uint8Array {
  const cvr = requireLength('CVR', mustHexToBytes(data.cvr), 6);
  const sessionKey = deriveMastercardSessionKey(iccMasterKeyAc, atcBytes(data), mustHexToBytes(data.unpredictableNumber));
  return retailMac(sessionKey, concatBytes(transactionDataBytes(data), cvr), 2);
}

/** Mastercard M/Chip CVN 17: as CVN 16, with the card's 8 counter bytes (from 9F10) after the CVR. */
export function mastercardCvn17Arqc(iccMasterKeyAc: Uint8Array, data: TransactionData & { readonly cvr: string; readonly counters: string }): Uint8Array {
  const cvr = requireLength('CVR', mustHexToBytes(data.cvr), 6);
  const counters = requireLength('counters', mustHexToBytes(data.counters), 8);
  const sessionKey = deriveMastercardSessionKey(iccMasterKeyAc, atcBytes(data), mustHexToBytes(data.unpredictableNumber));
  return retailMac(sessionKey, concatBytes(transactionDataBytes(data), cvr, counters), 2);
}

/** Mastercard CVN 16/17 ARPC: method 1 under the ICC master key itself (no session key). */
export function mastercardArpc(iccMasterKeyAc: Uint8Array, arqc: Uint8Array, arc: Uint8Array): Uint8Array {
  return arpcMethod1(iccMasterKeyAc, arqc, arc);
}

import { describe, expect, it } from 'vitest';
import { deriveIccMasterKey, deriveMastercardSessionKey, mastercardArpc, mastercardCvn16Arqc, mastercardCvn17Arqc, type TransactionData } from './cryptogram.ts';
import { keyCheckValue } from './des.ts';
import { bytesToHex, mustHexToBytes } from './hex.ts';
import { readTestDataFile } from './vector-files.ts';
import { TOKEN_AIP, TOKEN_COUNTERS, TOKEN_CVR, computeTokenCryptogram, verifyTokenCryptogram } from './token-cryptogram.ts';

/** Mastercard M/Chip CVN 16 and 17 against pyemv's HSM-checked known answers (test/data/emv-cryptogram/mchip-vectors.txt). */
const sections = readTestDataFile('emv-cryptogram/mchip-vectors.txt')
  .split(/^## /m)
  .slice(1)
  .map((body) => ({ title: body.split('\n')[0] ?? '', body }));

function value(body: string, name: string): string {
  const found = new RegExp(`(?:^|\\s)${name}\\s*=\\s*([0-9A-F]+)`).exec(body);
  if (found?.[1] === undefined) throw new Error(`mchip-vectors.txt: no ${name}`);
  return found[1];
}

function transaction(body: string): TransactionData {
  return {
    amountAuthorised: value(body, '9F02'),
    amountOther: value(body, '9F03'),
    terminalCountry: value(body, '9F1A'),
    tvr: value(body, '95'),
    transactionCurrency: value(body, '5F2A'),
    transactionDate: value(body, '9A'),
    transactionType: value(body, '9C'),
    unpredictableNumber: value(body, 'UN'),
    aip: value(body, '82'),
    atc: value(body, 'ATC'),
  };
}

describe.each(sections)('$title known answers', ({ title, body }) => {
  const iccMk = deriveIccMasterKey(mustHexToBytes(value(body, 'ISS_MK_AC')), value(body, 'PAN'), value(body, 'PSN'));
  const data = transaction(body);
  const arqc = title.includes('CVN 17') ? mastercardCvn17Arqc(iccMk, { ...data, cvr: value(body, 'CVR'), counters: value(body, 'COUNTERS') }) : mastercardCvn16Arqc(iccMk, { ...data, cvr: value(body, 'CVR') });

  it('derives the ICC master key and the Mastercard session key', () => {
    expect(bytesToHex(keyCheckValue(iccMk, 2))).toBe(value(body, 'ICC_MK_AC_KCV'));
    expect(bytesToHex(keyCheckValue(deriveMastercardSessionKey(iccMk, mustHexToBytes(data.atc), mustHexToBytes(data.unpredictableNumber)), 2))).toBe(value(body, 'SK_AC_KCV'));
  });
  it('computes the ARQC and the ARPC', () => {
    expect(bytesToHex(arqc)).toBe(value(body, 'ARQC'));
    expect(bytesToHex(mastercardArpc(iccMk, arqc, mustHexToBytes(value(body, 'ARPC_RC'))))).toBe(value(body, 'ARPC'));
  });
  it('a different unpredictable number gives a different session key and cryptogram', () => {
    const other = { ...data, unpredictableNumber: 'ABCDEF13' };
    const again = title.includes('CVN 17') ? mastercardCvn17Arqc(iccMk, { ...other, cvr: value(body, 'CVR'), counters: value(body, 'COUNTERS') }) : mastercardCvn16Arqc(iccMk, { ...other, cvr: value(body, 'CVR') });
    expect(bytesToHex(again)).not.toBe(value(body, 'ARQC'));
  });
});

it('reads both sections', () => {
  expect(sections.map((s) => s.title.trim())).toEqual(['A. Mastercard CVN 16', 'B. Mastercard CVN 17']);
});

describe('M/Chip token cryptograms', () => {
  const token = { tokenKeyHex: '0123456789ABCDEFFEDCBA9876543210', atc: 28, amountMinor: 9999n, currencyNumeric: '124', countryNumeric: '124', transactionDate: '260115', transactionType: '00', unpredictableNumber: 'ABCDEF12' };
  const data: TransactionData = { amountAuthorised: '000000009999', amountOther: '000000000000', terminalCountry: '0124', tvr: '0000000000', transactionCurrency: '0124', transactionDate: '260115', transactionType: '00', unpredictableNumber: 'ABCDEF12', aip: TOKEN_AIP, atc: '001C' };
  const key = mustHexToBytes(token.tokenKeyHex);
  it('are the M/Chip ARQC over the token fields, with the fixed TVR, AIP, CVR and counters', () => {
    expect(computeTokenCryptogram({ ...token, scheme: 'mchip_cvn16' })).toBe(bytesToHex(mastercardCvn16Arqc(key, { ...data, cvr: TOKEN_CVR })));
    expect(computeTokenCryptogram({ ...token, scheme: 'mchip_cvn17' })).toBe(bytesToHex(mastercardCvn17Arqc(key, { ...data, cvr: TOKEN_CVR, counters: TOKEN_COUNTERS })));
  });
  it('verify only under their own scheme', () => {
    const cryptogramHex = computeTokenCryptogram({ ...token, scheme: 'mchip_cvn16' });
    expect(verifyTokenCryptogram({ ...token, scheme: 'mchip_cvn16', cryptogramHex })).toBe(true);
    expect(verifyTokenCryptogram({ ...token, scheme: 'mchip_cvn17', cryptogramHex })).toBe(false);
    expect(verifyTokenCryptogram({ ...token, cryptogramHex })).toBe(false);
  });
});

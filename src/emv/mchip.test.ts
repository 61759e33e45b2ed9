import { describe, expect, it } from 'vitest';
import { deriveIccMasterKey, deriveMastercardSessionKey, mastercardArpc, mastercardCvn16Arqc, mastercardCvn17Arqc, type TransactionData } from './cryptogram.ts';
import { keyCheckValue } from './des.ts';
import { bytesToHex, mustHexToBytes } from './hex.ts';
import { readTestDataFile } from './vector-files.ts';

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

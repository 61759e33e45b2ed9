import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  arpcMethod2,
  deriveAcSessionKey,
  deriveIccMasterKey,
  padIso9797,
  retailMac,
  visaCommandMac,
  visaCvn10Arpc,
  visaCvn10Arqc,
  visaCvn18Arpc,
  visaCvn18Arqc,
  type TransactionData,
} from './cryptogram.ts';
import { keyCheckValue, tdesEncryptCbc } from './des.ts';
import { bytesToHex, mustHexToBytes } from './hex.ts';
import { readTestDataFile } from './vector-files.ts';

/** One "## ..." section of arqc-vectors.txt, with values pulled out by pattern so a format change fails loudly. */
interface CryptogramSection {
  readonly title: string;
  readonly text: string;
}

function loadSections(): CryptogramSection[] {
  const text = readTestDataFile('emv-cryptogram/arqc-vectors.txt');
  return text
    .split(/^## /m)
    .slice(1)
    .map((chunk) => ({ title: chunk.split('\n')[0] ?? '', text: chunk }));
}

function match(section: CryptogramSection, pattern: RegExp, what: string): RegExpExecArray {
  const found = pattern.exec(section.text);
  if (found === null) throw new Error(`arqc-vectors.txt section "${section.title}": cannot find ${what}`);
  return found;
}

/** Keys are given in full or abbreviated as "BBBB...(32 B)". */
function keyHex(section: CryptogramSection, name: string): string {
  const found = match(section, new RegExp(`${name}\\s*=\\s*(?:([0-9A-F]{32})(?![0-9A-F.])|([0-9A-F])+\\.\\.\\.\\((\\d+) ([0-9A-F])\\))`), name);
  if (found[1] !== undefined) return found[1];
  return (found[4] ?? '').repeat(Number(found[3]));
}

function tagValue(section: CryptogramSection, tag: string): string {
  return match(section, new RegExp(`(?:^|\\s)${tag}=([0-9A-F]+)`, 'm'), `tag ${tag}`)[1] ?? '';
}

function transactionData(section: CryptogramSection): TransactionData {
  return {
    amountAuthorised: tagValue(section, '9F02'),
    amountOther: tagValue(section, '9F03'),
    terminalCountry: tagValue(section, '9F1A'),
    tvr: tagValue(section, '95'),
    transactionCurrency: tagValue(section, '5F2A'),
    transactionDate: tagValue(section, '9A'),
    transactionType: tagValue(section, '9C'),
    unpredictableNumber: tagValue(section, '9F37'),
    aip: tagValue(section, '82'),
    atc: match(section, /ATC(?:\(9F36\))?\s*=\s*([0-9A-F]{4})/, 'ATC')[1] ?? '',
  };
}

interface SectionKeys {
  readonly pan: string;
  readonly psn: string;
  readonly iccMkAc: Uint8Array;
  readonly iccMkSmi: Uint8Array;
  readonly iccMkSmc: Uint8Array;
}

function sectionKeys(section: CryptogramSection): SectionKeys {
  const pan = match(section, /PAN\s*=\s*([0-9]+)/, 'PAN')[1] ?? '';
  const psn = match(section, /PSN\s*=\s*([0-9]{2})/, 'PSN')[1] ?? '';
  const derive = (name: string): Uint8Array => deriveIccMasterKey(mustHexToBytes(keyHex(section, name)), pan, psn);
  return { pan, psn, iccMkAc: derive('ISS_MK_AC'), iccMkSmi: derive('ISS_MK_SMI'), iccMkSmc: derive('ISS_MK_SMC') };
}

const sections = loadSections();
const cvn18 = sections.find((s) => s.title.includes('CVN 18'));
const cvn10 = sections.find((s) => s.title.includes('CVN 10'));

function present(section: CryptogramSection | undefined, name: string): CryptogramSection {
  if (section === undefined) throw new Error(`arqc-vectors.txt has no ${name} section`);
  return section;
}

describe('Visa CVN 18 known answers (test/data arqc-vectors.txt, section A)', () => {
  const section = present(cvn18, 'CVN 18');
  const keys = sectionKeys(section);
  const data = { ...transactionData(section), issuerApplicationData: tagValue(section, '9F10') };
  const expectedArqc = match(section, /ARQC(?: \(9F26\))?\s*=\s*([0-9A-F]{16})/, 'ARQC')[1] ?? '';

  it('ARQC', () => {
    expect(bytesToHex(visaCvn18Arqc(keys.iccMkAc, data))).toBe(expectedArqc);
  });

  it('ARPC (method 2 with CSU)', () => {
    const [, csu, arpc] = match(section, /ARPC \(CSU=([0-9A-F]{8})\)\s*=\s*([0-9A-F]{8})/, 'ARPC');
    const computed = visaCvn18Arpc(keys.iccMkAc, mustHexToBytes(data.atc), mustHexToBytes(expectedArqc), mustHexToBytes(csu ?? ''));
    expect(bytesToHex(computed)).toBe(arpc);
  });

  it('command MAC', () => {
    const [, header, mac] = match(section, /command MAC \(header ([0-9A-F]+)\)\s*=\s*([0-9A-F]{16})/, 'command MAC');
    const computed = visaCommandMac(keys.iccMkSmi, mustHexToBytes(header ?? ''), mustHexToBytes(data.atc), mustHexToBytes(expectedArqc));
    expect(bytesToHex(computed)).toBe(mac);
  });

  it('a changed amount or IAD changes the ARQC', () => {
    expect(bytesToHex(visaCvn18Arqc(keys.iccMkAc, { ...data, amountAuthorised: '000000009998' }))).not.toBe(expectedArqc);
    expect(bytesToHex(visaCvn18Arqc(keys.iccMkAc, { ...data, issuerApplicationData: '06011203A0B801' }))).not.toBe(expectedArqc);
  });
});

describe('Visa CVN 10 known answers (test/data arqc-vectors.txt, section B)', () => {
  const section = present(cvn10, 'CVN 10');
  const keys = sectionKeys(section);
  const data = { ...transactionData(section), cvr: tagValue(section, 'CVR') };
  const expectedArqc = match(section, /ARQC\s*=\s*([0-9A-F]{16})/, 'ARQC')[1] ?? '';

  it('ICC master key check values', () => {
    const kcv = (name: string): string => match(section, new RegExp(`${name} KCV\\s*=\\s*([0-9A-F]{4})`), `${name} KCV`)[1] ?? '';
    expect(bytesToHex(keyCheckValue(keys.iccMkAc, 2))).toBe(kcv('ICC MK AC'));
    expect(bytesToHex(keyCheckValue(keys.iccMkSmi, 2))).toBe(kcv('SMI'));
    expect(bytesToHex(keyCheckValue(keys.iccMkSmc, 2))).toBe(kcv('SMC'));
  });

  it('ARQC', () => {
    expect(bytesToHex(visaCvn10Arqc(keys.iccMkAc, data))).toBe(expectedArqc);
  });

  it('ARPC (method 1 with ARC)', () => {
    const [, arc, arpc] = match(section, /ARPC \(ARC ([0-9A-F]{4})\)\s*=\s*([0-9A-F]{16})/, 'ARPC');
    expect(bytesToHex(visaCvn10Arpc(keys.iccMkAc, mustHexToBytes(expectedArqc), mustHexToBytes(arc ?? '')))).toBe(arpc);
  });

  it('command MAC', () => {
    const [, header, mac] = match(section, /command MAC \(([0-9A-F]+)\)\s*=\s*([0-9A-F]{16})/, 'command MAC');
    const computed = visaCommandMac(keys.iccMkSmi, mustHexToBytes(header ?? ''), mustHexToBytes(data.atc), mustHexToBytes(expectedArqc));
    expect(bytesToHex(computed)).toBe(mac);
  });

  it('a changed CVR or unpredictable number changes the ARQC', () => {
    expect(bytesToHex(visaCvn10Arqc(keys.iccMkAc, { ...data, cvr: '03A06011' }))).not.toBe(expectedArqc);
    expect(bytesToHex(visaCvn10Arqc(keys.iccMkAc, { ...data, unpredictableNumber: '52BF4586' }))).not.toBe(expectedArqc);
  });
});

describe('building blocks', () => {
  it('pads per ISO 9797-1 methods 1 and 2', () => {
    expect(bytesToHex(padIso9797(mustHexToBytes('0102'), 1))).toBe('0102000000000000');
    expect(bytesToHex(padIso9797(mustHexToBytes('0102030405060708'), 1))).toBe('0102030405060708');
    expect(bytesToHex(padIso9797(new Uint8Array(), 1))).toBe('0000000000000000');
    expect(bytesToHex(padIso9797(mustHexToBytes('0102'), 2))).toBe('0102800000000000');
    expect(bytesToHex(padIso9797(mustHexToBytes('0102030405060708'), 2))).toBe('01020304050607088000000000000000');
  });

  it('retail MAC equals 3DES-CBC of the last block when K1 = K2 makes it plain single-DES CBC', () => {
    // With K1 = K2 the final decrypt/encrypt pair cancels, leaving single-DES CBC, i.e. 3DES-CBC with K||K.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 40 }), (k, data) => {
        const key = new Uint8Array([...k, ...k]);
        const padded = padIso9797(data, 2);
        expect(retailMac(key, data, 2)).toEqual(tdesEncryptCbc(key, padded).slice(-8));
      }),
      { numRuns: 50 },
    );
  });

  it('uses only the rightmost 16 digits of PAN || PSN', () => {
    const imk = mustHexToBytes('0123456789ABCDEFFEDCBA9876543210');
    expect(deriveIccMasterKey(imk, '9991234567890123456', '00')).toEqual(deriveIccMasterKey(imk, '1234567890123456', '00'));
    expect(deriveIccMasterKey(imk, '1234567890123456', '01')).not.toEqual(deriveIccMasterKey(imk, '1234567890123456', '00'));
  });

  it('derives distinct session keys per ATC, and the ARPC depends on the CSU', () => {
    const mk = mustHexToBytes('0123456789ABCDEFFEDCBA9876543210');
    expect(deriveAcSessionKey(mk, mustHexToBytes('0001'))).not.toEqual(deriveAcSessionKey(mk, mustHexToBytes('0002')));
    const arqc = mustHexToBytes('0011223344556677');
    expect(arpcMethod2(mk, arqc, mustHexToBytes('00000000'))).not.toEqual(arpcMethod2(mk, arqc, mustHexToBytes('00000001')));
  });

  it('rejects fields of the wrong length', () => {
    const section = present(cvn10, 'CVN 10');
    const keys = sectionKeys(section);
    expect(() => visaCvn10Arqc(keys.iccMkAc, { ...transactionData(section), cvr: '03A060' })).toThrow(RangeError);
    expect(() => visaCvn10Arqc(keys.iccMkAc, { ...transactionData(section), amountAuthorised: '4000', cvr: '03A06010' })).toThrow(RangeError);
  });
});

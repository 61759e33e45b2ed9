import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeBerTlv, encodeBerTlv } from './ber-tlv.ts';
import { base64ToBytes, bytesToBase64, decodeCpm, encodeCpm, type CpmEncodeInput, type DecodedCpm } from './cpm.ts';
import { bytesToHex } from './hex.ts';
import { dataLines, readTestDataFile } from './vector-files.ts';

interface CpmVector {
  readonly base64: string;
  readonly hex: string;
}

function loadCpmVectors(): CpmVector[] {
  const lines = dataLines(readTestDataFile('emv-cpm/cpm-vectors.txt'));
  const base64 = lines.filter((l) => l.startsWith('BASE64|')).map((l) => l.slice('BASE64|'.length));
  const hex = lines.filter((l) => l.startsWith('HEX|')).map((l) => l.slice('HEX|'.length));
  if (base64.length === 0 || base64.length !== hex.length) throw new Error('cpm-vectors.txt: expected matching BASE64 and HEX lines');
  return base64.map((b, i) => ({ base64: b, hex: hex[i] ?? '' }));
}

function mustDecode(base64: string): DecodedCpm {
  const decoded = decodeCpm(base64);
  if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
  return decoded.value;
}

const [sample] = loadCpmVectors();
if (sample === undefined) throw new Error('no CPM vector');

describe('CPM vector from test/data', () => {
  it('BASE64 and HEX lines carry the same bytes', () => {
    expect(bytesToHex(base64ToBytes(sample.base64) ?? new Uint8Array())).toBe(sample.hex.toUpperCase());
  });

  it('decodes to exactly the listed fields', () => {
    const decoded = mustDecode(sample.base64);
    const { tlv, ...fields } = decoded;
    expect(fields).toEqual({
      payloadFormatIndicator: 'CPV01',
      applications: [
        { aid: 'A0000000555555', label: 'Product1' },
        { aid: 'A0000000666666', label: 'Product2' },
      ],
      layout: 'common',
      token: '1234567890123458',
      cardholderName: 'CARDHOLDER/EMV',
      languagePreference: 'ruesdeen',
      expiry: undefined,
      atc: '0001',
      cryptogram: '584FD385FA234BCC',
      unpredictableNumber: '6D58EF13',
      issuerApplicationData: '06010A03000000',
      amountMinor: undefined,
    });
    expect(tlv.map((n) => n.tag)).toEqual(['85', '61', '61', '62']);
  });

  it('re-encodes identically, from the TLV tree and from the structured fields', () => {
    const decoded = mustDecode(sample.base64);
    expect(bytesToBase64(encodeBerTlv(decoded.tlv))).toBe(sample.base64);
    const [first, ...rest] = decoded.applications;
    const encoded = encodeCpm({
      aid: first?.aid ?? '',
      label: first?.label ?? '',
      additionalApplications: rest.map((a) => ({ aid: a.aid, label: a.label ?? '' })),
      token: decoded.token,
      cardholderName: decoded.cardholderName ?? '',
      languagePreference: decoded.languagePreference ?? '',
      atc: decoded.atc,
      cryptogram: decoded.cryptogram,
      unpredictableNumber: decoded.unpredictableNumber,
      issuerApplicationData: decoded.issuerApplicationData ?? '',
    });
    expect(encoded).toEqual({ ok: true, value: sample.base64 });
  });

  it('detects every truncation of the sample', () => {
    const bytes = base64ToBytes(sample.base64) ?? new Uint8Array();
    for (let length = 0; length < bytes.length; length += 1) {
      expect(decodeCpm(bytesToBase64(bytes.subarray(0, length))).ok).toBe(false);
    }
  });
});

describe('decodeCpm errors', () => {
  const valid = (): Uint8Array => base64ToBytes(sample.base64) ?? new Uint8Array();

  it.each([
    ['not base64', 'hQ!!', 'not_base64'],
    ['missing padding', 'hQVDUFYwMQ', 'not_base64'],
    ['too long', 'A'.repeat(2000), 'payload_too_long'],
  ])('%s', (_name, payload, reason) => {
    const result = decodeCpm(payload);
    expect(result.ok ? undefined : result.error).toMatchObject({ code: 'cpm_invalid', details: { reason } });
  });

  it('rejects a wrong payload format indicator', () => {
    const bytes = valid();
    bytes[6] = 0x32; // "CPV01" -> "CPV02"
    const result = decodeCpm(bytesToBase64(bytes));
    expect(result.ok ? undefined : result.error.details).toMatchObject({ reason: 'invalid_payload_format_indicator', tag: '85' });
  });

  it('reports BER-TLV errors with the offset', () => {
    const bytes = valid();
    bytes[8] = 0x7f; // length of the first 61 template now runs past the end
    const result = decodeCpm(bytesToBase64(bytes));
    expect(result.ok ? undefined : result.error.details).toMatchObject({ reason: 'tlv', tag: '61', offsetBytes: 7 });
  });

  it('rejects a missing cryptogram and a malformed PAN', () => {
    const base: CpmEncodeInput = { aid: 'A0000000031010', label: 'VISA', token: '4761739001010010', atc: '0001', cryptogram: '0011223344556677', unpredictableNumber: '01020304' };
    const badToken = encodeCpm({ ...base, token: '12AB' });
    expect(badToken.ok ? undefined : badToken.error.details).toMatchObject({ reason: 'invalid_field', tag: '5A' });
    const shortAc = encodeCpm({ ...base, cryptogram: '0011' });
    expect(shortAc.ok ? undefined : shortAc.error.details).toMatchObject({ reason: 'invalid_field', tag: '9F26' });
    const badHex = encodeCpm({ ...base, atc: 'XYZW' });
    expect(badHex.ok ? undefined : badHex.error.details).toMatchObject({ reason: 'invalid_field', tag: '9F36' });
    const badExpiry = encodeCpm({ ...base, expiry: '251301' });
    expect(badExpiry.ok ? undefined : badExpiry.error.details).toMatchObject({ reason: 'invalid_field', tag: '5F24' });
  });
});

describe('BER-TLV', () => {
  it('decodes multi-byte tags and long-form lengths', () => {
    const value = new Uint8Array(200).fill(0xab);
    const bytes = Uint8Array.of(0x9f, 0x81, 0x01, 0x81, 200, ...value);
    const decoded = decodeBerTlv(bytes);
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    expect(decoded.value).toEqual([{ kind: 'primitive', tag: '9F8101', value }]);
    expect(encodeBerTlv(decoded.value)).toEqual(bytes);
  });

  it.each([
    ['truncated tag', [0x9f], 'truncated_tag'],
    ['indefinite length', [0x61, 0x80], 'indefinite_length'],
    ['truncated long length', [0x5a, 0x82, 0x01], 'truncated_length'],
    ['truncated value', [0x5a, 0x03, 0x01], 'truncated_value'],
    ['endless tag', [0x9f, 0x81, 0x81, 0x81, 0x81, 0x01], 'tag_too_long'],
  ])('%s', (_name, bytes, reason) => {
    const decoded = decodeBerTlv(Uint8Array.from(bytes));
    expect(decoded.ok ? undefined : decoded.error.details.reason).toBe(reason);
  });

  it('bounds nesting depth', () => {
    let bytes = Uint8Array.of(0x5a, 0x01, 0x12);
    for (let i = 0; i < 20; i += 1) bytes = Uint8Array.of(0x62, bytes.length, ...bytes);
    const decoded = decodeBerTlv(bytes);
    expect(decoded.ok ? undefined : decoded.error.details.reason).toBe('too_deep');
  });
});

const hexBytes = (length: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: length, maxLength: length }).map(bytesToHex);

describe('encodeCpm / decodeCpm property', () => {
  it('round-trips random inputs', () => {
    fc.assert(
      fc.property(
        fc.record({
          aid: fc.integer({ min: 5, max: 16 }).chain(hexBytes),
          label: fc.stringMatching(/^[A-Za-z0-9 ]{1,16}$/),
          token: fc.stringMatching(/^[0-9]{13,19}$/),
          expiry: fc.option(fc.stringMatching(/^[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])$/), { nil: undefined }),
          atc: hexBytes(2),
          cryptogram: hexBytes(8),
          unpredictableNumber: hexBytes(4),
          issuerApplicationData: fc.option(fc.integer({ min: 1, max: 32 }).chain(hexBytes), { nil: undefined }),
          amountMinor: fc.option(fc.bigInt({ min: 0n, max: 999_999_999_999n }), { nil: undefined }),
        }),
        (r) => {
          const { expiry, issuerApplicationData, amountMinor, ...required } = r;
          const input: CpmEncodeInput = {
            ...required,
            ...(expiry === undefined ? {} : { expiry }),
            ...(issuerApplicationData === undefined ? {} : { issuerApplicationData }),
            ...(amountMinor === undefined ? {} : { amountMinor }),
          };
          const encoded = encodeCpm(input);
          if (!encoded.ok) throw new Error(JSON.stringify(encoded.error));
          expect(encoded.value.startsWith('hQ')).toBe(true);
          const decoded = mustDecode(encoded.value);
          expect(decoded.applications).toEqual([{ aid: r.aid, label: r.label }]);
          expect([decoded.token, decoded.expiry, decoded.atc, decoded.cryptogram, decoded.unpredictableNumber, decoded.issuerApplicationData, decoded.amountMinor]).toEqual([
            r.token,
            r.expiry,
            r.atc,
            r.cryptogram,
            r.unpredictableNumber,
            r.issuerApplicationData,
            r.amountMinor,
          ]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

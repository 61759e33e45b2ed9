import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc16Hex } from './crc16.ts';
import { decodeMpm, describeMpm, encodeMpm, encodeMpmFields, MPM_MAX_PAYLOAD_CHARS, type MpmEncodeInput, type MpmReason } from './mpm.ts';
import { dataLines, readTestDataFile } from './vector-files.ts';

interface Vector {
  readonly valid: boolean;
  readonly payload: string;
}

function loadVectors(): Vector[] {
  return dataLines(readTestDataFile('emv-qr/mpm-vectors.txt')).map((line) => {
    const separator = line.indexOf('|');
    const kind = line.slice(0, separator);
    if (kind !== 'VALID' && kind !== 'INVALID') throw new Error(`unexpected vector line: ${line}`);
    return { valid: kind === 'VALID', payload: line.slice(separator + 1) };
  });
}

const vectors = loadVectors();
const validVectors = vectors.filter((v) => v.valid).map((v) => v.payload);
const invalidVectors = vectors.filter((v) => !v.valid).map((v) => v.payload);

function withCrc(body: string): string {
  return `${body}6304${crc16Hex(`${body}6304`)}`;
}

function expectReason(payload: string, reason: MpmReason, tag?: string): void {
  const result = decodeMpm(payload);
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.error.code).toBe('qr_invalid');
  expect(result.error.details.reason).toBe(reason);
  if (tag !== undefined) expect(result.error.details.tag).toBe(tag);
  expect(result.error.message.length).toBeGreaterThan(0);
}

const MINIMAL_BODY = '000201' + '26180004TEST0106M00001' + '5204581253031565802CN5904SHOP6007BEIJING';

describe('MPM vectors from test/data', () => {
  it('has both valid and invalid vectors', () => {
    expect(validVectors.length).toBeGreaterThanOrEqual(10);
    expect(invalidVectors.length).toBeGreaterThanOrEqual(1);
  });

  it.each(validVectors)('decodes and re-encodes byte for byte: %s', (payload) => {
    const decoded = decodeMpm(payload);
    if (!decoded.ok) throw new Error(`expected OK, got ${JSON.stringify(decoded.error)}`);
    expect(decoded.value.fields.at(-1)?.tag).toBe('63');
    const reencoded = encodeMpmFields(decoded.value.fields);
    expect(reencoded).toEqual({ ok: true, value: payload });
  });

  it.each(invalidVectors)('rejects with a code and a reason: %s', (payload) => {
    const decoded = decodeMpm(payload);
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error.code).toBe('qr_invalid');
    expect(decoded.error.details.reason).toMatch(/^[a-z_]+$/);
  });

  it('reports expected and actual CRC for the PromptPay bad-CRC vector, and the expected one repairs it', () => {
    const bad = invalidVectors.find((p) => p.endsWith('FFFF'));
    if (bad === undefined) throw new Error('bad-CRC vector missing from the file');
    const decoded = decodeMpm(bad);
    if (decoded.ok) throw new Error('expected failure');
    expect(decoded.error.details).toMatchObject({ reason: 'crc_mismatch', tag: '63', actual: 'FFFF' });
    const expected = decoded.error.details.expected ?? '';
    expect(expected).toMatch(/^[0-9A-F]{4}$/);
    expect(decodeMpm(bad.slice(0, -4) + expected).ok).toBe(true);
  });

  it('describes the EMVCo Annex sample (templates, alternate language, additional data)', () => {
    const sample = validVectors.find((p) => p.includes('BEST TRANSPORT'));
    if (sample === undefined) throw new Error('EMVCo sample missing from the vector file');
    const decoded = decodeMpm(sample, { requireEmvcoMandatory: true });
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    const view = describeMpm(decoded.value);
    expect(view).toMatchObject({
      pointOfInitiation: 'dynamic',
      mcc: '4111',
      currencyNumeric: '156',
      amount: '23.72',
      country: 'CN',
      merchantName: 'BEST TRANSPORT',
      merchantCity: 'BEIJING',
      alternateLanguage: { language: 'ZH', merchantName: '最佳运输', merchantCity: '北京' },
      additionalData: { storeLabel: '1234', customerLabel: '***', terminalLabel: 'A6008667', additionalConsumerDataRequest: 'ME' },
      crc: 'A13A',
    });
    expect(view.merchantAccounts.map((a) => [a.tag, a.globallyUniqueId])).toEqual([
      ['29', 'D15600000000'],
      ['31', 'D15600000001'],
    ]);
    expect(view.merchantAccounts[0]?.fields['05']).toBe('A93FO3230Q');
    // Tag 91 is an unreserved template and keeps its sub-fields.
    const unreserved = decoded.value.fields.find((f) => f.tag === '91');
    expect(unreserved?.kind === 'template' ? unreserved.children.map((c) => c.tag) : []).toEqual(['00', '07']);
  });

  it('keeps the original tag order (tags may come in any order)', () => {
    const sample = validVectors.find((p) => p.includes('BEST TRANSPORT')) ?? '';
    const decoded = decodeMpm(sample);
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    // In the EMVCo sample 64 precedes 54 and 53.
    const tags = decoded.value.fields.map((f) => f.tag);
    expect(tags.indexOf('64')).toBeLessThan(tags.indexOf('54'));
    expect(tags.indexOf('54')).toBeLessThan(tags.indexOf('53'));
  });

  it('accepts PromptPay codes without 52/59/60 by default but not under the full EMVCo mandatory set', () => {
    const promptPay = validVectors.find((p) => p.includes('5802TH') && !p.includes('5204')) ?? '';
    expect(decodeMpm(promptPay).ok).toBe(true);
    const strict = decodeMpm(promptPay, { requireEmvcoMandatory: true });
    expect(strict.ok ? undefined : strict.error.details).toMatchObject({ reason: 'missing_mandatory_tag', tag: '52' });
  });
});

/** A different character for the same position, so every position is really changed. */
function flipCharacter(ch: string): string {
  if (/[0-8]/.test(ch)) return String(Number(ch) + 1);
  if (ch === '9') return '0';
  if (/[A-Y]/.test(ch)) return String.fromCharCode(ch.charCodeAt(0) + 1);
  if (ch === 'Z') return 'A';
  return ch === 'x' ? 'y' : 'x';
}

describe('mutation detection', () => {
  it.each(validVectors)('detects every single-character change in %s', (payload) => {
    const chars = Array.from(payload);
    const undetected: number[] = [];
    chars.forEach((ch, index) => {
      const mutated = [...chars.slice(0, index), flipCharacter(ch), ...chars.slice(index + 1)].join('');
      if (decodeMpm(mutated).ok) undetected.push(index);
    });
    expect(undetected).toEqual([]);
  });

  it('detects deletion and insertion of a character', () => {
    for (const payload of validVectors) {
      const chars = Array.from(payload);
      for (let i = 0; i < chars.length; i += 7) {
        expect(decodeMpm([...chars.slice(0, i), ...chars.slice(i + 1)].join('')).ok).toBe(false);
        expect(decodeMpm([...chars.slice(0, i), '0', ...chars.slice(i)].join('')).ok).toBe(false);
      }
    }
  });
});

describe('structural and field errors', () => {
  it('accepts the minimal hand-built payload used below', () => {
    expect(decodeMpm(withCrc(MINIMAL_BODY), { requireEmvcoMandatory: true }).ok).toBe(true);
  });

  it('rejects a non-numeric length with the tag', () => {
    expectReason(withCrc(MINIMAL_BODY.replace('5204', '52A4')), 'non_numeric_length', '52');
  });

  it('rejects a non-numeric tag', () => {
    expectReason(withCrc(MINIMAL_BODY.replace('5802CN', '5X02CN')), 'non_numeric_tag');
  });

  it('rejects length 00', () => {
    expectReason(withCrc(`${MINIMAL_BODY}6100`), 'bad_length', '61');
  });

  it('rejects a value that runs past the end', () => {
    expectReason(`${MINIMAL_BODY}6304ABC`, 'truncated', '63');
    expectReason(`${MINIMAL_BODY}630`, 'truncated');
  });

  it('rejects a sub-field whose length overruns its template, naming the path', () => {
    const body = MINIMAL_BODY + '62060109AB';
    expectReason(withCrc(body), 'truncated', '62.01');
  });

  it('rejects a CRC field of the wrong length, a misplaced CRC, a CRC that is not hex and a missing CRC', () => {
    expectReason(`${MINIMAL_BODY}6305ABCDE`, 'bad_length', '63');
    const crcFirst = withCrc(MINIMAL_BODY);
    expectReason(`${crcFirst}6102AB`, 'crc_not_last', '63');
    expectReason(`${MINIMAL_BODY}6304G1A3`, 'crc_format', '63');
    expectReason(MINIMAL_BODY, 'missing_crc', '63');
  });

  it('checks the payload format indicator', () => {
    expectReason(withCrc(MINIMAL_BODY.replace('000201', '000202')), 'invalid_payload_format_indicator', '00');
    expectReason(withCrc(MINIMAL_BODY.slice(6) + '000201'), 'payload_format_indicator_not_first', '00');
  });

  it('checks the point of initiation', () => {
    expect(decodeMpm(withCrc(MINIMAL_BODY.replace('000201', '000201010211'))).ok).toBe(true);
    expect(decodeMpm(withCrc(MINIMAL_BODY.replace('000201', '000201010212'))).ok).toBe(true);
    expectReason(withCrc(MINIMAL_BODY.replace('000201', '000201010213')), 'invalid_point_of_initiation', '01');
  });

  it.each([
    ['5404ab.1', '54', 'invalid_amount'],
    ['54041.2.', '54', 'invalid_amount'],
    ['54022.', '54', undefined],
    ['5401.', '54', 'invalid_amount'],
    ['54131234567890.12', '54', undefined],
    ['54141234567890.123', '54', 'invalid_amount'],
  ] as const)('amount field %s', (amountTlv, tag, reason) => {
    const payload = withCrc(MINIMAL_BODY + amountTlv);
    if (reason === undefined) expect(decodeMpm(payload).ok).toBe(true);
    else expectReason(payload, reason, tag);
  });

  it('checks currency and country formats', () => {
    expectReason(withCrc(MINIMAL_BODY.replace('5303156', '53031X6')), 'invalid_currency', '53');
    expectReason(withCrc(MINIMAL_BODY.replace('5802CN', '5802cn')), 'invalid_country', '58');
    expectReason(withCrc(MINIMAL_BODY.replace('5802CN', '5803CHN')), 'invalid_country', '58');
  });

  it('reports missing mandatory tags and merchant account', () => {
    expectReason(withCrc(MINIMAL_BODY.replace('5802CN', '')), 'missing_mandatory_tag', '58');
    expectReason(withCrc(MINIMAL_BODY.replace('5303156', '')), 'missing_mandatory_tag', '53');
    expectReason(withCrc(MINIMAL_BODY.replace('26180004TEST0106M00001', '')), 'missing_merchant_account');
  });

  it('rejects duplicate tags and templates without a globally unique identifier', () => {
    expectReason(withCrc(`${MINIMAL_BODY}5802CN`), 'duplicate_tag', '58');
    expectReason(withCrc(MINIMAL_BODY.replace('26180004TEST0106M00001', '26100106M00001')), 'invalid_template', '26.00');
  });

  it('bounds the payload size', () => {
    const long = withCrc(MINIMAL_BODY + '62990199' + 'x'.repeat(99)).padEnd(MPM_MAX_PAYLOAD_CHARS + 1, '0');
    expectReason(long, 'payload_too_long');
    expectReason('', 'empty_payload');
  });
});

const baseInput: MpmEncodeInput = {
  pointOfInitiation: 'dynamic',
  merchantAccount: { tag: 26, globallyUniqueId: 'cn.hutong.pay', merchantId: 'M123456' },
  mcc: '5812',
  currencyNumeric: '156',
  amount: '23.72',
  country: 'CN',
  merchantName: 'BEST TRANSPORT',
  merchantCity: 'BEIJING',
  billNumber: 'INV-1',
  referenceLabel: 'REF-9',
  alternateLanguage: { language: 'ZH', merchantName: '最佳运输', merchantCity: '北京' },
};

describe('encodeMpm', () => {
  it('produces a payload that decodes to the same fields', () => {
    const encoded = encodeMpm(baseInput);
    if (!encoded.ok) throw new Error(JSON.stringify(encoded.error));
    expect(encoded.value).toContain('0104最佳运输');
    expect(encoded.value).toContain('2628' + '0013cn.hutong.pay' + '0107M123456');
    const decoded = decodeMpm(encoded.value, { requireEmvcoMandatory: true });
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    expect(describeMpm(decoded.value)).toMatchObject({
      pointOfInitiation: 'dynamic',
      mcc: '5812',
      amount: '23.72',
      merchantName: 'BEST TRANSPORT',
      additionalData: { billNumber: 'INV-1', referenceLabel: 'REF-9' },
      alternateLanguage: { language: 'ZH', merchantName: '最佳运输', merchantCity: '北京' },
    });
  });

  it('counts lengths in code points, including characters outside the BMP', () => {
    const encoded = encodeMpm({ ...baseInput, merchantName: '𠀀𠀁A' });
    if (!encoded.ok) throw new Error(JSON.stringify(encoded.error));
    expect(encoded.value).toContain('5903𠀀𠀁A');
    expect(decodeMpm(encoded.value).ok).toBe(true);
  });

  it('rejects values above 99 characters, naming the tag', () => {
    const result = encodeMpm({ ...baseInput, merchantName: 'N'.repeat(100) });
    expect(result.ok ? undefined : result.error.details).toMatchObject({ reason: 'value_too_long', tag: '59' });
    const nested = encodeMpm({ ...baseInput, merchantAccount: { ...baseInput.merchantAccount, merchantId: 'M'.repeat(80) } });
    expect(nested.ok ? undefined : nested.error.details).toMatchObject({ reason: 'value_too_long', tag: '26' });
  });

  it('rejects bad field formats and merchant account tags outside 26–51', () => {
    const badAmount = encodeMpm({ ...baseInput, amount: '12,30' });
    expect(badAmount.ok ? undefined : badAmount.error.details.reason).toBe('invalid_amount');
    const badTag = encodeMpm({ ...baseInput, merchantAccount: { ...baseInput.merchantAccount, tag: 52 } });
    expect(badTag.ok ? undefined : badTag.error.details.reason).toBe('invalid_merchant_account_tag');
    const empty = encodeMpm({ ...baseInput, merchantCity: '' });
    expect(empty.ok ? undefined : empty.error.details).toMatchObject({ reason: 'bad_length', tag: '60' });
  });
});

const textChars = fc.constantFrom(...'ABCXYZabc019 .-/最佳运输北京上海𠀀'.split(''), '𠀀', '𠀁');
const text = (minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.array(textChars, { minLength, maxLength }).map((cs) => cs.join(''));

const mpmInputArbitrary: fc.Arbitrary<MpmEncodeInput> = fc
  .record({
    pointOfInitiation: fc.constantFrom('static' as const, 'dynamic' as const),
    tag: fc.integer({ min: 26, max: 51 }),
    gui: text(1, 32),
    merchantId: text(1, 25),
    mcc: fc.stringMatching(/^[0-9]{4}$/),
    currencyNumeric: fc.stringMatching(/^[0-9]{3}$/),
    amount: fc.option(fc.stringMatching(/^[0-9]{1,10}(\.[0-9]{1,2})?$/), { nil: undefined }),
    country: fc.stringMatching(/^[A-Z]{2}$/),
    merchantName: text(1, 25),
    merchantCity: text(1, 15),
    billNumber: fc.option(text(1, 25), { nil: undefined }),
    referenceLabel: fc.option(text(1, 25), { nil: undefined }),
    alt: fc.option(fc.record({ language: fc.stringMatching(/^[A-Z]{2}$/), merchantName: text(1, 25), merchantCity: text(1, 15) }), { nil: undefined }),
  })
  .map((r) => ({
    pointOfInitiation: r.pointOfInitiation,
    merchantAccount: { tag: r.tag, globallyUniqueId: r.gui, merchantId: r.merchantId },
    mcc: r.mcc,
    currencyNumeric: r.currencyNumeric,
    country: r.country,
    merchantName: r.merchantName,
    merchantCity: r.merchantCity,
    ...(r.amount === undefined ? {} : { amount: r.amount }),
    ...(r.billNumber === undefined ? {} : { billNumber: r.billNumber }),
    ...(r.referenceLabel === undefined ? {} : { referenceLabel: r.referenceLabel }),
    ...(r.alt === undefined ? {} : { alternateLanguage: r.alt }),
  }));

describe('encode/decode property', () => {
  it('decode(encode(input)) gives back every input field', () => {
    fc.assert(
      fc.property(mpmInputArbitrary, (input) => {
        const encoded = encodeMpm(input);
        if (!encoded.ok) throw new Error(JSON.stringify(encoded.error));
        const decoded = decodeMpm(encoded.value, { requireEmvcoMandatory: true });
        if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
        const view = describeMpm(decoded.value);
        expect(view.pointOfInitiation).toBe(input.pointOfInitiation);
        expect(view.merchantAccounts).toHaveLength(1);
        expect(view.merchantAccounts[0]).toMatchObject({
          tag: String(input.merchantAccount.tag),
          globallyUniqueId: input.merchantAccount.globallyUniqueId,
          fields: { '01': input.merchantAccount.merchantId },
        });
        expect([view.mcc, view.currencyNumeric, view.amount, view.country]).toEqual([input.mcc, input.currencyNumeric, input.amount, input.country]);
        expect([view.merchantName, view.merchantCity]).toEqual([input.merchantName, input.merchantCity]);
        expect(view.additionalData?.billNumber).toBe(input.billNumber);
        expect(view.additionalData?.referenceLabel).toBe(input.referenceLabel);
        expect(view.alternateLanguage).toEqual(input.alternateLanguage);
        expect(encodeMpmFields(decoded.value.fields)).toEqual(encoded);
      }),
      { numRuns: 300 },
    );
  });
});

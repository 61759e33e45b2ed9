/**
 * Cross-checks against independent MPM implementations (devDependencies only). promptparse hashes UTF-16 code units
 * truncated to a byte and counts lengths in UTF-16 units, so it only agrees with EMVCo on ASCII payloads; the random
 * inputs here stay ASCII for that reason.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parse as promptParse } from 'promptparse';
import { anyId, billPayment } from 'promptparse/generate';
import { createStaticPix, hasError, isStaticPix, parsePix } from 'pix-utils';
import { dataLines, readTestDataFile } from './vector-files.ts';
import { decodeMpm, describeMpm, encodeMpm, type DecodedMpm, type MpmEncodeInput } from './mpm.ts';

function mustDecode(payload: string): DecodedMpm {
  const decoded = decodeMpm(payload);
  if (!decoded.ok) throw new Error(`${payload}: ${JSON.stringify(decoded.error)}`);
  return decoded.value;
}

function mustEncode(input: MpmEncodeInput): string {
  const encoded = encodeMpm(input);
  if (!encoded.ok) throw new Error(JSON.stringify(encoded.error));
  return encoded.value;
}

/** Every top-level and nested value promptparse sees must be what we decoded. */
function expectSameTagsAsPromptParse(payload: string): void {
  const peer = promptParse(payload, true, true);
  if (peer === null) throw new Error(`promptparse rejected ${payload}`);
  const ours = mustDecode(payload).fields;
  expect(peer.getTags().map((t) => [t.id, t.value])).toEqual(ours.map((f) => [f.tag, f.value]));
  for (const field of ours) {
    if (field.kind !== 'template') continue;
    expect(peer.getTag(field.tag)?.subTags?.map((t) => [t.id, t.value])).toEqual(field.children.map((c) => [c.tag, c.value]));
  }
}

const asciiText = (minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.stringMatching(new RegExp(`^[A-Za-z0-9 .\\-]{${minLength},${maxLength}}$`)).filter((s) => s.trim().length > 0);

const asciiInput: fc.Arbitrary<MpmEncodeInput> = fc
  .record({
    tag: fc.integer({ min: 26, max: 51 }),
    gui: asciiText(1, 32),
    merchantId: asciiText(1, 25),
    amount: fc.option(fc.stringMatching(/^[1-9][0-9]{0,7}\.[0-9]{2}$/), { nil: undefined }),
    merchantName: asciiText(1, 25),
    merchantCity: asciiText(1, 15),
    billNumber: fc.option(asciiText(1, 25), { nil: undefined }),
  })
  .map((r) => ({
    pointOfInitiation: r.amount === undefined ? ('static' as const) : ('dynamic' as const),
    merchantAccount: { tag: r.tag, globallyUniqueId: r.gui, merchantId: r.merchantId },
    mcc: '5812',
    currencyNumeric: '156',
    country: 'CN',
    merchantName: r.merchantName,
    merchantCity: r.merchantCity,
    ...(r.amount === undefined ? {} : { amount: r.amount }),
    ...(r.billNumber === undefined ? {} : { billNumber: r.billNumber }),
  }));

describe('our encoder, read by promptparse', () => {
  it('parses with a valid CRC and reports the same name, city, amount, currency and CRC', () => {
    fc.assert(
      fc.property(asciiInput, (input) => {
        const payload = mustEncode(input);
        const peer = promptParse(payload, true, true);
        if (peer === null) throw new Error(`promptparse rejected ${payload}`);
        expect(peer.validate('63')).toBe(true);
        const view = describeMpm(mustDecode(payload));
        expect(peer.getTagValue('59')).toBe(input.merchantName);
        expect(peer.getTagValue('60')).toBe(input.merchantCity);
        expect(peer.getTagValue('54')).toBe(input.amount);
        expect(peer.getTagValue('53')).toBe('156');
        expect(peer.getTagValue('63')).toBe(view.crc);
        expect(peer.getTagValue(String(input.merchantAccount.tag), '01')).toBe(input.merchantAccount.merchantId);
        expectSameTagsAsPromptParse(payload);
      }),
      { numRuns: 200 },
    );
  });
});

describe('peer-generated payloads, read by us', () => {
  it('decodes promptparse anyId and billPayment codes with the same tags', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^0[689][0-9]{8}$/),
        fc.option(fc.integer({ min: 1, max: 9_999_999 }), { nil: undefined }),
        (phone, amountMinor) => {
          const amount = amountMinor === undefined ? undefined : amountMinor / 100;
          const payload = anyId(amount === undefined ? { type: 'MSISDN', target: phone } : { type: 'MSISDN', target: phone, amount });
          const view = describeMpm(mustDecode(payload));
          expect(view.pointOfInitiation).toBe(amount === undefined ? 'static' : 'dynamic');
          expect(view.currencyNumeric).toBe('764');
          expect(view.country).toBe('TH');
          expect(view.amount === undefined ? undefined : Number(view.amount)).toBe(amount);
          expectSameTagsAsPromptParse(payload);
        },
      ),
    );
    const bill = billPayment({ billerId: '0112233445566', ref1: 'CUSTOMER001', ref2: 'INV001', amount: 12.5 });
    expect(describeMpm(mustDecode(bill)).merchantAccounts[0]?.fields).toMatchObject({ '01': '0112233445566', '02': 'CUSTOMER001', '03': 'INV001' });
    expectSameTagsAsPromptParse(bill);
  });

  it('decodes pix-utils static BR Codes with the same fields', () => {
    fc.assert(
      fc.property(
        asciiText(1, 25),
        asciiText(1, 15),
        fc.emailAddress().filter((e) => e.length <= 60),
        fc.integer({ min: 0, max: 99_999_999 }),
        (merchantName, merchantCity, pixKey, amountMinor) => {
          const pix = createStaticPix({ merchantName, merchantCity, pixKey, transactionAmount: amountMinor / 100 });
          if (hasError(pix)) throw new Error(pix.message);
          const payload = pix.toBRCode();
          // Compare with pix-utils' own reading of the code: it normalises (e.g. upper-cases the city) while encoding.
          const peer = parsePix(payload);
          if (hasError(peer)) throw new Error(peer.message);
          if (!isStaticPix(peer)) throw new Error(`pix-utils did not read ${payload} as a static Pix`);
          const view = describeMpm(mustDecode(payload));
          expect(view.merchantName).toBe(peer.merchantName);
          expect(view.merchantCity).toBe(peer.merchantCity);
          expect(view.currencyNumeric).toBe(peer.transactionCurrency);
          expect(view.country).toBe(peer.countryCode);
          expect(view.mcc).toBe(peer.merchantCategoryCode);
          expect(Number(view.amount ?? '0')).toBe(peer.transactionAmount ?? 0);
          expect(Number(view.amount ?? '0')).toBe(amountMinor / 100);
          expect(view.merchantAccounts[0]).toMatchObject({ tag: '26', globallyUniqueId: 'br.gov.bcb.pix', fields: { '01': pixKey } });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('agrees with pix-utils on the static Pix vectors', () => {
    const pixVectors = dataLines(readTestDataFile('emv-qr/mpm-vectors.txt'))
      .filter((l) => l.startsWith('VALID|') && /br\.gov\.bcb\.pix/i.test(l))
      .map((l) => l.slice('VALID|'.length));
    expect(pixVectors.length).toBeGreaterThan(0);
    let staticCount = 0;
    for (const payload of pixVectors) {
      const peer = parsePix(payload);
      if (hasError(peer)) throw new Error(`pix-utils rejected ${payload}: ${peer.message}`);
      if (!('merchantName' in peer)) throw new Error(`pix-utils found ${payload} invalid: ${peer.details}`);
      const view = describeMpm(mustDecode(payload));
      expect([view.merchantName, view.merchantCity, view.currencyNumeric, view.country]).toEqual([peer.merchantName, peer.merchantCity, peer.transactionCurrency, peer.countryCode]);
      if (!isStaticPix(peer)) continue;
      staticCount += 1;
      expect(Number(view.amount ?? '0')).toBe(peer.transactionAmount ?? 0);
      expect(view.merchantAccounts.find((a) => a.globallyUniqueId?.toLowerCase() === 'br.gov.bcb.pix')?.fields['01']).toBe(peer.pixKey);
    }
    expect(staticCount).toBeGreaterThan(0);
  });

  it('agrees with pix-utils on Pix codes we encode', () => {
    const ours = mustEncode({
      pointOfInitiation: 'static',
      merchantAccount: { tag: 26, globallyUniqueId: 'br.gov.bcb.pix', merchantId: 'someone@example.com' },
      mcc: '0000',
      currencyNumeric: '986',
      amount: '10.50',
      country: 'BR',
      merchantName: 'FULANO DE TAL',
      merchantCity: 'BRASILIA',
      referenceLabel: '***',
    });
    const parsed = parsePix(ours);
    if (hasError(parsed)) throw new Error(parsed.message);
    expect(parsed).toMatchObject({ type: 'STATIC', merchantName: 'FULANO DE TAL', merchantCity: 'BRASILIA', pixKey: 'someone@example.com', transactionAmount: 10.5, txid: '***' });
  });
});

import { describe, expect, it } from 'vitest';
import { constructedTlv, decodeBerTlv, encodeBerTlv, primitiveTlv, type BerTlv } from './ber-tlv.ts';
import { bytesToBase64, decodeCpm, encodeCpm } from './cpm.ts';
import { crc16Hex } from './crc16.ts';
import { mustHexToBytes } from './hex.ts';
import { decodeMpm, describeMpm, encodeMpm, encodeMpmFields, MPM_EMVCO_MAX_PAYLOAD_CHARS, MPM_MAX_PAYLOAD_CHARS, type MpmEncodeInput } from './mpm.ts';
import { dataLines, readTestDataFile } from './vector-files.ts';

/**
 * Codes as they are printed and shown in the wild, which bend EMVCo without being ambiguous: the decoders accept them
 * (reporting each bend), the encoders never produce them.
 */

/**
 * A consumer-presented code in UnionPay's layout, built here from EMVCo CPM v1.1 (data objects may sit in the
 * application template) and the layout of UnionPay's own CPQRC payloads: everything inside the application template
 * 61, the PAN as track 2 equivalent data (57) rather than 5A, the cryptographic data in the application specific
 * transparent template 63, and no common data template 62 at all. The PAN is UnionPay's published test number
 * 6200000000000005 (test/data/cards/test-cards.txt); the cryptogram and counters are illustrative.
 *
 *   85 05 "CPV01"                                   payload format indicator
 *   61 4B {                                         application template
 *     4F 08 A000000333010101                        AID (UnionPay debit)
 *     57 10 6200000000000005 D 3012 201 00000000    track 2 equivalent: PAN, separator, expiry YYMM, service code, discretionary
 *     5F34 01 01                                    PAN sequence number
 *     63 29 {                                       application specific transparent template
 *       9F26 08 6F0A2B3C4D5E6F70                    application cryptogram
 *       9F27 01 80                                  cryptogram information data (ARQC)
 *       9F10 07 06010A03A00000                      issuer application data
 *       9F36 02 0007                                ATC
 *       82 02 7C00                                  application interchange profile
 *       9F37 04 1A2B3C4D } }                        unpredictable number
 */
const UNIONPAY_LAYOUT_HEX = [
  '8505435056303161',
  '4B',
  '4F08A000000333010101',
  '57106200000000000005D301220100000000',
  '5F340101',
  '6329',
  '9F26086F0A2B3C4D5E6F70',
  '9F270180',
  '9F100706010A03A00000',
  '9F36020007',
  '82027C00',
  '9F37041A2B3C4D',
].join('');

const unionPayLayout = bytesToBase64(mustHexToBytes(UNIONPAY_LAYOUT_HEX));

describe('consumer-presented codes with the data in the application template (UnionPay’s layout)', () => {
  it('is well-formed BER-TLV with no common data template', () => {
    const tlv = decodeBerTlv(mustHexToBytes(UNIONPAY_LAYOUT_HEX));
    expect(tlv.ok && tlv.value.map((n) => n.tag)).toEqual(['85', '61']);
  });

  it('decodes: the PAN from track 2 equivalent data, the cryptogram from the application template', () => {
    const decoded = decodeCpm(unionPayLayout);
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    const { tlv: _tlv, ...fields } = decoded.value;
    expect(fields).toEqual({
      payloadFormatIndicator: 'CPV01',
      applications: [{ aid: 'A000000333010101', label: undefined }],
      layout: 'application',
      token: '6200000000000005',
      cardholderName: undefined,
      languagePreference: undefined,
      expiry: undefined,
      atc: '0007',
      cryptogram: '6F0A2B3C4D5E6F70',
      unpredictableNumber: '1A2B3C4D',
      issuerApplicationData: '06010A03A00000',
      amountMinor: undefined,
    });
  });

  const app = (children: BerTlv[], aid = 'A000000333010101') => constructedTlv('61', [primitiveTlv('4F', mustHexToBytes(aid)), ...children]);
  const pfi = primitiveTlv('85', new TextEncoder().encode('CPV01'));
  const crypto = (ac = '6F0A2B3C4D5E6F70') => [primitiveTlv('9F26', mustHexToBytes(ac)), primitiveTlv('9F36', mustHexToBytes('0007')), primitiveTlv('9F37', mustHexToBytes('1A2B3C4D'))];
  const code = (...nodes: BerTlv[]) => bytesToBase64(encodeBerTlv(nodes));

  it('joins common data (62) with an application template’s own data, and uses the first application that carries data', () => {
    const mixed = code(
      pfi,
      app([], 'A0000000555555'), // identifies an application only
      app([constructedTlv('63', crypto())]),
      app([constructedTlv('63', crypto('0000000000000000'))], 'A0000000666666'),
      constructedTlv('62', [primitiveTlv('5A', mustHexToBytes('6200000000000005'))]),
    );
    const decoded = decodeCpm(mixed);
    expect(decoded.ok && { layout: decoded.value.layout, token: decoded.value.token, cryptogram: decoded.value.cryptogram, apps: decoded.value.applications.length }).toEqual({
      layout: 'common_and_application',
      token: '6200000000000005',
      cryptogram: '6F0A2B3C4D5E6F70',
      apps: 3,
    });
  });

  it.each([
    ['two PANs (5A in 62, another in 57)', [app([primitiveTlv('57', mustHexToBytes('6200000000000005D30122010000')), ...crypto()]), constructedTlv('62', [primitiveTlv('5A', mustHexToBytes('4242424242424242'))])], 'invalid_field', '57'],
    ['two cryptograms (62 and 61 disagree)', [app([primitiveTlv('57', mustHexToBytes('6200000000000005D30122010000')), ...crypto()]), constructedTlv('62', crypto('0000000000000000'))], 'duplicate_tag', '9F26'],
    ['no PAN at all', [app(crypto())], 'missing_mandatory_tag', '5A'],
    ['track 2 data without its separator', [app([primitiveTlv('57', mustHexToBytes('62000000000000053012201F')), ...crypto()])], 'invalid_field', '57'],
    ['no cryptogram', [app([primitiveTlv('57', mustHexToBytes('6200000000000005D30122010000'))])], 'missing_mandatory_tag', '9F26'],
  ] as const)('refuses a code with %s', (_name, nodes, reason, tag) => {
    const decoded = decodeCpm(code(pfi, ...nodes));
    expect(decoded.ok ? undefined : decoded.error.details).toMatchObject({ reason, tag });
  });

  it('the encoder still writes the EMVCo example’s layout: 5A in the common data template, the cryptogram in 64', () => {
    const encoded = encodeCpm({ aid: 'A000000333010101', label: 'UnionPay', token: '6200000000000005', atc: '0007', cryptogram: '6F0A2B3C4D5E6F70', unpredictableNumber: '1A2B3C4D' });
    if (!encoded.ok) throw new Error(JSON.stringify(encoded.error));
    const decoded = decodeCpm(encoded.value);
    expect(decoded.ok && decoded.value.layout).toBe('common');
    const tree = decoded.ok ? decoded.value.tlv : [];
    expect(tree.map((n) => n.tag)).toEqual(['85', '61', '62']);
    const common = tree[2];
    expect(common?.kind === 'constructed' && common.children.map((n) => n.tag)).toEqual(['5A', '64']);
  });
});

/**
 * A real SGQR label, 1015 characters: merchant "FOOD XYZ PTE LTD", SGQR ID 201803070317 (template 51, dated
 * 2018-04-07), with the primitive card-scheme fields 02, 04, 11, 12, 15 and twelve scheme templates 26–37 (Dash, Liquid,
 * OCBC, EZI, EZ-Link, Grab, DBS, NETS, WeChat Pay, UOB, PayNow, AirPay). It is the sample label quoted in public
 * point-of-sale demo code on GitHub (a Vue scanner's fallback payload); its CRC (3320) checks. Singapore's SGQR puts
 * every scheme a merchant accepts on one label, which is how national codes outgrow EMVCo's 512 characters.
 */
const SGQR_LABEL =
  '00020101021102164761360000000*1704155123456789123451110123456789012153123456789012341531250003440001034450003445311000126330015SG.COM.DASH.WWW0110000005550127670014A00000076200010120COM.LQDPALLIANCE.WWW021512345678901234503020028660011SG.COM.OCBC0147OCBCP2P629A358D-ECE7-4554-AD56-EBD12D84CA7E4F7329500006SG.EZI013603600006-76bb-4a5a-aa1a-fbcb64d6ecf530850013SG.COM.EZLINK01201234567890123456-1230204SGQR0324A123456,B123456,C12345670404A23X31260008COM.GRAB0110A93FO3230Q32390007COM.DBS011012345678900210123456789033900011SG.COM.NETS01230201401832831128823590002150001118703240000308885872010901199084E5DC3D834430017COM.QQ.WEIXIN.PAY011012345678900204123435660010SG.COM.UOB014845D233507F5E8C306E3871A4E9FACA601A80C114B5645E5D36940009SG.PAYNOW010100216+6212345678901230301004351234567890123456789012345678901234505082020123137270009SG.AIRPAY0110A11BC0000X51860007SG.SGQR0112201803070317020701.0003030608100604020205031380609Counter010708201804075204581453037025802SG5916FOOD XYZ PTE LTD6009SINGAPORE610608100663043320';

describe('national merchant-presented codes longer than EMVCo’s 512 characters', () => {
  it('accepts a real SGQR label of 1015 characters, with a warning, and reads every scheme on it', () => {
    expect(SGQR_LABEL.length).toBe(1015);
    const decoded = decodeMpm(SGQR_LABEL, { requireEmvcoMandatory: true });
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    expect(decoded.value.warnings).toEqual([{ code: 'payload_longer_than_emvco_limit', message: 'payload is 1015 characters; EMVCo MPM allows 512' }]);
    const view = describeMpm(decoded.value);
    expect(view.merchantAccounts.map((a) => a.globallyUniqueId ?? a.tag)).toEqual([
      '02', '04', '11', '12', '15',
      'SG.COM.DASH.WWW', 'A0000007620001', 'SG.COM.OCBC', 'SG.EZI', 'SG.COM.EZLINK', 'COM.GRAB', 'COM.DBS', 'SG.COM.NETS', 'COM.QQ.WEIXIN.PAY', 'SG.COM.UOB', 'SG.PAYNOW', 'SG.AIRPAY', 'SG.SGQR',
    ]);
    expect(view).toMatchObject({ merchantName: 'FOOD XYZ PTE LTD', merchantCity: 'SINGAPORE', country: 'SG', currencyNumeric: '702', mcc: '5814', postalCode: '081006', crc: '3320' });
    expect(encodeMpmFields(decoded.value.fields)).toEqual({ ok: true, value: SGQR_LABEL });
  });

  it('still detects a corrupted long label and keeps an upper bound', () => {
    const corrupted = SGQR_LABEL.replace('FOOD XYZ', 'FOOD XYX');
    const decoded = decodeMpm(corrupted);
    expect(decoded.ok ? undefined : decoded.error.details.reason).toBe('crc_mismatch');
    // Many schemes, each template at its 99-character maximum: past the most a QR symbol holds, refused before parsing.
    const body = `000201${Array.from({ length: 44 }, () => `2699${'0003ABC'}${'0188'}${'x'.repeat(88)}`).join('')}`;
    const huge = decodeMpm(`${body}6304${crc16Hex(`${body}6304`)}`);
    expect(huge.ok ? undefined : huge.error.details).toMatchObject({ reason: 'payload_too_long' });
    expect(body.length).toBeGreaterThan(MPM_MAX_PAYLOAD_CHARS);
  });

  it('the encoder refuses to write past 512 characters', () => {
    const input: MpmEncodeInput = {
      pointOfInitiation: 'dynamic',
      merchantAccount: { tag: 26, globallyUniqueId: 'CN.HUTONG', merchantId: 'M'.repeat(80) },
      mcc: '5812',
      currencyNumeric: '156',
      amount: '1234567890.12',
      country: 'CN',
      merchantName: 'N'.repeat(90),
      merchantCity: 'C'.repeat(90),
      postalCode: 'P'.repeat(90),
      billNumber: 'B'.repeat(40),
      referenceLabel: 'R'.repeat(40),
      alternateLanguage: { language: 'ZH', merchantName: '名'.repeat(40), merchantCity: '城'.repeat(40) },
    };
    const encoded = encodeMpm(input);
    expect(encoded.ok ? undefined : encoded.error.details).toMatchObject({ reason: 'payload_too_long' });
    expect(encoded.ok ? '' : encoded.error.message).toContain(`EMVCo MPM allows ${MPM_EMVCO_MAX_PAYLOAD_CHARS}`);
  });
});

/** The real payloads of test/data whose CRC has letters in it. */
const vectorsWithLetterCrc = dataLines(readTestDataFile('emv-qr/mpm-vectors.txt'))
  .filter((line) => line.startsWith('VALID|'))
  .map((line) => line.slice('VALID|'.length))
  .filter((payload) => /[A-F]/.test(payload.slice(-4)));

describe('a CRC in lowercase hex', () => {
  it('has real vectors to try', () => {
    expect(vectorsWithLetterCrc.length).toBeGreaterThanOrEqual(5);
  });

  it.each(vectorsWithLetterCrc)('is accepted with a warning; re-encoding writes it in uppercase: %s', (payload) => {
    const lower = `${payload.slice(0, -4)}${payload.slice(-4).toLowerCase()}`;
    const original = decodeMpm(payload);
    const decoded = decodeMpm(lower);
    if (!decoded.ok || !original.ok) throw new Error(JSON.stringify(decoded.ok ? original : decoded));
    expect(original.value.warnings).toEqual([]);
    expect(decoded.value.warnings.map((w) => w.code)).toEqual(['lowercase_crc']);
    expect(decoded.value.crc).toBe(payload.slice(-4));
    // The fields are as read (tag 63 keeps its lowercase text); everything else is the same code.
    expect(decoded.value.fields.slice(0, -1)).toEqual(original.value.fields.slice(0, -1));
    expect(encodeMpmFields(decoded.value.fields)).toEqual({ ok: true, value: payload });
  });

  it('a lowercase CRC that does not match is still refused', () => {
    const [payload = ''] = vectorsWithLetterCrc;
    const wrong = `${payload.slice(0, -4)}${crc16Hex('other').toLowerCase()}`;
    const decoded = decodeMpm(wrong);
    expect(decoded.ok ? undefined : decoded.error.details.reason).toBe('crc_mismatch');
  });
});

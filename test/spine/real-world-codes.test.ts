import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constructedTlv, encodeBerTlv, primitiveTlv } from '../../src/emv/ber-tlv.ts';
import { bytesToBase64 } from '../../src/emv/cpm.ts';
import { mustHexToBytes } from '../../src/emv/hex.ts';
import { decodeMpm, describeMpm, encodeMpmFields, type MpmField } from '../../src/emv/mpm.ts';
import { cardInTwoWallets, nextCryptogram, tokenSource, type CardInTwoWallets, type Caller, type WalletToken } from '../../src/demo/fixtures.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();
const MERCHANT_A = 'mer_demo_merchant_a';
let keyNo = 0;
const key = () => ({ 'idempotency-key': `rw-${++keyNo}` });

/** Scheme entries of a real SGQR label (src/emv/real-world.test.ts): what other schemes put on a shared national label. */
const OTHER_SCHEMES: MpmField[] = [
  { kind: 'primitive', tag: '02', value: '4761360000000*17' },
  { kind: 'primitive', tag: '04', value: '5123456789123451' },
  { kind: 'primitive', tag: '15', value: '2500034400010344500034453110001' },
  ...(
    [
      ['27', [['00', 'A0000007620001'], ['01', 'COM.LQDPALLIANCE.WWW'], ['02', '123456789012345'], ['03', '002']]],
      ['28', [['00', 'SG.COM.OCBC'], ['01', 'OCBCP2P629A358D-ECE7-4554-AD56-EBD12D84CA7E']]],
      ['29', [['00', 'SG.EZI'], ['01', '03600006-76bb-4a5a-aa1a-fbcb64d6ecf5']]],
      ['30', [['00', 'SG.COM.EZLINK'], ['01', '1234567890123456-123'], ['02', 'SGQR'], ['03', 'A123456,B123456,C1234567'], ['04', 'A23X']]],
      ['31', [['00', 'COM.GRAB'], ['01', 'A93FO3230Q']]],
      ['36', [['00', 'SG.PAYNOW'], ['01', '0'], ['02', '+621234567890123'], ['03', '0'], ['04', '12345678901234567890123456789012345'], ['05', '20201231']]],
    ] as const
  ).map(([tag, subs]): MpmField => ({ kind: 'template', tag, value: '', children: subs.map(([t, v]) => ({ kind: 'primitive', tag: t, value: v })) })),
];

/**
 * Real-world codes on the path production uses: a wallet previews and pays a national label that carries the hub's
 * merchant among other schemes (longer than EMVCo's 512 characters, CRC in lowercase), and a merchant accepts a
 * consumer-presented code in UnionPay's layout. Dynamic codes keep the merchant's own reference.
 */
describe.each(engines)('real-world codes on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  const call: Caller = async (as, method, path, body, headers) => {
    const api = t.api(as);
    return method === 'GET' ? api.get(path, headers) : method === 'POST' ? api.post(path, body, headers) : api.patch(path, body, headers);
  };
  const payQr = (payload: string, extra: Record<string, unknown> = {}) =>
    t.api('wallet-b').post('/v1/wallet/payments/qr', { payload, customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: 1230n, now: clock.now() }), ...extra }, key());

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    card = await cardInTwoWallets(t.hub, call);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a dynamic code keeps the merchant’s reference (62.05) and names itself in the hub’s template (26.02)', async () => {
    const qr = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'dynamic', amount: '12.30', reference: 'ORDER-42' }, key());
    expect(qr.status).toBe(201);
    expect(qr.body.reference).toBe('ORDER-42');
    const decoded = decodeMpm(qr.body.payload);
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    const view = describeMpm(decoded.value);
    expect(view.additionalData?.referenceLabel).toBe('ORDER-42');
    expect(view.merchantAccounts[0]?.fields).toMatchObject({ '00': 'CN.HUTONG', '01': MERCHANT_A, '02': qr.body.id });
    expect(await t.hub.db.query('select reference from pay_qr_codes where id = $1', [qr.body.id])).toEqual([{ reference: 'ORDER-42' }]);
    const preview = await t.api('wallet-b').post('/v1/wallet/qr/preview', { payload: qr.body.payload });
    expect(preview.body).toMatchObject({ kind: 'dynamic', amount: { amount: '12.30', currency: 'CNY' }, warnings: [] });
    expect((await payQr(qr.body.payload)).status).toBe(201);
    expect((await payQr(qr.body.payload)).body.error.code).toBe('qr_already_paid');
    // Without a reference the code carries none (no hub id in the merchant's field).
    const plain = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'dynamic', amount: '1.00' }, key());
    const plainView = decodeMpm(plain.body.payload);
    expect(plain.body.reference).toBeNull();
    expect(plainView.ok && describeMpm(plainView.value).additionalData).toBeUndefined();
  });

  it('a national label longer than 512 characters, with a lowercase CRC, carrying the hub’s merchant: previewed with warnings and paid', async () => {
    const own = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'static' }, key());
    const decoded = decodeMpm(own.body.payload);
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.error));
    const fields = decoded.value.fields;
    const at52 = fields.findIndex((f) => f.tag === '52');
    // The label lists the other schemes around the hub's template, in tag order, as a national label does.
    const label = (bill: string) => {
      const all = [...fields.slice(0, at52), ...OTHER_SCHEMES, ...fields.slice(at52).filter((f) => f.tag !== '63'), { kind: 'template' as const, tag: '62', value: '', children: [{ kind: 'primitive' as const, tag: '01', value: bill }] }];
      const encoded = encodeMpmFields([...all].sort((a, b) => Number(a.tag) - Number(b.tag)));
      if (!encoded.ok) throw new Error(JSON.stringify(encoded.error));
      return encoded.value;
    };
    // A bill number that gives the CRC a letter, so that lowercasing it changes the code.
    let upper = label('B0');
    for (let n = 1; !/[A-F]/.test(upper.slice(-4)); n += 1) upper = label(`B${n}`);
    const payload = `${upper.slice(0, -4)}${upper.slice(-4).toLowerCase()}`;
    expect(Array.from(payload).length).toBeGreaterThan(512);

    const preview = await t.api('wallet-b').post('/v1/wallet/qr/preview', { payload });
    expect(preview.status).toBe(200);
    expect(preview.body.merchant.id).toBe(MERCHANT_A);
    expect(preview.body.warnings.map((w: { code: string }) => w.code).sort()).toEqual(['lowercase_crc', 'payload_longer_than_emvco_limit']);
    const paid = await payQr(payload, { amount: { amount: '12.30', currency: 'CNY' } });
    expect(paid.status).toBe(201);
    expect(paid.body.amount).toEqual({ amount: '12.30', currency: 'CNY' });
    // Corrupt it and it is refused, long or not.
    const corrupted = payload.replace('SG.PAYNOW', 'SG.PAYNOX');
    expect((await payQr(corrupted, { amount: { amount: '12.30', currency: 'CNY' } })).body.error.details.reason).toBe('crc_mismatch');
  });

  /** UnionPay's layout (src/emv/real-world.test.ts): all in the application template, the token as track 2 data. */
  const unionPayLayoutCode = (token: WalletToken, c: { atc: number; cryptogram: string; unpredictableNumber: string }) => {
    const track2 = `${token.tokenNumber}D${token.expiryYymm}201${'0'.repeat(token.tokenNumber.length % 2 === 0 ? 4 : 3)}`;
    return bytesToBase64(
      encodeBerTlv([
        primitiveTlv('85', new TextEncoder().encode('CPV01')),
        constructedTlv('61', [
          primitiveTlv('4F', mustHexToBytes('A000000333010101')),
          primitiveTlv('57', mustHexToBytes(track2)),
          primitiveTlv('5F34', mustHexToBytes('00')),
          constructedTlv('63', [
            primitiveTlv('9F26', mustHexToBytes(c.cryptogram)),
            primitiveTlv('9F27', mustHexToBytes('80')),
            primitiveTlv('9F36', mustHexToBytes(c.atc.toString(16).padStart(4, '0'))),
            primitiveTlv('82', mustHexToBytes('0000')),
            primitiveTlv('9F37', mustHexToBytes(c.unpredictableNumber)),
          ]),
        ]),
      ]),
    );
  };

  it('a consumer-presented code in UnionPay’s layout (no 62, token in 57) is authorized, and its counter is spent', async () => {
    // The amount is not in the code (UnionPay leaves it to the terminal): the wallet's cryptogram covers amount 0.
    const c = nextCryptogram(card.b, { amountMinor: 0n, now: clock.now() });
    const body = { payload: unionPayLayoutCode(card.b, c), amount: { amount: '66.00', currency: 'CNY' } };
    const auth = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, body, key());
    expect(auth.status).toBe(201);
    expect(auth.body).toMatchObject({ status: 'authorized', channel: 'cpm' });
    expect((await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, body, key())).body.error.code).toBe('atc_replayed');
    // A forged cryptogram in the same layout is declined.
    const forged = nextCryptogram(card.b, { amountMinor: 0n, now: clock.now() });
    const declined = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, { ...body, payload: unionPayLayoutCode(card.b, { ...forged, cryptogram: '0000000000000000' }) }, key());
    expect(declined.status).not.toBe(201);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoParticipantId } from '../demo/seed.ts';
import { cardInTwoWallets, cpmPayload, tokenSource, type CardInTwoWallets, type Caller } from '../demo/fixtures.ts';
import { createFakeClock, type FakeClock } from '../platform/clock.ts';
import { availableEngines } from '../../test/support/engines.ts';
import { startTestHub, type TestHub } from '../../test/support/hub.ts';

const engines = await availableEngines();
const MERCHANT_A = 'mer_demo_merchant_a';
let keyNo = 0;
const key = () => ({ 'idempotency-key': `pos-${++keyNo}` });

/**
 * Card payments between participants move positions like every payment between participants: a capture (and a payment
 * the payer pushes, captured at once) carries the position leg issuer → merchant owner in its linked chain and records
 * it in the open settlement window; a refund is a payment the other way. At its cap the issuer cannot capture.
 */
describe.each(engines)('card payments move positions on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  const bankA = demoParticipantId('bank-a');
  const merchantA = demoParticipantId('merchant-a');
  const call: Caller = async (as, method, path, body, headers) => {
    const api = t.api(as);
    return method === 'GET' ? api.get(path, headers) : method === 'POST' ? api.post(path, body, headers) : api.patch(path, body, headers);
  };
  const posted = async (id: string) => {
    const [r] = await t.hub.db.query<{ b: bigint }>('select credits_posted - debits_posted as b from ledger_accounts where id = $1', [id]);
    return r?.b ?? 0n;
  };
  const entriesOf = (paymentId: string) =>
    t.hub.db.query<{ transfer_id: string; payer_participant_id: string; payee_participant_id: string; amount_minor: bigint; currency: string }>(
      'select transfer_id, payer_participant_id, payee_participant_id, amount_minor, currency from settlement_entries where payment_id = $1 order by transfer_id',
      [paymentId],
    );
  const unsettled = async (as: string) => {
    const r = await t.api(as).get('/v1/settlement/positions');
    expect(r.status).toBe(200);
    return String(r.body.items.find((p: { currency: string }) => p.currency === 'CNY')?.unsettledPosition.amount ?? '0.00');
  };
  const cents = (s: string) => BigInt(s.replace('.', ''));

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    card = await cardInTwoWallets(t.hub, call);
  });
  afterAll(async () => t?.close());

  it('a capture between the issuer and the merchant owner: the hold is released into a chain through both positions, recorded in the window', async () => {
    const issuerBefore = await unsettled('bank-a');
    const merchantBefore = await unsettled('merchant-a');
    const fundI = `fund_${bankA}_CNY`;
    const fundA = `fund_${merchantA}_CNY`;
    const [fi0, fa0, src0, mst0] = [await posted(fundI), await posted(fundA), await posted(card.fundingAccountId), await posted(`mst_${MERCHANT_A}_CNY`)];

    const auth = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, { payload: cpmPayload(card.b, { amountMinor: 5000n, now: clock.now() }), amount: { amount: '50.00', currency: 'CNY' } }, key());
    expect(auth.status).toBe(201);
    // Authorized only: nothing between participants yet.
    expect(await entriesOf(auth.body.id)).toEqual([]);
    const cap = await t.api('merchant-a').post(`/v1/payments/${auth.body.id}/capture`, { amount: '30.00' }, key());
    expect(cap.body).toMatchObject({ status: 'captured', captured: { amount: '30.00' } });

    const entries = await entriesOf(auth.body.id);
    expect(entries).toEqual([{ transfer_id: expect.stringMatching(new RegExp(`^${auth.body.id}_[a-z0-9]{6}_pos$`)), payer_participant_id: bankA, payee_participant_id: merchantA, amount_minor: 3000n, currency: 'CNY' }]);
    const prefix = String(entries[0]?.transfer_id).slice(0, -'_pos'.length);
    const legs = await t.hub.db.query<{ id: string; debit_account_id: string | null; credit_account_id: string | null; amount_minor: bigint; purpose: string; linked: boolean }>(
      `select id, debit_account_id, credit_account_id, amount_minor, purpose, linked from ledger_transfers where id like $1 order by id`,
      [`${auth.body.id}_%`],
    );
    const byId = new Map(legs.map((l) => [l.id, l]));
    expect(byId.get(`${prefix}_pos`)).toMatchObject({ debit_account_id: fundI, credit_account_id: fundA, amount_minor: 3000n, purpose: 'position' });
    expect(byId.get(`${prefix}_capture`)).toMatchObject({ debit_account_id: card.fundingAccountId, credit_account_id: fundI, amount_minor: 3000n, purpose: 'card_capture' });
    expect(byId.get(`${prefix}_capture_in`)).toMatchObject({ debit_account_id: fundA, credit_account_id: `mst_${MERCHANT_A}_CNY`, amount_minor: 3000n });
    expect(byId.has(`${prefix}_release`)).toBe(true);

    // The money: the customer paid 30.00 (the rest of the hold released), the merchant got it less its fee; the
    // funding accounts hold the same (the position legs and the customer legs through them cancel out)…
    const fee = BigInt(cap.body.fee?.amount !== undefined ? cents(cap.body.fee.amount) : 0n);
    expect(await posted(card.fundingAccountId)).toBe(src0 - 3000n);
    expect(await posted(`mst_${MERCHANT_A}_CNY`)).toBe(mst0 + 3000n - fee);
    expect(await posted(fundI)).toBe(fi0);
    expect(await posted(fundA)).toBe(fa0);
    // … and each side's unsettled position moved by the captured amount, less the merchant's fee, which the merchant
    // owner pays the issuer (its own entry).
    expect(fee).toBeGreaterThan(0n);
    expect(await entriesOf(`${auth.body.id}_fee`)).toEqual([{ transfer_id: `${prefix}_fee_pos`, payer_participant_id: merchantA, payee_participant_id: bankA, amount_minor: fee, currency: 'CNY' }]);
    expect(cents(await unsettled('bank-a'))).toBe(cents(issuerBefore) - 3000n + fee);
    expect(cents(await unsettled('merchant-a'))).toBe(cents(merchantBefore) + 3000n - fee);
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);

    // A refund is a payment the other way: the merchant owner's position pays the issuer's.
    const refund = await t.api('merchant-a').post(`/v1/payments/${auth.body.id}/refunds`, { amount: '10.00' }, key());
    expect(refund.status).toBe(201);
    expect(await entriesOf(refund.body.refundId)).toEqual([{ transfer_id: `${refund.body.refundId}_pos`, payer_participant_id: merchantA, payee_participant_id: bankA, amount_minor: 1000n, currency: 'CNY' }]);
    expect(await posted(card.fundingAccountId)).toBe(src0 - 2000n);
    expect(cents(await unsettled('bank-a'))).toBe(cents(issuerBefore) - 2000n + fee);
    expect(cents(await unsettled('merchant-a'))).toBe(cents(merchantBefore) + 2000n - fee);
    expect(await posted(fundI)).toBe(fi0);
    expect(await posted(fundA)).toBe(fa0);
  });

  it('a payment the payer pushes (a payment link, captured at once) from a wallet account moves the wallet’s position', async () => {
    const walletA = demoParticipantId('wallet-a');
    const link = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payment-links`, { amount: { amount: '18.80', currency: 'CNY' }, description: 'Ferry', expiresInS: 3600 }, key());
    expect(link.status).toBe(201);
    const created = await t.api('wallet-a').post('/v1/customers', { externalId: 'pos-link-payer', name: 'Zhao Min', phone: '13900139077' }, key());
    const accountId = await t.hub.db.transaction(async (tx) => {
      const opened = await t.hub.transfers.accounts.openCustomerAccount(tx, { type: 'system' }, walletA, created.body.id, 'CNY');
      if (!opened.ok) throw new Error(opened.error.code);
      await t.hub.transfers.accounts.deposit(tx, { type: 'system' }, walletA, opened.value.id, 10_000n, 'CNY', 'dep-pos-link');
      return opened.value.id;
    });
    const before = await unsettled('wallet-a');
    const paid = await t.api('wallet-a').post(`${link.body.url}/pay`, { customerId: created.body.id, source: { type: 'account', accountId } }, key());
    expect(paid.status).toBe(201);
    expect(await entriesOf(paid.body.id)).toEqual([{ transfer_id: `${paid.body.id}_pos`, payer_participant_id: walletA, payee_participant_id: merchantA, amount_minor: 1880n, currency: 'CNY' }]);
    // Less the merchant's fee, which the merchant owner pays the wallet (whose account paid) through the positions.
    const [charged] = await t.hub.db.query<{ fee_minor: bigint }>('select fee_minor from pay_authorizations where id = $1', [paid.body.id]);
    expect(cents(await unsettled('wallet-a'))).toBe(cents(before) - 1880n + (charged?.fee_minor ?? 0n));
    expect(await posted(accountId)).toBe(10_000n - 1880n);
    // And a token payment pushed from a wallet (a static QR) moves the card issuer's position.
    const qr = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/qr-codes`, { kind: 'static' }, key());
    const viaQr = await t.api('wallet-b').post('/v1/wallet/payments/qr', { payload: qr.body.payload, amount: { amount: '7.00', currency: 'CNY' }, customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: 700n, now: clock.now() }) }, key());
    expect(viaQr.status).toBe(201);
    expect(await entriesOf(viaQr.body.id)).toEqual([{ transfer_id: `${viaQr.body.id}_pos`, payer_participant_id: bankA, payee_participant_id: merchantA, amount_minor: 700n, currency: 'CNY' }]);
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
  });

  it('an issuer at its cover cannot capture (liquidity_exceeded, nothing moves); a net debit cap lets it through', async () => {
    const auth = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/cpm`, { payload: cpmPayload(card.b, { amountMinor: 2500n, now: clock.now() }), amount: { amount: '25.00', currency: 'CNY' } }, key());
    expect(auth.status).toBe(201);
    // The operator sends all of bank-a's free liquidity back to its settlement bank account.
    const pos = await t.hub.liquidity.position(bankA, 'CNY');
    const free = pos.balanceMinor - pos.reservedMinor;
    const out = await t.hub.db.transaction((tx) => t.hub.liquidity.fundsOut(tx, { type: 'system' }, { participantId: bankA, currency: 'CNY', amountMinor: free, transferId: 'pos_test_out' }));
    expect(out.ok).toBe(true);
    const src0 = await posted(card.fundingAccountId);
    const refused = await t.api('merchant-a').post(`/v1/payments/${auth.body.id}/capture`, {}, key());
    expect({ status: refused.status, code: refused.body.error?.code }).toEqual({ status: 422, code: 'liquidity_exceeded' });
    expect(await entriesOf(auth.body.id)).toEqual([]);
    expect(await posted(card.fundingAccountId)).toBe(src0);
    expect((await t.api('merchant-a').get(`/v1/payments/${auth.body.id}`)).body.status).toBe('authorized');

    const capped = await t.hub.db.transaction((tx) => t.hub.liquidity.setNetDebitCap(tx, { type: 'system' }, { participantId: bankA, currency: 'CNY', capMinor: 10_000n }));
    expect(capped.ok).toBe(true);
    const cap = await t.api('merchant-a').post(`/v1/payments/${auth.body.id}/capture`, {}, key());
    expect(cap.body).toMatchObject({ status: 'captured' });
    expect((await entriesOf(auth.body.id)).map((e) => e.amount_minor)).toEqual([2500n]);
    expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from '../../test/support/engines.ts';
import { startTestHub, type TestHub } from '../../test/support/hub.ts';
import { demoCustomerId, demoParticipantId } from '../demo/seed.ts';
import { newDevice } from '../demo/device.ts';
import { createFakeClock, type FakeClock } from '../platform/clock.ts';
import { PUSH_RECEIPT_TTL_MS } from './token-service.ts';

const engines = await availableEngines();

/** Push provisioning: the issuer's app offers a card to a wallet; the wallet redeems the receipt once, in minutes. */
describe.each(engines)('push provisioning on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let cardId: string;
  const walletA = demoParticipantId('wallet-a');
  const customer = demoCustomerId('li-at-wallet-a');
  const push = (body: Record<string, unknown>, card = cardId, as = 'bank-a') => t.api(as).post(`/v1/issuer/cards/${card}/push-provisionings`, body);
  const redeem = (receipt: string, as = 'wallet-a', customerId = customer) =>
    t.api(as).post('/v1/wallet/tokens', { customerId, consent: true, deviceId: 'pushed-phone', devicePublicKey: newDevice().publicKey, source: { type: 'push_receipt', receipt } });
  const tokens = async () => (await t.hub.db.query<{ n: bigint }>('select count(*) as n from card_tokens where card_id = $1', [cardId]))[0]?.n;

  beforeAll(async () => {
    clock = createFakeClock(Date.UTC(2026, 0, 15, 8, 0, 0));
    t = await startTestHub(engine, { clock, config: { accessTokenTtlS: 86_400 } });
    const issued = await t.api('bank-a').post('/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: demoCustomerId('li-at-bank-a') });
    expect(issued.status).toBe(201);
    cardId = issued.body.card.id;
    expect((await t.api('bank-a').post(`/v1/issuer/cards/${cardId}/activate`)).status).toBe(200);
  });
  afterAll(async () => t?.close());

  it('the issuer offers the card to a wallet; the wallet redeems it once, with no card data and no step-up; both consents are recorded', async () => {
    const offered = await push({ walletParticipantId: walletA, cardholderConsent: true });
    expect(offered.status).toBe(201);
    expect(offered.body).toMatchObject({ cardId, walletParticipantId: walletA });
    expect(offered.headers['cache-control']).toBe('no-store');
    const receipt: string = offered.body.receipt;
    // The hub keeps nothing redeemable: only the receipt's id.
    expect(JSON.stringify(await t.hub.db.query('select * from token_push_receipts'))).not.toContain(receipt.split('.')[1]);

    // bank-a's rules ask a step-up for any other way in; a push is the issuer's own ID&V.
    const added = await redeem(receipt);
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ status: 'approved', method: 'push', stepUp: null, token: { deviceBound: true } });
    expect(added.body.limitedUseKey.key).toMatch(/^[0-9A-F]{32}$/);
    const [row] = await t.hub.db.query<{ status: string; customer_id: string; token_id: string; issuer_consent_at: Date; customer_consent_at: Date }>('select * from token_push_receipts where id = $1', [offered.body.id]);
    expect(row).toMatchObject({ status: 'redeemed', customer_id: customer });
    expect(row?.issuer_consent_at).toBeInstanceOf(Date);
    expect(row?.customer_consent_at).toBeInstanceOf(Date);
    const [event] = await t.hub.db.query<{ payload: { method: string } }>(`select payload from events where type = 'token.provisioned' and payload->>'tokenId' = $1`, [row?.token_id]);
    expect(event?.payload.method).toBe('push');

    // Twice: refused, and nothing more is created.
    const before = await tokens();
    const again = await redeem(receipt);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('push_receipt_used');
    expect(await tokens()).toBe(before);
  });

  it('a receipt is for its wallet only, cannot be forged, and lapses after ten minutes', async () => {
    const offered = await push({ walletParticipantId: walletA, cardholderConsent: true });
    const receipt: string = offered.body.receipt;
    const before = await tokens();
    expect((await redeem(receipt, 'wallet-b', demoCustomerId('li-at-wallet-b'))).body.error.code).toBe('push_receipt_invalid');
    const forged = `${receipt.slice(0, -2)}${receipt.endsWith('AA') ? 'BB' : 'AA'}`;
    expect((await redeem(forged)).body.error.code).toBe('push_receipt_invalid');
    clock.advance(PUSH_RECEIPT_TTL_MS);
    const late = await redeem(receipt);
    expect(late.status).toBe(410);
    expect(late.body.error.code).toBe('push_receipt_expired');
    expect(await tokens()).toBe(before);
  });

  it("needs the cardholder's consent, an active wallet, and the issuer's own card", async () => {
    expect((await push({ walletParticipantId: walletA, cardholderConsent: false })).body.error.code).toBe('consent_required');
    const notWallet = await push({ walletParticipantId: demoParticipantId('bank-b'), cardholderConsent: true });
    expect(notWallet.status).toBe(422);
    expect(notWallet.body.error.code).toBe('push_wallet_invalid');
    expect((await push({ walletParticipantId: walletA, cardholderConsent: true }, cardId, 'bank-b')).status).toBe(404);
    expect((await t.api('wallet-a').post(`/v1/issuer/cards/${cardId}/push-provisionings`, { walletParticipantId: walletA, cardholderConsent: true })).status).toBe(404);
    expect((await t.hub.db.query<{ n: bigint }>('select count(*) as n from token_push_receipts'))[0]?.n).toBe(2n);
  });
});

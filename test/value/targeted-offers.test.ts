import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardInTwoWallets, tokenSource, type CardInTwoWallets } from '../../src/demo/fixtures.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();
const key = () => ({ 'idempotency-key': randomUUID() });
const MERCHANT = 'mer_demo_merchant_a';
const DAY = 86_400_000;

/**
 * Offers targeted by the customer's own card spending, over HTTP: nothing without the customer's consent (no offer
 * shown, nothing computed, the issuer's counts unmoved), the eligible offer shown once they consent and gone when they
 * withdraw, only the offer's own issuer's cards counting, acceptance putting the coupon in the wallet, and the issuer
 * seeing counts only and unable to name a customer.
 */
describe.each(engines)('targeted offers on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  let couponId: string;
  let eligibleOffer: string;
  let tooHigh: string;
  let otherIssuer: string;
  const issuerCounts = async (issuer: string) =>
    new Map(((await t.api(issuer).get('/v1/issuer/targeted-offers')).body.items as { id: string; eligibleCount: number; acceptedCount: number }[]).map((o) => [o.id, [o.eligibleCount, o.acceptedCount]]));
  const eligibilityRows = async () => Number((await t.hub.db.query<{ n: number }>('select count(*)::int as n from targeted_offer_eligibility'))[0]?.n);

  beforeAll(async () => {
    clock = createFakeClock(Date.UTC(2026, 2, 10, 8, 0, 0));
    t = await startTestHub(engine, { clock, config: { webhooks: { enabled: false, pollMs: 1000 }, accessTokenTtlS: 86_400 } });
    card = await cardInTwoWallets(t.hub, (as, method, path, body, headers) =>
      method === 'GET' ? t.api(as).get(path, headers) : method === 'PATCH' ? t.api(as).patch(path, body, headers) : t.api(as).post(path, body, headers),
    );
    const coupon = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/coupons`, { name: 'Thank you: 8 off', amountOff: '8.00', perCustomerLimit: 1, expiresAt: '2026-12-31T00:00:00Z' }, key());
    expect(coupon.status, JSON.stringify(coupon.body)).toBe(201);
    couponId = coupon.body.id as string;
    const [m] = await t.hub.db.query<{ mcc: string }>('select mcc from merchants where id = $1', [MERCHANT]);
    // Bank A (the card's issuer): 50.00 at merchant A in 30 days (met below), 1000.00 in merchant A's category (not met).
    const offer = async (issuer: string, body: Record<string, unknown>) => {
      const r = await t.api(issuer).post('/v1/issuer/targeted-offers', { couponId, windowDays: 30, expiresAt: '2026-12-01T00:00:00Z', ...body }, key());
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body).toMatchObject({ eligibleCount: 0, acceptedCount: 0, status: 'active' });
      return r.body.id as string;
    };
    eligibleOffer = await offer('bank-a', { name: 'Regulars of merchant A', minSpend: { amount: '50.00', currency: 'CNY' } });
    tooHigh = await offer('bank-a', { name: 'Big spenders', mcc: m!.mcc, minSpend: { amount: '1000.00', currency: 'CNY' } });
    // Bank B issued none of the customer's cards: their spend never counts for its offer, however low.
    otherIssuer = await offer('bank-b', { name: 'Anyone at merchant A', minSpend: { amount: '0.01', currency: 'CNY' } });
    expect((await t.api('bank-a').post('/v1/issuer/targeted-offers', { name: 'x', couponId, windowDays: 30, expiresAt: '2020-01-01T00:00:00Z', minSpend: { amount: '1.00', currency: 'CNY' } }, key())).body.error.code).toBe('targeted_offer_invalid');

    // 李伟 pays 60.00 at merchant A with bank A's card through wallet B.
    const qr = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'static' }, key());
    const paid = await t.api('wallet-b').post(
      '/v1/wallet/payments/qr',
      { payload: qr.body.payload, amount: { amount: '60.00', currency: 'CNY' }, customerId: card.b.customerId, source: tokenSource(card.b, { amountMinor: 6000n, now: clock.now() }), applyCoupon: false },
      key(),
    );
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
  }, 180_000);
  afterAll(async () => t?.close());

  it('without consent: no targeted offer, nothing computed, the offer cannot be accepted and the issuer counts nothing', async () => {
    const customerId = card.b.customerId;
    const consent = await t.api('wallet-b').get(`/v1/wallet/targeted-offers/consent?customerId=${customerId}`);
    expect(consent.status, JSON.stringify(consent.body)).toBe(200);
    expect(consent.body).toEqual({ customerId, consent: false, givenAt: null, withdrawnAt: null });
    const list = await t.api('wallet-b').get(`/v1/wallet/targeted-offers?customerId=${customerId}`);
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect(list.body).toEqual({ consent: false, items: [] });
    const accept = await t.api('wallet-b').post(`/v1/wallet/targeted-offers/${eligibleOffer}/accept`, { customerId }, key());
    expect(accept.status).toBe(403);
    expect(accept.body.error.code).toBe('offer_consent_required');
    expect(await eligibilityRows()).toBe(0);
    expect((await issuerCounts('bank-a')).get(eligibleOffer)).toEqual([0, 0]);
  });

  it('an issuer cannot name a customer: the wallet routes answer 404 for a customer that is not its own', async () => {
    const customerId = card.b.customerId;
    expect((await t.api('bank-a').get(`/v1/wallet/targeted-offers?customerId=${customerId}`)).status).toBe(404);
    expect((await t.api('bank-a').get(`/v1/wallet/targeted-offers/consent?customerId=${customerId}`)).status).toBe(404);
    expect((await t.api('bank-a').post('/v1/wallet/targeted-offers/consent', { customerId, consent: true }, key())).status).toBe(404);
    expect((await t.api('bank-a').post(`/v1/wallet/targeted-offers/${eligibleOffer}/accept`, { customerId }, key())).status).toBe(404);
    // Another issuer cannot withdraw bank A's offer.
    expect((await t.api('bank-b').post(`/v1/issuer/targeted-offers/${eligibleOffer}/withdraw`, {}, key())).status).toBe(404);
  });

  it('with consent: the eligible offer shown (only its own issuer’s cards counting), counted for the issuer without naming anyone; withdrawn: gone', async () => {
    const customerId = card.b.customerId;
    const given = await t.api('wallet-b').post('/v1/wallet/targeted-offers/consent', { customerId, consent: true }, key());
    expect(given.status, JSON.stringify(given.body)).toBe(200);
    expect(given.body).toMatchObject({ customerId, consent: true, givenAt: clock.now().toISOString(), withdrawnAt: null });
    const list = await t.api('wallet-b').get(`/v1/wallet/targeted-offers?customerId=${customerId}`);
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect(list.body.consent).toBe(true);
    expect(list.body.items.map((o: { id: string }) => o.id)).toEqual([eligibleOffer]);
    expect(list.body.items[0]).toMatchObject({ issuerParticipantId: demoParticipantId('bank-a'), minSpend: { amount: '50.00', currency: 'CNY' }, merchantId: MERCHANT, coupon: { id: couponId }, accepted: false });
    // Bank A sees one eligible customer, no one named; bank B's offer counted no one (the card is not bank B's).
    const counts = await t.api('bank-a').get('/v1/issuer/targeted-offers');
    expect(counts.body.items.find((o: { id: string }) => o.id === eligibleOffer)).toMatchObject({ eligibleCount: 1, acceptedCount: 0 });
    expect(counts.body.items.find((o: { id: string }) => o.id === tooHigh)).toMatchObject({ eligibleCount: 0 });
    expect(JSON.stringify(counts.body)).not.toContain(customerId);
    expect(JSON.stringify(counts.body)).not.toContain(card.cardId);
    expect((await issuerCounts('bank-b')).get(otherIssuer)).toEqual([0, 0]);
    expect((await t.api('wallet-b').post(`/v1/wallet/targeted-offers/${otherIssuer}/accept`, { customerId }, key())).body.error.code).toBe('targeted_offer_not_eligible');
    // The same cardholder at wallet A has not consented there: nothing for them.
    expect((await t.api('wallet-a').get(`/v1/wallet/targeted-offers?customerId=${card.a.customerId}`)).body).toEqual({ consent: false, items: [] });

    // Withdrawn: the offer is gone, and what was computed from the consent with it.
    clock.advance(60_000);
    const withdrawn = await t.api('wallet-b').post('/v1/wallet/targeted-offers/consent', { customerId, consent: false }, key());
    expect(withdrawn.body).toMatchObject({ consent: false, withdrawnAt: clock.now().toISOString() });
    expect((await t.api('wallet-b').get(`/v1/wallet/targeted-offers?customerId=${customerId}`)).body).toEqual({ consent: false, items: [] });
    expect((await issuerCounts('bank-a')).get(eligibleOffer)).toEqual([0, 0]);
    expect((await t.api('wallet-b').post(`/v1/wallet/targeted-offers/${eligibleOffer}/accept`, { customerId }, key())).body.error.code).toBe('offer_consent_required');
    const audit = await t.hub.db.query<{ action: string }>(`select action from audit_log where object_id = $1 and action like 'offer_consent.%' order by at, id`, [customerId]);
    expect(audit.map((a) => a.action)).toEqual(['offer_consent.given', 'offer_consent.withdrawn']);
  });

  it('accepting: the coupon goes into the wallet once, the issuer counts it and hears of it without a name; an unmet condition is refused', async () => {
    const customerId = card.b.customerId;
    expect((await t.api('wallet-b').post('/v1/wallet/targeted-offers/consent', { customerId, consent: true }, key())).body.consent).toBe(true);
    const accepted = await t.api('wallet-b').post(`/v1/wallet/targeted-offers/${eligibleOffer}/accept`, { customerId }, key());
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(201);
    expect(accepted.body).toMatchObject({ offerId: eligibleOffer, walletCoupon: { source: 'offer', coupon: { id: couponId }, usable: true } });
    const again = await t.api('wallet-b').post(`/v1/wallet/targeted-offers/${eligibleOffer}/accept`, { customerId }, key());
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('targeted_offer_accepted');
    const notMet = await t.api('wallet-b').post(`/v1/wallet/targeted-offers/${tooHigh}/accept`, { customerId }, key());
    expect(notMet.status).toBe(409);
    expect(notMet.body.error.code).toBe('targeted_offer_not_eligible');
    const kept = await t.api('wallet-b').get(`/v1/wallet/coupons?customerId=${customerId}`);
    expect(kept.body.coupons.map((w: { coupon: { id: string } }) => w.coupon.id)).toContain(couponId);
    expect((await t.api('wallet-b').get(`/v1/wallet/targeted-offers?customerId=${customerId}`)).body.items).toEqual([expect.objectContaining({ id: eligibleOffer, accepted: true })]);
    expect((await issuerCounts('bank-a')).get(eligibleOffer)).toEqual([1, 1]);
    const events = await t.hub.db.query<{ payload: Record<string, unknown> }>(`select payload from events where participant_id = $1 and type = 'targeted_offer.accepted'`, [demoParticipantId('bank-a')]);
    expect(events).toHaveLength(1);
    expect(JSON.stringify(events[0]!.payload)).not.toContain(customerId);
    expect(events[0]!.payload).toMatchObject({ offerId: eligibleOffer, acceptedCount: 1 });

    // Past the window the spend no longer counts; a withdrawn offer is shown to no one.
    clock.advance(31 * DAY);
    expect((await t.api('wallet-b').get(`/v1/wallet/targeted-offers?customerId=${customerId}`)).body.items).toEqual([]);
    const w = await t.api('bank-a').post(`/v1/issuer/targeted-offers/${eligibleOffer}/withdraw`, {}, key());
    expect(w.status, JSON.stringify(w.body)).toBe(200);
    expect(w.body).toMatchObject({ status: 'withdrawn', acceptedCount: 1 });
  });
});

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardInTwoWallets, tapBody, tokenSource, type CardInTwoWallets } from '../../src/demo/fixtures.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { openSentCode } from '../../src/platform/sent-codes.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();
const key = () => ({ 'idempotency-key': randomUUID() });
const cus = (k: string) => demoCustomerId(k);
const MERCHANT = 'mer_demo_merchant_a';
const PRODUCT = 'cpr_demo_bank_a_debit';

/**
 * Value beyond paying, end to end over HTTP: savings pots (a ledger account per pot, a lock, seen in a linked wallet),
 * merchants' coupons applied to wallet payments (the best one, shown before paying; expired and over-limit coupons
 * refused with their codes), issuers' rewards earned at capture, capped, reversed on refund and redeemed (cashback
 * from the issuer's position, points for a coupon), and issuer insights over the issuer's own cards only.
 */
describe.each(engines)('value beyond paying on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  const events = async (participant: string, prefix: string) =>
    t.hub.db.query<{ type: string; payload: Record<string, unknown> }>(`select type, payload from events where participant_id = $1 and type like $2 order by id`, [demoParticipantId(participant), `${prefix}%`]);
  const balanceOf = async (accountId: string) => {
    const [a] = await t.hub.ledger.getAccounts([accountId]);
    return a === undefined ? 0n : a.creditsPostedMinor - a.debitsPostedMinor;
  };

  beforeAll(async () => {
    clock = createFakeClock(Date.UTC(2026, 2, 10, 8, 0, 0));
    t = await startTestHub(engine, { clock, config: { webhooks: { enabled: false, pollMs: 1000 }, accessTokenTtlS: 86_400 } });
    card = await cardInTwoWallets(t.hub, (as, method, path, body, headers) =>
      method === 'GET' ? t.api(as).get(path, headers) : method === 'PATCH' ? t.api(as).patch(path, body, headers) : t.api(as).post(path, body, headers),
    );
  }, 180_000);
  afterAll(async () => t?.close());

  it('savings pots: money in and out of a named pot (its own ledger account), a goal told once, a lock refused with pot_locked, seen in a linked wallet', async () => {
    const li = cus('li-at-wallet-a');
    const mainId = `acc_${li}_CNY`;
    const before = await balanceOf(mainId);
    const pot = await t.api('wallet-a').post('/v1/pots', { customerId: li, name: 'Trip to Chengdu', currency: 'CNY', goal: '50.00', lockedUntil: '2026-06-01T00:00:00Z' }, key());
    expect(pot.status, JSON.stringify(pot.body)).toBe(201);
    expect(pot.body).toMatchObject({ name: 'Trip to Chengdu', balance: { amount: '0.00', currency: 'CNY' }, goal: { amount: '50.00' }, locked: true, own: true });
    const potId = pot.body.id as string;

    const in1 = await t.api('wallet-a').post(`/v1/pots/${potId}/deposits`, { amount: { amount: '30.00', currency: 'CNY' } }, key());
    expect(in1.status).toBe(201);
    expect(in1.body).toMatchObject({ balance: { amount: '30.00' }, goalReached: false });
    const in2 = await t.api('wallet-a').post(`/v1/pots/${potId}/deposits`, { amount: { amount: '25.00', currency: 'CNY' } }, key());
    expect(in2.body).toMatchObject({ balance: { amount: '55.00' }, goalReached: true });
    expect(await balanceOf(mainId)).toBe(before - 5500n);
    const [potAccount] = await t.hub.db.query<{ kind: string; customer_id: string }>('select kind, customer_id from ledger_accounts where id = (select account_id from savings_pots where id = $1)', [potId]);
    expect(potAccount).toEqual({ kind: 'savings', customer_id: li });
    expect((await events('wallet-a', 'pot.')).map((e) => e.type)).toEqual(['pot.deposited', 'pot.deposited', 'pot.goal_reached']);

    // Locked: the withdrawal is refused and moves nothing.
    const locked = await t.api('wallet-a').post(`/v1/pots/${potId}/withdrawals`, { amount: { amount: '10.00', currency: 'CNY' } }, key());
    expect(locked.status).toBe(409);
    expect(locked.body.error.code).toBe('pot_locked');
    expect(await balanceOf(mainId)).toBe(before - 5500n);
    // A lock in force may be extended, never shortened or removed.
    const shorten = await t.api('wallet-a').patch(`/v1/pots/${potId}`, { lockedUntil: '2026-04-01T00:00:00Z' });
    expect(shorten.status).toBe(409);
    expect(shorten.body.error.code).toBe('pot_locked');
    expect((await t.api('wallet-a').patch(`/v1/pots/${potId}`, { lockedUntil: null })).body.error.code).toBe('pot_locked');
    const extended = await t.api('wallet-a').patch(`/v1/pots/${potId}`, { lockedUntil: '2026-06-02T00:00:00Z', name: 'Chengdu' });
    expect(extended.status, JSON.stringify(extended.body)).toBe(200);
    expect(extended.body).toMatchObject({ name: 'Chengdu', lockedUntil: '2026-06-02T00:00:00.000Z', locked: true });
    // Another wallet cannot name the pot; more than the account holds is refused.
    expect((await t.api('wallet-b').post(`/v1/pots/${potId}/deposits`, { amount: { amount: '1.00', currency: 'CNY' } }, key())).status).toBe(404);
    const tooMuch = await t.api('wallet-a').post(`/v1/pots/${potId}/deposits`, { amount: { amount: '99999999.00', currency: 'CNY' } }, key());
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error.code).toBe('insufficient_funds');

    // Wallet B's record of 李伟, linked to wallet A's with consent on both sides, sees the pot (read only).
    const liB = cus('li-at-wallet-b');
    expect((await t.api('wallet-b').get(`/v1/pots?customerId=${liB}`)).body.items).toEqual([]);
    const link = await t.api('wallet-b').post('/v1/customer-links', { customerId: liB, participantId: demoParticipantId('wallet-a') }, key());
    expect(link.status, JSON.stringify(link.body)).toBe(201);
    const confirmed = await t.api('wallet-b').post(`/v1/customer-links/consents/${link.body.id as string}/confirm`, { code: await openSentCode(t.hub, 'customer_link.consent_requested', link.body.id) });
    expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(201);
    const seen = await t.api('wallet-b').get(`/v1/pots?customerId=${liB}`);
    expect(seen.body.items).toHaveLength(1);
    expect(seen.body.items[0]).toMatchObject({ id: potId, own: false, holderParticipantId: demoParticipantId('wallet-a'), balance: { amount: '55.00' } });

    // Past the lock date the money comes back.
    clock.advance(90 * 86_400_000);
    const out = await t.api('wallet-a').post(`/v1/pots/${potId}/withdrawals`, { amount: { amount: '55.00', currency: 'CNY' } }, key());
    expect(out.status, JSON.stringify(out.body)).toBe(201);
    expect(out.body).toMatchObject({ balance: { amount: '0.00' }, locked: false });
    expect(await balanceOf(mainId)).toBe(before);
    const overdraw = await t.api('wallet-a').post(`/v1/pots/${potId}/withdrawals`, { amount: { amount: '0.01', currency: 'CNY' } }, key());
    expect(overdraw.body.error.code).toBe('insufficient_funds');
  });

  it('coupons, rewards and insights: the best coupon shown and applied, its limit and expiry enforced; points and capped cashback earned at capture, reversed on refund, redeemed', async () => {
    const liB = card.b.customerId;
    const bank = t.api('bank-a');
    const merchant = t.api('merchant-a');
    const wallet = t.api('wallet-b');
    // Bank A's rules for the debit product: 1 point per 1.00; 2 % cashback capped at 0.50 a month.
    const points = await bank.post(`/v1/card-products/${PRODUCT}/reward-rules`, { kind: 'points', pointsPerUnit: 1 }, key());
    expect(points.status, JSON.stringify(points.body)).toBe(201);
    const cash = await bank.post(`/v1/card-products/${PRODUCT}/reward-rules`, { kind: 'cashback', cashbackBps: 200, monthlyCap: '0.50' }, key());
    expect(cash.body).toMatchObject({ kind: 'cashback', cashbackBps: 200, monthlyCap: '0.50' });
    expect((await t.api('bank-b').post(`/v1/card-products/${PRODUCT}/reward-rules`, { kind: 'points', pointsPerUnit: 1 }, key())).status).toBe(404);
    expect((await bank.post(`/v1/card-products/${PRODUCT}/reward-rules`, { kind: 'points', cashbackBps: 5 }, key())).body.error.code).toBe('reward_rule_invalid');

    // Merchant A's coupons: 5.00 off from 20.00 (once per customer), 10 % off (twice), one for 50 points, one about to lapse.
    const c = async (body: Record<string, unknown>) => {
      const r = await merchant.post(`/v1/merchants/${MERCHANT}/coupons`, { expiresAt: '2026-12-31T00:00:00Z', ...body }, key());
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.id as string;
    };
    const fiveOff = await c({ name: '5 off 20', amountOff: '5.00', minSpend: '20.00', perCustomerLimit: 1 });
    const tenPct = await c({ name: '10% off', percentOff: 10, perCustomerLimit: 2 });
    const forPoints = await c({ name: 'Free coffee', amountOff: '8.00', perCustomerLimit: 1, pointsCost: 50 });
    const lapsing = await c({ name: 'Today only', amountOff: '1.00', perCustomerLimit: 1, expiresAt: new Date(clock.nowMs() + 60_000).toISOString() });
    expect((await merchant.post(`/v1/merchants/${MERCHANT}/coupons`, { name: 'bad', amountOff: '1.00', percentOff: 5, perCustomerLimit: 1, expiresAt: '2026-12-31T00:00:00Z' }, key())).body.error.code).toBe('coupon_invalid');
    const offers = await wallet.get('/v1/offers');
    expect(offers.body.coupons.map((x: { id: string }) => x.id)).toEqual(expect.arrayContaining([fiveOff, tenPct, lapsing]));
    expect(offers.body.coupons.map((x: { id: string }) => x.id)).not.toContain(forPoints);
    for (const id of [fiveOff, tenPct]) expect((await wallet.post('/v1/wallet/coupons', { customerId: liB, couponId: id }, key())).status).toBe(201);
    expect((await wallet.post('/v1/wallet/coupons', { customerId: liB, couponId: fiveOff }, key())).body.error.code).toBe('coupon_already_held');
    expect((await wallet.post('/v1/wallet/coupons', { customerId: liB, couponId: forPoints }, key())).body.error.code).toBe('coupon_not_applicable');
    clock.advance(120_000);
    const expired = await wallet.post('/v1/wallet/coupons', { customerId: liB, couponId: lapsing }, key());
    expect(expired.status).toBe(410);
    expect(expired.body.error.code).toBe('coupon_expired');
    // A membership card of merchant A's club, shown at its counter.
    const club = await merchant.post(`/v1/merchants/${MERCHANT}/membership-programs`, { name: 'Best Transit Club' }, key());
    expect((await wallet.post('/v1/wallet/memberships', { customerId: liB, programId: club.body.id }, key())).status).toBe(201);
    expect((await wallet.post('/v1/wallet/memberships', { customerId: liB, programId: club.body.id }, key())).body.error.code).toBe('membership_exists');

    // Before paying 100.00: the best coupon (10 % beats 5.00 off) and the membership card.
    const qr = await merchant.post(`/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'static' }, key());
    const preview = await wallet.post('/v1/wallet/offers/preview', { customerId: liB, payload: qr.body.payload, amount: { amount: '100.00', currency: 'CNY' } });
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    expect(preview.body).toMatchObject({ merchantId: MERCHANT, amountDue: { amount: '100.00' }, coupon: { name: '10% off', discount: { amount: '10.00' } }, amountToPay: { amount: '90.00' } });
    expect(preview.body.memberships[0].program.name).toBe('Best Transit Club');
    const fundingBefore = await balanceOf(card.fundingAccountId);
    const pay = (amountMinor: bigint, amount: string, extra: Record<string, unknown> = {}) =>
      wallet.post('/v1/wallet/payments/qr', { payload: qr.body.payload, amount: { amount, currency: 'CNY' }, customerId: liB, source: tokenSource(card.b, { amountMinor, now: clock.now() }), ...extra }, key());
    const p1 = await pay(10_000n, '100.00');
    expect(p1.status, JSON.stringify(p1.body)).toBe(201);
    expect(p1.body.amount).toEqual({ amount: '90.00', currency: 'CNY' });
    expect(await balanceOf(card.fundingAccountId)).toBe(fundingBefore - 9000n);
    // 30.00: 5.00 off now beats 10 % (3.00).
    const p2 = await pay(3000n, '30.00');
    expect(p2.body.amount).toEqual({ amount: '25.00', currency: 'CNY' });
    // The 5.00 coupon was used once, its limit: naming it again is refused, and nothing is paid.
    const held = await wallet.get(`/v1/wallet/coupons?customerId=${liB}`);
    const fiveHeld = held.body.coupons.find((w: { coupon: { id: string } }) => w.coupon.id === fiveOff);
    expect(fiveHeld).toMatchObject({ uses: 1, usesLeft: 0, usable: false });
    const over = await pay(3000n, '30.00', { walletCouponId: fiveHeld.id });
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('coupon_limit_reached');
    expect(await balanceOf(card.fundingAccountId)).toBe(fundingBefore - 11_500n);
    // The merchant's owner heard of the coupon in the authorization event.
    const authorized = (await events('merchant-a', 'payment.authorized')).filter((e) => e.payload.coupon !== undefined);
    expect(authorized.map((e) => (e.payload.coupon as { discount: { amount: string } }).discount.amount)).toEqual(['10.00', '5.00']);

    // Rewards: 90 + 25 points; cashback 2 % of 90.00 = 1.80, capped at 0.50 for the month.
    const rewards = await bank.get(`/v1/cards/${card.cardId}/rewards`);
    expect(rewards.status).toBe(200);
    expect(rewards.body).toMatchObject({ points: '115', cashback: [{ amount: '0.50', currency: 'CNY' }] });
    expect((await t.api('bank-b').get(`/v1/cards/${card.cardId}/rewards`)).status).toBe(404);
    // Every wallet holding the card sees the same balance through its own token, with no payment named; not another's token.
    for (const tok of [card.a, card.b]) {
      const seen = await t.api(tok.wallet).get(`/v1/wallet/tokens/${tok.tokenRef}/rewards`);
      expect(seen.status, JSON.stringify(seen.body)).toBe(200);
      expect(seen.body).toMatchObject({ cardId: null, points: '115', cashback: [{ amount: '0.50', currency: 'CNY' }] });
      expect(seen.body.entries.every((e: { paymentId: string | null }) => e.paymentId === null)).toBe(true);
    }
    expect((await t.api('wallet-a').get(`/v1/wallet/tokens/${card.b.tokenRef}/rewards`)).status).toBe(404);
    // A refund of half the first payment takes back half its points and cashback.
    const refund = await merchant.post(`/v1/payments/${p1.body.id as string}/refunds`, { amount: '45.00' }, key());
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    const afterRefund = await bank.get(`/v1/cards/${card.cardId}/rewards`);
    expect(afterRefund.body).toMatchObject({ points: '70', cashback: [{ amount: '0.25', currency: 'CNY' }] });
    expect((await events('bank-a', 'reward.')).map((e) => e.type)).toEqual(['reward.earned', 'reward.earned', 'reward.earned', 'reward.reversed', 'reward.reversed']);

    // Redemption: cashback into the card's account from bank A's position; more than the balance is refused.
    const fundingMid = await balanceOf(card.fundingAccountId);
    const tooMuch = await bank.post(`/v1/cards/${card.cardId}/rewards/redemptions`, { kind: 'cashback', amount: { amount: '0.26', currency: 'CNY' } }, key());
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error.code).toBe('rewards_insufficient');
    const cashback = await bank.post(`/v1/cards/${card.cardId}/rewards/redemptions`, { kind: 'cashback', amount: { amount: '0.25', currency: 'CNY' } }, key());
    expect(cashback.status, JSON.stringify(cashback.body)).toBe(201);
    expect(cashback.body.balance.cashback).toEqual([{ amount: '0.00', currency: 'CNY' }]);
    expect(await balanceOf(card.fundingAccountId)).toBe(fundingMid + 25n);
    const [transfer] = await t.hub.db.query<{ debit_account_id: string }>('select debit_account_id from ledger_transfers where id = $1', [cashback.body.transferId]);
    expect(transfer?.debit_account_id).toBe(`fund_${demoParticipantId('bank-a')}_CNY`);
    // Points for the merchant's coupon: 50 of 70, into bank A's customer's wallet.
    const coupon = await bank.post(`/v1/cards/${card.cardId}/rewards/redemptions`, { kind: 'coupon', couponId: forPoints, customerId: cus('li-at-bank-a') }, key());
    expect(coupon.status, JSON.stringify(coupon.body)).toBe(201);
    expect(coupon.body).toMatchObject({ balance: { points: '20' }, walletCoupon: { source: 'points', coupon: { id: forPoints } } });
    const notEnough = await bank.post(`/v1/cards/${card.cardId}/rewards/redemptions`, { kind: 'coupon', couponId: forPoints, customerId: cus('li-at-bank-a') }, key());
    expect(notEnough.body.error.code).toBe('rewards_insufficient');

    // A decline (a risk rule stops a large amount) is counted for the issuer's insights.
    const declined = await pay(5_000_000_00n, '5000000.00', { applyCoupon: false });
    expect(declined.status, JSON.stringify(declined.body)).toBe(403);
    expect(declined.body.error.code).toBe('risk_declined');
    const insights = await bank.get('/v1/issuer/insights');
    expect(insights.status, JSON.stringify(insights.body)).toBe(200);
    expect(insights.body.byMerchant).toEqual([expect.objectContaining({ key: MERCHANT, count: 2, spend: { amount: '70.00', currency: 'CNY' } })]);
    expect(insights.body.byWallet).toEqual([expect.objectContaining({ key: demoParticipantId('wallet-b'), spend: { amount: '70.00', currency: 'CNY' } })]);
    expect(insights.body.byChannel).toEqual([expect.objectContaining({ key: 'mpm_static', count: 2 })]);
    expect(insights.body.declines).toEqual([expect.objectContaining({ reason: 'risk_declined', count: 1 })]);
    // Bank B issued none of these cards: it sees nothing of them.
    const other = await t.api('bank-b').get('/v1/issuer/insights');
    expect(other.body).toMatchObject({ byMerchant: [], byWallet: [], declines: [] });
  });

  it('a tapped payment earns nothing while authorized and earns when the merchant captures it (cashback within what the cap has left)', async () => {
    const before = (await t.api('bank-a').get(`/v1/cards/${card.cardId}/rewards`)).body;
    const tap = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/payments/tap`, tapBody(card.a, { amountMinor: 1000n, amount: '10.00', now: clock.now() }), key());
    expect(tap.status, JSON.stringify(tap.body)).toBe(201);
    expect(tap.body.status).toBe('authorized');
    expect((await t.api('bank-a').get(`/v1/cards/${card.cardId}/rewards`)).body.points).toBe(before.points);
    const captured = await t.api('merchant-a').post(`/v1/payments/${tap.body.id as string}/capture`, {}, key());
    expect(captured.status, JSON.stringify(captured.body)).toBe(200);
    const after = (await t.api('bank-a').get(`/v1/cards/${card.cardId}/rewards`)).body;
    expect(BigInt(after.points) - BigInt(before.points)).toBe(10n);
    // The month's cashback: 0.50 earned, 0.25 taken back by the refund: 0.25 of the cap is left; 2 % of 10.00 is 0.20.
    expect(after.cashback).toEqual([{ amount: '0.20', currency: 'CNY' }]);
  });

  it('a payment link applies the best coupon too, shown first by the preview; applyCoupon false applies none', async () => {
    // 3.50 off: more than the 10 % coupon kept earlier (3.00 of 30.00), so the best is this one.
    const coupon = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/coupons`, { name: 'Link deal', amountOff: '3.50', minSpend: '25.00', perCustomerLimit: 5, expiresAt: '2026-12-31T00:00:00Z' }, key());
    expect((await t.api('wallet-b').post('/v1/wallet/coupons', { customerId: card.b.customerId, couponId: coupon.body.id }, key())).status).toBe(201);
    const link = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/payment-links`, { amount: { amount: '30.00', currency: 'CNY' }, description: 'Tickets', expiresInS: 3600, multipleUse: true }, key());
    expect(link.status).toBe(201);
    const preview = await t.api('wallet-b').post('/v1/wallet/offers/preview', { customerId: card.b.customerId, linkId: link.body.id });
    expect(preview.body).toMatchObject({ amountDue: { amount: '30.00' }, coupon: { couponId: coupon.body.id, discount: { amount: '3.50' } }, amountToPay: { amount: '26.50' } });
    const account = `acc_${card.b.customerId}_CNY`;
    const paid = await t.api('wallet-b').post(`/v1/payment-links/${link.body.id as string}/pay`, { customerId: card.b.customerId, source: { type: 'account', accountId: account } }, key());
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    expect(paid.body.amount).toEqual({ amount: '26.50', currency: 'CNY' });
    const full = await t.api('wallet-b').post(`/v1/payment-links/${link.body.id as string}/pay`, { customerId: card.b.customerId, source: { type: 'account', accountId: account }, applyCoupon: false }, key());
    expect(full.body.amount).toEqual({ amount: '30.00', currency: 'CNY' });
    // Another customer's kept coupon cannot be named.
    expect((await t.api('wallet-a').post('/v1/wallet/offers/preview', { customerId: cus('li-at-wallet-a'), linkId: link.body.id, walletCouponId: 'wcp_unknown' })).status).toBe(404);
  });

  it('two payments racing for a coupon with one use left: one gets the discount, the other is refused and pays nothing', async () => {
    const coupon = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/coupons`, { name: 'Once', amountOff: '2.00', perCustomerLimit: 1, expiresAt: '2026-12-31T00:00:00Z' }, key());
    const kept = await t.api('wallet-b').post('/v1/wallet/coupons', { customerId: card.b.customerId, couponId: coupon.body.id }, key());
    expect(kept.status).toBe(201);
    const qr = await t.api('merchant-a').post(`/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'static' }, key());
    // From 李伟's own account at wallet B (two card cryptograms racing would also race for the token's counter).
    const account = `acc_${card.b.customerId}_CNY`;
    const funding = await balanceOf(account);
    const results = await Promise.all(
      [1, 2].map(() => t.api('wallet-b').post('/v1/wallet/payments/qr', { payload: qr.body.payload, amount: { amount: '10.00', currency: 'CNY' }, customerId: card.b.customerId, source: { type: 'account', accountId: account }, walletCouponId: kept.body.id }, key())),
    );
    expect(results.map((r) => r.status).sort(), JSON.stringify(results.map((r) => r.body))).toEqual([201, 409]);
    expect(results.find((r) => r.status === 409)?.body.error.code).toBe('coupon_limit_reached');
    expect(results.find((r) => r.status === 201)?.body.amount).toEqual({ amount: '8.00', currency: 'CNY' });
    expect(await balanceOf(account)).toBe(funding - 800n);
    const [row] = await t.hub.db.query<{ uses: number }>('select uses from wallet_coupons where id = $1', [kept.body.id]);
    expect(row?.uses).toBe(1);
  });
});

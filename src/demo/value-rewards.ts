import type { CliIo } from '../cli/index.ts';
import { cardInTwoWallets, tokenSource, type CardInTwoWallets } from './fixtures.ts';
import { expectStatus, openDemoHarness, type DemoHarness } from './harness.ts';
import type { DemoScenario } from './run.ts';
import { demoParticipantId } from './seed.ts';

const MERCHANT = 'mer_demo_merchant_a';
const PRODUCT = 'cpr_demo_bank_a_debit';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Value beyond paying, told against a demo hub (steps only; the caller opens and closes the harness): issuers' rewards
 * and insights, merchants' coupons and membership cards applied to a wallet payment, and savings pots — each with its
 * failure path (a locked pot, an expired coupon, a coupon over its limit, rewards past the balance).
 */
export async function runValueRewardsStory(h: DemoHarness): Promise<void> {
  const cus = (k: string) => h.demo.customers.get(k) ?? k;
  let n = 0;
  const key = () => ({ 'idempotency-key': `demo-value-${Date.now()}-${++n}` });
  let card: CardInTwoWallets | undefined;
  const c = () => {
    if (card === undefined) throw new Error('no card');
    return card;
  };
  const coupons: Record<string, string> = {};
  let qrPayload = '';
  let firstPayment = '';

  await h.step('李伟 opens a savings pot "Trip to Chengdu" at Lantern Pay (goal ¥50.00, locked for a year) and saves ¥55.00: the goal is reached', async () => {
    const lockedUntil = new Date(Date.now() + 365 * 86_400_000).toISOString();
    const pot = expectStatus(await h.call('wallet-a', 'POST', '/v1/pots', { customerId: cus('li-at-wallet-a'), name: 'Trip to Chengdu', currency: 'CNY', goal: '50.00', lockedUntil }, key()), 201, 'pot');
    expectStatus(await h.call('wallet-a', 'POST', `/v1/pots/${pot.id}/deposits`, { amount: { amount: '30.00', currency: 'CNY' } }, key()), 201, 'deposit');
    const after = expectStatus(await h.call('wallet-a', 'POST', `/v1/pots/${pot.id}/deposits`, { amount: { amount: '25.00', currency: 'CNY' } }, key()), 201, 'deposit');
    const locked = await h.call('wallet-a', 'POST', `/v1/pots/${pot.id}/withdrawals`, { amount: { amount: '10.00', currency: 'CNY' } }, key());
    const free = expectStatus(await h.call('wallet-a', 'POST', '/v1/pots', { customerId: cus('li-at-wallet-a'), name: 'Rainy day', currency: 'CNY' }, key()), 201, 'pot');
    expectStatus(await h.call('wallet-a', 'POST', `/v1/pots/${free.id}/deposits`, { amount: { amount: '8.00', currency: 'CNY' } }, key()), 201, 'deposit');
    const back = expectStatus(await h.call('wallet-a', 'POST', `/v1/pots/${free.id}/withdrawals`, { amount: { amount: '3.00', currency: 'CNY' } }, key()), 201, 'withdraw');
    return after.goalReached === true && locked.status === 409 && locked.body.error?.code === 'pot_locked' && back.balance.amount === '5.00'
      ? `pot ${pot.id}: ${after.balance.amount} CNY of ${after.goal.amount} (goal reached); a withdrawal before ${lockedUntil.slice(0, 10)} → ${locked.status} pot_locked\nunlocked pot "Rainy day": in 8.00, out 3.00, holds ${back.balance.amount}`
      : false;
  });

  await h.step('Bank A sets rewards on its debit card: 1 point per ¥1.00, 2 % cashback capped at ¥0.50 a month', async () => {
    const points = expectStatus(await h.call('bank-a', 'POST', `/v1/card-products/${PRODUCT}/reward-rules`, { kind: 'points', pointsPerUnit: 1 }, key()), 201, 'points rule');
    const cash = expectStatus(await h.call('bank-a', 'POST', `/v1/card-products/${PRODUCT}/reward-rules`, { kind: 'cashback', cashbackBps: 200, monthlyCap: '0.50' }, key()), 201, 'cashback rule');
    card = await cardInTwoWallets(h.hub, (as, method, path, body, headers) => h.call(as, method, path, body, headers));
    return `rules ${points.id} (points), ${cash.id} (cashback, cap ${cash.monthlyCap}); card ${card.cardId} in wallets A and B`;
  });

  await h.step('Merchant A (最佳运输) publishes coupons (¥5 off from ¥20 once; 10 % off twice; a coffee for 50 points) and a membership club; wallet B keeps them', async () => {
    const coupon = async (name: string, body: Record<string, unknown>) =>
      (coupons[name] = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/coupons`, { name, expiresAt: new Date(Date.now() + 30 * 86_400_000).toISOString(), ...body }, key()), 201, 'coupon').id);
    await coupon('¥5 off ¥20', { amountOff: '5.00', minSpend: '20.00', perCustomerLimit: 1 });
    await coupon('10% off', { percentOff: 10, perCustomerLimit: 2 });
    await coupon('Free coffee', { amountOff: '8.00', perCustomerLimit: 1, pointsCost: 50 });
    for (const name of ['¥5 off ¥20', '10% off']) expectStatus(await h.call('wallet-b', 'POST', '/v1/wallet/coupons', { customerId: c().b.customerId, couponId: coupons[name] }, key()), 201, 'keep');
    const club = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/membership-programs`, { name: 'Best Transit Club' }, key()), 201, 'club');
    const member = expectStatus(await h.call('wallet-b', 'POST', '/v1/wallet/memberships', { customerId: c().b.customerId, programId: club.id }, key()), 201, 'join');
    return `wallet B keeps 2 coupons and membership card ${member.memberNumber} of ${club.name}`;
  });

  await h.step('a coupon that lapsed is refused: coupon_expired', async () => {
    const id = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/coupons`, { name: 'Flash sale', amountOff: '1.00', perCustomerLimit: 1, expiresAt: new Date(Date.now() + 1_500).toISOString() }, key()), 201, 'coupon').id;
    await sleep(1_600);
    const r = await h.call('wallet-b', 'POST', '/v1/wallet/coupons', { customerId: c().b.customerId, couponId: id }, key());
    return r.status === 410 && r.body.error?.code === 'coupon_expired' ? `${r.status} coupon_expired` : false;
  });

  await h.step('before paying ¥100.00 at merchant A, wallet B shows the best coupon (10 % beats ¥5 off): ¥90.00 to pay; paid, then ¥30.00 with ¥5 off', async () => {
    qrPayload = expectStatus(await h.call('merchant-a', 'POST', `/v1/merchants/${MERCHANT}/qr-codes`, { kind: 'static' }, key()), 201, 'qr').payload;
    const preview = expectStatus(await h.call('wallet-b', 'POST', '/v1/wallet/offers/preview', { customerId: c().b.customerId, payload: qrPayload, amount: { amount: '100.00', currency: 'CNY' } }), 200, 'preview');
    const pay = async (amountMinor: bigint, amount: string) =>
      expectStatus(await h.call('wallet-b', 'POST', '/v1/wallet/payments/qr', { payload: qrPayload, amount: { amount, currency: 'CNY' }, customerId: c().b.customerId, source: tokenSource(c().b, { amountMinor, now: new Date() }) }, key()), 201, 'pay');
    const p1 = await pay(10_000n, '100.00');
    firstPayment = p1.id;
    const p2 = await pay(3_000n, '30.00');
    return preview.coupon?.name === '10% off' && preview.amountToPay.amount === '90.00' && p1.amount.amount === '90.00' && p2.amount.amount === '25.00'
      ? `preview: ${preview.coupon.name} −${preview.coupon.discount.amount}, pay ${preview.amountToPay.amount} (member ${preview.memberships[0]?.memberNumber ?? '—'})\npaid ${p1.amount.amount} and ${p2.amount.amount} CNY`
      : false;
  });

  await h.step('the ¥5 coupon was used once, its limit: naming it again is refused with coupon_limit_reached', async () => {
    const held = expectStatus(await h.call('wallet-b', 'GET', `/v1/wallet/coupons?customerId=${c().b.customerId}`), 200, 'coupons');
    const five = held.coupons.find((w: any) => w.coupon.id === coupons['¥5 off ¥20']);
    const r = await h.call('wallet-b', 'POST', '/v1/wallet/payments/qr', { payload: qrPayload, amount: { amount: '30.00', currency: 'CNY' }, customerId: c().b.customerId, source: tokenSource(c().b, { amountMinor: 3_000n, now: new Date() }), walletCouponId: five.id }, key());
    return r.status === 409 && r.body.error?.code === 'coupon_limit_reached' ? `uses ${five.uses}/${five.coupon.perCustomerLimit} → ${r.status} coupon_limit_reached` : false;
  });

  await h.step('rewards earned at capture (115 points, cashback capped at ¥0.50); a ¥45.00 refund takes back half of the first payment’s', async () => {
    const before = expectStatus(await h.call('bank-a', 'GET', `/v1/cards/${c().cardId}/rewards`), 200, 'rewards');
    expectStatus(await h.call('merchant-a', 'POST', `/v1/payments/${firstPayment}/refunds`, { amount: '45.00' }, key()), 201, 'refund');
    const after = expectStatus(await h.call('bank-a', 'GET', `/v1/cards/${c().cardId}/rewards`), 200, 'rewards');
    return before.points === '115' && before.cashback[0]?.amount === '0.50' && after.points === '70' && after.cashback[0]?.amount === '0.25'
      ? `before the refund: ${before.points} points, ${before.cashback[0].amount} CNY cashback; after: ${after.points} points, ${after.cashback[0].amount} CNY`
      : false;
  });

  await h.step('redemptions: ¥0.26 of cashback is refused (rewards_insufficient); ¥0.25 is paid into the card’s account from Bank A’s position; 50 points buy the coffee coupon', async () => {
    const tooMuch = await h.call('bank-a', 'POST', `/v1/cards/${c().cardId}/rewards/redemptions`, { kind: 'cashback', amount: { amount: '0.26', currency: 'CNY' } }, key());
    const cash = expectStatus(await h.call('bank-a', 'POST', `/v1/cards/${c().cardId}/rewards/redemptions`, { kind: 'cashback', amount: { amount: '0.25', currency: 'CNY' } }, key()), 201, 'cashback');
    const coffee = expectStatus(await h.call('bank-a', 'POST', `/v1/cards/${c().cardId}/rewards/redemptions`, { kind: 'coupon', couponId: coupons['Free coffee'], customerId: cus('li-at-bank-a') }, key()), 201, 'coupon');
    return tooMuch.body.error?.code === 'rewards_insufficient' && cash.transferId !== null && coffee.balance.points === '20'
      ? `0.26 → ${tooMuch.status} rewards_insufficient; cashback transfer ${cash.transferId}; coupon ${coffee.walletCoupon.coupon.name} kept, ${coffee.balance.points} points left`
      : false;
  });

  await h.step('Bank A’s insights over its own cards (spend by category, merchant, channel, wallet); Bank B sees none of them', async () => {
    const mine = expectStatus(await h.call('bank-a', 'GET', '/v1/issuer/insights'), 200, 'insights');
    const theirs = expectStatus(await h.call('bank-b', 'GET', '/v1/issuer/insights'), 200, 'insights');
    const line = (rows: any[]) => rows.map((r) => `${r.name ?? r.key} ${r.spend.amount} ${r.spend.currency} (${r.count})`).join('; ');
    const walletB = demoParticipantId('wallet-b');
    return mine.byMerchant.some((m: any) => m.key === MERCHANT) && mine.byWallet.some((w: any) => w.key === walletB) && !theirs.byMerchant.some((m: any) => m.key === MERCHANT && m.count === 2)
      ? `by category: ${line(mine.byCategory)}\nby merchant: ${line(mine.byMerchant)}\nby channel: ${line(mine.byChannel)}\nby wallet: ${line(mine.byWallet)}`
      : false;
  });

  await h.step('the books balance', async () => {
    const v = await h.hub.ledger.checkInvariants();
    return v.length === 0 ? 'no invariant violations' : false;
  });
}

/** The story on its own fresh embedded hub (`hutong demo value` may run it with the other value stories). */
export const valueRewardsScenario: DemoScenario = {
  name: 'value-rewards',
  summary: 'savings pots with a lock, merchants’ coupons applied at payment, issuers’ rewards (earned, reversed, redeemed) and insights',
  async run(io: CliIo) {
    const h = await openDemoHarness(io);
    try {
      await runValueRewardsStory(h);
    } finally {
      await h.close();
    }
    return h.ok;
  },
};

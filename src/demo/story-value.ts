import type { CliIo } from '../cli/index.ts';
import { signOfflinePayment } from '../offline/index.ts';
import { expectStatus, openDemoHarness, type DemoHarness } from './harness.ts';
import type { DemoScenario } from './run.ts';
import { valueCreditStory } from './value-credit.ts';
import { runValueRewardsStory } from './value-rewards.ts';

/**
 * Offline small payments, told against a demo hub: 李伟's phone (a fresh ECDSA P-256 key, as the reference wallet makes
 * one in the browser) gets an offline purse of ¥50.00 reserved at the hub, pays merchant A ¥12.30 with no network (a
 * token it signs), the merchant uploads it once online and is paid from the reserve; the same token again, and another
 * token under the same counter, are refused, and the loss stays within the reserve.
 */
export async function valueOfflineStory(h: DemoHarness): Promise<void> {
  let n = 0;
  const key = () => ({ 'idempotency-key': `demo-value-offline-${Date.now()}-${++n}` });
  const li = h.demo.customers.get('li-at-wallet-a') ?? 'li-at-wallet-a';
  const merchant = 'mer_demo_merchant_a';
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const devicePublicKey = { kty: 'EC', crv: 'P-256', x: jwk.x ?? '', y: jwk.y ?? '' };
  let purseId = '';
  let token = '';
  const sign = (ctr: number, amt: string) => signOfflinePayment(pair.privateKey, { purse: purseId, ctr, amt, cur: 'CNY', mer: merchant, iat: Math.floor(Date.now() / 1000) });

  await h.step('李伟 loads ¥50.00 as an offline balance on this phone: the hub reserves it for the device key', async () => {
    const purse = expectStatus(await h.call('wallet-a', 'POST', '/v1/offline/purses', { customerId: li, accountId: `acc_${li}_CNY`, devicePublicKey, deviceId: 'demo-phone', amount: '50.00' }, key()), 201, 'open a purse');
    purseId = purse.id;
    return purse.balance?.amount === '50.00' ? `purse ${purseId}: ${purse.balance.amount} ${purse.balance.currency} reserved (limit ${purse.limit.amount} per device)` : false;
  });
  await h.step('with no network, the phone pays merchant A ¥12.30 (a token it signs); online again, the merchant uploads it and is paid from the reserve', async () => {
    token = await sign(1, '12.30');
    const paid = expectStatus(await h.call('merchant-a', 'POST', '/v1/offline/payments', { merchantId: merchant, token }), 201, 'upload');
    const { purse } = expectStatus(await h.call('wallet-a', 'GET', `/v1/offline/purses/${purseId}`), 200, 'purse');
    return paid.amount?.amount === '12.30' && purse?.balance?.amount === '37.70' ? `payment ${paid.id} settled; ${purse.balance.amount} left in the purse` : false;
  });
  await h.step('the same token again is a replay; another token under the same counter is a double spend: both refused', async () => {
    const replay = await h.call('merchant-a', 'POST', '/v1/offline/payments', { merchantId: merchant, token });
    const reused = await h.call('merchant-a', 'POST', '/v1/offline/payments', { merchantId: merchant, token: await sign(1, '20.00') });
    return replay.body?.error?.code === 'offline_token_replayed' && reused.body?.error?.code === 'offline_counter_reused'
      ? `${replay.status} offline_token_replayed; ${reused.status} offline_counter_reused (the purse is blocked, the wallet told)`
      : false;
  });
  await h.step('the books balance', async () => ((await h.hub.ledger.checkInvariants()).length === 0 ? 'no invariant violations' : false));
}

/** Value beyond paying, in one story on one fresh hub: credit lines and disputes, rewards, coupons and pots, offline payments. */
export const valueScenario: DemoScenario = {
  name: 'value',
  summary: 'credit lines and disputes, rewards and insights, coupons and membership cards, savings pots, offline payments',
  async run(io: CliIo) {
    const h = await openDemoHarness(io);
    try {
      await valueCreditStory(h);
      await runValueRewardsStory(h);
      await valueOfflineStory(h);
    } finally {
      await h.close();
    }
    return h.ok;
  },
};

import { newDevice } from './device.ts';
import { customerAccountId } from '../accounts/index.ts';
import type { CliIo } from '../cli/index.ts';
import { tapBody, type WalletToken } from './fixtures.ts';
import { expectStatus, openDemoHarness, type DemoHarness } from './harness.ts';
import type { DemoScenario } from './run.ts';
import { demoParticipantId } from './seed.ts';

/**
 * The credit and disputes part of the `value` story, on a demo harness (a fresh embedded hub with the demo network):
 * a credit card with a 5,000.00 limit on an empty account pays from two wallets, is refused over its limit, gets a
 * statement and is repaid from the wallet; a P2P payment is disputed and refunded; a scam payment is recalled after the
 * money moved on, frozen two hops deep and refunded. Each step checks its own outcome (a false or a throw fails it).
 */
export async function valueCreditStory(h: DemoHarness, prefix = 'demo-value-credit'): Promise<void> {
  let n = 0;
  const key = () => ({ 'idempotency-key': `${prefix}-${++n}` });
  const cus = (k: string) => h.demo.customers.get(k)!;
  const tokens: WalletToken[] = [];
  let creditAccountId = '';
  let repaymentAccount = '';

  const provision = async (wallet: string, customerId: string, deviceId: string, card: { cardNumber: string; expiry: string; cvv: string }): Promise<WalletToken> => {
    const res = expectStatus(await h.call(wallet, 'POST', '/v1/wallet/tokens', { customerId, consent: true, deviceId, devicePublicKey: newDevice().publicKey, source: { type: 'typed', ...card } }, key()), 201, `add the card to ${wallet}`);
    const expiry = String(res.token.expiry);
    return { wallet, customerId, tokenRef: res.token.tokenRef, tokenNumber: res.tokenNumber, tokenKey: res.limitedUseKey.key, expiryYymm: `${expiry.slice(3, 5)}${expiry.slice(0, 2)}`, atc: 0 };
  };
  const tap = async (w: WalletToken, amount: string) => {
    const amountMinor = BigInt(amount.replace('.', ''));
    const res = await h.call('merchant-b', 'POST', '/v1/merchants/mer_demo_merchant_b/payments/tap', tapBody(w, { amount, amountMinor, currency: 'HKD', country: 'HK', now: new Date() }), key());
    if (res.status !== 201) return res;
    return h.call('merchant-b', 'POST', `/v1/payments/${res.body.id}/capture`, {}, key());
  };
  const p2p = async (wallet: string, customerId: string, handle: string, amount: string) => {
    const q = expectStatus(await h.call(wallet, 'POST', '/v1/transfers/quotes', { customerId, payee: { type: 'handle', value: handle }, sendAmount: { amount, currency: 'CNY' } }), 201, 'quote');
    return String(expectStatus(await h.call(wallet, 'POST', '/v1/transfers/payments', { quoteId: q.id }, key()), 201, 'pay').id);
  };
  const newCustomer = async (wallet: string, name: string, handle: string) => {
    const c = expectStatus(await h.call(wallet, 'POST', '/v1/customers', { externalId: `${prefix}-${handle}`, name }, key()), 201, 'customer');
    expectStatus(await h.call(wallet, 'POST', '/v1/accounts', { customerId: c.id, currency: 'CNY' }, key()), 201, 'account');
    const account = customerAccountId(c.id, 'CNY');
    expectStatus(await h.call(wallet, 'POST', '/v1/aliases', { customerId: c.id, type: 'handle', value: handle, accountId: account }, key()), 201, 'alias');
    return { id: String(c.id), account };
  };

  await h.step('Pearl River Bank issues a credit card with a 5,000.00 HKD limit to a customer whose account is empty', async () => {
    const c = expectStatus(await h.call('bank-b', 'POST', '/v1/customers', { externalId: `${prefix}-holder`, name: '张敏', phone: '+85291234567' }, key()), 201, 'customer');
    expectStatus(await h.call('bank-b', 'POST', '/v1/accounts', { customerId: c.id, currency: 'HKD' }, key()), 201, 'account');
    repaymentAccount = customerAccountId(c.id, 'HKD');
    const issued = expectStatus(await h.call('bank-b', 'POST', '/v1/issuer/cards', { productId: 'cpr_demo_bank_b_credit', customerId: c.id, fundingAccountId: repaymentAccount, creditLimit: '5000.00' }, key()), 201, 'issue');
    expectStatus(await h.call('bank-b', 'POST', `/v1/issuer/cards/${issued.card.id}/activate`, {}, key()), 200, 'activate');
    creditAccountId = issued.card.fundingAccountId;
    // The bank approves cards typed into wallets without a step-up (the demo plays the cardholder elsewhere).
    await h.hub.db.transaction((tx) =>
      h.hub.cards.walletTokens.setRules(tx, { type: 'system' }, demoParticipantId('bank-b'), { typed: 'approve', byReference: 'approve', newDevice: 'approve', keyMaxTransactions: 100, keyTtlHours: 24 }),
    );
    const data = { cardNumber: issued.cardNumber, expiry: issued.card.expiry, cvv: issued.cvv };
    tokens.push(await provision('wallet-b', cus('zhang-at-wallet-b'), `${prefix}-phone-b`, data));
    const kite = expectStatus(await h.call('wallet-c', 'POST', '/v1/customers', { externalId: `${prefix}-zhang`, name: '张敏', phone: '+85291234567' }, key()), 201, 'wallet customer');
    tokens.push(await provision('wallet-c', kite.id, `${prefix}-phone-c`, data));
    return `card ${issued.card.maskedNumber} spends from its own credit line ${creditAccountId} (repayments from ${repaymentAccount}); added to Jade Wallet and Kite Wallet`;
  });

  await h.step('it pays 1,200.00 at Harbour Tea House from Jade Wallet; both wallets show 3,800.00 available', async () => {
    const paid = await tap(tokens[0]!, '1200.00');
    if (paid.status !== 200) throw new Error(`pay: ${paid.status} ${JSON.stringify(paid.body)}`);
    const shown = await Promise.all(tokens.map(async (t) => expectStatus(await h.call(t.wallet, 'GET', `/v1/wallet/tokens/${t.tokenRef}`), 200, 'token').credit));
    return shown.every((c) => c.available.amount === '3800.00') ? shown.map((c, i) => `${tokens[i]!.wallet}: limit ${c.limit.amount}, owed ${c.owed.amount}, available ${c.available.amount} ${c.available.currency}`).join('\n') : false;
  });

  await h.step('3,800.01 from Kite Wallet is over the limit: exceeds_credit_limit', async () => {
    const over = await tap(tokens[1]!, '3800.01');
    return over.body?.error?.code === 'exceeds_credit_limit' ? `HTTP ${over.status} ${over.body.error.code}: ${over.body.error.message}` : false;
  });

  await h.step('the bank closes a statement: balance, minimum payment, due date; the wallets show it', async () => {
    const s = expectStatus(await h.call('bank-b', 'POST', `/v1/issuer/credit-lines/${creditAccountId}/statements`, {}, key()), 201, 'statement');
    const inWallet = expectStatus(await h.call('wallet-c', 'GET', `/v1/wallet/tokens/${tokens[1]!.tokenRef}`), 200, 'token').credit.statement;
    return inWallet?.id === s.id ? `balance ${s.balance.amount}, minimum ${s.minimumPayment.amount}, due ${s.dueAt.slice(0, 10)} (${s.status})` : false;
  });

  await h.step('张敏 repays the minimum from her Jade Wallet balance (between participants, through both positions)', async () => {
    const wallet = cus('zhang-at-wallet-b');
    const opened = await h.call('wallet-b', 'POST', '/v1/accounts', { customerId: wallet, currency: 'HKD' }, key());
    if (opened.status !== 201 && opened.body?.error?.code !== 'customer_account_exists') throw new Error(`account: ${opened.status}`);
    const account = customerAccountId(wallet, 'HKD');
    expectStatus(await h.call('wallet-b', 'POST', `/v1/accounts/${account}/deposits`, { amount: { amount: '500.00', currency: 'HKD' } }, key()), 201, 'deposit');
    const r = expectStatus(await h.call('wallet-b', 'POST', '/v1/wallet/credit-repayments', { customerId: wallet, tokenRef: tokens[0]!.tokenRef, fromAccountId: account, amount: { amount: '60.00', currency: 'HKD' } }, key()), 201, 'repay');
    return r.statementStatus === 'minimum_paid' ? `repaid ${r.amount.amount}; still owed ${r.owed.amount}; statement ${r.statementStatus}` : false;
  });

  const li = cus('li-at-wallet-a');
  await h.step('李伟 disputes a ¥60.00 P2P payment to a shop; the shop’s wallet refunds it from the shop’s account', async () => {
    await newCustomer('wallet-b', 'Online Shop', `${prefix}.shop`.replace(/-/g, '.'));
    const paymentId = await p2p('wallet-a', li, `${prefix}.shop`.replace(/-/g, '.'), '60.00');
    const d = expectStatus(await h.call('wallet-a', 'POST', '/v1/wallet/disputes', { customerId: li, transferId: paymentId, reason: 'item not as described' }, key()), 201, 'dispute');
    const done = expectStatus(await h.call('wallet-b', 'POST', `/v1/disputes/${d.id}/accept`, { evidence: 'seller agrees to refund' }, key()), 200, 'accept');
    return done.status === 'refunded' ? done.steps.map((s: { action: string; participantId: string }) => `${s.action} by ${s.participantId}`).join('; ') : false;
  });

  await h.step('a scam: 李伟 pays ¥500.00, the scammer moves ¥300.00 on; the recall freezes both parts and refunds him', async () => {
    const scam = `${prefix}.scam`.replace(/-/g, '.');
    const mule = `${prefix}.mule`.replace(/-/g, '.');
    const scammer = await newCustomer('wallet-b', 'Scammer', scam);
    await newCustomer('wallet-c', 'Mule', mule);
    const paymentId = await p2p('wallet-a', li, scam, '500.00');
    await p2p('wallet-b', scammer.id, mule, '300.00');
    const r = expectStatus(await h.call('wallet-a', 'POST', '/v1/wallet/recalls', { customerId: li, transferId: paymentId, reason: 'scam call' }, key()), 201, 'recall');
    const frozen = r.holds.map((x: { hop: number; amount: { amount: string }; ownerParticipantId: string }) => `hop ${x.hop}: ${x.amount.amount} at ${x.ownerParticipantId}`).join(', ');
    const done = expectStatus(await h.call('wallet-b', 'POST', `/v1/recalls/${r.id}/analysis`, { decision: 'accept', evidence: 'account opened with a stolen identity' }, key()), 200, 'analysis');
    return done.status === 'refunded' && r.holds.length === 2 ? `frozen ${r.frozen.amount} (${frozen}); analysis due ${r.analysisDueAt.slice(0, 10)}, refund due ${r.refundDueAt.slice(0, 10)} → refunded ${done.refunded.amount}` : false;
  });

  await h.step('the books balance', async () => ((await h.hub.ledger.checkInvariants()).length === 0 ? 'no invariant violations' : false));
}

/** The story on its own fresh hub (what `hutong demo value` runs with the other parts). */
export const valueCreditScenario: DemoScenario = {
  name: 'value-credit',
  summary: 'credit card lines in any wallet, statements and repayment; disputes and fraud recall',
  async run(io: CliIo) {
    const h = await openDemoHarness(io);
    try {
      await valueCreditStory(h);
    } finally {
      await h.close();
    }
    return h.ok;
  },
};

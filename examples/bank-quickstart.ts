/**
 * The bank (issuer) quickstart (docs/guides/quickstart-bank.md), as one script, as bank-a:
 *   1. a card product (a BIN range);
 *   2. a customer, their account, and cash into it (the card's funding);
 *   3. a card on that account, activated; your provisioning rules; a wallet adds the card (token.provisioned webhook);
 *   4. your decisions: hosted holds on the funding account, or your own real-time authorization endpoint;
 *   5. suspend (and resume) one wallet's token, then cancel the card.
 * The wallet and the shop are played by wallet-a and merchant-a, as in the other quickstarts.
 *
 *   npm start     # in another terminal
 *   npx tsx examples/bank-quickstart.ts
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { idempotencyKey, merchantQrFields, tokenPaymentSource, verifyWebhook, type HutongClient } from '../packages/sdk/src/index.ts';
import { clientFor, errorCode, isEvent, must, runIfMain, type QuickstartEnv } from './support.ts';
import { withWebhooks } from './support.ts';
import { addCard, type WalletToken } from './wallet-quickstart.ts';

const PRODUCT_NAME = 'Quickstart debit';

/**
 * The bank's real-time authorization endpoint: the hub POSTs `{ type: "authorization.request", data }`, signed like a
 * webhook with the bank's secret, and waits (deadlineMs) for `{ "decision": "approve" }` or
 * `{ "decision": "decline", "reason": "…" }`. This one approves up to 100.00 and declines above.
 */
async function startAuthorizationEndpoint(secrets: readonly string[]) {
  const seen: { amount: string; currency: string; merchant: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(req.headers).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v]] : [])));
      if (!verifyWebhook(secrets, headers, raw).ok) {
        res.statusCode = 401;
        res.end();
        return;
      }
      const { data } = JSON.parse(raw) as { data: { amount: { amount: string; currency: string }; merchant: { name: string } } };
      seen.push({ ...data.amount, merchant: data.merchant.name });
      const approve = Number(data.amount.amount) <= 100;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(approve ? { decision: 'approve' } : { decision: 'decline', reason: 'over_quickstart_limit' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/authorize`, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The wallet pays the shop's QR code with its token (as in the wallet quickstart). */
async function payAtShop(wallet: HutongClient, shop: HutongClient, customerId: string, token: WalletToken, amount: { amount: string; currency: string }) {
  const qr = await must(shop.POST('/v1/merchants/{merchantId}/qr-codes', { params: { path: { merchantId: 'mer_demo_merchant_a' } }, body: { kind: 'static' } }), 'the shop’s QR code');
  return wallet.POST('/v1/wallet/payments/qr', {
    body: { payload: qr.payload, amount, customerId, source: tokenPaymentSource({ ...token, amount, merchantCountry: merchantQrFields(qr.payload).get('58') ?? '' }) },
    params: { header: { 'Idempotency-Key': idempotencyKey() } },
  });
}

export async function bankQuickstart(env: QuickstartEnv) {
  const log = env.log ?? (() => undefined);
  const bank = clientFor(env, 'bank-a');
  const wallet = clientFor(env, 'wallet-a');
  const shop = clientFor(env, 'merchant-a');

  // 1. A card product: a BIN range (6–8 digits) of one brand, type and currency. Made once, reused on later runs.
  const products = await must(bank.GET('/v1/issuer/card-products'), 'list card products');
  const product =
    products.items.find((p) => p.name === PRODUCT_NAME) ??
    (await must(
      bank.POST('/v1/issuer/card-products', { body: { name: PRODUCT_NAME, binPrefix: '62289901', brand: 'UnionPay', currency: 'CNY', type: 'debit' }, params: { header: { 'Idempotency-Key': idempotencyKey() } } }),
      'create a card product',
    ));
  log(`1. card product ${product.id} (${product.brand} ${product.type}, BIN ${product.binPrefix}, ${product.currency})`);

  // 2. A customer (known by your own id), an account in the card's currency, and cash into it from your position.
  const customer = await must(
    bank.POST('/v1/customers', { body: { externalId: `quickstart-${randomUUID()}`, name: '陈静', phone: '+8613900139000', kycLevel: 3 }, params: { header: { 'Idempotency-Key': idempotencyKey() } } }),
    'register a customer',
  );
  const account = await must(bank.POST('/v1/accounts', { body: { customerId: customer.id, currency: 'CNY' }, params: { header: { 'Idempotency-Key': idempotencyKey() } } }), 'open an account');
  const accountId = String(account.id);
  await must(bank.POST('/v1/accounts/{accountId}/deposits', { params: { path: { accountId }, header: { 'Idempotency-Key': idempotencyKey() } }, body: { amount: { amount: '500.00', currency: 'CNY' } } }), 'deposit');
  const funded = await must(bank.GET('/v1/ledger/accounts/{accountId}', { params: { path: { accountId } } }), 'the account');
  log(`2. customer ${customer.id}, account ${accountId}: ${JSON.stringify(funded.available ?? funded)}`);

  // 3. A card on that account: its number and CVV are answered once (give them to the cardholder). It starts inactive.
  const issued = await must(
    bank.POST('/v1/issuer/cards', { body: { productId: product.id, customerId: customer.id, fundingAccountId: accountId }, params: { header: { 'Idempotency-Key': idempotencyKey() } } }),
    'issue a card',
  );
  const cardId = issued.card.id;
  await must(bank.POST('/v1/issuer/cards/{cardId}/activate', { params: { path: { cardId }, header: { 'Idempotency-Key': idempotencyKey() } } }), 'activate the card');
  log(`3. card ${cardId} ending ${issued.card.last4}, expiry ${issued.card.expiry}: active`);

  // Your hosted provisioning rules: approve a typed card at once (the demo banks ask for a one-time code).
  const rulesBefore = await must(bank.GET('/v1/issuer/token-rules'), 'provisioning rules');
  const settingsBefore = await must(bank.GET('/v1/issuer/authorization-settings'), 'authorization settings');
  await must(bank.POST('/v1/issuer/token-rules', { body: { ...rulesBefore, typed: 'approve' }, params: { header: { 'Idempotency-Key': idempotencyKey() } } }), 'set provisioning rules');
  try {
    return await withWebhooks(bank, async (receiver) => {
      // The cardholder adds the card to a wallet; the bank hears of it by a signed webhook.
      const payer = 'cus_demo_li_at_wallet_a';
      const token = await addCard(wallet, payer, { number: issued.cardNumber, expiry: issued.card.expiry, cvv: issued.cvv }, 'quickstart-bank-phone');
      const provisioned = await receiver.waitFor((e) => isEvent(e, 'token.provisioned') && e.data.cardId === cardId, 'token.provisioned');
      if (!isEvent(provisioned, 'token.provisioned')) throw new Error('unreachable');
      log(`   webhook token.provisioned: wallet ${provisioned.data.walletParticipantId} holds token ${provisioned.data.tokenId} (${provisioned.data.method})`);

      // 4a. Hosted (the default): the hub decides for you and holds the amount on the card's funding account.
      const hosted = await must(payAtShop(wallet, shop, payer, token, { amount: '30.00', currency: 'CNY' }), 'pay (hosted)');
      const after = await must(bank.GET('/v1/ledger/accounts/{accountId}', { params: { path: { accountId } } }), 'the account');
      log(`4. hosted: paid ${hosted.amount.amount} ${hosted.amount.currency} (${hosted.status}); the account now ${JSON.stringify(after.available ?? after)}`);

      // 4b. Real time: the hub asks your endpoint (signed), within deadlineMs; stand-in rules decide when it cannot.
      const secret = await must(bank.GET('/v1/webhooks/secret'), 'webhook secret');
      const endpoint = await startAuthorizationEndpoint([secret.secret, ...(secret.previousSecret !== null ? [secret.previousSecret] : [])]);
      let decisions: { approved: string; declined: string | undefined };
      try {
        await must(
          bank.POST('/v1/issuer/authorization-settings', { body: { mode: 'webhook', authUrl: endpoint.url, deadlineMs: 2000, standIn: { action: 'decline', maxAmountMinor: '0' } } }),
          'real-time authorization',
        );
        const approved = await must(payAtShop(wallet, shop, payer, token, { amount: '25.00', currency: 'CNY' }), 'pay 25.00 (real time)');
        const declined = await errorCode(payAtShop(wallet, shop, payer, token, { amount: '250.00', currency: 'CNY' }));
        decisions = { approved: approved.status, declined };
        log(`   real time: your endpoint saw ${endpoint.seen.map((s) => `${s.amount} ${s.currency} at ${s.merchant}`).join(', ')}; 25.00 → ${approved.status}, 250.00 → ${declined}`);
      } finally {
        await must(bank.POST('/v1/issuer/authorization-settings', { body: { mode: 'hosted' } }), 'back to hosted');
        await endpoint.close();
      }

      // 5. Suspend one wallet's token (the card and its other tokens keep working), resume it; cancel the card.
      const tokens = await must(bank.GET('/v1/issuer/cards/{cardId}/tokens', { params: { path: { cardId } } }), 'the card’s tokens');
      const entry = tokens.items.find((t) => t.status === 'active');
      if (entry === undefined) throw new Error('no active token');
      const suspended = await must(bank.POST('/v1/issuer/cards/{cardId}/tokens/{tokenId}/suspend', { params: { path: { cardId, tokenId: entry.id }, header: { 'Idempotency-Key': idempotencyKey() } } }), 'suspend the token');
      const whileSuspended = await errorCode(payAtShop(wallet, shop, payer, token, { amount: '5.00', currency: 'CNY' }));
      await must(bank.POST('/v1/issuer/cards/{cardId}/tokens/{tokenId}/resume', { params: { path: { cardId, tokenId: entry.id }, header: { 'Idempotency-Key': idempotencyKey() } } }), 'resume the token');
      const resumed = await must(payAtShop(wallet, shop, payer, token, { amount: '5.00', currency: 'CNY' }), 'pay after resume');
      log(`5. token at ${entry.walletName}: ${suspended.status} (a payment answers ${whileSuspended}), resumed (a payment is ${resumed.status})`);
      const cancelled = await must(bank.POST('/v1/issuer/cards/{cardId}/cancel', { params: { path: { cardId }, header: { 'Idempotency-Key': idempotencyKey() } } }), 'cancel the card');
      log(`   card ${cardId}: ${cancelled.status} (its tokens are deleted)`);
      return { cardId, hosted: hosted.status, decisions, suspendedStatus: suspended.status, whileSuspended, resumed: resumed.status, cancelled: cancelled.status, provisioned: provisioned.data };
    });
  } finally {
    await bank.POST('/v1/issuer/token-rules', { body: rulesBefore, params: { header: { 'Idempotency-Key': idempotencyKey() } } });
    log(`   (bank-a's provisioning rules restored; authorization mode ${String((settingsBefore as { mode?: unknown }).mode)})`);
  }
}

runIfMain(import.meta.url, bankQuickstart);

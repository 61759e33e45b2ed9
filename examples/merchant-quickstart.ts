/**
 * The merchant (acquirer) quickstart (docs/guides/quickstart-merchant.md), as one script, as merchant-a:
 *   1. your merchant profile and your webhooks;
 *   2. a static QR code (the payer types the amount) and a dynamic one (amount and your reference in the code);
 *   3. a payment link;
 *   4. a contactless tap: an authorization you capture (partly), then refund (partly);
 *   5. the signed webhooks each payment sent you.
 * The payer is 李伟 at wallet-a, paying with bank-a's sandbox test card as a token (as in the wallet quickstart).
 *
 *   npm start     # in another terminal: the demo hub, which prints the sandbox test cards
 *   CARD_NUMBER=… CARD_EXPIRY=MM/YY CARD_CVV=… npx tsx examples/merchant-quickstart.ts
 */
import { idempotencyKey, merchantQrFields, tokenPaymentSource, tokenTapData } from '../packages/sdk/src/index.ts';
import { clientFor, isEvent, must, runIfMain, withWebhooks, type QuickstartEnv } from './support.ts';
import { addCard } from './wallet-quickstart.ts';

export async function merchantQuickstart(env: QuickstartEnv) {
  const log = env.log ?? (() => undefined);
  if (env.card === undefined) throw new Error('give the bank-a sandbox test card: CARD_NUMBER, CARD_EXPIRY (MM/YY), CARD_CVV (the demo hub prints them)');
  const shop = clientFor(env, 'merchant-a');
  const wallet = clientFor(env, 'wallet-a');

  // 1. Your merchant profile: its id, country and currency go into every code you print.
  const merchants = await must(shop.GET('/v1/merchants'), 'my merchants');
  const merchant = merchants.items[0];
  if (merchant === undefined) throw new Error('no merchant profile');
  const merchantId = merchant.id;
  const { currency, country: merchantCountry } = merchant;
  log(`1. merchant ${merchantId}: ${merchant.name}, ${merchant.city} ${merchant.country}, ${merchant.currency}, MCC ${merchant.mcc}`);

  // The payer's phone: a token for bank-a's test card in wallet-a (see the wallet quickstart).
  const payer = 'cus_demo_li_at_wallet_a';
  const token = await addCard(wallet, payer, env.card, 'quickstart-merchant-phone');
  const country = (payload: string) => merchantQrFields(payload).get('58') ?? '';

  try {
    return await withWebhooks(shop, async (receiver) => {
      // 2a. A static code: print it once; each payer types the amount.
      const stat = await must(shop.POST('/v1/merchants/{merchantId}/qr-codes', { params: { path: { merchantId }, header: { 'Idempotency-Key': idempotencyKey() } }, body: { kind: 'static', reference: 'till-1' } }), 'a static QR code');
      log(`2. static code ${stat.id}: ${stat.payload.slice(0, 40)}… (PNG: GET /v1/merchants/${merchantId}/qr-codes/${stat.id}/png)`);
      const typed = { amount: '8.80', currency: currency };
      const paidStatic = await must(
        wallet.POST('/v1/wallet/payments/qr', { body: { payload: stat.payload, amount: typed, customerId: payer, source: tokenPaymentSource({ ...token, amount: typed, merchantCountry: country(stat.payload) }) }, params: { header: { 'Idempotency-Key': idempotencyKey() } } }),
        'pay the static code',
      );

      // 2b. A dynamic code: the amount and your reference are in the code, it expires, and it is paid once.
      const dyn = await must(
        shop.POST('/v1/merchants/{merchantId}/qr-codes', { params: { path: { merchantId }, header: { 'Idempotency-Key': idempotencyKey() } }, body: { kind: 'dynamic', amount: '23.50', reference: 'order-1001', expiresInS: 600 } }),
        'a dynamic QR code',
      );
      if (dyn.amount === null) throw new Error('a dynamic code has an amount');
      const paidDynamic = await must(
        wallet.POST('/v1/wallet/payments/qr', { body: { payload: dyn.payload, customerId: payer, source: tokenPaymentSource({ ...token, amount: dyn.amount, merchantCountry: country(dyn.payload) }) }, params: { header: { 'Idempotency-Key': idempotencyKey() } } }),
        'pay the dynamic code',
      );
      log(`   paid: static ${paidStatic.amount.amount} (${paidStatic.status}), dynamic ${paidDynamic.amount.amount} for ${dyn.reference} (${paidDynamic.status})`);

      // 3. A payment link: share its URL; the payer's wallet opens it and pays.
      const link = await must(
        shop.POST('/v1/merchants/{merchantId}/payment-links', { params: { path: { merchantId }, header: { 'Idempotency-Key': idempotencyKey() } }, body: { amount: { amount: '99.00', currency: currency }, description: 'Quickstart: a day pass', expiresInS: 3600 } }),
        'a payment link',
      );
      const linkId = link.id;
      const opened = await must(wallet.GET('/v1/payment-links/{linkId}', { params: { path: { linkId } } }), 'open the link');
      const linkAmount = { amount: '99.00', currency: currency };
      const paidLink = await must(
        wallet.POST('/v1/payment-links/{linkId}/pay', { params: { path: { linkId }, header: { 'Idempotency-Key': idempotencyKey() } }, body: { customerId: payer, source: tokenPaymentSource({ ...token, amount: linkAmount, merchantCountry }) } }),
        'pay the link',
      );
      log(`3. link ${linkId} (${opened.description}, ${opened.merchant.name}, ${link.url}): paid ${paidLink.amount.amount} ${paidLink.amount.currency} (${paidLink.status})`);

      // 4. A tap: the terminal reads the token, its expiry, the counter and a cryptogram from the phone and asks for an
      //    authorization; you capture when the goods ship (here 40.00 of 45.00: the rest of the hold is released), and
      //    refund part of it later.
      const tap = tokenTapData({ ...token, amount: { amount: '45.00', currency: currency }, merchantCountry });
      const authorized = await must(shop.POST('/v1/merchants/{merchantId}/payments/tap', { params: { path: { merchantId }, header: { 'Idempotency-Key': idempotencyKey() } }, body: tap }), 'authorize the tap');
      const paymentId = authorized.id;
      const captured = await must(shop.POST('/v1/payments/{paymentId}/capture', { params: { path: { paymentId }, header: { 'Idempotency-Key': idempotencyKey() } }, body: { amount: '40.00' } }), 'capture');
      const refund = await must(shop.POST('/v1/payments/{paymentId}/refunds', { params: { path: { paymentId }, header: { 'Idempotency-Key': idempotencyKey() } }, body: { amount: '15.00' } }), 'refund');
      const after = await must(shop.GET('/v1/payments/{paymentId}', { params: { path: { paymentId } } }), 'the payment');
      log(`4. tap ${paymentId}: ${authorized.status} → capture 40.00 → ${captured.status}; refund ${refund.amount.amount} → captured ${after.captured.amount}, refunded ${after.refunded.amount}`);

      // 5. Each step sent you a signed webhook; the receiver verified every one before reading it.
      const refunded = await receiver.waitFor((e) => isEvent(e, 'payment.refunded') && e.data.authorizationId === paymentId, 'payment.refunded');
      await receiver.waitFor((e) => isEvent(e, 'payment.captured') && e.data.authorizationId === paymentId, 'payment.captured');
      const types = [...new Set(receiver.events.map((e) => e.type))].sort();
      log(`5. verified webhooks: ${types.join(', ')}`);
      return { payments: { static: paidStatic, dynamic: paidDynamic, link: paidLink }, tap: { authorized, captured, refund, after }, eventTypes: types, refunded };
    });
  } finally {
    // The payer removes the card from the phone again (a card holds a bounded number of tokens).
    await wallet.POST('/v1/wallet/tokens/{tokenRef}/delete', { params: { path: { tokenRef: token.tokenRef } } });
  }
}

runIfMain(import.meta.url, merchantQuickstart);

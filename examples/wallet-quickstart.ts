/**
 * The wallet quickstart (docs/guides/quickstart-wallet.md), as one script:
 *   1. get an access token with the wallet's client credential;
 *   2. add a bank card into two wallets (a token in each; the bank asks for a one-time code);
 *   3. pay a merchant's QR code with the token: a cryptogram over the payment and the token's counter;
 *   4. pay a person by alias (verification of payee, a quote, then the payment);
 *   5. list the card's wallets and revoke one;
 *   6. verify the signed webhook the payee's wallet receives.
 *
 *   npm start            # in another terminal: the demo hub, which prints the sandbox test cards
 *   CARD_NUMBER=… CARD_EXPIRY=MM/YY CARD_CVV=… npx tsx examples/wallet-quickstart.ts
 */
import { AtcCounter, createDeviceKey, devicePublicKey, idempotencyKey, merchantQrFields, signDeviceStatement, tokenPaymentSource, type DeviceKeyPair, type HutongClient } from '../packages/sdk/src/index.ts';
import { clientFor, errorCode, isEvent, must, runIfMain, withWebhooks, type CardData, type QuickstartEnv } from './support.ts';

/** A token the wallet keeps: its reference, its key (shown once) and its counter, persisted together. */
export interface WalletToken {
  readonly tokenRef: string;
  readonly tokenKey: string;
  readonly counter: AtcCounter;
  /** The token's own number and expiry (MM/YY): what a phone hands a terminal on a tap. */
  readonly tokenNumber: string;
  readonly tokenExpiry: string;
  /** The device key the token is bound to (non-extractable): it signs the requests for new limited-use keys. */
  readonly device: DeviceKeyPair;
}

/**
 * Adds a card for a customer, bound to the customer's device: a WebCrypto P-256 key made on the device (the private
 * key never leaves it). Demo banks confirm a typed card with a one-time code they send the cardholder; in demo mode the
 * hub plays the bank and hands the code to the wallet's callers on this machine (/demo/v1/step-up-codes). With a real
 * bank, the customer types the code they received; the answer is signed by the device.
 */
export async function addCard(wallet: HutongClient, customerId: string, card: CardData, deviceId: string): Promise<WalletToken> {
  const device = await createDeviceKey();
  let provisioning = await must(
    wallet.POST('/v1/wallet/tokens', {
      body: { customerId, consent: true, deviceId, devicePublicKey: await devicePublicKey(device), source: { type: 'typed', cardNumber: card.number, expiry: card.expiry, cvv: card.cvv } },
    }),
    'add the card',
  );
  if (provisioning.status === 'pending_step_up') {
    const { code } = await must(wallet.GET('/demo/v1/step-up-codes/{id}', { params: { path: { id: provisioning.id } } }), 'the one-time code (demo)');
    const deviceSignature = await signDeviceStatement(device, { purpose: 'step_up', provisioningId: provisioning.id });
    provisioning = await must(
      wallet.POST('/v1/wallet/provisionings/{provisioningId}/step-up', { params: { path: { provisioningId: provisioning.id } }, body: { code, deviceSignature } }),
      'complete the step-up',
    );
  }
  const { token, limitedUseKey, tokenNumber } = provisioning;
  if (provisioning.status !== 'approved' || token === null || limitedUseKey === undefined || tokenNumber === undefined) throw new Error(`the bank did not approve the card: ${provisioning.status}`);
  // The counter starts at 0 when the token is made; keep it with the token (the first payment sends 1). The key is a
  // limited-use key: it signs counters firstAtc..lastAtc until expiresAt, then the device asks for the next one.
  return { tokenRef: token.tokenRef, tokenKey: limitedUseKey.key, counter: new AtcCounter(limitedUseKey.firstAtc - 1), tokenNumber, tokenExpiry: token.expiry, device };
}

export async function walletQuickstart(env: QuickstartEnv) {
  const log = env.log ?? (() => undefined);
  const card = env.card;
  if (card === undefined) throw new Error('give the bank-a sandbox test card: CARD_NUMBER, CARD_EXPIRY (MM/YY), CARD_CVV (the demo hub prints them)');

  // 1. An access token: OAuth 2.0 client credentials. The SDK does this (and renews it) for you; here it is by hand.
  const credential = env.credentials['wallet-a'];
  if (credential === undefined) throw new Error('no credential for wallet-a');
  const tokenResponse = await fetch(new URL('/oauth/token', env.baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: credential.clientId, client_secret: credential.clientSecret }),
  });
  const accessToken = (await tokenResponse.json()) as { access_token: string; token_type: string; expires_in: number };
  log(`1. wallet-a has an access token (${accessToken.token_type}, ${accessToken.expires_in} s)`);
  const walletA = clientFor(env, 'wallet-a');
  const walletB = clientFor(env, 'wallet-b');
  const me = await must(walletA.GET('/v1/me'), 'who am I');
  log(`   signed in as ${me.name} (${me.id})`);

  // 2. The same person, 李伟, is a customer of both wallets (each knows them by its own customer id).
  const liAtA = 'cus_demo_li_at_wallet_a';
  const liAtB = 'cus_demo_li_at_wallet_b';
  const tokenA = await addCard(walletA, liAtA, card, 'quickstart-phone-a');
  const tokenB = await addCard(walletB, liAtB, card, 'quickstart-phone-b');
  log(`2. the card is in two wallets: ${tokenA.tokenRef} (wallet-a), ${tokenB.tokenRef} (wallet-b)`);

  // 3. Pay a merchant's QR code. The shop shows a code (here merchant-a prints one); the wallet scans it, shows the
  //    merchant, and pays with the token: the cryptogram covers amount, currency, the merchant's country (tag 58),
  //    today's date and the next counter.
  const shop = clientFor(env, 'merchant-a');
  const qr = await must(shop.POST('/v1/merchants/{merchantId}/qr-codes', { params: { path: { merchantId: 'mer_demo_merchant_a' } }, body: { kind: 'static' } }), 'the shop’s QR code');
  const preview = await must(walletA.POST('/v1/wallet/qr/preview', { body: { payload: qr.payload } }), 'preview the code');
  log(`3. scanned a ${preview.kind} code of ${preview.merchant.name} ${preview.merchant.nameZh} (${preview.merchant.city}), amount ${preview.amount === null ? 'typed by the payer' : preview.amount.amount}`);
  const amount = { amount: '12.30', currency: 'CNY' };
  const paid = await must(
    walletA.POST('/v1/wallet/payments/qr', {
      body: { payload: qr.payload, amount, customerId: liAtA, source: tokenPaymentSource({ ...tokenA, amount, merchantCountry: merchantQrFields(qr.payload).get('58') ?? '' }) },
      params: { header: { 'Idempotency-Key': idempotencyKey() } },
    }),
    'pay the QR code',
  );
  log(`   paid ${paid.amount.amount} ${paid.amount.currency}: ${paid.status}, payment ${paid.id}, counter now ${tokenA.counter.last}`);

  // 4. Pay a person by alias: wallet-a's 李伟 sends 1.00 CNY to the handle "zhangmin" (张敏 at wallet-b), and wallet-b
  //    is told by a signed webhook (step 6).
  const result = await withWebhooks(walletB, async (receiver) => {
    const payee = await must(walletA.GET('/v1/aliases/lookup', { params: { query: { customerId: liAtA, type: 'handle', value: 'zhangmin' } } }), 'look up the alias');
    log(`4. "zhangmin" is ${JSON.stringify(payee)}`);
    const quote = await must(walletA.POST('/v1/transfers/quotes', { body: { customerId: liAtA, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '1.00', currency: 'CNY' } } }), 'quote');
    const sent = await must(walletA.POST('/v1/transfers/payments', { body: { quoteId: quote.id }, params: { header: { 'Idempotency-Key': idempotencyKey() } } }), 'pay the quote');
    log(`   sent ${quote.sendAmount.amount} ${quote.sendAmount.currency} (fee ${quote.fee.amount}): ${sent.status}, payment ${sent.id}`);

    // 5. The customer's consent view: every wallet holding a token for this card. Revoke wallet-b's from wallet-a.
    const wallets = await must(walletA.GET('/v1/wallet/tokens/{tokenRef}/card-wallets', { params: { path: { tokenRef: tokenA.tokenRef } } }), 'the card’s wallets');
    log(`5. the card is in ${wallets.items.filter((w) => w.status === 'active').length} active wallets: ${wallets.items.map((w) => `${w.walletName} ${w.status}`).join(', ')}`);
    const other = wallets.items.find((w) => w.walletParticipantId !== me.id && w.status === 'active');
    if (other === undefined) throw new Error('wallet-b’s token is not listed');
    const revoked = await must(
      walletA.POST('/v1/wallet/tokens/{tokenRef}/card-wallets/{entryId}/revoke', { params: { path: { tokenRef: tokenA.tokenRef, entryId: other.id }, header: { 'Idempotency-Key': idempotencyKey() } } }),
      'revoke wallet-b’s token',
    );
    log(`   revoked ${other.walletName}'s token: ${revoked.status}`);
    const refused = await errorCode(
      walletB.POST('/v1/wallet/payments/qr', {
        body: { payload: qr.payload, amount, customerId: liAtB, source: tokenPaymentSource({ ...tokenB, amount, merchantCountry: 'CN' }) },
        params: { header: { 'Idempotency-Key': idempotencyKey() } },
      }),
    );
    log(`   wallet-b paying with it now answers ${refused}`);
    const mine = await must(walletA.GET('/v1/wallet/tokens'), 'list my tokens');
    log(`   wallet-a holds ${mine.items.filter((t) => t.status === 'active').length} active token(s)`);

    // 6. wallet-b's receiver verified the signature (Standard Webhooks) before reading the event.
    const event = await receiver.waitFor((e) => isEvent(e, 'payment.received') && e.data.paymentId === sent.id, 'payment.received');
    if (!isEvent(event, 'payment.received')) throw new Error('unreachable');
    log(`6. wallet-b received a verified ${event.type}: ${event.data.receiveAmount.amount} ${event.data.receiveAmount.currency} for ${event.data.customerId}`);
    return { qrPayment: paid, p2p: sent, revokedStatus: revoked.status, refusedWithRevokedToken: refused, webhook: event };
  });

  // Tidy up: wallet-a deletes its own token too (a real wallet does this when the customer removes the card).
  await must(walletA.POST('/v1/wallet/tokens/{tokenRef}/delete', { params: { path: { tokenRef: tokenA.tokenRef } } }), 'delete my token');
  log('   wallet-a deleted its token: done');
  return result;
}

runIfMain(import.meta.url, walletQuickstart);

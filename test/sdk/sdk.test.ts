import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import currencyCodes from 'currency-codes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AtcCounter,
  COUNTRY_NUMERIC,
  CURRENCIES,
  createDeviceKey,
  createHutongClient,
  devicePublicKey,
  idempotencyKey,
  merchantQrFields,
  retryingFetch,
  signDeviceStatement,
  signWebhook,
  toMinorUnits,
  tokenPaymentSource,
  verifyWebhook,
  type DeviceKeyPair,
  type HutongClient,
  type WebhookEvent,
} from '../../packages/sdk/src/index.ts';
import { DOCUMENT_FILE, SCHEMA_FILE, generate } from '../../packages/sdk/scripts/generate.ts';
import { customerAccountId } from '../../src/accounts/service.ts';
import { countryNumeric } from '../../src/cards/numbers.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { newId } from '../../src/platform/ids.ts';
import { signWebhook as hubSignWebhook } from '../../src/webhooks/signing.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * The SDK (packages/sdk) as an integrator uses it: its committed types are what the hub's document generates, its
 * helpers agree with the hub, and a wallet written with it alone — over HTTP, against an in-process hub listening on a
 * port — adds a card as a token, pays a merchant's QR code with a cryptogram and counter, pays a person by alias, and
 * verifies the signed webhook that payment sends.
 */

describe('the generated SDK types', () => {
  it('are what `npm run sdk:generate` makes from the hub’s document now', async () => {
    const fresh = await generate();
    expect(fresh.document === readFileSync(DOCUMENT_FILE, 'utf8'), 'packages/sdk/openapi.json is stale: run npm run sdk:generate').toBe(true);
    expect(fresh.schema === readFileSync(SCHEMA_FILE, 'utf8'), 'packages/sdk/src/schema.ts is stale: run npm run sdk:generate').toBe(true);
  }, 300_000);
});

describe('the SDK helpers agree with the hub', () => {
  it('country and currency codes, minor units, the counter', () => {
    for (const [alpha, numeric] of Object.entries(COUNTRY_NUMERIC)) expect(countryNumeric(alpha), alpha).toBe(numeric);
    for (const [code, { numeric, digits }] of Object.entries(CURRENCIES)) expect({ numeric, digits }, code).toEqual({ numeric: currencyCodes.code(code)?.number, digits: currencyCodes.code(code)?.digits });
    expect(toMinorUnits({ amount: '12.3', currency: 'CNY' })).toBe(1230n);
    expect(toMinorUnits({ amount: '1500', currency: 'JPY' })).toBe(1500n);
    expect(() => toMinorUnits({ amount: '1.234', currency: 'CNY' })).toThrow(RangeError);
    const counter = new AtcCounter();
    expect([counter.next(), counter.next(), counter.last]).toEqual([1, 2, 2]);
    expect(() => new AtcCounter(0xffff).next()).toThrow(RangeError);
  });

  it('webhook signatures: the Standard Webhooks reference vector, the hub’s signer, rotation, staleness, tampering', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    expect(signWebhook(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    const body = JSON.stringify({ id: 'evt_1', type: 'credential.issued', createdAt: '2026-01-01T00:00:00.000Z', data: { credentialId: 'cred_1' } });
    const headers = { 'webhook-id': 'evt_1', 'webhook-timestamp': '1700000000', 'webhook-signature': hubSignWebhook(secret, 'evt_1', 1700000000, body) };
    expect(verifyWebhook(secret, headers, body, { nowS: 1700000010 })).toMatchObject({ ok: true, event: { type: 'credential.issued' } });
    expect(verifyWebhook(['whsec_b2xkb2xkb2xkb2xkb2xkb2xkb2xk', secret], headers, body, { nowS: 1700000010 }).ok).toBe(true);
    expect(verifyWebhook(secret, headers, body.replace('cred_1', 'cred_2'), { nowS: 1700000010 })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyWebhook(secret, headers, body, { nowS: 1700000000 + 301 })).toEqual({ ok: false, reason: 'stale_timestamp' });
    expect(verifyWebhook(secret, new Headers({ 'webhook-id': 'evt_1' }), body)).toEqual({ ok: false, reason: 'missing_headers' });
  });
});

describe('the SDK retries only what is safe and useful', () => {
  const answers = (statuses: readonly { status: number; code?: string }[]) => {
    const calls: string[] = [];
    const fake: typeof fetch = async (input) => {
      const request = input instanceof Request ? input : new Request(input);
      calls.push(request.method);
      const next = statuses[Math.min(calls.length - 1, statuses.length - 1)] ?? { status: 200 };
      return new Response(JSON.stringify(next.code === undefined ? {} : { error: { code: next.code, message: '' } }), { status: next.status, headers: { 'content-type': 'application/json' } });
    };
    return { calls, fetch: retryingFetch(fake, { baseDelayMs: 1, maxDelayMs: 1 }) };
  };
  const post = (f: typeof fetch, key: boolean) => f('http://hub.test/v1/x', { method: 'POST', body: '{}', headers: key ? { 'Idempotency-Key': 'k1' } : {} });

  it('retries a keyed write while the first is in progress, never another conflict, never an unkeyed write', async () => {
    const inProgress = answers([{ status: 409, code: 'idempotency_in_progress' }, { status: 201 }]);
    expect((await post(inProgress.fetch, true)).status).toBe(201);
    expect(inProgress.calls).toHaveLength(2);
    const conflict = answers([{ status: 409, code: 'payment_state' }, { status: 201 }]);
    const answered = await post(conflict.fetch, true);
    expect(answered.status).toBe(409);
    expect(await answered.json()).toEqual({ error: { code: 'payment_state', message: '' } });
    expect(conflict.calls).toHaveLength(1);
    const unkeyed = answers([{ status: 503, code: 'unavailable' }, { status: 201 }]);
    expect((await post(unkeyed.fetch, false)).status).toBe(503);
    expect(unkeyed.calls).toHaveLength(1);
    const read = answers([{ status: 503, code: 'unavailable' }, { status: 429, code: 'rate_limited' }, { status: 200 }]);
    expect((await read.fetch('http://hub.test/v1/y')).status).toBe(200);
    expect(read.calls).toHaveLength(3);
  });
});

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

async function startReceiver(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received, server };
}

const headersOf = (h: IncomingHttpHeaders): Record<string, string> => Object.fromEntries(Object.entries(h).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v]] : [])));

const engines = await availableEngines();

describe.each(engines)('a wallet written with the SDK alone, over HTTP, on %s', (engine) => {
  let t: TestHub;
  let baseUrl: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const as = (key: string): HutongClient => {
    const p = t.demo.participants.find((d) => d.key === key);
    if (p === undefined) throw new Error(`no demo participant ${key}`);
    return createHutongClient({ baseUrl, clientId: p.clientId, clientSecret: p.clientSecret });
  };

  beforeAll(async () => {
    receiver = await startReceiver();
    t = await startTestHub(engine);
    await t.hub.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.hub.app.server.address() as AddressInfo;
    baseUrl = `http://127.0.0.1:${address.port}`;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    receiver?.server.close();
  });

  it('adds a card as a token, pays a merchant QR with a cryptogram and counter, pays a person by alias, and verifies the webhook', async () => {
    // The bank's side (not the wallet's): bank-a issues 李伟 a funded, active debit card and approves typed provisioning.
    const bankA = demoParticipantId('bank-a');
    const holder = demoCustomerId('li-at-bank-a');
    const SYSTEM = { type: 'system' } as const;
    const issued = await t.hub.db.transaction(async (tx) => {
      const fundingAccountId = customerAccountId(holder, 'CNY');
      const opened = await t.hub.transfers.accounts.openCustomerAccount(tx, SYSTEM, bankA, holder, 'CNY');
      if (!opened.ok && opened.error.code !== 'customer_account_exists') throw new Error(opened.error.code);
      const dep = await t.hub.transfers.accounts.deposit(tx, SYSTEM, bankA, fundingAccountId, 100_000n, 'CNY', newId('dep'));
      if (!dep.ok) throw new Error(dep.error.code);
      const card = await t.hub.cards.cards.issue(tx, SYSTEM, bankA, { productId: 'cpr_demo_bank_a_debit', customerId: holder, fundingAccountId });
      if (!card.ok) throw new Error(card.error.code);
      const active = await t.hub.cards.cards.transition(tx, SYSTEM, bankA, card.value.card.id, 'activate');
      if (!active.ok) throw new Error(active.error.code);
      await t.hub.cards.walletTokens.setRules(tx, SYSTEM, bankA, { typed: 'approve', byReference: 'approve', newDevice: 'approve' });
      return card.value;
    });

    // 1. Wallet B adds the card (typed in by its customer): a token, its key, and a counter starting at 0.
    const walletB = as('wallet-b');
    const customerId = demoCustomerId('li-at-wallet-b');
    const device = await createDeviceKey();
    const provisioned = await walletB.POST('/v1/wallet/tokens', {
      body: { customerId, consent: true, deviceId: 'sdk-phone', devicePublicKey: await devicePublicKey(device), source: { type: 'typed', cardNumber: issued.cardNumber, expiry: issued.card.expiry, cvv: issued.cvv } },
    });
    expect(provisioned.error).toBeUndefined();
    const tokenRef = provisioned.data?.token?.tokenRef;
    const tokenKey = provisioned.data?.limitedUseKey?.key;
    expect(tokenRef).toBeTypeOf('string');
    expect(tokenKey).toMatch(/^[0-9A-F]{32}$/);
    const counter = new AtcCounter(0);

    // 2. Merchant A prints a static code; wallet B scans it and pays 12.30 CNY with the token.
    const merchantA = as('merchant-a');
    const qr = await merchantA.POST('/v1/merchants/{merchantId}/qr-codes', { params: { path: { merchantId: 'mer_demo_merchant_a' } }, body: { kind: 'static' } });
    expect(qr.error).toBeUndefined();
    const payload = String(qr.data?.payload);
    const fields = merchantQrFields(payload);
    const amount = { amount: '12.30', currency: 'CNY' };
    const paid = await walletB.POST('/v1/wallet/payments/qr', {
      body: { payload, amount, customerId, source: tokenPaymentSource({ tokenRef: String(tokenRef), tokenKey: String(tokenKey), counter, amount, merchantCountry: fields.get('58') ?? '' }) },
      params: { header: { 'Idempotency-Key': idempotencyKey() } },
    });
    expect(paid.error, JSON.stringify(paid.error)).toBeUndefined();
    expect(paid.response.status).toBe(201);
    expect(paid.data).toMatchObject({ status: 'captured' });
    expect(counter.last).toBe(1);
    // The same counter again is a replay: refused, with a typed error code.
    const replay = await walletB.POST('/v1/wallet/payments/qr', {
      body: { payload, amount, customerId, source: { ...tokenPaymentSource({ tokenRef: String(tokenRef), tokenKey: String(tokenKey), counter: new AtcCounter(0), amount, merchantCountry: 'CN' }) } },
      params: { header: { 'Idempotency-Key': idempotencyKey() } },
    });
    expect(replay.error?.error.code).toBe('atc_replayed');
    // The token is bound to the SDK's device key: that key, and only it, obtains the next limited-use key.
    const replenish = async (pair: DeviceKeyPair) =>
      walletB.POST('/v1/wallet/tokens/{tokenRef}/keys', {
        params: { path: { tokenRef: String(tokenRef) } },
        body: { deviceSignature: await signDeviceStatement(pair, { purpose: 'replenish', tokenRef: String(tokenRef), keyCounter: 1 }) },
      });
    expect((await replenish(await createDeviceKey())).error?.error.code).toBe('device_signature_invalid');
    const renewed = await replenish(device);
    expect(renewed.response.status).toBe(201);
    expect(renewed.data).toMatchObject({ keyCounter: 2, firstAtc: 2 });
    expect(renewed.data?.key).not.toBe(tokenKey);

    // 3. A new wallet, with a webhook URL, gives its customer a handle; wallet B's 张敏 pays it 1.00 CNY by alias.
    const operator = createHutongClient({ baseUrl, accessToken: t.hub.operatorToken });
    const created = await operator.POST('/v1/operator/participants', { body: { kind: 'wallet', name: 'SDK Wallet', country: 'CN', currencies: ['CNY'], webhookUrl: receiver.url } });
    expect(created.error).toBeUndefined();
    const secret = String(created.data?.webhookSecret);
    const sdkWallet = createHutongClient({ baseUrl, clientId: String(created.data?.credential.clientId), clientSecret: String(created.data?.credential.clientSecret) });
    const customer = await sdkWallet.POST('/v1/customers', { body: { externalId: 'sdk-1', name: '王芳' }, params: { header: { 'Idempotency-Key': idempotencyKey() } } });
    expect(customer.error).toBeUndefined();
    const payeeCustomerId = String(customer.data?.id);
    const account = await sdkWallet.POST('/v1/accounts', { body: { customerId: payeeCustomerId, currency: 'CNY' } });
    expect(account.error, JSON.stringify(account.error)).toBeUndefined();
    const alias = await sdkWallet.POST('/v1/aliases', { body: { customerId: payeeCustomerId, type: 'handle', value: 'wangfang.sdk', accountId: String(account.data?.id) } });
    expect(alias.error, JSON.stringify(alias.error)).toBeUndefined();

    const payer = demoCustomerId('zhang-at-wallet-b');
    const quote = await walletB.POST('/v1/transfers/quotes', { body: { customerId: payer, payee: { type: 'handle', value: 'wangfang.sdk' }, sendAmount: { amount: '1.00', currency: 'CNY' } } });
    expect(quote.error, JSON.stringify(quote.error)).toBeUndefined();
    const p2p = await walletB.POST('/v1/transfers/payments', { body: { quoteId: String(quote.data?.id) }, params: { header: { 'Idempotency-Key': idempotencyKey() } } });
    expect(p2p.error, JSON.stringify(p2p.error)).toBeUndefined();
    expect(p2p.data).toMatchObject({ status: 'completed', receiveAmount: { amount: '1.00', currency: 'CNY' } });

    // 4. The payee wallet's receiver verifies the signed delivery with the SDK and reads a typed event.
    await t.hub.webhooks.runOnce();
    const deliveries = receiver.received.map((r) => verifyWebhook(secret, headersOf(r.headers), r.body));
    expect(deliveries.every((d) => d.ok)).toBe(true);
    const received = deliveries.flatMap((d) => (d.ok && d.event.type === 'payment.received' ? [d.event as WebhookEvent<'payment.received'>] : []));
    expect(received).toHaveLength(1);
    expect(received[0]?.data).toMatchObject({ customerId: payeeCustomerId, receiveAmount: { amount: '1.00', currency: 'CNY' } });
    // A tampered body fails.
    const first = receiver.received[0];
    expect(first === undefined ? undefined : verifyWebhook(secret, headersOf(first.headers), `${first.body} `)).toEqual({ ok: false, reason: 'bad_signature' });
  }, 240_000);
});

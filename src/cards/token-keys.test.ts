import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from '../../test/support/engines.ts';
import { startTestHub, type TestHub } from '../../test/support/hub.ts';
import { customerAccountId } from '../accounts/service.ts';
import { demoCustomerId, demoParticipantId } from '../demo/seed.ts';
import { newDevice, type Device } from '../demo/device.ts';
import { openSentCode } from '../platform/sent-codes.ts';
import { tapBody, type WalletToken } from '../demo/fixtures.ts';
import { createFakeClock, type FakeClock } from '../platform/clock.ts';

const engines = await availableEngines();
const MERCHANT_A = 'mer_demo_merchant_a';
const SYSTEM = { type: 'system' } as const;
let keyNo = 0;
const key = () => ({ 'idempotency-key': `tk-${++keyNo}` });

/**
 * Limited-use keys and device binding: a token is bound to a device key at provisioning; the wallet holds one
 * limited-use key at a time (a few payments, a few hours); only its device obtains the next one.
 */
describe.each(engines)('limited-use keys and device binding on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: { cardId: string; cardNumber: string; expiry: string; cvv: string; fundingAccountId: string };
  const bankA = demoParticipantId('bank-a');
  const walletCustomer = demoCustomerId('li-at-wallet-a');

  const balance = async (id: string) => {
    const r = await t.hub.transfers.ledger.getAccount(id);
    if (!r.ok) throw new Error(r.error.code);
    return { posted: r.value.creditsPostedMinor - r.value.debitsPostedMinor, pending: r.value.debitsPendingMinor, credits: r.value.creditsPostedMinor };
  };
  const authorizations = async () => (await t.hub.db.query<{ n: bigint }>('select count(*) as n from pay_authorizations'))[0]?.n ?? 0n;
  const tap = (tok: WalletToken, atc: number) =>
    t.api('merchant-a').post(`/v1/merchants/${MERCHANT_A}/payments/tap`, tapBody(tok, { amount: '1.00', amountMinor: 100n, now: clock.now(), atc }), key());
  /** A tap that must be refused with `code` and move nothing. */
  const refusedTap = async (tok: WalletToken, atc: number, code: string) => {
    const before = { funding: await balance(card.fundingAccountId), authorizations: await authorizations() };
    const res = await tap(tok, atc);
    expect(res.status).toBe(402);
    expect(res.body.error.code).toBe(code);
    expect({ funding: await balance(card.fundingAccountId), authorizations: await authorizations() }).toEqual(before);
  };
  const provision = async (device: Device | undefined, deviceId: string) =>
    t.api('wallet-a').post(
      '/v1/wallet/tokens',
      { customerId: walletCustomer, consent: true, deviceId, ...(device !== undefined ? { devicePublicKey: device.publicKey } : {}), source: { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv: card.cvv } },
      key(),
    );
  const asToken = (body: { token: { tokenRef: string; expiry: string }; tokenNumber: string; limitedUseKey: { key: string } }): WalletToken => ({
    wallet: 'wallet-a',
    customerId: walletCustomer,
    tokenRef: body.token.tokenRef,
    tokenNumber: body.tokenNumber,
    tokenKey: body.limitedUseKey.key,
    expiryYymm: `${body.token.expiry.slice(3, 5)}${body.token.expiry.slice(0, 2)}`,
    atc: 0,
  });
  const replenish = (tokenRef: string, signature: string) => t.api('wallet-a').post(`/v1/wallet/tokens/${tokenRef}/keys`, { deviceSignature: signature });

  beforeAll(async () => {
    clock = createFakeClock(Date.UTC(2026, 0, 15, 8, 0, 0));
    t = await startTestHub(engine, { clock, config: { accessTokenTtlS: 86_400 } });
    const holder = demoCustomerId('li-at-bank-a');
    const fundingAccountId = customerAccountId(holder, 'CNY');
    card = await t.hub.db.transaction(async (tx) => {
      const opened = await t.hub.transfers.accounts.openCustomerAccount(tx, SYSTEM, bankA, holder, 'CNY');
      if (!opened.ok && opened.error.code !== 'customer_account_exists') throw new Error(opened.error.code);
      const dep = await t.hub.transfers.accounts.deposit(tx, SYSTEM, bankA, fundingAccountId, 1_000_000n, 'CNY', 'dep_token_keys');
      if (!dep.ok) throw new Error(dep.error.code);
      const issued = await t.hub.cards.cards.issue(tx, SYSTEM, bankA, { productId: 'cpr_demo_bank_a_debit', customerId: holder, fundingAccountId });
      if (!issued.ok) throw new Error(issued.error.code);
      const active = await t.hub.cards.cards.transition(tx, SYSTEM, bankA, issued.value.card.id, 'activate');
      if (!active.ok) throw new Error(active.error.code);
      // Three payments or two hours per key: small enough to use up in a test.
      await t.hub.cards.walletTokens.setRules(tx, SYSTEM, bankA, { typed: 'approve', byReference: 'approve', newDevice: 'approve', keyMaxTransactions: 3, keyTtlHours: 2 });
      return { cardId: issued.value.card.id, cardNumber: issued.value.cardNumber, expiry: issued.value.card.expiry, cvv: issued.value.cvv, fundingAccountId };
    });
  });
  afterAll(async () => t?.close());

  let phone: Device;
  let tok: WalletToken;

  it('binds the token to the device key and gives a limited-use key, never a permanent one', async () => {
    phone = newDevice();
    const res = await provision(phone, 'phone-1');
    expect(res.status).toBe(201);
    expect(res.body.tokenKey).toBeUndefined();
    expect(res.body.limitedUseKey).toMatchObject({ keyCounter: 1, firstAtc: 1, lastAtc: 3, status: 'active', uses: 0 });
    expect(res.body.limitedUseKey.key).toMatch(/^[0-9A-F]{32}$/);
    expect(res.body.token).toMatchObject({ deviceBound: true, key: { keyCounter: 1, firstAtc: 1, lastAtc: 3 } });
    expect(res.body.token.key.key).toBeUndefined();
    tok = asToken(res.body);
    // Nothing stores the limited-use key: it is derived again from the vault's master key when needed.
    const dump = JSON.stringify(await t.hub.db.query('select * from token_keys'));
    expect(dump).not.toContain(res.body.limitedUseKey.key);
  });

  it('a key signs its bounded number of payments; the next cryptogram under it is refused key_exhausted, and nothing moves', async () => {
    for (const atc of [1, 2, 3]) expect((await tap(tok, atc)).status).toBe(201);
    await refusedTap(tok, 4, 'key_exhausted');
  });

  it('replenishment needs the device: another key, a stale counter or a replay is refused', async () => {
    const intruder = newDevice();
    const bad = await replenish(tok.tokenRef, await intruder.sign({ purpose: 'replenish', tokenRef: tok.tokenRef, keyCounter: 1 }));
    expect(bad.status).toBe(403);
    expect(bad.body.error.code).toBe('device_signature_invalid');
    const wrongPurpose = await replenish(tok.tokenRef, await phone.sign({ purpose: 'step_up', provisioningId: 'prv_x' }));
    expect(wrongPurpose.body.error.code).toBe('device_signature_invalid');
    const stale = await replenish(tok.tokenRef, await phone.sign({ purpose: 'replenish', tokenRef: tok.tokenRef, keyCounter: 0 }));
    expect(stale.body.error.code).toBe('device_signature_invalid');
    expect((await t.hub.db.query('select key_counter from token_keys k join card_tokens t on t.id = k.token_id where t.token_ref = $1', [tok.tokenRef])).length).toBe(1);

    const signed = await phone.sign({ purpose: 'replenish', tokenRef: tok.tokenRef, keyCounter: 1 });
    const fresh = await replenish(tok.tokenRef, signed);
    expect(fresh.status).toBe(201);
    // The next key signs the counters after the highest one used.
    expect(fresh.body).toMatchObject({ keyCounter: 2, firstAtc: 4, lastAtc: 6, status: 'active' });
    expect(fresh.body.key).not.toBe(tok.tokenKey);
    expect((await replenish(tok.tokenRef, signed)).body.error.code).toBe('device_signature_invalid');
    const [event] = await t.hub.db.query<{ payload: Record<string, unknown> }>(`select payload from events where type = 'token.keys_replenished' and participant_id = $1`, [demoParticipantId('wallet-a')]);
    expect(event?.payload).toMatchObject({ tokenRef: tok.tokenRef, keyCounter: 2, firstAtc: 4, lastAtc: 6 });
    expect(JSON.stringify(event?.payload)).not.toContain(fresh.body.key);

    // The old key signs nothing any more; the new one does.
    await refusedTap(tok, 4, 'cryptogram_invalid');
    tok = { ...tok, tokenKey: fresh.body.key };
    expect((await tap(tok, 4)).status).toBe(201);
  });

  it('an expired key is refused key_exhausted and nothing moves; a new key works again', async () => {
    clock.advance(2 * 3_600_000);
    await refusedTap(tok, 5, 'key_exhausted');
    const fresh = await replenish(tok.tokenRef, await phone.sign({ purpose: 'replenish', tokenRef: tok.tokenRef, keyCounter: 2 }));
    expect(fresh.status).toBe(201);
    expect(fresh.body).toMatchObject({ keyCounter: 3, firstAtc: 5 });
    tok = { ...tok, tokenKey: fresh.body.key };
    expect((await tap(tok, 5)).status).toBe(201);
  });

  it('the issuer sees each key and its use', async () => {
    const [row] = await t.hub.db.query<{ id: string }>('select id from card_tokens where token_ref = $1', [tok.tokenRef]);
    const keys = await t.api('bank-a').get(`/v1/issuer/cards/${card.cardId}/tokens/${row?.id}/keys`);
    expect(keys.status).toBe(200);
    expect(keys.body.items.map((k: { keyCounter: number; status: string; uses: number }) => [k.keyCounter, k.status, k.uses])).toEqual([
      [3, 'active', 1],
      [2, 'superseded', 1],
      [1, 'superseded', 3],
    ]);
    expect(JSON.stringify(keys.body)).not.toMatch(/"key":/);
    expect((await t.api('bank-b').get(`/v1/issuer/cards/${card.cardId}/tokens/${row?.id}/keys`)).status).toBe(404);
  });

  it("moving the card to another device needs the issuer's ID&V, answered from that device; one device's key pays nothing for another's token", async () => {
    const tablet = newDevice();
    const res = await provision(tablet, 'tablet-1');
    expect(res.status).toBe(201);
    // The rules approve a first device, but this is a move: a step-up.
    expect(res.body.status).toBe('pending_step_up');
    const code = await openSentCode(t.hub, 'token.step_up_requested', res.body.id);
    const unsigned = await t.api('wallet-a').post(`/v1/wallet/provisionings/${res.body.id}/step-up`, { code });
    expect(unsigned.status).toBe(403);
    expect(unsigned.body.error.code).toBe('device_signature_invalid');
    const byOther = await t.api('wallet-a').post(`/v1/wallet/provisionings/${res.body.id}/step-up`, { code, deviceSignature: await phone.sign({ purpose: 'step_up', provisioningId: res.body.id }) });
    expect(byOther.body.error.code).toBe('device_signature_invalid');
    const done = await t.api('wallet-a').post(`/v1/wallet/provisionings/${res.body.id}/step-up`, { code, deviceSignature: await tablet.sign({ purpose: 'step_up', provisioningId: res.body.id }) });
    expect(done.status).toBe(200);
    const tabletTok = asToken(done.body);
    expect(tabletTok.tokenRef).not.toBe(tok.tokenRef);

    // The tablet's key under the phone's token (same counter range): refused, nothing moves.
    await refusedTap({ ...tok, tokenKey: tabletTok.tokenKey }, 6, 'cryptogram_invalid');
    // The phone's device key does not obtain keys for the tablet's token.
    expect((await replenish(tabletTok.tokenRef, await phone.sign({ purpose: 'replenish', tokenRef: tabletTok.tokenRef, keyCounter: 1 }))).body.error.code).toBe('device_signature_invalid');
    expect((await tap(tabletTok, 1)).status).toBe(201);
  });

  it("a deleted token's key pays nothing and gets no new key", async () => {
    expect((await t.api('wallet-a').post(`/v1/wallet/tokens/${tok.tokenRef}/delete`, undefined, key())).status).toBe(200);
    await refusedTap(tok, 6, 'token_not_active');
    const res = await replenish(tok.tokenRef, await phone.sign({ purpose: 'replenish', tokenRef: tok.tokenRef, keyCounter: 3 }));
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('token_state');
  });

  it('a card cannot be added without a device key: refused, nothing is written', async () => {
    const count = async () => (await t.hub.db.query<{ n: bigint }>('select (select count(*) from card_tokens) + (select count(*) from token_provisionings) as n'))[0]?.n;
    const before = await count();
    const res = await provision(undefined, 'no-key-phone');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(JSON.stringify(res.body.error)).toContain('devicePublicKey');
    expect(await count()).toBe(before);
  });

  it('a token made before binding was required (bound to no device) gets no new key', async () => {
    const device = newDevice();
    const prov = await provision(device, 'old-phone');
    expect(prov.status).toBe(201);
    // Another device of the customer's: the issuer's step-up, answered from this device.
    const code = await openSentCode(t.hub, 'token.step_up_requested', prov.body.id);
    const res = await t.api('wallet-a').post(`/v1/wallet/provisionings/${prov.body.id}/step-up`, { code, deviceSignature: await device.sign({ purpose: 'step_up', provisioningId: prov.body.id }) });
    expect(res.status).toBe(200);
    // As such a token is stored: no device key.
    await t.hub.db.query('update card_tokens set device_key = null, device_key_thumbprint = null where token_ref = $1', [res.body.token.tokenRef]);
    expect((await t.api('wallet-a').get(`/v1/wallet/tokens/${res.body.token.tokenRef}`)).body.deviceBound).toBe(false);
    const refused = await replenish(res.body.token.tokenRef, await device.sign({ purpose: 'replenish', tokenRef: res.body.token.tokenRef, keyCounter: 1 }));
    expect(refused.body.error.code).toBe('device_not_bound');
  });

  it.each(['mchip_cvn16', 'mchip_cvn17'] as const)("a %s product's tokens make and are checked with Mastercard's cryptogram", async (scheme) => {
    const bin = scheme === 'mchip_cvn16' ? '5555661' : '5555662';
    const product = await t.api('bank-a').post('/v1/issuer/card-products', { name: `M/Chip ${scheme}`, binPrefix: bin, brand: 'Mastercard', currency: 'CNY', type: 'debit', tokenCryptogram: scheme }, key());
    expect(product.status).toBe(201);
    expect(product.body.tokenCryptogram).toBe(scheme);
    const issued = await t.hub.db.transaction(async (tx) => {
      const made = await t.hub.cards.cards.issue(tx, SYSTEM, bankA, { productId: product.body.id, customerId: demoCustomerId('li-at-bank-a'), fundingAccountId: card.fundingAccountId });
      if (!made.ok) throw new Error(made.error.code);
      const active = await t.hub.cards.cards.transition(tx, SYSTEM, bankA, made.value.card.id, 'activate');
      if (!active.ok) throw new Error(active.error.code);
      return made.value;
    });
    const device = newDevice();
    const res = await t.api('wallet-a').post(
      '/v1/wallet/tokens',
      { customerId: walletCustomer, consent: true, deviceId: `mc-${scheme}`, devicePublicKey: device.publicKey, source: { type: 'typed', cardNumber: issued.cardNumber, expiry: issued.card.expiry, cvv: issued.cvv } },
      key(),
    );
    expect(res.status).toBe(201);
    expect(res.body.token.cryptogramScheme).toBe(scheme);
    const mc = asToken(res.body);
    // The Visa-model cryptogram under the right key is not this product's: refused, nothing moves.
    await refusedTap(mc, 1, 'cryptogram_invalid');
    expect((await tap({ ...mc, scheme }, 2)).status).toBe(201);
  });

  it('refuses a device key that is not a P-256 point', async () => {
    const bad = await provision({ ...newDevice(), publicKey: { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'B'.repeat(43) } }, 'broken');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('device_key_invalid');
  });
});

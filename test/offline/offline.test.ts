import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { signOfflinePayment, signOfflineUnload, OFFLINE_UPLOAD_WINDOW_MS } from '../../src/offline/index.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { readOfflineToken, verifyOfflinePayment, verifyOfflineToken } from '../../packages/sdk/src/index.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

type Device = { privateKey: CryptoKeyLike; publicJwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string } };
type CryptoKeyLike = Parameters<typeof signOfflinePayment>[0];

async function newDevice(): Promise<Device> {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  return { privateKey: pair.privateKey, publicJwk: { kty: 'EC', crv: 'P-256', x: jwk.x ?? '', y: jwk.y ?? '' } };
}

/**
 * Offline small payments end to end: a purse loaded from the customer's account and reserved at the hub, tokens a
 * device signs with no network, uploaded by the merchant and settled from the reserve, double spends refused and
 * bounded by the reserve, unload and the sweep after the upload window; every refusal with its error code.
 */
describe.each(engines)('offline small payments on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  const li = demoCustomerId('li-at-wallet-a');
  const liAccount = 'acc_cus_demo_li_at_wallet_a_CNY';
  const merchantA = 'mer_demo_merchant_a';
  const merchantB = 'mer_demo_merchant_b';
  const key = () => ({ 'idempotency-key': randomUUID() });
  const wa = () => t.api('wallet-a');
  const ma = () => t.api('merchant-a');
  const nowS = () => Math.floor(clock.nowMs() / 1000);
  const available = async (accountId: string) => {
    const a = await t.hub.ledger.getAccount(accountId);
    if (!a.ok) throw new Error(accountId);
    return a.value.creditsPostedMinor - a.value.debitsPostedMinor - a.value.debitsPendingMinor;
  };
  const open = async (device: Device, amount: string) =>
    wa().post('/v1/offline/purses', { customerId: li, accountId: liAccount, devicePublicKey: device.publicJwk, deviceId: 'phone-1', amount }, key());
  const pay = (device: Device, purse: string, ctr: number, amt: string, mer = merchantA, iat = nowS()) => signOfflinePayment(device.privateKey, { purse, ctr, amt, cur: 'CNY', mer, iat });
  const upload = (token: string, merchantId = merchantA) => ma().post('/v1/offline/payments', { merchantId, token });
  const body = (st: { purseId: string; lastCounter: number; remaining: string }, deviceSignature: string) => ({ lastCounter: st.lastCounter, remaining: st.remaining, deviceSignature });
  const events = async (type: string) => t.hub.db.query<{ participant_id: string; payload: Record<string, any> }>(`select participant_id, payload from events where type = $1 order by id`, [type]);

  beforeAll(async () => {
    clock = createFakeClock(Date.UTC(2026, 2, 2, 9, 0, 0));
    t = await startTestHub(engine, { clock, config: { webhooks: { enabled: false, pollMs: 1000 }, accessTokenTtlS: 86_400 * 60 } });
    const dep = await wa().post(`/v1/accounts/${liAccount}/deposits`, { amount: { amount: '2000.00', currency: 'CNY' } }, key());
    expect(dep.status, JSON.stringify(dep.body)).toBe(201);
  }, 120_000);
  afterAll(async () => t?.close());

  let phone: Device;
  let purseId: string;

  it('a purse is opened for a device key and loaded from the customer’s account: the hub reserves it, up to 500.00 per device', async () => {
    phone = await newDevice();
    const before = await available(liAccount);
    const opened = await open(phone, '100.00');
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    expect(opened.body).toMatchObject({ customerId: li, currency: 'CNY', accountId: liAccount, deviceId: 'phone-1', status: 'active', limit: { amount: '500.00' }, balance: { amount: '100.00' }, lastSettledCounter: null });
    purseId = opened.body.id;
    expect(await available(liAccount)).toBe(before - 10_000n);
    expect(await available(`off_${purseId}`)).toBe(10_000n);

    // The same device key cannot open a second purse in the currency.
    const again = await open(phone, '1.00');
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'offline_purse_exists', details: { purseId } });

    // Past the per-device limit: refused, nothing moves.
    const over = await wa().post(`/v1/offline/purses/${purseId}/load`, { amount: '400.01' }, key());
    expect(over.status).toBe(422);
    expect(over.body.error.code).toBe('offline_limit_exceeded');
    expect(await available(`off_${purseId}`)).toBe(10_000n);
    const top = await wa().post(`/v1/offline/purses/${purseId}/load`, { amount: '400.00' }, key());
    expect(top.status, JSON.stringify(top.body)).toBe(201);
    expect(top.body.balance).toEqual({ amount: '500.00', currency: 'CNY' });
    expect(await available(liAccount)).toBe(before - 50_000n);
  });

  it('opening refuses a key that is not P-256, an account that is not the customer’s own, and more than the source holds', async () => {
    const bad = await wa().post('/v1/offline/purses', { customerId: li, accountId: liAccount, devicePublicKey: { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'A'.repeat(43) }, amount: '1.00' }, key());
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('device_key_invalid');
    const funding = await wa().post('/v1/offline/purses', { customerId: li, accountId: `fund_${demoParticipantId('wallet-a')}_CNY`, devicePublicKey: (await newDevice()).publicJwk, amount: '1.00' }, key());
    expect(funding.status).toBe(404);
    expect(funding.body.error.code).toBe('account_unavailable');
    const poor = await open(await newDevice(), '499.00');
    expect(poor.status, JSON.stringify(poor.body)).toBe(201);
    const tooMuch = await open(await newDevice(), '1500.00');
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error.code).toBe('offline_limit_exceeded');
    // Drained: the next purse cannot be filled from what is left.
    const rest = await available(liAccount);
    const big = await wa().post('/v1/offline/purses', { customerId: li, accountId: liAccount, devicePublicKey: (await newDevice()).publicJwk, amount: ((Number(rest) + 100) / 100).toFixed(2) }, key());
    expect([422]).toContain(big.status);
    expect(['insufficient_funds', 'offline_limit_exceeded']).toContain(big.body.error.code);
    // Another wallet's customer account is not even nameable.
    const foreign = await wa().post('/v1/offline/purses', { customerId: li, accountId: 'acc_cus_demo_zhang_at_wallet_b_CNY', devicePublicKey: (await newDevice()).publicJwk, amount: '1.00' }, key());
    expect(foreign.status).toBe(404);
  });

  it('the device pays with no network; the merchant uploads the token and is paid from the reserve; the same token twice is a replay', async () => {
    const merchantBefore = await available(`mst_${merchantA}_CNY`);
    const token = await pay(phone, purseId, 1, '12.30');
    // The terminal, offline: reads the claims and checks the signature against the device key it was shown (SDK).
    expect(readOfflineToken(token)?.claims).toEqual({ v: 1, purse: purseId, ctr: 1, amt: '12.30', cur: 'CNY', mer: merchantA, iat: nowS() });
    expect(await verifyOfflineToken(phone.publicJwk, token)).toBe(true);
    expect(await verifyOfflineToken((await newDevice()).publicJwk, token)).toBe(false);
    const paid = await upload(token);
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    expect(paid.body).toMatchObject({ purseId, counter: 1, merchantId: merchantA, amount: { amount: '12.30', currency: 'CNY' } });
    expect(await available(`mst_${merchantA}_CNY`)).toBe(merchantBefore + 1230n);
    expect(await available(`off_${purseId}`)).toBe(50_000n - 1230n);
    const settledEvents = await events('offline.payment_settled');
    expect(settledEvents.map((e) => e.participant_id).sort()).toEqual([demoParticipantId('merchant-a'), demoParticipantId('wallet-a')].sort());
    expect(settledEvents.find((e) => e.participant_id === demoParticipantId('wallet-a'))?.payload).toMatchObject({ customerId: li, purseId, counter: 1, amount: { amount: '12.30', currency: 'CNY' } });

    const replay = await upload(token);
    expect(replay.status).toBe(409);
    expect(replay.body.error).toMatchObject({ code: 'offline_token_replayed', details: { paymentId: paid.body.id } });
    expect(await available(`mst_${merchantA}_CNY`)).toBe(merchantBefore + 1230n);

    // The merchant lists what it was paid offline; another merchant's owner cannot name this merchant.
    const listed = await ma().get(`/v1/offline/payments?merchantId=${merchantA}`);
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((p: { id: string }) => p.id)).toContain(paid.body.id);
    expect((await t.api('merchant-b').get(`/v1/offline/payments?merchantId=${merchantA}`)).status).toBe(404);
    expect((await ma().get(`/v1/offline/payments?merchantId=${merchantA}&before=${encodeURIComponent(paid.body.settledAt)}`)).body.items.map((p: { id: string }) => p.id)).not.toContain(paid.body.id);
    expect((await ma().get(`/v1/offline/payments?merchantId=${merchantA}&before=yesterday`)).status).toBe(400);

    const view = await wa().get(`/v1/offline/purses/${purseId}`);
    expect(view.status).toBe(200);
    expect(view.body.purse).toMatchObject({ balance: { amount: '487.70' }, settled: { amount: '12.30' }, lastSettledCounter: 1 });
    expect(view.body.payments).toHaveLength(1);
    // Another wallet does not see it.
    expect((await t.api('wallet-b').get(`/v1/offline/purses/${purseId}`)).body.error.code).toBe('offline_purse_not_found');
  });

  it('the terminal, offline, trusts the device key through the hub’s certificate (SDK verifyOfflinePayment)', async () => {
    const hubKey = (await ma().get('/v1/offline/certificate-key')).body;
    expect(hubKey.publicKey).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', kid: hubKey.keyId });
    const view = await wa().get(`/v1/offline/purses/${purseId}`);
    const certificate = view.body.purse.certificate as string;
    expect(certificate.split('.')).toHaveLength(3);
    const token = await pay(phone, purseId, 2, '20.00');
    expect(await verifyOfflinePayment(hubKey.publicKey, certificate, token, nowS())).toMatchObject({ ok: true, reserved: '487.70', claims: { purse: purseId, ctr: 2, amt: '20.00' } });
    // More than the hub reserved, another device's token, a certificate from another hub, an expired one: refused at the counter.
    expect(await verifyOfflinePayment(hubKey.publicKey, certificate, await pay(phone, purseId, 2, '487.71'), nowS())).toEqual({ ok: false, reason: 'over_reserved' });
    expect(await verifyOfflinePayment(hubKey.publicKey, certificate, await pay(await newDevice(), purseId, 2, '1.00'), nowS())).toEqual({ ok: false, reason: 'signature_invalid' });
    expect(await verifyOfflinePayment(hubKey.publicKey, certificate, await pay(phone, 'opu_other', 2, '1.00'), nowS())).toEqual({ ok: false, reason: 'wrong_purse' });
    const otherHub = await crypto.subtle.exportKey('jwk', ((await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as import('node:crypto').webcrypto.CryptoKeyPair).publicKey);
    expect(await verifyOfflinePayment({ kty: 'OKP', crv: 'Ed25519', x: otherHub.x ?? '' }, certificate, token, nowS())).toEqual({ ok: false, reason: 'certificate_invalid' });
    expect(await verifyOfflinePayment(hubKey.publicKey, certificate, token, nowS() + 31 * 86_400)).toEqual({ ok: false, reason: 'certificate_expired' });
  });

  it('refuses a token for another merchant, by another key, malformed, or signed too long ago; nothing moves', async () => {
    const merchantBefore = await available(`mst_${merchantA}_CNY`);
    const forB = await upload(await pay(phone, purseId, 2, '1.00', merchantB));
    expect(forB.status).toBe(422);
    expect(forB.body.error.code).toBe('offline_wrong_merchant');
    const thief = await newDevice();
    const forged = await upload(await pay(thief, purseId, 2, '1.00'));
    expect(forged.status).toBe(422);
    expect(forged.body.error.code).toBe('offline_signature_invalid');
    // A valid signature over one payload glued to another payload.
    const [h, , s] = (await pay(phone, purseId, 2, '1.00')).split('.');
    const [, p2] = (await pay(phone, purseId, 2, '90.00')).split('.');
    expect((await upload(`${h}.${p2}.${s}`)).body.error.code).toBe('offline_signature_invalid');
    const garbage = await upload('abc.def.ghi');
    expect(garbage.status).toBe(422);
    expect(garbage.body.error.code).toBe('offline_token_invalid');
    const old = await upload(await pay(phone, purseId, 2, '1.00', merchantA, nowS() - 31 * 86_400));
    expect(old.status).toBe(422);
    expect(old.body.error.code).toBe('offline_token_expired');
    // Merchant B's owner cannot upload for merchant A.
    expect((await t.api('merchant-b').post('/v1/offline/payments', { merchantId: merchantA, token: await pay(phone, purseId, 2, '1.00') })).status).toBe(404);
    expect(await available(`mst_${merchantA}_CNY`)).toBe(merchantBefore);
  });

  it('a counter signed twice is a double spend: refused, recorded, the purse blocked, the wallet told; other counters stay payable up to the reserve', async () => {
    const cloned = await newDevice();
    const opened = await open(cloned, '20.00');
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const id = opened.body.id as string;
    expect((await upload(await pay(cloned, id, 1, '15.00'))).status).toBe(201);
    const again = await upload(await pay(cloned, id, 1, '4.00'));
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('offline_counter_reused');
    const view = await wa().get(`/v1/offline/purses/${id}`);
    expect(view.body.purse).toMatchObject({ status: 'blocked', balance: { amount: '5.00' } });
    const ds = await t.hub.db.query<{ counter: number }>('select counter from offline_double_spends where purse_id = $1', [id]);
    expect(ds.map((d) => d.counter)).toEqual([1]);
    const told = await events('offline.double_spend');
    expect(told.at(-1)).toMatchObject({ participant_id: demoParticipantId('wallet-a'), payload: { purseId: id, counter: 1, status: 'blocked', amount: { amount: '4.00', currency: 'CNY' } } });
    // Blocked: no more loads, no unload while merchants may still upload.
    expect((await wa().post(`/v1/offline/purses/${id}/load`, { amount: '1.00' }, key())).body.error.code).toBe('offline_purse_blocked');
    const unload = await wa().post(`/v1/offline/purses/${id}/unload`, { lastCounter: 1, remaining: '5.00', deviceSignature: await signOfflineUnload(cloned.privateKey, { purseId: id, lastCounter: 1, remaining: '5.00' }) }, key());
    expect(unload.body.error.code).toBe('offline_purse_blocked');
    // The device signs more than it reserved: the hub pays up to the reserve, then refuses. The loss is bounded.
    expect((await upload(await pay(cloned, id, 2, '5.00'))).status).toBe(201);
    const beyond = await upload(await pay(cloned, id, 3, '0.01'));
    expect(beyond.status).toBe(402);
    expect(beyond.body.error.code).toBe('offline_reserve_exhausted');
    expect(await available(`off_${id}`)).toBe(0n);
    const settled = await t.hub.db.query<{ total: string }>('select coalesce(sum(amount_minor), 0)::text as total from offline_payments where purse_id = $1', [id]);
    expect(settled[0]?.total).toBe('2000');
  });

  it('concurrent uploads of one counter (the same token and a clone) settle exactly one payment', async () => {
    const device = await newDevice();
    const opened = await open(device, '10.00');
    const id = opened.body.id as string;
    const original = await pay(device, id, 1, '6.00');
    const clone = await pay(device, id, 1, '7.00');
    const answers = await Promise.all([original, clone, original, clone, original, clone].map((tok) => upload(tok)));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status !== 201).map((a) => a.body.error.code).every((c) => c === 'offline_token_replayed' || c === 'offline_counter_reused')).toBe(true);
    const paid = answers.find((a) => a.status === 201)?.body.amount.amount as string;
    expect(await available(`off_${id}`)).toBe(1000n - BigInt(Number(paid) * 100));
    expect((await t.hub.db.query('select id from offline_payments where purse_id = $1', [id])).length).toBe(1);
    expect((await wa().get(`/v1/offline/purses/${id}`)).body.purse.status).toBe('blocked');
  });

  it('unload: the device signs its last counter and what it has left; that goes back at once, tokens up to the counter are still paid, later ones refused', async () => {
    const before = await available(liAccount);
    // Spent offline, not uploaded yet: counter 2 for 7.70.
    const pending = await pay(phone, purseId, 2, '7.70');
    const statement = { purseId, lastCounter: 2, remaining: '480.00' };
    const forged = await wa().post(`/v1/offline/purses/${purseId}/unload`, body(statement, await signOfflineUnload((await newDevice()).privateKey, statement)), key());
    expect(forged.status).toBe(422);
    expect(forged.body.error.code).toBe('offline_signature_invalid');
    const tooMuch = { purseId, lastCounter: 2, remaining: '487.71' };
    const greedy = await wa().post(`/v1/offline/purses/${purseId}/unload`, body(tooMuch, await signOfflineUnload(phone.privateKey, tooMuch)), key());
    expect(greedy.body.error.code).toBe('offline_unload_invalid');
    const behind = { purseId, lastCounter: 0, remaining: '480.00' };
    expect((await wa().post(`/v1/offline/purses/${purseId}/unload`, body(behind, await signOfflineUnload(phone.privateKey, behind)), key())).body.error.code).toBe('offline_unload_invalid');
    // Signed over other values than the body says.
    const mismatch = await wa().post(`/v1/offline/purses/${purseId}/unload`, { ...body(statement, await signOfflineUnload(phone.privateKey, statement)), remaining: '487.70' }, key());
    expect(mismatch.body.error.code).toBe('offline_signature_invalid');
    expect(await available(liAccount)).toBe(before);

    const unloaded = await wa().post(`/v1/offline/purses/${purseId}/unload`, body(statement, await signOfflineUnload(phone.privateKey, statement)), key());
    expect(unloaded.status, JSON.stringify(unloaded.body)).toBe(200);
    expect(unloaded.body).toMatchObject({ status: 'unloaded', lastCounter: 2, balance: { amount: '7.70' }, unloaded: { amount: '480.00' } });
    expect(await available(liAccount)).toBe(before + 48_000n);
    expect((await wa().post(`/v1/offline/purses/${purseId}/load`, { amount: '1.00' }, key())).body.error.code).toBe('offline_purse_closed');

    const later = await upload(await pay(phone, purseId, 3, '1.00'));
    expect(later.status).toBe(409);
    expect(later.body.error.code).toBe('offline_purse_closed');
    expect((await upload(pending)).status).toBe(201);
    const view = await wa().get(`/v1/offline/purses/${purseId}`);
    expect(view.body.purse).toMatchObject({ status: 'closed', balance: { amount: '0.00' }, settled: { amount: '20.00' } });
  });

  it('after the upload window the sweep gives back what an unloaded purse still holds, and closes it', async () => {
    const device = await newDevice();
    const opened = await open(device, '30.00');
    const id = opened.body.id as string;
    const statement = { purseId: id, lastCounter: 1, remaining: '20.00' };
    expect((await wa().post(`/v1/offline/purses/${id}/unload`, body(statement, await signOfflineUnload(device.privateKey, statement)), key())).status).toBe(200);
    const before = await available(liAccount);
    expect(await t.hub.offline.sweep()).toBe(0);
    clock.advance(OFFLINE_UPLOAD_WINDOW_MS + 1000);
    // The merchant never uploaded the 10.00 token in time.
    const late = await upload(await pay(device, id, 1, '10.00', merchantA, nowS() - 3600));
    expect(late.body.error.code).toBe('offline_purse_closed');
    // Every unloaded or blocked purse of 李伟's past its window goes back: this one's 10.00 among them.
    const [due] = await t.hub.db.query<{ total: string }>(`select coalesce(sum(loaded_minor - settled_minor - unloaded_minor), 0)::text as total from offline_purses where customer_id = $1 and status in ('unloaded', 'blocked')`, [li]);
    expect((await wa().get(`/v1/offline/purses/${id}`)).body.purse.balance.amount).toBe('10.00');
    expect(await t.hub.offline.sweep()).toBeGreaterThanOrEqual(1);
    expect(await available(liAccount)).toBe(before + BigInt(due?.total ?? '0'));
    expect((await wa().get(`/v1/offline/purses/${id}`)).body.purse).toMatchObject({ status: 'closed', balance: { amount: '0.00' } });
    expect((await events('offline.purse_closed')).some((e) => e.payload.purseId === id)).toBe(true);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });
});

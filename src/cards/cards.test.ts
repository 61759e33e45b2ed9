import { randomBytes } from 'node:crypto';
import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from '../../test/support/engines.ts';
import { startTestHub, type TestHub } from '../../test/support/hub.ts';
import { seedDemoNetwork, demoParticipantId } from '../demo/seed.ts';
import { createFakeClock, type FakeClock } from '../platform/clock.ts';
import { IDEMPOTENCY_LIMITS } from '../platform/idempotency.ts';
import { luhnValid } from '../platform/logger.ts';
import { CARD_DATA_LOCK_MS, checkControls } from './service.ts';
import { isTokenNumber } from './numbers.ts';

const engines = await availableEngines();

import { story, payment, withDevices, type Call } from '../demo/card-story.ts';

describe('checkControls', () => {
  const card = { status: 'active' as const, expiry: '12/30', currency: 'CNY', controls: { perTransactionMaxMinor: 10_000n, dailyLimitMinor: 20_000n, monthlyLimitMinor: 50_000n, blockedMccs: ['7995'], allowedCountries: ['CN', 'HK'], channels: ['qr' as const, 'tap' as const] } };
  const base = { amountMinor: 5_000n, currency: 'CNY', mcc: '5411', country: 'CN', channel: 'qr' as const, spentTodayMinor: 0n, spentMonthMinor: 0n };
  it('answers a decline code for each control, and undefined when all pass', () => {
    expect(checkControls(card, base)).toBeUndefined();
    expect(checkControls(card, { ...base, amountMinor: 10_001n })).toBe('exceeds_transaction_limit');
    expect(checkControls(card, { ...base, spentTodayMinor: 15_001n })).toBe('exceeds_daily_limit');
    expect(checkControls(card, { ...base, spentMonthMinor: 45_001n })).toBe('exceeds_monthly_limit');
    expect(checkControls(card, { ...base, mcc: '7995' })).toBe('mcc_blocked');
    expect(checkControls(card, { ...base, country: 'US' })).toBe('country_not_allowed');
    expect(checkControls(card, { ...base, channel: 'online' })).toBe('channel_not_allowed');
    expect(checkControls(card, { ...base, currency: 'USD' })).toBe('currency_not_allowed');
    expect(checkControls({ ...card, status: 'frozen' }, base)).toBe('card_not_active');
    expect(checkControls(card, { ...base, now: new Date(Date.UTC(2031, 0, 1)) })).toBe('card_expired');
  });
});

describe.each(engines)('cards and tokens on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let s: ReturnType<typeof story>;
  // Every wallet here binds its tokens to a device (one per device id) and signs step-up answers with it.
  const call: Call = withDevices(async (as, method, url, body, headers) => {
    const api = t.api(as);
    return method === 'GET' ? api.get(url, headers) : method === 'PATCH' ? api.patch(url, body, headers) : api.post(url, body, headers);
  });
  beforeAll(async () => {
    clock = createFakeClock(Date.UTC(2026, 0, 15, 8, 0, 0));
    t = await startTestHub(engine, { clock, config: { webhooks: { enabled: false, pollMs: 1000 }, accessTokenTtlS: 86_400 } });
    for (const key of ['bank-a', 'wallet-a', 'wallet-b']) expect((await call(key, 'PATCH', '/v1/me', { webhookUrl: `https://example.test/${key}` })).status).toBe(200);
    s = story(t.hub, call, t.demo);
  });
  afterAll(async () => t?.close());
  /**
   * 李伟 links his wallet records to his cardholder record at bank A (consent on both sides), once: what lets a wallet
   * name his card by reference. The by-reference test below runs before it and shows the refusal without it.
   */
  let linked = false;
  const ensureLinks = async () => {
    if (linked) return;
    linked = true;
    await s.linkCustomer('wallet-a', 'li-at-wallet-a', 'bank-a');
    await s.linkCustomer('wallet-b', 'li-at-wallet-b', 'bank-a');
  };

  it('seeds a product at each demo bank and one active card for 李伟, idempotently', async () => {
    const again = await seedDemoNetwork(t.hub);
    expect(again.created).toBe(false);
    const products = await t.hub.db.query<{ n: bigint }>('select count(*) as n from card_products');
    expect(products[0]?.n).toBe(2n);
    const card = await t.hub.cards.cards.getById('crd_demo_li_bank_a');
    expect(card?.status).toBe('active');
  });

  it('forgets Idempotency-Keys of card requests after the retention, and only those', async () => {
    const body = { productId: 'cpr_demo_bank_a_debit', customerId: t.demo.customers.get('li-at-bank-a') };
    const first = await call('bank-a', 'POST', '/v1/issuer/cards', body, { 'idempotency-key': 'sweep-old' });
    expect(first.status).toBe(201);
    clock.advance(IDEMPOTENCY_LIMITS.retentionMs - 60_000);
    expect((await call('bank-a', 'POST', '/v1/issuer/cards', body, { 'idempotency-key': 'sweep-young' })).status).toBe(201);
    clock.advance(120_000);
    const keys = async () => (await t.hub.db.query<{ key: string }>(`select key from card_request_keys where key like 'sweep-%' order by key`)).map((r) => r.key);
    expect(await keys()).toEqual(['sweep-old', 'sweep-young']);
    expect(await t.hub.cards.sweep()).toBeGreaterThanOrEqual(1);
    expect(await keys()).toEqual(['sweep-young']);
    // Past the retention the key is new again: a second card, not the first one replayed.
    const again = await call('bank-a', 'POST', '/v1/issuer/cards', body, { 'idempotency-key': 'sweep-old' });
    expect(again.status).toBe(201);
    expect(again.body.card.id).not.toBe(first.body.card.id);
  });

  it('refuses a product overlapping the token range', async () => {
    const res = await call('bank-a', 'POST', '/v1/issuer/card-products', { name: 'x', binPrefix: '48953700', brand: 'X', currency: 'CNY', type: 'debit' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('bin_in_token_range');
    expect((await call('wallet-a', 'POST', '/v1/issuer/card-products', { name: 'x', binPrefix: '12345678', brand: 'X', currency: 'CNY', type: 'debit' })).status).toBe(403);
  });

  it('provisions by reference with no card data, gives each wallet its own token, and isolates wallets', async () => {
    const card = await s.issue();
    expect(luhnValid(card.cardNumber)).toBe(true);
    const a = await s.provision('wallet-a', { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv: card.cvv });
    // Passing the card's step-up proved the card, not the person: nothing links 李伟's records, so wallet B cannot name
    // wallet A's token (or the card) for its customer, and nothing is written.
    const bCustomer = t.demo.customers.get('li-at-wallet-b');
    const before = await t.hub.db.query<{ n: bigint }>('select count(*) as n from token_provisionings');
    for (const source of [{ type: 'token_ref', tokenRef: a.tokenRef }, { type: 'card_ref', cardRef: card.cardId }]) {
      const refused = await call('wallet-b', 'POST', '/v1/wallet/tokens', { customerId: bCustomer, consent: true, deviceId: 'dev-x', source });
      expect(refused.status).toBe(404);
      expect(refused.body.error.code).toBe('reference_not_found');
    }
    expect((await t.hub.db.query<{ n: bigint }>('select count(*) as n from token_provisionings'))[0]?.n).toBe(before[0]?.n);
    expect((await t.hub.db.query<{ n: bigint }>('select count(*) as n from customer_links'))[0]?.n).toBe(0n);
    // The person links the two wallet records themselves (consent on both sides); now the reference resolves.
    const linkId = await s.linkCustomer('wallet-b', 'li-at-wallet-b', 'wallet-a');
    // By reference: the request names wallet A's token; it carries no number, expiry or CVV.
    const b = await s.provision('wallet-b', { type: 'token_ref', tokenRef: a.tokenRef });
    const [prov] = await t.hub.db.query<{ method: string }>(`select method from token_provisionings where token_id = (select id from card_tokens where token_ref = $1)`, [b.tokenRef]);
    expect(prov?.method).toBe('token_ref');
    for (const tok of [a, b]) {
      expect(luhnValid(tok.tokenNumber)).toBe(true);
      expect(isTokenNumber(tok.tokenNumber)).toBe(true);
      expect(tok.tokenNumber).not.toBe(card.cardNumber);
      expect(tok.par).toBe(card.par);
      expect(tok.par).toHaveLength(29);
    }
    expect(a.tokenNumber).not.toBe(b.tokenNumber);
    // The link is shown on both sides and either can revoke it; revoked, the reference no longer resolves.
    const linksA = await call('wallet-a', 'GET', `/v1/customer-links?customerId=${t.demo.customers.get('li-at-wallet-a')}`);
    expect(linksA.body.items.map((l: any) => [l.id, l.status, l.other.participantId])).toEqual([[linkId, 'active', demoParticipantId('wallet-b')]]);
    expect((await call('wallet-a', 'POST', `/v1/customer-links/${linkId}/revoke`)).status).toBe(200);
    const afterRevoke = await call('wallet-b', 'POST', '/v1/wallet/tokens', { customerId: bCustomer, consent: true, deviceId: 'dev-y', source: { type: 'token_ref', tokenRef: a.tokenRef } });
    expect(afterRevoke.status).toBe(404);

    // Wallet B cannot see or act on wallet A's token.
    expect((await call('wallet-b', 'GET', `/v1/wallet/tokens/${a.tokenRef}`)).status).toBe(404);
    for (const action of ['suspend', 'resume', 'delete']) expect((await call('wallet-b', 'POST', `/v1/wallet/tokens/${a.tokenRef}/${action}`)).status).toBe(404);
    expect((await call('wallet-b', 'GET', `/v1/wallet/tokens/${a.tokenRef}/card-wallets`)).status).toBe(404);
    const listB = await call('wallet-b', 'GET', '/v1/wallet/tokens');
    expect(listB.body.items.map((x: any) => x.tokenRef)).not.toContain(a.tokenRef);
    // Another issuer cannot see the card.
    expect((await call('bank-b', 'GET', `/v1/issuer/cards/${card.cardId}`)).status).toBe(404);
    // A wallet never receives the card number.
    expect(JSON.stringify((await call('wallet-b', 'GET', `/v1/wallet/tokens/${b.tokenRef}`)).body)).not.toContain(card.cardNumber);

    // Only through the consent list: wallet B sees both wallets and revokes wallet A's token.
    const consent = await call('wallet-b', 'GET', `/v1/wallet/tokens/${b.tokenRef}/card-wallets`);
    expect(consent.body.items).toHaveLength(2);
    const entryA = consent.body.items.find((e: any) => e.walletParticipantId === demoParticipantId('wallet-a'));
    expect(JSON.stringify(consent.body)).not.toContain(a.tokenRef);
    expect((await call('wallet-b', 'POST', `/v1/wallet/tokens/${b.tokenRef}/card-wallets/${entryA.id}/revoke`)).status).toBe(200);
    expect((await call('wallet-a', 'GET', `/v1/wallet/tokens/${a.tokenRef}`)).body.status).toBe('deleted');
    const [ev] = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from events where participant_id = $1 and type = 'token.deleted' and payload->>'tokenRef' = $2`, [demoParticipantId('wallet-a'), a.tokenRef]);
    expect(ev?.n).toBe(1n);
    const audit = await t.hub.db.query<{ actor_participant_id: string }>(`select actor_participant_id from audit_log where action = 'token.deleted' and object_type = 'token' and details->>'requestorParticipantId' = $1 order by id desc limit 1`, [demoParticipantId('wallet-a')]);
    expect(audit[0]?.actor_participant_id).toBe(demoParticipantId('wallet-b'));
  });

  it('propagates freeze, replace and cancel to every token, with webhook deliveries to each wallet', async () => {
    await ensureLinks();
    const card = await s.issue();
    const a = await s.provision('wallet-a', { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv: card.cvv });
    const b = await s.provision('wallet-b', { type: 'card_ref', cardRef: card.cardId });
    const deliveries = async (wallet: string, type: string, tokenRef: string) => {
      const [row] = await t.hub.db.query<{ n: bigint }>(
        `select count(*) as n from webhook_deliveries d join events e on e.event_id = d.event_id where d.participant_id = $1 and e.type = $2 and e.payload->>'tokenRef' = $3`,
        [demoParticipantId(wallet), type, tokenRef],
      );
      return row?.n ?? 0n;
    };
    const status = async (wallet: string, ref: string) => (await call(wallet, 'GET', `/v1/wallet/tokens/${ref}`)).body.status;

    // A wallet's own suspension is not lifted by unfreezing the card.
    expect((await call('wallet-a', 'POST', `/v1/wallet/tokens/${a.tokenRef}/suspend`)).status).toBe(200);
    expect((await call('bank-a', 'POST', `/v1/issuer/cards/${card.cardId}/freeze`)).status).toBe(200);
    expect(await status('wallet-b', b.tokenRef)).toBe('suspended');
    expect(await deliveries('wallet-b', 'token.suspended', b.tokenRef)).toBe(1n);
    const refused = await t.hub.cards.walletTokens.verifyTokenPayment(payment(b.tokenKey, b.tokenNumber, 1));
    expect(refused.ok ? 'ok' : refused.error.code).toBe('token_not_active');
    expect((await call('wallet-b', 'POST', `/v1/wallet/tokens/${b.tokenRef}/resume`)).status).toBe(409);
    expect((await call('bank-a', 'POST', `/v1/issuer/cards/${card.cardId}/unfreeze`)).status).toBe(200);
    expect(await status('wallet-b', b.tokenRef)).toBe('active');
    expect(await status('wallet-a', a.tokenRef)).toBe('suspended');
    expect((await call('wallet-a', 'POST', `/v1/wallet/tokens/${a.tokenRef}/resume`)).status).toBe(200);

    const replaced = await call('bank-a', 'POST', `/v1/issuer/cards/${card.cardId}/replace`);
    expect(replaced.status).toBe(201);
    expect(replaced.body.cardNumber).not.toBe(card.cardNumber);
    expect(replaced.body.card.par).toBe(card.par);
    for (const [w, tok] of [['wallet-a', a], ['wallet-b', b]] as const) {
      expect(await status(w, tok.tokenRef)).toBe('active');
      expect(await deliveries(w, 'token.card_replaced', tok.tokenRef)).toBe(1n);
      expect((await call(w, 'GET', `/v1/wallet/tokens/${tok.tokenRef}`)).body.cardLast4).toBe(replaced.body.card.last4);
    }
    const paid = await t.hub.cards.walletTokens.verifyTokenPayment(payment(b.tokenKey, b.tokenNumber, 2));
    expect(paid.ok && paid.value.card.id).toBe(replaced.body.card.id);
    expect((await call('bank-a', 'GET', `/v1/issuer/cards/${card.cardId}`)).body.status).toBe('replaced');
    // The old number no longer provisions.
    const old = await call('wallet-a', 'POST', '/v1/wallet/tokens', { customerId: t.demo.customers.get('li-at-wallet-a'), consent: true, source: { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv: card.cvv } });
    expect(old.status).toBe(409);

    expect((await call('bank-a', 'POST', `/v1/issuer/cards/${replaced.body.card.id}/cancel`)).status).toBe(200);
    for (const [w, tok] of [['wallet-a', a], ['wallet-b', b]] as const) {
      expect(await status(w, tok.tokenRef)).toBe('deleted');
      expect(await deliveries(w, 'token.deleted', tok.tokenRef)).toBe(1n);
    }
    const issuerList = await call('bank-a', 'GET', `/v1/issuer/cards/${replaced.body.card.id}/tokens`);
    expect(issuerList.body.items).toHaveLength(0);
  });

  it('typed card data: wrong attempts are counted, the fifth locks typed data out for a day and tells the issuer', async () => {
    await ensureLinks();
    const card = await s.issue();
    const typed = (cvv: string, deviceId = `d-${randomBytes(3).toString('hex')}`) =>
      call('wallet-a', 'POST', '/v1/wallet/tokens', { customerId: t.demo.customers.get('li-at-wallet-a'), consent: true, deviceId, source: { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv } });
    const wrongCvv = card.cvv === '000' ? '001' : '000';
    // A right attempt in between clears the count: 4 wrong, 1 right, 4 wrong leave the card open.
    for (let i = 0; i < 4; i++) expect((await typed(wrongCvv)).body.error.code).toBe('card_data_invalid');
    expect((await typed(card.cvv)).status).toBe(201);
    for (let i = 0; i < 4; i++) expect((await typed(wrongCvv)).body.error.code).toBe('card_data_invalid');
    const locking = await typed(wrongCvv);
    expect(locking.body.error.code).toBe('card_data_invalid');
    // Locked: the right data is refused with the same answer (a guesser learns nothing from it).
    const refused = await typed(card.cvv);
    expect(refused.status).toBe(locking.status);
    expect(refused.body).toEqual(locking.body);
    const [locked] = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from events where participant_id = $1 and type = 'card.card_data_locked' and payload->>'cardId' = $2`, [demoParticipantId('bank-a'), card.cardId]);
    expect(locked?.n).toBe(1n);
    // Adding the card by reference (no card data) still works; typed data works again after the lock period.
    expect((await call('wallet-a', 'POST', '/v1/wallet/tokens', { customerId: t.demo.customers.get('li-at-wallet-a'), consent: true, deviceId: 'by-ref', source: { type: 'card_ref', cardRef: card.cardId } })).status).toBe(201);
    clock.advance(CARD_DATA_LOCK_MS + 1_000);
    expect((await typed(card.cvv)).status).toBe(201);
  });

  it('step-up: wrong codes reveal nothing, attempts are limited, codes expire', async () => {
    await ensureLinks();
    const card = await s.issue();
    const start = async () => {
      const res = await call('wallet-a', 'POST', '/v1/wallet/tokens', { customerId: t.demo.customers.get('li-at-wallet-a'), consent: true, deviceId: `d-${randomBytes(3).toString('hex')}`, source: { type: 'card_ref', cardRef: card.cardId } });
      expect(res.status).toBe(201);
      return res.body.id as string;
    };
    // Attempts: five wrong codes lock it; the right code is then refused too.
    const p1 = await start();
    const right = await s.stepUpCode(p1);
    const wrong = right === '000000' ? '000001' : '000000';
    const near = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    const r1 = await call('wallet-a', 'POST', `/v1/wallet/provisionings/${p1}/step-up`, { code: wrong });
    const r2 = await call('wallet-a', 'POST', `/v1/wallet/provisionings/${p1}/step-up`, { code: near });
    expect(r1.status).toBe(422);
    expect(r1.body.error.code).toBe('step_up_failed');
    expect(r1.body.error.message).toBe(r2.body.error.message);
    expect(r2.body.error.details.attemptsRemaining).toBe(3);
    for (let i = 0; i < 3; i++) await call('wallet-a', 'POST', `/v1/wallet/provisionings/${p1}/step-up`, { code: wrong });
    const locked = await call('wallet-a', 'POST', `/v1/wallet/provisionings/${p1}/step-up`, { code: right });
    expect(locked.status).toBe(409);
    expect((await call('wallet-a', 'GET', `/v1/wallet/provisionings/${p1}`)).body.status).toBe('failed');
    // Expiry.
    const p2 = await start();
    const code2 = await s.stepUpCode(p2);
    clock.advance(5 * 60_000 + 1);
    const expired = await call('wallet-a', 'POST', `/v1/wallet/provisionings/${p2}/step-up`, { code: code2 });
    expect(expired.status).toBe(410);
    expect(expired.body.error.code).toBe('step_up_expired');
    // The code is never stored in clear: only an HMAC, and the event carries it encrypted to the issuer.
    const p3 = await start();
    const code3 = await s.stepUpCode(p3);
    const rows = await t.hub.db.query<{ r: string }>(`select t::text as r from token_provisionings t union all select e::text from events e`);
    expect(rows.some((r) => r.r.includes(`"${code3}"`) || r.r.includes(`,${code3},`))).toBe(false);
    // Another wallet cannot complete it.
    expect((await call('wallet-b', 'POST', `/v1/wallet/provisionings/${p3}/step-up`, { code: code3 })).status).toBe(404);
    expect((await call('wallet-a', 'POST', `/v1/wallet/provisionings/${p3}/step-up`, { code: code3 })).status).toBe(200);
  });

  it('step-up by authenticator (TOTP) for an enrolled cardholder; a used code does not work twice', async () => {
    const bankCustomer = await call('bank-a', 'POST', '/v1/customers', { externalId: `totp-${randomBytes(3).toString('hex')}`, name: 'T' });
    const enrolled = await call('bank-a', 'POST', `/v1/issuer/customers/${bankCustomer.body.id}/authenticator`);
    expect(enrolled.status).toBe(201);
    const issued = await call('bank-a', 'POST', '/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: bankCustomer.body.id });
    await call('bank-a', 'POST', `/v1/issuer/cards/${issued.body.card.id}/activate`);
    // Another person's card: wallet A can add it only with the card's data (nothing links its customer to this holder).
    const typedSource = { type: 'typed', cardNumber: issued.body.cardNumber, expiry: issued.body.card.expiry, cvv: issued.body.cvv };
    const byReference = await call('wallet-a', 'POST', '/v1/wallet/tokens', { customerId: t.demo.customers.get('li-at-wallet-a'), consent: true, deviceId: 'totp-0', source: { type: 'card_ref', cardRef: issued.body.card.id } });
    expect(byReference.status).toBe(404);
    const start = async (device: string) =>
      (await call('wallet-a', 'POST', '/v1/wallet/tokens', { customerId: t.demo.customers.get('li-at-wallet-a'), consent: true, deviceId: device, source: typedSource })).body;
    const p = await start('totp-1');
    expect(p.stepUp.method).toBe('totp');
    const [ev] = await t.hub.db.query<{ payload: Record<string, unknown> }>(`select payload from events where payload->>'provisioningId' = $1`, [p.id]);
    expect(ev?.payload.codeSealed).toBeUndefined();
    const code = generateSync({ secret: enrolled.body.secret, epoch: Math.floor(clock.nowMs() / 1000) });
    expect((await call('wallet-a', 'POST', `/v1/wallet/provisionings/${p.id}/step-up`, { code })).status).toBe(200);
    const p2 = await start('totp-2');
    expect((await call('wallet-a', 'POST', `/v1/wallet/provisionings/${p2.id}/step-up`, { code })).status).toBe(422);
  });

  it('verifies cryptograms and rejects replayed or stale counters, even concurrently', async () => {
    await ensureLinks();
    const card = await s.issue();
    const b = await s.provision('wallet-b', { type: 'card_ref', cardRef: card.cardId });
    const wt = t.hub.cards.walletTokens;
    const first = await wt.verifyTokenPayment(payment(b.tokenKey, b.tokenNumber, 5));
    expect(first.ok).toBe(true);
    const replay = await wt.verifyTokenPayment(payment(b.tokenKey, b.tokenNumber, 5));
    expect(replay.ok ? 'ok' : replay.error.code).toBe('atc_replayed');
    const stale = await wt.verifyTokenPayment(payment(b.tokenKey, b.tokenNumber, 4));
    expect(stale.ok ? 'ok' : stale.error.code).toBe('atc_replayed');
    const wrongWallet = await wt.verifyTokenPayment(payment(b.tokenKey, b.tokenNumber, 6, demoParticipantId('wallet-a')));
    // Another wallet's token answers as an unknown one (no existence oracle).
    expect(wrongWallet.ok ? 'ok' : wrongWallet.error.code).toBe('token_unknown');
    const tampered = { ...payment(b.tokenKey, b.tokenNumber, 6), amountMinor: 99_999n };
    expect((await wt.verifyTokenPayment(tampered)).ok).toBe(false);
    const same = payment(b.tokenKey, b.tokenNumber, 7);
    const both = await Promise.all([wt.verifyTokenPayment(same), wt.verifyTokenPayment(same), wt.verifyTokenPayment(same)]);
    expect(both.filter((r) => r.ok)).toHaveLength(1);
    const [row] = await t.hub.db.query<{ last_atc: number; last_used_at: Date | null }>('select last_atc, last_used_at from card_tokens where token_ref = $1', [b.tokenRef]);
    expect(row?.last_atc).toBe(7);
    expect(row?.last_used_at).not.toBeNull();
    const [used] = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from audit_log where action = 'token.used' and actor_participant_id = $1`, [demoParticipantId('wallet-b')]);
    expect(Number(used?.n)).toBeGreaterThanOrEqual(2);
  });

  it('after key rotation every stored card number still decrypts and every wrapped key changed', async () => {
    const before = await t.hub.db.query<{ id: string; wrapped: string; kek_id: string }>('select id, wrapped, kek_id from data_keys order by id');
    const rotated = await t.hub.vault.rotate();
    expect(rotated.rewrapped).toBe(before.length);
    const after = await t.hub.db.query<{ id: string; wrapped: string; kek_id: string }>('select id, wrapped, kek_id from data_keys order by id');
    expect(after.map((r) => r.id)).toEqual(before.map((r) => r.id));
    for (const [i, r] of after.entries()) {
      expect(r.wrapped).not.toBe(before[i]?.wrapped);
      expect(r.kek_id).toBe(rotated.kekId);
    }
    // A fresh vault (no cached keys) opens every card number with the new KEK only.
    const fresh = (await import('../platform/vault.ts')).createVault({ db: t.hub.db, clock, keys: (await import('../platform/vault.ts')).defaultKeySource(t.hub.config) });
    const cards = await t.hub.db.query<{ pan_sealed: string; pan_index: string; pan_last4: string }>('select pan_sealed, pan_index, pan_last4 from cards');
    expect(cards.length).toBeGreaterThan(3);
    for (const c of cards) {
      const pan = await fresh.open(c.pan_sealed);
      expect(luhnValid(pan)).toBe(true);
      expect(pan.endsWith(c.pan_last4)).toBe(true);
      expect(await fresh.indexHash(pan)).toBe(c.pan_index);
    }
  });
});


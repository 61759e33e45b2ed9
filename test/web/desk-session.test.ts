import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * The routes the merchant counter, the issuer desk and the hosted payment-link page need:
 * - POST /demo/v1/desk-session: a short-lived token for a demo merchant or a demo bank (demo mode, loopback), acting as
 *   that participant and nothing else;
 * - GET /v1/public/payment-links/:linkId: what /pay/<id> shows, without a session; unknown ids 404 with the link's code.
 */
describe.each(engines)('the desk session and the public payment link on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine);
  }, 120_000);
  afterAll(async () => t?.close());

  const session = async (participant: string) => t.api('anonymous').post('/demo/v1/desk-session', { participant });
  const as = (token: string, path: string) => t.hub.app.inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${token}` } });

  it('gives a demo merchant a merchant token and a demo bank an issuer token, each seeing only its own', async () => {
    const merchant = await session('merchant-a');
    expect(merchant.status).toBe(200);
    expect(merchant.body.participant).toMatchObject({ key: 'merchant-a', participantId: 'par_demo_merchant_a', kind: 'merchant' });
    const merchants = await as(merchant.body.accessToken, '/v1/merchants');
    expect(merchants.statusCode).toBe(200);
    expect((merchants.json() as { items: unknown[] }).items.length).toBeGreaterThan(0);
    expect((await as(merchant.body.accessToken, '/v1/issuer/cards')).statusCode).toBe(403);

    const bank = await session('bank-a');
    expect(bank.status).toBe(200);
    expect(bank.body.participant.kind).toBe('issuer');
    const cards = await as(bank.body.accessToken, '/v1/issuer/cards?limit=5');
    expect(cards.statusCode).toBe(200);
    // The bank has no merchants of its own: none of merchant A's shows.
    const theirs = await as(bank.body.accessToken, '/v1/merchants');
    expect(theirs.statusCode === 403 || (theirs.json() as { items: unknown[] }).items.length === 0).toBe(true);
  });

  it('refuses what is not a demo merchant or bank: unknown keys 404, other kinds do not match the schema', async () => {
    expect((await session('bank-zz')).body.error.code).toBe('not_found');
    expect((await session('merchant-zz')).status).toBe(404);
    expect((await session('wallet-a')).status).toBe(400);
    expect((await session('bank-a; drop')).status).toBe(400);
    // A suspended demo bank gets no session.
    expect((await t.api('operator').post('/v1/operator/participants/par_demo_bank_b/suspend', {}, { 'idempotency-key': 'desk-suspend' })).status).toBe(200);
    const suspended = await session('bank-b');
    expect(suspended.status).toBe(403);
    expect(suspended.body.error.code).toBe('participant_suspended');
  });

  it('shows a payment link to anyone holding it, open (paid is checked in faces.test.ts after a wallet pays it); an unknown link is payment_link_not_found', async () => {
    const merchant = (await t.api('merchant-a').get('/v1/merchants')).body.items[0].id as string;
    const link = await t.api('merchant-a').post(`/v1/merchants/${merchant}/payment-links`, { amount: { amount: '18.80', currency: 'CNY' }, description: 'Airport transfer 机场接送', expiresInS: 3600 }, { 'idempotency-key': 'desk-link' });
    expect(link.status).toBe(201);
    const shown = await t.api('anonymous').get(`/v1/public/payment-links/${link.body.id}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ id: link.body.id, amount: { amount: '18.80', currency: 'CNY' }, description: 'Airport transfer 机场接送', state: 'open', multipleUse: false });
    expect(shown.body.merchant.name).toBe(link.body.merchant.name);
    const missing = await t.api('anonymous').get('/v1/public/payment-links/lnk_missing');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('payment_link_not_found');
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * No money from nothing: money enters a participant's customers' accounts only from its position, within the liquidity
 * it prefunded and the net debit cap the operator set — on both engines, and under concurrency on PostgreSQL.
 */
describe.each(engines)('liquidity and positions on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine);
  });
  afterAll(async () => t?.close());

  const key = () => ({ 'idempotency-key': randomBytes(8).toString('hex') });
  const op = () => t.api('operator');

  /** A new wallet (no liquidity), its token and a caller for it. */
  const newWallet = async (currency: string) => {
    const created = await op().post('/v1/operator/participants', { kind: 'wallet', name: `Liquidity ${randomBytes(3).toString('hex')}`, country: 'SG', currencies: [currency] });
    expect(created.status).toBe(201);
    const token = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const auth = { authorization: `Bearer ${token.body.access_token}` };
    const as = t.api('anonymous');
    return {
      id: created.body.participant.id as string,
      get: (url: string) => as.get(url, auth),
      post: (url: string, body: unknown, headers: Record<string, string> = {}) => as.post(url, body, { ...auth, ...headers }),
    };
  };
  const openCustomer = async (w: Awaited<ReturnType<typeof newWallet>>, currency: string) => {
    const c = await w.post('/v1/customers', { externalId: `liq-${randomBytes(4).toString('hex')}`, name: 'Liquidity Tester', kycLevel: 3 });
    const a = await w.post('/v1/accounts', { customerId: c.body.id, currency });
    expect(a.status).toBe(201);
    return { customerId: c.body.id as string, accountId: a.body.id as string };
  };
  const transferCount = async () => (await t.hub.db.query<{ n: bigint }>('select count(*) as n from ledger_transfers'))[0]?.n;

  it('a wallet cannot deposit money it did not prefund; liquidity, the cap and withdrawals move the limit', async () => {
    const w = await newWallet('SGD');
    const c = await openCustomer(w, 'SGD');
    const deposit = (amount: string) => w.post(`/v1/accounts/${c.accountId}/deposits`, { amount: { amount, currency: 'SGD' } }, key());

    const before = await transferCount();
    const huge = await deposit('100000000.00');
    expect(huge.status).toBe(422);
    expect(huge.body.error.code).toBe('liquidity_exceeded');
    expect(await transferCount()).toBe(before);

    const fundsIn = await op().post(`/v1/operator/participants/${w.id}/liquidity`, { amount: { amount: '1000.00', currency: 'SGD' }, reference: 'MT103-1' }, key());
    expect(fundsIn.status).toBe(201);
    expect(fundsIn.body).toMatchObject({ liquidity: { amount: '1000.00' }, balance: { amount: '1000.00' }, netDebitCap: { amount: '0.00' }, available: { amount: '1000.00' } });
    expect((await deposit('600.00')).status).toBe(201);
    expect((await deposit('500.00')).body.error.code).toBe('liquidity_exceeded');
    // The cap lets the position go below zero, only that far.
    const cap = await op().post(`/v1/operator/participants/${w.id}/net-debit-cap`, { cap: { amount: '200.00', currency: 'SGD' } });
    expect(cap.status).toBe(200);
    expect(cap.body.available).toEqual({ amount: '600.00', currency: 'SGD' });
    expect((await deposit('500.00')).status).toBe(201);
    expect((await deposit('100.01')).body.error.code).toBe('liquidity_exceeded');
    const positions = await w.get('/v1/positions');
    expect(positions.body.items).toEqual([
      { participantId: w.id, currency: 'SGD', liquidity: { amount: '1000.00', currency: 'SGD' }, balance: { amount: '-100.00', currency: 'SGD' }, reserved: { amount: '0.00', currency: 'SGD' }, netDebitCap: { amount: '200.00', currency: 'SGD' }, available: { amount: '100.00', currency: 'SGD' } },
    ]);
    // Liquidity goes back only from what was prefunded and not spent: none is left here.
    const out = await op().post(`/v1/operator/participants/${w.id}/liquidity/withdrawals`, { amount: { amount: '1.00', currency: 'SGD' } }, key());
    expect(out.body.error.code).toBe('liquidity_exceeded');
    // The cap cannot be lowered below what the position already uses; down to it, nothing more goes out.
    const below = await op().post(`/v1/operator/participants/${w.id}/net-debit-cap`, { cap: { amount: '0', currency: 'SGD' } });
    expect(below.status).toBe(400);
    expect(below.body.error.code).toBe('liquidity_invalid');
    expect((await op().post(`/v1/operator/participants/${w.id}/net-debit-cap`, { cap: { amount: '100.00', currency: 'SGD' } })).body.available).toEqual({ amount: '0.00', currency: 'SGD' });
    expect((await deposit('0.01')).body.error.code).toBe('liquidity_exceeded');
    // A retried funds-in moves nothing twice.
    const k = key();
    const a = await op().post(`/v1/operator/participants/${w.id}/liquidity`, { amount: { amount: '50.00', currency: 'SGD' } }, k);
    const b = await op().post(`/v1/operator/participants/${w.id}/liquidity`, { amount: { amount: '50.00', currency: 'SGD' } }, k);
    expect(b.body).toEqual(a.body);
    expect(a.body.liquidity).toEqual({ amount: '1050.00', currency: 'SGD' });
    // Only the operator moves liquidity; a participant sees only its own positions.
    expect((await w.post(`/v1/operator/participants/${w.id}/liquidity`, { amount: { amount: '1.00', currency: 'SGD' } }, key())).status).toBe(401);
    expect((await t.api('wallet-a').get('/v1/positions')).body.items.map((p: any) => p.participantId)).not.toContain(w.id);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('a demo wallet’s 100,000,000.00 deposit is refused: its prefunded liquidity is 10,000,000.00', async () => {
    const acc = 'acc_cus_demo_maria_at_wallet_c_SGD';
    const res = await t.api('wallet-c').post(`/v1/accounts/${acc}/deposits`, { amount: { amount: '100000000.00', currency: 'SGD' } }, key());
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('liquidity_exceeded');
  });

  it.runIf(engine === 'postgres')('concurrent deposits and payments near the cap never cross it; the books balance', async () => {
    const w = await newWallet('SGD');
    const customers = await Promise.all(Array.from({ length: 4 }, () => openCustomer(w, 'SGD')));
    expect((await op().post(`/v1/operator/participants/${w.id}/liquidity`, { amount: { amount: '500.00', currency: 'SGD' } }, key())).status).toBe(201);
    expect((await op().post(`/v1/operator/participants/${w.id}/net-debit-cap`, { cap: { amount: '300.00', currency: 'SGD' } })).status).toBe(200);
    // Aliases so that the customers can pay each other while deposits race.
    for (const [i, c] of customers.entries()) expect((await w.post('/v1/aliases', { customerId: c.customerId, type: 'handle', value: `liq_${w.id.slice(-6)}_${i}` , accountId: c.accountId })).status).toBe(201);
    const limitMinor = 800_00n; // liquidity + cap
    const amounts = Array.from({ length: 48 }, (_, i) => 10_00n + BigInt((i * 7919) % 3_000)); // 10.00–39.99, about 1,200 in all
    const pay = async (from: number, to: number) => {
      const q = await w.post('/v1/transfers/quotes', { customerId: customers[from]!.customerId, payee: { type: 'handle', value: `liq_${w.id.slice(-6)}_${to}` }, sendAmount: { amount: '1.00', currency: 'SGD' } }, key());
      if (q.status !== 201) return q.status;
      return (await w.post('/v1/transfers/payments', { quoteId: q.body.id }, key())).status;
    };
    const results = await Promise.all([
      ...amounts.map((minor, i) => w.post(`/v1/accounts/${customers[i % 4]!.accountId}/deposits`, { amount: { amount: (Number(minor) / 100).toFixed(2), currency: 'SGD' } }, key()).then((r) => ({ minor, r }))),
      ...Array.from({ length: 16 }, (_, i) => pay(i % 4, (i + 1) % 4).then((status) => ({ minor: -1n, r: { status, body: {} } }))),
    ]);
    const deposits = results.filter((x) => x.minor > 0n);
    const accepted = deposits.filter((x) => x.r.status === 201).reduce((s, x) => s + x.minor, 0n);
    const refused = deposits.filter((x) => x.r.status !== 201);
    for (const x of refused) expect((x.r.body as any).error.code).toBe('liquidity_exceeded');
    expect(refused.length).toBeGreaterThan(0);
    expect(accepted <= limitMinor).toBe(true);
    // Whatever was refused, the rest used the position up to within the smallest deposit of the limit.
    expect(limitMinor - accepted < 40_00n).toBe(true);
    const position = await t.hub.liquidity.position(w.id, 'SGD');
    expect(position.balanceMinor).toBe(500_00n - accepted);
    expect(position.balanceMinor >= -300_00n).toBe(true);
    // Customers' money equals what left the position: payments between them moved it, created none.
    const balances = await t.hub.ledger.getAccounts(customers.map((c) => c.accountId));
    expect(balances.reduce((s, a) => s + a.creditsPostedMinor - a.debitsPostedMinor, 0n)).toBe(accepted);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });
});

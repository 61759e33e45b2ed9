import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeClock } from '../../src/platform/clock.ts';
import { createFakeClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * FX providers are participants: they post rates (tiers, expiry), a quote binds one by id, and a payment across
 * currencies moves the provider's positions (up in the currency sent, down in the currency delivered), recorded in
 * each currency's settlement window, which nets them — on both engines.
 */
describe.each(engines)('FX provider participants on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
  });
  afterAll(async () => t?.close());

  const key = () => ({ 'idempotency-key': randomBytes(8).toString('hex') });
  const op = () => t.api('operator');

  type Party = Awaited<ReturnType<typeof newParticipant>>;
  const newParticipant = async (kind: 'wallet' | 'issuer', currencies: string[], liquidity: string | undefined) => {
    const created = await op().post('/v1/operator/participants', { kind, name: `FX ${randomBytes(3).toString('hex')}`, country: 'SG', currencies });
    expect(created.status).toBe(201);
    const token = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const auth = { authorization: `Bearer ${token.body.access_token}` };
    const as = t.api('anonymous');
    const id = created.body.participant.id as string;
    if (liquidity !== undefined) for (const currency of currencies) expect((await op().post(`/v1/operator/participants/${id}/liquidity`, { amount: { amount: liquidity, currency } }, key())).status).toBe(201);
    return {
      id,
      get: (url: string) => as.get(url, auth),
      post: (url: string, body: unknown, headers: Record<string, string> = {}) => as.post(url, body, { ...auth, ...headers }),
    };
  };
  let handles = 0;
  const openCustomer = async (w: Party, currency: string, deposit: string) => {
    const c = await w.post('/v1/customers', { externalId: `fx-${randomBytes(4).toString('hex')}`, name: 'FX Tester', kycLevel: 3 });
    const a = await w.post('/v1/accounts', { customerId: c.body.id, currency });
    expect(a.status).toBe(201);
    const handle = `fx_${randomBytes(3).toString('hex')}_${(handles += 1)}`;
    expect((await w.post('/v1/aliases', { customerId: c.body.id, type: 'handle', value: handle, accountId: a.body.id })).status).toBe(201);
    if (deposit !== '0') expect((await w.post(`/v1/accounts/${a.body.id}/deposits`, { amount: { amount: deposit, currency } }, key())).status).toBe(201);
    return { w, customerId: c.body.id as string, accountId: a.body.id as string, handle };
  };
  type Customer = Awaited<ReturnType<typeof openCustomer>>;
  const quote = (from: Customer, to: Customer, sendAmount: { amount: string; currency: string }, fxProviderId?: string) =>
    from.w.post('/v1/transfers/quotes', { customerId: from.customerId, payee: { type: 'handle', value: to.handle }, sendAmount, ...(fxProviderId !== undefined ? { fxProviderId } : {}) }, key());
  const balance = async (id: string) => {
    const [r] = await t.hub.db.query<{ b: bigint }>('select credits_posted - debits_posted as b from ledger_accounts where id = $1', [id]);
    return r?.b ?? 0n;
  };
  const totals = async () => {
    const rows = await t.hub.db.query<{ currency: string; d: bigint; c: bigint }>('select currency, sum(debits_posted)::int8 as d, sum(credits_posted)::int8 as c from ledger_accounts group by currency order by currency');
    return rows;
  };
  const iso = (ms: number) => new Date(clock.nowMs() + ms).toISOString();

  /** A fresh FX provider (registered by the operator), prefunded in both currencies. */
  const newProvider = async (currencies: string[]) => {
    const p = await newParticipant('issuer', currencies, '100000');
    const reg = await op().post('/v1/operator/fx/providers', { participantId: p.id });
    expect(reg.status).toBe(200);
    expect(reg.body.participantId).toBe(p.id);
    return p;
  };

  it('a cross-currency P2P payment moves the provider’s positions in both currencies; the windows net them; money is conserved per currency', async () => {
    const provider = await newProvider(['SGD', 'MYR']);
    const posted = await provider.post('/v1/fx/provider-rates', {
      sendCurrency: 'SGD',
      receiveCurrency: 'MYR',
      tiers: [
        { min: { amount: '0.01', currency: 'SGD' }, max: { amount: '1000.00', currency: 'SGD' }, rate: '3.2' },
        { min: { amount: '1000.01', currency: 'SGD' }, rate: '3.3' },
      ],
      expiresAt: iso(3_600_000),
    }, key());
    expect(posted.status).toBe(201);
    expect(posted.body.tiers).toEqual([
      { min: { amount: '0.01', currency: 'SGD' }, max: { amount: '1000.00', currency: 'SGD' }, rate: '3.20000000' },
      { min: { amount: '1000.01', currency: 'SGD' }, max: null, rate: '3.30000000' },
    ]);
    const listed = await provider.get(`/v1/fx/provider-rates?sendCurrency=SGD&receiveCurrency=MYR&providerId=${provider.id}`);
    expect(listed.body.items.map((r: { id: string }) => r.id)).toEqual([posted.body.id]);

    const w1 = await newParticipant('wallet', ['SGD'], '10000.00');
    const w2 = await newParticipant('wallet', ['MYR'], '10000.00');
    const a = await openCustomer(w1, 'SGD', '500.00');
    const b = await openCustomer(w2, 'MYR', '0');
    const before = await totals();

    const q = await quote(a, b, { amount: '100.00', currency: 'SGD' }, provider.id);
    expect(q.status).toBe(201);
    expect(q.body).toMatchObject({ fxRateId: posted.body.id, fxProviderId: provider.id, rate: '3.20000000', sendAmount: { amount: '100.00', currency: 'SGD' }, receiveAmount: { amount: '320.00', currency: 'MYR' } });
    const paid = await w1.post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    expect(paid.status).toBe(201);

    // The customers' money moved; the provider's position rose in SGD and fell in MYR; the wallets' moved the other way.
    expect(await balance(a.accountId)).toBe(400_00n);
    expect(await balance(b.accountId)).toBe(320_00n);
    expect(await balance(`fund_${provider.id}_SGD`)).toBe(100_100_00n);
    expect(await balance(`fund_${provider.id}_MYR`)).toBe(100_000_00n - 320_00n);
    // w1's position: 10,000 prefunded − 500 deposited − 100 paid to the provider + 100 back from its customer = 9,500.
    expect(await balance(`fund_${w1.id}_SGD`)).toBe(9_500_00n);
    expect(await balance(`fund_${w2.id}_MYR`)).toBe(10_000_00n);
    const entries = await t.hub.db.query<{ payer_participant_id: string; payee_participant_id: string; currency: string; amount_minor: bigint }>(
      'select payer_participant_id, payee_participant_id, currency, amount_minor from settlement_entries where payment_id = $1 order by currency',
      [paid.body.id],
    );
    expect(entries).toEqual([
      { payer_participant_id: provider.id, payee_participant_id: w2.id, currency: 'MYR', amount_minor: 320_00n },
      { payer_participant_id: w1.id, payee_participant_id: provider.id, currency: 'SGD', amount_minor: 100_00n },
    ]);

    // Conservation per currency: every debit has its credit, and the totals moved equally on both sides.
    const after = await totals();
    for (const row of after) expect(row.d).toBe(row.c);
    expect(before.every((r) => r.d === r.c)).toBe(true);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);

    // The windows net the provider's legs: +100 SGD, −320 MYR; each currency's nets sum to zero.
    for (const [currency, mine] of [['SGD', 100_00n], ['MYR', -320_00n]] as const) {
      const closed = await op().post('/v1/operator/settlement/windows/close', { currency });
      expect(closed.status).toBe(200);
      const nets = closed.body.netPositions as { participantId: string; netPosition: { amount: string } }[];
      const net = (id: string) => nets.find((n) => n.participantId === id)?.netPosition.amount;
      expect(net(provider.id)).toBe((Number(mine) / 100).toFixed(2));
      expect(nets.reduce((s, n) => s + Math.round(Number(n.netPosition.amount) * 100), 0)).toBe(0);
    }
  });

  it('the best rate in force wins; a tier that does not price the amount, an expired rate and an uncovered provider position are refused with their codes', async () => {
    const p1 = await newProvider(['SGD', 'THB']);
    const p2 = await newProvider(['SGD', 'THB']);
    const w1 = await newParticipant('wallet', ['SGD'], '10000.00');
    const w2 = await newParticipant('wallet', ['THB'], '10000.00');
    const a = await openCustomer(w1, 'SGD', '5000.00');
    const b = await openCustomer(w2, 'THB', '0');
    const tier = (min: string, max: string | undefined, rate: string) => ({ min: { amount: min, currency: 'SGD' }, ...(max !== undefined ? { max: { amount: max, currency: 'SGD' } } : {}), rate });
    expect((await p1.post('/v1/fx/provider-rates', { sendCurrency: 'SGD', receiveCurrency: 'THB', tiers: [tier('1.00', '100.00', '25')], expiresAt: iso(60_000) })).status).toBe(201);
    const r2 = await p2.post('/v1/fx/provider-rates', { sendCurrency: 'SGD', receiveCurrency: 'THB', tiers: [tier('1.00', '100.00', '25.5')], expiresAt: iso(120_000) });
    expect(r2.status).toBe(201);

    // The best rate in force that prices the amount; the quote lives no longer than the rate it bound.
    const best = await quote(a, b, { amount: '10.00', currency: 'SGD' });
    expect(best.body).toMatchObject({ fxProviderId: p2.id, fxRateId: r2.body.id, receiveAmount: { amount: '255.00', currency: 'THB' } });
    // No tier prices 500 SGD: fx_tier_not_covered (nothing stored).
    const big = await quote(a, b, { amount: '500.00', currency: 'SGD' });
    expect(big.status).toBe(422);
    expect(big.body.error.code).toBe('fx_tier_not_covered');
    // Tiers must go up without overlapping.
    const overlap = await p1.post('/v1/fx/provider-rates', { sendCurrency: 'SGD', receiveCurrency: 'THB', tiers: [tier('1.00', '100.00', '25'), tier('50.00', undefined, '25')], expiresAt: iso(60_000) });
    expect(overlap.status).toBe(400);
    expect(overlap.body.error.code).toBe('fx_rate_invalid');
    // A participant the operator did not register posts nothing.
    const notProvider = await w1.post('/v1/fx/provider-rates', { sendCurrency: 'SGD', receiveCurrency: 'THB', tiers: [tier('1.00', undefined, '30')], expiresAt: iso(60_000) });
    expect(notProvider.status).toBe(403);
    expect(notProvider.body.error.code).toBe('fx_provider_not_registered');

    // The provider's position in THB delivers within its liquidity and cap only.
    const p3 = await newProvider(['SGD', 'THB']);
    expect((await op().post(`/v1/operator/participants/${p3.id}/liquidity/withdrawals`, { amount: { amount: '99990.00', currency: 'THB' } }, key())).status).toBe(201);
    expect((await p3.post('/v1/fx/provider-rates', { sendCurrency: 'SGD', receiveCurrency: 'THB', tiers: [tier('1.00', '100.00', '25')], expiresAt: iso(60_000) })).status).toBe(201);
    const q3 = await quote(a, b, { amount: '10.00', currency: 'SGD' }, p3.id);
    expect(q3.status).toBe(201);
    const transfersBefore = (await t.hub.db.query<{ n: bigint }>('select count(*) as n from ledger_transfers'))[0]?.n;
    const short = await w1.post('/v1/transfers/payments', { quoteId: q3.body.id }, key());
    expect(short.status).toBe(503);
    expect(short.body.error.code).toBe('fx_liquidity_insufficient');
    expect((await t.hub.db.query<{ n: bigint }>('select count(*) as n from ledger_transfers'))[0]?.n).toBe(transfersBefore);

    // Every SGD→THB rate expires: fx_rate_expired names the newest one.
    clock.advance(121_000);
    const expired = await quote(a, b, { amount: '10.00', currency: 'SGD' });
    expect(expired.status).toBe(422);
    expect(expired.body.error.code).toBe('fx_rate_expired');
    // A quote taken before the expiry cannot outlive its rate.
    expect((await w1.post('/v1/transfers/payments', { quoteId: best.body.id }, key())).body.error.code).toBe('quote_expired');
  });

  it('concurrent payments through one provider: its positions move by exactly the sums, every payment in both windows once', async () => {
    const provider = await newProvider(['HKD', 'JPY']);
    const posted = await provider.post('/v1/fx/provider-rates', { sendCurrency: 'HKD', receiveCurrency: 'JPY', tiers: [{ min: { amount: '0.01', currency: 'HKD' }, rate: '19.5' }], expiresAt: iso(3_600_000) });
    expect(posted.status).toBe(201);
    const w1 = await newParticipant('wallet', ['HKD'], '100000.00');
    const w2 = await newParticipant('wallet', ['JPY'], '100000');
    const payee = await openCustomer(w2, 'JPY', '0');
    const payers = await Promise.all(Array.from({ length: 16 }, () => openCustomer(w1, 'HKD', '100.00')));
    const before = { hkd: await balance(`fund_${provider.id}_HKD`), jpy: await balance(`fund_${provider.id}_JPY`) };
    const paid = await Promise.all(
      payers.map(async (a, i) => {
        const q = await quote(a, payee, { amount: `${i + 1}.00`, currency: 'HKD' }, provider.id);
        expect(q.status).toBe(201);
        const p = await w1.post('/v1/transfers/payments', { quoteId: q.body.id }, key());
        expect(p.status).toBe(201);
        return { id: p.body.id as string, send: BigInt(i + 1) * 100n, receive: BigInt(Math.floor((i + 1) * 19.5)) };
      }),
    );
    const sent = paid.reduce((s, p) => s + p.send, 0n);
    const received = paid.reduce((s, p) => s + p.receive, 0n);
    expect(await balance(`fund_${provider.id}_HKD`)).toBe(before.hkd + sent);
    expect(await balance(`fund_${provider.id}_JPY`)).toBe(before.jpy - received);
    expect(await balance(payee.accountId)).toBe(received);
    const entries = await t.hub.db.query<{ payment_id: string; currency: string; n: bigint }>(
      'select payment_id, currency, count(*) as n from settlement_entries where payment_id = any($1::text[]) group by payment_id, currency',
      [paid.map((p) => p.id)],
    );
    expect(entries).toHaveLength(32);
    expect(entries.every((e) => e.n === 1n)).toBe(true);
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('the demo network’s FX provider converts the demo wallets’ payments from its posted rates', async () => {
    const rates = await t.api('wallet-c').get('/v1/fx/provider-rates?sendCurrency=SGD&receiveCurrency=CNY');
    expect(rates.status).toBe(200);
    expect(rates.body.items).toHaveLength(1);
    expect(rates.body.items[0].providerParticipantId).toBe('par_demo_bank_b');
    expect(rates.body.items[0].tiers).toHaveLength(2);
  });
});

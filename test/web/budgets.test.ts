import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * Budgets and low-balance alerts are kept at the hub per customer and currency (POST/GET /v1/budgets under the customer's
 * own session), and each crossing is told once to the customer's wallet by webhook (budget.exceeded, budget.low_balance),
 * found when the budget is saved and by the hub's sweep.
 */
describe.each(engines)('budgets and low-balance alerts at the hub on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  const cus = (k: string) => t.demo.customers.get(k) ?? '';
  const walletA = () => demoParticipantId('wallet-a');
  let session: Record<string, string> = {};
  const asLi = () => ({ ...session });
  /** 李伟's own session at wallet A (the customer app's token; opened again after the clock moves past its expiry). */
  const openSession = async () => {
    const s = await t.api('wallet-a').post('/v1/customer-sessions', { customerId: cus('li-at-wallet-a') });
    expect(s.status).toBe(201);
    session = { authorization: `Bearer ${s.body.accessToken as string}` };
  };
  const budgetEvents = async () =>
    t.hub.db.query<{ type: string; payload: Record<string, unknown> }>(`select type, payload from events where participant_id = $1 and type like 'budget.%' order by id`, [walletA()]);

  beforeAll(async () => {
    clock = createFakeClock(Date.UTC(2026, 0, 15, 8, 0, 0));
    t = await startTestHub(engine, { clock, config: { webhooks: { enabled: false, pollMs: 1000 }, accessTokenTtlS: 86_400 } });
    await openSession();
  }, 120_000);
  afterAll(async () => t?.close());

  it('a customer sets a monthly budget in CNY under their own session; it is stored at the hub and read back with this month’s spending', async () => {
    const set = await t.api('anonymous').post('/v1/budgets', { customerId: cus('li-at-wallet-a'), currency: 'CNY', monthlyLimit: '20.00', lowBalance: null }, asLi());
    expect(set.status).toBe(200);
    expect(set.body.budget).toMatchObject({ currency: 'CNY', monthlyLimit: { amount: '20.00', currency: 'CNY' }, lowBalance: null, month: '2026-01', spent: { amount: '0.00', currency: 'CNY' }, overBudget: false });
    const read = await t.api('wallet-a').get(`/v1/budgets?customerId=${cus('li-at-wallet-a')}`);
    expect(read.status).toBe(200);
    expect(read.body.items).toHaveLength(1);
    expect(await budgetEvents()).toEqual([]);
  });

  it('spending past the budget is told once by webhook (budget.exceeded), by the sweep', async () => {
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: cus('li-at-wallet-a'), payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '17.00', currency: 'CNY' } });
    expect(q.status).toBe(201);
    expect((await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, { 'idempotency-key': randomUUID() })).status).toBe(201);
    await t.hub.budgets.sweep();
    expect(await budgetEvents()).toEqual([]);
    const read = await t.api('wallet-a').get(`/v1/budgets?customerId=${cus('li-at-wallet-a')}`);
    expect(read.body.items[0]).toMatchObject({ nearBudget: true, overBudget: false });

    const q2 = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: cus('li-at-wallet-a'), payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '4.00', currency: 'CNY' } });
    expect((await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q2.body.id }, { 'idempotency-key': randomUUID() })).status).toBe(201);
    await t.hub.budgets.sweep();
    await t.hub.budgets.sweep();
    const events = await budgetEvents();
    expect(events.map((e) => e.type)).toEqual(['budget.exceeded']);
    expect(events[0]?.payload).toMatchObject({ customerId: cus('li-at-wallet-a'), currency: 'CNY', month: '2026-01', monthlyLimit: { amount: '20.00', currency: 'CNY' } });
    const read2 = await t.api('wallet-a').get(`/v1/budgets?customerId=${cus('li-at-wallet-a')}`);
    expect(read2.body.items[0]).toMatchObject({ overBudget: true });
    expect(Number(read2.body.items[0].spent.amount)).toBeGreaterThanOrEqual(21);

    // A new month: the budget starts over, and its next crossing is told again.
    clock.advance(20 * 86_400_000);
    await t.hub.budgets.sweep();
    expect((await t.api('wallet-a').get(`/v1/budgets?customerId=${cus('li-at-wallet-a')}`)).body.items[0]).toMatchObject({ month: '2026-02', spent: { amount: '0.00' }, overBudget: false });
    expect((await budgetEvents()).length).toBe(1);
    await openSession();
  });

  it('a low-balance alert above the balance is told at once when saved, once; in another currency too', async () => {
    const accounts = await t.api('wallet-a').get(`/v1/accounts?customerId=${cus('li-at-wallet-a')}`);
    const cny = (accounts.body.items as { currency: string; available: { amount: string } }[]).filter((a) => a.currency === 'CNY').reduce((s, a) => s + Number(a.available.amount), 0);
    const set = await t.api('anonymous').post('/v1/budgets', { customerId: cus('li-at-wallet-a'), currency: 'CNY', monthlyLimit: '20.00', lowBalance: (cny + 100).toFixed(2) }, asLi());
    expect(set.status).toBe(200);
    expect(set.body.budget).toMatchObject({ lowBalanceReached: true });
    await t.hub.budgets.sweep();
    const low = (await budgetEvents()).filter((e) => e.type === 'budget.low_balance');
    expect(low).toHaveLength(1);
    expect(low[0]?.payload).toMatchObject({ currency: 'CNY', threshold: { amount: (cny + 100).toFixed(2), currency: 'CNY' } });
    // SGD: a currency the customer holds nothing in (available 0): the alert is crossed at once.
    const sgd = await t.api('anonymous').post('/v1/budgets', { customerId: cus('li-at-wallet-a'), currency: 'SGD', monthlyLimit: null, lowBalance: '5.00' }, asLi());
    expect(sgd.status).toBe(200);
    expect(sgd.body.budget).toMatchObject({ currency: 'SGD', lowBalance: { amount: '5.00', currency: 'SGD' }, lowBalanceReached: true });
    expect((await budgetEvents()).filter((e) => e.type === 'budget.low_balance').map((e) => (e.payload.threshold as { currency: string }).currency)).toEqual(['CNY', 'SGD']);
    // Both null removes the budget.
    const removed = await t.api('anonymous').post('/v1/budgets', { customerId: cus('li-at-wallet-a'), currency: 'SGD', monthlyLimit: null, lowBalance: null }, asLi());
    expect(removed.body).toEqual({ budget: null });
    expect((await t.api('wallet-a').get(`/v1/budgets?customerId=${cus('li-at-wallet-a')}`)).body.items.map((b: { currency: string }) => b.currency)).toEqual(['CNY']);
  });

  it('bad input is a clear 4xx that writes nothing; another wallet’s or another customer’s budget is 404', async () => {
    const before = await t.hub.db.query<{ n: string }>('select count(*)::text as n from customer_budgets');
    const bad = [
      { customerId: cus('li-at-wallet-a'), currency: 'CNY', monthlyLimit: '1.001', lowBalance: null },
      { customerId: cus('li-at-wallet-a'), currency: 'CNY', monthlyLimit: '-5.00', lowBalance: null },
      { customerId: cus('li-at-wallet-a'), currency: 'XXQ', monthlyLimit: '5.00', lowBalance: null },
      { customerId: cus('li-at-wallet-a'), currency: 'CNY', monthlyLimit: '0', lowBalance: null },
    ];
    for (const body of bad) {
      const res = await t.api('anonymous').post('/v1/budgets', body, asLi());
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await t.api('wallet-b').get(`/v1/budgets?customerId=${cus('li-at-wallet-a')}`)).status).toBe(404);
    expect((await t.api('wallet-b').post('/v1/budgets', { customerId: cus('li-at-wallet-a'), currency: 'CNY', monthlyLimit: '1.00', lowBalance: null })).status).toBe(404);
    // 李伟's session names only 李伟.
    const other = await t.api('wallet-a').post('/v1/customers', { externalId: 'budget-other', name: 'Other' });
    expect(other.status).toBe(201);
    expect((await t.api('anonymous').get(`/v1/budgets?customerId=${other.body.id as string}`, asLi())).status).toBe(404);
    expect((await t.api('anonymous').post('/v1/budgets', { customerId: other.body.id, currency: 'CNY', monthlyLimit: '1.00', lowBalance: null }, asLi())).status).toBe(404);
    expect(await t.hub.db.query<{ n: string }>('select count(*)::text as n from customer_budgets')).toEqual(before);
  });
});
